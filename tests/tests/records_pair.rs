//! The standby's records match the primary's: the separate-process
//! installation of the chaos tests (etcd, an elected distributor pair, two
//! IVR runners, an edge, eight agents), each distributor writing its own
//! SQLite records database from the committed events it sees. The standby
//! is killed (SIGKILL) after the answered calls, records are committed while
//! it is down, and it is started again on the same database and spool: it
//! catches up by a snapshot, the records that snapshot holds come to its
//! writer before it, and those it had already written are skipped, not
//! doubled.
//! After the SIPp run of answered and abandoned calls, the `calls`,
//! `call_events`, `agent_events` and `applied_events` tables of the two
//! databases are the same row for row, and hold SIPp's calls. Port block 144.

mod common;

use std::time::Duration;

use acd_tests::cluster::{Cluster, ClusterOptions, AGENTS};
use acd_tests::flows::trunk;
use acd_tests::metrics::{counter, scrape};
use acd_tests::{TestEnv, LONG, SHORT};
use common::Db;
use tokio::time::Instant;

/// Answered calls, each held 6 s by the caller (2.5 s welcome, then talk).
const ANSWERED: u32 = 6;
const HOLD_MS: u64 = 6_000;
/// Calls whose caller hangs up in the queue while no agent is ready (about
/// 2 s after the welcome).
const ABANDONED: u32 = 3;
const ABANDON_AFTER_MS: u64 = 4_500;

/// The tables compared, each ordered by its key.
const TABLES: &[(&str, &str)] = &[
    ("calls", "call_id"),
    ("call_events", "seq, at, idx"),
    ("agent_events", "seq, at, idx"),
    ("applied_events", "seq, at"),
];

/// Distributor `slot`'s own `[records]` (database and spool in the test's
/// directory; no short abandons, so every hang-up in the queue counts).
fn records_toml(env: &TestEnv, db: &Db, slot: usize) -> String {
    format!(
        "[records]\ndatabase = \"{}\"\nspool = \"{}\"\nshort_abandon_secs = 0\n",
        db.setting(),
        env.log_path(&format!("records-spool-{slot}")).display()
    )
}

/// Every row of `table` ordered by `key`.
async fn dump(db: &Db, table: &str, key: &str) -> Vec<Vec<String>> {
    db.rows(&format!("SELECT * FROM {table} ORDER BY {key}"))
        .await
        .unwrap_or_else(|e| panic!("reading {table}: {e:#}"))
}

/// Waits until `db` holds every call of the run in its final state: the
/// answered ones with their wrap-up ended, the abandoned ones.
async fn await_complete(db: &Db, which: &str) {
    eprintln!("[e2e] waiting for the {which}'s records");
    db.await_count(
        "SELECT COUNT(*) FROM calls WHERE outcome = 'answered' AND wrap_ended_at IS NOT NULL",
        i64::from(ANSWERED),
        LONG,
    )
    .await;
    db.await_count(
        "SELECT COUNT(*) FROM calls WHERE outcome = 'abandoned' AND left_at IS NOT NULL",
        i64::from(ABANDONED),
        LONG,
    )
    .await;
}

