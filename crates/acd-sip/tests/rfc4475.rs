//! RFC 4475 torture messages (files in `tests/rfc4475/`, bytes as in the RFC's
//! archive) run through what the edge does with a datagram as a UAS: `parse`, then
//! `screen_request` (or `salvage_for_400` when parsing fails), then the transaction
//! layer. One expected outcome per message, as the RFC prescribes for a UAS.

use std::net::SocketAddr;
use std::time::Instant;

use acd_sip::message::{parse, salvage_for_400, screen_request, UasPolicy};
use acd_sip::{Config, Message, Output, Peer, Request, Response, TransactionLayer, Transport};

/// What a UAS does with the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// Valid: reaches the TU as a new server transaction.
    Accept,
    /// Refused at message level with this status.
    Status(u16),
    /// No response can or should be formed (responses, unreadable requests).
    Drop,
}
use Outcome::*;

/// The edge's policy: no extensions, SDP bodies only.
const POLICY: UasPolicy<'static> = UasPolicy {
    supported: &[],
    accept: &["application/sdp"],
};

/// (file, RFC section, expected outcome for a UAS).
const CASES: &[(&str, &str, Outcome)] = &[
    // §3.1.1 valid messages: all accepted.
    ("wsinv", "3.1.1.1 short tortuous INVITE", Accept),
    ("intmeth", "3.1.1.2 wide range of valid characters", Accept),
    ("esc01", "3.1.1.3 valid use of % escaping", Accept),
    ("escnull", "3.1.1.4 escaped nulls in URIs", Accept),
    ("esc02", "3.1.1.5 % in an unknown method", Accept),
    (
        "lwsdisp",
        "3.1.1.6 no LWS between display name and <",
        Accept,
    ),
    ("longreq", "3.1.1.7 long values in header fields", Accept),
    (
        "dblreq",
        "3.1.1.8 extra trailing octets in a UDP datagram",
        Accept,
    ),
    (
        "semiuri",
        "3.1.1.9 semicolon-separated parameters in user part",
        Accept,
    ),
    (
        "transports",
        "3.1.1.10 varied and unknown transport types",
        Accept,
    ),
    ("mpart01", "3.1.1.11 multipart MIME message", Accept),
    (
        "unreason",
        "3.1.1.12 unusual reason phrase (a response)",
        Drop,
    ),
    (
        "noreason",
        "3.1.1.13 empty reason phrase (a response)",
        Drop,
    ),
    // §3.1.2 invalid messages.
    (
        "badinv01",
        "3.1.2.1 extraneous header field separators",
        Status(400),
    ),
    (
        "clerr",
        "3.1.2.2 Content-Length larger than message",
        Status(400),
    ),
    ("ncl", "3.1.2.3 negative Content-Length", Status(400)),
    (
        "scalar02",
        "3.1.2.4 request scalar fields overlarge",
        Status(400),
    ),
    ("scalarlg", "3.1.2.5 response scalar fields overlarge", Drop),
    (
        "quotbal",
        "3.1.2.6 unterminated quoted string in display name",
        Status(400),
    ),
    ("ltgtruri", "3.1.2.7 <> enclosing Request-URI", Status(400)),
    (
        "lwsruri",
        "3.1.2.8 embedded LWS in Request-URI",
        Status(400),
    ),
    (
        "lwsstart",
        "3.1.2.9 multiple SP in Request-Line",
        Status(400),
    ),
    ("trws", "3.1.2.10 SP at end of Request-Line", Status(400)),
    (
        "escruri",
        "3.1.2.11 escaped headers in Request-URI",
        Status(400),
    ),
    // Date is not used by this UAS: ignoring it is what §3.1.2.12 suggests.
    ("baddate", "3.1.2.12 invalid time zone in Date", Accept),
    (
        "regbadct",
        "3.1.2.13 name-addr URI not enclosed in <>",
        Status(400),
    ),
    ("badaspec", "3.1.2.14 spaces within addr-spec", Status(400)),
    (
        "baddn",
        "3.1.2.15 non-token characters in display name",
        Status(400),
    ),
    ("badvers", "3.1.2.16 unknown protocol version", Status(505)),
    (
        "mismatch01",
        "3.1.2.17 start line and CSeq method mismatch",
        Status(400),
    ),
    (
        "mismatch02",
        "3.1.2.18 unknown method with CSeq mismatch",
        Status(400),
    ),
    ("bigcode", "3.1.2.19 overlarge response code", Drop),
    // §3.2 transaction layer: a bare magic cookie falls back to RFC 2543 matching.
    ("badbranch", "3.2.1 missing transaction identifier", Accept),
    // §3.3 application layer.
    ("insuf", "3.3.1 missing required header fields", Status(400)),
    (
        "unkscm",
        "3.3.2 Request-URI with unknown scheme",
        Status(416),
    ),
    (
        "novelsc",
        "3.3.3 Request-URI with known but atypical scheme",
        Status(416),
    ),
    (
        "unksm2",
        "3.3.4 unknown URI schemes in header fields (REGISTER)",
        Status(400),
    ),
    ("bext01", "3.3.5 Proxy-Require and Require", Status(420)),
    ("invut", "3.3.6 unknown Content-Type", Status(415)),
    ("regaut01", "3.3.7 unknown authorization scheme", Accept),
    (
        "multi01",
        "3.3.8 multiple values in single-value fields",
        Status(400),
    ),
    ("mcl01", "3.3.9 multiple Content-Length values", Status(400)),
    (
        "bcast",
        "3.3.10 200 OK with broadcast Via (a response)",
        Drop,
    ),
    ("zeromf", "3.3.11 Max-Forwards of zero (OPTIONS)", Accept),
    (
        "cparam01",
        "3.3.12 REGISTER with a Contact header parameter",
        Accept,
    ),
    ("cparam02", "3.3.13 REGISTER with a url-parameter", Accept),
    (
        "regescrt",
        "3.3.14 REGISTER with a URL escaped header",
        Accept,
    ),
    ("sdp01", "3.3.15 unacceptable Accept offering", Status(406)),
    // §3.4 backward compatibility: RFC 2543 syntax, no branch.
    ("inv2543", "3.4.1 INVITE with RFC 2543 syntax", Accept),
];

