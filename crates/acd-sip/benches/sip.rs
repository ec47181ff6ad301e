//! Benchmarks of the sans-IO SIP core: parsing, serialising, one server INVITE
//! transaction end to end, and digest verification.
//!
//! Run: `cargo bench -p acd-sip --bench sip -- --measurement-time 3`
//! (results and machine notes in BENCHMARKS.md at the workspace root).

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use acd_sip::auth::{client_authorization, Algorithm, AuthOutcome, DigestServer};
use acd_sip::message::validate_request;
use acd_sip::transaction::new_tag;
use acd_sip::{
    parse, Config, Message, Output, Peer, Request, Response, TransactionLayer, Transport,
};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const SDP: &str = "v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\n\
s=-\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
m=audio 49170 RTP/AVP 0 8 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";

/// An INVITE as it reaches the edge from a carrier SBC through two proxies: three
/// Vias, Record-Route, the usual headers and an audio SDP offer. `branch` varies the
/// top Via so every transaction is new.
fn invite(branch: &str, call_id: &str) -> String {
    let head = format!(
        "INVITE sip:support@acd.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 198.51.100.7:5060;branch={branch};rport\r\n\
Via: SIP/2.0/UDP 198.51.100.20:5060;branch=z9hG4bKproxy2a71;received=198.51.100.20\r\n\
Via: SIP/2.0/UDP 203.0.113.5:5060;branch=z9hG4bKsbc88c1f;rport=5060\r\n\
Record-Route: <sip:198.51.100.7;lr>\r\n\
Max-Forwards: 68\r\n\
From: \"Alice Caller\" <sip:+15551230001@carrier.example.net>;tag=a73kszlfl\r\n\
To: <sip:support@acd.example.com>\r\n\
Call-ID: {call_id}\r\n\
CSeq: 101 INVITE\r\n\
Contact: <sip:+15551230001@203.0.113.5:5060;transport=udp>\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE\r\n\
Supported: timer, replaces\r\n\
User-Agent: CarrierSBC/4.2\r\n\
Content-Type: application/sdp\r\n\
Content-Length: {}\r\n\r\n",
        SDP.len()
    );
    head + SDP
}

/// The same INVITE with compact header names (v, f, t, i, m, c, k, l) and a folded
/// header line, as some UAs send to stay under the UDP MTU.
fn invite_compact(branch: &str, call_id: &str) -> String {
    let head = format!(
        "INVITE sip:support@acd.example.com SIP/2.0\r\n\
v: SIP/2.0/UDP 198.51.100.7:5060;branch={branch};rport\r\n\
v: SIP/2.0/UDP 198.51.100.20:5060;branch=z9hG4bKproxy2a71;received=198.51.100.20,\r\n \
SIP/2.0/UDP 203.0.113.5:5060;branch=z9hG4bKsbc88c1f;rport=5060\r\n\
Record-Route: <sip:198.51.100.7;lr>\r\n\
Max-Forwards: 68\r\n\
f: \"Alice Caller\" <sip:+15551230001@carrier.example.net>;tag=a73kszlfl\r\n\
t: <sip:support@acd.example.com>\r\n\
i: {call_id}\r\n\
CSeq: 101 INVITE\r\n\
m: <sip:+15551230001@203.0.113.5:5060;transport=udp>\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE\r\n\
k: timer, replaces\r\n\
User-Agent: CarrierSBC/4.2\r\n\
c: application/sdp\r\n\
l: {}\r\n\r\n",
        SDP.len()
    );
    head + SDP
}

/// ACK for the 2xx: its own branch (§17.1.1.3), the To tag of the 200.
fn ack_for_2xx(branch: &str, call_id: &str, to_tag: &str) -> String {
    format!(
        "ACK sip:agent1@10.1.0.21:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 198.51.100.7:5060;branch={branch}ack;rport\r\n\
Max-Forwards: 70\r\n\
From: \"Alice Caller\" <sip:+15551230001@carrier.example.net>;tag=a73kszlfl\r\n\
To: <sip:support@acd.example.com>;tag={to_tag}\r\n\
Call-ID: {call_id}\r\n\
CSeq: 101 ACK\r\n\
Content-Length: 0\r\n\r\n"
    )
}

