//! The live wallboard, served on the metrics listener of a process that runs
//! a distributor (primary or standby: a standby's state follows the primary).
//!
//! ```text
//! committed records ─▶ feed task ─▶ DayBoard (today's figures) ─┐
//! core (waiting, longest wait, agents by state) ─────────────────┴▶ BoardView ─▶ GET /wallboard/state (JSON)
//!                                                                             └▶ GET /wallboard/events (SSE)
//! GET /wallboard: the page (wallboard.html, self-contained), which follows /wallboard/events.
//! ```
//!
//! A view is rendered under the locks and written after they are released, so
//! a slow screen never holds the distributor up; event streams are bounded
//! ([`MAX_STREAMS`]) and send at most one board per [`MIN_GAP`].

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use acd_records::board::{AgentCounts, BoardSettings, BoardView, DayBoard, Live};
use acd_records::{Dataset, StoreError, TimeRange};
use acd_routing::EventRecord;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, watch, Semaphore};
use tokio::time::Instant;

use crate::{now_ms, Distributor, Role};

/// Event-stream clients at most; more are answered 503.
pub const MAX_STREAMS: usize = 64;
/// Shortest gap between two boards on one stream.
pub const MIN_GAP: Duration = Duration::from_millis(500);
/// A comment line this often keeps proxies and idle timeouts from closing a quiet stream.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// A client gets this long to send its request, read a page, or take one event.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

const PAGE: &str = include_str!("wallboard.html");

/// Shared handle; cheap to clone.
#[derive(Clone)]
pub struct Wallboard {
    d: Distributor,
    board: Arc<Mutex<DayBoard>>,
    /// Bumped after every change to the board.
    changed: Arc<watch::Sender<u64>>,
    streams: Arc<Semaphore>,
}

impl Wallboard {
    /// Starts following `d`'s committed records (needs a tokio runtime).
    /// Call it right after the distributor is made, so no record is missed.
    pub fn start(d: &Distributor, settings: &BoardSettings) -> Wallboard {
        let records = d.subscribe_effects();
        let (board, zone_error) = DayBoard::new(settings, &d.config());
        if let Some(e) = zone_error {
            metrics::counter!("acd_wallboard_errors_total", "reason" => "time_zone").increment(1);
            tracing::warn!("wallboard: {e}");
        }
        let wb = Wallboard {
            d: d.clone(),
            board: Arc::new(Mutex::new(board)),
            changed: Arc::new(watch::channel(0).0),
            streams: Arc::new(Semaphore::new(MAX_STREAMS)),
        };
        tokio::spawn(wb.clone().feed(records));
        wb
    }

    /// Counts what the records database already holds for today (a restarted
    /// distributor), once, on a blocking thread: `load` is e.g.
    /// `move |range| acd_records::store::open(&db)?.load(range)`. Start-up
    /// never waits for it; a failure only leaves the day's figures partial.
    pub fn seed_with<F>(&self, load: F)
    where
        F: FnOnce(TimeRange) -> Result<Dataset, StoreError> + Send + 'static,
    {
        let today = self.lock_board().today(now_ms());
        let wb = self.clone();
        tokio::task::spawn_blocking(move || match load(today) {
            Ok(data) => {
                let calls = data.calls.len();
                wb.lock_board().seed(&data, now_ms());
                wb.changed.send_modify(|n| *n += 1);
                tracing::info!(calls, "wallboard: today's records loaded");
            }
            Err(e) => {
                metrics::counter!("acd_wallboard_errors_total", "reason" => "seed").increment(1);
                tracing::warn!(error = %e, "wallboard: today's records could not be loaded; figures count from now");
            }
        });
    }

