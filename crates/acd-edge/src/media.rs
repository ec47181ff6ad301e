//! Per-call media: two legs (caller, agent), each an RTP socket on an even port and
//! its RTCP socket on the next port up, driven by `acd_media::CallMedia`.
//!
//! A few media threads ([`engine`]) own the calls' sockets and run the drive loop of
//! the sans-IO core: wait for datagrams, a command or the core's next deadline; feed
//! the core; send what it produced; pass its reports on. Latching, relay, RTCP
//! rewriting, hold, inactivity and snapshots are all decided in the core.

mod engine;

pub use engine::set_threads;

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use acd_media::{
    CallMedia, CallMediaSnapshot, Codec, Direction, DropReason, Leg, MediaConfig, MediaOutput,
    NamedPrompt, OutboundStream, Prompt, RxOutcome, SeqNo, Ssrc, PACKET_LEN,
};
use std::net::UdpSocket;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// Even RTP ports of a configured range, each with the odd port above it for RTCP
/// (RFC 3550 §11), so SDP never needs `a=rtcp`. Free ports wait in a queue (least
/// recently used first), so finding one is O(1) and an exhausted pool refuses at once
/// instead of scanning the range on every INVITE.
pub struct PortPool {
    ip: IpAddr,
    free: Mutex<VecDeque<u16>>,
    range: (u16, u16),
    /// Port pairs in the range (fixed at creation).
    pairs: usize,
}

/// A bound RTP socket and its RTCP socket (port + 1); the pair returns to the pool
/// when dropped.
pub struct RtpSocket {
    pub sock: UdpSocket,
    pub rtcp: UdpSocket,
    port: u16,
    pool: Arc<PortPool>,
}

impl RtpSocket {
    /// The RTP port (RTCP is the next one).
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for RtpSocket {
    fn drop(&mut self) {
        self.pool.release(self.port);
    }
}

/// Ports taken by other programs are skipped this many times per bind.
const BIND_ATTEMPTS: usize = 16;

fn udp(ip: IpAddr, port: u16) -> std::io::Result<UdpSocket> {
    let sock = UdpSocket::bind((ip, port))?;
    sock.set_nonblocking(true)?;
    Ok(sock)
}

impl PortPool {
    /// Pairs `(p, p + 1)` with `p` even and both within `min..=max`.
    pub fn new(ip: IpAddr, min: u16, max: u16) -> Arc<Self> {
        let first = min.saturating_add(min % 2);
        let last = max.saturating_sub(1);
        let free: VecDeque<u16> = (first..=last).step_by(2).collect();
        Arc::new(PortPool {
            ip,
            pairs: free.len(),
            free: Mutex::new(free),
            range: (first, max),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<u16>> {
        match self.free.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn release(&self, port: u16) {
        self.lock().push_back(port);
    }

    fn bind_pair(self: &Arc<Self>, port: u16) -> std::io::Result<RtpSocket> {
        let sock = udp(self.ip, port)?;
        let rtcp = udp(self.ip, port.wrapping_add(1))?;
        Ok(RtpSocket {
            sock,
            rtcp,
            port,
            pool: self.clone(),
        })
    }

    /// Binds a socket pair on a free even port. Synchronous (a bind does not block) so
    /// the signalling loop can call it.
    pub fn bind(self: &Arc<Self>) -> std::io::Result<RtpSocket> {
        for _ in 0..BIND_ATTEMPTS {
            let Some(port) = self.lock().pop_front() else {
                break;
            };
            match self.bind_pair(port) {
                Ok(s) => return Ok(s),
                // In use by someone else: try it again later, after the others.
                Err(_) => self.release(port),
            }
        }
        metrics::counter!("acd_rtp_errors_total", "kind" => "ports_exhausted").increment(1);
        Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            format!("no free RTP port in {}-{}", self.range.0, self.range.1),
        ))
    }

    /// Binds the pair on `port` exactly (a restored call keeps its ports, so the
    /// phones' latches and SDP stay valid). O(pool size); only hand-overs call it.
    pub fn bind_port(self: &Arc<Self>, port: u16) -> std::io::Result<RtpSocket> {
        {
            let mut free = self.lock();
            let Some(i) = free.iter().position(|&p| p == port) else {
                metrics::counter!("acd_rtp_errors_total", "kind" => "port_not_free").increment(1);
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    format!("RTP port {port} is not free in this pool"),
                ));
            };
            free.remove(i);
        }
        self.bind_pair(port).inspect_err(|_| self.release(port))
    }

