//! A made-up order-status API, so the shipped sample flow's lookup answers
//! without a real back office: `GET /orders/<digits>` →
//! `{"order":"<n>","status":"shipped|processing|delivered","eta":"YYYY-MM-DD"}`.
//!
//! The answer depends only on the number's last digit and today's date:
//! 1-3 shipped, 4-6 processing, 7-9 delivered, 0 not found (404); the eta is
//! 1 to 5 days after today (UTC). Everything else is 404 (other paths), 405
//! (other methods) or 400 (not HTTP/1.x).
//!
//! Served by `acd run` when `[demo] orders_listen` is set, or alone by
//! `acd demo-orders --listen ADDR`. Like `http.rs`: one request per
//! connection, `Connection: close`, a bounded head, a deadline per connection.
//! [`answer`] is the whole protocol, without I/O or clock.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::Semaphore;

/// Largest request head read; a longer one is answered 400.
const MAX_HEAD: usize = 4 * 1024;
/// A client gets this long to send its request and read the answer.
const CONN_TIMEOUT: Duration = Duration::from_secs(5);
/// After answering an unfinished head, how long and how much of the rest is
/// read before closing.
const LINGER: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 64 * 1024;
/// Connections served at once; one more is closed at once.
const MAX_CONNECTIONS: usize = 64;
/// Longest order number looked up; longer ones are not found.
const MAX_ORDER_DIGITS: usize = 32;
const SECS_PER_DAY: u64 = 86_400;

/// An order's state, chosen by the last digit of its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderStatus {
    Shipped,
    Processing,
    Delivered,
}

impl OrderStatus {
    fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Shipped => "shipped",
            OrderStatus::Processing => "processing",
            OrderStatus::Delivered => "delivered",
        }
    }
}

/// A response: status code and JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub body: String,
    /// HEAD: the same head, no body.
    pub head_only: bool,
}

impl Reply {
    fn error(code: u16, what: &str) -> Reply {
        Reply {
            code,
            body: format!("{{\"error\":\"{what}\"}}"),
            head_only: false,
        }
    }

    /// The bytes on the wire.
    pub fn render(&self) -> Vec<u8> {
        let allow = if self.code == 405 {
            "Allow: GET, HEAD\r\n"
        } else {
            ""
        };
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{allow}Connection: close\r\n\r\n",
            self.code,
            reason_phrase(self.code),
            self.body.len()
        )
        .into_bytes();
        if !self.head_only {
            out.extend_from_slice(self.body.as_bytes());
        }
        out
    }
}

fn reason_phrase(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Error",
    }
}

/// The answer to a request head (everything up to the blank line), at
/// `now_unix_secs`.
#[must_use]
pub fn answer(head: &[u8], now_unix_secs: u64) -> Reply {
    let Some((method, path)) = request_line(head) else {
        return Reply::error(400, "bad request");
    };
    let head_only = method == "HEAD";
    let mut reply = match method {
        "GET" | "HEAD" => route(path, now_unix_secs / SECS_PER_DAY),
        _ => Reply::error(405, "method not allowed"),
    };
    reply.head_only = head_only;
    reply
}

/// Method and path (query dropped) of a well-formed HTTP/1.x request line.
fn request_line(head: &[u8]) -> Option<(&str, &str)> {
    let line = head.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim_end_matches('\r');
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    let well_formed = parts.next().is_none()
        && !method.is_empty()
        && method.bytes().all(|b| b.is_ascii_uppercase())
        && target.starts_with('/')
        && matches!(version, "HTTP/1.0" | "HTTP/1.1");
    if !well_formed {
        return None;
    }
    let path = target.split('?').next().unwrap_or_default();
    Some((method, path))
}

fn route(path: &str, today: u64) -> Reply {
    let number = path
        .strip_prefix("/orders/")
        .filter(|n| (1..=MAX_ORDER_DIGITS).contains(&n.len()))
        .filter(|n| n.bytes().all(|b| b.is_ascii_digit()));
    match number.and_then(|n| order(n, today)) {
        Some(body) => Reply {
            code: 200,
            body,
            head_only: false,
        },
        None => Reply::error(404, "not found"),
    }
}

