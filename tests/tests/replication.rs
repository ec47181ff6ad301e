//! A hot standby follows the primary: after a call, both distributors hold
//! the same sequence and the same state digest.

use std::time::Duration;

use acd_tests::flows::{agent_phone, register, trunk};
use acd_tests::metrics::scrape_counter;
use acd_tests::proto::AgentState;
use acd_tests::{AcdClient, RtpObserver, TestEnv, LONG};
use tokio::time::Instant;

#[tokio::test]
async fn standby_converges_with_primary() {
    let env = TestEnv::new("replication", 21);
    let mut primary = env
        .start_distributor("distributor-primary", 0, None)
        .await
        .unwrap();
    let mut standby = env
        .start_distributor("distributor-standby", 1, Some(&primary.grpc_url()))
        .await
        .unwrap();
    let ivr = env.start_ivr("ivr", 2).await.unwrap();
    let mut edge = env
        .start_edge("edge", 3, &primary.grpc_url(), &[ivr.grpc_url()])
        .await
        .unwrap();

    let mut p = AcdClient::connect(&primary.grpc_url()).await.unwrap();
    let mut s = AcdClient::connect(&standby.grpc_url()).await.unwrap();

    // One call through: registered softphone, agent ready, trunk call,
    // the agent hangs up after 1.5 s.
    let caller = RtpObserver::bind("caller", env.ports.observer(0))
        .await
        .unwrap();
    let phone = agent_phone(&env, "agent-1001", 1, env.ports.observer(1), Some(1500)).await;
    register(&env, 2, "1001", "secret1001", env.ports.sipp(1).sip)
        .await
        .assert_success(1);
    p.login("alice", "1001").await.unwrap();
    let mut watch = p.watch("alice").await.unwrap();
    p.ready("alice").await.unwrap();
    let call = trunk(&env, "trunk", "trunk_call.xml", 3, "5550100", caller.port())
        .spawn(&env)
        .await
        .unwrap();
    watch.await_offer(LONG).await.unwrap();
    phone.wait().await.assert_success(1);
    call.wait().await.assert_success(1);
    watch.await_state(AgentState::Ready, LONG).await.unwrap();

    // Await equality of (last_seq, state_digest) on both sides.
    let deadline = Instant::now() + LONG;
    loop {
        let ps = p.status().await.unwrap();
        let ss = s.status().await.unwrap();
        let pd = ps
            .distributor
            .clone()
            .expect("primary has distributor status");
        let sd = ss
            .distributor
            .clone()
            .expect("standby has distributor status");
        assert_eq!(pd.role, "primary", "{ps:?}");
        assert_eq!(sd.role, "standby", "{ss:?}");
        if pd.last_seq > 0 && pd.last_seq == sd.last_seq && pd.state_digest == sd.state_digest {
            assert!(
                pd.last_seq >= 4,
                "a login, ready, enqueue and answer should be several events: {pd:?}"
            );
            break;
        }
        if Instant::now() >= deadline {
            panic!("standby did not converge within {LONG:?}: primary {pd:?}, standby {sd:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Replication stayed synchronous: the standby acknowledged every event
    // in time, so no effect was released without it.
    let timeouts = scrape_counter(
        &primary.metrics_addr(),
        "acd_replication_sync_timeouts_total",
    )
    .await
    .unwrap();
    assert_eq!(timeouts, 0.0, "the standby missed acknowledgements");
    let followers = scrape_counter(&primary.metrics_addr(), "acd_replication_followers")
        .await
        .unwrap();
    assert_eq!(followers, 1.0, "the primary counts one attached standby");
    primary.assert_running();
    standby.assert_running();
    edge.assert_running();
}
