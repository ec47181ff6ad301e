//! Inputs to the core: what agents and the edge ask for.

use crate::bindings::BindingRecord;
use crate::ids::{AgentId, CallId, EdgeId, Extension, QueueId, SkillId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What is known about the caller, shown to the agent as the call is offered (call pop).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallerInfo {
    /// Caller's number or URI.
    pub from: String,
    /// Caller's display name.
    pub display: String,
    /// Caller's number alone (the From URI's user part), for the call pop and for
    /// calling back; empty when unknown.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub number: String,
    /// The dialled number the call arrived on.
    pub did: String,
    /// Whatever the IVR collected (account number, language, …).
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
}

/// A request to change the routing state. The core decides which events it leads to,
/// or refuses it with a [`crate::CommandError`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Command {
    /// The agent starts a session at `extension` (hot desking). They start NotReady.
    /// Logging in again at the same extension is a no-op, so clients can retry.
    AgentLogin {
        agent: AgentId,
        extension: Extension,
    },
    /// The agent is available; also ends wrap-up early.
    AgentReady { agent: AgentId },
    /// The agent is unavailable for `reason` (break, training…); also ends wrap-up.
    AgentNotReady { agent: AgentId, reason: String },
    /// Ends the session; refused while reserved for or talking on a call.
    AgentLogout { agent: AgentId },
    /// A caller joins `queue`. Higher `priority` is served first.
    Enqueue {
        call: CallId,
        queue: QueueId,
        priority: i32,
        caller: CallerInfo,
        /// Skills the call needs beyond the queue's (skill → minimum level).
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        skills: BTreeMap<SkillId, u8>,
    },
    /// The caller hung up. Before connection this is an abandon (an agent reserved for
    /// the call is released); after connection it is handled like [`Command::CallEnded`].
    Abandon { call: CallId },
    /// The edge bridged the offered call to the agent.
    AgentAnswered {
        call: CallId,
        /// Which agent answered: needed for a ring-all offer, where every agent
        /// reserved for the call rings and the first to answer takes it (the others
        /// go back to Ready). `None`: the agent the call was offered to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent: Option<AgentId>,
    },
    /// The agent leg failed or rang out: ring-no-answer. The call goes back to its place
    /// in the queue and the agent becomes NotReady with reason "RONA".
    AgentFailed { call: CallId, reason: String },
    /// Either side hung up a connected call; the agent enters wrap-up. For a call that
    /// was never connected this is handled like [`Command::Abandon`].
    CallEnded {
        call: CallId,
        /// Who ended it, as the edge saw it.
        #[serde(default)]
        by: crate::event::EndReason,
    },
    /// An edge reports the phone at `extension` registered (or refreshed, or
    /// moved) there. An expiry already past is handled like [`Command::Unbind`].
    Bind {
        extension: Extension,
        binding: BindingRecord,
    },
    /// The phone at `extension` unregistered at `edge`, or its binding expired
    /// there; ignored unless `edge` holds the binding.
    Unbind { extension: Extension, edge: EdgeId },
    /// The IVR booked a callback for the inbound `call` (at most one per call;
    /// a repeat is a no-op). `requested_at` is ignored: the core stamps `now`.
    RequestCallback {
        call: CallId,
        record: crate::callbacks::CallbackRecord,
    },
    /// The agent on `call` hands it on: back to waiting (keeping priority, data and
    /// its wait so far) in a queue or for one agent; the agent enters wrap-up.
    Transfer {
        call: CallId,
        by: AgentId,
        target: TransferTarget,
    },
    /// The agent declines the offer: the call returns to its place and is not offered
    /// to this agent again; the agent stays Ready.
    RejectOffer { call: CallId, agent: AgentId },
    /// The edge reports how dialling the customer of a callback went.
    CallbackResult {
        call: CallId,
        outcome: CallbackOutcome,
    },
    /// Replaces the configuration as one event. Calls waiting in queues that no longer
    /// exist move to `orphans_to` (refused when needed and missing); waiting calls are
    /// re-evaluated under the new queues, steps and priorities.
    ApplyConfig {
        config: crate::config::RoutingConfig,
        #[serde(default)]
        orphans_to: Option<QueueId>,
    },
}

/// Where a transferred call goes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferTarget {
    Queue(QueueId),
    Agent(AgentId),
}

/// How one attempt to call a customer back went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallbackOutcome {
    /// The customer answered; the edge now rings the reserved agent as for any offer.
    Answered,
    Busy,
    NoAnswer,
    /// Any other failure (trunk refused, unreachable).
    Failed,
}
