//! Hand-computed days: every expected figure below is worked out in the
//! comments from the scripted records.

use super::*;
use acd_routing::{CallerInfo, OverflowReason, Seq, Term};

/// 2026-11-20 00:00 UTC.
const T0: i64 = 1_795_132_800_000;
const H: i64 = 3_600_000;
const M: i64 = 60_000;
const S: i64 = 1_000;

fn config() -> RoutingConfig {
    serde_json::from_value(serde_json::json!({
        "queues": [
            {"id": "sales", "service_level": {"percent": 80, "within_ms": 20000}},
            {"id": "support", "service_level": {"percent": 90, "within_ms": 30000}}
        ],
        "agents": [],
        "default_wrap_up_ms": 30000,
        "offer_timeout_ms": 30000
    }))
    .unwrap()
}

fn board(zone: Option<&str>) -> DayBoard {
    let settings = BoardSettings {
        interval_mins: 30,
        time_zone: zone.map(str::to_string),
    };
    let (b, err) = DayBoard::new(&settings, &config());
    assert_eq!(err, None);
    b
}

fn t(at: i64) -> Timestamp {
    Timestamp(at as u64)
}

fn rec(at: i64, event: Event) -> EventRecord {
    EventRecord {
        seq: Seq(0),
        term: Term(1),
        at: t(at),
        event,
        origin: None,
    }
}

fn q(id: &str) -> QueueId {
    QueueId(id.into())
}
fn c(id: &str) -> CallId {
    CallId(id.into())
}
fn a(id: &str) -> AgentId {
    AgentId(id.into())
}

fn queued(call: &str, queue: &str, at: i64) -> EventRecord {
    rec(
        at,
        Event::CallQueued {
            call: c(call),
            queue: q(queue),
            priority: 0,
            caller: CallerInfo::default(),
            enqueued_at: t(at),
            skills: Default::default(),
        },
    )
}
fn connected(call: &str, agent: &str, at: i64) -> EventRecord {
    rec(
        at,
        Event::CallConnected {
            call: c(call),
            agent: a(agent),
        },
    )
}
fn ended(call: &str, agent: &str, at: i64) -> EventRecord {
    rec(
        at,
        Event::CallEnded {
            call: c(call),
            agent: a(agent),
            wrap_up_until: t(at + 30 * S),
            by: Default::default(),
        },
    )
}
fn ready(agent: &str, at: i64) -> EventRecord {
    rec(
        at,
        Event::AgentStateChanged {
            agent: a(agent),
            state: AgentState::Ready,
            reason: None,
        },
    )
}
fn abandoned(call: &str, queue: &str, at: i64) -> EventRecord {
    rec(
        at,
        Event::CallAbandoned {
            call: c(call),
            queue: q(queue),
            waited_ms: 0,
            agent: None,
        },
    )
}

/// The scripted morning (UTC, 30-minute intervals; 08:00 is interval 16):
/// - c1 sales 08:00:00, answered 08:00:10 (10 s: within 20 s), talk 120 s,
///   alice's wrap-up 30 s → handle 150 s;
/// - c2 sales 08:05:00, answered 08:05:30 (30 s: late), talk 180 s, bob
///   logs out 30 s into wrap-up → handle 210 s;
/// - c3 sales 08:10:00, abandoned 08:10:40;
/// - c4 sales 08:35:00 (interval 17), answered 08:35:05 (within), talking;
/// - c5 support 08:20:00, overflows into sales 08:40:00 (sales, interval
///   17), waiting.
fn morning() -> Vec<EventRecord> {
    let at = T0 + 8 * H;
    vec![
        queued("c1", "sales", at),
        connected("c1", "alice", at + 10 * S),
        queued("c2", "sales", at + 5 * M),
        ended("c1", "alice", at + 2 * M + 10 * S),
        ready("alice", at + 2 * M + 40 * S),
        connected("c2", "bob", at + 5 * M + 30 * S),
        ended("c2", "bob", at + 8 * M + 30 * S),
        rec(at + 9 * M, Event::AgentLoggedOut { agent: a("bob") }),
        queued("c3", "sales", at + 10 * M),
        abandoned("c3", "sales", at + 10 * M + 40 * S),
        queued("c5", "support", at + 20 * M),
        queued("c4", "sales", at + 35 * M),
        connected("c4", "alice", at + 35 * M + 5 * S),
        rec(
            at + 40 * M,
            Event::CallOverflowed {
                call: c("c5"),
                from: q("support"),
                reason: OverflowReason::MaxWait,
                action: OverflowAction::Queue(q("sales")),
                waited_ms: 20 * 60_000,
            },
        ),
    ]
}

