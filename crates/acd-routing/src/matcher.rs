//! Pairs waiting calls with Ready agents: a pure function of the state.
//!
//! Calls are taken in rank order across all queues (priority desc, then enqueue time,
//! then arrival); each goes to the best not-yet-taken candidate of its queue as ordered
//! by the [`Strategy`]. A call with no candidate is skipped, so a call no agent can take
//! does not block calls behind it in other queues.

use crate::directory::Directory;
use crate::event::AgentState;
use crate::ids::{AgentId, CallId, QueueId, SkillId};
use crate::state::{CallPhase, State};
use crate::strategy::{Candidate, Strategy};
use std::collections::{BTreeMap, BTreeSet};

/// A decision: offer `call` to `agent`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Match {
    pub call: CallId,
    pub agent: AgentId,
}

/// Whether `agent` has every skill in `needed` at least at its level.
fn has_skills(dir: &Directory, agent: &AgentId, needed: &BTreeMap<SkillId, u8>) -> bool {
    dir.agents
        .get(agent)
        .is_some_and(|def| crate::config::meets(needed.iter(), &def.skills))
}

/// All offers to make now, in the order to make them.
pub(crate) fn plan(state: &State, dir: &Directory, strategy: Strategy) -> Vec<Match> {
    let ready: usize = state
        .agents
        .values()
        .filter(|a| a.state == AgentState::Ready)
        .count();
    if ready == 0 {
        return Vec::new();
    }
    let mut waiting: Vec<_> = state
        .calls
        .iter()
        .filter(|(_, c)| c.phase == CallPhase::Waiting)
        .collect();
    if waiting.is_empty() {
        return Vec::new();
    }
    waiting.sort_by(|(ia, a), (ib, b)| a.rank().cmp(&b.rank()).then_with(|| ia.cmp(ib)));

    // Per queue: candidates best first, and a cursor past those already examined.
    let mut per_queue: BTreeMap<&QueueId, (Vec<Candidate<'_>>, usize)> = BTreeMap::new();
    let mut taken: BTreeSet<&AgentId> = BTreeSet::new();
    let mut out = Vec::new();
    for (call_id, call) in waiting {
        if taken.len() == ready {
            break;
        }
        let (cands, cursor) = per_queue.entry(&call.queue).or_insert_with(|| {
            let mut c: Vec<Candidate<'_>> = dir
                .eligible
                .get(&call.queue)
                .into_iter()
                .flatten()
                .filter_map(|id| {
                    let (id, a) = state.agents.get_key_value(id)?;
                    (a.state == AgentState::Ready).then(|| Candidate {
                        agent: id,
                        idle_since: a.idle_since.unwrap_or_default(),
                    })
                })
                .collect();
            strategy.order(&mut c);
            (c, 0)
        });
        while *cursor < cands.len() && taken.contains(cands[*cursor].agent) {
            *cursor += 1;
        }
        let pick = if call.skills.is_empty() {
            cands.get(*cursor)
        } else {
            // The best free candidate with the call's extra skills; the cursor
            // stays, as those passed over are still free for the next calls.
            cands[*cursor..]
                .iter()
                .find(|c| !taken.contains(c.agent) && has_skills(dir, c.agent, &call.skills))
        };
        if let Some(c) = pick {
            taken.insert(c.agent);
            out.push(Match {
                call: call_id.clone(),
                agent: c.agent.clone(),
            });
            if call.skills.is_empty() {
                *cursor += 1;
            }
        }
    }
    out
}
