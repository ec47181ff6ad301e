//! Inputs to the core: what agents and the edge ask for.

use crate::bindings::BindingRecord;
use crate::ids::{AgentId, CallId, EdgeId, Extension, QueueId, SkillId, Timestamp};
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
    /// The edge's account of a call whose caller leg has ended: arrival, the IVR
    /// trail, how it ended there and the survey score. Changes no routing state;
    /// it is logged so call records come from the distributor's event stream alone.
    NoteCall { call: CallId, note: CallNote },
}

/// Most IVR steps kept per call note; later ones are dropped (the note says so).
pub const MAX_NOTE_STEPS: usize = 32;

/// What the edge saw of one call, sent once when the caller's leg ends.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallNote {
    /// When the INVITE arrived (edge clock).
    pub arrived_at: Timestamp,
    /// When the caller's leg ended (edge clock).
    pub left_at: Timestamp,
    /// The dialled number.
    #[serde(default)]
    pub did: String,
    /// The caller's number (From user part).
    #[serde(default)]
    pub caller: String,
    /// The IVR flow that ran first; empty: none.
    #[serde(default)]
    pub flow: String,
    /// Inputs given in the IVR, in order (at most [`MAX_NOTE_STEPS`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<IvrStep>,
    /// How the call ended as the edge saw it, one of [`EdgeOutcome`]'s names.
    pub outcome: EdgeOutcome,
    /// 1–5 from the post-call survey; `None`: no survey or no answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub survey_score: Option<u8>,
}

/// One input in the IVR: the node that asked and what the caller gave.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IvrStep {
    pub at: Timestamp,
    pub node: String,
    /// Digits pressed, or the menu choice taken.
    pub input: String,
}

/// How the caller's leg ended, seen from the edge.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgeOutcome {
    #[default]
    Unknown,
    /// Went to a queue (what happened there is in the distributor's own events).
    Queued,
    /// Served by the IVR alone (a flow ended with a message / hang-up node).
    SelfServed,
    /// The caller hung up in the IVR before reaching a queue.
    AbandonedInIvr,
    /// Left a voicemail.
    Voicemail,
    /// Sent elsewhere (a SIP URI, a closed message) without reaching an agent.
    Redirected,
    /// Refused at the door (busy, no route, overload).
    Refused,
    /// Lost by the edge (media timeout, failure).
    Failed,
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

/// Longest text field of a note (node names, inputs, numbers) accepted.
const MAX_NOTE_TEXT: usize = 256;

/// Refuses a note a well-behaved edge never sends: too many steps, oversized text,
/// a survey score outside 1–5, or a leg that ended before it arrived.
pub(crate) fn check_note(note: &CallNote) -> Result<(), String> {
    if note.steps.len() > MAX_NOTE_STEPS {
        return Err(format!(
            "{} IVR steps (at most {MAX_NOTE_STEPS})",
            note.steps.len()
        ));
    }
    let texts = [&note.did, &note.caller, &note.flow]
        .into_iter()
        .chain(note.steps.iter().flat_map(|s| [&s.node, &s.input]));
    if let Some(t) = texts.into_iter().find(|t| t.len() > MAX_NOTE_TEXT) {
        return Err(format!(
            "a note field of {} bytes (at most {MAX_NOTE_TEXT})",
            t.len()
        ));
    }
    if let Some(score) = note.survey_score.filter(|s| !(1..=5).contains(s)) {
        return Err(format!("survey score {score} (1 to 5)"));
    }
    if note.left_at < note.arrived_at {
        return Err("the call left before it arrived".to_string());
    }
    Ok(())
}
