//! Helpers shared by the lifecycle tests (relaxation, overflow, transfer, callbacks,
//! configuration changes, invariants).

use super::*;

/// The unit tests' configuration, changed by `f`.
pub(super) fn cfg_with(f: impl FnOnce(&mut RoutingConfig)) -> RoutingConfig {
    let mut cfg = config();
    f(&mut cfg);
    cfg
}

/// The queue `id` of `cfg`.
pub(super) fn queue_mut<'a>(cfg: &'a mut RoutingConfig, id: &str) -> &'a mut QueueDef {
    cfg.queues
        .iter_mut()
        .find(|q| q.id.as_str() == id)
        .expect("queue in config")
}

pub(super) fn expr(text: &str) -> SkillExpr {
    SkillExpr::parse(text).expect("expression")
}

/// Runs `cmd` at `now`, which must succeed.
pub(super) fn run(c: &mut Core, cmd: Command, now: u64) -> Vec<EventRecord> {
    c.handle(cmd, t(now))
        .unwrap_or_else(|e| panic!("command at {now}: {e}"))
}

pub(super) fn events(recs: &[EventRecord]) -> Vec<Event> {
    recs.iter().map(|r| r.event.clone()).collect()
}

/// The stored record of `call`, if the core still knows it.
pub(super) fn rec(c: &Core, call: &str) -> Option<CallRecord> {
    c.snapshot().state.calls.get(&CallId::from(call)).cloned()
}

pub(super) fn counters(c: &Core, queue: &str) -> QueueCounters {
    c.snapshot()
        .state
        .counters
        .get(&QueueId::from(queue))
        .copied()
        .unwrap_or_default()
}

/// A follower built from `cfg` that applied `recs` ends in the leader's state.
pub(super) fn assert_follows(cfg: RoutingConfig, recs: &[EventRecord], leader: &Core) {
    let mut f = Core::new(cfg, Term(1));
    for r in recs {
        f.apply(r).unwrap_or_else(|e| panic!("apply {r:?}: {e}"));
    }
    assert_eq!(f.state_digest(), leader.state_digest(), "follower diverged");
    assert_eq!(f.config_version(), leader.config_version());
}

pub(super) fn enqueue_with(
    c: &mut Core,
    call: &str,
    queue: &str,
    number: &str,
    now: u64,
) -> Vec<EventRecord> {
    run(
        c,
        Command::Enqueue {
            call: call.into(),
            queue: queue.into(),
            priority: 0,
            caller: CallerInfo {
                from: format!("sip:{number}@example.org"),
                number: number.into(),
                ..CallerInfo::default()
            },
            skills: Default::default(),
        },
        now,
    )
}

pub(super) fn answer(c: &mut Core, call: &str, now: u64) -> Vec<EventRecord> {
    run(
        c,
        Command::AgentAnswered {
            call: call.into(),
            agent: None,
        },
        now,
    )
}

/// Login at `ext-<agent>` and Ready, with all the records (login's too).
pub(super) fn go_online(c: &mut Core, agent: &str, now: u64) -> Vec<EventRecord> {
    let mut recs = run(
        c,
        Command::AgentLogin {
            agent: agent.into(),
            extension: format!("ext-{agent}").into(),
        },
        now,
    );
    recs.extend(ready(c, agent, now));
    recs
}