fn as_request(m: Message) -> Request {
    match m {
        Message::Request(r) => r,
        Message::Response(_) => panic!("expected a request"),
    }
}

fn bench_parse(c: &mut Criterion) {
    let full = invite(
        "z9hG4bKbench0001",
        "f81d4fae-7dec-11d0-a765-00a0c91e6bf6@203.0.113.5",
    );
    let compact = invite_compact(
        "z9hG4bKbench0001",
        "f81d4fae-7dec-11d0-a765-00a0c91e6bf6@203.0.113.5",
    );
    // Sanity: both forms parse to the same headers the layer needs.
    for bytes in [&full, &compact] {
        let req = as_request(parse(bytes.as_bytes()).expect("INVITE parses"));
        assert_eq!(req.headers.get_all("Via").count(), 3, "three Via entries");
        assert_eq!(req.body.len(), SDP.len());
        validate_request(&req).expect("valid INVITE");
    }

    let mut g = c.benchmark_group("sip/parse");
    g.throughput(Throughput::Elements(1));
    g.bench_function(format!("invite_{}B", full.len()), |b| {
        b.iter(|| parse(black_box(full.as_bytes())).unwrap())
    });
    g.bench_function(format!("invite_compact_{}B", compact.len()), |b| {
        b.iter(|| parse(black_box(compact.as_bytes())).unwrap())
    });
    g.bench_function("invite_parse_validate", |b| {
        b.iter(|| {
            let req = as_request(parse(black_box(full.as_bytes())).unwrap());
            validate_request(&req).unwrap();
            req
        })
    });
    g.finish();
}

fn bench_serialise(c: &mut Criterion) {
    let req = as_request(parse(invite("z9hG4bKbench0001", "cid-1@h").as_bytes()).unwrap());
    let mut resp = Response::for_request(&req, 200, "OK").with_to_tag(&new_tag(0x5eed));
    resp.headers.push("Contact", "<sip:acd@10.1.0.2:5060>");
    resp.headers.set("Content-Type", "application/sdp");
    resp.body = SDP.as_bytes().to_vec();
    let len = resp.to_bytes().len();

    let mut g = c.benchmark_group("sip/serialise");
    g.throughput(Throughput::Elements(1));
    g.bench_function("build_180_for_request", |b| {
        b.iter(|| Response::for_request(black_box(&req), 180, "Ringing").with_to_tag("5eed"))
    });
    g.bench_function(format!("response_200_sdp_{len}B_to_bytes"), |b| {
        b.iter(|| black_box(&resp).to_bytes())
    });
    g.finish();
}

