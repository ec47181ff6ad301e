//! Live hand-over between two `acd` processes with an edge: the running one
//! serves a Unix socket (`--handover-socket`); a new one started with
//! `--take-over PATH` receives the listeners, the edge's calls with their
//! RTP sockets and (in `acd run`) the distributor's state, serves, and says
//! "done"; the old one then exits 0. Until "done" the old one can resume.
//! The wire protocol is `acd_edge::handover`.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use acd_distributor::Distributor;
use acd_edge::handover::{self, Descriptors, FdKind, HandoverError, Reply};
use acd_edge::{EdgeHandle, EdgeSnapshot};
use anyhow::{Context, Result};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// How long the old process waits for the new one's verdict.
const VERDICT_TIMEOUT: Duration = Duration::from_secs(60);

/// What travels as the hand-over's payload.
#[derive(serde::Deserialize)]
pub struct Payload {
    pub edge: EdgeSnapshot,
    /// `acd run`: the distributor's state (the new process carries on as
    /// primary with the same term and log sequence).
    #[serde(default)]
    pub distributor: Option<acd_routing::Snapshot>,
    /// When the old process began to stop (µs since the epoch; both
    /// processes share the host's clock) and how long stopping took: the
    /// new one logs the phases of the whole hand-over.
    #[serde(default)]
    pub paused_at_us: u64,
    #[serde(default)]
    pub stop_us: u64,
}

/// [`Payload`] as the old process writes it: the edge's state borrowed,
/// not copied, while its calls wait.
#[derive(serde::Serialize)]
struct PayloadOut<'a> {
    edge: &'a EdgeSnapshot,
    distributor: Option<acd_routing::Snapshot>,
    paused_at_us: u64,
    stop_us: u64,
}

/// Microseconds since the epoch: comparable between the two processes.
fn unix_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// The gRPC listener behind a gate: closed during a hand-over so no
/// command reaches a distributor whose state is on its way out.
#[derive(Clone)]
pub struct GrpcGate {
    listener: Arc<TcpListener>,
    paused: watch::Sender<bool>,
}

impl GrpcGate {
    pub fn new(listener: TcpListener) -> GrpcGate {
        GrpcGate {
            listener: Arc::new(listener),
            paused: watch::channel(false).0,
        }
    }

    /// Accepted connections while the gate is open.
    pub fn incoming(&self) -> impl futures::Stream<Item = std::io::Result<TcpStream>> {
        let state = (self.listener.clone(), self.paused.subscribe());
        futures::stream::unfold(state, |(listener, mut paused)| async move {
            loop {
                if paused.wait_for(|p| !*p).await.is_err() {
                    return None;
                }
                let mut closing = paused.clone();
                tokio::select! {
                    r = listener.accept() => {
                        // As tonic's own listener does: without it, Nagle and
                        // delayed ACKs hold small responses back ~40 ms.
                        let r = r.and_then(|(s, _)| s.set_nodelay(true).map(|()| s));
                        return Some((r, (listener, paused)));
                    }
                    _ = closing.wait_for(|p| *p) => {}
                }
            }
        })
    }

    fn set_paused(&self, paused: bool) {
        self.paused.send_replace(paused);
    }
}

/// The old process's side of things.
pub struct Server {
    pub path: PathBuf,
    pub edge: EdgeHandle,
    pub grpc: GrpcGate,
    /// A copy of the metrics listener's descriptor.
    pub metrics: OwnedFd,
    pub distributor: Option<Distributor>,
}

