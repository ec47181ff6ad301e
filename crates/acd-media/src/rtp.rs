//! RTP header access over borrowed bytes (RFC 3550 §5.1), built on `rtp-rs`.
//!
//! [`parse`] validates once and returns a small `Copy` summary holding offsets rather
//! than a borrow, so the relay can parse a packet and then rewrite it in place. Writers
//! here touch only the fixed 12-byte header.

use rtp_rs::{RtpReader, RtpReaderError};
use thiserror::Error;

use crate::ids::{PayloadType, SeqNo, Ssrc};

/// Length of the fixed RTP header (no CSRCs, no extension).
pub const HEADER_LEN: usize = 12;

/// Why a datagram is not usable RTP. All of these are the peer's fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum RtpError {
    #[error("packet of {0} bytes is shorter than the 12-byte RTP header")]
    TooShort(usize),
    #[error("RTP version {0}, need 2")]
    BadVersion(u8),
    #[error("RTP header needs {need} bytes but packet has {have}")]
    HeaderTruncated { need: usize, have: usize },
    #[error("RTP padding length {0} is invalid")]
    BadPadding(u8),
    #[error("packet is RTCP (packet type {0}), not RTP")]
    Rtcp(u8),
    #[error("output buffer of {have} bytes too small, need {need}")]
    BufferTooSmall { need: usize, have: usize },
}

impl From<RtpReaderError> for RtpError {
    fn from(e: RtpReaderError) -> Self {
        match e {
            RtpReaderError::BufferTooShort(n) => RtpError::TooShort(n),
            RtpReaderError::UnsupportedVersion(v) => RtpError::BadVersion(v),
            RtpReaderError::HeadersTruncated {
                header_len,
                buffer_len,
            } => RtpError::HeaderTruncated {
                need: header_len,
                have: buffer_len,
            },
            RtpReaderError::PaddingLengthInvalid(p) => RtpError::BadPadding(p),
        }
    }
}

/// The header fields acd needs, plus where the payload sits in the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpInfo {
    pub pt: PayloadType,
    pub seq: SeqNo,
    pub ts: u32,
    pub ssrc: Ssrc,
    pub marker: bool,
    /// Start of the payload (after CSRCs and header extension).
    pub payload_offset: usize,
    /// End of the payload (before any padding).
    pub payload_end: usize,
}

impl RtpInfo {
    /// The payload within the buffer this was parsed from (empty if `buf` is another one).
    #[must_use]
    pub fn payload<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        buf.get(self.payload_offset..self.payload_end)
            .unwrap_or(&[])
    }

    /// Payload length in bytes, excluding padding.
    #[must_use]
    pub fn payload_len(&self) -> usize {
        self.payload_end - self.payload_offset
    }
}

/// RTCP packet types SR..APP (200–204) land on PT 72–76 when read as RTP; RFC 5761 §4
/// reserves that range so a muxed port can tell them apart.
fn is_rtcp_pt(second_byte: u8) -> bool {
    (72..=76).contains(&(second_byte & 0x7f))
}

/// Quick demultiplexing test: version 2, at least a header, and not RTCP. Does not check
/// CSRC/extension/padding lengths; use [`parse`] for that.
#[must_use]
pub fn is_rtp(buf: &[u8]) -> bool {
    buf.len() >= HEADER_LEN && buf[0] >> 6 == 2 && !is_rtcp_pt(buf[1])
}

/// Parse and validate an RTP packet without copying it.
pub fn parse(buf: &[u8]) -> Result<RtpInfo, RtpError> {
    if buf.len() >= 2 && buf[0] >> 6 == 2 && is_rtcp_pt(buf[1]) {
        return Err(RtpError::Rtcp(buf[1]));
    }
    let r = RtpReader::new(buf)?;
    let payload_offset = r.payload_offset();
    let payload_end = payload_offset + r.payload().len();
    Ok(RtpInfo {
        // payload_type() masks to 7 bits, so `new` cannot fail; the fallback is unreachable.
        pt: PayloadType::new(r.payload_type()).unwrap_or(PayloadType::PCMU),
        seq: SeqNo(r.sequence_number().into()),
        ts: r.timestamp(),
        ssrc: Ssrc(r.ssrc()),
        marker: r.mark(),
        payload_offset,
        payload_end,
    })
}