    /// Takes `port` out of the pool for sockets bound elsewhere (received
    /// in a hand-over), so the pool never hands it out twice.
    pub fn adopt(
        self: &Arc<Self>,
        port: u16,
        rtp: std::os::fd::OwnedFd,
        rtcp: std::os::fd::OwnedFd,
    ) -> std::io::Result<RtpSocket> {
        {
            let mut free = self.lock();
            if let Some(i) = free.iter().position(|&p| p == port) {
                free.remove(i);
            }
        }
        let nonblocking = |fd: std::os::fd::OwnedFd| {
            let sock = UdpSocket::from(fd);
            sock.set_nonblocking(true)?;
            Ok::<_, std::io::Error>(sock)
        };
        let sock = nonblocking(rtp).inspect_err(|_| self.release(port))?;
        let rtcp = nonblocking(rtcp).inspect_err(|_| self.release(port))?;
        Ok(RtpSocket {
            sock,
            rtcp,
            port,
            pool: self.clone(),
        })
    }

    pub fn free_ports(&self) -> usize {
        self.lock().len()
    }

    /// Calls the range can carry at once: each binds two even ports (caller
    /// leg and agent leg) from its INVITE to its end.
    pub fn call_capacity(&self) -> usize {
        self.pairs / 2
    }
}

/// Commands from the call's signalling to its media task.
#[derive(Debug)]
#[non_exhaustive]
pub enum MediaCmd {
    /// Play a prompt to the caller; `token` comes back in `PromptFinished`. `name` is
    /// what a snapshot records, so another process can find the same prompt.
    Play {
        prompt: Arc<Prompt>,
        name: String,
        looping: bool,
        token: u64,
    },
    StopPlayback,
    /// Record the caller (voicemail) into a WAV file under `dir`; answered by
    /// `Recorded` or `RecordFailed` with `token`.
    Record {
        max_ms: u32,
        silence_ms: u32,
        beep: bool,
        token: u64,
        dir: Arc<std::path::Path>,
    },
    /// End the recording now (`#`).
    StopRecording,
    /// The agent leg answered: relay both ways from now on.
    Bridge {
        agent_remote: SocketAddr,
        agent_codec: Codec,
    },
    /// The agent leg was released (transfer): stop relaying.
    Unbridge,
    /// The leg's peer declared `direction` in a re-INVITE / UPDATE (hold, unhold).
    SetDirection {
        leg: Leg,
        direction: Direction,
    },
    /// The leg's peer renegotiated address and/or codec; latching learns again.
    Renegotiate {
        leg: Leg,
        remote: SocketAddr,
        codec: Codec,
    },
    /// Music for the caller while the agent holds (`None`: relay the agent's phone).
    SetHoldMusic(Option<NamedPrompt>),
    /// The caller's RFC 4733 telephone-event payload type (`None`: no digits).
    SetTelephoneEvent(Option<u8>),
    /// Change the media-inactivity timeout (`None`: never report).
    SetInactivity(Option<Duration>),
    /// Report the media state; the task carries on.
    Snapshot(oneshot::Sender<MediaSnapshot>),
    /// Stop reading, report the media state and give the sockets back (a live
    /// hand-over passes them to the next process, or [`restore`] resumes on them).
    HandOver(oneshot::Sender<HandedOver>),
}

/// A stopped media task: its state and its sockets.
pub struct HandedOver {
    pub snapshot: MediaSnapshot,
    pub caller: RtpSocket,
    pub agent: RtpSocket,
}

impl std::fmt::Debug for HandedOver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandedOver")
            .field("snapshot", &self.snapshot)
            .finish_non_exhaustive()
    }
}

impl HandedOver {
    /// Copies of the four sockets, described for the hand-over's table.
    pub fn descriptors(
        &self,
    ) -> std::io::Result<Vec<(crate::handover::FdKind, std::os::fd::OwnedFd)>> {
        use crate::handover::{FdKind, MediaLeg};
        use std::os::fd::AsFd;
        let mut out = Vec::with_capacity(4);
        for (leg, s) in [
            (MediaLeg::Caller, &self.caller),
            (MediaLeg::Agent, &self.agent),
        ] {
            for (rtcp, sock) in [(false, &s.sock), (true, &s.rtcp)] {
                let kind = FdKind::Rtp {
                    call: self.snapshot.call.clone(),
                    leg,
                    rtcp,
                };
                out.push((kind, sock.as_fd().try_clone_to_owned()?));
            }
        }
        Ok(out)
    }
}

