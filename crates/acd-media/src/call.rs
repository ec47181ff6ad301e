//! The media of one call, sans-IO: two legs (caller `A`, agent `B`), each with a
//! latched peer for RTP and RTCP, an outbound stream, the direction its SDP declared
//! and an inactivity timer; a prompt/MOH player towards the caller; the relay.
//!
//! The shell owns the sockets and the clock and runs one loop:
//!
//! ```text
//!  datagram on leg L's RTP socket  ─▶ handle_rtp(L, from, &mut buf, now)  ─▶ Forward{leg, to}: send buf
//!  datagram on leg L's RTCP socket ─▶ handle_rtcp(L, from, &mut buf, now) ─▶ Forward{leg, to}: send buf
//!  command (play, bridge, hold, re-INVITE) ─▶ play / bridge / set_direction / renegotiate
//!  timer at poll_timeout()         ─▶ handle_timeout(now)
//!  then drain: poll_packet(now, &mut buf) (prompt frames to the caller), poll_event()
//! ```
//!
//! Everything here serialises ([`CallMedia::snapshot`]), deadlines as durations from
//! `now`, so another process can [`restore`](CallMedia::restore) the call's media and
//! carry on with the same SSRCs, sequence numbers and prompt position.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::codec::Codec;
use crate::dtmf::DtmfDetector;
use crate::ids::{PayloadType, Ssrc};
use crate::latch::{Latch, LatchConfig, LatchSnapshot, Verdict};
use crate::player::{Player, PlayerPosition, PACKET_LEN};
use crate::recorder::{CallRecording, Recording};
use crate::relay::{Leg, Relay};
use crate::sdp::Direction;
use crate::stream::OutboundStream;
use crate::wav::Prompt;
use crate::{rtcp, rtp};

/// Settings of a call's media.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MediaConfig {
    pub latch: LatchConfig,
    /// Report a leg that should be sending but sent no RTP for this long; `None` never.
    pub inactivity: Option<Duration>,
}

/// Default media-inactivity timeout: long enough for silence-suppressing phones,
/// which still send comfort noise every few seconds.
pub const DEFAULT_INACTIVITY: Duration = Duration::from_secs(60);

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            latch: LatchConfig::default(),
            inactivity: Some(DEFAULT_INACTIVITY),
        }
    }
}

/// A prompt with the name it is configured under; the name is what a snapshot keeps.
#[derive(Debug, Clone)]
pub struct NamedPrompt {
    pub name: String,
    pub prompt: Arc<Prompt>,
}

/// What to do with a received datagram (already rewritten in place when forwarded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum RxOutcome {
    /// Send the buffer to `to` from leg `leg`'s socket (RTP or RTCP, as received).
    Forward { leg: Leg, to: SocketAddr },
    /// Valid and from the right peer, but nothing to send (not bridged, on hold, …).
    Absorbed,
    /// Refused; count it under the reason's label.
    Dropped(DropReason),
}

/// Why a datagram was refused; [`as_str`](Self::as_str) is the metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    NotRtp,
    BadRtcp,
    /// Not from the leg's SDP address nor its latched source ("RTP Bleed").
    ForeignSource,
    /// On the agent leg's port before the agent answered.
    NotNegotiated,
}

impl DropReason {
    /// Label for `acd_rtp_errors_total{kind=…}`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            DropReason::NotRtp => "not_rtp",
            DropReason::BadRtcp => "bad_rtcp",
            DropReason::ForeignSource => "foreign_source",
            DropReason::NotNegotiated => "not_negotiated",
        }
    }
}

/// Reports for the signalling side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaOutput {
    /// A non-looping prompt played to its end (or could not be restored).
    PromptFinished { token: u64 },
    /// `leg` should be sending but no RTP arrived since `since`. Reported once; again
    /// only after media resumed and stopped again.
    Inactive { leg: Leg, since: Instant },
    /// The caller pressed a key (RFC 4733 telephone-event), reported once per
    /// press at its first packet (see [`crate::dtmf`]).
    Digit { digit: char },
    /// The recording started with this token ended; the shell takes it with
    /// [`CallMedia::take_recording`].
    RecordingFinished { token: u64 },
}

/// The RTCP peer when SDP has no `a=rtcp` (RFC 3550 §11: the next port up).
fn rtcp_of(rtp: SocketAddr) -> SocketAddr {
    SocketAddr::new(rtp.ip(), rtp.port().wrapping_add(1))
}

/// Whether a peer that declared `d` sends media.
fn sends(d: Direction) -> bool {
    matches!(d, Direction::SendRecv | Direction::SendOnly)
}

/// Whether a peer that declared `d` wants to receive media.
fn receives(d: Direction) -> bool {
    matches!(d, Direction::SendRecv | Direction::RecvOnly)
}

#[derive(Debug, Clone)]
struct LegMedia {
    rtp: Latch,
    rtcp: Latch,
    stream: OutboundStream,
    /// Direction the peer's SDP declared, from its point of view.
    direction: Direction,
    /// Last accepted RTP, or when the leg last (re)started owing us media.
    last_rx: Instant,
    inactive_reported: bool,
    /// SSRC of the last accepted RTP: what RTCP towards this peer reports about.
    in_ssrc: Option<Ssrc>,
}

