//! Drives the core from arbitrary bytes, for the fuzz target and the
//! fuzz smoke test: no input may panic it or make it loop.
//!
//! The bytes are a script of records separated by `\0`. A record's first
//! byte picks the operation; the rest is its argument:
//! `S<sip>` a SIP message from the trunk, `P<sip>` from the phone,
//! `T<n>` let `n` × 100 ms pass, `C` connect the oldest call to alice,
//! `I<n>` answer the last IVR step with action `n`, `M` end the last prompt,
//! `D` drain, `X` snapshot and restore. In SIP records `@TAG@` stands for
//! the To tag of the edge's last 2xx, so scripts can reach real dialogs.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use acd_sip::{Peer, Transport};

use crate::{
    AgentId, CoreConfig, EdgeCore, FromDistributor, Input, IvrAction, IvrReply, IvrStep,
    MediaCommand, MediaEvent, MediaPorts, Output, PlayToken,
};

fn config() -> CoreConfig {
    let mut cfg = CoreConfig::with_defaults(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
    cfg.flows.insert(
        "main".into(),
        acd_ivr::Flow {
            answer: acd_ivr::AnswerMode::Immediate,
            start: "hello".into(),
            fallback_queue: "sales".into(),
            nodes: BTreeMap::new(),
            ..Default::default()
        },
    );
    cfg.dids.insert("5550100".into(), "main".into());
    cfg.prompts = BTreeSet::from(["welcome".to_string(), "moh".to_string()]);
    cfg.extensions = BTreeMap::from([("1001".to_string(), "secret".to_string())]);
    cfg
}

fn peer(last: u8, transport: Transport) -> Peer {
    Peer {
        addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)), 5060),
        transport,
    }
}

struct Harness {
    core: EdgeCore,
    now: Instant,
    steps: Vec<IvrStep>,
    plays: Vec<(crate::CallId, PlayToken)>,
    last_tag: Vec<u8>,
}

/// Runs one script. Bounded: at most 256 records, 10,000 outputs each.
pub fn run(data: &[u8]) {
    let now = Instant::now();
    let mut h = Harness {
        core: EdgeCore::new(config(), 1, now, 1_800_000_000),
        now,
        steps: Vec::new(),
        plays: Vec::new(),
        last_tag: b"none".to_vec(),
    };
    for record in data.split(|b| *b == 0).take(256) {
        h.record(record);
    }
}

impl Harness {
    fn record(&mut self, r: &[u8]) {
        let Some((&op, arg)) = r.split_first() else {
            return;
        };
        match op {
            b'S' | b'P' | b's' => {
                let from = match op {
                    b'S' => peer(2, Transport::Udp),
                    b's' => peer(2, Transport::Tcp),
                    _ => peer(3, Transport::Udp),
                };
                let text = replace(arg, b"@TAG@", &self.last_tag);
                if let Ok(msg) = acd_sip::parse(&text) {
                    let received = self.now;
                    self.feed(Input::Sip {
                        msg,
                        from,
                        received,
                    });
                }
            }
            b'T' => {
                let n = arg.first().copied().unwrap_or(1);
                self.now += Duration::from_millis(100 * u64::from(n));
                for _ in 0..1000 {
                    match self.core.poll_timeout() {
                        Some(t) if t <= self.now => {
                            self.core.handle_timeout(self.now);
                            self.drain();
                        }
                        _ => break,
                    }
                }
            }
            b'C' => {
                if let Some(call) = self.core.call_ids().into_iter().next() {
                    self.feed(Input::Distributor {
                        term: 1,
                        cmd: FromDistributor::Connect {
                            call,
                            agent: AgentId("alice".into()),
                            extension: "1001".into(),
                            contact: None,
                            auto_answer: false,
                            ring_also: Vec::new(),
                            survey_flow: String::new(),
                        },
                    });
                }
            }
            b'I' => {
                if let Some(step) = self.steps.last().cloned() {
                    let action = match arg.first().copied().unwrap_or(0) % 4 {
                        0 => IvrAction::Play {
                            prompts: vec!["welcome".into()],
                            barge_in: true,
                        },
                        1 => IvrAction::Collect(crate::io::CollectSpec {
                            min_digits: 1,
                            max_digits: 1,
                            terminator: Some('#'),
                            first_digit_timeout_ms: 500,
                            inter_digit_timeout_ms: 500,
                        }),
                        2 => IvrAction::Enqueue {
                            queue: "sales".into(),
                            priority: 0,
                            skills: Default::default(),
                            data: Default::default(),
                        },
                        _ => IvrAction::Hangup {
                            reason: "fuzz".into(),
                        },
                    };
                    self.feed(Input::IvrReply {
                        call: step.call,
                        step: step.step,
                        reply: Ok(IvrReply {
                            session: Some(step.session),
                            actions: vec![action],
                        }),
                    });
                }
            }
            b'M' => {
                if let Some((call, token)) = self.plays.last().cloned() {
                    self.feed(Input::Media(MediaEvent::PromptFinished { call, token }));
                }
            }
            b'D' => self.feed(Input::Drain),
            b'X' => {
                let snap = self.core.snapshot(self.now);
                let json = snap.to_json();
                if let Ok(back) = crate::Snapshot::from_json(&json) {
                    self.core = EdgeCore::restore(config(), back, self.now);
                }
            }
            _ => {}
        }
    }

    fn feed(&mut self, input: Input) {
        self.core.handle(input, self.now);
        self.drain();
    }

    fn drain(&mut self) {
        for _ in 0..10_000 {
            let Some(out) = self.core.poll_output() else {
                return;
            };
            match out {
                Output::Ivr(step) => self.steps.push(step),
                Output::Transmit { bytes, .. } => {
                    if let Ok(acd_sip::Message::Response(r)) = acd_sip::parse(&bytes) {
                        if let (true, Some(tag)) = (r.is_success(), r.headers.to_tag()) {
                            self.last_tag = tag.as_bytes().to_vec();
                        }
                    }
                }
                Output::Media {
                    call,
                    cmd: MediaCommand::Allocate { .. },
                } => {
                    let ports = MediaPorts {
                        caller: 40000,
                        agent: 40002,
                    };
                    self.core
                        .handle(Input::MediaReady { call, ports }, self.now);
                }
                Output::Media {
                    call,
                    cmd: MediaCommand::Play { token, .. },
                } => {
                    self.plays.push((call, token));
                }
                _ => {}
            }
        }
        panic!("the core kept producing output");
    }
}

fn replace(hay: &[u8], pat: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len());
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(pat) {
            out.extend_from_slice(with);
            i += pat.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}
