//! The edge's end of `EdgeService/Attach`.
//!
//! Two halves: [`DistributorLink`], owned by the driver loop, numbers every
//! message, keeps it in the [`Outbox`] until the distributor acknowledges it
//! and hands it to the current stream (if any); [`start`] spawns the task
//! that finds the leader among the configured distributors (the last known
//! leader first, following a standby's "not leader; try X"), opens the
//! stream, gives the driver its sending half and feeds it what arrives.
//! On every attach the driver sends `EdgeHello` and then the whole outbox
//! again, so nothing sent while a stream was down or unacknowledged when it
//! broke is lost; the distributor applies each id once.

use std::collections::HashSet;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use acd_b2bua::ToDistributor;
use acd_proto::leader::{leader_hint, Endpoints};
use acd_proto::v1 as pb;
use futures::{Stream, StreamExt};
use pb::edge_service_client::EdgeServiceClient;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;

use crate::convert;
use crate::driver::Input;
use crate::outbox::{Outbox, OutboxSnapshot, OUTBOX_CAPACITY};

/// The sending half of one attached stream.
pub type StreamTx = mpsc::UnboundedSender<pb::EdgeMessage>;

/// A standby naming another standby (or a loop of stale hints) must not keep
/// the link hopping: after this many hints in a row it backs off.
const MAX_HINT_HOPS: usize = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// HTTP/2 pings on the stream: a primary cut off by a partition neither
/// closes nor resets the connection (its packets just vanish), and without
/// them the edge would stay attached to it, its messages unacknowledged,
/// until TCP gives up minutes later. A missed ping breaks the stream, and
/// the edge re-attaches to whoever leads.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_millis(500);
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(1);

/// What an edge sends on an Attach stream.
pub type EdgeMessages = Pin<Box<dyn Stream<Item = Result<pb::EdgeMessage, tonic::Status>> + Send>>;
/// What a distributor sends back on it.
pub type DistributorMessages =
    Pin<Box<dyn Stream<Item = Result<pb::DistributorMessage, tonic::Status>> + Send>>;

/// The Attach of a distributor in this process (`acd run`), with the same
/// messages and refusals as `EdgeService/Attach` but no HTTP/2 or protobuf
/// encoding in between: every call crosses this stream several times.
pub trait LocalDistributor: Send + Sync + 'static {
    fn attach(&self, inbound: EdgeMessages) -> Result<DistributorMessages, tonic::Status>;
}

/// The in-process distributor and the URL it answers to: a target equal to
/// `url` (the own address, or a leader hint naming it) is attached locally.
#[derive(Clone)]
pub struct LocalLink {
    url: String,
    distributor: Arc<dyn LocalDistributor>,
}

impl LocalLink {
    pub fn new(url: String, distributor: impl LocalDistributor) -> LocalLink {
        LocalLink {
            url,
            distributor: Arc::new(distributor),
        }
    }
}

impl fmt::Debug for LocalLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LocalLink({})", self.url)
    }
}

/// The driver's side: the outbox and the stream currently attached.
pub struct DistributorLink {
    edge_id: String,
    outbox: Outbox<ToDistributor>,
    stream: Option<StreamTx>,
}

