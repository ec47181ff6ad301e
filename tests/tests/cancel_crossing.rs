//! CANCEL crossing the agent's 200: the caller gives up while the agent's
//! phone rings, and the phone answers at that very moment (it sends 200
//! although the edge's CANCEL is on its way). The edge must ACK that 200 and
//! hang the phone up with a BYE; the agent ends READY, never stuck ON_CALL.
//! Caller and phone are raw sockets so that the CANCEL leaves exactly while
//! the phone rings and the 200 leaves exactly after the phone sees the CANCEL.

use std::net::SocketAddr;
use std::time::Duration;

use acd_tests::flows::register;
use acd_tests::proto::AgentState;
use acd_tests::ua::{response, sdp, CallerDialog, RawUa};
use acd_tests::{AcdClient, RtpObserver, TestEnv, LONG, SHORT};

#[tokio::test]
async fn caller_cancel_crossing_the_agents_200_gets_ack_and_bye() {
    let env = TestEnv::new("cancel_crossing_200", 43);
    let mut acd = env.start_run().await.unwrap();
    let caller_rtp = RtpObserver::bind("caller", env.ports.observer(0))
        .await
        .unwrap();
    let edge: SocketAddr = env.sip_addr().parse().unwrap();

    // Bob (support, 1002): his phone is a raw socket on SIPp slot 1's port.
    let mut phone = RawUa::udp(env.ports.sipp(1).sip).await.unwrap();
    register(&env, 2, "1002", "secret1002", phone.local.port())
        .await
        .assert_success(1);
    let mut client = AcdClient::connect(&acd.grpc_url()).await.unwrap();
    client.login("bob", "1002").await.unwrap();
    let mut bob = client.watch("bob").await.unwrap();
    client.ready("bob").await.unwrap();
    bob.await_state(AgentState::Ready, SHORT).await.unwrap();

    // The support DID answers early (183): the INVITE stays pending.
    let mut caller = RawUa::udp(env.ports.sipp(3).sip).await.unwrap();
    let mut dlg = CallerDialog::new(&caller, edge, "5550200", "e2e-cancel-crossing");
    let offer = sdp("127.0.0.1", caller_rtp.port(), &[0, 8], "sendrecv", 1);
    let inv = dlg.invite(Some(&offer), true);
    caller.send(edge, &inv).await.unwrap();

    // Bob's phone rings.
    let pinv = phone.recv_request("INVITE", LONG).await.unwrap();
    let tag = "phone-1002";
    let ringing = response(&pinv, 180, "Ringing", tag, phone.local, None);
    phone.send(pinv.from, &ringing).await.unwrap();
    let offer_ev = bob.await_offer(SHORT).await.unwrap();

    // The caller gives up: 200 to the CANCEL, 487 to the INVITE, ACK.
    caller.send(edge, &dlg.cancel()).await.unwrap();
    let c = caller.recv_final("CANCEL", 1, SHORT).await.unwrap();
    assert_eq!(c.status(), Some(200), "CANCEL:\n{}", c.text);
    let r = caller.recv_final("INVITE", 1, SHORT).await.unwrap();
    assert_eq!(r.status(), Some(487), "the cancelled INVITE:\n{}", r.text);
    caller.send(edge, &dlg.ack_non_2xx(&r)).await.unwrap();

    // The edge cancels bob's leg; his phone answers the INVITE anyway (its
    // 200 crossed the CANCEL), then the CANCEL (§9.2: 200, the INVITE is done).
    let pcancel = phone.recv_request("CANCEL", SHORT).await.unwrap();
    let answer = sdp("127.0.0.1", env.ports.observer(1), &[0], "sendrecv", 1);
    let ok = response(&pinv, 200, "OK", tag, phone.local, Some(&answer));
    phone.send(pinv.from, &ok).await.unwrap();
    let cok = response(&pcancel, 200, "OK", tag, phone.local, None);
    phone.send(pcancel.from, &cok).await.unwrap();

    let ack = phone.recv_request("ACK", SHORT).await.unwrap();
    assert_eq!(
        ack.to_tag(),
        Some(tag),
        "ACK outside the phone's dialog:\n{}",
        ack.text
    );
    assert_eq!(
        ack.cseq_num(),
        pinv.cseq_num(),
        "ACK of another INVITE:\n{}",
        ack.text
    );
    let bye = phone.recv_request("BYE", SHORT).await.unwrap();
    assert_eq!(
        bye.to_tag(),
        Some(tag),
        "BYE outside the phone's dialog:\n{}",
        bye.text
    );
    assert_eq!(
        bye.header("Call-ID"),
        pinv.header("Call-ID"),
        "{}",
        bye.text
    );
    let bok = response(&bye, 200, "OK", tag, phone.local, None);
    phone.send(bye.from, &bok).await.unwrap();

    // The phone did not see the ACK (say): its retransmitted 200 is ACKed
    // again, and no second BYE or new INVITE follows.
    phone.send(pinv.from, &ok).await.unwrap();
    let ack2 = phone
        .recv_request("ACK", SHORT)
        .await
        .unwrap_or_else(|e| panic!("retransmitted 200 not ACKed: {e}"));
    assert_eq!(ack2.to_tag(), Some(tag), "{}", ack2.text);

    // Bob ends READY; the call is gone and counted as abandoned.
    client
        .await_status("without calls", SHORT, |s| {
            s.edge.as_ref().is_some_and(|e| e.active_calls == 0)
        })
        .await
        .unwrap();
    let q = client
        .await_queue("support", "abandoned = 1", SHORT, |q| {
            q.abandoned == 1 && q.waiting == 0
        })
        .await
        .unwrap();
    assert_eq!(q.answered, 0, "{q:?}");
    let deadline = tokio::time::Instant::now() + SHORT;
    loop {
        let b = client.get_agent("bob").await.unwrap();
        if b.state == AgentState::Ready as i32 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "bob not READY after the crossed answer: {b:?}; states {:?}",
            bob.states()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bob.drain(Duration::from_millis(300)).await;
    assert_eq!(
        bob.states().last(),
        Some(&AgentState::Ready),
        "bob's last state; all: {:?}",
        bob.states()
    );
    assert_eq!(
        bob.offers().len(),
        1,
        "offers: {:?} ({offer_ev:?})",
        bob.offers()
    );
    let late = phone
        .saw_within(Duration::from_millis(500), |m| {
            matches!(m.method(), Some("BYE") | Some("INVITE"))
        })
        .await;
    assert!(!late, "the phone got more requests:\n{}", phone.summary());
    acd.assert_running();
}
