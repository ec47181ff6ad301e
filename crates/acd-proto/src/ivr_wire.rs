//! `acd.v1.IvrService` messages ↔ the interpreter's own types, shared by the
//! edge (events out, actions in) and the runner (events in, actions out).

use std::collections::BTreeMap;

use acd_ivr::{Action, CollectSpec, Event, Session};

use crate::v1 as pb;
use pb::ivr_action::Kind as ActionKind;
use pb::ivr_event::Kind as EventKind;

pub fn session_to_wire(flow_id: &str, s: &Session) -> pb::IvrSession {
    pb::IvrSession {
        flow_id: flow_id.to_string(),
        node: s.node.clone(),
        variables: s.variables.clone().into_iter().collect(),
        flow_version: s.flow_version.clone(),
    }
}

pub fn session_from_wire(s: pb::IvrSession) -> Session {
    Session {
        flow_version: s.flow_version,
        node: s.node,
        variables: s.variables.into_iter().collect(),
    }
}

/// `None` for the runner-internal lookup events, which never cross the wire.
pub fn event_to_wire(e: &Event) -> Option<pb::IvrEvent> {
    let kind = match e.clone() {
        Event::Started {
            did,
            caller,
            caller_name,
        } => EventKind::Started(pb::Started {
            did,
            caller,
            caller_name,
        }),
        Event::PromptFinished => EventKind::PromptFinished(pb::PromptFinished::default()),
        Event::Digits { digits } => EventKind::Digits(pb::DigitsCollected { digits }),
        Event::NoInput => EventKind::Timeout(pb::InputTimeout {}),
        Event::Recorded { file, duration_ms } => {
            EventKind::Recorded(pb::Recorded { file, duration_ms })
        }
        Event::RecordFailed { reason } => EventKind::RecordFailed(pb::RecordFailed { reason }),
        Event::TransferFailed { sip_status, reason } => {
            EventKind::TransferFailed(pb::TransferFailed {
                sip_status: u32::from(sip_status),
                reason,
            })
        }
        Event::LookupDone { .. } | Event::LookupFailed { .. } => return None,
    };
    Some(pb::IvrEvent { kind: Some(kind) })
}

/// `None` for a missing or unknown event kind.
pub fn event_from_wire(e: Option<pb::IvrEvent>) -> Option<Event> {
    Some(match e?.kind? {
        EventKind::Started(s) => Event::Started {
            did: s.did,
            caller: s.caller,
            caller_name: s.caller_name,
        },
        EventKind::PromptFinished(_) => Event::PromptFinished,
        EventKind::Digits(d) => Event::Digits { digits: d.digits },
        EventKind::Timeout(_) => Event::NoInput,
        EventKind::Recorded(r) => Event::Recorded {
            file: r.file,
            duration_ms: r.duration_ms,
        },
        EventKind::RecordFailed(r) => Event::RecordFailed { reason: r.reason },
        EventKind::TransferFailed(t) => Event::TransferFailed {
            sip_status: u16::try_from(t.sip_status).unwrap_or(0),
            reason: t.reason,
        },
    })
}

/// `None` for the runner-internal `Lookup`, which never crosses the wire.
pub fn action_to_wire(a: Action) -> Option<pb::IvrAction> {
    let kind = match a {
        Action::Play { prompts, barge_in } => ActionKind::Play(pb::PlayPrompt {
            prompt: String::new(),
            prompts,
            barge_in,
        }),
        Action::Collect(c) => ActionKind::Collect(pb::CollectDigits {
            max_digits: c.max_digits,
            timeout_ms: c.first_digit_timeout_ms,
            terminator: c.terminator.map(String::from).unwrap_or_default(),
            min_digits: c.min_digits,
            inter_digit_timeout_ms: c.inter_digit_timeout_ms,
        }),
        Action::Enqueue {
            queue,
            priority,
            skills,
            data,
        } => ActionKind::Enqueue(pb::Enqueue {
            queue_id: queue,
            priority,
            skills: skills.into_iter().map(|(k, v)| (k, u32::from(v))).collect(),
            data: data.into_iter().collect(),
        }),
        Action::Callback {
            queue,
            number,
            priority,
            voicemail,
            data,
        } => ActionKind::Callback(pb::RequestCallback {
            queue_id: queue,
            number,
            priority,
            voicemail: voicemail.unwrap_or_default(),
            data: data.into_iter().collect(),
        }),
        Action::Record {
            max_ms,
            silence_ms,
            beep,
        } => ActionKind::Record(pb::Record {
            max_ms,
            silence_ms,
            beep,
        }),
        Action::Transfer { uri, timeout_ms } => {
            ActionKind::Transfer(pb::Transfer { uri, timeout_ms })
        }
        Action::Hangup { reason } => ActionKind::Hangup(pb::Hangup { reason }),
        Action::Lookup { .. } => return None,
    };
    Some(pb::IvrAction { kind: Some(kind) })
}