/// The JSON of order `number` (ASCII digits), `None` when it does not exist.
fn order(number: &str, today: u64) -> Option<String> {
    let last = u64::from(number.bytes().last()? - b'0');
    let status = match last {
        0 => return None,
        1..=3 => OrderStatus::Shipped,
        4..=6 => OrderStatus::Processing,
        _ => OrderStatus::Delivered,
    };
    let (y, m, d) = civil_date(today + 1 + last / 2);
    Some(format!(
        "{{\"order\":\"{number}\",\"status\":\"{}\",\"eta\":\"{y:04}-{m:02}-{d:02}\"}}",
        status.as_str()
    ))
}

/// Year, month, day of a day number counted from 1970-01-01 (proleptic
/// Gregorian; H. Hinnant's `civil_from_days`).
fn civil_date(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Binds the demo listener. SO_REUSEPORT lets a process taking over from
/// this one (`acd run --take-over`) bind the same address before this one
/// exits: the demo is not among the sockets handed over.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    let bound = (|| {
        let socket = match addr {
            SocketAddr::V4(_) => TcpSocket::new_v4()?,
            SocketAddr::V6(_) => TcpSocket::new_v6()?,
        };
        socket.set_reuseaddr(true)?;
        socket.set_reuseport(true)?;
        socket.bind(addr)?;
        socket.listen(128)
    })();
    bound.with_context(|| format!("cannot bind the demo orders listener on {addr}"))
}

/// Serves on a bound listener until the runtime stops.
pub fn spawn(listener: TcpListener) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::spawn(async move {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    // E.g. out of file descriptors: back off instead of spinning.
                    tracing::warn!("demo orders listener: accept failed: {e}");
                    metrics::counter!("acd_demo_orders_refused_total", "reason" => "accept")
                        .increment(1);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                metrics::counter!("acd_demo_orders_refused_total", "reason" => "busy").increment(1);
                continue;
            };
            tokio::spawn(async move {
                let _slot = slot;
                match tokio::time::timeout(CONN_TIMEOUT, serve_conn(stream)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        metrics::counter!("acd_demo_orders_refused_total", "reason" => "io")
                            .increment(1);
                        tracing::debug!(%peer, "demo orders connection: {e}");
                    }
                    Err(_) => {
                        metrics::counter!("acd_demo_orders_refused_total", "reason" => "timeout")
                            .increment(1);
                        tracing::debug!(%peer, "demo orders connection timed out");
                    }
                }
            });
        }
    });
}

async fn serve_conn(mut stream: TcpStream) -> std::io::Result<()> {
    let Some(head) = read_head(&mut stream).await? else {
        return Ok(());
    };
    let (reply, unread) = match head {
        Head::Complete(head) => (answer(&head, unix_now_secs()), false),
        Head::Unfinished => (Reply::error(400, "bad request"), true),
    };
    metrics::counter!("acd_demo_orders_responses_total", "code" => reply.code.to_string())
        .increment(1);
    tracing::debug!(code = reply.code, "demo orders request");
    stream.write_all(&reply.render()).await?;
    stream.shutdown().await?;
    if unread {
        // Closing with unread input sends a RST, which can destroy the
        // answer before the client reads it: take (a bounded amount of) the rest.
        let _ = tokio::time::timeout(LINGER, drain(&mut stream)).await;
    }
    Ok(())
}

/// Reads and drops what the client still sends, up to [`LINGER_BYTES`].
async fn drain(stream: &mut TcpStream) -> std::io::Result<()> {
    let mut buf = [0u8; 1024];
    let mut left = LINGER_BYTES;
    while left > 0 {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        left = left.saturating_sub(n);
    }
    Ok(())
}

