//! Harnesses for `acd-sip`: datagram parsing, stream framing and Digest auth.

use acd_sip::auth::{
    client_authorization, parse_digest_params, Algorithm, AuthOutcome, DigestServer,
};
use acd_sip::message::{salvage_for_400, validate_request, NameAddr, Uri, Via};
use acd_sip::{parse, parse_stream, Frame, Headers, Message, ParseError, Response, StreamFramer};

use crate::escape;

/// `sip_parse`: one datagram through what the edge does with it — parse, validate,
/// answer (`Response::for_request`) or salvage a 400 — plus the round trip: a parsed
/// message serialises to bytes that parse again and serialise identically.
pub fn sip_parse(data: &[u8]) {
    check_salvage(data);
    let Ok(msg) = parse(data) else {
        return;
    };
    exercise_headers(msg.headers());
    let wire = msg.to_bytes();
    let again = match parse(&wire) {
        Ok(m) => m,
        Err(e) => panic!(
            "re-serialised message does not parse ({e}): {}",
            escape(&wire)
        ),
    };
    assert_eq!(
        escape(&again.to_bytes()),
        escape(&wire),
        "serialising is not a fixed point"
    );
    if let Message::Request(req) = &msg {
        let valid = validate_request(req);
        if let Err(e) = &valid {
            let (status, reason) = (e.status(), e.reason());
            assert!((400..700).contains(&status), "{status}");
            assert!(!reason.chars().any(char::is_control), "{reason:?}");
        }
        let resp = Response::for_request(req, 486, "Busy Here").with_to_tag("fz1");
        let bytes = resp.to_bytes();
        let back = match parse(&bytes) {
            Ok(Message::Response(r)) => r,
            other => panic!("our response does not parse: {other:?}: {}", escape(&bytes)),
        };
        if valid.is_ok() {
            // §8.2.6.2: the response names the same transaction and dialog.
            assert_eq!(back.call_id(), req.call_id());
            assert_eq!(back.cseq(), req.cseq());
            let branch = |v: Option<Via>| v.and_then(|v| v.branch);
            assert_eq!(branch(back.top_via()), branch(req.top_via()));
            assert!(back.to_tag().is_some(), "response without To tag");
        }
    }
}

/// A salvaged refusal (400, or 505 for another SIP version) is sent to the
/// network as is, so it must itself be well formed.
fn check_salvage(data: &[u8]) {
    let Some(bytes) = salvage_for_400(data) else {
        return;
    };
    match parse(&bytes) {
        Ok(Message::Response(r)) if r.status == 400 || r.status == 505 => {}
        other => panic!("salvaged 400 does not parse: {other:?}: {}", escape(&bytes)),
    }
}

/// The typed accessors the transaction and dialog layers call on every message.
fn exercise_headers(h: &Headers) {
    let _ = (h.call_id(), h.cseq(), h.from_tag(), h.to_tag());
    let _ = (h.max_forwards(), h.expires(), h.content_type());
    if let Some(uri) = h.contact_uri() {
        let _ = Uri::parse(uri).map(|u| u.param("transport"));
    }
    for name in ["Via", "Route", "Record-Route", "Contact", "From", "To"] {
        for v in h.get_all(name) {
            let _ = NameAddr::parse(v).map(|n| (n.tag(), Uri::parse(n.uri)));
        }
    }
    for v in h.get_all("Via") {
        let Some(mut via) = Via::parse(v) else {
            continue;
        };
        let _ = via.sent_by();
        // The edge rewrites the top Via (RFC 3581 §4); what it writes must read back.
        assert_eq!(Via::parse(&via.to_value()).as_ref(), Some(&via), "{v:?}");
        via.set_received("192.0.2.1", 5062);
        let rewritten = via.to_value();
        assert!(Via::parse(&rewritten).is_some(), "{rewritten:?}");
    }
}

/// `sip_stream`: TCP framing. The first byte seeds how the rest is cut into reads;
/// whatever the cuts, the messages framed (and the first error) are the same as when
/// the whole buffer arrives at once, and each consumes exactly what it claims.
pub fn sip_stream(data: &[u8]) {
    let Some((&seed, data)) = data.split_first() else {
        return;
    };
    let whole = frame_all(&[data]);
    let mut cuts = Vec::new();
    let mut state = u32::from(seed) | 1;
    let mut rest = data;
    while !rest.is_empty() {
        // xorshift32: cheap, deterministic, covers 1..=64-byte reads.
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let n = (1 + (state % 64) as usize).min(rest.len());
        let (chunk, tail) = rest.split_at(n);
        cuts.push(chunk);
        rest = tail;
    }
    let chunked = frame_all(&cuts);
    assert_eq!(chunked, whole, "framing depends on how the bytes arrived");
    // The framer has its own size limit (the edge's) and error kinds: what
    // it frames is what parse_stream frames, up to where either gives up.
    let by_framer = framer_all(&cuts);
    let (framed, framer_failed) = framed_ok(&by_framer);
    let (parsed, parse_failed) = framed_ok(&whole);
    assert!(
        parsed.starts_with(&framed) || framed.starts_with(&parsed),
        "StreamFramer disagrees with parse_stream"
    );
    if !framer_failed && !parse_failed {
        assert_eq!(framed, parsed, "StreamFramer disagrees with parse_stream");
    }
    for m in whole.iter().filter_map(|r| r.as_ref().ok()) {
        let wire = m.to_bytes();
        match parse_stream(&wire) {
            Ok(Some((_, used))) => assert_eq!(used, wire.len(), "{}", escape(&wire)),
            other => panic!("re-serialised message does not frame: {other:?}"),
        }
    }
}