impl LegMedia {
    fn new(cfg: &MediaConfig, remote: SocketAddr, stream: OutboundStream, now: Instant) -> Self {
        Self {
            rtp: Latch::new(cfg.latch, remote, now),
            rtcp: Latch::new(cfg.latch, rtcp_of(remote), now),
            stream,
            direction: Direction::SendRecv,
            last_rx: now,
            inactive_reported: false,
            in_ssrc: None,
        }
    }

    /// Give the peer a full period after any change before calling it inactive.
    fn rearm(&mut self, now: Instant) {
        self.last_rx = now;
        self.inactive_reported = false;
    }

    /// When this leg counts as inactive. Hold in either direction suspends the check:
    /// a phone that put the call on hold often stops sending even when it said
    /// `sendonly`, and that silence is not a dead call.
    fn inactive_at(&self, timeout: Option<Duration>) -> Option<Instant> {
        let t = timeout?;
        (self.direction == Direction::SendRecv && !self.inactive_reported).then(|| self.last_rx + t)
    }
}

#[derive(Debug, Clone)]
struct Playing {
    player: Player,
    name: String,
    token: u64,
    /// Music on hold started by the agent's hold; ended by the unhold.
    moh: bool,
}

/// The media state machine of one call. See the module docs for the drive loop.
#[derive(Debug)]
pub struct CallMedia {
    cfg: MediaConfig,
    caller: LegMedia,
    agent: Option<LegMedia>,
    relay: Relay,
    playing: Option<Playing>,
    hold_music: Option<NamedPrompt>,
    /// The caller's telephone-event payload type, from its SDP.
    telephone_event: Option<PayloadType>,
    dtmf: DtmfDetector,
    events: VecDeque<MediaOutput>,
    /// A voicemail being recorded (not in snapshots: a hand-over ends it).
    recording: Option<CallRecording>,
    finished_recording: Option<(u64, Recording)>,
}

impl CallMedia {
    /// Media for a caller whose SDP names `caller_remote`; `caller_stream` (random SSRC,
    /// sequence and timestamp from the shell) carries everything we send the caller.
    #[must_use]
    pub fn new(
        cfg: MediaConfig,
        caller_remote: SocketAddr,
        caller_stream: OutboundStream,
        now: Instant,
    ) -> Self {
        Self {
            caller: LegMedia::new(&cfg, caller_remote, caller_stream, now),
            cfg,
            agent: None,
            relay: Relay::new(),
            playing: None,
            hold_music: None,
            telephone_event: None,
            dtmf: DtmfDetector::default(),
            events: VecDeque::with_capacity(4),
            recording: None,
            finished_recording: None,
        }
    }

    /// The payload type the caller sends RFC 4733 telephone-events with (its
    /// SDP's `telephone-event/8000`); `None` turns digit detection off.
    pub fn set_telephone_event(&mut self, pt: Option<u8>) {
        self.telephone_event = pt.and_then(PayloadType::new);
    }

    /// Music played to the caller while the agent holds; `None` relays whatever the
    /// agent's phone sends instead.
    pub fn set_hold_music(&mut self, music: Option<NamedPrompt>) {
        self.hold_music = music;
    }

    /// Change the inactivity timeout (`None`: never report).
    pub fn set_inactivity(&mut self, timeout: Option<Duration>) {
        self.cfg.inactivity = timeout;
    }

    fn leg(&self, leg: Leg) -> Option<&LegMedia> {
        match leg {
            Leg::A => Some(&self.caller),
            Leg::B => self.agent.as_ref(),
        }
    }

    fn leg_mut(&mut self, leg: Leg) -> Option<&mut LegMedia> {
        match leg {
            Leg::A => Some(&mut self.caller),
            Leg::B => self.agent.as_mut(),
        }
    }

    /// Where leg `leg`'s RTP goes now (latched source, else SDP address).
    #[must_use]
    pub fn rtp_peer(&self, leg: Leg) -> Option<SocketAddr> {
        self.leg(leg).and_then(|l| l.rtp.peer())
    }

    /// Where leg `leg`'s RTCP goes now.
    #[must_use]
    pub fn rtcp_peer(&self, leg: Leg) -> Option<SocketAddr> {
        self.leg(leg).and_then(|l| l.rtcp.peer())
    }

    /// The outbound stream towards `leg` (SSRC, next seq/ts, counts).
    #[must_use]
    pub fn stream(&self, leg: Leg) -> Option<&OutboundStream> {
        self.leg(leg).map(|l| &l.stream)
    }

    /// Packets dropped as foreign on `leg` (RTP and RTCP).
    #[must_use]
    pub fn foreign(&self, leg: Leg) -> u64 {
        self.leg(leg)
            .map_or(0, |l| l.rtp.foreign() + l.rtcp.foreign())
    }

    /// Relay counters of the packets received from `leg` (loss included).
    #[must_use]
    pub fn relay_counters(&self, from: Leg) -> crate::relay::RelayCounters {
        self.relay.counters(from)
    }

    /// Whether a prompt or music is playing to the caller.
    #[must_use]
    pub fn is_playing(&self) -> bool {
        self.playing.is_some()
    }

    /// Play `prompt` to the caller from `now`; `token` comes back in `PromptFinished`.
    /// Replaces whatever played before.
    pub fn play(&mut self, prompt: NamedPrompt, looping: bool, token: u64, now: Instant) {
        self.start_player(prompt, looping, token, false, now);
    }

