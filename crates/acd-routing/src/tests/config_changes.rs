//! Configuration changes at run time, snapshots carrying them, and the login and
//! not-ready checks against the configuration; the service-level counter.

use super::support::*;
use super::*;

fn apply_config(config: RoutingConfig, orphans_to: Option<&str>) -> Command {
    Command::ApplyConfig {
        config,
        orphans_to: orphans_to.map(QueueId::from),
    }
}

fn dave() -> AgentDef {
    AgentDef {
        id: "dave".into(),
        name: "Dave".into(),
        skills: vec![("fr".into(), 4)],
        auto_answer: true,
    }
}

#[test]
fn a_change_adds_agents_and_queues_and_followers_switch_at_the_same_record() {
    let mut c = core();
    let mut all = go_online(&mut c, "alice", 0);
    let next = cfg_with(|cfg| {
        cfg.agents.push(dave());
        cfg.queues.push(QueueDef::new("fr", expr("fr >= 2")));
    });
    let recs = run(&mut c, apply_config(next.clone(), None), 1_000);
    assert_eq!(
        events(&recs),
        vec![Event::ConfigChanged {
            version: 1,
            config: next.clone()
        }]
    );
    all.extend(recs);
    assert_eq!((c.config_version(), c.config()), (1, &next));
    all.extend(go_online(&mut c, "dave", 2_000));
    let recs = enqueue(&mut c, "c1", "fr", 0, 3_000);
    assert_eq!(offers(&recs), vec![offer("c1", "dave")]);
    all.extend(recs);
    assert_follows(config(), &all, &c);
}

#[test]
fn waiting_calls_of_a_removed_queue_move_to_orphans_to() {
    let mut c = core();
    let mut all = enqueue(&mut c, "c1", "ru", 0, 0);
    let next = cfg_with(|cfg| cfg.queues.retain(|q| q.id.as_str() != "ru"));
    let err = c
        .handle(apply_config(next.clone(), None), t(1_000))
        .expect_err("orphans need a home");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    let recs = run(&mut c, apply_config(next, Some("quick")), 1_000);
    let ev = events(&recs);
    assert_eq!(
        ev[0],
        Event::CallOverflowed {
            call: "c1".into(),
            from: "ru".into(),
            reason: OverflowReason::QueueRemoved,
            action: OverflowAction::Queue("quick".into()),
            waited_ms: 1_000,
        }
    );
    assert!(matches!(ev[1], Event::ConfigChanged { version: 1, .. }));
    all.extend(recs);
    assert_eq!(rec(&c, "c1").map(|r| r.queue.0), Some("quick".into()));
    assert!(c.queues().iter().all(|q| q.id.as_str() != "ru"));
    assert_follows(config(), &all, &c);
}

#[test]
fn a_change_into_a_new_queue_takes_orphans_there() {
    let mut c = core();
    let mut all = enqueue(&mut c, "c1", "ru", 0, 0);
    let next = cfg_with(|cfg| {
        cfg.queues.retain(|q| q.id.as_str() != "ru");
        cfg.queues.push(QueueDef::new("ru2", expr("ru >= 1")));
    });
    all.extend(run(&mut c, apply_config(next, Some("ru2")), 1_000));
    assert_eq!(counters(&c, "ru2").offered, 1);
    assert_follows(config(), &all, &c);
}

#[test]
fn invalid_changes_are_refused_naming_the_problem() {
    let mut c = core();
    online(&mut c, "alice", 0);
    online(&mut c, "carol", 0);
    enqueue(&mut c, "c1", "ru", 0, 0); // offered to Carol
    let digest = c.state_digest();
    let cases: Vec<(RoutingConfig, Option<&str>, &str)> = vec![
        (
            cfg_with(|cfg| cfg.agents.retain(|a| a.id.as_str() != "alice")),
            None,
            "alice",
        ),
        (
            cfg_with(|cfg| cfg.queues.push(QueueDef::new("sales", SkillExpr::Any))),
            None,
            "sales",
        ),
        (
            cfg_with(|cfg| {
                queue_mut(cfg, "sales").relax = vec![
                    RelaxStep {
                        after_ms: 20,
                        skills: None,
                        priority_boost: 0,
                        overflow: None,
                    },
                    RelaxStep {
                        after_ms: 10,
                        skills: None,
                        priority_boost: 0,
                        overflow: None,
                    },
                ]
            }),
            None,
            "sorted",
        ),
        (
            cfg_with(|cfg| {
                queue_mut(cfg, "sales").overflow.full = Some(OverflowAction::Queue("nope".into()))
            }),
            None,
            "nope",
        ),
        (config(), Some("nope"), "nope"),
        (
            cfg_with(|cfg| cfg.queues.retain(|q| q.id.as_str() != "ru")),
            Some("quick"),
            "c1",
        ),
    ];
    for (cfg, orphans, needle) in cases {
        match c.handle(apply_config(cfg, orphans), t(1_000)) {
            Err(CommandError::Invalid(msg)) => {
                assert!(msg.contains(needle), "{msg} lacks {needle}")
            }
            other => panic!("expected Invalid naming {needle}, got {other:?}"),
        }
    }
    assert_eq!(c.state_digest(), digest);
    assert_eq!(c.config_version(), 0);
}

