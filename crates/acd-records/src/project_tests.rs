//! The projection of a scripted sequence, computed by hand.

use super::*;
use acd_routing::{
    AgentId, CallNote, CallbackDial, EdgeOutcome, Explanation, Extension, IvrStep, QueueId, Seq,
    Term, Timestamp,
};

pub(crate) fn rec(seq: u64, at: u64, event: Event) -> EventRecord {
    EventRecord {
        seq: Seq(seq),
        term: Term(1),
        at: Timestamp(at),
        event,
        origin: None,
    }
}

pub(crate) fn queued(call: &str, queue: &str, at: u64) -> Event {
    Event::CallQueued {
        call: call.into(),
        queue: queue.into(),
        priority: 2,
        caller: CallerInfo {
            from: "sip:555@x".into(),
            display: "Ann".into(),
            number: "555".into(),
            did: "100".into(),
            variables: [("acct".to_string(), "7".to_string())].into(),
        },
        enqueued_at: Timestamp(at),
        skills: Default::default(),
    }
}

pub(crate) fn offered(call: &str, agent: &str, also: &[&str]) -> Event {
    Event::CallOffered {
        call: call.into(),
        agent: agent.into(),
        extension: Extension::from("1001"),
        queue: QueueId::from("sales"),
        caller: CallerInfo::default(),
        expires_at: Timestamp(99_000),
        explanation: Explanation::default(),
        auto_answer: false,
        ring_also: also
            .iter()
            .map(|a| (AgentId::from(*a), Extension::from("1002")))
            .collect(),
        dial: None,
    }
}

fn kinds(ops: &[Op]) -> Vec<(String, i32)> {
    ops.iter()
        .filter_map(|op| match op {
            Op::CallEvent { idx, row } => Some((format!("call:{}", row.kind), *idx)),
            Op::AgentEvent { idx, row } => Some((format!("agent:{}", row.state), *idx)),
            _ => None,
        })
        .collect()
}

