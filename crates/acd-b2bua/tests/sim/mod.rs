//! A simulated edge: the core, a fake clock, and scripted peers (a trunk
//! caller, an agent's phone, the distributor, the IVR, the media). Tests
//! write SIP as text, feed it, and look at what the core sent.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use acd_b2bua::{
    AgentId, CallId, CoreConfig, EdgeCore, FromDistributor, Input, IvrAction, IvrReply, IvrStep,
    MediaCommand, MediaPorts, Output, ToDistributor,
};
use acd_sip::{Message, Peer, Request, Response, Transport};

pub const EDGE_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
pub const TRUNK: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 5060);
pub const PHONE: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3)), 5062);

pub fn udp(addr: SocketAddr) -> Peer {
    Peer {
        addr,
        transport: Transport::Udp,
    }
}

pub fn tcp(addr: SocketAddr) -> Peer {
    Peer {
        addr,
        transport: Transport::Tcp,
    }
}

pub fn config() -> CoreConfig {
    let mut cfg = CoreConfig::with_defaults(IpAddr::V4(EDGE_IP));
    let flow: acd_ivr::Flow = toml_flow();
    cfg.flows.insert("main".into(), flow);
    cfg.dids.insert("5550100".into(), "main".into());
    cfg.prompts = BTreeSet::from(["welcome".to_string(), "moh".to_string()]);
    cfg.extensions = BTreeMap::from([("1001".to_string(), "secret".to_string())]);
    cfg
}

fn toml_flow() -> acd_ivr::Flow {
    acd_ivr::Flow {
        answer: acd_ivr::AnswerMode::Immediate,
        start: "hello".into(),
        fallback_queue: "sales".into(),
        nodes: BTreeMap::new(),
        ..Default::default()
    }
}

pub const SDP_CALLER: &str = "v=0\r\no=c 1 1 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";
pub const SDP_AGENT: &str = "v=0\r\no=a 1 1 IN IP4 10.0.0.3\r\ns=-\r\nc=IN IP4 10.0.0.3\r\nt=0 0\r\nm=audio 7000 RTP/AVP 8\r\na=sendrecv\r\n";

pub type LossFn = Box<dyn FnMut(&Message) -> bool>;

pub struct Sim {
    pub core: EdgeCore,
    pub now: Instant,
    /// Everything transmitted, parsed, with its destination.
    pub sent: Vec<(Peer, Message)>,
    pub dist: Vec<ToDistributor>,
    /// Call notes sent to the distributor (kept apart from `dist`: one
    /// follows the last report of every inbound call).
    pub notes: Vec<acd_b2bua::CallNote>,
    pub ivr: Vec<IvrStep>,
    pub media: Vec<(CallId, MediaCommand)>,
    /// Stream routes announced: (connection, Contact target).
    pub routes: Vec<(Peer, Peer)>,
    /// Answer media allocation at once.
    pub auto_media: bool,
    /// Drop every transmitted message for which this returns true.
    pub lose: Option<LossFn>,
    next_port: u16,
}

impl Sim {
    pub fn new() -> Sim {
        Sim::with_config(config())
    }

    pub fn with_config(cfg: CoreConfig) -> Sim {
        let now = Instant::now();
        Sim {
            core: EdgeCore::new(cfg, 42, now, 1_800_000_000),
            now,
            sent: Vec::new(),
            dist: Vec::new(),
            notes: Vec::new(),
            ivr: Vec::new(),
            media: Vec::new(),
            routes: Vec::new(),
            auto_media: true,
            lose: None,
            next_port: 40000,
        }
    }

    pub fn input(&mut self, input: Input) {
        self.core.handle(input, self.now);
        self.drain();
    }

    pub fn sip(&mut self, text: &str, from: Peer) {
        let msg = acd_sip::parse(text.as_bytes()).expect("test message parses");
        self.input(Input::Sip {
            msg,
            from,
            received: self.now,
        });
    }

    pub fn drain(&mut self) {
        // Bounded: a livelock between core and simulated shell fails the test.
        for _ in 0..10_000 {
            let Some(out) = self.core.poll_output() else {
                return;
            };
            match out {
                Output::Transmit { to, bytes } => {
                    let msg = acd_sip::parse(&bytes).expect("the core sends parseable SIP");
                    let lost = self.lose.as_mut().is_some_and(|f| f(&msg));
                    if !lost {
                        self.sent.push((to, msg));
                    }
                }
                Output::Distributor(ToDistributor::Note(n)) => self.notes.push(n),
                Output::Distributor(m) => self.dist.push(m),
                Output::StreamRoute { connection, target } => {
                    self.routes.push((connection, target))
                }
                Output::Ivr(step) => self.ivr.push(step),
                Output::Media { call, cmd } => {
                    let allocate = matches!(cmd, MediaCommand::Allocate { .. });
                    self.media.push((call.clone(), cmd));
                    if allocate && self.auto_media {
                        let ports = MediaPorts {
                            caller: self.next_port,
                            agent: self.next_port + 2,
                        };
                        self.next_port += 4;
                        self.core
                            .handle(Input::MediaReady { call, ports }, self.now);
                    }
                }
                _ => panic!("unexpected output"),
            }
        }
        panic!("the core did not stop producing output");
    }

