//! The durable buffer between the distributor and the database: every
//! committed record is appended (one JSON line) to a segment file before the
//! writer tries the database, so a database that is down, or a process that
//! crashes, loses nothing.
//!
//! Records are numbered from 0 in spool order. `cursor` (a small file,
//! replaced atomically: write, fsync, rename) holds the number of the first
//! record NOT known to be in the database; it is moved only after the
//! database commit. A crash between the commit and the cursor update means
//! those records are written again on restart, and the `applied_events` gate
//! skips them. Segments (`<first record number>.jsonl`) entirely below the
//! cursor are deleted.
//!
//! A crash in the middle of an append leaves a torn last line: it was never
//! fsynced, so never acknowledged to the writer, and it is cut off on open.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use acd_routing::EventRecord;

/// A new segment is started past this size.
const SEGMENT_BYTES: u64 = 8 * 1024 * 1024;
const CURSOR: &str = "cursor";
const CURSOR_TMP: &str = "cursor.tmp";
const SUFFIX: &str = ".jsonl";

/// One segment file: its first record's number and size.
#[derive(Debug, Clone)]
struct Segment {
    first: u64,
    path: PathBuf,
    bytes: u64,
}

/// The spool directory, open.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    /// Oldest first; the last one is appended to.
    segments: Vec<Segment>,
    /// The number the next appended record gets.
    next: u64,
    /// The first record not known to be in the database.
    cursor: u64,
    current: Option<BufWriter<File>>,
}

impl Spool {
    /// Opens `dir` (created if missing): reads the cursor, counts the
    /// records and cuts a torn last line.
    pub fn open(dir: &Path) -> io::Result<Spool> {
        fs::create_dir_all(dir)?;
        let cursor = read_cursor(dir)?;
        let mut segments = list_segments(dir)?;
        let mut next = cursor;
        if let Some(last) = segments.last_mut() {
            let lines = repair_tail(&last.path)?;
            last.bytes = fs::metadata(&last.path)?.len();
            next = next.max(last.first + lines);
        }
        let mut spool = Spool {
            dir: dir.to_path_buf(),
            segments,
            next,
            cursor,
            current: None,
        };
        spool.drop_written_segments()?;
        Ok(spool)
    }

    /// Records spooled but not yet in the database.
    pub fn pending(&self) -> u64 {
        self.next - self.cursor
    }

