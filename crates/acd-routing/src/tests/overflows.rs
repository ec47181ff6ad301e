//! Overflow: closed, full, no agents (at enqueue and at the last logout), max wait,
//! the hop limit, and the callback action.

use super::support::*;
use super::*;

/// Monday 2024-01-01 10:00 and 20:00 UTC.
const MON_10H: u64 = 1_704_103_200_000;
const MON_20H: u64 = 1_704_139_200_000;

fn office_hours(holidays: Vec<String>) -> BusinessHours {
    BusinessHours {
        timezone: "UTC".into(),
        weekly: [("mon-fri".to_string(), vec!["09:00-17:00".to_string()])].into(),
        holidays,
    }
}

fn overflowed(ev: &Event) -> Option<(OverflowReason, OverflowAction)> {
    match ev {
        Event::CallOverflowed { reason, action, .. } => Some((*reason, action.clone())),
        _ => None,
    }
}

#[test]
fn closed_queue_runs_its_closed_action_and_open_queue_serves() {
    let cfg = cfg_with(|cfg| {
        let q = queue_mut(cfg, "quick");
        q.hours = Some(office_hours(Vec::new()));
        q.overflow.closed = Some(OverflowAction::Message("closed".into()));
    });
    let mut c = Core::new(cfg.clone(), Term(1));
    let mut all = enqueue(&mut c, "open", "quick", 0, MON_10H);
    assert_eq!(events(&all).len(), 1, "queued only");
    let recs = enqueue(&mut c, "late", "quick", 0, MON_20H);
    let ev = events(&recs);
    assert!(matches!(ev[0], Event::CallQueued { .. }));
    assert_eq!(
        overflowed(&ev[1]),
        Some((
            OverflowReason::Closed,
            OverflowAction::Message("closed".into())
        ))
    );
    assert_eq!(ev.len(), 2);
    all.extend(recs);
    assert!(rec(&c, "late").is_none());
    assert!(rec(&c, "open").is_some());
    let n = counters(&c, "quick");
    assert_eq!((n.offered, n.overflowed), (2, 1));
    assert_follows(cfg, &all, &c);
}

#[test]
fn a_holiday_is_closed() {
    let cfg = cfg_with(|cfg| {
        let q = queue_mut(cfg, "quick");
        q.hours = Some(office_hours(vec!["2024-01-01".into()]));
        q.overflow.closed = Some(OverflowAction::Uri("sip:night@example.org".into()));
    });
    let mut c = Core::new(cfg, Term(1));
    let ev = events(&enqueue(&mut c, "c1", "quick", 0, MON_10H));
    assert_eq!(
        overflowed(&ev[1]).map(|o| o.0),
        Some(OverflowReason::Closed)
    );
}

#[test]
fn closed_without_an_action_queues_the_call() {
    let cfg = cfg_with(|cfg| queue_mut(cfg, "quick").hours = Some(office_hours(Vec::new())));
    let mut c = Core::new(cfg, Term(1));
    assert_eq!(events(&enqueue(&mut c, "c1", "quick", 0, MON_20H)).len(), 1);
    assert!(rec(&c, "c1").is_some());
}

#[test]
fn a_full_queue_moves_the_next_call_on() {
    let cfg = cfg_with(|cfg| {
        let q = queue_mut(cfg, "quick");
        q.max_size = Some(1);
        q.overflow.full = Some(OverflowAction::Queue("sales".into()));
    });
    let mut c = Core::new(cfg.clone(), Term(1));
    let mut all = enqueue(&mut c, "c1", "quick", 0, 0);
    let recs = enqueue(&mut c, "c2", "quick", 0, 10);
    assert_eq!(
        overflowed(&events(&recs)[1]),
        Some((OverflowReason::Full, OverflowAction::Queue("sales".into())))
    );
    all.extend(recs);
    let r = rec(&c, "c2").expect("moved");
    assert_eq!((r.queue.as_str(), r.enqueued_at), ("sales", t(10)));
    assert_follows(cfg, &all, &c);
}

