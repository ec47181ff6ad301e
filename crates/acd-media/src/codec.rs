//! The audio codecs acd speaks. Only G.711: every SIP endpoint supports it, it needs no
//! state, and one byte per sample makes pacing and in-place transcoding trivial.

use crate::g711;
use crate::ids::PayloadType;

/// Narrowband sample rate of every codec here (RFC 3551 §4.5.14).
pub const SAMPLE_RATE: u32 = 8000;

/// A negotiated G.711 variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Codec {
    /// G.711 µ-law, static PT 0.
    Pcmu,
    /// G.711 A-law, static PT 8.
    Pcma,
}

impl Codec {
    /// Both codecs, in our order of preference for offers.
    pub const ALL: [Codec; 2] = [Codec::Pcmu, Codec::Pcma];

    /// Static RTP payload type (RFC 3551 Table 4): 0 for PCMU, 8 for PCMA.
    #[must_use]
    pub const fn payload_type(self) -> PayloadType {
        match self {
            Codec::Pcmu => PayloadType::PCMU,
            Codec::Pcma => PayloadType::PCMA,
        }
    }

    /// Encoding name and clock rate as written in `a=rtpmap`.
    #[must_use]
    pub const fn rtpmap_name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU/8000",
            Codec::Pcma => "PCMA/8000",
        }
    }

    /// RTP clock rate in Hz.
    #[must_use]
    pub const fn clock_rate(self) -> u32 {
        SAMPLE_RATE
    }

    /// Codec for a static payload type, if it is one of ours.
    #[must_use]
    pub fn from_payload_type(pt: u8) -> Option<Codec> {
        match pt {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            _ => None,
        }
    }

    /// Codec for an `a=rtpmap` encoding such as `PCMU/8000` or `pcma/8000/1`
    /// (names are case-insensitive, RFC 4855 §3).
    #[must_use]
    pub fn from_rtpmap_name(name: &str) -> Option<Codec> {
        let mut parts = name.trim().split('/');
        let enc = parts.next()?;
        let rate = parts.next()?;
        let channels = parts.next();
        if rate != "8000" || !matches!(channels, None | Some("1")) || parts.next().is_some() {
            return None;
        }
        if enc.eq_ignore_ascii_case("PCMU") {
            Some(Codec::Pcmu)
        } else if enc.eq_ignore_ascii_case("PCMA") {
            Some(Codec::Pcma)
        } else {
            None
        }
    }

    /// Encoded byte for digital silence; used to pad the last frame of a prompt.
    #[must_use]
    pub const fn silence(self) -> u8 {
        self.encode_sample(0)
    }

    /// Encode one linear sample.
    #[must_use]
    pub const fn encode_sample(self, s: i16) -> u8 {
        match self {
            Codec::Pcmu => g711::ulaw_encode(s),
            Codec::Pcma => g711::alaw_encode(s),
        }
    }

    /// Decode one byte to a linear sample.
    #[must_use]
    pub const fn decode_sample(self, b: u8) -> i16 {
        match self {
            Codec::Pcmu => g711::ulaw_decode(b),
            Codec::Pcma => g711::alaw_decode(b),
        }
    }

    /// Encode `pcm` into `out`, one byte per sample. Encodes `min(pcm.len(), out.len())`
    /// samples and returns that count, so a short buffer truncates instead of panicking.
    pub fn encode_frame(self, pcm: &[i16], out: &mut [u8]) -> usize {
        let n = pcm.len().min(out.len());
        for (o, &s) in out.iter_mut().zip(pcm) {
            *o = self.encode_sample(s);
        }
        n
    }

    /// Decode `payload` into `out`; returns the number of samples written.
    pub fn decode_frame(self, payload: &[u8], out: &mut [i16]) -> usize {
        let n = payload.len().min(out.len());
        for (o, &b) in out.iter_mut().zip(payload) {
            *o = self.decode_sample(b);
        }
        n
    }

    /// Re-encode a payload from `self` to `to` in place. G.711 variants are both one
    /// byte per sample, so bridging a µ-law leg to an A-law leg costs no buffer.
    pub fn transcode_in_place(self, to: Codec, payload: &mut [u8]) {
        if self == to {
            return;
        }
        for b in payload {
            *b = to.encode_sample(self.decode_sample(*b));
        }
    }

    /// RTP timestamp units covered by a payload of `len` bytes (1 byte = 1 sample).
    #[must_use]
    pub const fn samples_in(self, len: usize) -> u32 {
        len as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_assignments() {
        assert_eq!(Codec::Pcmu.payload_type().get(), 0);
        assert_eq!(Codec::Pcma.payload_type().get(), 8);
        assert_eq!(Codec::Pcmu.rtpmap_name(), "PCMU/8000");
        assert_eq!(Codec::Pcma.rtpmap_name(), "PCMA/8000");
        assert_eq!(Codec::from_payload_type(8), Some(Codec::Pcma));
        assert_eq!(Codec::from_payload_type(18), None);
    }

    #[test]
    fn rtpmap_names() {
        assert_eq!(Codec::from_rtpmap_name("pcmu/8000"), Some(Codec::Pcmu));
        assert_eq!(Codec::from_rtpmap_name("PCMA/8000/1"), Some(Codec::Pcma));
        assert_eq!(Codec::from_rtpmap_name("PCMA/16000"), None);
        assert_eq!(Codec::from_rtpmap_name("PCMU/8000/2"), None);
        assert_eq!(Codec::from_rtpmap_name("telephone-event/8000"), None);
        assert_eq!(Codec::from_rtpmap_name("PCMU"), None);
    }

    #[test]
    fn frames() {
        let pcm = [0i16, 1000, -1000, i16::MAX];
        let mut out = [0u8; 3];
        assert_eq!(Codec::Pcmu.encode_frame(&pcm, &mut out), 3);
        assert_eq!(out, [0xff, 0xce, 0x4e]);
        let mut back = [0i16; 4];
        assert_eq!(Codec::Pcmu.decode_frame(&out, &mut back), 3);
        assert_eq!(&back[..3], &[0, 988, -988]);
        assert_eq!(Codec::Pcmu.silence(), 0xff);
        assert_eq!(Codec::Pcma.silence(), 0xd5);
    }

    #[test]
    fn transcode() {
        let mut p = [Codec::Pcmu.encode_sample(1000), Codec::Pcmu.silence()];
        Codec::Pcmu.transcode_in_place(Codec::Pcma, &mut p);
        assert_eq!(p, [Codec::Pcma.encode_sample(988), Codec::Pcma.silence()]);
    }
}