impl DistributorLink {
    /// The first id is the boot time in microseconds, not 1: an edge restarted
    /// cold keeps its edge id (it is stable by design), and the distributor
    /// ignores every id at or below the last one it applied from that edge.
    /// Ids then only need to grow slower than a million a second on average.
    /// A live hand-over continues the previous process's ids instead (`restore`).
    pub fn new(edge_id: String) -> Self {
        let boot_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX / 2))
            .unwrap_or(1);
        Self::with_first_id(edge_id, boot_us)
    }

    pub fn with_first_id(edge_id: String, first: u64) -> Self {
        DistributorLink {
            edge_id,
            outbox: Outbox::starting_at(first, OUTBOX_CAPACITY),
            stream: None,
        }
    }

    /// Numbers `msg`, keeps it until acknowledged and sends it if a stream is
    /// up; with none it waits in the outbox for the next attach.
    pub fn send(&mut self, msg: ToDistributor) {
        if convert::to_distributor(msg.clone()).is_none() {
            tracing::debug!(?msg, "edge message of a kind the wire does not carry");
            return;
        }
        let pushed = self.outbox.push(msg.clone());
        if let Some(lost) = pushed.dropped {
            metrics::counter!("acd_edge_outbox_overflow_total").increment(1);
            tracing::error!(
                msg_id = lost,
                capacity = OUTBOX_CAPACITY,
                "edge outbox full: the oldest unacknowledged message to the distributor is LOST"
            );
        }
        self.publish_depth();
        self.forward(pushed.id, msg);
    }

    /// A stream is up (to a primary: standbys refuse `Attach`): say hello,
    /// then send everything not yet acknowledged, in order.
    /// `queued_calls`: the calls the core has handed to the distributor.
    pub fn attached(&mut self, tx: StreamTx, queued_calls: &[acd_b2bua::CallId]) {
        // A call whose Enqueue is still in the outbox is not "live" to the
        // distributor yet: the re-sent Enqueue brings it, and announcing it
        // would make the distributor answer CallUnknown and the edge enqueue it twice.
        let pending = self.unacked_enqueues();
        let live_calls = queued_calls
            .iter()
            .filter(|c| !pending.contains(c.0.as_str()))
            .map(|c| c.0.clone())
            .collect();
        let hello = pb::EdgeMessage {
            kind: Some(pb::edge_message::Kind::Hello(pb::EdgeHello {
                edge_id: self.edge_id.clone(),
                live_calls,
                last_msg_id: self.outbox.last_id(),
            })),
            msg_id: 0,
        };
        if tx.send(hello).is_err() {
            return;
        }
        self.stream = Some(tx);
        let resend: Vec<_> = self.outbox.unacked().cloned().collect();
        if !resend.is_empty() {
            metrics::counter!("acd_edge_outbox_resent_total").increment(resend.len() as u64);
            tracing::info!(
                messages = resend.len(),
                "re-sending unacknowledged messages to the distributor"
            );
        }
        for (id, msg) in resend {
            self.forward(id, msg);
        }
    }

    pub fn detached(&mut self) {
        self.stream = None;
    }

    pub fn is_attached(&self) -> bool {
        self.stream.is_some()
    }

    /// The distributor holds every message up to `msg_id`.
    pub fn ack(&mut self, msg_id: u64) {
        let _ = self.outbox.ack(msg_id);
        self.publish_depth();
    }

    /// The outbox as a live hand-over passes it on.
    pub fn snapshot(&self) -> OutboxSnapshot<ToDistributor> {
        self.outbox.snapshot()
    }

    /// Continues a previous process's outbox (live hand-over): call before
    /// the driver runs; the restored messages go out on the first attach.
    pub fn restore(&mut self, snap: OutboxSnapshot<ToDistributor>) {
        self.outbox.restore(snap);
        self.publish_depth();
    }

    fn forward(&mut self, msg_id: u64, msg: ToDistributor) {
        let Some(tx) = &self.stream else { return };
        let Some(kind) = convert::to_distributor(msg) else {
            return;
        };
        let sent = tx.send(pb::EdgeMessage {
            kind: Some(kind),
            msg_id,
        });
        if sent.is_err() {
            // The stream is gone; the message stays in the outbox for the next one.
            self.stream = None;
        }
    }

    fn unacked_enqueues(&self) -> HashSet<&str> {
        self.outbox
            .unacked()
            .filter_map(|(_, m)| match m {
                ToDistributor::Enqueue(e) => Some(e.call.0.as_str()),
                _ => None,
            })
            .collect()
    }

    fn publish_depth(&self) {
        metrics::gauge!("acd_edge_outbox_messages").set(self.outbox.len() as f64);
    }
}

/// Spawns the task that keeps one stream attached to the leader among
/// `urls` (`URL[,URL...]`).
pub fn start(
    urls: &str,
    local: Option<LocalLink>,
    input: mpsc::Sender<Input>,
) -> Result<(), String> {
    let endpoints =
        Endpoints::parse(urls).ok_or_else(|| format!("no distributor URL in `{urls}`"))?;
    tokio::spawn(run(endpoints, local, input));
    Ok(())
}

/// Why one attempt ended.
enum Ended {
    /// The driver is gone: stop.
    EngineGone,
    /// Was attached, then the stream broke: try again at once.
    Broken(String),
    /// Never attached: a standby's hint to follow, or none.
    Refused { hint: Option<String>, error: String },
}

