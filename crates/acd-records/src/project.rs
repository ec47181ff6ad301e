//! The projection: one committed [`EventRecord`] → the database operations it
//! stands for ([`Op`]), with no I/O and no state across records. A writer that
//! restarts, or the other distributor of a pair, derives the same operations
//! from the same record; the `applied_events` gate (see the crate docs) makes
//! sure they run once. Everything that depends on earlier records ("the first
//! offer", "the agent's open wrap-up") is expressed as a conditional update the
//! database evaluates ([`Change::First`], [`Op::CloseWrapUp`], …), never as
//! memory of what came before.
//!
//! Column semantics: [`crate::schema`].

use acd_routing::{
    callback_id, AgentState, CallId, CallNote, CallbackRecord, CallerInfo, EndReason, Event,
    EventRecord, OverflowAction, OverflowReason, TransferTarget, RONA_REASON,
};
use serde_json::json;

use crate::rows::{AgentEventRow, CallEventRow};

/// A column of `calls` that events change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Col {
    ArrivedAt,
    LeftAt,
    Did,
    CallerNumber,
    CallerName,
    Flow,
    IvrSteps,
    Variables,
    FirstQueue,
    Queue,
    Priority,
    QueuedAt,
    FirstOfferedAt,
    Offers,
    Agent,
    AnsweredAt,
    TalkEndedAt,
    EndedBy,
    WrapEndedAt,
    AbandonedAt,
    WaitedMs,
    Outcome,
    EdgeOutcome,
    OverflowAction,
    Transfers,
    CallbackOf,
    CallbackRequestedAt,
    SurveyScore,
}

impl Col {
    /// The column's name in SQL.
    pub fn name(self) -> &'static str {
        match self {
            Col::ArrivedAt => "arrived_at",
            Col::LeftAt => "left_at",
            Col::Did => "did",
            Col::CallerNumber => "caller_number",
            Col::CallerName => "caller_name",
            Col::Flow => "flow",
            Col::IvrSteps => "ivr_steps",
            Col::Variables => "variables",
            Col::FirstQueue => "first_queue",
            Col::Queue => "queue",
            Col::Priority => "priority",
            Col::QueuedAt => "queued_at",
            Col::FirstOfferedAt => "first_offered_at",
            Col::Offers => "offers",
            Col::Agent => "agent",
            Col::AnsweredAt => "answered_at",
            Col::TalkEndedAt => "talk_ended_at",
            Col::EndedBy => "ended_by",
            Col::WrapEndedAt => "wrap_ended_at",
            Col::AbandonedAt => "abandoned_at",
            Col::WaitedMs => "waited_ms",
            Col::Outcome => "outcome",
            Col::EdgeOutcome => "edge_outcome",
            Col::OverflowAction => "overflow_action",
            Col::Transfers => "transfers",
            Col::CallbackOf => "callback_of",
            Col::CallbackRequestedAt => "callback_requested_at",
            Col::SurveyScore => "survey_score",
        }
    }
}

/// A value written to a column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Text(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Text(s)
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Int(v)
    }
}

/// How one column of a call row changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// `col = value` (the last event wins).
    Set(Col, Value),
    /// `col = COALESCE(col, value)`: the first event wins.
    First(Col, Value),
    /// Text column set only while it is still empty.
    IfBlank(Col, String),
    /// `col = col + 1`.
    Increment(Col),
}

/// One database operation of a record, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Creates the call's row if missing (`create`) and applies `changes`.
    Call {
        call_id: String,
        create: bool,
        changes: Vec<Change>,
    },
    /// A row of the queue event trail; `idx` orders the rows of one record.
    CallEvent { idx: i32, row: CallEventRow },
    /// A row of the agent state trail.
    AgentEvent { idx: i32, row: AgentEventRow },
    /// The agent left wrap-up at `at`: the call whose talk ended and whose
    /// wrap-up is still open gets `wrap_ended_at = at`.
    CloseWrapUp { agent: String, at: i64 },
    /// The ring-all agents still reserved for `call` (their last state change
    /// says so) return to ready; their rows are numbered from `idx_from`.
    /// Needed because the event names only the agent who answered.
    ReleaseRinging {
        call_id: String,
        seq: i64,
        at: i64,
        idx_from: i32,
    },
}