fn load(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/rfc4475/{name}.dat", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn peer() -> Peer {
    let addr: SocketAddr = "192.0.2.200:5070".parse().unwrap();
    Peer {
        addr,
        transport: Transport::Udp,
    }
}

fn status_of(bytes: &[u8]) -> u16 {
    match parse(bytes) {
        Ok(Message::Response(r)) => r.status,
        other => panic!("not a response: {other:?}"),
    }
}

/// Outputs of feeding `req` to a fresh layer (or `layer`).
fn feed(layer: &mut TransactionLayer, req: &Request, now: Instant) -> Vec<Output> {
    layer.handle_incoming(Message::Request(req.clone()), peer(), now);
    std::iter::from_fn(|| layer.poll_output()).collect()
}

/// What the edge's datagram path does with `bytes`; the refusal response, if any.
fn uas(bytes: &[u8]) -> (Outcome, Option<Response>) {
    let req = match parse(bytes) {
        Err(_) => {
            return match salvage_for_400(bytes) {
                Some(r) => (Status(status_of(&r)), None),
                None => (Drop, None),
            }
        }
        // A response matches no client transaction of ours: discarded (§18.1.2).
        Ok(Message::Response(_)) => return (Drop, None),
        Ok(Message::Request(req)) => req,
    };
    if let Err(refusal) = screen_request(&req, &POLICY) {
        return (Status(refusal.response.status), Some(refusal.response));
    }
    let now = Instant::now();
    let mut layer = TransactionLayer::new(Config::default());
    let out = feed(&mut layer, &req, now);
    let new_tx = out
        .iter()
        .any(|o| matches!(o, Output::Request { .. } | Output::Cancel { .. }));
    assert!(new_tx, "accepted request did not reach the TU: {out:?}");
    // A retransmission is absorbed by the server transaction (§17.2.3, also for
    // RFC 2543 requests without a branch).
    let again = feed(&mut layer, &req, now);
    assert!(
        !again.iter().any(|o| matches!(o, Output::Request { .. })),
        "retransmission surfaced as a new request: {again:?}"
    );
    (Accept, None)
}

