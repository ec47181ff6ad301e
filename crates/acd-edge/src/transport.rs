//! SIP transports: a UDP socket, a TCP listener and optionally a TLS
//! listener. Parsed messages go to the engine through a bounded channel of
//! [`Inbound`]; the engine sends without awaiting (UDP `try_send_to`, streams
//! through a bounded per-connection queue), so its loop never blocks on I/O.
//!
//! ```text
//! UDP datagram ─▶ parse ─┬─▶ Inbound ─▶ engine     (channel full: drop, metric)
//!                        └─▶ 400 salvaged here     (malformed)
//! TCP/TLS bytes ─▶ StreamFramer ─▶ Inbound ─▶ engine (channel full: reader waits)
//! engine ─▶ respond(peer): UDP, or the connection the request came on (never dials)
//!        ─▶ request(peer): UDP, an open connection to peer, or a new one dialled
//! ```
//!
//! Streams are bounded by [`TransportLimits`]: connection slots in total and
//! per source address, an idle timeout, a header/body timeout once a message
//! has started, and a maximum message size.

use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use acd_sip::{Message, Peer, Transport};
use dashmap::DashMap;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, Notify};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::handover::FdKind;

mod conn;
pub mod limits;
pub mod tls;

pub use limits::TransportLimits;
use limits::{AcceptBackoff, ConnSlots, SlotGuard};

/// Messages a connection may have queued for writing; a peer that lets the
/// queue fill is not reading and is disconnected.
const WRITE_QUEUE: usize = 128;

/// A parsed SIP message and where and when it arrived.
#[derive(Debug)]
pub struct Inbound {
    pub msg: Box<Message>,
    pub from: Peer,
    /// When its bytes were read, for the engine's lateness measure.
    pub received: Instant,
}

/// The bound sockets the transports serve.
pub struct Sockets {
    pub udp: UdpSocket,
    pub tcp: TcpListener,
    pub tls: Option<(TcpListener, TlsAcceptor)>,
}

/// Handle to the transports; cheap to clone.
#[derive(Clone)]
pub struct Transports {
    inner: Arc<Inner>,
}

struct Inner {
    udp: UdpSocket,
    /// The listeners, kept here too so a hand-over can pass them on.
    tcp: Arc<TcpListener>,
    tls: Option<Arc<TcpListener>>,
    gate: ReadGate,
    conns: DashMap<(Transport, SocketAddr), ConnHandle>,
    slots: ConnSlots,
    limits: TransportLimits,
    inbound: mpsc::Sender<Inbound>,
    tls_client: TlsConnector,
    next_id: AtomicU64,
    /// Far ends of connections peers opened to us: their (ephemeral) source
    /// ports, never to be dialled once the connection is gone.
    accepted_from: std::sync::Mutex<RecentSet>,
    /// Where requests for such a connection go once it is gone: the
    /// dialog's remote target (its Contact), as the core announced it.
    routes: std::sync::Mutex<RecentMap>,
}

/// The last `cap` entries set, FIFO-evicted.
struct RecentMap {
    map: std::collections::HashMap<(Transport, SocketAddr), Peer>,
    order: std::collections::VecDeque<(Transport, SocketAddr)>,
    cap: usize,
}

impl RecentMap {
    fn new(cap: usize) -> Self {
        RecentMap {
            map: Default::default(),
            order: Default::default(),
            cap,
        }
    }

    fn insert(&mut self, key: (Transport, SocketAddr), value: Peer) {
        if self.map.insert(key, value).is_none() {
            self.order.push_back(key);
            if self.order.len() > self.cap {
                if let Some(old) = self.order.pop_front() {
                    self.map.remove(&old);
                }
            }
        }
    }

    fn get(&self, key: &(Transport, SocketAddr)) -> Option<Peer> {
        self.map.get(key).copied()
    }
}

/// The last `cap` keys seen, FIFO-evicted: bounded whatever peers do.
struct RecentSet {
    set: std::collections::HashSet<(Transport, SocketAddr)>,
    order: std::collections::VecDeque<(Transport, SocketAddr)>,
    cap: usize,
}

impl RecentSet {
    fn new(cap: usize) -> Self {
        RecentSet {
            set: Default::default(),
            order: Default::default(),
            cap,
        }
    }

