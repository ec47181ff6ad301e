//! Harnesses for what a caller controls in the IVR: key presses (RFC 4733
//! packets and SIP INFO bodies) and, through them and through the company's
//! HTTP answers, the events a flow is stepped with.

use std::collections::BTreeMap;

use acd_b2bua::dtmf_info::parse_info_digit;
use acd_ivr::{step, Action, Event, Flow, Session, StepEnv};
use acd_media::{rtp, DtmfDetector};

/// Keys RFC 4733 events 0–15 and INFO bodies can name.
const KEYS: &str = "0123456789*#ABCD";

/// `dtmf`: the input cut into packets (`[length, bytes…]`) fed to one
/// detector, and read whole as an INFO body of both DTMF types. A detector
/// reports only keys, and never a press (SSRC, timestamp) again while it is
/// among the last [`acd_media::dtmf::REMEMBERED`] it reported (late packets
/// of a press that old are not expected); an INFO body yields a key or a
/// refusal, never a panic.
pub fn dtmf(data: &[u8]) {
    let mut detector = DtmfDetector::default();
    let mut recent: std::collections::VecDeque<(u32, u32)> = Default::default();
    let mut events = 0usize;
    let mut digits = 0usize;
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let n = usize::from(len).min(tail.len());
        let (packet, next) = tail.split_at(n);
        rest = next;
        let Ok(info) = rtp::parse(packet) else {
            continue;
        };
        if acd_media::parse_dtmf(info.payload(packet)).is_some() {
            events += 1;
        }
        if let Some(d) = detector.on_packet(&info, packet) {
            assert!(KEYS.contains(d), "detector reported {d:?}");
            let id = (info.ssrc.0, info.ts);
            assert!(!recent.contains(&id), "press {id:?} reported twice");
            recent.push_back(id);
            if recent.len() > acd_media::dtmf::REMEMBERED {
                recent.pop_front();
            }
            digits += 1;
        }
    }
    assert!(digits <= events, "{digits} digits from {events} events");
    for content_type in ["application/dtmf-relay", "application/dtmf"] {
        if let Ok(Some(d)) = parse_info_digit(content_type, data) {
            assert!(KEYS.contains(d), "INFO gave {d:?}");
        }
    }
}

/// Flows the `ivr_step` target drives: the shipped 24/7 line.
const SUPPORT247: &str = include_str!("../../../config/flows/support247.toml");

/// Parsed once: parsing the TOML would cost more than the steps.
fn support247() -> &'static Flow {
    static FLOW: std::sync::OnceLock<Flow> = std::sync::OnceLock::new();
    FLOW.get_or_init(|| match toml_edit::de::from_str(SUPPORT247) {
        Ok(f) => f,
        Err(e) => panic!("support247.toml: {e}"),
    })
}

/// Each step is `[kind, length, bytes…]`: the caller's number (first), digit
/// strings, lookup answers (fields from the bytes), recordings, transfer
/// failures, the clock. The flow must keep its invariants whatever comes:
/// the session stays on a node of the flow, a step asks for a bounded number
/// of actions, lookup URLs carry no raw space or control byte (variables are
/// percent-encoded), and a refusal is an error, not a panic.
pub fn ivr_step(data: &[u8]) {
    let flow = support247();
    let mut env = StepEnv {
        now_unix_ms: 1_796_029_200_000,
    };
    let mut session = Session::default();
    let mut rest = data;
    let mut first = true;
    while let Some((&kind, tail)) = rest.split_first() {
        let Some((&len, tail)) = tail.split_first() else {
            break;
        };
        let n = usize::from(len).min(tail.len());
        let (bytes, next) = tail.split_at(n);
        rest = next;
        let text = String::from_utf8_lossy(bytes).into_owned();
        let event = if first {
            first = false;
            Event::Started {
                did: "5550247".into(),
                caller: text,
                caller_name: String::new(),
            }
        } else {
            match event(kind, text, &mut env) {
                Some(e) => e,
                None => continue,
            }
        };
        match step(flow, session.clone(), event, &env) {
            Ok((s, actions)) => {
                check(flow, &s, &actions);
                session = s;
            }
            Err(_) => continue,
        }
    }
}

fn event(kind: u8, text: String, env: &mut StepEnv) -> Option<Event> {
    Some(match kind % 8 {
        0 => Event::PromptFinished,
        1 => Event::Digits { digits: text },
        2 => Event::NoInput,
        3 => Event::LookupDone {
            http_status: u16::from(text.len() as u8) * 3,
            fields: BTreeMap::from([
                ("status".to_string(), text.clone()),
                ("eta".to_string(), text),
            ]),
        },
        4 => Event::LookupFailed { reason: text },
        5 => Event::Recorded {
            file: text,
            duration_ms: 1000,
        },
        6 => Event::TransferFailed {
            sip_status: 486,
            reason: text,
        },
        _ => {
            // The clock jumps by up to ~12 days (business hours, holidays).
            env.now_unix_ms += i64::from(text.len() as u32) * 3_600_000;
            return None;
        }
    })
}

fn check(flow: &Flow, s: &Session, actions: &[Action]) {
    assert!(
        flow.nodes.contains_key(&s.node),
        "the session left the flow: {s:?}"
    );
    assert!(actions.len() <= 64, "{} actions in one step", actions.len());
    for a in actions {
        if let Action::Lookup { url, .. } = a {
            assert!(
                !url.bytes().any(|b| b == b' ' || b.is_ascii_control()),
                "unencoded lookup URL {url:?}"
            );
        }
    }
}
