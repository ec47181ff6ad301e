//! A test-owned RTP endpoint: counts received packets by payload type and
//! SSRC, remembers where they came from (the edge's leg port, for symmetric
//! RTP) and sends tagged packets back. Waits are event-driven with deadlines.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Result};
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Marker at the start of the payload of packets sent by [`RtpObserver::send_tagged`],
/// followed by the sender's SSRC: it survives a relay that rewrites SSRCs.
pub const TAG: &[u8; 4] = b"E2E!";

/// What an observer has received so far.
#[derive(Debug, Clone, Default)]
pub struct ObsStats {
    pub total: u64,
    pub non_rtp: u64,
    pub by_pt: HashMap<u8, u64>,
    pub by_ssrc: HashMap<u32, u64>,
    /// Tagged packets by the SSRC written in their payload by the sender.
    pub tagged: HashMap<u32, u64>,
    pub sources: HashMap<SocketAddr, u64>,
    pub last_source: Option<SocketAddr>,
    /// When the last datagram arrived, and the longest silence between two
    /// since [`RtpObserver::reset_gap`].
    pub last_at: Option<std::time::Instant>,
    pub max_gap: Duration,
}

impl ObsStats {
    pub fn pt(&self, pt: u8) -> u64 {
        self.by_pt.get(&pt).copied().unwrap_or(0)
    }
    /// Packets with PCMU (0) or PCMA (8).
    pub fn g711(&self) -> u64 {
        self.pt(0) + self.pt(8)
    }
    pub fn tagged_from(&self, ssrc: u32) -> u64 {
        self.tagged.get(&ssrc).copied().unwrap_or(0)
    }
    /// Packets that carry `ssrc` in their header or tag.
    pub fn from_ssrc(&self, ssrc: u32) -> u64 {
        self.tagged_from(ssrc)
            .max(self.by_ssrc.get(&ssrc).copied().unwrap_or(0))
    }
}

pub struct RtpObserver {
    pub name: String,
    socket: Arc<UdpSocket>,
    stats: Arc<Mutex<ObsStats>>,
    changed: watch::Receiver<u64>,
    task: JoinHandle<()>,
}

impl Drop for RtpObserver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RtpObserver {
    pub async fn bind(name: &str, port: u16) -> Result<Self> {
        let socket = Arc::new(UdpSocket::bind(("127.0.0.1", port)).await?);
        let stats = Arc::new(Mutex::new(ObsStats::default()));
        let (tx, rx) = watch::channel(0u64);
        let (s2, st2) = (socket.clone(), stats.clone());
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            let mut n = 0u64;
            while let Ok((len, from)) = s2.recv_from(&mut buf).await {
                {
                    let mut st = st2.lock().unwrap();
                    record(&mut st, &buf[..len], from);
                }
                n += 1;
                let _ = tx.send(n);
            }
        });
        Ok(RtpObserver {
            name: name.to_string(),
            socket,
            stats,
            changed: rx,
            task,
        })
    }

    pub fn port(&self) -> u16 {
        self.socket.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn stats(&self) -> ObsStats {
        self.stats.lock().unwrap().clone()
    }

    /// Waits until `pred` holds on the stats, or fails after `within`.
    pub async fn wait_for(
        &self,
        what: &str,
        within: Duration,
        pred: impl Fn(&ObsStats) -> bool,
    ) -> Result<ObsStats> {
        let mut rx = self.changed.clone();
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let st = self.stats();
            if pred(&st) {
                return Ok(st);
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_)) => bail!(
                    "observer {}: receiver stopped while waiting for {what}",
                    self.name
                ),
                Err(_) => bail!(
                    "observer {}: no {what} within {within:?}; got {st:?}",
                    self.name
                ),
            }
        }
    }

    /// At least `n` PCMU/PCMA packets.
    pub async fn await_g711(&self, n: u64, within: Duration) -> Result<ObsStats> {
        self.wait_for(&format!("{n} PCMU/PCMA packets"), within, |s| s.g711() >= n)
            .await
    }

    /// At least `n` packets sent by [`RtpObserver::send_tagged`] with `ssrc`.
    pub async fn await_from(&self, ssrc: u32, n: u64, within: Duration) -> Result<ObsStats> {
        self.wait_for(&format!("{n} packets of SSRC {ssrc:#x}"), within, |s| {
            s.from_ssrc(ssrc) >= n
        })
        .await
    }

    /// Starts measuring the longest gap between datagrams afresh.
    pub fn reset_gap(&self) {
        let mut st = self.stats.lock().unwrap();
        st.max_gap = Duration::ZERO;
        st.last_at = None;
    }

    /// The address RTP last came from (the edge's port for this leg).
    pub fn last_source(&self) -> Option<SocketAddr> {
        self.stats().last_source
    }

    /// Sends `count` PCMU packets (20 ms apart, 160 bytes) with `ssrc`, each
    /// tagged in its payload, from this observer's socket to `to`.
    pub async fn send_tagged(&self, to: SocketAddr, ssrc: u32, count: u16) -> Result<()> {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let mut head = TAG.to_vec();
        head.extend_from_slice(&ssrc.to_be_bytes());
        for i in 0..count {
            tick.tick().await;
            let pkt = pcmu_packet(i, 1000, ssrc, &head, 0xFF);
            self.socket.send_to(&pkt, to).await?;
        }
        Ok(())
    }
}