    fn insert(&mut self, key: (Transport, SocketAddr)) {
        if self.set.insert(key) {
            self.order.push_back(key);
            if self.order.len() > self.cap {
                if let Some(old) = self.order.pop_front() {
                    self.set.remove(&old);
                }
            }
        }
    }

    fn contains(&self, key: &(Transport, SocketAddr)) -> bool {
        self.set.contains(key)
    }
}

/// Stops the UDP reader and the accept loops for a hand-over: `pause`
/// returns once none of them is between a read and its hand-off to the
/// engine, so everything read so far is in the inbound channel.
struct ReadGate {
    paused: tokio::sync::watch::Sender<bool>,
    /// Held (shared) by each reader while it waits for and hands on input.
    busy: tokio::sync::RwLock<()>,
}

impl ReadGate {
    fn new() -> Self {
        ReadGate {
            paused: tokio::sync::watch::channel(false).0,
            busy: tokio::sync::RwLock::new(()),
        }
    }

    /// Waits until reading is allowed and returns the reader's share.
    async fn open(&self) -> tokio::sync::RwLockReadGuard<'_, ()> {
        let mut rx = self.paused.subscribe();
        loop {
            let _ = rx.wait_for(|p| !*p).await;
            let guard = self.busy.read().await;
            if !*rx.borrow() {
                return guard;
            }
        }
    }

    /// Resolves when a pause is asked for.
    async fn closing(&self) {
        let mut rx = self.paused.subscribe();
        let _ = rx.wait_for(|p| *p).await;
    }
}

/// How many inbound connection sources are remembered (see `accepted_from`).
const REMEMBERED_INBOUND: usize = 8192;

/// The engine's way into one connection's writer.
struct ConnHandle {
    id: u64,
    queue: mpsc::Sender<Vec<u8>>,
    kill: Arc<Notify>,
}

impl Transports {
    /// Starts the readers and accept loops. `tls_client` dials agents whose
    /// contact asks for TLS (see [`tls::connector`]).
    pub fn start(
        sockets: Sockets,
        limits: TransportLimits,
        tls_client: TlsConnector,
        inbound: mpsc::Sender<Inbound>,
    ) -> Transports {
        let tcp = Arc::new(sockets.tcp);
        let (tls, acceptor) = match sockets.tls {
            Some((l, a)) => (Some(Arc::new(l)), Some(a)),
            None => (None, None),
        };
        let t = Transports {
            inner: Arc::new(Inner {
                udp: sockets.udp,
                tcp: tcp.clone(),
                tls: tls.clone(),
                gate: ReadGate::new(),
                conns: DashMap::new(),
                slots: ConnSlots::new(limits.max_tcp_connections, limits.max_tcp_per_source),
                limits,
                inbound,
                tls_client,
                next_id: AtomicU64::new(1),
                accepted_from: std::sync::Mutex::new(RecentSet::new(REMEMBERED_INBOUND)),
                routes: std::sync::Mutex::new(RecentMap::new(REMEMBERED_INBOUND)),
            }),
        };
        tokio::spawn(t.clone().udp_reader());
        tokio::spawn(t.clone().accept_loop(tcp, None));
        if let (Some(listener), Some(acceptor)) = (tls, acceptor) {
            tokio::spawn(t.clone().accept_loop(listener, Some(acceptor)));
        }
        t
    }

    /// Stops reading UDP and accepting connections (a hand-over); returns
    /// once every message read so far is in the inbound channel. Open
    /// stream connections keep reading.
    pub async fn pause(&self) {
        self.inner.gate.paused.send_replace(true);
        drop(self.inner.gate.busy.write().await);
    }

    /// Reads again after [`pause`](Self::pause) (a failed hand-over).
    pub fn resume(&self) {
        self.inner.gate.paused.send_replace(false);
    }

    /// Copies of the SIP UDP socket and listeners, for a hand-over.
    pub fn descriptors(&self) -> std::io::Result<Vec<(FdKind, OwnedFd)>> {
        let mut out = vec![
            (FdKind::SipUdp, self.inner.udp.as_fd().try_clone_to_owned()?),
            (
                FdKind::SipTcpListener,
                self.inner.tcp.as_fd().try_clone_to_owned()?,
            ),
        ];
        if let Some(tls) = &self.inner.tls {
            out.push((FdKind::SipTlsListener, tls.as_fd().try_clone_to_owned()?));
        }
        Ok(out)
    }

