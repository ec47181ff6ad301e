//! A scripted day of calls whose every figure is worked out by hand below.
//!
//! Day 2026-11-27 (UTC). Queue `sales` targets 80 % in 20 s, `support`
//! 90 % in 30 s. Short abandons: under 5 s. FCR window: 24 h.
//!
//! | call  | queue   | queued   | what happened                                  | number | survey |
//! |-------|---------|----------|------------------------------------------------|--------|--------|
//! | c1    | sales   | 09:00:00 | answered +10 s by alice, talk 120, wrap 30     | 100    | 5      |
//! | c2    | sales   | 09:05:00 | answered +30 s by bob, talk 200, wrap 20       | 200    | 3      |
//! | c3    | sales   | 09:10:00 | hung up after 3 s (short abandon)              | 300    |        |
//! | c4    | sales   | 09:20:00 | hung up after 40 s                             | 400    |        |
//! | c5    | sales   | 09:40:00 | answered +5 s by alice, talk 60, no wrap-up    | 100    |        |
//! | c6    | support | 10:00:00 | answered +25 s by bob, talk 300, wrap 60       | 600    | 4      |
//! | c7    | support | 10:30:00 | left for a callback                            | 700    |        |
//! | c7:cb | support | 10:45:00 | the callback, answered 10:46:00 by alice, talk 100 |    |        |
//! | c0    | sales   | 11-26 23:00 | (day before: outside the range)             | 200    |        |
//! | c8    | sales   | 11-28 08:00 | (next day, 23 h after c2)                   | 200    |        |
//! | c9    | support | 11-28 12:00 | (next day, 26 h after c6)                   | 600    |        |

use super::*;

const DAY: &str = "2026-11-27";

fn at(date: &str, time: &str) -> i64 {
    format!("{date}T{time}Z")
        .parse::<jiff::Timestamp>()
        .unwrap()
        .as_millisecond()
}

fn t(time: &str) -> i64 {
    at(DAY, time)
}

fn secs(s: i64) -> i64 {
    s * 1000
}

struct Answered {
    agent: &'static str,
    wait: i64,
    talk: i64,
    wrap: Option<i64>,
}

fn call(id: &str, queue: &str, queued: i64, number: &str) -> CallRow {
    CallRow {
        call_id: id.into(),
        arrived_at: Some(queued),
        queued_at: Some(queued),
        first_queue: Some(queue.into()),
        queue: Some(queue.into()),
        caller_number: number.into(),
        outcome: "waiting".into(),
        ..CallRow::default()
    }
}

fn answered(mut c: CallRow, a: Answered) -> CallRow {
    let q = c.queued_at.unwrap();
    let ans = q + secs(a.wait);
    c.answered_at = Some(ans);
    c.talk_ended_at = Some(ans + secs(a.talk));
    c.wrap_ended_at = a.wrap.map(|w| ans + secs(a.talk) + secs(w));
    c.agent = Some(a.agent.into());
    c.outcome = "answered".into();
    c
}

fn abandoned(mut c: CallRow, wait: i64) -> CallRow {
    c.abandoned_at = Some(c.queued_at.unwrap() + secs(wait));
    c.waited_ms = Some(secs(wait));
    c.outcome = "abandoned".into();
    c
}

fn surveyed(mut c: CallRow, score: i32) -> CallRow {
    c.survey_score = Some(score);
    c
}

