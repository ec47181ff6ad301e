//! A busy edge goes through `snapshot()` → JSON → `restore()` and carries on
//! as if nothing happened: same state, same timers, same dialogs.

mod sim;

use std::time::Duration;

use acd_b2bua::{EdgeCore, Input, IvrAction, Snapshot, ToDistributor};
use sim::*;

#[test]
fn a_busy_edge_round_trips_through_its_snapshot() {
    let mut sim = Sim::new();
    sim.registered_agent();
    // Call A: bridged.
    sim.sip(
        &invite("a", "a", Some(SDP_CALLER), "Supported: timer\r\n", "UDP"),
        udp(TRUNK),
    );
    let tag_a = sim
        .last_response(200)
        .unwrap()
        .headers
        .to_tag()
        .unwrap()
        .to_string();
    let call_a = sim.ivr.last().unwrap().call.clone();
    sim.sip(
        &caller_request("ACK", "a", &tag_a, 1, "acka", None, ""),
        udp(TRUNK),
    );
    sim.ivr_reply(vec![IvrAction::Enqueue {
        queue: "sales".into(),
        priority: 0,
        skills: Default::default(),
        data: Default::default(),
    }]);
    sim.connect(&call_a, 3);
    let inv_a = sim.last_request("INVITE").unwrap().clone();
    sim.sip(
        &phone_response(&inv_a, 200, "OK", "pha", Some(SDP_AGENT)),
        udp(PHONE),
    );
    // Call B: ringing.
    sim.sip(&invite("b", "b", Some(SDP_CALLER), "", "UDP"), udp(TRUNK));
    let tag_b = sim
        .last_response(200)
        .unwrap()
        .headers
        .to_tag()
        .unwrap()
        .to_string();
    let call_b = sim.ivr.last().unwrap().call.clone();
    sim.sip(
        &caller_request("ACK", "b", &tag_b, 1, "ackb", None, ""),
        udp(TRUNK),
    );
    sim.ivr_reply(vec![IvrAction::Enqueue {
        queue: "sales".into(),
        priority: 0,
        skills: Default::default(),
        data: Default::default(),
    }]);
    sim.connect(&call_b, 3);
    // Call C: in the IVR, waiting for digits; its 200 not yet ACKed.
    sim.sip(&invite("c", "c", Some(SDP_CALLER), "", "UDP"), udp(TRUNK));
    let call_c = sim.ivr.last().unwrap().call.clone();
    sim.ivr_reply(vec![IvrAction::Collect(acd_b2bua::CollectSpec {
        min_digits: 1,
        max_digits: 1,
        terminator: None,
        first_digit_timeout_ms: 5000,
        inter_digit_timeout_ms: 5000,
    })]);
    // Call D: media still being set up.
    sim.auto_media = false;
    sim.sip(&invite("d", "d", None, "", "TCP"), tcp(TRUNK));
    sim.advance(Duration::from_millis(100));

    let snap = sim.core.snapshot(sim.now);
    assert_eq!(snap.calls.len(), 4);
    let json = snap.to_json();
    let back = Snapshot::from_json(&json).expect("snapshot decodes");
    let restored = EdgeCore::restore(config(), back, sim.now);
    assert!(
        restored.snapshot(sim.now).to_json() == json,
        "restore(snapshot) is not the same state"
    );
    for (c, phase) in [(&call_a, "bridged"), (&call_b, "ringing"), (&call_c, "ivr")] {
        assert_eq!(restored.call_phase(c), Some(phase));
    }

    // Carry on in the restored core.
    sim.core = restored;
    sim.sent.clear();
    sim.dist.clear();
    // The caller of C retransmits its INVITE: the restored transaction absorbs it.
    sim.sip(&invite("c", "c", Some(SDP_CALLER), "", "UDP"), udp(TRUNK));
    assert_eq!(
        sim.core.active_calls(),
        4,
        "a retransmission is not a new call"
    );
    // A's dialogs are found by their tags.
    sim.sip(
        &phone_request(&inv_a, "BYE", "pha", 2, "pbye", None),
        udp(PHONE),
    );
    assert!(
        matches!(sim.dist.last(), Some(ToDistributor::CallEnded { call, .. }) if *call == call_a)
    );
    assert_eq!(
        sim.last_request("BYE").and_then(|r| r.headers.to_tag()),
        Some("caller1")
    );
    // B's ring timer and C's retransmission and digit timers still run.
    sim.sent.clear();
    sim.advance(Duration::from_secs(6));
    assert!(sim
        .ivr
        .iter()
        .any(|s| s.call == call_c && s.event == acd_b2bua::IvrEvent::NoInput));
    assert!(
        sim.responses()
            .iter()
            .any(|r| r.headers.call_id() == Some("c") && r.status == 200),
        "C's 2xx retransmitted"
    );
    sim.advance(Duration::from_secs(10));
    assert!(
        sim.last_request("CANCEL").is_some(),
        "B's ring-no-answer fired"
    );
    // C never ACKs: ended after 64*T1 measured from before the hand-over.
    sim.advance(Duration::from_secs(20));
    assert_eq!(sim.core.call_phase(&call_c), None);
}

#[test]
fn an_unknown_snapshot_version_is_refused() {
    let sim = Sim::new();
    let mut snap = sim.core.snapshot(sim.now);
    snap.version = 99;
    let err = Snapshot::from_json(&snap.to_json()).unwrap_err();
    assert!(err.to_string().contains("99"));
}

#[test]
fn drain_and_registrations_survive_the_snapshot() {
    let mut sim = Sim::new();
    sim.registered_agent();
    sim.input(Input::Drain);
    let snap = sim.core.snapshot(sim.now);
    let r = EdgeCore::restore(config(), snap, sim.now);
    assert!(r.is_draining());
    assert_eq!(r.registrations(sim.now), 1);
}

#[test]
fn absurd_durations_in_a_damaged_snapshot_do_not_panic_the_restore() {
    let mut sim = Sim::new();
    sim.registered_agent();
    sim.sip(&invite("z", "z", Some(SDP_CALLER), "", "UDP"), udp(TRUNK));
    let mut snap = sim.core.snapshot(sim.now);
    assert!(!snap.timers.is_empty(), "the unacknowledged 200 has timers");
    for t in &mut snap.timers {
        t.remaining = Duration::MAX;
    }
    // Through JSON, as a hand-over would carry it.
    let back = Snapshot::from_json(&snap.to_json()).expect("decodes");
    let mut restored = EdgeCore::restore(config(), back, sim.now);
    // Absurd deadlines are due at once instead of overflowing.
    assert_eq!(restored.poll_timeout(), Some(sim.now));
    restored.handle_timeout(sim.now);
}
