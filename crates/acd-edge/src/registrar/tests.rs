use std::net::SocketAddr;

use acd_sip::auth::client_authorization;
use acd_sip::Message;

use super::*;

const REALM: &str = "acd.test";
const T0: u64 = 1_800_000_000;

fn registrar() -> Registrar {
    let passwords = [("1001", "pw1001"), ("1002", "pw1002")]
        .into_iter()
        .map(|(u, p)| (u.to_string(), p.to_string()))
        .collect();
    Registrar::new(REALM, [3u8; 32], 42, passwords)
}

fn peer(port: u16) -> Peer {
    Peer {
        addr: SocketAddr::from(([192, 0, 2, 10], port)),
        transport: Transport::Udp,
    }
}

fn peer_ip(last: u8, port: u16) -> Peer {
    Peer {
        addr: SocketAddr::from(([192, 0, 2, last], port)),
        transport: Transport::Udp,
    }
}

fn register(user: &str, contact_port: u16, auth: Option<&str>) -> Request {
    let mut text = format!(
        "REGISTER sip:acd.test SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.10:5070;branch=z9hG4bK{contact_port}\r\n\
         From: <sip:{user}@acd.test>;tag=a\r\n\
         To: <sip:{user}@acd.test>\r\n\
         Call-ID: reg-{user}\r\n\
         CSeq: 1 REGISTER\r\n\
         Contact: <sip:{user}@192.0.2.10:{contact_port}>\r\n\
         Expires: 600\r\n"
    );
    if let Some(a) = auth {
        text.push_str(&format!("Authorization: {a}\r\n"));
    }
    text.push_str("Content-Length: 0\r\n\r\n");
    match acd_sip::parse(text.as_bytes()) {
        Ok(Message::Request(r)) => r,
        other => panic!("bad test request: {other:?}"),
    }
}

/// The SHA-256 challenge of a 401 (the first WWW-Authenticate).
fn challenge_of(resp: &Response) -> String {
    assert_eq!(resp.status, 401, "{resp:?}");
    let all: Vec<&str> = resp.headers.get_all("WWW-Authenticate").collect();
    assert_eq!(all.len(), 2, "SHA-256 and MD5 challenges");
    assert!(all[0].contains("algorithm=SHA-256") && all[1].contains("algorithm=MD5"));
    all[0].to_string()
}

fn authz(ch: &str, user: &str, pw: &str, nc: u32) -> String {
    client_authorization(ch, user, pw, "REGISTER", "sip:acd.test", "cn", nc).unwrap()
}

/// Challenge then register `user` from `from` with contact port `contact`.
fn registered(r: &mut Registrar, user: &str, from: Peer, contact: u16, now: Instant) -> String {
    let (resp, out) = r.handle(&register(user, contact, None), from, now, T0);
    assert_eq!(out, RegisterOutcome::Challenged);
    let a = authz(&challenge_of(&resp), user, &format!("pw{user}"), 1);
    let (resp, out) = r.handle(&register(user, contact, Some(&a)), from, now, T0);
    assert_eq!(resp.status, 200, "{out:?}");
    a
}

#[test]
fn register_and_refresh_with_same_contact() {
    let mut r = registrar();
    let now = Instant::now();
    let a1 = registered(&mut r, "1001", peer(5070), 5071, now);
    let b = r.lookup("1001", now).unwrap();
    assert_eq!(b.contact, "sip:1001@192.0.2.10:5071");
    // Refresh: same nonce, next nc, same contact and source.
    let ch = format!(
        "Digest realm=\"{REALM}\", nonce=\"{}\", algorithm=SHA-256, qop=\"auth\"",
        b.nonce
    );
    let a2 = authz(&ch, "1001", "pw1001", 2);
    assert_ne!(a1, a2);
    let (resp, out) = r.handle(&register("1001", 5071, Some(&a2)), peer(5070), now, T0 + 60);
    assert_eq!(resp.status, 200);
    assert!(matches!(out, RegisterOutcome::Bound { moved: false, .. }));
    assert_eq!(r.count(now), 1);
}

#[test]
fn replayed_authorization_from_elsewhere_cannot_move_the_binding() {
    let mut r = registrar();
    let now = Instant::now();
    let captured = registered(&mut r, "1001", peer(5070), 5071, now);
    // Same header, another source and Contact: the (nonce, nc) was used.
    let (resp, out) = r.handle(
        &register("1001", 6666, Some(&captured)),
        peer_ip(66, 6666),
        now,
        T0 + 1,
    );
    assert_eq!(out, RegisterOutcome::Replay);
    assert_eq!(resp.status, 401);
    assert_eq!(
        r.lookup("1001", now).unwrap().contact,
        "sip:1001@192.0.2.10:5071"
    );
}

