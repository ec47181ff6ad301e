//! [`Store`] on PostgreSQL (the sync `postgres` client; the writer runs on
//! its own thread). The connection is made lazily and made again after it
//! breaks, so a server that is down at start or restarts later only delays
//! the writes (`StoreError::Unavailable`, retried by the writer).

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use acd_routing::EventRecord;
use postgres::types::ToSql;
use postgres::{Client, NoTls, Statement, Transaction};

use crate::project::project;
use crate::rows::{Dataset, TimeRange};
use crate::schema::{self, MIGRATIONS_TABLE};
use crate::sql::{self, Dialect, Param};
use crate::store::{now_ms, Store, StoreError};

/// How long a connection attempt may take when the URL does not say.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub struct PgStore {
    config: postgres::Config,
    client: Option<Client>,
    /// Prepared on the current connection; the statement shapes repeat (one
    /// per event kind and op), so each is parsed once per connection.
    prepared: HashMap<String, Statement>,
}

impl PgStore {
    /// Checks the URL; connects on first use.
    pub fn open(url: &str) -> Result<PgStore, StoreError> {
        let mut config = postgres::Config::from_str(url)
            .map_err(|e| StoreError::Failed(format!("bad PostgreSQL URL: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        Ok(PgStore {
            config,
            client: None,
            prepared: HashMap::new(),
        })
    }

    /// The connection, made when there is none (or the last one broke).
    pub fn client(&mut self) -> Result<&mut Client, StoreError> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.client = None;
            self.prepared.clear();
            let c = self.config.connect(NoTls).map_err(map_err)?;
            self.client = Some(c);
        }
        self.client
            .as_mut()
            .ok_or_else(|| StoreError::Unavailable("no connection".into()))
    }

    /// Runs `f` and forgets a connection that failed in it.
    fn with_client<T>(
        &mut self,
        f: impl FnOnce(&mut Client, &mut HashMap<String, Statement>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.client()?;
        let result = match self.client.as_mut() {
            Some(c) => f(c, &mut self.prepared),
            None => Err(StoreError::Unavailable("no connection".into())),
        };
        if matches!(result, Err(StoreError::Unavailable(_))) {
            self.client = None;
            self.prepared.clear();
        }
        result
    }
}

impl Store for PgStore {
    fn migrate(&mut self) -> Result<u32, StoreError> {
        self.with_client(|c, _| {
            c.batch_execute(MIGRATIONS_TABLE).map_err(map_err)?;
            let found: i64 = c
                .query_one(sql::MAX_VERSION, &[])
                .and_then(|r| r.try_get::<_, i64>(0).or_else(|_| r.try_get::<_, i32>(0).map(i64::from)))
                .map_err(map_err)?;
            let found = u32::try_from(found).unwrap_or(u32::MAX);
            if found > schema::latest() {
                return Err(StoreError::SchemaTooNew {
                    found,
                    known: schema::latest(),
                });
            }
            for m in schema::MIGRATIONS.iter().filter(|m| m.version > found) {
                let mut tx = c.transaction().map_err(map_err)?;
                tx.batch_execute(m.postgres).map_err(map_err)?;
                tx.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES ($1, $2, $3)",
                    &[&(m.version as i32), &m.name, &now_ms()],
                )
                .map_err(map_err)?;
                tx.commit().map_err(map_err)?;
                tracing::info!(version = m.version, name = m.name, "records schema migrated (postgres)");
            }
            Ok(schema::latest())
        })
    }

    fn write(&mut self, batch: &[EventRecord]) -> Result<usize, StoreError> {
        self.with_client(|c, prepared| {
            let mut tx = c.transaction().map_err(map_err)?;
            let mut new = 0;
            for rec in batch {
                if apply(&mut tx, prepared, rec)? {
                    new += 1;
                }
            }
            tx.commit().map_err(map_err)?;
            Ok(new)
        })
    }

    fn load(&mut self, range: TimeRange) -> Result<Dataset, StoreError> {
        self.with_client(|c, _| crate::load::postgres(c, range))
    }
}

fn apply(
    tx: &mut Transaction<'_>,
    prepared: &mut HashMap<String, Statement>,
    rec: &EventRecord,
) -> Result<bool, StoreError> {
    let gate = statement(tx, prepared, sql::INSERT_APPLIED[1])?;
    let inserted = tx
        .execute(&gate, &[&(rec.seq.0 as i64), &(rec.at.0 as i64)])
        .map_err(map_err)?;
    if inserted == 0 {
        return Ok(false);
    }
    for op in project(rec) {
        for stmt in sql::statements(&op, Dialect::Postgres) {
            let params: Vec<&(dyn ToSql + Sync)> = stmt.params.iter().map(to_sql).collect();
            let prepared = statement(tx, prepared, &stmt.sql)?;
            tx.execute(&prepared, &params).map_err(map_err)?;
        }
    }
    Ok(true)
}

/// `sql` prepared on this connection (once).
fn statement(
    tx: &mut Transaction<'_>,
    prepared: &mut HashMap<String, Statement>,
    sql: &str,
) -> Result<Statement, StoreError> {
    if let Some(s) = prepared.get(sql) {
        return Ok(s.clone());
    }
    let s = tx.prepare(sql).map_err(map_err)?;
    prepared.insert(sql.to_owned(), s.clone());
    Ok(s)
}

fn to_sql(p: &Param) -> &(dyn ToSql + Sync) {
    match p {
        Param::I64(i) => i,
        Param::I32(i) => i,
        Param::Text(t) => t,
        Param::OptText(t) => t,
    }
}

/// Connection-level failures (no SQLSTATE, class 08, the server shutting
/// down or starting, out of resources) are retried; the rest is not.
fn map_err(e: postgres::Error) -> StoreError {
    let retry = match e.code() {
        None => true,
        Some(code) => {
            let c = code.code();
            c.starts_with("08")
                || c.starts_with("53")
                || c.starts_with("57P")
                || c == "40001"
                || c == "40P01"
        }
    };
    if retry || e.is_closed() {
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::Failed(e.to_string())
    }
}
