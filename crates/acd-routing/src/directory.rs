//! Static lookups derived once from the configuration.

use crate::config::{AgentDef, QueueDef, RoutingConfig};
use crate::ids::{AgentId, QueueId, SkillId};
use std::collections::BTreeMap;

/// A queue under one of its expressions: step 0 is the queue's own, step `k` the
/// expression of relaxation step `k` (1-based). Calls of a queue sit in the pool of
/// the expression in force for them ([`pool_step`]). Numbered densely, so the
/// matcher's per-pool data is a vector rather than a map keyed by queue name.
pub(crate) type PoolId = usize;

/// An agent's place in [`Directory::agent_ids`]: numbers are in id order, so the
/// matcher's indexes order and compare numbers instead of id strings.
pub(crate) type AgentNo = u32;

/// What the matcher needs of one pool (which agents it admits: `agent_pools`).
#[derive(Clone, Debug)]
pub(crate) struct Pool {
    /// The skills the expression names: the most-skilled strategy sums these levels.
    pub score_skills: Vec<SkillId>,
    /// The queue's, copied here for the matcher's inner loop.
    pub strategy: crate::strategy::Strategy,
    pub aging_per_sec: u32,
}

/// The step whose expression is in force for a call at `relax_step` of `queue`:
/// the last step reached that sets one, else 0 (as [`crate::CallRecord::requirement`]).
pub(crate) fn pool_step(queue: &QueueDef, relax_step: u32) -> u32 {
    queue
        .relax
        .iter()
        .take(relax_step as usize)
        .enumerate()
        .filter(|(_, s)| s.skills.is_some())
        .map(|(i, _)| i as u32 + 1)
        .next_back()
        .unwrap_or(0)
}

/// The configuration indexed for routing. Derived from [`RoutingConfig`] only, so it is
/// identical on every process given the same configuration.
#[derive(Clone, Debug)]
pub(crate) struct Directory {
    pub queues: BTreeMap<QueueId, QueueDef>,
    pub agents: BTreeMap<AgentId, AgentDef>,
    /// Per queue, the agents whose skills satisfy it, in id order. Skills are static,
    /// so eligibility is computed once instead of per match.
    pub eligible: BTreeMap<QueueId, Vec<AgentId>>,
    /// Every queue's expressions (its own and its relaxation steps').
    pub pools: Vec<Pool>,
    /// Every configured agent, in id order ([`AgentNo`] indexes it).
    pub agent_ids: Vec<AgentId>,
    /// Per queue, its pools by step.
    pub queue_pools: BTreeMap<QueueId, Vec<(u32, PoolId)>>,
    /// Per agent, the pools whose expression it satisfies, so an agent becoming
    /// Ready looks only at the calls it could take.
    pub agent_pools: BTreeMap<AgentId, Vec<PoolId>>,
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
        let Pools {
            pools,
            queue_pools,
            agent_pools,
        } = build_pools(&queues, &agents);
        let agent_ids = agents.keys().cloned().collect();
        Directory {
            queues,
            agents,
            agent_ids,
            eligible,
            pools,
            queue_pools,
            agent_pools,
            default_wrap_up_ms: config.default_wrap_up_ms,
            offer_timeout_ms: config.offer_timeout_ms,
        }
    }

    /// The number of a configured agent.
    pub fn agent_no(&self, id: &AgentId) -> Option<AgentNo> {
        let n = self.agent_ids.binary_search(id).ok()?;
        AgentNo::try_from(n).ok()
    }

    /// The pool a call of `queue` at `relax_step` sits in.
    pub fn pool_of(&self, queue: &QueueDef, relax_step: u32) -> Option<PoolId> {
        let step = pool_step(queue, relax_step);
        let pools = self.queue_pools.get(&queue.id)?;
        pools.iter().find(|(s, _)| *s == step).map(|(_, id)| *id)
    }

    pub fn wrap_up_ms(&self, queue: &QueueId) -> u64 {
        self.queues
            .get(queue)
            .and_then(|q| q.wrap_up_ms)
            .unwrap_or(self.default_wrap_up_ms)
    }
}

struct Pools {
    pools: Vec<Pool>,
    queue_pools: BTreeMap<QueueId, Vec<(u32, PoolId)>>,
    agent_pools: BTreeMap<AgentId, Vec<PoolId>>,
}

fn build_pools(
    queues: &BTreeMap<QueueId, QueueDef>,
    agents: &BTreeMap<AgentId, AgentDef>,
) -> Pools {
    let mut out = Pools {
        pools: Vec::new(),
        queue_pools: BTreeMap::new(),
        agent_pools: BTreeMap::new(),
    };
    for q in queues.values() {
        let steps = std::iter::once((0, &q.skills)).chain(
            q.relax
                .iter()
                .enumerate()
                .filter_map(|(i, s)| Some((i as u32 + 1, s.skills.as_ref()?))),
        );
        for (step, expr) in steps {
            let id = out.pools.len();
            for a in agents.values().filter(|a| expr.eval(&a.skills)) {
                out.agent_pools.entry(a.id.clone()).or_default().push(id);
            }
            out.pools.push(Pool {
                score_skills: expr.skills().into_iter().cloned().collect(),
                strategy: q.strategy,
                aging_per_sec: q.aging_per_sec,
            });
            out.queue_pools
                .entry(q.id.clone())
                .or_default()
                .push((step, id));
        }
    }
    out
}
