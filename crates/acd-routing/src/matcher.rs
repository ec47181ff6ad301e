//! Pairs waiting calls with Ready agents.
//!
//! The rule ([`reference`] states it plainly): take the waiting calls in rank order
//! across all queues (effective priority desc — own + queue + relaxation boosts +
//! aging —, then enqueue time, then arrival); give each the best Ready agent that may
//! take it, as ordered by its queue's [`Strategy`] (ring-all: every such agent). A
//! call no free agent may take is skipped, so it does not block calls behind it.
//!
//! [`Pass`] computes the same offers from the indexes. After a pass no waiting call
//! could go to any Ready agent, so the next pass only has to pair what changed since
//! (the index's dirty sets): changed calls with any Ready agent of their pool, and
//! changed agents with the best calls of their pools. Unchanged calls can only go to
//! changed agents, which is what keeps a decision to a few index entries.

use crate::directory::{AgentNo, Directory, PoolId};
use crate::event::AgentState;
use crate::explain::{Explanation, EXPLAIN_CANDIDATES};
use crate::ids::{AgentId, CallId, SkillId, Timestamp};
use crate::index::{admits, effective_priority, rank_at, RoutingIndex, Slot};
use crate::state::{CallRecord, State};
use crate::strategy::{Ctx, Key, Strategy, Walk};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

/// A decision: offer `call` to `agent` (and, ring-all, to `ring_also` too).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Offer {
    pub call: CallId,
    pub agent: AgentId,
    pub ring_also: Vec<AgentId>,
    pub explanation: Explanation,
}

/// One matching pass of the leader: yields offers one at a time; the caller applies
/// each (which updates the state and the index) before asking for the next.
pub(crate) struct Pass {
    now: Timestamp,
    /// Calls to decide, by rank at `now`.
    heap: BTreeSet<Slot>,
    decided: BTreeSet<CallId>,
    dirty_calls: BTreeSet<CallId>,
    dirty_agents: BTreeSet<AgentId>,
    /// Per call in `heap`, the changed agents whose best call it is: when it is
    /// decided they look for their next best.
    best_of: BTreeMap<CallId, Vec<AgentId>>,
    /// Per changed agent, the best call of each of its pools (for the explanation).
    options: BTreeMap<AgentId, Vec<Slot>>,
    /// Agents to look again for their best call.
    again: Vec<AgentId>,
    seeded: bool,
}

/// What a decision needs to read.
pub(crate) struct View<'a> {
    pub dir: &'a Directory,
    pub state: &'a State,
    pub index: &'a RoutingIndex,
}

impl Pass {
    /// Starts a pass at `now`, taking the index's record of what changed.
    pub fn start(index: &mut RoutingIndex, dir: &Directory, state: &State, now: Timestamp) -> Pass {
        index.activate_due(now);
        if !index.dirty_calls.is_empty() {
            index.flush(dir, state); // changed calls walk the pools' ready sets
        }
        Pass {
            now,
            heap: BTreeSet::new(),
            decided: BTreeSet::new(),
            dirty_calls: std::mem::take(&mut index.dirty_calls),
            dirty_agents: std::mem::take(&mut index.dirty_agents),
            best_of: BTreeMap::new(),
            options: BTreeMap::new(),
            again: Vec::new(),
            seeded: false,
        }
    }

    /// Gives the changes not yet looked at back to the index (a pass cut short).
    pub fn abort(self, index: &mut RoutingIndex) {
        let calls = self.dirty_calls.into_iter().filter(|c| index.has_call(c));
        let agents = self.dirty_agents.into_iter().filter(|a| index.has_agent(a));
        let (calls, agents): (Vec<_>, Vec<_>) = (calls.collect(), agents.collect());
        index.dirty_calls.extend(calls);
        index.dirty_agents.extend(agents);
    }

    /// The next offer to make, or `None` when the pass is over.
    pub fn next(&mut self, v: &View<'_>) -> Option<Offer> {
        if !self.seeded {
            self.seeded = true;
            self.seed(v);
        }
        loop {
            for a in std::mem::take(&mut self.again) {
                self.push_best(v, &a);
            }
            let rank = self.heap.pop_first()?;
            let id = rank.3;
            if !self.decided.insert(id.clone()) {
                continue;
            }
            self.again
                .extend(self.best_of.remove(&id).unwrap_or_default());
            if let Some(offer) = self.decide(v, &id) {
                return Some(offer);
            }
        }
    }

    fn seed(&mut self, v: &View<'_>) {
        for id in &self.dirty_calls {
            let Some(c) = v.state.calls.get(id) else {
                continue;
            };
            if let Some(q) = v.dir.queues.get(&c.queue) {
                if v.index.has_call(id) {
                    self.heap.insert(rank_at(id, c, q, self.now));
                }
            }
        }
        self.again = self.dirty_agents.iter().cloned().collect();
    }

