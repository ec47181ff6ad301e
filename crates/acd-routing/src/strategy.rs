//! How to choose among several Ready agents eligible for the same call.
//!
//! A strategy gives each candidate a sort key (lower first, then agent id, so the
//! choice never depends on map order). Keys that depend on neither the call nor the
//! time (longest idle, fewest calls, most skilled for a call without extra skills)
//! are what the matcher's ready-agent index is ordered by; the others are computed
//! per decision over the queue's Ready agents.

use crate::config::AgentDef;
use crate::digest::Fnv1a;
use crate::directory::AgentNo;
use crate::ids::{AgentId, SkillId, Timestamp};
use crate::state::AgentRuntime;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The agent-selection strategy of a queue. Every strategy breaks ties by agent id,
/// so the choice never depends on map iteration order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// The agent Ready for the longest time first.
    #[default]
    LongestIdle,
    /// Highest sum of levels in the skills the call's requirement names (the
    /// expression's and the call's extra skills) first; ties: longest idle.
    MostSkilled,
    /// Lowest share of logged-in time spent reserved, on calls or in wrap-up first;
    /// ties: longest idle.
    LeastOccupied,
    /// Fewest calls answered since login first; ties: longest idle.
    FewestCalls,
    /// The agent after the one offered last in this queue (by agent id, cyclic).
    RoundRobin,
    /// A pseudo-random agent, so a replay draws the same: the call's arrival number
    /// hashed to a point on a ring of agent-id hashes, and the first agent at or after
    /// it (an O(log n) pick from the index rather than a hash per agent).
    Random,
    /// Every eligible Ready agent rings at once; the first to answer takes the call.
    ///
    /// One `CallOffered` names the first agent in id order and lists the others in
    /// `ring_also`; applying it reserves them all. `AgentAnswered { agent }` says who
    /// answered: that agent is connected and the others return to Ready keeping their
    /// idle time. An abandon releases all of them the same way; an offer that fails
    /// or expires makes the named agent ring-no-answer and releases the others, so an
    /// edge that rings only the named agent (ignoring `ring_also`) still ends
    /// correctly: its answer releases the rest, its silence hands the call on.
    RingAll,
}

/// A candidate's sort key under a strategy: lower first, then agent id.
pub(crate) type Key = (i128, u64);

/// What a strategy knows about the call and the moment.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ctx<'a> {
    pub now: Timestamp,
    /// The skills the call's expression names.
    pub score_skills: &'a [SkillId],
    /// The call's extra skills, if its requirement has them.
    pub extras: Option<&'a BTreeMap<SkillId, u8>>,
    /// The queue's round-robin cursor.
    pub last_offered: Option<&'a AgentId>,
    /// The call's arrival number (the random strategy's seed).
    pub seed: u64,
}

/// How the matcher finds a strategy's best candidates among a pool's Ready agents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Walk {
    /// In the index's order: the key is [`Strategy::index_key`].
    Index,
    /// In the index's order from [`Strategy::cycle_start`], wrapping around.
    Cyclic,
    /// The key depends on the call or on the time: compute it for every candidate.
    Scan,
}

/// Parts per billion, the resolution of the occupancy key.
const PPB: u128 = 1_000_000_000;

impl Strategy {
    /// The candidate's sort key for a call described by `ctx`.
    pub(crate) fn key(
        &self,
        ctx: &Ctx<'_>,
        id: &AgentId,
        rt: &AgentRuntime,
        def: &AgentDef,
    ) -> Key {
        let idle = rt.idle_since.unwrap_or_default().0;
        match self {
            Strategy::LongestIdle => (i128::from(idle), 0),
            Strategy::MostSkilled => (-i128::from(proficiency(ctx, def)), idle),
            Strategy::LeastOccupied => {
                let occupancy = occupancy_ppb(ctx.now, rt.busy_ms, rt.logged_in_at);
                (occupancy as i128, idle)
            }
            Strategy::FewestCalls => (i128::from(rt.calls), idle),
            Strategy::RoundRobin => (i128::from(ctx.last_offered.is_some_and(|l| id <= l)), 0),
            Strategy::Random => {
                let distance = hash_id(id).wrapping_sub(draw_point(ctx.seed));
                (i128::from(distance), 0)
            }
            Strategy::RingAll => (0, 0),
        }
    }

    /// The key the ready-agent index of a pool orders agents by: the strategy's key
    /// where it depends only on the agent (and the pool's skills); for least occupied
    /// the agent's session figures (so the key is computed without a look-up);
    /// else nothing.
    pub(crate) fn index_key(
        &self,
        score_skills: &[SkillId],
        id: &AgentId,
        rt: &AgentRuntime,
        def: &AgentDef,
    ) -> Key {
        match self {
            Strategy::LongestIdle | Strategy::MostSkilled | Strategy::FewestCalls => {
                let ctx = Ctx {
                    now: Timestamp(0),
                    score_skills,
                    extras: None,
                    last_offered: None,
                    seed: 0,
                };
                self.key(&ctx, id, rt, def)
            }
            Strategy::LeastOccupied => {
                // busy_ms in the high half; login time + 1 (0: unknown) in the low.
                let login = rt.logged_in_at.map_or(0, |t| u128::from(t.0) + 1);
                let packed = (u128::from(rt.busy_ms) << 64) | (login & u128::from(u64::MAX));
                (packed as i128, rt.idle_since.unwrap_or_default().0)
            }
            Strategy::Random => (i128::from(hash_id(id)), 0),
            Strategy::RoundRobin | Strategy::RingAll => (0, 0),
        }
    }

