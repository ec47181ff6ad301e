//! SIP edge cases sent as raw UDP: compact and folded headers, Max-Forwards
//! exhausted, an unknown method, a burst of garbage, and a retransmitted
//! INVITE absorbed by the server transaction.

use std::net::SocketAddr;
use std::time::Duration;

use acd_tests::metrics::{counter_with, scrape};
use acd_tests::sip::{
    ack_for, collect, header, headers, invite, options, recv_final, request, send, status_code,
    tag_param,
};
use acd_tests::{AcdProcess, TestEnv, SHORT};
use tokio::net::UdpSocket;

async fn start(name: &str, block: u16) -> (TestEnv, AcdProcess, SocketAddr, UdpSocket) {
    let env = TestEnv::new(name, block);
    let acd = env.start_run().await.unwrap();
    let edge: SocketAddr = env.sip_addr().parse().unwrap();
    let probe = UdpSocket::bind(("127.0.0.1", env.ports.sipp(0).sip))
        .await
        .unwrap();
    (env, acd, edge, probe)
}

/// `metric{label="value"}` on the edge's /metrics (0 when absent).
async fn metric(acd: &AcdProcess, name: &str, labels: &[(&str, &str)]) -> f64 {
    let text = scrape(&acd.metrics_addr()).await.unwrap();
    counter_with(&text, name, labels).unwrap_or(0.0)
}

#[tokio::test]
async fn compact_and_folded_headers_are_understood() {
    let (_env, mut acd, edge, probe) = start("sip_compact_folded", 26).await;
    let local = probe.local_addr().unwrap();
    let branch = "z9hG4bK-e2e-compact";
    let call_id = "e2e-compact-1@127.0.0.1";
    // v: f: t: i: l: compact forms; From folded onto a second line before
    // its tag parameter (RFC 3261 §7.3.1: LWS, one space after unfolding).
    let req = format!(
        "OPTIONS sip:5550100@{edge} SIP/2.0\r\n\
         v: SIP/2.0/UDP {local};branch={branch}\r\n\
         Max-Forwards: 70\r\n\
         f: <sip:probe@{local}>\r\n \t;tag=e2ecompact\r\n\
         t: <sip:5550100@{edge}>\r\n\
         i: {call_id}\r\n\
         CSeq: 7 OPTIONS\r\n\
         Accept: application/sdp\r\n\
         l: 0\r\n\r\n"
    );
    let resp = request(&probe, edge, &req, branch, SHORT).await.unwrap();
    assert_eq!(status_code(&resp), Some(200), "compact OPTIONS:\n{resp}");
    assert_eq!(header(&resp, "Call-ID"), Some(call_id), "{resp}");
    assert_eq!(
        header(&resp, "CSeq").map(|c| c.split_whitespace().collect::<Vec<_>>()),
        Some(vec!["7", "OPTIONS"]),
        "{resp}"
    );
    let from = header(&resp, "From").unwrap_or_default();
    assert_eq!(
        tag_param(from),
        Some("e2ecompact"),
        "the folded From's tag is lost in the response: {from:?}\n{resp}"
    );
    let via = header(&resp, "Via").unwrap_or_default();
    assert!(via.contains(branch), "Via of the response: {via:?}");
    acd.assert_running();
}

#[tokio::test]
async fn invite_with_max_forwards_zero_gets_483() {
    let (_env, mut acd, edge, probe) = start("sip_max_forwards_zero", 27).await;
    let local = probe.local_addr().unwrap();
    let branch = "z9hG4bK-e2e-mf0";
    // A well-formed call to a known DID (it would be answered) but for the hop count.
    let inv = invite(
        edge,
        local,
        "5550100",
        branch,
        "e2e-mf0@127.0.0.1",
        0,
        local.port() + 1,
    );
    let resp = request(&probe, edge, &inv, branch, SHORT).await.unwrap();
    assert_eq!(status_code(&resp), Some(483), "Max-Forwards: 0:\n{resp}");
    assert_eq!(
        header(&resp, "Call-ID"),
        Some("e2e-mf0@127.0.0.1"),
        "{resp}"
    );
    send(&probe, edge, ack_for(&inv, &resp).as_bytes())
        .await
        .unwrap();

    // Max-Forwards: 1 passes the hop check: the INVITE reaches routing
    // (404 for an unknown DID, so that no call is set up).
    let branch = "z9hG4bK-e2e-mf1";
    let inv = invite(
        edge,
        local,
        "5559999",
        branch,
        "e2e-mf1@127.0.0.1",
        1,
        local.port() + 1,
    );
    let resp = request(&probe, edge, &inv, branch, SHORT).await.unwrap();
    assert_eq!(
        status_code(&resp),
        Some(404),
        "Max-Forwards: 1 to an unknown DID:\n{resp}"
    );
    send(&probe, edge, ack_for(&inv, &resp).as_bytes())
        .await
        .unwrap();
    acd.assert_running();
}