/// A request head as read from a connection.
enum Head {
    Complete(Vec<u8>),
    /// Over [`MAX_HEAD`], or the peer stopped sending before the blank line.
    Unfinished,
}

/// Reads up to the blank line; `None` if the peer sent nothing at all.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<Head>> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    loop {
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
            return Ok(Some(Head::Complete(head)));
        }
        if head.len() >= MAX_HEAD {
            return Ok(Some(Head::Unfinished));
        }
        let want = buf.len().min(MAX_HEAD - head.len());
        let n = stream.read(&mut buf[..want]).await?;
        if n == 0 {
            return Ok((!head.is_empty()).then_some(Head::Unfinished));
        }
        head.extend_from_slice(&buf[..n]);
    }
}

fn unix_now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `acd demo-orders`: the demo alone, optionally with `/metrics`; prints
/// `ACD READY role=demo-orders orders=ADDR [metrics=ADDR]` and serves until
/// SIGINT or SIGTERM.
pub async fn standalone(listen: SocketAddr, metrics_listen: Option<SocketAddr>) -> Result<()> {
    use std::io::Write as _;

    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let listener = bind(listen).await?;
    let addr = listener
        .local_addr()
        .context("local address of the demo orders listener")?;
    let mut ready = format!("ACD READY role=demo-orders orders={addr}");
    if let Some(metrics_addr) = metrics_listen {
        let prometheus = crate::telemetry::install()?;
        let metrics_listener = TcpListener::bind(metrics_addr)
            .await
            .with_context(|| format!("cannot bind the metrics listener on {metrics_addr}"))?;
        let bound = metrics_listener
            .local_addr()
            .context("local address of the metrics listener")?;
        let (reporter, _) = tonic_health::server::health_reporter();
        let readiness = crate::health::Readiness::new(reporter, Arc::new(OnceLock::new()));
        readiness.set(true).await;
        crate::http::spawn(metrics_listener, prometheus, readiness);
        ready.push_str(&format!(" metrics={bound}"));
    }
    spawn(listener);
    tracing::info!(%addr, "demo orders API listening (GET /orders/<digits>)");
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{ready}").context("writing the READY line to stdout")?;
        stdout.flush().context("flushing stdout")?;
    }
    let signal = tokio::select! {
        _ = sigint.recv() => "SIGINT",
        _ = sigterm.recv() => "SIGTERM",
    };
    tracing::info!("{signal}: demo orders API stopping");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-28 00:00:00 UTC.
    const NOV_28_2026: u64 = 1_795_824_000;

    fn get(path: &str) -> Reply {
        answer(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
            NOV_28_2026 + 3_600,
        )
    }

    fn json(r: &Reply) -> serde_json::Value {
        serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{:?}: {e}", r.body))
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(19_782), (2024, 2, 29));
        assert_eq!(civil_date(19_783), (2024, 3, 1));
        assert_eq!(civil_date(NOV_28_2026 / SECS_PER_DAY), (2026, 11, 28));
        assert_eq!(civil_date(NOV_28_2026 / SECS_PER_DAY + 34), (2027, 1, 1));
    }

    #[test]
    fn orders_by_last_digit() {
        let r = get("/orders/12341");
        assert_eq!(r.code, 200);
        assert_eq!(
            json(&r),
            serde_json::json!({"order": "12341", "status": "shipped", "eta": "2026-11-29"})
        );
        let r = get("/orders/5");
        assert_eq!(
            json(&r),
            serde_json::json!({"order": "5", "status": "processing", "eta": "2026-12-01"})
        );
        let r = get("/orders/0009?lang=en");
        assert_eq!(
            json(&r),
            serde_json::json!({"order": "0009", "status": "delivered", "eta": "2026-12-03"})
        );
        let statuses: Vec<_> = (1..=9)
            .map(|d| json(&get(&format!("/orders/7{d}")))["status"].clone())
            .collect();
        assert_eq!(
            statuses,
            [
                "shipped",
                "shipped",
                "shipped",
                "processing",
                "processing",
                "processing",
                "delivered",
                "delivered",
                "delivered"
            ]
        );
    }

    #[test]
    fn unknown_orders_and_paths_are_404() {
        for path in [
            "/orders/10",
            "/orders/",
            "/orders/12a",
            "/orders/-1",
            "/orders/1/2",
            "/orders",
            "/",
            "/order/11",
        ] {
            let r = get(path);
            assert_eq!(
                (r.code, r.body.as_str()),
                (404, r#"{"error":"not found"}"#),
                "{path}"
            );
        }
        let long = format!("/orders/{}", "1".repeat(MAX_ORDER_DIGITS + 1));
        assert_eq!(get(&long).code, 404);
        let longest = format!("/orders/{}", "1".repeat(MAX_ORDER_DIGITS));
        assert_eq!(get(&longest).code, 200);
    }

    #[test]
    fn methods_and_garbage() {
        let post = answer(b"POST /orders/11 HTTP/1.1\r\n\r\n", NOV_28_2026);
        assert_eq!(post.code, 405);
        assert!(String::from_utf8_lossy(&post.render()).contains("\r\nAllow: GET, HEAD\r\n"));
        for garbage in [
            &b"hello\r\n\r\n"[..],
            b"GET /orders/11\r\n\r\n",
            b"GET /orders/11 HTTP/2\r\n\r\n",
            b"GET  /orders/11 HTTP/1.1\r\n\r\n",
            b"get /orders/11 HTTP/1.1\r\n\r\n",
            b"GET orders/11 HTTP/1.1\r\n\r\n",
            b"GET /orders/11 HTTP/1.1 x\r\n\r\n",
            b"\xff\xfe /orders/11 HTTP/1.1\r\n\r\n",
            b"",
        ] {
            let r = answer(garbage, NOV_28_2026);
            assert_eq!(
                (r.code, r.body.as_str()),
                (400, r#"{"error":"bad request"}"#),
                "{garbage:?}"
            );
        }
        // HTTP/1.0 and bare newlines are fine.
        assert_eq!(
            answer(b"GET /orders/11 HTTP/1.0\n\n", NOV_28_2026).code,
            200
        );
    }

    #[test]
    fn head_has_no_body_but_the_length() {
        let r = answer(b"HEAD /orders/11 HTTP/1.1\r\n\r\n", NOV_28_2026);
        assert_eq!(r.code, 200);
        let wire = String::from_utf8(r.render()).unwrap();
        assert!(wire.ends_with("\r\n\r\n"), "{wire:?}");
        assert!(wire.contains(&format!("Content-Length: {}\r\n", r.body.len())));
    }

    #[test]
    fn rendered_response() {
        let wire = String::from_utf8(get("/orders/10").render()).unwrap();
        assert_eq!(
            wire,
            "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 21\r\nConnection: close\r\n\r\n{\"error\":\"not found\"}"
        );
    }

    /// Over a socket: an oversized head gets 400 without being read to its end;
    /// a connection closed without a byte gets nothing.
    #[tokio::test]
    async fn bounded_head_over_a_socket() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        spawn(listener);

        let mut s = TcpStream::connect(addr).await.unwrap();
        let big = format!(
            "GET /orders/11 HTTP/1.1\r\nX: {}\r\n",
            "a".repeat(2 * MAX_HEAD)
        );
        s.write_all(big.as_bytes()).await.unwrap();
        let mut got = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut got))
            .await
            .expect("answered in time")
            .unwrap_or_default();
        let got = String::from_utf8_lossy(&got);
        assert!(got.starts_with("HTTP/1.1 400 "), "{got:?}");

        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /orders/14 HTTP/1.1\r\n\r\n")
            .await
            .unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        let got = String::from_utf8_lossy(&got);
        assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{got:?}");
        assert!(got.contains("\"status\":\"processing\""), "{got:?}");

        let mut s = TcpStream::connect(addr).await.unwrap();
        s.shutdown().await.unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        assert!(got.is_empty(), "{got:?}");
    }
}
