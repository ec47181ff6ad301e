//! The matcher's indexes, so a routing decision looks at a few entries rather than
//! at every agent and every waiting call.
//!
//! Derived state: built from [`State`] (on start and from a snapshot), then kept in
//! step by [`crate::Core::apply`], which re-reads the calls and agents each record
//! touches ([`touched`]). Never serialised nor digested, and the same on a leader and
//! its followers since both apply the same records.
//!
//! Per pool (a queue under one expression, see [`PoolKey`]):
//! - its Ready agents, ordered by the queue strategy's key where that key depends
//!   on the agent alone ([`Strategy::index_key`]), else by id;
//! - its waiting calls in rank order, split into *plain* calls (any Ready member
//!   may take them, so an agent needs only the first) and *special* ones (extra
//!   skills, agents who declined, a not-before time: checked per agent).
//!
//! A call's rank at `now` is (effective priority desc, enqueue time, arrival). With
//! aging the effective priority grows with `now`, but at the same rate for every
//! call of a queue, so the order within a pool never changes: a pool stores the
//! priority minus the aging gained up to the epoch, and the rank adds `aging × now`.

use crate::config::{meets, AgentDef, QueueDef};
use crate::directory::{AgentNo, Directory, PoolId};
use crate::event::{AgentState, Event};
use crate::ids::{AgentId, CallId, Extension, SkillId, Timestamp};
use crate::state::{CallPhase, CallRecord, State};
use crate::strategy::Key;
use crate::timer::{Timer, TimerIndex};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

/// A waiting call's sort key: priority in thousandths (desc), enqueue time, arrival,
/// id. In a pool the priority is stored without the `aging × now` term ([`Slot`]);
/// at a given `now` it is the call's rank ([`rank_at`]).
pub(crate) type Slot = (Reverse<i128>, Timestamp, u64, CallId);

/// A call's own priority plus its queue's and its relaxation boosts.
pub(crate) fn base_priority(c: &CallRecord, q: &QueueDef) -> i64 {
    let (_, _, boost) = c.requirement(q);
    i64::from(c.priority) + i64::from(q.priority) + i64::from(boost)
}

/// The call's key in its pool: independent of time (see the module docs).
fn slot(id: &CallId, c: &CallRecord, q: &QueueDef) -> Slot {
    let milli = i128::from(base_priority(c, q)) * 1000
        - i128::from(q.aging_per_sec) * i128::from(c.enqueued_at.0);
    (Reverse(milli), c.enqueued_at, c.arrival, id.clone())
}

/// A pool slot's rank at `now`: aging accrues per millisecond in comparisons, so
/// the order within a queue is stable and can be kept in an index.
pub(crate) fn slot_rank(s: &Slot, aging_per_sec: u32, now: Timestamp) -> Slot {
    let Reverse(milli) = s.0;
    (
        Reverse(milli + i128::from(aging_per_sec) * i128::from(now.0)),
        s.1,
        s.2,
        s.3.clone(),
    )
}

/// A waiting call's rank at `now` across all queues (lower first).
pub(crate) fn rank_at(id: &CallId, c: &CallRecord, q: &QueueDef, now: Timestamp) -> Slot {
    slot_rank(&slot(id, c, q), q.aging_per_sec, now)
}

/// The effective priority shown to people: base plus aging per whole second waited.
pub(crate) fn effective_priority(c: &CallRecord, q: &QueueDef, now: Timestamp) -> i64 {
    let secs = now.ms_since(c.enqueued_at) / 1000;
    let aging = i64::from(q.aging_per_sec).saturating_mul(i64::try_from(secs).unwrap_or(i64::MAX));
    base_priority(c, q).saturating_add(aging)
}

/// Whether `agent` may be offered the call at `now`, apart from the pool's
/// expression (which the caller checks or knows from pool membership). A call
/// transferred to an agent goes to that agent whatever their skills: a person chose
/// them.
pub(crate) fn admits(
    c: &CallRecord,
    extras: Option<&BTreeMap<SkillId, u8>>,
    agent: &AgentId,
    def: &AgentDef,
    now: Timestamp,
) -> bool {
    let skills_ok = match &c.for_agent {
        Some(target) => target == agent,
        None => extras.is_none_or(|x| meets(x.iter(), &def.skills)),
    };
    skills_ok && !c.declined.contains(agent) && c.not_before.is_none_or(|t| t <= now)
}

