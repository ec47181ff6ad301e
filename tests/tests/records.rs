//! Call records through the real `acd run`: SIPp callers, an agent phone
//! answering with a known talk time, callers who hang up while no agent is
//! free; the records read back from SQLite and from a PostgreSQL server the
//! test starts, and PostgreSQL stopped under load (calls keep flowing, the
//! spool holds the records, every one arrives once it is back).

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use acd_tests::flows::{register, trunk, SIPP_LIMIT};
use acd_tests::metrics::{counter, scrape};
use acd_tests::postgres::PgServer;
use acd_tests::{AcdClient, AcdProcess, RtpObserver, SippCmd, SippOutcome, TestEnv, LONG};
use common::Db;
use tokio::time::Instant;

/// Calls the agent answers, and how long the agent's phone talks.
const ANSWERED: u32 = 3;
const TALK_MS: u64 = 2_000;
/// Calls whose caller hangs up while the agent is not ready.
const ABANDONED: u32 = 2;
const ABANDON_AFTER_MS: u64 = 3_000;

/// e2e.toml with `[records]` on `db`, its spool in the log directory; no
/// short abandons (this test's callers give up within the default 5 s).
fn config(env: &TestEnv, db: &Db) -> PathBuf {
    let spool = env.log_path("records-spool");
    env.write_config(&format!(
        "[records]\ndatabase = \"{}\"\nspool = \"{}\"\nshort_abandon_secs = 0\n",
        db.setting(),
        spool.display()
    ))
}

struct Site {
    acd: AcdProcess,
    client: AcdClient,
    _caller: RtpObserver,
    _agent_rtp: RtpObserver,
    caller_port: u16,
    agent_port: u16,
}

async fn start(env: &TestEnv, config: &Path) -> Site {
    let acd = env.start_run_with(config, &[]).await.unwrap();
    let client = AcdClient::connect(&acd.grpc_url()).await.unwrap();
    let caller = RtpObserver::bind("caller", env.ports.observer(0))
        .await
        .unwrap();
    let agent_rtp = RtpObserver::bind("agent", env.ports.observer(1))
        .await
        .unwrap();
    Site {
        acd,
        client,
        caller_port: caller.port(),
        agent_port: agent_rtp.port(),
        _caller: caller,
        _agent_rtp: agent_rtp,
    }
}

/// alice's phone (SIPp slot 0) registered as 1001, answering `calls` calls
/// and hanging up each after `talk_ms`; alice logged in and ready.
async fn alice_answers(
    env: &TestEnv,
    site: &mut Site,
    calls: u32,
    talk_ms: u64,
) -> acd_tests::SippRun {
    let mut phone = SippCmd::new("alice-phone", "agent_answer_hangup.xml", env.ports.sipp(0))
        .key("rtpport", site.agent_port)
        .pause_ms(talk_ms)
        .limit(SIPP_LIMIT);
    phone.calls = calls;
    let phone = phone.spawn(env).await.unwrap();
    register(env, 1, "1001", "secret1001", env.ports.sipp(0).sip)
        .await
        .assert_success(1);
    site.client.login("alice", "1001").await.unwrap();
    site.client.ready("alice").await.unwrap();
    phone
}

/// `calls` trunk calls to sales from SIPp slot `slot`, 2 per second; with
/// `hangup_after_ms` each caller hangs up by itself after that long.
async fn callers(
    env: &TestEnv,
    site: &Site,
    name: &str,
    slot: u16,
    calls: u32,
    hangup_after_ms: Option<u64>,
) -> SippOutcome {
    let scenario = match hangup_after_ms {
        Some(_) => "trunk_call_hangup.xml",
        None => "trunk_call.xml",
    };
    let mut cmd = trunk(env, name, scenario, slot, "5550100", site.caller_port).rate(2, calls);
    if let Some(ms) = hangup_after_ms {
        cmd = cmd.pause_ms(ms);
    }
    cmd.spawn(env).await.unwrap().wait().await
}