/// What the media task reports to the signalling engine.
#[derive(Debug)]
#[non_exhaustive]
pub enum MediaEvent {
    PromptFinished {
        call: String,
        token: u64,
    },
    /// `leg` should be sending but no RTP arrived since `since` (the configured
    /// inactivity period ago or more). Reported once until media resumes.
    Inactive {
        call: String,
        leg: Leg,
        since: std::time::Instant,
    },
    /// The caller pressed a key (RFC 4733), once per press.
    Digit {
        call: String,
        digit: char,
    },
    /// The recording `token` is written: `file` is its name under the
    /// voicemail directory.
    Recorded {
        call: String,
        token: u64,
        file: String,
        duration_ms: u32,
    },
    RecordFailed {
        call: String,
        token: u64,
        reason: String,
    },
}

/// Everything to resume a call's media in another process (serde).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MediaSnapshot {
    pub call: String,
    pub caller_port: u16,
    pub agent_port: u16,
    pub media: CallMediaSnapshot,
}

/// Options of [`start_with`].
#[derive(Debug, Clone, Default)]
pub struct MediaOptions {
    /// Latch window and inactivity timeout.
    pub config: MediaConfig,
    /// Played to the caller while the agent holds.
    pub hold_music: Option<NamedPrompt>,
    /// Where voicemail recordings are written.
    pub voicemail_dir: Option<Arc<std::path::Path>>,
}

/// Handle kept by the call; dropping it ends the call's media.
pub struct MediaHandle {
    /// The media thread that owns the call, and the call's id there.
    link: Option<(Arc<engine::Worker>, u64)>,
    pub caller_port: u16,
    pub agent_port: u16,
}

impl Drop for MediaHandle {
    fn drop(&mut self) {
        if let Some((worker, id)) = &self.link {
            worker.post(engine::Msg::Remove(*id));
        }
    }
}

impl MediaHandle {
    /// Queues `cmd` for the call's media thread. A call whose media could not
    /// start ignores commands (its oneshot replies are dropped: `None`).
    pub fn send(&self, cmd: MediaCmd) {
        if let Some((worker, id)) = &self.link {
            worker.post(engine::Msg::Cmd(*id, cmd));
        }
    }

    /// The media state now; `None` if the task has ended.
    pub async fn snapshot(&self) -> Option<MediaSnapshot> {
        let (tx, rx) = oneshot::channel();
        self.send(MediaCmd::Snapshot(tx));
        rx.await.ok()
    }

    /// End the task and return its state and sockets.
    pub async fn hand_over(self) -> Option<HandedOver> {
        let (tx, rx) = oneshot::channel();
        self.send(MediaCmd::HandOver(tx));
        rx.await.ok()
    }
}

fn random_stream(codec: Codec) -> OutboundStream {
    let seed: u32 = rand::random();
    OutboundStream::new(Ssrc(seed), SeqNo(seed as u16), seed.rotate_left(7), codec)
}

/// The core's clock (the media threads read the same one).
fn now() -> Instant {
    Instant::now()
}

/// Starts the media task of a call whose caller sends RTP from/to `caller_remote`,
/// with default options (60 s inactivity, 5 packets / 2 s latch window, no hold music).
pub fn start(
    pool: &Arc<PortPool>,
    call: String,
    caller_remote: SocketAddr,
    caller_codec: Codec,
    events: mpsc::UnboundedSender<MediaEvent>,
) -> std::io::Result<MediaHandle> {
    start_with(
        pool,
        call,
        caller_remote,
        caller_codec,
        events,
        MediaOptions::default(),
    )
}

/// [`start`] with options.
pub fn start_with(
    pool: &Arc<PortPool>,
    call: String,
    caller_remote: SocketAddr,
    caller_codec: Codec,
    events: mpsc::UnboundedSender<MediaEvent>,
    opts: MediaOptions,
) -> std::io::Result<MediaHandle> {
    let caller_sock = pool.bind()?;
    let agent_sock = pool.bind()?;
    let mut core = CallMedia::new(
        opts.config,
        caller_remote,
        random_stream(caller_codec),
        now(),
    );
    core.set_hold_music(opts.hold_music);
    let (id, worker) = engine::place()?;
    Ok(spawn(
        Some((worker, id)),
        call,
        core,
        caller_sock,
        agent_sock,
        events,
    ))
}

