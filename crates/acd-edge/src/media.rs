//! Per-call media: two RTP sockets (caller leg, agent leg), prompt and music
//! playout towards the caller, and the relay once the legs are bridged.
//!
//! One task per call owns both sockets and runs the drive loop of
//! `acd_media`'s sans-IO parts: wait for a datagram, a command or the
//! player's next deadline; feed the core; send what it produced.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use acd_media::{Codec, Leg, OutboundStream, Player, Prompt, Relay, SeqNo, Ssrc, PACKET_LEN};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Even RTP ports handed out round-robin from a configured range.
pub struct PortPool {
    ip: IpAddr,
    min: u16,
    max: u16,
    cursor: AtomicU32,
}

impl PortPool {
    pub fn new(ip: IpAddr, min: u16, max: u16) -> Self {
        PortPool {
            ip,
            min: min + (min % 2),
            max,
            cursor: AtomicU32::new(0),
        }
    }

    /// Binds a socket on the next free even port; tries the whole range once.
    /// Synchronous (a bind does not block) so the signalling loop can call it.
    pub fn bind(&self) -> std::io::Result<UdpSocket> {
        let slots = u32::from((self.max - self.min) / 2).max(1);
        for _ in 0..slots {
            let slot = self.cursor.fetch_add(1, Ordering::Relaxed) % slots;
            let port = self.min + (slot as u16) * 2;
            if let Ok(sock) = std::net::UdpSocket::bind((self.ip, port)) {
                sock.set_nonblocking(true)?;
                return UdpSocket::from_std(sock);
            }
        }
        metrics::counter!("acd_rtp_errors_total", "kind" => "ports_exhausted").increment(1);
        Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            format!("no free RTP port in {}-{}", self.min, self.max),
        ))
    }
}

/// Commands from the call's signalling to its media task.
#[derive(Debug)]
pub enum MediaCmd {
    /// Play a prompt to the caller; `token` comes back in `PromptFinished`.
    Play {
        prompt: Arc<Prompt>,
        looping: bool,
        token: u64,
    },
    StopPlayback,
    /// The agent leg answered: relay both ways from now on.
    Bridge {
        agent_remote: SocketAddr,
        agent_codec: Codec,
    },
}

/// What the media task reports to the signalling engine.
#[derive(Debug)]
pub enum MediaEvent {
    PromptFinished { call: String, token: u64 },
}

/// Handle kept by the call; dropping it ends the media task.
pub struct MediaHandle {
    tx: mpsc::UnboundedSender<MediaCmd>,
    pub caller_port: u16,
    pub agent_port: u16,
}

impl MediaHandle {
    pub fn send(&self, cmd: MediaCmd) {
        // The task ends only when this handle is dropped, so a failed send
        // means the call is already being torn down.
        let _ = self.tx.send(cmd);
    }
}

/// Starts the media task of a call whose caller sends RTP from/to `caller_remote`.
pub fn start(
    pool: &PortPool,
    call: String,
    caller_remote: SocketAddr,
    caller_codec: Codec,
    events: mpsc::UnboundedSender<MediaEvent>,
) -> std::io::Result<MediaHandle> {
    let caller_sock = pool.bind()?;
    let agent_sock = pool.bind()?;
    let caller_port = caller_sock.local_addr()?.port();
    let agent_port = agent_sock.local_addr()?.port();
    let (tx, rx) = mpsc::unbounded_channel();
    let seed: u32 = rand::random();
    let task = MediaTask {
        call,
        caller_sock,
        agent_sock,
        caller_remote,
        agent_remote: None,
        caller_stream: OutboundStream::new(
            Ssrc(seed),
            SeqNo(seed as u16),
            seed.rotate_left(7),
            caller_codec,
        ),
        agent_stream: None,
        relay: Relay::new(),
        player: None,
        events,
        stats: Stats::default(),
    };
    tokio::spawn(task.run(rx));
    Ok(MediaHandle {
        tx,
        caller_port,
        agent_port,
    })
}

#[derive(Default)]
struct Stats {
    played: u64,
    relayed: u64,
    dropped: u64,
}

