//! Ring-no-answer (RONA): the first agent offered a call does not take it —
//! her phone refuses (486), or rings until the edge gives up (offer timeout,
//! CANCEL) — so she goes NOT_READY ("RONA") and the call goes to the next
//! ready agent, who answers; media flows and the call completes.

use std::time::{Duration, Instant};

use acd_tests::cli::{find_queue, queue_counter};
use acd_tests::flows::{agent_phone, agent_phone_scenario, register, trunk};
use acd_tests::proto::AgentState;
use acd_tests::{acdctl, AcdClient, RtpObserver, TestEnv, LONG, SHORT};

const CALLER_SSRC: u32 = 0xCA11_E501;
const CAROL_SSRC: u32 = 0xCA60_1003;

/// `offer_timeout_secs` of tests/config/e2e.toml.
const OFFER_TIMEOUT: Duration = Duration::from_secs(8);

/// Alice (sales=5, 1001) has a phone playing `alice_scenario`; carol (sales=3,
/// 1003) answers and hangs up after 6 s. Alice is made ready first (longest
/// idle), so she gets the first offer of the trunk call to 5550100.
/// Returns how long alice's phone held the offer (first offer → carol's offer).
async fn rona(env: &TestEnv, alice_scenario: &str) -> Duration {
    let mut acd = env.start_run().await.unwrap();
    let api = acd.grpc_url();
    let mut client = AcdClient::connect(&api).await.unwrap();
    let caller = RtpObserver::bind("caller", env.ports.observer(0))
        .await
        .unwrap();
    let alice_rtp = RtpObserver::bind("alice", env.ports.observer(1))
        .await
        .unwrap();
    let carol_rtp = RtpObserver::bind("carol", env.ports.observer(2))
        .await
        .unwrap();

    let alice_phone =
        agent_phone_scenario(env, "alice-1001", alice_scenario, 1, alice_rtp.port()).await;
    let carol_phone = agent_phone(env, "carol-1003", 4, carol_rtp.port(), Some(6000)).await;
    register(env, 2, "1001", "secret1001", env.ports.sipp(1).sip)
        .await
        .assert_success(1);
    register(env, 5, "1003", "secret1003", env.ports.sipp(4).sip)
        .await
        .assert_success(1);

    client.login("alice", "1001").await.unwrap();
    client.login("carol", "1003").await.unwrap();
    let mut alice = client.watch("alice").await.unwrap();
    let mut carol = client.watch("carol").await.unwrap();
    client.ready("alice").await.unwrap();
    alice.await_state(AgentState::Ready, SHORT).await.unwrap();
    // Distinct idle-since timestamps: alice is the longest idle.
    tokio::time::sleep(Duration::from_millis(50)).await;
    client.ready("carol").await.unwrap();
    carol.await_state(AgentState::Ready, SHORT).await.unwrap();

    let call = trunk(env, "trunk", "trunk_call.xml", 3, "5550100", caller.port())
        .spawn(env)
        .await
        .unwrap();

    // First offer: alice.
    let first = alice.await_offer(LONG).await.unwrap();
    let offered_at = Instant::now();
    assert_eq!(first.queue_id, "sales", "{first:?}");
    assert!(
        carol.offers().is_empty(),
        "carol was offered the call before alice: {:?}",
        carol.offers()
    );

    // Alice's phone does not take it: RONA, NOT_READY.
    let st = alice.await_state(AgentState::NotReady, LONG).await.unwrap();
    assert!(
        st.reason.contains("RONA"),
        "alice's NOT_READY reason should say RONA: {st:?}"
    );
    alice_phone.wait().await.assert_success(1);

    // Then carol, with the same call.
    let second = carol.await_offer(LONG).await.unwrap();
    let held = offered_at.elapsed();
    assert_eq!(
        second.call_id, first.call_id,
        "carol was offered another call"
    );
    assert_eq!(second.queue_id, "sales", "{second:?}");
    let on_call = carol.await_state(AgentState::OnCall, LONG).await.unwrap();
    assert_eq!(on_call.call_id, first.call_id);

    // Media: caller → carol, then carol → caller (tagged, through the relay).
    let edge_caller_leg = caller.last_source().expect("edge sent RTP to the caller");
    caller
        .send_tagged(edge_caller_leg, CALLER_SSRC, 50)
        .await
        .unwrap();
    carol_rtp.await_from(CALLER_SSRC, 40, SHORT).await.unwrap();
    let edge_carol_leg = carol_rtp.last_source().unwrap();
    carol_rtp
        .send_tagged(edge_carol_leg, CAROL_SSRC, 50)
        .await
        .unwrap();
    caller.await_from(CAROL_SSRC, 40, SHORT).await.unwrap();
    assert_eq!(
        alice_rtp.stats().total,
        0,
        "alice's phone got RTP although it never answered"
    );

    // Carol hangs up; the caller gets the BYE.
    carol_phone.wait().await.assert_success(1);
    call.wait().await.assert_success(1);
    carol.await_state(AgentState::WrapUp, SHORT).await.unwrap();

    let q = client
        .await_queue("sales", "answered = 1", SHORT, |q| q.answered == 1)
        .await
        .unwrap();
    assert_eq!(q.waiting, 0, "{q:?}");
    assert_eq!(q.abandoned, 0, "{q:?}");
    let out = acdctl(&api, &["queue", "list", "--json"]).await.unwrap();
    assert!(out.success(), "acdctl queue list failed: {out:?}");
    let lines = out.json_lines().unwrap();
    let sales = find_queue(&lines, "sales").unwrap_or_else(|| panic!("no sales in {lines:?}"));
    assert_eq!(queue_counter(sales, "answered"), 1, "sales: {sales}");
    assert_eq!(queue_counter(sales, "waiting"), 0, "sales: {sales}");

    // Alice stays NOT_READY (RONA) and got exactly one offer.
    let a = client.get_agent("alice").await.unwrap();
    assert_eq!(a.state, AgentState::NotReady as i32, "alice: {a:?}");
    assert!(a.reason.contains("RONA"), "alice: {a:?}");
    alice.drain(Duration::from_millis(300)).await;
    carol.drain(Duration::from_millis(300)).await;
    assert_eq!(alice.offers().len(), 1, "alice: {:?}", alice.offers());
    assert_eq!(carol.offers().len(), 1, "carol: {:?}", carol.offers());
    acd.assert_running();
    held
}

/// Alice's phone answers the INVITE with 486 Busy Here.
#[tokio::test]
async fn rona_busy_agent_call_goes_to_next() {
    let env = TestEnv::new("rona_busy", 22);
    let held = rona(&env, "agent_reject.xml").await;
    assert!(
        held < OFFER_TIMEOUT,
        "a 486 must requeue at once, not after the offer timeout: {held:?}"
    );
}

/// Alice's phone rings (180) and is never picked up: the edge CANCELs her
/// leg after offer_timeout_secs (8 s); her SIPp sees the CANCEL.
#[tokio::test]
async fn rona_ring_no_answer_call_goes_to_next() {
    let env = TestEnv::new("rona_no_answer", 23);
    let held = rona(&env, "agent_ring_forever.xml").await;
    assert!(
        held >= OFFER_TIMEOUT - Duration::from_millis(500),
        "alice's leg was given up before the offer timeout: {held:?}"
    );
    assert!(
        held < OFFER_TIMEOUT + Duration::from_secs(4),
        "the call stayed on alice far past the offer timeout: {held:?}"
    );
}
