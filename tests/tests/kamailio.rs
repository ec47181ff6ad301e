//! Two edges behind Kamailio's dispatcher (`deploy/kamailio/kamailio.cfg`,
//! the file operators adapt): a distributor, an IVR runner, edges A and B,
//! Kamailio in front, SIPp trunk calls to Kamailio and an agent phone
//! registered at both edges (until registrations are replicated).
//!
//! (a) calls are spread over both edges; (b) `acdctl drain` of edge A while
//! SIPp places calls at a steady rate: Kamailio sees A's 503 (OPTIONS probe
//! or INVITE) and sends new calls to B, calls already on A finish, and no
//! caller sees a failure.
//!
//! Ports: block 78 holds the distributor (slot 0), the IVR (slot 1), edge A
//! (SIP, slot 2, RTP), Kamailio (on the block's TLS port) and every SIPp;
//! block 79 holds edge B (SIP, slot 2, RTP).

use std::net::SocketAddr;
use std::time::Duration;

use acd_tests::flows::SIPP_LIMIT;
use acd_tests::kamailio::Kamailio;
use acd_tests::metrics::{counter_with, scrape};
use acd_tests::proto::AgentState;
use acd_tests::{
    acdctl, AcdClient, AcdProcess, PortBlock, RtpObserver, SippCmd, TestEnv, LONG, SHORT,
};
use tokio::time::Instant;

const DID: &str = "5550100";
/// How long the call pinning edge A lasts: longer than cases (b) and (c).
const PIN_MS: u64 = 45_000;

/// Calls edge `edge` accepted so far (`acd_calls_total{outcome="accepted"}`).
async fn accepted(edge: &AcdProcess) -> u64 {
    let m = scrape(&edge.metrics_addr()).await.unwrap();
    counter_with(&m, "acd_calls_total", &[("outcome", "accepted")]).unwrap_or(0.0) as u64
}

/// REGISTERs 1001 at `edge` from SIPp slot `slot`, Contact at the phone.
async fn register_at(env: &TestEnv, slot: u16, edge: SocketAddr, phone_port: u16) {
    SippCmd::new(
        &format!("register-{slot}"),
        "register.xml",
        env.ports.sipp(slot),
    )
    .remote(edge.to_string())
    .service("1001")
    .auth("1001", "secret1001")
    .key("contact_port", phone_port)
    .limit(Duration::from_secs(20))
    .spawn(env)
    .await
    .unwrap()
    .wait()
    .await
    .assert_success(1);
}

/// Trunk calls to Kamailio: `calls` at `rate` per second, each hung up by
/// the caller after `talk_ms` (queued or talking to the agent); their media
/// goes to the callers' observer.
fn trunk_load(
    env: &TestEnv,
    name: &str,
    slot: u16,
    proxy: SocketAddr,
    rate: u32,
    calls: u32,
    talk_ms: u64,
) -> SippCmd {
    SippCmd::new(name, "trunk_call_hangup.xml", env.ports.sipp(slot))
        .remote(proxy.to_string())
        .service(DID)
        .key("caller", "0611223344")
        .key("rtpport", env.ports.observer(0))
        .pause_ms(talk_ms)
        .rate(rate, calls)
        .limit(SIPP_LIMIT)
}

