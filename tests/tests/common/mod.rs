//! Helpers shared by the records e2e tests (`records`, `records_pair`,
//! `survey`): reading a records database, and `acdctl report` as JSON.
//! Each test binary uses its own part of it.
#![allow(dead_code)]

use std::time::Duration;

use acd_tests::cli::acdctl;
use serde_json::Value;
use tokio::time::Instant;

/// A records database the test reads back.
#[derive(Clone)]
pub enum Db {
    Sqlite(std::path::PathBuf),
    Postgres(String),
}

impl Db {
    /// The `[records] database` setting for it.
    pub fn setting(&self) -> String {
        match self {
            Db::Sqlite(p) => format!("sqlite:{}", p.display()),
            Db::Postgres(url) => url.clone(),
        }
    }

    /// Rows of `sql` as text columns (NULL as ""), read off the async
    /// runtime (the sync PostgreSQL client runs its own).
    pub async fn rows(&self, sql: &str) -> anyhow::Result<Vec<Vec<String>>> {
        let (db, sql) = (self.clone(), sql.to_string());
        tokio::task::spawn_blocking(move || db.rows_blocking(&sql)).await?
    }

    fn rows_blocking(&self, sql: &str) -> anyhow::Result<Vec<Vec<String>>> {
        match self {
            Db::Sqlite(path) => {
                // Read-only: the distributor's writer owns the file.
                let c = rusqlite::Connection::open_with_flags(
                    path,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
                )?;
                c.busy_timeout(Duration::from_secs(5))?;
                let mut stmt = c.prepare(sql)?;
                let n = stmt.column_count();
                let rows = stmt.query_map([], |r| {
                    (0..n)
                        .map(|i| Ok(sqlite_text(r.get_ref(i)?)))
                        .collect::<rusqlite::Result<Vec<String>>>()
                })?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            }
            Db::Postgres(url) => {
                let mut c = postgres::Client::connect(url, postgres::NoTls)?;
                let rows = c.query(sql, &[])?;
                Ok(rows
                    .iter()
                    .map(|r| (0..r.len()).map(|i| pg_text(r, i)).collect())
                    .collect())
            }
        }
    }

    /// The one number `sql` selects; -1 when it cannot be read (the
    /// database not created yet, or the server down).
    pub async fn count(&self, sql: &str) -> i64 {
        match self.rows(sql).await {
            Ok(rows) => rows
                .first()
                .and_then(|r| r.first())
                .and_then(|v| v.parse().ok())
                .unwrap_or(-1),
            Err(_) => -1,
        }
    }

    /// Polls `sql` (one count) until it is `want`, within `within`.
    pub async fn await_count(&self, sql: &str, want: i64, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let got = self.count(sql).await;
            if got == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "`{sql}` is {got}, wanted {want} within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn sqlite_text(v: rusqlite::types::ValueRef<'_>) -> String {
    match v {
        rusqlite::types::ValueRef::Null => String::new(),
        rusqlite::types::ValueRef::Integer(v) => v.to_string(),
        rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
        other => format!("{other:?}"),
    }
}

/// A PostgreSQL column as text, whatever its type (text, bigint, integer).
fn pg_text(row: &postgres::Row, i: usize) -> String {
    if let Ok(v) = row.try_get::<_, Option<String>>(i) {
        return v.unwrap_or_default();
    }
    if let Ok(v) = row.try_get::<_, Option<i64>>(i) {
        return v.map(|v| v.to_string()).unwrap_or_default();
    }
    row.try_get::<_, Option<i32>>(i)
        .ok()
        .flatten()
        .map(|v| v.to_string())
        .unwrap_or_default()
}

/// `acdctl report --format json --from <since> <args>` through the
/// distributor at `url` (RFC 3339 `--from`: the range ends now, whatever
/// the date).
pub async fn report_json(url: &str, since: jiff::Timestamp, args: &[&str]) -> Value {
    let from = since.to_string();
    let mut all = vec!["report", "--from", from.as_str(), "--format", "json"];
    all.extend_from_slice(args);
    let out = acdctl(url, &all).await.unwrap();
    assert!(out.success(), "acdctl {all:?}: {}", out.stderr);
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("acdctl {all:?} printed no report ({e}): {}", out.stdout))
}

/// The row keyed `key` of a report.
pub fn report_row<'a>(report: &'a Value, key: &str) -> &'a Value {
    report["rows"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["key"] == key))
        .unwrap_or_else(|| panic!("no row {key} in {report}"))
}

/// A number of a report row (a missing or null figure is NaN: it fails
/// every comparison).
pub fn fig(row: &Value, key: &str) -> f64 {
    row[key].as_f64().unwrap_or(f64::NAN)
}