    fn lock_board(&self) -> MutexGuard<'_, DayBoard> {
        // The board is plain counters: whatever a panicking holder left is
        // still worth showing.
        match self.board.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Applies every committed record to the day's figures.
    async fn feed(self, mut records: broadcast::Receiver<Arc<EventRecord>>) {
        loop {
            match records.recv().await {
                Ok(rec) => {
                    self.lock_board().apply(&rec);
                    self.changed.send_modify(|n| *n += 1);
                }
                Err(RecvError::Lagged(n)) => {
                    metrics::counter!("acd_wallboard_errors_total", "reason" => "lagged")
                        .increment(1);
                    tracing::warn!(
                        missed = n,
                        "wallboard fell behind the event stream; today's figures miss those records"
                    );
                }
                Err(RecvError::Closed) => return,
            }
        }
    }

    /// The board now: live parts from the core, the day's from the board.
    pub fn view(&self) -> BoardView {
        let live = {
            let inner = self.d.lock();
            let states: Vec<_> = inner.core.agents().map(|a| a.state).collect();
            Live {
                role: match inner.role {
                    Role::Primary => "primary",
                    Role::Standby { .. } => "standby",
                }
                .to_string(),
                queues: inner.core.queues(),
                agents: AgentCounts::of(&states),
            }
        };
        self.lock_board().view(now_ms(), &live)
    }

    fn view_json(&self) -> String {
        serde_json::to_string(&self.view()).unwrap_or_else(|e| {
            metrics::counter!("acd_wallboard_errors_total", "reason" => "json").increment(1);
            tracing::error!(error = %e, "wallboard: view not serialisable");
            "{}".to_string()
        })
    }

    /// Answers one request for `/wallboard…` whose head was read already.
    pub async fn serve(&self, method: &str, path: &str, mut stream: TcpStream) -> io::Result<()> {
        let head_only = method == "HEAD";
        if method != "GET" && !head_only {
            return respond(
                &mut stream,
                "405 Method Not Allowed",
                TEXT,
                "only GET and HEAD\n",
                false,
            )
            .await;
        }
        match path {
            "/wallboard" | "/wallboard/" => {
                respond(&mut stream, "200 OK", HTML, PAGE, head_only).await
            }
            "/wallboard/state" => {
                let json = self.view_json();
                respond(&mut stream, "200 OK", JSON, &json, head_only).await
            }
            "/wallboard/events" => match self.streams.clone().try_acquire_owned() {
                Ok(_permit) => {
                    metrics::gauge!("acd_wallboard_streams").increment(1.0);
                    let r = self.events(stream).await;
                    metrics::gauge!("acd_wallboard_streams").decrement(1.0);
                    r
                }
                Err(_) => {
                    metrics::counter!("acd_wallboard_errors_total", "reason" => "too_many_streams")
                        .increment(1);
                    respond(
                        &mut stream,
                        "503 Service Unavailable",
                        TEXT,
                        "too many wallboards\n",
                        head_only,
                    )
                    .await
                }
            },
            _ => {
                respond(
                    &mut stream,
                    "404 Not Found",
                    TEXT,
                    "try /wallboard\n",
                    head_only,
                )
                .await
            }
        }
    }

    /// Server-sent events: a `board` event at once and after changes, a
    /// comment when quiet, until the client goes or stops reading.
    async fn events(&self, stream: TcpStream) -> io::Result<()> {
        let (mut reader, mut writer) = stream.into_split();
        let mut changed = self.changed.subscribe();
        changed.borrow_and_update();
        let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\nretry: 2000\n\n";
        write(&mut writer, head).await?;
        write(&mut writer, &board_event(&self.view_json())).await?;
        let mut last = Instant::now();
        let mut scratch = [0u8; 256];
        loop {
            tokio::select! {
                r = changed.changed() => {
                    if r.is_err() {
                        return Ok(());
                    }
                    // Changes in the gap are in the board sent after it.
                    tokio::time::sleep_until(last + MIN_GAP).await;
                    changed.borrow_and_update();
                    write(&mut writer, &board_event(&self.view_json())).await?;
                    last = Instant::now();
                }
                () = tokio::time::sleep(KEEP_ALIVE) => {
                    write(&mut writer, ": keep-alive\n\n").await?;
                }
                // EventSource sends nothing more: a read ends only when it goes.
                n = reader.read(&mut scratch) => {
                    if n.unwrap_or(0) == 0 {
                        return Ok(());
                    }
                }
            }
        }
    }
}