    /// Moves the clock forward, firing every deadline on the way in order.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        for _ in 0..100_000 {
            match self.core.poll_timeout() {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    self.core.handle_timeout(self.now);
                    self.drain();
                }
                _ => {
                    self.now = end;
                    return;
                }
            }
        }
        panic!("timers kept firing: livelock");
    }

    pub fn take_sent(&mut self) -> Vec<(Peer, Message)> {
        std::mem::take(&mut self.sent)
    }

    pub fn responses(&self) -> Vec<&Response> {
        self.sent
            .iter()
            .filter_map(|(_, m)| match m {
                Message::Response(r) => Some(r),
                _ => None,
            })
            .collect()
    }

    pub fn requests(&self) -> Vec<&Request> {
        self.sent
            .iter()
            .filter_map(|(_, m)| match m {
                Message::Request(r) => Some(r),
                _ => None,
            })
            .collect()
    }

    pub fn last_response(&self, status: u16) -> Option<&Response> {
        self.responses()
            .into_iter()
            .rev()
            .find(|r| r.status == status)
    }

    pub fn last_request(&self, method: &str) -> Option<&Request> {
        self.requests()
            .into_iter()
            .rev()
            .find(|r| r.method.as_str() == method)
    }

    pub fn count_requests(&self, method: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method.as_str() == method)
            .count()
    }

    /// Answers the last IVR step with `actions`.
    pub fn ivr_reply(&mut self, actions: Vec<IvrAction>) {
        let step = self.ivr.last().cloned().expect("an IVR step was sent");
        self.input(Input::IvrReply {
            call: step.call,
            step: step.step,
            reply: Ok(IvrReply {
                session: Some(step.session),
                actions,
            }),
        });
    }

    pub fn connect(&mut self, call: &CallId, term: u64) {
        self.connect_with_survey(call, term, "");
    }

    /// An offer to alice from a queue whose post-call survey is `survey_flow`.
    pub fn connect_with_survey(&mut self, call: &CallId, term: u64, survey_flow: &str) {
        self.input(Input::Distributor {
            term,
            cmd: FromDistributor::Connect {
                call: call.clone(),
                agent: AgentId("alice".into()),
                extension: "1001".into(),
                contact: None,
                auto_answer: false,
                ring_also: Vec::new(),
                survey_flow: survey_flow.to_string(),
            },
        });
    }

    pub fn registered_agent(&mut self) {
        let reg = register("r1", 1, None);
        self.sip(&reg, udp(PHONE));
        let challenge = self
            .last_response(401)
            .and_then(|r| r.headers.get("WWW-Authenticate"))
            .expect("challenge")
            .to_string();
        let auth = acd_sip::auth::client_authorization(
            &challenge,
            "1001",
            "secret",
            "REGISTER",
            "sip:10.0.0.1",
            "abc",
            1,
        )
        .expect("authorization");
        self.sip(&register("r2", 2, Some(&auth)), udp(PHONE));
        assert!(self.last_response(200).is_some(), "agent registered");
        self.sent.clear();
    }
}

pub fn register(branch: &str, cseq: u32, auth: Option<&str>) -> String {
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    format!(
        "REGISTER sip:10.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.3:5062;branch=z9hG4bK{branch}\r\nMax-Forwards: 70\r\nFrom: <sip:1001@acd.test>;tag=reg1\r\nTo: <sip:1001@acd.test>\r\nCall-ID: reg-1\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:1001@10.0.0.3:5062>\r\n{auth}Expires: 3600\r\nContent-Length: 0\r\n\r\n"
    )
}

