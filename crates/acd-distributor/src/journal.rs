//! The event journal: every committed [`EventRecord`] appended as one JSON line
//! to `<dir>/events-YYYY-MM-DD.jsonl` (the UTC day of the record's `at`), for
//! `acdctl replay` and offline reports.
//!
//! Data flow: effects stream (records released after durability, on the primary
//! and on a standby alike) → one writer thread → files. The writer only ever
//! reads from the broadcast channel, so a slow disk never holds up a command;
//! if it falls so far behind that the channel overwrites records, the gap is
//! counted (`acd_journal_dropped_total`) and logged, and writing goes on.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use acd_routing::{EventRecord, Timestamp};
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};

/// File name prefix and suffix of a day's journal.
const PREFIX: &str = "events-";
const SUFFIX: &str = ".jsonl";

/// Starts writing the distributor's committed events under `dir` (created if
/// missing). The thread ends when the distributor is dropped.
pub fn spawn(d: &crate::Distributor, dir: PathBuf) -> io::Result<std::thread::JoinHandle<()>> {
    std::fs::create_dir_all(&dir)?;
    let events = d.subscribe_effects();
    tracing::info!(dir = %dir.display(), "event journal on");
    std::thread::Builder::new()
        .name("acd-journal".into())
        .spawn(move || Writer::new(dir).run(events))
}

/// `events-YYYY-MM-DD.jsonl` for the UTC day of `at`.
pub fn file_name(at: Timestamp) -> String {
    let (y, m, d) = civil_date(at);
    format!("{PREFIX}{y:04}-{m:02}-{d:02}{SUFFIX}")
}

/// The UTC calendar date of a Unix time in milliseconds (H. Hinnant's
/// `civil_from_days`), so the core's timestamps need no time library here.
fn civil_date(at: Timestamp) -> (i64, u32, u32) {
    let days = (at.0 / 86_400_000) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

struct Writer {
    dir: PathBuf,
    /// The open day file and its name.
    open: Option<(String, BufWriter<File>)>,
}

impl Writer {
    fn new(dir: PathBuf) -> Writer {
        Writer { dir, open: None }
    }

    fn run(mut self, mut events: broadcast::Receiver<Arc<EventRecord>>) {
        loop {
            match events.blocking_recv() {
                Ok(rec) => self.write(&rec),
                Err(RecvError::Lagged(n)) => dropped(n),
                Err(RecvError::Closed) => break,
            }
            // Drain what is already there, then flush once per batch.
            loop {
                match events.try_recv() {
                    Ok(rec) => self.write(&rec),
                    Err(TryRecvError::Lagged(n)) => dropped(n),
                    Err(TryRecvError::Empty | TryRecvError::Closed) => break,
                }
            }
            self.flush();
        }
        self.flush();
    }

    fn write(&mut self, rec: &EventRecord) {
        if let Err(e) = self.try_write(rec) {
            metrics::counter!("acd_journal_errors_total", "reason" => "write").increment(1);
            tracing::warn!(seq = rec.seq.0, error = %e, "journal: cannot write event");
            // Reopen on the next record: the file may have been moved away.
            self.open = None;
        }
    }

    fn try_write(&mut self, rec: &EventRecord) -> io::Result<()> {
        let name = file_name(rec.at);
        if self.open.as_ref().is_none_or(|(open, _)| *open != name) {
            self.flush();
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.dir.join(&name))?;
            self.open = Some((name, BufWriter::new(file)));
        }
        let Some((_, out)) = self.open.as_mut() else {
            return Ok(());
        };
        serde_json::to_writer(&mut *out, rec)?;
        out.write_all(b"\n")?;
        metrics::counter!("acd_journal_events_total").increment(1);
        Ok(())
    }

    fn flush(&mut self) {
        if let Some((_, out)) = self.open.as_mut() {
            if let Err(e) = out.flush() {
                metrics::counter!("acd_journal_errors_total", "reason" => "flush").increment(1);
                tracing::warn!(error = %e, "journal: cannot flush");
                self.open = None;
            }
        }
    }
}

fn dropped(n: u64) {
    metrics::counter!("acd_journal_dropped_total").increment(n);
    tracing::warn!(
        dropped = n,
        "journal fell behind; events lost from the journal"
    );
}

