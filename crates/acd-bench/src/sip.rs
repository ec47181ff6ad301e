//! A minimal SIP user agent over one UDP socket, both roles at once: the
//! UAC places the bench's calls to acd's DID (the caller legs), the UAS
//! answers the INVITEs acd sends on (the agent legs). RFC 3261 over UDP as
//! far as a bench needs it: INVITE/BYE retransmitted on the T1 schedule,
//! ACK for every final answer, 2xx of the UAS retransmitted until the ACK,
//! anything else in a dialog (OPTIONS, a session-timer re-INVITE or UPDATE)
//! answered 200. Messages are parsed and built with `acd-sip`'s type.
//!
//! Caller legs and agent legs are matched by the caller number acd passes
//! on in From (`rtpload<index>`).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use acd_sip::message::{split_list, uri_user, NameAddr};
use acd_sip::{Message, Method, Request, Response};
use anyhow::{Context, Result};
use serde::Serialize;

use crate::sdp;

const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);
/// Timer B / F / H: 64 * T1.
const GIVE_UP: Duration = Duration::from_secs(32);
const USER_PREFIX: &str = "rtpload";

pub struct SipConfig {
    /// The SIP socket's address (both roles).
    pub local: SocketAddrV4,
    /// acd's SIP address (UDP).
    pub acd: SocketAddr,
    pub did: String,
    /// RTP sockets offered in the SDPs: A for callers, B for agents.
    pub rtp_a: SocketAddrV4,
    pub rtp_b: SocketAddrV4,
    /// Callers only (no agent legs expected): a call is up when answered.
    pub uac_only: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UacState {
    Calling,
    Proceeding,
    Established,
    Failed(u16),
    ByeSent,
    Ended,
    /// acd hung the caller leg up during the run.
    RemoteBye,
}

struct Uac {
    call_id: String,
    from: String,
    invite_uri: String,
    invite_branch: String,
    invite: Vec<u8>,
    state: UacState,
    sent_at: Instant,
    interval: Duration,
    to: String,
    target: String,
    routes: Vec<String>,
    a_dst: Option<SocketAddrV4>,
    ack: Vec<u8>,
    bye: Vec<u8>,
}

struct Uas {
    to_tag: String,
    ok: Vec<u8>,
    peer: SocketAddr,
    acked: bool,
    answered_at: Instant,
    interval: Duration,
    b_dst: Option<SocketAddrV4>,
    byed: bool,
}

impl Uac {
    /// A request in the caller leg's dialog (to the remote target, along the route set).
    fn in_dialog(&self, method: Method, via: String, cseq: &str) -> Vec<u8> {
        let mut req = Request::new(method, self.target.clone());
        let h = &mut req.headers;
        h.push("Via", via);
        for r in &self.routes {
            h.push("Route", r.clone());
        }
        h.push("Max-Forwards", "70");
        h.push("From", self.from.clone());
        h.push("To", self.to.clone());
        h.push("Call-ID", self.call_id.clone());
        h.push("CSeq", cseq);
        req.to_bytes()
    }
}

#[derive(Clone, Copy)]
enum Leg {
    Uac(usize),
    Uas(usize),
}

/// What happened on the SIP side, for the report.
#[derive(Debug, Default, Clone, Serialize)]
pub struct SipCounters {
    pub invites: u64,
    pub invite_retransmissions: u64,
    pub answered: u64,
    pub failed: BTreeMap<u16, u64>,
    pub timed_out: u64,
    pub agent_invites: u64,
    pub agent_acks: u64,
    pub agent_no_ack: u64,
    pub agent_unmatched: u64,
    pub in_dialog_requests: u64,
    pub byes: u64,
    pub bye_retransmissions: u64,
    pub bye_ok: u64,
    pub bye_failed: u64,
    pub agent_byes: u64,
    pub remote_byes: u64,
    pub unparsable: u64,
    pub strays: u64,
}

pub struct Ua {
    sock: UdpSocket,
    cfg: SipConfig,
    uacs: Vec<Uac>,
    uas: Vec<Uas>,
    /// Agent leg of each call, by call index.
    agent_of: Vec<Option<usize>>,
    by_call_id: HashMap<String, Leg>,
    timers: BinaryHeap<Reverse<(Instant, usize, bool)>>,
    buf: Vec<u8>,
    pub counters: SipCounters,
    /// INVITE to 200 of each answered call, in ms.
    pub setup_ms: Vec<f64>,
    tag_seed: u64,
}

impl Ua {
    pub fn new(cfg: SipConfig, calls: usize) -> Result<Self> {
        let sock = UdpSocket::bind(cfg.local).with_context(|| format!("bind SIP {}", cfg.local))?;
        crate::rtp::tune_socket(&sock, 4 << 20);
        let tag_seed = (u64::from(std::process::id()) << 20) ^ (crate::rtp::mono_ns() % 1_000_000);
        Ok(Ua {
            sock,
            cfg,
            uacs: Vec::with_capacity(calls),
            uas: Vec::with_capacity(calls),
            agent_of: vec![None; calls],
            by_call_id: HashMap::with_capacity(calls * 2),
            timers: BinaryHeap::new(),
            buf: vec![0; 65536],
            counters: SipCounters::default(),
            setup_ms: Vec::with_capacity(calls),
            tag_seed,
        })
    }

