//! Timers are data: each is derived from a deadline stored in the state, so a promoted
//! standby fires exactly what the old leader would have.

use crate::bindings::BindingRecord;
use crate::directory::Directory;
use crate::event::AgentState;
use crate::ids::{AgentId, CallId, Extension, Timestamp};
use crate::state::{AgentRuntime, CallPhase, CallRecord, State};
use std::collections::{BTreeMap, BTreeSet};

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
/// is the same everywhere. The core reads [`TimerIndex`]; the tests check it against this.
#[cfg(test)]
pub(crate) fn pending(state: &State, dir: &Directory) -> Vec<(Timestamp, Timer)> {
    let mut out: Vec<(Timestamp, Timer)> = Vec::new();
    for (id, a) in &state.agents {
        out.extend(agent_timer(id, a));
    }
    for (id, c) in &state.calls {
        out.extend(call_timers(dir, id, c));
    }
    for (ext, b) in &state.bindings {
        out.push(binding_timer(ext, b));
    }
    out.sort();
    out
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

/// The pending timers in deadline order, kept in step with the state record by
/// record (like the routing index: derived, never serialised), so finding the next
/// deadline does not scan every call.
#[derive(Clone, Debug, Default)]
pub(crate) struct TimerIndex {
    due: BTreeSet<(Timestamp, Timer)>,
    calls: BTreeMap<CallId, Vec<(Timestamp, Timer)>>,
    agents: BTreeMap<AgentId, (Timestamp, Timer)>,
    bindings: BTreeMap<Extension, (Timestamp, Timer)>,
}

impl TimerIndex {
    pub fn build(dir: &Directory, state: &State) -> Self {
        let mut t = TimerIndex::default();
        for id in state.calls.keys() {
            t.sync_call(dir, state, id);
        }
        for id in state.agents.keys() {
            t.sync_agent(state, id);
        }
        for ext in state.bindings.keys() {
            t.sync_binding(state, ext);
        }
        t
    }

    /// The earliest deadline.
    pub fn first(&self) -> Option<Timestamp> {
        self.due.first().map(|(at, _)| *at)
    }

    /// The timers due at `now`, in firing order.
    pub fn due(&self, now: Timestamp) -> Vec<Timer> {
        let upto = self.due.iter().take_while(|(at, _)| *at <= now);
        upto.map(|(_, t)| t.clone()).collect()
    }

    pub fn sync_call(&mut self, dir: &Directory, state: &State, id: &CallId) {
        for old in self.calls.remove(id).unwrap_or_default() {
            self.due.remove(&old);
        }
        let new = state.calls.get(id).map(|c| call_timers(dir, id, c));
        if let Some(new) = new.filter(|n| !n.is_empty()) {
            self.due.extend(new.iter().cloned());
            self.calls.insert(id.clone(), new);
        }
    }

    pub fn sync_agent(&mut self, state: &State, id: &AgentId) {
        if let Some(old) = self.agents.remove(id) {
            self.due.remove(&old);
        }
        if let Some(new) = state.agents.get(id).and_then(|a| agent_timer(id, a)) {
            self.due.insert(new.clone());
            self.agents.insert(id.clone(), new);
        }
    }

    pub fn sync_binding(&mut self, state: &State, ext: &Extension) {
        if let Some(old) = self.bindings.remove(ext) {
            self.due.remove(&old);
        }
        if let Some(new) = state.bindings.get(ext).map(|b| binding_timer(ext, b)) {
            self.due.insert(new.clone());
            self.bindings.insert(ext.clone(), new);
        }
    }
}
