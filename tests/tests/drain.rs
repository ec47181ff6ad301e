//! Drain (AdminService.Drain) during a call: new INVITEs get 503 with
//! Retry-After, OPTIONS gets 503, and the call already up carries on to its
//! normal end (media keeps flowing, BYE, wrap-up).

use std::net::SocketAddr;

use acd_tests::flows::{agent_phone, register, trunk};
use acd_tests::metrics::{counter_with, scrape};
use acd_tests::proto::agent_event::Kind;
use acd_tests::proto::{AgentState, DrainRequest};
use acd_tests::sip::{header, options, request, status_code};
use acd_tests::{AcdClient, RtpObserver, TestEnv, LONG, SHORT};
use tokio::net::UdpSocket;

const CALLER_SSRC: u32 = 0xCA11_D001;
const AGENT_SSRC: u32 = 0xA6E7_D001;

#[tokio::test]
async fn drain_refuses_new_calls_and_keeps_the_current_one() {
    let env = TestEnv::new("drain", 25);
    let mut acd = env.start_run().await.unwrap();
    let api = acd.grpc_url();
    let edge: SocketAddr = env.sip_addr().parse().unwrap();
    let mut client = AcdClient::connect(&api).await.unwrap();
    let caller = RtpObserver::bind("caller", env.ports.observer(0))
        .await
        .unwrap();
    let agent_rtp = RtpObserver::bind("agent", env.ports.observer(1))
        .await
        .unwrap();

    // Alice answers and talks 6 s, then hangs up.
    let phone = agent_phone(&env, "agent-1001", 1, agent_rtp.port(), Some(6000)).await;
    register(&env, 2, "1001", "secret1001", env.ports.sipp(1).sip)
        .await
        .assert_success(1);
    client.login("alice", "1001").await.unwrap();
    let mut watch = client.watch("alice").await.unwrap();
    client.ready("alice").await.unwrap();
    watch.await_state(AgentState::Ready, SHORT).await.unwrap();

    let call = trunk(&env, "trunk", "trunk_call.xml", 3, "5550100", caller.port())
        .spawn(&env)
        .await
        .unwrap();
    let offer = watch.await_offer(LONG).await.unwrap();
    watch.await_state(AgentState::OnCall, LONG).await.unwrap();

    // Drain while the call is up.
    let resp = client
        .admin
        .drain(DrainRequest {})
        .await
        .expect("AdminService.Drain")
        .into_inner();
    assert_eq!(resp.active_calls, 1, "Drain: {resp:?}");
    let st = client.status().await.unwrap();
    assert!(st.draining, "Status after Drain: {st:?}");

    // A new INVITE: 503 with Retry-After (checked by the scenario).
    trunk(
        &env,
        "trunk-503",
        "trunk_503.xml",
        4,
        "5550100",
        env.ports.observer(2),
    )
    .spawn(&env)
    .await
    .unwrap()
    .wait()
    .await
    .assert_success(1);

    // OPTIONS: 503.
    let probe = UdpSocket::bind(("127.0.0.1", env.ports.sipp(5).sip))
        .await
        .unwrap();
    let local = probe.local_addr().unwrap();
    let req = options(
        edge,
        local,
        "z9hG4bK-e2e-drain",
        Some("e2e-drain-1@127.0.0.1"),
    );
    let r = request(&probe, edge, &req, "z9hG4bK-e2e-drain", SHORT)
        .await
        .unwrap();
    assert_eq!(status_code(&r), Some(503), "OPTIONS while draining:\n{r}");
    assert_eq!(header(&r, "Call-ID"), Some("e2e-drain-1@127.0.0.1"), "{r}");

    // The established call still carries media both ways.
    let edge_caller_leg = caller.last_source().expect("edge sent RTP to the caller");
    caller
        .send_tagged(edge_caller_leg, CALLER_SSRC, 50)
        .await
        .unwrap();
    agent_rtp.await_from(CALLER_SSRC, 40, SHORT).await.unwrap();
    let edge_agent_leg = agent_rtp.last_source().unwrap();
    agent_rtp
        .send_tagged(edge_agent_leg, AGENT_SSRC, 50)
        .await
        .unwrap();
    caller.await_from(AGENT_SSRC, 40, SHORT).await.unwrap();

    let q = client
        .await_queue("sales", "answered = 1", SHORT, |q| q.answered == 1)
        .await
        .unwrap();
    assert_eq!(q.waiting, 0, "the refused INVITE was queued: {q:?}");
    let m = scrape(&acd.metrics_addr()).await.unwrap();
    let refused = counter_with(&m, "acd_sip_error_responses_total", &[("status", "503")]);
    assert_eq!(
        refused,
        Some(2.0),
        "503s counted (INVITE + OPTIONS) on /metrics"
    );

    // ... and ends normally: the agent's BYE reaches the caller.
    phone.wait().await.assert_success(1);
    call.wait().await.assert_success(1);
    watch.await_state(AgentState::WrapUp, SHORT).await.unwrap();
    assert!(
        watch
            .history
            .iter()
            .any(|e| matches!(&e.kind, Some(Kind::Finished(f)) if f.call_id == offer.call_id)),
        "no CallFinished for {} on alice's watch: {:?}",
        offer.call_id,
        watch.history
    );
    assert_eq!(watch.offers().len(), 1, "offers: {:?}", watch.offers());
    // The last call ended: the drained process exits by itself, 0.
    let status = acd.wait_exit(SHORT).await.unwrap();
    assert!(status.success(), "drained process exit: {status}");
}

