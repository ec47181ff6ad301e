//! The rows of the records database as Rust values: what [`crate::project`]
//! writes and what [`crate::report`] reads. Times are Unix milliseconds (the
//! core's [`acd_routing::Timestamp`]), `None` where the moment did not happen.
//! Column semantics are documented once, in [`crate::schema`].

use serde::{Deserialize, Serialize};

/// `[from, to)` in Unix milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeRange {
    pub from: i64,
    pub to: i64,
}

impl TimeRange {
    pub fn contains(&self, at: i64) -> bool {
        self.from <= at && at < self.to
    }
}

/// One call's detail record (table `calls`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRow {
    pub call_id: String,
    pub arrived_at: Option<i64>,
    pub left_at: Option<i64>,
    pub did: String,
    pub caller_number: String,
    pub caller_name: String,
    pub flow: String,
    /// JSON array of `acd_routing::IvrStep`.
    pub ivr_steps: String,
    /// JSON object of the IVR's variables as queued.
    pub variables: String,
    pub first_queue: Option<String>,
    pub queue: Option<String>,
    pub priority: Option<i32>,
    pub queued_at: Option<i64>,
    pub first_offered_at: Option<i64>,
    pub offers: i32,
    pub agent: Option<String>,
    pub answered_at: Option<i64>,
    pub talk_ended_at: Option<i64>,
    pub ended_by: Option<String>,
    pub wrap_ended_at: Option<i64>,
    pub abandoned_at: Option<i64>,
    pub waited_ms: Option<i64>,
    pub outcome: String,
    pub edge_outcome: Option<String>,
    pub overflow_action: Option<String>,
    pub transfers: i32,
    pub callback_of: Option<String>,
    pub callback_requested_at: Option<i64>,
    pub survey_score: Option<i32>,
}

/// One step of the queue event trail (table `call_events`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallEventRow {
    pub seq: i64,
    pub at: i64,
    pub call_id: String,
    pub kind: String,
    pub queue: Option<String>,
    pub agent: Option<String>,
    /// JSON object with the kind's details.
    pub detail: String,
}

/// One change of an agent's state (table `agent_events`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentEventRow {
    pub seq: i64,
    pub at: i64,
    pub agent: String,
    pub state: String,
    pub reason: Option<String>,
    pub call_id: Option<String>,
}

/// What a report over a time range needs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dataset {
    pub range: Option<TimeRange>,
    /// Calls that arrived (or, without an edge note, queued) in the range.
    pub calls: Vec<CallRow>,
    /// Calls from the same numbers in the FCR window after the range's end
    /// are not needed: `calls` is loaded up to `to + fcr window` by callers
    /// that report FCR (see [`crate::report`]).
    pub call_events: Vec<CallEventRow>,
    /// Agent state changes in the range, plus each agent's last change before
    /// it (the state the agent was in at `from`), ordered by `(at, seq)`.
    pub agent_events: Vec<AgentEventRow>,
}
