//! Overflow: what happens to a call its queue cannot serve ([`Event::CallOverflowed`]).
//!
//! Triggers, each running the queue's action for that reason:
//! - at enqueue, in this order: closed by `hours` ([`OverflowReason::Closed`]; a
//!   holiday counts as closed), `max_size` calls already waiting ([`OverflowReason::Full`]),
//!   no eligible agent logged in ([`OverflowReason::NoAgents`]). The first reason that
//!   applies AND has an action wins; a reason without an action is passed over, so a
//!   queue with no actions at all queues every call and lets it wait (nothing is
//!   refused silently). The call is recorded (`CallQueued`) before it overflows, so
//!   the queue counts it as offered and as overflowed;
//! - when the last eligible logged-in agent of a queue logs out, its waiting calls
//!   (in rank order) run `no_agents`;
//! - when a call waited `max_wait_ms`: `max_wait`, else the plain `CallTimedOut`;
//! - a relaxation step with `overflow` (see `relax`), and a queue removed by a
//!   configuration change (`reconfig`).
//!
//! "Eligible" for `no_agents` means meeting the queue's expression or any of its
//! relaxation steps' expressions: an agent the call may reach by waiting counts.
//!
//! Actions: `Queue(q)` moves the call (keeping enqueued_at, arrival, priority, data
//! and extra skills; relaxation restarts under `q`'s steps from the wait so far) and
//! then checks `q`'s own closed/full/no-agents rules, which may move it on again;
//! `Callback` turns the waiting call into a callback call `<call>:cb` in the same
//! queue, keeping its place (the edge hangs the inbound caller up); `Uri`, `Message`
//! and `Flow` remove the call (the shell tells the edge). A call moves at most
//! [`MAX_HOPS`] times (A → B → A …), then times out; so does a callback call whose
//! action is `Callback` again, and a move to a queue that is not configured.
//! `max_size` is checked against the state before the command, so calls moved in one
//! batch (a logout) may fill a queue past it.

use crate::config::{OverflowAction, OverflowReason, QueueDef};
use crate::directory::Directory;
use crate::event::Event;
use crate::ids::{AgentId, CallId, QueueId, Timestamp};
use crate::state::{CallPhase, CallRecord, CallbackCall, State};

/// Overflow moves allowed per call before it times out instead.
pub const MAX_HOPS: u32 = 8;

/// A call about to leave its queue, and why.
pub(crate) struct Leave<'a> {
    pub call: &'a CallId,
    pub queue: &'a QueueId,
    pub enqueued_at: Timestamp,
    pub hops: u32,
    pub is_callback: bool,
    pub reason: OverflowReason,
    pub action: OverflowAction,
    /// An agent logging out in the same command: not counted as available.
    pub leaving_agent: Option<&'a AgentId>,
}

impl<'a> Leave<'a> {
    pub(crate) fn of(
        call: &'a CallId,
        rec: &'a CallRecord,
        reason: OverflowReason,
        action: OverflowAction,
    ) -> Self {
        Leave {
            call,
            queue: &rec.queue,
            enqueued_at: rec.enqueued_at,
            hops: rec.overflow_hops,
            is_callback: rec.callback.is_some(),
            reason,
            action,
            leaving_agent: None,
        }
    }
}

/// The events of a call leaving its queue: one `CallOverflowed` per hop, following
/// `Queue` moves through the next queue's admission rules, or `CallTimedOut` when the
/// call cannot move (hop limit, unknown queue, already a callback).
pub(crate) fn leave(dir: &Directory, state: &State, l: Leave<'_>, now: Timestamp) -> Vec<Event> {
    let waited_ms = now.ms_since(l.enqueued_at);
    let mut out = Vec::new();
    let (mut from, mut reason, mut action) = (l.queue.clone(), l.reason, l.action);
    let mut hops = l.hops;
    loop {
        let stuck = hops >= MAX_HOPS
            || match &action {
                OverflowAction::Queue(to) => !dir.queues.contains_key(to),
                OverflowAction::Callback => {
                    l.is_callback
                        || state
                            .calls
                            .contains_key(&crate::callbacks::callback_id(l.call))
                }
                _ => false,
            };
        if stuck {
            out.push(Event::CallTimedOut {
                call: l.call.clone(),
                queue: from,
                waited_ms,
            });
            return out;
        }
        out.push(Event::CallOverflowed {
            call: l.call.clone(),
            from: from.clone(),
            reason,
            action: action.clone(),
            waited_ms,
        });
        hops += 1;
        let OverflowAction::Queue(to) = action else {
            return out;
        };
        match admission(dir, state, &to, now, l.leaving_agent) {
            Some((r, a)) => (from, reason, action) = (to, r, a),
            None => return out,
        }
    }
}