/// SIGTERM drains (instead of stopping at once): a new INVITE gets 503, the
/// bridged call carries on to its BYE, and the process exits 0 right after.
#[tokio::test]
async fn sigterm_drains_and_exits_when_the_last_call_ends() {
    let env = TestEnv::new("drain_sigterm", 71);
    let mut acd = env.start_run().await.unwrap();
    let mut client = AcdClient::connect(&acd.grpc_url()).await.unwrap();
    let caller = RtpObserver::bind("caller", env.ports.observer(0))
        .await
        .unwrap();
    let agent_rtp = RtpObserver::bind("agent", env.ports.observer(1))
        .await
        .unwrap();
    let phone = agent_phone(&env, "agent-1001", 1, agent_rtp.port(), Some(5000)).await;
    register(&env, 2, "1001", "secret1001", env.ports.sipp(1).sip)
        .await
        .assert_success(1);
    client.login("alice", "1001").await.unwrap();
    let mut watch = client.watch("alice").await.unwrap();
    client.ready("alice").await.unwrap();
    watch.await_state(AgentState::Ready, SHORT).await.unwrap();
    let call = trunk(&env, "trunk", "trunk_call.xml", 3, "5550100", caller.port())
        .spawn(&env)
        .await
        .unwrap();
    watch.await_state(AgentState::OnCall, LONG).await.unwrap();

    acd.terminate();
    client
        .await_status("draining", SHORT, |s| s.draining)
        .await
        .unwrap();
    trunk(
        &env,
        "trunk-503",
        "trunk_503.xml",
        4,
        "5550100",
        env.ports.observer(2),
    )
    .spawn(&env)
    .await
    .unwrap()
    .wait()
    .await
    .assert_success(1);
    acd.assert_running();

    phone.wait().await.assert_success(1);
    call.wait().await.assert_success(1);
    let ended = std::time::Instant::now();
    let status = acd.wait_exit(SHORT).await.unwrap();
    eprintln!(
        "[e2e] exited {:?} after the last call ended",
        ended.elapsed()
    );
    assert!(status.success(), "exit after SIGTERM: {status}");
    assert!(
        ended.elapsed() < std::time::Duration::from_secs(3),
        "exit took {:?} after the last call",
        ended.elapsed()
    );
}