    fn via(&self, branch: &str) -> String {
        format!("SIP/2.0/UDP {};branch={branch};rport", self.cfg.local)
    }

    fn send(&self, bytes: &[u8], to: SocketAddr) {
        if let Err(e) = self.sock.send_to(bytes, to) {
            eprintln!("rtpload: SIP send to {to}: {e}");
        }
    }

    /// Places call `i` (calls are placed in index order).
    pub fn start_call(&mut self, i: usize, now: Instant) {
        let call_id = format!("rtpload-{i}-{:x}@bench", self.tag_seed);
        let from = format!(
            "<sip:{USER_PREFIX}{i}@{}>;tag=f{i}x{:x}",
            self.cfg.local, self.tag_seed
        );
        let uri = format!("sip:{}@{}", self.cfg.did, self.cfg.acd);
        let branch = format!("z9hG4bK-i{i}-{:x}", self.tag_seed);
        let mut req = Request::new(Method::Invite, uri.clone());
        let h = &mut req.headers;
        h.push("Via", self.via(&branch));
        h.push("Max-Forwards", "70");
        h.push("From", from.clone());
        h.push("To", format!("<{uri}>"));
        h.push("Call-ID", call_id.clone());
        h.push("CSeq", "1 INVITE");
        h.push(
            "Contact",
            format!("<sip:{USER_PREFIX}{i}@{}>", self.cfg.local),
        );
        h.push("Content-Type", "application/sdp");
        req.body = sdp::pcmu(self.cfg.rtp_a, i as u64 + 1).into_bytes();
        let invite = req.to_bytes();
        self.send(&invite, self.cfg.acd);
        self.counters.invites += 1;
        self.by_call_id.insert(call_id.clone(), Leg::Uac(i));
        self.uacs.push(Uac {
            call_id,
            from,
            invite_uri: uri,
            invite_branch: branch,
            invite,
            state: UacState::Calling,
            sent_at: now,
            interval: T1,
            to: String::new(),
            target: String::new(),
            routes: Vec::new(),
            a_dst: None,
            ack: Vec::new(),
            bye: Vec::new(),
        });
        self.timers.push(Reverse((now + T1, i, true)));
    }

    /// Both legs of call `i` up: where A's and B's streams go (acd's ports).
    pub fn media_of(&self, i: usize) -> Option<[SocketAddrV4; 2]> {
        let uac = self.uacs.get(i)?;
        let uas = &self.uas[(*self.agent_of.get(i)?)?];
        match uac.state {
            UacState::Established => Some([uac.a_dst?, uas.b_dst?]),
            _ => None,
        }
    }

    /// Calls whose setup has ended one way or the other.
    pub fn settled(&self) -> usize {
        self.uacs
            .iter()
            .enumerate()
            .filter(|(i, u)| match u.state {
                UacState::Established => self.cfg.uac_only || self.media_of(*i).is_some(),
                UacState::Calling | UacState::Proceeding => false,
                _ => true,
            })
            .count()
    }

