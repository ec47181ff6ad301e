//! Stream transports against hostile and sleepy peers, with raw sockets:
//! per-source connection cap, slow-loris header timeout, idle timeout,
//! RFC 5626 CRLF keep-alive, 400 on a framing error on the same connection,
//! and REGISTER over TLS.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use acd_tests::sip::status_code;
use acd_tests::{TestEnv, SHORT};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

const LIMITS: &str = "[sip.limits]\n\
max_tcp_per_source = 3\n\
tcp_idle_timeout_secs = 3\n\
tcp_header_timeout_secs = 2\n";

/// A connection from `127.0.0.<source>`, so each part of a test has its own
/// per-source count.
async fn connect_from(source: u8, edge: SocketAddr) -> TcpStream {
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, source)),
        0,
    ))
    .unwrap();
    sock.connect(edge).await.unwrap()
}

/// Reads until EOF (or error), at most `within`; returns what was read and
/// whether the peer closed.
async fn read_to_close<S: AsyncRead + Unpin>(s: &mut S, within: Duration) -> (String, bool) {
    let deadline = Instant::now() + within;
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&all).into(), true),
            Ok(Ok(n)) => all.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&all).into(), false),
        }
    }
}

/// Sends a double-CRLF ping and expects the single-CRLF pong.
async fn ping<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S) -> bool {
    if s.write_all(b"\r\n\r\n").await.is_err() {
        return false;
    }
    let mut pong = [0u8; 2];
    matches!(
        tokio::time::timeout(SHORT, s.read_exact(&mut pong)).await,
        Ok(Ok(_)) if &pong == b"\r\n"
    )
}

fn options(edge: SocketAddr, local: SocketAddr, transport: &str, branch: &str) -> String {
    format!(
        "OPTIONS sip:5550100@{edge} SIP/2.0\r\n\
         Via: SIP/2.0/{transport} {local};branch={branch}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:probe@{local}>;tag=t-{branch}\r\n\
         To: <sip:5550100@{edge}>\r\n\
         Call-ID: {branch}@e2e\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

/// The response in `text` whose Via carries `branch`.
fn response_for<'a>(text: &'a str, branch: &str) -> Option<&'a str> {
    text.split("SIP/2.0 ")
        .skip(1)
        .find(|r| r.contains(branch))
        .map(|r| &r[..r.find("\r\n").unwrap_or(r.len())])
}