async fn run(mut endpoints: Endpoints, local: Option<LocalLink>, input: mpsc::Sender<Input>) {
    let mut backoff = FIRST_BACKOFF;
    let mut broke = false;
    loop {
        let mut targets: Vec<String> = if broke {
            endpoints.order_leader_last()
        } else {
            endpoints.order()
        };
        targets.reverse(); // popped from the end: the leader first
        let mut hops = 0;
        let mut attached_once = false;
        while let Some(url) = targets.pop() {
            let local = local.as_ref().filter(|l| l.url == url);
            match attach_once(&url, local, &input).await {
                Ended::EngineGone => return,
                Ended::Broken(e) => {
                    endpoints.set_leader(&url);
                    attached_once = true;
                    let _ = input.send(Input::DistributorDetached).await;
                    metrics::counter!("acd_edge_distributor_disconnects_total").increment(1);
                    tracing::warn!(distributor = %url, error = %e, "distributor stream down, re-attaching");
                    break;
                }
                Ended::Refused { hint, error } => {
                    tracing::info!(distributor = %url, error = %error, leader = ?hint, "distributor refused or unreachable");
                    if let Some(h) = hint.filter(|h| *h != url && hops < MAX_HINT_HOPS) {
                        hops += 1;
                        metrics::counter!("acd_edge_leader_hints_followed_total").increment(1);
                        endpoints.set_leader(&h);
                        targets.push(h);
                    }
                }
            }
        }
        broke = attached_once;
        if attached_once {
            backoff = FIRST_BACKOFF;
            continue;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn attach_once(url: &str, local: Option<&LocalLink>, input: &mpsc::Sender<Input>) -> Ended {
    let (tx, rx) = mpsc::unbounded_channel();
    let opened = match local {
        Some(l) => l
            .distributor
            .attach(Box::pin(UnboundedReceiverStream::new(rx).map(Ok))),
        None => match open_remote(url, rx).await {
            Ok(opened) => opened,
            Err(unreachable) => return unreachable,
        },
    };
    let mut inbound = match opened {
        Ok(inbound) => inbound,
        Err(s) => {
            if s.code() == tonic::Code::FailedPrecondition {
                metrics::counter!("acd_edge_attach_refused_total", "reason" => "not_leader")
                    .increment(1);
            }
            return Ended::Refused {
                hint: leader_hint(&s),
                error: s.message().to_string(),
            };
        }
    };
    if input.send(Input::DistributorAttached(tx)).await.is_err() {
        return Ended::EngineGone;
    }
    tracing::info!(distributor = %url, in_process = local.is_some(), "attached to distributor");
    loop {
        match inbound.next().await {
            Some(Ok(m)) => {
                if input.send(Input::Distributor(Box::new(m))).await.is_err() {
                    return Ended::EngineGone;
                }
            }
            None => return Ended::Broken("stream closed by distributor".into()),
            Some(Err(s)) => return Ended::Broken(s.message().to_string()),
        }
    }
}

/// Opens the Attach stream over gRPC; `Err(Ended)` when the distributor
/// cannot be reached, `Ok(Err(status))` when it refused the stream.
async fn open_remote(
    url: &str,
    rx: mpsc::UnboundedReceiver<pb::EdgeMessage>,
) -> Result<Result<DistributorMessages, tonic::Status>, Ended> {
    let refused = |error: String| Ended::Refused { hint: None, error };
    let endpoint = match acd_proto::client::site_endpoint(url) {
        Ok(e) => e
            .connect_timeout(Duration::from_secs(1))
            .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
            .keep_alive_timeout(KEEPALIVE_TIMEOUT)
            .keep_alive_while_idle(true),
        Err(e) => return Err(refused(e.to_string())),
    };
    let channel = match endpoint.connect().await {
        Ok(c) => c,
        Err(e) => return Err(refused(e.to_string())),
    };
    let opened = EdgeServiceClient::new(acd_proto::client::site_authed(channel))
        .attach(UnboundedReceiverStream::new(rx))
        .await;
    Ok(opened.map(|r| Box::pin(r.into_inner()) as DistributorMessages))
}

#[cfg(test)]
mod tests {
    use super::*;
    use acd_b2bua::CallId;

    fn abandon(call: &str) -> ToDistributor {
        ToDistributor::Abandon {
            call: CallId(call.into()),
        }
    }

    fn enqueue(call: &str) -> ToDistributor {
        ToDistributor::Enqueue(acd_b2bua::Enqueue {
            call: CallId(call.into()),
            queue: "sales".into(),
            priority: 0,
            caller: Default::default(),
            skills: Default::default(),
        })
    }

    fn drain(rx: &mut mpsc::UnboundedReceiver<pb::EdgeMessage>) -> Vec<pb::EdgeMessage> {
        let mut out = Vec::new();
        while let Ok(m) = rx.try_recv() {
            out.push(m);
        }
        out
    }

    #[test]
    fn messages_without_a_stream_wait_and_go_after_the_hello() {
        let mut link = DistributorLink::with_first_id("edge-1".into(), 1);
        link.send(enqueue("c1"));
        link.send(abandon("c0"));
        let queued = [
            acd_b2bua::CallId("c1".into()),
            acd_b2bua::CallId("c9".into()),
        ];
        let (tx, mut rx) = mpsc::unbounded_channel();
        link.attached(tx, &queued);
        link.send(abandon("c1"));
        let sent = drain(&mut rx);
        let ids: Vec<u64> = sent.iter().map(|m| m.msg_id).collect();
        assert_eq!(ids, vec![0, 1, 2, 3]);
        let Some(pb::edge_message::Kind::Hello(h)) = &sent[0].kind else {
            panic!("hello first: {sent:?}");
        };
        assert_eq!(h.last_msg_id, 2);
        assert_eq!(
            h.live_calls,
            vec!["c9".to_string()],
            "c1's Enqueue is re-sent, not announced"
        );

        // The stream breaks before the ack of 3: a new stream gets 2 and 3 again.
        link.ack(1);
        link.detached();
        link.send(abandon("c2"));
        let (tx, mut rx) = mpsc::unbounded_channel();
        link.attached(tx, &queued);
        let ids: Vec<u64> = drain(&mut rx).iter().map(|m| m.msg_id).collect();
        assert_eq!(ids, vec![0, 2, 3, 4]);
    }

    #[test]
    fn a_closed_stream_keeps_the_message() {
        let mut link = DistributorLink::new("edge-1".into());
        let (tx, rx) = mpsc::unbounded_channel();
        link.attached(tx, &[]);
        drop(rx);
        link.send(abandon("c1"));
        assert!(!link.is_attached());
        assert_eq!(link.snapshot().pending.len(), 1);
    }

    #[test]
    fn a_cold_restart_never_reuses_an_id() {
        let mut before = DistributorLink::new("edge-1".into());
        let (tx, mut rx) = mpsc::unbounded_channel();
        before.attached(tx, &[]);
        before.send(abandon("c1"));
        let last = drain(&mut rx).last().map(|m| m.msg_id).unwrap_or(0);
        // A real restart takes far longer than the clock's microsecond.
        std::thread::sleep(Duration::from_millis(2));
        let mut after = DistributorLink::new("edge-1".into());
        let (tx, mut rx) = mpsc::unbounded_channel();
        after.attached(tx, &[]);
        after.send(abandon("c2"));
        let first = drain(&mut rx).last().map(|m| m.msg_id).unwrap_or(0);
        assert!(first > last, "{first} after {last}");
    }

    /// A distributor that accepts the stream and then says nothing, ever.
    struct Silent;

    #[tonic::async_trait]
    impl pb::edge_service_server::EdgeService for Silent {
        type AttachStream = std::pin::Pin<
            Box<
                dyn tokio_stream::Stream<Item = Result<pb::DistributorMessage, tonic::Status>>
                    + Send,
            >,
        >;
        async fn attach(
            &self,
            _req: tonic::Request<tonic::Streaming<pb::EdgeMessage>>,
        ) -> Result<tonic::Response<Self::AttachStream>, tonic::Status> {
            Ok(tonic::Response::new(Box::pin(tokio_stream::pending())))
        }
    }

    /// Copies bytes one way until `frozen`, then holds the socket open and
    /// silent: what a partition looks like from the edge (no FIN, no RST).
    async fn pipe(
        mut from: tokio::io::ReadHalf<tokio::net::TcpStream>,
        mut to: tokio::io::WriteHalf<tokio::net::TcpStream>,
        frozen: tokio::sync::watch::Receiver<bool>,
    ) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let Ok(n) = from.read(&mut buf).await else {
                return;
            };
            if n == 0 || *frozen.borrow() {
                break;
            }
            if to.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
        std::future::pending::<()>().await;
    }

    #[tokio::test]
    async fn a_stream_to_a_partitioned_distributor_breaks_on_missed_pings() {
        let server = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server_addr = server.local_addr().unwrap();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(pb::edge_service_server::EdgeServiceServer::new(Silent))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(server)),
        );
        let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", proxy.local_addr().unwrap());
        let (freeze, frozen) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            while let Ok((edge, _)) = proxy.accept().await {
                let Ok(dist) = tokio::net::TcpStream::connect(server_addr).await else {
                    return;
                };
                let (er, ew) = tokio::io::split(edge);
                let (dr, dw) = tokio::io::split(dist);
                tokio::spawn(pipe(er, dw, frozen.clone()));
                tokio::spawn(pipe(dr, ew, frozen.clone()));
            }
        });

        let (input, mut inputs) = mpsc::channel(16);
        let attach = tokio::spawn(async move { attach_once(&url, None, &input).await });
        let attached = tokio::time::timeout(Duration::from_secs(5), inputs.recv())
            .await
            .expect("attached in time");
        assert!(matches!(attached, Some(Input::DistributorAttached(_))));
        freeze.send_replace(true);
        let bound = KEEPALIVE_INTERVAL + KEEPALIVE_TIMEOUT + Duration::from_secs(2);
        let ended = tokio::time::timeout(bound, attach)
            .await
            .expect("the stream breaks once pings go unanswered")
            .unwrap();
        assert!(matches!(ended, Ended::Broken(_)));
    }
}