/// An INVITE from the trunk. `extra` headers end with CRLF.
pub fn invite(
    call_id: &str,
    branch: &str,
    sdp: Option<&str>,
    extra: &str,
    transport: &str,
) -> String {
    let body = sdp.unwrap_or("");
    let ctype = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    format!(
        "INVITE sip:5550100@10.0.0.1 SIP/2.0\r\nVia: SIP/2.0/{transport} 10.0.0.2:5060;branch=z9hG4bK{branch}\r\nMax-Forwards: 70\r\nFrom: \"Bob\" <sip:0215551234@10.0.0.2>;tag=caller1\r\nTo: <sip:5550100@10.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:bob@10.0.0.2:5060>\r\n{extra}{ctype}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// An in-dialog request from the caller (its From tag is `caller1`).
pub fn caller_request(
    method: &str,
    call_id: &str,
    to_tag: &str,
    cseq: u32,
    branch: &str,
    sdp: Option<&str>,
    extra: &str,
) -> String {
    let body = sdp.unwrap_or("");
    let ctype = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    format!(
        "{method} sip:acd@10.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK{branch}\r\nMax-Forwards: 70\r\nFrom: \"Bob\" <sip:0215551234@10.0.0.2>;tag=caller1\r\nTo: <sip:5550100@10.0.0.1>;tag={to_tag}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nContact: <sip:bob@10.0.0.2:5060>\r\n{extra}{ctype}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// The phone's response to a request the edge sent it.
pub fn phone_response(
    req: &Request,
    status: u16,
    reason: &str,
    to_tag: &str,
    sdp: Option<&str>,
) -> String {
    let mut resp = Response::for_request(req, status, reason);
    if resp.headers.to_tag().is_none() && status > 100 {
        resp = resp.with_to_tag(to_tag);
    }
    if status < 300 {
        resp.headers.push("Contact", "<sip:1001@10.0.0.3:5062>");
    }
    if let Some(s) = sdp {
        resp.headers.push("Content-Type", "application/sdp");
        resp.body = s.as_bytes().to_vec();
    }
    String::from_utf8(resp.to_bytes()).expect("utf8")
}

/// A request from the phone inside the agent dialog described by `invite`
/// (the edge's INVITE) and the phone's tag.
pub fn phone_request(
    invite: &Request,
    method: &str,
    phone_tag: &str,
    cseq: u32,
    branch: &str,
    sdp: Option<&str>,
) -> String {
    let body = sdp.unwrap_or("");
    let ctype = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    let from = invite.headers.get("From").unwrap_or("");
    let to = invite.headers.get("To").unwrap_or("");
    let call_id = invite.headers.call_id().unwrap_or("");
    format!(
        "{method} sip:acd@10.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.3:5062;branch=z9hG4bK{branch}\r\nMax-Forwards: 70\r\nFrom: {to};tag={phone_tag}\r\nTo: {from}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nContact: <sip:1001@10.0.0.3:5062>\r\n{ctype}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// INVITE → 200 → ACK, IVR enqueues at once. Returns the call and our To tag.
pub fn queued_call(sim: &mut Sim, sip_call_id: &str) -> (CallId, String) {
    sim.sip(
        &invite(sip_call_id, sip_call_id, Some(SDP_CALLER), "", "UDP"),
        udp(TRUNK),
    );
    let ok = sim.last_response(200).expect("caller answered");
    let tag = ok.headers.to_tag().expect("To tag").to_string();
    assert!(String::from_utf8_lossy(&ok.body).contains("m=audio 40000"));
    let call = sim.ivr.last().expect("IVR started").call.clone();
    sim.sip(
        &caller_request("ACK", sip_call_id, &tag, 1, "ack1", None, ""),
        udp(TRUNK),
    );
    sim.ivr_reply(vec![IvrAction::Enqueue {
        queue: "sales".into(),
        priority: 0,
        skills: Default::default(),
        data: Default::default(),
    }]);
    assert!(matches!(sim.dist.last(), Some(ToDistributor::Enqueue(e)) if e.call == call));
    assert_eq!(sim.core.call_phase(&call), Some("queued"));
    (call, tag)
}

/// A queued call offered to alice, whose phone answers. Returns the call,
/// our To tag towards the caller, the INVITE sent to the phone and the phone's tag.
pub fn bridged_call(sim: &mut Sim, sip_call_id: &str) -> (CallId, String, acd_sip::Request) {
    sim.registered_agent();
    let (call, tag) = queued_call(sim, sip_call_id);
    sim.connect(&call, 1);
    let inv = sim.last_request("INVITE").expect("agent rung").clone();
    sim.sip(
        &phone_response(&inv, 180, "Ringing", "ph1", None),
        udp(PHONE),
    );
    sim.sip(
        &phone_response(&inv, 200, "OK", "ph1", Some(SDP_AGENT)),
        udp(PHONE),
    );
    assert!(
        sim.last_request("ACK").is_some(),
        "agent's 200 acknowledged"
    );
    assert_eq!(sim.core.call_phase(&call), Some("bridged"));
    assert!(sim
        .media
        .iter()
        .any(|(c, m)| *c == call && matches!(m, MediaCommand::Bridge { .. })));
    assert!(sim
        .dist
        .iter()
        .any(|m| matches!(m, ToDistributor::AgentAnswered { .. })));
    sim.sent.clear();
    (call, tag, inv)
}

/// A call in the flow (answered and ACKed), its first step out. Returns
/// the call and our To tag.
pub fn in_flow(sim: &mut Sim, sip_call_id: &str) -> (CallId, String) {
    sim.sip(
        &invite(sip_call_id, sip_call_id, Some(SDP_CALLER), "", "UDP"),
        udp(TRUNK),
    );
    let tag = sim
        .last_response(200)
        .and_then(|r| r.headers.to_tag())
        .expect("answered")
        .to_string();
    sim.sip(
        &caller_request("ACK", sip_call_id, &tag, 1, "ack1", None, ""),
        udp(TRUNK),
    );
    let call = sim.ivr.last().expect("first step").call.clone();
    (call, tag)
}