/// `None` for an action of an unknown kind (a newer runner); the edge skips it.
pub fn action_from_wire(a: pb::IvrAction) -> Option<Action> {
    Some(match a.kind? {
        ActionKind::Play(p) => Action::Play {
            prompts: (!p.prompt.is_empty())
                .then_some(p.prompt)
                .into_iter()
                .chain(p.prompts)
                .collect(),
            barge_in: p.barge_in,
        },
        ActionKind::Collect(c) => Action::Collect(CollectSpec {
            min_digits: c.min_digits,
            max_digits: c.max_digits.max(1),
            terminator: c.terminator.chars().next(),
            first_digit_timeout_ms: c.timeout_ms,
            inter_digit_timeout_ms: if c.inter_digit_timeout_ms == 0 {
                c.timeout_ms
            } else {
                c.inter_digit_timeout_ms
            },
        }),
        ActionKind::Enqueue(q) => Action::Enqueue {
            queue: q.queue_id,
            priority: q.priority,
            skills: skills_from_wire(q.skills),
            data: q.data.into_iter().collect(),
        },
        ActionKind::Callback(c) => Action::Callback {
            queue: c.queue_id,
            number: c.number,
            priority: c.priority,
            voicemail: (!c.voicemail.is_empty()).then_some(c.voicemail),
            data: c.data.into_iter().collect(),
        },
        ActionKind::Record(r) => Action::Record {
            max_ms: r.max_ms,
            silence_ms: r.silence_ms,
            beep: r.beep,
        },
        ActionKind::Transfer(t) => Action::Transfer {
            uri: t.uri,
            timeout_ms: t.timeout_ms,
        },
        ActionKind::Hangup(h) => Action::Hangup { reason: h.reason },
    })
}

/// Levels are 1–10; anything larger is clamped rather than wrapped.
pub fn skills_from_wire(skills: impl IntoIterator<Item = (String, u32)>) -> BTreeMap<String, u8> {
    skills
        .into_iter()
        .map(|(k, v)| (k, u8::try_from(v.min(10)).unwrap_or(10)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_round_trip() {
        let actions = vec![
            Action::Play {
                prompts: vec!["en/welcome".into(), "en/digit_5".into()],
                barge_in: true,
            },
            Action::Collect(CollectSpec {
                min_digits: 4,
                max_digits: 8,
                terminator: Some('#'),
                first_digit_timeout_ms: 5000,
                inter_digit_timeout_ms: 3000,
            }),
            Action::Enqueue {
                queue: "support".into(),
                priority: 5,
                skills: BTreeMap::from([("lang_ru".into(), 3)]),
                data: BTreeMap::from([("order".into(), "1234".into())]),
            },
            Action::Callback {
                queue: "support".into(),
                number: "+15550100".into(),
                priority: 1,
                voicemail: Some("vm-1.wav".into()),
                data: BTreeMap::new(),
            },
            Action::Record {
                max_ms: 60_000,
                silence_ms: 5000,
                beep: true,
            },
            Action::Transfer {
                uri: "sip:night@203.0.113.7".into(),
                timeout_ms: 30_000,
            },
            Action::Hangup {
                reason: "done".into(),
            },
        ];
        for a in actions {
            let back = action_from_wire(action_to_wire(a.clone()).unwrap()).unwrap();
            assert_eq!(back, a);
        }
        assert_eq!(
            action_to_wire(Action::Lookup {
                url: "http://x".into(),
                timeout_ms: 1
            }),
            None
        );
    }

    #[test]
    fn events_round_trip() {
        let events = vec![
            Event::Started {
                did: "5550100".into(),
                caller: "+15550123".into(),
                caller_name: "Ann".into(),
            },
            Event::PromptFinished,
            Event::Digits {
                digits: "12#".into(),
            },
            Event::NoInput,
            Event::Recorded {
                file: "vm-1.wav".into(),
                duration_ms: 4200,
            },
            Event::RecordFailed {
                reason: "no media".into(),
            },
            Event::TransferFailed {
                sip_status: 486,
                reason: "busy".into(),
            },
        ];
        for e in events {
            let back = event_from_wire(event_to_wire(&e)).unwrap();
            assert_eq!(back, e);
        }
    }
}
