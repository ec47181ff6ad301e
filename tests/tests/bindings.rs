//! Registrations outlive an edge: bindings are replicated by the distributor,
//! so a phone registered at edge A is rung from edge B, and a restarted edge A
//! reaches it without the phone registering again.
//!
//! The phone's REGISTER is sent from the port its SIPp UAS then listens on
//! (as a real phone does), so the binding's source is the phone itself: a
//! remote UDP binding is reached at its source.

use std::time::{Duration, Instant};

use acd_tests::flows::{agent_phone, register, trunk};
use acd_tests::metrics::{counter, counter_with, scrape};
use acd_tests::proto::AgentState;
use acd_tests::{AcdClient, AcdProcess, RtpObserver, TestEnv, LONG, SHORT};

const CALLER_SSRC: u32 = 0xCA11_E501;

/// `metric` summed over the series with `labels` (all series without), 0 if absent.
fn sample(text: &str, metric: &str, labels: &[(&str, &str)]) -> f64 {
    match labels {
        [] => counter(text, metric),
        _ => counter_with(text, metric, labels),
    }
    .unwrap_or(0.0)
}

/// Polls `metric{labels}` on `proc` until `pred` holds (bounded by `within`).
async fn await_metric(
    proc: &AcdProcess,
    metric: &str,
    labels: &[(&str, &str)],
    within: Duration,
    pred: impl Fn(f64) -> bool,
) -> f64 {
    let deadline = Instant::now() + within;
    loop {
        let text = scrape(&proc.metrics_addr()).await.unwrap_or_default();
        let v = sample(&text, metric, labels);
        if pred(v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{metric}{labels:?} stayed at {v} for {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Alice's phone registers at the edge of `env` from SIPp slot 1, whose port
/// the phone then answers on.
async fn register_phone(env: &TestEnv) {
    register(env, 1, "1001", "secret1001", env.ports.sipp(1).sip)
        .await
        .assert_success(1);
}

/// Alice (ready on `dist`) takes one call from a trunk at the edge of
/// `trunk_env`; her phone (SIPp slot 1 of `phone_env`) answers, talks and
/// hangs up. Asserts the offer, the bridge (caller RTP reaches the phone),
/// both SIPp runs and the agent's wrap-up.
async fn one_call(dist: &AcdProcess, phone_env: &TestEnv, trunk_env: &TestEnv) {
    let caller = RtpObserver::bind("caller", trunk_env.ports.observer(0))
        .await
        .unwrap();
    let agent_rtp = RtpObserver::bind("agent", phone_env.ports.observer(1))
        .await
        .unwrap();
    let phone = agent_phone(phone_env, "agent-1001", 1, agent_rtp.port(), Some(3000)).await;

    let mut client = AcdClient::connect(&dist.grpc_url()).await.unwrap();
    client.login("alice", "1001").await.unwrap();
    let mut watch = client.watch("alice").await.unwrap();
    client.ready("alice").await.unwrap();
    let run = trunk(
        trunk_env,
        "trunk",
        "trunk_call.xml",
        3,
        "5550100",
        caller.port(),
    )
    .spawn(trunk_env)
    .await
    .unwrap();

    let offer = watch.await_offer(LONG).await.unwrap();
    assert_eq!(offer.queue_id, "sales", "offer: {offer:?}");
    let on_call = watch.await_state(AgentState::OnCall, LONG).await.unwrap();
    assert_eq!(on_call.call_id, offer.call_id);

    // The bridge carries the caller's voice to the phone.
    let edge_leg = caller
        .wait_for("RTP from the edge", SHORT, |s| s.total > 0)
        .await
        .map(|_| caller.last_source())
        .unwrap()
        .expect("edge sent RTP to the caller");
    caller.send_tagged(edge_leg, CALLER_SSRC, 50).await.unwrap();
    agent_rtp.await_from(CALLER_SSRC, 40, SHORT).await.unwrap();

    phone.wait().await.assert_success(1);
    run.wait().await.assert_success(1);
    let wrap = watch.await_state(AgentState::WrapUp, LONG).await.unwrap();
    assert_eq!(wrap.agent_id, "alice");
}

#[tokio::test]
async fn a_phone_registered_at_edge_a_is_rung_from_edge_b() {
    let env = TestEnv::new("bindings_two_edges", 73);
    let env_b = TestEnv::new("bindings_two_edges_b", 74);
    let dist = env.start_distributor("distributor", 0, None).await.unwrap();
    let ivr = env.start_ivr("ivr", 1).await.unwrap();
    let ivr_urls = [ivr.grpc_url()];
    let mut edge_a = env
        .start_edge_named("edge-a", 2, &dist.grpc_url(), &ivr_urls, "edge-a")
        .await
        .unwrap();
    let mut edge_b = env_b
        .start_edge_named("edge-b", 2, &dist.grpc_url(), &ivr_urls, "edge-b")
        .await
        .unwrap();

    register_phone(&env).await;
    let bound = [("kind", "bound")];
    await_metric(
        &edge_a,
        "acd_edge_binding_reports_total",
        &bound,
        SHORT,
        |v| v == 1.0,
    )
    .await;
    // Edge B learns the binding (whole on attach, or as a change).
    await_metric(&edge_b, "acd_edge_remote_bindings", &[], SHORT, |v| {
        v == 1.0
    })
    .await;

    one_call(&dist, &env, &env_b).await;

    // Edge B rang the phone through the contact the distributor sent with
    // the offer; edge A took no part in the call.
    let via_offer = [("via", "offer")];
    await_metric(
        &edge_b,
        "acd_edge_agent_routes_total",
        &via_offer,
        SHORT,
        |v| v == 1.0,
    )
    .await;
    await_metric(&edge_a, "acd_edge_agent_routes_total", &[], SHORT, |v| {
        v == 0.0
    })
    .await;
    edge_a.assert_running();
    edge_b.assert_running();
}

#[tokio::test]
async fn a_restarted_edge_reaches_a_phone_that_registered_before() {
    let env = TestEnv::new("bindings_edge_restart", 75);
    let dist = env.start_distributor("distributor", 0, None).await.unwrap();
    let ivr = env.start_ivr("ivr", 1).await.unwrap();
    let ivr_urls = [ivr.grpc_url()];
    let mut edge = env
        .start_edge_named("edge-a", 2, &dist.grpc_url(), &ivr_urls, "edge-a")
        .await
        .unwrap();
    register_phone(&env).await;
    let bound = [("kind", "bound")];
    await_metric(
        &edge,
        "acd_edge_binding_reports_total",
        &bound,
        SHORT,
        |v| v == 1.0,
    )
    .await;
    // The report reached the distributor: the edge hears its own binding back.
    await_metric(&edge, "acd_edge_remote_bindings", &[], SHORT, |v| v == 1.0).await;

    // Killed (no drain, no hand-over) and started again on the same ports.
    edge.kill().await;
    let mut edge = env
        .start_edge_named("edge-a-restarted", 2, &dist.grpc_url(), &ivr_urls, "edge-a")
        .await
        .unwrap();
    await_metric(&edge, "acd_edge_remote_bindings", &[], SHORT, |v| v == 1.0).await;

    // The phone does not register again, yet it is rung.
    one_call(&dist, &env, &env).await;
    let regs = scrape(&edge.metrics_addr()).await.unwrap();
    assert_eq!(
        sample(&regs, "acd_registrations_total", &[]),
        0.0,
        "the restarted edge saw no REGISTER"
    );
    let via_offer = [("via", "offer")];
    await_metric(
        &edge,
        "acd_edge_agent_routes_total",
        &via_offer,
        SHORT,
        |v| v == 1.0,
    )
    .await;
    edge.assert_running();
}
