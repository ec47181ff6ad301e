//! [`Store`] on a SQLite file (rusqlite, bundled). WAL mode: reports read
//! while the writer writes.

use std::path::Path;
use std::time::Duration;

use acd_routing::EventRecord;
use rusqlite::{params_from_iter, Connection, ErrorCode, Transaction};

use crate::project::project;
use crate::rows::{Dataset, TimeRange};
use crate::schema::{self, MIGRATIONS_TABLE};
use crate::sql::{self, Dialect, Param};
use crate::store::{now_ms, Store, StoreError};

pub struct SqliteStore {
    conn: Connection,
}

impl SqliteStore {
    /// Opens (creating the file and its directory) the database at `path`.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Unavailable(format!("creating {}: {e}", dir.display())))?;
        }
        let conn = Connection::open(path).map_err(map_err)?;
        // Reports reading at the same time wait rather than fail.
        conn.busy_timeout(Duration::from_secs(5)).map_err(map_err)?;
        // One statement shape per event kind and op: keep them all prepared.
        conn.set_prepared_statement_cache_capacity(128);
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(map_err)?;
        // WAL + NORMAL is durable across a process crash; the spool covers
        // the rest (records after the cursor are written again).
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(map_err)?;
        Ok(SqliteStore { conn })
    }

    /// The connection, for reads (tests, reports).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

impl Store for SqliteStore {
    fn migrate(&mut self) -> Result<u32, StoreError> {
        self.conn.execute(MIGRATIONS_TABLE, []).map_err(map_err)?;
        let found: i64 = self
            .conn
            .query_row(sql::MAX_VERSION, [], |r| r.get(0))
            .map_err(map_err)?;
        let found = u32::try_from(found).unwrap_or(u32::MAX);
        if found > schema::latest() {
            return Err(StoreError::SchemaTooNew {
                found,
                known: schema::latest(),
            });
        }
        for m in schema::MIGRATIONS.iter().filter(|m| m.version > found) {
            let tx = self.conn.transaction().map_err(map_err)?;
            tx.execute_batch(m.sqlite).map_err(map_err)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES (?1, ?2, ?3)",
                rusqlite::params![m.version, m.name, now_ms()],
            )
            .map_err(map_err)?;
            tx.commit().map_err(map_err)?;
            tracing::info!(
                version = m.version,
                name = m.name,
                "records schema migrated (sqlite)"
            );
        }
        Ok(schema::latest())
    }

    fn write(&mut self, batch: &[EventRecord]) -> Result<usize, StoreError> {
        let tx = self.conn.transaction().map_err(map_err)?;
        let mut new = 0;
        for rec in batch {
            if apply(&tx, rec)? {
                new += 1;
            }
        }
        tx.commit().map_err(map_err)?;
        Ok(new)
    }

    fn load(&mut self, range: TimeRange) -> Result<Dataset, StoreError> {
        crate::load::sqlite(&self.conn, range)
    }
}

/// Applies one record unless the gate says it is in already.
fn apply(tx: &Transaction<'_>, rec: &EventRecord) -> Result<bool, StoreError> {
    let inserted = tx
        .prepare_cached(sql::INSERT_APPLIED[0])
        .and_then(|mut s| s.execute(rusqlite::params![rec.seq.0 as i64, rec.at.0 as i64]))
        .map_err(map_err)?;
    if inserted == 0 {
        return Ok(false);
    }
    for op in project(rec) {
        for stmt in sql::statements(&op, Dialect::Sqlite) {
            let params = stmt.params.iter().map(to_sql);
            tx.prepare_cached(&stmt.sql)
                .and_then(|mut s| s.execute(params_from_iter(params)))
                .map_err(map_err)?;
        }
    }
    Ok(true)
}

fn to_sql(p: &Param) -> rusqlite::types::Value {
    use rusqlite::types::Value as V;
    match p {
        Param::I64(i) => V::Integer(*i),
        Param::I32(i) => V::Integer(i64::from(*i)),
        Param::Text(t) => V::Text(t.clone()),
        Param::OptText(t) => t.clone().map_or(V::Null, V::Text),
    }
}

/// Busy, locked, full or unreachable files are worth retrying; the rest is not.
fn map_err(e: rusqlite::Error) -> StoreError {
    let retry = matches!(
        e.sqlite_error_code(),
        Some(
            ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::DiskFull
                | ErrorCode::CannotOpen
                | ErrorCode::SystemIoFailure
                | ErrorCode::ReadOnly
        )
    );
    if retry {
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::Failed(e.to_string())
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
pub(crate) mod tests;
