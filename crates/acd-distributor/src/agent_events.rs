//! What an agent's `Watch` stream shows of the event records: offers,
//! connections, finishes (with why) and the state each record implies.
//!
//! Numbering: one record may make several wire events (an offer and the
//! RESERVED status), so `AgentEvent.seq = record seq × EVENTS_PER_RECORD +
//! index within the record`: unique, increasing, and a resume point
//! (`WatchRequest.after_seq`) names a record and a place inside it.

use std::collections::BTreeSet;

use acd_proto::v1 as pb;
use acd_routing::{
    AgentId, AgentState, AgentView, CallId, CallerInfo, EndReason, Event, EventRecord, Explanation,
    TransferTarget,
};

use crate::convert::{agent_status, caller_to_wire};
use crate::Distributor;

/// Wire events one record may make at most (today: 2).
pub const EVENTS_PER_RECORD: u64 = 4;

/// The wire seq of the `index`th event of record `seq`.
pub fn wire_seq(record_seq: u64, index: usize) -> u64 {
    record_seq * EVENTS_PER_RECORD + (index as u64).min(EVENTS_PER_RECORD - 1)
}

/// The wire seq that covers every event of records up to `record_seq`.
pub fn wire_seq_through(record_seq: u64) -> u64 {
    wire_seq(record_seq, EVENTS_PER_RECORD as usize - 1)
}

/// The record a resume point is in.
pub fn record_of(wire: u64) -> u64 {
    wire / EVENTS_PER_RECORD
}

/// The next released record for a watch stream; `None` ends the stream
/// (the distributor is gone, or the watcher fell so far behind that it was
/// told DATA_LOSS to watch again).
pub async fn next_record<T>(
    records: &mut tokio::sync::broadcast::Receiver<std::sync::Arc<EventRecord>>,
    tx: &tokio::sync::mpsc::Sender<Result<T, tonic::Status>>,
    lagged_metric: &'static str,
) -> Option<std::sync::Arc<EventRecord>> {
    use tokio::sync::broadcast::error::RecvError;
    match records.recv().await {
        Ok(rec) => Some(rec),
        Err(RecvError::Lagged(n)) => {
            metrics::counter!(lagged_metric).increment(1);
            let msg = format!("watch fell {n} events behind; watch again");
            let _ = tx.send(Err(tonic::Status::data_loss(msg))).await;
            None
        }
        Err(RecvError::Closed) => None,
    }
}

/// One watcher's view of the records: which concern its agent, and the
/// ring-all offers it shares with other agents (so it can tell its agent
/// when another took the call).
pub struct AgentFilter {
    pub agent: AgentId,
    ringing_also: BTreeSet<CallId>,
}

impl AgentFilter {
    pub fn new(agent: AgentId) -> Self {
        AgentFilter {
            agent,
            ringing_also: BTreeSet::new(),
        }
    }

    /// The record as wire events for this agent (empty: not about it).
    pub fn wire_events(&mut self, rec: &EventRecord, d: &Distributor) -> Vec<pb::AgentEvent> {
        let kinds = self.kinds(rec, d);
        kinds
            .into_iter()
            .take(EVENTS_PER_RECORD as usize)
            .enumerate()
            .map(|(i, kind)| pb::AgentEvent {
                seq: wire_seq(rec.seq.0, i),
                kind: Some(kind),
            })
            .collect()
    }

