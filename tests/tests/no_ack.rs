//! A caller over TCP sends INVITE, gets the 200 and never ACKs: no 2xx
//! retransmission on a reliable transport, but after 64*T1 the edge sends a
//! BYE on that same connection and the call is gone from the edge and the
//! queue; an agent who becomes ready afterwards is never offered it.
//! T1 is set to 100 ms here ([sip] t1_ms), so 64*T1 = 6.4 s: long enough for
//! the welcome prompt (2.5 s) to end and the call to reach the queue first.

use std::net::SocketAddr;
use std::time::Duration;

use acd_tests::flows::register;
use acd_tests::proto::AgentState;
use acd_tests::ua::{response, sdp, CallerDialog, RawUa};
use acd_tests::{AcdClient, RtpObserver, TestEnv, LONG, SHORT};

const T1_MS: u64 = 100;

#[tokio::test]
async fn tcp_invite_never_acked_is_hung_up_and_never_offered() {
    let env = TestEnv::new("tcp_no_ack", 39);
    let config =
        env.config_variant(|t| t.replacen("[sip]\n", &format!("[sip]\nt1_ms = {T1_MS}\n"), 1));
    let mut acd = env.start_run_with(&config, &[]).await.unwrap();
    let no_ack_timeout = Duration::from_millis(64 * T1_MS);
    let caller_rtp = RtpObserver::bind("caller", env.ports.observer(0))
        .await
        .unwrap();

    // Alice registered and logged in, NOT ready: the call waits in queue.
    register(&env, 2, "1001", "secret1001", env.ports.sipp(1).sip)
        .await
        .assert_success(1);
    let mut client = AcdClient::connect(&acd.grpc_url()).await.unwrap();
    let st = client.login("alice", "1001").await.unwrap();
    let mut alice = client.watch("alice").await.unwrap();
    if st.state != AgentState::NotReady as i32 {
        client.not_ready("alice", "e2e").await.unwrap();
    }

    let edge: SocketAddr = env.sip_addr().parse().unwrap();
    let mut ua = RawUa::tcp(edge).await.unwrap();
    let mut dlg = CallerDialog::new(&ua, edge, "5550100", "e2e-tcp-no-ack");
    let offer = sdp("127.0.0.1", caller_rtp.port(), &[0, 8], "sendrecv", 1);
    let inv = dlg.invite(Some(&offer), true);
    ua.send(edge, &inv).await.unwrap();
    let ok = ua.recv_final("INVITE", 1, LONG).await.unwrap();
    assert_eq!(ok.status(), Some(200), "{}", ok.text);
    dlg.established(&ok);
    // ...and no ACK, ever. (The BYE is awaited for 64*T1 + 10 s: with the
    // default T1 it would come only after 32 s, so the test also checks that
    // [sip] t1_ms reaches the edge.)

    client
        .await_queue("sales", "waiting = 1", LONG, |q| q.waiting == 1)
        .await
        .unwrap();
    let bye = ua
        .recv_request("BYE", no_ack_timeout + SHORT)
        .await
        .unwrap_or_else(|e| panic!("no BYE on the caller's TCP connection: {e}"));
    let waited = bye.at.duration_since(ok.at);
    assert!(
        waited >= no_ack_timeout - Duration::from_millis(T1_MS),
        "BYE {waited:?} after the 200, before 64*T1 = {no_ack_timeout:?}"
    );
    assert_eq!(
        bye.header("Call-ID"),
        Some(dlg.call_id.as_str()),
        "{}",
        bye.text
    );
    assert_eq!(
        bye.to_tag(),
        Some(dlg.from_tag.as_str()),
        "BYE To must be the caller:\n{}",
        bye.text
    );
    assert_eq!(
        bye.from_tag(),
        Some(dlg.to_tag.as_str()),
        "BYE From must be the edge:\n{}",
        bye.text
    );
    let resp = response(&bye, 200, "OK", &dlg.from_tag, ua.local, None);
    ua.send(edge, &resp).await.unwrap();
    let oks = ua.log.iter().filter(|m| m.status() == Some(200)).count();
    assert_eq!(
        oks,
        1,
        "TCP: the 200 must not be retransmitted:\n{}",
        ua.summary()
    );

    // Gone from the edge and from the queue, counted as abandoned.
    client
        .await_status("without calls", SHORT, |s| {
            s.edge.as_ref().is_some_and(|e| e.active_calls == 0)
        })
        .await
        .unwrap();
    let q = client
        .await_queue("sales", "empty", SHORT, |q| q.waiting == 0)
        .await
        .unwrap();
    assert_eq!(q.answered, 0, "{q:?}");
    assert_eq!(q.abandoned, 1, "{q:?}");

    // Alice becomes ready: nothing is offered to her.
    client.ready("alice").await.unwrap();
    alice.await_state(AgentState::Ready, SHORT).await.unwrap();
    alice.drain(Duration::from_secs(2)).await;
    assert!(
        alice.offers().is_empty(),
        "alice was offered the dead call: {:?}",
        alice.offers()
    );
    let a = client.get_agent("alice").await.unwrap();
    assert_eq!(a.state, AgentState::Ready as i32, "{a:?}");
    acd.assert_running();
}
