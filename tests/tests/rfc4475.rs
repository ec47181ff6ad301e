//! Every RFC 4475 torture message sent to the real edge over UDP, checking the
//! message-level answer: the status the RFC prescribes for a refused request, any
//! ordinary answer from the call logic for a valid one, and no answer at all where
//! none can be formed (responses), after which the edge still answers OPTIONS.
//!
//! The messages are the files of `crates/acd-sip/tests/rfc4475/`, sent as they are
//! but for the shared branch `z9hG4bKkdjuw`, which gets the file name appended so
//! each request is its own transaction.

use std::net::SocketAddr;
use std::time::Duration;

use acd_tests::env::workspace_root;
use acd_tests::sip::{options, status_code};
use acd_tests::{TestEnv, SHORT};
use anyhow::{bail, Result};
use tokio::net::UdpSocket;
use tokio::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Want {
    /// Valid: the call logic answers, with anything but a message-level refusal.
    Handled,
    /// Refused with this status.
    Status(u16),
    /// No answer (a response sent to a UAS matches nothing and is dropped).
    Silence,
}
use Want::*;

/// Same expectations as `crates/acd-sip/tests/rfc4475.rs`, from the edge's side.
const CASES: &[(&str, Want)] = &[
    ("wsinv", Handled),
    ("intmeth", Handled),
    ("esc01", Handled),
    ("escnull", Handled),
    ("esc02", Handled),
    ("lwsdisp", Handled),
    ("longreq", Handled),
    ("dblreq", Handled),
    ("semiuri", Handled),
    ("transports", Handled),
    ("mpart01", Handled),
    ("unreason", Silence),
    ("noreason", Silence),
    ("badinv01", Status(400)),
    ("clerr", Status(400)),
    ("ncl", Status(400)),
    ("scalar02", Status(400)),
    ("scalarlg", Silence),
    ("quotbal", Status(400)),
    ("ltgtruri", Status(400)),
    ("lwsruri", Status(400)),
    ("lwsstart", Status(400)),
    ("trws", Status(400)),
    ("escruri", Status(400)),
    ("baddate", Handled),
    ("regbadct", Status(400)),
    ("badaspec", Status(400)),
    ("baddn", Status(400)),
    ("badvers", Status(505)),
    ("mismatch01", Status(400)),
    ("mismatch02", Status(400)),
    ("bigcode", Silence),
    ("badbranch", Handled),
    ("insuf", Status(400)),
    ("unkscm", Status(416)),
    ("novelsc", Status(416)),
    ("unksm2", Status(400)),
    ("bext01", Status(420)),
    ("invut", Status(415)),
    ("regaut01", Handled),
    ("multi01", Status(400)),
    ("mcl01", Status(400)),
    ("bcast", Silence),
    ("zeromf", Handled),
    ("cparam01", Handled),
    ("cparam02", Handled),
    ("regescrt", Handled),
    ("sdp01", Status(406)),
    ("inv2543", Handled),
];

/// Statuses that mean "refused at message level", which a valid message must not get.
const REFUSALS: &[u16] = &[400, 406, 415, 416, 420, 483, 505];

fn load(name: &str) -> Vec<u8> {
    let path = workspace_root().join(format!("crates/acd-sip/tests/rfc4475/{name}.dat"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Appends `.name` to the shared branch, in the header section only.
fn with_own_branch(name: &str, bytes: &[u8]) -> Vec<u8> {
    const SHARED: &[u8] = b"z9hG4bKkdjuw";
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(bytes.len());
    let mut out = Vec::with_capacity(bytes.len() + 64);
    let mut i = 0;
    while i < bytes.len() {
        if i < end && bytes[i..].starts_with(SHARED) {
            out.extend_from_slice(SHARED);
            out.extend_from_slice(format!(".{name}").as_bytes());
            i += SHARED.len();
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// Something unique to the message that any answer to it copies: its Call-ID, or
/// for `insuf` (which has none) its branch.
fn marker(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    for line in head.lines() {
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim();
            if name.eq_ignore_ascii_case("Call-ID") || name.eq_ignore_ascii_case("i") {
                return value.trim().to_string();
            }
        }
    }
    "z9hG4bKkdj.insuf".to_string()
}

/// Every datagram received until the final response carrying `until` arrives.
async fn until_final(sock: &UdpSocket, until: &str, within: Duration) -> Result<Vec<String>> {
    let deadline = Instant::now() + within;
    let mut buf = vec![0u8; 65536];
    let mut seen = Vec::new();
    loop {
        let (n, _) = match tokio::time::timeout_at(deadline, sock.recv_from(&mut buf)).await {
            Ok(r) => r?,
            Err(_) => bail!("no final response with {until:?} within {within:?}; saw {seen:#?}"),
        };
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        let done = text.contains(until) && status_code(&text).is_some_and(|c| c >= 200);
        seen.push(text);
        if done {
            return Ok(seen);
        }
    }
}

#[tokio::test]
async fn torture_messages_get_the_rfc_answer() {
    let env = TestEnv::new("rfc4475", 46);
    let mut acd = env.start_run().await.unwrap();
    let edge: SocketAddr = env.sip_addr().parse().unwrap();
    let sock = UdpSocket::bind(("127.0.0.1", env.ports.sipp(0).sip))
        .await
        .unwrap();
    let local = sock.local_addr().unwrap();

    let mut wrong = Vec::new();
    for (i, (name, want)) in CASES.iter().enumerate() {
        let bytes = with_own_branch(name, &load(name));
        let mark = marker(&bytes);
        sock.send_to(&bytes, edge).await.unwrap();
        // The edge handles datagrams in order, so once this probe is answered any
        // answer to the torture message has been sent before it.
        let probe_branch = format!("z9hG4bK-rfc4475-probe-{i}");
        let probe_call = format!("rfc4475-probe-{i}@127.0.0.1");
        let probe = options(edge, local, &probe_branch, Some(&probe_call));
        sock.send_to(probe.as_bytes(), edge).await.unwrap();
        let seen = match until_final(&sock, &probe_call, SHORT).await {
            Ok(seen) => seen,
            Err(e) => panic!("{name}: the edge stopped answering OPTIONS: {e}"),
        };
        let final_of = |msgs: &[String]| -> Vec<u16> {
            msgs.iter()
                .filter(|m| m.contains(&mark))
                .filter_map(|m| status_code(m))
                .filter(|c| *c >= 200)
                .collect()
        };
        let mut finals = final_of(&seen);
        if finals.is_empty() && *want != Silence {
            // The call logic may answer a valid INVITE only after asking others.
            if let Ok(more) = until_final(&sock, &mark, SHORT).await {
                finals = final_of(&more);
            }
        }
        let ok = match want {
            Silence => finals.is_empty(),
            Status(code) => finals.first() == Some(code),
            Handled => finals.first().is_some_and(|c| !REFUSALS.contains(c)),
        };
        if !ok {
            wrong.push(format!("{name}: want {want:?}, got finals {finals:?}"));
        }
    }
    acd.assert_running();
    if !wrong.is_empty() {
        env.dump_logs(80);
    }
    assert!(
        wrong.is_empty(),
        "RFC 4475 mismatches:\n{}",
        wrong.join("\n")
    );
}