#[test]
fn every_torture_message_gets_the_rfc_outcome() {
    let mut wrong = Vec::new();
    for (name, section, want) in CASES {
        let (got, _) = uas(&load(name));
        if got != *want {
            wrong.push(format!("{name} (§{section}): want {want:?}, got {got:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "RFC 4475 mismatches:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn every_file_in_the_directory_is_in_the_table() {
    let dir = format!("{}/tests/rfc4475", env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|f| f.strip_suffix(".dat").map(str::to_string))
        .collect();
    files.sort();
    let mut listed: Vec<String> = CASES.iter().map(|c| c.0.to_string()).collect();
    listed.sort();
    assert_eq!(files, listed);
    assert_eq!(files.len(), 49, "RFC 4475 has 49 messages");
}

#[test]
fn bad_extension_lists_the_unknown_require_tags_only() {
    let (_, resp) = uas(&load("bext01"));
    let resp = resp.unwrap();
    assert_eq!(resp.status, 420);
    assert_eq!(
        resp.headers.get("Unsupported"),
        Some("nothingSupportsThis, nothingSupportsThisEither")
    );
    assert!(resp.to_tag().is_some());
}

#[test]
fn unknown_body_type_and_unacceptable_accept_name_application_sdp() {
    for name in ["invut", "sdp01"] {
        let (_, resp) = uas(&load(name));
        let resp = resp.unwrap();
        assert_eq!(
            resp.headers.get("Accept"),
            Some("application/sdp"),
            "{name}"
        );
    }
}

#[test]
fn salvaged_answers_copy_what_the_request_had() {
    // 505 names the version problem and copies the SIP/7.0 Via as sent.
    let out = salvage_for_400(&load("badvers")).unwrap();
    let resp = match parse(&out).unwrap() {
        Message::Response(r) => r,
        _ => unreachable!(),
    };
    assert_eq!(resp.status, 505);
    assert_eq!(resp.call_id(), Some("badvers.31417@c.example.com"));
    // Missing From/To/Call-ID: still a 400 with Via and CSeq (§3.3.1).
    let req = match parse(&load("insuf")).unwrap() {
        Message::Request(r) => r,
        _ => unreachable!(),
    };
    let refusal = screen_request(&req, &POLICY).unwrap_err();
    assert_eq!(refusal.response.status, 400);
    let bytes = refusal.response.to_bytes();
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("branch=z9hG4bKkdj.insuf"), "{text}");
    assert!(text.contains("CSeq: 193942 INVITE"), "{text}");
    // A folded header continues on the next line; salvage joins it (clerr's Via is
    // plain, so check that a stream-style body error still yields a full 400).
    let out = salvage_for_400(&load("clerr")).unwrap();
    let text = String::from_utf8_lossy(&out).to_string();
    assert!(text.starts_with("SIP/2.0 400 "), "{text}");
    assert!(
        text.contains("Call-ID: clerr.0ha0isndaksdjweiafasdk3"),
        "{text}"
    );
}

#[test]
fn the_top_via_of_an_accepted_request_says_where_it_came_from() {
    // wsinv's top Via has spaces inside and no port; the layer stamps received.
    let req = match parse(&load("wsinv")).unwrap() {
        Message::Request(r) => r,
        _ => unreachable!(),
    };
    let mut layer = TransactionLayer::new(Config::default());
    let out = feed(&mut layer, &req, Instant::now());
    let seen = out
        .iter()
        .find_map(|o| match o {
            Output::Request { req, .. } => Some(req.clone()),
            _ => None,
        })
        .unwrap();
    let via = seen.top_via().unwrap();
    assert_eq!(via.received.as_deref(), Some("192.0.2.200"));
    assert_eq!(via.sent_by(), "192.0.2.2");
    assert_eq!(via.branch.as_deref(), Some("390skdjuw"));
    // The 100 Trying for the INVITE goes back to the source with the stamped Via.
    let trying = out
        .iter()
        .find_map(|o| match o {
            Output::Transmit { to, bytes } => Some((*to, bytes.clone())),
            _ => None,
        })
        .unwrap();
    assert_eq!(trying.0, peer());
    let text = String::from_utf8_lossy(&trying.1).to_string();
    assert!(text.contains("received=192.0.2.200"), "{text}");
}
