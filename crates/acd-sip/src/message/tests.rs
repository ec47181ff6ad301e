use super::*;

fn crlf(s: &str) -> Vec<u8> {
    s.replace('\n', "\r\n").into_bytes()
}

fn req(s: &str) -> Request {
    match parse(&crlf(s)) {
        Ok(Message::Request(r)) => r,
        other => panic!("expected request, got {other:?}"),
    }
}

const COMPACT_INVITE: &str = "INVITE sip:bob@biloxi.example.com SIP/2.0
v: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;rport, SIP/2.0/TCP [2001:db8::1]:5070;branch=z9hG4bK2;received=10.0.0.9
Via: SIP/2.0/UDP third.example.com;branch=z9hG4bK3
Max-Forwards: 70
t: Bob <sip:bob@biloxi.example.com>
f: \"Alice, A.\" <sip:alice@atlanta.example.com>;tag=1928301774
i: a84b4c76e66710@pc33.atlanta.example.com
CSeq: 314159 INVITE
m: <sip:alice@pc33.atlanta.example.com>, \"x,y\" <sip:other@h>;q=0.5
Record-Route: <sip:p1.example.com;lr;du=sip:10.1.1.1:5070;transport=tcp>,
 <sip:p2.example.com;lr>
Subject: folded
\tsubject line
c: application/sdp
l: 4

v=0
";

#[test]
fn compact_forms_and_folding() {
    let r = req(COMPACT_INVITE);
    assert_eq!(r.method, Method::Invite);
    assert_eq!(r.uri, "sip:bob@biloxi.example.com");
    assert_eq!(r.call_id(), Some("a84b4c76e66710@pc33.atlanta.example.com"));
    assert_eq!(r.cseq(), Some((314159, Method::Invite)));
    assert_eq!(r.from_tag(), Some("1928301774"));
    assert_eq!(r.to_tag(), None);
    assert_eq!(r.max_forwards(), Some(70));
    assert_eq!(r.content_type(), Some("application/sdp"));
    assert_eq!(r.contact_uri(), Some("sip:alice@pc33.atlanta.example.com"));
    assert_eq!(r.body, b"v=0\r");
    assert_eq!(r.headers.get("subject"), Some("folded subject line"));
    assert_eq!(r.headers.get("s"), Some("folded subject line"));
    // Names are canonical long forms.
    let names: Vec<&str> = r.headers.iter().map(|(n, _)| n).collect();
    assert_eq!(names[0], "Via");
    assert!(names.contains(&"Content-Length"));
    assert!(names.contains(&"Call-ID"));
}

#[test]
fn multiple_vias_in_one_header_and_across_headers() {
    let r = req(COMPACT_INVITE);
    let vias: Vec<&str> = r.headers.get_all("Via").collect();
    assert_eq!(vias.len(), 3);
    let top = r.top_via().unwrap();
    assert_eq!(top.transport, "UDP");
    assert_eq!(top.sent_by_host, "pc33.atlanta.example.com");
    assert_eq!(top.sent_by_port, Some(5060));
    assert_eq!(top.branch.as_deref(), Some("z9hG4bK776asdhds"));
    assert_eq!(top.rport, Some(None));
    let second = Via::parse(vias[1]).unwrap();
    assert_eq!(second.transport, "TCP");
    assert_eq!(second.sent_by_host, "[2001:db8::1]");
    assert_eq!(second.sent_by_port, Some(5070));
    assert_eq!(second.received.as_deref(), Some("10.0.0.9"));
    assert_eq!(Via::parse(vias[2]).unwrap().sent_by_port, None);
    // Contact split respects quotes.
    let contacts: Vec<&str> = r.headers.get_all("m").collect();
    assert_eq!(
        contacts,
        vec![
            "<sip:alice@pc33.atlanta.example.com>",
            "\"x,y\" <sip:other@h>;q=0.5"
        ]
    );
}

#[test]
fn record_route_du_round_trips() {
    let r = req(COMPACT_INVITE);
    let rr: Vec<&str> = r.headers.get_all("Record-Route").collect();
    assert_eq!(
        rr,
        vec![
            "<sip:p1.example.com;lr;du=sip:10.1.1.1:5070;transport=tcp>",
            "<sip:p2.example.com;lr>"
        ]
    );
    let bytes = r.to_bytes();
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(text.contains("<sip:p1.example.com;lr;du=sip:10.1.1.1:5070;transport=tcp>"));
    let again = match parse(&bytes).unwrap() {
        Message::Request(r) => r,
        _ => panic!(),
    };
    assert_eq!(again, r);
    let na = NameAddr::parse(rr[0]).unwrap();
    let uri = Uri::parse(na.uri).unwrap();
    assert_eq!(uri.param("du"), Some(Some("sip:10.1.1.1:5070")));
    assert_eq!(uri.param("lr"), Some(None));
}

