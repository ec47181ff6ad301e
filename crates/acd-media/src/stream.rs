//! The one outgoing RTP stream of a call leg.
//!
//! A leg hears several sources in turn: welcome prompt, music on hold, then the bridged
//! agent. RFC 3550 §5.1 wants one SSRC with a continuous sequence and a timestamp that
//! follows the sampling clock, or receivers' jitter buffers reset and clip audio. So the
//! edge keeps one `OutboundStream` per leg for the whole call and every source (a
//! [`Player`](crate::player::Player) or the [`Relay`](crate::relay::Relay)) writes through it.

use crate::codec::Codec;
use crate::ids::{PayloadType, SeqNo, Ssrc};
use crate::rtp::{Header, RtpError, HEADER_LEN};

/// Sequence/timestamp state of one outgoing RTP stream. Serialisable as is, so a
/// hand-over to another process continues the same SSRC, sequence and timestamp.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OutboundStream {
    ssrc: Ssrc,
    seq: SeqNo,
    ts: u32,
    codec: Codec,
    /// Set by [`start_talkspurt`](Self::start_talkspurt); consumed by the next packet.
    pending_marker: bool,
    packets: u64,
    octets: u64,
}

impl OutboundStream {
    /// A new stream. The core has no randomness, so the shell supplies the random SSRC,
    /// initial sequence number and timestamp that RFC 3550 §5.1 asks for.
    #[must_use]
    pub fn new(ssrc: Ssrc, initial_seq: SeqNo, initial_ts: u32, codec: Codec) -> Self {
        Self {
            ssrc,
            seq: initial_seq,
            ts: initial_ts,
            codec,
            pending_marker: true,
            packets: 0,
            octets: 0,
        }
    }

    /// Our SSRC.
    #[must_use]
    pub fn ssrc(&self) -> Ssrc {
        self.ssrc
    }

    /// The codec whose payload type [`write_packet`](Self::write_packet) uses.
    #[must_use]
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// Change codec (re-INVITE). Sequence and timestamp carry on.
    pub fn set_codec(&mut self, codec: Codec) {
        self.codec = codec;
    }

    /// Sequence number the next packet will carry.
    #[must_use]
    pub fn next_seq(&self) -> SeqNo {
        self.seq
    }

    /// Timestamp the next packet will carry.
    #[must_use]
    pub fn next_ts(&self) -> u32 {
        self.ts
    }