impl Server {
    /// Listens on `path`; resolves once a hand-over completed (the process
    /// should exit 0). A failed one is logged and the edge serves on.
    pub async fn run(self) -> Result<()> {
        // A socket file left by a previous process is stale: we own the path.
        let _ = std::fs::remove_file(&self.path);
        let listener = tokio::net::UnixListener::bind(&self.path)
            .with_context(|| format!("binding the hand-over socket {}", self.path.display()))?;
        tracing::info!(path = %self.path.display(), "hand-over socket listening");
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "hand-over socket accept failed");
                    continue;
                }
            };
            match self.serve_one(stream).await {
                Ok(took) => {
                    tracing::info!(took_ms = took.as_millis() as u64, "handed over: exiting");
                    let _ = std::fs::remove_file(&self.path);
                    return Ok(());
                }
                Err(e) => {
                    metrics::counter!("acd_handover_failures_total", "reason" => failure_reason(&e))
                        .increment(1);
                    tracing::warn!(error = %e, "hand-over failed: serving on");
                }
            }
        }
    }

    async fn serve_one(&self, stream: tokio::net::UnixStream) -> Result<Duration, HandoverError> {
        let mut sock = stream.into_std()?;
        sock.set_nonblocking(false)?;
        sock.set_read_timeout(Some(VERDICT_TIMEOUT))?;
        let (mut sock, _) = blocking(move || {
            let req = handover::recv_request(&mut sock);
            (sock, req)
        })
        .await?;
        let started = Instant::now();
        let paused_at_us = unix_us();
        self.grpc.set_paused(true);
        let Some(frozen) = self.edge.hand_over().await else {
            self.grpc.set_paused(false);
            return Err(HandoverError::Protocol(
                "the edge's loop has stopped".into(),
            ));
        };
        let stop_us = started.elapsed().as_micros() as u64;
        let result = self.send(&mut sock, &frozen, (paused_at_us, stop_us)).await;
        match result {
            Ok(()) => {
                frozen.finish();
                Ok(started.elapsed())
            }
            Err(e) => {
                frozen.resume();
                self.grpc.set_paused(false);
                Err(e)
            }
        }
    }

    async fn send(
        &self,
        sock: &mut UnixStream,
        frozen: &acd_edge::Frozen,
        (paused_at_us, stop_us): (u64, u64),
    ) -> Result<(), HandoverError> {
        let payload = PayloadOut {
            edge: &frozen.snapshot,
            distributor: self.distributor.as_ref().map(|d| d.lock().core.snapshot()),
            paused_at_us,
            stop_us,
        };
        let payload = serde_json::to_vec(&payload)?;
        tracing::info!(
            bytes = payload.len(),
            descriptors = frozen.fds.len() + 2,
            took_us = unix_us().saturating_sub(paused_at_us),
            "hand-over payload ready"
        );
        let mut kinds = Vec::with_capacity(frozen.fds.len() + 2);
        let mut fds = Vec::with_capacity(frozen.fds.len() + 2);
        for (kind, fd) in &frozen.fds {
            kinds.push(kind.clone());
            fds.push(fd.try_clone()?);
        }
        kinds.push(FdKind::GrpcListener);
        fds.push(self.grpc.listener.as_fd().try_clone_to_owned()?);
        kinds.push(FdKind::MetricsListener);
        fds.push(self.metrics.try_clone()?);
        let mut s = sock.try_clone()?;
        let (_, sent) = blocking(move || {
            let borrowed: Vec<_> = fds.iter().map(AsFd::as_fd).collect();
            let r = handover::send_transfer(&mut s, kinds, &payload, &borrowed)
                .and_then(|()| handover::recv_reply(&mut s));
            (fds, r)
        })
        .await?;
        sent
    }
}

fn failure_reason(e: &HandoverError) -> &'static str {
    match e {
        HandoverError::Io(_) => "io",
        HandoverError::Version { .. } => "version",
        HandoverError::Decode(_) => "decode",
        HandoverError::Protocol(_) => "protocol",
        HandoverError::Aborted(_) => "aborted",
    }
}

/// Runs blocking socket work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, HandoverError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| HandoverError::Protocol(format!("hand-over thread: {e}")))
}