#[test]
fn round_trip_response_and_content_length_recomputed() {
    let r = req(COMPACT_INVITE);
    let mut resp = Response::for_request(&r, 200, "OK").with_to_tag("abc");
    resp.body = b"hello".to_vec();
    resp.headers.push("Content-Type", "text/plain");
    let bytes = resp.to_bytes();
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(text.starts_with("SIP/2.0 200 OK\r\n"));
    assert!(text.contains("Content-Length: 5\r\n"));
    assert!(!text.contains("Content-Length: 0"));
    match parse(&bytes).unwrap() {
        Message::Response(p) => {
            assert_eq!(p, resp_with_len(resp.clone()));
            assert_eq!(p.to_tag(), Some("abc"));
            assert_eq!(p.headers.get_all("Via").count(), 3);
            assert_eq!(p.body, b"hello");
        }
        _ => panic!(),
    }
    // with_to_tag does not replace an existing tag.
    let again = resp.clone().with_to_tag("zzz");
    assert_eq!(again.to_tag(), Some("abc"));
}

fn resp_with_len(mut r: Response) -> Response {
    let n = r.body.len();
    r.headers.set("Content-Length", n.to_string());
    r
}

#[test]
fn for_request_copies_8_2_6_headers() {
    let r = req(COMPACT_INVITE);
    let resp = Response::for_request(&r, 486, "Busy Here");
    let names: Vec<&str> = resp.headers.iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        vec![
            "Via",
            "Via",
            "From",
            "To",
            "Call-ID",
            "CSeq",
            "Content-Length"
        ]
    );
    assert_eq!(resp.cseq(), Some((314159, Method::Invite)));
}

#[test]
fn uri_helpers() {
    assert_eq!(
        uri_user("sip:alice@example.com:5070;transport=tcp"),
        Some("alice")
    );
    assert_eq!(
        uri_host("sip:alice@example.com:5070;transport=tcp"),
        Some("example.com")
    );
    assert_eq!(
        uri_port("sip:alice@example.com:5070;transport=tcp"),
        Some(5070)
    );
    assert_eq!(uri_user("sip:example.com"), None);
    assert_eq!(uri_user("sip:alice:pw@h"), Some("alice"));
    assert_eq!(uri_host("sip:[2001:db8::1]:5060"), Some("[2001:db8::1]"));
    assert_eq!(uri_port("sip:[2001:db8::1]:5060"), Some(5060));
    assert_eq!(uri_port("sip:h:notaport"), None);
    let na = NameAddr::parse("\"Agent <7>\" <sip:7@acd;transport=udp>;tag=x;expires=60").unwrap();
    assert_eq!(na.display, Some("Agent <7>"));
    assert_eq!(na.uri, "sip:7@acd;transport=udp");
    assert_eq!(na.tag(), Some("x"));
    assert_eq!(na.param("expires"), Some(Some("60")));
    let bare = NameAddr::parse("sip:7@acd;tag=y").unwrap();
    assert_eq!(bare.uri, "sip:7@acd");
    assert_eq!(bare.tag(), Some("y"));
    assert_eq!(NameAddr::parse("<>"), None);
    assert_eq!(NameAddr::parse("\"unterminated <sip:x>"), None);
}

#[test]
fn headers_set_remove_push() {
    let mut h = Headers::new();
    h.push("v", "SIP/2.0/UDP a;branch=z9hG4bK1");
    h.push("To", "<sip:b@c>");
    h.push("Via", "SIP/2.0/UDP b;branch=z9hG4bK2");
    h.set("via", "SIP/2.0/UDP c;branch=z9hG4bK3");
    assert_eq!(
        h.get_all("Via").collect::<Vec<_>>(),
        vec!["SIP/2.0/UDP c;branch=z9hG4bK3"]
    );
    assert_eq!(h.iter().next().map(|(n, _)| n), Some("Via"));
    h.remove("VIA");
    assert_eq!(h.get("Via"), None);
    assert_eq!(h.len(), 1);
    h.set("Expires", "60");
    assert_eq!(h.expires(), Some(60));
}

