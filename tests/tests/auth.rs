//! REGISTER digest auth: a wrong password never registers.

use acd_tests::flows::{register, register_with};
use acd_tests::{AcdClient, TestEnv, SHORT};

#[tokio::test]
async fn wrong_password_is_refused() {
    let env = TestEnv::new("wrong_password_is_refused", 18);
    let mut acd = env.start_run().await.unwrap();
    let mut client = AcdClient::connect(&acd.grpc_url()).await.unwrap();

    // 401/403 expected; a 200 fails the scenario.
    register_with(
        &env,
        0,
        "register_wrong_password.xml",
        "1001",
        "not-the-password",
        env.ports.sipp(5).sip,
    )
    .await
    .assert_success(1);
    // Another extension's password does not work either.
    register_with(
        &env,
        1,
        "register_wrong_password.xml",
        "1001",
        "secret1002",
        env.ports.sipp(5).sip,
    )
    .await
    .assert_success(1);
    let st = client.status().await.unwrap();
    let regs = st.edge.as_ref().map(|e| e.registrations);
    assert_eq!(
        regs,
        Some(0),
        "edge registrations after refused REGISTERs: {st:?}"
    );

    // Control: the right password registers, and the count shows it.
    register(&env, 2, "1001", "secret1001", env.ports.sipp(5).sip)
        .await
        .assert_success(1);
    client
        .await_status("registrations = 1", SHORT, |s| {
            s.edge.as_ref().is_some_and(|e| e.registrations == 1)
        })
        .await
        .unwrap();
    acd.assert_running();
}
