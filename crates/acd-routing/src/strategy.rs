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

/// The agent-selection strategy of a queue. Every strategy breaks ties by agent id,
/// so the choice never depends on map iteration order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// The agent Ready for the longest time first.
    #[default]
    LongestIdle,
    /// Highest proficiency in the skills the call's expression names first.
    MostSkilled,
    /// Lowest share of logged-in time spent on calls first.
    LeastOccupied,
    /// Fewest calls answered since login first.
    FewestCalls,
    /// The agent after the one offered last in this queue (by agent id, cyclic).
    RoundRobin,
    /// A pseudo-random agent, drawn from the log position so replay draws the same.
    Random,
    /// Every eligible Ready agent rings at once; the first to answer takes the call.
    RingAll,
}

impl Strategy {
    /// Sorts `candidates` best first.
    #[allow(clippy::match_single_binding)] // the other strategies come with the engine
    pub fn order(&self, candidates: &mut [Candidate<'_>]) {
        match self {
            _ => candidates.sort_by(|a, b| {
                a.idle_since
                    .cmp(&b.idle_since)
                    .then_with(|| a.agent.cmp(b.agent))
            }),
        }
    }
}
