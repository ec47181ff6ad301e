//! RTCP relayed between the legs of a bridge (RFC 3550 §6), rewritten in place.
//!
//! The B2BUA renumbers RTP onto each leg's own [`OutboundStream`](crate::OutboundStream),
//! so a report relayed verbatim would name SSRCs the receiver has never seen and it
//! would ignore it. We rewrite the SSRCs only: the sender SSRC of each packet becomes
//! the SSRC of our outbound stream towards the receiver, and the SSRC a report block
//! (or a feedback message) is about becomes the SSRC the receiver itself sends with.
//! Sender-info timestamps and counts and the report blocks' sequence/jitter figures are
//! relayed verbatim: they describe the far phone's view, which is what a quality
//! monitor on the other side wants, and translating them would need the relay's
//! offsets for little gain.

use thiserror::Error;

use crate::ids::Ssrc;

/// RTCP packet types we walk (RFC 3550 §12.1, RFC 4585 §6.1).
const SR: u8 = 200;
const RR: u8 = 201;
const SDES: u8 = 202;
const BYE: u8 = 203;
const APP: u8 = 204;
const RTPFB: u8 = 205;
const PSFB: u8 = 206;

/// Length of one report block (RFC 3550 §6.4.1).
const REPORT_BLOCK_LEN: usize = 24;
/// Length of the SR sender info after the sender SSRC.
const SENDER_INFO_LEN: usize = 20;

/// Why a datagram is not a usable RTCP compound packet (the peer's fault).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum RtcpError {
    #[error("RTCP packet too short ({0} bytes)")]
    TooShort(usize),
    #[error("RTCP version {0}, need 2")]
    BadVersion(u8),
    #[error("RTCP packet type {0} not known")]
    UnknownType(u8),
    #[error("RTCP length field runs past the datagram")]
    BadLength,
}

/// Whether `buf` looks like RTCP (version 2, packet type SR..PSFB); a quick demux test.
#[must_use]
pub fn is_rtcp(buf: &[u8]) -> bool {
    buf.len() >= 8 && buf[0] >> 6 == 2 && (SR..=PSFB).contains(&buf[1])
}

/// One packet of a compound: its type, count field and byte range.
#[derive(Debug, Clone, Copy)]
struct Part {
    pt: u8,
    count: usize,
    start: usize,
    end: usize,
}

/// The part of a compound packet starting at `at`.
fn part_at(buf: &[u8], at: usize) -> Result<Part, RtcpError> {
    let hdr = buf.get(at..at + 4).ok_or(RtcpError::BadLength)?;
    if hdr[0] >> 6 != 2 {
        return Err(RtcpError::BadVersion(hdr[0] >> 6));
    }
    if !(SR..=PSFB).contains(&hdr[1]) {
        return Err(RtcpError::UnknownType(hdr[1]));
    }
    let words = usize::from(u16::from_be_bytes([hdr[2], hdr[3]]));
    let end = at + 4 * (words + 1);
    if end > buf.len() || end - at < 8 {
        return Err(RtcpError::BadLength);
    }
    Ok(Part {
        pt: hdr[1],
        count: usize::from(hdr[0] & 0x1f),
        start: at,
        end,
    })
}

/// Check that the parts of a compound packet tile the datagram exactly.
fn validate(buf: &[u8]) -> Result<(), RtcpError> {
    if buf.len() < 8 {
        return Err(RtcpError::TooShort(buf.len()));
    }
    let mut at = 0;
    while at < buf.len() {
        at = part_at(buf, at)?.end;
    }
    Ok(())
}

fn ssrc_at(buf: &[u8], at: usize) -> Option<Ssrc> {
    let b = buf.get(at..at + 4)?;
    Some(Ssrc(u32::from_be_bytes([b[0], b[1], b[2], b[3]])))
}

fn set_ssrc_at(buf: &mut [u8], at: usize, end: usize, ssrc: Ssrc) {
    if at + 4 <= end {
        if let Some(b) = buf.get_mut(at..at + 4) {
            b.copy_from_slice(&ssrc.0.to_be_bytes());
        }
    }
}

/// Validate a compound packet and return the sender SSRC of its first part.
pub fn parse(buf: &[u8]) -> Result<Ssrc, RtcpError> {
    validate(buf)?;
    ssrc_at(buf, 4).ok_or(RtcpError::TooShort(buf.len()))
}