/// The operations of one record (empty for events that records ignore:
/// configuration and binding changes, callback retry timers).
pub fn project(rec: &EventRecord) -> Vec<Op> {
    let mut p = Projection {
        seq: rec.seq.0 as i64,
        at: rec.at.0 as i64,
        ops: Vec::new(),
        next_idx: 0,
    };
    p.event(&rec.event);
    p.ops
}

/// Builds the ops of one record; `next_idx` numbers its trail rows.
struct Projection {
    seq: i64,
    at: i64,
    ops: Vec<Op>,
    next_idx: i32,
}

fn ms(t: acd_routing::Timestamp) -> i64 {
    t.0 as i64
}

impl Projection {
    fn event(&mut self, event: &Event) {
        match event {
            Event::AgentLoggedIn { agent, .. } => {
                self.agent(agent.as_str(), "not_ready", None, None);
            }
            Event::AgentStateChanged {
                agent,
                state,
                reason,
            } => self.agent_state(agent.as_str(), state, reason.as_deref()),
            Event::AgentLoggedOut { agent } => {
                self.close_wrap_up(agent.as_str());
                self.agent(agent.as_str(), "logged_out", None, None);
            }
            Event::CallQueued {
                call,
                queue,
                priority,
                caller,
                enqueued_at,
                skills,
            } => {
                let mut changes = vec![
                    Change::First(Col::FirstQueue, queue.as_str().into()),
                    Change::Set(Col::Queue, queue.as_str().into()),
                    Change::Set(Col::Priority, i64::from(*priority).into()),
                    Change::First(Col::QueuedAt, ms(*enqueued_at).into()),
                    // Until the edge's note says when the INVITE came.
                    Change::First(Col::ArrivedAt, ms(*enqueued_at).into()),
                    Change::Set(Col::Outcome, "waiting".into()),
                ];
                changes.extend(caller_changes(caller));
                self.call(call, changes);
                self.trail(
                    call,
                    "queued",
                    Some(queue.as_str()),
                    None,
                    json!({ "priority": priority, "skills": skills }),
                );
            }
            Event::CallOffered {
                call,
                agent,
                extension,
                queue,
                expires_at,
                auto_answer,
                ring_also,
                dial,
                ..
            } => {
                self.call(
                    call,
                    vec![
                        Change::First(Col::FirstOfferedAt, self.at.into()),
                        Change::Increment(Col::Offers),
                    ],
                );
                let also: Vec<&str> = ring_also.iter().map(|(a, _)| a.as_str()).collect();
                self.trail(
                    call,
                    "offered",
                    Some(queue.as_str()),
                    Some(agent.as_str()),
                    json!({ "extension": extension, "expires_at": ms(*expires_at),
                            "auto_answer": auto_answer, "ring_also": also }),
                );
                if let Some(d) = dial {
                    self.trail(
                        call,
                        "callback_placed",
                        Some(queue.as_str()),
                        Some(agent.as_str()),
                        json!({ "number": d.number, "trunk": d.trunk, "attempt": d.attempt }),
                    );
                }
                for a in std::iter::once(agent.as_str()).chain(also) {
                    self.agent(a, "reserved", None, Some(call.as_str()));
                }
            }
            Event::CallConnected { call, agent } => {
                self.call(
                    call,
                    vec![
                        Change::First(Col::AnsweredAt, self.at.into()),
                        Change::Set(Col::Agent, agent.as_str().into()),
                        Change::Set(Col::Outcome, "answered".into()),
                        // A new connection (after a transfer) opens a new
                        // talk and wrap-up for this agent.
                        Change::Set(Col::TalkEndedAt, Value::Null),
                        Change::Set(Col::WrapEndedAt, Value::Null),
                    ],
                );
                self.trail(call, "answered", None, Some(agent.as_str()), json!({}));
                self.agent(agent.as_str(), "on_call", None, Some(call.as_str()));
                self.release_ringing(call);
            }
            Event::CallRequeued {
                call,
                agent,
                reason,
            } => {
                self.trail(
                    call,
                    "requeued",
                    None,
                    Some(agent.as_str()),
                    json!({ "reason": reason }),
                );
                self.agent(agent.as_str(), "not_ready", Some(RONA_REASON), None);
                self.release_ringing(call);
            }
            Event::CallAbandoned {
                call,
                queue,
                waited_ms,
                agent,
            } => {
                self.call(
                    call,
                    vec![
                        Change::Set(Col::AbandonedAt, self.at.into()),
                        Change::Set(Col::WaitedMs, (*waited_ms as i64).into()),
                        Change::Set(Col::Outcome, "abandoned".into()),
                    ],
                );
                self.trail(
                    call,
                    "abandoned",
                    Some(queue.as_str()),
                    agent.as_ref().map(|a| a.as_str()),
                    json!({ "waited_ms": waited_ms }),
                );
                if let Some(a) = agent {
                    self.agent(a.as_str(), "ready", None, None);
                    self.release_ringing(call);
                }
            }
            Event::CallTimedOut {
                call,
                queue,
                waited_ms,
            } => {
                self.call(
                    call,
                    vec![
                        Change::Set(Col::WaitedMs, (*waited_ms as i64).into()),
                        Change::Set(Col::Outcome, "timed_out".into()),
                    ],
                );
                self.trail(
                    call,
                    "timed_out",
                    Some(queue.as_str()),
                    None,
                    json!({ "waited_ms": waited_ms }),
                );
            }
            Event::CallEnded {
                call,
                agent,
                wrap_up_until,
                by,
            } => {
                self.call(
                    call,
                    vec![
                        Change::Set(Col::TalkEndedAt, self.at.into()),
                        Change::Set(Col::EndedBy, end_reason(*by).into()),
                    ],
                );
                self.trail(
                    call,
                    "ended",
                    None,
                    Some(agent.as_str()),
                    json!({ "by": end_reason(*by), "wrap_up_until": ms(*wrap_up_until) }),
                );
                self.agent(agent.as_str(), "wrap_up", None, Some(call.as_str()));
            }
            Event::CallRelaxed { call, step } => {
                self.trail(call, "relaxed", None, None, json!({ "step": step }));
            }
            Event::CallOverflowed {
                call,
                from,
                reason,
                action,
                waited_ms,
            } => self.overflowed(call, from.as_str(), reason, action, *waited_ms),
            Event::CallTransferred {
                call,
                from_agent,
                target,
                wrap_up_until,
            } => {
                let mut changes = vec![
                    Change::Set(Col::TalkEndedAt, self.at.into()),
                    Change::Set(Col::EndedBy, "transferred".into()),
                    Change::Increment(Col::Transfers),
                    Change::Set(Col::Outcome, "waiting".into()),
                ];
                let (queue, to_agent) = match target {
                    TransferTarget::Queue(q) => {
                        changes.push(Change::Set(Col::Queue, q.as_str().into()));
                        (Some(q.as_str()), None)
                    }
                    TransferTarget::Agent(a) => (None, Some(a.as_str())),
                };
                self.call(call, changes);
                self.trail(
                    call,
                    "transferred",
                    queue,
                    Some(from_agent.as_str()),
                    json!({ "to_queue": queue, "to_agent": to_agent,
                            "wrap_up_until": ms(*wrap_up_until) }),
                );
                self.agent(from_agent.as_str(), "wrap_up", None, Some(call.as_str()));
            }
            Event::OfferRejected { call, agent } => {
                self.trail(call, "rejected", None, Some(agent.as_str()), json!({}));
                self.agent(agent.as_str(), "ready", None, None);
            }
            Event::CallbackAttemptFailed {
                call,
                agent,
                outcome,
                retry_at,
            } => {
                if retry_at.is_none() {
                    self.call(
                        call,
                        vec![Change::Set(Col::Outcome, "callback_failed".into())],
                    );
                }
                self.trail(
                    call,
                    "callback_failed",
                    None,
                    Some(agent.as_str()),
                    json!({ "outcome": outcome, "retry_at": retry_at.map(ms) }),
                );
                self.agent(agent.as_str(), "ready", None, None);
            }
            Event::CallbackRequested { call, record } => self.callback_requested(call, record),
            Event::CallNoted { call, note } => self.noted(call, note),
            Event::CallbackRetryDue { .. }
            | Event::ConfigChanged { .. }
            | Event::BindingChanged { .. } => {}
        }
    }