/// The answered and abandoned calls, then the records checked against them.
async fn calls_and_their_records(env: &TestEnv, site: &mut Site, db: &Db) {
    let phone = alice_answers(env, site, ANSWERED, TALK_MS).await;
    callers(env, site, "answered", 2, ANSWERED, None)
        .await
        .assert_success(u64::from(ANSWERED));
    phone.wait().await.assert_success(u64::from(ANSWERED));
    // Nobody free: these callers hang up in the queue.
    site.client.not_ready("alice", "break").await.unwrap();
    callers(env, site, "abandoned", 3, ABANDONED, Some(ABANDON_AFTER_MS))
        .await
        .assert_success(u64::from(ABANDONED));

    let total = i64::from(ANSWERED + ABANDONED);
    db.await_count(
        "SELECT COUNT(*) FROM calls WHERE outcome IN ('answered', 'abandoned')",
        total,
        LONG,
    )
    .await;
    assert_eq!(db.count("SELECT COUNT(*) FROM calls").await, total);
    assert_eq!(
        db.count("SELECT COUNT(*) FROM calls WHERE outcome = 'answered'")
            .await,
        i64::from(ANSWERED)
    );
    assert_eq!(
        db.count(
            // The welcome prompt takes most of the caller's patience.
            "SELECT COUNT(*) FROM calls WHERE outcome = 'abandoned' AND agent IS NULL \
             AND waited_ms > 0 AND abandoned_at - queued_at BETWEEN waited_ms - 50 AND waited_ms + 50"
        )
        .await,
        i64::from(ABANDONED)
    );
    // Talk time: the phone's pause, give or take set-up and a loaded machine.
    let talk = db
        .rows(
            "SELECT talk_ended_at - answered_at, agent, ended_by FROM calls \
             WHERE outcome = 'answered' ORDER BY answered_at",
        )
        .await
        .unwrap();
    for row in &talk {
        let ms: i64 = row[0].parse().unwrap();
        assert!(
            (TALK_MS as i64 - 300..TALK_MS as i64 + 2_000).contains(&ms),
            "talk of {ms} ms, phone talked {TALK_MS} ms: {talk:?}"
        );
        assert_eq!(
            (row[1].as_str(), row[2].as_str()),
            ("alice", "agent_hung_up")
        );
    }
    // The trail of each answered call, in order.
    let answered = db
        .rows("SELECT call_id FROM calls WHERE outcome = 'answered' ORDER BY call_id")
        .await
        .unwrap();
    for call in answered {
        let trail = db
            .rows(&format!(
                "SELECT kind FROM call_events WHERE call_id = '{}' \
                 AND kind IN ('queued', 'offered', 'answered', 'ended') ORDER BY at, seq, idx",
                call[0]
            ))
            .await
            .unwrap();
        let kinds: Vec<&str> = trail.iter().map(|r| r[0].as_str()).collect();
        assert_eq!(
            kinds,
            ["queued", "offered", "answered", "ended"],
            "{}",
            call[0]
        );
    }
    // alice's day: each answered call took her through reserved, on call, wrap-up.
    for state in ["reserved", "on_call", "wrap_up"] {
        assert_eq!(
            db.count(&format!(
                "SELECT COUNT(*) FROM agent_events WHERE agent = 'alice' AND state = '{state}'"
            ))
            .await,
            i64::from(ANSWERED),
            "{state}"
        );
    }
    assert_eq!(
        db.count("SELECT COUNT(*) FROM agent_events WHERE agent = 'alice' AND state = 'not_ready' AND reason = 'break'")
            .await,
        1
    );
    site.acd.assert_running();
}

#[tokio::test]
async fn records_of_a_sipp_run_land_in_sqlite() {
    let env = TestEnv::new("records_sqlite", 135);
    let db = Db::Sqlite(env.log_path("data/records.db"));
    let since = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(60);
    let mut site = start(&env, &config(&env, &db)).await;
    calls_and_their_records(&env, &mut site, &db).await;
    reports_of_the_run(&site, &db, since).await;
}

/// `acdctl report` through the same `acd run`'s Report RPC: the figures of
/// the calls SIPp placed, AHT as the records' talk + wrap-up.
async fn reports_of_the_run(site: &Site, db: &Db, since: jiff::Timestamp) {
    let url = site.acd.grpc_url();
    let by_queue = common::report_json(&url, since, &["--by", "queue"]).await;
    let sales = common::report_row(&by_queue, "sales");
    for (k, want) in [
        ("offered", ANSWERED + ABANDONED),
        ("answered", ANSWERED),
        ("abandoned", ABANDONED),
        ("short_abandons", 0),
    ] {
        assert_eq!(common::fig(sales, k), f64::from(want), "{k}: {sales}");
    }
    // AHT: the records' mean talk + wrap-up, and that is the scenario's
    // talk plus at most the 1 s wrap-up (give or take set-up).
    let handle = db
        .rows(
            "SELECT (wrap_ended_at - answered_at) FROM calls \
             WHERE outcome = 'answered' AND wrap_ended_at IS NOT NULL",
        )
        .await
        .unwrap();
    assert_eq!(
        handle.len(),
        ANSWERED as usize,
        "every wrap-up ended: {handle:?}"
    );
    let mean_ms = handle
        .iter()
        .map(|r| r[0].parse::<f64>().unwrap())
        .sum::<f64>()
        / f64::from(ANSWERED);
    let aht = common::fig(sales, "aht_secs");
    assert!(
        (aht - mean_ms / 1000.0).abs() < 0.01,
        "AHT {aht} s, the records say {mean_ms} ms"
    );
    let talk = TALK_MS as f64 / 1000.0;
    assert!(
        (talk - 0.3..talk + 1.0 + 2.0).contains(&aht),
        "AHT {aht} s for {talk} s talk and 1 s wrap-up"
    );
    assert_eq!(
        common::fig(&by_queue["total"], "offered"),
        f64::from(ANSWERED + ABANDONED)
    );

    let by_agent = common::report_json(&url, since, &["--by", "agent"]).await;
    let alice = &common::report_row(&by_agent, "alice")["agent"];
    assert_eq!(
        common::fig(alice, "calls_handled"),
        f64::from(ANSWERED),
        "{by_agent}"
    );
    assert!(
        common::fig(alice, "talk_secs") >= talk * f64::from(ANSWERED) - 1.0,
        "alice's talk time: {alice}"
    );
}

