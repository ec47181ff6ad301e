//! Call records, the queue event trail, reports and staffing.
//!
//! The distributor's committed events are the only source ([`project`]): the
//! primary and the standby see the same records in the same order, so their
//! databases agree. Data flow in the distributor process:
//!
//! ```text
//! committed EventRecord ─▶ spool (durable, on disk) ─▶ writer thread ─▶ Store (SQLite | PostgreSQL)
//!                                                                        │
//!                     acdctl report / wallboard ◀── report, staffing ◀───┘ load(range) → Dataset
//! ```
//!
//! Routing never waits for any of it: the spool is appended by its own thread,
//! and a database that is down only makes the spool longer.
//!
//! Each record is applied to a database at most once: its `(seq, at)` is
//! inserted into `applied_events` in the same transaction as its rows, so a
//! batch written again (after a crash, or by the other distributor of the
//! pair sharing one PostgreSQL) changes nothing.

pub mod board;
pub mod load;
pub mod project;
pub mod query;
pub mod report;
pub mod rows;
pub mod schema;
pub mod shifts;
pub mod spool;
mod sql;
pub mod staffing;
pub mod store;
pub mod store_pg;
pub mod store_sqlite;
pub mod writer;

pub use rows::{AgentEventRow, CallEventRow, CallRow, Dataset, TimeRange};
pub use store::{Database, Store, StoreError};

/// Registers the HELP text of the records writer's metrics.
pub fn describe_metrics() {
    const COUNTERS: &[(&str, &str)] = &[
        ("acd_records_spooled_total", "Committed records appended to the records spool."),
        ("acd_records_written_total", "Records applied to the records database."),
        ("acd_records_duplicates_skipped_total", "Records already in the database, skipped (written again after a restart or by the other distributor)."),
        ("acd_records_db_errors_total", "Records database errors, by reason (unavailable ones are retried)."),
        ("acd_records_spool_errors_total", "Records spool errors, by reason."),
        ("acd_records_spool_over_limit_total", "Times the spool grew past its size warning (nothing is dropped)."),
    ];
    const GAUGES: &[(&str, &str)] = &[
        (
            "acd_records_pending",
            "Records in the spool not yet in the database.",
        ),
        (
            "acd_records_spool_bytes",
            "Size of the records spool on disk.",
        ),
    ];
    for (name, help) in COUNTERS {
        metrics::describe_counter!(*name, *help);
    }
    for (name, help) in GAUGES {
        metrics::describe_gauge!(*name, *help);
    }
}
