//! The core: state, indexes and the input/output plumbing. Handlers for each
//! concept live in their own modules as `impl EdgeCore` blocks.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use acd_sip::message::{screen_request, UasPolicy};
use acd_sip::{Message, Method, Peer, Response, TransactionLayer, Transport, TxKey};

use crate::admission::Load;
use crate::call::{Call, Phase};
use crate::config::CoreConfig;
use crate::ids::{CallId, Rng, Side};
use crate::io::{Input, MediaCommand, Output, ToDistributor};
use crate::registrar::Registrar;
use crate::telemetry::{count_response, Direction};
use crate::timers::{TimerKey, TimerKind, Timers};

pub(crate) const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, INFO, UPDATE";
pub(crate) const SUPPORTED: &str = "timer";

/// What the edge understands as a UAS: session timers (RFC 4028), no
/// reliable provisionals (`Require: 100rel` gets 420: no PRACK here), and
/// SDP bodies only.
const UAS_POLICY: UasPolicy<'static> = UasPolicy {
    supported: &["timer"],
    accept: &["application/sdp"],
};

/// Dialog identity as seen on an incoming request: (Call-ID, our tag, their tag).
pub(crate) type DialogKey = (String, String, String);

/// Why a client transaction of ours was sent, to route its responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ClientTx {
    Bye,
    /// A re-INVITE: session refresh or a hold/unhold passed on.
    Reinvite,
}

/// The sans-IO B2BUA. Feed it with [`EdgeCore::handle`] and
/// [`EdgeCore::handle_timeout`], then drain [`EdgeCore::poll_output`] until
/// `None` and sleep until [`EdgeCore::poll_timeout`].
pub struct EdgeCore {
    pub(crate) cfg: CoreConfig,
    pub(crate) tx: TransactionLayer,
    pub(crate) calls: HashMap<CallId, Call>,
    /// Caller INVITE server transactions and agent INVITE client transactions.
    pub(crate) by_invite: HashMap<TxKey, (CallId, Side)>,
    pub(crate) by_dialog: HashMap<DialogKey, (CallId, Side)>,
    /// Our BYEs and re-INVITEs.
    pub(crate) by_client_tx: HashMap<TxKey, (CallId, Side, ClientTx)>,
    /// Agent INVITEs of ended calls: a late 2xx gets ACK and BYE.
    pub(crate) orphans: HashMap<TxKey, acd_sip::Request>,
    /// Late 2xx we ACKed and hung up, by (Call-ID, phone's tag): where the
    /// ACK went and the ACK; a retransmitted 2xx only gets the ACK again
    /// (one BYE per dialog, §13.2.2.4) until `TimerKey::HungUp` fires.
    pub(crate) hung_up_2xx: HashMap<(String, String), (Peer, Vec<u8>)>,
    pub(crate) registrar: Registrar,
    /// Bindings of other edges (and ours before a restart), from the distributor.
    pub(crate) remote: crate::site_bindings::RemoteBindings,
    pub(crate) trunks: crate::trunks::TrunkGuard,
    pub(crate) timers: Timers,
    pub(crate) rng: Rng,
    pub(crate) term: u64,
    pub(crate) next_token: u64,
    pub(crate) draining: bool,
    pub(crate) load: Load,
    /// Unix milliseconds at the instant (digest nonces and call notes carry
    /// wall-clock time).
    pub(crate) unix_base: (u64, Instant),
    pub(crate) out: VecDeque<Output>,
    /// Queue announcements playing (not state: not in snapshots).
    pub(crate) announcing: HashMap<CallId, crate::announce::Announcing>,
    /// Callbacks being dialled (not in snapshots).
    pub(crate) dials: crate::callback_dial::Dials,
}

