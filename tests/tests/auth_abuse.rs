//! Abuse of REGISTER: a captured Authorization replayed from elsewhere with
//! another Contact does not move the binding; many wrong passwords from one
//! address back that address off while another still registers. Raw UDP,
//! with the project's digest client, against the real binary.

use std::net::SocketAddr;

use acd_sip::auth::client_authorization;
use acd_tests::metrics::{counter_with, scrape};
use acd_tests::sip::{header, headers, request, status_code};
use acd_tests::{TestEnv, SHORT};
use tokio::net::UdpSocket;

/// A REGISTER for extension 1001 from `local` with Contact port
/// `contact_port` (None: a query, no Contact).
fn register(
    edge: SocketAddr,
    local: SocketAddr,
    branch: &str,
    cseq: u32,
    contact_port: Option<u16>,
    auth: Option<&str>,
) -> String {
    let mut m = format!(
        "REGISTER sip:{edge} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch={branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:1001@{edge}>;tag=t{cseq}\r\n\
         To: <sip:1001@{edge}>\r\n\
         Call-ID: abuse-{local}\r\n\
         CSeq: {cseq} REGISTER\r\n"
    );
    if let Some(p) = contact_port {
        m.push_str(&format!(
            "Contact: <sip:1001@{}:{p}>\r\nExpires: 600\r\n",
            local.ip()
        ));
    }
    if let Some(a) = auth {
        m.push_str(&format!("Authorization: {a}\r\n"));
    }
    m.push_str("Content-Length: 0\r\n\r\n");
    m
}

/// The SHA-256 challenge of a 401 (both algorithms are offered).
fn sha256_challenge(resp: &str) -> String {
    assert_eq!(status_code(resp), Some(401), "{resp}");
    let all = headers(resp, "WWW-Authenticate");
    assert!(
        all.iter().any(|h| h.contains("algorithm=MD5")),
        "MD5 offered too: {resp}"
    );
    all.into_iter()
        .find(|h| h.contains("algorithm=SHA-256"))
        .unwrap_or_else(|| panic!("no SHA-256 challenge in {resp}"))
        .to_string()
}

fn answer(challenge: &str, edge: SocketAddr, password: &str, nc: u32) -> String {
    let uri = format!("sip:{edge}");
    client_authorization(challenge, "1001", password, "REGISTER", &uri, "e2e", nc).unwrap()
}