    /// Caller legs answered and still up.
    pub fn established(&self) -> usize {
        self.uacs
            .iter()
            .filter(|u| u.state == UacState::Established)
            .count()
    }

    /// Sends BYE on call `i`'s caller leg if it is established; `false` otherwise.
    pub fn hang_up(&mut self, i: usize, now: Instant) -> bool {
        let Some(u) = self.uacs.get(i) else {
            return false;
        };
        if u.state != UacState::Established {
            return false;
        }
        let via = self.via(&format!("z9hG4bK-b{i}-{:x}", self.tag_seed));
        let bye = u.in_dialog(Method::Bye, via, "2 BYE");
        self.send(&bye, self.cfg.acd);
        self.counters.byes += 1;
        let u = &mut self.uacs[i];
        u.bye = bye;
        u.state = UacState::ByeSent;
        u.sent_at = now;
        u.interval = T1;
        self.timers.push(Reverse((now + T1, i, true)));
        true
    }

    /// BYEs still unanswered plus agent legs not yet hung up by acd.
    pub fn teardown_pending(&self) -> usize {
        let byes = self
            .uacs
            .iter()
            .filter(|u| u.state == UacState::ByeSent)
            .count();
        let legs = self.uas.iter().filter(|u| !u.byed).count();
        byes + legs
    }

    /// Handles messages and timers until `done(self)` or `until`.
    pub fn pump(&mut self, until: Instant, done: impl Fn(&Ua) -> bool) {
        loop {
            let now = Instant::now();
            self.run_timers(now);
            if done(self) || now >= until {
                return;
            }
            let next_timer = self.timers.peek().map(|Reverse((t, _, _))| *t);
            let wait = next_timer
                .unwrap_or(until)
                .min(until)
                .saturating_duration_since(now)
                .clamp(Duration::from_millis(1), Duration::from_millis(50));
            self.recv_one(wait);
        }
    }

    fn recv_one(&mut self, wait: Duration) {
        if self.sock.set_read_timeout(Some(wait)).is_err() {
            return;
        }
        let (n, src) = match self.sock.recv_from(&mut self.buf) {
            Ok(r) => r,
            Err(_) => return, // timeout (or an ICMP error): nothing to handle
        };
        match acd_sip::parse(&self.buf[..n]) {
            Ok(Message::Response(r)) => self.on_response(r, Instant::now()),
            Ok(Message::Request(r)) => self.on_request(r, src, Instant::now()),
            Err(_) => self.counters.unparsable += 1,
        }
    }

    fn run_timers(&mut self, now: Instant) {
        while let Some(Reverse((t, idx, uac))) = self.timers.peek().copied() {
            if t > now {
                return;
            }
            self.timers.pop();
            if uac {
                self.uac_timer(idx, now);
            } else {
                self.uas_timer(idx, now);
            }
        }
    }

    fn uac_timer(&mut self, i: usize, now: Instant) {
        let u = &mut self.uacs[i];
        let (bytes, is_bye) = match u.state {
            UacState::Calling => (&u.invite, false),
            UacState::ByeSent => (&u.bye, true),
            _ => return,
        };
        if now.duration_since(u.sent_at) >= GIVE_UP {
            if is_bye {
                u.state = UacState::Ended;
                self.counters.bye_failed += 1;
            } else {
                u.state = UacState::Failed(408);
                self.counters.timed_out += 1;
            }
            return;
        }
        let bytes = bytes.clone();
        u.interval = if is_bye {
            (u.interval * 2).min(T2)
        } else {
            u.interval * 2
        };
        let next = now + u.interval;
        self.send(&bytes, self.cfg.acd);
        if is_bye {
            self.counters.bye_retransmissions += 1;
        } else {
            self.counters.invite_retransmissions += 1;
        }
        self.timers.push(Reverse((next, i, true)));
    }

    fn uas_timer(&mut self, k: usize, now: Instant) {
        let u = &mut self.uas[k];
        if u.acked {
            return;
        }
        if now.duration_since(u.answered_at) >= GIVE_UP {
            u.acked = true; // give up (Timer H); counted, the call may still work
            self.counters.agent_no_ack += 1;
            return;
        }
        u.interval = (u.interval * 2).min(T2);
        let (ok, peer, next) = (u.ok.clone(), u.peer, now + u.interval);
        self.send(&ok, peer);
        self.timers.push(Reverse((next, k, false)));
    }

