//! Sans-IO paced playout of a [`Prompt`] (welcome prompt, music on hold).
//!
//! The shell asks [`Player::next_deadline`] when to wake, then drains
//! [`Player::poll_packet`] (or [`Player::poll_frame`]) until it returns `None`. Frame `n`
//! is due at `start + n × 20 ms`, an absolute schedule, so rounding in the shell's timer
//! never accumulates into drift. If the process stalls, at most [`MAX_BURST`] late frames
//! are sent at once; the rest of the backlog is dropped from the *schedule* (the RTP
//! timestamp jumps to match wall-clock time) but not from the *audio*, so a caller never
//! misses the words of a prompt because the box was busy.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::codec::Codec;
use crate::rtp::HEADER_LEN;
use crate::stream::OutboundStream;
use crate::wav::Prompt;

/// Samples in one 20 ms G.711 frame.
pub const FRAME_SAMPLES: usize = 160;
/// Packetisation interval (`a=ptime:20`).
pub const FRAME_DURATION: Duration = Duration::from_millis(20);
/// Size of one RTP packet carrying one frame.
pub const PACKET_LEN: usize = HEADER_LEN + FRAME_SAMPLES;
/// Most late frames sent back to back after a stall: 60 ms, which a receiver's jitter
/// buffer absorbs; more would overflow it and be discarded anyway.
pub const MAX_BURST: u64 = 3;

/// One encoded frame produced by [`Player::poll_frame`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// Payload bytes written (always [`FRAME_SAMPLES`]; the last frame is silence-padded).
    pub len: usize,
    /// First frame of this player: a new talk-spurt for the RTP marker bit.
    pub marker: bool,
    /// Samples of schedule dropped before this frame after a stall; the stream's
    /// timestamp must advance by this much first.
    pub skipped_samples: u32,
}

/// Where a [`Player`] stands, so another process can resume it with the next frame
/// (live hand-over). The deadline is relative to the `now` it was taken at, because an
/// `Instant` means nothing in another process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PlayerPosition {
    /// Next sample of the prompt to play.
    pub sample: u64,
    /// Frames produced so far (0 means the next frame starts a talk-spurt).
    pub frames_sent: u64,
    /// Time from the snapshot's `now` until the next frame is due (zero if overdue).
    pub next_frame_in: Duration,
    pub finished: bool,
}

/// Plays one prompt, once or looped, at 20 ms pacing.
#[derive(Debug, Clone)]
pub struct Player {
    prompt: Arc<Prompt>,
    codec: Codec,
    looping: bool,
    start: Instant,
    /// Index of the next schedule slot; its deadline is `start + slot × 20 ms`.
    slot: u64,
    /// Next sample of the prompt to play.
    pos: usize,
    /// Frames produced so far.
    sent: u64,
    finished: bool,
}

impl Player {
    /// A player whose first frame is due at `start`. An empty prompt is finished at once.
    #[must_use]
    pub fn new(prompt: Arc<Prompt>, codec: Codec, looping: bool, start: Instant) -> Self {
        let finished = prompt.is_empty();
        Self {
            prompt,
            codec,
            looping,
            start,
            slot: 0,
            pos: 0,
            sent: 0,
            finished,
        }
    }

    /// A player continuing from `pos` (taken by [`position`](Self::position), perhaps
    /// in another process): the next frame is due at `now + pos.next_frame_in` and
    /// carries the prompt from `pos.sample` on. A position past the end (a different
    /// prompt of the same name) is clamped to the end.
    #[must_use]
    pub fn resume(
        prompt: Arc<Prompt>,
        codec: Codec,
        looping: bool,
        pos: &PlayerPosition,
        now: Instant,
    ) -> Self {
        let len = prompt.samples().len();
        let sample = usize::try_from(pos.sample).unwrap_or(usize::MAX).min(len);
        let finished = pos.finished || len == 0 || (!looping && sample >= len);
        Self {
            prompt,
            codec,
            looping,
            start: now.checked_add(pos.next_frame_in).unwrap_or(now),
            slot: 0,
            pos: sample,
            sent: pos.frames_sent,
            finished,
        }
    }

    /// Where this player stands at `now`; see [`resume`](Self::resume).
    #[must_use]
    pub fn position(&self, now: Instant) -> PlayerPosition {
        PlayerPosition {
            sample: self.pos as u64,
            frames_sent: self.sent,
            next_frame_in: self.deadline(self.slot).saturating_duration_since(now),
            finished: self.finished,
        }
    }

    /// The codec frames are encoded with.
    #[must_use]
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// Encode the following frames with `codec` (the leg renegotiated). Frames come
    /// from the prompt's rendering in that codec, so nothing else changes.
    pub fn set_codec(&mut self, codec: Codec) {
        self.codec = codec;
    }