pub(crate) fn day() -> Dataset {
    let a = |agent, wait, talk, wrap| Answered {
        agent,
        wait,
        talk,
        wrap,
    };
    let mut c7 = call("c7", "support", t("10:30:00"), "700");
    c7.outcome = "callback".into();
    let mut cb = answered(
        call("c7:cb", "support", t("10:45:00"), ""),
        a("alice", 60, 100, None),
    );
    cb.arrived_at = None;
    cb.callback_of = Some("c7".into());
    cb.callback_requested_at = Some(t("10:30:20"));
    let calls = vec![
        call("c0", "sales", at("2026-11-26", "23:00:00"), "200"),
        surveyed(
            answered(
                call("c1", "sales", t("09:00:00"), "100"),
                a("alice", 10, 120, Some(30)),
            ),
            5,
        ),
        surveyed(
            answered(
                call("c2", "sales", t("09:05:00"), "200"),
                a("bob", 30, 200, Some(20)),
            ),
            3,
        ),
        abandoned(call("c3", "sales", t("09:10:00"), "300"), 3),
        abandoned(call("c4", "sales", t("09:20:00"), "400"), 40),
        answered(
            call("c5", "sales", t("09:40:00"), "100"),
            a("alice", 5, 60, None),
        ),
        surveyed(
            answered(
                call("c6", "support", t("10:00:00"), "600"),
                a("bob", 25, 300, Some(60)),
            ),
            4,
        ),
        c7,
        cb,
        call("c8", "sales", at("2026-11-28", "08:00:00"), "200"),
        call("c9", "support", at("2026-11-28", "12:00:00"), "600"),
    ];
    let mut seq = 0;
    let mut ev = |at: i64, agent: &str, state: &str| {
        seq += 1;
        AgentEventRow {
            seq,
            at,
            agent: agent.into(),
            state: state.into(),
            ..AgentEventRow::default()
        }
    };
    let agent_events = vec![
        ev(at("2026-11-26", "23:00:00"), "alice", "logged_out"),
        ev(t("08:50:00"), "alice", "ready"),
        ev(t("09:00:00"), "bob", "ready"),
        ev(t("09:00:10"), "alice", "on_call"),
        ev(t("09:02:10"), "alice", "wrap_up"),
        ev(t("09:02:40"), "alice", "ready"),
        ev(t("09:05:30"), "bob", "on_call"),
        ev(t("09:08:50"), "bob", "wrap_up"),
        ev(t("09:09:10"), "bob", "ready"),
        ev(t("09:40:05"), "alice", "on_call"),
        ev(t("09:41:05"), "alice", "ready"),
        ev(t("10:00:00"), "alice", "not_ready"),
        ev(t("10:00:25"), "bob", "on_call"),
        ev(t("10:05:25"), "bob", "wrap_up"),
        ev(t("10:06:25"), "bob", "logged_out"),
        ev(t("10:15:00"), "alice", "ready"),
        ev(t("10:46:00"), "alice", "on_call"),
        ev(t("10:47:40"), "alice", "ready"),
        ev(t("11:00:00"), "alice", "logged_out"),
    ];
    Dataset {
        range: None,
        calls,
        call_events: Vec::new(),
        agent_events,
    }
}

pub(crate) fn targets() -> BTreeMap<String, ServiceTarget> {
    BTreeMap::from([
        (
            "sales".to_string(),
            ServiceTarget {
                percent: 80,
                within_ms: 20_000,
            },
        ),
        (
            "support".to_string(),
            ServiceTarget {
                percent: 90,
                within_ms: 30_000,
            },
        ),
    ])
}

fn params(by: Grouping) -> ReportParams {
    ReportParams {
        range: TimeRange {
            from: t("00:00:00"),
            to: at("2026-11-28", "00:00:00"),
        },
        now: at("2026-11-28", "00:00:00"),
        by,
        interval_mins: 60,
        queues: Vec::new(),
        short_abandon_secs: 5,
        fcr_window_hours: 24,
        targets: targets(),
        tz: jiff::tz::TimeZone::UTC,
    }
}

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-9)
}

#[track_caller]
fn assert_close(a: Option<f64>, b: f64) {
    assert!(close(a, b), "{a:?} != {b}");
}

