//! Timers are data: each is derived from a deadline stored in the state, so a promoted
//! standby fires exactly what the old leader would have.

use crate::directory::Directory;
use crate::event::AgentState;
use crate::ids::{AgentId, CallId, Extension, Timestamp};
use crate::state::{CallPhase, State};

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
/// is the same everywhere.
pub(crate) fn pending(state: &State, dir: &Directory) -> Vec<(Timestamp, Timer)> {
    let mut out: Vec<(Timestamp, Timer)> = Vec::new();
    for (id, a) in &state.agents {
        if let AgentState::WrapUp { until } = a.state {
            out.push((until, Timer::WrapUpEnd(id.clone())));
        }
    }
    for (id, c) in &state.calls {
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
    }
    for (ext, b) in &state.bindings {
        out.push((b.expires_at, Timer::BindingExpiry(ext.clone())));
    }
    out.sort();
    out
}
