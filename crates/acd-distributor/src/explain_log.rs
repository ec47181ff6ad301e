//! The decisions taken for recent calls, for `SupervisorService.Explain`:
//! built from the event records as they are applied, on the primary and on
//! a standby alike (both see every record on the replication stream), so a
//! call's reasoning survives a fail-over once the standby had attached.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use acd_proto::v1 as pb;
use acd_routing::{CallId, Event, EventRecord, TransferTarget};
use tokio::sync::broadcast::error::RecvError;

use crate::agent_events::strategy_name;
use crate::Distributor;

/// Calls remembered; the oldest is forgotten first.
pub const MAX_CALLS: usize = 10_000;
/// Decisions kept per call (the latest ones).
pub const MAX_DECISIONS: usize = 16;

#[derive(Default)]
pub struct ExplainLog {
    calls: HashMap<CallId, VecDeque<pb::Decision>>,
    /// Insertion order, for eviction.
    order: VecDeque<CallId>,
}

impl ExplainLog {
    /// Records the decision a record carries, if it is one.
    pub fn record(&mut self, rec: &EventRecord) {
        let Some((call, decision)) = decision_of(rec) else {
            return;
        };
        if !self.calls.contains_key(&call) {
            if self.order.len() >= MAX_CALLS {
                if let Some(old) = self.order.pop_front() {
                    self.calls.remove(&old);
                }
            }
            self.order.push_back(call.clone());
        }
        let list = self.calls.entry(call).or_default();
        if list.len() >= MAX_DECISIONS {
            list.pop_front();
        }
        list.push_back(decision);
    }

    pub fn decisions(&self, call: &CallId) -> Option<Vec<pb::Decision>> {
        self.calls.get(call).map(|d| d.iter().cloned().collect())
    }
}

/// Keeps a log up to date from `d`'s record stream, for as long as it runs.
pub fn spawn(d: &Distributor) -> Arc<Mutex<ExplainLog>> {
    let log = Arc::new(Mutex::new(ExplainLog::default()));
    let mut records = d.subscribe_replication();
    let shared = log.clone();
    tokio::spawn(async move {
        loop {
            match records.recv().await {
                Ok(rec) => lock(&shared).record(&rec),
                Err(RecvError::Lagged(n)) => {
                    metrics::counter!("acd_explain_records_missed_total").increment(n);
                }
                Err(RecvError::Closed) => return,
            }
        }
    });
    log
}

pub fn lock(log: &Mutex<ExplainLog>) -> std::sync::MutexGuard<'_, ExplainLog> {
    match log.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

fn scored<T: ToString>(xs: &[(T, String)]) -> Vec<pb::Scored> {
    xs.iter()
        .map(|(id, score)| pb::Scored {
            id: id.to_string(),
            score: score.clone(),
        })
        .collect()
}

fn decision_of(rec: &EventRecord) -> Option<(CallId, pb::Decision)> {
    let base = pb::Decision {
        seq: rec.seq.0,
        at_ms: rec.at.0,
        ..Default::default()
    };
    Some(match &rec.event {
        Event::CallQueued {
            call,
            queue,
            priority,
            ..
        } => (
            call.clone(),
            pb::Decision {
                kind: "queued".into(),
                queue_id: queue.0.clone(),
                effective_priority: i64::from(*priority),
                ..base
            },
        ),
        Event::CallOffered {
            call,
            agent,
            queue,
            explanation: e,
            ..
        } => (
            call.clone(),
            pb::Decision {
                kind: "offered".into(),
                agent_id: agent.0.clone(),
                queue_id: queue.0.clone(),
                strategy: e.strategy.as_ref().map(strategy_name).unwrap_or_default(),
                relax_step: e.relax_step,
                skills: e.skills.clone(),
                effective_priority: e.effective_priority,
                candidates: scored(&e.candidates),
                other_calls: scored(&e.other_calls),
                note: e.note.clone(),
                ..base
            },
        ),
        Event::CallRelaxed { call, step } => (
            call.clone(),
            pb::Decision {
                kind: "relaxed".into(),
                relax_step: *step,
                ..base
            },
        ),
        Event::CallOverflowed {
            call,
            from,
            reason,
            action,
            waited_ms,
        } => (
            call.clone(),
            pb::Decision {
                kind: "overflowed".into(),
                queue_id: from.0.clone(),
                note: format!("{reason:?} after {waited_ms} ms: {action:?}"),
                ..base
            },
        ),
        Event::CallRequeued {
            call,
            agent,
            reason,
        } => (
            call.clone(),
            pb::Decision {
                kind: "requeued".into(),
                agent_id: agent.0.clone(),
                note: reason.clone(),
                ..base
            },
        ),
        Event::CallTransferred {
            call,
            from_agent,
            target,
            ..
        } => (
            call.clone(),
            pb::Decision {
                kind: "transferred".into(),
                agent_id: from_agent.0.clone(),
                note: match target {
                    TransferTarget::Queue(q) => format!("to queue {q}"),
                    TransferTarget::Agent(a) => format!("to agent {a}"),
                },
                ..base
            },
        ),
        Event::OfferRejected { call, agent } => (
            call.clone(),
            pb::Decision {
                kind: "rejected".into(),
                agent_id: agent.0.clone(),
                ..base
            },
        ),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use acd_routing::{AgentId, Seq, Term, Timestamp};

    fn rec(seq: u64, event: Event) -> EventRecord {
        EventRecord {
            seq: Seq(seq),
            term: Term(1),
            at: Timestamp(seq),
            event,
            origin: None,
        }
    }

    #[test]
    fn keeps_the_latest_decisions_of_the_latest_calls() {
        let mut log = ExplainLog::default();
        let reject = |seq, call: &str| {
            rec(
                seq,
                Event::OfferRejected {
                    call: CallId(call.into()),
                    agent: AgentId("alice".into()),
                },
            )
        };
        for i in 0..(MAX_DECISIONS as u64 + 3) {
            log.record(&reject(i + 1, "c1"));
        }
        let d = log.decisions(&CallId("c1".into())).unwrap_or_default();
        assert_eq!(d.len(), MAX_DECISIONS);
        assert_eq!(d[0].seq, 4);
        assert_eq!(d[0].kind, "rejected");
        for i in 0..MAX_CALLS as u64 {
            log.record(&reject(100 + i, &format!("x{i}")));
        }
        assert!(log.decisions(&CallId("c1".into())).is_none());
        assert!(log.decisions(&CallId("x5".into())).is_some());
    }
}
