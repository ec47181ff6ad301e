//! RFC 3261 §17 transaction layer for one endpoint, as a sans-IO state machine.
//!
//! Inputs: [`TransactionLayer::handle_incoming`] (a parsed message and where it came
//! from), [`TransactionLayer::send_request`] / [`TransactionLayer::send_response`]
//! (from the TU), and [`TransactionLayer::handle_timeout`]. Outputs are drained with
//! [`TransactionLayer::poll_output`] until it returns `None`; the shell then sleeps
//! until [`TransactionLayer::poll_timeout`] (quinn-proto style). The layer never
//! reads a clock: every input carries `now`.
//!
//! Timers are data ([`TimerKind`]) kept in one ordered map of absolute deadlines, so
//! the next wake-up is O(log n) and a timer that is cancelled is removed at once;
//! calling `handle_timeout` early fires nothing.
//!
//! Every incoming request gets `received` (and the `rport` value when it asked for
//! one) stamped on its top Via (§18.2.1, RFC 3581 §4). Responses from server
//! transactions go to the address and port the request came from: that is what
//! §18.2.2 gives with `rport`, and we apply it to requests without `rport` too
//! (symmetric response routing, what NAT'd agents need) instead of the sent-by port.
//!
//! Requests whose top Via has no RFC 3261 branch (RFC 2543 peers) are matched by
//! the §17.2.3 fallback rules, see [`TxKey`].

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::message::{Message, Method, Request, Response, Via};

