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