    fn agent_state(&mut self, agent: &str, state: &AgentState, reason: Option<&str>) {
        let name = state_name(state);
        if matches!(state, AgentState::Ready | AgentState::NotReady) {
            self.close_wrap_up(agent);
        }
        self.agent(agent, name, reason, state.call().map(|c| c.as_str()));
    }

    fn overflowed(
        &mut self,
        call: &CallId,
        from: &str,
        reason: &OverflowReason,
        action: &OverflowAction,
        waited_ms: u64,
    ) {
        let (kind, target, outcome) = match action {
            OverflowAction::Queue(q) => ("queue", Some(q.as_str()), None),
            OverflowAction::Uri(u) => ("uri", Some(u.as_str()), Some("overflowed")),
            OverflowAction::Message(m) => ("message", Some(m.as_str()), Some("overflowed")),
            OverflowAction::Flow(f) => ("flow", Some(f.as_str()), Some("overflowed")),
            OverflowAction::Callback => ("callback", None, Some("callback")),
        };
        let mut changes = vec![
            Change::Set(Col::OverflowAction, kind.into()),
            Change::Set(Col::WaitedMs, (waited_ms as i64).into()),
        ];
        match (action, outcome) {
            (OverflowAction::Queue(q), _) => {
                changes.push(Change::Set(Col::Queue, q.as_str().into()))
            }
            (_, Some(o)) => changes.push(Change::Set(Col::Outcome, o.into())),
            (_, None) => {}
        }
        self.call(call, changes);
        self.trail(
            call,
            "overflowed",
            Some(from),
            None,
            json!({ "reason": reason, "action": kind, "target": target, "waited_ms": waited_ms }),
        );
    }