#[tokio::test]
async fn records_of_a_sipp_run_land_in_postgresql() {
    let env = TestEnv::new("records_postgres", 136);
    let pg = PgServer::start_new(&env).unwrap();
    let db = Db::Postgres(pg.url.clone());
    let mut site = start(&env, &config(&env, &db)).await;
    calls_and_their_records(&env, &mut site, &db).await;
    drop(pg);
}

/// Records written before, during and after an outage of PostgreSQL: calls
/// are served while it is down, the pending gauge rises, and once it is
/// back every record arrives exactly once.
#[tokio::test]
async fn postgresql_stopped_under_load_loses_no_record() {
    // One agent, 0.2 s talk and 1 s wrap-up each: about 16 s of calls.
    const CALLS: u32 = 12;
    let env = TestEnv::new("records_postgres_outage", 137);
    let pg = PgServer::start_new(&env).unwrap();
    let db = Db::Postgres(pg.url.clone());
    let mut site = start(&env, &config(&env, &db)).await;
    let metrics = site.acd.metrics_addr();
    // Written while up: alice's phone, login and ready.
    let phone = alice_answers(&env, &mut site, CALLS, 200).await;
    db.await_count(
        "SELECT COUNT(*) FROM agent_events WHERE agent = 'alice' AND state = 'ready'",
        1,
        LONG,
    )
    .await;

    pg.stop().unwrap();
    // Calls keep flowing: each is answered while the database is down.
    callers(&env, &site, "during-outage", 2, CALLS, None)
        .await
        .assert_success(u64::from(CALLS));
    let pending = counter(&scrape(&metrics).await.unwrap(), "acd_records_pending").unwrap_or(0.0);
    assert!(
        pending >= f64::from(CALLS) * 4.0,
        "each call's records wait in the spool while the database is down: {pending} pending"
    );

    pg.start().unwrap();
    phone.wait().await.assert_success(u64::from(CALLS));
    // The last record is alice leaving her last wrap-up; nothing follows it.
    db.await_count(
        "SELECT COUNT(*) FROM calls WHERE outcome = 'answered' AND wrap_ended_at IS NOT NULL",
        i64::from(CALLS),
        LONG,
    )
    .await;
    await_metric(&metrics, "acd_records_pending", 0.0).await;
    let spooled = counter(
        &scrape(&metrics).await.unwrap(),
        "acd_records_spooled_total",
    );
    assert_eq!(
        Some(db.count("SELECT COUNT(*) FROM applied_events").await as f64),
        spooled,
        "every record spooled is in the database, once"
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM calls").await,
        i64::from(CALLS)
    );
    assert_eq!(
        db.count(
            "SELECT COUNT(*) FROM (SELECT call_id, kind FROM call_events \
             GROUP BY call_id, kind HAVING COUNT(*) > 1) d"
        )
        .await,
        0,
        "no trail row twice"
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM call_events WHERE kind = 'answered'")
            .await,
        i64::from(CALLS)
    );
    let text = scrape(&metrics).await.unwrap();
    assert_eq!(counter(&text, "acd_records_pending"), Some(0.0));
    assert!(
        counter(&text, "acd_records_db_errors_total").unwrap_or(0.0) >= 1.0,
        "the outage was seen"
    );
    site.acd.assert_running();
    drop(pg);
}

/// Polls metric `name` until it reads `want`.
async fn await_metric(addr: &str, name: &str, want: f64) {
    let deadline = Instant::now() + LONG;
    loop {
        let got = counter(&scrape(addr).await.unwrap(), name);
        if got == Some(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} is {got:?}, wanted {want}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