/// Polls `cond` on edge `edge`'s accepted count until it holds.
async fn await_accepted(edge: &AcdProcess, what: &str, cond: impl Fn(u64) -> bool) -> u64 {
    let deadline = Instant::now() + LONG;
    loop {
        let n = accepted(edge).await;
        if cond(n) {
            return n;
        }
        assert!(
            Instant::now() < deadline,
            "{}: {what} not reached within {LONG:?} (accepted {n})",
            edge.name
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_edges_behind_kamailio_spread_calls_and_drain_without_a_failed_call() {
    let env = TestEnv::new("kamailio", 78);
    let b_ports = PortBlock::for_test(79);
    let mut distributor = env.start_distributor("distributor", 0, None).await.unwrap();
    let ivr = env.start_ivr("ivr", 1).await.unwrap();
    let ivrs = [ivr.grpc_url()];
    let mut edge_a = env
        .start_edge_in(
            "edge-a",
            &env.ports,
            2,
            &distributor.grpc_url(),
            &ivrs,
            &["--edge-id".into(), "edge-a".into()],
        )
        .await
        .unwrap();
    let mut edge_b = env
        .start_edge_in(
            "edge-b",
            &b_ports,
            2,
            &distributor.grpc_url(),
            &ivrs,
            &["--edge-id".into(), "edge-b".into()],
        )
        .await
        .unwrap();
    let a_sip = SocketAddr::from(([127, 0, 0, 1], env.ports.sip()));
    let b_sip = SocketAddr::from(([127, 0, 0, 1], b_ports.sip()));
    let mut kamailio = Kamailio::start(&env, "kamailio", env.ports.sip_tls(), &[a_sip, b_sip], &[])
        .await
        .unwrap();

    // Alice's phone answers every offer, from either edge.
    let _caller_rtp = RtpObserver::bind("callers", env.ports.observer(0))
        .await
        .unwrap();
    let agent_rtp = RtpObserver::bind("agent", env.ports.observer(1))
        .await
        .unwrap();
    let mut phone = SippCmd::new("agent-1001", "agent_answer.xml", env.ports.sipp(1))
        .key("rtpport", agent_rtp.port())
        .limit(SIPP_LIMIT * 2);
    phone.calls = 1000;
    let phone = phone.spawn(&env).await.unwrap();
    register_at(&env, 2, a_sip, env.ports.sipp(1).sip).await;
    register_at(&env, 4, b_sip, env.ports.sipp(1).sip).await;
    let mut api = AcdClient::connect(&distributor.grpc_url()).await.unwrap();
    api.login("alice", "1001").await.unwrap();
    let mut watch = api.watch("alice").await.unwrap();
    api.ready("alice").await.unwrap();
    watch.await_state(AgentState::Ready, SHORT).await.unwrap();

    // (a) Round robin over both edges.
    let calls = 12;
    trunk_load(&env, "spread", 3, kamailio.addr, 4, calls, 4000)
        .spawn(&env)
        .await
        .unwrap()
        .wait()
        .await
        .assert_success(u64::from(calls));
    let (a1, b1) = (accepted(&edge_a).await, accepted(&edge_b).await);
    eprintln!("[e2e] spread: edge A accepted {a1}, edge B {b1}");
    assert_eq!(
        a1 + b1,
        u64::from(calls),
        "every call reached exactly one edge"
    );
    assert!(a1 >= 3 && b1 >= 3, "round robin: A {a1}, B {b1}");
    watch
        .await_offer(LONG)
        .await
        .expect("alice was offered a call through the proxy");

    // A draining edge exits at its last call: a caller waiting in the
    // `support` queue (early media; no agent for it) directly on A keeps A
    // up until the end of the test, then cancels, and A must exit by itself.
    let pin = SippCmd::new("pin", "trunk_cancel.xml", env.ports.sipp(7))
        .remote(a_sip.to_string())
        .service("5550200")
        .key("caller", "0611999999")
        .key("rtpport", env.ports.observer(2))
        .pause_ms(PIN_MS)
        .rate(1, 1)
        .limit(SIPP_LIMIT)
        .spawn(&env)
        .await
        .unwrap();
    let pinned_at = Instant::now();
    await_accepted(&edge_a, "the pinning call", |n| n > a1).await;
    let a1 = a1 + 1;

    // (b) Drain A while calls arrive at 5/s for 8 s, each 4 s long.
    let calls = 40;
    let load = trunk_load(&env, "drain", 5, kamailio.addr, 5, calls, 4000)
        .spawn(&env)
        .await
        .unwrap();
    // A few calls up on A first, so the drain has calls to let finish.
    await_accepted(&edge_a, "3 new calls", |n| n >= a1 + 3).await;
    let drain = acdctl(&edge_a.grpc_url(), &["drain"]).await.unwrap();
    assert!(drain.success(), "acdctl drain: {drain:?}");
    let a_at_drain = accepted(&edge_a).await;
    let b_at_drain = accepted(&edge_b).await;
    let outcome = load.wait().await;
    outcome.assert_success(u64::from(calls));

    let (a2, b2) = (accepted(&edge_a).await, accepted(&edge_b).await);
    eprintln!("[e2e] drain: edge A accepted {a_at_drain} at the drain, {a2} at the end; edge B {b_at_drain} -> {b2}");
    // An INVITE already read by A's loop before the drain command may still
    // be accepted: at most one.
    assert!(
        a2 <= a_at_drain + 1,
        "A took new calls while draining: {a_at_drain} -> {a2}"
    );
    assert_eq!(
        a2 + b2 - a1 - b1,
        u64::from(calls),
        "every call reached exactly one edge"
    );
    assert!(
        b2 - b_at_drain >= 10,
        "B took the calls after the drain: {b_at_drain} -> {b2}"
    );
    // Kamailio's probes reached A and A answered them 503 (the probes are
    // what moved the traffic; an INVITE that reached A first was refused
    // and retried on B, which SIPp's zero failures show).
    let m = scrape(&edge_a.metrics_addr()).await.unwrap();
    let options = counter_with(
        &m,
        "acd_sip_requests_total",
        &[("method", "OPTIONS"), ("direction", "in")],
    )
    .unwrap_or(0.0);
    let refused_503 =
        counter_with(&m, "acd_sip_error_responses_total", &[("status", "503")]).unwrap_or(0.0);
    let shed = counter_with(&m, "acd_calls_shed_total", &[("reason", "draining")]).unwrap_or(0.0);
    eprintln!("[e2e] edge A: {options} OPTIONS, {refused_503} answered 503, {shed} INVITEs refused while draining");
    assert!(options >= 2.0, "Kamailio probed A with OPTIONS: {options}");
    assert!(
        refused_503 - shed >= 1.0,
        "A answered a probe 503 while draining: 503s {refused_503}, INVITEs {shed}"
    );

    // The calls on A ended normally: only the pinning call left, A still
    // draining, B ready.
    let servers = format!("{},{}", edge_a.grpc_url(), edge_b.grpc_url());
    let deadline = Instant::now() + SHORT;
    loop {
        let status = acdctl(&edge_a.grpc_url(), &["status", "--server", &servers])
            .await
            .unwrap();
        assert_eq!(
            status.code,
            Some(1),
            "a draining edge is not ready: {status:?}"
        );
        let row = |url: &str| {
            status
                .stdout
                .lines()
                .find(|l| l.starts_with(url))
                .unwrap_or_default()
                .to_string()
        };
        let (a, b) = (row(&edge_a.grpc_url()), row(&edge_b.grpc_url()));
        assert!(
            a.contains("draining") && b.contains(" yes "),
            "{}",
            status.stdout
        );
        if a.contains("calls=1 ") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "calls left on A: {}",
            status.stdout
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // (c) The INVITE path alone: a second Kamailio that does not probe
    // (PING_INTERVAL one hour) still believes A is up, sends it INVITEs,
    // gets 503 and retries each on B (failure_route, ds_next_domain).
    let b_sip_tls = b_ports.sip_tls();
    let blind = Kamailio::start(
        &env,
        "kamailio-noprobe",
        b_sip_tls,
        &[a_sip, b_sip],
        &["PING_INTERVAL=3600"],
    )
    .await
    .unwrap();
    let shed_before = shed;
    let calls = 6;
    trunk_load(&env, "retry", 6, blind.addr, 5, calls, 500)
        .spawn(&env)
        .await
        .unwrap()
        .wait()
        .await
        .assert_success(u64::from(calls));
    let m = scrape(&edge_a.metrics_addr()).await.unwrap();
    let shed = counter_with(&m, "acd_calls_shed_total", &[("reason", "draining")]).unwrap_or(0.0);
    let retried = blind.log_lines("edge failed").len();
    eprintln!("[e2e] no-probe kamailio: {retried} INVITEs retried after a 503 from A ({shed_before} -> {shed} refused by A)");
    assert!(retried >= 1 && shed - shed_before >= 1.0, "no INVITE was refused by A and retried: {retried} retries, A refused {shed_before} -> {shed}");
    assert_eq!(
        accepted(&edge_a).await,
        a2,
        "A accepted a call while draining"
    );

    // The pinning call ends: A, drained, exits 0 on its own.
    assert!(
        pinned_at.elapsed() < Duration::from_millis(PIN_MS),
        "the test outlived the pinning call: raise PIN_MS"
    );
    pin.wait().await.assert_success(1);
    let exit = edge_a.wait_exit(SHORT).await.unwrap();
    assert!(exit.success(), "drained edge A exited with {exit}");

    let answered = phone.stop_and_wait().await;
    assert!(
        answered.successful.unwrap_or(0) >= 1,
        "alice answered no call: {answered:?}"
    );
    kamailio.assert_running();
    distributor.assert_running();
    edge_b.assert_running();
}