    /// Puts the best undecided call `agent` may take into the heap.
    fn push_best(&mut self, v: &View<'_>, agent: &AgentId) {
        let (Some(rt), Some(def)) = (v.state.agents.get(agent), v.dir.agents.get(agent)) else {
            return;
        };
        if rt.state != AgentState::Ready || !v.index.has_agent(agent) {
            return;
        }
        let now = self.now;
        let takes = |s: &&Slot| {
            v.state.calls.get(&s.3).is_some_and(|c| {
                let extras = v.dir.queues.get(&c.queue).and_then(|q| c.requirement(q).1);
                admits(c, extras, agent, def, now)
            })
        };
        // Ranks without the id first (no allocation per pool); ids cloned for the best.
        let mut found: Vec<(Reverse<i128>, Timestamp, u64, &CallId)> = Vec::new();
        let undecided = |s: &&Slot| !self.decided.contains(&s.3);
        for &key in v.dir.agent_pools.get(agent).into_iter().flatten() {
            let (Some(pool), Some(def)) = (v.index.pools.get(key), v.dir.pools.get(key)) else {
                continue;
            };
            let plain = pool.plain.iter().find(undecided);
            let special = pool.special.iter().filter(undecided).find(takes);
            found.extend(
                plain
                    .into_iter()
                    .chain(special)
                    .map(|s| rank_ref(s, def.aging_per_sec, now)),
            );
        }
        // Calls transferred to this agent come from several queues, whose aging
        // differs: rank each (there are few).
        let mine = v.index.for_agent.get(agent).into_iter().flatten();
        for s in mine.filter(undecided).filter(takes) {
            let queue = v
                .state
                .calls
                .get(&s.3)
                .and_then(|c| v.dir.queues.get(&c.queue));
            if let Some(q) = queue {
                found.push(rank_ref(s, q.aging_per_sec, now));
            }
        }
        found.sort_unstable();
        found.truncate(EXPLAIN_CANDIDATES + 1);
        let options: Vec<Slot> = found
            .into_iter()
            .map(|(p, e, a, id)| (p, e, a, id.clone()))
            .collect();
        if let Some(best) = options.first() {
            self.heap.insert(best.clone());
            self.best_of
                .entry(best.3.clone())
                .or_default()
                .push(agent.clone());
        }
        self.options.insert(agent.clone(), options);
    }

    /// Offers call `id` to its best free agents, if any.
    fn decide(&self, v: &View<'_>, id: &CallId) -> Option<Offer> {
        let c = v.state.calls.get(id)?;
        if !v.index.has_call(id) {
            return None;
        }
        let q = v.dir.queues.get(&c.queue)?;
        let pool_key = v.dir.pool_of(q, c.relax_step)?;
        let pool = v.dir.pools.get(pool_key)?;
        let (_, extras, _) = c.requirement(q);
        let ctx = Ctx {
            now: self.now,
            score_skills: &pool.score_skills,
            extras,
            last_offered: v.state.last_offered.get(&c.queue),
            seed: c.arrival,
        };
        let limit = match q.strategy {
            Strategy::RingAll => usize::MAX,
            _ => EXPLAIN_CANDIDATES,
        };
        let free = |a: &AgentId| {
            let def = v.dir.agents.get(a)?;
            let rt = v.state.agents.get(a)?;
            let ready = rt.state == AgentState::Ready && rt.extension.is_some();
            (ready && admits(c, extras, a, def, self.now)).then_some((rt, def))
        };
        let keyed = |a: &AgentId| {
            let (rt, def) = free(a)?;
            Some((q.strategy.key(&ctx, a, rt, def), a.clone()))
        };
        let mut cands: Vec<(Key, AgentId)> = if let Some(target) = &c.for_agent {
            keyed(target).into_iter().collect()
        } else if !self.dirty_calls.contains(id) {
            // Unchanged since the last pass: only changed agents can take it.
            let member = |a: &&AgentId| {
                v.dir
                    .agent_pools
                    .get(*a)
                    .is_some_and(|ps| ps.contains(&pool_key))
            };
            let mut all: Vec<_> = self
                .dirty_agents
                .iter()
                .filter(member)
                .filter_map(keyed)
                .collect();
            all.sort();
            all
        } else {
            self.walk_pool(v, c, extras, &ctx, q.strategy, pool_key, limit)
        };
        if cands.is_empty() {
            return None;
        }
        let ring_all = q.strategy == Strategy::RingAll;
        let ring_also = if ring_all {
            cands.iter().skip(1).map(|(_, a)| a.clone()).collect()
        } else {
            Vec::new()
        };
        cands.truncate(EXPLAIN_CANDIDATES);
        let agent = cands[0].1.clone();
        let explanation = self.explain(v, id, c, q, &ctx, &cands, &agent);
        Some(Offer {
            call: id.clone(),
            agent,
            ring_also,
            explanation,
        })
    }

