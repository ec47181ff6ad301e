//! Prometheus metrics of the running binaries (issue 9): after real SIPp
//! calls the queue counters, SIP request/response counts, agents by state,
//! the routing decision histogram and the RTP loss of the relay path match
//! what the calls did; every role's exposition follows the naming
//! conventions (HELP, TYPE, `_total`, base units, buckets); and every metric
//! the Grafana dashboard queries is one some process exports.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use acd_tests::cluster::Cluster;
use acd_tests::flows::{register, trunk, SIPP_LIMIT};
use acd_tests::metrics::{dashboard_metrics, scrape, Exposition};
use acd_tests::proto::AgentState;
use acd_tests::{AcdClient, AcdProcess, RtpObserver, SippCmd, TestEnv, LONG, SHORT};
use tokio::time::Instant;

/// One agent per call, so no call waits and every one is answered at once.
const CALLS: u16 = 5;
/// Caller hang-up after the answer: welcome prompt, queue and the RTP sent.
const HOLD_MS: u64 = 9000;
/// Packets sent by each caller once bridged, and the ones left out.
const PACKETS: u16 = 50;
const GAP: Range<u16> = 20..25;
const CALLER_SSRC: u32 = 0xCA11_0009;
const QUEUE: &str = "sales";

/// Queried by the dashboard but absent from `acd run`'s scrape, and why.
const ONLY_WITH_A_STANDBY: &[(&str, &str)] = &[(
    "acd_replication_followers",
    "set when a standby attaches; acd run has none",
)];

fn agent(i: u16) -> String {
    format!("m{i}")
}

fn extension(i: u16) -> String {
    format!("{}", 2100 + i)
}

