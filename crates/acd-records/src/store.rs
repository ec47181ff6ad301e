//! Where records are kept: [`Database`] names it (from `[records] database`),
//! [`Store`] is what the writer thread and the reports use. Implementations:
//! SQLite (rusqlite, bundled: nothing to install) and PostgreSQL (the sync
//! `postgres` client; the writer runs on its own thread).

use std::path::{Path, PathBuf};

use acd_routing::EventRecord;

use crate::rows::{Dataset, TimeRange};

/// A records database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Database {
    /// A file (created with its directory when missing).
    Sqlite(PathBuf),
    /// A libpq-style URL, `postgres://user:password@host:port/dbname`.
    Postgres(String),
}

impl Database {
    /// `sqlite:PATH` (relative paths are taken from `base`) or
    /// `postgres://…` / `postgresql://…`.
    pub fn parse(text: &str, base: &Path) -> Result<Database, String> {
        if let Some(path) = text.strip_prefix("sqlite:") {
            if path.is_empty() {
                return Err("sqlite: needs a file path, e.g. sqlite:data/records.db".into());
            }
            return Ok(Database::Sqlite(base.join(path)));
        }
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(Database::Postgres(text.to_string()));
        }
        Err(format!(
            "'{text}' is neither sqlite:PATH nor postgres://user@host:port/db"
        ))
    }

    /// For logs: the file, or the URL without its password.
    pub fn describe(&self) -> String {
        match self {
            Database::Sqlite(p) => format!("sqlite:{}", p.display()),
            Database::Postgres(url) => match (url.find("://"), url.rfind('@')) {
                (Some(s), Some(at)) if at > s => {
                    let user = &url[s + 3..at];
                    let user = user.split(':').next().unwrap_or_default();
                    format!("{}{user}@{}", &url[..s + 3], &url[at + 1..])
                }
                _ => url.clone(),
            },
        }
    }
}

/// Why a database operation failed. The writer retries `Unavailable` (the
/// server is down or the connection broke) and logs the rest.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Failed(String),
    #[error("database schema version {found} is newer than this build's {known}")]
    SchemaTooNew { found: u32, known: u32 },
}

/// A records database, opened.
pub trait Store: Send {
    /// Applies the migrations not yet in; returns the schema version.
    fn migrate(&mut self) -> Result<u32, StoreError>;
    /// Applies `batch` in order in one transaction; records applied before are
    /// skipped. Returns how many were new.
    fn write(&mut self, batch: &[EventRecord]) -> Result<usize, StoreError>;
    /// What a report over `range` needs (see [`Dataset`]).
    fn load(&mut self, range: TimeRange) -> Result<Dataset, StoreError>;
}

/// Opens the database `db` names (SQLite: creating the file and its
/// directory; PostgreSQL: connecting on first use).
pub fn open(db: &Database) -> Result<Box<dyn Store>, StoreError> {
    Ok(match db {
        Database::Sqlite(path) => Box::new(crate::store_sqlite::SqliteStore::open(path)?),
        Database::Postgres(url) => Box::new(crate::store_pg::PgStore::open(url)?),
    })
}

/// Wall-clock Unix milliseconds, for `schema_migrations.applied_at_ms` only
/// (records carry their own times).
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