/// Fields of a fixed header to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub pt: PayloadType,
    pub seq: SeqNo,
    pub ts: u32,
    pub ssrc: Ssrc,
    pub marker: bool,
}

impl Header {
    /// Write a 12-byte header: V=2, no padding, no extension, no CSRCs.
    pub fn write(&self, out: &mut [u8; HEADER_LEN]) {
        out[0] = 0x80;
        out[1] = (u8::from(self.marker) << 7) | self.pt.get();
        out[2..4].copy_from_slice(&self.seq.0.to_be_bytes());
        out[4..8].copy_from_slice(&self.ts.to_be_bytes());
        out[8..12].copy_from_slice(&self.ssrc.0.to_be_bytes());
    }
}

/// In-place rewrites of a packet that already passed [`parse`] (so is ≥ 12 bytes).
/// Each is a no-op on a shorter buffer rather than a panic.
pub mod rewrite {
    use super::*;

    /// Overwrite the sequence number.
    pub fn set_seq(buf: &mut [u8], seq: SeqNo) {
        if let Some(b) = buf.get_mut(2..4) {
            b.copy_from_slice(&seq.0.to_be_bytes());
        }
    }

    /// Overwrite the timestamp.
    pub fn set_ts(buf: &mut [u8], ts: u32) {
        if let Some(b) = buf.get_mut(4..8) {
            b.copy_from_slice(&ts.to_be_bytes());
        }
    }

    /// Overwrite the SSRC.
    pub fn set_ssrc(buf: &mut [u8], ssrc: Ssrc) {
        if let Some(b) = buf.get_mut(8..12) {
            b.copy_from_slice(&ssrc.0.to_be_bytes());
        }
    }

    /// Overwrite marker bit and payload type together (they share a byte).
    pub fn set_marker_pt(buf: &mut [u8], marker: bool, pt: PayloadType) {
        if let Some(b) = buf.get_mut(1) {
            *b = (u8::from(marker) << 7) | pt.get();
        }
    }
}

/// One RFC 4733 telephone-event payload (§2.3): a DTMF key and its progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfEvent {
    /// `0`–`9`, `*`, `#`, `A`–`D`.
    pub digit: char,
    /// E bit: this is (a retransmission of) the final packet of the event.
    pub end: bool,
    /// Duration so far, in timestamp units (1/8000 s).
    pub duration: u16,
    /// Power level as −dBm0, 0..=63.
    pub volume: u8,
}

/// Event codes 0–15 of RFC 4733 §3.2.
const DTMF_DIGITS: [char; 16] = [
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '#', 'A', 'B', 'C', 'D',
];

/// Parse a telephone-event payload. `None` for short payloads and non-DTMF events
/// (flash, tones), which acd does not act on.
#[must_use]
pub fn parse_dtmf(payload: &[u8]) -> Option<DtmfEvent> {
    let [event, flags, d0, d1, ..] = *payload else {
        return None;
    };
    let digit = *DTMF_DIGITS.get(usize::from(event))?;
    Some(DtmfEvent {
        digit,
        end: flags & 0x80 != 0,
        duration: u16::from_be_bytes([d0, d1]),
        volume: flags & 0x3f,
    })
}