fn dashboard() -> serde_json::Value {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/grafana/acd-dashboard.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Metrics the dashboard queries that none of `scrapes` holds, less `allowed`.
fn missing_from(scrapes: &[&Exposition], allowed: &[(&str, &str)]) -> Vec<String> {
    let exported: BTreeSet<&str> = scrapes.iter().flat_map(|e| e.names()).collect();
    dashboard_metrics(&dashboard())
        .into_iter()
        .filter(|m| !exported.contains(m.as_str()) && !allowed.iter().any(|(a, _)| a == m))
        .collect()
}

async fn exposition(p: &AcdProcess) -> Exposition {
    let text = scrape(&p.metrics_addr()).await.unwrap();
    Exposition::parse(&text).unwrap_or_else(|e| panic!("{}: unparsable /metrics: {e:#}", p.name))
}

/// Scrapes `p` until `done` holds (the distributor samples once a second),
/// bounded by `within`; the last scrape.
async fn scrape_until(
    p: &AcdProcess,
    what: &str,
    within: Duration,
    done: impl Fn(&Exposition) -> bool,
) -> Exposition {
    let deadline = Instant::now() + within;
    loop {
        let e = exposition(p).await;
        if done(&e) {
            return e;
        }
        assert!(
            Instant::now() < deadline,
            "{}: {what} not within {within:?}",
            p.name
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits (bounded) until every agent is in `state`, as the API says.
async fn await_agents(api: &mut AcdClient, state: AgentState, within: Duration) {
    let deadline = Instant::now() + within;
    for i in 1..=CALLS {
        loop {
            let a = api.get_agent(&agent(i)).await.unwrap();
            if a.state() == state {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "agent {} not {state:?}: {a:?}",
                agent(i)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn value(e: &Exposition, sample: &str, labels: &[(&str, &str)]) -> f64 {
    e.sum(sample, labels).unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_match_the_calls_of_a_sipp_run_through_acd_run() {
    let env = TestEnv::new("prometheus_calls_acd_run", 140);
    let mut extra = String::new();
    for i in 1..=CALLS {
        extra.push_str(&format!(
            "[[extensions]]\nnumber = \"{ext}\"\npassword = \"secret{ext}\"\n\n\
             [[agents]]\nid = \"{id}\"\nname = \"Metrics {i}\"\nskills = {{ sales = 5 }}\n\n",
            ext = extension(i),
            id = agent(i),
        ));
    }
    let config = env.write_config(&extra);
    let mut acd = env.start_run_with(&config, &[]).await.unwrap();
    let callers = RtpObserver::bind("callers", env.ports.observer(0))
        .await
        .unwrap();
    let agents_media = RtpObserver::bind("agents", env.ports.observer(1))
        .await
        .unwrap();

    // Every agent's phone is one SIPp UAS answering each call it is sent.
    let phone_port = env.ports.sipp(1).sip;
    let mut phones = SippCmd::new("phones", "agent_answer.xml", env.ports.sipp(1))
        .key("rtpport", agents_media.port())
        .limit(SIPP_LIMIT);
    phones.calls = 1000;
    let phones = phones.spawn(&env).await.unwrap();
    let mut api = AcdClient::connect(&acd.grpc_url()).await.unwrap();
    for i in 1..=CALLS {
        let ext = extension(i);
        register(&env, 2, &ext, &format!("secret{ext}"), phone_port)
            .await
            .assert_success(1);
        api.login(&agent(i), &ext).await.unwrap();
        api.ready(&agent(i)).await.unwrap();
    }

    let load = trunk(
        &env,
        "load",
        "trunk_call_hangup.xml",
        0,
        "5550100",
        callers.port(),
    )
    .pause_ms(HOLD_MS)
    .rate(u32::from(CALLS), u32::from(CALLS))
    .spawn(&env)
    .await
    .unwrap();
    await_agents(&mut api, AgentState::OnCall, LONG).await;
    // Each call's caller leg has played its prompt from its own edge port.
    let edge_ports: Vec<SocketAddr> = callers.stats().sources.keys().copied().collect();
    assert_eq!(
        edge_ports.len(),
        usize::from(CALLS),
        "caller legs: {edge_ports:?}"
    );
    callers
        .send_with_gaps(&edge_ports, CALLER_SSRC, PACKETS, GAP)
        .await
        .unwrap();
    let sent = u64::from(PACKETS - GAP.len() as u16) * u64::from(CALLS);
    agents_media
        .await_from(CALLER_SSRC, sent, SHORT)
        .await
        .unwrap();
    let out = load.wait().await;
    out.assert_success(u64::from(CALLS));
    await_agents(&mut api, AgentState::Ready, LONG).await;

    let n = f64::from(CALLS);
    let q = [("queue", QUEUE)];
    // Sampled once a second; RTP counted when each call's media ends.
    let m = scrape_until(&acd, "the calls in the metrics", SHORT, |e| {
        value(e, "acd_queue_calls_answered_total", &q) == n
            && value(e, "acd_agents", &[("state", "ready")]) == n
            && value(e, "acd_edge_active_calls", &[]) == 0.0
    })
    .await;
    let lost = value(&m, "acd_rtp_packets_lost_total", &[]);
    let relayed = value(&m, "acd_rtp_packets_relayed_total", &[]);
    let invites_in = value(
        &m,
        "acd_sip_requests_total",
        &[("method", "INVITE"), ("direction", "in")],
    );
    let ok = |method, direction| {
        value(
            &m,
            "acd_sip_responses_total",
            &[
                ("code", "200"),
                ("method", method),
                ("direction", direction),
            ],
        )
    };
    let decisions = value(&m, "acd_routing_decision_duration_seconds_count", &[]);
    eprintln!(
        "[e2e] metrics: offered {} answered {} abandoned {} within target {} SL {}; INVITE in {invites_in}; \
         200 to INVITE in {} out {}; RTP relayed {relayed} lost {lost}; decisions {decisions}",
        value(&m, "acd_queue_calls_offered_total", &q),
        value(&m, "acd_queue_calls_answered_total", &q),
        value(&m, "acd_queue_calls_abandoned_total", &q),
        value(&m, "acd_queue_calls_answered_within_target_total", &q),
        value(&m, "acd_queue_service_level_ratio", &q),
        ok("INVITE", "in"),
        ok("INVITE", "out"),
    );
    assert_eq!(value(&m, "acd_queue_calls_offered_total", &q), n);
    assert_eq!(value(&m, "acd_queue_calls_abandoned_total", &q), 0.0);
    // An agent was ready for every call: all answered within the target.
    assert_eq!(
        value(&m, "acd_queue_calls_answered_within_target_total", &q),
        n
    );
    assert_eq!(value(&m, "acd_queue_service_level_ratio", &q), 1.0);
    assert_eq!(value(&m, "acd_queue_waiting_calls", &q), 0.0);
    assert_eq!(value(&m, "acd_queue_longest_wait_seconds", &q), 0.0);
    // Every state is exported; the e2e config's own three agents are logged out.
    for state in [
        "logged_out",
        "not_ready",
        "ready",
        "reserved",
        "on_call",
        "wrap_up",
    ] {
        assert!(
            m.sum("acd_agents", &[("state", state)]).is_some(),
            "no acd_agents{{state={state}}}"
        );
    }
    assert_eq!(value(&m, "acd_agents", &[("state", "logged_out")]), 3.0);
    // Per transaction: SIPp's retransmissions are not requests.
    assert_eq!(invites_in, n, "INVITEs from the trunk");
    assert_eq!(
        value(
            &m,
            "acd_sip_requests_total",
            &[("method", "INVITE"), ("direction", "out")]
        ),
        n
    );
    assert_eq!(
        ok("INVITE", "in"),
        n,
        "200 OK from the agents' phones = answered calls"
    );
    assert_eq!(ok("INVITE", "out"), n, "200 OK to the callers");
    assert_eq!(
        lost,
        f64::from(GAP.len() as u16) * n,
        "the gap of every caller's stream"
    );
    assert!(relayed >= sent as f64, "relayed {relayed} < {sent} sent");
    let bucket_lines = m
        .family("acd_routing_decision_duration_seconds")
        .map_or(0, |f| {
            f.samples.iter().filter(|s| s.label("le").is_some()).count()
        });
    assert!(decisions >= n, "decision histogram _count {decisions}");
    assert!(bucket_lines >= 13, "{bucket_lines} le buckets");
    assert_eq!(
        value(
            &m,
            "acd_routing_decision_duration_seconds_bucket",
            &[("le", "+Inf")]
        ),
        decisions
    );

    let problems = m.lint();
    assert!(problems.is_empty(), "acd run's /metrics: {problems:#?}");
    let missing = missing_from(&[&m], ONLY_WITH_A_STANDBY);
    assert!(
        missing.is_empty(),
        "dashboard metrics acd run does not export: {missing:?}"
    );

    let phones = phones.stop_and_wait().await;
    assert_eq!(phones.failed.unwrap_or(0), 0, "phones: {phones:?}");
    acd.assert_running();
}

#[tokio::test]
async fn every_role_exports_conventional_metrics_and_the_standby_follows() {
    const LOAD: u32 = 4;
    let env = TestEnv::new("prometheus_every_role", 141);
    let mut c = Cluster::start(&env).await.unwrap();
    let load = c.load(&env, LOAD, LOAD, HOLD_MS).await.unwrap();
    c.assert_every_call_served(load.wait().await, LOAD)
        .await
        .unwrap();
    let primary = c.leader(SHORT).await.unwrap();
    let standby = 1 - primary;
    let n = f64::from(LOAD);
    let q = [("queue", QUEUE)];

    // The standby applies the same records: the same queue counters.
    let p = scrape_until(
        &c.distributors[primary],
        "the calls on the primary",
        SHORT,
        |e| {
            value(e, "acd_queue_calls_answered_total", &q) == n
                && value(e, "acd_agents", &[("state", "ready")]) == 8.0
                && value(e, "acd_replication_lag_records", &[]) == 0.0
        },
    )
    .await;
    let s = scrape_until(
        &c.distributors[standby],
        "the calls on the standby",
        SHORT,
        |e| {
            value(e, "acd_queue_calls_answered_total", &q) == n
                && value(e, "acd_agents", &[("state", "ready")]) == 8.0
        },
    )
    .await;
    for (e, role) in [(&p, "primary"), (&s, "standby")] {
        let other = if role == "primary" {
            "standby"
        } else {
            "primary"
        };
        assert_eq!(
            value(e, "acd_distributor_role", &[("role", role)]),
            1.0,
            "{role}"
        );
        assert_eq!(
            value(e, "acd_distributor_role", &[("role", other)]),
            0.0,
            "{role}"
        );
        assert_eq!(value(e, "acd_queue_calls_offered_total", &q), n, "{role}");
        assert_eq!(value(e, "acd_agents", &[("state", "ready")]), 8.0, "{role}");
    }
    let term = value(&p, "acd_distributor_term", &[]);
    assert!(term >= 1.0, "term {term}");
    assert_eq!(value(&s, "acd_distributor_term", &[]), term);
    assert_eq!(value(&p, "acd_replication_followers", &[]), 1.0);
    // Set by the standby per record applied: decision to application.
    let applied_after = s
        .sum("acd_replication_lag_seconds", &[])
        .expect("standby lag");
    assert!(
        (0.0..5.0).contains(&applied_after),
        "standby lag {applied_after} s"
    );
    assert!(value(&p, "acd_routing_decision_duration_seconds_count", &[]) >= n);
    assert_eq!(
        value(&s, "acd_routing_decision_duration_seconds_count", &[]),
        0.0,
        "a standby decides nothing"
    );

    let edge = exposition(&c.edge).await;
    assert!(
        value(
            &edge,
            "acd_sip_requests_total",
            &[("method", "INVITE"), ("direction", "in")]
        ) >= n
    );
    assert!(value(&edge, "acd_rtp_packets_played_total", &[]) > 0.0);
    let ivrs = [exposition(&c.ivrs[0]).await, exposition(&c.ivrs[1]).await];
    let steps: f64 = ivrs
        .iter()
        .map(|e| value(e, "acd_ivr_steps_total", &[]))
        .sum();
    assert!(steps >= n, "IVR steps {steps}");

    let mut problems = Vec::new();
    let named = [
        ("primary", &p),
        ("standby", &s),
        ("edge", &edge),
        ("ivr-0", &ivrs[0]),
        ("ivr-1", &ivrs[1]),
    ];
    for (name, e) in named {
        problems.extend(e.lint().into_iter().map(|p| format!("{name}: {p}")));
    }
    assert!(problems.is_empty(), "{problems:#?}");
    let all: Vec<&Exposition> = named.iter().map(|(_, e)| *e).collect();
    let missing = missing_from(&all, &[]);
    assert!(
        missing.is_empty(),
        "dashboard metrics no role exports: {missing:?}"
    );
}
