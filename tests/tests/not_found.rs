//! An unknown DID is refused with 404.

use acd_tests::flows::trunk;
use acd_tests::{AcdClient, TestEnv};

#[tokio::test]
async fn unknown_did_gets_404() {
    let env = TestEnv::new("unknown_did_gets_404", 16);
    let mut acd = env.start_run().await.unwrap();
    let out = trunk(
        &env,
        "trunk-404",
        "trunk_404.xml",
        0,
        "5559999",
        env.ports.observer(0),
    )
    .spawn(&env)
    .await
    .unwrap()
    .wait()
    .await;
    out.assert_success(1);
    let mut client = AcdClient::connect(&acd.grpc_url()).await.unwrap();
    let queues = client.queues().await.unwrap();
    assert!(
        queues.iter().all(|q| q.waiting == 0 && q.offered == 0),
        "a 404 call was queued: {queues:?}"
    );
    acd.assert_running();
}