struct MediaTask {
    call: String,
    caller_sock: UdpSocket,
    agent_sock: UdpSocket,
    caller_remote: SocketAddr,
    agent_remote: Option<SocketAddr>,
    caller_stream: OutboundStream,
    agent_stream: Option<OutboundStream>,
    relay: Relay,
    player: Option<(Player, u64)>,
    events: mpsc::UnboundedSender<MediaEvent>,
    stats: Stats,
}

impl MediaTask {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<MediaCmd>) {
        let mut in_a = [0u8; 2048];
        let mut in_b = [0u8; 2048];
        loop {
            let deadline = self
                .player
                .as_ref()
                .and_then(|(p, _)| p.next_deadline())
                .map(Instant::from_std);
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(cmd) => self.command(cmd),
                    None => break,
                },
                r = self.caller_sock.recv_from(&mut in_a) => {
                    if let Ok((n, from)) = r {
                        self.on_caller_packet(&mut in_a[..n], from).await;
                    }
                }
                r = self.agent_sock.recv_from(&mut in_b) => {
                    if let Ok((n, from)) = r {
                        self.on_agent_packet(&mut in_b[..n], from).await;
                    }
                }
                _ = sleep_until_opt(deadline), if deadline.is_some() => self.play_due().await,
            }
        }
        metrics::counter!("acd_rtp_packets_played_total").increment(self.stats.played);
        metrics::counter!("acd_rtp_packets_relayed_total").increment(self.stats.relayed);
        metrics::counter!("acd_rtp_errors_total", "kind" => "not_rtp")
            .increment(self.stats.dropped);
        tracing::debug!(call_id = %self.call, played = self.stats.played, relayed = self.stats.relayed, "media ended");
    }

    fn command(&mut self, cmd: MediaCmd) {
        match cmd {
            MediaCmd::Play {
                prompt,
                looping,
                token,
            } => {
                let codec = self.caller_stream.codec();
                self.caller_stream.start_talkspurt();
                self.player = Some((
                    Player::new(prompt, codec, looping, std::time::Instant::now()),
                    token,
                ));
            }
            MediaCmd::StopPlayback => self.player = None,
            MediaCmd::Bridge {
                agent_remote,
                agent_codec,
            } => {
                self.player = None;
                self.agent_remote = Some(agent_remote);
                let seed: u32 = rand::random();
                self.agent_stream = Some(OutboundStream::new(
                    Ssrc(seed),
                    SeqNo(seed as u16),
                    seed,
                    agent_codec,
                ));
            }
        }
    }

    async fn play_due(&mut self) {
        let now = std::time::Instant::now();
        let mut pkt = [0u8; PACKET_LEN];
        let Some((player, token)) = self.player.as_mut() else {
            return;
        };
        while let Some(n) = player.poll_packet(now, &mut self.caller_stream, &mut pkt) {
            if self
                .caller_sock
                .send_to(&pkt[..n], self.caller_remote)
                .await
                .is_ok()
            {
                self.stats.played += 1;
            }
        }
        if player.is_finished() {
            let token = *token;
            self.player = None;
            let _ = self.events.send(MediaEvent::PromptFinished {
                call: self.call.clone(),
                token,
            });
        }
    }

    /// Symmetric RTP: once the caller sends, answer to where it sends from.
    async fn on_caller_packet(&mut self, packet: &mut [u8], from: SocketAddr) {
        if !acd_media::is_rtp(packet) {
            self.stats.dropped += 1;
            return;
        }
        self.caller_remote = from;
        let (Some(to), Some(stream)) = (self.agent_remote, self.agent_stream.as_mut()) else {
            return;
        };
        if self.relay.forward(Leg::A, packet, stream).is_ok()
            && self.agent_sock.send_to(packet, to).await.is_ok()
        {
            self.stats.relayed += 1;
        }
    }

    async fn on_agent_packet(&mut self, packet: &mut [u8], from: SocketAddr) {
        if !acd_media::is_rtp(packet) || self.agent_remote.is_none() {
            self.stats.dropped += 1;
            return;
        }
        self.agent_remote = Some(from);
        if self
            .relay
            .forward(Leg::B, packet, &mut self.caller_stream)
            .is_ok()
            && self
                .caller_sock
                .send_to(packet, self.caller_remote)
                .await
                .is_ok()
        {
            self.stats.relayed += 1;
        }
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