#[test]
fn stream_framing() {
    let one = crlf(
        "OPTIONS sip:a@b SIP/2.0\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\nContent-Length: 3\n\nabc",
    );
    let mut buf = b"\r\n\r\n".to_vec();
    buf.extend_from_slice(&one);
    buf.extend_from_slice(&one[..10]);
    let (msg, used) = parse_stream(&buf).unwrap().unwrap();
    assert_eq!(used, 4 + one.len());
    assert_eq!(msg.body(), b"abc");
    assert_eq!(parse_stream(&buf[used..]).unwrap(), None);
    // Incomplete body.
    assert_eq!(parse_stream(&one[..one.len() - 1]).unwrap(), None);
    // Only keep-alives.
    assert_eq!(parse_stream(b"\r\n\r\n").unwrap(), None);
    assert!(matches!(
        parse_stream(&crlf("OPTIONS sip:a@b SIP/2.0\nContent-Length: x\n\n")),
        Err(ParseError::BadContentLength(_))
    ));
}

#[test]
fn malformed_inputs_name_the_problem() {
    assert_eq!(parse(b""), Err(ParseError::Empty));
    assert_eq!(parse(b"\r\n\r\n"), Err(ParseError::Empty));
    assert!(matches!(
        parse(&crlf("HELLO\n\n")),
        Err(ParseError::BadStartLine(_))
    ));
    assert!(matches!(
        parse(&crlf("INVITE sip:a SIP/3.0\n\n")),
        Err(ParseError::BadVersion(_))
    ));
    assert!(matches!(
        parse(&crlf("SIP/2.0 99 Odd\n\n")),
        Err(ParseError::BadStartLine(_))
    ));
    assert_eq!(
        parse(&crlf("INVITE sip:a SIP/2.0\nVia SIP/2.0/UDP h\n\n")),
        Err(ParseError::BadHeaderLine {
            line: 2,
            text: "Via SIP/2.0/UDP h".into()
        })
    );
    assert_eq!(
        parse(&crlf("INVITE sip:a SIP/2.0\n folded\n\n")),
        Err(ParseError::OrphanContinuation { line: 2 })
    );
    assert_eq!(
        parse(&crlf("INVITE sip:a SIP/2.0\nContent-Length: 10\n\nabc")),
        Err(ParseError::BodyTooShort {
            declared: 10,
            actual: 3
        })
    );
    assert!(matches!(
        parse(b"INVITE sip:a SIP/2.0\r\nX: \xff\r\n\r\n"),
        Err(ParseError::NotUtf8 { line: 2 })
    ));
    assert_eq!(
        parse(b"INVITE sip:a SIP/2.0\r\nVia: x"),
        Err(ParseError::MissingHeaderEnd)
    );
    // Response with empty reason is fine.
    assert!(matches!(
        parse(&crlf("SIP/2.0 200\nContent-Length: 0\n\n")),
        Ok(Message::Response(_))
    ));
    // Longer body than Content-Length is truncated (§18.3).
    match parse(&crlf("MESSAGE sip:a SIP/2.0\nContent-Length: 2\n\nabcdef")) {
        Ok(m) => assert_eq!(m.body(), b"ab"),
        Err(e) => panic!("{e}"),
    }
}

const GOOD: &str = "OPTIONS sip:acd@10.0.0.1 SIP/2.0
Via: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKx
Max-Forwards: 70
From: <sip:a@b>;tag=1
To: <sip:acd@10.0.0.1>
Call-ID: c1
CSeq: 1 OPTIONS
Content-Length: 0

";