#[test]
fn replay_that_outlived_the_nonce_table_still_cannot_move_the_binding() {
    let mut r = registrar();
    let now = Instant::now();
    let captured = registered(&mut r, "1001", peer(5070), 5071, now);
    // The edge was handed over: a fresh registrar with the bindings only.
    let snap = r.snapshot(now);
    let mut r2 = registrar();
    r2.restore(snap, now);
    let (resp, out) = r2.handle(
        &register("1001", 6666, Some(&captured)),
        peer_ip(66, 6666),
        now,
        T0 + 1,
    );
    assert_eq!(out, RegisterOutcome::MoveNeedsFreshNonce);
    assert_eq!(resp.status, 401);
    assert_eq!(
        r2.lookup("1001", now).unwrap().contact,
        "sip:1001@192.0.2.10:5071"
    );
    // Nor unregister it.
    let mut remove = register("1001", 6666, Some(&captured));
    remove.headers.set("Expires", "0");
    let mut r3 = registrar();
    r3.restore(r2.snapshot(now), now);
    let (_, out) = r3.handle(&remove, peer_ip(66, 6666), now, T0 + 1);
    assert_eq!(out, RegisterOutcome::MoveNeedsFreshNonce);
    assert!(r3.lookup("1001", now).is_some());
}

#[test]
fn a_phone_that_moved_succeeds_with_a_fresh_nonce() {
    let mut r = registrar();
    let now = Instant::now();
    registered(&mut r, "1001", peer(5070), 5071, now);
    let moved_from = peer_ip(77, 5070);
    let (resp, out) = r.handle(&register("1001", 7777, None), moved_from, now, T0 + 30);
    assert_eq!(out, RegisterOutcome::Challenged);
    let a = authz(&challenge_of(&resp), "1001", "pw1001", 1);
    let (resp, out) = r.handle(&register("1001", 7777, Some(&a)), moved_from, now, T0 + 30);
    assert_eq!(resp.status, 200);
    assert!(matches!(out, RegisterOutcome::Bound { moved: true, .. }));
    let b = r.lookup("1001", now).unwrap();
    assert_eq!(b.contact, "sip:1001@192.0.2.10:7777");
    assert_eq!(b.source, moved_from);
}

#[test]
fn wrong_passwords_lead_to_back_off_for_that_source_only() {
    let mut r = registrar();
    let now = Instant::now();
    let attacker = peer_ip(99, 5000);
    let (resp, _) = r.handle(&register("1001", 5000, None), attacker, now, T0);
    let ch = challenge_of(&resp);
    let mut statuses = Vec::new();
    for i in 0..8u32 {
        let a = authz(&ch, "1001", "guess", i + 1);
        let (resp, _) = r.handle(&register("1001", 5000, Some(&a)), attacker, now, T0);
        statuses.push(resp.status);
    }
    assert_eq!(statuses, [403, 403, 403, 403, 403, 503, 503, 503]);
    let (resp, out) = r.handle(&register("1001", 5000, None), attacker, now, T0);
    assert_eq!(resp.status, 503);
    assert_eq!(resp.headers.get("Retry-After"), Some("30"));
    assert!(matches!(out, RegisterOutcome::BackedOff { .. }));
    // Another source registers as usual.
    registered(&mut r, "1001", peer(5070), 5071, now);
    // After the ban the attacker may try again.
    let later = now + Duration::from_secs(31);
    let (_, out) = r.handle(&register("1001", 5000, None), attacker, later, T0 + 31);
    assert_eq!(out, RegisterOutcome::Challenged);
}

#[test]
fn credentials_of_another_user_are_refused() {
    let mut r = registrar();
    let now = Instant::now();
    let (resp, _) = r.handle(&register("1001", 5071, None), peer(5070), now, T0);
    let a = authz(&challenge_of(&resp), "1002", "pw1002", 1);
    let (resp, out) = r.handle(&register("1001", 5071, Some(&a)), peer(5070), now, T0);
    assert_eq!((resp.status, out), (403, RegisterOutcome::UserMismatch));
    assert!(r.lookup("1001", now).is_none());
}

#[test]
fn snapshot_round_trips_through_serde_with_relative_deadlines() {
    let mut r = registrar();
    let now = Instant::now();
    registered(&mut r, "1001", peer(5070), 5071, now);
    let later = now + Duration::from_secs(100);
    let snap = r.snapshot(later);
    assert_eq!(snap.bindings["1001"].expires_in, Duration::from_secs(500));
    let json = serde_json::to_string(&snap).unwrap();
    let back: RegistrarSnapshot = serde_json::from_str(&json).unwrap();
    assert_eq!(back, snap);
    let mut r2 = registrar();
    let elsewhere = Instant::now() + Duration::from_secs(5000);
    r2.restore(back, elsewhere);
    let b = r2.lookup("1001", elsewhere).unwrap();
    assert_eq!(b.expires_at, elsewhere + Duration::from_secs(500));
    assert_eq!(b.source, peer(5070));
    assert_eq!(
        r2.lookup("1001", now).map(|b| b.contact),
        r.lookup("1001", now).map(|b| b.contact)
    );
}