    /// Whether the prompt restarts at its end.
    #[must_use]
    pub fn is_looping(&self) -> bool {
        self.looping
    }

    /// When the next frame is due; `None` once a non-looping prompt has been played.
    #[must_use]
    pub fn next_deadline(&self) -> Option<Instant> {
        (!self.finished).then(|| self.deadline(self.slot))
    }

    /// Whether a non-looping prompt has been played to the end (looping never finishes).
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Frames produced so far.
    #[must_use]
    pub fn frames_sent(&self) -> u64 {
        self.sent
    }

    /// Wall-clock time up to which the sent frames reach. When the next source on the
    /// same stream starts later than this, pass the gap to
    /// [`OutboundStream::skip_duration`] so the RTP timestamp follows the clock.
    #[must_use]
    pub fn covered_until(&self) -> Instant {
        self.deadline(self.slot)
    }

    fn deadline(&self, slot: u64) -> Instant {
        self.start + Duration::from_millis(slot.saturating_mul(20))
    }

    /// Encode the next frame into `out` if it is due at `now`. Call repeatedly until
    /// `None`: after a stall several frames (at most [`MAX_BURST`]) may be due.
    pub fn poll_frame(&mut self, now: Instant, out: &mut [u8; FRAME_SAMPLES]) -> Option<Frame> {
        if self.finished || now < self.deadline(self.slot) {
            return None;
        }
        // Slots 0..due have deadlines at or before `now`.
        let frame_ns = FRAME_DURATION.as_nanos();
        let due = u64::try_from(now.duration_since(self.start).as_nanos() / frame_ns + 1)
            .unwrap_or(u64::MAX);
        let behind = due.saturating_sub(self.slot);
        let skipped = behind.saturating_sub(MAX_BURST);
        self.slot += skipped;

        // Pre-encoded once per prompt and codec: a frame is a copy.
        let samples = self.prompt.encoded(self.codec);
        let mut filled = 0;
        while filled < FRAME_SAMPLES {
            if self.pos >= samples.len() {
                if self.looping {
                    self.pos = 0;
                } else {
                    break;
                }
            }
            let n = (FRAME_SAMPLES - filled).min(samples.len() - self.pos);
            out[filled..filled + n].copy_from_slice(&samples[self.pos..self.pos + n]);
            self.pos += n;
            filled += n;
        }
        out[filled..].fill(self.codec.silence());
        if !self.looping && self.pos >= samples.len() {
            self.finished = true;
        }

        let marker = self.sent == 0;
        self.slot += 1;
        self.sent += 1;
        let skipped_samples =
            u32::try_from(skipped.saturating_mul(FRAME_SAMPLES as u64)).unwrap_or(u32::MAX);
        Some(Frame {
            len: FRAME_SAMPLES,
            marker,
            skipped_samples,
        })
    }