    fn on_response(&mut self, r: Response, now: Instant) {
        let leg = r.call_id().and_then(|c| self.by_call_id.get(c)).copied();
        let (Some(Leg::Uac(i)), Some((_, method))) = (leg, r.cseq()) else {
            self.counters.strays += 1;
            return;
        };
        match method {
            Method::Invite => self.on_invite_response(i, r, now),
            Method::Bye if r.status >= 200 && self.uacs[i].state == UacState::ByeSent => {
                self.uacs[i].state = UacState::Ended;
                if r.is_success() {
                    self.counters.bye_ok += 1;
                } else {
                    self.counters.bye_failed += 1;
                }
            }
            _ => {}
        }
    }

    fn on_invite_response(&mut self, i: usize, r: Response, now: Instant) {
        let state = self.uacs[i].state;
        if r.is_provisional() {
            if state == UacState::Calling {
                self.uacs[i].state = UacState::Proceeding;
            }
            return;
        }
        if r.is_success() {
            if matches!(state, UacState::Calling | UacState::Proceeding) {
                self.answered(i, &r, now);
            }
            // First 2xx or a retransmission of it: (re)send the ACK.
            let ack = self.uacs[i].ack.clone();
            if !ack.is_empty() {
                self.send(&ack, self.cfg.acd);
            }
            return;
        }
        // A final failure: ACK it on the INVITE's branch (§17.1.1.3).
        let u = &self.uacs[i];
        let mut ack = Request::new(Method::Ack, u.invite_uri.clone());
        ack.headers.push("Via", self.via(&u.invite_branch));
        ack.headers.push("Max-Forwards", "70");
        ack.headers.push("From", u.from.clone());
        ack.headers
            .push("To", r.headers.get("To").unwrap_or_default().to_string());
        ack.headers.push("Call-ID", u.call_id.clone());
        ack.headers.push("CSeq", "1 ACK");
        self.send(&ack.to_bytes(), self.cfg.acd);
        if matches!(state, UacState::Calling | UacState::Proceeding) {
            self.uacs[i].state = UacState::Failed(r.status);
            *self.counters.failed.entry(r.status).or_default() += 1;
        }
    }

    fn answered(&mut self, i: usize, r: &Response, now: Instant) {
        self.counters.answered += 1;
        let local = self.cfg.local;
        let tag_seed = self.tag_seed;
        let u = &mut self.uacs[i];
        self.setup_ms
            .push(now.duration_since(u.sent_at).as_secs_f64() * 1000.0);
        u.state = UacState::Established;
        u.to = r.headers.get("To").unwrap_or_default().to_string();
        u.target = r
            .contact_uri()
            .map(str::to_string)
            .unwrap_or_else(|| u.invite_uri.clone());
        // The route set: Record-Route in reverse (§12.1.2).
        u.routes = r
            .headers
            .get_all("Record-Route")
            .flat_map(split_list)
            .map(str::to_string)
            .collect();
        u.routes.reverse();
        u.a_dst = sdp::audio_addr(&String::from_utf8_lossy(&r.body));
        let via = format!("SIP/2.0/UDP {local};branch=z9hG4bK-a{i}-{tag_seed:x};rport");
        u.ack = u.in_dialog(Method::Ack, via, "1 ACK");
    }

    fn on_request(&mut self, req: Request, src: SocketAddr, now: Instant) {
        let leg = req.call_id().and_then(|c| self.by_call_id.get(c)).copied();
        match (leg, &req.method) {
            (None, Method::Invite) => self.new_agent_leg(req, src, now),
            (None, Method::Ack) => self.counters.strays += 1,
            (None, _) => {
                self.counters.strays += 1;
                let r = Response::for_request(&req, 481, "Call/Transaction Does Not Exist");
                self.send(&r.to_bytes(), src);
            }
            (Some(Leg::Uac(i)), _) => self.caller_leg_request(i, req, src),
            (Some(Leg::Uas(k)), _) => self.agent_leg_request(k, req, src),
        }
    }