    fn start_player(
        &mut self,
        prompt: NamedPrompt,
        looping: bool,
        token: u64,
        moh: bool,
        now: Instant,
    ) {
        let codec = self.caller.stream.codec();
        self.caller.stream.start_talkspurt();
        self.playing = Some(Playing {
            player: Player::new(prompt.prompt, codec, looping, now),
            name: prompt.name,
            token,
            moh,
        });
    }

    /// Stop playing to the caller (no `PromptFinished`).
    pub fn stop_playback(&mut self) {
        self.playing = None;
    }

    /// The agent answered with SDP naming `agent_remote`: relay both ways from now on.
    /// `agent_stream` is our new stream towards the agent.
    pub fn bridge(&mut self, agent_remote: SocketAddr, agent_stream: OutboundStream, now: Instant) {
        self.playing = None;
        self.relay.reset(Leg::A);
        self.relay.reset(Leg::B);
        self.agent = Some(LegMedia::new(&self.cfg, agent_remote, agent_stream, now));
    }

    /// The agent leg is gone but the caller stays (the agent transferred the
    /// call): nothing is relayed until the next `bridge`.
    pub fn unbridge(&mut self) {
        self.agent = None;
        self.relay.reset(Leg::A);
        self.relay.reset(Leg::B);
    }

    /// Leg `leg`'s peer declared `direction` (re-INVITE / UPDATE: hold, unhold). Relay
    /// towards a peer that does not receive stops; a peer that does not send is not
    /// inactive; the agent's hold plays hold music to the caller if configured.
    /// Returns `false` if the leg does not exist yet.
    pub fn set_direction(&mut self, leg: Leg, direction: Direction, now: Instant) -> bool {
        let Some(l) = self.leg_mut(leg) else {
            return false;
        };
        l.direction = direction;
        l.rearm(now);
        if leg == Leg::B {
            self.agent_hold_changed(now);
        }
        true
    }

    fn agent_hold_changed(&mut self, now: Instant) {
        let held = self.agent.as_ref().is_some_and(|a| !receives(a.direction));
        let moh_playing = self.playing.as_ref().is_some_and(|p| p.moh);
        match (held, moh_playing, self.hold_music.clone()) {
            (true, false, Some(music)) if self.playing.is_none() => {
                self.start_player(music, true, 0, true, now);
            }
            (false, true, _) => self.playing = None,
            _ => {}
        }
    }

    /// Leg `leg` renegotiated (re-INVITE / UPDATE): new remote address and codec. The
    /// latch learns again; the relay re-anchors on the next packet from the leg; what
    /// we send the leg is encoded with `codec` from now on (transcoded if the other leg
    /// uses the other law). Returns `false` if the leg does not exist yet.
    pub fn renegotiate(
        &mut self,
        leg: Leg,
        remote: SocketAddr,
        codec: Codec,
        now: Instant,
    ) -> bool {
        let Some(l) = self.leg_mut(leg) else {
            return false;
        };
        l.rtp.renegotiated(remote, now);
        l.rtcp.renegotiated(rtcp_of(remote), now);
        l.stream.set_codec(codec);
        l.stream.start_talkspurt();
        l.rearm(now);
        self.relay.reset(leg);
        if leg == Leg::A {
            if let Some(p) = self.playing.as_mut() {
                p.player.set_codec(codec);
            }
        }
        true
    }

    /// A datagram arrived on leg `from_leg`'s RTP socket from `from`. When the outcome
    /// is `Forward`, `packet` has been rewritten in place for the other leg.
    pub fn handle_rtp(
        &mut self,
        from_leg: Leg,
        from: SocketAddr,
        packet: &mut [u8],
        now: Instant,
    ) -> RxOutcome {
        let Ok(info) = rtp::parse(packet) else {
            return RxOutcome::Dropped(DropReason::NotRtp);
        };
        let playing_to_caller = self.playing.is_some();
        let (src, dst) = match from_leg {
            Leg::A => (Some(&mut self.caller), self.agent.as_mut()),
            Leg::B => (self.agent.as_mut(), Some(&mut self.caller)),
        };
        let Some(src) = src else {
            return RxOutcome::Dropped(DropReason::NotNegotiated);
        };
        if src.rtp.on_packet(from, info.ssrc, now) == Verdict::Foreign {
            return RxOutcome::Dropped(DropReason::ForeignSource);
        }
        src.rearm(now);
        src.in_ssrc = Some(info.ssrc);
        if from_leg == Leg::A && Some(info.pt) == self.telephone_event {
            if let Some(digit) = self.dtmf.on_packet(&info, packet) {
                self.events.push_back(MediaOutput::Digit { digit });
            }
        }
        if from_leg == Leg::A {
            if let Some(r) = self.recording.as_mut() {
                r.on_rtp(u8::from(info.pt), info.payload(packet), now);
            }
        }
        let Some(dst) = dst else {
            return RxOutcome::Absorbed;
        };
        // A prompt or hold music has the caller's ear; a peer that said it does not
        // send is ignored (RFC 3264 §5.1); one that does not receive gets nothing.
        let muted = from_leg == Leg::B && playing_to_caller;
        let Some(to) = dst.rtp.peer() else {
            return RxOutcome::Absorbed;
        };
        if muted || !sends(src.direction) || !receives(dst.direction) {
            return RxOutcome::Absorbed;
        }
        match self.relay.forward(from_leg, packet, &mut dst.stream) {
            Ok(leg) => RxOutcome::Forward { leg, to },
            Err(_) => RxOutcome::Dropped(DropReason::NotRtp),
        }
    }

