//! Bridging the RTP of two call legs, rewriting headers in place.
//!
//! Each leg has one [`OutboundStream`] for the whole call, so what the far end hears
//! after a prompt or music on hold must continue that stream. Rather than renumbering
//! packets one by one, the relay anchors an offset on the first packet after any switch
//! (`out = in + offset` for sequence and timestamp) and keeps it: loss, reordering and
//! the sender's silence gaps stay visible to the receiver exactly as they were, while
//! SSRC, sequence and timestamp line up with what the leg already heard. Payloads are
//! only touched when the legs negotiated different G.711 laws (transcoded in place).

use crate::codec::Codec;
use crate::ids::{PayloadType, SeqNo, Ssrc};
use crate::rtp::{self, rewrite, RtpError};
use crate::stream::OutboundStream;

/// The two sides of a bridge. By convention `A` is the caller and `B` the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Leg {
    A,
    B,
}

impl Leg {
    /// The opposite leg: where packets from `self` are sent.
    #[must_use]
    pub const fn other(self) -> Leg {
        match self {
            Leg::A => Leg::B,
            Leg::B => Leg::A,
        }
    }

    const fn index(self) -> usize {
        match self {
            Leg::A => 0,
            Leg::B => 1,
        }
    }
}

/// Per-direction traffic counters, exported as metrics by the shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct RelayCounters {
    pub packets_in: u64,
    pub bytes_in: u64,
    pub packets_out: u64,
    pub bytes_out: u64,
    /// Datagrams rejected as not RTP (including RTCP on a muxed port).
    pub dropped: u64,
    /// Packets missing from the sender's sequence numbers (gaps, less the late
    /// arrivals that filled one): what the relay did not get to pass on.
    #[serde(default)]
    pub lost: u64,
}

/// A jump further than this is a restarted sender, not loss (RFC 3550 App. A.1's
/// MAX_DROPOUT).
const MAX_DROPOUT: i16 = 3000;

/// Where an inbound stream's sequence numbers are, for loss counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct SeqTrack {
    ssrc: Ssrc,
    highest: SeqNo,
}

impl SeqTrack {
    /// Counts the packets skipped before `seq` (or one found late) into `lost`.
    fn observe(track: &mut Option<SeqTrack>, ssrc: Ssrc, seq: SeqNo, lost: &mut u64) {
        let Some(t) = track.as_mut().filter(|t| t.ssrc == ssrc) else {
            *track = Some(SeqTrack { ssrc, highest: seq });
            return;
        };
        match seq.diff(t.highest) {
            d if d > 0 && d <= MAX_DROPOUT => {
                *lost += u64::from(d.unsigned_abs() - 1);
                t.highest = seq;
            }
            // A late packet fills a gap counted before (a duplicate is rare
            // enough not to tell apart).
            d if d < 0 && d > -MAX_DROPOUT => *lost = lost.saturating_sub(1),
            0 => {}
            // The sender restarted its numbering: follow it.
            _ => t.highest = seq,
        }
    }
}

/// Offsets from one inbound SSRC onto the outbound stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Mapping {
    in_ssrc: Ssrc,
    seq_offset: u16,
    ts_offset: u32,
    /// `OutboundStream::packets()` after our last write; anything else means another
    /// source (a player) wrote in between and we must re-anchor.
    stream_packets: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Direction {
    map: Option<Mapping>,
    /// Telephone-event PT as received → as the other leg negotiated it.
    telephone_event: Option<(PayloadType, PayloadType)>,
    counters: RelayCounters,
    #[serde(default)]
    seq: Option<SeqTrack>,
}

/// Header rewriting for a bridged pair of legs. Holds no buffers and no streams: the
/// shell passes the destination leg's stream with each packet, because the same stream
/// is also written by players before and after the bridge.
/// Serialisable as is (no deadlines, no buffers), for a live hand-over.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Relay {
    dirs: [Direction; 2],
}