/// Whether the call needs a per-agent check beyond pool membership.
fn is_special(c: &CallRecord, extras: Option<&BTreeMap<SkillId, u8>>) -> bool {
    extras.is_some() || !c.declined.is_empty() || c.not_before.is_some()
}

/// One pool's Ready agents and waiting calls.
#[derive(Clone, Debug, Default)]
pub(crate) struct PoolIndex {
    pub ready: BTreeSet<(Key, AgentNo)>,
    /// Calls any Ready member may take.
    pub plain: BTreeSet<Slot>,
    /// Calls to check per agent ([`admits`]).
    pub special: BTreeSet<Slot>,
}

#[derive(Clone, Debug)]
enum Place {
    Plain(PoolId),
    Special(PoolId),
    ForAgent(AgentId),
}

#[derive(Clone, Debug)]
struct Placed {
    place: Place,
    slot: Slot,
    not_before: Option<Timestamp>,
}

/// What a record changed, for [`RoutingIndex::sync`]. Borrows the ids from the
/// event, so the common record costs no allocation.
#[derive(Clone, Debug)]
pub(crate) enum Touched<'a> {
    /// Everything (a configuration change).
    All,
    Some {
        call: Option<&'a CallId>,
        agent: Option<&'a AgentId>,
        /// A ring-all offer's other agents.
        ring: &'a [(AgentId, Extension)],
        /// Agents tied to the call before the record that the event does not name
        /// (the others rung with a ring-all offer).
        linked: Vec<AgentId>,
        /// A phone whose registration changed (its expiry timer).
        binding: Option<&'a Extension>,
    },
}

/// The calls and agents `event` changes, read before it is applied (so the agents
/// reserved for a call are known even when the event releases them).
pub(crate) fn touched<'a>(state: &State, event: &'a Event) -> Touched<'a> {
    let (call, agent, ring): (Option<&CallId>, Option<&AgentId>, &[(AgentId, Extension)]) =
        match event {
            Event::AgentLoggedIn { agent, .. }
            | Event::AgentStateChanged { agent, .. }
            | Event::AgentLoggedOut { agent } => (None, Some(agent), &[]),
            Event::CallQueued { call, .. }
            | Event::CallRelaxed { call, .. }
            | Event::CallTimedOut { call, .. } => (Some(call), None, &[]),
            Event::CallAbandoned { call, agent, .. } => (Some(call), agent.as_ref(), &[]),
            Event::CallOffered {
                call,
                agent,
                ring_also,
                ..
            } => (Some(call), Some(agent), ring_also),
            Event::CallConnected { call, agent }
            | Event::CallRequeued { call, agent, .. }
            | Event::CallEnded { call, agent, .. }
            | Event::OfferRejected { call, agent }
            | Event::CallbackAttemptFailed { call, agent, .. }
            | Event::CallTransferred {
                call,
                from_agent: agent,
                ..
            } => (Some(call), Some(agent), &[]),
            Event::CallbackRetryDue { call } => (Some(call), None, &[]),
            Event::CallNoted { .. } => (None, None, &[]),
            Event::CallOverflowed {
                call,
                action:
                    crate::config::OverflowAction::Queue(_)
                    | crate::config::OverflowAction::Uri(_)
                    | crate::config::OverflowAction::Message(_)
                    | crate::config::OverflowAction::Flow(_),
                ..
            } => (Some(call), None, &[]),
            // These create a call under a new id (`<call>:cb`); rare, so rebuild.
            Event::ConfigChanged { .. }
            | Event::CallbackRequested { .. }
            | Event::CallOverflowed {
                action: crate::config::OverflowAction::Callback,
                ..
            } => return Touched::All,
            Event::BindingChanged { extension, .. } => {
                return Touched::Some {
                    call: None,
                    agent: None,
                    ring: &[],
                    linked: Vec::new(),
                    binding: Some(extension),
                }
            }
        };
    let mut linked = Vec::new();
    let phase = call.and_then(|id| state.calls.get(id)).map(|c| &c.phase);
    let mut link = |a: &AgentId| {
        if agent != Some(a) {
            linked.push(a.clone());
        }
    };
    match phase {
        Some(CallPhase::Offered {
            agent, ring_also, ..
        }) => {
            link(agent);
            ring_also.iter().for_each(link);
        }
        Some(CallPhase::Connected { agent, .. }) => link(agent),
        Some(CallPhase::Waiting) | None => {}
    }
    Touched::Some {
        call,
        agent,
        ring,
        linked,
        binding: None,
    }
}