/// Waits (bounded) until both databases applied the same records: the
/// last records of the run (agents going not ready, the callers' notes)
/// may reach one writer a moment before the other.
async fn await_same_applied(dbs: &[Db; 2]) {
    const SQL: &str = "SELECT COUNT(*) || '/' || MAX(seq) FROM applied_events";
    let deadline = Instant::now() + SHORT;
    loop {
        let a = dbs[0].rows(SQL).await.unwrap();
        let b = dbs[1].rows(SQL).await.unwrap();
        if a == b {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "applied records (count/last seq) differ: {a:?} vs {b:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Kills distributor `slot` (the standby) and starts it again on its own
/// config (same database and spool), once it had written some records;
/// waits until it is ready again. Records are committed while it is down:
/// it catches up by a snapshot, and its records by the backfill before it.
async fn restart_standby(env: &TestEnv, c: &mut Cluster, slot: usize, db: &Db) {
    db.await_count(
        "SELECT COUNT(*) > 0 FROM calls WHERE answered_at IS NOT NULL",
        1,
        LONG,
    )
    .await;
    let before = db.count("SELECT COUNT(*) FROM applied_events").await;
    c.distributors[slot].kill().await;
    // Records the standby never sees live: every agent goes on a break.
    let mut api = c.leader_client().await.unwrap();
    for i in 1..=AGENTS {
        api.not_ready(&format!("a{i}"), "break").await.unwrap();
    }
    let at = ClusterOptions::default().distributors[slot].clone();
    let config = env.log_path(&format!("distributor-{slot}.toml"));
    let again = env
        .start_elected_distributor_at(
            &format!("distributor-{slot}-again"),
            slot as u16,
            &c.etcd.url,
            &config,
            true,
            &at,
        )
        .await
        .unwrap();
    c.distributors[slot] = again;
    eprintln!("[e2e] standby restarted after writing {before} records");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standbys_records_match_the_primarys() {
    acd_tests::sipp::require_sipp();
    let env = TestEnv::new("records_pair", 144);
    let dbs = [0, 1].map(|i| Db::Sqlite(env.log_path(&format!("records-{i}.db"))));
    let extra = [0, 1].map(|i| records_toml(&env, &dbs[i], i));
    let mut c = Cluster::start_with_extra(
        &env,
        &ClusterOptions::default(),
        [extra[0].as_str(), extra[1].as_str()],
    )
    .await
    .unwrap();
    let primary = c.leader(SHORT).await.unwrap();

    // Answered: eight agents, so none waits long.
    let load = c.load(&env, 3, ANSWERED, HOLD_MS).await.unwrap();
    let answered = load.wait().await;
    let successful = answered.successful;
    c.assert_every_call_served(answered, ANSWERED)
        .await
        .unwrap();
    // The standby dies; the agents go on a break; it comes back.
    restart_standby(&env, &mut c, 1 - primary, &dbs[1 - primary]).await;
    // Abandoned: nobody ready, the callers give up in the queue.
    let mut api = c.leader_client().await.unwrap();
    let abandon = trunk(
        &env,
        "abandon",
        "trunk_call_hangup.xml",
        3,
        "5550100",
        env.ports.observer(0),
    )
    .pause_ms(ABANDON_AFTER_MS)
    .rate(3, ABANDONED)
    .spawn(&env)
    .await
    .unwrap()
    .wait()
    .await;
    abandon.assert_success(u64::from(ABANDONED));
    api.await_queue("sales", "the abandoned calls", LONG, |q| {
        q.abandoned == u64::from(ABANDONED)
    })
    .await
    .unwrap();
    let placed = successful.unwrap_or(0) + abandon.successful.unwrap_or(0);
    assert_eq!(placed, u64::from(ANSWERED + ABANDONED));

    await_complete(&dbs[primary], "primary").await;
    await_complete(&dbs[1 - primary], "standby").await;
    await_same_applied(&dbs).await;
    assert_eq!(
        dbs[primary].count("SELECT COUNT(*) FROM calls").await,
        placed as i64,
        "one record per call SIPp placed"
    );
    for (table, key) in TABLES {
        let p = dump(&dbs[primary], table, key).await;
        let s = dump(&dbs[1 - primary], table, key).await;
        assert!(!p.is_empty(), "{table} is empty");
        if let Some(i) = (0..p.len().max(s.len())).find(|&i| p.get(i) != s.get(i)) {
            panic!(
                "{table} differs at row {i} of {}/{}: primary {:?}, standby {:?}",
                p.len(),
                s.len(),
                p.get(i),
                s.get(i)
            );
        }
        eprintln!("[e2e] {table}: {} rows, identical", p.len());
    }
    for d in &mut c.distributors {
        d.assert_running();
    }
    // It caught up by a snapshot, the records it holds sent before it...
    let backfilled = counter(
        &scrape(&c.distributors[primary].metrics_addr())
            .await
            .unwrap(),
        "acd_replication_backfilled_records_total",
    );
    assert!(
        backfilled.unwrap_or(0.0) > 0.0,
        "the primary backfilled the restarted standby: {backfilled:?}"
    );
    // ...and those it had written before it died were skipped.
    let skipped = counter(
        &scrape(&c.distributors[1 - primary].metrics_addr())
            .await
            .unwrap(),
        "acd_records_duplicates_skipped_total",
    );
    assert!(
        skipped.unwrap_or(0.0) > 0.0,
        "the replayed records were skipped: {skipped:?}"
    );
}