    /// Sends a response or a request, told apart by the start line: the
    /// transaction layer's `Output::Transmit` carries both. Prefer
    /// [`respond`](Self::respond) / [`request`](Self::request) where the
    /// caller knows which it has.
    pub fn send(&self, to: Peer, bytes: Vec<u8>) {
        if bytes.starts_with(b"SIP/2.0 ") {
            self.respond(to, bytes);
        } else {
            self.request(to, bytes);
        }
    }

    /// A response goes back the way its request came: over UDP to the
    /// source, or over the stream connection it arrived on. If that
    /// connection is gone, the response is dropped: dialling the client's
    /// ephemeral source port would only reach whoever holds it now (§18.2.2
    /// allows it, practice does not).
    pub fn respond(&self, to: Peer, bytes: Vec<u8>) {
        match to.transport {
            Transport::Udp => self.send_udp(to.addr, &bytes),
            Transport::Tcp | Transport::Tls => {
                if !self.enqueue(to, bytes) {
                    drop_metric(to.transport, "no_connection");
                    tracing::debug!(peer = %to.addr, "response for a closed connection dropped");
                }
            }
        }
    }

    /// A request we originate: over UDP, an open connection to `to`, or a
    /// new connection dialled to it (a registered contact, a route). The
    /// source address of a connection the peer opened is never dialled
    /// once that connection is gone: it is an ephemeral port that now
    /// belongs to someone else, or to no one. The request goes to the
    /// dialog's Contact instead if the core announced one
    /// ([`route`](Self::route)), else it is dropped and its transaction
    /// times out.
    pub fn request(&self, to: Peer, bytes: Vec<u8>) {
        self.request_once(to, bytes, true);
    }

    /// `reroute`: follow an announced route (once: routes never chain).
    fn request_once(&self, to: Peer, bytes: Vec<u8>, reroute: bool) {
        match to.transport {
            Transport::Udp => self.send_udp(to.addr, &bytes),
            Transport::Tcp | Transport::Tls => {
                if self.enqueue(to, bytes.clone()) {
                    return;
                }
                let target = reroute
                    .then(|| self.inner.routes.lock().ok())
                    .flatten()
                    .and_then(|r| r.get(&(to.transport, to.addr)));
                if let Some(target) = target.filter(|t| t.addr != to.addr) {
                    metrics::counter!("acd_sip_stream_reroutes_total").increment(1);
                    tracing::debug!(peer = %to.addr, contact = %target.addr, "connection gone, request to the Contact");
                    return self.request_once(target, bytes, false);
                }
                if self.was_accepted_from(to) {
                    drop_metric(to.transport, "peer_connection_gone");
                    tracing::debug!(peer = %to.addr, "request for a peer's closed connection dropped");
                    return;
                }
                self.dial(to, bytes);
            }
        }
    }

    /// Requests for the stream connection `connection`, once it is gone, go
    /// to `target` (the dialog's Contact).
    pub fn route(&self, connection: Peer, target: Peer) {
        if let Ok(mut r) = self.inner.routes.lock() {
            r.insert((connection.transport, connection.addr), target);
        }
    }

    fn was_accepted_from(&self, peer: Peer) -> bool {
        self.inner
            .accepted_from
            .lock()
            .is_ok_and(|s| s.contains(&(peer.transport, peer.addr)))
    }

    fn remember_accepted(&self, peer: Peer) {
        if let Ok(mut s) = self.inner.accepted_from.lock() {
            s.insert((peer.transport, peer.addr));
        }
    }

    fn send_udp(&self, addr: SocketAddr, bytes: &[u8]) {
        if let Err(e) = self.inner.udp.try_send_to(bytes, addr) {
            metrics::counter!("acd_sip_transport_errors_total", "kind" => "udp_send").increment(1);
            tracing::warn!(peer = %addr, error = %e, "UDP send failed");
        }
    }

