//! The caller hangs up (CANCEL) while the agent's phone is ringing: the
//! caller gets 487, the agent's leg is CANCELled at once, the agent goes back
//! to READY (the withdrawn offer is not a ring-no-answer) and the call counts
//! as abandoned.

use std::time::{Duration, Instant};

use acd_tests::cli::{find_queue, queue_counter};
use acd_tests::flows::{agent_phone_scenario, register, trunk};
use acd_tests::proto::agent_event::Kind;
use acd_tests::proto::AgentState;
use acd_tests::{acdctl, AcdClient, RtpObserver, TestEnv, LONG, SHORT};

/// `offer_timeout_secs` of tests/config/e2e.toml.
const OFFER_TIMEOUT: Duration = Duration::from_secs(8);

#[tokio::test]
async fn caller_cancels_while_agent_rings() {
    let env = TestEnv::new("ringing_abandon", 24);
    let mut acd = env.start_run().await.unwrap();
    let api = acd.grpc_url();
    let mut client = AcdClient::connect(&api).await.unwrap();
    let caller = RtpObserver::bind("caller", env.ports.observer(0))
        .await
        .unwrap();
    let bob_rtp = RtpObserver::bind("bob", env.ports.observer(1))
        .await
        .unwrap();

    // Bob's phone rings (180) until CANCELled.
    let bob_phone = agent_phone_scenario(
        &env,
        "bob-1002",
        "agent_ring_forever.xml",
        1,
        bob_rtp.port(),
    )
    .await;
    register(&env, 2, "1002", "secret1002", env.ports.sipp(1).sip)
        .await
        .assert_success(1);
    client.login("bob", "1002").await.unwrap();
    let mut bob = client.watch("bob").await.unwrap();
    client.ready("bob").await.unwrap();
    bob.await_state(AgentState::Ready, SHORT).await.unwrap();

    // Support DID: 183 + welcome prompt (~2.5 s), queue, bob rings; the
    // caller CANCELs 4.5 s after the 183, i.e. ~2 s into the ringing.
    let call = trunk(
        &env,
        "trunk-cancel",
        "trunk_cancel.xml",
        3,
        "5550200",
        caller.port(),
    )
    .pause_ms(4500)
    .spawn(&env)
    .await
    .unwrap();
    let offer = bob.await_offer(LONG).await.unwrap();
    let offered_at = Instant::now();
    assert_eq!(offer.queue_id, "support", "{offer:?}");

    // Caller: 200 for the CANCEL, 487 for the INVITE, ACK.
    call.wait().await.assert_success(1);
    // Bob's phone: INVITE, 180, CANCEL → 200 + 487, ACK — well before the
    // offer timeout would have cancelled it.
    bob_phone.wait().await.assert_success(1);
    let cancelled_after = offered_at.elapsed();
    assert!(
        cancelled_after < OFFER_TIMEOUT - Duration::from_secs(1),
        "bob's leg was not CANCELled with the caller's CANCEL (took {cancelled_after:?}, \
         offer timeout {OFFER_TIMEOUT:?})"
    );

    // Bob back to READY, never NOT_READY.
    bob.await_state(AgentState::Ready, SHORT).await.unwrap();
    bob.drain(Duration::from_millis(500)).await;
    // States after the offer (the watch starts with the login's NOT_READY).
    let states: Vec<AgentState> = bob
        .history
        .iter()
        .skip_while(|e| !matches!(e.kind, Some(Kind::Offer(_))))
        .filter_map(|e| match &e.kind {
            Some(Kind::Status(s)) => AgentState::try_from(s.state).ok(),
            _ => None,
        })
        .collect();
    assert!(
        !states.contains(&AgentState::NotReady),
        "bob went NOT_READY after a caller abandon: {states:?}"
    );
    assert_eq!(
        states.last(),
        Some(&AgentState::Ready),
        "bob's states after the offer: {states:?}"
    );
    let b = client.get_agent("bob").await.unwrap();
    assert_eq!(b.state, AgentState::Ready as i32, "bob: {b:?}");
    assert_eq!(bob.offers().len(), 1, "bob: {:?}", bob.offers());

    client
        .await_queue("support", "abandoned = 1, waiting = 0", LONG, |q| {
            q.abandoned == 1 && q.waiting == 0
        })
        .await
        .unwrap();
    let out = acdctl(&api, &["queue", "list", "--json"]).await.unwrap();
    assert!(out.success(), "acdctl queue list failed: {out:?}");
    let lines = out.json_lines().unwrap();
    let q = find_queue(&lines, "support").unwrap_or_else(|| panic!("no support in {lines:?}"));
    assert_eq!(queue_counter(q, "abandoned"), 1, "support: {q}");
    assert_eq!(queue_counter(q, "waiting"), 0, "support: {q}");
    assert_eq!(queue_counter(q, "answered"), 0, "support: {q}");
    assert_eq!(
        bob_rtp.stats().total,
        0,
        "bob's phone got RTP without answering"
    );
    acd.assert_running();
}
