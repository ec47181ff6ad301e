//! Throughput of the B2BUA core: one whole call (trunk INVITE → 200 → ACK →
//! IVR enqueue → agent INVITE → 200 → ACK → caller BYE → agent BYE) through
//! `EdgeCore` with simulated peers, alone and with 1,000 calls queued in the
//! background. The simulated peers parse everything the core sends, as real
//! ones would, so the figure includes that parse.
//!
//! Run: `cargo bench -p acd-b2bua --bench b2bua -- --measurement-time 3`
//! (results in BENCHMARKS.md).

#[path = "../tests/sim/mod.rs"]
mod sim;

use std::hint::black_box;
use std::time::Duration;

use acd_b2bua::IvrAction;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sim::*;

/// One call from INVITE to both BYEs; `n` makes its ids unique.
fn whole_call(sim: &mut Sim, n: u64) {
    let cid = format!("bench-{n}");
    sim.sip(&invite(&cid, &cid, Some(SDP_CALLER), "", "UDP"), udp(TRUNK));
    let tag = sim
        .last_response(200)
        .and_then(|r| r.headers.to_tag())
        .map(str::to_string)
        .expect("answered");
    let call = sim.ivr.last().expect("IVR step").call.clone();
    sim.sip(
        &caller_request("ACK", &cid, &tag, 1, &format!("{cid}a"), None, ""),
        udp(TRUNK),
    );
    sim.ivr_reply(vec![IvrAction::Enqueue {
        queue: "sales".into(),
        priority: 0,
        skills: Default::default(),
        data: Default::default(),
    }]);
    sim.connect(&call, 1);
    let inv = sim.last_request("INVITE").expect("agent rung").clone();
    sim.sip(
        &phone_response(&inv, 200, "OK", "ph", Some(SDP_AGENT)),
        udp(PHONE),
    );
    sim.sip(
        &caller_request("BYE", &cid, &tag, 2, &format!("{cid}b"), None, ""),
        udp(TRUNK),
    );
    let bye = sim.last_request("BYE").expect("agent hung up").clone();
    sim.sip(&phone_response(&bye, 200, "OK", "ph", None), udp(PHONE));
    // Let the transactions of finished calls expire now and then.
    // (and renew the phone's registration, which the clock would expire).
    if n % 256 == 0 {
        sim.advance(Duration::from_secs(40));
        sim.registered_agent();
    }
    sim.sent.clear();
    sim.dist.clear();
    sim.ivr.clear();
    sim.media.clear();
}

/// A site whose admission limits are far above what the bench offers: the
/// clock does not move while it runs, so a rate limit would shed.
fn unlimited() -> Sim {
    let mut cfg = config();
    cfg.admission.max_calls_per_second = 1_000_000_000;
    cfg.admission.max_calls = 1_000_000;
    let mut sim = Sim::with_config(cfg);
    sim.registered_agent();
    sim
}

fn calls(c: &mut Criterion) {
    let mut g = c.benchmark_group("b2bua/call_cycle");
    g.throughput(Throughput::Elements(1));
    let mut sim = unlimited();
    let mut n = 0;
    g.bench_function("idle_edge", |b| {
        b.iter(|| {
            n += 1;
            whole_call(black_box(&mut sim), n);
        })
    });
    let mut busy = unlimited();
    for i in 0..1000 {
        let cid = format!("waiting-{i}");
        busy.sip(&invite(&cid, &cid, Some(SDP_CALLER), "", "UDP"), udp(TRUNK));
        let tag = busy
            .last_response(200)
            .and_then(|r| r.headers.to_tag())
            .map(str::to_string)
            .expect("answered");
        busy.sip(
            &caller_request("ACK", &cid, &tag, 1, &format!("{cid}a"), None, ""),
            udp(TRUNK),
        );
        busy.ivr_reply(vec![IvrAction::Enqueue {
            queue: "sales".into(),
            priority: 0,
            skills: Default::default(),
            data: Default::default(),
        }]);
    }
    busy.sent.clear();
    assert_eq!(busy.core.active_calls(), 1000);
    let mut n = 1_000_000;
    g.bench_function("with_1000_queued", |b| {
        b.iter(|| {
            n += 1;
            whole_call(black_box(&mut busy), n);
        })
    });
    assert!(busy.core.active_calls() >= 1000, "the queued calls stayed");
    g.finish();
}

criterion_group!(benches, calls);
criterion_main!(benches);