    /// The best Ready members of `pool` for a changed call, best first (at most
    /// `limit` where the order is the index's). Members are Ready with a phone, so a
    /// plain call needs no look-up per agent, and most keys come from the index.
    #[allow(clippy::too_many_arguments)]
    fn walk_pool(
        &self,
        v: &View<'_>,
        c: &CallRecord,
        extras: Option<&BTreeMap<SkillId, u8>>,
        ctx: &Ctx<'_>,
        strategy: Strategy,
        pool: PoolId,
        limit: usize,
    ) -> Vec<(Key, AgentId)> {
        let Some(ready) = v.index.pools.get(pool).map(|p| &p.ready) else {
            return Vec::new();
        };
        let plain = c.declined.is_empty() && c.not_before.is_none() && extras.is_none();
        let ids = &v.dir.agent_ids;
        let id = |n: &AgentNo| ids.get(*n as usize);
        let ok = |(_, n): &&(Key, AgentNo)| {
            plain
                || id(n).is_some_and(|a| {
                    let def = v.dir.agents.get(a);
                    def.is_some_and(|d| admits(c, extras, a, d, self.now))
                })
        };
        let keyed = |(ik, n): &(Key, AgentNo)| {
            let a = id(n)?;
            let key = strategy.key_from_index(ctx, *ik, a).or_else(|| {
                let (rt, def) = (v.state.agents.get(a)?, v.dir.agents.get(a)?);
                Some(strategy.key(ctx, a, rt, def))
            })?;
            Some((key, a.clone()))
        };
        match strategy.walk(extras.is_some()) {
            Walk::Index => {
                let best = ready.iter().filter(ok).take(limit);
                best.filter_map(|(k, n)| Some((*k, id(n)?.clone())))
                    .collect()
            }
            Walk::Cyclic => {
                // From the start (round robin: after the cursor in id order; random:
                // the draw's point on the hash ring) to the end, then from the top.
                let start = strategy.cycle_start(ctx, ids);
                let after = match &start {
                    Some((k, true)) => ready.range((Bound::Included(k), Bound::Unbounded)),
                    Some((k, false)) => ready.range((Bound::Excluded(k), Bound::Unbounded)),
                    None => ready.range::<(Key, AgentNo), _>(..),
                };
                let upto = start.as_ref().map(|(k, included)| match included {
                    true => ready.range((Bound::Unbounded, Bound::Excluded(k))),
                    false => ready.range((Bound::Unbounded, Bound::Included(k))),
                });
                let order = after.chain(upto.into_iter().flatten()).filter(ok);
                order.filter_map(keyed).take(limit).collect()
            }
            Walk::Scan => {
                let mut all: Vec<_> = ready.iter().filter(ok).filter_map(keyed).collect();
                all.sort_unstable();
                all
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn explain(
        &self,
        v: &View<'_>,
        id: &CallId,
        c: &CallRecord,
        q: &crate::config::QueueDef,
        ctx: &Ctx<'_>,
        cands: &[(Key, AgentId)],
        agent: &AgentId,
    ) -> Explanation {
        let candidates = cands
            .iter()
            .filter_map(|(k, a)| {
                let rt = v.state.agents.get(a)?;
                Some((a.clone(), q.strategy.score_text(ctx, *k, rt)))
            })
            .collect();
        let mine = rank_at(id, c, q, self.now);
        let other_calls = self
            .options
            .get(agent)
            .into_iter()
            .flatten()
            .filter(|s| s.3 != *id)
            .take(EXPLAIN_CANDIDATES)
            .filter_map(|s| {
                let o = v.state.calls.get(&s.3)?;
                let oq = v.dir.queues.get(&o.queue)?;
                Some((s.3.clone(), lost_because(&mine, c, q, s, o, oq, self.now)))
            })
            .collect();
        Explanation {
            strategy: Some(q.strategy),
            relax_step: c.relax_step,
            skills: requirement_text(c, q),
            effective_priority: effective_priority(c, q, self.now),
            other_calls,
            candidates,
            note: note(c),
        }
    }
}

/// A pool slot's rank at `now`, borrowing the id (see [`crate::index::slot_rank`]).
fn rank_ref(
    s: &Slot,
    aging_per_sec: u32,
    now: Timestamp,
) -> (Reverse<i128>, Timestamp, u64, &CallId) {
    let Reverse(milli) = s.0;
    let aged = milli + i128::from(aging_per_sec) * i128::from(now.0);
    (Reverse(aged), s.1, s.2, &s.3)
}

/// Why call `o` (rank `theirs`) lost to the winner (rank `mine`).
fn lost_because(
    mine: &Slot,
    c: &CallRecord,
    q: &crate::config::QueueDef,
    theirs: &Slot,
    o: &CallRecord,
    oq: &crate::config::QueueDef,
    now: Timestamp,
) -> String {
    if theirs.0 != mine.0 {
        let (p, w) = (
            effective_priority(o, oq, now),
            effective_priority(c, q, now),
        );
        if p != w {
            return format!("priority {p} < {w}");
        }
        return "aged less".to_owned();
    }
    if theirs.1 != mine.1 {
        "waited less".to_owned()
    } else {
        "arrived later".to_owned()
    }
}

/// The requirement in force as text: the expression, plus the call's extra skills.
fn requirement_text(c: &CallRecord, q: &crate::config::QueueDef) -> String {
    if c.for_agent.is_some() {
        return String::new();
    }
    let (expr, extras, _) = c.requirement(q);
    let mut text = expr.to_string();
    for (skill, level) in extras.into_iter().flatten() {
        text.push_str(&format!(" + {skill} >= {level}"));
    }
    text
}

fn note(c: &CallRecord) -> String {
    match (&c.for_agent, &c.callback) {
        (Some(a), _) => format!("transferred to agent {a}"),
        (None, Some(cb)) => format!("callback to {}, attempt {}", cb.number, cb.attempts + 1),
        (None, None) => String::new(),
    }
}

/// The offers [`Pass`] must make from `state`, computed the plain way: every
/// waiting call and every agent examined (the property tests' reference).
#[cfg(test)]
pub(crate) fn reference(
    state: &State,
    dir: &Directory,
    now: Timestamp,
) -> Vec<(CallId, AgentId, Vec<AgentId>)> {
    let mut waiting: Vec<(Slot, &CallRecord)> = state
        .calls
        .iter()
        .filter(|(_, c)| c.phase == crate::state::CallPhase::Waiting)
        .filter_map(|(id, c)| Some((rank_at(id, c, dir.queues.get(&c.queue)?, now), c)))
        .collect();
    waiting.sort_by(|a, b| a.0.cmp(&b.0));
    let mut taken: BTreeSet<AgentId> = BTreeSet::new();
    let mut last = state.last_offered.clone();
    let mut out = Vec::new();
    for (rank, c) in waiting {
        let Some(q) = dir.queues.get(&c.queue) else {
            continue;
        };
        let (expr, extras, _) = c.requirement(q);
        let score_skills: Vec<_> = expr.skills().into_iter().cloned().collect();
        let ctx = Ctx {
            now,
            score_skills: &score_skills,
            extras,
            last_offered: last.get(&c.queue),
            seed: c.arrival,
        };
        let mut cands: Vec<(Key, AgentId)> = state
            .agents
            .iter()
            .filter(|(id, rt)| {
                rt.state == AgentState::Ready && rt.extension.is_some() && !taken.contains(*id)
            })
            .filter_map(|(id, rt)| {
                let def = dir.agents.get(id)?;
                let eligible = c.for_agent.is_some() || expr.eval(&def.skills);
                (eligible && admits(c, extras, id, def, now))
                    .then(|| (q.strategy.key(&ctx, id, rt, def), id.clone()))
            })
            .collect();
        cands.sort();
        let Some((_, first)) = cands.first().cloned() else {
            continue;
        };
        let also: Vec<AgentId> = if q.strategy == Strategy::RingAll {
            cands[1..].iter().map(|(_, a)| a.clone()).collect()
        } else {
            Vec::new()
        };
        taken.insert(first.clone());
        taken.extend(also.iter().cloned());
        last.insert(c.queue.clone(), first.clone());
        out.push((rank.3, first, also));
    }
    out
}

/// `(call, agent, ring_also)` of every offer in `recs` (tests).
#[cfg(test)]
pub(crate) fn offers_in(
    recs: &[crate::event::EventRecord],
) -> Vec<(CallId, AgentId, Vec<AgentId>)> {
    recs.iter()
        .filter_map(|r| match &r.event {
            crate::event::Event::CallOffered {
                call,
                agent,
                ring_also,
                ..
            } => Some((
                call.clone(),
                agent.clone(),
                ring_also.iter().map(|(a, _)| a.clone()).collect(),
            )),
            _ => None,
        })
        .collect()
}
