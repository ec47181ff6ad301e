//! Why an offer went to this agent and this call: recorded on every
//! [`crate::Event::CallOffered`], so `acdctl explain <call>` shows the reasoning of
//! the leader that decided it (and a follower or a replay shows the same).

use crate::ids::{AgentId, CallId};
use crate::strategy::Strategy;
use serde::{Deserialize, Serialize};

/// Candidates kept per explanation (the winner and the runners-up).
pub const EXPLAIN_CANDIDATES: usize = 5;

/// The reasoning behind one offer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explanation {
    /// The queue's strategy that ordered the agents.
    pub strategy: Option<Strategy>,
    /// The relaxation step in force for the call (0: the queue's own expression).
    pub relax_step: u32,
    /// The expression the agent had to satisfy, as text.
    pub skills: String,
    /// The call's effective priority when chosen (own + queue + relaxation boosts + aging).
    pub effective_priority: i64,
    /// Calls that waited for this agent too and lost, best first (at most
    /// [`EXPLAIN_CANDIDATES`]), with the reason they lost.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_calls: Vec<(CallId, String)>,
    /// The eligible Ready agents, best first (at most [`EXPLAIN_CANDIDATES`]), with
    /// the strategy's score as text (e.g. `idle 42 s`, `proficiency 17`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<(AgentId, String)>,
    /// Free text for anything else (a transfer's target, a callback attempt).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}
