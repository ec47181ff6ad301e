//! Bounded symmetric RTP ("latching") for peers behind NAT.
//!
//! A phone behind NAT writes its private address into SDP, but its packets arrive from
//! the NAT's public address; answering to where it sends from (RFC 4961 symmetric RTP)
//! is the only way to reach it. Latching to *any* sender, as "last sender wins" does,
//! lets a stray or spoofed stream take over a call's audio (the "RTP Bleed" flaw). So a
//! leg latches only within a learning window after each (re)negotiation, the first
//! [`LatchConfig::window_packets`] packets or [`LatchConfig::window`], whichever ends
//! first, and only to the first source seen in it. The SDP address is always accepted:
//! the peer named it, so it is not foreign.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::ids::Ssrc;

/// Size of the learning window after a (re)negotiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LatchConfig {
    /// Packets (from any source) after which the window closes.
    pub window_packets: u32,
    /// Time after the (re)negotiation at which the window closes.
    pub window: Duration,
}

impl Default for LatchConfig {
    fn default() -> Self {
        Self {
            window_packets: 5,
            window: Duration::from_secs(2),
        }
    }
}

/// What [`Latch::on_packet`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Verdict {
    /// From the SDP address or the latched source.
    Accept,
    /// First source in the learning window: now latched; replies go there.
    Latched,
    /// From another address: drop it (metric `kind="foreign_source"`).
    Foreign,
}

impl Verdict {
    /// Whether the packet may be used.
    #[must_use]
    pub fn accepted(self) -> bool {
        !matches!(self, Verdict::Foreign)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    until: Instant,
    packets_left: u32,
}

/// Latch state of one leg's RTP (or RTCP) flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Latch {
    cfg: LatchConfig,
    /// Address from SDP; `None` for a `c=0.0.0.0` hold or a leg not negotiated yet.
    expected: Option<SocketAddr>,
    latched: Option<(SocketAddr, Ssrc)>,
    window: Option<Window>,
    foreign: u64,
}

impl Latch {
    /// A latch for a peer whose SDP names `expected`, learning from `now`.
    #[must_use]
    pub fn new(cfg: LatchConfig, expected: SocketAddr, now: Instant) -> Self {
        let mut l = Self {
            cfg,
            expected: None,
            latched: None,
            window: None,
            foreign: 0,
        };
        l.renegotiated(expected, now);
        l
    }

    /// New SDP from the peer (re-INVITE / UPDATE): expect `remote` and learn again, as
    /// the peer may have moved. The old latch is forgotten: until a packet latches, we
    /// send to the new SDP address.
    pub fn renegotiated(&mut self, remote: SocketAddr, now: Instant) {
        self.expected = (!remote.ip().is_unspecified() && remote.port() != 0).then_some(remote);
        self.latched = None;
        self.window = Some(Window {
            until: now + self.cfg.window,
            packets_left: self.cfg.window_packets,
        });
    }

    /// Judge a valid packet with SSRC `ssrc` received from `from` at `now`.
    pub fn on_packet(&mut self, from: SocketAddr, ssrc: Ssrc, now: Instant) -> Verdict {
        let learning = self.take_window_slot(now);
        if self.latched.is_some_and(|(a, _)| a == from) {
            return Verdict::Accept;
        }
        if learning && self.latched.is_none() {
            self.latched = Some((from, ssrc));
            return Verdict::Latched;
        }
        if self.expected == Some(from) {
            return Verdict::Accept;
        }
        self.foreign += 1;
        Verdict::Foreign
    }

    /// Counts the packet against the window; whether the window was still open for it.
    fn take_window_slot(&mut self, now: Instant) -> bool {
        let Some(w) = self.window.as_mut() else {
            return false;
        };
        if now >= w.until || w.packets_left == 0 {
            self.window = None;
            return false;
        }
        w.packets_left -= 1;
        true
    }

    /// Where to send to this peer: the latched source, else the SDP address.
    #[must_use]
    pub fn peer(&self) -> Option<SocketAddr> {
        self.latched.map(|(a, _)| a).or(self.expected)
    }

    /// The address the peer's SDP named.
    #[must_use]
    pub fn expected(&self) -> Option<SocketAddr> {
        self.expected
    }

    /// The latched source and the SSRC it first sent with.
    #[must_use]
    pub fn latched(&self) -> Option<(SocketAddr, Ssrc)> {
        self.latched
    }

    /// Whether the learning window is open at `now`.
    #[must_use]
    pub fn is_learning(&self, now: Instant) -> bool {
        self.window
            .is_some_and(|w| now < w.until && w.packets_left > 0)
    }

    /// Packets dropped as foreign so far.
    #[must_use]
    pub fn foreign(&self) -> u64 {
        self.foreign
    }

    /// Serialisable state; the window's end becomes a duration from `now`.
    #[must_use]
    pub fn snapshot(&self, now: Instant) -> LatchSnapshot {
        let window = self
            .window
            .filter(|w| now < w.until && w.packets_left > 0)
            .map(|w| (w.until - now, w.packets_left));
        LatchSnapshot {
            cfg: self.cfg,
            expected: self.expected,
            latched: self.latched,
            window,
            foreign: self.foreign,
        }
    }

    /// The latch a [`snapshot`](Self::snapshot) describes, its window counted from `now`.
    #[must_use]
    pub fn restore(s: &LatchSnapshot, now: Instant) -> Self {
        Self {
            cfg: s.cfg,
            expected: s.expected,
            latched: s.latched,
            window: s.window.map(|(left, packets_left)| Window {
                until: now.checked_add(left).unwrap_or(now),
                packets_left,
            }),
            foreign: s.foreign,
        }
    }
}