    fn callback_requested(&mut self, call: &CallId, record: &CallbackRecord) {
        let cb = callback_id(call);
        // The inbound call's row may not exist (a callback booked in the IVR
        // before any queue): only an existing row is marked.
        self.ops.push(Op::Call {
            call_id: call.0.clone(),
            create: false,
            changes: vec![Change::Set(Col::Outcome, "callback".into())],
        });
        self.trail(
            call,
            "callback_requested",
            Some(record.queue.as_str()),
            None,
            json!({ "callback": cb, "number": record.number, "voicemail": record.voicemail }),
        );
        let mut changes = vec![
            Change::Set(Col::CallbackOf, call.as_str().into()),
            Change::Set(Col::CallbackRequestedAt, ms(record.requested_at).into()),
            Change::First(Col::FirstQueue, record.queue.as_str().into()),
            Change::Set(Col::Queue, record.queue.as_str().into()),
            Change::Set(Col::Priority, i64::from(record.priority).into()),
            Change::First(Col::QueuedAt, self.at.into()),
            Change::First(Col::ArrivedAt, self.at.into()),
            Change::Set(Col::Outcome, "waiting".into()),
            Change::Set(Col::CallerNumber, record.number.clone().into()),
        ];
        changes.extend(caller_changes(&record.caller));
        self.call(&cb, changes);
        self.trail(
            &cb,
            "queued",
            Some(record.queue.as_str()),
            None,
            json!({ "priority": record.priority, "callback_of": call }),
        );
    }

    fn noted(&mut self, call: &CallId, note: &CallNote) {
        let mut changes = vec![
            Change::Set(Col::ArrivedAt, ms(note.arrived_at).into()),
            Change::Set(Col::LeftAt, ms(note.left_at).into()),
            Change::Set(Col::Flow, note.flow.clone().into()),
            Change::Set(Col::IvrSteps, json!(note.steps).to_string().into()),
            Change::Set(Col::EdgeOutcome, json_name(&note.outcome).into()),
        ];
        // The edge saw the INVITE: its numbers win over the IVR's guesses.
        if !note.did.is_empty() {
            changes.push(Change::Set(Col::Did, note.did.clone().into()));
        }
        if !note.caller.is_empty() {
            changes.push(Change::Set(Col::CallerNumber, note.caller.clone().into()));
        }
        if let Some(score) = note.survey_score {
            changes.push(Change::Set(Col::SurveyScore, i64::from(score).into()));
        }
        self.call(call, changes);
        let arrived = json!({ "did": note.did, "caller": note.caller, "flow": note.flow });
        self.trail_at(ms(note.arrived_at), call, "arrived", None, None, arrived);
        for step in &note.steps {
            let detail = json!({ "node": step.node, "input": step.input });
            self.trail_at(ms(step.at), call, "ivr_input", None, None, detail);
        }
        if let Some(score) = note.survey_score {
            let detail = json!({ "score": score });
            self.trail_at(ms(note.left_at), call, "survey", None, None, detail);
        }
        let left = json!({ "outcome": note.outcome });
        self.trail_at(ms(note.left_at), call, "left", None, None, left);
    }