#[test]
fn queued_sets_first_and_last_columns_and_a_trail_row() {
    let ops = project(&rec(7, 1_000, queued("c1", "sales", 900)));
    let Op::Call {
        call_id,
        create,
        changes,
    } = &ops[0]
    else {
        panic!("{ops:?}")
    };
    assert_eq!((call_id.as_str(), *create), ("c1", true));
    assert!(changes.contains(&Change::First(Col::FirstQueue, "sales".into())));
    assert!(changes.contains(&Change::Set(Col::Queue, "sales".into())));
    assert!(changes.contains(&Change::First(Col::QueuedAt, 900.into())));
    assert!(changes.contains(&Change::First(Col::ArrivedAt, 900.into())));
    assert!(changes.contains(&Change::Set(Col::Outcome, "waiting".into())));
    assert!(changes.contains(&Change::IfBlank(Col::CallerNumber, "555".into())));
    assert!(changes.contains(&Change::Set(Col::Variables, r#"{"acct":"7"}"#.into())));
    let Op::CallEvent { idx: 0, row } = &ops[1] else {
        panic!("{ops:?}")
    };
    assert_eq!(
        (row.seq, row.at, row.kind.as_str(), row.queue.as_deref()),
        (7, 1_000, "queued", Some("sales"))
    );
    assert_eq!(ops.len(), 2);
}

#[test]
fn an_offer_reserves_every_rung_agent_and_counts_once() {
    let ops = project(&rec(8, 2_000, offered("c1", "alice", &["bob"])));
    assert_eq!(
        kinds(&ops),
        [
            ("call:offered".to_string(), 0),
            ("agent:reserved".to_string(), 1),
            ("agent:reserved".to_string(), 2)
        ]
    );
    assert!(matches!(&ops[0], Op::Call { changes, .. }
        if changes == &vec![Change::First(Col::FirstOfferedAt, 2_000.into()), Change::Increment(Col::Offers)]));
}

#[test]
fn a_callback_offer_also_says_callback_placed() {
    let mut e = offered("c1:cb", "alice", &[]);
    if let Event::CallOffered { dial, .. } = &mut e {
        *dial = Some(CallbackDial {
            number: "555".into(),
            trunk: String::new(),
            ring_ms: 30_000,
            attempt: 1,
        });
    }
    let k = kinds(&project(&rec(9, 3_000, e)));
    assert_eq!(k[1], ("call:callback_placed".to_string(), 1));
}

#[test]
fn connect_and_abandon_release_the_other_ringing_agents() {
    let ops = project(&rec(
        10,
        3_000,
        Event::CallConnected {
            call: "c1".into(),
            agent: "bob".into(),
        },
    ));
    assert_eq!(
        kinds(&ops),
        [
            ("call:answered".to_string(), 0),
            ("agent:on_call".to_string(), 1)
        ]
    );
    assert_eq!(
        ops.last(),
        Some(&Op::ReleaseRinging {
            call_id: "c1".into(),
            seq: 10,
            at: 3_000,
            idx_from: 2
        })
    );
    let abandoned = project(&rec(
        11,
        4_000,
        Event::CallAbandoned {
            call: "c2".into(),
            queue: "sales".into(),
            waited_ms: 3_000,
            agent: Some("alice".into()),
        },
    ));
    assert!(matches!(abandoned.last(), Some(Op::ReleaseRinging { .. })));
    // Waiting callers who hang up release nobody.
    let waiting = project(&rec(
        12,
        4_000,
        Event::CallAbandoned {
            call: "c3".into(),
            queue: "sales".into(),
            waited_ms: 3_000,
            agent: None,
        },
    ));
    assert_eq!(kinds(&waiting), [("call:abandoned".to_string(), 0)]);
    assert!(!waiting
        .iter()
        .any(|o| matches!(o, Op::ReleaseRinging { .. })));
}

#[test]
fn leaving_wrap_up_closes_it_but_going_into_it_does_not() {
    let ready = project(&rec(
        20,
        9_000,
        Event::AgentStateChanged {
            agent: "alice".into(),
            state: AgentState::Ready,
            reason: None,
        },
    ));
    assert_eq!(
        ready[0],
        Op::CloseWrapUp {
            agent: "alice".into(),
            at: 9_000
        }
    );
    let wrap = project(&rec(
        21,
        9_000,
        Event::AgentStateChanged {
            agent: "alice".into(),
            state: AgentState::WrapUp {
                until: Timestamp(10_000),
            },
            reason: None,
        },
    ));
    assert_eq!(kinds(&wrap), [("agent:wrap_up".to_string(), 0)]);
    let out = project(&rec(
        22,
        9_500,
        Event::AgentLoggedOut {
            agent: "alice".into(),
        },
    ));
    assert!(matches!(out[0], Op::CloseWrapUp { .. }));
}

#[test]
fn a_note_fills_the_edge_columns_and_the_trail_at_the_edges_times() {
    let note = CallNote {
        arrived_at: Timestamp(500),
        left_at: Timestamp(9_000),
        did: "100".into(),
        caller: "555".into(),
        flow: "main".into(),
        steps: vec![IvrStep {
            at: Timestamp(700),
            node: "menu".into(),
            input: "1".into(),
        }],
        outcome: EdgeOutcome::Queued,
        survey_score: Some(4),
    };
    let ops = project(&rec(
        30,
        9_100,
        Event::CallNoted {
            call: "c1".into(),
            note,
        },
    ));
    let Op::Call { changes, .. } = &ops[0] else {
        panic!()
    };
    assert!(changes.contains(&Change::Set(Col::ArrivedAt, 500.into())));
    assert!(changes.contains(&Change::Set(Col::EdgeOutcome, "queued".into())));
    assert!(changes.contains(&Change::Set(Col::SurveyScore, 4.into())));
    let trail: Vec<(&str, i64)> = ops
        .iter()
        .filter_map(|o| match o {
            Op::CallEvent { row, .. } => Some((row.kind.as_str(), row.at)),
            _ => None,
        })
        .collect();
    assert_eq!(
        trail,
        [
            ("arrived", 500),
            ("ivr_input", 700),
            ("survey", 9_000),
            ("left", 9_000)
        ]
    );
}

#[test]
fn a_callback_marks_the_inbound_call_and_queues_its_cb_row() {
    let ops = project(&rec(
        40,
        5_000,
        Event::CallbackRequested {
            call: "c1".into(),
            record: CallbackRecord {
                queue: "sales".into(),
                number: "555".into(),
                priority: 1,
                voicemail: None,
                caller: CallerInfo::default(),
                requested_at: Timestamp(4_900),
            },
        },
    ));
    assert!(
        matches!(&ops[0], Op::Call { call_id, create: false, changes }
        if call_id == "c1" && changes == &vec![Change::Set(Col::Outcome, "callback".into())])
    );
    let cb = ops
        .iter()
        .find_map(|o| match o {
            Op::Call {
                call_id, changes, ..
            } if call_id == "c1:cb" => Some(changes),
            _ => None,
        })
        .expect("cb row");
    assert!(cb.contains(&Change::Set(Col::CallbackOf, "c1".into())));
    assert!(cb.contains(&Change::Set(Col::CallbackRequestedAt, 4_900.into())));
    assert_eq!(
        kinds(&ops),
        [
            ("call:callback_requested".to_string(), 0),
            ("call:queued".to_string(), 1)
        ]
    );
}

#[test]
fn overflow_to_a_queue_keeps_waiting_others_end_it() {
    let to_queue = project(&rec(
        50,
        6_000,
        Event::CallOverflowed {
            call: "c1".into(),
            from: "sales".into(),
            reason: OverflowReason::MaxWait,
            action: OverflowAction::Queue("support".into()),
            waited_ms: 60_000,
        },
    ));
    let Op::Call { changes, .. } = &to_queue[0] else {
        panic!()
    };
    assert!(changes.contains(&Change::Set(Col::Queue, "support".into())));
    assert!(!changes
        .iter()
        .any(|c| matches!(c, Change::Set(Col::Outcome, _))));
    let to_uri = project(&rec(
        51,
        6_000,
        Event::CallOverflowed {
            call: "c2".into(),
            from: "sales".into(),
            reason: OverflowReason::Closed,
            action: OverflowAction::Uri("sip:night@x".into()),
            waited_ms: 0,
        },
    ));
    let Op::Call { changes, .. } = &to_uri[0] else {
        panic!()
    };
    assert!(changes.contains(&Change::Set(Col::Outcome, "overflowed".into())));
    assert!(changes.contains(&Change::Set(Col::OverflowAction, "uri".into())));
}

#[test]
fn records_about_configuration_project_to_nothing() {
    let ops = project(&rec(60, 1, Event::CallbackRetryDue { call: "c1".into() }));
    assert!(ops.is_empty());
}

#[test]
fn projection_is_stateless() {
    let r = rec(61, 7_000, offered("c9", "alice", &["bob"]));
    assert_eq!(project(&r), project(&r));
}
