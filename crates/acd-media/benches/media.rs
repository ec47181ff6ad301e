//! Benchmarks of the per-packet media paths: relay header rewrite, G.711 transcoding
//! and paced prompt playout.
//!
//! Run: `cargo bench -p acd-media --bench media -- --measurement-time 3`
//! (results and machine notes in BENCHMARKS.md at the workspace root).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use acd_media::rtp::{Header, HEADER_LEN};
use acd_media::{
    Codec, Leg, OutboundStream, PayloadType, Player, Prompt, Relay, SeqNo, Ssrc, FRAME_DURATION,
    PACKET_LEN,
};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// 12-byte header + 160 bytes of µ-law: one 20 ms PCMU packet, 172 bytes.
const PCMU_PACKET_LEN: usize = HEADER_LEN + 160;

/// A 440 Hz-ish tone, so the codec sees varied samples rather than silence.
fn tone(samples: usize) -> Vec<i16> {
    (0..samples)
        .map(|i| {
            let phase = (i % 18) as i32 - 9; // triangle wave, period 18 samples
            (phase.abs() * 2_400 - 10_800) as i16
        })
        .collect()
}

fn pcmu_payload() -> [u8; 160] {
    let mut p = [0u8; 160];
    Codec::Pcmu.encode_frame(&tone(160), &mut p);
    p
}

/// Writes the inbound packet number `n` of the caller's stream into `buf`.
fn inbound_packet(buf: &mut [u8; PCMU_PACKET_LEN], payload: &[u8; 160], n: u32) {
    let (hdr, body) = buf.split_first_chunk_mut::<HEADER_LEN>().unwrap();
    Header {
        pt: PayloadType::PCMU,
        seq: SeqNo(1_000u16.wrapping_add(n as u16)),
        ts: 160_000u32.wrapping_add(n.wrapping_mul(160)),
        ssrc: Ssrc(0xca11_e400),
        marker: false,
    }
    .write(hdr);
    body.copy_from_slice(payload);
}

fn bench_relay(c: &mut Criterion) {
    let payload = pcmu_payload();
    let mut g = c.benchmark_group("media/relay");
    g.throughput(Throughput::Elements(1));

    // Steady state of a bridged call: the caller's packets continue the agent leg's
    // stream (mapping anchored once, then reused). Each iteration rebuilds the inbound
    // header (12 bytes + 160-byte payload copy, as a recv into the buffer would) and
    // forwards it.
    for (name, to_codec) in [
        ("forward_pcmu_172B", Codec::Pcmu),
        ("forward_pcmu_to_pcma_172B", Codec::Pcma),
    ] {
        g.bench_function(name, |b| {
            let mut relay = Relay::new();
            let mut agent_leg =
                OutboundStream::new(Ssrc(0xa9e7), SeqNo(40_000), 7_000_000, to_codec);
            let mut buf = [0u8; PCMU_PACKET_LEN];
            let mut n = 0u32;
            b.iter(|| {
                inbound_packet(&mut buf, &payload, n);
                n = n.wrapping_add(1);
                let to = relay
                    .forward(Leg::A, black_box(&mut buf), &mut agent_leg)
                    .unwrap();
                black_box(&buf);
                to
            });
            let c = relay.counters(Leg::A);
            assert_eq!(c.dropped, 0);
            assert_eq!(c.packets_out, c.packets_in);
            assert_eq!(agent_leg.ssrc(), Ssrc(0xa9e7));
        });
    }

    // The same packet rebuild alone, to subtract from the two above.
    g.bench_function("baseline_packet_rebuild_only", |b| {
        let mut buf = [0u8; PCMU_PACKET_LEN];
        let mut n = 0u32;
        b.iter(|| {
            inbound_packet(&mut buf, &payload, n);
            n = n.wrapping_add(1);
            black_box(&mut buf);
        })
    });
    g.finish();
}

fn bench_g711(c: &mut Criterion) {
    let pcmu = pcmu_payload();
    let mut pcma = [0u8; 160];
    Codec::Pcma.encode_frame(&tone(160), &mut pcma);
    let pcm = tone(160);

    let mut g = c.benchmark_group("media/g711");
    // One 20 ms frame per iteration; elements are samples (8,000 per second of audio).
    g.throughput(Throughput::Elements(160));
    g.bench_function("transcode_ulaw_to_alaw_160", |b| {
        let mut buf = pcmu;
        b.iter(|| {
            buf.copy_from_slice(&pcmu);
            Codec::Pcmu.transcode_in_place(Codec::Pcma, black_box(&mut buf));
            buf
        })
    });
    g.bench_function("transcode_alaw_to_ulaw_160", |b| {
        let mut buf = pcma;
        b.iter(|| {
            buf.copy_from_slice(&pcma);
            Codec::Pcma.transcode_in_place(Codec::Pcmu, black_box(&mut buf));
            buf
        })
    });
    g.bench_function("encode_ulaw_160", |b| {
        let mut out = [0u8; 160];
        b.iter(|| Codec::Pcmu.encode_frame(black_box(&pcm), &mut out))
    });
    g.bench_function("decode_ulaw_160", |b| {
        let mut out = [0i16; 160];
        b.iter(|| Codec::Pcmu.decode_frame(black_box(&pcmu), &mut out))
    });
    g.finish();
}

fn bench_player(c: &mut Criterion) {
    // Music on hold: a 10 s looped prompt, as loaded from WAV at config time.
    let prompt = Arc::new(Prompt::from_samples(tone(80_000)));
    let mut g = c.benchmark_group("media/player");
    g.throughput(Throughput::Elements(1));

    // Steady state: the shell wakes at each 20 ms deadline and gets exactly one packet
    // (µ-law encode of 160 samples + RTP header through the leg's stream).
    for codec in [Codec::Pcmu, Codec::Pcma] {
        g.bench_function(format!("poll_packet_on_deadline_{codec:?}"), |b| {
            let t0 = Instant::now();
            let mut player = Player::new(prompt.clone(), codec, true, t0);
            let mut stream = OutboundStream::new(Ssrc(0xca11), SeqNo(1), 0, codec);
            let mut buf = [0u8; PACKET_LEN];
            let mut now = t0;
            b.iter(|| {
                let n = player.poll_packet(black_box(now), &mut stream, &mut buf);
                now += FRAME_DURATION;
                debug_assert_eq!(n, Some(PACKET_LEN));
                n
            });
            assert_eq!(player.frames_sent(), stream.packets());
        });
    }

    // An early wake-up (nothing due): what a spurious timer costs.
    g.bench_function("poll_packet_not_due", |b| {
        let t0 = Instant::now();
        let mut player = Player::new(prompt.clone(), Codec::Pcmu, true, t0);
        let mut stream = OutboundStream::new(Ssrc(0xca11), SeqNo(1), 0, Codec::Pcmu);
        let mut buf = [0u8; PACKET_LEN];
        assert!(player.poll_packet(t0, &mut stream, &mut buf).is_some());
        let early = t0 + Duration::from_millis(10);
        b.iter(|| player.poll_packet(black_box(early), &mut stream, &mut buf))
    });
    g.finish();
}

criterion_group!(benches, bench_relay, bench_g711, bench_player);
criterion_main!(benches);