    fn idx(&mut self) -> i32 {
        let i = self.next_idx;
        self.next_idx += 1;
        i
    }

    fn call(&mut self, call: &CallId, changes: Vec<Change>) {
        self.ops.push(Op::Call {
            call_id: call.0.clone(),
            create: true,
            changes,
        });
    }

    fn trail(
        &mut self,
        call: &CallId,
        kind: &str,
        queue: Option<&str>,
        agent: Option<&str>,
        detail: serde_json::Value,
    ) {
        self.trail_at(self.at, call, kind, queue, agent, detail);
    }

    /// A trail row at `at`: the edge's steps carry their own times.
    fn trail_at(
        &mut self,
        at: i64,
        call: &CallId,
        kind: &str,
        queue: Option<&str>,
        agent: Option<&str>,
        detail: serde_json::Value,
    ) {
        let idx = self.idx();
        self.ops.push(Op::CallEvent {
            idx,
            row: CallEventRow {
                seq: self.seq,
                at,
                call_id: call.0.clone(),
                kind: kind.to_owned(),
                queue: queue.map(str::to_owned),
                agent: agent.map(str::to_owned),
                detail: detail.to_string(),
            },
        });
    }

    fn agent(&mut self, agent: &str, state: &str, reason: Option<&str>, call: Option<&str>) {
        let idx = self.idx();
        self.ops.push(Op::AgentEvent {
            idx,
            row: AgentEventRow {
                seq: self.seq,
                at: self.at,
                agent: agent.to_owned(),
                state: state.to_owned(),
                reason: reason.map(str::to_owned),
                call_id: call.map(str::to_owned),
            },
        });
    }

    fn close_wrap_up(&mut self, agent: &str) {
        self.ops.push(Op::CloseWrapUp {
            agent: agent.to_owned(),
            at: self.at,
        });
    }

    fn release_ringing(&mut self, call: &CallId) {
        // Leave room for the explicit rows; ring groups are small.
        let idx_from = self.next_idx;
        self.next_idx += 1000;
        self.ops.push(Op::ReleaseRinging {
            call_id: call.0.clone(),
            seq: self.seq,
            at: self.at,
            idx_from,
        });
    }
}

/// Caller columns from the IVR's data: numbers only where the edge's note has
/// not already put them.
fn caller_changes(caller: &CallerInfo) -> Vec<Change> {
    let number = if caller.number.is_empty() {
        &caller.from
    } else {
        &caller.number
    };
    vec![
        Change::IfBlank(Col::CallerNumber, number.clone()),
        Change::IfBlank(Col::Did, caller.did.clone()),
        Change::Set(Col::CallerName, caller.display.clone().into()),
        Change::Set(Col::Variables, json!(caller.variables).to_string().into()),
    ]
}

/// `agent_events.state` of a core state.
pub fn state_name(state: &AgentState) -> &'static str {
    match state {
        AgentState::LoggedOut => "logged_out",
        AgentState::NotReady => "not_ready",
        AgentState::Ready => "ready",
        AgentState::Reserved { .. } => "reserved",
        AgentState::OnCall { .. } => "on_call",
        AgentState::WrapUp { .. } => "wrap_up",
    }
}

fn end_reason(by: EndReason) -> String {
    json_name(&by)
}

/// A unit enum's serde name (`snake_case`), e.g. `caller_hung_up`.
fn json_name<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

#[cfg(test)]
#[path = "project_tests.rs"]
pub(crate) mod tests;
