//! The committed prompts in `config/prompts/` load and are what the generator promises:
//! 8 kHz mono µ-law, expected length, moderate level, a click-free loop seam for MOH.

use std::sync::Arc;
use std::time::{Duration, Instant};

use acd_media::wav::{load_wav, wav_info, WavEncoding};
use acd_media::{Codec, OutboundStream, Player, SeqNo, Ssrc, PACKET_LEN};

fn read(name: &str) -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/prompts/");
    std::fs::read(format!("{path}{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn peak_dbfs(samples: &[i16]) -> f64 {
    let peak = samples
        .iter()
        .map(|s| i32::from(*s).abs())
        .max()
        .unwrap_or(0);
    20.0 * (f64::from(peak) / 32768.0).log10()
}

#[test]
fn welcome_prompt() {
    let bytes = read("welcome.wav");
    assert!(bytes.len() < 100_000);
    let info = wav_info(&bytes).unwrap();
    assert_eq!(info.encoding, WavEncoding::G711(Codec::Pcmu));
    assert_eq!((info.sample_rate, info.channels), (8000, 1));
    let p = load_wav(&bytes).unwrap();
    assert!(
        p.duration() >= Duration::from_millis(2000) && p.duration() <= Duration::from_millis(3000),
        "{:?}",
        p.duration()
    );
    let peak = peak_dbfs(p.samples());
    assert!((-9.0..=-3.0).contains(&peak), "peak {peak:.1} dBFS");
}

#[test]
fn moh_prompt_loops_cleanly() {
    let bytes = read("moh.wav");
    assert!(bytes.len() < 100_000);
    let info = wav_info(&bytes).unwrap();
    assert_eq!(info.encoding, WavEncoding::G711(Codec::Pcmu));
    assert_eq!((info.sample_rate, info.channels), (8000, 1));
    let p = load_wav(&bytes).unwrap();
    assert!(
        p.duration() >= Duration::from_millis(7500) && p.duration() <= Duration::from_millis(8500),
        "{:?}",
        p.duration()
    );
    let peak = peak_dbfs(p.samples());
    assert!(
        (-7.5..=-4.5).contains(&peak),
        "peak {peak:.1} dBFS, want about -6"
    );
    // Loop seam: it ends in silence and starts from silence, so looping does not click.
    let s = p.samples();
    assert!(s[s.len() - 80..].iter().all(|v| v.unsigned_abs() < 64));
    assert!(s[..4].iter().all(|v| v.unsigned_abs() < 600));

    // And it plays as looping MOH: 20 s of packets at exact pacing.
    let t0 = Instant::now();
    let mut player = Player::new(Arc::new(p), Codec::Pcmu, true, t0);
    let mut stream = OutboundStream::new(Ssrc(1), SeqNo(0), 0, Codec::Pcmu);
    let mut buf = [0u8; PACKET_LEN];
    let mut n = 0;
    while let Some(t) = player
        .next_deadline()
        .filter(|t| *t < t0 + Duration::from_secs(20))
    {
        while player.poll_packet(t, &mut stream, &mut buf).is_some() {
            n += 1;
        }
    }
    assert_eq!(n, 1000);
    assert_eq!(stream.next_ts(), 160_000);
}
