//! G.711 µ-law and A-law companding (ITU-T G.711), table-free.
//!
//! Bit-exact with the classic Sun reference implementation (`g711.c`) that most SIP
//! stacks use, so our prompts sound the same as on any other box. Encoding is a handful
//! of shifts per sample; `const fn` so callers can build lookup tables at compile time
//! if a profile ever says it matters.

/// µ-law bias added before segment search (G.711: 33 in 14-bit units, 0x84 in 16-bit).
const ULAW_BIAS: i32 = 0x84;
/// Largest magnitude that still fits in µ-law after adding the bias.
const ULAW_CLIP: i32 = 32635;

/// Encode one 16-bit linear sample to µ-law.
#[must_use]
pub const fn ulaw_encode(sample: i16) -> u8 {
    let mut s = sample as i32;
    let sign: u8 = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    if s > ULAW_CLIP {
        s = ULAW_CLIP;
    }
    s += ULAW_BIAS;
    // s is in [0x84, 0x7fff], so its top bit index is in [7, 14]: the segment is 0..=7.
    let exponent = (31 - s.leading_zeros() as i32) - 7;
    let mantissa = (s >> (exponent + 3)) & 0x0f;
    !(sign | ((exponent as u8) << 4) | mantissa as u8)
}

/// Decode one µ-law byte to a 16-bit linear sample (the midpoint of its interval).
#[must_use]
pub const fn ulaw_decode(byte: u8) -> i16 {
    let u = !byte;
    let exponent = ((u >> 4) & 0x07) as i32;
    let mantissa = (u & 0x0f) as i32;
    let magnitude = (((mantissa << 3) + ULAW_BIAS) << exponent) - ULAW_BIAS;
    if u & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

/// Encode one 16-bit linear sample to A-law (even bits inverted, per G.711).
#[must_use]
pub const fn alaw_encode(sample: i16) -> u8 {
    // A-law works on 13 bits.
    let mut v = (sample as i32) >> 3;
    let mask: u8 = if v >= 0 {
        0xd5
    } else {
        v = -v - 1;
        0x55
    };
    // Segment end points are 0x1f, 0x3f, 0x7f, ... 0xfff.
    let seg = if v <= 0x1f {
        0
    } else {
        // Bit length of v minus 5, so 0x20..=0x3f → 1, ..., 0x800..=0xfff → 7.
        (32 - v.leading_zeros() as i32) - 5
    };
    if seg >= 8 {
        return 0x7f ^ mask;
    }
    let mantissa = if seg < 2 {
        (v >> 1) & 0x0f
    } else {
        (v >> seg) & 0x0f
    };
    (((seg as u8) << 4) | mantissa as u8) ^ mask
}

/// Decode one A-law byte to a 16-bit linear sample.
#[must_use]
pub const fn alaw_decode(byte: u8) -> i16 {
    let a = byte ^ 0x55;
    let mut t = ((a & 0x0f) as i32) << 4;
    let seg = ((a & 0x70) >> 4) as i32;
    match seg {
        0 => t += 8,
        1 => t += 0x108,
        _ => {
            t += 0x108;
            t <<= seg - 1;
        }
    }
    if a & 0x80 != 0 {
        t as i16
    } else {
        -t as i16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_known_values() {
        assert_eq!(ulaw_encode(0), 0xff);
        assert_eq!(ulaw_encode(-1), 0x7f);
        assert_eq!(ulaw_encode(i16::MAX), 0x80);
        assert_eq!(ulaw_encode(i16::MIN), 0x00);
        assert_eq!(ulaw_decode(0xff), 0);
        assert_eq!(ulaw_decode(0x7f), 0);
        assert_eq!(ulaw_decode(0x80), 32124);
        assert_eq!(ulaw_decode(0x00), -32124);
        // 1000 lands in segment 3: step 64, decoded to the interval midpoint.
        assert_eq!(ulaw_encode(1000), 0xce);
        assert_eq!(ulaw_decode(0xce), 988);
    }

    #[test]
    fn alaw_known_values() {
        assert_eq!(alaw_encode(0), 0xd5);
        assert_eq!(alaw_encode(-1), 0x55);
        assert_eq!(alaw_encode(i16::MAX), 0xaa);
        assert_eq!(alaw_encode(i16::MIN), 0x2a);
        assert_eq!(alaw_decode(0xd5), 8);
        assert_eq!(alaw_decode(0x55), -8);
        assert_eq!(alaw_decode(0xaa), 32256);
        assert_eq!(alaw_decode(0x2a), -32256);
        assert_eq!(alaw_encode(1000), 0xfa);
        assert_eq!(alaw_decode(0xfa), 1008);
    }

    #[test]
    fn codewords_round_trip() {
        for b in 0..=255u8 {
            assert_eq!(alaw_encode(alaw_decode(b)), b, "A-law {b:#04x}");
            if b != 0x7f {
                // 0x7f is µ-law "negative zero"; it decodes to 0 which encodes as 0xff.
                assert_eq!(ulaw_encode(ulaw_decode(b)), b, "µ-law {b:#04x}");
            }
        }
    }

    #[test]
    fn quantisation_error_is_bounded() {
        // Both laws keep ~12 bits of relative precision: the error is at most half a step,
        // and a step is 1/16 of the segment start, i.e. about |x|/32 plus the bias.
        for x in i16::MIN..=i16::MAX {
            let mag = i32::from(x).abs();
            let eu = (i32::from(ulaw_decode(ulaw_encode(x))) - i32::from(x)).abs();
            assert!(eu <= (mag + 132) / 32 + 1, "µ-law {x}: error {eu}");
            let ea = (i32::from(alaw_decode(alaw_encode(x))) - i32::from(x)).abs();
            assert!(ea <= mag / 32 + 16, "A-law {x}: error {ea}");
            // Sign is preserved (small values may decode to 0 / ±8).
            if x.unsigned_abs() > 16 {
                assert_eq!(ulaw_decode(ulaw_encode(x)).signum(), x.signum());
                assert_eq!(alaw_decode(alaw_encode(x)).signum(), x.signum());
            }
        }
    }
}