/// Rewrite a compound packet in place: every sender SSRC becomes `sender` (our stream
/// towards the receiver); report blocks and feedback about a media source become
/// `source` (the receiver's own SSRC) when known. On error nothing is changed.
pub fn rewrite(buf: &mut [u8], sender: Ssrc, source: Option<Ssrc>) -> Result<(), RtcpError> {
    validate(buf)?;
    let mut at = 0;
    while at < buf.len() {
        let p = part_at(buf, at)?;
        rewrite_part(buf, p, sender, source);
        at = p.end;
    }
    Ok(())
}

fn rewrite_part(buf: &mut [u8], part: Part, sender: Ssrc, source: Option<Ssrc>) {
    let Part {
        pt,
        count,
        start,
        end,
    } = part;
    let blocks_from = match pt {
        SR => Some(start + 8 + SENDER_INFO_LEN),
        RR => Some(start + 8),
        _ => None,
    };
    match pt {
        // SDES and BYE: only the first chunk / SSRC is ours to name; further ones
        // (mixers) are passed on as they are.
        SR | RR | APP => set_ssrc_at(buf, start + 4, end, sender),
        SDES | BYE if count > 0 => set_ssrc_at(buf, start + 4, end, sender),
        RTPFB | PSFB => {
            set_ssrc_at(buf, start + 4, end, sender);
            if let Some(src) = source {
                set_ssrc_at(buf, start + 8, end, src);
            }
        }
        _ => {}
    }
    if let (Some(first), Some(src)) = (blocks_from, source) {
        for k in 0..count {
            set_ssrc_at(buf, first + k * REPORT_BLOCK_LEN, end, src);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An SR with one report block followed by an SDES chunk with a CNAME.
    fn sr_sdes(sender: u32, about: u32) -> Vec<u8> {
        let mut v = vec![0x81, SR, 0, 12];
        v.extend_from_slice(&sender.to_be_bytes());
        v.extend_from_slice(&[7; SENDER_INFO_LEN]);
        v.extend_from_slice(&about.to_be_bytes());
        v.extend_from_slice(&[9; REPORT_BLOCK_LEN - 4]);
        // SDES: header + 1 chunk (SSRC, CNAME "ab", end, padding) = 16 bytes → length 3.
        v.extend_from_slice(&[0x81, SDES, 0, 3]);
        v.extend_from_slice(&sender.to_be_bytes());
        v.extend_from_slice(&[1, 2, b'a', b'b', 0, 0, 0, 0]);
        v
    }

    #[test]
    fn rewrites_sender_and_report_block_ssrcs() {
        let mut p = sr_sdes(0x1111, 0x2222);
        assert_eq!(parse(&p), Ok(Ssrc(0x1111)));
        let before = p.clone();
        rewrite(&mut p, Ssrc(0xaaaa), Some(Ssrc(0xbbbb))).unwrap();
        assert_eq!(ssrc_at(&p, 4), Some(Ssrc(0xaaaa)));
        assert_eq!(ssrc_at(&p, 28), Some(Ssrc(0xbbbb)), "report block");
        assert_eq!(ssrc_at(&p, 56), Some(Ssrc(0xaaaa)), "SDES chunk");
        assert_eq!(p[8..28], before[8..28], "sender info verbatim");
        assert_eq!(p[32..52], before[32..52], "report figures verbatim");
        // Without a known source the report block keeps its SSRC.
        let mut q = sr_sdes(0x1111, 0x2222);
        rewrite(&mut q, Ssrc(0xaaaa), None).unwrap();
        assert_eq!(ssrc_at(&q, 28), Some(Ssrc(0x2222)));
    }

    #[test]
    fn rejects_bad_lengths_and_versions() {
        let mut p = sr_sdes(1, 2);
        p[3] = 40;
        assert_eq!(parse(&p), Err(RtcpError::BadLength));
        let mut p = sr_sdes(1, 2);
        p[0] = 0x41;
        assert_eq!(parse(&p), Err(RtcpError::BadVersion(1)));
        assert_eq!(
            parse(&[0x80, 0, 0, 0, 0, 0, 0, 0]),
            Err(RtcpError::UnknownType(0))
        );
        assert_eq!(parse(&[0x80, RR]), Err(RtcpError::TooShort(2)));
        let mut rtp = [0u8; 20];
        rtp[0] = 0x80;
        assert!(!is_rtcp(&rtp));
        assert!(is_rtcp(&sr_sdes(1, 2)));
        let before = sr_sdes(1, 2);
        let mut trunc = before[..before.len() - 4].to_vec();
        assert!(rewrite(&mut trunc, Ssrc(5), Some(Ssrc(6))).is_err());
        assert_eq!(trunc, before[..before.len() - 4], "untouched on error");
    }
}
