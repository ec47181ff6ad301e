//! The figures of a run: the human summary, the `RESULT` lines of
//! tests/bench/README.md and the whole set as JSON.

use serde_json::{json, Value};

use crate::hist::{Histogram, Summary};
use crate::rtp::{RecvStats, SendReport, A_TO_B, B_TO_A};
use crate::sip::SipCounters;
use crate::{Cli, Mode};

/// CPU over the steady window (between warm-up and the end of sending).
pub struct CpuWindow {
    pub secs: f64,
    /// Datagrams received by the generator in the window (relayed ones).
    pub packets: u64,
    pub relay_pid: Option<u32>,
    pub relay_cpu_us: Option<u64>,
    pub generator_cpu_us: Option<u64>,
}

pub struct Rtp {
    sent: Vec<[u32; 2]>,
    stats: RecvStats,
    send_errors: u64,
    max_late_us: u64,
    skipped: u64,
}

pub struct Figures {
    mode: &'static str,
    calls: usize,
    hold: u64,
    cps: u32,
    socket_bufs: (i32, i32),
    pub established: usize,
    /// Original call number of each streamed call (acd mode: calls that failed are left out).
    pub call_index: Vec<usize>,
    pub sip: Option<(SipCounters, Vec<f64>)>,
    pub cpu: Option<CpuWindow>,
    pub rss_kib: Option<u64>,
    pub udp_errors: Option<(u64, u64)>,
    /// Receive queues in the middle of the hold.
    pub queues: Option<crate::procstat::UdpQueues>,
    pub teardown_failures: u64,
    pub sender_panicked: bool,
    rtp: Option<Rtp>,
    uac_only: bool,
}

fn sum(v: &[[u32; 2]], dir: usize) -> u64 {
    v.iter().map(|x| u64::from(x[dir])).sum()
}

fn pctl(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[((s.len() as f64 * q).ceil() as usize).clamp(1, s.len()) - 1]
}

impl Figures {
    pub fn new(cli: &Cli, socket_bufs: (i32, i32)) -> Self {
        let (mode, uac_only) = match &cli.mode {
            Mode::Acd { uac_only, .. } => ("acd", *uac_only),
            Mode::Rtpengine { .. } => ("rtpengine", false),
            Mode::Direct => ("direct", false),
        };
        Figures {
            mode,
            calls: cli.calls,
            hold: cli.hold,
            cps: cli.cps,
            socket_bufs,
            established: 0,
            call_index: Vec::new(),
            sip: None,
            cpu: None,
            rss_kib: None,
            udp_errors: None,
            queues: None,
            teardown_failures: 0,
            sender_panicked: false,
            rtp: None,
            uac_only,
        }
    }

    pub fn set_rtp(&mut self, sent: SendReport, stats: RecvStats) {
        self.rtp = Some(Rtp {
            sent: sent.sent,
            stats,
            send_errors: sent.send_errors,
            max_late_us: sent.max_late_us,
            skipped: sent.skipped,
        });
    }

    /// sent, received, lost per direction.
    fn counts(&self, dir: usize) -> (u64, u64, u64) {
        let Some(r) = &self.rtp else {
            return (0, 0, 0);
        };
        let (s, rx) = (sum(&r.sent, dir), sum(&r.stats.received, dir));
        (s, rx, s.saturating_sub(rx))
    }

    fn latency(&self) -> Option<(Summary, Summary, Summary)> {
        let r = self.rtp.as_ref()?;
        let mut all = Histogram::new();
        all.merge(&r.stats.hist[A_TO_B]);
        all.merge(&r.stats.hist[B_TO_A]);
        Some((
            r.stats.hist[A_TO_B].summary(),
            r.stats.hist[B_TO_A].summary(),
            all.summary(),
        ))
    }

    fn lost(&self) -> u64 {
        self.counts(A_TO_B).2 + self.counts(B_TO_A).2
    }

    /// Every call up, nothing lost, everything torn down.
    pub fn ok(&self) -> bool {
        let sip_ok = self
            .sip
            .as_ref()
            .is_none_or(|(c, _)| c.failed.is_empty() && c.timed_out == 0 && c.remote_byes == 0);
        let rtp_ok = self.uac_only || (self.rtp.is_some() && self.lost() == 0);
        self.established == self.calls
            && sip_ok
            && rtp_ok
            && self.teardown_failures == 0
            && !self.sender_panicked
    }

    fn relay_us_per_packet(&self) -> Option<f64> {
        let c = self.cpu.as_ref()?;
        let us = c.relay_cpu_us?;
        (c.packets > 0).then(|| us as f64 / c.packets as f64)
    }

    fn generator_us_per_packet(&self) -> Option<f64> {
        let c = self.cpu.as_ref()?;
        let us = c.generator_cpu_us?;
        // The generator both sends and receives each relayed packet.
        (c.packets > 0).then(|| us as f64 / c.packets as f64)
    }

