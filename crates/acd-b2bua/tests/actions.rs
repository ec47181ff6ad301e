//! The flow's actions beyond prompts and queues, through the core with
//! simulated time: transfer to an external URI (answered, busy, no answer,
//! caller gone while it rings), voicemail recording, callback requests and
//! enqueue with extra skills and call-pop data.

mod sim;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use acd_b2bua::{
    CallId, Input, IvrAction, IvrEvent, MediaCommand, MediaEvent, PlayToken, ToDistributor,
};
use acd_sip::Request;
use sim::*;

const FAR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 9)), 5070);
const FAR_URI: &str = "sip:night@10.0.0.9:5070";

/// INVITE → 200 → ACK; the IVR's first step is out. Returns the call and our To tag.
fn call_in_ivr(sim: &mut Sim, sip_call_id: &str) -> (CallId, String) {
    sim.sip(
        &invite(sip_call_id, sip_call_id, Some(SDP_CALLER), "", "UDP"),
        udp(TRUNK),
    );
    let ok = sim.last_response(200).expect("caller answered");
    let tag = ok.headers.to_tag().expect("To tag").to_string();
    let call = sim.ivr.last().expect("IVR started").call.clone();
    sim.sip(
        &caller_request("ACK", sip_call_id, &tag, 1, "ack1", None, ""),
        udp(TRUNK),
    );
    assert_eq!(sim.core.call_phase(&call), Some("ivr"));
    (call, tag)
}

/// A call whose flow transferred it to `FAR_URI`; returns the INVITE sent there.
fn transferring(sim: &mut Sim, sip_call_id: &str) -> (CallId, String, Request) {
    let (call, tag) = call_in_ivr(sim, sip_call_id);
    sim.sent.clear();
    sim.ivr_reply(vec![IvrAction::Transfer {
        uri: FAR_URI.into(),
        timeout_ms: 20_000,
    }]);
    let (to, inv) = sim
        .sent
        .iter()
        .find_map(|(p, m)| match m {
            acd_sip::Message::Request(r) if r.method.as_str() == "INVITE" => Some((*p, r.clone())),
            _ => None,
        })
        .expect("far end rung");
    assert_eq!(to, udp(FAR));
    assert_eq!(inv.uri, FAR_URI);
    assert_eq!(inv.headers.get("To"), Some(format!("<{FAR_URI}>").as_str()));
    assert!(String::from_utf8_lossy(&inv.body).contains("m=audio 40002"));
    assert_eq!(sim.core.call_phase(&call), Some("ringing"));
    assert!(
        sim.media.iter().any(|(c, m)| *c == call
            && matches!(m, MediaCommand::Play { prompt, looping: true, .. } if prompt == "moh")),
        "the caller hears the hold music while it rings"
    );
    (call, tag, inv)
}

fn last_event(sim: &Sim) -> IvrEvent {
    sim.ivr.last().expect("a step").event.clone()
}

fn only_enqueues_or_nothing(sim: &Sim) {
    assert!(
        sim.dist.is_empty(),
        "the distributor hears nothing of a transfer: {:?}",
        sim.dist
    );
}

#[test]
fn a_transfer_answered_bridges_and_bye_propagates() {
    let mut sim = Sim::new();
    let (call, tag, inv) = transferring(&mut sim, "t1");
    sim.sip(
        &phone_response(&inv, 180, "Ringing", "far1", None),
        udp(FAR),
    );
    sim.sip(
        &phone_response(&inv, 200, "OK", "far1", Some(SDP_AGENT)),
        udp(FAR),
    );
    assert!(
        sim.last_request("ACK").is_some(),
        "far end's 200 acknowledged"
    );
    assert_eq!(sim.core.call_phase(&call), Some("bridged"));
    assert!(sim
        .media
        .iter()
        .any(|(c, m)| *c == call && matches!(m, MediaCommand::Bridge { .. })));
    let steps = sim.ivr.len();
    // The far end hangs up: the caller gets the BYE.
    sim.sent.clear();
    sim.sip(
        &phone_request(&inv, "BYE", "far1", 1, "fbye", None),
        udp(FAR),
    );
    let bye = sim.last_request("BYE").expect("BYE to the caller");
    assert_eq!(bye.headers.to_tag(), Some("caller1"));
    assert_eq!(bye.headers.from_tag(), Some(tag.as_str()));
    assert_eq!(sim.core.active_calls(), 0);
    assert_eq!(sim.ivr.len(), steps, "the flow ended at the transfer");
    only_enqueues_or_nothing(&sim);
    assert!(
        matches!(sim.notes.as_slice(), [n] if n.outcome == acd_b2bua::EdgeOutcome::Redirected),
        "the call's note: {:?}",
        sim.notes
    );
}

