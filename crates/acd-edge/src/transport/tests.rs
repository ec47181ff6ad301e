use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

async fn started(limits: TransportLimits) -> (Transports, SocketAddr, mpsc::Receiver<Inbound>) {
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let (tx, rx) = mpsc::channel(8);
    let sockets = Sockets {
        udp,
        tcp,
        tls: None,
    };
    let t = Transports::start(sockets, limits, tls::connector(None).unwrap(), tx);
    (t, addr, rx)
}

fn options(branch: &str) -> String {
    format!(
        "OPTIONS sip:e SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch={branch}\r\n\
         From: <sip:a@x>;tag=1\r\nTo: <sip:b@y>\r\nCall-ID: {branch}\r\nCSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

/// A response for a TCP peer whose connection is gone is dropped: nothing
/// connects to the peer's (ephemeral) port. A request to it dials.
#[tokio::test]
async fn responses_never_dial_requests_do() {
    let (t, _, _rx) = started(TransportLimits::default()).await;
    let client_side = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let peer = Peer {
        addr: client_side.local_addr().unwrap(),
        transport: Transport::Tcp,
    };
    t.respond(
        peer,
        b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec(),
    );
    t.send(
        peer,
        b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec(),
    );
    let accepted = tokio::time::timeout(Duration::from_millis(300), client_side.accept()).await;
    assert!(accepted.is_err(), "a response must not open a connection");

    t.request(peer, options("z9hG4bK-out").into_bytes());
    let (mut s, _) = tokio::time::timeout(Duration::from_secs(5), client_side.accept())
        .await
        .expect("a request dials the contact")
        .unwrap();
    let mut buf = vec![0u8; 1024];
    let n = s.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"OPTIONS "));
    assert_eq!(t.open_connections(), 1);
}

/// Messages reach the engine with their connection as `from`; the answer
/// goes back on that connection; closing releases the slot.
#[tokio::test]
async fn inbound_carries_the_connection_and_responses_use_it() {
    let (t, addr, mut rx) = started(TransportLimits::default()).await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(options("z9hG4bK-in").as_bytes()).await.unwrap();
    let inbound = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(inbound.from.transport, Transport::Tcp);
    assert_eq!(inbound.from.addr, c.local_addr().unwrap());
    t.respond(
        inbound.from,
        b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec(),
    );
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(buf[..n].starts_with(b"SIP/2.0 200 OK"));
    drop(c);
    await_all_closed(&t).await;
}

/// Polls the slot count (the close has no event to await) until every
/// connection is gone; fails after 5 s.
async fn await_all_closed(t: &Transports) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while t.open_connections() > 0 {
        assert!(Instant::now() < deadline, "slot not released after close");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Once a connection the peer opened is closed, a request for its source
/// address is dropped: that ephemeral port is never dialled.
#[tokio::test]
async fn a_closed_inbound_connections_source_port_is_never_dialled() {
    let (t, addr, mut rx) = started(TransportLimits::default()).await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    let source = c.local_addr().unwrap();
    c.write_all(options("z9hG4bK-src").as_bytes())
        .await
        .unwrap();
    let inbound = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(inbound.from.addr, source);
    // Close with RST (linger 0): no TIME_WAIT holds the port afterwards.
    c.set_zero_linger().unwrap();
    drop(c);
    await_all_closed(&t).await;
    // Someone now listens on that port; an in-dialog request must not reach it.
    let squatter = TcpListener::bind(source).await.unwrap();
    t.request(inbound.from, options("z9hG4bK-bye").into_bytes());
    let dialled = tokio::time::timeout(Duration::from_millis(300), squatter.accept()).await;
    assert!(dialled.is_err(), "the peer's old source port was dialled");
}

/// A dialog's request for a peer's closed connection goes to the Contact
/// the core announced for it, not to the connection's source port.
#[tokio::test]
async fn a_request_for_a_closed_connection_goes_to_the_announced_contact() {
    let (t, addr, mut rx) = started(TransportLimits::default()).await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(options("z9hG4bK-rt").as_bytes()).await.unwrap();
    let inbound = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    let contact_side = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let contact = Peer {
        addr: contact_side.local_addr().unwrap(),
        transport: Transport::Tcp,
    };
    t.route(inbound.from, contact);
    c.set_zero_linger().unwrap();
    drop(c);
    await_all_closed(&t).await;
    t.request(inbound.from, options("z9hG4bK-bye2").into_bytes());
    let (mut s, _) = tokio::time::timeout(Duration::from_secs(5), contact_side.accept())
        .await
        .expect("the request dials the Contact")
        .unwrap();
    let mut buf = vec![0u8; 1024];
    let n = s.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"OPTIONS "));
}
