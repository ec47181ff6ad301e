//! A trunk behind a proxy that Record-Routes with `;du=`: the edge echoes the
//! Record-Route verbatim in its 2xx and routes its in-dialog BYE by the `du`
//! (the route's host does not resolve, so only the `du` can reach the caller).

use acd_tests::flows::{agent_phone, register, trunk};
use acd_tests::proto::AgentState;
use acd_tests::{AcdClient, RtpObserver, TestEnv, LONG};

#[tokio::test]
async fn record_route_with_du_is_kept_and_followed() {
    let env = TestEnv::new("record_route", 41);
    let acd = env.start_run().await.unwrap();
    let caller = RtpObserver::bind("caller", env.ports.observer(0))
        .await
        .unwrap();
    let agent_rtp = RtpObserver::bind("agent", env.ports.observer(1))
        .await
        .unwrap();
    let phone = agent_phone(&env, "agent-1001", 1, agent_rtp.port(), Some(2000)).await;
    register(&env, 2, "1001", "secret1001", env.ports.sipp(1).sip)
        .await
        .assert_success(1);

    let mut client = AcdClient::connect(&acd.grpc_url()).await.unwrap();
    client.login("alice", "1001").await.unwrap();
    let mut watch = client.watch("alice").await.unwrap();
    client.ready("alice").await.unwrap();

    let run = trunk(
        &env,
        "trunk",
        "trunk_call_record_route.xml",
        3,
        "5550100",
        caller.port(),
    )
    .spawn(&env)
    .await
    .unwrap();
    watch.await_state(AgentState::OnCall, LONG).await.unwrap();
    phone.wait().await.assert_success(1);
    // Fails if the 200 lost the Record-Route or the BYE never came back.
    run.wait().await.assert_success(1);
}
