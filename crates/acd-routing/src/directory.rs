//! Static lookups derived once from the configuration.

use crate::config::{AgentDef, QueueDef, RoutingConfig};
use crate::ids::{AgentId, QueueId};
use std::collections::BTreeMap;

/// The configuration indexed for routing. Derived from [`RoutingConfig`] only, so it is
/// identical on every process given the same configuration.
#[derive(Clone, Debug)]
pub(crate) struct Directory {
    pub queues: BTreeMap<QueueId, QueueDef>,
    pub agents: BTreeMap<AgentId, AgentDef>,
    /// Per queue, the agents whose skills satisfy it, in id order. Skills are static,
    /// so eligibility is computed once instead of per match.
    pub eligible: BTreeMap<QueueId, Vec<AgentId>>,
    pub default_wrap_up_ms: u64,
    pub offer_timeout_ms: u64,
}

impl Directory {
    /// Builds the index; the first definition of a duplicated id wins
    /// ([`RoutingConfig::validate`] reports duplicates).
    pub fn new(config: RoutingConfig) -> Self {
        let mut queues = BTreeMap::new();
        for q in config.queues {
            queues.entry(q.id.clone()).or_insert(q);
        }
        let mut agents = BTreeMap::new();
        for a in config.agents {
            agents.entry(a.id.clone()).or_insert(a);
        }
        let eligible = queues
            .values()
            .map(|q: &QueueDef| {
                let ids = agents
                    .values()
                    .filter(|a: &&AgentDef| q.accepts(&a.skills))
                    .map(|a| a.id.clone())
                    .collect();
                (q.id.clone(), ids)
            })
            .collect();
        Directory {
            queues,
            agents,
            eligible,
            default_wrap_up_ms: config.default_wrap_up_ms,
            offer_timeout_ms: config.offer_timeout_ms,
        }
    }

    pub fn wrap_up_ms(&self, queue: &QueueId) -> u64 {
        self.queues
            .get(queue)
            .and_then(|q| q.wrap_up_ms)
            .unwrap_or(self.default_wrap_up_ms)
    }
}
