//! Garbage and malformed requests do not hurt the edge; a request without
//! Call-ID gets 400 and the next request is served normally.

use std::net::SocketAddr;

use acd_tests::sip::{options, request, status_code};
use acd_tests::{TestEnv, SHORT};
use tokio::net::UdpSocket;

#[tokio::test]
async fn garbage_and_missing_call_id() {
    let env = TestEnv::new("malformed", 17);
    let mut acd = env.start_run().await.unwrap();
    let edge: SocketAddr = env.sip_addr().parse().unwrap();

    let junk = UdpSocket::bind(("127.0.0.1", env.ports.sipp(0).sip))
        .await
        .unwrap();
    for datagram in [
        &b"\x00\x01\x02\x03\xff\xfe garbage"[..],
        b"HELLO WORLD\r\n\r\n",
        b"INVITE\r\n\r\n",
        b"SIP/2.0 200 OK\r\n\r\n",
        &[0x80u8; 1400][..],
        b"\r\n\r\n",
    ] {
        junk.send_to(datagram, edge).await.unwrap();
    }

    let probe = UdpSocket::bind(("127.0.0.1", env.ports.sipp(1).sip))
        .await
        .unwrap();
    let local = probe.local_addr().unwrap();
    let bad = options(edge, local, "z9hG4bK-e2e-nocallid", None);
    let resp = request(&probe, edge, &bad, "z9hG4bK-e2e-nocallid", SHORT)
        .await
        .unwrap();
    assert_eq!(
        status_code(&resp),
        Some(400),
        "missing Call-ID must get 400, got:\n{resp}"
    );

    let good = options(
        edge,
        local,
        "z9hG4bK-e2e-ok",
        Some("e2e-options-1@127.0.0.1"),
    );
    let resp = request(&probe, edge, &good, "z9hG4bK-e2e-ok", SHORT)
        .await
        .unwrap();
    assert_eq!(
        status_code(&resp),
        Some(200),
        "OPTIONS after garbage must get 200, got:\n{resp}"
    );
    acd.assert_running();
}
