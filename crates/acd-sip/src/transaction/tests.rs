//! Simulated time and a simulated lossy network between a UAC and a UAS layer.

use super::*;
use crate::dialog::{Dialog, Retransmit2xx};
use crate::message::parse;

/// xorshift64*: seeded, dependency-free randomness for the simulator.
struct Rng(u64);
impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn percent(&mut self) -> u64 {
        self.next() % 100
    }
}

const UAC: usize = 0;
const UAS: usize = 1;
const MAX_STEPS: usize = 100_000;

struct Wire {
    at: Duration,
    from: usize,
    first_line: String,
    delivered: bool,
}

struct Sim {
    start: Instant,
    now: Instant,
    nodes: [TransactionLayer; 2],
    addrs: [SocketAddr; 2],
    transport: Transport,
    rng: Rng,
    loss_percent: u64,
    delay: Duration,
    inflight: Vec<(Instant, usize, Vec<u8>)>,
    wire: Vec<Wire>,
    /// UAS TU's 2xx retransmitter (§13.3.1.4), driven by the sim clock.
    r2xx: Option<Retransmit2xx>,
    steps: usize,
}

impl Sim {
    fn new(seed: u64, loss_percent: u64, transport: Transport) -> Sim {
        let start = Instant::now();
        Sim {
            start,
            now: start,
            nodes: [
                TransactionLayer::new(Config::default()),
                TransactionLayer::new(Config::default()),
            ],
            addrs: [
                "10.0.0.1:5060".parse().unwrap(),
                "10.0.0.2:5060".parse().unwrap(),
            ],
            transport,
            rng: Rng::new(seed),
            loss_percent,
            delay: Duration::from_millis(20),
            inflight: Vec::new(),
            wire: Vec::new(),
            r2xx: None,
            steps: 0,
        }
    }

    fn peer(&self, node: usize) -> Peer {
        Peer {
            addr: self.addrs[node],
            transport: self.transport,
        }
    }

    fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    fn send_bytes(&mut self, from: usize, bytes: Vec<u8>) {
        let first_line = String::from_utf8_lossy(&bytes)
            .lines()
            .next()
            .unwrap_or("")
            .to_string();
        let lost = self.loss_percent > 0 && self.rng.percent() < self.loss_percent;
        self.wire.push(Wire {
            at: self.elapsed(),
            from,
            first_line,
            delivered: !lost,
        });
        if !lost {
            self.inflight.push((self.now + self.delay, 1 - from, bytes));
        }
    }

    /// Drains both layers: transmissions go on the wire, the rest is returned.
    fn flush(&mut self) -> Vec<(usize, Output)> {
        let mut events = Vec::new();
        for node in [UAC, UAS] {
            while let Some(out) = self.nodes[node].poll_output() {
                match out {
                    Output::Transmit { to, bytes } => {
                        assert_eq!(to, self.peer(1 - node), "response routed to the wrong peer");
                        self.send_bytes(node, bytes);
                    }
                    other => events.push((node, other)),
                }
            }
        }
        events
    }

    /// One step: flush pending outputs, or advance the clock to the next event.
    /// `None` when nothing is left to happen.
    fn step(&mut self) -> Option<Vec<(usize, Output)>> {
        self.steps += 1;
        assert!(
            self.steps < MAX_STEPS,
            "livelock: drive loop did not settle"
        );
        let events = self.flush();
        if !events.is_empty() {
            return Some(events);
        }
        let next = [
            self.inflight.iter().map(|(t, _, _)| *t).min(),
            self.nodes[UAC].poll_timeout(),
            self.nodes[UAS].poll_timeout(),
            self.r2xx.as_ref().and_then(|r| r.poll_timeout()),
        ]
        .into_iter()
        .flatten()
        .min()?;
        assert!(next >= self.now, "deadline in the past");
        self.now = next;
        let now = self.now;
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.inflight)
            .into_iter()
            .partition(|(t, _, _)| *t <= now);
        self.inflight = later;
        for (_, to, bytes) in due {
            let msg = parse(&bytes).expect("sim carries well-formed messages");
            let from = self.peer(1 - to);
            self.nodes[to].handle_incoming(msg, from, now);
        }
        self.nodes[UAC].handle_timeout(now);
        self.nodes[UAS].handle_timeout(now);
        if let Some(r) = self.r2xx.as_mut() {
            if let Some(bytes) = r.handle_timeout(now) {
                self.send_bytes(UAS, bytes);
            }
        }
        Some(self.flush())
    }

    fn count_sent(&self, from: usize, prefix: &str) -> usize {
        self.wire
            .iter()
            .filter(|w| w.from == from && w.first_line.starts_with(prefix))
            .count()
    }
}

