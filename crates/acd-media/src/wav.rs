//! WAV prompt loading (RIFF/WAVE, 8 kHz mono: 16-bit PCM, µ-law or A-law).
//!
//! Prompts are decoded once, at config load, to linear PCM so one `Prompt` can be played
//! to a µ-law leg and an A-law leg alike. Files come from operators, so every length and
//! offset is checked: a bad file is an error naming what is wrong, never a panic.

use std::time::Duration;

use thiserror::Error;

use crate::codec::{Codec, SAMPLE_RATE};

/// WAVE format tags we accept (RFC 2361 / mmreg.h).
const FORMAT_PCM: u16 = 1;
const FORMAT_ALAW: u16 = 6;
const FORMAT_MULAW: u16 = 7;
const FORMAT_EXTENSIBLE: u16 = 0xfffe;

/// Why a WAV file was rejected. Messages name the offending value and what is needed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WavError {
    #[error("not a RIFF file (no \"RIFF\" magic)")]
    NotRiff,
    #[error("RIFF file is not WAVE (form type {0:?})")]
    NotWave([u8; 4]),
    #[error("file truncated in {what}: need {need} bytes, have {have}")]
    Truncated {
        what: &'static str,
        need: usize,
        have: usize,
    },
    #[error("no {0:?} chunk")]
    MissingChunk(&'static str),
    #[error("fmt chunk too short ({0} bytes, need 16)")]
    FmtTooShort(usize),
    #[error("audio format {0:#06x}, need PCM (1), A-law (6) or µ-law (7)")]
    UnsupportedFormat(u16),
    #[error("{bits} bits per sample for {encoding}, need {need}")]
    BitsPerSample {
        encoding: &'static str,
        bits: u16,
        need: u16,
    },
    #[error("sample rate {0} Hz, need 8000 Hz")]
    SampleRate(u32),
    #[error("{0} channels, need mono")]
    Channels(u16),
    #[error("data chunk length {0} is not a whole number of 16-bit samples")]
    PartialSample(usize),
    #[error("data chunk holds no audio")]
    Empty,
}

/// How the samples in a WAV `data` chunk are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WavEncoding {
    /// Little-endian signed 16-bit linear PCM.
    Pcm16,
    /// One G.711 byte per sample.
    G711(Codec),
}

/// What a WAV file contains, as read from its `fmt ` and `data` chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WavInfo {
    pub encoding: WavEncoding,
    pub sample_rate: u32,
    pub channels: u16,
    /// Number of samples (per channel) in the data chunk.
    pub samples: usize,
}

/// A decoded prompt: linear 16-bit PCM at 8 kHz, mono. Shared between calls via `Arc`.
/// Each codec's encoding is made once, on first use, and shared by every player, so
/// playout is a copy rather than an encode per packet.
#[derive(Debug, Clone, Default)]
pub struct Prompt {
    samples: Vec<i16>,
    /// µ-law and A-law renderings of `samples`, indexed by [`codec_slot`].
    encoded: [std::sync::OnceLock<Box<[u8]>>; 2],
}

/// Two prompts are equal when their audio is (the encodings follow from it).
impl PartialEq for Prompt {
    fn eq(&self, other: &Self) -> bool {
        self.samples == other.samples
    }
}

impl Eq for Prompt {}

fn codec_slot(codec: crate::codec::Codec) -> usize {
    match codec {
        crate::codec::Codec::Pcmu => 0,
        crate::codec::Codec::Pcma => 1,
    }
}

impl Prompt {
    /// Wrap already-decoded 8 kHz mono samples (generated tones, tests).
    #[must_use]
    pub fn from_samples(samples: Vec<i16>) -> Self {
        Self {
            samples,
            encoded: Default::default(),
        }
    }

    /// The prompt encoded with `codec`, one byte per sample; encoded on the first
    /// call for that codec and kept.
    #[must_use]
    pub fn encoded(&self, codec: crate::codec::Codec) -> &[u8] {
        self.encoded[codec_slot(codec)].get_or_init(|| {
            let mut out = vec![0u8; self.samples.len()].into_boxed_slice();
            codec.encode_frame(&self.samples, &mut out);
            out
        })
    }