#[tokio::test]
async fn connection_caps_and_timeouts() {
    let env = TestEnv::new("tcp_limits", 48);
    let config = env.write_config(LIMITS);
    let mut acd = env.start_run_with(&config, &[]).await.unwrap();
    let edge: SocketAddr = env.sip_addr().parse().unwrap();

    // Per-source cap: three connections from one address are served, the
    // fourth is closed at once; another address is not affected.
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut c = connect_from(2, edge).await;
        assert!(
            ping(&mut c).await,
            "connection within the cap must be served"
        );
        held.push(c);
    }
    // Closed at once: well before the 3 s idle timeout could close it.
    let mut over = connect_from(2, edge).await;
    let (_, closed) = read_to_close(&mut over, Duration::from_millis(1500)).await;
    assert!(
        closed,
        "the connection over the per-source cap must be closed at once"
    );
    let mut other = connect_from(3, edge).await;
    assert!(ping(&mut other).await, "another source has its own count");

    // Keep-alives are traffic: pinging every second keeps a connection
    // open past the 3 s idle timeout.
    let mut kept = connect_from(4, edge).await;
    for i in 0..5 {
        assert!(ping(&mut kept).await, "keep-alive {i} not answered");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    // Idle: nothing sent after one ping; closed after about 3 s.
    let mut idle = connect_from(5, edge).await;
    assert!(ping(&mut idle).await);
    let t0 = Instant::now();
    let (_, closed) = read_to_close(&mut idle, SHORT).await;
    let idle_for = t0.elapsed();
    assert!(closed, "an idle connection must be closed");
    assert!(
        idle_for >= Duration::from_millis(2500),
        "closed too early: {idle_for:?}"
    );

    // Slow loris: one byte a second never completes a message; the header
    // timeout (2 s) closes it although bytes keep arriving (so the idle
    // timeout never fires: without the header timeout the ~60 bytes would
    // keep it open for a minute).
    let loris = connect_from(6, edge).await;
    let (mut rd, mut wr) = loris.into_split();
    let writer = tokio::spawn(async move {
        for b in b"OPTIONS sip:5550100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP x\r\n".iter() {
            if wr.write_all(&[*b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let t0 = Instant::now();
    let (_, closed) = read_to_close(&mut rd, SHORT).await;
    let lasted = t0.elapsed();
    writer.abort();
    assert!(closed, "a slow-loris connection must be closed");
    assert!(
        lasted >= Duration::from_millis(1500) && lasted < Duration::from_secs(8),
        "closed after {lasted:?}: expected the 2 s header timeout"
    );

    // The held connections have been idle for over 3 s by now: the edge
    // closed them and their slots came back.
    for c in &mut held {
        let (_, closed) = read_to_close(c, SHORT).await;
        assert!(closed, "idle held connection must be closed");
    }
    let mut again = connect_from(2, edge).await;
    assert!(
        ping(&mut again).await,
        "slots are released when connections close"
    );
    acd.assert_running();
}

#[tokio::test]
async fn framing_error_answers_400_on_the_same_connection() {
    let env = TestEnv::new("tcp_framing_error", 49);
    let config = env.write_config(LIMITS);
    let mut acd = env.start_run_with(&config, &[]).await.unwrap();
    let edge: SocketAddr = env.sip_addr().parse().unwrap();

    let mut c = connect_from(2, edge).await;
    let local = c.local_addr().unwrap();
    // A good request, then one whose Content-Length cannot be read, in one
    // write: the first is answered, the second gets 400, then close.
    let good = options(edge, local, "TCP", "z9hG4bK-good");
    let bad = options(edge, local, "TCP", "z9hG4bK-bad")
        .replace("Content-Length: 0", "Content-Length: lots");
    c.write_all(format!("{good}{bad}").as_bytes())
        .await
        .unwrap();
    let (text, closed) = read_to_close(&mut c, SHORT).await;
    assert!(closed, "the connection must close after a framing error");
    let ok = response_for(&text, "z9hG4bK-good")
        .unwrap_or_else(|| panic!("no response to the good request in:\n{text}"));
    assert!(ok.starts_with("200"), "good request: {ok}\n{text}");
    let bad = response_for(&text, "z9hG4bK-bad")
        .unwrap_or_else(|| panic!("no 400 for the bad request in:\n{text}"));
    assert!(bad.starts_with("400"), "bad request: {bad}\n{text}");
    acd.assert_running();
}

#[tokio::test]
async fn register_over_tls_gets_its_challenge() {
    let env = TestEnv::new("tls_register", 50);
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let cert_pem = cert.cert.pem();
    let (cert_file, key_file) = (env.log_path("edge.pem"), env.log_path("edge.key"));
    std::fs::write(&cert_file, &cert_pem).unwrap();
    std::fs::write(&key_file, cert.key_pair.serialize_pem()).unwrap();
    let tls_addr = SocketAddr::from(([127, 0, 0, 1], env.ports.sip_tls()));
    let config = env.write_config(&format!(
        "{LIMITS}[sip.tls]\nlisten = \"127.0.0.1:5061\"\ncert = \"{}\"\nkey = \"{}\"\n",
        cert_file.display(),
        key_file.display()
    ));
    let mut acd = env
        .start_run_with(&config, &["--sip-tls".into(), tls_addr.to_string()])
        .await
        .unwrap();
    assert_eq!(
        acd.ready.get("sip_tls"),
        Some(tls_addr.to_string().as_str()),
        "READY line names the TLS listener"
    );

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(tls_addr).await.unwrap();
    let local = tcp.local_addr().unwrap();
    let name = ServerName::IpAddress(Ipv4Addr::LOCALHOST.into());
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(client))
        .connect(name, tcp)
        .await
        .expect("TLS handshake with the edge's certificate");

    let register = format!(
        "REGISTER sip:acd.local SIP/2.0\r\n\
         Via: SIP/2.0/TLS {local};branch=z9hG4bK-tls-reg\r\n\
         Max-Forwards: 70\r\n\
         From: <sips:1001@acd.local>;tag=tls1\r\n\
         To: <sips:1001@acd.local>\r\n\
         Call-ID: tls-reg@e2e\r\n\
         CSeq: 1 REGISTER\r\n\
         Contact: <sip:1001@{local};transport=tls>\r\n\
         Expires: 60\r\n\
         Content-Length: 0\r\n\r\n"
    );
    tls.write_all(register.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + SHORT;
    let text = loop {
        let n = tokio::time::timeout_at(deadline, tls.read(&mut buf))
            .await
            .expect("a response over TLS in time")
            .expect("TLS read");
        assert!(
            n > 0,
            "edge closed the TLS connection; got:\n{}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).to_string();
        if text.contains("\r\n\r\n") {
            break text;
        }
    };
    assert_eq!(status_code(&text), Some(401), "REGISTER over TLS:\n{text}");
    assert!(
        text.contains("WWW-Authenticate: Digest"),
        "the 401 carries a challenge:\n{text}"
    );
    assert!(text.contains("branch=z9hG4bK-tls-reg"), "{text}");
    acd.assert_running();
}