/// Resumes a call's media from `snapshot` on the given sockets (those a hand-over
/// returned, copies of them adopted with [`PortPool::adopt`] in the next process, or
/// bound with [`PortPool::bind_port`] on the snapshot's ports).
/// `prompts` finds prompts by name. Timing restarts from `now`.
pub fn restore(
    snapshot: &MediaSnapshot,
    caller_sock: RtpSocket,
    agent_sock: RtpSocket,
    prompts: impl Fn(&str) -> Option<Arc<Prompt>>,
    events: mpsc::UnboundedSender<MediaEvent>,
    now: std::time::Instant,
) -> MediaHandle {
    let core = CallMedia::restore(&snapshot.media, prompts, now);
    let link = engine::place()
        .map(|(id, worker)| (worker, id))
        .inspect_err(|e| {
            // Only a process out of threads or descriptors gets here; the call
            // stays up without media rather than failing the whole restore.
            tracing::error!(call_id = %snapshot.call, error = %e, "media not restored");
        })
        .ok();
    spawn(
        link,
        snapshot.call.clone(),
        core,
        caller_sock,
        agent_sock,
        events,
    )
}

/// Hands the call to its media thread (`link`); without one the sockets are closed.
fn spawn(
    link: Option<(Arc<engine::Worker>, u64)>,
    call: String,
    core: CallMedia,
    caller_sock: RtpSocket,
    agent_sock: RtpSocket,
    events: mpsc::UnboundedSender<MediaEvent>,
) -> MediaHandle {
    let handle = MediaHandle {
        link,
        caller_port: caller_sock.port,
        agent_port: agent_sock.port,
    };
    let task = MediaTask {
        call,
        caller_sock,
        agent_sock,
        core,
        events,
        stats: Stats::default(),
        record_dir: None,
        scheduled: None,
    };
    if let Some((worker, id)) = &handle.link {
        worker.post(engine::Msg::Add(*id, Box::new(task)));
    }
    handle
}

/// Packets of the call so far; added to the process's counters about once a
/// second and when the call ends (not per packet).
#[derive(Default)]
struct Stats {
    played: u64,
    relayed: u64,
    rtcp_relayed: u64,
    /// The figures above, and the relay's lost count, already added.
    flushed: crate::telemetry::MediaFigures,
    next_flush: Option<std::time::Instant>,
}

impl Stats {
    /// Adds what changed since the last flush to the process's counters.
    fn flush(&mut self, core: &CallMedia) {
        let lost = [Leg::A, Leg::B]
            .iter()
            .map(|l| core.relay_counters(*l).lost)
            .sum();
        let now = crate::telemetry::MediaFigures {
            played: self.played,
            relayed: self.relayed,
            rtcp_relayed: self.rtcp_relayed,
            lost,
        };
        self.flushed = crate::telemetry::media_counters().add(self.flushed, now);
    }

    /// Flushes when a second has passed since the last flush.
    fn flush_due(&mut self, core: &CallMedia, now: std::time::Instant) {
        if self.next_flush.is_some_and(|at| now < at) {
            return;
        }
        self.flush(core);
        self.next_flush = Some(now + std::time::Duration::from_secs(1));
    }
}

/// Count a refused datagram. Literal labels only, so the metric key is static and
/// the per-packet path does not allocate.
fn count_drop(reason: DropReason) {
    match reason {
        DropReason::NotRtp => {
            metrics::counter!("acd_rtp_errors_total", "kind" => "not_rtp").increment(1)
        }
        DropReason::BadRtcp => {
            metrics::counter!("acd_rtp_errors_total", "kind" => "bad_rtcp").increment(1)
        }
        DropReason::ForeignSource => {
            metrics::counter!("acd_rtp_errors_total", "kind" => "foreign_source").increment(1)
        }
        DropReason::NotNegotiated => {
            metrics::counter!("acd_rtp_errors_total", "kind" => "not_negotiated").increment(1)
        }
    }
}

/// Which socket of a leg a datagram came in on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flow {
    Rtp,
    Rtcp,
}

/// One call's media as its thread holds it: sockets, core, counters.
struct MediaTask {
    call: String,
    caller_sock: RtpSocket,
    agent_sock: RtpSocket,
    core: CallMedia,
    events: mpsc::UnboundedSender<MediaEvent>,
    stats: Stats,
    /// Directory of the recording in progress.
    record_dir: Option<Arc<std::path::Path>>,
    /// The deadline the thread's timer heap holds for this call (its earliest entry).
    scheduled: Option<Instant>,
}

impl MediaTask {
    /// The call left its thread (handle dropped, or `hand_over` when `tx` is given).
    fn ended(mut self, hand_over: Option<oneshot::Sender<HandedOver>>, now: Instant) {
        self.stats.flush(&self.core);
        tracing::debug!(call_id = %self.call, played = self.stats.played, relayed = self.stats.relayed, "media ended");
        if let Some(tx) = hand_over {
            let snapshot = self.snapshot(now);
            let _ = tx.send(HandedOver {
                snapshot,
                caller: self.caller_sock,
                agent: self.agent_sock,
            });
        }
    }

