//! Voicemail recording, sans-IO: the caller's G.711 RTP payloads decoded to 8 kHz
//! linear PCM, bounded by a maximum length, ended early by silence or by the shell
//! (`#` pressed). The shell writes the result as a WAV file.
//!
//! ```text
//!  RTP payload from the caller ─▶ push_payload(codec, payload, now)
//!  timer at poll_timeout()     ─▶ handle_timeout(now)   (max length, silence)
//!  `#` / hang-up               ─▶ stop()
//!  is_done()                   ─▶ finish() ─▶ Recording { samples, end, heard_voice }
//! ```
//!
//! Silence is measured in time, not in samples: a phone that stops sending RTP
//! (silence suppression, a pcap that ran out) is as silent as one sending quiet frames.

use std::time::{Duration, Instant};

use crate::codec::{Codec, SAMPLE_RATE};

/// Hard cap on one recording, whatever the flow asks: 5 minutes is 4.8 MB of PCM.
pub const MAX_RECORD_MS: u32 = 300_000;

/// Mean absolute amplitude of a chunk at or below which it counts as silence
/// (about -40 dBFS: line noise and comfort noise stay under it, speech does not).
pub const SILENCE_THRESHOLD: u32 = 330;

/// Audio kept after the last voiced chunk when silence ends a recording, so the
/// last word is not clipped.
const SILENCE_TAIL: Duration = Duration::from_millis(250);

/// Why a recording ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordEnd {
    /// `max_ms` (or [`MAX_RECORD_MS`]) reached.
    MaxLength,
    /// `silence_ms` without voice.
    Silence,
    /// The shell stopped it (`#`, hang-up).
    Stopped,
}

impl RecordEnd {
    /// Label for metrics.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            RecordEnd::MaxLength => "max_length",
            RecordEnd::Silence => "silence",
            RecordEnd::Stopped => "stopped",
        }
    }
}

/// A finished recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recording {
    /// 8 kHz mono linear PCM.
    pub samples: Vec<i16>,
    pub end: RecordEnd,
    /// Whether any chunk was above the silence threshold.
    pub heard_voice: bool,
}

impl Recording {
    /// Length of the audio in milliseconds.
    #[must_use]
    pub fn duration_ms(&self) -> u32 {
        let ms = self.samples.len() as u64 * 1000 / u64::from(SAMPLE_RATE);
        u32::try_from(ms).unwrap_or(u32::MAX)
    }
}

/// One recording in progress.
#[derive(Debug, Clone)]
pub struct Recorder {
    samples: Vec<i16>,
    max_samples: usize,
    /// `None`: silence does not end the recording.
    silence: Option<Duration>,
    deadline: Instant,
    last_voice: Instant,
    heard_voice: bool,
    /// Sample count just after the last voiced chunk.
    voiced_len: usize,
    ended: Option<RecordEnd>,
}

impl Recorder {
    /// Starts recording at `now` for at most `max_ms` (capped at [`MAX_RECORD_MS`]);
    /// `silence_ms` of silence ends it (0: never).
    #[must_use]
    pub fn new(max_ms: u32, silence_ms: u32, now: Instant) -> Self {
        let max_ms = max_ms.clamp(1, MAX_RECORD_MS);
        let max_samples = (u64::from(max_ms) * u64::from(SAMPLE_RATE) / 1000) as usize;
        Self {
            // A first second up front; the rest grows with what arrives.
            samples: Vec::with_capacity(max_samples.min(SAMPLE_RATE as usize)),
            max_samples,
            silence: (silence_ms > 0).then(|| Duration::from_millis(u64::from(silence_ms))),
            deadline: now + Duration::from_millis(u64::from(max_ms)),
            last_voice: now,
            heard_voice: false,
            voiced_len: 0,
            ended: None,
        }
    }

