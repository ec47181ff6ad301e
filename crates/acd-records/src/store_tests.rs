//! The stores against a real SQLite file: a scripted day of records → rows
//! computed by hand; writing again changes nothing; migrations.

use super::*;
use crate::project::tests::{offered, queued, rec};
use crate::store::Store;
use acd_routing::{AgentState, EndReason, Event, EventRecord, Timestamp};

pub(crate) fn temp_dir(name: &str) -> std::path::PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir =
        std::env::temp_dir().join(format!("acd-records-{name}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn state(seq: u64, at: u64, agent: &str, state: AgentState) -> EventRecord {
    rec(
        seq,
        at,
        Event::AgentStateChanged {
            agent: agent.into(),
            state,
            reason: None,
        },
    )
}

/// alice answers c1 (bob rang too), talks 30 s, wraps up 5 s; c2 abandons.
pub(crate) fn day() -> Vec<EventRecord> {
    vec![
        rec(
            1,
            1_000,
            Event::AgentLoggedIn {
                agent: "alice".into(),
                extension: "1001".into(),
            },
        ),
        state(2, 1_100, "alice", AgentState::Ready),
        rec(3, 10_000, queued("c1", "sales", 10_000)),
        rec(4, 10_010, offered("c1", "alice", &["bob"])),
        rec(
            5,
            12_000,
            Event::CallConnected {
                call: "c1".into(),
                agent: "alice".into(),
            },
        ),
        rec(6, 13_000, queued("c2", "sales", 13_000)),
        rec(
            7,
            17_000,
            Event::CallAbandoned {
                call: "c2".into(),
                queue: "sales".into(),
                waited_ms: 4_000,
                agent: None,
            },
        ),
        rec(
            8,
            42_000,
            Event::CallEnded {
                call: "c1".into(),
                agent: "alice".into(),
                wrap_up_until: Timestamp(47_000),
                by: EndReason::CallerHungUp,
            },
        ),
        state(9, 47_000, "alice", AgentState::Ready),
    ]
}

/// queued, first offered, answered, talk ended, wrap ended, outcome, offers,
/// agent, ended by, caller number.
type C1Row = (
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    String,
    i64,
    Option<String>,
    String,
    String,
);

fn count(conn: &rusqlite::Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).expect(sql)
}

#[test]
fn a_scripted_day_gives_the_rows_computed_by_hand() {
    let dir = temp_dir("day");
    let mut store = SqliteStore::open(&dir.join("sub/records.db")).expect("open");
    assert_eq!(store.migrate().expect("migrate"), crate::schema::latest());
    assert_eq!(store.write(&day()).expect("write"), 9);
    let c = store.connection();
    let row: C1Row = c
        .query_row(
            "SELECT queued_at, first_offered_at, answered_at, talk_ended_at, wrap_ended_at, outcome, offers, agent, ended_by, caller_number FROM calls WHERE call_id = 'c1'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?)),
        )
        .expect("c1");
    assert_eq!(
        row,
        (
            Some(10_000),
            Some(10_010),
            Some(12_000),
            Some(42_000),
            Some(47_000),
            "answered".into(),
            1,
            Some("alice".into()),
            "caller_hung_up".into(),
            "555".into()
        )
    );
    let c2: (Option<i64>, Option<i64>, String) = c
        .query_row(
            "SELECT abandoned_at, waited_ms, outcome FROM calls WHERE call_id = 'c2'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("c2");
    assert_eq!(c2, (Some(17_000), Some(4_000), "abandoned".into()));
    let trail: Vec<String> = c
        .prepare("SELECT kind FROM call_events WHERE call_id = 'c1' ORDER BY at, seq, idx")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .expect("trail");
    assert_eq!(trail, ["queued", "offered", "answered", "ended"]);
    // bob was reserved by the ring-all offer and released when alice answered.
    let bob: Vec<String> = c
        .prepare("SELECT state FROM agent_events WHERE agent = 'bob' ORDER BY at, seq, idx")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .expect("bob");
    assert_eq!(bob, ["reserved", "ready"]);
    let alice: Vec<String> = c
        .prepare("SELECT state FROM agent_events WHERE agent = 'alice' ORDER BY at, seq, idx")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .expect("alice");
    assert_eq!(
        alice,
        [
            "not_ready",
            "ready",
            "reserved",
            "on_call",
            "wrap_up",
            "ready"
        ]
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn writing_a_batch_again_changes_nothing() {
    let dir = temp_dir("again");
    let mut store = SqliteStore::open(&dir.join("records.db")).expect("open");
    store.migrate().expect("migrate");
    let day = day();
    assert_eq!(store.write(&day[..5]).expect("first"), 5);
    assert_eq!(store.write(&day).expect("again"), 4);
    assert_eq!(store.write(&day).expect("third"), 0);
    let c = store.connection();
    assert_eq!(count(c, "SELECT COUNT(*) FROM applied_events"), 9);
    assert_eq!(count(c, "SELECT COUNT(*) FROM call_events"), 6);
    assert_eq!(count(c, "SELECT offers FROM calls WHERE call_id = 'c1'"), 1);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn migrations_run_once_and_a_newer_schema_is_refused() {
    let dir = temp_dir("migrate");
    let path = dir.join("records.db");
    let mut store = SqliteStore::open(&path).expect("open");
    store.migrate().expect("first");
    store.migrate().expect("again is a no-op");
    assert_eq!(
        count(store.connection(), "SELECT COUNT(*) FROM schema_migrations"),
        1
    );
    store
        .connection()
        .execute(
            "INSERT INTO schema_migrations VALUES (999, 'future', 0)",
            [],
        )
        .expect("future");
    match store.migrate() {
        Err(StoreError::SchemaTooNew { found: 999, .. }) => {}
        other => panic!("{other:?}"),
    }
    let _ = std::fs::remove_dir_all(dir);
}
