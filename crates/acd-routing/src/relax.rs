//! Relaxation over time: a waiting call reaches its queue's steps as its wait grows.
//!
//! The step in force is [`CallRecord::relax_step`]: the number of the queue's steps
//! whose `after_ms` the call's wait (from `enqueued_at`, kept across overflow and
//! transfer) has reached. It only changes by [`Event::CallRelaxed`], decided by the
//! leader when the next step's deadline passes ([`crate::timer::Timer::Relax`]) or when
//! the steps themselves changed (a moved call, a new configuration), so a replay
//! relaxes at exactly the same records.
//!
//! A call moved into another queue (overflow, transfer) starts there at step 0 and is
//! brought at once to the steps of its new queue its wait has already reached (the
//! "simplest" rule: the wait counts, not the time spent in the new queue). A step with
//! `overflow` makes the call leave with that action instead
//! ([`crate::OverflowReason::Relaxation`]). Steps are only ever re-evaluated for
//! waiting calls: an offered call keeps the requirement it was offered under.

use crate::config::{OverflowReason, QueueDef};
use crate::directory::Directory;
use crate::event::Event;
use crate::ids::{AgentId, CallId, Timestamp};
use crate::state::{CallPhase, CallRecord, State};

/// How many of `q`'s steps a wait of `waited_ms` has reached (steps are sorted).
pub(crate) fn reached(q: &QueueDef, waited_ms: u64) -> u32 {
    let n = q
        .relax
        .iter()
        .take_while(|s| s.after_ms <= waited_ms)
        .count();
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// When `c` reaches its queue's next step, if it is waiting and one is left.
pub(crate) fn deadline(q: &QueueDef, c: &CallRecord) -> Option<Timestamp> {
    if c.phase != CallPhase::Waiting {
        return None;
    }
    let next = q.relax.get(c.relax_step as usize)?;
    Some(c.enqueued_at.plus_ms(next.after_ms))
}

/// The events that bring `call` to the step its wait has reached at `now`: a
/// `CallRelaxed`, or the overflow of the first newly reached step that has one.
pub(crate) fn events(dir: &Directory, state: &State, call: &CallId, now: Timestamp) -> Vec<Event> {
    let Some(c) = state.calls.get(call) else {
        return Vec::new();
    };
    let Some(q) = dir.queues.get(&c.queue) else {
        return Vec::new();
    };
    if c.phase != CallPhase::Waiting {
        return Vec::new();
    }
    let target = reached(q, now.ms_since(c.enqueued_at));
    if target == c.relax_step {
        return Vec::new();
    }
    let leaving = q
        .relax
        .iter()
        .take(target as usize)
        .skip(c.relax_step as usize)
        .find_map(|s| s.overflow.clone());
    match leaving {
        Some(action) if target > c.relax_step => crate::overflow::leave(
            dir,
            state,
            crate::overflow::Leave::of(call, c, OverflowReason::Relaxation, action),
            now,
        ),
        _ => vec![Event::CallRelaxed {
            call: call.clone(),
            step: target,
        }],
    }
}

/// Every waiting call whose step in force is not the one its wait has reached (after
/// a move or a configuration change; due steps also come through the timer), in id
/// order. The core asks the index ([`crate::index::RoutingIndex::out_of_step`]),
/// which scans only after a new configuration; the tests check it against this.
pub(crate) fn out_of_step(dir: &Directory, state: &State, now: Timestamp) -> Vec<CallId> {
    state
        .calls
        .iter()
        .filter(|(_, c)| c.phase == CallPhase::Waiting)
        .filter(|(_, c)| {
            dir.queues
                .get(&c.queue)
                .is_some_and(|q| reached(q, now.ms_since(c.enqueued_at)) != c.relax_step)
        })
        .map(|(id, _)| id.clone())
        .collect()
}

/// Applies `CallRelaxed`.
pub(crate) fn apply(state: &mut State, call: &CallId, step: u32) -> Result<(), String> {
    let c = state.call_mut(call)?;
    if c.phase != CallPhase::Waiting {
        return Err(format!("call {call} is {}, not waiting", c.phase.name()));
    }
    c.relax_step = step;
    Ok(())
}

/// Whether `agent` may be offered `call` now: not before a callback's retry time, only
/// the agent a transfer named, never one who declined it, and meeting the requirement
/// of the relaxation step in force. The matcher's rule; the core also checks each
/// planned offer with it, so a planner that missed one cannot break these promises.
pub(crate) fn may_offer(dir: &Directory, c: &CallRecord, agent: &AgentId, now: Timestamp) -> bool {
    if c.not_before.is_some_and(|t| t > now)
        || c.declined.contains(agent)
        || c.for_agent.as_ref().is_some_and(|a| a != agent)
    {
        return false;
    }
    let (Some(q), Some(def)) = (dir.queues.get(&c.queue), dir.agents.get(agent)) else {
        return false;
    };
    // A call transferred to one agent goes to them whatever their skills: a
    // person chose them.
    if c.for_agent.is_some() {
        return true;
    }
    let (expr, extra, _) = c.requirement(q);
    expr.eval(&def.skills)
        && extra.is_none_or(|need| crate::config::meets(need.iter(), &def.skills))
}