fn board_event(json: &str) -> String {
    format!("event: board\ndata: {json}\n\n")
}

/// One write, bounded: a client that stops reading is let go.
async fn write(w: &mut tokio::net::tcp::OwnedWriteHalf, text: &str) -> io::Result<()> {
    match tokio::time::timeout(IO_TIMEOUT, w.write_all(text.as_bytes())).await {
        Ok(r) => r,
        Err(_) => {
            metrics::counter!("acd_wallboard_errors_total", "reason" => "slow_client").increment(1);
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "wallboard client stopped reading",
            ))
        }
    }
}

async fn respond(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &str,
    head_only: bool,
) -> io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if !head_only {
        out.push_str(body);
    }
    let send = async {
        stream.write_all(out.as_bytes()).await?;
        stream.shutdown().await
    };
    tokio::time::timeout(IO_TIMEOUT, send)
        .await
        .unwrap_or_else(|_| {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "wallboard client too slow",
            ))
        })
}

const TEXT: &str = "text/plain; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";
const JSON: &str = "application/json";

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn serves_state_page_and_a_stream_then_refuses_past_the_bound() {
        let config = acd_routing::RoutingConfig {
            queues: vec![],
            agents: vec![],
            default_wrap_up_ms: 0,
            offer_timeout_ms: 1000,
            extensions: Default::default(),
            not_ready_reasons: vec![],
        };
        let d = Distributor::new(config, Role::Primary);
        let wb = Wallboard::start(&d, &BoardSettings::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = wb.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    return;
                };
                let server = server.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    let n = s.read(&mut buf).await.unwrap_or(0);
                    let head = String::from_utf8_lossy(&buf[..n]).to_string();
                    let mut parts = head.split_whitespace();
                    let (m, p) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                    let _ = server.serve(m, p, s).await;
                });
            }
        });
        let get = |path: &'static str| async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(format!("GET {path} HTTP/1.1\r\n\r\n").as_bytes())
                .await
                .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            out
        };
        let state = get("/wallboard/state").await;
        assert!(state.starts_with("HTTP/1.1 200"), "{state}");
        let body = state.split("\r\n\r\n").nth(1).unwrap();
        let view: BoardView = serde_json::from_str(body).unwrap();
        assert_eq!(view.role, "primary");
        let page = get("/wallboard").await;
        assert!(
            page.contains("EventSource"),
            "the page follows the event stream"
        );
        assert!(get("/wallboard/nope").await.starts_with("HTTP/1.1 404"));

        // MAX_STREAMS streams, each with its first board; one more is refused.
        let mut open = Vec::new();
        for _ in 0..MAX_STREAMS {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET /wallboard/events HTTP/1.1\r\n\r\n")
                .await
                .unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            while !String::from_utf8_lossy(&got).contains("event: board") {
                let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
                    .await
                    .unwrap()
                    .unwrap();
                assert!(n > 0, "stream closed early");
                got.extend_from_slice(&buf[..n]);
            }
            open.push(s);
        }
        assert!(get("/wallboard/events").await.starts_with("HTTP/1.1 503"));
        // A closed stream frees its place (the server notices the close).
        drop(open.pop());
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET /wallboard/events HTTP/1.1\r\n\r\n")
                .await
                .unwrap();
            let mut buf = [0u8; 64];
            let n = s.read(&mut buf).await.unwrap();
            if buf[..n].starts_with(b"HTTP/1.1 200") {
                break;
            }
            assert!(Instant::now() < deadline, "the place was not freed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
