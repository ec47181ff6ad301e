//! SIP transports: one UDP socket and a TCP listener. Received bytes go to
//! the engine as inputs; the engine sends without awaiting (UDP `try_send_to`,
//! TCP through a per-connection writer task), so its loop never blocks on I/O.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use acd_sip::{Message, Peer, Transport};
use dashmap::DashMap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;

use crate::engine::Input;

/// Largest SIP message accepted on TCP before the connection is dropped.
const MAX_TCP_BUFFER: usize = 256 * 1024;

/// UDP datagrams waiting for the engine beyond which new ones are dropped:
/// under overload a quick loss (the peer retransmits or tries elsewhere)
/// beats answering seconds late from an ever-growing queue.
const MAX_UDP_BACKLOG: usize = 2048;

#[derive(Clone)]
pub struct Transports {
    udp: Arc<UdpSocket>,
    backlog: Arc<AtomicUsize>,
    tcp_writers: Arc<DashMap<SocketAddr, mpsc::UnboundedSender<Vec<u8>>>>,
    input: mpsc::UnboundedSender<Input>,
}

impl Transports {
    pub fn start(
        udp: UdpSocket,
        tcp: TcpListener,
        input: mpsc::UnboundedSender<Input>,
    ) -> Transports {
        let t = Transports {
            udp: Arc::new(udp),
            backlog: Arc::new(AtomicUsize::new(0)),
            tcp_writers: Arc::new(DashMap::new()),
            input,
        };
        tokio::spawn(t.clone().udp_reader());
        tokio::spawn(t.clone().tcp_acceptor(tcp));
        t
    }

    /// The engine took one datagram off the backlog.
    pub fn datagram_done(&self) {
        self.backlog.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn send(&self, to: Peer, bytes: Vec<u8>) {
        match to.transport {
            Transport::Udp => {
                if let Err(e) = self.udp.try_send_to(&bytes, to.addr) {
                    metrics::counter!("acd_sip_transport_errors_total", "kind" => "udp_send")
                        .increment(1);
                    tracing::warn!(peer = %to.addr, error = %e, "UDP send failed");
                }
            }
            Transport::Tcp => self.send_tcp(to.addr, bytes),
        }
    }

    fn send_tcp(&self, addr: SocketAddr, bytes: Vec<u8>) {
        if let Some(w) = self.tcp_writers.get(&addr) {
            if w.send(bytes).is_ok() {
                return;
            }
            return;
        }
        // No connection to this peer yet: open one and send through it.
        let t = self.clone();
        tokio::spawn(async move {
            match TcpStream::connect(addr).await {
                Ok(stream) => {
                    let w = t.attach(stream, addr);
                    let _ = w.send(bytes);
                }
                Err(e) => {
                    metrics::counter!("acd_sip_transport_errors_total", "kind" => "tcp_connect")
                        .increment(1);
                    tracing::warn!(peer = %addr, error = %e, "TCP connect failed");
                }
            }
        });
    }

    async fn udp_reader(self) {
        let mut buf = vec![0u8; 65536];
        loop {
            match self.udp.recv_from(&mut buf).await {
                Ok((n, from)) => {
                    if self.backlog.load(Ordering::Relaxed) >= MAX_UDP_BACKLOG {
                        metrics::counter!("acd_sip_overload_drops_total").increment(1);
                        continue;
                    }
                    self.backlog.fetch_add(1, Ordering::Relaxed);
                    let peer = Peer {
                        addr: from,
                        transport: Transport::Udp,
                    };
                    let input = Input::Datagram {
                        bytes: buf[..n].to_vec(),
                        from: peer,
                    };
                    if self.input.send(input).is_err() {
                        return;
                    }
                }
                // ICMP port unreachable surfaces here on Linux; keep serving.
                Err(e) => tracing::debug!(error = %e, "UDP receive error"),
            }
        }
    }

    async fn tcp_acceptor(self, listener: TcpListener) {
        loop {
            match listener.accept().await {
                Ok((stream, addr)) => {
                    self.attach(stream, addr);
                }
                Err(e) => {
                    metrics::counter!("acd_sip_transport_errors_total", "kind" => "tcp_accept")
                        .increment(1);
                    tracing::warn!(error = %e, "TCP accept failed");
                }
            }
        }
    }

    /// Starts reader and writer tasks for a connection; returns its writer.
    fn attach(&self, stream: TcpStream, addr: SocketAddr) -> mpsc::UnboundedSender<Vec<u8>> {
        let (mut rd, mut wr) = stream.into_split();
        let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
        self.tcp_writers.insert(addr, tx.clone());
        tokio::spawn(async move {
            while let Some(bytes) = rx.recv().await {
                if wr.write_all(&bytes).await.is_err() {
                    break;
                }
            }
        });
        let t = self.clone();
        tokio::spawn(async move {
            t.tcp_reader(&mut rd, addr).await;
            t.tcp_writers.remove(&addr);
        });
        tx
    }

    async fn tcp_reader(&self, rd: &mut tokio::net::tcp::OwnedReadHalf, addr: SocketAddr) {
        let peer = Peer {
            addr,
            transport: Transport::Tcp,
        };
        // The framer, not `parse_stream` per read: a peer trickling bytes would make
        // rescanning the buffer after every read quadratic.
        let mut framer = acd_sip::StreamFramer::new();
        let mut chunk = [0u8; 8192];
        loop {
            let n = match rd.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            framer.push(&chunk[..n]);
            loop {
                match framer.next_message() {
                    Ok(Some(msg)) => {
                        if self
                            .input
                            .send(Input::Message {
                                msg: Box::new(msg),
                                from: peer,
                            })
                            .is_err()
                        {
                            return;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        // A stream cannot be resynchronised after a framing error.
                        metrics::counter!("acd_sip_parse_errors_total", "transport" => "tcp")
                            .increment(1);
                        tracing::warn!(peer = %addr, error = %e, "malformed SIP on TCP, closing");
                        if let Some(resp) = acd_sip::message::salvage_for_400(framer.buffer()) {
                            self.send_tcp(addr, resp);
                        }
                        return;
                    }
                }
            }
            if framer.buffer().len() > MAX_TCP_BUFFER {
                tracing::warn!(peer = %addr, "oversized SIP message on TCP, closing");
                return;
            }
        }
    }
}

/// Keeps `Message` boxed in inputs so the enum stays small.
pub type BoxedMessage = Box<Message>;