fn live(queues: &[&str]) -> Live {
    Live {
        role: "primary".into(),
        queues: queues
            .iter()
            .map(|id| QueueView {
                id: q(id),
                waiting: 0,
                offering: 0,
                longest_wait_since: None,
                agents_ready: 0,
                agents_logged_in: 0,
                offered: 0,
                answered: 0,
                abandoned: 0,
                timed_out: 0,
                overflowed: 0,
                answered_in_sl: 0,
                callbacks_failed: 0,
            })
            .collect(),
        agents: AgentCounts {
            ready: 1,
            on_call: 2,
            not_ready: 1,
            logged_out: 3,
            ..Default::default()
        },
    }
}

#[test]
fn a_scripted_morning_by_queue_and_interval() {
    let mut b = board(None);
    for r in morning() {
        b.apply(&r);
    }
    // sales: offered c1 c2 c3 (16) + c4 c5 (17) = 5; answered c1 c2 c4 = 3,
    // within target c1 c4 = 2; abandoned c3; handled c1 c2: 150 + 210 s.
    assert_eq!(
        b.today_of(&q("sales")),
        Figures {
            offered: 5,
            answered: 3,
            answered_in_sl: 2,
            abandoned: 1,
            handled: 2,
            handle_ms: 360_000,
        }
    );
    assert_eq!(b.today_of(&q("support")).offered, 1);

    // 08:45: the current interval is 17 (08:30), half gone.
    let v = b.view(t(T0 + 8 * H + 45 * M), &live(&["sales", "support"]));
    assert_eq!(v.day, "2026-11-20");
    assert_eq!(v.time_zone, "UTC");
    assert_eq!(v.staffing.interval, "08:30");
    let sales = &v.queues[0];
    assert_eq!(sales.sl_percent, Some(40.0), "2 of 5 within 20 s");
    assert!(sales.below_target, "40 % < 80 %");
    assert_eq!(sales.aht_secs, Some(180.0), "360 s over 2 calls");
    assert_eq!((sales.target_percent, sales.target_secs), (80, 20));
    // Traffic over the last 30 min: interval 17's 2 calls + half of 16's 3.
    let expected = staffing::agents_needed_c(3.5, 1800.0, 180.0, 0.8, 20.0);
    assert_eq!(sales.required, Some(expected));
    let support = &v.queues[1];
    assert_eq!(support.sl_percent, Some(0.0));
    assert_eq!(support.required, None, "calls came, no handle time yet");
    assert_eq!(v.staffing.required, Some(expected));
    assert_eq!(v.staffing.logged_in, 4, "ready 1 + on call 2 + not ready 1");

    // Chart: 00:00 … 08:30; interval 16 = sales 3 + support 1 offered, 1
    // within (c1): 25 %; interval 17 = c4 + c5 (into sales), 1 within: 50 %.
    assert_eq!(v.intervals.len(), 18);
    assert_eq!(v.intervals[0].label, "00:00");
    assert_eq!(v.intervals[0].sl_percent, None);
    assert_eq!(v.intervals[16].label, "08:00");
    assert_eq!((v.intervals[16].offered, v.intervals[16].answered), (4, 2));
    assert_eq!(v.intervals[16].sl_percent, Some(25.0));
    assert_eq!(v.intervals[16].abandoned, 1);
    assert_eq!(v.intervals[17].sl_percent, Some(50.0));
}

#[test]
fn a_record_applied_twice_counts_once() {
    let mut once = board(None);
    let mut twice = board(None);
    for r in morning() {
        once.apply(&r);
        twice.apply(&r);
        twice.apply(&r);
    }
    for queue in ["sales", "support"] {
        assert_eq!(once.today_of(&q(queue)), twice.today_of(&q(queue)));
    }
}

#[test]
fn midnight_starts_a_new_day() {
    let mut b = board(None);
    let late = T0 + 23 * H + 59 * M;
    b.apply(&queued("old", "sales", late));
    b.apply(&queued("c1", "sales", late + 10 * S));
    b.apply(&connected("c1", "alice", late + 15 * S));
    assert_eq!(b.today_of(&q("sales")).answered, 1);
    // 00:00:30 next day: the call from 23:59 is answered, 30 s after queuing
    // on the previous day; a new call comes.
    let next = T0 + 24 * H;
    b.apply(&connected("old", "bob", next + 30 * S));
    b.apply(&queued("n1", "sales", next + 40 * S));
    let today = b.today_of(&q("sales"));
    assert_eq!((today.offered, today.answered), (1, 0), "{today:?}");
    let v = b.view(t(next + M), &live(&["sales"]));
    assert_eq!(v.day, "2026-11-21");
    assert_eq!(v.intervals.len(), 1);
    // Yesterday's talk still ends: no handle time lands in today's figures.
    b.apply(&ended("c1", "alice", next + 2 * M));
    assert_eq!(b.today_of(&q("sales")).handled, 0);
}

