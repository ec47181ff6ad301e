//! Read models for the shell (gRPC answers, wallboard). Built on demand from the state.

use crate::command::CallerInfo;
use crate::event::AgentState;
use crate::ids::{AgentId, CallId, Extension, QueueId, SkillId, Timestamp};
use crate::state::CallPhase;

/// An agent as supervisors see them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentView {
    pub id: AgentId,
    pub name: String,
    pub skills: Vec<(SkillId, u8)>,
    pub state: AgentState,
    pub extension: Option<Extension>,
    /// Reason code while NotReady.
    pub reason: Option<String>,
    /// When the current state began.
    pub since: Timestamp,
    /// When the agent last became Ready.
    pub idle_since: Option<Timestamp>,
}

/// A queue's live figures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueView {
    pub id: QueueId,
    /// Calls not yet connected (including those being offered).
    pub waiting: usize,
    /// Of `waiting`, the calls currently being offered to an agent.
    pub offering: usize,
    /// Enqueue time of the longest-waiting call, if any.
    pub longest_wait_since: Option<Timestamp>,
    /// Eligible agents currently Ready.
    pub agents_ready: usize,
    /// Eligible agents logged in, whatever their state.
    pub agents_logged_in: usize,
    /// Calls that entered the queue.
    pub offered: u64,
    pub answered: u64,
    pub abandoned: u64,
    pub timed_out: u64,
    /// Calls that left by an overflow action.
    pub overflowed: u64,
    /// Of `answered`, those answered within the queue's service-level time.
    pub answered_in_sl: u64,
    /// Callbacks given up after their last attempt.
    pub callbacks_failed: u64,
}

/// One call as the distributor knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallView {
    pub id: CallId,
    pub queue: QueueId,
    pub priority: i32,
    /// Skills the call needs beyond its queue's (from the IVR).
    pub skills: std::collections::BTreeMap<SkillId, u8>,
    pub caller: CallerInfo,
    pub enqueued_at: Timestamp,
    pub phase: CallPhase,
    /// 1-based place among the queue's waiting calls (for announcements); `None` once
    /// offered or connected.
    pub position: Option<usize>,
}
