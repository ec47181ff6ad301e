//! Static configuration the shell builds from the TOML file and hands to [`crate::Core::new`].
//!
//! Leader and followers must be built from the same configuration: the core's state
//! only holds what changes at run time, and decisions also read the configuration.

use crate::ids::{AgentId, QueueId, SkillId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Everything the routing core needs to know that does not change while it runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingConfig {
    pub queues: Vec<QueueDef>,
    pub agents: Vec<AgentDef>,
    /// Wrap-up time for queues that do not set their own.
    pub default_wrap_up_ms: u64,
    /// How long the edge may take to report an answer (or a failure) for an offer
    /// before the core treats it as a ring-no-answer.
    pub offer_timeout_ms: u64,
}

/// One queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueDef {
    pub id: QueueId,
    /// Every listed skill is required, each at least at the given proficiency.
    #[serde(default)]
    pub required: Vec<(SkillId, u8)>,
    /// Overrides [`RoutingConfig::default_wrap_up_ms`].
    #[serde(default)]
    pub wrap_up_ms: Option<u64>,
    /// A call waiting longer than this leaves the queue with
    /// [`crate::Event::CallTimedOut`]; the shell decides what the caller hears next.
    #[serde(default)]
    pub max_wait_ms: Option<u64>,
}

/// One agent (operator).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentDef {
    pub id: AgentId,
    pub name: String,
    #[serde(default)]
    pub skills: Vec<(SkillId, u8)>,
}

/// A configuration the core would silently tolerate but that is almost certainly a mistake.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("queue `{0}` is defined more than once")]
    DuplicateQueue(QueueId),
    #[error("agent `{0}` is defined more than once")]
    DuplicateAgent(AgentId),
    #[error("offer_timeout_ms must be greater than zero")]
    ZeroOfferTimeout,
}

impl RoutingConfig {
    /// Checks what [`crate::Core::new`] would otherwise paper over (it keeps the first
    /// of duplicated ids). The shell calls this before applying a configuration.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut seen = BTreeSet::new();
        for q in &self.queues {
            if !seen.insert(&q.id) {
                return Err(ConfigError::DuplicateQueue(q.id.clone()));
            }
        }
        let mut seen = BTreeSet::new();
        for a in &self.agents {
            if !seen.insert(&a.id) {
                return Err(ConfigError::DuplicateAgent(a.id.clone()));
            }
        }
        if self.offer_timeout_ms == 0 {
            return Err(ConfigError::ZeroOfferTimeout);
        }
        Ok(())
    }
}

impl QueueDef {
    /// Whether an agent with `skills` may take calls from this queue.
    pub fn accepts(&self, skills: &[(SkillId, u8)]) -> bool {
        meets(self.required.iter().map(|(s, l)| (s, l)), skills)
    }
}

/// Whether `skills` has every skill of `required` at least at its level.
pub(crate) fn meets<'a>(
    mut required: impl Iterator<Item = (&'a SkillId, &'a u8)>,
    skills: &[(SkillId, u8)],
) -> bool {
    required.all(|(need, min)| {
        skills
            .iter()
            .any(|(have, level)| have == need && level >= min)
    })
}