    fn snapshot(&self, now: Instant) -> MediaSnapshot {
        MediaSnapshot {
            call: self.call.clone(),
            caller_port: self.caller_sock.port,
            agent_port: self.agent_sock.port,
            media: self.core.snapshot(now),
        }
    }

    fn command(&mut self, cmd: MediaCmd, now: Instant) {
        match cmd {
            MediaCmd::Play {
                prompt,
                name,
                looping,
                token,
            } => self
                .core
                .play(NamedPrompt { name, prompt }, looping, token, now),
            MediaCmd::StopPlayback => self.core.stop_playback(),
            MediaCmd::Record {
                max_ms,
                silence_ms,
                beep,
                token,
                dir,
            } => {
                self.record_dir = Some(dir);
                self.core
                    .start_recording(token, max_ms, silence_ms, beep, now);
            }
            MediaCmd::StopRecording => self.core.stop_recording(),
            MediaCmd::Bridge {
                agent_remote,
                agent_codec,
            } => self
                .core
                .bridge(agent_remote, random_stream(agent_codec), now),
            MediaCmd::Unbridge => self.core.unbridge(),
            MediaCmd::SetDirection { leg, direction } => {
                if !self.core.set_direction(leg, direction, now) {
                    tracing::debug!(call_id = %self.call, ?leg, "direction for a leg not bridged yet");
                }
            }
            MediaCmd::Renegotiate { leg, remote, codec } => {
                if !self.core.renegotiate(leg, remote, codec, now) {
                    tracing::debug!(call_id = %self.call, ?leg, "renegotiation for a leg not bridged yet");
                }
            }
            MediaCmd::SetHoldMusic(music) => self.core.set_hold_music(music),
            MediaCmd::SetTelephoneEvent(pt) => self.core.set_telephone_event(pt),
            MediaCmd::SetInactivity(t) => self.core.set_inactivity(t),
            MediaCmd::Snapshot(tx) => {
                let _ = tx.send(self.snapshot(now));
            }
            // The thread takes the call off before it gets here.
            MediaCmd::HandOver(_) => {}
        }
    }

    fn socket(&self, leg: Leg, flow: Flow) -> &UdpSocket {
        let s = match leg {
            Leg::A => &self.caller_sock,
            Leg::B => &self.agent_sock,
        };
        match flow {
            Flow::Rtp => &s.sock,
            Flow::Rtcp => &s.rtcp,
        }
    }

    /// A datagram from `from` on `leg`'s `flow` socket, through the core.
    fn handle(
        &mut self,
        leg: Leg,
        flow: Flow,
        from: SocketAddr,
        packet: &mut [u8],
        now: Instant,
    ) -> RxOutcome {
        match flow {
            Flow::Rtp => self.core.handle_rtp(leg, from, packet, now),
            Flow::Rtcp => self.core.handle_rtcp(leg, from, packet, now),
        }
    }

    fn count_relayed(&mut self, flow: Flow, n: u64) {
        match flow {
            Flow::Rtp => self.stats.relayed += n,
            Flow::Rtcp => self.stats.rtcp_relayed += n,
        }
    }

    /// Send due prompt frames and pass the core's reports on.
    fn drain(&mut self, now: Instant) {
        self.stats.flush_due(&self.core, now);
        let mut pkt = [0u8; PACKET_LEN];
        while let Some((n, to)) = self.core.poll_packet(now, &mut pkt) {
            match self.caller_sock.sock.send_to(&pkt[..n], to) {
                Ok(_) => self.stats.played += 1,
                Err(_) => {
                    metrics::counter!("acd_rtp_errors_total", "kind" => "send_failed").increment(1)
                }
            }
        }
        while let Some(out) = self.core.poll_event() {
            let event = match out {
                MediaOutput::PromptFinished { token } => MediaEvent::PromptFinished {
                    call: self.call.clone(),
                    token,
                },
                MediaOutput::Inactive { leg, since } => {
                    metrics::counter!("acd_rtp_inactive_total").increment(1);
                    tracing::info!(call_id = %self.call, ?leg, "no media");
                    MediaEvent::Inactive {
                        call: self.call.clone(),
                        leg,
                        since,
                    }
                }
                MediaOutput::Digit { digit } => MediaEvent::Digit {
                    call: self.call.clone(),
                    digit,
                },
                MediaOutput::RecordingFinished { token } => {
                    self.recording_finished(token);
                    continue;
                }
            };
            let _ = self.events.send(event);
        }
    }