    /// A datagram arrived on leg `from_leg`'s RTCP socket from `from`. Relayed to the
    /// other leg's RTCP peer with SSRCs rewritten (see [`rtcp`](crate::rtcp)).
    pub fn handle_rtcp(
        &mut self,
        from_leg: Leg,
        from: SocketAddr,
        packet: &mut [u8],
        now: Instant,
    ) -> RxOutcome {
        let Ok(sender) = rtcp::parse(packet) else {
            return RxOutcome::Dropped(DropReason::BadRtcp);
        };
        let (src, dst) = match from_leg {
            Leg::A => (Some(&mut self.caller), self.agent.as_mut()),
            Leg::B => (self.agent.as_mut(), Some(&mut self.caller)),
        };
        let Some(src) = src else {
            return RxOutcome::Dropped(DropReason::NotNegotiated);
        };
        if src.rtcp.on_packet(from, sender, now) == Verdict::Foreign {
            return RxOutcome::Dropped(DropReason::ForeignSource);
        }
        let Some(dst) = dst else {
            return RxOutcome::Absorbed;
        };
        let Some(to) = dst.rtcp.peer() else {
            return RxOutcome::Absorbed;
        };
        match rtcp::rewrite(packet, dst.stream.ssrc(), dst.in_ssrc) {
            Ok(()) => RxOutcome::Forward {
                leg: from_leg.other(),
                to,
            },
            Err(_) => RxOutcome::Dropped(DropReason::BadRtcp),
        }
    }

    /// The next prompt packet due for the caller at `now`, written into `out`, with
    /// where to send it. Drain until `None`.
    pub fn poll_packet(
        &mut self,
        now: Instant,
        out: &mut [u8; PACKET_LEN],
    ) -> Option<(usize, SocketAddr)> {
        let to = self.caller.rtp.peer();
        let p = self.playing.as_mut()?;
        while let Some(n) = p.player.poll_packet(now, &mut self.caller.stream, out) {
            // With no address (c=0.0.0.0 hold) frames are consumed unsent, so the
            // prompt keeps to the clock.
            if let Some(to) = to {
                return Some((n, to));
            }
        }
        if p.player.is_finished() {
            let token = p.token;
            self.playing = None;
            match self.recording.as_mut() {
                // The beep before a recording: the caller speaks now.
                Some(r) if r.is_beeping() && r.token() == token => r.beep_finished(now),
                _ => self.events.push_back(MediaOutput::PromptFinished { token }),
            }
        }
        None
    }

    /// Check the inactivity timers; reports come out of [`poll_event`](Self::poll_event).
    pub fn handle_timeout(&mut self, now: Instant) {
        let timeout = self.cfg.inactivity;
        for (leg, l) in [
            (Leg::A, Some(&mut self.caller)),
            (Leg::B, self.agent.as_mut()),
        ] {
            let Some(l) = l else { continue };
            if l.inactive_at(timeout).is_some_and(|at| now >= at) {
                l.inactive_reported = true;
                self.events.push_back(MediaOutput::Inactive {
                    leg,
                    since: l.last_rx,
                });
            }
        }
        if let Some(r) = self.recording.as_mut() {
            r.handle_timeout(now);
        }
    }

    /// The next report for the signalling side.
    pub fn poll_event(&mut self) -> Option<MediaOutput> {
        self.check_recording();
        self.events.pop_front()
    }

    /// When to call [`poll_packet`](Self::poll_packet) / [`handle_timeout`](Self::handle_timeout) next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let player = self.playing.as_ref().and_then(|p| p.player.next_deadline());
        let timeout = self.cfg.inactivity;
        let a = self.caller.inactive_at(timeout);
        let b = self.agent.as_ref().and_then(|l| l.inactive_at(timeout));
        let rec = self
            .recording
            .as_ref()
            .and_then(CallRecording::poll_timeout);
        [player, a, b, rec].into_iter().flatten().min()
    }

    /// The whole state, deadlines as durations from `now`. Pending events are not
    /// included: the shell drains them after every input.
    #[must_use]
    pub fn snapshot(&self, now: Instant) -> CallMediaSnapshot {
        CallMediaSnapshot {
            cfg: self.cfg,
            caller: leg_snapshot(&self.caller, now),
            agent: self.agent.as_ref().map(|l| leg_snapshot(l, now)),
            relay: self.relay.clone(),
            playing: self.playing.as_ref().map(|p| PlayingSnapshot {
                prompt: p.name.clone(),
                codec: p.player.codec(),
                looping: p.player.is_looping(),
                position: p.player.position(now),
                token: p.token,
                moh: p.moh,
            }),
            hold_music: self.hold_music.as_ref().map(|m| m.name.clone()),
            telephone_event: self.telephone_event.map(PayloadType::get),
            dtmf: self.dtmf.clone(),
        }
    }

    /// The call's media as `s` describes it, timed from `now`. `prompts` finds a prompt
    /// by name; a prompt that is gone ends its playback (with `PromptFinished` for a
    /// non-looping one, so the IVR moves on).
    #[must_use]
    pub fn restore(
        s: &CallMediaSnapshot,
        prompts: impl Fn(&str) -> Option<Arc<Prompt>>,
        now: Instant,
    ) -> Self {
        let mut events = VecDeque::with_capacity(4);
        let playing = s.playing.as_ref().and_then(|p| match prompts(&p.prompt) {
            Some(prompt) => Some(Playing {
                player: Player::resume(prompt, p.codec, p.looping, &p.position, now),
                name: p.prompt.clone(),
                token: p.token,
                moh: p.moh,
            }),
            None => {
                if !p.looping {
                    events.push_back(MediaOutput::PromptFinished { token: p.token });
                }
                None
            }
        });
        let hold_music = s.hold_music.as_ref().and_then(|name| {
            prompts(name).map(|prompt| NamedPrompt {
                name: name.clone(),
                prompt,
            })
        });
        Self {
            cfg: s.cfg,
            caller: leg_restore(&s.caller, now),
            agent: s.agent.as_ref().map(|l| leg_restore(l, now)),
            relay: s.relay.clone(),
            playing,
            hold_music,
            telephone_event: s.telephone_event.and_then(PayloadType::new),
            dtmf: s.dtmf.clone(),
            events,
            recording: None,
            finished_recording: None,
        }
    }
}

