//! Callbacks (virtual hold): a caller asked the IVR to be called back later
//! instead of waiting, or a queue's overflow action turned the waiting call into
//! one. Either way a callback call `<inbound>:cb` waits in the queue like any call
//! (the inbound call itself converted in place when it was waiting, so it keeps its
//! place; else a new call from now), with [`CallRecord::callback`] set, and the
//! request is listed in `State::callbacks` until the callback call connects or is
//! given up.
//!
//! Its offer carries a [`CallbackDial`] ([`dial_for`]): the edge dials the customer
//! first and reports [`CallbackOutcome`]. Answered: nothing changes (the edge then
//! rings the reserved agent and `AgentAnswered` connects as usual). Busy, no answer
//! or failed: the agent is Ready again (keeping idle time), and the call waits again
//! in its place from `retry_at` (`not_before`, cleared by [`Event::CallbackRetryDue`])
//! while attempts ≤ the queue's `retries`, else it is removed and counted in
//! `callbacks_failed`. A queue without a `callback` policy uses [`DEFAULT_POLICY`].
//!
//! A callback call is not held to its queue's `max_wait_ms` (nobody is on the line;
//! it keeps the inbound call's `enqueued_at`, so it would be past it at once); it
//! leaves when served, given up, abandoned by the edge, or by a relaxation step's
//! overflow.
//!
//! One request per inbound call: an edge re-sending it after a fail-over, or a
//! flow asking twice, does not book two callbacks (while the first is pending).

use crate::command::{CallbackOutcome, CallerInfo};
use crate::config::CallbackPolicy;
use crate::directory::Directory;
use crate::error::CommandError;
use crate::event::{AgentState, CallbackDial, Event};
use crate::ids::{AgentId, CallId, QueueId, Timestamp};
use crate::state::{CallPhase, CallRecord, CallbackCall, State};
use serde::{Deserialize, Serialize};

/// A pending callback.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackRecord {
    pub queue: QueueId,
    /// The number to call back.
    pub number: String,
    pub priority: i32,
    /// The voicemail the caller left (a file name on the edge), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voicemail: Option<String>,
    pub caller: CallerInfo,
    pub requested_at: Timestamp,
}

/// Placement of callbacks from a queue without its own `callback` policy: dial as a
/// SIP URI, once, ringing 30 s.
pub static DEFAULT_POLICY: CallbackPolicy = CallbackPolicy {
    trunk: String::new(),
    retries: 0,
    retry_after_ms: 60_000,
    ring_ms: 30_000,
};

/// The id of the callback call of inbound call `call`.
pub fn callback_id(call: &CallId) -> CallId {
    CallId(format!("{call}:cb"))
}

/// The inbound call a callback call id was made from.
pub(crate) fn inbound_of(call: &CallId) -> Option<CallId> {
    call.as_str().strip_suffix(":cb").map(CallId::from)
}

fn policy<'a>(dir: &'a Directory, queue: &QueueId) -> &'a CallbackPolicy {
    dir.queues
        .get(queue)
        .and_then(|q| q.callback.as_ref())
        .unwrap_or(&DEFAULT_POLICY)
}

/// What the edge dials before ringing the agent, for a callback call (`None` for any
/// other call). Whoever builds `CallOffered` puts this in its `dial`.
pub(crate) fn dial_for(dir: &Directory, call: &CallRecord) -> Option<CallbackDial> {
    let cb = call.callback.as_ref()?;
    let p = policy(dir, &call.queue);
    Some(CallbackDial {
        number: cb.number.clone(),
        trunk: p.trunk.clone(),
        ring_ms: p.ring_ms,
        attempt: cb.attempts.saturating_add(1),
    })
}

/// The events of a `RequestCallback` command.
pub(crate) fn decide(
    dir: &Directory,
    state: &State,
    call: CallId,
    record: CallbackRecord,
) -> Result<Vec<Event>, CommandError> {
    if !dir.queues.contains_key(&record.queue) {
        return Err(CommandError::UnknownQueue(record.queue));
    }
    if state.callbacks.contains_key(&call) || state.calls.contains_key(&callback_id(&call)) {
        return Ok(Vec::new()); // a re-sent request
    }
    Ok(vec![Event::CallbackRequested { call, record }])
}

/// Applies `CallbackRequested`: lists the request and puts its callback call in the
/// queue (converting the inbound call when it is waiting).
pub(crate) fn apply(
    state: &mut State,
    at: Timestamp,
    call: &CallId,
    record: &CallbackRecord,
) -> Result<(), String> {
    if state.callbacks.contains_key(call) {
        return Err(format!("callback for {call} already requested"));
    }
    let cb_id = callback_id(call);
    if state.calls.contains_key(&cb_id) {
        return Err(format!("call {cb_id} already exists"));
    }
    state.counter_mut(&record.queue)?;
    let cb = CallbackCall {
        number: record.number.clone(),
        attempts: 0,
        voicemail: record.voicemail.clone(),
    };
    if state
        .calls
        .get(call)
        .is_some_and(|c| c.phase == CallPhase::Waiting)
    {
        convert(state, call, &record.queue, cb)?;
    } else {
        state.counter_mut(&record.queue)?.offered += 1;
        state.calls.insert(
            cb_id,
            CallRecord {
                queue: record.queue.clone(),
                priority: record.priority,
                caller: record.caller.clone(),
                enqueued_at: at,
                arrival: state.next_arrival,
                phase: CallPhase::Waiting,
                skills: Default::default(),
                relax_step: 0,
                declined: Default::default(),
                for_agent: None,
                callback: Some(cb),
                not_before: None,
                overflow_hops: 0,
            },
        );
        state.next_arrival += 1;
    }
    state.callbacks.insert(call.clone(), record.clone());
    Ok(())
}

