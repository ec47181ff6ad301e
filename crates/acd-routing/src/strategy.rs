//! How to choose among several Ready agents eligible for the same call.
//!
//! A strategy orders a queue's candidates; the matcher then offers each call, in rank
//! order, to the first candidate not already taken. Strategies that need their own
//! memory (round robin, fewest calls) will read it from the state passed in.

use crate::ids::{AgentId, Timestamp};
use serde::{Deserialize, Serialize};

/// A Ready agent eligible for a queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate<'a> {
    pub agent: &'a AgentId,
    /// When the agent last became Ready.
    pub idle_since: Timestamp,
}

/// The agent-selection strategy. One for now; more come with the full engine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// The agent Ready for the longest time first; ties by agent id, so the choice
    /// never depends on map iteration order.
    #[default]
    LongestIdle,
}

impl Strategy {
    /// Sorts `candidates` best first.
    pub fn order(&self, candidates: &mut [Candidate<'_>]) {
        match self {
            Strategy::LongestIdle => candidates.sort_by(|a, b| {
                a.idle_since
                    .cmp(&b.idle_since)
                    .then_with(|| a.agent.cmp(b.agent))
            }),
        }
    }
}