#[tokio::test]
async fn replayed_authorization_and_password_guessing_are_refused() {
    let env = TestEnv::new(
        "replayed_authorization_and_password_guessing_are_refused",
        51,
    );
    let mut acd = env.start_run().await.unwrap();
    let edge: SocketAddr = env.sip_addr().parse().unwrap();
    let ports = env.ports;

    // The operator's phone registers (SHA-256) from 127.0.0.1.
    let phone = UdpSocket::bind(("127.0.0.1", ports.sipp(0).sip))
        .await
        .unwrap();
    let phone_addr = phone.local_addr().unwrap();
    let contact_port = ports.sipp(1).sip;
    let r = register(edge, phone_addr, "z9hG4bKp1", 1, Some(contact_port), None);
    let ch = sha256_challenge(&request(&phone, edge, &r, "z9hG4bKp1", SHORT).await.unwrap());
    let captured = answer(&ch, edge, "secret1001", 1);
    let r = register(
        edge,
        phone_addr,
        "z9hG4bKp2",
        2,
        Some(contact_port),
        Some(&captured),
    );
    let resp = request(&phone, edge, &r, "z9hG4bKp2", SHORT).await.unwrap();
    assert_eq!(status_code(&resp), Some(200), "{resp}");

    // An attacker replays the captured header from another port with its own Contact.
    let attacker = UdpSocket::bind(("127.0.0.1", ports.sipp(2).sip))
        .await
        .unwrap();
    let attacker_addr = attacker.local_addr().unwrap();
    let r = register(
        edge,
        attacker_addr,
        "z9hG4bKa1",
        2,
        Some(ports.sipp(3).sip),
        Some(&captured),
    );
    let resp = request(&attacker, edge, &r, "z9hG4bKa1", SHORT)
        .await
        .unwrap();
    let status = status_code(&resp);
    assert!(
        matches!(status, Some(401 | 403)),
        "replay must be refused: {resp}"
    );

    // The binding still points at the phone: a query with the next nonce count lists it.
    let next = answer(&ch, edge, "secret1001", 2);
    let r = register(edge, phone_addr, "z9hG4bKp3", 3, None, Some(&next));
    let resp = request(&phone, edge, &r, "z9hG4bKp3", SHORT).await.unwrap();
    assert_eq!(status_code(&resp), Some(200), "{resp}");
    let contact = header(&resp, "Contact").unwrap_or_default();
    assert!(
        contact.contains(&format!("127.0.0.1:{contact_port}>")),
        "binding moved: {resp}"
    );

    // Password guessing from 127.0.0.2: 403s, then 503 + Retry-After.
    let guesser = UdpSocket::bind(("127.0.0.2", ports.sipp(4).sip))
        .await
        .unwrap();
    let guesser_addr = guesser.local_addr().unwrap();
    let r = register(
        edge,
        guesser_addr,
        "z9hG4bKg0",
        1,
        Some(ports.sipp(5).sip),
        None,
    );
    let gch = sha256_challenge(
        &request(&guesser, edge, &r, "z9hG4bKg0", SHORT)
            .await
            .unwrap(),
    );
    let mut statuses = Vec::new();
    for i in 1..=8u32 {
        let branch = format!("z9hG4bKg{i}");
        let guess = answer(&gch, edge, &format!("guess{i}"), i);
        let r = register(
            edge,
            guesser_addr,
            &branch,
            i + 1,
            Some(ports.sipp(5).sip),
            Some(&guess),
        );
        let resp = request(&guesser, edge, &r, &branch, SHORT).await.unwrap();
        if status_code(&resp) == Some(503) {
            let retry: u64 = header(&resp, "Retry-After")
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("503 without Retry-After: {resp}"));
            assert!((1..=30).contains(&retry), "{resp}");
        }
        statuses.push(status_code(&resp).unwrap_or(0));
    }
    assert_eq!(statuses, [403, 403, 403, 403, 403, 503, 503, 503]);
    // Even the right password is not looked at while backed off.
    let right = answer(&gch, edge, "secret1001", 20);
    let r = register(
        edge,
        guesser_addr,
        "z9hG4bKg20",
        20,
        Some(ports.sipp(5).sip),
        Some(&right),
    );
    let resp = request(&guesser, edge, &r, "z9hG4bKg20", SHORT)
        .await
        .unwrap();
    assert_eq!(status_code(&resp), Some(503), "{resp}");

    // The phone on 127.0.0.1 still registers (a refresh with the next nc).
    let refresh = answer(&ch, edge, "secret1001", 3);
    let r = register(
        edge,
        phone_addr,
        "z9hG4bKp4",
        4,
        Some(contact_port),
        Some(&refresh),
    );
    let resp = request(&phone, edge, &r, "z9hG4bKp4", SHORT).await.unwrap();
    assert_eq!(status_code(&resp), Some(200), "{resp}");

    // Every refusal is counted with its reason.
    let text = scrape(&acd.metrics_addr()).await.unwrap();
    let count = |result: &str| {
        counter_with(&text, "acd_registrations_total", &[("result", result)]).unwrap_or(0.0)
    };
    assert!(
        count("replay") + count("move_needs_fresh_nonce") >= 1.0,
        "{text}"
    );
    assert_eq!(count("wrong_response"), 5.0, "{text}");
    assert_eq!(count("backed_off"), 4.0, "{text}");
    acd.assert_running();
}