    /// Packets written so far (RTCP SR sender's packet count).
    #[must_use]
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Payload octets written so far (RTCP SR sender's octet count).
    #[must_use]
    pub fn octets(&self) -> u64 {
        self.octets
    }

    /// Mark the next packet as the start of a talk-spurt (RFC 3551 §4.1), so the
    /// receiver re-syncs its playout point after a source switch or a gap.
    pub fn start_talkspurt(&mut self) {
        self.pending_marker = true;
    }

    /// Advance the timestamp over `samples` that were not sent (silence, a stall), so the
    /// timestamp keeps following the wall clock. The sequence number does not move:
    /// no packets were lost.
    pub fn skip_samples(&mut self, samples: u32) {
        self.ts = self.ts.wrapping_add(samples);
    }

    /// Advance the timestamp over a wall-clock gap in which nothing was sent (e.g.
    /// between the end of a prompt and the start of music on hold).
    pub fn skip_duration(&mut self, gap: std::time::Duration) {
        let samples = gap.as_nanos() * u128::from(crate::codec::SAMPLE_RATE) / 1_000_000_000;
        // Wrapping is what RTP timestamps do anyway; truncation keeps it panic-free.
        self.skip_samples(samples as u32);
    }

    /// Write header + `payload` into `out` with this stream's codec PT; returns the
    /// packet length. Advances seq by one and ts by the payload's sample count (160 per
    /// 20 ms of G.711).
    pub fn write_packet(
        &mut self,
        payload: &[u8],
        marker: bool,
        out: &mut [u8],
    ) -> Result<usize, RtpError> {
        let len = HEADER_LEN + payload.len();
        let have = out.len();
        let Some((hdr, body)) = out.split_first_chunk_mut::<HEADER_LEN>() else {
            return Err(RtpError::BufferTooSmall { need: len, have });
        };
        let Some(body) = body.get_mut(..payload.len()) else {
            return Err(RtpError::BufferTooSmall { need: len, have });
        };
        body.copy_from_slice(payload);
        let samples = self.codec.samples_in(payload.len());
        self.write_header(
            hdr,
            self.codec.payload_type(),
            samples,
            payload.len(),
            marker,
        );
        Ok(len)
    }

    /// Fill in a header for a payload the caller already placed after it (zero-copy
    /// path used by the player). `samples` is how far the timestamp advances.
    pub fn write_header(
        &mut self,
        hdr: &mut [u8; HEADER_LEN],
        pt: PayloadType,
        samples: u32,
        payload_len: usize,
        marker: bool,
    ) {
        Header {
            pt,
            seq: self.seq,
            ts: self.ts,
            ssrc: self.ssrc,
            marker: marker || self.pending_marker,
        }
        .write(hdr);
        self.pending_marker = false;
        self.seq = self.seq.next();
        self.ts = self.ts.wrapping_add(samples);
        self.packets += 1;
        self.octets += payload_len as u64;
    }

    /// Record a packet the relay rewrote onto this stream: moves next seq/ts forward
    /// (never back, so a late reordered packet cannot rewind the stream) and counts it.
    pub(crate) fn note_relayed(&mut self, seq: SeqNo, ts_end: u32, payload_len: usize) {
        if !self.seq.is_after(seq) {
            self.seq = seq.next();
        }
        if crate::ids::ts_is_after(ts_end, self.ts) {
            self.ts = ts_end;
        }
        self.pending_marker = false;
        self.packets += 1;
        self.octets += payload_len as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::parse;

    #[test]
    fn writes_and_advances() {
        let mut s = OutboundStream::new(Ssrc(42), SeqNo(100), 1000, Codec::Pcma);
        let mut buf = [0u8; 200];
        let n = s.write_packet(&[0xd5; 160], false, &mut buf).unwrap();
        assert_eq!(n, 172);
        let i = parse(&buf[..n]).unwrap();
        assert_eq!(
            (i.ssrc, i.seq, i.ts, i.pt.get()),
            (Ssrc(42), SeqNo(100), 1000, 8)
        );
        assert!(i.marker, "first packet of a stream starts a talk-spurt");
        let n = s.write_packet(&[0xd5; 160], false, &mut buf).unwrap();
        let i = parse(&buf[..n]).unwrap();
        assert_eq!((i.seq, i.ts, i.marker), (SeqNo(101), 1160, false));
        assert_eq!((s.packets(), s.octets()), (2, 320));
    }

    #[test]
    fn seq_and_ts_wrap() {
        let mut s = OutboundStream::new(Ssrc(1), SeqNo(65534), u32::MAX - 200, Codec::Pcmu);
        let mut buf = [0u8; 172];
        let mut seqs = Vec::new();
        let mut tss = Vec::new();
        for _ in 0..4 {
            let n = s.write_packet(&[0xff; 160], false, &mut buf).unwrap();
            let i = parse(&buf[..n]).unwrap();
            seqs.push(i.seq.0);
            tss.push(i.ts);
        }
        assert_eq!(seqs, [65534, 65535, 0, 1]);
        assert_eq!(tss, [u32::MAX - 200, u32::MAX - 40, 119, 279]);
    }

    #[test]
    fn marker_on_new_talkspurt_and_skip() {
        let mut s = OutboundStream::new(Ssrc(1), SeqNo(0), 0, Codec::Pcmu);
        let mut buf = [0u8; 172];
        s.write_packet(&[0xff; 160], false, &mut buf).unwrap();
        s.skip_samples(800);
        s.start_talkspurt();
        let n = s.write_packet(&[0xff; 160], false, &mut buf).unwrap();
        let i = parse(&buf[..n]).unwrap();
        assert_eq!((i.seq, i.ts, i.marker), (SeqNo(1), 960, true));
        let n = s.write_packet(&[0xff; 160], true, &mut buf).unwrap();
        assert!(parse(&buf[..n]).unwrap().marker, "explicit marker honoured");
    }

    #[test]
    fn small_buffer_is_an_error() {
        let mut s = OutboundStream::new(Ssrc(1), SeqNo(0), 0, Codec::Pcmu);
        let mut buf = [0u8; 100];
        assert_eq!(
            s.write_packet(&[0; 160], false, &mut buf),
            Err(RtpError::BufferTooSmall {
                need: 172,
                have: 100
            })
        );
        assert_eq!(
            s.write_packet(&[], false, &mut buf[..5]),
            Err(RtpError::BufferTooSmall { need: 12, have: 5 })
        );
        assert_eq!(s.next_seq(), SeqNo(0), "failed write does not advance");
    }
}