    /// Where a cyclic walk of the index starts ([`Walk::Cyclic`]): the entry and
    /// whether it is included — after the round-robin cursor, or at the random
    /// draw's point; `None`: at the top. `ids`: agent ids by number.
    pub(crate) fn cycle_start(
        &self,
        ctx: &Ctx<'_>,
        ids: &[AgentId],
    ) -> Option<((Key, AgentNo), bool)> {
        match self {
            Strategy::Random => Some((((i128::from(draw_point(ctx.seed)), 0), 0), true)),
            _ => {
                // An agent no longer configured: start where it would sit.
                let (n, included) = match ids.binary_search(ctx.last_offered?) {
                    Ok(n) => (n, false),
                    Err(n) => (n, true),
                };
                Some((((0, 0), AgentNo::try_from(n).ok()?), included))
            }
        }
    }

    /// The sort key from the index's key `ik` alone, where it suffices (all but
    /// most skilled for a call with extra skills).
    pub(crate) fn key_from_index(&self, ctx: &Ctx<'_>, ik: Key, id: &AgentId) -> Option<Key> {
        match self {
            Strategy::LongestIdle | Strategy::FewestCalls | Strategy::RingAll => Some(ik),
            Strategy::MostSkilled => ctx.extras.is_none().then_some(ik),
            Strategy::LeastOccupied => {
                let packed = ik.0 as u128;
                let busy = (packed >> 64) as u64;
                let login = (packed as u64).checked_sub(1).map(Timestamp);
                Some((occupancy_ppb(ctx.now, busy, login) as i128, ik.1))
            }
            Strategy::RoundRobin => {
                Some((i128::from(ctx.last_offered.is_some_and(|l| id <= l)), 0))
            }
            Strategy::Random => {
                let distance = (ik.0 as u64).wrapping_sub(draw_point(ctx.seed));
                Some((i128::from(distance), 0))
            }
        }
    }

    /// How to walk a pool's Ready agents for a call (`extras`: it has extra skills).
    pub(crate) fn walk(&self, extras: bool) -> Walk {
        match self {
            Strategy::LongestIdle | Strategy::FewestCalls | Strategy::RingAll => Walk::Index,
            Strategy::MostSkilled if !extras => Walk::Index,
            Strategy::RoundRobin | Strategy::Random => Walk::Cyclic,
            Strategy::MostSkilled | Strategy::LeastOccupied => Walk::Scan,
        }
    }

    /// The score behind `key` as an operator reads it (the explanation's text).
    pub(crate) fn score_text(&self, ctx: &Ctx<'_>, key: Key, rt: &AgentRuntime) -> String {
        match self {
            Strategy::LongestIdle => {
                let idle = rt.idle_since.unwrap_or_default();
                format!("idle {} s", ctx.now.ms_since(idle) / 1000)
            }
            Strategy::MostSkilled => format!("proficiency {}", -key.0),
            Strategy::LeastOccupied => format!("occupancy {}%", key.0 * 100 / PPB as i128),
            Strategy::FewestCalls => format!("calls {}", key.0),
            Strategy::RoundRobin => match ctx.last_offered {
                Some(last) => format!("rr after {last}"),
                None => "rr first".to_owned(),
            },
            Strategy::Random => format!("random {:#018x}", key.0),
            Strategy::RingAll => "ring all".to_owned(),
        }
    }
}

/// Sum of the agent's levels in the skills the call names (each counted once).
fn proficiency(ctx: &Ctx<'_>, def: &AgentDef) -> u64 {
    let level = |s: &SkillId| {
        def.skills
            .iter()
            .find(|(have, _)| have == s)
            .map_or(0, |(_, l)| u64::from(*l))
    };
    let named: u64 = ctx.score_skills.iter().map(level).sum();
    let extra: u64 = ctx
        .extras
        .into_iter()
        .flatten()
        .filter(|(s, _)| ctx.score_skills.binary_search(s).is_err())
        .map(|(s, _)| level(s))
        .sum();
    named + extra
}

/// Busy share of the session so far, in parts per billion (0 before any time passed).
fn occupancy_ppb(now: Timestamp, busy_ms: u64, logged_in_at: Option<Timestamp>) -> u128 {
    let span = now.ms_since(logged_in_at.unwrap_or(now));
    if span == 0 {
        return 0;
    }
    (u128::from(busy_ms) * PPB / u128::from(span)).min(PPB)
}

/// An agent's place on the random strategy's ring: FNV-1a of the id, stable across
/// builds and platforms.
fn hash_id(id: &AgentId) -> u64 {
    let mut h = Fnv1a::new();
    h.update(id.as_str().as_bytes());
    h.finish()
}

/// A call's point on the random strategy's ring.
fn draw_point(seed: u64) -> u64 {
    let mut h = Fnv1a::new();
    h.update(&seed.to_le_bytes());
    h.finish()
}
