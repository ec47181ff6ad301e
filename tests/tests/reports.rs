//! Reports on a real records database: `acd run` with `[records]` on an
//! SQLite file this test pre-fills with a scripted day (the same day as
//! `acd-records`' report unit test, every figure worked out by hand there),
//! then `acdctl report` through the distributor's Report RPC and with `--db`,
//! and `acdctl report staffing` on a busy half hour with known Erlang C
//! figures. Port block 138.

use std::path::Path;

use acd_tests::cli::acdctl;
use acd_tests::TestEnv;
use serde_json::Value;

const H: i64 = 3_600_000;

/// The scripted day: two days before today (UTC), so it is wholly past.
fn day_start() -> i64 {
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    let d = today.checked_sub(jiff::Span::new().days(2)).unwrap();
    d.to_zoned(jiff::tz::TimeZone::UTC)
        .unwrap()
        .timestamp()
        .as_millisecond()
}

fn date_of(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .unwrap()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        .to_string()
}

/// `hh:mm:ss` into the day starting at `day`.
fn at(day: i64, hms: &str) -> i64 {
    let p: Vec<i64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
    day + p[0] * H + p[1] * 60_000 + p[2] * 1000
}

struct Call<'a> {
    id: &'a str,
    queue: &'a str,
    queued: i64,
    number: &'a str,
    /// (agent, wait s, talk s, wrap s)
    answered: Option<(&'a str, i64, i64, Option<i64>)>,
    abandoned_after: Option<i64>,
    survey: Option<i32>,
    callback_of: Option<&'a str>,
    outcome: &'a str,
}

fn call<'a>(id: &'a str, queue: &'a str, queued: i64, number: &'a str) -> Call<'a> {
    Call {
        id,
        queue,
        queued,
        number,
        answered: None,
        abandoned_after: None,
        survey: None,
        callback_of: None,
        outcome: "waiting",
    }
}

fn num(v: Option<i64>) -> String {
    v.map_or("NULL".into(), |v| v.to_string())
}

fn text(v: Option<&str>) -> String {
    v.map_or("NULL".into(), |v| format!("'{}'", v.replace('\'', "''")))
}

/// The call's row as one INSERT both SQLite and PostgreSQL take.
fn insert(sql: &mut String, c: &Call) {
    let s = |x: i64| x * 1000;
    let (agent, answered_at, talk_end, wrap_end) = match c.answered {
        Some((a, wait, talk, wrap)) => {
            let ans = c.queued + s(wait);
            (
                Some(a),
                Some(ans),
                Some(ans + s(talk)),
                wrap.map(|w| ans + s(talk) + s(w)),
            )
        }
        None => (None, None, None, None),
    };
    let arrived = c.callback_of.is_none().then_some(c.queued);
    let values = [
        text(Some(c.id)),
        num(arrived),
        text(Some(c.number)),
        text(Some(c.queue)),
        text(Some(c.queue)),
        num(Some(c.queued)),
        text(agent),
        num(answered_at),
        num(talk_end),
        num(wrap_end),
        num(c.abandoned_after.map(|w| c.queued + s(w))),
        num(c.abandoned_after.map(s)),
        text(Some(c.outcome)),
        text(c.callback_of),
        num(c.survey.map(i64::from)),
    ];
    sql.push_str(&format!(
        "INSERT INTO calls (call_id, arrived_at, caller_number, first_queue, queue, queued_at, \
         agent, answered_at, talk_ended_at, wrap_ended_at, abandoned_at, waited_ms, outcome, \
         callback_of, survey_score) VALUES ({});\n",
        values.join(", ")
    ));
}