fn text_req(s: &str) -> Request {
    match parse(s.replace('\n', "\r\n").as_bytes()) {
        Ok(Message::Request(r)) => r,
        other => panic!("bad test request: {other:?}"),
    }
}

fn invite(branch: &str) -> Request {
    text_req(&format!(
        "INVITE sip:queue@10.0.0.2 SIP/2.0
Via: SIP/2.0/UDP 10.0.0.1:5060;branch={branch};rport
Max-Forwards: 70
From: \"Caller\" <sip:caller@10.0.0.1>;tag=from1
To: <sip:queue@10.0.0.2>
Call-ID: call-1@10.0.0.1
CSeq: 1 INVITE
Contact: <sip:caller@10.0.0.1:5060>
Content-Length: 0

"
    ))
}

fn options(branch: &str) -> Request {
    text_req(&format!(
        "OPTIONS sip:queue@10.0.0.2 SIP/2.0
Via: SIP/2.0/UDP 10.0.0.1:5060;branch={branch}
Max-Forwards: 70
From: <sip:caller@10.0.0.1>;tag=from2
To: <sip:queue@10.0.0.2>
Call-ID: opt-1@10.0.0.1
CSeq: 5 OPTIONS
Content-Length: 0

"
    ))
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

/// Full call: INVITE → 180 → 200 (TU-retransmitted) → ACK, then BYE → 200, over a
/// network that loses `loss` percent of packets.
fn run_call(seed: u64, loss: u64, transport: Transport) -> Sim {
    let mut sim = Sim::new(seed, loss, transport);
    let to_uas = sim.peer(UAS);
    let inv = invite(&new_branch(sim.rng.next()));
    let now = sim.now;
    let invite_key = sim.nodes[UAC].send_request(inv.clone(), to_uas, now);

    let mut uas_invites = 0;
    let mut uas_acked = false;
    let mut uac_dialog: Option<Dialog> = None;
    let mut bye_key: Option<TxKey> = None;
    let mut bye_done = false;
    let mut uas_byes = 0;

    while let Some(events) = sim.step() {
        let now = sim.now;
        for (node, ev) in events {
            match (node, ev) {
                (UAS, Output::Request { key, req, .. }) if req.method == Method::Invite => {
                    uas_invites += 1;
                    let ringing = Response::for_request(&req, 180, "Ringing").with_to_tag("uas1");
                    sim.nodes[UAS].send_response(&key, ringing, now);
                    let mut ok = Response::for_request(&req, 200, "OK").with_to_tag("uas1");
                    ok.headers.push("Contact", "<sip:queue@10.0.0.2:5060>");
                    sim.r2xx = Some(Retransmit2xx::new(
                        ok.to_bytes(),
                        sim.peer(UAC),
                        sim.nodes[UAS].config(),
                        now,
                    ));
                    sim.nodes[UAS].send_response(&key, ok, now);
                }
                (UAS, Output::Ack { req, .. }) => {
                    assert_eq!(req.cseq(), Some((1, Method::Ack)));
                    uas_acked = true;
                    if let Some(r) = sim.r2xx.as_mut() {
                        r.ack_received();
                    }
                }
                (UAS, Output::Request { key, req, .. }) if req.method == Method::Bye => {
                    uas_byes += 1;
                    let ok = Response::for_request(&req, 200, "OK");
                    sim.nodes[UAS].send_response(&key, ok, now);
                }
                (UAC, Output::Response { key, resp }) if key == invite_key && resp.is_success() => {
                    {
                        let first = uac_dialog.is_none();
                        let d = uac_dialog.get_or_insert_with(|| Dialog::uac(&inv, &resp).unwrap());
                        // Re-ACK every 2xx (§13.2.2.4); the ACK has its own branch.
                        let ack = d.ack_for_2xx(1, "10.0.0.1:5060", &new_branch(seed ^ 0xACC));
                        sim.nodes[UAC].send_request(ack, to_uas, now);
                        if first {
                            let bye = d.request(
                                Method::Bye,
                                "10.0.0.1:5060",
                                &new_branch(seed ^ 0xB7E),
                                "",
                            );
                            bye_key = Some(sim.nodes[UAC].send_request(bye, to_uas, now));
                        }
                    }
                }
                (UAC, Output::Response { key, resp })
                    if Some(&key) == bye_key.as_ref() && resp.status >= 200 =>
                {
                    assert_eq!(resp.status, 200);
                    bye_done = true;
                }
                (_, Output::Timeout { key }) => panic!("seed {seed}: unexpected timeout {key:?}"),
                _ => {}
            }
        }
    }
    assert_eq!(uas_invites, 1, "seed {seed}: TU must see the INVITE once");
    assert_eq!(uas_byes, 1, "seed {seed}: TU must see the BYE once");
    assert!(uas_acked, "seed {seed}: 2xx never ACKed");
    assert!(bye_done, "seed {seed}: BYE not completed");
    assert!(uac_dialog.is_some());
    assert!(
        sim.nodes[UAC].is_empty() && sim.nodes[UAS].is_empty(),
        "transactions leaked"
    );
    sim
}

#[test]
fn call_completes_under_30_percent_loss() {
    let mut retransmitted = 0;
    for seed in 1..=12 {
        let sim = run_call(seed, 30, Transport::Udp);
        assert!(
            sim.wire.iter().any(|w| !w.delivered),
            "seed {seed}: loss not simulated"
        );
        retransmitted += sim.count_sent(UAC, "INVITE").saturating_sub(1);
        retransmitted += sim.count_sent(UAC, "BYE").saturating_sub(1);
    }
    assert!(retransmitted > 0, "loss should have forced retransmissions");
}

#[test]
fn call_without_loss_and_tcp_sends_no_retransmissions() {
    let sim = run_call(7, 0, Transport::Udp);
    assert_eq!(sim.count_sent(UAC, "INVITE"), 1);
    assert_eq!(sim.count_sent(UAC, "BYE"), 1);
    let sim = run_call(7, 0, Transport::Tcp);
    assert_eq!(sim.count_sent(UAC, "INVITE"), 1);
    assert_eq!(sim.count_sent(UAS, "SIP/2.0 100"), 1);
}

#[test]
fn hundred_trying_sent_at_once() {
    let mut sim = Sim::new(1, 0, Transport::Udp);
    let now = sim.now;
    let from = sim.peer(UAC);
    sim.nodes[UAS].handle_incoming(Message::Request(invite("z9hG4bKt1")), from, now);
    match sim.nodes[UAS].poll_output() {
        Some(Output::Transmit { bytes, to }) => {
            assert_eq!(to, from);
            assert!(bytes.starts_with(b"SIP/2.0 100 Trying\r\n"));
        }
        other => panic!("expected 100 Trying first, got {other:?}"),
    }
    assert!(matches!(
        sim.nodes[UAS].poll_output(),
        Some(Output::Request { .. })
    ));
    assert_eq!(sim.nodes[UAS].len(), 1);
}

#[test]
fn retransmitted_invite_absorbed_with_last_response() {
    let mut sim = Sim::new(1, 0, Transport::Udp);
    let now = sim.now;
    let from = sim.peer(UAC);
    let inv = invite("z9hG4bKr1");
    let l = &mut sim.nodes[UAS];
    l.handle_incoming(Message::Request(inv.clone()), from, now);
    let mut key = None;
    while let Some(o) = l.poll_output() {
        if let Output::Request { key: k, .. } = o {
            key = Some(k);
        }
    }
    let key = key.unwrap();
    l.handle_incoming(Message::Request(inv.clone()), from, now);
    let outs: Vec<_> = std::iter::from_fn(|| l.poll_output()).collect();
    assert_eq!(outs.len(), 1);
    assert!(
        matches!(&outs[0], Output::Transmit { bytes, .. } if bytes.starts_with(b"SIP/2.0 100"))
    );
    l.send_response(
        &key,
        Response::for_request(&inv, 180, "Ringing").with_to_tag("t"),
        now,
    );
    let _ = std::iter::from_fn(|| l.poll_output()).count();
    l.handle_incoming(Message::Request(inv.clone()), from, now);
    let outs: Vec<_> = std::iter::from_fn(|| l.poll_output()).collect();
    assert!(
        matches!(&outs[..], [Output::Transmit { bytes, .. }] if bytes.starts_with(b"SIP/2.0 180"))
    );
    // After 2xx (Accepted, RFC 6026) INVITE retransmissions are absorbed silently.
    l.send_response(
        &key,
        Response::for_request(&inv, 200, "OK").with_to_tag("t"),
        now,
    );
    let _ = std::iter::from_fn(|| l.poll_output()).count();
    l.handle_incoming(Message::Request(inv), from, now);
    assert_eq!(l.poll_output(), None);
    // Timer L ends it.
    l.handle_timeout(now + Duration::from_secs(32));
    assert_eq!(l.poll_output(), Some(Output::Terminated { key }));
    assert!(l.is_empty());
}

#[test]
fn timer_b_and_f_fire_when_peer_is_gone() {
    let mut sim = Sim::new(3, 100, Transport::Udp);
    let to = sim.peer(UAS);
    let now = sim.now;
    let inv_key = sim.nodes[UAC].send_request(invite("z9hG4bKgone"), to, now);
    let opt_key = sim.nodes[UAC].send_request(options("z9hG4bKgone2"), to, now);
    let mut timeouts = Vec::new();
    let mut terminated = Vec::new();
    while let Some(events) = sim.step() {
        for (_, ev) in events {
            match ev {
                Output::Timeout { key } => timeouts.push((key, sim.elapsed())),
                Output::Terminated { key } => terminated.push(key),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    // Timer A: 0, .5, 1.5, 3.5, 7.5, 15.5, 31.5 s then Timer B at 32 s (§17.1.1.2).
    let invites: Vec<u128> = sim
        .wire
        .iter()
        .filter(|w| w.first_line.starts_with("INVITE"))
        .map(|w| ms(w.at))
        .collect();
    assert_eq!(invites, vec![0, 500, 1500, 3500, 7500, 15500, 31500]);
    // Timer E: doubling capped at T2 = 4 s (§17.1.2.2).
    let opts: Vec<u128> = sim
        .wire
        .iter()
        .filter(|w| w.first_line.starts_with("OPTIONS"))
        .map(|w| ms(w.at))
        .collect();
    assert_eq!(&opts[..6], &[0, 500, 1500, 3500, 7500, 11500]);
    assert!(opts.iter().all(|t| *t < 32_000));
    assert_eq!(timeouts.len(), 2);
    for (key, at) in &timeouts {
        assert!(*key == inv_key || *key == opt_key);
        assert_eq!(ms(*at), 32_000);
    }
    assert_eq!(terminated.len(), 2);
    assert!(sim.nodes[UAC].is_empty());
}

#[test]
fn tcp_peer_gone_no_retransmissions() {
    let mut sim = Sim::new(3, 100, Transport::Tcp);
    let to = sim.peer(UAS);
    let now = sim.now;
    sim.nodes[UAC].send_request(invite("z9hG4bKtcp"), to, now);
    sim.nodes[UAC].send_request(options("z9hG4bKtcp2"), to, now);
    let mut timeouts = 0;
    while let Some(events) = sim.step() {
        timeouts += events
            .iter()
            .filter(|(_, e)| matches!(e, Output::Timeout { .. }))
            .count();
    }
    assert_eq!(sim.wire.len(), 2, "reliable transport: no retransmissions");
    assert_eq!(timeouts, 2);
}

#[test]
fn non_2xx_final_is_acked_by_the_transaction() {
    for transport in [Transport::Udp, Transport::Tcp] {
        let mut sim = Sim::new(5, 0, transport);
        let to = sim.peer(UAS);
        let now = sim.now;
        let key = sim.nodes[UAC].send_request(invite("z9hG4bKbusy"), to, now);
        let mut finals = 0;
        let mut uas_saw_ack = false;
        while let Some(events) = sim.step() {
            let now = sim.now;
            for (node, ev) in events {
                match (node, ev) {
                    (UAS, Output::Request { key, req, .. }) => {
                        let busy = Response::for_request(&req, 486, "Busy Here").with_to_tag("b1");
                        sim.nodes[UAS].send_response(&key, busy, now);
                    }
                    (UAS, Output::Ack { .. }) => uas_saw_ack = true,
                    (UAC, Output::Response { key: k, resp }) => {
                        assert_eq!(k, key);
                        if resp.status >= 200 {
                            finals += 1;
                        }
                    }
                    (_, Output::Timeout { key }) => panic!("timeout {key:?}"),
                    _ => {}
                }
            }
        }
        assert_eq!(finals, 1);
        assert!(!uas_saw_ack, "ACK for non-2xx is absorbed by the server tx");
        let acks: Vec<&Wire> = sim
            .wire
            .iter()
            .filter(|w| w.first_line.starts_with("ACK"))
            .collect();
        assert_eq!(acks.len(), 1);
        assert!(sim.nodes[UAC].is_empty() && sim.nodes[UAS].is_empty());
    }

    // The ACK itself: same branch as the INVITE, To tag from the response (§17.1.1.3),
    // and a retransmitted 486 is re-ACKed without reaching the TU again.
    let mut l = TransactionLayer::new(Config::default());
    let peer = Peer {
        addr: "10.0.0.2:5060".parse().unwrap(),
        transport: Transport::Udp,
    };
    let t0 = Instant::now();
    let inv = invite("z9hG4bKack");
    let key = l.send_request(inv.clone(), peer, t0);
    let _ = std::iter::from_fn(|| l.poll_output()).count();
    let busy = Response::for_request(&inv, 486, "Busy Here").with_to_tag("b1");
    l.handle_incoming(Message::Response(busy.clone()), peer, t0);
    let outs: Vec<_> = std::iter::from_fn(|| l.poll_output()).collect();
    let ack = outs
        .iter()
        .find_map(|o| match o {
            Output::Transmit { bytes, .. } => match parse(bytes) {
                Ok(Message::Request(r)) => Some(r),
                _ => None,
            },
            _ => None,
        })
        .unwrap();
    assert_eq!(ack.method, Method::Ack);
    assert_eq!(ack.uri, inv.uri);
    assert_eq!(ack.top_via().unwrap().branch.as_deref(), Some("z9hG4bKack"));
    assert_eq!(ack.to_tag(), Some("b1"));
    assert_eq!(ack.cseq(), Some((1, Method::Ack)));
    assert!(outs.contains(&Output::Response {
        key: key.clone(),
        resp: busy.clone()
    }));
    l.handle_incoming(Message::Response(busy), peer, t0 + Duration::from_secs(1));
    let outs: Vec<_> = std::iter::from_fn(|| l.poll_output()).collect();
    assert!(matches!(&outs[..], [Output::Transmit { bytes, .. }] if bytes.starts_with(b"ACK ")));
    // Timer D: 32 s on UDP.
    l.handle_timeout(t0 + Duration::from_secs(31));
    assert_eq!(l.len(), 1);
    l.handle_timeout(t0 + Duration::from_secs(32));
    assert_eq!(l.poll_output(), Some(Output::Terminated { key }));
}

#[test]
fn timer_g_retransmits_and_h_times_out_without_ack() {
    let mut l = TransactionLayer::new(Config::default());
    let peer = Peer {
        addr: "10.0.0.1:5060".parse().unwrap(),
        transport: Transport::Udp,
    };
    let t0 = Instant::now();
    let inv = invite("z9hG4bKg");
    l.handle_incoming(Message::Request(inv.clone()), peer, t0);
    let key = std::iter::from_fn(|| l.poll_output())
        .find_map(|o| match o {
            Output::Request { key, .. } => Some(key),
            _ => None,
        })
        .unwrap();
    l.send_response(
        &key,
        Response::for_request(&inv, 603, "Decline").with_to_tag("d"),
        t0,
    );
    let _ = std::iter::from_fn(|| l.poll_output()).count();
    let mut sends = Vec::new();
    let mut steps = 0;
    let mut timed_out = false;
    while let Some(at) = l.poll_timeout() {
        steps += 1;
        assert!(steps < 1000, "livelock");
        // Firing early is a no-op.
        l.handle_timeout(at - Duration::from_millis(1));
        assert_eq!(l.poll_output(), None);
        l.handle_timeout(at);
        while let Some(o) = l.poll_output() {
            match o {
                Output::Transmit { bytes, .. } => {
                    assert!(bytes.starts_with(b"SIP/2.0 603"));
                    sends.push(ms(at - t0));
                }
                Output::Timeout { key: k } => {
                    assert_eq!(k, key);
                    assert_eq!(ms(at - t0), 32_000);
                    timed_out = true;
                }
                Output::Terminated { .. } => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert!(timed_out, "Timer H must report the missing ACK");
    assert_eq!(&sends[..5], &[500, 1500, 3500, 7500, 11500]);
    assert!(l.is_empty());
}

#[test]
fn cancel_matches_invite_server_transaction() {
    let mut sim = Sim::new(9, 0, Transport::Udp);
    let to = sim.peer(UAS);
    let now = sim.now;
    let inv = invite("z9hG4bKcan");
    let invite_key = sim.nodes[UAC].send_request(inv.clone(), to, now);
    let mut cancel_sent = false;
    let mut cancel_seen = false;
    let mut uac_statuses = Vec::new();
    while let Some(events) = sim.step() {
        let now = sim.now;
        for (node, ev) in events {
            match (node, ev) {
                (UAS, Output::Request { key, req, .. }) => {
                    assert_eq!(req.method, Method::Invite);
                    let r = Response::for_request(&req, 180, "Ringing").with_to_tag("c1");
                    sim.nodes[UAS].send_response(&key, r, now);
                }
                (UAC, Output::Response { key, resp }) => {
                    uac_statuses.push((key.method.clone(), resp.status));
                    if resp.status == 180 && !cancel_sent {
                        cancel_sent = true;
                        let cancel = build_cancel(&inv);
                        assert_eq!(cancel.top_via(), inv.top_via());
                        assert_eq!(cancel.cseq(), Some((1, Method::Cancel)));
                        assert_eq!(cancel.to_tag(), None, "CANCEL To equals the INVITE's");
                        sim.nodes[UAC].send_request(cancel, to, now);
                    }
                }
                (
                    UAS,
                    Output::Cancel {
                        key, invite, req, ..
                    },
                ) => {
                    cancel_seen = true;
                    let invite = invite.expect("CANCEL must match the INVITE server tx");
                    assert_eq!(invite.branch, "z9hG4bKcan");
                    assert_eq!(invite.method, Method::Invite);
                    sim.nodes[UAS].send_response(&key, Response::for_request(&req, 200, "OK"), now);
                    // §9.2: the INVITE is answered 487.
                    let r487 =
                        Response::for_request(&inv, 487, "Request Terminated").with_to_tag("c1");
                    sim.nodes[UAS].send_response(&invite, r487, now);
                }
                _ => {}
            }
        }
    }
    assert!(cancel_seen);
    assert!(uac_statuses.contains(&(Method::Cancel, 200)));
    assert!(uac_statuses.contains(&(Method::Invite, 487)));
    assert_eq!(
        sim.count_sent(UAC, "ACK"),
        1,
        "487 is ACKed by the client tx"
    );
    let _ = invite_key;
    assert!(sim.nodes[UAC].is_empty() && sim.nodes[UAS].is_empty());

    // A CANCEL with no matching INVITE is still surfaced (TU answers 481).
    let mut l = TransactionLayer::new(Config::default());
    let peer = sim.peer(UAC);
    l.handle_incoming(
        Message::Request(build_cancel(&invite("z9hG4bKnone"))),
        peer,
        now,
    );
    assert!(matches!(
        l.poll_output(),
        Some(Output::Cancel { invite: None, .. })
    ));
}

#[test]
fn merged_request_gets_482() {
    let mut l = TransactionLayer::new(Config::default());
    let peer = Peer {
        addr: "10.0.0.1:5060".parse().unwrap(),
        transport: Transport::Udp,
    };
    let t0 = Instant::now();
    l.handle_incoming(Message::Request(invite("z9hG4bKpath1")), peer, t0);
    let requests = std::iter::from_fn(|| l.poll_output())
        .filter(|o| matches!(o, Output::Request { .. }))
        .count();
    assert_eq!(requests, 1);
    // Same From tag / Call-ID / CSeq through another path (other branch).
    let mut forked = invite("z9hG4bKpath2");
    forked
        .headers
        .set("Via", "SIP/2.0/UDP 10.0.0.7:5060;branch=z9hG4bKpath2");
    l.handle_incoming(Message::Request(forked.clone()), peer, t0);
    let outs: Vec<_> = std::iter::from_fn(|| l.poll_output()).collect();
    assert_eq!(outs.len(), 1, "only the 482 goes out: {outs:?}");
    let Output::Transmit { bytes, .. } = &outs[0] else {
        panic!("expected a transmit")
    };
    let Ok(Message::Response(resp)) = parse(bytes) else {
        panic!("expected a response")
    };
    assert_eq!(resp.status, 482);
    assert!(resp.to_tag().is_some());
    // Its retransmission gets the same 482, still not surfaced.
    l.handle_incoming(Message::Request(forked), peer, t0);
    let outs: Vec<_> = std::iter::from_fn(|| l.poll_output()).collect();
    assert!(matches!(&outs[..], [Output::Transmit { bytes: b, .. }] if b == bytes));
    assert_eq!(l.len(), 2);
}

#[test]
fn late_2xx_after_client_tx_ended_reaches_tu() {
    let mut l = TransactionLayer::new(Config::default());
    let peer = Peer {
        addr: "10.0.0.2:5060".parse().unwrap(),
        transport: Transport::Udp,
    };
    let t0 = Instant::now();
    let inv = invite("z9hG4bKlate");
    let key = l.send_request(inv.clone(), peer, t0);
    let ok = Response::for_request(&inv, 200, "OK").with_to_tag("x");
    l.handle_incoming(Message::Response(ok.clone()), peer, t0);
    // Accepted: 2xx retransmissions are delivered (RFC 6026 §8.4).
    l.handle_incoming(Message::Response(ok.clone()), peer, t0);
    let delivered = std::iter::from_fn(|| l.poll_output())
        .filter(|o| matches!(o, Output::Response { .. }))
        .count();
    assert_eq!(delivered, 2);
    // Timer M ends the transaction; a later 2xx still reaches the TU with the key.
    l.handle_timeout(t0 + Duration::from_secs(32));
    assert_eq!(
        l.poll_output(),
        Some(Output::Terminated { key: key.clone() })
    );
    l.handle_incoming(
        Message::Response(ok.clone()),
        peer,
        t0 + Duration::from_secs(40),
    );
    assert_eq!(l.poll_output(), Some(Output::Response { key, resp: ok }));
    // Anything else unmatched is stray.
    let stray = Response::for_request(&options("z9hG4bKnobody"), 200, "OK");
    l.handle_incoming(Message::Response(stray.clone()), peer, t0);
    assert_eq!(
        l.poll_output(),
        Some(Output::StrayResponse {
            resp: stray,
            from: peer
        })
    );
}

#[test]
fn non_invite_server_absorbs_and_timer_j() {
    let mut l = TransactionLayer::new(Config::default());
    let peer = Peer {
        addr: "10.0.0.1:5060".parse().unwrap(),
        transport: Transport::Udp,
    };
    let t0 = Instant::now();
    let opt = options("z9hG4bKj");
    l.handle_incoming(Message::Request(opt.clone()), peer, t0);
    let key = match l.poll_output() {
        Some(Output::Request { key, .. }) => key,
        other => panic!("{other:?}"),
    };
    // Trying: retransmission absorbed without a response.
    l.handle_incoming(Message::Request(opt.clone()), peer, t0);
    assert_eq!(l.poll_output(), None);
    l.send_response(&key, Response::for_request(&opt, 200, "OK"), t0);
    assert!(matches!(l.poll_output(), Some(Output::Transmit { .. })));
    l.handle_incoming(Message::Request(opt), peer, t0);
    assert!(
        matches!(l.poll_output(), Some(Output::Transmit { bytes, .. }) if bytes.starts_with(b"SIP/2.0 200"))
    );
    assert_eq!(l.poll_timeout(), Some(t0 + Duration::from_secs(32)));
    l.handle_timeout(t0 + Duration::from_secs(32));
    assert_eq!(l.poll_output(), Some(Output::Terminated { key }));
    assert_eq!(l.poll_timeout(), None);
}

#[test]
fn branch_helpers() {
    assert_eq!(new_branch(0xabc), "z9hG4bK0000000000000abc");
    assert_eq!(new_tag(1).len(), 16);
}

/// An RFC 2543 INVITE (no branch) with `via` as its top Via.
fn invite_2543(via: &str, cseq: u32) -> Request {
    text_req(&format!(
        "INVITE sip:UserB@example.com SIP/2.0
Via: {via}
From: <sip:+13035551111@ift.client.example.net;user=phone>
To: sip:+16505552222@ss1.example.net;user=phone
Call-ID: inv2543.1717@ift.client.example.com
CSeq: {cseq} INVITE
Content-Length: 0

"
    ))
}

fn drain(l: &mut TransactionLayer) -> Vec<Output> {
    std::iter::from_fn(|| l.poll_output()).collect()
}

fn new_request_key(outs: &[Output]) -> Option<TxKey> {
    outs.iter().find_map(|o| match o {
        Output::Request { key, .. } => Some(key.clone()),
        _ => None,
    })
}

#[test]
fn rfc2543_invite_matched_without_branch() {
    let mut l = TransactionLayer::new(Config::default());
    let peer = Peer {
        addr: "192.0.2.9:5060".parse().unwrap(),
        transport: Transport::Udp,
    };
    let now = Instant::now();
    let inv = invite_2543("SIP/2.0/UDP iftgw.example.com", 56);
    l.handle_incoming(Message::Request(inv.clone()), peer, now);
    let key = new_request_key(&drain(&mut l)).expect("2543 INVITE reaches the TU");
    assert!(key.is_legacy(), "{key:?}");

    // Retransmission, with different LWS in the Via: absorbed, 100 resent.
    let again = invite_2543("SIP/2.0/UDP   iftgw.example.com", 56);
    l.handle_incoming(Message::Request(again), peer, now);
    let outs = drain(&mut l);
    assert!(new_request_key(&outs).is_none(), "{outs:?}");
    assert!(
        matches!(&outs[..], [Output::Transmit { bytes, .. }] if bytes.starts_with(b"SIP/2.0 100"))
    );

    // Another CSeq or another top Via is another transaction (§17.2.3).
    for other in [
        invite_2543("SIP/2.0/UDP iftgw.example.com", 57),
        invite_2543("SIP/2.0/UDP other.example.com", 56),
    ] {
        let mut l2 = TransactionLayer::new(Config::default());
        l2.handle_incoming(Message::Request(inv.clone()), peer, now);
        let _ = drain(&mut l2);
        l2.handle_incoming(Message::Request(other), peer, now);
        let outs = drain(&mut l2);
        // A different top Via with the same From/Call-ID/CSeq is a merged request.
        let new_tx = new_request_key(&outs).is_some();
        let merged = outs.iter().any(
            |o| matches!(o, Output::Transmit { bytes, .. } if bytes.starts_with(b"SIP/2.0 482")),
        );
        assert!(new_tx || merged, "{outs:?}");
    }

    // A 486 with our To tag; the ACK carries that tag and must match (§17.2.3).
    let busy = Response::for_request(&inv, 486, "Busy Here").with_to_tag("uas1");
    l.send_response(&key, busy, now);
    let outs = drain(&mut l);
    assert!(
        matches!(&outs[..], [Output::Transmit { bytes, .. }] if bytes.starts_with(b"SIP/2.0 486"))
    );
    // Retransmitted INVITE now gets the 486 again.
    l.handle_incoming(Message::Request(inv.clone()), peer, now);
    let outs = drain(&mut l);
    assert!(
        matches!(&outs[..], [Output::Transmit { bytes, .. }] if bytes.starts_with(b"SIP/2.0 486"))
    );

    let mut ack = inv.clone();
    ack.method = Method::Ack;
    ack.headers.set("CSeq", "56 ACK");
    ack.headers
        .set("To", "sip:+16505552222@ss1.example.net;user=phone;tag=uas1");
    l.handle_incoming(Message::Request(ack.clone()), peer, now);
    let outs = drain(&mut l);
    assert!(
        outs.is_empty(),
        "ACK for the 486 is the transaction's: {outs:?}"
    );
    // Confirmed: Timer G is gone, only Timer I remains (T4 = 5 s).
    assert_eq!(l.poll_timeout(), Some(now + Config::default().t4));
    // An ACK with a tag that is not ours does not match: it goes to the TU.
    ack.headers.set(
        "To",
        "sip:+16505552222@ss1.example.net;user=phone;tag=other",
    );
    let mut l3 = TransactionLayer::new(Config::default());
    l3.handle_incoming(Message::Request(ack), peer, now);
    assert!(matches!(drain(&mut l3)[..], [Output::Ack { .. }]));
}

#[test]
fn rfc2543_cancel_matches_the_invite() {
    let mut l = TransactionLayer::new(Config::default());
    let peer = Peer {
        addr: "192.0.2.9:5060".parse().unwrap(),
        transport: Transport::Udp,
    };
    let now = Instant::now();
    let inv = invite_2543("SIP/2.0/UDP iftgw.example.com", 56);
    l.handle_incoming(Message::Request(inv.clone()), peer, now);
    let key = new_request_key(&drain(&mut l)).unwrap();
    let cancel = build_cancel(&inv);
    l.handle_incoming(Message::Request(cancel), peer, now);
    let invite = drain(&mut l).into_iter().find_map(|o| match o {
        Output::Cancel { invite, .. } => Some(invite),
        _ => None,
    });
    assert_eq!(invite, Some(Some(key)));
}

#[test]
fn incoming_requests_get_received_and_rport_stamped() {
    let mut l = TransactionLayer::new(Config::default());
    let peer = Peer {
        addr: "203.0.113.5:41000".parse().unwrap(),
        transport: Transport::Udp,
    };
    let now = Instant::now();
    // invite() has `;rport` and sent-by 10.0.0.1:5060 (a NAT'd client).
    l.handle_incoming(Message::Request(invite("z9hG4bKnat")), peer, now);
    let outs = drain(&mut l);
    let Some(Output::Transmit { to, bytes }) = outs.first() else {
        panic!("{outs:?}")
    };
    assert_eq!(*to, peer, "responses go back to the source address");
    let text = String::from_utf8_lossy(bytes);
    assert!(
        text.contains(
            "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKnat;rport=41000;received=203.0.113.5\r\n"
        ),
        "{text}"
    );
    let req = outs
        .iter()
        .find_map(|o| match o {
            Output::Request { req, .. } => Some(req),
            _ => None,
        })
        .unwrap();
    let via = req.top_via().unwrap();
    assert_eq!(via.rport, Some(Some(41000)));
    assert_eq!(via.received.as_deref(), Some("203.0.113.5"));
}
