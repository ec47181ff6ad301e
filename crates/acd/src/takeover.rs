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
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Payload {
    pub edge: EdgeSnapshot,
    /// `acd run`: the distributor's state (the new process carries on as
    /// primary with the same term and log sequence).
    #[serde(default)]
    pub distributor: Option<acd_routing::Snapshot>,
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
                        return Some((r.map(|(s, _)| s), (listener, paused)));
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
        self.grpc.set_paused(true);
        let Some(frozen) = self.edge.hand_over().await else {
            self.grpc.set_paused(false);
            return Err(HandoverError::Protocol(
                "the edge's loop has stopped".into(),
            ));
        };
        let result = self.send(&mut sock, &frozen).await;
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
    ) -> Result<(), HandoverError> {
        let payload = Payload {
            edge: frozen.snapshot.clone(),
            distributor: self.distributor.as_ref().map(|d| d.lock().core.snapshot()),
        };
        let payload = serde_json::to_vec(&payload)?;
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
    pub payload: Payload,
    pub fds: Descriptors,
    sock: UnixStream,
    pub started: Instant,
}

/// Connects to `path` and receives everything.
pub async fn receive(path: &Path) -> Result<Taken> {
    let started = Instant::now();
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
        took_ms = started.elapsed().as_millis() as u64,
        "hand-over received"
    );
    Ok(Taken {
        payload,
        fds: Descriptors::new(transfer.header.descriptors, transfer.fds),
        sock,
        started,
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

    /// Serving: the old process may go.
    pub fn done(mut self) -> Result<()> {
        handover::send_reply(&mut self.sock, &Reply::Done).context("telling the old process")?;
        tracing::info!(
            took_ms = self.started.elapsed().as_millis() as u64,
            "took over: serving"
        );
        Ok(())
    }
}