#[test]
fn by_queue_every_figure_by_hand() {
    let r = report(&day(), &params(Grouping::Queue)).unwrap();
    let keys: Vec<&str> = r.rows.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["sales", "support"]);

    let s = &r.rows[0];
    // c1..c5 (c0 and c8 are outside the day).
    assert_eq!(
        (s.offered, s.answered, s.abandoned, s.short_abandons),
        (5, 3, 1, 1)
    );
    // 1 abandon ÷ (5 offered − 1 short).
    assert_close(s.abandon_rate, 0.25);
    // (10 + 30 + 5) ÷ 3.
    assert_close(s.asa_secs, 15.0);
    // c1 (10 s) and c5 (5 s) within 20 s: 2 ÷ (5 − 1).
    assert_eq!(s.answered_in_target, 2);
    assert_close(s.service_level, 0.5);
    assert_eq!((s.target_percent, s.target_secs), (Some(80), Some(20.0)));
    // (120 + 30) + (200 + 20) + (60 + 0) = 430 over 3.
    assert_close(s.aht_secs, 430.0 / 3.0);
    // c1: 100 called again at 09:40 (c5); c2: 200 again next day 08:00
    // (c8, 23 h later); c5: resolved. 1 of 3.
    assert_close(s.fcr_rate, 1.0 / 3.0);
    // Scores 5 and 3.
    assert_close(s.satisfaction, 4.0);
    assert_eq!(s.surveys, 2);
    assert_eq!((s.callbacks_requested, s.callbacks_completed), (0, 0));
    assert!(s.agent.is_none());

    let u = &r.rows[1];
    // c6 and c7; the callback row is not an inbound call.
    assert_eq!(
        (u.offered, u.answered, u.abandoned, u.short_abandons),
        (2, 1, 0, 0)
    );
    assert_close(u.abandon_rate, 0.0);
    assert_close(u.asa_secs, 25.0);
    // c6 in 25 s ≤ 30 s; c7 never answered: 1 ÷ 2.
    assert_close(u.service_level, 0.5);
    assert_eq!(u.target_percent, Some(90));
    assert_close(u.aht_secs, 360.0);
    // 600 calls again 26 h later: outside the 24 h window.
    assert_close(u.fcr_rate, 1.0);
    assert_close(u.satisfaction, 4.0);
    assert_eq!((u.callbacks_requested, u.callbacks_completed), (1, 1));

    let tot = &r.total;
    assert_eq!(tot.key, "total");
    assert_eq!(
        (tot.offered, tot.answered, tot.abandoned, tot.short_abandons),
        (7, 4, 1, 1)
    );
    assert_close(tot.abandon_rate, 1.0 / 6.0);
    // (10 + 30 + 5 + 25) ÷ 4.
    assert_close(tot.asa_secs, 17.5);
    // Each call against its own queue's target: c1, c5, c6 ÷ (7 − 1).
    assert_close(tot.service_level, 0.5);
    // (150 + 220 + 60 + 360) ÷ 4.
    assert_close(tot.aht_secs, 197.5);
    assert_close(tot.fcr_rate, 0.5);
    // (5 + 3 + 4) ÷ 3.
    assert_close(tot.satisfaction, 4.0);
    assert_eq!(tot.surveys, 3);
    assert_eq!((tot.callbacks_requested, tot.callbacks_completed), (1, 1));
}

