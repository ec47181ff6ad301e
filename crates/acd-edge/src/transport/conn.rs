//! One stream connection (TCP or TLS, accepted or dialled): a single task
//! owns the stream, reads into a [`StreamFramer`], writes what the engine
//! queued, and closes on EOF, timeout, framing error or a full queue.

use std::sync::Arc;
use std::time::{Duration, Instant};

use acd_sip::framing::PONG;
use acd_sip::{Frame, FramingError, Message, Method, Peer, StreamFramer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, Notify};

use super::{Inbound, SlotGuard, Transports};

/// After a framing error, how long responses to the requests that came
/// before it may take to be written before the connection closes.
const LINGER: Duration = Duration::from_secs(2);

/// Why a connection ended (the metric's `reason` label).
#[derive(Debug, Clone, Copy)]
enum Close {
    Eof,
    ReadError,
    WriteError,
    Idle,
    HeaderTimeout,
    FramingError,
    SlowReader,
    Unregistered,
    EngineGone,
}

impl Close {
    fn as_str(self) -> &'static str {
        match self {
            Close::Eof => "eof",
            Close::ReadError => "read_error",
            Close::WriteError => "write_error",
            Close::Idle => "idle_timeout",
            Close::HeaderTimeout => "header_timeout",
            Close::FramingError => "framing_error",
            Close::SlowReader => "slow_reader",
            Close::Unregistered => "unregistered",
            Close::EngineGone => "engine_gone",
        }
    }
}

pub(super) struct Conn {
    t: Transports,
    peer: Peer,
    id: u64,
    queue: mpsc::Receiver<Vec<u8>>,
    kill: Arc<Notify>,
    _slot: SlotGuard,
    framer: StreamFramer,
    last_rx: Instant,
    /// When the first byte of the incomplete message arrived.
    msg_started: Option<Instant>,
    /// Requests handed to the engine minus final responses written: what a
    /// framing error must wait for before closing.
    unanswered: usize,
}

impl Conn {
    pub(super) fn new(
        t: &Transports,
        peer: Peer,
        id: u64,
        queue: mpsc::Receiver<Vec<u8>>,
        kill: Arc<Notify>,
        slot: SlotGuard,
    ) -> Conn {
        Conn {
            t: t.clone(),
            peer,
            id,
            queue,
            kill,
            _slot: slot,
            framer: StreamFramer::new(t.inner.limits.max_message_bytes),
            last_rx: Instant::now(),
            msg_started: None,
            unanswered: 0,
        }
    }

    pub(super) async fn run<S: AsyncRead + AsyncWrite + Unpin>(mut self, mut stream: S) {
        let reason = self.serve(&mut stream).await;
        self.t.unregister(self.peer, self.id);
        metrics::counter!("acd_sip_connections_closed_total", "reason" => reason.as_str())
            .increment(1);
        tracing::debug!(peer = %self.peer.addr, reason = reason.as_str(), "connection closed");
        // Best effort (TLS close_notify, FIN); a peer that does not read
        // must not hold the task.
        let _ = tokio::time::timeout(Duration::from_secs(1), stream.shutdown()).await;
    }

    fn deadline(&self) -> Instant {
        let limits = &self.t.inner.limits;
        match self.msg_started {
            Some(t) => t + limits.tcp_header_timeout,
            None => self.last_rx + limits.tcp_idle_timeout,
        }
    }

    async fn serve<S: AsyncRead + AsyncWrite + Unpin>(&mut self, stream: &mut S) -> Close {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let deadline = tokio::time::Instant::from_std(self.deadline());
            tokio::select! {
                biased;
                _ = self.kill.notified() => return Close::SlowReader,
                out = self.queue.recv() => match out {
                    Some(bytes) => {
                        if let Err(c) = self.write(stream, &bytes).await {
                            return c;
                        }
                    }
                    None => return Close::Unregistered,
                },
                read = stream.read(&mut buf) => {
                    let n = match read {
                        Ok(0) => return Close::Eof,
                        Ok(n) => n,
                        Err(_) => return Close::ReadError,
                    };
                    if let Err(c) = self.received(stream, &buf[..n]).await {
                        return c;
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    return if self.msg_started.is_some() {
                        Close::HeaderTimeout
                    } else {
                        Close::Idle
                    };
                }
            }
        }
    }