    /// The first record not yet in the database.
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// The number the next appended record gets.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// Bytes on disk in segments.
    pub fn bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes).sum()
    }

    /// Appends `records` and fsyncs once (group commit). On error nothing is
    /// counted as appended; the caller tries again with the same records (a
    /// partial line left behind is cut on the next open).
    pub fn append(&mut self, records: &[impl AsRef<EventRecord>]) -> io::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut text = Vec::with_capacity(records.len() * 512);
        for r in records {
            serde_json::to_writer(&mut text, r.as_ref())?;
            text.push(b'\n');
        }
        let needs_new = self
            .segments
            .last()
            .is_none_or(|s| s.bytes >= SEGMENT_BYTES);
        if needs_new || self.current.is_none() {
            self.open_segment(needs_new)?;
        }
        let Some(w) = self.current.as_mut() else {
            return Err(io::Error::other("no open segment"));
        };
        let result = w
            .write_all(&text)
            .and_then(|()| w.flush())
            .and_then(|()| w.get_ref().sync_data());
        if let Err(e) = result {
            // The file may end in a partial line: start a fresh segment
            // after cutting it, so the retried records are not glued to it.
            self.current = None;
            if let Some(last) = self.segments.last_mut() {
                let _ = repair_tail(&last.path);
                last.bytes = fs::metadata(&last.path)
                    .map(|m| m.len())
                    .unwrap_or(last.bytes);
            }
            return Err(e);
        }
        if let Some(last) = self.segments.last_mut() {
            last.bytes += text.len() as u64;
        }
        self.next += records.len() as u64;
        Ok(())
    }

    /// Up to `max` records from number `from` on (records below the cursor
    /// may be gone). A line that does not parse (a damaged disk) is logged,
    /// counted and skipped.
    pub fn read(&self, from: u64, max: usize) -> io::Result<Vec<EventRecord>> {
        let mut out = Vec::new();
        let start = self
            .segments
            .iter()
            .rposition(|s| s.first <= from)
            .unwrap_or(0);
        for seg in &self.segments[start..] {
            if out.len() >= max {
                break;
            }
            let file = BufReader::new(File::open(&seg.path)?);
            let skip = from.saturating_sub(seg.first) as usize;
            for line in file.lines().skip(skip) {
                if out.len() >= max {
                    break;
                }
                match serde_json::from_str(&line?) {
                    Ok(r) => out.push(r),
                    Err(e) => {
                        metrics::counter!("acd_records_spool_errors_total", "reason" => "bad_line")
                            .increment(1);
                        tracing::error!(segment = %seg.path.display(), error = %e, "unreadable spool line skipped");
                    }
                }
            }
        }
        Ok(out)
    }

    /// Every record below `upto` is in the database: moves the cursor
    /// (durably) and deletes segments no longer needed.
    pub fn commit(&mut self, upto: u64) -> io::Result<()> {
        let upto = upto.min(self.next);
        if upto <= self.cursor {
            return Ok(());
        }
        write_cursor(&self.dir, upto)?;
        self.cursor = upto;
        self.drop_written_segments()
    }

    fn open_segment(&mut self, new: bool) -> io::Result<()> {
        let seg = match self.segments.last() {
            Some(last) if !new => last.clone(),
            _ => {
                let path = self.dir.join(format!("{:020}{SUFFIX}", self.next));
                let seg = Segment {
                    first: self.next,
                    path,
                    bytes: 0,
                };
                self.segments.push(seg.clone());
                seg
            }
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&seg.path)?;
        if new {
            sync_dir(&self.dir)?;
        }
        self.current = Some(BufWriter::new(file));
        Ok(())
    }

    /// Deletes segments whose records are all below the cursor (never the
    /// one being appended to).
    fn drop_written_segments(&mut self) -> io::Result<()> {
        while self.segments.len() > 1 && self.segments[1].first <= self.cursor {
            let seg = self.segments.remove(0);
            fs::remove_file(&seg.path)?;
        }
        Ok(())
    }
}

fn read_cursor(dir: &Path) -> io::Result<u64> {
    match fs::read_to_string(dir.join(CURSOR)) {
        Ok(text) => text.trim().parse().map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("spool cursor {}: {e}", dir.join(CURSOR).display()),
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e),
    }
}

fn write_cursor(dir: &Path, value: u64) -> io::Result<()> {
    let tmp = dir.join(CURSOR_TMP);
    {
        let mut f = File::create(&tmp)?;
        writeln!(f, "{value}")?;
        f.sync_data()?;
    }
    fs::rename(&tmp, dir.join(CURSOR))?;
    sync_dir(dir)
}

/// Makes a rename or a new file in `dir` durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn list_segments(dir: &Path) -> io::Result<Vec<Segment>> {
    let mut segments = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(first) = name
            .to_str()
            .and_then(|n| n.strip_suffix(SUFFIX))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        segments.push(Segment {
            first,
            path: entry.path(),
            bytes: entry.metadata()?.len(),
        });
    }
    segments.sort_by_key(|s| s.first);
    Ok(segments)
}

/// Cuts anything after the last newline (a torn append); the complete lines.
fn repair_tail(path: &Path) -> io::Result<u64> {
    let data = fs::read(path)?;
    let keep = data.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    if keep < data.len() {
        tracing::warn!(segment = %path.display(), cut = data.len() - keep, "torn spool line cut");
        metrics::counter!("acd_records_spool_errors_total", "reason" => "torn_line").increment(1);
        let f = OpenOptions::new().write(true).open(path)?;
        f.set_len(keep as u64)?;
        f.sync_all()?;
    }
    Ok(data[..keep].iter().filter(|&&b| b == b'\n').count() as u64)
}

#[cfg(test)]
#[path = "spool_tests.rs"]
mod tests;