/// The indexes (see the module docs), plus what changed since the last matching
/// pass: the matcher only pairs changed calls and agents, as every other pair was
/// already found not to match.
#[derive(Clone, Debug, Default)]
pub(crate) struct RoutingIndex {
    /// By [`PoolId`].
    pub pools: Vec<PoolIndex>,
    /// Calls transferred to one agent, by that agent.
    pub for_agent: BTreeMap<AgentId, BTreeSet<Slot>>,
    calls: BTreeMap<CallId, Placed>,
    /// Per Ready agent, the pools it is listed in and under which key.
    agents: BTreeMap<AgentId, Vec<(PoolId, Key)>>,
    /// Calls not to offer before a time, by that time: they become offerable by
    /// time alone, so a matching pass looks at those whose time has come.
    not_before: BTreeSet<(Timestamp, CallId)>,
    /// Waiting calls changed since the last matching pass.
    pub dirty_calls: BTreeSet<CallId>,
    /// Ready agents changed since the last matching pass.
    pub dirty_agents: BTreeSet<AgentId>,
    /// Ready agents listed in `agents` but not yet in their pools' ready sets
    /// ([`RoutingIndex::flush`]).
    pending: BTreeSet<AgentId>,
    /// Set when built (a new configuration may have moved queues' steps): the next
    /// [`RoutingIndex::out_of_step`] scans every call once.
    recheck_steps: bool,
    /// The pending timers, for the core's next deadline and due timers.
    pub timers: TimerIndex,
}

impl RoutingIndex {
    /// The indexes of `state`, with every call and agent marked changed.
    pub fn build(dir: &Directory, state: &State) -> Self {
        let mut index = RoutingIndex {
            pools: vec![PoolIndex::default(); dir.pools.len()],
            timers: TimerIndex::build(dir, state),
            recheck_steps: true,
            ..RoutingIndex::default()
        };
        for id in state.calls.keys() {
            index.sync_call(dir, state, id);
        }
        for id in state.agents.keys() {
            index.sync_agent(dir, state, id);
        }
        index
    }

    /// Brings the entries of what a record touched up to date with `state`.
    pub fn sync(&mut self, dir: &Directory, state: &State, touched: &Touched<'_>) {
        match touched {
            Touched::All => *self = RoutingIndex::build(dir, state),
            Touched::Some {
                call,
                agent,
                ring,
                linked,
                ..
            } => {
                if let Some(id) = call {
                    self.sync_call(dir, state, id);
                }
                let rung = ring.iter().map(|(a, _)| a);
                for id in agent.iter().copied().chain(rung).chain(linked) {
                    self.sync_agent(dir, state, id);
                }
            }
        }
    }

    /// Marks the calls whose not-before time has come as changed.
    pub fn activate_due(&mut self, now: Timestamp) {
        while let Some((at, id)) = self.not_before.first().cloned() {
            if at > now {
                break;
            }
            self.not_before.pop_first();
            self.dirty_calls.insert(id);
        }
    }

    /// Whether `id` is listed as a waiting call.
    pub fn has_call(&self, id: &CallId) -> bool {
        self.calls.contains_key(id)
    }

    /// Whether `id` is listed as a Ready agent.
    pub fn has_agent(&self, id: &AgentId) -> bool {
        self.agents.contains_key(id)
    }