/// One UAS INVITE transaction over UDP as the edge runs it: INVITE bytes in (parsed),
/// 100 (sent by the layer) and 200 (from the TU) out, ACK bytes in (parsed, passed to the TU), Timer L fires and the
/// transaction is removed. Four SIP messages per call.
fn bench_transaction(c: &mut Criterion) {
    let uac = Peer {
        addr: "198.51.100.7:5060".parse::<SocketAddr>().unwrap(),
        transport: Transport::Udp,
    };
    let cfg = Config::default();
    let after_l = cfg.t1x64() + Duration::from_millis(1);
    let call_id = "f81d4fae-7dec-11d0-a765-00a0c91e6bf6@203.0.113.5";
    let to_tag = new_tag(0x5eed);
    let invite_bytes = invite("z9hG4bKbench0001", call_id).into_bytes();
    let ack_bytes = ack_for_2xx("z9hG4bKbench0001", call_id, &to_tag).into_bytes();

    let run_one =
        |layer: &mut TransactionLayer, now: Instant, invite: &[u8], ack: &[u8]| -> usize {
            let live_before = layer.len();
            let mut transmitted = 0;
            layer.handle_incoming(parse(invite).unwrap(), uac, now);
            // The layer answers 100 Trying itself (§17.2.1), then surfaces the request.
            let mut new_tx = None;
            while let Some(out) = layer.poll_output() {
                match out {
                    Output::Transmit { bytes, .. } => transmitted += bytes.len(),
                    Output::Request { key, req, .. } => new_tx = Some((key, req)),
                    other => panic!("unexpected {other:?}"),
                }
            }
            let (key, req) = new_tx.expect("a new server transaction");
            let mut ok = Response::for_request(&req, 200, "OK").with_to_tag(&to_tag);
            ok.headers.push("Contact", "<sip:acd@10.1.0.2:5060>");
            layer.send_response(&key, ok, now);
            layer.handle_incoming(parse(ack).unwrap(), uac, now);
            let later = now + after_l;
            layer.handle_timeout(later);
            let mut terminated = false;
            while let Some(out) = layer.poll_output() {
                match out {
                    Output::Transmit { bytes, .. } => transmitted += bytes.len(),
                    Output::Ack { .. } => {}
                    Output::Terminated { .. } => terminated = true,
                    other => panic!("unexpected {other:?}"),
                }
            }
            assert!(
                terminated && layer.len() == live_before,
                "transaction ended by Timer L"
            );
            transmitted
        };

    let mut g = c.benchmark_group("sip/transaction");
    // INVITE in, 100 out, 200 out, ACK in.
    g.throughput(Throughput::Elements(4));
    g.bench_function("uas_invite_100_200_ack_timerL_udp", |b| {
        let mut layer = TransactionLayer::new(cfg);
        let mut now = Instant::now();
        b.iter(|| {
            // The same branch is reused: the previous transaction is gone after Timer L.
            let n = run_one(&mut layer, now, &invite_bytes, &ack_bytes);
            now += after_l;
            n
        })
    });
    g.finish();

    // The same with 1,000 other transactions alive in the layer (a busy edge).
    let mut g = c.benchmark_group("sip/transaction");
    g.throughput(Throughput::Elements(4));
    g.bench_function("uas_invite_100_200_ack_with_1000_live_tx", |b| {
        let start = Instant::now();
        let mut layer = TransactionLayer::new(cfg);
        for i in 0..1000 {
            let bytes = invite(&format!("z9hG4bKbg{i:06}"), &format!("bg{i}@h"));
            layer.handle_incoming(parse(bytes.as_bytes()).unwrap(), uac, start);
        }
        while layer.poll_output().is_some() {}
        assert_eq!(layer.len(), 1000);
        // Background transactions sit in Proceeding (no timers on a UAS without a
        // response), so Timer L of ours only ever removes ours.
        let mut now = start;
        b.iter(|| {
            let n = run_one(&mut layer, now, &invite_bytes, &ack_bytes);
            now += after_l;
            n
        })
    });
    g.finish();
}

fn bench_digest(c: &mut Criterion) {
    let mut server = DigestServer::new("acd.example.com", [7u8; 32]);
    let now = 1_795_000_000u64;
    let challenge = server.challenge(now, Algorithm::Md5, false);
    let uri = "sip:acd.example.com";
    let authz = client_authorization(
        &challenge,
        "agent1001",
        "s3cret-pass",
        "REGISTER",
        uri,
        "0a4f113b",
        1,
    )
    .unwrap();
    let password_of = |u: &str| (u == "agent1001").then(|| "s3cret-pass".to_string());
    assert!(matches!(
        server.check_request(&authz, "REGISTER", uri, now + 5, password_of),
        AuthOutcome::Ok(_)
    ));

    let mut g = c.benchmark_group("sip/digest");
    g.throughput(Throughput::Elements(1));
    g.bench_function("challenge", |b| {
        b.iter(|| server.challenges(black_box(now), false))
    });
    g.bench_function("verify_request_ok", |b| {
        b.iter(|| server.check_request(black_box(&authz), "REGISTER", uri, now + 5, password_of))
    });
    g.bench_function("verify_request_wrong_password", |b| {
        let wrong = |_: &str| Some("not-it".to_string());
        b.iter(|| server.check_request(black_box(&authz), "REGISTER", uri, now + 5, wrong))
    });
    g.finish();
}

criterion_group!(
    benches,
    bench_parse,
    bench_serialise,
    bench_transaction,
    bench_digest
);
criterion_main!(benches);