/// The scripted day (see `acd-records`' `report/tests.rs`) on `day`, plus
/// on the day before a busy half hour in queue `bulk`: 100 calls
/// 09:00-09:30, each answered at once, 150 s talk + 30 s wrap-up. As SQL
/// both dialects run.
fn day_sql(day: i64) -> String {
    let mut sql = String::new();
    let t = |hms| at(day, hms);
    let next = day + 24 * H;
    let calls = [
        call("c0", "sales", day - H, "200"),
        Call {
            answered: Some(("alice", 10, 120, Some(30))),
            survey: Some(5),
            outcome: "answered",
            ..call("c1", "sales", t("09:00:00"), "100")
        },
        Call {
            answered: Some(("bob", 30, 200, Some(20))),
            survey: Some(3),
            outcome: "answered",
            ..call("c2", "sales", t("09:05:00"), "200")
        },
        Call {
            abandoned_after: Some(3),
            outcome: "abandoned",
            ..call("c3", "sales", t("09:10:00"), "300")
        },
        Call {
            abandoned_after: Some(40),
            outcome: "abandoned",
            ..call("c4", "sales", t("09:20:00"), "400")
        },
        Call {
            answered: Some(("alice", 5, 60, None)),
            outcome: "answered",
            ..call("c5", "sales", t("09:40:00"), "100")
        },
        Call {
            answered: Some(("bob", 25, 300, Some(60))),
            survey: Some(4),
            outcome: "answered",
            ..call("c6", "support", t("10:00:00"), "600")
        },
        Call {
            outcome: "callback",
            ..call("c7", "support", t("10:30:00"), "700")
        },
        Call {
            answered: Some(("alice", 60, 100, None)),
            callback_of: Some("c7"),
            outcome: "answered",
            ..call("c7:cb", "support", t("10:45:00"), "")
        },
        call("c8", "sales", at(next, "08:00:00"), "200"),
        call("c9", "support", at(next, "12:00:00"), "600"),
    ];
    for c in &calls {
        insert(&mut sql, c);
    }
    let agent_events = [
        (day - H, "alice", "logged_out"),
        (t("08:50:00"), "alice", "ready"),
        (t("09:00:00"), "bob", "ready"),
        (t("09:00:10"), "alice", "on_call"),
        (t("09:02:10"), "alice", "wrap_up"),
        (t("09:02:40"), "alice", "ready"),
        (t("09:05:30"), "bob", "on_call"),
        (t("09:08:50"), "bob", "wrap_up"),
        (t("09:09:10"), "bob", "ready"),
        (t("09:40:05"), "alice", "on_call"),
        (t("09:41:05"), "alice", "ready"),
        (t("10:00:00"), "alice", "not_ready"),
        (t("10:00:25"), "bob", "on_call"),
        (t("10:05:25"), "bob", "wrap_up"),
        (t("10:06:25"), "bob", "logged_out"),
        (t("10:15:00"), "alice", "ready"),
        (t("10:46:00"), "alice", "on_call"),
        (t("10:47:40"), "alice", "ready"),
        (t("11:00:00"), "alice", "logged_out"),
    ];
    for (seq, (when, agent, state)) in agent_events.iter().enumerate() {
        sql.push_str(&format!(
            "INSERT INTO agent_events (seq, at, idx, agent, state) VALUES ({}, {when}, 0, '{agent}', '{state}');\n",
            seq + 1
        ));
    }
    let busy = day - 24 * H;
    for i in 0..100i64 {
        let id = format!("bulk{i}");
        let number = format!("9{i:04}");
        // Spread evenly over 09:00-09:30 (18 s apart).
        let queued = at(busy, "09:00:00") + i * 18_000;
        insert(
            &mut sql,
            &Call {
                answered: Some(("carol", 0, 150, Some(30))),
                outcome: "answered",
                ..call(&id, "bulk", queued, &number)
            },
        );
    }
    sql
}

/// Migration 1 recorded as applied (as the writer would have), in SQLite.
fn prefill_sqlite(path: &Path, day: i64) {
    let db = rusqlite::Connection::open(path).unwrap();
    db.execute_batch(acd_records::schema::MIGRATIONS_TABLE)
        .unwrap();
    for m in acd_records::schema::MIGRATIONS {
        db.execute_batch(m.sqlite).unwrap();
        db.execute_batch(&migrated(m)).unwrap();
    }
    db.execute_batch(&day_sql(day)).unwrap();
}

fn migrated(m: &acd_records::schema::Migration) -> String {
    format!(
        "INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES ({}, {}, 0);",
        m.version,
        text(Some(m.name))
    )
}

fn close(v: &Value, want: f64) -> bool {
    v.as_f64().is_some_and(|x| (x - want).abs() < 1e-9)
}

#[track_caller]
fn assert_fig(row: &Value, key: &str, want: f64) {
    assert!(
        close(&row[key], want),
        "{key}: {} != {want} in {row}",
        row[key]
    );
}

fn row<'a>(report: &'a Value, key: &str) -> &'a Value {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == key)
        .unwrap_or_else(|| panic!("no row {key} in {report}"))
}