#[test]
fn validation_names_the_bad_header() {
    let ok = req(GOOD);
    assert_eq!(validate_request(&ok), Ok(()));
    let mut r = ok.clone();
    r.headers.remove("From");
    assert_eq!(
        validate_request(&r),
        Err(RequestError::MissingHeader("From"))
    );
    assert_eq!(validate_request(&r).unwrap_err().status(), 400);
    let mut r = ok.clone();
    // No branch: an RFC 2543 request, matched by the §17.2.3 fallback.
    r.headers.set("Via", "SIP/2.0/UDP 10.0.0.2");
    assert_eq!(validate_request(&r), Ok(()));
    let mut r = ok.clone();
    r.headers
        .set("Via", "SIP/2.0/UDP 10.0.0.2;;branch=z9hG4bKx");
    assert_eq!(validate_request(&r), Err(RequestError::BadHeader("Via")));
    let mut r = ok.clone();
    r.headers.set("CSeq", "1 INVITE");
    assert!(matches!(
        validate_request(&r),
        Err(RequestError::CSeqMethodMismatch { .. })
    ));
    let mut r = ok.clone();
    r.headers.set("CSeq", "x OPTIONS");
    assert_eq!(validate_request(&r), Err(RequestError::BadHeader("CSeq")));
    let mut r = ok.clone();
    r.uri = "tel:+15551234".into();
    assert_eq!(validate_request(&r).unwrap_err().status(), 416);
    let mut r = ok.clone();
    r.method = Method::Invite;
    r.headers.set("CSeq", "1 INVITE");
    r.headers.set("Max-Forwards", "0");
    let e = validate_request(&r).unwrap_err();
    assert_eq!((e.status(), e.reason().as_str()), (483, "Too Many Hops"));
    // OPTIONS with Max-Forwards 0 is answered by us (§11.1).
    let mut r = ok.clone();
    r.headers.set("Max-Forwards", "0");
    assert_eq!(validate_request(&r), Ok(()));
    let mut r = ok;
    r.headers.remove("Call-ID");
    assert!(validate_request(&r)
        .unwrap_err()
        .reason()
        .contains("Call-ID"));
}

#[test]
fn repeated_single_value_headers_are_refused_by_name() {
    for name in SINGLE_VALUE_HEADERS {
        let mut r = req(GOOD);
        let value = match *name {
            "Content-Type" => "application/sdp",
            "Expires" => "60",
            other => r.headers.get(other).unwrap_or("1"),
        }
        .to_string();
        r.headers.push(name, value.as_str());
        r.headers.push(name, value.as_str());
        let e = validate_request(&r).unwrap_err();
        assert_eq!(e, RequestError::RepeatedHeader(name));
        assert!(e.reason().contains(name), "{}", e.reason());
    }
}

#[test]
fn conflicting_content_length_is_a_framing_error() {
    let two = crlf("OPTIONS sip:a@b SIP/2.0\nContent-Length: 2\nl: 3\n\nabc");
    assert_eq!(parse(&two), Err(ParseError::ConflictingContentLength));
    assert_eq!(
        parse_stream(&two),
        Err(ParseError::ConflictingContentLength)
    );
    let plus = crlf("OPTIONS sip:a@b SIP/2.0\nContent-Length: +3\n\nabc");
    assert!(matches!(parse(&plus), Err(ParseError::BadContentLength(_))));
}

#[test]
fn another_sip_version_gets_505() {
    let v =
        String::from_utf8(req(GOOD).to_bytes())
            .unwrap()
            .replacen("SIP/2.0\r\n", "SIP/3.1\r\n", 1);
    assert_eq!(parse(v.as_bytes()).unwrap_err().status(), 505);
    let out = salvage_for_400(v.as_bytes()).unwrap();
    assert!(out.starts_with(b"SIP/2.0 505 Version Not Supported\r\n"));
}

#[test]
fn require_is_checked_and_100rel_refused_unless_supported() {
    let mut r = req(GOOD);
    assert_eq!(check_require(&r, &[]), None);
    r.headers.push("Require", "100rel, Timer");
    r.headers.push("Proxy-Require", "sec-agree");
    let resp = check_require(&r, &["timer"]).unwrap();
    assert_eq!((resp.status, resp.reason.as_str()), (420, "Bad Extension"));
    // Proxy-Require is not a UAS's business (§20.29).
    assert_eq!(resp.headers.get("Unsupported"), Some("100rel"));
    assert_eq!(check_require(&r, &["100rel", "timer"]), None);
    // Never for ACK or CANCEL (§8.2.2.3).
    r.method = Method::Cancel;
    r.headers.set("CSeq", "1 CANCEL");
    assert_eq!(check_require(&r, &[]), None);
}

#[test]
fn stamping_the_source_follows_rfc_3581() {
    let src: std::net::SocketAddr = "198.51.100.7:40000".parse().unwrap();
    // Same host, no rport: nothing to add (§18.2.1).
    let mut v = Via::parse("SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK1").unwrap();
    assert!(!v.stamp_source(src));
    // rport asked: received and the port, even from the same host.
    let mut v = Via::parse("SIP/2.0/UDP 198.51.100.7:5060;rport;branch=z9hG4bK1").unwrap();
    assert!(v.stamp_source(src));
    assert_eq!(
        v.to_value(),
        "SIP/2.0/UDP 198.51.100.7:5060;rport=40000;branch=z9hG4bK1;received=198.51.100.7"
    );
    // Another host: received only.
    let mut r = req(GOOD);
    assert!(r.stamp_source(src));
    assert_eq!(
        r.top_via().unwrap().received.as_deref(),
        Some("198.51.100.7")
    );
    assert_eq!(r.top_via().unwrap().rport, None);
}

