//! HTTP lookups for the flows (`Action::Lookup`): a GET bounded in time and
//! size whose JSON object answer becomes `Event::LookupDone` fields, stepped
//! straight back into the flow. They run inside the Step handler's own task,
//! so a slow company system delays only its own caller.
//!
//! ```text
//! step → [.., Lookup] → GET url ─▶ LookupDone / LookupFailed → step → …
//! ```
//! (at most [`MAX_ROUNDS`] lookups per Step; the other actions of every
//! round are returned together).

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use acd_ivr::{Action, Event};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::{header, Request, Uri};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// A flow's timeout is capped: the edge waits for the whole Step.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(5);
/// All the lookups of one Step together: the edge gives a Step 10 s before
/// it tries another runner, so the answer must be back well before that.
pub const STEP_BUDGET: Duration = Duration::from_secs(8);
/// Largest response body read; a bigger one fails the lookup.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Lookups per Step: a flow chaining lookups without input cannot spin.
pub const MAX_ROUNDS: usize = 4;
/// Fields taken from one answer; they travel in the session with every step.
const MAX_FIELDS: usize = 64;
/// Nesting flattened into `a.b.c` keys; deeper objects are skipped.
const MAX_DEPTH: usize = 3;
/// Longest field value kept (longer ones are skipped, not cut).
const MAX_VALUE_CHARS: usize = 1024;

/// Runs the lookups `actions` ends with: each is fetched, and `step` is
/// called with its outcome; returns the other actions of every round, in
/// order. `step` advances the caller's session (it is the interpreter, or a
/// stand-in in tests).
pub async fn run_lookups<E>(
    call_id: &str,
    mut actions: Vec<Action>,
    mut step: impl FnMut(Event) -> Result<Vec<Action>, E>,
) -> Result<Vec<Action>, E> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + STEP_BUDGET;
    for round in 0..=MAX_ROUNDS {
        let Some(Action::Lookup { url, timeout_ms }) = actions.last().cloned() else {
            break;
        };
        actions.pop();
        out.append(&mut actions);
        let event = if round == MAX_ROUNDS {
            metrics::counter!("acd_ivr_lookups_total", "outcome" => "too_many").increment(1);
            tracing::warn!(call_id, %url, "lookup refused: too many lookups in one step");
            Event::LookupFailed {
                reason: format!("more than {MAX_ROUNDS} lookups in one step"),
            }
        } else {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            lookup_within(call_id, &url, timeout_ms, left).await
        };
        actions = step(event)?;
    }
    // A flow still asking after its last chance: the edge gets no Lookup.
    actions.retain(|a| !matches!(a, Action::Lookup { .. }));
    out.append(&mut actions);
    Ok(out)
}

/// One lookup as the event the flow gets, counted and logged by outcome.
pub async fn lookup(call_id: &str, url: &str, timeout_ms: u32) -> Event {
    lookup_within(call_id, url, timeout_ms, STEP_BUDGET).await
}

/// A lookup given at most `left` of the Step's budget.
async fn lookup_within(call_id: &str, url: &str, timeout_ms: u32, left: Duration) -> Event {
    let limit = match timeout_ms {
        0 => MAX_TIMEOUT,
        ms => Duration::from_millis(u64::from(ms)).min(MAX_TIMEOUT),
    }
    .min(left);
    let started = std::time::Instant::now();
    let result = match tokio::time::timeout(limit, get(url)).await {
        Ok(r) => r,
        Err(_) => Err(Failure::Timeout(limit)),
    };
    let ms = started.elapsed().as_millis() as u64;
    let (outcome, event) = match result {
        Ok((status, body)) => answer(status, &body),
        Err(f) => (
            f.label(),
            Event::LookupFailed {
                reason: f.to_string(),
            },
        ),
    };
    metrics::counter!("acd_ivr_lookups_total", "outcome" => outcome).increment(1);
    match &event {
        Event::LookupFailed { reason } => {
            tracing::warn!(call_id, url, ms, outcome, %reason, "lookup failed")
        }
        _ => tracing::info!(call_id, url, ms, outcome, "lookup answered"),
    }
    event
}

/// The event for an HTTP answer: a 2xx must carry a JSON object; any other
/// status is passed on (the flow branches on it) with whatever fields parse.
fn answer(status: u16, body: &[u8]) -> (&'static str, Event) {
    let fields = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| match v {
            Value::Object(map) => Some(flatten(&map)),
            _ => None,
        });
    match (200..300).contains(&status) {
        true => match fields {
            Some(fields) => (
                "ok",
                Event::LookupDone {
                    http_status: status,
                    fields,
                },
            ),
            None => (
                "bad_body",
                Event::LookupFailed {
                    reason: format!("HTTP {status}: the body is not a JSON object"),
                },
            ),
        },
        false => (
            "http_error",
            Event::LookupDone {
                http_status: status,
                fields: fields.unwrap_or_default(),
            },
        ),
    }
}