    fn sync_call(&mut self, dir: &Directory, state: &State, id: &CallId) {
        let waiting = state
            .calls
            .get(id)
            .is_some_and(|c| c.phase == CallPhase::Waiting);
        if !waiting && !self.calls.contains_key(id) {
            return; // not listed, nor to be (changed ⊆ listed)
        }
        if let Some(old) = self.calls.remove(id) {
            let set = match &old.place {
                Place::Plain(k) => self.pools.get_mut(*k).map(|p| &mut p.plain),
                Place::Special(k) => self.pools.get_mut(*k).map(|p| &mut p.special),
                Place::ForAgent(a) => self.for_agent.get_mut(a),
            };
            if let Some(set) = set {
                set.remove(&old.slot);
            }
            if let Place::ForAgent(a) = &old.place {
                if self.for_agent.get(a).is_some_and(BTreeSet::is_empty) {
                    self.for_agent.remove(a);
                }
            }
            if let Some(at) = old.not_before {
                self.not_before.remove(&(at, id.clone()));
            }
        }
        self.dirty_calls.remove(id);
        let Some(c) = state.calls.get(id) else {
            return;
        };
        let Some(q) = dir.queues.get(&c.queue) else {
            return; // its queue is gone: nobody can be offered it
        };
        if c.phase != CallPhase::Waiting {
            return;
        }
        let s = slot(id, c, q);
        let (_, extras, _) = c.requirement(q);
        let place = match &c.for_agent {
            Some(a) => {
                self.for_agent
                    .entry(a.clone())
                    .or_default()
                    .insert(s.clone());
                Place::ForAgent(a.clone())
            }
            None => {
                let Some(key) = dir.pool_of(q, c.relax_step) else {
                    return;
                };
                let Some(pool) = self.pools.get_mut(key) else {
                    return;
                };
                if is_special(c, extras) {
                    pool.special.insert(s.clone());
                    Place::Special(key)
                } else {
                    pool.plain.insert(s.clone());
                    Place::Plain(key)
                }
            }
        };
        if let Some(at) = c.not_before {
            self.not_before.insert((at, id.clone()));
        }
        self.calls.insert(
            id.clone(),
            Placed {
                place,
                slot: s,
                not_before: c.not_before,
            },
        );
        self.dirty_calls.insert(id.clone());
    }

    fn sync_agent(&mut self, dir: &Directory, state: &State, id: &AgentId) {
        let ready = state
            .agents
            .get(id)
            .is_some_and(|a| a.state == AgentState::Ready && a.extension.is_some());
        if !ready && !self.agents.contains_key(id) {
            return; // not listed, nor to be (changed ⊆ listed)
        }
        let no = dir.agent_no(id);
        for (key, k) in self.agents.remove(id).unwrap_or_default() {
            if let (Some(p), Some(no)) = (self.pools.get_mut(key), no) {
                p.ready.remove(&(k, no));
            }
        }
        self.dirty_agents.remove(id);
        self.pending.remove(id);
        if ready && no.is_some() && dir.agents.contains_key(id) {
            // Into the pools at the next `flush`: most agents becoming Ready are
            // matched in the same pass, and only a changed call's walk reads them.
            self.agents.insert(id.clone(), Vec::new());
            self.pending.insert(id.clone());
            self.dirty_agents.insert(id.clone());
        }
    }

    /// Every waiting call whose step in force is not the one its wait has reached at
    /// `now`, in id order, as [`crate::relax::out_of_step`] finds by scanning every
    /// call. A call's step only falls behind at its [`Timer::Relax`] deadline, or
    /// when a new configuration changed the steps (the index is rebuilt then, and
    /// scans once); a move into another queue restarts at step 0, whose deadline
    /// the timer has.
    pub fn out_of_step(&mut self, dir: &Directory, state: &State, now: Timestamp) -> Vec<CallId> {
        if std::mem::take(&mut self.recheck_steps) {
            return crate::relax::out_of_step(dir, state, now);
        }
        let relax = self.timers.due(now).filter_map(|t| match t {
            Timer::Relax(id) => Some(id),
            _ => None,
        });
        let mut out: Vec<CallId> = relax
            .filter(|id| {
                state.calls.get(*id).is_some_and(|c| {
                    c.phase == CallPhase::Waiting
                        && dir.queues.get(&c.queue).is_some_and(|q| {
                            crate::relax::reached(q, now.ms_since(c.enqueued_at)) != c.relax_step
                        })
                })
            })
            .cloned()
            .collect();
        out.sort();
        out
    }

    /// Puts the Ready agents not yet in their pools' ready sets there. A matching
    /// pass calls it before walking any pool and when it ends.
    pub fn flush(&mut self, dir: &Directory, state: &State) {
        for id in std::mem::take(&mut self.pending) {
            self.list(dir, state, &id);
        }
    }

    fn list(&mut self, dir: &Directory, state: &State, id: &AgentId) {
        let (Some(rt), Some(def), Some(no)) =
            (state.agents.get(id), dir.agents.get(id), dir.agent_no(id))
        else {
            return;
        };
        let mut listed = Vec::new();
        for &key in dir.agent_pools.get(id).into_iter().flatten() {
            let (Some(pool), Some(p)) = (dir.pools.get(key), self.pools.get_mut(key)) else {
                continue;
            };
            let k = pool.strategy.index_key(&pool.score_skills, id, rt, def);
            p.ready.insert((k, no));
            listed.push((key, k));
        }
        self.agents.insert(id.clone(), listed);
    }
}