    /// Writes the finished recording off the media thread (a blocking file write),
    /// then reports it.
    fn recording_finished(&mut self, token: u64) {
        let Some((_, rec)) = self.core.take_recording() else {
            return;
        };
        let call = self.call.clone();
        let fail = |reason: &str| record_failed(&self.call, token, reason);
        let dir = match self.record_dir.take() {
            Some(d) => d,
            None => {
                let _ = self.events.send(fail("no voicemail directory"));
                return;
            }
        };
        if !rec.heard_voice {
            metrics::counter!("acd_edge_voicemail_failures_total", "reason" => "silence")
                .increment(1);
            let _ = self.events.send(fail("nothing said"));
            return;
        }
        let file = crate::voicemail::file_name(&call, token);
        let events = self.events.clone();
        let duration_ms = rec.duration_ms();
        tracing::info!(call_id = %call, %file, duration_ms, end = rec.end.as_str(), "recording finished");
        let write = move || {
            let path = dir.join(&file);
            let event = match crate::voicemail::write(&path, &rec.samples) {
                Ok(()) => MediaEvent::Recorded {
                    call,
                    token,
                    file,
                    duration_ms,
                },
                Err(e) => {
                    metrics::counter!("acd_edge_voicemail_failures_total", "reason" => "disk")
                        .increment(1);
                    tracing::warn!(call_id = %call, error = %e, "voicemail not written");
                    record_failed(&call, token, &format!("disk error: {e}"))
                }
            };
            let _ = events.send(event);
        };
        let spawned = std::thread::Builder::new()
            .name("acd-voicemail".into())
            .spawn(write);
        if let Err(e) = spawned {
            metrics::counter!("acd_edge_voicemail_failures_total", "reason" => "thread")
                .increment(1);
            let _ = self.events.send(fail(&format!("no writer thread: {e}")));
        }
    }
}

