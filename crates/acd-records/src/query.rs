//! One report request from start to JSON, for the distributor's `Report`
//! RPC and `acdctl report --db`: check the request, read the records
//! database, compute the report or the staffing forecast.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::report::{self, Grouping, ReportError, ReportParams, ServiceTarget};
use crate::rows::{Dataset, TimeRange};
use crate::staffing::{self, StaffingParams};
use crate::store::{Database, StoreError};

/// A report request, settings already merged with their overrides.
#[derive(Clone, Debug)]
pub struct Query {
    pub range: TimeRange,
    pub now: i64,
    pub by: Grouping,
    pub interval_mins: u32,
    pub queues: Vec<String>,
    /// IANA name; empty: UTC.
    pub time_zone: String,
    pub short_abandon_secs: u32,
    pub fcr_window_hours: u32,
    pub targets: BTreeMap<String, ServiceTarget>,
    /// A staffing forecast instead of call figures.
    pub staffing: Option<StaffingOptions>,
}

#[derive(Clone, Copy, Debug)]
pub struct StaffingOptions {
    pub shrinkage_percent: u32,
    pub shift_hours: u32,
    /// `None`: measured from the abandons.
    pub patience_secs: Option<f64>,
}

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    Invalid(#[from] ReportError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How long a report waits for the database server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The report (or staffing forecast) as JSON.
pub fn run(db: &Database, q: &Query) -> Result<String, QueryError> {
    let (load_range, compute) = prepare(q)?;
    let data = open_and_load(db, load_range)?;
    Ok(compute(&data)?)
}

type Compute = Box<dyn FnOnce(&Dataset) -> Result<String, ReportError>>;

/// Checks `q` before any database work; returns the range to read and what
/// to compute from it.
pub fn prepare(q: &Query) -> Result<(TimeRange, Compute), ReportError> {
    report::check_range(q.range)?;
    report::check_interval(q.interval_mins)?;
    let tz = report::time_zone(&q.time_zone)?;
    if let Some(s) = q.staffing {
        let p = StaffingParams {
            range: q.range,
            interval_mins: q.interval_mins,
            queues: q.queues.clone(),
            targets: q.targets.clone(),
            shrinkage_percent: s.shrinkage_percent,
            shift_hours: s.shift_hours,
            patience_secs: s.patience_secs,
            tz,
        };
        return Ok((
            q.range,
            Box::new(move |d: &Dataset| staffing::staffing(d, &p).map(|r| to_json(&r))),
        ));
    }
    let p = ReportParams {
        range: q.range,
        now: q.now,
        by: q.by,
        interval_mins: q.interval_mins,
        queues: q.queues.clone(),
        short_abandon_secs: q.short_abandon_secs,
        fcr_window_hours: q.fcr_window_hours,
        targets: q.targets.clone(),
        tz,
    };
    Ok((
        p.load_range(),
        Box::new(move |d: &Dataset| report::report(d, &p).map(|r| to_json(&r))),
    ))
}

/// Plain data with numbers and strings: serde_json cannot fail on it
/// (non-finite floats become `null`).
fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// Reads the database read-only. (When `store::open` exists, this can be
/// `store::open(db)?.load(range)`; reading here needs no migration rights.)
pub fn open_and_load(db: &Database, range: TimeRange) -> Result<Dataset, StoreError> {
    match db {
        Database::Sqlite(path) => {
            use rusqlite::OpenFlags;
            let conn = rusqlite::Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(|e| StoreError::Unavailable(format!("{}: {e}", path.display())))?;
            conn.busy_timeout(CONNECT_TIMEOUT)
                .map_err(|e| StoreError::Failed(e.to_string()))?;
            crate::load::sqlite(&conn, range)
        }
        Database::Postgres(url) => {
            let mut config: postgres::Config = url
                .parse()
                .map_err(|e| StoreError::Failed(format!("{}: {e}", db.describe())))?;
            config.connect_timeout(CONNECT_TIMEOUT);
            let mut client = config
                .connect(postgres::NoTls)
                .map_err(|e| StoreError::Unavailable(format!("{}: {e}", db.describe())))?;
            crate::load::postgres(&mut client, range)
        }
    }
}