/// The messages framed, and whether framing stopped at an error.
fn framed_ok(r: &[Result<Message, ParseError>]) -> (Vec<&Message>, bool) {
    let ok = r.iter().filter_map(|m| m.as_ref().ok()).collect();
    (ok, r.iter().any(Result::is_err))
}

/// Feeds `reads` into one buffer as a TCP shell would, framing after every read;
/// stops at the first error (the shell closes the connection).
fn frame_all(reads: &[&[u8]]) -> Vec<Result<Message, ParseError>> {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    for read in reads {
        buf.extend_from_slice(read);
        loop {
            match parse_stream(&buf) {
                Ok(Some((m, used))) => {
                    assert!(
                        used > 0 && used <= buf.len(),
                        "consumed {used} of {}",
                        buf.len()
                    );
                    buf.drain(..used);
                    out.push(Ok(m));
                }
                Ok(None) => break,
                Err(e) => {
                    out.push(Err(e));
                    return out;
                }
            }
        }
    }
    out
}

/// [`frame_all`] with the incremental [`StreamFramer`] the edge's TCP reader
/// uses, with the edge's default message limit. Keep-alive pings (a bare
/// CRLFCRLF) are the framer's own output and are skipped.
fn framer_all(reads: &[&[u8]]) -> Vec<Result<Message, ParseError>> {
    let mut framer = StreamFramer::new(65536);
    let mut out = Vec::new();
    for read in reads {
        framer.push(read);
        loop {
            match framer.poll() {
                Ok(Some(Frame::Message(m))) => out.push(Ok(m)),
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => {
                    out.push(Err(e.error));
                    return out;
                }
            }
        }
    }
    out
}

const REALM: &str = "acd.example.com";

/// `digest`: newline-separated fields `authorization`, `method`, `request-uri`, `now`
/// (decimal), `user`. `$NONCE` in the authorization is replaced with a nonce the
/// server issued at `now`, so the fuzzer gets past the MAC check to the digest
/// comparison. Also checks that what our client answers to our own challenge is
/// accepted for any user/URI.
pub fn digest(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut fields = text.split('\n');
    let mut field = |default: &'static str| fields.next().map_or(default.to_owned(), str::to_owned);
    let authorization = field("");
    let method = field("REGISTER");
    let uri = field("sip:acd.example.com");
    let now: u64 = field("1000000").trim().parse().unwrap_or(1_000_000);
    let user = field("agent1");

    let mut server = DigestServer::new(REALM, [7; 32]);
    let challenge = server.challenge(now, Algorithm::Md5, false);
    let nonce = parse_digest_params(&challenge)
        .and_then(|p| p.into_iter().find(|(k, _)| k == "nonce"))
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("our challenge has no nonce: {challenge}"));
    let authorization = authorization.replace("$NONCE", &nonce);

    let password_of = |u: &str| (u == "agent1").then(|| "s3cret".to_owned());
    let _ = parse_digest_params(&authorization);
    let _ = server.check_request(&authorization, &method, &uri, now, password_of);
    let _ = server.verify_request(&authorization, &method, &uri, now, password_of);
    // The client side reads a peer's challenge: the same bytes as a WWW-Authenticate.
    let _ = client_authorization(&authorization, &user, "pw", &method, &uri, "c0ffee", 1);

    let answer = client_authorization(&challenge, &user, "pw", &method, &uri, "c0ffee", 1)
        .unwrap_or_else(|e| panic!("our client refuses our challenge: {e}"));
    let outcome = server.verify_request(&answer, &method, &uri, now, |_| Some("pw".to_owned()));
    match outcome {
        AuthOutcome::Ok(v) => assert_eq!(v.user, user, "{answer}"),
        other => panic!("our own answer refused: {other:?} for {answer}"),
    }
}

