//! A distributor restart without a standby loses its state; a caller who was
//! waiting in the queue must not be left on hold forever. The edge re-attaches,
//! announces its live calls, is told the distributor does not know the call,
//! enqueues it again, and the call reaches an agent.

use acd_tests::flows::{agent_phone, register, trunk};
use acd_tests::metrics::scrape_counter;
use acd_tests::proto::AgentState;
use acd_tests::{AcdClient, RtpObserver, TestEnv, LONG};

#[tokio::test]
async fn queued_call_survives_a_distributor_restart() {
    let env = TestEnv::new("distributor_restart", 42);
    let mut dist = env.start_distributor("distributor", 0, None).await.unwrap();
    let ivr = env.start_ivr("ivr", 1).await.unwrap();
    let mut edge = env
        .start_edge("edge", 2, &dist.grpc_url(), &[ivr.grpc_url()])
        .await
        .unwrap();

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

    // Nobody is ready: the call waits in `sales`.
    let run = trunk(&env, "trunk", "trunk_call.xml", 3, "5550100", caller.port())
        .spawn(&env)
        .await
        .unwrap();
    let mut client = AcdClient::connect(&dist.grpc_url()).await.unwrap();
    client
        .await_queue("sales", "one call waiting", LONG, |q| q.waiting == 1)
        .await
        .unwrap();

    // The distributor dies and comes back empty on the same address.
    dist.kill().await;
    let dist = env
        .start_distributor("distributor-restarted", 0, None)
        .await
        .unwrap();
    let mut client = AcdClient::connect(&dist.grpc_url()).await.unwrap();
    let q = client
        .await_queue("sales", "the call enqueued again", LONG, |q| q.waiting == 1)
        .await
        .unwrap();
    assert_eq!(
        q.offered, 1,
        "the restarted distributor saw the call once: {q:?}"
    );

    client.login("alice", "1001").await.unwrap();
    let mut watch = client.watch("alice").await.unwrap();
    client.ready("alice").await.unwrap();
    let offer = watch.await_offer(LONG).await.unwrap();
    assert_eq!(offer.queue_id, "sales");
    watch.await_state(AgentState::OnCall, LONG).await.unwrap();
    phone.wait().await.assert_success(1);
    run.wait().await.assert_success(1);

    let again = scrape_counter(&edge.metrics_addr(), "acd_edge_reenqueued_calls_total")
        .await
        .unwrap();
    assert_eq!(again, 1.0, "the edge enqueued the call again exactly once");
    edge.assert_running();
}