impl DtmfEvent {
    /// Encode as a 4-byte telephone-event payload; `None` if `digit` is not DTMF.
    #[must_use]
    pub fn encode(&self) -> Option<[u8; 4]> {
        let code = DTMF_DIGITS
            .iter()
            .position(|&d| d == self.digit.to_ascii_uppercase())?;
        let d = self.duration.to_be_bytes();
        Some([
            code as u8,
            (u8::from(self.end) << 7) | (self.volume & 0x3f),
            d[0],
            d[1],
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(payload: &[u8]) -> Vec<u8> {
        let mut hdr = [0u8; HEADER_LEN];
        Header {
            pt: PayloadType::PCMA,
            seq: SeqNo(0xfffe),
            ts: 0xdead_beef,
            ssrc: Ssrc(0x1234_5678),
            marker: true,
        }
        .write(&mut hdr);
        let mut v = hdr.to_vec();
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn header_round_trip() {
        let p = packet(&[1, 2, 3]);
        assert_eq!(&p[..2], &[0x80, 0x88]);
        let i = parse(&p).unwrap();
        assert_eq!(i.pt, PayloadType::PCMA);
        assert_eq!(i.seq, SeqNo(0xfffe));
        assert_eq!(i.ts, 0xdead_beef);
        assert_eq!(i.ssrc, Ssrc(0x1234_5678));
        assert!(i.marker);
        assert_eq!(i.payload(&p), &[1, 2, 3]);
        assert!(is_rtp(&p));
    }

    #[test]
    fn csrc_extension_and_padding() {
        // CC=1, X=1, P=1: 12 + 4 (CSRC) + 4 (ext hdr) + 4 (ext) + payload 2 + padding 2.
        let mut p = vec![0xb1, 0x00, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        p.extend_from_slice(&[0, 0, 0, 9]);
        p.extend_from_slice(&[0xbe, 0xde, 0, 1, 1, 2, 3, 4]);
        p.extend_from_slice(&[0xaa, 0xbb, 0, 2]);
        let i = parse(&p).unwrap();
        assert_eq!(i.payload_offset, 24);
        assert_eq!(i.payload(&p), &[0xaa, 0xbb]);
        assert_eq!(i.payload_len(), 2);
    }

    #[test]
    fn malformed() {
        assert_eq!(parse(&[0x80; 5]), Err(RtpError::TooShort(5)));
        assert_eq!(parse(&[0x40; 12]), Err(RtpError::BadVersion(1)));
        // CC=15 needs 72 bytes.
        assert_eq!(
            parse(&[0x8f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(RtpError::HeaderTruncated { need: 72, have: 12 })
        );
        let mut pad = packet(&[1]);
        pad[0] |= 0x20;
        *pad.last_mut().unwrap() = 0;
        assert_eq!(parse(&pad), Err(RtpError::BadPadding(0)));
        // RTCP receiver report (PT 201) on a muxed port.
        let rr = [0x81, 201, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0];
        assert!(!is_rtp(&rr));
        assert_eq!(parse(&rr), Err(RtpError::Rtcp(201)));
        assert!(!is_rtp(b"INVITE sip:x SIP/2.0"));
    }

    #[test]
    fn parse_never_panics_on_prefixes() {
        let mut p = vec![
            0xb1, 0x00, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 9, 0xbe, 0xde, 0, 1, 1, 2, 3, 4, 9,
            0, 2,
        ];
        for n in 0..p.len() {
            let _ = parse(&p[..n]);
        }
        p[0] = 0xbf;
        let _ = parse(&p);
    }

    #[test]
    fn rewrite_in_place() {
        let mut p = packet(&[7; 4]);
        rewrite::set_seq(&mut p, SeqNo(5));
        rewrite::set_ts(&mut p, 6);
        rewrite::set_ssrc(&mut p, Ssrc(7));
        rewrite::set_marker_pt(&mut p, false, PayloadType::PCMU);
        let i = parse(&p).unwrap();
        assert_eq!(
            (i.seq, i.ts, i.ssrc, i.marker, i.pt),
            (SeqNo(5), 6, Ssrc(7), false, PayloadType::PCMU)
        );
        rewrite::set_seq(&mut [0u8; 2], SeqNo(1)); // short: no panic
    }

    #[test]
    fn dtmf() {
        // '#' (11), end bit, volume 10, duration 800.
        let e = parse_dtmf(&[11, 0x8a, 0x03, 0x20]).unwrap();
        assert_eq!(
            e,
            DtmfEvent {
                digit: '#',
                end: true,
                duration: 800,
                volume: 10
            }
        );
        assert_eq!(e.encode(), Some([11, 0x8a, 0x03, 0x20]));
        assert_eq!(
            parse_dtmf(&[5, 0x0a, 0, 160]).map(|e| (e.digit, e.end)),
            Some(('5', false))
        );
        assert_eq!(parse_dtmf(&[15, 0, 0, 0]).map(|e| e.digit), Some('D'));
        assert_eq!(parse_dtmf(&[16, 0, 0, 0]), None, "flash is not a digit");
        assert_eq!(parse_dtmf(&[1, 0, 0]), None);
    }
}
