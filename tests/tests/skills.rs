//! Skills-based routing: a support call goes to bob only, a sales call to
//! alice only — seen on each agent's Watch stream and on each softphone.

use std::time::Duration;

use acd_tests::flows::{agent_phone, register, trunk};
use acd_tests::proto::AgentState;
use acd_tests::{AcdClient, RtpObserver, TestEnv, LONG, SHORT};

#[tokio::test]
async fn calls_go_to_the_agent_with_the_skill() {
    let env = TestEnv::new("skills", 19);
    let mut acd = env.start_run().await.unwrap();
    let api = acd.grpc_url();
    let mut client = AcdClient::connect(&api).await.unwrap();
    let caller = RtpObserver::bind("caller", env.ports.observer(0))
        .await
        .unwrap();
    let alice_rtp = RtpObserver::bind("alice", env.ports.observer(1))
        .await
        .unwrap();
    let bob_rtp = RtpObserver::bind("bob", env.ports.observer(2))
        .await
        .unwrap();

    // Each softphone takes one call and hangs up after 1.5 s.
    let alice_phone = agent_phone(&env, "alice-1001", 1, alice_rtp.port(), Some(1500)).await;
    let bob_phone = agent_phone(&env, "bob-1002", 4, bob_rtp.port(), Some(1500)).await;
    register(&env, 2, "1001", "secret1001", env.ports.sipp(1).sip)
        .await
        .assert_success(1);
    register(&env, 5, "1002", "secret1002", env.ports.sipp(4).sip)
        .await
        .assert_success(1);

    client.login("alice", "1001").await.unwrap();
    client.login("bob", "1002").await.unwrap();
    let mut alice = client.watch("alice").await.unwrap();
    let mut bob = client.watch("bob").await.unwrap();
    client.ready("alice").await.unwrap();
    client.ready("bob").await.unwrap();
    alice.await_state(AgentState::Ready, SHORT).await.unwrap();
    bob.await_state(AgentState::Ready, SHORT).await.unwrap();

    // Support call: bob.
    let support = trunk(
        &env,
        "trunk-support",
        "trunk_call.xml",
        3,
        "5550200",
        caller.port(),
    )
    .spawn(&env)
    .await
    .unwrap();
    let offer = bob.await_offer(LONG).await.unwrap();
    assert_eq!(offer.queue_id, "support", "{offer:?}");
    assert_eq!(
        offer.caller.as_ref().map(|c| c.did.as_str()),
        Some("5550200"),
        "{offer:?}"
    );
    bob_phone.wait().await.assert_success(1);
    support.wait().await.assert_success(1);
    bob.await_state(AgentState::WrapUp, SHORT).await.unwrap();

    // Sales call: alice.
    let sales = trunk(
        &env,
        "trunk-sales",
        "trunk_call.xml",
        6,
        "5550100",
        caller.port(),
    )
    .spawn(&env)
    .await
    .unwrap();
    let offer = alice.await_offer(LONG).await.unwrap();
    assert_eq!(offer.queue_id, "sales", "{offer:?}");
    assert_eq!(
        offer.caller.as_ref().map(|c| c.did.as_str()),
        Some("5550100"),
        "{offer:?}"
    );
    alice_phone.wait().await.assert_success(1);
    sales.wait().await.assert_success(1);
    alice.await_state(AgentState::WrapUp, SHORT).await.unwrap();

    // Neither agent was offered the other's call.
    alice.drain(Duration::from_millis(300)).await;
    bob.drain(Duration::from_millis(300)).await;
    assert_eq!(
        alice.offers().len(),
        1,
        "alice's offers: {:?}",
        alice.offers()
    );
    assert_eq!(bob.offers().len(), 1, "bob's offers: {:?}", bob.offers());
    assert!(alice.offers().iter().all(|o| o.queue_id == "sales"));
    assert!(bob.offers().iter().all(|o| o.queue_id == "support"));
    acd.assert_running();
}