/// `sip_transaction`: the transaction layer (the sans-IO core the edge feeds every
/// datagram to) driven by a script of steps separated by `\n~`. Each step starts
/// with an op byte:
/// * `A` / `B`: the rest is a datagram from peer A (UDP) / peer B (TCP); it is
///   parsed and, if it parses, handed to `handle_incoming` (the edge validates
///   requests first; the layer must not rely on it for memory safety or progress);
/// * `R<status>`: the TU answers the newest server transaction (default 200);
/// * `I` / `O`: the TU sends an INVITE to A / an OPTIONS to B;
/// * `W<ms>`: time advances (capped at 100 s) and `handle_timeout` runs.
///
/// After every step the outputs are drained; a layer that keeps producing output
/// (a livelock) or a deadline that is already due after `handle_timeout` fails, and
/// every transmitted message must parse.
pub fn sip_transaction(data: &[u8]) {
    use std::net::{Ipv4Addr, SocketAddr};
    use std::time::{Duration, Instant};

    use acd_sip::message::Method;
    use acd_sip::{Config, Output, Peer, Request, TransactionLayer, Transport, TxKey};

    let peer = |port, transport| Peer {
        addr: SocketAddr::from((Ipv4Addr::new(192, 0, 2, 20), port)),
        transport,
    };
    let (a, b) = (peer(5062, Transport::Udp), peer(5064, Transport::Tcp));
    let start = Instant::now();
    let mut now = start;
    let mut layer = TransactionLayer::new(Config::default());
    let mut newest: Option<(TxKey, Request)> = None;
    let mut sent = 0u32;

    for step in split_steps(data) {
        let Some((&op, arg)) = step.split_first() else {
            continue;
        };
        match op {
            b'A' | b'B' => {
                if let Ok(msg) = parse(arg) {
                    layer.handle_incoming(msg, if op == b'A' { a } else { b }, now);
                }
            }
            b'R' => {
                if let Some((key, req)) = &newest {
                    let status = std::str::from_utf8(arg)
                        .ok()
                        .and_then(|s| s.trim().parse::<u16>().ok())
                        .filter(|s| (100..700).contains(s))
                        .unwrap_or(200);
                    let resp = Response::for_request(req, status, "Fuzz").with_to_tag("fz1");
                    layer.send_response(key, resp, now);
                }
            }
            b'I' | b'O' => {
                sent += 1;
                let (method, to) = if op == b'I' {
                    (Method::Invite, a)
                } else {
                    (Method::Options, b)
                };
                let _ = layer.send_request(client_request(method, sent), to, now);
            }
            b'W' => {
                let ms = std::str::from_utf8(arg)
                    .ok()
                    .and_then(|s| s.trim().parse::<u64>().ok())
                    .unwrap_or(500)
                    .min(100_000);
                now += Duration::from_millis(ms);
                layer.handle_timeout(now);
                if let Some(at) = layer.poll_timeout() {
                    assert!(
                        at > now,
                        "deadline {:?} still due after handle_timeout",
                        at - start
                    );
                }
            }
            _ => {}
        }
        // Drain: bounded, so a layer that feeds itself fails instead of hanging.
        for n in 0.. {
            let Some(out) = layer.poll_output() else {
                break;
            };
            assert!(n < 10_000, "poll_output does not run dry");
            match out {
                Output::Transmit { bytes, .. } => {
                    if let Err(e) = parse(&bytes) {
                        panic!(
                            "the layer transmits what does not parse ({e}): {}",
                            escape(&bytes)
                        );
                    }
                }
                Output::Request { key, req, .. } | Output::Cancel { key, req, .. } => {
                    newest = Some((key, req));
                }
                _ => {}
            }
        }
    }
}

/// Steps of a `sip_transaction` script: the input split on `\n~`.
fn split_steps(data: &[u8]) -> Vec<&[u8]> {
    let mut steps = Vec::new();
    let mut rest = data;
    while let Some(i) = rest.windows(2).position(|w| w == b"\n~") {
        steps.push(&rest[..i]);
        rest = &rest[i + 2..];
    }
    steps.push(rest);
    steps
}

/// A request the TU sends as a UAC: enough headers for the layer and for a peer's
/// response (which the script may supply) to match it.
fn client_request(method: acd_sip::message::Method, n: u32) -> acd_sip::Request {
    let mut req = acd_sip::Request::new(method.clone(), "sip:agent1@192.0.2.20:5062");
    let h = &mut req.headers;
    h.push(
        "Via",
        format!("SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKfz{n}"),
    );
    h.push("Max-Forwards", "70");
    h.push("From", format!("<sip:acd@192.0.2.10>;tag=fzf{n}"));
    h.push("To", "<sip:agent1@192.0.2.20>");
    h.push("Call-ID", format!("fz{n}@192.0.2.10"));
    h.push("CSeq", format!("{n} {method}"));
    req
}