#[tokio::test]
async fn unknown_method_gets_405_with_allow_or_501() {
    let (_env, mut acd, edge, probe) = start("sip_unknown_method", 28).await;
    let local = probe.local_addr().unwrap();
    let branch = "z9hG4bK-e2e-foo";
    let req = format!(
        "FOO sip:5550100@{edge} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch={branch}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:probe@{local}>;tag=e2efoo\r\n\
         To: <sip:5550100@{edge}>\r\n\
         Call-ID: e2e-foo@127.0.0.1\r\n\
         CSeq: 1 FOO\r\n\
         Content-Length: 0\r\n\r\n"
    );
    let resp = request(&probe, edge, &req, branch, SHORT).await.unwrap();
    eprintln!("[e2e] FOO answered:\n{resp}");
    match status_code(&resp) {
        Some(405) => {
            let allow = headers(&resp, "Allow").join(",");
            assert!(!allow.is_empty(), "405 without an Allow header:\n{resp}");
            let methods: Vec<String> = allow
                .split(',')
                .map(|m| m.trim().to_ascii_uppercase())
                .collect();
            for m in ["INVITE", "ACK", "BYE", "CANCEL", "OPTIONS"] {
                assert!(methods.iter().any(|x| x == m), "Allow lacks {m}: {allow:?}");
            }
            assert!(
                !methods.iter().any(|x| x == "FOO"),
                "Allow lists the refused method: {allow:?}"
            );
        }
        Some(501) => {}
        other => panic!("FOO: expected 405 (with Allow) or 501, got {other:?}:\n{resp}"),
    }
    assert_eq!(
        header(&resp, "Call-ID"),
        Some("e2e-foo@127.0.0.1"),
        "{resp}"
    );
    acd.assert_running();
}

/// Deterministic xorshift bytes.
fn noise(seed: &mut u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|_| {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            (*seed >> 24) as u8
        })
        .collect()
}