fn record_failed(call: &str, token: u64, reason: &str) -> MediaEvent {
    MediaEvent::RecordFailed {
        call: call.to_string(),
        token,
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use acd_media::{Codec, SeqNo, Ssrc};
    use tokio::net::UdpSocket;

    const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[tokio::test]
    async fn pool_hands_out_even_ports_and_takes_them_back() {
        // Pairs 36102/3, 36104/5, 36106/7.
        let pool = PortPool::new(LOOPBACK, 36101, 36107);
        assert_eq!(pool.free_ports(), 3);
        let a = pool.bind().unwrap();
        let b = pool.bind().unwrap();
        let c = pool.bind().unwrap();
        let mut ports = [a.port, b.port, c.port];
        ports.sort();
        assert_eq!(
            ports,
            [36102, 36104, 36106],
            "every even port, the last pair too"
        );
        // Exhausted: refused at once, no scan.
        assert!(pool.bind().is_err());
        drop(b);
        assert_eq!(pool.free_ports(), 1);
        assert!(pool.bind().is_ok());
    }

    #[tokio::test]
    async fn pool_skips_a_port_taken_by_another_program() {
        let squatter = std::net::UdpSocket::bind((LOOPBACK, 36110)).unwrap();
        let pool = PortPool::new(LOOPBACK, 36110, 36113);
        let got = pool.bind().unwrap();
        assert_eq!(got.port, 36112);
        drop(squatter);
        // The skipped port went to the back of the queue and is usable now.
        assert_eq!(pool.bind().unwrap().port, 36110);
    }

    #[tokio::test]
    async fn pool_reserves_the_rtcp_port_and_binds_a_given_port() {
        let pool = PortPool::new(LOOPBACK, 36120, 36124); // 36120/1, 36122/3; not 36124
        let a = pool.bind().unwrap();
        assert_eq!(a.rtcp.local_addr().unwrap().port(), a.port() + 1);
        assert!(std::net::UdpSocket::bind((LOOPBACK, a.port() + 1)).is_err());
        let b = pool.bind_port(36122).unwrap();
        assert!(pool.bind().is_err(), "36124 has no odd partner in range");
        assert!(pool.bind_port(36122).is_err(), "taken");
        drop(b);
        assert_eq!(pool.bind_port(36122).unwrap().port(), 36122);
    }

    // Media tests use the RTP range of port block 53 (tests/src/ports.rs): the
    // edge's ports at 31700.., the simulated phones at 31760...
    const CALLER_PHONE: u16 = 31760;
    const AGENT_PHONE: u16 = 31762;

    struct Phone {
        rtp: UdpSocket,
        rtcp: UdpSocket,
    }

    impl Phone {
        async fn bind(port: u16) -> Phone {
            Phone {
                rtp: UdpSocket::bind((LOOPBACK, port)).await.unwrap(),
                rtcp: UdpSocket::bind((LOOPBACK, port + 1)).await.unwrap(),
            }
        }

        fn addr(&self) -> SocketAddr {
            self.rtp.local_addr().unwrap()
        }
    }

    fn pcmu(seq: u16, ssrc: u32, byte: u8) -> Vec<u8> {
        let mut hdr = [0u8; acd_media::rtp::HEADER_LEN];
        acd_media::rtp::Header {
            pt: acd_media::PayloadType::PCMU,
            seq: SeqNo(seq),
            ts: u32::from(seq) * 160,
            ssrc: Ssrc(ssrc),
            marker: false,
        }
        .write(&mut hdr);
        let mut v = hdr.to_vec();
        v.extend_from_slice(&[byte; 160]);
        v
    }

    async fn recv(sock: &UdpSocket) -> Vec<u8> {
        let mut buf = [0u8; 2048];
        let (n, _) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
            .await
            .expect("a datagram within 5 s")
            .unwrap();
        buf[..n].to_vec()
    }

    async fn next_inactive(events: &mut mpsc::UnboundedReceiver<MediaEvent>) -> Leg {
        loop {
            let e = tokio::time::timeout(Duration::from_secs(5), events.recv())
                .await
                .expect("an event within 5 s")
                .expect("media task alive");
            if let MediaEvent::Inactive { leg, .. } = e {
                return leg;
            }
        }
    }

    #[tokio::test]
    async fn latched_relay_refuses_spoofed_rtp_relays_rtcp_and_reports_inactivity() {
        let pool = PortPool::new(LOOPBACK, 31700, 31709);
        let caller = Phone::bind(CALLER_PHONE).await;
        let agent = Phone::bind(AGENT_PHONE).await;
        let spoofer = UdpSocket::bind((LOOPBACK, 0)).await.unwrap();
        let (ev_tx, mut events) = mpsc::unbounded_channel();
        let opts = MediaOptions {
            config: MediaConfig {
                inactivity: Some(Duration::from_millis(300)),
                ..MediaConfig::default()
            },
            hold_music: None,
            voicemail_dir: None,
        };
        let h = start_with(&pool, "c1".into(), caller.addr(), Codec::Pcmu, ev_tx, opts).unwrap();
        h.send(MediaCmd::Bridge {
            agent_remote: agent.addr(),
            agent_codec: Codec::Pcmu,
        });
        let edge_a = SocketAddr::new(LOOPBACK, h.caller_port);
        let edge_a_rtcp = SocketAddr::new(LOOPBACK, h.caller_port + 1);

        // The caller's first packet latches its address and reaches the agent.
        caller
            .rtp
            .send_to(&pcmu(1, 0x11, 0x55), edge_a)
            .await
            .unwrap();
        let got = recv(&agent.rtp).await;
        let our_ssrc = acd_media::rtp::parse(&got).unwrap().ssrc;
        assert_eq!(got[acd_media::rtp::HEADER_LEN], 0x55);

        // A spoofed stream from another port, then the real caller again: the agent
        // hears only the real one.
        for k in 0..5 {
            spoofer
                .send_to(&pcmu(2 + k, 0x11, 0x99), edge_a)
                .await
                .unwrap();
        }
        caller
            .rtp
            .send_to(&pcmu(2, 0x11, 0x56), edge_a)
            .await
            .unwrap();
        let got = recv(&agent.rtp).await;
        assert_eq!(
            got[acd_media::rtp::HEADER_LEN],
            0x56,
            "spoofed packets were dropped"
        );

        // RTCP is relayed to the agent's RTCP port, sender SSRC rewritten.
        let mut rr = vec![0x81, 201, 0, 7];
        rr.extend_from_slice(&0x11u32.to_be_bytes());
        rr.extend_from_slice(&[0; 24]);
        caller.rtcp.send_to(&rr, edge_a_rtcp).await.unwrap();
        let got = recv(&agent.rtcp).await;
        assert_eq!(got.len(), rr.len());
        assert_eq!(got[4..8], our_ssrc.0.to_be_bytes());

        // The agent never sent: reported inactive; the caller stopped too.
        let mut legs = vec![
            next_inactive(&mut events).await,
            next_inactive(&mut events).await,
        ];
        legs.sort_by_key(|l| *l == Leg::B);
        assert_eq!(legs, [Leg::A, Leg::B]);

        // Media resumes on the agent leg and reaches the caller (at its latched
        // address); the leg is watched again and reported when it stops again.
        let edge_b = SocketAddr::new(LOOPBACK, h.agent_port);
        agent
            .rtp
            .send_to(&pcmu(1, 0x22, 0x77), edge_b)
            .await
            .unwrap();
        let got = recv(&caller.rtp).await;
        assert_eq!(got[acd_media::rtp::HEADER_LEN], 0x77);
        assert_eq!(next_inactive(&mut events).await, Leg::B);
    }

    #[tokio::test]
    async fn hand_over_mid_prompt_continues_on_the_same_ports() {
        let pool = PortPool::new(LOOPBACK, 31710, 31719);
        let caller = Phone::bind(CALLER_PHONE + 4).await;
        let (ev_tx, _events) = mpsc::unbounded_channel();
        let h = start(
            &pool,
            "c2".into(),
            caller.addr(),
            Codec::Pcmu,
            ev_tx.clone(),
        )
        .unwrap();
        let samples: Vec<i16> = (0..8000).map(|i| ((i * 37) % 20000) as i16).collect();
        let prompt = Arc::new(Prompt::from_samples(samples));
        h.send(MediaCmd::Play {
            prompt: prompt.clone(),
            name: "welcome".into(),
            looping: false,
            token: 3,
        });
        let mut last = None;
        for _ in 0..3 {
            last = Some(acd_media::rtp::parse(&recv(&caller.rtp).await).unwrap());
        }
        let handed = h.hand_over().await.expect("snapshot");
        let snap = handed.snapshot.clone();
        // Everything the old task sent is already in our socket buffer.
        let mut buf = [0u8; 2048];
        while let Ok((n, _)) = caller.rtp.try_recv_from(&mut buf) {
            last = Some(acd_media::rtp::parse(&buf[..n]).unwrap());
        }
        let json = json_round_trip(&snap);
        // The sockets go on as they are (another process adopts copies).
        assert!(pool.bind_port(json.caller_port).is_err(), "still held");
        let (caller_sock, agent_sock) = (handed.caller, handed.agent);
        let prompts = |n: &str| (n == "welcome").then(|| prompt.clone());
        let h2 = restore(&json, caller_sock, agent_sock, prompts, ev_tx, now());
        assert_eq!(h2.caller_port, snap.caller_port);
        let got = recv(&caller.rtp).await;
        let next = acd_media::rtp::parse(&got).unwrap();
        let played = snap.media.playing.as_ref().unwrap().position.sample as usize;
        let last = last.unwrap();
        assert_eq!(next.seq, last.seq.next());
        assert_eq!(next.ts, last.ts.wrapping_add(160));
        assert_eq!(next.ssrc, last.ssrc);
        assert_eq!(
            got[acd_media::rtp::HEADER_LEN],
            Codec::Pcmu.encode_sample(prompt.samples()[played]),
            "the next frame of the prompt"
        );
    }

    /// The snapshot survives serialisation (the hand-over sends it to another process).
    fn json_round_trip(s: &MediaSnapshot) -> MediaSnapshot {
        let text = serde_json::to_string(s).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// Port block 99 (tests/src/ports.rs): the edge's RTP at 17900.., the caller at 17812.
    #[tokio::test]
    async fn a_recording_ends_on_silence_and_is_written_as_wav() {
        let pool = PortPool::new(LOOPBACK, 17900, 17903);
        let caller = Phone::bind(17812).await;
        let (ev_tx, mut events) = mpsc::unbounded_channel();
        let h = start_with(
            &pool,
            "vm/1".into(),
            caller.addr(),
            Codec::Pcmu,
            ev_tx,
            MediaOptions::default(),
        )
        .unwrap();
        let dir = std::env::temp_dir().join(format!("acd-vm-media-{}", std::process::id()));
        h.send(MediaCmd::Record {
            max_ms: 10_000,
            silence_ms: 400,
            beep: false,
            token: 7,
            dir: dir.clone().into(),
        });
        let edge_a = SocketAddr::new(LOOPBACK, h.caller_port);
        // 0.4 s of loud µ-law (0x00 is near full scale), then nothing.
        for seq in 0..20u16 {
            caller
                .rtp
                .send_to(&pcmu(seq, 0x22, 0x00), edge_a)
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let ev = tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .expect("a report within 5 s")
            .expect("media task alive");
        let MediaEvent::Recorded {
            call,
            token,
            file,
            duration_ms,
        } = ev
        else {
            panic!("not recorded: {ev:?}");
        };
        assert_eq!((call.as_str(), token), ("vm/1", 7));
        assert_eq!(file, "vm_1-7.wav");
        assert_eq!(duration_ms, 400, "every packet, no silence padding");
        let bytes = std::fs::read(dir.join(&file)).expect("file written");
        let info = acd_media::wav::wav_info(&bytes).expect("a WAV file");
        assert_eq!(info.samples, 3200);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