impl EdgeCore {
    /// `seed` drives every tag, branch and id; `unix_now` is the wall clock
    /// at `now` (for digest nonces, which other edges must accept too).
    pub fn new(cfg: CoreConfig, seed: u64, now: Instant, unix_now: u64) -> EdgeCore {
        let mut rng = Rng::new(seed);
        let registrar = registrar_for(&cfg, &mut rng);
        let load = Load::new(&cfg.admission, now);
        EdgeCore {
            trunks: crate::trunks::TrunkGuard::from_config(&cfg.trunks, now),
            tx: TransactionLayer::new(cfg.sip),
            cfg,
            calls: HashMap::new(),
            by_invite: HashMap::new(),
            by_dialog: HashMap::new(),
            by_client_tx: HashMap::new(),
            orphans: HashMap::new(),
            hung_up_2xx: HashMap::new(),
            registrar,
            remote: Default::default(),
            timers: Timers::default(),
            rng,
            term: 0,
            next_token: 1,
            draining: false,
            load,
            unix_base: (unix_now.saturating_mul(1000), now),
            out: VecDeque::new(),
            announcing: HashMap::new(),
            dials: Default::default(),
        }
    }

    pub fn handle(&mut self, input: Input, now: Instant) {
        match input {
            Input::Sip {
                msg,
                from,
                received,
            } => {
                self.load.observe(now.saturating_duration_since(received));
                self.sip(msg, from, now);
            }
            Input::Distributor { term, cmd } => self.distributor(term, cmd, now),
            Input::IvrReply { call, step, reply } => self.ivr_reply(&call, step, reply, now),
            Input::MediaReady { call, ports } => self.media_ready(&call, ports, now),
            Input::MediaFailed { call, reason } => self.media_failed(&call, &reason, now),
            Input::Media(ev) => self.media_event(ev, now),
            Input::Drain => self.draining = true,
            Input::EndAll => self.end_all(now),
            Input::Reconfigure(r) => self.reconfigure(*r),
        }
        self.flush_tx(now);
    }