    /// acd rings the "agent" (the transfer target): answer at once.
    fn new_agent_leg(&mut self, req: Request, src: SocketAddr, now: Instant) {
        self.counters.agent_invites += 1;
        let k = self.uas.len();
        let to_tag = format!("u{k}x{:x}", self.tag_seed);
        let idx = req
            .headers
            .get("From")
            .and_then(NameAddr::parse)
            .and_then(|f| uri_user(f.uri))
            .and_then(|u| u.strip_prefix(USER_PREFIX))
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|i| *i < self.agent_of.len());
        match idx {
            Some(i) => self.agent_of[i] = Some(k),
            None => self.counters.agent_unmatched += 1,
        }
        let b_dst = sdp::audio_addr(&String::from_utf8_lossy(&req.body));
        let ok = self.answer_with_sdp(&req, &to_tag, self.cfg.rtp_b, k as u64 + 1);
        self.send(&ok, src);
        let call_id = req.call_id().unwrap_or_default().to_string();
        self.by_call_id.insert(call_id, Leg::Uas(k));
        self.uas.push(Uas {
            to_tag,
            ok,
            peer: src,
            acked: false,
            answered_at: now,
            interval: T1,
            b_dst,
            byed: false,
        });
        self.timers.push(Reverse((now + T1, k, false)));
    }

    /// 200 OK with Record-Route copied, our Contact and a PCMU SDP at `rtp`.
    fn answer_with_sdp(&self, req: &Request, tag: &str, rtp: SocketAddrV4, v: u64) -> Vec<u8> {
        let mut r = Response::for_request(req, 200, "OK").with_to_tag(tag);
        for rr in req.headers.get_all("Record-Route") {
            r.headers.push("Record-Route", rr.to_string());
        }
        r.headers
            .push("Contact", format!("<sip:bench@{}>", self.cfg.local));
        r.headers.push("Content-Type", "application/sdp");
        r.body = sdp::pcmu(rtp, v).into_bytes();
        r.to_bytes()
    }

    fn agent_leg_request(&mut self, k: usize, req: Request, src: SocketAddr) {
        let initial = req.headers.to_tag().is_none();
        match req.method {
            Method::Ack => {
                if !self.uas[k].acked {
                    self.uas[k].acked = true;
                    self.counters.agent_acks += 1;
                }
            }
            Method::Invite if initial => {
                let ok = self.uas[k].ok.clone();
                self.send(&ok, src); // a retransmitted INVITE
            }
            Method::Invite => {
                self.counters.in_dialog_requests += 1;
                let tag = self.uas[k].to_tag.clone();
                let ok = self.answer_with_sdp(&req, &tag, self.cfg.rtp_b, k as u64 + 1);
                self.send(&ok, src);
            }
            Method::Bye => {
                if !self.uas[k].byed {
                    self.uas[k].byed = true;
                    self.counters.agent_byes += 1;
                }
                self.reply_ok(&req, src);
            }
            _ => {
                self.counters.in_dialog_requests += 1;
                self.reply_ok(&req, src);
            }
        }
    }

    fn caller_leg_request(&mut self, i: usize, req: Request, src: SocketAddr) {
        match req.method {
            Method::Ack => {}
            Method::Invite => {
                self.counters.in_dialog_requests += 1;
                let tag = req.headers.to_tag().unwrap_or_default().to_string();
                let ok = self.answer_with_sdp(&req, &tag, self.cfg.rtp_a, i as u64 + 1);
                self.send(&ok, src);
            }
            Method::Bye => {
                if self.uacs[i].state == UacState::Established {
                    self.uacs[i].state = UacState::RemoteBye;
                    self.counters.remote_byes += 1;
                }
                self.reply_ok(&req, src);
            }
            _ => {
                self.counters.in_dialog_requests += 1;
                self.reply_ok(&req, src);
            }
        }
    }

    fn reply_ok(&self, req: &Request, src: SocketAddr) {
        self.send(&Response::for_request(req, 200, "OK").to_bytes(), src);
    }
}
