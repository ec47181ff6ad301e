//! Timers are data: each is derived from a deadline stored in the state, so a promoted
//! standby fires exactly what the old leader would have.

use crate::bindings::BindingRecord;
use crate::directory::Directory;
use crate::event::AgentState;
use crate::ids::{AgentId, CallId, Extension, Timestamp};
use crate::index::Touched;
use crate::state::{AgentRuntime, CallPhase, CallRecord, State};
use std::collections::BTreeSet;

/// The closed set of things that happen by time alone.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Timer {
    /// Agent's wrap-up ends → Ready.
    WrapUpEnd(AgentId),
    /// Offer not answered in time → requeue (ring-no-answer).
    OfferExpiry(CallId),
    /// Call waited longer than its queue allows → leaves the queue.
    MaxWait(CallId),
    /// A phone's registration ran out → binding removed.
    BindingExpiry(Extension),
    /// A waiting call reached its queue's next relaxation step → `CallRelaxed` (or
    /// the step's overflow).
    Relax(CallId),
    /// A callback's wait between attempts is over → `CallbackRetryDue`.
    CallbackRetry(CallId),
}

/// Every pending timer with its deadline, ordered by deadline then timer, so firing order
/// is the same everywhere: built afresh from the state. The core reads the
/// [`TimerIndex`] it keeps in step record by record; the tests check it against this.
#[cfg(test)]
pub(crate) fn pending(state: &State, dir: &Directory) -> Vec<(Timestamp, Timer)> {
    TimerIndex::build(dir, state).due.into_iter().collect()
}

fn agent_timer(id: &AgentId, a: &AgentRuntime) -> Option<(Timestamp, Timer)> {
    match a.state {
        AgentState::WrapUp { until } => Some((until, Timer::WrapUpEnd(id.clone()))),
        _ => None,
    }
}

fn call_timers(dir: &Directory, id: &CallId, c: &CallRecord) -> Vec<(Timestamp, Timer)> {
    let mut out = Vec::new();
    match &c.phase {
        CallPhase::Offered { expires_at, .. } => {
            out.push((*expires_at, Timer::OfferExpiry(id.clone())));
        }
        CallPhase::Waiting => {
            let q = dir.queues.get(&c.queue);
            // A callback call has no caller on the line to keep waiting.
            let max_wait = q
                .and_then(|q| q.max_wait_ms)
                .filter(|_| c.callback.is_none());
            if let Some(max) = max_wait {
                out.push((c.enqueued_at.plus_ms(max), Timer::MaxWait(id.clone())));
            }
            if let Some(at) = q.and_then(|q| crate::relax::deadline(q, c)) {
                out.push((at, Timer::Relax(id.clone())));
            }
            if let Some(at) = c.not_before {
                out.push((at, Timer::CallbackRetry(id.clone())));
            }
        }
        CallPhase::Connected { .. } => {}
    }
    out
}

fn binding_timer(ext: &Extension, b: &BindingRecord) -> (Timestamp, Timer) {
    (b.expires_at, Timer::BindingExpiry(ext.clone()))
}

/// The timers of what a record touches, read from `state` (before the record is
/// applied: the ones to take out; after: the ones to put in).
pub(crate) fn timers_of(
    dir: &Directory,
    state: &State,
    touched: &Touched<'_>,
) -> Vec<(Timestamp, Timer)> {
    let Touched::Some {
        call,
        agent,
        ring,
        linked,
        binding,
    } = touched
    else {
        return Vec::new(); // the index is rebuilt
    };
    let mut out = Vec::new();
    if let Some(c) = call.and_then(|id| state.calls.get(id).map(|c| (id, c))) {
        out.extend(call_timers(dir, c.0, c.1));
    }
    let rung = ring.iter().map(|(a, _)| a);
    for id in agent.iter().copied().chain(rung).chain(linked) {
        out.extend(state.agents.get(id).and_then(|a| agent_timer(id, a)));
    }
    if let Some(b) = binding.and_then(|ext| state.bindings.get(ext).map(|b| (ext, b))) {
        out.push(binding_timer(b.0, b.1));
    }
    out
}

/// The pending timers in deadline order, kept in step with the state record by
/// record (like the routing index: derived, never serialised), so finding the next
/// deadline does not scan every call.
#[derive(Clone, Debug, Default)]
pub(crate) struct TimerIndex {
    due: BTreeSet<(Timestamp, Timer)>,
}

impl TimerIndex {
    pub fn build(dir: &Directory, state: &State) -> Self {
        let mut due = BTreeSet::new();
        for (id, a) in &state.agents {
            due.extend(agent_timer(id, a));
        }
        for (id, c) in &state.calls {
            due.extend(call_timers(dir, id, c));
        }
        for (ext, b) in &state.bindings {
            due.insert(binding_timer(ext, b));
        }
        TimerIndex { due }
    }

    /// The earliest deadline.
    pub fn first(&self) -> Option<Timestamp> {
        self.due.first().map(|(at, _)| *at)
    }

    /// The timers due at `now`, in firing order.
    pub fn due(&self, now: Timestamp) -> impl Iterator<Item = &Timer> + '_ {
        let upto = self.due.iter().take_while(move |(at, _)| *at <= now);
        upto.map(|(_, t)| t)
    }

    /// Replaces a record's touched timers (`old`, from [`timers_of`] before it was
    /// applied) by the current ones (`new`).
    pub fn replace(&mut self, old: Vec<(Timestamp, Timer)>, new: Vec<(Timestamp, Timer)>) {
        if old == new {
            return;
        }
        for t in &old {
            self.due.remove(t);
        }
        self.due.extend(new);
    }
}
