//! Newtypes for RTP identifiers, so a sequence number can never be passed where an SSRC
//! or a payload type belongs. Wrap-around of the 16-bit sequence number is handled here,
//! once, and nowhere else.

use std::fmt;

/// RTP synchronisation source identifier (RFC 3550 §5.1).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Ssrc(pub u32);

impl fmt::Display for Ssrc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

/// RTP sequence number (RFC 3550 §5.1). Arithmetic wraps at 2^16; ordering is by the
/// signed distance, which is only meaningful within ±32767 packets (RFC 3550 App. A.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct SeqNo(pub u16);

impl SeqNo {
    /// The sequence number after this one (65535 → 0).
    #[must_use]
    pub const fn next(self) -> Self {
        Self(self.0.wrapping_add(1))
    }

    /// This sequence number advanced by `n`, wrapping.
    #[must_use]
    pub const fn wrapping_add(self, n: u16) -> Self {
        Self(self.0.wrapping_add(n))
    }

    /// Signed distance `self - earlier`, so `SeqNo(0).diff(SeqNo(65535)) == 1`.
    #[must_use]
    pub const fn diff(self, earlier: SeqNo) -> i16 {
        self.0.wrapping_sub(earlier.0) as i16
    }

    /// Whether `self` comes after `other` in wrap-around order.
    #[must_use]
    pub const fn is_after(self, other: SeqNo) -> bool {
        self.diff(other) > 0
    }
}

impl fmt::Display for SeqNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// RTP payload type, a 7-bit value (RFC 3550 §5.1). The constructor rejects values ≥ 128
/// so a header can never be written with the marker bit smuggled into the PT.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "u8", into = "u8")]
pub struct PayloadType(u8);

impl TryFrom<u8> for PayloadType {
    type Error = &'static str;
    fn try_from(pt: u8) -> Result<Self, Self::Error> {
        Self::new(pt).ok_or("RTP payload type must be below 128")
    }
}

impl From<PayloadType> for u8 {
    fn from(pt: PayloadType) -> u8 {
        pt.0
    }
}

impl PayloadType {
    /// G.711 µ-law, static assignment (RFC 3551 §6).
    pub const PCMU: Self = Self(0);
    /// G.711 A-law, static assignment (RFC 3551 §6).
    pub const PCMA: Self = Self(8);

    /// `None` if `pt` does not fit in 7 bits.
    #[must_use]
    pub const fn new(pt: u8) -> Option<Self> {
        if pt < 128 {
            Some(Self(pt))
        } else {
            None
        }
    }

    /// The 7-bit value.
    #[must_use]
    pub const fn get(self) -> u8 {
        self.0
    }
}

impl fmt::Display for PayloadType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Whether RTP timestamp `a` is after `b`, modulo 2^32 (RFC 3550 §5.1: timestamps wrap).
#[must_use]
pub const fn ts_is_after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_wraps() {
        assert_eq!(SeqNo(65535).next(), SeqNo(0));
        assert_eq!(SeqNo(65530).wrapping_add(10), SeqNo(4));
        assert_eq!(SeqNo(0).diff(SeqNo(65535)), 1);
        assert_eq!(SeqNo(65535).diff(SeqNo(0)), -1);
        assert!(SeqNo(3).is_after(SeqNo(65000)));
        assert!(!SeqNo(65000).is_after(SeqNo(3)));
        assert!(!SeqNo(7).is_after(SeqNo(7)));
    }

    #[test]
    fn payload_type_is_seven_bits() {
        assert_eq!(PayloadType::new(127).map(PayloadType::get), Some(127));
        assert_eq!(PayloadType::new(128), None);
        assert_eq!(PayloadType::PCMA.get(), 8);
    }

    #[test]
    fn ts_wraps() {
        assert!(ts_is_after(5, u32::MAX - 5));
        assert!(!ts_is_after(u32::MAX - 5, 5));
    }
}