    fn kinds(&mut self, rec: &EventRecord, d: &Distributor) -> Vec<pb::agent_event::Kind> {
        use pb::agent_event::Kind;
        let me = &self.agent;
        // Ring-all: an offer to several agents at once, each watch sees it.
        if let Event::CallOffered {
            call, ring_also, ..
        } = &rec.event
        {
            if ring_also.iter().any(|(a, _)| a == me) {
                self.ringing_also.insert(call.clone());
                let offer = offer(rec, d);
                return offer.into_iter().map(Kind::Offer).collect();
            }
            // The agent the offer names rings with others too: another may take it.
            if !ring_also.is_empty() && concerned_agent(&rec.event) == Some(me) {
                self.ringing_also.insert(call.clone());
            }
        }
        if let Some(call) = event_call(&rec.event) {
            if self.ringing_also.contains(call) && concerned_agent(&rec.event) != Some(me) {
                self.ringing_also.remove(call);
                let taken = matches!(rec.event, Event::CallConnected { .. });
                let (code, reason) = if taken {
                    (pb::FinishReason::TakenByOther, "another agent answered")
                } else {
                    (
                        pb::FinishReason::Abandoned,
                        "the call left before it was answered",
                    )
                };
                // The core returned this agent to Ready with that record; say so.
                let status = d
                    .lock()
                    .core
                    .agent(me)
                    .map(|v| Kind::Status(agent_status(&v)));
                return std::iter::once(finished(call, code, reason))
                    .chain(status)
                    .collect();
            }
        }
        if concerned_agent(&rec.event) != Some(me) {
            return Vec::new();
        }
        if let Some(call) = event_call(&rec.event) {
            if !matches!(rec.event, Event::CallOffered { .. }) {
                // This agent answered (or the offer ended for it): nothing to track.
                self.ringing_also.remove(call);
            }
        }
        agent_events(rec, d).unwrap_or_default()
    }
}

/// The agent an event concerns, read without touching the core, so each
/// watcher skips other agents' events cheaply.
pub fn concerned_agent(event: &Event) -> Option<&AgentId> {
    match event {
        Event::AgentLoggedIn { agent, .. }
        | Event::AgentLoggedOut { agent }
        | Event::AgentStateChanged { agent, .. }
        | Event::CallOffered { agent, .. }
        | Event::CallConnected { agent, .. }
        | Event::CallEnded { agent, .. }
        | Event::CallRequeued { agent, .. }
        | Event::OfferRejected { agent, .. }
        | Event::CallbackAttemptFailed { agent, .. }
        | Event::CallTransferred {
            from_agent: agent, ..
        }
        | Event::CallAbandoned {
            agent: Some(agent), ..
        } => Some(agent),
        _ => None,
    }
}

/// The call an event is about, for an agent's stream: a retry timer or the
/// edge's note after the caller left says nothing about an offer.
fn event_call(e: &Event) -> Option<&CallId> {
    match e {
        Event::CallbackRetryDue { .. } | Event::CallNoted { .. } => None,
        e => e.call(),
    }
}

fn finished(call: &CallId, code: pb::FinishReason, reason: &str) -> pb::agent_event::Kind {
    pb::agent_event::Kind::Finished(pb::CallFinished {
        call_id: call.0.clone(),
        reason: reason.into(),
        code: code as i32,
    })
}

/// Why a call left an agent, as code and text.
fn finish_of(event: &Event) -> Option<(pb::FinishReason, String)> {
    use pb::FinishReason as F;
    Some(match event {
        Event::CallEnded { by, .. } => match by {
            EndReason::CallerHungUp => (F::CallerHungUp, "caller hung up".into()),
            EndReason::AgentHungUp => (F::AgentHungUp, "agent hung up".into()),
            EndReason::Failed => (F::Failed, "the call failed".into()),
            EndReason::Unknown => (F::Unspecified, "ended".into()),
        },
        Event::CallRequeued { reason, .. } => (F::Rona, format!("not answered: {reason}")),
        Event::CallAbandoned { .. } => (F::Abandoned, "caller hung up while ringing".into()),
        Event::CallTransferred { target, .. } => (
            F::Transferred,
            match target {
                TransferTarget::Queue(q) => format!("transferred to queue {q}"),
                TransferTarget::Agent(a) => format!("transferred to agent {a}"),
            },
        ),
        Event::OfferRejected { .. } => (F::Rejected, "rejected by the agent".into()),
        Event::CallbackAttemptFailed { outcome, .. } => {
            (F::Failed, format!("callback not reached: {outcome:?}"))
        }
        _ => return None,
    })
}

/// The state an event implies for its agent, so the watcher sees every
/// transition even if the next event has already moved the agent on.
fn implied_state(event: &Event) -> Option<(AgentState, Option<String>)> {
    Some(match event {
        // A replayed login must not show the agent's later state.
        Event::AgentLoggedIn { .. } => (AgentState::NotReady, None),
        Event::AgentLoggedOut { .. } => (AgentState::LoggedOut, None),
        Event::AgentStateChanged { state, reason, .. } => (state.clone(), reason.clone()),
        Event::CallOffered { call, .. } => (AgentState::Reserved { call: call.clone() }, None),
        Event::CallConnected { call, .. } => (AgentState::OnCall { call: call.clone() }, None),
        Event::CallEnded { wrap_up_until, .. } | Event::CallTransferred { wrap_up_until, .. } => (
            AgentState::WrapUp {
                until: *wrap_up_until,
            },
            None,
        ),
        _ => return None,
    })
}