/// Why a journal could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("{path}:{line}: not an event record: {source}")]
    Parse {
        path: String,
        line: usize,
        source: serde_json::Error,
    },
}

/// Every record of a journal file, or of every `events-*.jsonl` in a
/// directory (by name, so by day), in log order. Blank lines are skipped; a
/// torn last line (the process died mid-write) ends that file's records.
pub fn read(path: &Path) -> Result<Vec<EventRecord>, ReadError> {
    let io_err = |source| ReadError::Io {
        path: path.display().to_string(),
        source,
    };
    let files = if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(io_err)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(PREFIX) && n.ends_with(SUFFIX))
            })
            .collect();
        files.sort();
        files
    } else {
        vec![path.to_path_buf()]
    };
    let mut out = Vec::new();
    for file in files {
        read_file(&file, &mut out)?;
    }
    out.sort_by_key(|r| r.seq);
    Ok(out)
}

fn read_file(path: &Path, out: &mut Vec<EventRecord>) -> Result<(), ReadError> {
    let name = || path.display().to_string();
    let file = File::open(path).map_err(|source| ReadError::Io {
        path: name(),
        source,
    })?;
    let lines: Vec<String> = io::BufReader::new(file)
        .lines()
        .collect::<Result<_, _>>()
        .map_err(|source| ReadError::Io {
            path: name(),
            source,
        })?;
    let last = lines.len();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(rec) => out.push(rec),
            Err(_) if i + 1 == last => {
                metrics::counter!("acd_journal_errors_total", "reason" => "torn_line").increment(1);
                tracing::warn!(file = %name(), line = i + 1, "journal: torn last line skipped");
            }
            Err(source) => {
                return Err(ReadError::Parse {
                    path: name(),
                    line: i + 1,
                    source,
                })
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Distributor, Role};
    use acd_routing::{AgentId, Command, Extension, RoutingConfig};

    #[test]
    fn day_file_names() {
        assert_eq!(file_name(Timestamp(0)), "events-1970-01-01.jsonl");
        // 2026-11-28T23:59:59.999Z and a millisecond later.
        assert_eq!(
            file_name(Timestamp(1_795_910_399_999)),
            "events-2026-11-28.jsonl"
        );
        assert_eq!(
            file_name(Timestamp(1_795_910_400_000)),
            "events-2026-11-29.jsonl"
        );
        assert_eq!(
            file_name(Timestamp(1_709_164_800_000)),
            "events-2024-02-29.jsonl"
        );
    }

    fn config() -> RoutingConfig {
        RoutingConfig {
            queues: vec![],
            agents: vec![acd_routing::AgentDef {
                id: AgentId("a".into()),
                name: "A".into(),
                skills: vec![],
                auto_answer: false,
            }],
            default_wrap_up_ms: 1000,
            offer_timeout_ms: 1000,
            extensions: Default::default(),
            not_ready_reasons: vec![],
        }
    }

    #[test]
    fn committed_events_reach_the_day_file_and_read_back() {
        let dir = std::env::temp_dir().join(format!("acd-journal-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let _in_rt = rt.enter();
        let d = Distributor::new(config(), Role::Primary);
        d.set_serving(true, "");
        spawn(&d, dir.clone()).expect("spawn");
        let agent = AgentId("a".into());
        let mut written = d
            .command(Command::AgentLogin {
                agent: agent.clone(),
                extension: Extension("1001".into()),
            })
            .expect("login");
        written.extend(d.command(Command::AgentReady { agent }).expect("ready"));
        // The writer is asynchronous: wait (bounded) until it has caught up.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let back = loop {
            let back = read(&dir).unwrap_or_default();
            if back.len() >= written.len() || std::time::Instant::now() > deadline {
                break back;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        assert_eq!(back, written);
        // A torn last line is skipped, a bad line in the middle is an error.
        let file = dir.join(file_name(written[0].at));
        let mut text = std::fs::read_to_string(&file).unwrap();
        text.push_str("{\"seq\":");
        std::fs::write(&file, &text).unwrap();
        assert_eq!(read(&file).expect("torn tail").len(), written.len());
        text.push_str("\n{}\n");
        std::fs::write(&file, &text).unwrap();
        assert!(matches!(read(&file), Err(ReadError::Parse { line: 3, .. })));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