#[test]
fn no_agents_at_enqueue_and_when_the_last_one_logs_out() {
    let cfg = cfg_with(|cfg| {
        queue_mut(cfg, "ru").overflow.no_agents = Some(OverflowAction::Flow("voicemail".into()));
    });
    let mut c = Core::new(cfg.clone(), Term(1));
    // Nobody who can take ru is logged in: the call leaves at once.
    let mut all = enqueue(&mut c, "c1", "ru", 0, 0);
    assert_eq!(
        overflowed(&events(&all)[1]),
        Some((
            OverflowReason::NoAgents,
            OverflowAction::Flow("voicemail".into())
        ))
    );
    // Carol logged in (not ready): calls wait.
    all.extend(run(
        &mut c,
        Command::AgentLogin {
            agent: "carol".into(),
            extension: "ext-carol".into(),
        },
        1_000,
    ));
    all.extend(enqueue(&mut c, "c2", "ru", 0, 2_000));
    all.extend(enqueue(&mut c, "c3", "ru", 0, 3_000));
    assert!(rec(&c, "c2").is_some() && rec(&c, "c3").is_some());
    // Alice logging out changes nothing for ru; Carol, the last, does.
    let recs = run(
        &mut c,
        Command::AgentLogout {
            agent: "carol".into(),
        },
        4_000,
    );
    let ev = events(&recs);
    assert!(matches!(ev[0], Event::AgentLoggedOut { .. }));
    let moved: Vec<_> = ev[1..]
        .iter()
        .map(|e| match e {
            Event::CallOverflowed { call, reason, .. } => (call.0.clone(), *reason),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        moved,
        vec![
            ("c2".to_string(), OverflowReason::NoAgents),
            ("c3".to_string(), OverflowReason::NoAgents)
        ]
    );
    all.extend(recs);
    assert_eq!(counters(&c, "ru").overflowed, 3);
    assert_follows(cfg, &all, &c);
}

#[test]
fn no_agents_without_an_action_waits() {
    let mut c = core();
    assert_eq!(events(&enqueue(&mut c, "c1", "ru", 0, 0)).len(), 1);
}

#[test]
fn max_wait_runs_its_action_else_times_out() {
    let cfg = cfg_with(|cfg| {
        queue_mut(cfg, "ru").overflow.max_wait = Some(OverflowAction::Queue("quick".into()));
    });
    let mut c = Core::new(cfg, Term(1));
    enqueue(&mut c, "c1", "ru", 0, 0);
    let ev = events(&c.handle_timeout(t(60_000)));
    assert_eq!(
        overflowed(&ev[0]),
        Some((
            OverflowReason::MaxWait,
            OverflowAction::Queue("quick".into())
        ))
    );
    assert_eq!(rec(&c, "c1").map(|r| r.queue.0), Some("quick".into()));
    // Without an action: the plain time-out of before.
    let mut c = core();
    enqueue(&mut c, "c1", "ru", 0, 0);
    let ev = events(&c.handle_timeout(t(60_000)));
    assert!(matches!(ev[0], Event::CallTimedOut { .. }), "{ev:?}");
}

#[test]
fn overflow_loops_stop_after_the_hop_limit() {
    let cfg = cfg_with(|cfg| {
        for (q, other) in [("sales", "quick"), ("quick", "sales")] {
            let q = queue_mut(cfg, q);
            q.hours = Some(office_hours(Vec::new()));
            q.overflow.closed = Some(OverflowAction::Queue(other.into()));
        }
    });
    let mut c = Core::new(cfg.clone(), Term(1));
    let recs = enqueue(&mut c, "c1", "sales", 0, MON_20H);
    let ev = events(&recs);
    let hops = ev.iter().filter(|e| overflowed(e).is_some()).count();
    assert_eq!(hops, MAX_OVERFLOW_HOPS as usize, "{ev:?}");
    assert!(
        matches!(ev.last(), Some(Event::CallTimedOut { .. })),
        "{ev:?}"
    );
    assert!(rec(&c, "c1").is_none());
    assert_follows(cfg, &recs, &c);
}

#[test]
fn the_callback_action_keeps_the_callers_place_under_a_new_id() {
    let cfg = cfg_with(|cfg| {
        let q = queue_mut(cfg, "ru");
        q.overflow.max_wait = Some(OverflowAction::Callback);
        q.max_wait_ms = Some(30_000);
    });
    let mut c = Core::new(cfg.clone(), Term(1));
    let mut all = enqueue_with(&mut c, "c1", "ru", "+15550001", 1_000);
    let before = rec(&c, "c1").expect("waiting");
    all.extend(c.handle_timeout(t(31_000)));
    assert!(rec(&c, "c1").is_none(), "inbound gone");
    let cb = rec(&c, "c1:cb").expect("callback call");
    assert_eq!(
        (cb.enqueued_at, cb.arrival, &cb.queue),
        (before.enqueued_at, before.arrival, &before.queue)
    );
    let call = cb.callback.expect("callback part");
    assert_eq!((call.number.as_str(), call.attempts), ("+15550001", 0));
    assert_eq!(c.callbacks().count(), 1, "listed");
    // The edge hangs the inbound caller up: expected, nothing changes.
    assert!(run(&mut c, Command::Abandon { call: "c1".into() }, 32_000).is_empty());
    // A callback call is not held to max wait: the caller is not on the line.
    all.extend(c.handle_timeout(t(100_000)));
    assert!(rec(&c, "c1:cb").is_some());
    assert_follows(cfg, &all, &c);
}