#[test]
fn a_ringing_transfer_plays_the_ringback_tone_when_configured() {
    let mut cfg = sim::config();
    cfg.prompts.insert("ringback".to_string());
    let mut sim = Sim::with_config(cfg);
    let (call, _tag) = call_in_ivr(&mut sim, "rb-1");
    sim.media.clear();
    sim.ivr_reply(vec![IvrAction::Transfer {
        uri: FAR_URI.into(),
        timeout_ms: 20_000,
    }]);
    assert!(
        sim.media.iter().any(|(c, m)| *c == call
            && matches!(m, MediaCommand::Play { prompt, looping: true, .. } if prompt == "ringback")),
        "the caller hears ring-back while the far end rings: {:?}",
        sim.media
    );
    assert!(
        !sim.media
            .iter()
            .any(|(_, m)| matches!(m, MediaCommand::Play { prompt, .. } if prompt == "moh")),
        "not the hold music"
    );
}

#[test]
fn the_caller_hanging_up_a_transferred_call_hangs_up_the_far_end() {
    let mut sim = Sim::new();
    let (_call, tag, inv) = transferring(&mut sim, "t2");
    sim.sip(
        &phone_response(&inv, 200, "OK", "far2", Some(SDP_AGENT)),
        udp(FAR),
    );
    sim.sent.clear();
    sim.sip(
        &caller_request("BYE", "t2", &tag, 2, "bye2", None, ""),
        udp(TRUNK),
    );
    let bye = sim.last_request("BYE").expect("BYE to the far end");
    assert_eq!(bye.headers.to_tag(), Some("far2"));
    assert_eq!(sim.core.active_calls(), 0);
    only_enqueues_or_nothing(&sim);
}

#[test]
fn a_busy_transfer_returns_to_the_flow_with_the_status() {
    let mut sim = Sim::new();
    let (call, _tag, inv) = transferring(&mut sim, "t3");
    sim.sip(
        &phone_response(&inv, 486, "Busy Here", "far3", None),
        udp(FAR),
    );
    assert_eq!(sim.core.call_phase(&call), Some("ivr"));
    assert_eq!(
        last_event(&sim),
        IvrEvent::TransferFailed {
            sip_status: 486,
            reason: "486 Busy Here".into()
        }
    );
    assert!(sim
        .media
        .iter()
        .any(|(c, m)| *c == call && *m == MediaCommand::StopPlayback));
    // The flow goes on: it can enqueue the call now.
    sim.ivr_reply(vec![IvrAction::Enqueue {
        queue: "sales".into(),
        priority: 0,
        skills: Default::default(),
        data: Default::default(),
    }]);
    assert_eq!(sim.core.call_phase(&call), Some("queued"));
    assert!(matches!(sim.dist.last(), Some(ToDistributor::Enqueue(_))));
}

#[test]
fn an_unanswered_transfer_is_cancelled_at_its_timeout() {
    let mut sim = Sim::new();
    let (call, _tag, inv) = transferring(&mut sim, "t4");
    sim.sip(
        &phone_response(&inv, 180, "Ringing", "far4", None),
        udp(FAR),
    );
    sim.advance(Duration::from_millis(19_900));
    assert_eq!(sim.count_requests("CANCEL"), 0);
    sim.advance(Duration::from_millis(200));
    let cancel = sim
        .last_request("CANCEL")
        .expect("cancelled at the timeout");
    assert_eq!(cancel.uri, FAR_URI);
    sim.sip(
        &phone_response(&inv, 487, "Request Terminated", "far4", None),
        udp(FAR),
    );
    assert_eq!(sim.core.call_phase(&call), Some("ivr"));
    assert!(matches!(
        last_event(&sim),
        IvrEvent::TransferFailed { sip_status: 487, reason } if reason == "no answer"
    ));
    only_enqueues_or_nothing(&sim);
}

