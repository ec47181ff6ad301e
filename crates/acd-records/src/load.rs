//! Reads a [`Dataset`] for a time range, one function per dialect; the
//! stores' [`crate::Store::load`] call these. (To be written: reports work.)

use crate::rows::{Dataset, TimeRange};
use crate::store::StoreError;

/// From SQLite.
pub fn sqlite(_conn: &rusqlite::Connection, _range: TimeRange) -> Result<Dataset, StoreError> {
    Err(StoreError::Failed(
        "loading records is not built yet".into(),
    ))
}

/// From PostgreSQL.
pub fn postgres(_client: &mut postgres::Client, _range: TimeRange) -> Result<Dataset, StoreError> {
    Err(StoreError::Failed(
        "loading records is not built yet".into(),
    ))
}