    /// The linear samples.
    #[must_use]
    pub fn samples(&self) -> &[i16] {
        &self.samples
    }

    /// Number of samples.
    #[must_use]
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether the prompt has no samples.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Playing time at 8 kHz.
    #[must_use]
    pub fn duration(&self) -> Duration {
        let n = self.samples.len() as u64;
        let rate = u64::from(SAMPLE_RATE);
        Duration::from_secs(n / rate) + Duration::from_nanos((n % rate) * 1_000_000_000 / rate)
    }
}

/// Load an 8 kHz mono WAV (16-bit PCM, µ-law or A-law) into a [`Prompt`].
pub fn load_wav(bytes: &[u8]) -> Result<Prompt, WavError> {
    let (info, data) = parse(bytes)?;
    let samples = match info.encoding {
        WavEncoding::Pcm16 => data
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect(),
        WavEncoding::G711(codec) => data.iter().map(|&b| codec.decode_sample(b)).collect(),
    };
    Ok(Prompt::from_samples(samples))
}

/// Read the format of a WAV file without decoding it, with the same checks as [`load_wav`].
pub fn wav_info(bytes: &[u8]) -> Result<WavInfo, WavError> {
    parse(bytes).map(|(info, _)| info)
}

/// Write 8 kHz mono samples as a WAV file. For G.711 the `fmt ` chunk carries `cbSize`
/// and a `fact` chunk follows, as the WAVE spec asks of non-PCM formats.
#[must_use]
pub fn write_wav(samples: &[i16], encoding: WavEncoding) -> Vec<u8> {
    let (tag, bits, bytes_per_sample) = match encoding {
        WavEncoding::Pcm16 => (FORMAT_PCM, 16u16, 2u16),
        WavEncoding::G711(Codec::Pcmu) => (FORMAT_MULAW, 8, 1),
        WavEncoding::G711(Codec::Pcma) => (FORMAT_ALAW, 8, 1),
    };
    let data_len = samples.len() * usize::from(bytes_per_sample);
    let mut out = Vec::with_capacity(64 + data_len);
    let mut fmt = Vec::with_capacity(18);
    fmt.extend_from_slice(&tag.to_le_bytes());
    fmt.extend_from_slice(&1u16.to_le_bytes());
    fmt.extend_from_slice(&SAMPLE_RATE.to_le_bytes());
    fmt.extend_from_slice(&(SAMPLE_RATE * u32::from(bytes_per_sample)).to_le_bytes());
    fmt.extend_from_slice(&bytes_per_sample.to_le_bytes());
    fmt.extend_from_slice(&bits.to_le_bytes());
    if tag != FORMAT_PCM {
        fmt.extend_from_slice(&0u16.to_le_bytes());
    }
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&[0; 4]); // patched below
    out.extend_from_slice(b"WAVE");
    push_chunk(&mut out, b"fmt ", &fmt);
    if tag != FORMAT_PCM {
        push_chunk(&mut out, b"fact", &(samples.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(data_len as u32).to_le_bytes());
    match encoding {
        WavEncoding::Pcm16 => samples
            .iter()
            .for_each(|s| out.extend_from_slice(&s.to_le_bytes())),
        WavEncoding::G711(c) => out.extend(samples.iter().map(|&s| c.encode_sample(s))),
    }
    if data_len % 2 == 1 {
        out.push(0); // RIFF chunks are padded to even length
    }
    let riff_len = (out.len() - 8) as u32;
    out[4..8].copy_from_slice(&riff_len.to_le_bytes());
    out
}

fn push_chunk(out: &mut Vec<u8>, id: &[u8; 4], body: &[u8]) {
    out.extend_from_slice(id);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(body);
    if body.len() % 2 == 1 {
        out.push(0);
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

struct Fmt {
    tag: u16,
    channels: u16,
    rate: u32,
    bits: u16,
}

fn parse_fmt(body: &[u8]) -> Result<Fmt, WavError> {
    let short = || WavError::FmtTooShort(body.len());
    let mut tag = u16_at(body, 0).ok_or_else(short)?;
    let channels = u16_at(body, 2).ok_or_else(short)?;
    let rate = u32_at(body, 4).ok_or_else(short)?;
    let bits = u16_at(body, 14).ok_or_else(short)?;
    if tag == FORMAT_EXTENSIBLE {
        // WAVEFORMATEXTENSIBLE: the real tag is the first two bytes of the SubFormat GUID.
        tag = u16_at(body, 24).ok_or(WavError::Truncated {
            what: "WAVE_FORMAT_EXTENSIBLE fmt chunk",
            need: 40,
            have: body.len(),
        })?;
    }
    Ok(Fmt {
        tag,
        channels,
        rate,
        bits,
    })
}

/// Walk the chunks; returns the format and the raw `data` bytes.
fn parse(bytes: &[u8]) -> Result<(WavInfo, &[u8]), WavError> {
    if bytes.len() < 12 {
        if bytes.len() >= 4 && &bytes[..4] != b"RIFF" {
            return Err(WavError::NotRiff);
        }
        return Err(WavError::Truncated {
            what: "RIFF header",
            need: 12,
            have: bytes.len(),
        });
    }
    if &bytes[..4] != b"RIFF" {
        return Err(WavError::NotRiff);
    }
    let mut form = [0u8; 4];
    form.copy_from_slice(&bytes[8..12]);
    if &form != b"WAVE" {
        return Err(WavError::NotWave(form));
    }
    // The RIFF length is ignored: writers that stream often leave it 0 or wrong, and the
    // chunk walk below bounds everything by the real buffer length anyway.
    let mut fmt = None;
    let mut data = None;
    let mut pos = 12;
    while pos < bytes.len() && (fmt.is_none() || data.is_none()) {
        let rest = bytes.len() - pos;
        if rest < 8 {
            // Trailing junk shorter than a chunk header after the chunks we need is
            // tolerated only if we already have both; the loop condition covers that.
            return Err(WavError::Truncated {
                what: "chunk header",
                need: 8,
                have: rest,
            });
        }
        let id = &bytes[pos..pos + 4];
        let len = u32_at(bytes, pos + 4).unwrap_or(0) as usize;
        let body_start = pos + 8;
        let avail = bytes.len() - body_start;
        let what = match id {
            b"fmt " => "fmt chunk",
            b"data" => "data chunk",
            _ => "chunk",
        };
        if len > avail {
            return Err(WavError::Truncated {
                what,
                need: len,
                have: avail,
            });
        }
        let body = &bytes[body_start..body_start + len];
        match id {
            b"fmt " => fmt = Some(parse_fmt(body)?),
            b"data" => data = Some(body),
            _ => {} // LIST, fact, cue, bext...: not needed for playout
        }
        // Odd-length chunks carry a pad byte (RIFF spec); a missing final pad is harmless.
        pos = body_start + len + (len & 1);
    }
    let fmt = fmt.ok_or(WavError::MissingChunk("fmt "))?;
    let data = data.ok_or(WavError::MissingChunk("data"))?;

    let encoding = match fmt.tag {
        FORMAT_PCM => WavEncoding::Pcm16,
        FORMAT_MULAW => WavEncoding::G711(Codec::Pcmu),
        FORMAT_ALAW => WavEncoding::G711(Codec::Pcma),
        other => return Err(WavError::UnsupportedFormat(other)),
    };
    let (name, need_bits) = match encoding {
        WavEncoding::Pcm16 => ("PCM", 16),
        WavEncoding::G711(Codec::Pcmu) => ("µ-law", 8),
        WavEncoding::G711(Codec::Pcma) => ("A-law", 8),
    };
    if fmt.bits != need_bits {
        return Err(WavError::BitsPerSample {
            encoding: name,
            bits: fmt.bits,
            need: need_bits,
        });
    }
    if fmt.channels != 1 {
        return Err(WavError::Channels(fmt.channels));
    }
    if fmt.rate != SAMPLE_RATE {
        return Err(WavError::SampleRate(fmt.rate));
    }
    let samples = match encoding {
        WavEncoding::Pcm16 => {
            if data.len() % 2 != 0 {
                return Err(WavError::PartialSample(data.len()));
            }
            data.len() / 2
        }
        WavEncoding::G711(_) => data.len(),
    };
    if samples == 0 {
        return Err(WavError::Empty);
    }
    Ok((
        WavInfo {
            encoding,
            sample_rate: fmt.rate,
            channels: fmt.channels,
            samples,
        },
        data,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone() -> Vec<i16> {
        (0..800)
            .map(|i| ((i as f64 * 0.3).sin() * 8000.0) as i16)
            .collect()
    }

    /// Hand-built WAV so each test can break exactly one field.
    fn wav(tag: u16, channels: u16, rate: u32, bits: u16, extra: &[u8], data: &[u8]) -> Vec<u8> {
        let mut fmt = Vec::new();
        fmt.extend_from_slice(&tag.to_le_bytes());
        fmt.extend_from_slice(&channels.to_le_bytes());
        fmt.extend_from_slice(&rate.to_le_bytes());
        fmt.extend_from_slice(&(rate * u32::from(bits / 8)).to_le_bytes());
        fmt.extend_from_slice(&(bits / 8).to_le_bytes());
        fmt.extend_from_slice(&bits.to_le_bytes());
        let mut out = b"RIFF\0\0\0\0WAVE".to_vec();
        push_chunk(&mut out, b"fmt ", &fmt);
        out.extend_from_slice(extra);
        push_chunk(&mut out, b"data", data);
        out
    }

    #[test]
    fn round_trips_all_encodings() {
        let pcm = tone();
        let p = load_wav(&write_wav(&pcm, WavEncoding::Pcm16)).unwrap();
        assert_eq!(p.samples(), &pcm[..]);
        assert_eq!(p.duration(), Duration::from_millis(100));
        for codec in Codec::ALL {
            let bytes = write_wav(&pcm, WavEncoding::G711(codec));
            let info = wav_info(&bytes).unwrap();
            assert_eq!(info.encoding, WavEncoding::G711(codec));
            assert_eq!(info.samples, 800);
            let p = load_wav(&bytes).unwrap();
            for (a, b) in p.samples().iter().zip(&pcm) {
                assert!((i32::from(*a) - i32::from(*b)).abs() <= 300);
            }
        }
    }

    #[test]
    fn skips_extra_chunks_with_odd_padding() {
        // A LIST chunk of odd length (padded), then data.
        let mut list = Vec::new();
        push_chunk(&mut list, b"LIST", b"INFOISFT\x05\0\0\0sox!!");
        let data = [0xffu8, 0x00, 0x80];
        let bytes = wav(7, 1, 8000, 8, &list, &data);
        let p = load_wav(&bytes).unwrap();
        assert_eq!(p.samples(), &[0, -32124, 32124]);
    }

    #[test]
    fn data_before_fmt_and_odd_data_without_final_pad() {
        let mut out = b"RIFF\0\0\0\0WAVE".to_vec();
        let mut fmt = Vec::new();
        for v in [6u16, 1] {
            fmt.extend_from_slice(&v.to_le_bytes());
        }
        fmt.extend_from_slice(&8000u32.to_le_bytes());
        fmt.extend_from_slice(&8000u32.to_le_bytes());
        fmt.extend_from_slice(&1u16.to_le_bytes());
        fmt.extend_from_slice(&8u16.to_le_bytes());
        push_chunk(&mut out, b"data", &[0xd5, 0xd5]);
        push_chunk(&mut out, b"fmt ", &fmt);
        assert_eq!(load_wav(&out).unwrap().samples(), &[8, 8]);
        // Odd final data chunk, pad byte missing (common from sloppy writers).
        let mut bytes = wav(7, 1, 8000, 8, &[], &[0xff, 0xff, 0xff]);
        assert_eq!(bytes.pop(), Some(0), "helper pads; drop the pad byte");
        assert_eq!(load_wav(&bytes).unwrap().len(), 3);
    }

    #[test]
    fn extensible_format() {
        let mut fmt = Vec::new();
        for v in [FORMAT_EXTENSIBLE, 1] {
            fmt.extend_from_slice(&v.to_le_bytes());
        }
        fmt.extend_from_slice(&8000u32.to_le_bytes());
        fmt.extend_from_slice(&16000u32.to_le_bytes());
        for v in [2u16, 16, 22, 16] {
            fmt.extend_from_slice(&v.to_le_bytes());
        }
        fmt.extend_from_slice(&4u32.to_le_bytes()); // channel mask
        fmt.extend_from_slice(&[
            1, 0, 0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xaa, 0, 0x38, 0x9b, 0x71,
        ]);
        let mut out = b"RIFF\0\0\0\0WAVE".to_vec();
        push_chunk(&mut out, b"fmt ", &fmt);
        push_chunk(&mut out, b"data", &[0x10, 0x00]);
        assert_eq!(load_wav(&out).unwrap().samples(), &[16]);
    }

    #[test]
    fn format_errors_name_the_problem() {
        let e = load_wav(&wav(1, 1, 44100, 16, &[], &[0, 0])).unwrap_err();
        assert_eq!(e, WavError::SampleRate(44100));
        assert_eq!(e.to_string(), "sample rate 44100 Hz, need 8000 Hz");
        let e = load_wav(&wav(1, 2, 8000, 16, &[], &[0, 0, 0, 0])).unwrap_err();
        assert_eq!(e.to_string(), "2 channels, need mono");
        let e = load_wav(&wav(1, 1, 8000, 8, &[], &[0, 0])).unwrap_err();
        assert_eq!(e.to_string(), "8 bits per sample for PCM, need 16");
        let e = load_wav(&wav(3, 1, 8000, 32, &[], &[0; 4])).unwrap_err();
        assert_eq!(e, WavError::UnsupportedFormat(3));
        assert!(e.to_string().contains("0x0003"));
        let e = load_wav(&wav(7, 1, 8000, 16, &[], &[0; 4])).unwrap_err();
        assert!(matches!(
            e,
            WavError::BitsPerSample {
                bits: 16,
                need: 8,
                ..
            }
        ));
        assert_eq!(
            load_wav(&wav(1, 1, 8000, 16, &[], &[0; 3])).unwrap_err(),
            WavError::PartialSample(3)
        );
        assert_eq!(
            load_wav(&wav(7, 1, 8000, 8, &[], &[])).unwrap_err(),
            WavError::Empty
        );
    }

    #[test]
    fn structural_errors() {
        assert_eq!(
            load_wav(b"").unwrap_err(),
            WavError::Truncated {
                what: "RIFF header",
                need: 12,
                have: 0
            }
        );
        assert_eq!(
            load_wav(b"OggS\0\0\0\0\0\0\0\0\0\0").unwrap_err(),
            WavError::NotRiff
        );
        assert_eq!(
            load_wav(b"RIFF\0\0\0\0AVI LIST").unwrap_err(),
            WavError::NotWave(*b"AVI ")
        );
        assert_eq!(
            load_wav(b"RIFF\0\0\0\0WAVE").unwrap_err(),
            WavError::MissingChunk("fmt ")
        );
        let mut only_fmt = wav(7, 1, 8000, 8, &[], &[]);
        only_fmt.truncate(only_fmt.len() - 8);
        assert_eq!(
            load_wav(&only_fmt).unwrap_err(),
            WavError::MissingChunk("data")
        );
        let mut short_fmt = b"RIFF\0\0\0\0WAVE".to_vec();
        push_chunk(&mut short_fmt, b"fmt ", &[7, 0, 1, 0]);
        assert_eq!(load_wav(&short_fmt).unwrap_err(), WavError::FmtTooShort(4));
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let full = write_wav(&tone(), WavEncoding::G711(Codec::Pcmu));
        assert!(load_wav(&full).is_ok());
        for n in 0..full.len() {
            let r = load_wav(&full[..n]);
            assert!(r.is_err(), "prefix of {n} bytes accepted");
        }
        let e = load_wav(&full[..full.len() - 10]).unwrap_err();
        assert_eq!(
            e,
            WavError::Truncated {
                what: "data chunk",
                need: 800,
                have: 790
            }
        );
    }
}