    /// Fires every deadline due at `now` (early calls are harmless).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.tx.handle_timeout(now);
        self.flush_tx(now);
        while let Some(key) = self.timers.pop_due(now) {
            self.fire(key, now);
            self.flush_tx(now);
        }
    }

    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.tx.poll_timeout(), self.timers.next()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Smoothed delay between a message's arrival and its handling.
    pub fn lateness(&self) -> Duration {
        self.load.lateness()
    }

    pub fn is_draining(&self) -> bool {
        self.draining
    }

    pub fn active_calls(&self) -> usize {
        self.calls.len()
    }

    pub fn transactions(&self) -> usize {
        self.tx.len()
    }

    /// Live registrations: a walk over the bindings, so a shell calls it
    /// when [`EdgeCore::registration_changes`] moved or now and then.
    pub fn registrations(&self, now: Instant) -> usize {
        self.registrar.count(now)
    }

    /// Bumped by every registration added, moved or removed.
    pub fn registration_changes(&self) -> u64 {
        self.registrar.changes()
    }

    /// Calls handed to the distributor and not ended: announced again when
    /// the distributor stream re-attaches, so their offers find this edge.
    pub fn queued_calls(&self) -> Vec<CallId> {
        let mut v: Vec<CallId> = self
            .calls
            .values()
            .filter(|c| c.enqueued.is_some())
            .map(|c| c.id.clone())
            .collect();
        v.sort();
        v
    }

    /// Phase name of a call, for tests and status.
    pub fn call_phase(&self, call: &CallId) -> Option<&'static str> {
        self.calls.get(call).map(|c| c.phase.name())
    }

    pub fn call_ids(&self) -> Vec<CallId> {
        let mut v: Vec<CallId> = self.calls.keys().cloned().collect();
        v.sort();
        v
    }

    pub(crate) fn unix_now(&self, now: Instant) -> u64 {
        self.unix_ms(now) / 1000
    }

    /// The wall clock at `now` to the millisecond (`new` and `restore` take
    /// whole seconds): call notes are compared with the distributor's times.
    pub fn set_wall_clock(&mut self, unix_ms: u64, now: Instant) {
        self.unix_base = (unix_ms, now);
    }

    pub(crate) fn emit(&mut self, out: Output) {
        self.out.push_back(out);
    }

    pub(crate) fn report(&mut self, msg: ToDistributor) {
        self.out.push_back(Output::Distributor(msg));
    }

    pub(crate) fn media(&mut self, call: &CallId, cmd: MediaCommand) {
        self.out.push_back(Output::Media {
            call: call.clone(),
            cmd,
        });
    }

    pub(crate) fn transmit(&mut self, to: Peer, bytes: Vec<u8>) {
        self.out.push_back(Output::Transmit { to, bytes });
    }

    pub(crate) fn set_timer(
        &mut self,
        call: &CallId,
        kind: TimerKind,
        after: Duration,
        now: Instant,
    ) {
        self.timers
            .set(TimerKey::Call(call.clone(), kind), now + after);
    }

    pub(crate) fn cancel_timer(&mut self, call: &CallId, kind: TimerKind) {
        self.timers.cancel(&TimerKey::Call(call.clone(), kind));
    }

    /// Message-level checks (RFC 3261 §8.2, RFC 4475) before any transaction:
    /// a refusal is sent statelessly, with a To tag derived from the request
    /// so a retransmission gets the same answer.
    fn sip(&mut self, msg: Message, from: Peer, now: Instant) {
        if let Message::Request(req) = &msg {
            if let Err(refusal) = screen_request(req, &UAS_POLICY) {
                let status = refusal.response.status;
                metrics::counter!("acd_sip_bad_requests_total", "status" => status.to_string(), "reason" => refusal.reason)
                    .increment(1);
                tracing::warn!(peer = %from.addr, status, reason = refusal.reason, "refused SIP request");
                if req.method != Method::Ack {
                    count_response(&refusal.response, Direction::Out);
                    self.transmit(from, refusal.response.to_bytes());
                }
                return;
            }
        }
        self.tx.handle_incoming(msg, from, now);
    }

    /// Drains the transaction layer's outputs into our handlers.
    pub(crate) fn flush_tx(&mut self, now: Instant) {
        use acd_sip::Output as T;
        while let Some(out) = self.tx.poll_output() {
            match out {
                T::Transmit { to, bytes } => self.transmit(to, bytes),
                T::Request { key, req, from } => self.request(key, req, from, now),
                T::Cancel {
                    key, invite, req, ..
                } => self.cancel(key, invite, &req, now),
                T::Ack { req, .. } => self.ack(&req, now),
                T::Response { key, resp } => {
                    count_response(&resp, Direction::In);
                    self.response(&key, resp, now)
                }
                T::StrayResponse { resp, from } => {
                    metrics::counter!("acd_sip_stray_responses_total").increment(1);
                    tracing::debug!(peer = %from.addr, status = resp.status, "stray response");
                }
                T::Timeout { key } => self.client_timeout(&key, now),
                T::Terminated { key } => self.terminated(&key),
            }
        }
    }

    fn terminated(&mut self, key: &TxKey) {
        if key.role == acd_sip::transaction::Role::Client && key.method != Method::Invite {
            self.by_client_tx.remove(key);
        }
    }

    fn fire(&mut self, key: TimerKey, now: Instant) {
        match key {
            TimerKey::Orphan(tx) => {
                self.orphans.remove(&tx);
                self.by_invite.remove(&tx);
            }
            TimerKey::HungUp(call_id, tag) => {
                self.hung_up_2xx.remove(&(call_id, tag));
            }
            TimerKey::Registration(user) => self.registration_expired(&user, now),
            TimerKey::Dial(call) => self.dial_timeout(&call, now),
            TimerKey::Call(call, kind) => {
                if !self.calls.contains_key(&call) {
                    return;
                }
                let span = tracing::info_span!("call", call_id = %call);
                let _e = span.enter();
                match kind {
                    TimerKind::Retransmit2xx(side) => self.retransmit_2xx(&call, side, now),
                    TimerKind::NoAck(side) => self.no_ack(&call, side, now),
                    TimerKind::Ring => self.ring_timeout(&call, now),
                    TimerKind::Digits(step) => self.digits_timeout(&call, step, now),
                    TimerKind::SessionExpiry(side) => self.session_expired(&call, side, now),
                    TimerKind::SessionRefresh(side) => self.refresh_session(&call, side, now),
                    TimerKind::Reoffer(side) => {
                        let _ = self.send_reinvite(&call, side, now);
                    }
                }
            }
        }
    }

    /// §8.2.6.2: a final response to a request without a To tag gets one.
    pub(crate) fn with_local_tag(&mut self, resp: Response) -> Response {
        if resp.status >= 200 && resp.headers.to_tag().is_none() {
            let tag = self.rng.tag();
            resp.with_to_tag(&tag)
        } else {
            resp
        }
    }

    pub(crate) fn respond(&mut self, key: &TxKey, resp: Response, now: Instant) {
        let resp = self.with_local_tag(resp);
        if resp.status >= 300 {
            metrics::counter!("acd_sip_error_responses_total", "status" => resp.status.to_string())
                .increment(1);
        }
        count_response(&resp, Direction::Out);
        self.tx.send_response(key, resp, now);
    }

    pub(crate) fn local_contact(&self, transport: Transport) -> String {
        let l = &self.cfg.listen;
        match transport {
            Transport::Udp => format!("sip:acd@{}", host_port(l.public_ip, l.udp_port)),
            Transport::Tcp => format!(
                "sip:acd@{};transport=tcp",
                host_port(l.public_ip, l.tcp_port)
            ),
            Transport::Tls => format!(
                "sip:acd@{};transport=tls",
                host_port(l.public_ip, l.tls_port.unwrap_or(l.tcp_port))
            ),
        }
    }

    pub(crate) fn via(&self, transport: Transport) -> String {
        let l = &self.cfg.listen;
        match transport {
            Transport::Udp => format!("SIP/2.0/UDP {}", host_port(l.public_ip, l.udp_port)),
            Transport::Tcp => format!("SIP/2.0/TCP {}", host_port(l.public_ip, l.tcp_port)),
            Transport::Tls => format!(
                "SIP/2.0/TLS {}",
                host_port(l.public_ip, l.tls_port.unwrap_or(l.tcp_port))
            ),
        }
    }

    pub(crate) fn phase_of(&self, call: &CallId) -> Option<&Phase> {
        self.calls.get(call).map(|c| &c.phase)
    }
}

/// The registrar with its digest server and back-off, seeded from the core's RNG.
pub(crate) fn registrar_for(cfg: &CoreConfig, rng: &mut Rng) -> Registrar {
    use acd_sip::auth::{AuthGuard, DigestServer};
    let digest = DigestServer::new(&cfg.realm, cfg.nonce_secret)
        .seeded(rng.next_u64())
        .offering(&cfg.auth_algorithms);
    let guard = AuthGuard::new(digest, cfg.auth_backoff);
    Registrar::with_guard(guard, cfg.extensions.clone())
}

pub(crate) fn host_port(ip: std::net::IpAddr, port: u16) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => format!("{v4}:{port}"),
        std::net::IpAddr::V6(v6) => format!("[{v6}]:{port}"),
    }
}

impl EdgeCore {
    fn reconfigure(&mut self, r: crate::io::Reconfigure) {
        tracing::info!(
            dids = r.dids.len(),
            flows = r.flows.len(),
            prompts = r.prompts.len(),
            "edge reconfigured"
        );
        self.cfg.dids = r.dids;
        self.cfg.flows = r.flows;
        self.cfg.prompts = r.prompts;
    }
}
