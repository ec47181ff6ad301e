//! Relaxation over time: steps come due at `enqueued_at + after_ms`, a step can
//! overflow, followers relax at the same records, a configuration change re-evaluates.

use super::support::*;
use super::*;

fn relaxing() -> RoutingConfig {
    cfg_with(|cfg| {
        let q = queue_mut(cfg, "ru");
        q.max_wait_ms = None;
        q.relax = vec![
            RelaxStep {
                after_ms: 10_000,
                skills: Some(expr("ru >= 2")),
                priority_boost: 5,
                overflow: None,
            },
            RelaxStep {
                after_ms: 30_000,
                skills: Some(expr("ru >= 1 OR en >= 1")),
                priority_boost: 5,
                overflow: None,
            },
        ];
    })
}

#[test]
fn steps_come_due_at_their_deadline_and_change_the_requirement() {
    let cfg = relaxing();
    let mut c = Core::new(cfg.clone(), Term(1));
    let mut all = enqueue(&mut c, "c1", "ru", 0, 1_000);
    assert_eq!(c.next_deadline(), Some(t(11_000)));
    assert!(c.handle_timeout(t(10_999)).is_empty(), "early is a no-op");
    let recs = c.handle_timeout(t(11_000));
    assert_eq!(
        events(&recs),
        vec![Event::CallRelaxed {
            call: "c1".into(),
            step: 1
        }]
    );
    all.extend(recs);
    let r = rec(&c, "c1").expect("still waiting");
    assert_eq!(r.relax_step, 1);
    let q = &cfg.queues[1];
    let (e, extra, boost) = r.requirement(q);
    assert_eq!(e.to_string(), expr("ru >= 2").to_string());
    assert!(extra.is_none());
    assert_eq!(boost, 5);
    assert_eq!(c.next_deadline(), Some(t(31_000)));
    assert_follows(cfg, &all, &c);
}

#[test]
fn a_late_wake_reaches_several_steps_in_one_record() {
    let mut c = Core::new(relaxing(), Term(1));
    enqueue(&mut c, "c1", "ru", 0, 0);
    let recs = c.handle_timeout(t(45_000));
    assert_eq!(
        events(&recs),
        vec![Event::CallRelaxed {
            call: "c1".into(),
            step: 2
        }]
    );
    assert_eq!(c.next_deadline(), None, "no step left");
}

#[test]
fn offered_calls_are_not_relaxed_until_they_wait_again() {
    let mut c = Core::new(relaxing(), Term(1));
    online(&mut c, "carol", 0);
    let recs = enqueue(&mut c, "c1", "ru", 0, 0);
    assert_eq!(offers(&recs), vec![offer("c1", "carol")]);
    // The offer expires at 20 s (RONA): the call waits again, past its first step.
    let recs = c.handle_timeout(t(20_000));
    let ev = events(&recs);
    assert!(matches!(ev[0], Event::CallRequeued { .. }), "{ev:?}");
    assert_eq!(rec(&c, "c1").map(|r| r.relax_step), Some(1), "{ev:?}");
}

#[test]
fn a_step_with_overflow_makes_the_call_leave() {
    let cfg = cfg_with(|cfg| {
        queue_mut(cfg, "ru").relax = vec![RelaxStep {
            after_ms: 5_000,
            skills: None,
            priority_boost: 0,
            overflow: Some(OverflowAction::Message("sorry".into())),
        }];
    });
    let mut c = Core::new(cfg.clone(), Term(1));
    let mut all = enqueue(&mut c, "c1", "ru", 0, 0);
    let recs = c.handle_timeout(t(5_000));
    assert_eq!(
        events(&recs),
        vec![Event::CallOverflowed {
            call: "c1".into(),
            from: "ru".into(),
            reason: OverflowReason::Relaxation,
            action: OverflowAction::Message("sorry".into()),
            waited_ms: 5_000,
        }]
    );
    all.extend(recs);
    assert!(rec(&c, "c1").is_none());
    assert_eq!(counters(&c, "ru").overflowed, 1);
    assert_follows(cfg, &all, &c);
}

#[test]
fn a_configuration_change_re_evaluates_steps_both_ways() {
    let cfg = relaxing();
    let mut c = Core::new(cfg.clone(), Term(1));
    let mut all = enqueue(&mut c, "c1", "ru", 0, 0);
    all.extend(c.handle_timeout(t(12_000)));
    assert_eq!(rec(&c, "c1").map(|r| r.relax_step), Some(1));
    // The first step now comes at 20 s: the call is back before it.
    let mut later = cfg.clone();
    queue_mut(&mut later, "ru").relax[0].after_ms = 20_000;
    queue_mut(&mut later, "ru").relax[1].after_ms = 40_000;
    let recs = run(
        &mut c,
        Command::ApplyConfig {
            config: later,
            orphans_to: None,
        },
        15_000,
    );
    let ev = events(&recs);
    assert!(
        matches!(ev[0], Event::ConfigChanged { version: 1, .. }),
        "{ev:?}"
    );
    assert_eq!(
        ev[1],
        Event::CallRelaxed {
            call: "c1".into(),
            step: 0
        }
    );
    all.extend(recs);
    assert_eq!(c.next_deadline(), Some(t(20_000)));
    assert_follows(cfg, &all, &c);
}

#[test]
fn a_moved_call_reaches_the_new_queues_steps_by_its_wait() {
    // sales overflows to ru at max wait 15 s; ru's first step (10 s) is already
    // reached by then, so the call arrives relaxed.
    let cfg = cfg_with(|cfg| {
        let s = queue_mut(cfg, "sales");
        s.max_wait_ms = Some(15_000);
        s.overflow.max_wait = Some(OverflowAction::Queue("ru".into()));
        let r = queue_mut(cfg, "ru");
        r.max_wait_ms = None;
        r.relax = relaxing().queues[1].relax.clone();
    });
    let mut c = Core::new(cfg.clone(), Term(1));
    let mut all = enqueue(&mut c, "c1", "sales", 0, 0);
    let recs = c.handle_timeout(t(15_000));
    let ev = events(&recs);
    assert_eq!(ev.len(), 2, "{ev:?}");
    assert!(matches!(
        &ev[0],
        Event::CallOverflowed { reason: OverflowReason::MaxWait, action: OverflowAction::Queue(q), .. } if q.as_str() == "ru"
    ));
    assert_eq!(
        ev[1],
        Event::CallRelaxed {
            call: "c1".into(),
            step: 1
        }
    );
    all.extend(recs);
    let r = rec(&c, "c1").expect("moved");
    assert_eq!(
        (r.queue.as_str(), r.enqueued_at, r.overflow_hops),
        ("ru", t(0), 1)
    );
    assert_eq!(counters(&c, "ru").offered, 1);
    assert_eq!(counters(&c, "sales").overflowed, 1);
    assert_follows(cfg, &all, &c);
}
