//! The writer end to end on SQLite, and through an outage of a fake store.

use super::*;
use crate::project::tests::{queued, rec};
use crate::rows::{Dataset, TimeRange};
use crate::store_sqlite::tests::temp_dir;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

fn records(n: u64) -> Vec<Arc<EventRecord>> {
    (0..n)
        .map(|i| {
            Arc::new(rec(
                i + 1,
                1_000 + i,
                queued(&format!("c{i}"), "sales", 1_000 + i),
            ))
        })
        .collect()
}

fn count(path: &std::path::Path, sql: &str) -> i64 {
    let c = rusqlite::Connection::open(path).expect("db");
    c.query_row(sql, [], |r| r.get(0)).expect(sql)
}

#[test]
fn every_record_sent_lands_in_sqlite_once() {
    let dir = temp_dir("writer");
    let db = dir.join("db/records.db");
    let (tx, rx) = mpsc::channel();
    let handle = spawn(Database::Sqlite(db.clone()), dir.join("spool"), rx).expect("spawn");
    for r in records(1_234) {
        tx.send(r).expect("send");
    }
    drop(tx);
    handle.join().expect("writer");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM applied_events"), 1_234);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM calls"), 1_234);
    let spool = Spool::open(&dir.join("spool")).expect("spool");
    assert_eq!(spool.pending(), 0);
    let _ = std::fs::remove_dir_all(dir);
}

/// Counts rows; refuses everything while `down`.
struct Fake {
    down: Arc<AtomicBool>,
    rows: Arc<AtomicUsize>,
}

impl Store for Fake {
    fn migrate(&mut self) -> Result<u32, StoreError> {
        Ok(1)
    }
    fn write(&mut self, batch: &[EventRecord]) -> Result<usize, StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("down".into()));
        }
        self.rows.fetch_add(batch.len(), Ordering::SeqCst);
        Ok(batch.len())
    }
    fn load(&mut self, _: TimeRange) -> Result<Dataset, StoreError> {
        Ok(Dataset::default())
    }
}

#[test]
fn an_outage_keeps_records_in_the_spool_until_the_database_is_back() {
    let dir = temp_dir("writer-outage");
    let down = Arc::new(AtomicBool::new(true));
    let rows = Arc::new(AtomicUsize::new(0));
    let (d, r) = (down.clone(), rows.clone());
    let opener: Opener = Box::new(move || {
        Ok(Box::new(Fake {
            down: d.clone(),
            rows: r.clone(),
        }) as Box<dyn Store>)
    });
    let mut w = Writer::new(Spool::open(&dir).expect("spool"), opener);
    let (tx, rx) = mpsc::channel();
    for r in records(300) {
        tx.send(r).expect("send");
    }
    assert!(!w.receive(&rx));
    w.spool_incoming();
    w.flush();
    assert_eq!(w.spool.pending(), 300, "nothing written while down");
    assert!(w.retry_at > Instant::now(), "backing off");
    down.store(false, Ordering::SeqCst);
    w.retry_at = Instant::now();
    w.flush();
    assert_eq!((w.spool.pending(), rows.load(Ordering::SeqCst)), (0, 300));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_database_is_created_before_any_record() {
    let dir = temp_dir("writer-empty");
    let db = dir.join("data/records.db");
    let (tx, rx) = mpsc::channel::<Arc<EventRecord>>();
    let handle = spawn(Database::Sqlite(db.clone()), dir.join("spool"), rx).expect("spawn");
    drop(tx);
    handle.join().expect("writer");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM schema_migrations"), 1);
    let _ = std::fs::remove_dir_all(dir);
}