    /// Like [`poll_frame`](Self::poll_frame) but writes a complete RTP packet through the
    /// leg's `stream`, so consecutive players on one leg share SSRC, sequence and
    /// timestamp. Returns the packet length. The PT is this player's codec.
    pub fn poll_packet(
        &mut self,
        now: Instant,
        stream: &mut OutboundStream,
        out: &mut [u8; PACKET_LEN],
    ) -> Option<usize> {
        let (hdr, body) = out.split_first_chunk_mut::<HEADER_LEN>()?;
        let body = body.first_chunk_mut::<FRAME_SAMPLES>()?;
        let frame = self.poll_frame(now, body)?;
        stream.skip_samples(frame.skipped_samples);
        stream.write_header(
            hdr,
            self.codec.payload_type(),
            FRAME_SAMPLES as u32,
            frame.len,
            frame.marker,
        );
        Some(PACKET_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{SeqNo, Ssrc};
    use crate::rtp::parse;

    fn ramp(n: usize) -> Arc<Prompt> {
        // Values that survive µ-law exactly are not needed: tests compare encoded bytes.
        Arc::new(Prompt::from_samples(
            (0..n).map(|i| (i as i16).wrapping_mul(37)).collect(),
        ))
    }

    fn stream() -> OutboundStream {
        OutboundStream::new(Ssrc(7), SeqNo(65500), 4_000_000_000, Codec::Pcmu)
    }

    /// Drive a player with polls every `step`, from `t0` to `t0 + total` inclusive.
    fn drive(
        p: &mut Player,
        s: &mut OutboundStream,
        t0: Instant,
        step: Duration,
        total: Duration,
    ) -> Vec<(Instant, crate::rtp::RtpInfo, [u8; PACKET_LEN])> {
        let mut out = Vec::new();
        let mut now = t0;
        let mut buf = [0u8; PACKET_LEN];
        while now <= t0 + total {
            let mut burst = 0;
            while let Some(n) = p.poll_packet(now, s, &mut buf) {
                out.push((now, parse(&buf[..n]).unwrap(), buf));
                burst += 1;
                assert!(burst <= MAX_BURST, "bounded drain loop");
            }
            now += step;
        }
        out
    }

    #[test]
    fn exact_packet_count_and_no_drift() {
        let t0 = Instant::now();
        for step_us in [1_000u64, 7_000, 19_999, 20_000, 33_000] {
            let mut p = Player::new(ramp(8000), Codec::Pcmu, true, t0);
            let mut s = stream();
            let pkts = drive(
                &mut p,
                &mut s,
                t0,
                Duration::from_micros(step_us),
                Duration::from_secs(10),
            );
            // Deadlines at 0, 20 ms, ..., 10 s inclusive, but polls only reach
            // t0 + floor(10 s / step) * step.
            let last_poll = (10_000_000 / step_us) * step_us;
            assert_eq!(
                pkts.len() as u64,
                last_poll / 20_000 + 1,
                "step {step_us} µs"
            );
            for (k, (at, info, _)) in pkts.iter().enumerate() {
                let due = t0 + FRAME_DURATION * k as u32;
                assert!(*at >= due, "never early");
                assert!(
                    *at - due < Duration::from_micros(step_us),
                    "late by less than one poll"
                );
                assert_eq!(info.seq, SeqNo(65500).wrapping_add(k as u16));
                assert_eq!(info.ts, 4_000_000_000u32.wrapping_add(160 * k as u32));
                assert_eq!(info.marker, k == 0);
            }
        }
    }

    #[test]
    fn sleeping_until_next_deadline_does_not_drift_over_an_hour() {
        let t0 = Instant::now();
        let mut p = Player::new(ramp(1234), Codec::Pcma, true, t0);
        let mut frame = [0u8; FRAME_SAMPLES];
        let mut n = 0u64;
        let mut last = t0;
        while let Some(t) = p.next_deadline() {
            if t > t0 + Duration::from_secs(3600) {
                break;
            }
            assert!(p.poll_frame(t, &mut frame).is_some());
            assert!(
                p.poll_frame(t, &mut frame).is_none(),
                "one frame per deadline"
            );
            last = t;
            n += 1;
        }
        assert_eq!(n, 3600 * 50 + 1);
        assert_eq!(last, t0 + Duration::from_secs(3600));
    }

    #[test]
    fn looping_moh_repeats_seamlessly() {
        let t0 = Instant::now();
        let prompt = ramp(1000); // not a multiple of 160: loops mid-frame
        let mut p = Player::new(prompt.clone(), Codec::Pcmu, true, t0);
        let mut s = stream();
        let pkts = drive(&mut p, &mut s, t0, FRAME_DURATION, Duration::from_secs(2));
        assert_eq!(pkts.len(), 101);
        let played: Vec<u8> = pkts
            .iter()
            .flat_map(|(_, _, b)| b[HEADER_LEN..].to_vec())
            .collect();
        for (i, b) in played.iter().enumerate() {
            assert_eq!(
                *b,
                Codec::Pcmu.encode_sample(prompt.samples()[i % 1000]),
                "sample {i}"
            );
        }
        assert!(!p.is_finished());
    }

    #[test]
    fn prompt_plays_once_then_finishes() {
        let t0 = Instant::now();
        let prompt = ramp(1000);
        let mut p = Player::new(prompt.clone(), Codec::Pcma, false, t0);
        let mut s = stream();
        let pkts = drive(
            &mut p,
            &mut s,
            t0,
            Duration::from_millis(5),
            Duration::from_secs(1),
        );
        assert_eq!(pkts.len(), 7, "6 full frames + 40 samples padded");
        assert!(p.is_finished());
        assert_eq!(p.next_deadline(), None);
        let last = &pkts[6].2[HEADER_LEN..];
        assert_eq!(last[39], Codec::Pcma.encode_sample(prompt.samples()[999]));
        assert!(last[40..].iter().all(|&b| b == Codec::Pcma.silence()));
        assert_eq!(pkts[0].1.pt.get(), 8);
        assert!(Player::new(Arc::new(Prompt::default()), Codec::Pcmu, true, t0).is_finished());
    }

    #[test]
    fn stall_skips_schedule_not_audio() {
        let t0 = Instant::now();
        let prompt = ramp(8000);
        let mut p = Player::new(prompt.clone(), Codec::Pcmu, false, t0);
        let mut s = stream();
        let mut buf = [0u8; PACKET_LEN];
        assert!(p.poll_packet(t0, &mut s, &mut buf).is_some());
        // Process stalls for a second: 50 frames are due, only MAX_BURST go out now.
        let late = t0 + Duration::from_secs(1);
        let mut got = Vec::new();
        while let Some(n) = p.poll_packet(late, &mut s, &mut buf) {
            got.push((parse(&buf[..n]).unwrap(), buf));
        }
        assert_eq!(got.len() as u64, MAX_BURST);
        // Timestamps line up with wall clock again: slots 48, 49, 50.
        let ts: Vec<u32> = got
            .iter()
            .map(|(i, _)| i.ts.wrapping_sub(4_000_000_000))
            .collect();
        assert_eq!(ts, [48 * 160, 49 * 160, 50 * 160]);
        // Sequence numbers stay contiguous (nothing was lost on the wire).
        assert_eq!(got[0].0.seq, SeqNo(65501));
        // Audio resumes where it stopped.
        assert_eq!(
            got[0].1[HEADER_LEN],
            Codec::Pcmu.encode_sample(prompt.samples()[160])
        );
        assert_eq!(p.next_deadline(), Some(t0 + Duration::from_millis(1020)));
    }

    #[test]
    fn resumed_player_continues_with_the_next_frame() {
        let t0 = Instant::now();
        let prompt = ramp(2000);
        let mut p = Player::new(prompt.clone(), Codec::Pcmu, false, t0);
        let mut s = stream();
        let before = drive(
            &mut p,
            &mut s,
            t0,
            FRAME_DURATION,
            Duration::from_millis(40),
        );
        assert_eq!(before.len(), 3);
        let snap_at = t0 + Duration::from_millis(45);
        let pos = p.position(snap_at);
        assert_eq!(pos.sample, 480);
        assert_eq!(pos.next_frame_in, Duration::from_millis(15));
        // Another process, another clock: resume relative to its own `now`.
        let t1 = t0 + Duration::from_secs(100);
        let mut q = Player::resume(prompt.clone(), Codec::Pcmu, false, &pos, t1);
        assert_eq!(q.next_deadline(), Some(t1 + Duration::from_millis(15)));
        let mut buf = [0u8; PACKET_LEN];
        assert!(q.poll_packet(t1, &mut s, &mut buf).is_none(), "not early");
        let n = q
            .poll_packet(t1 + pos.next_frame_in, &mut s, &mut buf)
            .unwrap();
        let info = parse(&buf[..n]).unwrap();
        assert!(!info.marker, "same talk-spurt");
        assert_eq!(info.seq, SeqNo(65503));
        assert_eq!(
            buf[HEADER_LEN],
            Codec::Pcmu.encode_sample(prompt.samples()[480])
        );
        // A position past the end of a shorter prompt is finished, not a panic.
        let short = Player::resume(ramp(100), Codec::Pcmu, false, &pos, t1);
        assert!(short.is_finished());
    }

    #[test]
    fn prompt_then_moh_on_one_stream_is_continuous() {
        let t0 = Instant::now();
        let mut s = stream();
        let mut welcome = Player::new(ramp(800), Codec::Pcmu, false, t0);
        let mut pkts = drive(
            &mut welcome,
            &mut s,
            t0,
            Duration::from_millis(10),
            Duration::from_millis(200),
        );
        assert!(welcome.is_finished());
        assert_eq!(pkts.len(), 5);
        // MOH starts 100 ms after the prompt's media ended.
        let moh_start = welcome.covered_until() + Duration::from_millis(100);
        s.skip_duration(moh_start - welcome.covered_until());
        let mut moh = Player::new(ramp(500), Codec::Pcmu, true, moh_start);
        pkts.extend(drive(
            &mut moh,
            &mut s,
            moh_start,
            Duration::from_millis(10),
            Duration::from_millis(100),
        ));
        assert_eq!(pkts.len(), 11);
        for (k, (_, info, _)) in pkts.iter().enumerate() {
            assert_eq!(info.ssrc, Ssrc(7));
            assert_eq!(
                info.seq,
                SeqNo(65500).wrapping_add(k as u16),
                "contiguous across the switch"
            );
            let slot = if k < 5 { k } else { k + 5 }; // 100 ms = 5 frames of silence
            assert_eq!(info.ts, 4_000_000_000u32.wrapping_add(160 * slot as u32));
            assert_eq!(
                info.marker,
                k == 0 || k == 5,
                "marker on each new talk-spurt"
            );
        }
    }
}
