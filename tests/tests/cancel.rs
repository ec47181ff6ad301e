//! Callers who give up while queued are counted as abandoned.

use std::time::Duration;

use acd_tests::cli::{find_queue, queue_counter};
use acd_tests::flows::{agent_phone, register, trunk};
use acd_tests::proto::AgentState;
use acd_tests::{acdctl, AcdClient, RtpObserver, TestEnv, LONG};

/// Alice registered and logged in but NOT ready: calls wait in queue.
async fn not_ready_agent(env: &TestEnv, client: &mut AcdClient) {
    register(env, 2, "1001", "secret1001", env.ports.sipp(1).sip)
        .await
        .assert_success(1);
    let st = client.login("alice", "1001").await.unwrap();
    if st.state != AgentState::NotReady as i32 {
        client.not_ready("alice", "e2e").await.unwrap();
    }
}

async fn assert_abandoned(api: &str, client: &mut AcdClient, queue: &str) {
    client
        .await_queue(queue, "abandoned = 1, waiting = 0", LONG, |q| {
            q.abandoned == 1 && q.waiting == 0
        })
        .await
        .unwrap();
    let out = acdctl(api, &["queue", "list", "--json"]).await.unwrap();
    assert!(out.success(), "acdctl queue list failed: {out:?}");
    let lines = out.json_lines().unwrap();
    let q = find_queue(&lines, queue).unwrap_or_else(|| panic!("no {queue} queue in {lines:?}"));
    assert_eq!(queue_counter(q, "abandoned"), 1, "{queue}: {q}");
    assert_eq!(queue_counter(q, "waiting"), 0, "{queue}: {q}");
    assert_eq!(queue_counter(q, "answered"), 0, "{queue}: {q}");
}

#[tokio::test]
async fn cancel_during_early_media_is_abandoned() {
    let env = TestEnv::new("cancel_during_early_media", 14);
    let mut acd = env.start_run().await.unwrap();
    let api = acd.grpc_url();
    let mut client = AcdClient::connect(&api).await.unwrap();
    let caller = RtpObserver::bind("caller", env.ports.observer(0))
        .await
        .unwrap();
    // A softphone that must never ring (-m 1, it would answer).
    let phone = agent_phone(&env, "agent-1001", 1, env.ports.observer(1), None).await;
    not_ready_agent(&env, &mut client).await;

    // The support DID answers early: 183, prompt and MOH, CANCEL after 6 s.
    let call = trunk(
        &env,
        "trunk-cancel",
        "trunk_cancel.xml",
        3,
        "5550200",
        caller.port(),
    )
    .pause_ms(6000)
    .spawn(&env)
    .await
    .unwrap();
    caller.await_g711(50, LONG).await.unwrap();
    client
        .await_queue("support", "waiting = 1", LONG, |q| q.waiting == 1)
        .await
        .unwrap();
    call.wait().await.assert_success(1);

    assert_abandoned(&api, &mut client, "support").await;
    let out = phone.stop_and_wait().await;
    assert_eq!(
        out.successful,
        Some(0),
        "the not-ready agent's phone was called"
    );
    acd.assert_running();
}

#[tokio::test]
async fn bye_while_queued_is_abandoned() {
    let env = TestEnv::new("bye_while_queued", 15);
    let mut acd = env.start_run().await.unwrap();
    let api = acd.grpc_url();
    let mut client = AcdClient::connect(&api).await.unwrap();
    let caller = RtpObserver::bind("caller", env.ports.observer(0))
        .await
        .unwrap();
    not_ready_agent(&env, &mut client).await;

    // The sales DID answers at once; the caller hangs up after 6 s in queue.
    let call = trunk(
        &env,
        "trunk-hangup",
        "trunk_call_hangup.xml",
        3,
        "5550100",
        caller.port(),
    )
    .pause_ms(6000)
    .spawn(&env)
    .await
    .unwrap();
    caller.await_g711(50, LONG).await.unwrap();
    client
        .await_queue("sales", "waiting = 1", LONG, |q| q.waiting == 1)
        .await
        .unwrap();
    call.wait().await.assert_success(1);

    assert_abandoned(&api, &mut client, "sales").await;
    // Media stops with the call: nothing more arrives once the BYE is answered.
    let before = caller.stats().total;
    let after = caller
        .wait_for("silence", Duration::from_secs(1), |s| s.total > before + 10)
        .await;
    assert!(after.is_err(), "RTP still flowing after BYE: {after:?}");
    acd.assert_running();
}