/// Timer base values (§17.1.1.1, Table 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Config {
    /// RTT estimate, default 500 ms.
    pub t1: Duration,
    /// Maximum retransmit interval for non-INVITE requests and INVITE responses, 4 s.
    pub t2: Duration,
    /// Maximum time a message stays in the network, 5 s.
    pub t4: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl Config {
    /// 64*T1: Timers B, F, H, J (UDP), L, M.
    pub fn t1x64(&self) -> Duration {
        self.t1 * 64
    }

    /// A zero T1 would make retransmission timers fire in a loop at the same instant.
    fn sanitized(mut self) -> Self {
        let min = Duration::from_millis(1);
        self.t1 = self.t1.max(min);
        self.t2 = self.t2.max(self.t1);
        self
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    /// Reliable transports get no retransmissions and zero-length wait timers (§17).
    pub fn is_reliable(self) -> bool {
        matches!(self, Transport::Tcp | Transport::Tls)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Peer {
    pub addr: SocketAddr,
    pub transport: Transport,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Role {
    Client,
    Server,
}

/// Transaction identity. Server side (§17.2.3): top Via branch + sent-by + method,
/// with ACK and CANCEL mapped to INVITE where they match it. Client side (§17.1.3):
/// top Via branch + CSeq method (sent-by is our own and included for symmetry).
///
/// A request whose top Via has no RFC 3261 branch (RFC 2543, or a bare magic
/// cookie, RFC 4475 §3.2.1) gets a `branch` built from the fields §17.2.3 compares
/// instead: Request-URI, To tag, From tag, Call-ID, CSeq number and the top Via.
/// It starts with [`LEGACY_PREFIX`], which no real branch (a token) can contain.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct TxKey {
    pub role: Role,
    pub branch: String,
    pub method: Method,
    pub sent_by: String,
}

/// Marks a [`TxKey::branch`] built by RFC 2543 matching (a space is not a token char).
pub const LEGACY_PREFIX: &str = "rfc2543 ";

impl TxKey {
    fn server_for(req: &Request) -> Option<TxKey> {
        Self::server_with_to_tag(req, req.to_tag())
    }

    /// Server key, with the To tag given separately: an ACK for a non-2xx carries
    /// the tag of our response where the INVITE had none (§17.2.3).
    fn server_with_to_tag(req: &Request, to_tag: Option<&str>) -> Option<TxKey> {
        let via = req.top_via()?;
        let method = match req.method {
            Method::Ack => Method::Invite,
            ref m => m.clone(),
        };
        let branch = if via.has_rfc3261_branch() {
            via.branch.clone()?
        } else {
            legacy_id(req, &via, to_tag)?
        };
        Some(TxKey {
            role: Role::Server,
            branch,
            method,
            sent_by: via.sent_by(),
        })
    }

    /// Whether this key was built by RFC 2543 matching.
    pub fn is_legacy(&self) -> bool {
        self.branch.starts_with(LEGACY_PREFIX)
    }

    fn client_for_request(req: &Request) -> TxKey {
        let via = req.top_via();
        TxKey {
            role: Role::Client,
            branch: via
                .as_ref()
                .and_then(|v| v.branch.clone())
                .unwrap_or_default(),
            method: req.method.clone(),
            sent_by: via.map(|v| v.sent_by()).unwrap_or_default(),
        }
    }

    fn client_for_response(resp: &Response) -> Option<TxKey> {
        let via = resp.top_via()?;
        let branch = via.branch.clone().filter(|b| !b.is_empty())?;
        let (_, method) = resp.cseq()?;
        Some(TxKey {
            role: Role::Client,
            branch,
            method,
            sent_by: via.sent_by(),
        })
    }
}

/// SIP timers (§17, Table 4; L and M from RFC 6026).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum TimerKind {
    /// INVITE request retransmit (UDP), §17.1.1.2.
    A,
    /// INVITE transaction timeout, §17.1.1.2.
    B,
    /// Wait for response retransmissions after non-2xx, §17.1.1.2.
    D,
    /// Non-INVITE request retransmit (UDP), §17.1.2.2.
    E,
    /// Non-INVITE transaction timeout, §17.1.2.2.
    F,
    /// INVITE non-2xx response retransmit (UDP), §17.2.1.
    G,
    /// Wait for ACK, §17.2.1.
    H,
    /// Wait for ACK retransmissions, §17.2.1.
    I,
    /// Wait for non-INVITE request retransmissions, §17.2.2.
    J,
    /// Wait for non-INVITE response retransmissions, §17.1.2.2.
    K,
    /// Server INVITE Accepted state lifetime, RFC 6026 §8.7.
    L,
    /// Client INVITE Accepted state lifetime, RFC 6026 §8.4.
    M,
}

/// What the layer asks the shell / TU to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Send these bytes.
    Transmit { to: Peer, bytes: Vec<u8> },
    /// A new server transaction for the TU (never a retransmission).
    Request {
        key: TxKey,
        req: Request,
        from: Peer,
    },
    /// A CANCEL (its own non-INVITE server tx) and the INVITE server tx it matches (§9.2).
    Cancel {
        key: TxKey,
        invite: Option<TxKey>,
        req: Request,
        from: Peer,
    },
    /// ACK for a 2xx: no transaction (§17.1.1.3); the dialog layer handles it.
    Ack { req: Request, from: Peer },
    /// Response for a client transaction (provisional and final). 2xx to INVITE that
    /// arrive after the client tx ended carry the key the ended tx had.
    Response { key: TxKey, resp: Response },
    /// A response matching no client transaction (§18.1.2: discard or log).
    StrayResponse { resp: Response, from: Peer },
    /// Timer B, F or H fired.
    Timeout { key: TxKey },
    /// The transaction is gone; the TU may forget the key.
    Terminated { key: TxKey },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
enum Kind {
    InviteClient,
    NonInviteClient,
    InviteServer,
    NonInviteServer,
}

/// Transaction states (§17.1.1, §17.1.2, §17.2.1, §17.2.2, RFC 6026 "Accepted").
/// "Terminated" is not a state here: a terminated transaction is removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
enum State {
    Calling,
    Trying,
    Proceeding,
    Completed,
    Confirmed,
    Accepted,
}

type MergeKey = (String, String, u32, Method);

struct Tx {
    kind: Kind,
    state: State,
    peer: Peer,
    request: Request,
    /// Client: the request as sent, for retransmission.
    request_bytes: Vec<u8>,
    /// Server: last response sent, for absorbing retransmissions (§17.2.1/§17.2.2).
    last_response: Option<Vec<u8>>,
    /// Client INVITE: ACK for the non-2xx final, resent on retransmitted finals.
    ack: Option<Vec<u8>>,
    /// Server INVITE: To tag of the final response, which an RFC 2543 ACK must
    /// carry to match (§17.2.3).
    final_to_tag: Option<String>,
    /// Current retransmission interval for Timer A/E/G.
    interval: Duration,
    /// Armed timers: (kind, deadline, id) mirrored in `TransactionLayer::timers`.
    timers: Vec<(TimerKind, Instant, u64)>,
    merge: Option<MergeKey>,
}

/// All client and server transactions of one endpoint (one per listening address
/// or per edge process). Drive it with `handle_*`, drain `poll_output`, sleep until
/// `poll_timeout`.
pub struct TransactionLayer {
    config: Config,
    txs: HashMap<TxKey, Tx>,
    timers: BTreeMap<(Instant, u64), (TxKey, TimerKind)>,
    next_timer_id: u64,
    /// §8.2.2.2 merged-request detection: (From tag, Call-ID, CSeq) → server tx.
    merge_index: HashMap<MergeKey, TxKey>,
    out: VecDeque<Output>,
}

/// The §17.2.3 fields of a request without an RFC 3261 branch, joined into one id.
/// The top Via is compared without `received`/`rport` (which we stamp ourselves)
/// and re-serialised, so LWS differences do not matter. The CSeq method is not part
/// of it (ACK and CANCEL must find the INVITE): it is [`TxKey::method`].
fn legacy_id(req: &Request, via: &Via, to_tag: Option<&str>) -> Option<String> {
    let mut via = via.clone();
    via.params
        .retain(|(k, _)| !k.eq_ignore_ascii_case("received") && !k.eq_ignore_ascii_case("rport"));
    let (cseq, _) = req.cseq()?;
    Some(format!(
        "{LEGACY_PREFIX}{}\n{}\n{}\n{}\n{cseq}\n{}",
        req.uri,
        to_tag.unwrap_or(""),
        req.from_tag().unwrap_or(""),
        req.call_id()?,
        via.to_value().to_ascii_lowercase(),
    ))
}

/// A fresh RFC 3261 branch with the magic cookie (§8.1.1.7); randomness comes from
/// the caller so the core stays deterministic.
pub fn new_branch(rng_bytes: u64) -> String {
    format!("z9hG4bK{rng_bytes:016x}")
}

/// A tag for From/To (§19.3); randomness from the caller.
pub fn new_tag(rng_bytes: u64) -> String {
    format!("{rng_bytes:016x}")
}

/// CANCEL for a pending client INVITE (§9.1): same Request-URI, Call-ID, From, To,
/// CSeq number and Route; only the top Via (same branch, so it matches the INVITE
/// server transaction at the next hop).
pub fn build_cancel(invite: &Request) -> Request {
    let mut req = Request::new(Method::Cancel, invite.uri.clone());
    if let Some(via) = invite.headers.get_all("Via").next() {
        req.headers.push("Via", via);
    }
    req.headers.push("Max-Forwards", "70");
    copy_headers(invite, &mut req, &["From", "To", "Call-ID"]);
    let num = invite.cseq().map(|(n, _)| n).unwrap_or(0);
    req.headers.push("CSeq", format!("{num} CANCEL"));
    for r in invite.headers.get_all("Route") {
        req.headers.push("Route", r);
    }
    req
}

/// ACK for a non-2xx final response (§17.1.1.3): built by the transaction, same
/// branch as the INVITE, To from the response (it carries the tag).
fn build_non2xx_ack(invite: &Request, resp: &Response) -> Request {
    let mut req = Request::new(Method::Ack, invite.uri.clone());
    if let Some(via) = invite.headers.get_all("Via").next() {
        req.headers.push("Via", via);
    }
    req.headers.push("Max-Forwards", "70");
    copy_headers(invite, &mut req, &["From"]);
    if let Some(to) = resp.headers.get("To") {
        req.headers.push("To", to);
    }
    copy_headers(invite, &mut req, &["Call-ID"]);
    let num = invite.cseq().map(|(n, _)| n).unwrap_or(0);
    req.headers.push("CSeq", format!("{num} ACK"));
    for r in invite.headers.get_all("Route") {
        req.headers.push("Route", r);
    }
    req
}

fn copy_headers(from: &Request, to: &mut Request, names: &[&str]) {
    for name in names {
        if let Some(v) = from.headers.get(name) {
            to.headers.push(name, v);
        }
    }
}

/// Deterministic To tag for the automatic 482 (no RNG in the core).
fn tag_from(s: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

impl TransactionLayer {
    pub fn new(config: Config) -> Self {
        TransactionLayer {
            config: config.sanitized(),
            txs: HashMap::new(),
            timers: BTreeMap::new(),
            next_timer_id: 0,
            merge_index: HashMap::new(),
            out: VecDeque::new(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Number of live transactions.
    pub fn len(&self) -> usize {
        self.txs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }

    /// Next deadline at which [`Self::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.keys().next().map(|(at, _)| *at)
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    // -- timer plumbing -------------------------------------------------------

    fn arm(&mut self, tx: &mut Tx, key: &TxKey, kind: TimerKind, at: Instant) {
        self.disarm(tx, kind);
        let id = self.next_timer_id;
        self.next_timer_id += 1;
        self.timers.insert((at, id), (key.clone(), kind));
        tx.timers.push((kind, at, id));
    }

    fn disarm(&mut self, tx: &mut Tx, kind: TimerKind) {
        let timers = &mut self.timers;
        tx.timers.retain(|(k, at, id)| {
            if *k == kind {
                timers.remove(&(*at, *id));
                false
            } else {
                true
            }
        });
    }

    fn terminate(&mut self, key: TxKey, mut tx: Tx) {
        for (_, at, id) in tx.timers.drain(..) {
            self.timers.remove(&(at, id));
        }
        if let Some(m) = tx.merge.take() {
            if self.merge_index.get(&m) == Some(&key) {
                self.merge_index.remove(&m);
            }
        }
        self.out.push_back(Output::Terminated { key });
    }

    fn transmit(&mut self, to: Peer, bytes: Vec<u8>) {
        self.out.push_back(Output::Transmit { to, bytes });
    }

    /// Timer I / J / K: T4 (or 64*T1 for J) on UDP, zero on reliable transports.
    fn wait_time(&self, kind: TimerKind, peer: Peer) -> Duration {
        if peer.transport.is_reliable() {
            return Duration::ZERO;
        }
        match kind {
            TimerKind::D => Duration::from_secs(32).max(self.config.t1x64()),
            TimerKind::J => self.config.t1x64(),
            _ => self.config.t4,
        }
    }

    // -- inputs ---------------------------------------------------------------

    /// Feeds a parsed message received from `from`.
    pub fn handle_incoming(&mut self, msg: Message, from: Peer, now: Instant) {
        match msg {
            Message::Request(req) => self.incoming_request(req, from, now),
            Message::Response(resp) => self.incoming_response(resp, from, now),
        }
    }

    fn incoming_request(&mut self, mut req: Request, from: Peer, now: Instant) {
        // §18.2.1 / RFC 3581 §4: record where the request really came from, so the
        // TU and every response copy of the Via say so. Responses themselves go to
        // the source address and port (symmetric, as rport asks; see the module doc).
        req.stamp_source(from.addr);
        // Without a Via or CSeq there is nothing to match on; validate_request
        // refuses such requests before they get here.
        let Some(key) = TxKey::server_for(&req) else {
            return;
        };
        if req.method == Method::Ack {
            let key = self.legacy_ack_key(key, &req);
            self.incoming_ack(key, req, from, now);
            return;
        }
        if let Some(tx) = self.txs.get(&key) {
            // Retransmission (§17.2.1, §17.2.2): resend the last response, if any.
            let resend = match (tx.kind, tx.state) {
                (Kind::InviteServer, State::Proceeding | State::Completed) => {
                    tx.last_response.clone()
                }
                (Kind::NonInviteServer, State::Proceeding | State::Completed) => {
                    tx.last_response.clone()
                }
                _ => None,
            };
            if let Some(bytes) = resend {
                self.transmit(from, bytes);
            }
            return;
        }

        let merge = if req.to_tag().is_none() && req.method != Method::Cancel {
            match (req.call_id(), req.from_tag(), req.cseq()) {
                (Some(c), Some(f), Some((n, m))) => Some((c.to_string(), f.to_string(), n, m)),
                _ => None,
            }
        } else {
            None
        };
        if let Some(m) = &merge {
            if let Some(other) = self.merge_index.get(m) {
                if *other != key && self.txs.contains_key(other) {
                    self.reject_merged(key, req, from, now);
                    return;
                }
            }
        }

        let invite = req.method == Method::Invite;
        let mut tx = Tx {
            kind: if invite {
                Kind::InviteServer
            } else {
                Kind::NonInviteServer
            },
            state: if invite {
                State::Proceeding
            } else {
                State::Trying
            },
            peer: from,
            request: req.clone(),
            request_bytes: Vec::new(),
            last_response: None,
            ack: None,
            final_to_tag: None,
            interval: self.config.t1,
            timers: Vec::new(),
            merge: merge.clone(),
        };
        if let Some(m) = merge {
            self.merge_index.insert(m, key.clone());
        }
        if invite {
            // §17.2.1: a 100 Trying at once stops the client's Timer A (the edge
            // wants it immediately rather than after 200 ms).
            let trying = Response::for_request(&req, 100, "Trying").to_bytes();
            tx.last_response = Some(trying.clone());
            self.transmit(from, trying);
        }
        self.txs.insert(key.clone(), tx);
        if req.method == Method::Cancel {
            // §9.2: the CANCEL matches the INVITE server tx with the same branch.
            let invite_key = TxKey {
                method: Method::Invite,
                ..key.clone()
            };
            let invite = self
                .txs
                .get(&invite_key)
                .filter(|t| t.kind == Kind::InviteServer)
                .map(|_| invite_key);
            self.out.push_back(Output::Cancel {
                key,
                invite,
                req,
                from,
            });
        } else {
            self.out.push_back(Output::Request { key, req, from });
        }
    }

    /// §8.2.2.2: same From tag, Call-ID and CSeq as a live server tx but another
    /// branch: the request reached us twice through different paths. Answer 482
    /// from a transaction of its own (so its retransmissions are absorbed and, for
    /// INVITE, the ACK is consumed) and do not surface it.
    fn reject_merged(&mut self, key: TxKey, req: Request, from: Peer, now: Instant) {
        let resp =
            Response::for_request(&req, 482, "Loop Detected").with_to_tag(&tag_from(&key.branch));
        let bytes = resp.to_bytes();
        let invite = req.method == Method::Invite;
        let tx_to_tag = resp.to_tag().map(str::to_string);
        let mut tx = Tx {
            kind: if invite {
                Kind::InviteServer
            } else {
                Kind::NonInviteServer
            },
            state: State::Completed,
            peer: from,
            request: req,
            request_bytes: Vec::new(),
            last_response: Some(bytes.clone()),
            ack: None,
            final_to_tag: tx_to_tag,
            interval: self.config.t1,
            timers: Vec::new(),
            merge: None,
        };
        self.transmit(from, bytes);
        if invite {
            if !from.transport.is_reliable() {
                self.arm(&mut tx, &key, TimerKind::G, now + self.config.t1);
            }
            self.arm(&mut tx, &key, TimerKind::H, now + self.config.t1x64());
        } else {
            let j = self.wait_time(TimerKind::J, from);
            self.arm(&mut tx, &key, TimerKind::J, now + j);
        }
        self.txs.insert(key, tx);
    }

    /// §17.2.3 for RFC 2543 requests: an ACK for our non-2xx final carries the To
    /// tag we added, which the INVITE (and so its key) did not have. It matches the
    /// INVITE transaction whose final response had that tag.
    fn legacy_ack_key(&self, key: TxKey, ack: &Request) -> TxKey {
        if !key.is_legacy() || self.txs.contains_key(&key) {
            return key;
        }
        match TxKey::server_with_to_tag(ack, None) {
            Some(k)
                if self.txs.get(&k).is_some_and(|t| {
                    t.final_to_tag.is_some() && t.final_to_tag.as_deref() == ack.to_tag()
                }) =>
            {
                k
            }
            _ => key,
        }
    }

    fn incoming_ack(&mut self, key: TxKey, req: Request, from: Peer, now: Instant) {
        let Some(mut tx) = self.txs.remove(&key) else {
            // ACK for a 2xx has its own branch and no transaction (§17.1.1.3).
            self.out.push_back(Output::Ack { req, from });
            return;
        };
        match (tx.kind, tx.state) {
            (Kind::InviteServer, State::Completed) => {
                // §17.2.1: ACK for our non-2xx → Confirmed, Timer I.
                tx.state = State::Confirmed;
                self.disarm(&mut tx, TimerKind::G);
                self.disarm(&mut tx, TimerKind::H);
                let i = self.wait_time(TimerKind::I, tx.peer);
                self.arm(&mut tx, &key, TimerKind::I, now + i);
            }
            (Kind::InviteServer, State::Accepted) => {
                // RFC 6026 §8.7: ACK matching an Accepted tx goes to the TU.
                self.out.push_back(Output::Ack { req, from });
            }
            _ => {} // Confirmed: absorb (§17.2.1); other states: ignore stray ACK.
        }
        self.txs.insert(key, tx);
    }

    fn incoming_response(&mut self, resp: Response, from: Peer, now: Instant) {
        let Some(key) = TxKey::client_for_response(&resp) else {
            self.out.push_back(Output::StrayResponse { resp, from });
            return;
        };
        let Some(mut tx) = self.txs.remove(&key) else {
            if resp.is_success() && key.method == Method::Invite {
                // 2xx retransmission after the client tx ended: the TU re-ACKs.
                self.out.push_back(Output::Response { key, resp });
            } else {
                self.out.push_back(Output::StrayResponse { resp, from });
            }
            return;
        };
        if self.client_response(&key, &mut tx, resp, now) {
            self.txs.insert(key, tx);
        } else {
            self.terminate(key, tx);
        }
    }

    /// Client transaction reaction to a matched response (§17.1.1.2, §17.1.2.2,
    /// RFC 6026 §8.4). Returns false when the transaction terminates.
    fn client_response(&mut self, key: &TxKey, tx: &mut Tx, resp: Response, now: Instant) -> bool {
        let status = resp.status;
        match (tx.kind, tx.state) {
            (Kind::InviteClient, State::Calling | State::Proceeding) => {
                if status < 200 {
                    // Proceeding: no more retransmissions, and Timer B only guards
                    // Calling (§17.1.1.2); the TU CANCELs a call that rings too long.
                    tx.state = State::Proceeding;
                    self.disarm(tx, TimerKind::A);
                    self.disarm(tx, TimerKind::B);
                    self.out.push_back(Output::Response {
                        key: key.clone(),
                        resp,
                    });
                } else if status < 300 {
                    // RFC 6026 §8.4: Accepted, Timer M; further 2xx go to the TU.
                    tx.state = State::Accepted;
                    self.disarm(tx, TimerKind::A);
                    self.disarm(tx, TimerKind::B);
                    self.arm(tx, key, TimerKind::M, now + self.config.t1x64());
                    self.out.push_back(Output::Response {
                        key: key.clone(),
                        resp,
                    });
                } else {
                    // §17.1.1.3: ACK the non-2xx ourselves, Completed, Timer D.
                    let ack = build_non2xx_ack(&tx.request, &resp).to_bytes();
                    self.transmit(tx.peer, ack.clone());
                    tx.ack = Some(ack);
                    tx.state = State::Completed;
                    self.disarm(tx, TimerKind::A);
                    self.disarm(tx, TimerKind::B);
                    let d = self.wait_time(TimerKind::D, tx.peer);
                    self.arm(tx, key, TimerKind::D, now + d);
                    self.out.push_back(Output::Response {
                        key: key.clone(),
                        resp,
                    });
                }
                true
            }
            (Kind::InviteClient, State::Completed) => {
                if status >= 300 {
                    if let Some(ack) = tx.ack.clone() {
                        self.transmit(tx.peer, ack);
                    }
                }
                true
            }
            (Kind::InviteClient, State::Accepted) => {
                if (200..300).contains(&status) {
                    self.out.push_back(Output::Response {
                        key: key.clone(),
                        resp,
                    });
                }
                true
            }
            (Kind::NonInviteClient, State::Trying | State::Proceeding) => {
                if status < 200 {
                    tx.state = State::Proceeding;
                } else {
                    // §17.1.2.2: Completed, Timer K.
                    tx.state = State::Completed;
                    self.disarm(tx, TimerKind::E);
                    self.disarm(tx, TimerKind::F);
                    let k = self.wait_time(TimerKind::K, tx.peer);
                    self.arm(tx, key, TimerKind::K, now + k);
                }
                self.out.push_back(Output::Response {
                    key: key.clone(),
                    resp,
                });
                true
            }
            // Completed non-INVITE: absorb retransmitted finals.
            _ => true,
        }
    }

    /// Starts a client transaction for `req` (which must carry a top Via with a
    /// branch, see [`new_branch`]) and transmits it. An ACK gets no transaction
    /// (ACK for 2xx is the TU's, §13.2.2.4): it is just transmitted.
    pub fn send_request(&mut self, req: Request, to: Peer, now: Instant) -> TxKey {
        let key = TxKey::client_for_request(&req);
        let bytes = req.to_bytes();
        self.transmit(to, bytes.clone());
        if req.method == Method::Ack {
            return key;
        }
        if let Some(old) = self.txs.remove(&key) {
            // Branch reuse by the TU: the old transaction cannot be matched anymore.
            self.terminate(key.clone(), old);
        }
        let invite = req.method == Method::Invite;
        let mut tx = Tx {
            kind: if invite {
                Kind::InviteClient
            } else {
                Kind::NonInviteClient
            },
            state: if invite {
                State::Calling
            } else {
                State::Trying
            },
            peer: to,
            request: req,
            request_bytes: bytes,
            last_response: None,
            ack: None,
            final_to_tag: None,
            interval: self.config.t1,
            timers: Vec::new(),
            merge: None,
        };
        let t1 = self.config.t1;
        let t64 = self.config.t1x64();
        if invite {
            // §17.1.1.2: Timer A (unreliable only), Timer B.
            if !to.transport.is_reliable() {
                self.arm(&mut tx, &key, TimerKind::A, now + t1);
            }
            self.arm(&mut tx, &key, TimerKind::B, now + t64);
        } else {
            // §17.1.2.2: Timer E (unreliable only), Timer F.
            if !to.transport.is_reliable() {
                self.arm(&mut tx, &key, TimerKind::E, now + t1);
            }
            self.arm(&mut tx, &key, TimerKind::F, now + t64);
        }
        self.txs.insert(key.clone(), tx);
        key
    }

    /// Sends a response through server transaction `key`. Responses for unknown or
    /// already-final transactions are ignored (except 2xx retransmissions in the
    /// Accepted state, RFC 6026 §8.7).
    pub fn send_response(&mut self, key: &TxKey, resp: Response, now: Instant) {
        let Some(mut tx) = self.txs.remove(key) else {
            return;
        };
        let status = resp.status;
        let peer = tx.peer;
        if status >= 200 && tx.kind == Kind::InviteServer && tx.state == State::Proceeding {
            tx.final_to_tag = resp.to_tag().map(str::to_string);
        }
        match (tx.kind, tx.state) {
            (Kind::InviteServer, State::Proceeding) => {
                let bytes = resp.to_bytes();
                self.transmit(peer, bytes.clone());
                if status < 200 {
                    tx.last_response = Some(bytes);
                } else if status < 300 {
                    // RFC 6026 §8.5: 2xx → Accepted, Timer L; the TU retransmits the 2xx.
                    tx.state = State::Accepted;
                    tx.last_response = None;
                    self.arm(&mut tx, key, TimerKind::L, now + self.config.t1x64());
                } else {
                    // §17.2.1: non-2xx final → Completed, Timers G (UDP) and H.
                    tx.state = State::Completed;
                    tx.last_response = Some(bytes);
                    tx.interval = self.config.t1;
                    if !peer.transport.is_reliable() {
                        self.arm(&mut tx, key, TimerKind::G, now + self.config.t1);
                    }
                    self.arm(&mut tx, key, TimerKind::H, now + self.config.t1x64());
                }
            }
            (Kind::InviteServer, State::Accepted) if (200..300).contains(&status) => {
                self.transmit(peer, resp.to_bytes());
            }
            (Kind::NonInviteServer, State::Trying | State::Proceeding) => {
                let bytes = resp.to_bytes();
                self.transmit(peer, bytes.clone());
                tx.last_response = Some(bytes);
                if status < 200 {
                    tx.state = State::Proceeding;
                } else {
                    // §17.2.2: Completed, Timer J.
                    tx.state = State::Completed;
                    let j = self.wait_time(TimerKind::J, peer);
                    self.arm(&mut tx, key, TimerKind::J, now + j);
                }
            }
            _ => {}
        }
        self.txs.insert(key.clone(), tx);
    }

    /// Fires every timer whose deadline is at or before `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let ((at, id), (key, kind)) = entry.remove_entry();
            let Some(mut tx) = self.txs.remove(&key) else {
                continue;
            };
            tx.timers.retain(|t| !(t.1 == at && t.2 == id));
            if self.fire(&key, &mut tx, kind, now) {
                self.txs.insert(key, tx);
            } else {
                self.terminate(key, tx);
            }
        }
    }

    /// Returns false when the transaction terminates.
    fn fire(&mut self, key: &TxKey, tx: &mut Tx, kind: TimerKind, now: Instant) -> bool {
        let t2 = self.config.t2;
        match kind {
            TimerKind::A if tx.state == State::Calling => {
                // §17.1.1.2: retransmit, double the interval (no T2 cap for INVITE).
                self.transmit(tx.peer, tx.request_bytes.clone());
                tx.interval *= 2;
                self.arm(tx, key, TimerKind::A, now + tx.interval);
                true
            }
            TimerKind::E if matches!(tx.state, State::Trying | State::Proceeding) => {
                // §17.1.2.2: doubling capped at T2 in Trying, T2 in Proceeding.
                self.transmit(tx.peer, tx.request_bytes.clone());
                tx.interval = if tx.state == State::Trying {
                    (tx.interval * 2).min(t2)
                } else {
                    t2
                };
                self.arm(tx, key, TimerKind::E, now + tx.interval);
                true
            }
            TimerKind::G if tx.state == State::Completed => {
                // §17.2.1: resend the non-2xx final, doubling up to T2.
                if let Some(bytes) = tx.last_response.clone() {
                    self.transmit(tx.peer, bytes);
                }
                tx.interval = (tx.interval * 2).min(t2);
                self.arm(tx, key, TimerKind::G, now + tx.interval);
                true
            }
            TimerKind::B | TimerKind::F | TimerKind::H => {
                self.out.push_back(Output::Timeout { key: key.clone() });
                false
            }
            TimerKind::D
            | TimerKind::I
            | TimerKind::J
            | TimerKind::K
            | TimerKind::L
            | TimerKind::M => false,
            // A retransmit timer that outlived its state: nothing to do.
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests;

/// One transaction as it serialises: timers as time left.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TxSnapshot {
    key: TxKey,
    kind: Kind,
    state: State,
    peer: Peer,
    request: Request,
    request_bytes: Vec<u8>,
    last_response: Option<Vec<u8>>,
    ack: Option<Vec<u8>>,
    interval: Duration,
    timers: Vec<(TimerKind, Duration)>,
    merge: Option<MergeKey>,
    final_to_tag: Option<String>,
}

/// Every live transaction, for a hand-over to another process.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TransactionsSnapshot {
    txs: Vec<TxSnapshot>,
}

impl TransactionsSnapshot {
    pub fn len(&self) -> usize {
        self.txs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }
}

impl TransactionLayer {
    /// The live transactions with their timers as time left at `now`.
    /// Outputs not yet polled are not part of it: drain first.
    pub fn snapshot(&self, now: Instant) -> TransactionsSnapshot {
        let mut txs: Vec<TxSnapshot> = self
            .txs
            .iter()
            .map(|(key, tx)| TxSnapshot {
                key: key.clone(),
                kind: tx.kind,
                state: tx.state,
                peer: tx.peer,
                request: tx.request.clone(),
                request_bytes: tx.request_bytes.clone(),
                last_response: tx.last_response.clone(),
                ack: tx.ack.clone(),
                interval: tx.interval,
                timers: tx
                    .timers
                    .iter()
                    .map(|(k, at, _)| (*k, at.saturating_duration_since(now)))
                    .collect(),
                merge: tx.merge.clone(),
                final_to_tag: tx.final_to_tag.clone(),
            })
            .collect();
        txs.sort_by(|a, b| {
            a.key
                .branch
                .cmp(&b.key.branch)
                .then(a.key.sent_by.cmp(&b.key.sent_by))
        });
        TransactionsSnapshot { txs }
    }

    /// A layer that carries on from `snap` at `now`.
    pub fn restore(config: Config, snap: TransactionsSnapshot, now: Instant) -> Self {
        let mut layer = TransactionLayer::new(config);
        for t in snap.txs {
            let mut tx = Tx {
                kind: t.kind,
                state: t.state,
                peer: t.peer,
                request: t.request,
                request_bytes: t.request_bytes,
                last_response: t.last_response,
                ack: t.ack,
                interval: t.interval,
                timers: Vec::new(),
                merge: t.merge,
                final_to_tag: t.final_to_tag,
            };
            for (kind, left) in t.timers {
                // An absurd duration from a damaged snapshot fires at once
                // rather than overflowing `Instant`.
                layer.arm(&mut tx, &t.key, kind, now.checked_add(left).unwrap_or(now));
            }
            if let Some(m) = &tx.merge {
                layer.merge_index.insert(m.clone(), t.key.clone());
            }
            layer.txs.insert(t.key, tx);
        }
        layer
    }
}