    /// Queues bytes on the open connection to `to`; false if there is none.
    /// A full queue means the peer stopped reading: it is disconnected.
    fn enqueue(&self, to: Peer, bytes: Vec<u8>) -> bool {
        let key = (to.transport, to.addr);
        let Some(h) = self.inner.conns.get(&key) else {
            return false;
        };
        match h.queue.try_send(bytes) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                metrics::counter!("acd_sip_connections_closed_total", "reason" => "slow_reader")
                    .increment(1);
                tracing::warn!(peer = %to.addr, "peer not reading its connection, closing");
                h.kill.notify_one();
                let id = h.id;
                drop(h);
                self.inner.conns.remove_if(&key, |_, c| c.id == id);
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                let id = h.id;
                drop(h);
                self.inner.conns.remove_if(&key, |_, c| c.id == id);
                false
            }
        }
    }

    /// Registers a connection's writer queue; the connection task owns the rest.
    fn register(&self, peer: Peer) -> (u64, mpsc::Receiver<Vec<u8>>, Arc<Notify>) {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (queue, rx) = mpsc::channel(WRITE_QUEUE);
        let kill = Arc::new(Notify::new());
        let handle = ConnHandle {
            id,
            queue,
            kill: kill.clone(),
        };
        self.inner.conns.insert((peer.transport, peer.addr), handle);
        (id, rx, kill)
    }

    fn unregister(&self, peer: Peer, id: u64) {
        self.inner
            .conns
            .remove_if(&(peer.transport, peer.addr), |_, c| c.id == id);
    }

    /// Opens a connection for a request; later sends queue behind it while
    /// it connects.
    fn dial(&self, to: Peer, first: Vec<u8>) {
        let slot = match self.inner.slots.try_acquire(None) {
            Ok(slot) => slot,
            Err(refusal) => {
                drop_metric(to.transport, refusal.as_str());
                tracing::warn!(peer = %to.addr, "no connection slot to dial out");
                return;
            }
        };
        let (id, rx, kill) = self.register(to);
        // The queue was just created: this cannot be full.
        let _ = self.enqueue(to, first);
        let t = self.clone();
        tokio::spawn(async move {
            let timeout = t.inner.limits.tcp_header_timeout;
            let connect = tokio::time::timeout(timeout, TcpStream::connect(to.addr)).await;
            let stream = match connect {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return t.dial_failed(to, id, &e.to_string()),
                Err(_) => return t.dial_failed(to, id, "timed out"),
            };
            let _ = stream.set_nodelay(true);
            let c = conn::Conn::new(&t, to, id, rx, kill, slot);
            match to.transport {
                Transport::Tls => {
                    let name = rustls_pki_types::ServerName::IpAddress(to.addr.ip().into());
                    let tls = t.inner.tls_client.connect(name, stream);
                    match tokio::time::timeout(timeout, tls).await {
                        Ok(Ok(s)) => c.run(s).await,
                        Ok(Err(e)) => t.dial_failed(to, id, &e.to_string()),
                        Err(_) => t.dial_failed(to, id, "TLS handshake timed out"),
                    }
                }
                _ => c.run(stream).await,
            }
        });
    }

    fn dial_failed(&self, to: Peer, id: u64, error: &str) {
        self.unregister(to, id);
        metrics::counter!("acd_sip_transport_errors_total", "kind" => "connect").increment(1);
        tracing::warn!(peer = %to.addr, transport = ?to.transport, %error, "connect failed");
    }

    async fn udp_reader(self) {
        let mut buf = vec![0u8; 65536];
        loop {
            let _reading = self.inner.gate.open().await;
            tokio::select! {
                r = self.inner.udp.recv_from(&mut buf) => match r {
                    Ok((n, from)) => {
                        if !self.datagram(&buf[..n], from) {
                            return;
                        }
                    }
                    // ICMP port unreachable surfaces here on Linux; keep serving.
                    Err(e) => tracing::debug!(error = %e, "UDP receive error"),
                },
                _ = self.inner.gate.closing() => {}
            }
        }
    }

    /// Parses one datagram and hands it on; false once the engine is gone.
    fn datagram(&self, bytes: &[u8], from: SocketAddr) -> bool {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return true; // keep-alive
        }
        let received = Instant::now();
        let peer = Peer {
            addr: from,
            transport: Transport::Udp,
        };
        let msg = match acd_sip::parse(bytes) {
            Ok(msg) => msg,
            Err(e) => {
                metrics::counter!("acd_sip_parse_errors_total", "transport" => "udp").increment(1);
                tracing::warn!(peer = %from, error = %e, "malformed SIP datagram");
                if let Some(resp) = acd_sip::message::salvage_for_400(bytes) {
                    self.send_udp(from, &resp);
                }
                return true;
            }
        };
        let inbound = Inbound {
            msg: Box::new(msg),
            from: peer,
            received,
        };
        match self.inner.inbound.try_send(inbound) {
            Ok(()) => true,
            // Under overload a quick loss (the peer retransmits or tries
            // elsewhere) beats answering seconds late from a growing queue.
            Err(mpsc::error::TrySendError::Full(_)) => {
                metrics::counter!("acd_sip_overload_drops_total").increment(1);
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    async fn accept_loop(self, listener: Arc<TcpListener>, tls: Option<TlsAcceptor>) {
        let mut backoff = AcceptBackoff::default();
        loop {
            let reading = self.inner.gate.open().await;
            let accepted = tokio::select! {
                r = listener.accept() => r,
                _ = self.inner.gate.closing() => continue,
            };
            drop(reading);
            match accepted {
                Ok((stream, addr)) => {
                    backoff.on_success();
                    self.accepted(stream, addr, tls.clone());
                }
                Err(e) => {
                    metrics::counter!("acd_sip_transport_errors_total", "kind" => "tcp_accept")
                        .increment(1);
                    let action = backoff.on_error(e.raw_os_error(), Instant::now());
                    if let Some(suppressed) = action.log {
                        tracing::warn!(error = %e, suppressed, "TCP accept failed");
                    }
                    if !action.sleep.is_zero() {
                        tokio::time::sleep(action.sleep).await;
                    }
                }
            }
        }
    }

    /// Over a cap the connection is closed at once (dropped): the peer sees
    /// the close rather than a listen backlog that never moves.
    fn accepted(&self, stream: TcpStream, addr: SocketAddr, tls: Option<TlsAcceptor>) {
        let transport = if tls.is_some() {
            Transport::Tls
        } else {
            Transport::Tcp
        };
        let slot = match self.inner.slots.try_acquire(Some(addr.ip())) {
            Ok(slot) => slot,
            Err(refusal) => {
                metrics::counter!("acd_sip_connections_refused_total", "reason" => refusal.as_str())
                    .increment(1);
                tracing::debug!(peer = %addr, reason = refusal.as_str(), "connection refused");
                return;
            }
        };
        let _ = stream.set_nodelay(true);
        let peer = Peer { addr, transport };
        self.remember_accepted(peer);
        let t = self.clone();
        match tls {
            None => {
                let (id, rx, kill) = self.register(peer);
                tokio::spawn(conn::Conn::new(&t, peer, id, rx, kill, slot).run(stream));
            }
            Some(acceptor) => {
                tokio::spawn(async move { t.tls_accepted(acceptor, stream, peer, slot).await });
            }
        }
    }

    /// Registers a TLS connection only once its handshake is done, within
    /// the header timeout.
    async fn tls_accepted(
        self,
        acceptor: TlsAcceptor,
        stream: TcpStream,
        peer: Peer,
        slot: SlotGuard,
    ) {
        let timeout = self.inner.limits.tcp_header_timeout;
        let stream = match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                metrics::counter!("acd_sip_connections_closed_total", "reason" => "tls_handshake")
                    .increment(1);
                tracing::debug!(peer = %peer.addr, error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                metrics::counter!("acd_sip_connections_closed_total", "reason" => "tls_handshake_timeout")
                    .increment(1);
                return;
            }
        };
        let (id, rx, kill) = self.register(peer);
        conn::Conn::new(&self, peer, id, rx, kill, slot)
            .run(stream)
            .await;
    }

    #[cfg(test)]
    fn open_connections(&self) -> usize {
        self.inner.slots.in_use()
    }
}

fn drop_metric(transport: Transport, reason: &'static str) {
    let transport = match transport {
        Transport::Udp => "udp",
        Transport::Tcp => "tcp",
        Transport::Tls => "tls",
    };
    metrics::counter!("acd_sip_send_drops_total", "transport" => transport, "reason" => reason)
        .increment(1);
}

#[cfg(test)]
mod tests;