/// The new process's side: what it received, and the socket to answer on.
pub struct Taken {
    /// Taken by the edge as it starts.
    pub edge: Option<EdgeSnapshot>,
    /// `acd run`: the distributor's state.
    pub distributor: Option<acd_routing::Snapshot>,
    calls: usize,
    pub fds: Descriptors,
    sock: UnixStream,
    pub started: Instant,
    /// The hand-over's phases so far: (name, µs since the epoch).
    phases: Vec<(&'static str, u64)>,
    payload_bytes: usize,
}

/// Connects to `path` and receives everything.
pub async fn receive(path: &Path) -> Result<Taken> {
    let started = Instant::now();
    let asked_at = unix_us();
    let mut sock = UnixStream::connect(path)
        .with_context(|| format!("--take-over: cannot connect to {}", path.display()))?;
    sock.set_read_timeout(Some(VERDICT_TIMEOUT))?;
    let (sock, transfer) = blocking(move || {
        let r = handover::send_request(&mut sock).and_then(|()| handover::recv_transfer(&mut sock));
        (sock, r)
    })
    .await?;
    let transfer = transfer.context("--take-over: receiving the hand-over")?;
    let payload: Payload = match serde_json::from_slice(&transfer.payload) {
        Ok(p) => p,
        Err(e) => {
            let mut s = sock;
            let _ = handover::send_reply(&mut s, &Reply::Abort(format!("payload: {e}")));
            return Err(e).context("--take-over: the snapshot does not decode");
        }
    };
    tracing::info!(
        calls = payload.edge.core.calls.len(),
        descriptors = transfer.fds.len(),
        bytes = transfer.payload.len(),
        took_ms = started.elapsed().as_millis() as u64,
        "hand-over received"
    );
    let phases = vec![
        ("asked", asked_at),
        ("old_paused", payload.paused_at_us),
        ("old_stopped", payload.paused_at_us + payload.stop_us),
        ("received", unix_us()),
    ];
    Ok(Taken {
        calls: payload.edge.core.calls.len(),
        edge: Some(payload.edge),
        distributor: payload.distributor,
        fds: Descriptors::new(transfer.header.descriptors, transfer.fds),
        sock,
        started,
        phases,
        payload_bytes: transfer.payload.len(),
    })
}

impl Taken {
    /// A listener passed as `kind`, if it was.
    pub fn listener(&mut self, kind: FdKind) -> Result<Option<TcpListener>> {
        let Some(fd) = self.fds.take(&kind) else {
            return Ok(None);
        };
        let l = std::net::TcpListener::from(fd);
        l.set_nonblocking(true)?;
        Ok(Some(TcpListener::from_std(l)?))
    }

    /// Notes that the phase `name` has been reached (see [`Taken::done`]).
    pub fn phase(&mut self, name: &'static str) {
        self.phases.push((name, unix_us()));
    }

    /// Serving: the old process may go.
    pub fn done(mut self) -> Result<()> {
        handover::send_reply(&mut self.sock, &Reply::Done).context("telling the old process")?;
        self.phase("done");
        tracing::info!(
            took_ms = self.started.elapsed().as_millis() as u64,
            "took over: serving"
        );
        tracing::info!(
            calls = self.calls,
            bytes = self.payload_bytes,
            "hand-over phases: {}",
            phase_table(&self.phases)
        );
        Ok(())
    }
}

/// `name=+ms` per phase, relative to the old process pausing (the media
/// gap runs from there to `media_running`).
fn phase_table(phases: &[(&'static str, u64)]) -> String {
    let origin = phases
        .iter()
        .find(|(name, _)| *name == "old_paused")
        .map_or(0, |(_, at)| *at);
    let ms = |at: u64| (at as i64 - origin as i64) as f64 / 1000.0;
    phases
        .iter()
        .map(|(name, at)| format!("{name}={:+.1}ms", ms(*at)))
        .collect::<Vec<_>>()
        .join(" ")
}
