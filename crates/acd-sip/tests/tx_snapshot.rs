//! Transactions survive snapshot → restore with their timers intact: a
//! hand-over loses no retransmission and no timeout.

use std::time::{Duration, Instant};

use acd_sip::transaction::TransactionsSnapshot;
use acd_sip::{Config, Method, Output, Peer, Request, TransactionLayer, Transport};

fn peer() -> Peer {
    Peer {
        addr: "10.0.0.9:5060".parse().unwrap(),
        transport: Transport::Udp,
    }
}

fn invite() -> Request {
    let mut r = Request::new(Method::Invite, "sip:1001@10.0.0.9");
    r.headers
        .push("Via", "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKsnap1");
    r.headers.push("Max-Forwards", "70");
    r.headers.push("From", "<sip:acd@10.0.0.1>;tag=a");
    r.headers.push("To", "<sip:1001@10.0.0.9>");
    r.headers.push("Call-ID", "snap-1");
    r.headers.push("CSeq", "1 INVITE");
    r
}

fn drain(layer: &mut TransactionLayer) -> Vec<Output> {
    std::iter::from_fn(|| layer.poll_output()).collect()
}

#[test]
fn a_client_invite_keeps_its_retransmission_schedule_across_restore() {
    let t0 = Instant::now();
    let mut a = TransactionLayer::new(Config::default());
    a.send_request(invite(), peer(), t0);
    assert_eq!(drain(&mut a).len(), 1);
    // 200 ms later the state moves to another process.
    let t1 = t0 + Duration::from_millis(200);
    let snap: TransactionsSnapshot = a.snapshot(t1);
    assert_eq!(snap.len(), 1);
    let t2 = t1 + Duration::from_secs(3600); // the new process's clock
    let mut b = TransactionLayer::restore(Config::default(), snap.clone(), t2);
    assert_eq!(b.snapshot(t2), snap, "nothing lost or changed");
    // Timer A was due 500 ms after sending: 300 ms after the hand-over.
    assert_eq!(b.poll_timeout(), Some(t2 + Duration::from_millis(300)));
    b.handle_timeout(t2 + Duration::from_millis(300));
    let out = drain(&mut b);
    assert!(
        matches!(out.as_slice(), [Output::Transmit { .. }]),
        "retransmitted on schedule: {out:?}"
    );
    // Timer B still ends it 64*T1 after the original send.
    b.handle_timeout(t2 + Duration::from_millis(31_800));
    assert!(drain(&mut b)
        .iter()
        .any(|o| matches!(o, Output::Timeout { .. })));
}