    /// Frames what was read and hands messages on, waiting while the
    /// engine's channel is full (back-pressure on the peer via TCP).
    async fn received<S: AsyncWrite + Unpin>(
        &mut self,
        stream: &mut S,
        bytes: &[u8],
    ) -> Result<(), Close> {
        let now = Instant::now();
        self.last_rx = now;
        self.framer.push(bytes);
        loop {
            match self.framer.poll() {
                Ok(None) => break,
                Ok(Some(Frame::Ping)) => self.write(stream, PONG).await?,
                Ok(Some(Frame::Message(msg))) => {
                    self.msg_started = None;
                    self.deliver(msg, now).await?;
                }
                Ok(Some(_)) => {}
                Err(e) => return Err(self.framing_error(stream, e).await),
            }
        }
        if self.framer.in_message() && self.msg_started.is_none() {
            self.msg_started = Some(now);
        }
        Ok(())
    }

    async fn deliver(&mut self, msg: Message, received: Instant) -> Result<(), Close> {
        if let Message::Request(r) = &msg {
            if r.method != Method::Ack {
                self.unanswered += 1;
            }
        }
        let inbound = Inbound {
            msg: Box::new(msg),
            from: self.peer,
            received,
        };
        self.t
            .inner
            .inbound
            .send(inbound)
            .await
            .map_err(|_| Close::EngineGone)
    }

    /// Answers 400 where the broken message allows, keeps writing responses
    /// to the requests that came before it for a short while, then closes.
    async fn framing_error<S: AsyncWrite + Unpin>(
        &mut self,
        stream: &mut S,
        e: FramingError,
    ) -> Close {
        let transport = if self.peer.transport == acd_sip::Transport::Tls {
            "tls"
        } else {
            "tcp"
        };
        metrics::counter!("acd_sip_parse_errors_total", "transport" => transport).increment(1);
        tracing::warn!(peer = %self.peer.addr, error = %e, "malformed SIP on a stream, closing");
        if let Some(resp) = &e.bad_request {
            // Not one of the counted requests: written without accounting.
            if let Err(c) = self.write_raw(stream, resp).await {
                return c;
            }
        }
        let until = tokio::time::Instant::now() + LINGER;
        while self.unanswered > 0 {
            tokio::select! {
                out = self.queue.recv() => match out {
                    Some(bytes) => {
                        if let Err(c) = self.write(stream, &bytes).await {
                            return c;
                        }
                    }
                    None => break,
                },
                _ = tokio::time::sleep_until(until) => break,
            }
        }
        Close::FramingError
    }

    async fn write_raw<S: AsyncWrite + Unpin>(
        &self,
        stream: &mut S,
        bytes: &[u8],
    ) -> Result<(), Close> {
        let timeout = self.t.inner.limits.tcp_header_timeout;
        match tokio::time::timeout(timeout, stream.write_all(bytes)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Close::WriteError),
            Err(_) => Err(Close::SlowReader),
        }
    }

    /// Writes what the engine queued (or a pong), counting final responses.
    async fn write<S: AsyncWrite + Unpin>(
        &mut self,
        stream: &mut S,
        bytes: &[u8],
    ) -> Result<(), Close> {
        self.write_raw(stream, bytes).await?;
        if is_final_response(bytes) {
            self.unanswered = self.unanswered.saturating_sub(1);
        }
        Ok(())
    }
}

/// `SIP/2.0 2xx`–`6xx`: ends a server transaction.
fn is_final_response(bytes: &[u8]) -> bool {
    match bytes.strip_prefix(b"SIP/2.0 ") {
        Some([d, ..]) => (b'2'..=b'6').contains(d),
        _ => false,
    }
}