#[test]
fn by_agent_time_in_states_by_hand() {
    let r = report(&day(), &params(Grouping::Agent)).unwrap();
    let keys: Vec<&str> = r.rows.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["alice", "bob"]);

    let alice = &r.rows[0];
    // c1, c5 inbound; the callback too.
    assert_eq!((alice.offered, alice.answered), (2, 2));
    assert_eq!(
        (alice.callbacks_requested, alice.callbacks_completed),
        (1, 1)
    );
    let a = alice.agent.as_ref().unwrap();
    assert_eq!(a.calls_handled, 3);
    // On call 09:00:10-09:02:10, 09:40:05-09:41:05, 10:46:00-10:47:40.
    assert_eq!(a.talk_secs, 120.0 + 60.0 + 100.0);
    assert_eq!(a.wrap_secs, 30.0);
    // Ready 08:50:00-09:00:10 (610), 09:02:40-09:40:05 (2245),
    // 09:41:05-10:00:00 (1135), 10:15:00-10:46:00 (1860), 10:47:40-11:00 (740).
    assert_eq!(a.ready_secs, 6590.0);
    assert_eq!(a.not_ready_secs, 900.0);
    // Logged out before the day (the change before `from`), in 08:50-11:00.
    assert_eq!(a.logged_in_secs, 7800.0);
    assert_close(a.occupancy, 310.0 / 6900.0);
    assert_close(a.utilisation, 310.0 / 7800.0);

    let b = r.rows[1].agent.as_ref().unwrap();
    assert_eq!(b.calls_handled, 2);
    assert_eq!((b.talk_secs, b.wrap_secs), (500.0, 80.0));
    // 09:00:00-09:05:30 and 09:09:10-10:00:25.
    assert_eq!(b.ready_secs, 3405.0);
    assert_eq!(b.logged_in_secs, 3985.0);
    assert_close(b.occupancy, 580.0 / 3985.0);
    assert_close(b.utilisation, 580.0 / 3985.0);
    assert_close(r.rows[1].asa_secs, 27.5);

    let tot = r.total.agent.as_ref().unwrap();
    assert_eq!(tot.calls_handled, 5);
    assert_eq!(tot.logged_in_secs, 7800.0 + 3985.0);
    assert_close(tot.utilisation, 890.0 / 11785.0);
}

#[test]
fn by_interval_in_a_time_zone() {
    let mut p = params(Grouping::Interval);
    p.interval_mins = 30;
    let r = report(&day(), &p).unwrap();
    let rows: Vec<(&str, u32, u32)> = r
        .rows
        .iter()
        .map(|r| (r.key.as_str(), r.offered, r.callbacks_requested))
        .collect();
    assert_eq!(
        rows,
        [
            ("2026-11-27 09:00", 4, 0),
            ("2026-11-27 09:30", 1, 0),
            ("2026-11-27 10:00", 1, 0),
            ("2026-11-27 10:30", 1, 1),
        ]
    );
    // Berlin is UTC+1 in November.
    p.tz = time_zone("Europe/Berlin").unwrap();
    p.interval_mins = 60;
    let r = report(&day(), &p).unwrap();
    assert_eq!(r.rows[0].key, "2026-11-27 10:00");
    assert_eq!(r.time_zone, "Europe/Berlin");
}

#[test]
fn queue_filter_and_agent_time_stops_at_now() {
    let mut p = params(Grouping::Agent);
    p.queues = vec!["support".into()];
    p.now = t("09:30:00");
    let r = report(&day(), &p).unwrap();
    assert_eq!(r.total.offered, 2);
    let bob = r.rows.iter().find(|r| r.key == "bob").unwrap();
    // 09:00-09:30 only.
    assert_eq!(bob.agent.as_ref().unwrap().logged_in_secs, 1800.0);
}

#[test]
fn refuses_bad_ranges_intervals_and_zones() {
    let mut p = params(Grouping::Queue);
    p.range.to = p.range.from;
    assert!(matches!(
        report(&day(), &p),
        Err(ReportError::InvalidRange(_))
    ));
    let mut p = params(Grouping::Interval);
    p.interval_mins = 20;
    assert_eq!(report(&day(), &p), Err(ReportError::InvalidInterval(20)));
    assert!(time_zone("Mars/Olympus").is_err());
    assert_eq!(time_zone("").unwrap(), jiff::tz::TimeZone::UTC);
}

#[test]
fn load_range_reaches_past_the_end_by_the_fcr_window() {
    let p = params(Grouping::Queue);
    assert_eq!(p.load_range().to, p.range.to + 24 * 3_600_000);
}
