//! Regenerate the placeholder prompts in `config/prompts/` (8 kHz mono µ-law WAV).
//!
//! ```text
//! cargo run -p acd-media --example gen_prompts [-- <output dir>]
//! ```
//!
//! Pure arithmetic on f64 with no randomness, so the output is reproducible byte for byte.
//! Tones stay inside the 300–3400 Hz telephone band so handsets reproduce them.

use std::f64::consts::TAU;
use std::path::PathBuf;

use acd_media::wav::{write_wav, WavEncoding};
use acd_media::Codec;

const RATE: f64 = 8000.0;

/// Peak level of the finished prompts: −6 dBFS leaves headroom for G.711 and any gain
/// stage in the path, yet is clearly audible.
const PEAK: f64 = 0.501 * 32767.0;

fn note_hz(name: &str) -> f64 {
    let semis = match name {
        "B4" => -1,
        "C5" => 0,
        "D5" => 2,
        "E5" => 4,
        "F5" => 5,
        "G5" => 7,
        "A5" => 9,
        "C6" => 12,
        "A4" => -3,
        "F4" => -7,
        "G4" => -5,
        "C4" => -12,
        "E4" => -8,
        other => panic!("unknown note {other}"),
    };
    523.251_130_6 * 2f64.powf(f64::from(semis) / 12.0)
}

/// Add a tone to `buf` starting at `start` seconds: harmonic partials with a linear
/// attack, exponential decay and a raised-cosine release, so nothing clicks.
#[allow(clippy::too_many_arguments)]
fn add_tone(
    buf: &mut [f64],
    start: f64,
    len: f64,
    hz: f64,
    amp: f64,
    attack: f64,
    decay_tau: f64,
    release: f64,
    partials: &[(f64, f64)],
) {
    let s0 = (start * RATE) as usize;
    let n = (len * RATE) as usize;
    for i in 0..n {
        let Some(out) = buf.get_mut(s0 + i) else {
            break;
        };
        let t = i as f64 / RATE;
        let mut env = if t < attack {
            t / attack
        } else {
            (-(t - attack) / decay_tau).exp()
        };
        let to_end = len - t;
        if to_end < release {
            env *= 0.5 - 0.5 * (std::f64::consts::PI * to_end / release).cos();
        }
        let mut v = (TAU * hz * t).sin();
        for &(mult, gain) in partials {
            v += gain * (TAU * hz * mult * t).sin();
        }
        *out += amp * env * v;
    }
}

fn finish(buf: &[f64]) -> Vec<i16> {
    let peak = buf.iter().fold(0f64, |m, v| m.max(v.abs()));
    let gain = if peak > 0.0 { PEAK / peak } else { 0.0 };
    buf.iter()
        .map(|v| (v * gain).round().clamp(-32768.0, 32767.0) as i16)
        .collect()
}

/// ~2.5 s: a two-note bell chime (E5 → C5), then a soft rising C–E–G pattern.
fn welcome() -> Vec<i16> {
    let mut buf = vec![0f64; (2.5 * RATE) as usize];
    let bell = [(2.0, 0.35), (3.0, 0.12), (4.2, 0.05)];
    add_tone(
        &mut buf,
        0.05,
        0.9,
        note_hz("E5"),
        1.0,
        0.006,
        0.28,
        0.2,
        &bell,
    );
    add_tone(
        &mut buf,
        0.45,
        1.0,
        note_hz("C5"),
        1.0,
        0.006,
        0.32,
        0.3,
        &bell,
    );
    let beep = [(2.0, 0.15)];
    for (k, n) in ["C5", "E5", "G5"].iter().enumerate() {
        add_tone(
            &mut buf,
            1.55 + 0.17 * k as f64,
            0.12,
            note_hz(n),
            0.45,
            0.01,
            0.5,
            0.04,
            &beep,
        );
    }
    add_tone(
        &mut buf,
        1.55 + 0.17 * 3.0,
        0.3,
        note_hz("C6"),
        0.35,
        0.01,
        0.15,
        0.1,
        &beep,
    );
    finish(&buf)
}

/// 8 s loop: a pentatonic melody in quarter notes over a soft C–Am–F–G pad. Every
/// tone ends inside the loop, so the seam is silent-to-silent and loops without a click.
fn moh() -> Vec<i16> {
    let mut buf = vec![0f64; (8.0 * RATE) as usize];
    let melody = [
        "E5", "G5", "A5", "G5", // C
        "E5", "D5", "C5", "D5", // Am
        "C5", "D5", "E5", "G5", // F
        "G5", "E5", "D5", "B4", // G
    ];
    let soft = [(2.0, 0.2), (3.0, 0.05)];
    for (k, n) in melody.iter().enumerate() {
        add_tone(
            &mut buf,
            0.5 * k as f64,
            0.48,
            note_hz(n),
            1.0,
            0.02,
            0.6,
            0.12,
            &soft,
        );
    }
    let chords = [
        ["C4", "E4", "G4"],
        ["A4", "C5", "E5"],
        ["F4", "A4", "C5"],
        ["G4", "B4", "D5"],
    ];
    for (k, chord) in chords.iter().enumerate() {
        for n in chord {
            let hz = note_hz(n) / 2.0; // an octave below, still ≥ 130 Hz fundamentals with audible harmonics
            add_tone(
                &mut buf,
                2.0 * k as f64,
                1.98,
                hz,
                0.18,
                0.15,
                3.0,
                0.3,
                &[(2.0, 0.6), (3.0, 0.3)],
            );
        }
    }
    finish(&buf)
}

fn main() -> std::io::Result<()> {
    let dir = std::env::args_os().nth(1).map_or_else(
        || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/prompts")),
        PathBuf::from,
    );
    std::fs::create_dir_all(&dir)?;
    for (name, pcm) in [("welcome.wav", welcome()), ("moh.wav", moh())] {
        let bytes = write_wav(&pcm, WavEncoding::G711(Codec::Pcmu));
        let path = dir.join(name);
        std::fs::write(&path, &bytes)?;
        println!(
            "{} ({} bytes, {:.2} s)",
            path.display(),
            bytes.len(),
            pcm.len() as f64 / RATE
        );
    }
    Ok(())
}