#[test]
fn the_day_follows_the_configured_zone() {
    // Berlin is UTC+1 in November: its 20th starts at 19th 23:00 UTC.
    let mut b = board(Some("Europe/Berlin"));
    b.apply(&queued("c1", "sales", T0 - 30 * M));
    b.apply(&connected("c1", "alice", T0 - 30 * M + 5 * S));
    let v = b.view(t(T0 - 20 * M), &live(&["sales"]));
    assert_eq!(v.day, "2026-11-20");
    assert_eq!(v.time_zone, "Europe/Berlin");
    assert_eq!(v.intervals.len(), 2);
    assert_eq!(v.intervals[1].label, "00:30");
    assert_eq!(v.intervals[1].sl_percent, Some(100.0));
    assert_eq!(
        b.today(t(T0)),
        TimeRange {
            from: T0 - H,
            to: T0 + 23 * H
        }
    );
}

#[test]
fn an_unknown_zone_falls_back_to_utc_and_says_so() {
    let settings = BoardSettings {
        interval_mins: 15,
        time_zone: Some("Mars/Olympus".into()),
    };
    let (b, err) = DayBoard::new(&settings, &config());
    assert!(err.is_some_and(|e| e.contains("Mars/Olympus")));
    assert_eq!(b.zone_name, "UTC");
}

fn row(id: &str, queue: &str, queued: i64) -> CallRow {
    CallRow {
        call_id: id.into(),
        first_queue: Some(queue.into()),
        queue: Some(queue.into()),
        queued_at: Some(queued),
        outcome: "waiting".into(),
        ..CallRow::default()
    }
}

#[test]
fn seeding_counts_the_database_and_live_records_once() {
    let at = T0 + 8 * H;
    let mut b = board(None);
    // Live before the seed arrives: c9 queued after the restart.
    b.apply(&queued("c9", "sales", at + 40 * M));
    let data = Dataset {
        calls: vec![
            // Answered in 15 s, talk 100 s, wrap 20 s: handle 120 s.
            CallRow {
                answered_at: Some(at + 15 * S),
                talk_ended_at: Some(at + 115 * S),
                wrap_ended_at: Some(at + 135 * S),
                agent: Some("alice".into()),
                outcome: "answered".into(),
                ..row("s1", "sales", at)
            },
            CallRow {
                abandoned_at: Some(at + 60 * S),
                outcome: "abandoned".into(),
                ..row("s2", "sales", at + M)
            },
            // Overflowed from support into sales, still waiting: offered in both.
            CallRow {
                first_queue: Some("support".into()),
                ..row("s3", "sales", at + 2 * M)
            },
            // Also streamed live already: skipped.
            row("c9", "sales", at + 40 * M),
        ],
        ..Dataset::default()
    };
    b.seed(&data, t(at + 41 * M));
    assert_eq!(
        b.today_of(&q("sales")),
        Figures {
            offered: 4,
            answered: 1,
            answered_in_sl: 1,
            abandoned: 1,
            handled: 1,
            handle_ms: 120_000,
        }
    );
    assert_eq!(b.today_of(&q("support")).offered, 1);
    // The seeded waiting call is answered live (3 min after queuing: late).
    b.apply(&connected("s3", "bob", at + 5 * M));
    // A repeat of s1's queuing from the live stream changes nothing.
    b.apply(&queued("s1", "sales", at));
    let sales = b.today_of(&q("sales"));
    assert_eq!(
        (sales.offered, sales.answered, sales.answered_in_sl),
        (4, 2, 1)
    );
}

#[test]
fn agents_by_state() {
    let states = [
        AgentState::Ready,
        AgentState::OnCall { call: c("x") },
        AgentState::WrapUp { until: t(0) },
        AgentState::LoggedOut,
        AgentState::NotReady,
        AgentState::Reserved { call: c("y") },
        AgentState::Ready,
    ];
    let n = AgentCounts::of(&states);
    assert_eq!(
        n,
        AgentCounts {
            ready: 2,
            reserved: 1,
            on_call: 1,
            wrap_up: 1,
            not_ready: 1,
            logged_out: 1
        }
    );
    assert_eq!(n.logged_in(), 6);
}

/// A call still waiting within its target does not count against the
/// service level yet; once it waited past the target it does.
#[test]
fn a_call_waiting_within_the_target_does_not_lower_the_service_level() {
    let mut b = board(None);
    let start = T0 + 9 * H;
    // sales (80 % in 20 s): one call answered after 10 s, one still waiting.
    b.apply(&queued("c1", "sales", start));
    b.apply(&connected("c1", "alice", start + 10 * S));
    b.apply(&queued("c2", "sales", start + 60 * S));

    // 5 s into c2's wait: only c1 is settled, answered in time: 1/1.
    let v = b.view(t(start + 65 * S), &live(&["sales"]));
    assert_eq!(v.queues[0].sl_percent, Some(100.0));
    assert!(!v.queues[0].below_target);
    assert_eq!(v.intervals.last().and_then(|i| i.sl_percent), Some(100.0));

    // 25 s into c2's wait, past 20 s: 1 of 2 in time.
    let v = b.view(t(start + 85 * S), &live(&["sales"]));
    assert_eq!(v.queues[0].sl_percent, Some(50.0));
    assert!(v.queues[0].below_target);
}