/// Voicemail: the caller's audio into a [`Recording`] (see [`crate::recorder`]).
impl CallMedia {
    /// Records the caller from `now` (after a beep if `beep`), for at most `max_ms`,
    /// ended by `silence_ms` of silence or [`stop_recording`](Self::stop_recording);
    /// then `RecordingFinished { token }`. Stops any prompt.
    pub fn start_recording(
        &mut self,
        token: u64,
        max_ms: u32,
        silence_ms: u32,
        beep: bool,
        now: Instant,
    ) {
        self.playing = None;
        if beep {
            let prompt = NamedPrompt {
                name: "beep".into(),
                prompt: Arc::new(crate::recorder::beep()),
            };
            self.start_player(prompt, false, token, false, now);
        }
        self.recording = Some(CallRecording::new(token, max_ms, silence_ms, beep, now));
    }

    /// Ends the recording now (`#` pressed); `RecordingFinished` follows.
    pub fn stop_recording(&mut self) {
        if let Some(r) = self.recording.as_mut() {
            if r.is_beeping() {
                self.playing = None;
            }
            r.stop();
        }
    }

    /// The finished recording and its token, once `RecordingFinished` was reported.
    pub fn take_recording(&mut self) -> Option<(u64, Recording)> {
        self.finished_recording.take()
    }

    fn check_recording(&mut self) {
        if !self.recording.as_ref().is_some_and(CallRecording::is_done) {
            return;
        }
        if let Some(r) = self.recording.take() {
            let token = r.token();
            self.finished_recording = Some((token, r.finish()));
            self.events
                .push_back(MediaOutput::RecordingFinished { token });
        }
    }
}

fn leg_snapshot(l: &LegMedia, now: Instant) -> LegSnapshot {
    LegSnapshot {
        rtp: l.rtp.snapshot(now),
        rtcp: l.rtcp.snapshot(now),
        stream: l.stream.clone(),
        direction: l.direction,
        silent_for: now.saturating_duration_since(l.last_rx),
        inactive_reported: l.inactive_reported,
        in_ssrc: l.in_ssrc,
    }
}

fn leg_restore(s: &LegSnapshot, now: Instant) -> LegMedia {
    LegMedia {
        rtp: Latch::restore(&s.rtp, now),
        rtcp: Latch::restore(&s.rtcp, now),
        stream: s.stream.clone(),
        direction: s.direction,
        last_rx: now.checked_sub(s.silent_for).unwrap_or(now),
        inactive_reported: s.inactive_reported,
        in_ssrc: s.in_ssrc,
    }
}

/// [`CallMedia`] state for a live hand-over.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CallMediaSnapshot {
    pub cfg: MediaConfig,
    pub caller: LegSnapshot,
    pub agent: Option<LegSnapshot>,
    pub relay: Relay,
    pub playing: Option<PlayingSnapshot>,
    /// Name of the hold music prompt.
    pub hold_music: Option<String>,
    /// The caller's telephone-event payload type.
    #[serde(default)]
    pub telephone_event: Option<u8>,
    /// Key presses already reported, so their late packets stay silent
    /// in the next process too.
    #[serde(default)]
    pub dtmf: DtmfDetector,
}

/// One leg's media state.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LegSnapshot {
    pub rtp: LatchSnapshot,
    pub rtcp: LatchSnapshot,
    /// Our stream towards the leg: SSRC, next seq/ts, codec, packet/octet counts.
    pub stream: OutboundStream,
    pub direction: Direction,
    /// Time since the last accepted RTP (or since the inactivity timer was re-armed).
    pub silent_for: Duration,
    pub inactive_reported: bool,
    pub in_ssrc: Option<Ssrc>,
}

