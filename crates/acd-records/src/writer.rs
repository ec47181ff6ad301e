//! The writer thread: committed records from the distributor → spool (on
//! disk, fsynced per batch) → database, in batches. The sender is an
//! unbounded channel, so routing never waits here; a database that is down
//! only makes the spool longer, and it is drained once the database is back
//! (retried with back-off 0.2 s doubling to 5 s).
//!
//! Metrics: `acd_records_spooled_total`, `acd_records_written_total`,
//! `acd_records_duplicates_skipped_total`, `acd_records_pending` (records in
//! the spool not yet in the database), `acd_records_spool_bytes`,
//! `acd_records_db_errors_total{reason}`, `acd_records_spool_errors_total{reason}`,
//! `acd_records_spool_over_limit_total`.

use std::collections::VecDeque;
use std::io;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use acd_routing::EventRecord;

use crate::spool::Spool;
use crate::store::{self, Database, Store, StoreError};

/// Records per database transaction.
pub const BATCH: usize = 500;
/// Longest a record waits in memory before it is spooled and written.
const BATCH_WAIT: Duration = Duration::from_millis(100);
/// After a record arrives, how long the writer gathers more before it spools
/// and writes them: the bound on how long a record waits in memory.
const GATHER: Duration = Duration::from_millis(50);
/// Records taken from the channel per spool append.
const MAX_INCOMING: usize = 5_000;
/// Records kept in memory for the database; the rest are read back from
/// the spool when these are written (a long outage must not fill memory).
const MEM_CAP: usize = 20_000;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Past this, the spool is logged and counted as over its limit (nothing
/// is dropped: the limit is an alarm for the operator).
pub const SPOOL_ALARM_BYTES: u64 = 1 << 30;

/// Starts the writer for `db` with its spool in `spool_dir`. The spool is
/// opened here, so a bad directory fails at start; the database is opened
/// (and migrated) by the thread, retried while it is unavailable. The thread
/// ends when every sender of `records` is gone, after a last write attempt.
pub fn spawn(
    db: Database,
    spool_dir: PathBuf,
    records: Receiver<Arc<EventRecord>>,
) -> io::Result<JoinHandle<()>> {
    let spool = Spool::open(&spool_dir)?;
    tracing::info!(database = %db.describe(), spool = %spool_dir.display(),
        pending = spool.pending(), "call records on");
    let opener = move || store::open(&db);
    std::thread::Builder::new()
        .name("acd-records".into())
        .spawn(move || Writer::new(spool, Box::new(opener)).run(&records))
}

type Opener = Box<dyn FnMut() -> Result<Box<dyn Store>, StoreError> + Send>;

pub(crate) struct Writer {
    spool: Spool,
    open: Opener,
    /// Opened and migrated.
    store: Option<Box<dyn Store>>,
    /// Records `[cursor, cursor + mem.len())` of the spool.
    mem: VecDeque<EventRecord>,
    /// Received but not yet spooled (the disk refused them).
    unspooled: Vec<Arc<EventRecord>>,
    retry_at: Instant,
    backoff: Duration,
    over_limit: bool,
}

impl Writer {
    pub(crate) fn new(spool: Spool, open: Opener) -> Writer {
        metrics::gauge!("acd_records_pending").set(spool.pending() as f64);
        Writer {
            spool,
            open,
            store: None,
            mem: VecDeque::new(),
            unspooled: Vec::new(),
            retry_at: Instant::now(),
            backoff: FIRST_BACKOFF,
            over_limit: false,
        }
    }

    pub(crate) fn run(mut self, records: &Receiver<Arc<EventRecord>>) {
        // At once, not at the first record: the file and its schema exist
        // as soon as the process runs (reports may read before any call).
        self.open_store();
        loop {
            let closed = self.receive(records);
            self.spool_incoming();
            if Instant::now() >= self.retry_at {
                self.flush();
            }
            if closed {
                // One last attempt; whatever is left waits in the spool.
                if self.spool.pending() > 0 && Instant::now() < self.retry_at {
                    std::thread::sleep(self.retry_at - Instant::now());
                    self.flush();
                }
                tracing::info!(
                    pending = self.spool.pending(),
                    "call records writer stopped"
                );
                return;
            }
        }
    }

    /// Waits up to [`BATCH_WAIT`] (less while a retry is due) for records
    /// and takes what else is there; `true` once every sender is gone.
    fn receive(&mut self, records: &Receiver<Arc<EventRecord>>) -> bool {
        let wait = if self.spool.pending() > 0 || !self.unspooled.is_empty() {
            self.retry_at
                .saturating_duration_since(Instant::now())
                .min(BATCH_WAIT)
        } else {
            BATCH_WAIT
        };
        match records.recv_timeout(wait) {
            Ok(r) => self.unspooled.push(r),
            Err(RecvTimeoutError::Timeout) => return false,
            Err(RecvTimeoutError::Disconnected) => return true,
        }
        // Group commit: gather what arrives in the next moments too, so a
        // steady trickle of records costs one spool fsync and one database
        // transaction per window, not per record.
        let until = Instant::now() + GATHER;
        while self.unspooled.len() < MAX_INCOMING {
            let left = until.saturating_duration_since(Instant::now());
            let next = if left.is_zero() {
                records.try_recv().map_err(|e| match e {
                    TryRecvError::Empty => RecvTimeoutError::Timeout,
                    TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
                })
            } else {
                records.recv_timeout(left)
            };
            match next {
                Ok(r) => self.unspooled.push(r),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return true,
            }
        }
        false
    }

    /// Appends what was received to the spool (one fsync).
    fn spool_incoming(&mut self) {
        if self.unspooled.is_empty() {
            return;
        }
        let first = self.spool.next();
        if let Err(e) = self.spool.append(&self.unspooled) {
            // Kept in memory and tried again: never dropped.
            metrics::counter!("acd_records_spool_errors_total", "reason" => "append").increment(1);
            tracing::error!(error = %e, records = self.unspooled.len(), "spool append failed; retrying");
            return;
        }
        let n = self.unspooled.len();
        metrics::counter!("acd_records_spooled_total").increment(n as u64);
        metrics::gauge!("acd_records_pending").set(self.spool.pending() as f64);
        let complete = self.spool.cursor() + self.mem.len() as u64 == first;
        if complete && self.mem.len() + n <= MEM_CAP {
            self.mem
                .extend(self.unspooled.drain(..).map(|r| (*r).clone()));
        } else {
            // On disk only; read back once memory has been written.
            self.unspooled.clear();
        }
        self.note_size();
    }

    /// Writes pending records in batches until none are left or the
    /// database refuses.
    fn flush(&mut self) {
        while self.spool.pending() > 0 {
            if self.mem.is_empty() && !self.reload() {
                return;
            }
            let n = self.mem.len().min(BATCH);
            let Some(result) = self.write_front(n) else {
                return;
            };
            match result {
                Ok(new) => self.written(n, new),
                Err(StoreError::Failed(e)) if n > 1 => {
                    tracing::warn!(error = %e, records = n, "records batch failed; writing one by one");
                    self.write_singly(n);
                }
                Err(StoreError::Failed(e)) => {
                    self.skip_failed(&e);
                }
                Err(e) => {
                    self.unavailable(&e);
                    return;
                }
            }
        }
    }

    /// A failed batch record by record, so one bad record does not hold up
    /// the rest.
    fn write_singly(&mut self, n: usize) {
        for _ in 0..n {
            let Some(result) = self.write_front(1) else {
                return;
            };
            match result {
                Ok(new) => self.written(1, new),
                Err(StoreError::Failed(e)) => self.skip_failed(&e),
                Err(e) => {
                    self.unavailable(&e);
                    return;
                }
            }
        }
    }

    /// A record the database refuses for good (not a connection problem):
    /// logged with its call and skipped so the others go on.
    fn skip_failed(&mut self, error: &str) {
        metrics::counter!("acd_records_db_errors_total", "reason" => "record_failed").increment(1);
        if let Some(rec) = self.mem.front() {
            tracing::error!(
                seq = rec.seq.0,
                call = rec.event.call().map_or("", |c| c.as_str()),
                error,
                "record refused by the database; skipped"
            );
        }
        self.written(1, 0);
    }

    /// The first `n` records of memory are in the database.
    fn written(&mut self, n: usize, new: usize) {
        let upto = self.spool.cursor() + n as u64;
        if let Err(e) = self.spool.commit(upto) {
            // The records are in; only the cursor lags: they would be
            // written again after a restart, which the gate makes harmless.
            metrics::counter!("acd_records_spool_errors_total", "reason" => "cursor").increment(1);
            tracing::error!(error = %e, "spool cursor update failed");
            return;
        }
        self.mem.drain(..n);
        metrics::counter!("acd_records_written_total").increment(new as u64);
        metrics::counter!("acd_records_duplicates_skipped_total").increment((n - new) as u64);
        metrics::gauge!("acd_records_pending").set(self.spool.pending() as f64);
        self.backoff = FIRST_BACKOFF;
        self.note_size();
    }

    fn unavailable(&mut self, e: &StoreError) {
        let reason = match e {
            StoreError::Unavailable(_) => "unavailable",
            StoreError::SchemaTooNew { .. } => "schema_too_new",
            StoreError::Failed(_) => "failed",
        };
        metrics::counter!("acd_records_db_errors_total", "reason" => reason).increment(1);
        tracing::warn!(error = %e, pending = self.spool.pending(), retry_in = ?self.backoff,
            "records database unavailable; records wait in the spool");
        if !matches!(e, StoreError::Unavailable(_)) {
            // Opened but unusable (schema): open again later.
            self.store = None;
        }
        self.retry_at = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    /// Writes the first `n` records of memory; `None` when the database
    /// could not even be opened (the back-off is set).
    fn write_front(&mut self, n: usize) -> Option<Result<usize, StoreError>> {
        if !self.open_store() {
            return None;
        }
        let n = n.min(self.mem.len());
        let batch = &self.mem.make_contiguous()[..n];
        self.store.as_mut().map(|s| s.write(batch))
    }

    /// Opens and migrates the database unless it is open (once per writer:
    /// PostgreSQL reconnects by itself); `false` (back-off set) on failure.
    fn open_store(&mut self) -> bool {
        if self.store.is_some() {
            return true;
        }
        match (self.open)().and_then(|mut s| s.migrate().map(|_| s)) {
            Ok(s) => {
                self.store = Some(s);
                true
            }
            Err(e) => {
                self.unavailable(&e);
                false
            }
        }
    }

    /// Reads the next records back from the spool; `false` on a read error.
    fn reload(&mut self) -> bool {
        match self.spool.read(self.spool.cursor(), MEM_CAP) {
            Ok(recs) if !recs.is_empty() => {
                self.mem.extend(recs);
                true
            }
            Ok(_) => {
                // Nothing readable past the cursor (damaged lines only).
                let next = self.spool.next();
                let _ = self.spool.commit(next);
                false
            }
            Err(e) => {
                metrics::counter!("acd_records_spool_errors_total", "reason" => "read")
                    .increment(1);
                tracing::error!(error = %e, "spool read failed");
                self.retry_at = Instant::now() + self.backoff;
                false
            }
        }
    }

    fn note_size(&mut self) {
        let bytes = self.spool.bytes();
        metrics::gauge!("acd_records_spool_bytes").set(bytes as f64);
        let over = bytes > SPOOL_ALARM_BYTES;
        if over && !self.over_limit {
            metrics::counter!("acd_records_spool_over_limit_total").increment(1);
            tracing::error!(
                bytes,
                limit = SPOOL_ALARM_BYTES,
                pending = self.spool.pending(),
                "records spool past its size limit (nothing is dropped); is the database down?"
            );
        }
        self.over_limit = over;
    }
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