/// [`Latch`] state for a hand-over.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LatchSnapshot {
    pub cfg: LatchConfig,
    pub expected: Option<SocketAddr>,
    pub latched: Option<(SocketAddr, Ssrc)>,
    /// Time and packets left in the learning window, if it is open.
    pub window: Option<(Duration, u32)>,
    pub foreign: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    const SDP: &str = "192.168.1.20:4000";
    const NAT: &str = "203.0.113.7:61000";
    const EVIL: &str = "198.51.100.66:5004";

    #[test]
    fn latches_to_first_source_then_refuses_a_spoofed_stream() {
        let t0 = Instant::now();
        let mut l = Latch::new(LatchConfig::default(), addr(SDP), t0);
        assert_eq!(
            l.peer(),
            Some(addr(SDP)),
            "SDP address until something latches"
        );
        assert_eq!(l.on_packet(addr(NAT), Ssrc(1), t0), Verdict::Latched);
        assert_eq!(l.peer(), Some(addr(NAT)));
        assert_eq!(l.latched(), Some((addr(NAT), Ssrc(1))));
        // Within the window but after latching: another source does not steal it.
        assert_eq!(l.on_packet(addr(EVIL), Ssrc(2), t0), Verdict::Foreign);
        // Long after: the spoofed stream is still refused, the real one still flows.
        let later = t0 + Duration::from_secs(30);
        for _ in 0..100 {
            assert_eq!(l.on_packet(addr(EVIL), Ssrc(1), later), Verdict::Foreign);
        }
        assert_eq!(l.on_packet(addr(NAT), Ssrc(1), later), Verdict::Accept);
        assert_eq!(l.peer(), Some(addr(NAT)));
        assert_eq!(l.foreign(), 101);
    }

    #[test]
    fn sdp_address_is_always_accepted() {
        let t0 = Instant::now();
        let mut l = Latch::new(LatchConfig::default(), addr(SDP), t0);
        assert_eq!(l.on_packet(addr(NAT), Ssrc(1), t0), Verdict::Latched);
        let later = t0 + Duration::from_secs(10);
        assert_eq!(l.on_packet(addr(SDP), Ssrc(1), later), Verdict::Accept);
        assert_eq!(
            l.peer(),
            Some(addr(NAT)),
            "accepting does not move the latch"
        );
    }

    #[test]
    fn window_closes_after_packets_or_time() {
        let t0 = Instant::now();
        let cfg = LatchConfig {
            window_packets: 3,
            window: Duration::from_secs(2),
        };
        // Three packets from the SDP address use up the window (they latch it).
        let mut l = Latch::new(cfg, addr(SDP), t0);
        for _ in 0..3 {
            assert!(l.on_packet(addr(SDP), Ssrc(1), t0).accepted());
        }
        assert!(!l.is_learning(t0));
        assert_eq!(l.on_packet(addr(NAT), Ssrc(1), t0), Verdict::Foreign);
        // Nothing within two seconds: no latch afterwards, the SDP address stays.
        let mut l = Latch::new(cfg, addr(SDP), t0);
        let late = t0 + Duration::from_secs(2);
        assert_eq!(l.on_packet(addr(NAT), Ssrc(1), late), Verdict::Foreign);
        assert_eq!(l.peer(), Some(addr(SDP)));
    }

    #[test]
    fn renegotiation_reopens_the_window() {
        let t0 = Instant::now();
        let mut l = Latch::new(LatchConfig::default(), addr(SDP), t0);
        assert_eq!(l.on_packet(addr(NAT), Ssrc(1), t0), Verdict::Latched);
        let t1 = t0 + Duration::from_secs(60);
        let moved = addr("203.0.113.7:62000");
        assert_eq!(l.on_packet(moved, Ssrc(9), t1), Verdict::Foreign);
        l.renegotiated(addr("192.168.1.20:4100"), t1);
        assert_eq!(l.peer(), Some(addr("192.168.1.20:4100")));
        assert_eq!(l.on_packet(moved, Ssrc(9), t1), Verdict::Latched);
        assert_eq!(l.peer(), Some(moved));
        assert_eq!(
            l.on_packet(addr(NAT), Ssrc(1), t1),
            Verdict::Foreign,
            "old latch gone"
        );
    }

    #[test]
    fn hold_address_is_not_expected() {
        let t0 = Instant::now();
        let l = Latch::new(LatchConfig::default(), addr("0.0.0.0:4000"), t0);
        assert_eq!(l.peer(), None);
    }

    #[test]
    fn snapshot_round_trip_keeps_window_relative() {
        let t0 = Instant::now();
        let mut l = Latch::new(LatchConfig::default(), addr(SDP), t0);
        assert_eq!(l.on_packet(addr(SDP), Ssrc(5), t0), Verdict::Latched);
        let s = l.snapshot(t0 + Duration::from_millis(500));
        assert_eq!(s.window, Some((Duration::from_millis(1500), 4)));
        let json = serde_json::to_string(&s).unwrap();
        let back: LatchSnapshot = serde_json::from_str(&json).unwrap();
        let t1 = t0 + Duration::from_secs(1000);
        let r = Latch::restore(&back, t1);
        assert!(r.is_learning(t1 + Duration::from_millis(1499)));
        assert!(!r.is_learning(t1 + Duration::from_millis(1500)));
        assert_eq!(r.latched(), Some((addr(SDP), Ssrc(5))));
    }
}