#[tokio::test]
async fn options_served_after_200_garbage_datagrams() {
    let (env, mut acd, edge, probe) = start("sip_garbage_burst", 29).await;
    let junk = UdpSocket::bind(("127.0.0.1", env.ports.sipp(1).sip))
        .await
        .unwrap();
    let jl = junk.local_addr().unwrap();
    let parse_errors_before = metric(&acd, "acd_sip_parse_errors_total", &[]).await;

    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut binary = 0u64;
    for i in 0..200u32 {
        let d: Vec<u8> = match i % 4 {
            // Random bytes (never whitespace only: they start with 0x80).
            0 | 1 => {
                binary += 1;
                let mut d = vec![0x80];
                d.extend(noise(&mut seed, 16 + (i as usize * 7) % 480));
                d
            }
            // A request line and headers cut short, in varying places.
            2 => {
                let full = format!(
                    "INVITE sip:5550100@{edge} SIP/2.0\r\nVia: SIP/2.0/UDP {jl};branch=z9hG4bK-j{i}\r\n\
                     From: <sip:j@{jl}>;tag=j{i}\r\nTo: <sip:5550100@{edge}>\r\nCall-ID: j{i}\r\n\
                     CSeq: 1 INVITE\r\nContent-Length: 4000\r\n\r\nv=0\r\n"
                );
                let cut = 1 + (i as usize * 13) % (full.len() - 1);
                full.as_bytes()[..cut].to_vec()
            }
            // Text that looks like SIP but is not.
            _ => format!(
                "SIP/2.0 {i}\r\n\r\n{}",
                String::from_utf8_lossy(&noise(&mut seed, 32))
            )
            .into_bytes(),
        };
        junk.send_to(&d, edge).await.unwrap();
        if i % 20 == 19 {
            // Paced a little: loopback drops datagrams when the buffer fills.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    let local = probe.local_addr().unwrap();
    let branch = "z9hG4bK-e2e-after-junk";
    let req = options(edge, local, branch, Some("e2e-after-junk@127.0.0.1"));
    let resp = request(&probe, edge, &req, branch, SHORT).await.unwrap();
    assert_eq!(
        status_code(&resp),
        Some(200),
        "OPTIONS after 200 garbage datagrams:\n{resp}"
    );
    assert_eq!(
        header(&resp, "Call-ID"),
        Some("e2e-after-junk@127.0.0.1"),
        "{resp}"
    );
    let parse_errors = metric(&acd, "acd_sip_parse_errors_total", &[]).await - parse_errors_before;
    assert!(
        parse_errors >= binary as f64,
        "acd_sip_parse_errors_total rose by {parse_errors}, expected at least the {binary} binary datagrams"
    );
    acd.assert_running();
}

#[tokio::test]
async fn retransmitted_invite_is_one_request() {
    let (_env, mut acd, edge, probe) = start("sip_invite_retransmission", 30).await;
    let local = probe.local_addr().unwrap();
    let invites_before = metric(
        &acd,
        "acd_sip_requests_total",
        &[("method", "INVITE"), ("direction", "in")],
    )
    .await;
    let not_found_before =
        metric(&acd, "acd_sip_error_responses_total", &[("status", "404")]).await;

    let branch = "z9hG4bK-e2e-retrans";
    let inv = invite(
        edge,
        local,
        "5559999",
        branch,
        "e2e-retrans@127.0.0.1",
        70,
        local.port() + 1,
    );
    let first = request(&probe, edge, &inv, branch, SHORT).await.unwrap();
    assert_eq!(status_code(&first), Some(404), "unknown DID:\n{first}");
    // The same INVITE again (same branch, Call-ID, CSeq), at once: the
    // server transaction answers with the same final response, well before
    // its own retransmission timer (T1 = 500 ms) would.
    send(&probe, edge, inv.as_bytes()).await.unwrap();
    let second = recv_final(&probe, branch, Duration::from_millis(400))
        .await
        .unwrap_or_else(|e| panic!("retransmitted INVITE got no final response: {e}"));
    assert_eq!(status_code(&second), Some(404), "{second}");
    let tag1 = header(&first, "To").and_then(tag_param);
    let tag2 = header(&second, "To").and_then(tag_param);
    assert!(tag1.is_some(), "404 without a To tag:\n{first}");
    assert_eq!(tag1, tag2, "the retransmitted INVITE got another response");

    // ACK ends the retransmission of the 404.
    send(&probe, edge, ack_for(&inv, &first).as_bytes())
        .await
        .unwrap();
    // Drain what was already in flight, then nothing more may come.
    let _ = collect(&probe, branch, Duration::from_millis(300)).await;
    let late = collect(&probe, branch, Duration::from_millis(1500)).await;
    assert!(
        late.is_empty(),
        "the 404 is still retransmitted after the ACK: {late:?}"
    );

    let invites = metric(
        &acd,
        "acd_sip_requests_total",
        &[("method", "INVITE"), ("direction", "in")],
    )
    .await
        - invites_before;
    assert_eq!(
        invites, 1.0,
        "acd_sip_requests_total{{method=\"INVITE\"}} must count the retransmission once"
    );
    let not_found = metric(&acd, "acd_sip_error_responses_total", &[("status", "404")]).await
        - not_found_before;
    assert_eq!(not_found, 1.0, "404s counted on /metrics");
    acd.assert_running();
}

/// RFC 3261 §8.2.6.2: a UAS MUST add a tag to the To header of every
/// response (but 100) to a request without a To tag.
#[tokio::test]
async fn final_responses_carry_a_to_tag() {
    let (_env, mut acd, edge, probe) = start("sip_to_tag", 36).await;
    let local = probe.local_addr().unwrap();
    let mut missing = Vec::new();

    let branch = "z9hG4bK-e2e-totag-options";
    let req = options(edge, local, branch, Some("e2e-totag-1@127.0.0.1"));
    let r = request(&probe, edge, &req, branch, SHORT).await.unwrap();
    assert_eq!(status_code(&r), Some(200), "{r}");
    if header(&r, "To").and_then(tag_param).is_none() {
        missing.push(r);
    }

    let branch = "z9hG4bK-e2e-totag-foo";
    let req = format!(
        "FOO sip:5550100@{edge} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch={branch}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:probe@{local}>;tag=e2efoo\r\n\
         To: <sip:5550100@{edge}>\r\n\
         Call-ID: e2e-totag-2@127.0.0.1\r\n\
         CSeq: 1 FOO\r\n\
         Content-Length: 0\r\n\r\n"
    );
    let r = request(&probe, edge, &req, branch, SHORT).await.unwrap();
    if header(&r, "To").and_then(tag_param).is_none() {
        missing.push(r);
    }

    let branch = "z9hG4bK-e2e-totag-mf0";
    let inv = invite(
        edge,
        local,
        "5550100",
        branch,
        "e2e-totag-3@127.0.0.1",
        0,
        local.port() + 1,
    );
    let r = request(&probe, edge, &inv, branch, SHORT).await.unwrap();
    assert_eq!(status_code(&r), Some(483), "{r}");
    if header(&r, "To").and_then(tag_param).is_none() {
        missing.push(r);
    }

    assert!(
        missing.is_empty(),
        "{} response(s) without a To tag:\n{}",
        missing.len(),
        missing.join("\n----\n")
    );
    acd.assert_running();
}