    pub fn to_json(&self, per_call: bool) -> Value {
        let dir = |d: usize| {
            let (s, r, l) = self.counts(d);
            let rt = self.rtp.as_ref();
            json!({
                "sent": s, "received": r, "lost": l,
                "duplicates": rt.map(|r| sum(&r.stats.duplicates, d)),
                "reordered": rt.map(|r| sum(&r.stats.reordered, d)),
            })
        };
        let lat = self.latency();
        let rtp = self.rtp.as_ref().map(|r| {
            let calls_with_loss = r
                .sent
                .iter()
                .zip(&r.stats.received)
                .filter(|(s, rx)| s[0] > rx[0] || s[1] > rx[1])
                .count();
            json!({
                "a_to_b": dir(A_TO_B),
                "b_to_a": dir(B_TO_A),
                "lost": self.lost(),
                "calls_with_loss": calls_with_loss,
                "foreign": r.stats.foreign,
                "out_of_range": r.stats.out_of_range,
                "send_errors": r.send_errors,
                "max_tick_late_us": r.max_late_us,
                "skipped_frames": r.skipped,
                "latency_us": lat.map(|(a, b, all)| json!({"a_to_b": a, "b_to_a": b, "all": all})),
                "latency_us_with_warmup": r.stats.hist_all.summary(),
                "max_latency_us_per_100ms": r.stats.timeline_max_us,
            })
        });
        let cpu = self.cpu.as_ref().map(|c| {
            json!({
                "window_secs": c.secs,
                "packets": c.packets,
                "packets_per_sec": if c.secs > 0.0 { c.packets as f64 / c.secs } else { 0.0 },
                "relay_pid": c.relay_pid,
                "relay_cpu_us": c.relay_cpu_us,
                "relay_cpu_pct_of_core": c.relay_cpu_us.map(|u| u as f64 / 1e4 / c.secs.max(1e-9)),
                "relay_us_per_packet": self.relay_us_per_packet(),
                "generator_cpu_us": c.generator_cpu_us,
                "generator_cpu_pct_of_core": c.generator_cpu_us.map(|u| u as f64 / 1e4 / c.secs.max(1e-9)),
                "generator_us_per_packet": self.generator_us_per_packet(),
            })
        });
        let sip = self.sip.as_ref().map(|(c, setup)| {
            json!({
                "counters": c,
                "setup_ms": {"p50": pctl(setup, 0.5), "p99": pctl(setup, 0.99), "max": pctl(setup, 1.0)},
            })
        });
        let mut v = json!({
            "mode": self.mode,
            "calls": self.calls,
            "established": self.established,
            "hold_secs": self.hold,
            "cps": self.cps,
            "uac_only": self.uac_only,
            "ok": self.ok(),
            "rtp": rtp,
            "cpu": cpu,
            "relay_rss_kib": self.rss_kib,
            "sip": sip,
            "udp_queues_mid_hold": self.queues,
            "teardown_failures": self.teardown_failures,
            "udp_buf_errors": self.udp_errors.map(|(r, s)| json!({"rcvbuf": r, "sndbuf": s})),
            "socket_bufs": {"rcvbuf": self.socket_bufs.0, "sndbuf": self.socket_bufs.1},
        });
        if per_call {
            if let Some(r) = &self.rtp {
                let calls: Vec<Value> = (0..r.sent.len())
                    .map(|i| {
                        json!({
                            "call": self.call_index.get(i).copied().unwrap_or(i),
                            "sent": r.sent[i], "received": r.stats.received[i],
                            "duplicates": r.stats.duplicates[i], "reordered": r.stats.reordered[i],
                        })
                    })
                    .collect();
                v["per_call"] = Value::Array(calls);
            }
        }
        v
    }

    pub fn print_summary(&self) {
        let j = self.to_json(false);
        println!(
            "acd-rtpload {}: {} calls ({} up), hold {} s, ok={}",
            self.mode,
            self.calls,
            self.established,
            self.hold,
            self.ok()
        );
        for (name, d) in [("A->B", A_TO_B), ("B->A", B_TO_A)] {
            let (s, r, l) = self.counts(d);
            println!("  {name}: sent {s} received {r} lost {l}");
        }
        if let Some((a, b, all)) = self.latency() {
            for (name, s) in [("A->B", a), ("B->A", b), ("all ", all)] {
                println!(
                    "  latency {name} us: p50 {} p99 {} p99.9 {} max {}",
                    s.p50_us, s.p99_us, s.p999_us, s.max_us
                );
            }
        }
        if let Some(c) = j.get("cpu") {
            println!("  cpu: {c}");
        }
        if let Some(s) = j.get("sip") {
            println!("  sip: {s}");
        }
        let subject = if self.mode == "direct" {
            "direct"
        } else {
            self.mode
        };
        let detail =
            json!({"calls": self.calls, "established": self.established, "hold_secs": self.hold});
        let result = |metric: &str, value: Value, unit: &str| {
            let line = json!({"bench": "media", "metric": metric, "subject": subject,
                              "value": value, "unit": unit, "detail": detail});
            println!("RESULT {line}");
        };
        result("packets_lost", json!(self.lost()), "packets");
        if let Some((_, _, all)) = self.latency() {
            result("p50_latency_us", json!(all.p50_us), "us");
            result("p99_latency_us", json!(all.p99_us), "us");
        }
        if let Some(us) = self.relay_us_per_packet() {
            result("cpu_us_per_packet", json!(us), "us/packet");
        }
    }
}
