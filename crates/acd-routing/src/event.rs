//! Outputs of the core: every state change is one [`EventRecord`]. Events are also the
//! effects list: the shell turns e.g. [`Event::CallOffered`] into "connect the agent"
//! once the standby has acknowledged the record.

use crate::bindings::BindingRecord;
use crate::command::CallerInfo;
use crate::ids::{AgentId, CallId, Extension, QueueId, Seq, SkillId, Term, Timestamp};
use crate::origin::Origin;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Reason recorded when an agent is made NotReady because an offer was not answered.
pub const RONA_REASON: &str = "RONA";

impl Event {
    /// The call the event is about, if any.
    pub fn call(&self) -> Option<&CallId> {
        match self {
            Event::CallQueued { call, .. }
            | Event::CallOffered { call, .. }
            | Event::CallConnected { call, .. }
            | Event::CallRequeued { call, .. }
            | Event::CallAbandoned { call, .. }
            | Event::CallTimedOut { call, .. }
            | Event::CallEnded { call, .. }
            | Event::CallRelaxed { call, .. }
            | Event::CallOverflowed { call, .. }
            | Event::CallTransferred { call, .. }
            | Event::OfferRejected { call, .. }
            | Event::CallbackAttemptFailed { call, .. }
            | Event::CallbackRequested { call, .. }
            | Event::CallbackRetryDue { call }
            | Event::CallNoted { call, .. } => Some(call),
            Event::AgentLoggedIn { .. }
            | Event::AgentStateChanged { .. }
            | Event::AgentLoggedOut { .. }
            | Event::ConfigChanged { .. }
            | Event::BindingChanged { .. } => None,
        }
    }
}

/// One entry of the event log: what happened, when, and under which leader.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    pub seq: Seq,
    pub term: Term,
    /// The `now` the leader was given; applying uses it instead of a clock, so a replay
    /// reproduces every decision.
    pub at: Timestamp,
    pub event: Event,
    /// The edge message this record's command came from, on the command's first
    /// record only, so a follower learns what was applied (see `origin`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
}

/// Who or what ended a call, for the agent's `CallFinished` and for reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    #[default]
    Unknown,
    CallerHungUp,
    AgentHungUp,
    /// The edge lost the call (media timeout, edge shut down).
    Failed,
}

/// The number to dial for a callback offer (the agent is reserved first).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackDial {
    pub number: String,
    /// The edge trunk to dial through (empty: the number as a SIP URI).
    pub trunk: String,
    pub ring_ms: u64,
    /// 1 for the first attempt.
    pub attempt: u32,
}

/// An agent's state. Each state carries the data that only exists in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AgentState {
    LoggedOut,
    NotReady,
    Ready,
    /// Rung for `call`; no other call is offered meanwhile.
    Reserved {
        call: CallId,
    },
    OnCall {
        call: CallId,
    },
    /// After-call work; becomes Ready at `until` unless the agent acts first.
    WrapUp {
        until: Timestamp,
    },
}

impl AgentState {
    /// Logged in, whatever they are doing.
    pub fn is_logged_in(&self) -> bool {
        !matches!(self, AgentState::LoggedOut)
    }

    /// The call this state ties the agent to, if any.
    pub fn call(&self) -> Option<&CallId> {
        match self {
            AgentState::Reserved { call } | AgentState::OnCall { call } => Some(call),
            _ => None,
        }
    }
}