/// The prompt playing to the caller, by name.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PlayingSnapshot {
    pub prompt: String,
    pub codec: Codec,
    pub looping: bool,
    pub position: PlayerPosition,
    pub token: u64,
    pub moh: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{PayloadType, SeqNo};
    use crate::rtp::{parse, Header, HEADER_LEN};

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    const CALLER_SDP: &str = "10.0.0.10:4000";
    const CALLER_NAT: &str = "203.0.113.10:50000";
    const AGENT_SDP: &str = "10.0.0.20:6000";
    const SPOOF: &str = "198.51.100.66:4000";

    fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32, byte: u8) -> Vec<u8> {
        let mut hdr = [0u8; HEADER_LEN];
        Header {
            pt: PayloadType::new(pt).unwrap(),
            seq: SeqNo(seq),
            ts,
            ssrc: Ssrc(ssrc),
            marker: false,
        }
        .write(&mut hdr);
        let mut v = hdr.to_vec();
        v.extend_from_slice(&[byte; 160]);
        v
    }

    fn stream(ssrc: u32, codec: Codec) -> OutboundStream {
        OutboundStream::new(Ssrc(ssrc), SeqNo(100), 1000, codec)
    }

    fn cfg() -> MediaConfig {
        MediaConfig {
            latch: LatchConfig::default(),
            inactivity: Some(Duration::from_secs(10)),
        }
    }

    fn bridged(t0: Instant) -> CallMedia {
        let mut m = CallMedia::new(cfg(), addr(CALLER_SDP), stream(0xa, Codec::Pcmu), t0);
        m.bridge(addr(AGENT_SDP), stream(0xb, Codec::Pcmu), t0);
        m
    }

    fn prompt(name: &str, n: usize) -> NamedPrompt {
        NamedPrompt {
            name: name.into(),
            prompt: Arc::new(Prompt::from_samples(
                (0..n).map(|i| (i as i16).wrapping_mul(37)).collect(),
            )),
        }
    }

    #[test]
    fn spoofed_stream_after_latching_does_not_reach_the_agent() {
        let t0 = Instant::now();
        let mut m = bridged(t0);
        let mut p = rtp(0, 1, 160, 0x11, 0x55);
        assert_eq!(
            m.handle_rtp(Leg::A, addr(CALLER_NAT), &mut p, t0),
            RxOutcome::Forward {
                leg: Leg::B,
                to: addr(AGENT_SDP)
            }
        );
        assert_eq!(
            parse(&p).unwrap().ssrc,
            Ssrc(0xb),
            "rewritten onto our stream"
        );
        assert_eq!(
            m.rtp_peer(Leg::A),
            Some(addr(CALLER_NAT)),
            "latched behind NAT"
        );
        let t1 = t0 + Duration::from_secs(5);
        for k in 0..10 {
            let mut spoof = rtp(0, 2 + k, 320, 0x11, 0x99);
            assert_eq!(
                m.handle_rtp(Leg::A, addr(SPOOF), &mut spoof, t1),
                RxOutcome::Dropped(DropReason::ForeignSource)
            );
        }
        let mut real = rtp(0, 2, 320, 0x11, 0x55);
        assert!(matches!(
            m.handle_rtp(Leg::A, addr(CALLER_NAT), &mut real, t1),
            RxOutcome::Forward { leg: Leg::B, .. }
        ));
        assert_eq!(m.foreign(Leg::A), 10);
        // Agent audio goes to the latched caller address, not the SDP one.
        let mut back = rtp(0, 7, 70, 0x22, 0x33);
        assert_eq!(
            m.handle_rtp(Leg::B, addr(AGENT_SDP), &mut back, t1),
            RxOutcome::Forward {
                leg: Leg::A,
                to: addr(CALLER_NAT)
            }
        );
    }

    #[test]
    fn agent_port_before_answer_is_not_negotiated() {
        let t0 = Instant::now();
        let mut m = CallMedia::new(cfg(), addr(CALLER_SDP), stream(0xa, Codec::Pcmu), t0);
        let mut p = rtp(0, 1, 160, 0x11, 0x55);
        assert_eq!(
            m.handle_rtp(Leg::B, addr(AGENT_SDP), &mut p, t0),
            RxOutcome::Dropped(DropReason::NotNegotiated)
        );
        assert_eq!(
            m.handle_rtp(Leg::A, addr(CALLER_SDP), &mut p, t0),
            RxOutcome::Absorbed
        );
    }

    #[test]
    fn rtcp_is_relayed_with_ssrcs_rewritten() {
        let t0 = Instant::now();
        let mut m = bridged(t0);
        // The agent's RTP teaches us its SSRC, which the caller's reports are about.
        let mut p = rtp(0, 1, 160, 0x22, 0x55);
        let _ = m.handle_rtp(Leg::B, addr(AGENT_SDP), &mut p, t0);
        let mut rr = vec![0x81, 201, 0, 7];
        rr.extend_from_slice(&0x11u32.to_be_bytes());
        rr.extend_from_slice(&0xau32.to_be_bytes()); // about our stream to the caller
        rr.extend_from_slice(&[0; 20]);
        let out = m.handle_rtcp(Leg::A, addr("10.0.0.10:4001"), &mut rr, t0);
        assert_eq!(
            out,
            RxOutcome::Forward {
                leg: Leg::B,
                to: addr("10.0.0.20:6001")
            }
        );
        assert_eq!(
            rr[4..8],
            0xbu32.to_be_bytes(),
            "sender: our stream to the agent"
        );
        assert_eq!(
            rr[8..12],
            0x22u32.to_be_bytes(),
            "about: the agent's own stream"
        );
        // RTCP latches too.
        let mut spoof = rr.clone();
        assert_eq!(
            m.handle_rtcp(Leg::A, addr("10.0.0.10:4001"), &mut spoof, t0),
            RxOutcome::Forward {
                leg: Leg::B,
                to: addr("10.0.0.20:6001")
            }
        );
        let late = t0 + Duration::from_secs(3);
        assert_eq!(
            m.handle_rtcp(Leg::A, addr(SPOOF), &mut spoof, late),
            RxOutcome::Dropped(DropReason::ForeignSource)
        );
        assert_eq!(
            m.handle_rtcp(Leg::A, addr("10.0.0.10:4001"), &mut [0x80, 0, 0], t0),
            RxOutcome::Dropped(DropReason::BadRtcp)
        );
    }

    #[test]
    fn inactivity_is_reported_once_and_rearmed_by_media() {
        let t0 = Instant::now();
        let mut m = bridged(t0);
        assert_eq!(m.poll_timeout(), Some(t0 + Duration::from_secs(10)));
        let t1 = t0 + Duration::from_secs(4);
        let mut p = rtp(0, 1, 160, 0x11, 0x55);
        let _ = m.handle_rtp(Leg::A, addr(CALLER_SDP), &mut p, t1);
        m.handle_timeout(t0 + Duration::from_secs(10));
        assert_eq!(
            m.poll_event(),
            Some(MediaOutput::Inactive {
                leg: Leg::B,
                since: t0
            })
        );
        assert_eq!(m.poll_event(), None, "caller sent at t1");
        m.handle_timeout(t0 + Duration::from_secs(11));
        assert_eq!(m.poll_event(), None, "reported once");
        assert_eq!(m.poll_timeout(), Some(t1 + Duration::from_secs(10)));
        m.handle_timeout(t1 + Duration::from_secs(10));
        assert!(matches!(
            m.poll_event(),
            Some(MediaOutput::Inactive { leg: Leg::A, since }) if since == t1
        ));
        // Media resumes on the agent leg: re-armed.
        let t2 = t0 + Duration::from_secs(30);
        let mut p = rtp(0, 1, 160, 0x22, 0x55);
        let _ = m.handle_rtp(Leg::B, addr(AGENT_SDP), &mut p, t2);
        assert_eq!(m.poll_timeout(), Some(t2 + Duration::from_secs(10)));
    }

    #[test]
    fn hold_is_not_inactivity_and_plays_hold_music() {
        let t0 = Instant::now();
        let mut m = bridged(t0);
        m.set_hold_music(Some(prompt("moh", 800)));
        assert!(m.set_direction(Leg::B, Direction::SendOnly, t0));
        assert!(m.set_direction(Leg::A, Direction::RecvOnly, t0));
        assert!(m.is_playing());
        let mut buf = [0u8; PACKET_LEN];
        let (n, to) = m.poll_packet(t0, &mut buf).unwrap();
        assert_eq!((n, to), (PACKET_LEN, addr(CALLER_SDP)));
        assert_eq!(parse(&buf).unwrap().ssrc, Ssrc(0xa));
        // The agent's phone may keep sending; the caller hears the music, not that.
        let mut p = rtp(0, 1, 160, 0x22, 0x55);
        assert_eq!(
            m.handle_rtp(Leg::B, addr(AGENT_SDP), &mut p, t0),
            RxOutcome::Absorbed
        );
        // A minute of silence on hold is not a dead call.
        let t1 = t0 + Duration::from_secs(60);
        m.handle_timeout(t1);
        assert_eq!(m.poll_event(), None);
        // Unhold: music stops, relay resumes, the timer runs again.
        assert!(m.set_direction(Leg::B, Direction::SendRecv, t1));
        assert!(m.set_direction(Leg::A, Direction::SendRecv, t1));
        assert!(!m.is_playing());
        let mut p = rtp(0, 2, 320, 0x22, 0x55);
        assert!(matches!(
            m.handle_rtp(Leg::B, addr(AGENT_SDP), &mut p, t1),
            RxOutcome::Forward { leg: Leg::A, .. }
        ));
        let i = parse(&p).unwrap();
        assert_eq!(i.seq, SeqNo(101), "continues after the music");
        assert!(i.marker);
        assert_eq!(m.poll_timeout(), Some(t1 + Duration::from_secs(10)));
    }

    #[test]
    fn caller_telephone_events_become_one_digit_per_press() {
        let t0 = Instant::now();
        let mut m = CallMedia::new(cfg(), addr(CALLER_SDP), stream(0xa, Codec::Pcmu), t0);
        let event = |seq: u16, ts: u32, flags: u8| {
            let mut p = rtp(101, seq, ts, 0x11, 0);
            p.truncate(HEADER_LEN);
            p.extend_from_slice(&[5, flags, 0, 160]);
            p
        };
        // Not negotiated yet: no digit.
        let _ = m.handle_rtp(Leg::A, addr(CALLER_SDP), &mut event(1, 800, 0), t0);
        assert_eq!(m.poll_event(), None);
        m.set_telephone_event(Some(101));
        for (seq, flags) in [(2, 0), (3, 0), (4, 0x80), (5, 0x80), (6, 0x80)] {
            assert_eq!(
                m.handle_rtp(Leg::A, addr(CALLER_SDP), &mut event(seq, 1600, flags), t0),
                RxOutcome::Absorbed
            );
        }
        assert_eq!(m.poll_event(), Some(MediaOutput::Digit { digit: '5' }));
        assert_eq!(m.poll_event(), None, "one press, one digit");
        // A hand-over keeps what was reported: late ends stay silent.
        let snap = m.snapshot(t0);
        let mut r = CallMedia::restore(&snap, |_| None, t0);
        let _ = r.handle_rtp(Leg::A, addr(CALLER_SDP), &mut event(7, 1600, 0x80), t0);
        let _ = r.handle_rtp(Leg::A, addr(CALLER_SDP), &mut event(8, 3200, 0), t0);
        assert_eq!(r.poll_event(), Some(MediaOutput::Digit { digit: '5' }));
        assert_eq!(r.poll_event(), None);
        // The agent's telephone-events are not the caller's digits.
        let mut b = bridged(t0);
        b.set_telephone_event(Some(101));
        let _ = b.handle_rtp(Leg::B, addr(AGENT_SDP), &mut event(1, 1600, 0), t0);
        assert_eq!(b.poll_event(), None);
    }

    #[test]
    fn relay_stops_towards_a_leg_that_does_not_receive() {
        let t0 = Instant::now();
        let mut m = bridged(t0);
        assert!(m.set_direction(Leg::B, Direction::Inactive, t0));
        let mut p = rtp(0, 1, 160, 0x11, 0x55);
        assert_eq!(
            m.handle_rtp(Leg::A, addr(CALLER_SDP), &mut p, t0),
            RxOutcome::Absorbed
        );
    }

    #[test]
    fn renegotiated_codec_is_transcoded_and_relearns_the_address() {
        let t0 = Instant::now();
        let mut m = bridged(t0);
        let mut p = rtp(0, 1, 160, 0x11, 0x55);
        let _ = m.handle_rtp(Leg::A, addr(CALLER_NAT), &mut p, t0);
        // Caller re-INVITEs: new address, A-law.
        let t1 = t0 + Duration::from_secs(20);
        let moved = addr("203.0.113.10:50002");
        assert!(m.renegotiate(Leg::A, addr("10.0.0.10:4002"), Codec::Pcma, t1));
        let mut back = rtp(0, 9, 900, 0x22, Codec::Pcmu.encode_sample(1000));
        assert_eq!(
            m.handle_rtp(Leg::B, addr(AGENT_SDP), &mut back, t1),
            RxOutcome::Forward {
                leg: Leg::A,
                to: addr("10.0.0.10:4002")
            }
        );
        let i = parse(&back).unwrap();
        assert_eq!(i.pt, PayloadType::PCMA);
        assert!(i
            .payload(&back)
            .iter()
            .all(|&b| b == Codec::Pcma.encode_sample(988)));
        let mut p = rtp(8, 2, 320, 0x11, 0xd5);
        let _ = m.handle_rtp(Leg::A, moved, &mut p, t1);
        assert_eq!(m.rtp_peer(Leg::A), Some(moved), "window reopened");
    }

    #[test]
    fn snapshot_mid_prompt_restores_with_next_seq_ts_and_frame() {
        let t0 = Instant::now();
        let welcome = prompt("welcome", 4000);
        let mut m = CallMedia::new(cfg(), addr(CALLER_SDP), stream(0xa, Codec::Pcmu), t0);
        m.play(welcome.clone(), false, 7, t0);
        let mut buf = [0u8; PACKET_LEN];
        let mut last = None;
        for k in 0..5u32 {
            while let Some((n, _)) = m.poll_packet(t0 + FRAME * k, &mut buf) {
                last = Some(parse(&buf[..n]).unwrap());
            }
        }
        let last = last.unwrap();
        let snap_at = t0 + FRAME * 4 + Duration::from_millis(5);
        let json = serde_json::to_string(&m.snapshot(snap_at)).unwrap();
        drop(m);

        // Another process, another clock.
        let snap: CallMediaSnapshot = serde_json::from_str(&json).unwrap();
        assert_eq!(snap.playing.as_ref().unwrap().prompt, "welcome");
        let t1 = t0 + Duration::from_secs(3600);
        let lookup = |name: &str| (name == "welcome").then(|| welcome.prompt.clone());
        let mut r = CallMedia::restore(&snap, lookup, t1);
        assert_eq!(r.poll_timeout(), Some(t1 + Duration::from_millis(15)));
        assert!(r.poll_packet(t1, &mut buf).is_none(), "not early");
        let (n, to) = r
            .poll_packet(t1 + Duration::from_millis(15), &mut buf)
            .unwrap();
        assert_eq!(to, addr(CALLER_SDP));
        let next = parse(&buf[..n]).unwrap();
        assert_eq!(next.ssrc, last.ssrc);
        assert_eq!(next.seq, last.seq.next());
        assert_eq!(next.ts, last.ts.wrapping_add(160));
        assert!(!next.marker);
        assert_eq!(
            buf[HEADER_LEN],
            Codec::Pcmu.encode_sample(welcome.prompt.samples()[5 * 160]),
            "the sixth frame of the prompt"
        );
        // A snapshot of the restored state is the same (apart from time moving on).
        assert_eq!(r.snapshot(t1).caller.stream, *r.stream(Leg::A).unwrap());

        // A prompt missing in the new process ends its playback with PromptFinished.
        let mut gone = CallMedia::restore(&snap, |_| None, t1);
        assert_eq!(
            gone.poll_event(),
            Some(MediaOutput::PromptFinished { token: 7 })
        );
        assert!(!gone.is_playing());
    }

    const FRAME: Duration = crate::player::FRAME_DURATION;
}