    /// An RTP payload of `codec` from the caller.
    pub fn push_payload(&mut self, codec: Codec, payload: &[u8], now: Instant) {
        if self.ended.is_some() {
            return;
        }
        let room = self.max_samples - self.samples.len();
        let n = payload.len().min(room);
        let start = self.samples.len();
        self.samples.resize(start + n, 0);
        codec.decode_frame(&payload[..n], &mut self.samples[start..]);
        self.after_push(start, now);
    }

    /// Linear samples from the caller (tests, other codecs decoded by the shell).
    pub fn push_pcm(&mut self, pcm: &[i16], now: Instant) {
        if self.ended.is_some() {
            return;
        }
        let room = self.max_samples - self.samples.len();
        let start = self.samples.len();
        self.samples.extend_from_slice(&pcm[..pcm.len().min(room)]);
        self.after_push(start, now);
    }

    fn after_push(&mut self, start: usize, now: Instant) {
        let chunk = &self.samples[start..];
        if !chunk.is_empty() && mean_abs(chunk) > SILENCE_THRESHOLD {
            self.heard_voice = true;
            self.last_voice = now;
            self.voiced_len = self.samples.len();
        }
        if self.samples.len() >= self.max_samples {
            self.ended = Some(RecordEnd::MaxLength);
        }
        self.handle_timeout(now);
    }

    /// Ends the recording now (`#` pressed, caller gone).
    pub fn stop(&mut self) {
        self.ended.get_or_insert(RecordEnd::Stopped);
    }

    /// Checks the length and silence limits.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.ended.is_some() {
            return;
        }
        if now >= self.deadline {
            self.ended = Some(RecordEnd::MaxLength);
        } else if self.silence.is_some_and(|s| now >= self.last_voice + s) {
            self.ended = Some(RecordEnd::Silence);
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) must run next; `None` once done.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.ended.is_some() {
            return None;
        }
        let silence = self.silence.map(|s| self.last_voice + s);
        Some(silence.map_or(self.deadline, |s| s.min(self.deadline)))
    }

    #[must_use]
    pub fn is_done(&self) -> bool {
        self.ended.is_some()
    }

    /// The audio and why it ended (`Stopped` if it had not ended yet). Trailing
    /// silence is trimmed to a short tail when silence ended it.
    #[must_use]
    pub fn finish(mut self) -> Recording {
        let end = self.ended.unwrap_or(RecordEnd::Stopped);
        if end == RecordEnd::Silence {
            let tail = (SILENCE_TAIL.as_millis() as usize) * SAMPLE_RATE as usize / 1000;
            let keep = (self.voiced_len + tail).min(self.samples.len());
            self.samples.truncate(keep);
        }
        Recording {
            samples: self.samples,
            end,
            heard_voice: self.heard_voice,
        }
    }
}

fn mean_abs(chunk: &[i16]) -> u32 {
    let sum: u64 = chunk.iter().map(|s| u64::from(s.unsigned_abs())).sum();
    (sum / chunk.len() as u64) as u32
}

/// The beep before a recording: 300 ms of 1 kHz at about -12 dBFS.
#[must_use]
pub fn beep() -> crate::wav::Prompt {
    const MS: usize = 300;
    let n = MS * SAMPLE_RATE as usize / 1000;
    let samples = (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(SAMPLE_RATE);
            (8000.0 * (2.0 * std::f64::consts::PI * 1000.0 * t).sin()) as i16
        })
        .collect();
    crate::wav::Prompt::from_samples(samples)
}

/// A call's recording: the beep first if asked, then the [`Recorder`]. Kept by
/// [`CallMedia`](crate::CallMedia), which feeds it the caller's RTP.
#[derive(Debug, Clone)]
pub struct CallRecording {
    token: u64,
    state: RecState,
}

#[derive(Debug, Clone)]
enum RecState {
    /// The beep plays; recording starts when it ends.
    Beep {
        max_ms: u32,
        silence_ms: u32,
    },
    Recording(Recorder),
    /// Stopped before the beep ended: nothing recorded.
    Cancelled,
}