fn agent_events(rec: &EventRecord, d: &Distributor) -> Option<Vec<pb::agent_event::Kind>> {
    use pb::agent_event::Kind;
    let agent = concerned_agent(&rec.event)?;
    let call_event = match &rec.event {
        Event::CallOffered { .. } => offer(rec, d).map(Kind::Offer),
        Event::CallConnected { call, .. } => Some(Kind::Connected(pb::CallConnected {
            call_id: call.0.clone(),
        })),
        e => finish_of(e).and_then(|(code, reason)| Some(finished(event_call(e)?, code, &reason))),
    };
    let view = d.lock().core.agent(agent)?;
    let status = match implied_state(&rec.event) {
        Some((state, reason)) => agent_status(&AgentView {
            state,
            reason,
            ..view
        }),
        None => agent_status(&view),
    };
    // The call event first (offer before "reserved"), then the state.
    Some(
        call_event
            .into_iter()
            .chain([Kind::Status(status)])
            .collect(),
    )
}

/// The offer of a `CallOffered` record as the agent's phone pop shows it.
fn offer(rec: &EventRecord, d: &Distributor) -> Option<pb::CallOffer> {
    let Event::CallOffered {
        call,
        queue,
        caller,
        explanation,
        auto_answer,
        dial,
        ..
    } = &rec.event
    else {
        return None;
    };
    let (enqueued_at, priority, skills) = match d.lock().core.call(call) {
        Some(c) => (Some(c.enqueued_at), c.priority, c.skills.clone()),
        None => (None, 0, Default::default()),
    };
    Some(pb::CallOffer {
        call_id: call.0.clone(),
        queue_id: queue.0.clone(),
        caller: Some(caller_with_number(caller)),
        waited_ms: enqueued_at.map_or(0, |at| rec.at.ms_since(at)),
        enqueued_at_ms: enqueued_at.map_or(0, |at| at.0),
        priority,
        skills: skills
            .into_iter()
            .map(|(k, v)| (k.0, u32::from(v)))
            .collect(),
        auto_answer: *auto_answer,
        callback: dial.is_some(),
        explanation: explanation_text(explanation),
    })
}

/// The caller with its number filled from the From URI's user part when the
/// edge did not give it.
fn caller_with_number(c: &CallerInfo) -> pb::Caller {
    let mut wire = caller_to_wire(c);
    if wire.number.is_empty() {
        wire.number = uri_user(&c.from).to_string();
    }
    wire
}

/// `sip:+4930123@host;x=y` → `+4930123`; a bare number stays as it is.
pub fn uri_user(uri: &str) -> &str {
    let s = uri.trim().trim_start_matches('<');
    let s = s
        .strip_prefix("sips:")
        .or_else(|| s.strip_prefix("sip:"))
        .or_else(|| s.strip_prefix("tel:"))
        .unwrap_or(s);
    let end = s.find(['@', ';', '>']).unwrap_or(s.len());
    &s[..end]
}

/// One line: strategy, step, expression, priority, runners-up.
pub fn explanation_text(e: &Explanation) -> String {
    let mut parts = Vec::new();
    if let Some(s) = &e.strategy {
        parts.push(format!("strategy {}", strategy_name(s)));
    }
    if e.relax_step > 0 {
        parts.push(format!("relaxation step {}", e.relax_step));
    }
    if !e.skills.is_empty() {
        parts.push(format!("needs {}", e.skills));
    }
    parts.push(format!("priority {}", e.effective_priority));
    if !e.candidates.is_empty() {
        let c: Vec<String> = e
            .candidates
            .iter()
            .map(|(a, score)| format!("{a} ({score})"))
            .collect();
        parts.push(format!("candidates {}", c.join(", ")));
    }
    if !e.note.is_empty() {
        parts.push(e.note.clone());
    }
    parts.join("; ")
}