#[tokio::test]
async fn reports_from_a_prefilled_day_through_the_rpc_and_the_database() {
    let env = TestEnv::new("reports", 138);
    let db = env.log_path("r.db");
    let day = day_start();
    prefill_sqlite(&db, day);
    let spool = env.log_path("spool");
    let records = format!(
        "\n[records]\ndatabase = \"sqlite:{}\"\nspool = \"{}\"\nshort_abandon_secs = 5\nfcr_window_hours = 24\n",
        db.display(),
        spool.display()
    );
    let config = targets_config(&env);
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text + &records).unwrap();
    let acd = env.start_run_with(&config, &[]).await.unwrap();
    let url = acd.grpc_url();
    let date = date_of(day);

    // By queue, JSON, through the Report RPC: the hand-computed figures.
    let out = acdctl(&url, &["report", "--from", &date, "--format", "json"])
        .await
        .unwrap();
    assert!(out.success(), "{}", out.stderr);
    let by_queue: Value = serde_json::from_str(&out.stdout).unwrap();
    let sales = row(&by_queue, "sales");
    for (k, v) in [
        ("offered", 5.0),
        ("answered", 3.0),
        ("abandoned", 1.0),
        ("short_abandons", 1.0),
        ("abandon_rate", 0.25),
        ("asa_secs", 15.0),
        ("service_level", 0.5),
        ("target_percent", 80.0),
        ("aht_secs", 430.0 / 3.0),
        ("fcr_rate", 1.0 / 3.0),
        ("satisfaction", 4.0),
        ("surveys", 2.0),
    ] {
        assert_fig(sales, k, v);
    }
    let support = row(&by_queue, "support");
    for (k, v) in [
        ("offered", 2.0),
        ("answered", 1.0),
        ("service_level", 0.5),
        ("target_percent", 90.0),
        ("target_secs", 30.0),
        ("aht_secs", 360.0),
        ("fcr_rate", 1.0),
        ("callbacks_requested", 1.0),
        ("callbacks_completed", 1.0),
    ] {
        assert_fig(support, k, v);
    }
    let total = &by_queue["total"];
    for (k, v) in [
        ("offered", 7.0),
        ("abandon_rate", 1.0 / 6.0),
        ("asa_secs", 17.5),
        ("service_level", 0.5),
        ("aht_secs", 197.5),
        ("fcr_rate", 0.5),
    ] {
        assert_fig(total, k, v);
    }

    // The same request straight from the database gives the same report.
    let db_url = format!("sqlite:{}", db.display());
    let config_arg = config.display().to_string();
    let direct = acdctl(
        &url,
        &[
            "report",
            "--from",
            &date,
            "--format",
            "json",
            "--db",
            &db_url,
            "--config",
            &config_arg,
        ],
    )
    .await
    .unwrap();
    assert!(direct.success(), "{}", direct.stderr);
    let direct: Value = serde_json::from_str(&direct.stdout).unwrap();
    assert_eq!(direct, by_queue);

    // By agent: time in states from the agent trail.
    let out = acdctl(
        &url,
        &[
            "report", "--from", &date, "--by", "agent", "--format", "json",
        ],
    )
    .await
    .unwrap();
    assert!(out.success(), "{}", out.stderr);
    let by_agent: Value = serde_json::from_str(&out.stdout).unwrap();
    let alice = &row(&by_agent, "alice")["agent"];
    assert_fig(alice, "calls_handled", 3.0);
    assert_fig(alice, "talk_secs", 280.0);
    assert_fig(alice, "ready_secs", 6590.0);
    assert_fig(alice, "logged_in_secs", 7800.0);
    assert_fig(alice, "occupancy", 310.0 / 6900.0);
    assert_fig(
        &row(&by_agent, "bob")["agent"],
        "utilisation",
        580.0 / 3985.0,
    );

    // CSV and the table.
    let csv = acdctl(&url, &["report", "--from", &date, "--format", "csv"])
        .await
        .unwrap();
    assert!(csv.success(), "{}", csv.stderr);
    let lines: Vec<&str> = csv.stdout.lines().collect();
    assert!(
        lines[0].starts_with("queue,offered,answered,abandoned,short,"),
        "{}",
        csv.stdout
    );
    assert!(
        lines[1].starts_with("sales,5,3,1,1,0.25,15,0.5,80,"),
        "{}",
        csv.stdout
    );
    assert!(lines[3].starts_with("total,7,4,1,1,"), "{}", csv.stdout);
    let table = acdctl(
        &url,
        &[
            "report",
            "--from",
            &date,
            "--by",
            "interval",
            "--interval",
            "30",
        ],
    )
    .await
    .unwrap();
    assert!(table.success(), "{}", table.stderr);
    let nine = table
        .stdout
        .lines()
        .find(|l| l.starts_with(&format!("{date} 09:00")))
        .unwrap_or_else(|| panic!("no 09:00 row in\n{}", table.stdout));
    // c1-c4 arrived 09:00-09:29; one short abandon, one abandon of 3.
    let cells: Vec<&str> = nine.split_whitespace().collect();
    assert_eq!(&cells[2..6], ["4", "2", "1", "1"], "{nine}");
    assert_eq!(cells[6], "33.3%", "{nine}");

    // Staffing on the busy half hour: 100 calls × 180 s in 30 min is
    // 10 erlangs; 80 % in 20 s takes 14 operators by Erlang C (13 reach
    // only 79.6 %); nobody abandoned, so Erlang A agrees; 30 % shrinkage
    // (the default) schedules ⌈14 ÷ 0.7⌉ = 20, and one 8-hour shift of 20
    // covers it: 28 people on a 5/2 rota.
    let busy_date = date_of(day - 24 * H);
    let out = acdctl(
        &url,
        &[
            "report", "staffing", "--from", &busy_date, "--queue", "bulk", "--format", "json",
        ],
    )
    .await
    .unwrap();
    assert!(out.success(), "{}", out.stderr);
    let st: Value = serde_json::from_str(&out.stdout).unwrap();
    let bulk = &st["queues"][0];
    assert_eq!(bulk["queue"], "bulk");
    let need = &bulk["intervals"][18];
    assert_eq!(need["start"], "09:00");
    assert_fig(need, "calls", 100.0);
    assert_fig(need, "aht_secs", 180.0);
    assert_fig(need, "erlangs", 10.0);
    assert_fig(need, "agents_c", 14.0);
    assert_fig(need, "agents_a", 14.0);
    assert_fig(need, "scheduled_c", 20.0);
    assert!(
        (need["sl_c"].as_f64().unwrap() - 0.8884).abs() < 1e-4,
        "{need}"
    );
    assert_fig(&st["plan"], "daily_heads", 20.0);
    assert_fig(&st["plan"], "rota_5_2_heads", 28.0);
    let table = acdctl(
        &url,
        &[
            "report",
            "staffing",
            "--from",
            &busy_date,
            "--queue",
            "bulk",
            "--shrinkage",
            "20",
        ],
    )
    .await
    .unwrap();
    assert!(table.success(), "{}", table.stderr);
    // 14 ÷ 0.8 = 17.5 → 18.
    let row = table
        .stdout
        .lines()
        .find(|l| l.starts_with("09:00"))
        .unwrap_or_else(|| panic!("{}", table.stdout));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cells[4..8], ["14", "14", "18", "18"], "{row}");
    assert!(
        table.stdout.contains("5/2 rota: 26 people"),
        "{}",
        table.stdout
    );

    // A range that ends before it starts: refused with the reason.
    let bad = acdctl(&url, &["report", "--from", &date, "--to", &busy_date])
        .await
        .unwrap();
    assert!(!bad.success());
    assert!(
        bad.stderr.contains("INVALID_ARGUMENT") && bad.stderr.contains("is not before"),
        "{}",
        bad.stderr
    );
}