impl Relay {
    /// A relay with nothing mapped yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Map RFC 4733 telephone-event packets from `from` (received with `in_pt`) to the
    /// payload type the other leg negotiated (`out_pt`). Without this, non-G.711 PTs
    /// pass through unchanged.
    pub fn set_telephone_event(&mut self, from: Leg, in_pt: PayloadType, out_pt: PayloadType) {
        self.dirs[from.index()].telephone_event = Some((in_pt, out_pt));
    }

    /// Counters for packets received from `from`.
    #[must_use]
    pub fn counters(&self, from: Leg) -> RelayCounters {
        self.dirs[from.index()].counters
    }

    /// Forget the mapping for packets from `from`, so the next one re-anchors (e.g. after
    /// a re-INVITE changed the sender).
    pub fn reset(&mut self, from: Leg) {
        self.dirs[from.index()].map = None;
    }

    /// Rewrite `packet`, received from leg `from`, in place so it continues `to` (the
    /// other leg's outbound stream), and return the leg to send it to. On error the
    /// packet is unchanged and should be dropped.
    pub fn forward(
        &mut self,
        from: Leg,
        packet: &mut [u8],
        to: &mut OutboundStream,
    ) -> Result<Leg, RtpError> {
        let dir = &mut self.dirs[from.index()];
        dir.counters.packets_in += 1;
        dir.counters.bytes_in += packet.len() as u64;
        let info = match rtp::parse(packet) {
            Ok(i) => i,
            Err(e) => {
                dir.counters.dropped += 1;
                return Err(e);
            }
        };

        SeqTrack::observe(&mut dir.seq, info.ssrc, info.seq, &mut dir.counters.lost);
        let map = match dir.map {
            Some(m) if m.in_ssrc == info.ssrc && m.stream_packets == to.packets() => m,
            _ => Mapping {
                in_ssrc: info.ssrc,
                seq_offset: to.next_seq().0.wrapping_sub(info.seq.0),
                ts_offset: to.next_ts().wrapping_sub(info.ts),
                stream_packets: to.packets(),
            },
        };
        // A new anchor is a new talk-spurt for the receiver (RFC 3551 §4.1).
        let anchored = dir
            .map
            .is_none_or(|m| m.stream_packets != map.stream_packets || m.in_ssrc != map.in_ssrc);

        let out_seq = SeqNo(info.seq.0.wrapping_add(map.seq_offset));
        let out_ts = info.ts.wrapping_add(map.ts_offset);
        let payload = packet
            .get_mut(info.payload_offset..info.payload_end)
            .unwrap_or(&mut []);
        let (out_pt, samples) = match Codec::from_payload_type(info.pt.get()) {
            Some(codec) => {
                codec.transcode_in_place(to.codec(), payload);
                (to.codec().payload_type(), codec.samples_in(payload.len()))
            }
            None => match dir.telephone_event {
                Some((i, o)) if i == info.pt => (o, 0),
                _ => (info.pt, 0),
            },
        };

        rewrite::set_seq(packet, out_seq);
        rewrite::set_ts(packet, out_ts);
        rewrite::set_ssrc(packet, to.ssrc());
        rewrite::set_marker_pt(packet, info.marker || anchored, out_pt);
        to.note_relayed(out_seq, out_ts.wrapping_add(samples), info.payload_len());

        dir.map = Some(Mapping {
            stream_packets: to.packets(),
            ..map
        });
        dir.counters.packets_out += 1;
        dir.counters.bytes_out += packet.len() as u64;
        Ok(from.other())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::player::{Player, PACKET_LEN};
    use crate::rtp::{parse, Header, RtpInfo, HEADER_LEN};
    use crate::wav::Prompt;

    fn inbound(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
        let mut hdr = [0u8; HEADER_LEN];
        let pt = PayloadType::new(pt).unwrap();
        Header {
            pt,
            seq: SeqNo(seq),
            ts,
            ssrc: Ssrc(ssrc),
            marker: false,
        }
        .write(&mut hdr);
        let mut v = hdr.to_vec();
        v.extend_from_slice(payload);
        v
    }

    fn fwd(
        r: &mut Relay,
        from: Leg,
        mut p: Vec<u8>,
        to: &mut OutboundStream,
    ) -> (RtpInfo, Vec<u8>) {
        assert_eq!(r.forward(from, &mut p, to), Ok(from.other()));
        (parse(&p).unwrap(), p)
    }

    fn play(p: &mut Player, s: &mut OutboundStream, from: Instant, frames: u32) -> Vec<RtpInfo> {
        let mut buf = [0u8; PACKET_LEN];
        let mut out = Vec::new();
        for k in 0..frames {
            while let Some(n) = p.poll_packet(from + Duration::from_millis(20) * k, s, &mut buf) {
                out.push(parse(&buf[..n]).unwrap());
            }
        }
        out
    }

    #[test]
    fn continuity_after_prompt_then_hold_and_resume() {
        let t0 = Instant::now();
        let prompt = Arc::new(Prompt::from_samples(vec![1000; 800]));
        // Caller leg's outbound stream: welcome prompt first.
        let mut caller = OutboundStream::new(Ssrc(0xca11), SeqNo(65533), 1_000, Codec::Pcmu);
        let mut welcome = Player::new(prompt.clone(), Codec::Pcmu, false, t0);
        let pre = play(&mut welcome, &mut caller, t0, 5);
        assert_eq!(pre.len(), 5);
        assert_eq!(pre[4].seq, SeqNo(1));

        // Bridged: agent audio (leg B) relayed onto the caller's stream.
        let mut r = Relay::new();
        let agent_ssrc = 0xa9e7;
        let (i, _) = fwd(
            &mut r,
            Leg::B,
            inbound(0, 40_000, 7_777_000, agent_ssrc, &[0xff; 160]),
            &mut caller,
        );
        assert_eq!(
            (i.ssrc, i.seq, i.ts, i.marker),
            (Ssrc(0xca11), SeqNo(2), 1_800, true)
        );
        let (i, _) = fwd(
            &mut r,
            Leg::B,
            inbound(0, 40_001, 7_777_160, agent_ssrc, &[0xff; 160]),
            &mut caller,
        );
        assert_eq!((i.seq, i.ts, i.marker), (SeqNo(3), 1_960, false));
        // Loss of 40_002 stays a gap; a late reordered packet keeps its place.
        let (i, _) = fwd(
            &mut r,
            Leg::B,
            inbound(0, 40_003, 7_777_480, agent_ssrc, &[0xff; 160]),
            &mut caller,
        );
        assert_eq!((i.seq, i.ts), (SeqNo(5), 2_280));
        let (i, _) = fwd(
            &mut r,
            Leg::B,
            inbound(0, 40_002, 7_777_320, agent_ssrc, &[0xff; 160]),
            &mut caller,
        );
        assert_eq!((i.seq, i.ts), (SeqNo(4), 2_120));
        assert_eq!(
            caller.next_seq(),
            SeqNo(6),
            "late packet does not rewind the stream"
        );
        assert_eq!(caller.next_ts(), 2_440);

        // Agent puts the caller on hold: MOH continues the same stream.
        let mut moh = Player::new(prompt, Codec::Pcmu, true, t0);
        let held = play(&mut moh, &mut caller, t0, 2);
        assert_eq!(
            (held[0].seq, held[0].ts, held[0].marker),
            (SeqNo(6), 2_440, true)
        );
        assert_eq!(held[1].seq, SeqNo(7));

        // Resume: the relay sees the stream moved on and re-anchors.
        let (i, _) = fwd(
            &mut r,
            Leg::B,
            inbound(0, 40_100, 7_800_000, agent_ssrc, &[0xff; 160]),
            &mut caller,
        );
        assert_eq!(
            (i.ssrc, i.seq, i.ts, i.marker),
            (Ssrc(0xca11), SeqNo(8), 2_760, true)
        );
        let (i, _) = fwd(
            &mut r,
            Leg::B,
            inbound(0, 40_101, 7_800_160, agent_ssrc, &[0xff; 160]),
            &mut caller,
        );
        assert_eq!((i.seq, i.ts, i.marker), (SeqNo(9), 2_920, false));

        // Agent phone restarts its stream with a new SSRC: re-anchor again.
        let (i, _) = fwd(
            &mut r,
            Leg::B,
            inbound(0, 5, 42, 0xbeef, &[0xff; 160]),
            &mut caller,
        );
        assert_eq!((i.seq, i.ts, i.marker), (SeqNo(10), 3_080, true));

        let c = r.counters(Leg::B);
        assert_eq!((c.packets_in, c.packets_out, c.dropped), (7, 7, 0));
        assert_eq!((c.bytes_in, c.bytes_out), (7 * 172, 7 * 172));
        assert_eq!(r.counters(Leg::A), RelayCounters::default());
    }

    #[test]
    fn transcodes_between_laws_and_maps_telephone_event() {
        let mut agent = OutboundStream::new(Ssrc(9), SeqNo(0), 0, Codec::Pcma);
        let mut r = Relay::new();
        r.set_telephone_event(
            Leg::A,
            PayloadType::new(101).unwrap(),
            PayloadType::new(96).unwrap(),
        );
        let pcmu = [Codec::Pcmu.encode_sample(1000); 160];
        let (i, p) = fwd(&mut r, Leg::A, inbound(0, 10, 100, 1, &pcmu), &mut agent);
        assert_eq!(i.pt, PayloadType::PCMA);
        assert!(i
            .payload(&p)
            .iter()
            .all(|&b| b == Codec::Pcma.encode_sample(988)));
        let (i, p) = fwd(
            &mut r,
            Leg::A,
            inbound(101, 11, 260, 1, &[5, 0x0a, 0, 160]),
            &mut agent,
        );
        assert_eq!((i.pt.get(), i.seq, i.ts), (96, SeqNo(1), 160));
        assert_eq!(i.payload(&p), &[5, 0x0a, 0, 160], "event payload untouched");
        assert_eq!(
            agent.next_ts(),
            160,
            "an event does not advance the audio clock"
        );
        let (i, _) = fwd(&mut r, Leg::A, inbound(13, 12, 260, 1, &[40]), &mut agent);
        assert_eq!(i.pt.get(), 13, "comfort noise passes through");
    }

    #[test]
    fn non_rtp_is_dropped_unchanged() {
        let mut s = OutboundStream::new(Ssrc(9), SeqNo(0), 0, Codec::Pcmu);
        let mut r = Relay::new();
        let mut rtcp = [0x81, 201, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0];
        let before = rtcp;
        assert_eq!(
            r.forward(Leg::A, &mut rtcp, &mut s),
            Err(RtpError::Rtcp(201))
        );
        assert_eq!(rtcp, before);
        assert!(r.forward(Leg::A, &mut [0x80, 0], &mut s).is_err());
        let c = r.counters(Leg::A);
        assert_eq!(
            (c.packets_in, c.packets_out, c.dropped, c.bytes_in),
            (2, 0, 2, 14)
        );
        assert_eq!(s.packets(), 0);
    }

    #[test]
    fn gaps_in_the_senders_numbers_count_as_lost() {
        let mut s = OutboundStream::new(Ssrc(9), SeqNo(0), 0, Codec::Pcmu);
        let mut r = Relay::new();
        let mut send = |r: &mut Relay, ssrc: u32, seq: u16| {
            fwd(
                r,
                Leg::A,
                inbound(0, seq, u32::from(seq) * 160, ssrc, &[0xff; 160]),
                &mut s,
            );
        };
        // 65534, 65535, (0, 1 lost), 2: across the wrap.
        for seq in [65534, 65535, 2] {
            send(&mut r, 7, seq);
        }
        assert_eq!(r.counters(Leg::A).lost, 2);
        // 1 arrives late: one fewer lost; a duplicate of 2 changes nothing.
        send(&mut r, 7, 1);
        send(&mut r, 7, 2);
        assert_eq!(r.counters(Leg::A).lost, 1);
        // A new sender, and a jump beyond MAX_DROPOUT, start over.
        send(&mut r, 8, 40_000);
        send(&mut r, 8, 50_000);
        send(&mut r, 8, 50_001);
        assert_eq!(r.counters(Leg::A).lost, 1);
        assert_eq!(r.counters(Leg::B).lost, 0);
    }
}
