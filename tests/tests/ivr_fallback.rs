//! No IVR runner answers: the edge follows the flow's fallback (enqueue to
//! the fallback queue) so the caller still hears music and reaches an agent.

use acd_tests::flows::{agent_phone, register, trunk};
use acd_tests::metrics::scrape_counter;
use acd_tests::proto::AgentState;
use acd_tests::{AcdClient, RtpObserver, TestEnv, LONG, SHORT};

#[tokio::test]
async fn call_reaches_agent_when_no_ivr_runner_answers() {
    let env = TestEnv::new("ivr_fallback", 40);
    let dist = env.start_distributor("distributor", 0, None).await.unwrap();
    // Nothing listens on this port: every Step fails.
    let dead_ivr = format!("http://127.0.0.1:{}", env.ports.grpc(4));
    let edge = env
        .start_edge("edge", 1, &dist.grpc_url(), &[dead_ivr])
        .await
        .unwrap();

    let caller = RtpObserver::bind("caller", env.ports.observer(0))
        .await
        .unwrap();
    let agent_rtp = RtpObserver::bind("agent", env.ports.observer(1))
        .await
        .unwrap();
    let phone = agent_phone(&env, "agent-1001", 1, agent_rtp.port(), Some(3000)).await;
    register(&env, 2, "1001", "secret1001", env.ports.sipp(1).sip)
        .await
        .assert_success(1);

    let mut client = AcdClient::connect(&dist.grpc_url()).await.unwrap();
    client.login("alice", "1001").await.unwrap();
    let mut watch = client.watch("alice").await.unwrap();
    client.not_ready("alice", "setup").await.ok();

    let trunk_run = trunk(&env, "trunk", "trunk_call.xml", 3, "5550100", caller.port())
        .spawn(&env)
        .await
        .unwrap();
    // Music on hold from the fallback queue, not silence.
    caller.await_g711(50, LONG).await.unwrap();
    client.ready("alice").await.unwrap();

    let offer = watch.await_offer(LONG).await.unwrap();
    assert_eq!(
        offer.queue_id, "sales",
        "fallback queue of flow `sales`: {offer:?}"
    );
    watch.await_state(AgentState::OnCall, LONG).await.unwrap();
    phone.wait().await.assert_success(1);
    trunk_run.wait().await.assert_success(1);
    watch.await_state(AgentState::WrapUp, SHORT).await.unwrap();

    let fallbacks = scrape_counter(&edge.metrics_addr(), "acd_edge_ivr_fallbacks_total")
        .await
        .unwrap();
    assert!(
        fallbacks >= 1.0,
        "edge must count the IVR fallback, got {fallbacks}"
    );
}
