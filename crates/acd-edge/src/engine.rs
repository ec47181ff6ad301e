//! The edge's signalling engine: one task owns the transaction layer, every
//! call and the timers, and is fed by transports, the distributor stream,
//! IVR step results and media events. It never awaits I/O itself, so the
//! order of inputs is the order of decisions.
//!
//! A call here is a B2BUA pair: the caller's leg (a server INVITE answered by
//! us) and, once the distributor picks an agent, the agent's leg (a client
//! INVITE from us to the agent's registered contact).

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use acd_ivr::AnswerMode;
use acd_media::{Codec, Prompt, SessionDesc};
use acd_proto::v1 as pb;
use acd_sip::dialog::{Dialog, Retransmit2xx};
use acd_sip::message::{uri_user, validate_request, NameAddr};
use acd_sip::transaction::{build_cancel, new_branch, new_tag};
use acd_sip::{
    Message, Method, Output, Peer, Request, Response, TransactionLayer, Transport, TxKey,
};
use pb::edge_message::Kind as ToDist;
use tokio::sync::mpsc;

use crate::distributor_link::DistributorLink;
use crate::ivr_client::IvrClients;
use crate::media::{self, MediaCmd, MediaEvent, MediaHandle, PortPool};
use crate::registrar::{contact_peer, Registrar};
use crate::transport::{BoxedMessage, Transports};
use crate::{EdgeShared, Flows};

const SUPPORTED: [Codec; 2] = [Codec::Pcmu, Codec::Pcma];
const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, INFO";

/// Everything the engine reacts to.
pub enum Input {
    Datagram {
        bytes: Vec<u8>,
        from: Peer,
    },
    Message {
        msg: BoxedMessage,
        from: Peer,
    },
    Distributor(pb::DistributorMessage),
    DistributorUp(bool),
    IvrDone {
        call: String,
        result: Result<pb::StepResponse, String>,
    },
    Media(MediaEvent),
}

/// Static facts the engine needs.
pub struct EngineConfig {
    pub public_ip: IpAddr,
    pub udp_port: u16,
    pub tcp_port: u16,
    pub realm: String,
    pub offer_timeout: Duration,
    pub dids: BTreeMap<String, String>,
    pub flows: Flows,
    pub prompts: BTreeMap<String, Arc<Prompt>>,
}

enum Phase {
    Ivr,
    Queued,
    /// Ringing an agent.
    Connecting,
    Bridged,
}

struct CallerLeg {
    invite: Request,
    invite_key: TxKey,
    peer: Peer,
    local_tag: String,
    sdp: String,
    codec: Codec,
    answered: bool,
    dialog: Option<Dialog>,
    retransmit: Option<Retransmit2xx>,
}

struct AgentLeg {
    agent_id: String,
    invite: Request,
    key: TxKey,
    peer: Peer,
    sdp: String,
    ring_deadline: Option<Instant>,
    dialog: Option<Dialog>,
    cancelled: bool,
}

struct Call {
    span: tracing::Span,
    did: String,
    flow_id: String,
    caller: CallerLeg,
    agent: Option<AgentLeg>,
    media: MediaHandle,
    phase: Phase,
    session: pb::IvrSession,
    /// Token of the prompt whose end advances the IVR.
    prompt_token: u64,
    digit_deadline: Option<Instant>,
}

/// Which side of a call a SIP Call-ID belongs to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Side {
    Caller,
    Agent,
}

pub struct Engine {
    cfg: EngineConfig,
    tx: TransactionLayer,
    transports: Transports,
    registrar: Arc<Registrar>,
    ports: PortPool,
    ivr: IvrClients,
    dist: DistributorLink,
    shared: Arc<EdgeShared>,
    input: mpsc::UnboundedSender<Input>,
    media_events: mpsc::UnboundedSender<MediaEvent>,
    calls: HashMap<String, Call>,
    /// SIP Call-ID → (acd call id, side).
    dialogs: HashMap<String, (String, Side)>,
    term: u64,
    next_token: u64,
}

pub struct EngineParts {
    pub cfg: EngineConfig,
    pub transports: Transports,
    pub registrar: Arc<Registrar>,
    pub ports: PortPool,
    pub ivr: IvrClients,
    pub dist: DistributorLink,
    pub shared: Arc<EdgeShared>,
    pub input: mpsc::UnboundedSender<Input>,
}

impl Engine {
    pub fn new(p: EngineParts) -> Engine {
        let (media_tx, mut media_rx) = mpsc::unbounded_channel();
        let input = p.input.clone();
        tokio::spawn(async move {
            while let Some(ev) = media_rx.recv().await {
                if input.send(Input::Media(ev)).is_err() {
                    return;
                }
            }
        });
        Engine {
            cfg: p.cfg,
            tx: TransactionLayer::new(acd_sip::Config::default()),
            transports: p.transports,
            registrar: p.registrar,
            ports: p.ports,
            ivr: p.ivr,
            dist: p.dist,
            shared: p.shared,
            input: p.input,
            media_events: media_tx,
            calls: HashMap::new(),
            dialogs: HashMap::new(),
            term: 0,
            next_token: 1,
        }
    }