/// A state change. Each event is applied atomically: an event that touches both a call and
/// an agent (an offer, a requeue, an abandon of an offered call) moves both at once, so no
/// record leaves the state half-updated. Events that change an agent's state are noted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// Agent → NotReady at `extension`.
    AgentLoggedIn {
        agent: AgentId,
        extension: Extension,
    },
    /// Agent → `state` (only NotReady, Ready and WrapUp are set this way).
    AgentStateChanged {
        agent: AgentId,
        state: AgentState,
        reason: Option<String>,
    },
    /// Agent → LoggedOut; the extension is free again.
    AgentLoggedOut { agent: AgentId },
    /// A call starts waiting.
    CallQueued {
        call: CallId,
        queue: QueueId,
        priority: i32,
        caller: CallerInfo,
        enqueued_at: Timestamp,
        /// Skills the call needs beyond the queue's.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        skills: BTreeMap<SkillId, u8>,
    },
    /// The call is offered to `agent` at `extension`: agent → Reserved. The shell tells
    /// the edge to connect and pushes the offer (with caller data) to the agent.
    CallOffered {
        call: CallId,
        agent: AgentId,
        extension: Extension,
        queue: QueueId,
        caller: CallerInfo,
        /// Carried rather than derived from configuration, so a follower with a
        /// different offer timeout still reaches the same state.
        expires_at: Timestamp,
        /// Why this agent and this call (`acdctl explain`).
        #[serde(default)]
        explanation: crate::explain::Explanation,
        /// The agent's phone answers by itself.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        auto_answer: bool,
        /// Ring-all: further agents reserved for the same call; the edge rings them
        /// all and the first to answer takes it (the others return to Ready).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        ring_also: Vec<(AgentId, Extension)>,
        /// A callback: the edge dials the customer first, then rings the agent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dial: Option<CallbackDial>,
    },
    /// The edge bridged the call: agent → OnCall.
    CallConnected { call: CallId, agent: AgentId },
    /// An offer failed (ring-no-answer, agent leg failure, offer timeout): the call
    /// returns to its original place; agent → NotReady with reason [`RONA_REASON`].
    CallRequeued {
        call: CallId,
        agent: AgentId,
        reason: String,
    },
    /// The caller hung up before being connected. If an agent was reserved for the call
    /// (`agent`), it returns to Ready keeping its idle time; the shell cancels its leg.
    CallAbandoned {
        call: CallId,
        queue: QueueId,
        waited_ms: u64,
        agent: Option<AgentId>,
    },
    /// The call waited longer than its queue's `max_wait_ms` and leaves the queue; the
    /// shell decides what happens to the caller (announcement, voicemail, overflow).
    CallTimedOut {
        call: CallId,
        queue: QueueId,
        waited_ms: u64,
    },
    /// A connected call ended: agent → WrapUp until `wrap_up_until`.
    CallEnded {
        call: CallId,
        agent: AgentId,
        wrap_up_until: Timestamp,
        #[serde(default)]
        by: EndReason,
    },
    /// A waiting call has waited into relaxation step `step` (1-based) of its queue.
    CallRelaxed { call: CallId, step: u32 },
    /// The queue could not serve the call and its action ran. `Queue` moves the call
    /// (keeping priority, data and wait); any other action removes it and the shell
    /// tells the edge what to do with the caller.
    CallOverflowed {
        call: CallId,
        from: QueueId,
        reason: crate::config::OverflowReason,
        action: crate::config::OverflowAction,
        waited_ms: u64,
    },
    /// The agent handed the connected call on: the call waits again (in `target`'s
    /// queue, or for that agent), the agent → WrapUp until `wrap_up_until`.
    CallTransferred {
        call: CallId,
        from_agent: AgentId,
        target: crate::command::TransferTarget,
        wrap_up_until: Timestamp,
    },
    /// The agent declined the offer: the call returns to its place, the agent → Ready.
    OfferRejected { call: CallId, agent: AgentId },
    /// Dialling a callback's customer failed: the reserved agent → Ready; the call
    /// waits again from `retry_at` keeping its place, or is given up (`None`).
    CallbackAttemptFailed {
        call: CallId,
        agent: AgentId,
        outcome: crate::command::CallbackOutcome,
        retry_at: Option<Timestamp>,
    },
    /// The configuration was replaced (whole), numbered from 1 per core.
    ConfigChanged {
        version: u64,
        config: crate::config::RoutingConfig,
    },
    /// The phone at `extension` is now reachable as `binding` (`None`: no
    /// longer registered). The shell tells every attached edge.
    BindingChanged {
        extension: Extension,
        binding: Option<BindingRecord>,
    },
    /// A callback was booked for the inbound `call`. It also puts the callback call
    /// `<call>:cb` in the record's queue: the inbound call itself, converted in place
    /// (same wait and arrival), when it was waiting; else a new call waiting from now.
    CallbackRequested {
        call: CallId,
        record: crate::callbacks::CallbackRecord,
    },
    /// A callback's wait between attempts is over: it may be offered again
    /// (clears [`crate::CallRecord::not_before`]). Added to the contract by the core
    /// (the retry timer needs an event to clear its deadline).
    CallbackRetryDue { call: CallId },
    /// The edge's account of the call (arrival, IVR trail, survey score); changes
    /// no routing state, it is there for call records.
    CallNoted {
        call: CallId,
        note: crate::command::CallNote,
    },
}
