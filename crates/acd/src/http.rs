//! A tiny HTTP/1.x endpoint for Prometheus (`GET /metrics`) and load
//! balancers (`GET /ready`: 200 or 503). One request per connection,
//! `Connection: close`; anything bigger than that does not belong here.
//! A process may add routes under one prefix ([`Extra`], e.g. the
//! distributor's `/wallboard`): they get the connection once the request head
//! is read and set their own time limits (an event stream lives long).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::health::Readiness;

/// Largest request head read; the rest is ignored.
const MAX_HEAD: usize = 8 * 1024;
/// A client gets this long to send its request and read the answer.
const CONN_TIMEOUT: Duration = Duration::from_secs(5);
/// How often histograms/summaries are rolled up.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Routes under `prefix` (the path itself or below it), served by another
/// part of the process: called with the method, the path without its query,
/// and the connection.
#[derive(Clone)]
pub struct Extra {
    pub prefix: &'static str,
    pub serve: ExtraFn,
}

pub type ExtraFn = Arc<
    dyn Fn(String, String, TcpStream) -> Pin<Box<dyn Future<Output = std::io::Result<()>> + Send>>
        + Send
        + Sync,
>;

impl Extra {
    fn wants(&self, path: &str) -> bool {
        path.strip_prefix(self.prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }
}

/// Serves on an already bound listener until the runtime stops.
pub fn spawn(listener: TcpListener, handle: PrometheusHandle, readiness: Arc<Readiness>) {
    spawn_with(listener, handle, readiness, None);
}

/// [`spawn`], with `extra` routes.
pub fn spawn_with(
    listener: TcpListener,
    handle: PrometheusHandle,
    readiness: Arc<Readiness>,
    extra: Option<Extra>,
) {
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(UPKEEP_EVERY);
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });
    tokio::spawn(async move {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    // E.g. out of file descriptors: back off instead of spinning.
                    tracing::warn!("metrics listener: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let handle = handle.clone();
            let readiness = readiness.clone();
            let extra = extra.clone();
            tokio::spawn(async move {
                match serve_conn(stream, &handle, &readiness, extra).await {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                        tracing::debug!(%peer, "metrics connection timed out")
                    }
                    Err(e) => tracing::debug!(%peer, "metrics connection: {e}"),
                }
            });
        }
    });
}

async fn serve_conn(
    mut stream: TcpStream,
    handle: &PrometheusHandle,
    readiness: &Readiness,
    extra: Option<Extra>,
) -> std::io::Result<()> {
    let timed_out = || std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out");
    let deadline = tokio::time::Instant::now() + CONN_TIMEOUT;
    let (method, path) = tokio::time::timeout_at(deadline, read_head(&mut stream))
        .await
        .map_err(|_| timed_out())??;
    if let Some(x) = extra.filter(|x| x.wants(&path)) {
        return (x.serve)(method, path, stream).await;
    }
    tokio::time::timeout_at(deadline, answer(stream, &method, &path, handle, readiness))
        .await
        .map_err(|_| timed_out())?
}

/// The request line's method and path (without the query).
async fn read_head(stream: &mut TcpStream) -> std::io::Result<(String, String)> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n")
        && !head.windows(2).any(|w| w == b"\n\n")
        && head.len() < MAX_HEAD
    {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&head);
    let mut parts = head.lines().next().unwrap_or_default().split_whitespace();
    let method = parts.next().unwrap_or_default();
    let path = parts
        .next()
        .unwrap_or_default()
        .split('?')
        .next()
        .unwrap_or_default();
    Ok((method.to_string(), path.to_string()))
}

async fn answer(
    mut stream: TcpStream,
    method: &str,
    path: &str,
    handle: &PrometheusHandle,
    readiness: &Readiness,
) -> std::io::Result<()> {
    let (status, content_type, body) = match (method, path) {
        ("GET" | "HEAD", "/metrics") => ("200 OK", "text/plain; version=0.0.4", handle.render()),
        ("GET" | "HEAD", "/ready") if readiness.is_ready() => {
            ("200 OK", TEXT, "ready\n".to_string())
        }
        ("GET" | "HEAD", "/ready") => ("503 Service Unavailable", TEXT, "not ready\n".to_string()),
        ("GET" | "HEAD", _) => (
            "404 Not Found",
            TEXT,
            "try /metrics or /ready\n".to_string(),
        ),
        _ => (
            "405 Method Not Allowed",
            TEXT,
            "only GET and HEAD\n".to_string(),
        ),
    };
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if method != "HEAD" {
        out.extend_from_slice(body.as_bytes());
    }
    stream.write_all(&out).await?;
    stream.shutdown().await
}

const TEXT: &str = "text/plain; charset=utf-8";