    /// The drive loop: wait for an input or the next deadline, feed, flush.
    pub async fn run(mut self, mut inputs: mpsc::UnboundedReceiver<Input>) {
        loop {
            let deadline = self.next_deadline().map(tokio::time::Instant::from_std);
            tokio::select! {
                input = inputs.recv() => match input {
                    Some(i) => self.handle(i, Instant::now()),
                    None => return,
                },
                _ = sleep_until(deadline), if deadline.is_some() => self.handle_timeout(Instant::now()),
            }
            self.flush(Instant::now());
            self.publish_status();
        }
    }

    fn publish_status(&self) {
        self.shared
            .active_calls
            .store(self.calls.len() as u32, Ordering::Relaxed);
        self.shared
            .sip_transactions
            .store(self.tx.len() as u32, Ordering::Relaxed);
    }

    fn next_deadline(&self) -> Option<Instant> {
        let calls = self.calls.values().flat_map(|c| {
            [
                c.caller
                    .retransmit
                    .as_ref()
                    .and_then(Retransmit2xx::poll_timeout),
                c.agent.as_ref().and_then(|a| a.ring_deadline),
                c.digit_deadline,
            ]
        });
        calls.chain([self.tx.poll_timeout()]).flatten().min()
    }

    fn handle(&mut self, input: Input, now: Instant) {
        match input {
            Input::Datagram { bytes, from } => self.datagram(&bytes, from, now),
            Input::Message { msg, from } => self.sip_message(*msg, from, now),
            Input::Distributor(m) => self.distributor(m, now),
            Input::DistributorUp(up) => self
                .shared
                .distributor_connected
                .store(up, Ordering::Relaxed),
            Input::IvrDone { call, result } => self.ivr_done(&call, result, now),
            Input::Media(MediaEvent::PromptFinished { call, token }) => {
                self.prompt_finished(&call, token)
            }
        }
    }