impl RtpObserver {
    /// Presses `digit` as a phone does in RFC 4733 telephone-events with
    /// payload type `pt`: four packets 20 ms apart, then the end packet three
    /// times, from this observer's socket (the media latched onto it) to
    /// `to`. `ts` names the event: give each press its own.
    pub async fn send_digit(&self, to: SocketAddr, pt: u8, digit: char, ts: u32) -> Result<()> {
        use acd_media::rtp::{Header, HEADER_LEN};
        let Some(pt) = acd_media::PayloadType::new(pt) else {
            bail!("payload type {pt} out of range");
        };
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let packets = [160u16, 320, 480, 640, 800, 800, 800];
        for (i, duration) in packets.into_iter().enumerate() {
            let end = i >= 4;
            let mut hdr = [0u8; HEADER_LEN];
            Header {
                pt,
                seq: acd_media::SeqNo(5000u16.wrapping_add(ts as u16).wrapping_add(i as u16)),
                ts,
                ssrc: acd_media::Ssrc(0xD7F0_0001),
                marker: i == 0,
            }
            .write(&mut hdr);
            let mut pkt = hdr.to_vec();
            let event = acd_media::DtmfEvent {
                digit,
                end,
                duration,
                volume: 10,
            };
            let Some(body) = event.encode() else {
                bail!("{digit:?} is not a DTMF key");
            };
            pkt.extend_from_slice(&body);
            tick.tick().await;
            self.socket.send_to(&pkt, to).await?;
        }
        Ok(())
    }

    /// Sends packet `i` of a 20 ms PCMU run (sequence `1000 + i`) to every
    /// address of `to` each tick, for each `i` in `0..count` not in `skip`:
    /// a stream per destination with a known gap, as a lossy network leaves it.
    pub async fn send_with_gaps(
        &self,
        to: &[SocketAddr],
        ssrc: u32,
        count: u16,
        skip: std::ops::Range<u16>,
    ) -> Result<()> {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let mut head = TAG.to_vec();
        head.extend_from_slice(&ssrc.to_be_bytes());
        for i in 0..count {
            tick.tick().await;
            if skip.contains(&i) {
                continue;
            }
            let pkt = pcmu_packet(i, 1000, ssrc, &head, 0xFF);
            for addr in to {
                self.socket.send_to(&pkt, addr).await?;
            }
        }
        Ok(())
    }
}

fn record(st: &mut ObsStats, pkt: &[u8], from: SocketAddr) {
    let now = std::time::Instant::now();
    if let Some(last) = st.last_at {
        st.max_gap = st.max_gap.max(now - last);
    }
    st.last_at = Some(now);
    st.total += 1;
    *st.sources.entry(from).or_default() += 1;
    st.last_source = Some(from);
    // RTCP and malformed datagrams are not audio.
    let Ok(info) = acd_media::rtp::parse(pkt) else {
        st.non_rtp += 1;
        return;
    };
    *st.by_pt.entry(info.pt.get()).or_default() += 1;
    *st.by_ssrc.entry(info.ssrc.0).or_default() += 1;
    let payload = info.payload(pkt);
    if payload.len() >= 8 && &payload[..4] == TAG {
        let origin = u32::from_be_bytes([payload[4], payload[5], payload[6], payload[7]]);
        *st.tagged.entry(origin).or_default() += 1;
    }
}

/// The `i`-th of a run of 20 ms PCMU packets: marker on the first, payload
/// `head` then `pad` up to 160 bytes.
pub fn pcmu_packet(i: u16, seq0: u16, ssrc: u32, head: &[u8], pad: u8) -> Vec<u8> {
    let mut pkt = Vec::with_capacity(172);
    pkt.push(0x80);
    pkt.push(if i == 0 { 0x80 } else { 0x00 });
    pkt.extend_from_slice(&seq0.wrapping_add(i).to_be_bytes());
    pkt.extend_from_slice(&160u32.wrapping_mul(u32::from(i)).to_be_bytes());
    pkt.extend_from_slice(&ssrc.to_be_bytes());
    pkt.extend_from_slice(head);
    pkt.resize(12 + 160, pad);
    pkt
}