impl CallRecording {
    #[must_use]
    pub fn new(token: u64, max_ms: u32, silence_ms: u32, beep: bool, now: Instant) -> Self {
        let state = if beep {
            RecState::Beep { max_ms, silence_ms }
        } else {
            RecState::Recording(Recorder::new(max_ms, silence_ms, now))
        };
        Self { token, state }
    }

    #[must_use]
    pub fn token(&self) -> u64 {
        self.token
    }

    #[must_use]
    pub fn is_beeping(&self) -> bool {
        matches!(self.state, RecState::Beep { .. })
    }

    /// The beep ended: the caller speaks from now.
    pub fn beep_finished(&mut self, now: Instant) {
        if let RecState::Beep { max_ms, silence_ms } = self.state {
            self.state = RecState::Recording(Recorder::new(max_ms, silence_ms, now));
        }
    }

    /// An RTP packet from the caller; only G.711 audio is recorded (not
    /// telephone-events or comfort noise).
    pub fn on_rtp(&mut self, pt: u8, payload: &[u8], now: Instant) {
        if let (RecState::Recording(r), Some(codec)) =
            (&mut self.state, Codec::from_payload_type(pt))
        {
            r.push_payload(codec, payload, now);
        }
    }

    pub fn stop(&mut self) {
        match &mut self.state {
            RecState::Recording(r) => r.stop(),
            _ => self.state = RecState::Cancelled,
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if let RecState::Recording(r) = &mut self.state {
            r.handle_timeout(now);
        }
    }

    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            RecState::Recording(r) => r.poll_timeout(),
            _ => None,
        }
    }

    #[must_use]
    pub fn is_done(&self) -> bool {
        match &self.state {
            RecState::Recording(r) => r.is_done(),
            RecState::Beep { .. } => false,
            RecState::Cancelled => true,
        }
    }

    #[must_use]
    pub fn finish(self) -> Recording {
        match self.state {
            RecState::Recording(r) => r.finish(),
            _ => Recording {
                samples: Vec::new(),
                end: RecordEnd::Stopped,
                heard_voice: false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wav::{load_wav, wav_info, write_wav, WavEncoding};

    const FRAME: Duration = Duration::from_millis(20);

    fn tone(n: usize, amplitude: f64) -> Vec<i16> {
        (0..n)
            .map(|i| (amplitude * (i as f64 * 0.3).sin()) as i16)
            .collect()
    }

    /// Feeds `frames` 20 ms frames of `pcm` encoded as `codec`, one per 20 ms.
    fn feed(rec: &mut Recorder, codec: Codec, pcm: &[i16], frames: usize, t: &mut Instant) {
        let mut payload = [0u8; 160];
        for _ in 0..frames {
            codec.encode_frame(&pcm[..160], &mut payload);
            rec.push_payload(codec, &payload, *t);
            *t += FRAME;
        }
    }

    #[test]
    fn decodes_g711_to_pcm() {
        let t0 = Instant::now();
        let pcm = tone(160, 6000.0);
        for codec in [Codec::Pcmu, Codec::Pcma] {
            let mut rec = Recorder::new(10_000, 0, t0);
            let mut t = t0;
            feed(&mut rec, codec, &pcm, 5, &mut t);
            let r = rec.finish();
            assert_eq!(r.samples.len(), 800);
            assert_eq!(r.duration_ms(), 100);
            assert!(r.heard_voice);
            // G.711 is lossy but close: within a few percent of the original.
            for (a, b) in r.samples[..160].iter().zip(&pcm) {
                assert!((i32::from(*a) - i32::from(*b)).abs() <= 400, "{a} vs {b}");
            }
        }
    }

    #[test]
    fn max_length_caps_samples_and_time() {
        let t0 = Instant::now();
        let mut rec = Recorder::new(1000, 0, t0);
        let mut t = t0;
        feed(&mut rec, Codec::Pcmu, &tone(160, 6000.0), 80, &mut t);
        assert!(rec.is_done());
        let r = rec.finish();
        assert_eq!(r.end, RecordEnd::MaxLength);
        assert_eq!(r.samples.len(), 8000);
        // With no RTP at all the clock still ends it.
        let mut quiet = Recorder::new(1000, 0, t0);
        assert_eq!(quiet.poll_timeout(), Some(t0 + Duration::from_secs(1)));
        quiet.handle_timeout(t0 + Duration::from_millis(999));
        assert!(!quiet.is_done());
        quiet.handle_timeout(t0 + Duration::from_secs(1));
        assert_eq!(quiet.finish().end, RecordEnd::MaxLength);
        // The flow cannot ask for more than the hard cap.
        let huge = Recorder::new(u32::MAX, 0, t0);
        assert_eq!(
            huge.poll_timeout(),
            Some(t0 + Duration::from_millis(u64::from(MAX_RECORD_MS)))
        );
    }

    #[test]
    fn silence_ends_and_is_trimmed() {
        let t0 = Instant::now();
        let mut rec = Recorder::new(60_000, 1000, t0);
        let mut t = t0;
        feed(&mut rec, Codec::Pcma, &tone(160, 6000.0), 50, &mut t); // 1 s of voice
        feed(&mut rec, Codec::Pcma, &[0i16; 160], 49, &mut t); // 0.98 s quiet
        assert!(!rec.is_done());
        feed(&mut rec, Codec::Pcma, &[0i16; 160], 2, &mut t);
        assert!(rec.is_done());
        let r = rec.finish();
        assert_eq!(r.end, RecordEnd::Silence);
        assert!(r.heard_voice);
        // 1 s of voice and a 250 ms tail, not the whole second of silence.
        assert_eq!(r.duration_ms(), 1250);
    }

    #[test]
    fn nothing_said_is_silence_without_voice() {
        let t0 = Instant::now();
        let mut rec = Recorder::new(60_000, 2000, t0);
        let deadline = rec.poll_timeout();
        assert_eq!(deadline, Some(t0 + Duration::from_secs(2)));
        rec.handle_timeout(t0 + Duration::from_secs(2));
        let r = rec.finish();
        assert_eq!(r.end, RecordEnd::Silence);
        assert!(!r.heard_voice);
        assert!(r.samples.is_empty());
    }

    #[test]
    fn stop_keeps_what_was_said() {
        let t0 = Instant::now();
        let mut rec = Recorder::new(60_000, 3000, t0);
        let mut t = t0;
        feed(&mut rec, Codec::Pcmu, &tone(160, 6000.0), 10, &mut t);
        rec.stop();
        feed(&mut rec, Codec::Pcmu, &tone(160, 6000.0), 10, &mut t);
        let r = rec.finish();
        assert_eq!(r.end, RecordEnd::Stopped);
        assert_eq!(r.duration_ms(), 200);
    }

    #[test]
    fn wav_is_8khz_mono_16bit_pcm() {
        let t0 = Instant::now();
        let mut rec = Recorder::new(60_000, 0, t0);
        rec.push_pcm(&tone(4000, 6000.0), t0);
        let r = rec.finish();
        let bytes = write_wav(&r.samples, WavEncoding::Pcm16);
        assert_eq!(&bytes[..4], b"RIFF");
        assert_eq!(&bytes[8..16], b"WAVEfmt ");
        let info = wav_info(&bytes).expect("valid wav");
        assert_eq!(info.encoding, WavEncoding::Pcm16);
        assert_eq!((info.sample_rate, info.channels), (8000, 1));
        assert_eq!(info.samples, 4000);
        assert_eq!(bytes.len(), 44 + 8000);
        assert_eq!(load_wav(&bytes).expect("loads").samples(), &r.samples[..]);
    }

    #[test]
    fn beep_is_audible() {
        let b = beep();
        assert_eq!(b.len(), 2400);
        assert!(mean_abs(b.samples()) > SILENCE_THRESHOLD);
    }
}