/// Replaces the waiting `inbound` call by its callback call in `queue`, keeping its
/// wait, arrival, priority and data (a new queue counts it as offered and restarts
/// relaxation from the wait so far).
pub(crate) fn convert(
    state: &mut State,
    inbound: &CallId,
    queue: &QueueId,
    callback: CallbackCall,
) -> Result<(), String> {
    let cb_id = callback_id(inbound);
    if state.calls.contains_key(&cb_id) {
        return Err(format!("call {cb_id} already exists"));
    }
    let c = state.call_ref(inbound)?;
    if c.phase != CallPhase::Waiting {
        return Err(format!("call {inbound} is {}, not waiting", c.phase.name()));
    }
    let moves = c.queue != *queue;
    if moves {
        state.counter_mut(queue)?.offered += 1;
    }
    let Some(mut rec) = state.calls.remove(inbound) else {
        return Err(format!("unknown call {inbound}"));
    };
    if moves {
        rec.queue = queue.clone();
        rec.relax_step = 0;
    }
    rec.callback = Some(callback);
    rec.for_agent = None;
    rec.not_before = None;
    state.calls.insert(cb_id, rec);
    Ok(())
}

/// The events of a `CallbackResult` command.
pub(crate) fn decide_result(
    dir: &Directory,
    state: &State,
    call: CallId,
    outcome: CallbackOutcome,
    now: Timestamp,
) -> Result<Vec<Event>, CommandError> {
    let c = state
        .calls
        .get(&call)
        .ok_or_else(|| CommandError::UnknownCall(call.clone()))?;
    let Some(cb) = &c.callback else {
        return Err(CommandError::Invalid(format!(
            "call `{call}` is not a callback"
        )));
    };
    let CallPhase::Offered { agent, .. } = &c.phase else {
        return Err(CommandError::CallNotInPhase {
            call,
            action: "report a callback result",
            phase: c.phase.name(),
        });
    };
    if outcome == CallbackOutcome::Answered {
        return Ok(Vec::new());
    }
    let p = policy(dir, &c.queue);
    let attempts = cb.attempts.saturating_add(1);
    let retry_at = (attempts <= p.retries).then(|| now.plus_ms(p.retry_after_ms));
    Ok(vec![Event::CallbackAttemptFailed {
        agent: agent.clone(),
        call,
        outcome,
        retry_at,
    }])
}

/// Applies `CallbackAttemptFailed`.
pub(crate) fn apply_attempt_failed(
    state: &mut State,
    at: Timestamp,
    call: &CallId,
    agent: &AgentId,
    retry_at: Option<Timestamp>,
) -> Result<(), String> {
    state.check_offered_to(call, agent)?;
    state.check_counted(call)?;
    if state.call_ref(call)?.callback.is_none() {
        return Err(format!("call {call} is not a callback"));
    }
    let a = state.agent_mut(agent)?;
    // Ready with the idle time they had: nobody was reached.
    a.state = AgentState::Ready;
    a.since = at;
    match retry_at {
        Some(t) => {
            let c = state.call_mut(call)?;
            c.phase = CallPhase::Waiting;
            c.not_before = Some(t);
            if let Some(cb) = &mut c.callback {
                cb.attempts = cb.attempts.saturating_add(1);
            }
        }
        None => {
            let queue = state.call_ref(call)?.queue.clone();
            state.counter_mut(&queue)?.callbacks_failed += 1;
            state.calls.remove(call);
        }
    }
    Ok(())
}

/// The event that ends a callback's wait between attempts, if it is due.
pub(crate) fn retry_event(state: &State, call: &CallId, now: Timestamp) -> Option<Event> {
    let c = state.calls.get(call)?;
    (c.phase == CallPhase::Waiting && c.not_before.is_some_and(|t| t <= now))
        .then(|| Event::CallbackRetryDue { call: call.clone() })
}

/// Applies `CallbackRetryDue`.
pub(crate) fn apply_retry_due(
    state: &mut State,
    at: Timestamp,
    call: &CallId,
) -> Result<(), String> {
    let c = state.call_mut(call)?;
    match c.not_before {
        Some(t) if t <= at && c.phase == CallPhase::Waiting => {
            c.not_before = None;
            Ok(())
        }
        _ => Err(format!("call {call} has no callback retry due")),
    }
}

/// The call an event connects or removes, whose pending callback entry may go.
pub(crate) fn call_of(event: &Event) -> Option<&CallId> {
    match event {
        Event::CallConnected { call, .. }
        | Event::CallAbandoned { call, .. }
        | Event::CallTimedOut { call, .. }
        | Event::CallEnded { call, .. }
        | Event::CallOverflowed { call, .. }
        | Event::CallbackAttemptFailed { call, .. } => Some(call),
        _ => None,
    }
}

/// Drops the pending entry of callback call `call` once it connected or left.
pub(crate) fn settle_entry(state: &mut State, call: &CallId) {
    let Some(inbound) = inbound_of(call) else {
        return;
    };
    let done = match state.calls.get(call) {
        None => true,
        Some(c) => matches!(c.phase, CallPhase::Connected { .. }),
    };
    if done {
        state.callbacks.remove(&inbound);
    }
}
