//! The edge's signalling engine: one task owns the transaction layer, every
//! call and the timers, and is fed by transports, the distributor stream,
//! IVR step results and media events. It never awaits I/O itself, so the
//! order of inputs is the order of decisions.
//!
//! A call here is a B2BUA pair: the caller's leg (a server INVITE answered by
//! us) and, once the distributor picks an agent, the agent's leg (a client
//! INVITE from us to the agent's registered contact).

mod agent_leg;
mod call;
mod calls;
mod ivr;
mod teardown;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use acd_media::{Codec, Prompt};
use acd_proto::v1 as pb;
use acd_sip::dialog::Retransmit2xx;
use acd_sip::message::validate_request;
use acd_sip::{Message, Method, Output, Peer, Response, TransactionLayer};
use tokio::sync::mpsc;

use crate::distributor_link::DistributorLink;
use crate::ivr_client::IvrClients;
use crate::media::{MediaEvent, PortPool};
use crate::registrar::Registrar;
use crate::transport::{BoxedMessage, Transports};
use crate::{EdgeShared, Flows};
use call::{Call, EndReason, Side};

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
pub struct Engine {
    cfg: EngineConfig,
    tx: TransactionLayer,
    transports: Transports,
    registrar: Registrar,
    ports: Arc<PortPool>,
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
    pub registrar: Registrar,
    pub ports: Arc<PortPool>,
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
            Input::Datagram { bytes, from } => {
                self.transports.datagram_done();
                self.datagram(&bytes, from, now)
            }
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
                    let resp =
                        call::with_local_tag(Response::for_request(req, e.status(), &e.reason()));
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
