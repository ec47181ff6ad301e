//! The RTP load generator (`acd-rtpload`, crate acd-bench) against the
//! debug `acd run`: 20 calls to a DID whose flow transfers straight to the
//! generator's UAS, RTP both ways for 3 s, then BYE. Every call must be
//! bridged (seen in acd's active-calls gauge), every packet sent must come
//! back out of the relay on the other leg (zero loss on loopback at this
//! size), latencies must be recorded, and acd must end with no active call.
//! This keeps the bench tool honest. Port block 145 (tests/src/ports.rs).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use acd_tests::env::target_dir;
use acd_tests::metrics::{counter, scrape};
use acd_tests::TestEnv;
use serde_json::Value;
use tokio::time::Instant;

const CALLS: u64 = 20;
const HOLD_SECS: u64 = 3;
const DID: &str = "5550900";

fn rtpload_bin() -> PathBuf {
    let p = target_dir().join("debug").join("acd-rtpload");
    assert!(
        p.is_file(),
        "{} not found: cargo build -p acd-bench (or --workspace --bins) first",
        p.display()
    );
    p
}

/// A plain bridged call: no prompt, the caller answered when the UAS at
/// `uas` answers the transfer.
fn bridge_flow(uas: &str) -> String {
    format!(
        r#"
[[dids]]
number = "{DID}"
flow = "rtpload_bridge"

[flows.rtpload_bridge]
answer = "early"
start = "xfer"
fallback_queue = "sales"

[flows.rtpload_bridge.nodes.xfer]
type = "transfer"
uri = "sip:bench@{uas}"
timeout_ms = 10000
on_fail = "bye"

[flows.rtpload_bridge.nodes.bye]
type = "hangup"
reason = "transfer failed"
"#
    )
}

/// Polls acd's `acd_edge_active_calls` gauge until it reads `want`.
async fn await_active_calls(metrics: &str, want: f64, within: Duration) -> f64 {
    let deadline = Instant::now() + within;
    let mut last = -1.0;
    while Instant::now() < deadline {
        if let Ok(text) = scrape(metrics).await {
            last = counter(&text, "acd_edge_active_calls").unwrap_or(-1.0);
            if last == want {
                return last;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    last
}

fn num(v: &Value, path: &str) -> u64 {
    v.pointer(path)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{path} missing in the generator's JSON: {v}"))
}

#[tokio::test]
async fn twenty_bridged_calls_carry_every_packet_both_ways() {
    let env = TestEnv::new("rtp_load", 145);
    let gen_sip = format!("127.0.0.1:{}", env.ports.sipp(0).sip);
    let config = env.write_config(&bridge_flow(&gen_sip));
    let acd = env.start_run_with(&config, &[]).await.expect("acd run");
    let pid = acd.pid().expect("acd's pid").to_string();
    let metrics = acd.metrics_addr();

    let out = std::fs::File::create(env.log_path("rtpload.json")).expect("json log");
    let err = std::fs::File::create(env.log_path("rtpload.stderr.log")).expect("stderr log");
    let args = [
        "--calls".to_string(),
        CALLS.to_string(),
        "--hold".into(),
        HOLD_SECS.to_string(),
        "--cps".into(),
        "50".into(),
        "--pid".into(),
        pid,
        "--rtp-a".into(),
        format!("127.0.0.1:{}", env.ports.observer(0)),
        "--rtp-b".into(),
        format!("127.0.0.1:{}", env.ports.observer(1)),
        "--json".into(),
        "--per-call".into(),
        "acd".into(),
        "--acd".into(),
        env.sip_addr(),
        "--did".into(),
        DID.into(),
        "--sip".into(),
        gen_sip,
    ];
    let mut gen = tokio::process::Command::new(rtpload_bin())
        .args(&args)
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .kill_on_drop(true)
        .spawn()
        .expect("spawn acd-rtpload");

    // While the calls are held, acd holds them all bridged.
    let up = await_active_calls(&metrics, CALLS as f64, Duration::from_secs(10)).await;
    assert_eq!(up, CALLS as f64, "acd's active calls while the load holds");

    let status = tokio::time::timeout(Duration::from_secs(60), gen.wait())
        .await
        .expect("acd-rtpload ends on its own within 60 s")
        .expect("acd-rtpload ran");
    let text = std::fs::read_to_string(env.log_path("rtpload.json")).expect("json output");
    let v: Value = serde_json::from_str(text.trim()).expect("one JSON object");
    assert_eq!(status.code(), Some(0), "generator verdict: {v}");

    // Every call set up on both legs and torn down on both legs.
    assert_eq!(num(&v, "/established"), CALLS, "{v}");
    for counter in [
        "answered",
        "agent_invites",
        "agent_acks",
        "bye_ok",
        "agent_byes",
    ] {
        assert_eq!(
            num(&v, &format!("/sip/counters/{counter}")),
            CALLS,
            "{counter}: {v}"
        );
    }
    assert_eq!(num(&v, "/teardown_failures"), 0, "{v}");

    // Every packet sent came out of the relay, on every call, both ways.
    let per_call = v["per_call"].as_array().expect("per-call counters");
    assert_eq!(per_call.len() as u64, CALLS);
    let min_per_stream = (HOLD_SECS - 1) * 50;
    for c in per_call {
        for d in 0..2 {
            let sent = c["sent"][d].as_u64().unwrap_or(0);
            let received = c["received"][d].as_u64().unwrap_or(0);
            assert!(sent >= min_per_stream, "call {c}: only {sent} sent");
            assert_eq!(received, sent, "call {c}: direction {d}");
            assert_eq!(c["duplicates"][d].as_u64(), Some(0), "call {c}");
        }
    }
    assert_eq!(num(&v, "/rtp/lost"), 0, "{v}");
    let received = num(&v, "/rtp/a_to_b/received") + num(&v, "/rtp/b_to_a/received");
    assert!(received >= CALLS * 2 * min_per_stream, "{v}");

    // Latencies recorded, ordered, and plausible for loopback.
    let lat = &v["rtp"]["latency_us"]["all"];
    let count = num(lat, "/count");
    assert!(count > 0 && count <= received, "{lat}");
    let (p50, p99, max) = (
        num(lat, "/p50_us"),
        num(lat, "/p99_us"),
        num(lat, "/max_us"),
    );
    assert!(p50 <= p99 && p99 <= max, "{lat}");
    assert!(p50 < 1_000_000, "p50 {p50} us on loopback: {lat}");
    assert!(num(&v, "/cpu/relay_cpu_us") > 0, "acd's CPU measured: {v}");

    // Nothing left behind in acd.
    let after = await_active_calls(&metrics, 0.0, Duration::from_secs(10)).await;
    assert_eq!(after, 0.0, "acd's active calls after the run");
    let text = scrape(&metrics).await.expect("metrics");
    let relayed = counter(&text, "acd_rtp_packets_relayed_total").unwrap_or(0.0);
    assert!(
        relayed >= received as f64,
        "acd counted {relayed} relayed packets, the generator received {received}"
    );
}