/// A throw-away PostgreSQL server on the block's `+98`, run as the
/// `postgres` user (it refuses root) with its data and socket in /tmp;
/// stopped and removed on drop.
struct Postgres {
    dir: std::path::PathBuf,
    bin: std::path::PathBuf,
    port: u16,
}

fn as_postgres(bin: &Path, tool: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(bin.join(tool))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("runuser {tool}: {e}"))
}

impl Postgres {
    fn start(port: u16) -> Postgres {
        let versions = std::fs::read_dir("/usr/lib/postgresql").expect(
            "PostgreSQL server binaries in /usr/lib/postgresql (tests/run.sh installs them)",
        );
        let bin = versions
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|b| b.join("initdb").exists())
            .max()
            .expect("an initdb under /usr/lib/postgresql/*/bin");
        let dir = std::env::temp_dir().join(format!("acd-pg-{port}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let chown = std::process::Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(chown.success());
        let data = dir.join("data");
        let (data_s, dir_s) = (data.display().to_string(), dir.display().to_string());
        let out = as_postgres(
            &bin,
            "initdb",
            &["-D", &data_s, "-U", "postgres", "--auth=trust", "--no-sync"],
        );
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let opts = format!("-p {port} -k {dir_s} -c listen_addresses=127.0.0.1 -c fsync=off");
        let log = dir.join("server.log").display().to_string();
        let out = as_postgres(
            &bin,
            "pg_ctl",
            &[
                "-D", &data_s, "-l", &log, "-o", &opts, "-w", "-t", "30", "start",
            ],
        );
        let pg = Postgres { dir, bin, port };
        assert!(
            out.status.success(),
            "pg_ctl start: {}{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        pg
    }

    fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    fn stop(&self) {
        let data = self.dir.join("data").display().to_string();
        let _ = as_postgres(
            &self.bin,
            "pg_ctl",
            &["-D", &data, "-m", "immediate", "-w", "stop"],
        );
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The test config with `support`'s 90 % in 30 s target.
fn targets_config(env: &TestEnv) -> std::path::PathBuf {
    env.config_variant(|t| {
        t.replace(
            "id = \"support\"\n",
            "id = \"support\"\nservice_level = { percent = 90, within_secs = 30 }\n",
        )
    })
}

/// `acdctl report … --db URL --config FILE`, as JSON.
async fn report_json(db: &str, config: &Path, args: &[&str]) -> Value {
    let config = config.display().to_string();
    let mut all = vec!["report"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--format", "json", "--db", db, "--config", &config]);
    // No distributor is asked with --db: the server address is never used.
    let out = acdctl("http://127.0.0.1:1", &all).await.unwrap();
    assert!(out.success(), "{}", out.stderr);
    serde_json::from_str(&out.stdout).unwrap()
}

#[tokio::test]
async fn postgresql_gives_the_same_reports_as_sqlite_and_unavailable_when_down() {
    let env = TestEnv::new("reports-pg", 138);
    let day = day_start();
    let lite = env.log_path("r.db");
    prefill_sqlite(&lite, day);
    // The sync client runs its own runtime: not on this test's thread.
    let port = env.ports.etcd_client();
    let pg = tokio::task::spawn_blocking(move || {
        let pg = Postgres::start(port);
        let mut admin = postgres::Client::connect(&pg.url("postgres"), postgres::NoTls).unwrap();
        admin.batch_execute("CREATE DATABASE acd").unwrap();
        let mut client = postgres::Client::connect(&pg.url("acd"), postgres::NoTls).unwrap();
        client
            .batch_execute(acd_records::schema::MIGRATIONS_TABLE)
            .unwrap();
        for m in acd_records::schema::MIGRATIONS {
            client.batch_execute(m.postgres).unwrap();
            client.batch_execute(&migrated(m)).unwrap();
        }
        client.batch_execute(&day_sql(day)).unwrap();
        pg
    })
    .await
    .unwrap();

    let config = targets_config(&env);
    let (lite_url, pg_url) = (format!("sqlite:{}", lite.display()), pg.url("acd"));
    let (date, busy) = (date_of(day), date_of(day - 24 * H));
    for args in [
        vec!["--from", date.as_str()],
        vec!["--from", date.as_str(), "--by", "agent"],
        vec![
            "--from",
            date.as_str(),
            "--by",
            "interval",
            "--interval",
            "15",
        ],
        vec!["staffing", "--from", busy.as_str()],
    ] {
        let from_pg = report_json(&pg_url, &config, &args).await;
        assert_eq!(
            from_pg,
            report_json(&lite_url, &config, &args).await,
            "{args:?}"
        );
        assert!(!from_pg.to_string().is_empty());
    }
    // And they are the scripted figures, not two empty reports.
    let r = report_json(&pg_url, &config, &["--from", &date]).await;
    assert_fig(row(&r, "sales"), "aht_secs", 430.0 / 3.0);
    assert_fig(&r["total"], "offered", 7.0);

    pg.stop();
    let config_s = config.display().to_string();
    let down = acdctl(
        "http://127.0.0.1:1",
        &[
            "report", "--from", &date, "--db", &pg_url, "--config", &config_s,
        ],
    )
    .await
    .unwrap();
    assert!(!down.success());
    assert!(down.stderr.contains("UNAVAILABLE"), "{}", down.stderr);
}