/// A strategy as the config file names it (`longest_idle`).
pub fn strategy_name(s: &acd_routing::Strategy) -> String {
    match serde_json::to_value(s) {
        Ok(serde_json::Value::String(name)) => name,
        Ok(other) => other.to_string(),
        Err(_) => format!("{s:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_seqs_are_unique_and_resume_inside_a_record() {
        assert!(wire_seq(7, 0) < wire_seq(7, 1));
        assert!(wire_seq(7, 1) < wire_seq(8, 0));
        assert_eq!(record_of(wire_seq(7, 1)), 7);
        assert!(wire_seq_through(7) < wire_seq(8, 0));
        assert_eq!(record_of(wire_seq_through(7)), 7);
    }

    fn rec(seq: u64, event: Event) -> EventRecord {
        EventRecord {
            seq: acd_routing::Seq(seq),
            term: acd_routing::Term(1),
            at: acd_routing::Timestamp(seq),
            event,
            origin: None,
        }
    }

    fn kinds(events: &[pb::AgentEvent]) -> Vec<&str> {
        events
            .iter()
            .map(|e| match &e.kind {
                Some(pb::agent_event::Kind::Offer(_)) => "offer",
                Some(pb::agent_event::Kind::Status(_)) => "status",
                Some(pb::agent_event::Kind::Connected(_)) => "connected",
                Some(pb::agent_event::Kind::Finished(f))
                    if f.code == pb::FinishReason::TakenByOther as i32 =>
                {
                    "taken"
                }
                Some(pb::agent_event::Kind::Finished(_)) => "finished",
                None => "none",
            })
            .collect()
    }

    /// Ring-all: the other agent rung sees the offer, then that another
    /// agent answered; the one who answered sees its call connect.
    #[tokio::test]
    async fn ring_all_tells_the_others_who_took_it() {
        use acd_routing::{AgentDef, Extension, QueueId, RoutingConfig};
        let agent = |id: &str| AgentDef {
            id: AgentId(id.into()),
            name: id.into(),
            skills: Vec::new(),
            auto_answer: false,
        };
        let config = RoutingConfig {
            queues: Vec::new(),
            agents: vec![agent("alice"), agent("bob")],
            default_wrap_up_ms: 0,
            offer_timeout_ms: 1000,
            extensions: Default::default(),
            not_ready_reasons: Vec::new(),
        };
        let d = Distributor::new(config, crate::Role::Primary);
        let call = CallId("c1".into());
        let offered = rec(
            5,
            Event::CallOffered {
                call: call.clone(),
                agent: AgentId("alice".into()),
                extension: Extension("1001".into()),
                queue: QueueId("sales".into()),
                caller: CallerInfo {
                    from: "sip:0611@x".into(),
                    ..Default::default()
                },
                expires_at: acd_routing::Timestamp(9),
                explanation: Explanation::default(),
                auto_answer: false,
                ring_also: vec![(AgentId("bob".into()), Extension("1002".into()))],
                dial: None,
            },
        );
        let connected = rec(
            6,
            Event::CallConnected {
                call,
                agent: AgentId("alice".into()),
            },
        );
        let mut alice = AgentFilter::new(AgentId("alice".into()));
        let mut bob = AgentFilter::new(AgentId("bob".into()));
        let a1 = alice.wire_events(&offered, &d);
        assert_eq!(kinds(&a1), ["offer", "status"]);
        assert_eq!(a1[0].seq, wire_seq(5, 0));
        let b1 = bob.wire_events(&offered, &d);
        assert_eq!(kinds(&b1), ["offer"]);
        match &b1[0].kind {
            Some(pb::agent_event::Kind::Offer(o)) => {
                assert_eq!(o.caller.as_ref().map(|c| c.number.as_str()), Some("0611"))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            kinds(&alice.wire_events(&connected, &d)),
            ["connected", "status"]
        );
        // Bob's status follows: the core returned him to Ready with that record.
        assert_eq!(kinds(&bob.wire_events(&connected, &d)), ["taken", "status"]);
    }

    #[test]
    fn numbers_from_uris() {
        assert_eq!(uri_user("sip:+4930123@example.com;user=phone"), "+4930123");
        assert_eq!(uri_user("<sips:alice@h>"), "alice");
        assert_eq!(uri_user("tel:5550100"), "5550100");
        assert_eq!(uri_user("5550100"), "5550100");
    }
}