/// Top-level fields as strings: numbers and booleans as text, nested
/// objects as `a.b`; arrays, nulls and over-long values are skipped.
pub fn flatten(map: &serde_json::Map<String, Value>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    flatten_into(map, "", 1, &mut out);
    out
}

fn flatten_into(
    map: &serde_json::Map<String, Value>,
    prefix: &str,
    depth: usize,
    out: &mut BTreeMap<String, String>,
) {
    for (key, value) in map {
        if out.len() >= MAX_FIELDS {
            return;
        }
        let name = format!("{prefix}{key}");
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Object(inner) if depth < MAX_DEPTH => {
                flatten_into(inner, &format!("{name}."), depth + 1, out);
                continue;
            }
            _ => continue,
        };
        if text.chars().count() <= MAX_VALUE_CHARS {
            out.insert(name, text);
        }
    }
}

/// Why a lookup got no usable answer.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("bad URL `{0}`: {1}")]
    BadUrl(String, String),
    #[error("cannot connect to {0}: {1}")]
    Connect(String, std::io::Error),
    #[error("TLS with {0}: {1}")]
    Tls(String, String),
    #[error("HTTP: {0}")]
    Http(String),
    #[error("the response is larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

impl Failure {
    fn label(&self) -> &'static str {
        match self {
            Failure::BadUrl(..) => "bad_url",
            Failure::Connect(..) => "connect",
            Failure::Tls(..) => "tls",
            Failure::Http(_) => "http",
            Failure::TooLarge => "too_large",
            Failure::Timeout(_) => "timeout",
        }
    }
}

/// GET `url`: status and body (at most [`MAX_BODY_BYTES`]).
async fn get(url: &str) -> Result<(u16, Bytes), Failure> {
    let bad = |why: &str| Failure::BadUrl(url.to_string(), why.to_string());
    let uri: Uri = url
        .parse()
        .map_err(|e: hyper::http::uri::InvalidUri| bad(&e.to_string()))?;
    let https = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => return Err(bad("only http:// and https:// are supported")),
    };
    let host = uri.host().ok_or_else(|| bad("no host"))?.to_string();
    let authority = uri.authority().map(|a| a.to_string()).unwrap_or_default();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let target = format!("{host}:{port}");
    // Brackets are part of an IPv6 host in a URI, not of the address.
    let bare = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let tcp = TcpStream::connect((bare.as_str(), port))
        .await
        .map_err(|e| Failure::Connect(target.clone(), e))?;
    let _ = tcp.set_nodelay(true);
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let req = Request::get(path)
        .header(header::HOST, authority)
        .header(
            header::USER_AGENT,
            concat!("acd-ivr/", env!("CARGO_PKG_VERSION")),
        )
        .header(header::ACCEPT, "application/json")
        .body(Empty::<Bytes>::new())
        .map_err(|e| Failure::Http(e.to_string()))?;
    if https {
        let name = rustls_pki_types::ServerName::try_from(bare)
            .map_err(|e| bad(&format!("host is not a TLS server name: {e}")))?;
        let tls = tls_connector()
            .map_err(|e| Failure::Tls(target.clone(), e))?
            .connect(name, tcp)
            .await
            .map_err(|e| Failure::Tls(target, e.to_string()))?;
        exchange(tls, req).await
    } else {
        exchange(tcp, req).await
    }
}

/// One HTTP/1.1 request on `io`; the connection is driven here (not in a
/// spawned task) so a timeout drops all of it.
async fn exchange<S>(io: S, req: Request<Empty<Bytes>>) -> Result<(u16, Bytes), Failure>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| Failure::Http(e.to_string()))?;
    let response = async move {
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| Failure::Http(e.to_string()))?;
        let status = resp.status().as_u16();
        let body = Limited::new(resp.into_body(), MAX_BODY_BYTES)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    Failure::TooLarge
                } else {
                    Failure::Http(e.to_string())
                }
            })?
            .to_bytes();
        Ok((status, body))
    };
    let mut conn = std::pin::pin!(conn);
    let mut response = std::pin::pin!(response);
    tokio::select! {
        r = &mut response => r,
        c = &mut conn => match c {
            // The connection ended (peer closed after answering): finish
            // reading what arrived.
            Ok(()) => response.await,
            Err(e) => Err(Failure::Http(e.to_string())),
        },
    }
}

/// Client TLS with the system's roots, built once.
fn tls_connector() -> Result<tokio_rustls::TlsConnector, String> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        let mut roots = rustls::RootCertStore::empty();
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::warn!(error = %e, "reading system TLS roots for lookups");
        }
        let _ = roots.add_parsable_certificates(found.certs);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Arc::new(config))
    });
    config.clone().map(tokio_rustls::TlsConnector::from)
}

#[cfg(test)]
mod tests;