#[test]
fn via_allows_lws_around_separators() {
    let v = Via::parse("SIP  /   2.0 /UDP 192.0.2.2 : 5062 ; branch = x1").unwrap();
    assert_eq!(v.transport, "UDP");
    assert_eq!(v.sent_by(), "192.0.2.2:5062");
    assert_eq!(v.branch.as_deref(), Some("x1"));
    assert!(!v.has_rfc3261_branch());
    assert!(Via::parse("SIP/2.0/UDP host;branch=z9hG4bK").is_some_and(|v| !v.has_rfc3261_branch()));
    assert!(Via::parse("SIP/2.0/UDP 192.0.2.15;;").is_none());
    assert!(Via::parse("SIP/2.0/UDP a b").is_none());
}

#[test]
fn salvage_builds_400() {
    // Bad CSeq method + garbage header line: parse fails, headers salvageable.
    let bad = crlf(
        "INVITE sip:acd@10.0.0.1 SIP/2.0
Via: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKx
v: SIP/2.0/UDP 10.0.0.3;branch=z9hG4bKy
From: <sip:a@b>;tag=1
To: <sip:acd@10.0.0.1>
i: c1
CSeq: 1 INVITE
this line is garbage
Content-Length: 0

",
    );
    assert!(parse(&bad).is_err());
    let out = salvage_for_400(&bad).unwrap();
    let resp = match parse(&out).unwrap() {
        Message::Response(r) => r,
        _ => panic!(),
    };
    assert_eq!(resp.status, 400);
    assert!(resp.reason.contains("line 8"), "{}", resp.reason);
    assert_eq!(resp.headers.get_all("Via").count(), 2);
    assert_eq!(resp.call_id(), Some("c1"));
    assert!(resp.to_tag().is_some());
    // Parses but fails validation: reason names the header.
    let mut r = req(GOOD);
    r.headers.set("CSeq", "1 BYE");
    let resp = match parse(&salvage_for_400(&r.to_bytes()).unwrap()).unwrap() {
        Message::Response(r) => r,
        _ => panic!(),
    };
    assert!(resp.reason.contains("CSeq"), "{}", resp.reason);
    // Not a request, or missing Call-ID, or an ACK → None.
    assert_eq!(salvage_for_400(b"garbage"), None);
    assert_eq!(salvage_for_400(&crlf("SIP/2.0 200 OK\nVia: x\n\n")), None);
    let no_callid = String::from_utf8(bad.clone())
        .unwrap()
        .replace("i: c1\r\n", "");
    // Missing Call-ID: still answered, without one (RFC 4475 §3.3.1).
    let out = salvage_for_400(no_callid.as_bytes()).unwrap();
    let resp = match parse(&out).unwrap() {
        Message::Response(r) => r,
        _ => panic!(),
    };
    assert_eq!((resp.status, resp.call_id()), (400, None));
    assert_eq!(resp.cseq(), Some((1, Method::Invite)));
    // No Via: nothing to answer to.
    let no_via = String::from_utf8(bad.clone())
        .unwrap()
        .replace("Via: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKx\r\n", "")
        .replace("v: SIP/2.0/UDP 10.0.0.3;branch=z9hG4bKy\r\n", "");
    assert_eq!(salvage_for_400(no_via.as_bytes()), None);
    let ack = String::from_utf8(bad)
        .unwrap()
        .replace("INVITE sip", "ACK sip");
    assert_eq!(salvage_for_400(ack.as_bytes()), None);
}

