//! Per-call media: two RTP sockets (caller leg, agent leg), prompt and music
//! playout towards the caller, and the relay once the legs are bridged.
//!
//! One task per call owns both sockets and runs the drive loop of
//! `acd_media`'s sans-IO parts: wait for a datagram, a command or the
//! player's next deadline; feed the core; send what it produced.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use acd_media::{Codec, Leg, OutboundStream, Player, Prompt, Relay, SeqNo, Ssrc, PACKET_LEN};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Even RTP ports of a configured range. Free ports wait in a queue (least
/// recently used first), so finding one is O(1) and an exhausted pool
/// refuses at once instead of scanning the range on every INVITE.
pub struct PortPool {
    ip: IpAddr,
    free: Mutex<VecDeque<u16>>,
    range: (u16, u16),
}

/// A bound RTP socket whose port returns to the pool when dropped.
pub struct RtpSocket {
    pub sock: UdpSocket,
    port: u16,
    pool: Arc<PortPool>,
}

impl Drop for RtpSocket {
    fn drop(&mut self) {
        self.pool.release(self.port);
    }
}

/// Ports taken by other programs are skipped this many times per bind.
const BIND_ATTEMPTS: usize = 16;

impl PortPool {
    pub fn new(ip: IpAddr, min: u16, max: u16) -> Arc<Self> {
        let first = min.saturating_add(min % 2);
        let free = (first..=max).step_by(2).collect();
        Arc::new(PortPool {
            ip,
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

    /// Binds a socket on a free even port. Synchronous (a bind does not
    /// block) so the signalling loop can call it.
    pub fn bind(self: &Arc<Self>) -> std::io::Result<RtpSocket> {
        for _ in 0..BIND_ATTEMPTS {
            let Some(port) = self.lock().pop_front() else {
                break;
            };
            match std::net::UdpSocket::bind((self.ip, port)) {
                Ok(sock) => {
                    sock.set_nonblocking(true)?;
                    let sock = UdpSocket::from_std(sock)?;
                    return Ok(RtpSocket {
                        sock,
                        port,
                        pool: self.clone(),
                    });
                }
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

    pub fn free_ports(&self) -> usize {
        self.lock().len()
    }

    /// Calls the range can carry at once: each binds two even ports (caller
    /// leg and agent leg) from its INVITE to its end.
    pub fn call_capacity(&self) -> usize {
        (self.range.0..=self.range.1).step_by(2).count() / 2
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
    pool: &Arc<PortPool>,
    call: String,
    caller_remote: SocketAddr,
    caller_codec: Codec,
    events: mpsc::UnboundedSender<MediaEvent>,
) -> std::io::Result<MediaHandle> {
    let caller_sock = pool.bind()?;
    let agent_sock = pool.bind()?;
    let caller_port = caller_sock.port;
    let agent_port = agent_sock.port;
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
    caller_sock: RtpSocket,
    agent_sock: RtpSocket,
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
                r = self.caller_sock.sock.recv_from(&mut in_a) => {
                    if let Ok((n, from)) = r {
                        self.on_caller_packet(&mut in_a[..n], from).await;
                    }
                }
                r = self.agent_sock.sock.recv_from(&mut in_b) => {
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
                .sock
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
            && self.agent_sock.sock.send_to(packet, to).await.is_ok()
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
                .sock
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

#[cfg(test)]
mod tests {
    use super::*;

    const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[tokio::test]
    async fn pool_hands_out_even_ports_and_takes_them_back() {
        let pool = PortPool::new(LOOPBACK, 36101, 36106); // 36102, 36104, 36106
        assert_eq!(pool.free_ports(), 3);
        let a = pool.bind().unwrap();
        let b = pool.bind().unwrap();
        let c = pool.bind().unwrap();
        let mut ports = [a.port, b.port, c.port];
        ports.sort();
        assert_eq!(
            ports,
            [36102, 36104, 36106],
            "every even port, the last one too"
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
        let pool = PortPool::new(LOOPBACK, 36110, 36112);
        let got = pool.bind().unwrap();
        assert_eq!(got.port, 36112);
        drop(squatter);
        // The skipped port went to the back of the queue and is usable now.
        assert_eq!(pool.bind().unwrap().port, 36110);
    }
}