#[test]
fn a_far_end_that_never_answers_at_all_fails_with_timer_b() {
    let mut sim = Sim::new();
    let (call, _tag, _inv) = transferring(&mut sim, "t5");
    sim.lose = Some(Box::new(|_| true));
    sim.advance(Duration::from_secs(40));
    assert_eq!(sim.core.call_phase(&call), Some("ivr"));
    assert!(matches!(last_event(&sim), IvrEvent::TransferFailed { .. }));
}

#[test]
fn the_caller_hanging_up_while_the_transfer_rings_cancels_it() {
    let mut sim = Sim::new();
    let (_call, tag, inv) = transferring(&mut sim, "t6");
    sim.sip(
        &phone_response(&inv, 180, "Ringing", "far6", None),
        udp(FAR),
    );
    sim.sent.clear();
    sim.sip(
        &caller_request("BYE", "t6", &tag, 2, "bye6", None, ""),
        udp(TRUNK),
    );
    assert!(sim.last_response(200).is_some());
    let cancel = sim.last_request("CANCEL").expect("far end cancelled");
    assert_eq!(cancel.uri, FAR_URI);
    assert_eq!(sim.core.active_calls(), 0);
    only_enqueues_or_nothing(&sim);
}

#[test]
fn a_transfer_to_an_unresolved_name_fails_at_once() {
    let mut sim = Sim::new();
    let (call, _tag) = call_in_ivr(&mut sim, "t7");
    sim.ivr_reply(vec![IvrAction::Transfer {
        uri: "sip:night@nowhere.invalid".into(),
        timeout_ms: 0,
    }]);
    assert_eq!(sim.core.call_phase(&call), Some("ivr"));
    assert!(matches!(
        last_event(&sim),
        IvrEvent::TransferFailed { sip_status: 0, .. }
    ));
    assert_eq!(sim.count_requests("INVITE"), 0);
}

fn record_token(sim: &Sim, call: &CallId) -> PlayToken {
    sim.media
        .iter()
        .rev()
        .find_map(|(c, m)| match m {
            MediaCommand::Record { token, .. } if c == call => Some(*token),
            _ => None,
        })
        .expect("recording asked of the media")
}

#[test]
fn a_recording_steps_the_flow_with_its_file() {
    let mut sim = Sim::new();
    let (call, _tag) = call_in_ivr(&mut sim, "v1");
    sim.ivr_reply(vec![IvrAction::Record {
        max_ms: 60_000,
        silence_ms: 3000,
        beep: true,
    }]);
    let token = record_token(&sim, &call);
    assert!(sim.media.iter().any(|(_, m)| matches!(
        m,
        MediaCommand::Record {
            max_ms: 60_000,
            silence_ms: 3000,
            beep: true,
            ..
        }
    )));
    let steps = sim.ivr.len();
    // `#` pressed: the digit handler stops the recording.
    sim.core.stop_recording(&call);
    sim.drain();
    assert!(sim
        .media
        .iter()
        .any(|(c, m)| *c == call && *m == MediaCommand::StopRecording));
    // A stale token (an older recording) is ignored.
    sim.input(Input::Media(MediaEvent::Recorded {
        call: call.clone(),
        token: PlayToken(token.0 + 100),
        file: "old.wav".into(),
        duration_ms: 1,
    }));
    assert_eq!(sim.ivr.len(), steps);
    sim.input(Input::Media(MediaEvent::Recorded {
        call: call.clone(),
        token,
        file: "v1-1.wav".into(),
        duration_ms: 4200,
    }));
    assert_eq!(
        last_event(&sim),
        IvrEvent::Recorded {
            file: "v1-1.wav".into(),
            duration_ms: 4200
        }
    );
    // A second recording that fails.
    sim.ivr_reply(vec![IvrAction::Record {
        max_ms: 1000,
        silence_ms: 0,
        beep: false,
    }]);
    let token = record_token(&sim, &call);
    sim.input(Input::Media(MediaEvent::RecordFailed {
        call: call.clone(),
        token,
        reason: "nothing said".into(),
    }));
    assert_eq!(
        last_event(&sim),
        IvrEvent::RecordFailed {
            reason: "nothing said".into()
        }
    );
    // Not recording: stop is a no-op.
    let before = sim.media.len();
    sim.core.stop_recording(&call);
    sim.drain();
    assert_eq!(sim.media.len(), before);
}

