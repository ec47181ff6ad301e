//! An agent hands a connected call on ([`Command::Transfer`]) or declines an offer
//! ([`Command::RejectOffer`]).
//!
//! Transfer: only the agent connected to the call may transfer it. The call waits
//! again keeping priority, data, `enqueued_at` and arrival (so its place and its
//! service-level clock); to a queue it moves there (counted as offered to that queue,
//! relaxation restarts from the wait so far; the queue's closed/full rules are not
//! applied to transfers), to an agent it stays in its queue with `for_agent` set, and
//! only that agent (who must be logged in, not the transferring one) may be offered
//! it. The transferring agent enters the wrap-up of the call's queue before the
//! transfer.
//!
//! Reject: only the agent the call is offered to. The call returns to its place and
//! is never offered to that agent again (`declined`); a call transferred to that very
//! agent goes back to its queue's agents. The agent is Ready again with the idle time
//! they had.
//!
//! [`Command::Transfer`]: crate::Command::Transfer
//! [`Command::RejectOffer`]: crate::Command::RejectOffer

use crate::command::TransferTarget;
use crate::directory::Directory;
use crate::error::CommandError;
use crate::event::{AgentState, Event};
use crate::ids::{AgentId, CallId, Timestamp};
use crate::state::{CallPhase, CallRecord, State};

/// The record of `call`, when both it and `agent` are known.
fn known<'a>(
    state: &'a State,
    call: &CallId,
    agent: &AgentId,
) -> Result<&'a CallRecord, CommandError> {
    let c = state
        .calls
        .get(call)
        .ok_or_else(|| CommandError::UnknownCall(call.clone()))?;
    if !state.agents.contains_key(agent) {
        return Err(CommandError::UnknownAgent(agent.clone()));
    }
    Ok(c)
}

/// The events of a `Transfer` command.
pub(crate) fn decide_transfer(
    dir: &Directory,
    state: &State,
    call: CallId,
    by: AgentId,
    target: TransferTarget,
    now: Timestamp,
) -> Result<Vec<Event>, CommandError> {
    let c = known(state, &call, &by)?;
    match &c.phase {
        CallPhase::Connected { agent, .. } if *agent == by => {}
        p => {
            return Err(CommandError::CallNotInPhase {
                call,
                action: "be transferred by an agent not connected to it",
                phase: p.name(),
            })
        }
    }
    match &target {
        TransferTarget::Queue(q) if !dir.queues.contains_key(q) => {
            return Err(CommandError::UnknownQueue(q.clone()));
        }
        TransferTarget::Queue(_) => {}
        TransferTarget::Agent(a) => {
            let rt = state
                .agents
                .get(a)
                .ok_or_else(|| CommandError::UnknownAgent(a.clone()))?;
            if *a == by {
                return Err(CommandError::Invalid(format!(
                    "agent `{by}` cannot transfer call `{call}` to themselves"
                )));
            }
            if !rt.state.is_logged_in() {
                return Err(CommandError::AgentNotLoggedIn(a.clone()));
            }
        }
    }
    let wrap = dir.wrap_up_ms(&c.queue);
    let mut events = vec![Event::CallTransferred {
        call,
        from_agent: by.clone(),
        target,
        wrap_up_until: now.plus_ms(wrap),
    }];
    if wrap == 0 {
        events.push(Event::AgentStateChanged {
            agent: by,
            state: AgentState::Ready,
            reason: None,
        });
    }
    Ok(events)
}

/// Applies `CallTransferred`.
pub(crate) fn apply_transfer(
    state: &mut State,
    at: Timestamp,
    call: &CallId,
    from_agent: &AgentId,
    target: &TransferTarget,
    wrap_up_until: Timestamp,
) -> Result<(), String> {
    let c = state.call_ref(call)?;
    match &c.phase {
        CallPhase::Connected { agent, .. } if agent == from_agent => {}
        p => {
            return Err(format!(
                "call {call} is {}, not connected to {from_agent}",
                p.name()
            ))
        }
    }
    let moves_to = match target {
        TransferTarget::Queue(q) if *q != c.queue => Some(q.clone()),
        _ => None,
    };
    if let Some(q) = &moves_to {
        state.counter_mut(q)?;
    }
    if let TransferTarget::Agent(a) = target {
        if !state.agents.contains_key(a) {
            return Err(format!("unknown agent {a}"));
        }
    }
    let a = state.agent_mut(from_agent)?;
    if a.state != (AgentState::OnCall { call: call.clone() }) {
        return Err(format!("agent {from_agent} is not on {call}"));
    }
    a.state = AgentState::WrapUp {
        until: wrap_up_until,
    };
    a.reason = None;
    a.since = at;
    if let Some(q) = &moves_to {
        state.counter_mut(q)?.offered += 1;
    }
    let c = state.call_mut(call)?;
    c.phase = CallPhase::Waiting;
    match target {
        TransferTarget::Queue(_) => c.for_agent = None,
        TransferTarget::Agent(a) => {
            c.declined.remove(a);
            c.for_agent = Some(a.clone());
        }
    }
    if let Some(q) = moves_to {
        c.queue = q;
        c.relax_step = 0;
    }
    Ok(())
}

/// The events of a `RejectOffer` command.
pub(crate) fn decide_reject(
    state: &State,
    call: CallId,
    agent: AgentId,
) -> Result<Vec<Event>, CommandError> {
    let c = known(state, &call, &agent)?;
    match &c.phase {
        CallPhase::Offered { agent: a, .. } if *a == agent => {
            Ok(vec![Event::OfferRejected { call, agent }])
        }
        p => Err(CommandError::CallNotInPhase {
            call,
            action: "be rejected by an agent it is not offered to",
            phase: p.name(),
        }),
    }
}

/// Applies `OfferRejected`.
pub(crate) fn apply_reject(
    state: &mut State,
    at: Timestamp,
    call: &CallId,
    agent: &AgentId,
) -> Result<(), String> {
    state.check_offered_to(call, agent)?;
    let a = state.agent_mut(agent)?;
    // Ready with the idle time they had: declining is not a call handled.
    a.state = AgentState::Ready;
    a.since = at;
    let c = state.call_mut(call)?;
    c.phase = CallPhase::Waiting;
    c.declined.insert(agent.clone());
    if c.for_agent.as_ref() == Some(agent) {
        c.for_agent = None;
    }
    Ok(())
}
