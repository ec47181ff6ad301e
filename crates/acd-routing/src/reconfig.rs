//! Configuration changes at run time ([`crate::Command::ApplyConfig`]) and the little
//! bookkeeping that needs the configuration when a record is applied.
//!
//! A change is one [`Event::ConfigChanged`] carrying the whole new configuration and
//! its version (1, 2, … per core; the file's configuration is version 0). Applying it
//! adds the new agents (logged out) and queues, drops removed ones, and the core
//! rebuilds its directory from it, so a follower and a replay switch at exactly the
//! same record. Snapshots carry the configuration once it has changed, so a standby
//! joining later routes under the same one.
//!
//! Refused with [`CommandError::Invalid`] (nothing changes): a configuration that
//! fails [`crate::RoutingConfig::validate`]; relaxation steps not sorted by
//! `after_ms`; an overflow action (queue's or a step's) or `orphans_to` naming a
//! queue the new configuration lacks; removing an agent who is logged in; removing a
//! queue with calls being offered or connected there (they finish first: their
//! counters and wrap-up belong to the queue); removing a queue with waiting calls and
//! no `orphans_to`. Waiting calls of removed queues move to `orphans_to` first
//! (`CallOverflowed`, reason `QueueRemoved`, whatever that queue's admission rules),
//! then the change applies; then every waiting call is brought to the relaxation
//! step its wait has reached under the new steps (up or down). New `hours`,
//! `max_size` and `no_agents` rules apply to calls enqueued from then on.

use crate::config::{OverflowAction, OverflowReason, RoutingConfig};
use crate::directory::Directory;
use crate::error::CommandError;
use crate::event::Event;
use crate::ids::{AgentId, CallId, QueueId, Timestamp};
use crate::state::{AgentRuntime, CallPhase, State};
use std::collections::BTreeSet;

/// The events of an `ApplyConfig` command; `version` is the core's current one.
pub(crate) fn decide(
    state: &State,
    version: u64,
    config: RoutingConfig,
    orphans_to: Option<QueueId>,
    now: Timestamp,
) -> Result<Vec<Event>, CommandError> {
    check(&config, state)?;
    let queues: BTreeSet<&QueueId> = config.queues.iter().map(|q| &q.id).collect();
    if let Some(o) = &orphans_to {
        if !queues.contains(o) {
            return Err(invalid(format!(
                "orphans_to `{o}` is not a queue of the new configuration"
            )));
        }
    }
    let mut events = Vec::new();
    for (id, c) in state
        .calls
        .iter()
        .filter(|(_, c)| !queues.contains(&c.queue))
    {
        if c.phase != CallPhase::Waiting {
            return Err(invalid(format!(
                "queue `{}` would be removed while call `{id}` is {} there; let it finish first",
                c.queue,
                c.phase.name()
            )));
        }
        let Some(to) = &orphans_to else {
            return Err(invalid(format!(
                "queue `{}` would be removed while call `{id}` waits there, and no orphans_to queue is given",
                c.queue
            )));
        };
        events.push(Event::CallOverflowed {
            call: id.clone(),
            from: c.queue.clone(),
            reason: OverflowReason::QueueRemoved,
            action: OverflowAction::Queue(to.clone()),
            waited_ms: now.ms_since(c.enqueued_at),
        });
    }
    events.push(Event::ConfigChanged {
        version: version.saturating_add(1),
        config,
    });
    Ok(events)
}

fn invalid(msg: String) -> CommandError {
    CommandError::Invalid(msg)
}

/// What a configuration must satisfy beyond `validate` to replace the running one.
fn check(config: &RoutingConfig, state: &State) -> Result<(), CommandError> {
    config.validate().map_err(|e| invalid(e.to_string()))?;
    let queues: BTreeSet<&QueueId> = config.queues.iter().map(|q| &q.id).collect();
    for q in &config.queues {
        if !q.relax.windows(2).all(|w| w[0].after_ms <= w[1].after_ms) {
            return Err(invalid(format!(
                "queue `{}`: relaxation steps are not sorted by after_ms",
                q.id
            )));
        }
        let o = &q.overflow;
        let actions = [
            ("closed", &o.closed),
            ("full", &o.full),
            ("max_wait", &o.max_wait),
            ("no_agents", &o.no_agents),
        ]
        .into_iter()
        .chain(q.relax.iter().map(|s| ("relax", &s.overflow)));
        for (what, action) in actions {
            if let Some(OverflowAction::Queue(to)) = action {
                if !queues.contains(to) {
                    return Err(invalid(format!(
                        "queue `{}`: overflow {what} names unknown queue `{to}`",
                        q.id
                    )));
                }
            }
        }
    }
    let agents: BTreeSet<&AgentId> = config.agents.iter().map(|a| &a.id).collect();
    if let Some((id, _)) = state
        .agents
        .iter()
        .find(|(id, a)| a.state.is_logged_in() && !agents.contains(id))
    {
        return Err(invalid(format!(
            "agent `{id}` is logged in; log them out before removing them"
        )));
    }
    Ok(())
}

/// Applies `ConfigChanged` to the run-time state (the core swaps its directory).
pub(crate) fn apply(state: &mut State, config: &RoutingConfig) -> Result<(), String> {
    let agents: BTreeSet<&AgentId> = config.agents.iter().map(|a| &a.id).collect();
    let queues: BTreeSet<&QueueId> = config.queues.iter().map(|q| &q.id).collect();
    if let Some((id, _)) = state
        .agents
        .iter()
        .find(|(id, a)| a.state.is_logged_in() && !agents.contains(id))
    {
        return Err(format!("agent {id} is logged in but removed"));
    }
    if let Some((id, c)) = state.calls.iter().find(|(_, c)| !queues.contains(&c.queue)) {
        return Err(format!("call {id} is in removed queue {}", c.queue));
    }
    state.agents.retain(|id, _| agents.contains(id));
    for id in agents {
        state
            .agents
            .entry(id.clone())
            .or_insert_with(AgentRuntime::logged_out);
    }
    state.counters.retain(|id, _| queues.contains(id));
    for id in queues {
        state.counters.entry(id.clone()).or_default();
    }
    Ok(())
}

/// Counts a connect within the queue's service-level time (after `CallConnected`
/// applied). Needs the configuration, hence here rather than in `State`.
pub(crate) fn count_service_level(state: &mut State, dir: &Directory, call: &CallId) {
    let Some(c) = state.calls.get(call) else {
        return;
    };
    let CallPhase::Connected { since, .. } = c.phase else {
        return;
    };
    let Some(q) = dir.queues.get(&c.queue) else {
        return;
    };
    if since.ms_since(c.enqueued_at) <= q.service_level.within_ms {
        let queue = c.queue.clone();
        if let Some(counters) = state.counters.get_mut(&queue) {
            counters.answered_in_sl += 1;
        }
    }
}