#[test]
fn a_callback_request_reaches_the_distributor_and_the_flow_goes_on() {
    let mut sim = Sim::new();
    let (call, _tag) = call_in_ivr(&mut sim, "cb1");
    sim.ivr_reply(vec![
        IvrAction::Callback {
            queue: "support".into(),
            number: "+15551234".into(),
            priority: 3,
            voicemail: Some("cb1-1.wav".into()),
            data: BTreeMap::from([("lang".to_string(), "ru".to_string())]),
        },
        IvrAction::Hangup {
            reason: "callback booked".into(),
        },
    ]);
    let req = sim
        .dist
        .iter()
        .find_map(|m| match m {
            ToDistributor::Callback(r) => Some(r.clone()),
            _ => None,
        })
        .expect("callback sent");
    assert_eq!(req.call, call);
    assert_eq!(req.queue, "support");
    assert_eq!(req.number, "+15551234");
    assert_eq!(req.priority, 3);
    assert_eq!(req.voicemail.as_deref(), Some("cb1-1.wav"));
    assert_eq!(
        req.caller.variables.get("lang").map(String::as_str),
        Some("ru")
    );
    assert_eq!(req.caller.did, "5550100");
    assert_eq!(req.requested_at_ms, 1_800_000_000_000);
    assert_eq!(sim.core.active_calls(), 0, "the flow went on to its hangup");
}

#[test]
fn enqueue_carries_extra_skills_and_call_pop_data() {
    let mut sim = Sim::new();
    let (call, _tag) = call_in_ivr(&mut sim, "e1");
    sim.ivr_reply(vec![IvrAction::Enqueue {
        queue: "support".into(),
        priority: 2,
        skills: BTreeMap::from([("russian".to_string(), 1u8)]),
        data: BTreeMap::from([("account".to_string(), "42".to_string())]),
    }]);
    let Some(ToDistributor::Enqueue(e)) = sim.dist.last() else {
        panic!("enqueued: {:?}", sim.dist);
    };
    assert_eq!(e.call, call);
    assert_eq!(e.skills.get("russian"), Some(&1));
    assert_eq!(
        e.caller.variables.get("account").map(String::as_str),
        Some("42")
    );
}

#[test]
fn a_ringing_transfer_survives_a_restore_and_still_returns_to_the_flow() {
    let mut sim = Sim::new();
    let (call, _tag, inv) = transferring(&mut sim, "h1");
    let json = sim.core.snapshot(sim.now).to_json();
    let back = acd_b2bua::Snapshot::from_json(&json).expect("decodes");
    sim.core = acd_b2bua::EdgeCore::restore(config(), back, sim.now);
    sim.drain();
    assert_eq!(sim.core.call_phase(&call), Some("ringing"));
    sim.sip(
        &phone_response(&inv, 486, "Busy Here", "far7", None),
        udp(FAR),
    );
    assert_eq!(sim.core.call_phase(&call), Some("ivr"));
    assert!(matches!(
        last_event(&sim),
        IvrEvent::TransferFailed {
            sip_status: 486,
            ..
        }
    ));
    only_enqueues_or_nothing(&sim);
}

#[test]
fn a_recording_cut_by_a_restore_fails_instead_of_hanging() {
    let mut sim = Sim::new();
    let (call, _tag) = call_in_ivr(&mut sim, "h2");
    sim.ivr_reply(vec![IvrAction::Record {
        max_ms: 60_000,
        silence_ms: 3000,
        beep: false,
    }]);
    let snap = sim.core.snapshot(sim.now);
    sim.core = acd_b2bua::EdgeCore::restore(config(), snap, sim.now);
    sim.drain();
    assert_eq!(sim.core.call_phase(&call), Some("ivr"));
    assert!(matches!(
        last_event(&sim),
        IvrEvent::RecordFailed { reason } if reason.contains("hand-over")
    ));
}
