//! The spool across crashes: between the database commit and the cursor
//! update, in the middle of an append (torn line), and a plain restart.

use super::*;
use crate::project::tests::{queued, rec};
use crate::store_sqlite::tests::temp_dir;

fn records(from: u64, n: u64) -> Vec<std::sync::Arc<EventRecord>> {
    (from..from + n)
        .map(|i| {
            rec(
                i + 1,
                1_000 + i,
                queued(&format!("c{i}"), "sales", 1_000 + i),
            )
            .into()
        })
        .collect()
}

fn seqs(recs: &[EventRecord]) -> Vec<u64> {
    recs.iter().map(|r| r.seq.0).collect()
}

#[test]
fn a_restart_resumes_after_the_cursor() {
    let dir = temp_dir("spool-restart");
    let mut s = Spool::open(&dir).expect("open");
    s.append(&records(0, 10)).expect("append");
    s.commit(4).expect("commit");
    drop(s);
    let s = Spool::open(&dir).expect("reopen");
    assert_eq!((s.cursor(), s.next(), s.pending()), (4, 10, 6));
    assert_eq!(
        seqs(&s.read(s.cursor(), 100).expect("read")),
        [5, 6, 7, 8, 9, 10]
    );
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn a_crash_between_db_commit_and_cursor_update_writes_them_again() {
    let dir = temp_dir("spool-crash");
    let mut s = Spool::open(&dir).expect("open");
    s.append(&records(0, 5)).expect("append");
    // The database took records 0..5, then the process died before commit().
    drop(s);
    let s = Spool::open(&dir).expect("reopen");
    assert_eq!(s.pending(), 5, "nothing is known to be in the database");
    assert_eq!(seqs(&s.read(0, 100).expect("read")), [1, 2, 3, 4, 5]);
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn a_torn_last_line_is_cut_and_appending_goes_on() {
    let dir = temp_dir("spool-torn");
    let mut s = Spool::open(&dir).expect("open");
    s.append(&records(0, 3)).expect("append");
    let seg = s.segments[0].path.clone();
    drop(s);
    let mut f = OpenOptions::new().append(true).open(&seg).expect("segment");
    f.write_all(br#"{"seq":4,"term":1,"at":10"#).expect("torn");
    drop(f);
    let mut s = Spool::open(&dir).expect("reopen");
    assert_eq!(s.next(), 3);
    s.append(&records(3, 2)).expect("append after repair");
    assert_eq!(seqs(&s.read(0, 100).expect("read")), [1, 2, 3, 4, 5]);
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn written_segments_are_deleted_and_numbering_survives_an_empty_spool() {
    let dir = temp_dir("spool-segments");
    let mut s = Spool::open(&dir).expect("open");
    s.append(&records(0, 2)).expect("append");
    // Force a second segment.
    s.segments[0].bytes = SEGMENT_BYTES;
    s.append(&records(2, 2)).expect("append");
    assert_eq!(s.segments.len(), 2);
    s.commit(3).expect("commit");
    assert_eq!(s.segments.len(), 1, "the first segment is all written");
    s.commit(4).expect("commit");
    drop(s);
    let s = Spool::open(&dir).expect("reopen");
    assert_eq!((s.cursor(), s.next(), s.pending()), (4, 4, 0));
    let _ = fs::remove_dir_all(dir);
}