/// Why `queue` cannot take a new call now, with the action to run: the first of
/// closed, full, no agents that applies and has an action.
pub(crate) fn admission(
    dir: &Directory,
    state: &State,
    queue: &QueueId,
    now: Timestamp,
    leaving_agent: Option<&AgentId>,
) -> Option<(OverflowReason, OverflowAction)> {
    let q = dir.queues.get(queue)?;
    if let Some(a) = &q.overflow.closed {
        if !is_open(q, now) {
            return Some((OverflowReason::Closed, a.clone()));
        }
    }
    if let (Some(a), Some(max)) = (&q.overflow.full, q.max_size) {
        if waiting_in(state, queue) >= max as usize {
            return Some((OverflowReason::Full, a.clone()));
        }
    }
    if let Some(a) = &q.overflow.no_agents {
        if !has_agents(dir, state, q, leaving_agent) {
            return Some((OverflowReason::NoAgents, a.clone()));
        }
    }
    None
}

/// Whether `q` is open at `now` (always, without `hours`).
pub(crate) fn is_open(q: &QueueDef, now: Timestamp) -> bool {
    let Some(h) = &q.hours else {
        return true;
    };
    let now_ms = i64::try_from(now.0).unwrap_or(i64::MAX);
    acd_ivr::calendar::hours(&h.timezone, &h.weekly, &h.holidays, now_ms)
        == acd_ivr::calendar::Hours::Open
}

fn waiting_in(state: &State, queue: &QueueId) -> usize {
    state
        .calls
        .values()
        .filter(|c| &c.queue == queue && c.phase == CallPhase::Waiting)
        .count()
}

/// Whether an agent with `skills` may ever take `q`'s calls (directly or after a step).
fn could_serve(q: &QueueDef, skills: &[(crate::ids::SkillId, u8)]) -> bool {
    q.skills.eval(skills)
        || q.relax
            .iter()
            .any(|s| s.skills.as_ref().is_some_and(|e| e.eval(skills)))
}

/// Whether an eligible agent other than `leaving` is logged in for `q`.
pub(crate) fn has_agents(
    dir: &Directory,
    state: &State,
    q: &QueueDef,
    leaving: Option<&AgentId>,
) -> bool {
    dir.agents.iter().any(|(id, def)| {
        Some(id) != leaving
            && state.agents.get(id).is_some_and(|a| a.state.is_logged_in())
            && could_serve(q, &def.skills)
    })
}

/// The overflows a logout causes: waiting calls of every queue that loses its last
/// eligible agent, for queues with a `no_agents` action.
pub(crate) fn on_logout(
    dir: &Directory,
    state: &State,
    agent: &AgentId,
    now: Timestamp,
) -> Vec<Event> {
    let mut out = Vec::new();
    for (qid, q) in &dir.queues {
        let Some(action) = &q.overflow.no_agents else {
            continue;
        };
        if !has_agents(dir, state, q, None) || has_agents(dir, state, q, Some(agent)) {
            continue;
        }
        let mut calls: Vec<_> = state
            .calls
            .iter()
            .filter(|(_, c)| &c.queue == qid && c.phase == CallPhase::Waiting)
            .collect();
        calls.sort_by(|(ia, a), (ib, b)| a.rank().cmp(&b.rank()).then_with(|| ia.cmp(ib)));
        for (id, c) in calls {
            let mut l = Leave::of(id, c, OverflowReason::NoAgents, action.clone());
            l.leaving_agent = Some(agent);
            out.extend(leave(dir, state, l, now));
        }
    }
    out
}

/// Applies `CallOverflowed`. The target queue's counters are created if missing: a
/// configuration change moves orphans into a new queue just before it takes effect.
pub(crate) fn apply(
    state: &mut State,
    at: Timestamp,
    call: &CallId,
    from: &QueueId,
    action: &OverflowAction,
) -> Result<(), String> {
    let c = state.call_ref(call)?;
    if c.phase != CallPhase::Waiting {
        return Err(format!("call {call} is {}, not waiting", c.phase.name()));
    }
    if &c.queue != from {
        return Err(format!("call {call} waits in {}, not {from}", c.queue));
    }
    if !state.counters.contains_key(from) {
        return Err(format!("unknown queue {from}"));
    }
    match action {
        OverflowAction::Queue(to) => {
            state.counters.entry(to.clone()).or_default().offered += 1;
            let c = state.call_mut(call)?;
            c.queue = to.clone();
            c.relax_step = 0;
            c.for_agent = None;
            c.overflow_hops += 1;
        }
        OverflowAction::Callback => {
            let number = if c.caller.number.is_empty() {
                c.caller.from.clone()
            } else {
                c.caller.number.clone()
            };
            let record = crate::callbacks::CallbackRecord {
                queue: from.clone(),
                number: number.clone(),
                priority: c.priority,
                voicemail: None,
                caller: c.caller.clone(),
                requested_at: at,
            };
            let cb = CallbackCall {
                number,
                attempts: 0,
                voicemail: None,
            };
            crate::callbacks::convert(state, call, from, cb)?;
            if let Some(c) = state.calls.get_mut(&crate::callbacks::callback_id(call)) {
                c.overflow_hops += 1;
            }
            state.callbacks.insert(call.clone(), record);
        }
        OverflowAction::Uri(_) | OverflowAction::Message(_) | OverflowAction::Flow(_) => {
            state.calls.remove(call);
        }
    }
    state.counter_mut(from)?.overflowed += 1;
    Ok(())
}