/// xorshift64*: deterministic fuzzing without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Property-style: random and mutated inputs never panic, and whatever parses
/// re-serialises to something that parses to the same message.
#[test]
fn fuzz_no_panic_and_round_trip() {
    let seeds = [
        crlf(COMPACT_INVITE),
        crlf(GOOD),
        crlf("SIP/2.0 180 Ringing\nv: SIP/2.0/UDP h;branch=z9hG4bK1\nl: 0\n\n"),
    ];
    let alphabet = b"\r\n :;,<>\"\\=@\t\xffvlim0123456789abcSIP/2.0";
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut parsed = 0;
    for i in 0..20_000 {
        let mut data = seeds[i % seeds.len()].clone();
        let mutations = 1 + rng.below(8);
        for _ in 0..mutations {
            match rng.below(5) {
                0 if !data.is_empty() => {
                    let p = rng.below(data.len());
                    data[p] = alphabet[rng.below(alphabet.len())];
                }
                1 if !data.is_empty() => {
                    let p = rng.below(data.len());
                    data.remove(p);
                }
                2 => {
                    let p = rng.below(data.len() + 1);
                    data.insert(p, alphabet[rng.below(alphabet.len())]);
                }
                3 => {
                    let p = rng.below(data.len() + 1);
                    data.truncate(p);
                }
                _ => {
                    let p = rng.below(data.len() + 1);
                    data.insert(p, (rng.next() & 0xff) as u8);
                }
            }
        }
        if i % 7 == 0 {
            data = (0..rng.below(200))
                .map(|_| (rng.next() & 0xff) as u8)
                .collect();
        }
        let _ = salvage_for_400(&data);
        let _ = parse_stream(&data);
        if let Ok(msg) = parse(&data) {
            parsed += 1;
            let h = msg.headers();
            let _ = (
                h.top_via(),
                h.cseq(),
                h.from_tag(),
                h.to_tag(),
                h.contact_uri(),
                h.max_forwards(),
            );
            for v in h.get_all("Record-Route").chain(h.get_all("Contact")) {
                if let Some(na) = NameAddr::parse(v) {
                    let _ = (Uri::parse(na.uri), na.tag());
                }
            }
            if let Message::Request(r) = &msg {
                let _ = validate_request(r);
                let _ = (uri_user(&r.uri), uri_host(&r.uri), uri_port(&r.uri));
            }
            let bytes = msg.to_bytes();
            let again = parse(&bytes).unwrap_or_else(|e| {
                panic!("reparse failed: {e}\n{:?}", String::from_utf8_lossy(&bytes))
            });
            assert_eq!(again.to_bytes(), bytes);
        }
    }
    // Enough mutants survive parsing for the round-trip property to mean something.
    assert!(parsed > 2_000, "only {parsed} mutants parsed");
}

/// Fuzz regression (fuzz/corpus/sip_parse/regress-to-valueless-tag.sip): a To with a
/// valueless `;tag` got `;tag=<ours>` appended after it, and the empty first tag
/// shadowed ours, so the response read as untagged.
#[test]
fn with_to_tag_replaces_a_valueless_tag() {
    for to in [
        "<sip:1000@192.0.2.10:5060>;tag;branch=z9hG4bK=as1f2e",
        "<sip:1000@192.0.2.10:5060>;tag=;x=1",
        "sip:1000@192.0.2.10;TAG",
    ] {
        let raw = format!(
            "BYE sip:1000@192.0.2.10 SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
             From: <sip:a@x>;tag=1\r\nTo: {to}\r\nCall-ID: c\r\nCSeq: 2 BYE\r\n\r\n"
        );
        let Ok(Message::Request(req)) = parse(raw.as_bytes()) else {
            panic!("{raw}");
        };
        let resp = Response::for_request(&req, 481, "No Dialog").with_to_tag("ours");
        assert_eq!(resp.to_tag(), Some("ours"), "{to}");
        let to_out = resp.headers.get("To").unwrap();
        assert_eq!(to_out.matches(";tag").count(), 1, "{to_out}");
        let Ok(Message::Response(back)) = parse(&resp.to_bytes()) else {
            panic!("response does not parse");
        };
        assert_eq!(back.to_tag(), Some("ours"));
    }
    // Other parameters and the display name survive.
    let mut h = Headers::new();
    h.push("To", "\"Bob\" <sip:b@y>;tag;x=1");
    let resp = Response {
        status: 200,
        reason: "OK".into(),
        headers: h,
        body: Vec::new(),
    }
    .with_to_tag("t");
    assert_eq!(resp.headers.get("To"), Some("\"Bob\" <sip:b@y>;x=1;tag=t"));
}

#[test]
fn method_labels_are_a_closed_set() {
    assert_eq!(Method::from_token("INVITE").label(), "INVITE");
    let invented = Method::from_token("XYZZY1234");
    assert_eq!(invented.as_str(), "XYZZY1234");
    assert_eq!(
        invented.label(),
        "OTHER",
        "peer-chosen names never become metric labels"
    );
}