#[test]
fn snapshots_carry_a_changed_configuration_and_its_version() {
    let mut c = core();
    online(&mut c, "alice", 0);
    let file = config();
    let snap = c.snapshot();
    assert!(snap.config.is_none(), "file configuration: not carried");
    let next = cfg_with(|cfg| cfg.agents.push(dave()));
    run(&mut c, apply_config(next.clone(), None), 1_000);
    let snap = c.snapshot();
    assert_eq!((snap.format_version, snap.config_version), (2, 1));
    // A standby started from the old file gets the changed configuration.
    let json = serde_json::to_string(&snap).expect("encode");
    let back: Snapshot = serde_json::from_str(&json).expect("decode");
    let restored = Core::from_snapshot(file, back).expect("restore");
    assert_eq!(restored.config(), &next);
    assert_eq!(restored.config_version(), 1);
    assert_eq!(restored.state_digest(), c.state_digest());
}

#[test]
fn a_version_1_snapshot_still_loads() {
    let mut c = core();
    online(&mut c, "alice", 0);
    let mut v = serde_json::to_value(c.snapshot()).expect("encode");
    v["format_version"] = 1.into();
    let old: Snapshot = serde_json::from_value(v).expect("decode");
    let restored = Core::from_snapshot(config(), old).expect("restore");
    assert_eq!(restored.state_digest(), c.state_digest());
}

#[test]
fn the_digest_includes_the_configuration_version() {
    let mut a = core();
    let mut b = core();
    run(&mut a, apply_config(config(), None), 0);
    // Same state, same last_seq, but b never changed its configuration.
    online(&mut b, "alice", 0);
    let mut a2 = core();
    run(&mut a2, apply_config(config(), None), 0);
    assert_eq!(a.state_digest(), a2.state_digest());
    let mut plain = core();
    run(
        &mut plain,
        Command::AgentLogin {
            agent: "bob".into(),
            extension: "x".into(),
        },
        0,
    );
    assert_eq!(plain.last_seq(), a.last_seq());
    assert_ne!(a.state_digest(), plain.state_digest());
    // A stale or repeated configuration record is refused.
    let rec = EventRecord {
        seq: a.last_seq().next(),
        term: Term(1),
        at: t(1),
        event: Event::ConfigChanged {
            version: 1,
            config: config(),
        },
        origin: None,
    };
    assert!(matches!(
        a.apply(&rec),
        Err(ApplyError::Inconsistent { .. })
    ));
}

#[test]
fn login_needs_a_configured_extension_and_not_ready_a_configured_reason() {
    let cfg = cfg_with(|cfg| {
        cfg.extensions = ["1001".into(), "1002".into()].into();
        cfg.not_ready_reasons = vec!["break".into(), "lunch".into()];
    });
    let mut c = Core::new(cfg, Term(1));
    let err = c
        .handle(
            Command::AgentLogin {
                agent: "alice".into(),
                extension: "1009".into(),
            },
            t(0),
        )
        .expect_err("refused");
    assert_eq!(
        err,
        CommandError::Invalid("extension 1009 is not configured".into())
    );
    run(
        &mut c,
        Command::AgentLogin {
            agent: "alice".into(),
            extension: "1001".into(),
        },
        0,
    );
    let err = c
        .handle(
            Command::AgentNotReady {
                agent: "alice".into(),
                reason: "nap".into(),
            },
            t(1),
        )
        .expect_err("refused");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    run(
        &mut c,
        Command::AgentNotReady {
            agent: "alice".into(),
            reason: "lunch".into(),
        },
        2,
    );
    run(
        &mut c,
        Command::AgentNotReady {
            agent: "alice".into(),
            reason: RONA_REASON.into(),
        },
        3,
    );
}

#[test]
fn answered_within_the_service_level_is_counted() {
    let cfg = cfg_with(|cfg| {
        queue_mut(cfg, "sales").service_level = ServiceLevel {
            percent: 80,
            within_ms: 10_000,
        };
    });
    let mut c = Core::new(cfg.clone(), Term(1));
    let mut all = go_online(&mut c, "alice", 0);
    all.extend(enqueue(&mut c, "fast", "sales", 0, 1_000));
    all.extend(answer(&mut c, "fast", 11_000));
    all.extend(run(
        &mut c,
        Command::CallEnded {
            call: "fast".into(),
            by: EndReason::AgentHungUp,
        },
        12_000,
    ));
    all.extend(ready(&mut c, "alice", 12_000));
    all.extend(enqueue(&mut c, "slow", "sales", 0, 13_000));
    all.extend(answer(&mut c, "slow", 23_001));
    let n = counters(&c, "sales");
    assert_eq!((n.answered, n.answered_in_sl), (2, 1));
    let view = c
        .queues()
        .into_iter()
        .find(|q| q.id.as_str() == "sales")
        .expect("sales");
    assert_eq!(view.answered_in_sl, 1);
    assert_follows(cfg, &all, &c);
}