    fn datagram(&mut self, bytes: &[u8], from: Peer, now: Instant) {
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            return; // keep-alive
        }
        match acd_sip::parse(bytes) {
            Ok(msg) => self.sip_message(msg, from, now),
            Err(e) => {
                metrics::counter!("acd_sip_parse_errors_total", "transport" => "udp").increment(1);
                tracing::warn!(peer = %from.addr, error = %e, "malformed SIP datagram");
                if let Some(resp) = acd_sip::message::salvage_for_400(bytes) {
                    self.transports.send(from, resp);
                }
            }
        }
    }

    fn sip_message(&mut self, msg: Message, from: Peer, now: Instant) {
        if let Message::Request(req) = &msg {
            if let Err(e) = validate_request(req) {
                metrics::counter!("acd_sip_bad_requests_total", "status" => e.status().to_string())
                    .increment(1);
                tracing::warn!(peer = %from.addr, error = %e, "invalid SIP request");
                if req.method != Method::Ack {
                    let resp = Response::for_request(req, e.status(), &e.reason());
                    self.transports.send(from, resp.to_bytes());
                }
                return;
            }
        }
        self.tx.handle_incoming(msg, from, now);
    }

    /// Drains the transaction layer's outputs.
    fn flush(&mut self, now: Instant) {
        while let Some(out) = self.tx.poll_output() {
            match out {
                Output::Transmit { to, bytes } => self.transports.send(to, bytes),
                Output::Request { key, req, from } => self.request(key, req, from, now),
                Output::Cancel {
                    key, invite, req, ..
                } => self.cancel(key, invite, &req, now),
                Output::Ack { req, .. } => self.ack(&req),
                Output::Response { key, resp } => self.response(&key, resp, now),
                Output::StrayResponse { resp, from } => {
                    tracing::debug!(peer = %from.addr, status = resp.status, "stray response");
                }
                Output::Timeout { key } => self.tx_timeout(&key, now),
                Output::Terminated { .. } => {}
            }
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.tx.handle_timeout(now);
        let ids: Vec<String> = self.calls.keys().cloned().collect();
        for id in ids {
            self.call_timers(&id, now);
        }
    }

    fn call_timers(&mut self, id: &str, now: Instant) {
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        if let Some(rt) = call.caller.retransmit.as_mut() {
            if let Some(bytes) = rt.handle_timeout(now) {
                self.transports.send(rt.peer(), bytes);
            }
            if rt.gave_up() {
                call.caller.retransmit = None;
                let _e = call.span.clone().entered();
                tracing::warn!("caller never acknowledged 200 OK");
                self.end_call(id, EndReason::NoAck, now);
                return;
            }
            if rt.is_done() {
                call.caller.retransmit = None;
            }
        }
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        if call
            .agent
            .as_ref()
            .and_then(|a| a.ring_deadline)
            .is_some_and(|d| d <= now)
        {
            self.cancel_agent_leg(id, now);
        }
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        if call.digit_deadline.is_some_and(|d| d <= now) {
            call.digit_deadline = None;
            self.ivr_step(id, pb::ivr_event::Kind::Timeout(pb::InputTimeout {}));
        }
    }

    // ----- requests -------------------------------------------------------

    fn request(&mut self, key: TxKey, req: Request, from: Peer, now: Instant) {
        metrics::counter!("acd_sip_requests_total", "method" => req.method.as_str().to_string())
            .increment(1);
        let in_dialog = req.headers.to_tag().is_some();
        match (&req.method, in_dialog) {
            (Method::Register, _) => {
                let resp = self.registrar.handle(&req, from, now);
                self.shared
                    .registrations
                    .store(self.registrar.count(now) as u32, Ordering::Relaxed);
                self.respond(&key, resp, now);
            }
            (Method::Options, false) => {
                let status = if self.draining() {
                    (503, "Service Unavailable")
                } else {
                    (200, "OK")
                };
                let mut resp = Response::for_request(&req, status.0, status.1);
                resp.headers.push("Allow", ALLOW);
                resp.headers.push("Accept", "application/sdp");
                self.respond(&key, resp, now);
            }
            (Method::Invite, false) => self.new_call(key, req, from, now),
            (_, true) => self.in_dialog(key, req, now),
            (Method::Bye, false) | (Method::Info, false) => self.respond(
                &key,
                Response::for_request(&req, 481, "Call/Transaction Does Not Exist"),
                now,
            ),
            _ => {
                let mut resp = Response::for_request(&req, 405, "Method Not Allowed");
                resp.headers.push("Allow", ALLOW);
                self.respond(&key, resp, now);
            }
        }
    }

    fn respond(&mut self, key: &TxKey, resp: Response, now: Instant) {
        if resp.status >= 300 {
            metrics::counter!("acd_sip_error_responses_total", "status" => resp.status.to_string())
                .increment(1);
        }
        self.tx.send_response(key, resp, now);
    }

    fn draining(&self) -> bool {
        self.shared.draining.load(Ordering::Relaxed)
    }

    fn new_call(&mut self, key: TxKey, req: Request, from: Peer, now: Instant) {
        let refuse = |this: &mut Self, status: u16, reason: &str| {
            let resp =
                Response::for_request(&req, status, reason).with_to_tag(&new_tag(rand::random()));
            this.respond(&key, resp, now);
        };
        if self.draining() {
            let mut resp = Response::for_request(&req, 503, "Service Unavailable")
                .with_to_tag(&new_tag(rand::random()));
            resp.headers.push("Retry-After", "5");
            self.respond(&key, resp, now);
            return;
        }
        let did = uri_user(&req.uri).unwrap_or_default().to_string();
        let Some(flow_id) = self.cfg.dids.get(&did).cloned() else {
            tracing::info!(sip_call_id = req.headers.call_id().unwrap_or(""), %did, "no such number");
            metrics::counter!("acd_calls_total", "outcome" => "not_found").increment(1);
            return refuse(self, 404, "Not Found");
        };
        let Some(flow) = self.cfg.flows.get(&flow_id) else {
            return refuse(self, 500, "Server Internal Error (flow missing)");
        };
        let answer_mode = flow.answer;
        let offer = match acd_media::parse_sdp(&req.body) {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(error = %e, "INVITE without a usable SDP offer");
                metrics::counter!("acd_calls_total", "outcome" => "bad_sdp").increment(1);
                return refuse(self, 488, "Not Acceptable Here (SDP offer required)");
            }
        };
        let Some(codec) = acd_media::negotiate(&offer, &SUPPORTED) else {
            metrics::counter!("acd_calls_total", "outcome" => "no_codec").increment(1);
            return refuse(self, 488, "Not Acceptable Here (PCMU or PCMA required)");
        };
        let id = format!("acd-{:016x}", rand::random::<u64>());
        let span = tracing::info_span!("call", call_id = %id);
        let _e = span.clone().entered();
        let remote = SocketAddr::new(offer.conn_ip, offer.audio_port);
        let media = match media::start(
            &self.ports,
            id.clone(),
            remote,
            codec,
            self.media_events.clone(),
        ) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(error = %e, "cannot allocate media");
                metrics::counter!("acd_calls_total", "outcome" => "no_media").increment(1);
                return refuse(self, 503, "Service Unavailable (media)");
            }
        };
        let sdp = match acd_media::build_answer(
            &offer,
            self.cfg.public_ip,
            media.caller_port,
            codec,
            rand::random::<u32>().into(),
        ) {
            Some(s) => s,
            None => return refuse(self, 488, "Not Acceptable Here"),
        };
        let sip_call_id = req.headers.call_id().unwrap_or_default().to_string();
        tracing::info!(%did, flow = %flow_id, from = req.headers.get("From").unwrap_or(""), %sip_call_id, "incoming call");
        metrics::counter!("acd_calls_total", "outcome" => "accepted").increment(1);
        let local_tag = new_tag(rand::random());
        let call = Call {
            span: span.clone(),
            did: did.clone(),
            flow_id: flow_id.clone(),
            caller: CallerLeg {
                invite: req,
                invite_key: key,
                peer: from,
                local_tag,
                sdp,
                codec,
                answered: false,
                dialog: None,
                retransmit: None,
            },
            agent: None,
            media,
            phase: Phase::Ivr,
            session: pb::IvrSession {
                flow_id,
                node: String::new(),
                variables: Default::default(),
            },
            prompt_token: 0,
            digit_deadline: None,
        };
        self.dialogs.insert(sip_call_id, (id.clone(), Side::Caller));
        self.calls.insert(id.clone(), call);
        match answer_mode {
            AnswerMode::Immediate => self.answer_caller(&id, now),
            AnswerMode::Early => self.early_media(&id, now),
        }
        let caller = self
            .calls
            .get(&id)
            .map(|c| caller_data(&c.caller.invite, &did))
            .unwrap_or_default();
        self.ivr_step(
            &id,
            pb::ivr_event::Kind::Started(pb::Started {
                did,
                caller: caller.from_uri,
            }),
        );
    }

    fn local_contact(&self, transport: Transport) -> String {
        match transport {
            Transport::Udp => format!(
                "sip:acd@{}",
                host_port(self.cfg.public_ip, self.cfg.udp_port)
            ),
            Transport::Tcp => format!(
                "sip:acd@{};transport=tcp",
                host_port(self.cfg.public_ip, self.cfg.tcp_port)
            ),
        }
    }

    fn via(&self, transport: Transport) -> String {
        match transport {
            Transport::Udp => format!(
                "SIP/2.0/UDP {}",
                host_port(self.cfg.public_ip, self.cfg.udp_port)
            ),
            Transport::Tcp => format!(
                "SIP/2.0/TCP {}",
                host_port(self.cfg.public_ip, self.cfg.tcp_port)
            ),
        }
    }

    fn early_media(&mut self, id: &str, now: Instant) {
        let Some(call) = self.calls.get(id) else {
            return;
        };
        let mut resp = Response::for_request(&call.caller.invite, 183, "Session Progress")
            .with_to_tag(&call.caller.local_tag);
        copy_record_route(&call.caller.invite, &mut resp);
        resp.headers.push(
            "Contact",
            format!("<{}>", self.local_contact(call.caller.peer.transport)),
        );
        resp.headers.push("Content-Type", "application/sdp");
        resp.body = call.caller.sdp.clone().into_bytes();
        let key = call.caller.invite_key.clone();
        self.respond(&key, resp, now);
    }

    /// Sends 200 OK with our SDP to the caller and starts its retransmission.
    fn answer_caller(&mut self, id: &str, now: Instant) {
        let contact = {
            let Some(call) = self.calls.get(id) else {
                return;
            };
            self.local_contact(call.caller.peer.transport)
        };
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        if call.caller.answered {
            return;
        }
        let mut resp = Response::for_request(&call.caller.invite, 200, "OK")
            .with_to_tag(&call.caller.local_tag);
        copy_record_route(&call.caller.invite, &mut resp);
        resp.headers.push("Contact", format!("<{contact}>"));
        resp.headers.push("Allow", ALLOW);
        resp.headers.push("Content-Type", "application/sdp");
        resp.body = call.caller.sdp.clone().into_bytes();
        match Dialog::uas(&call.caller.invite, &call.caller.local_tag, &contact) {
            Ok(d) => call.caller.dialog = Some(d),
            Err(e) => tracing::warn!(parent: &call.span, error = %e, "cannot form caller dialog"),
        }
        call.caller.answered = true;
        if !call.caller.peer.transport.is_reliable() {
            let rt = Retransmit2xx::new(resp.to_bytes(), call.caller.peer, self.tx.config(), now);
            call.caller.retransmit = Some(rt);
        }
        tracing::info!(parent: &call.span, "caller answered");
        let key = call.caller.invite_key.clone();
        self.respond(&key, resp, now);
    }

    fn in_dialog(&mut self, key: TxKey, req: Request, now: Instant) {
        let call_id = req.headers.call_id().unwrap_or_default().to_string();
        let Some((id, side)) = self.dialogs.get(&call_id).cloned() else {
            self.respond(
                &key,
                Response::for_request(&req, 481, "Call/Transaction Does Not Exist"),
                now,
            );
            return;
        };
        match req.method {
            Method::Bye => {
                self.respond(&key, Response::for_request(&req, 200, "OK"), now);
                let reason = if side == Side::Caller {
                    EndReason::CallerHangup
                } else {
                    EndReason::AgentHangup
                };
                self.end_call(&id, reason, now);
            }
            Method::Invite => {
                // Session refresh or re-offer: keep the media as it is.
                let sdp = self.calls.get(&id).map(|c| match side {
                    Side::Caller => c.caller.sdp.clone(),
                    Side::Agent => c.agent.as_ref().map(|a| a.sdp.clone()).unwrap_or_default(),
                });
                let mut resp = Response::for_request(&req, 200, "OK");
                resp.headers.push(
                    "Contact",
                    format!("<{}>", self.local_contact(Transport::Udp)),
                );
                resp.headers.push("Content-Type", "application/sdp");
                resp.body = sdp.unwrap_or_default().into_bytes();
                self.respond(&key, resp, now);
            }
            Method::Info | Method::Update | Method::Options => {
                self.respond(&key, Response::for_request(&req, 200, "OK"), now);
            }
            _ => {
                let mut resp = Response::for_request(&req, 405, "Method Not Allowed");
                resp.headers.push("Allow", ALLOW);
                self.respond(&key, resp, now);
            }
        }
    }

    fn ack(&mut self, req: &Request) {
        let call_id = req.headers.call_id().unwrap_or_default();
        if let Some((id, Side::Caller)) = self.dialogs.get(call_id) {
            if let Some(rt) = self
                .calls
                .get_mut(id)
                .and_then(|c| c.caller.retransmit.as_mut())
            {
                rt.ack_received();
            }
        }
    }

    fn cancel(&mut self, key: TxKey, invite: Option<TxKey>, req: &Request, now: Instant) {
        // §9.2: no matching INVITE transaction → 481; otherwise 200, and the
        // CANCEL only has an effect while the INVITE has no final response.
        let Some(invite) = invite else {
            self.respond(&key, Response::for_request(req, 481, "Call/Transaction Does Not Exist"), now);
            return;
        };
        self.respond(&key, Response::for_request(req, 200, "OK"), now);
        let pending = self
            .calls
            .iter()
            .find(|(_, c)| c.caller.invite_key == invite && !c.caller.answered)
            .map(|(id, _)| id.clone());
        if let Some(id) = pending {
            self.end_call(&id, EndReason::CallerCancel, now);
        }
    }

    // ----- IVR ------------------------------------------------------------

    fn ivr_step(&mut self, id: &str, event: pb::ivr_event::Kind) {
        let Some(call) = self.calls.get(id) else {
            return;
        };
        let req = pb::StepRequest {
            call_id: id.to_string(),
            session: Some(call.session.clone()),
            event: Some(pb::IvrEvent { kind: Some(event) }),
        };
        let ivr = self.ivr.clone();
        let input = self.input.clone();
        let call = id.to_string();
        tokio::spawn(async move {
            let result = ivr.step(req).await;
            let _ = input.send(Input::IvrDone { call, result });
        });
    }

    fn ivr_done(&mut self, id: &str, result: Result<pb::StepResponse, String>, now: Instant) {
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        let _e = call.span.clone().entered();
        if !matches!(call.phase, Phase::Ivr) {
            return;
        }
        let actions = match result {
            Ok(resp) => {
                if let Some(s) = resp.session {
                    call.session = s;
                }
                resp.actions
            }
            Err(e) => {
                // No runner answered: the caller must not hear silence.
                metrics::counter!("acd_edge_ivr_fallbacks_total").increment(1);
                let queue = self
                    .cfg
                    .flows
                    .get(&call.flow_id)
                    .map(|f| f.fallback_queue.clone())
                    .unwrap_or_default();
                tracing::warn!(error = %e, %queue, "IVR unavailable, using the flow's fallback queue");
                vec![pb::IvrAction {
                    kind: Some(pb::ivr_action::Kind::Enqueue(pb::Enqueue {
                        queue_id: queue,
                        priority: 0,
                    })),
                }]
            }
        };
        for action in actions {
            self.ivr_action(id, action, now);
        }
    }

    fn ivr_action(&mut self, id: &str, action: pb::IvrAction, now: Instant) {
        use pb::ivr_action::Kind;
        let token = self.next_token;
        self.next_token += 1;
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        match action.kind {
            Some(Kind::Play(p)) => match self.cfg.prompts.get(&p.prompt) {
                Some(prompt) => {
                    call.prompt_token = token;
                    call.media.send(MediaCmd::Play {
                        prompt: prompt.clone(),
                        looping: false,
                        token,
                    });
                }
                None => {
                    tracing::warn!(prompt = %p.prompt, "unknown prompt, skipping");
                    self.ivr_step(
                        id,
                        pb::ivr_event::Kind::PromptFinished(pb::PromptFinished {
                            prompt: p.prompt,
                        }),
                    );
                }
            },
            Some(Kind::Collect(c)) => {
                // Digits (RFC 4733 / INFO) arrive in a later issue; until then the menu times out.
                call.digit_deadline =
                    Some(now + Duration::from_millis(u64::from(c.timeout_ms.max(1))));
            }
            Some(Kind::Enqueue(q)) => {
                call.phase = Phase::Queued;
                if let Some(moh) = self.cfg.prompts.get("moh") {
                    call.media.send(MediaCmd::Play {
                        prompt: moh.clone(),
                        looping: true,
                        token,
                    });
                }
                let caller = caller_data(&call.caller.invite, &call.did);
                tracing::info!(queue = %q.queue_id, priority = q.priority, "enqueue");
                self.shared.queued_calls.insert(id.to_string());
                self.dist.send(ToDist::Enqueue(pb::EnqueueCall {
                    call_id: id.to_string(),
                    queue_id: q.queue_id,
                    priority: q.priority,
                    caller: Some(caller),
                }));
            }
            Some(Kind::Hangup(h)) => {
                tracing::info!(reason = %h.reason, "flow hangs up");
                self.end_call(id, EndReason::Flow, now);
            }
            None => tracing::warn!("IVR action of an unknown kind ignored"),
        }
    }

    fn prompt_finished(&mut self, id: &str, token: u64) {
        let Some(call) = self.calls.get(id) else {
            return;
        };
        if matches!(call.phase, Phase::Ivr) && call.prompt_token == token {
            self.ivr_step(
                id,
                pb::ivr_event::Kind::PromptFinished(pb::PromptFinished::default()),
            );
        }
    }

    // ----- distributor ----------------------------------------------------

    fn distributor(&mut self, msg: pb::DistributorMessage, now: Instant) {
        // Fencing: never act on a leader older than one already heard.
        if msg.term < self.term {
            metrics::counter!("acd_edge_stale_term_total").increment(1);
            tracing::warn!(
                term = msg.term,
                current = self.term,
                "command from a stale distributor refused"
            );
            return;
        }
        self.term = msg.term;
        use pb::distributor_message::Kind;
        match msg.kind {
            Some(Kind::Connect(c)) => self.connect_agent(c, now),
            Some(Kind::Queued(q)) => {
                if let Some(call) = self.calls.get(&q.call_id) {
                    tracing::info!(parent: &call.span, queue = %q.queue_id, position = q.position, "queued");
                }
            }
            Some(Kind::Rejected(r)) => {
                if let Some(call) = self.calls.get(&r.call_id) {
                    tracing::warn!(parent: &call.span, reason = %r.reason, "distributor rejected the call");
                    self.end_call(&r.call_id, EndReason::Rejected, now);
                }
            }
            None => {}
        }
    }

    fn connect_agent(&mut self, c: pb::ConnectAgent, now: Instant) {
        let Some(call) = self.calls.get(&c.call_id) else {
            // The caller left while the offer was on its way.
            self.dist
                .send(ToDist::Abandon(pb::AbandonCall { call_id: c.call_id }));
            return;
        };
        let _e = call.span.clone().entered();
        if call.agent.is_some() {
            tracing::warn!(agent = %c.agent_id, "connect while an agent leg is up; ignored");
            return;
        }
        let Some(binding) = self.registrar.lookup(&c.extension, now) else {
            tracing::warn!(agent = %c.agent_id, extension = %c.extension, "agent's extension is not registered");
            self.dist.send(ToDist::AgentFailed(pb::AgentFailed {
                call_id: c.call_id,
                agent_id: c.agent_id,
                reason: format!("extension {} not registered", c.extension),
                sip_status: 0,
            }));
            return;
        };
        let peer = contact_peer(&binding.contact).unwrap_or(binding.peer);
        let codecs: Vec<Codec> = std::iter::once(call.caller.codec)
            .chain(SUPPORTED.into_iter().filter(|k| *k != call.caller.codec))
            .collect();
        let sdp = acd_media::build_offer(
            self.cfg.public_ip,
            call.media.agent_port,
            &codecs,
            Some(101),
            rand::random::<u32>().into(),
        );
        let caller = caller_data(&call.caller.invite, &call.did);
        let branch = new_branch(rand::random());
        let sip_call_id = format!("{:016x}@acd", rand::random::<u64>());
        let mut req = Request::new(Method::Invite, binding.contact.clone());
        req.headers.push(
            "Via",
            format!("{};branch={branch};rport", self.via(peer.transport)),
        );
        req.headers.push("Max-Forwards", "70");
        let display = if caller.display_name.is_empty() {
            String::new()
        } else {
            format!("\"{}\" ", caller.display_name)
        };
        let caller_user = uri_user(&caller.from_uri).unwrap_or("anonymous");
        req.headers.push(
            "From",
            format!(
                "{display}<sip:{caller_user}@{}>;tag={}",
                self.cfg.realm,
                new_tag(rand::random())
            ),
        );
        req.headers
            .push("To", format!("<sip:{}@{}>", c.extension, self.cfg.realm));
        req.headers.push("Call-ID", sip_call_id.clone());
        req.headers.push("CSeq", "1 INVITE");
        req.headers.push(
            "Contact",
            format!("<{}>", self.local_contact(peer.transport)),
        );
        req.headers.push("Allow", ALLOW);
        req.headers.push("X-ACD-Call-ID", c.call_id.clone());
        req.headers.push("Content-Type", "application/sdp");
        req.body = sdp.clone().into_bytes();
        tracing::info!(agent = %c.agent_id, extension = %c.extension, contact = %binding.contact, "ringing agent");
        let key = self.tx.send_request(req.clone(), peer, now);
        self.dialogs
            .insert(sip_call_id, (c.call_id.clone(), Side::Agent));
        if let Some(call) = self.calls.get_mut(&c.call_id) {
            call.phase = Phase::Connecting;
            call.agent = Some(AgentLeg {
                agent_id: c.agent_id,
                invite: req,
                key,
                peer,
                sdp,
                ring_deadline: Some(now + self.cfg.offer_timeout),
                dialog: None,
                cancelled: false,
            });
        }
    }

    // ----- responses to our requests --------------------------------------

    fn response(&mut self, key: &TxKey, resp: Response, now: Instant) {
        if key.method != Method::Invite {
            return; // BYE/CANCEL outcomes need no action
        }
        let call_id = resp.headers.call_id().unwrap_or_default().to_string();
        let Some((id, Side::Agent)) = self.dialogs.get(&call_id).cloned() else {
            return;
        };
        let Some(call) = self.calls.get_mut(&id) else {
            // Call gone but the agent answered late: ACK and hang up that leg.
            if resp.is_success() {
                self.ack_and_bye_orphan(&resp, now);
            }
            return;
        };
        let _e = call.span.clone().entered();
        let Some(agent) = call.agent.as_mut().filter(|a| a.key == *key) else {
            if resp.is_success() {
                self.ack_and_bye_orphan(&resp, now);
            }
            return;
        };
        if resp.is_provisional() {
            return;
        }
        if resp.is_success() {
            self.agent_answered(&id, resp, now);
        } else {
            let reason = if agent.cancelled {
                "no answer".to_string()
            } else {
                format!("{} {}", resp.status, resp.reason)
            };
            let status = resp.status;
            self.agent_failed(&id, &reason, status);
        }
    }

    fn agent_answered(&mut self, id: &str, resp: Response, now: Instant) {
        let via = {
            let Some(agent) = self.calls.get(id).and_then(|c| c.agent.as_ref()) else {
                return;
            };
            self.via(agent.peer.transport)
        };
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        let Some(agent) = call.agent.as_mut() else {
            return;
        };
        // A retransmitted 2xx: the ACK was lost, send it again.
        if let Some(d) = &agent.dialog {
            let ack = d.ack_for_2xx(1, &via, &new_branch(rand::random()));
            let to = next_hop(d, agent.peer);
            self.transports.send(to, ack.to_bytes());
            return;
        }
        let dialog = match Dialog::uac(&agent.invite, &resp) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "agent's 200 OK cannot form a dialog");
                return;
            }
        };
        let ack = dialog.ack_for_2xx(1, &via, &new_branch(rand::random()));
        let to = next_hop(&dialog, agent.peer);
        self.transports.send(to, ack.to_bytes());
        agent.dialog = Some(dialog);
        agent.ring_deadline = None;
        let agent_id = agent.agent_id.clone();
        let answer: Option<SessionDesc> = acd_media::parse_sdp(&resp.body).ok();
        let agent_media = answer.as_ref().and_then(|a| {
            let codec = a.payload_types.iter().find_map(|pt| a.codec_for(*pt))?;
            Some((SocketAddr::new(a.conn_ip, a.audio_port), codec))
        });
        match agent_media {
            Some((remote, codec)) => call.media.send(MediaCmd::Bridge {
                agent_remote: remote,
                agent_codec: codec,
            }),
            None => tracing::warn!("agent answered without usable SDP; no media bridge"),
        }
        call.phase = Phase::Bridged;
        tracing::info!(agent = %agent_id, "agent answered, bridged");
        metrics::counter!("acd_calls_bridged_total").increment(1);
        self.dist.send(ToDist::AgentAnswered(pb::AgentAnswered {
            call_id: id.to_string(),
            agent_id,
        }));
        self.answer_caller(id, now);
    }

    fn agent_failed(&mut self, id: &str, reason: &str, status: u16) {
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        let Some(agent) = call.agent.take() else {
            return;
        };
        call.phase = Phase::Queued;
        tracing::warn!(agent = %agent.agent_id, %reason, "agent leg failed, call back to queue");
        metrics::counter!("acd_agent_leg_failures_total").increment(1);
        self.dist.send(ToDist::AgentFailed(pb::AgentFailed {
            call_id: id.to_string(),
            agent_id: agent.agent_id,
            reason: reason.to_string(),
            sip_status: u32::from(status),
        }));
    }

    fn tx_timeout(&mut self, key: &TxKey, _now: Instant) {
        if key.method != Method::Invite {
            return;
        }
        let found = self
            .calls
            .iter()
            .find(|(_, c)| c.agent.as_ref().is_some_and(|a| a.key == *key))
            .map(|(id, _)| id.clone());
        if let Some(id) = found {
            self.agent_failed(&id, "agent did not respond (timer B)", 408);
        }
    }

    /// Ring-no-answer: give up on the agent leg (its 487 reports the failure).
    fn cancel_agent_leg(&mut self, id: &str, now: Instant) {
        let Some(agent) = self.calls.get_mut(id).and_then(|c| c.agent.as_mut()) else {
            return;
        };
        agent.ring_deadline = None;
        agent.cancelled = true;
        let cancel = build_cancel(&agent.invite);
        let peer = agent.peer;
        self.tx.send_request(cancel, peer, now);
    }

    fn ack_and_bye_orphan(&mut self, resp: &Response, now: Instant) {
        let Some(contact) = resp.headers.contact_uri().map(str::to_string) else {
            return;
        };
        let Some(peer) = contact_peer(&contact) else {
            return;
        };
        let mut req = Request::new(Method::Invite, contact);
        for h in ["From", "Call-ID"] {
            if let Some(v) = resp.headers.get(h) {
                req.headers.push(h, v);
            }
        }
        req.headers.push("To", resp.headers.get("To").unwrap_or(""));
        req.headers.push("CSeq", "1 INVITE");
        if let Ok(mut d) = Dialog::uac(&req, resp) {
            let via = self.via(peer.transport);
            self.transports.send(
                peer,
                d.ack_for_2xx(1, &via, &new_branch(rand::random()))
                    .to_bytes(),
            );
            let bye = d.request(Method::Bye, &via, &new_branch(rand::random()), "");
            self.tx.send_request(bye, peer, now);
        }
    }

    // ----- teardown ---------------------------------------------------------

    /// Ends both legs of a call, tells the distributor, forgets the call.
    fn end_call(&mut self, id: &str, reason: EndReason, now: Instant) {
        let Some(mut call) = self.calls.remove(id) else {
            return;
        };
        let _e = call.span.clone().entered();
        self.shared.queued_calls.remove(id);
        self.dialogs.retain(|_, (cid, _)| cid != id);
        let was = std::mem::replace(&mut call.phase, Phase::Ivr);
        self.end_caller_leg(&mut call, reason, now);
        self.end_agent_leg(&mut call, reason, now);
        let outcome = match was {
            Phase::Bridged => {
                self.dist.send(ToDist::CallEnded(pb::CallEnded {
                    call_id: id.to_string(),
                    reason: reason.as_str().into(),
                }));
                "completed"
            }
            Phase::Queued | Phase::Connecting => {
                if reason != EndReason::Rejected {
                    self.dist.send(ToDist::Abandon(pb::AbandonCall {
                        call_id: id.to_string(),
                    }));
                }
                "abandoned"
            }
            Phase::Ivr => "ended_in_ivr",
        };
        metrics::counter!("acd_calls_ended_total", "outcome" => outcome).increment(1);
        tracing::info!(reason = reason.as_str(), outcome, "call ended");
        // Dropping the media handle stops the media task.
    }

    fn end_caller_leg(&mut self, call: &mut Call, reason: EndReason, now: Instant) {
        if reason == EndReason::CallerHangup {
            return;
        }
        if !call.caller.answered {
            let (status, text) = match reason {
                EndReason::CallerCancel => (487, "Request Terminated"),
                EndReason::Rejected => (480, "Temporarily Unavailable"),
                _ => (480, "Temporarily Unavailable"),
            };
            let resp = Response::for_request(&call.caller.invite, status, text)
                .with_to_tag(&call.caller.local_tag);
            let key = call.caller.invite_key.clone();
            self.respond(&key, resp, now);
            return;
        }
        let via = self.via(call.caller.peer.transport);
        let contact = self.local_contact(call.caller.peer.transport);
        if let Some(d) = call.caller.dialog.as_mut() {
            let bye = d.request(Method::Bye, &via, &new_branch(rand::random()), &contact);
            let to = next_hop(d, call.caller.peer);
            self.tx.send_request(bye, to, now);
        }
    }

    fn end_agent_leg(&mut self, call: &mut Call, reason: EndReason, now: Instant) {
        let Some(agent) = call.agent.as_mut() else {
            return;
        };
        if reason == EndReason::AgentHangup {
            return;
        }
        let via = self.via(agent.peer.transport);
        match agent.dialog.as_mut() {
            Some(d) => {
                let bye = d.request(Method::Bye, &via, &new_branch(rand::random()), "");
                let to = next_hop(d, agent.peer);
                self.tx.send_request(bye, to, now);
            }
            None => {
                let cancel = build_cancel(&agent.invite);
                self.tx.send_request(cancel, agent.peer, now);
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum EndReason {
    CallerHangup,
    CallerCancel,
    AgentHangup,
    Flow,
    Rejected,
    NoAck,
}

impl EndReason {
    fn as_str(self) -> &'static str {
        match self {
            EndReason::CallerHangup => "caller hung up",
            EndReason::CallerCancel => "caller cancelled",
            EndReason::AgentHangup => "agent hung up",
            EndReason::Flow => "flow hung up",
            EndReason::Rejected => "rejected by distributor",
            EndReason::NoAck => "no ACK from caller",
        }
    }
}

/// A UAS copies Record-Route into responses that create a dialog
/// (RFC 3261 §12.1.1), verbatim: proxies rely on their own parameters
/// (`lr`, `du`, `transport`) coming back unchanged.
fn copy_record_route(req: &Request, resp: &mut Response) {
    let routes: Vec<String> = req.headers.get_all("Record-Route").map(str::to_string).collect();
    for r in routes {
        resp.headers.push("Record-Route", r);
    }
}

/// Caller data for the distributor and the agent's call pop.
fn caller_data(invite: &Request, did: &str) -> pb::Caller {
    let from = invite.headers.get("From").and_then(NameAddr::parse);
    pb::Caller {
        from_uri: from.map(|f| f.uri.to_string()).unwrap_or_default(),
        display_name: from
            .and_then(|f| f.display)
            .map(|d| d.trim_matches('"').to_string())
            .unwrap_or_default(),
        did: did.to_string(),
        variables: Default::default(),
    }
}

/// Where an in-dialog request goes: the first route (its `du` if present),
/// else the remote target, else where the dialog's peer sent from.
fn next_hop(d: &Dialog, fallback: Peer) -> Peer {
    let target = d
        .route_set
        .first()
        .and_then(|r| NameAddr::parse(r).map(|n| n.uri.to_string()))
        .map(
            |uri| match acd_sip::message::Uri::parse(&uri).and_then(|u| u.param("du").flatten()) {
                Some(du) => du.to_string(),
                None => uri,
            },
        )
        .unwrap_or_else(|| d.remote_target.clone());
    match contact_peer(target.trim_matches(|c| c == '<' || c == '>')) {
        // Over TCP the dialog stays on the connection it came in on.
        Some(p) if fallback.transport == Transport::Udp => p,
        _ => fallback,
    }
}

fn host_port(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(v4) => format!("{v4}:{port}"),
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
