//! In-dialog requests of a bridged call, sent by a raw-socket caller: a BYE
//! with the right Call-ID but a wrong tag is refused (481) and the call
//! lives on; a hold re-INVITE (a=sendonly) is answered a=recvonly and passed
//! to the agent's phone, and unhold brings sendrecv back both ways.

use std::net::SocketAddr;
use std::time::Duration;

use acd_tests::flows::{agent_phone, register};
use acd_tests::proto::AgentState;
use acd_tests::ua::{direction, response, sdp, CallerDialog, RawUa, Received};
use acd_tests::{AcdClient, AcdProcess, AgentWatch, RtpObserver, TestEnv, LONG, SHORT};

const CALLER_SSRC: u32 = 0xCA11_E502;
const AGENT_SSRC: u32 = 0xA6E7_0102;

/// Alice (1001) registered with her phone's Contact on SIPp slot 1's port,
/// logged in and READY.
async fn ready_alice(env: &TestEnv, acd: &AcdProcess) -> (AcdClient, AgentWatch) {
    register(env, 2, "1001", "secret1001", env.ports.sipp(1).sip)
        .await
        .assert_success(1);
    let mut client = AcdClient::connect(&acd.grpc_url()).await.unwrap();
    client.login("alice", "1001").await.unwrap();
    let mut watch = client.watch("alice").await.unwrap();
    client.ready("alice").await.unwrap();
    watch.await_state(AgentState::Ready, SHORT).await.unwrap();
    (client, watch)
}

/// A raw caller on SIPp slot 3's port dials sales (answered at once) with
/// media to `caller_rtp`, and ACKs the 200.
async fn raw_call(env: &TestEnv, call_id: &str, caller_rtp: u16) -> (RawUa, CallerDialog) {
    let edge: SocketAddr = env.sip_addr().parse().unwrap();
    let mut ua = RawUa::udp(env.ports.sipp(3).sip).await.unwrap();
    let mut dlg = CallerDialog::new(&ua, edge, "5550100", call_id);
    let offer = sdp("127.0.0.1", caller_rtp, &[0, 8], "sendrecv", 1);
    let inv = dlg.invite(Some(&offer), true);
    ua.send(edge, &inv).await.unwrap();
    let ok = ua.recv_final("INVITE", 1, LONG).await.unwrap();
    assert_eq!(
        ok.status(),
        Some(200),
        "sales answers at once:\n{}",
        ok.text
    );
    dlg.established(&ok);
    assert!(!dlg.to_tag.is_empty(), "200 without a To tag:\n{}", ok.text);
    let ack = dlg.ack(1, None);
    ua.send(edge, &ack).await.unwrap();
    (ua, dlg)
}

/// Caller → agent and agent → caller RTP both pass the relay.
async fn assert_media_both_ways(caller: &RtpObserver, agent: &RtpObserver, round: u32) {
    let edge_caller_leg = caller.last_source().expect("edge sent RTP to the caller");
    let before = agent.stats().from_ssrc(CALLER_SSRC + round);
    caller
        .send_tagged(edge_caller_leg, CALLER_SSRC + round, 30)
        .await
        .unwrap();
    agent
        .await_from(CALLER_SSRC + round, before + 20, SHORT)
        .await
        .unwrap();
    let edge_agent_leg = agent.last_source().unwrap();
    agent
        .send_tagged(edge_agent_leg, AGENT_SSRC + round, 30)
        .await
        .unwrap();
    caller
        .await_from(AGENT_SSRC + round, 20, SHORT)
        .await
        .unwrap();
}

#[tokio::test]
async fn bye_with_a_wrong_tag_gets_481_and_the_call_lives() {
    let env = TestEnv::new("wrong_tag_bye", 37);
    let mut acd = env.start_run().await.unwrap();
    let caller_rtp = RtpObserver::bind("caller", env.ports.observer(0))
        .await
        .unwrap();
    let agent_rtp = RtpObserver::bind("agent", env.ports.observer(1))
        .await
        .unwrap();
    // Alice's SIPp phone answers and then waits for exactly one BYE.
    let phone = agent_phone(&env, "agent-1001", 1, agent_rtp.port(), None).await;
    let (mut client, mut alice) = ready_alice(&env, &acd).await;

    let (mut ua, mut dlg) = raw_call(&env, "e2e-wrongtag", caller_rtp.port()).await;
    let offer = alice.await_offer(LONG).await.unwrap();
    alice.await_state(AgentState::OnCall, LONG).await.unwrap();
    assert_media_both_ways(&caller_rtp, &agent_rtp, 0).await;

    // Right Call-ID, wrong To tag (not the edge's).
    let from = dlg.from_tag.clone();
    let bye = dlg.request_as("BYE", 2, &from, "not-the-edges-tag", None);
    ua.send(dlg.edge, &bye).await.unwrap();
    let r = ua.recv_final("BYE", 2, SHORT).await.unwrap();
    assert_eq!(
        r.status(),
        Some(481),
        "BYE with a wrong To tag:\n{}",
        r.text
    );
    // Right Call-ID and To tag, wrong From tag.
    let to = dlg.to_tag.clone();
    let bye = dlg.request_as("BYE", 3, "mallory", &to, None);
    ua.send(dlg.edge, &bye).await.unwrap();
    let r = ua.recv_final("BYE", 3, SHORT).await.unwrap();
    assert_eq!(
        r.status(),
        Some(481),
        "BYE with a wrong From tag:\n{}",
        r.text
    );

    // The call is still up: alice ON_CALL, one call at the edge, media relayed.
    let a = client.get_agent("alice").await.unwrap();
    assert_eq!(a.state, AgentState::OnCall as i32, "alice: {a:?}");
    assert_eq!(a.call_id, offer.call_id, "alice: {a:?}");
    let st = client.status().await.unwrap();
    assert_eq!(st.edge.map(|e| e.active_calls), Some(1), "{st:?}");
    assert_media_both_ways(&caller_rtp, &agent_rtp, 1).await;

    // The real BYE ends both legs: 200 to the caller, the phone gets its BYE.
    dlg.cseq = 3;
    let bye = dlg.request("BYE", None);
    ua.send(dlg.edge, &bye).await.unwrap();
    let r = ua.recv_final("BYE", 4, SHORT).await.unwrap();
    assert_eq!(r.status(), Some(200), "the real BYE:\n{}", r.text);
    phone.wait().await.assert_success(1);
    alice.await_state(AgentState::WrapUp, SHORT).await.unwrap();
    client
        .await_status("without calls", SHORT, |s| {
            s.edge.as_ref().is_some_and(|e| e.active_calls == 0)
        })
        .await
        .unwrap();
    // No request reached the caller (the edge did not hang up on it after
    // the forged BYEs): none among what was read, none arriving now.
    let stray: Vec<&Received> = ua.log.iter().filter(|m| m.method().is_some()).collect();
    assert!(stray.is_empty(), "requests sent to the caller: {stray:?}");
    assert!(
        !ua.saw_within(Duration::from_millis(500), |m| m.method().is_some())
            .await,
        "a request reached the caller after the call: {}",
        ua.summary()
    );
    acd.assert_running();
}

/// The phone answers `inv` 180 then 200 with media to `rtp`; returns its tag.
async fn answer(ua: &mut RawUa, inv: &Received, rtp: u16) -> String {
    let tag = "phone-1001".to_string();
    let ringing = response(inv, 180, "Ringing", &tag, ua.local, None);
    ua.send(inv.from, &ringing).await.unwrap();
    let answer = sdp("127.0.0.1", rtp, &[0], "sendrecv", 1);
    let ok = response(inv, 200, "OK", &tag, ua.local, Some(&answer));
    ua.send(inv.from, &ok).await.unwrap();
    let ack = ua.recv_request("ACK", SHORT).await.unwrap();
    assert_eq!(ack.to_tag(), Some(tag.as_str()), "{}", ack.text);
    tag
}

/// The phone takes a re-INVITE, checks its direction is `expect`, answers
/// with direction `reply` and takes the ACK.
async fn phone_reinvite(ua: &mut RawUa, tag: &str, rtp: u16, expect: &str, reply: &str, v: u32) {
    let re = ua.recv_request("INVITE", SHORT).await.unwrap();
    assert_eq!(
        re.to_tag(),
        Some(tag),
        "re-INVITE outside the dialog:\n{}",
        re.text
    );
    assert_eq!(
        direction(re.body()),
        expect,
        "the phone's re-INVITE:\n{}",
        re.text
    );
    let body = sdp("127.0.0.1", rtp, &[0], reply, v);
    let ok = response(&re, 200, "OK", tag, ua.local, Some(&body));
    ua.send(re.from, &ok).await.unwrap();
    let ack = ua.recv_request("ACK", SHORT).await.unwrap();
    assert_eq!(
        ack.cseq_num(),
        re.cseq_num(),
        "ACK of another re-INVITE:\n{}",
        ack.text
    );
}

/// The caller sends a re-INVITE with direction `dir`; the edge's 200 must
/// answer with `expect`; the caller ACKs.
async fn caller_reinvite(
    ua: &mut RawUa,
    dlg: &mut CallerDialog,
    rtp: u16,
    dir: &str,
    expect: &str,
    v: u32,
) {
    let offer = sdp("127.0.0.1", rtp, &[0, 8], dir, v);
    let re = dlg.request("INVITE", Some(&offer));
    ua.send(dlg.edge, &re).await.unwrap();
    let ok = ua.recv_final("INVITE", dlg.cseq, SHORT).await.unwrap();
    assert_eq!(ok.status(), Some(200), "re-INVITE {dir}:\n{}", ok.text);
    assert_eq!(
        direction(ok.body()),
        expect,
        "answer to {dir}:\n{}",
        ok.text
    );
    let ack = dlg.ack(dlg.cseq, None);
    ua.send(dlg.edge, &ack).await.unwrap();
}

#[tokio::test]
async fn caller_hold_and_unhold_reach_the_agents_phone() {
    let env = TestEnv::new("hold_unhold", 38);
    let mut acd = env.start_run().await.unwrap();
    let caller_rtp = RtpObserver::bind("caller", env.ports.observer(0))
        .await
        .unwrap();
    let agent_rtp = RtpObserver::bind("agent", env.ports.observer(1))
        .await
        .unwrap();
    // Alice's phone is a raw socket: the test sees every re-INVITE it gets
    // and answers each one before the caller's next step.
    let mut phone = RawUa::udp(env.ports.sipp(1).sip).await.unwrap();
    let (mut client, mut alice) = ready_alice(&env, &acd).await;

    let (mut ua, mut dlg) = raw_call(&env, "e2e-hold", caller_rtp.port()).await;
    let inv = phone.recv_request("INVITE", LONG).await.unwrap();
    let tag = answer(&mut phone, &inv, agent_rtp.port()).await;
    alice.await_state(AgentState::OnCall, LONG).await.unwrap();
    assert_media_both_ways(&caller_rtp, &agent_rtp, 0).await;

    // Hold: sendonly from the caller, recvonly back; the phone is told sendonly.
    caller_reinvite(
        &mut ua,
        &mut dlg,
        caller_rtp.port(),
        "sendonly",
        "recvonly",
        2,
    )
    .await;
    phone_reinvite(
        &mut phone,
        &tag,
        agent_rtp.port(),
        "sendonly",
        "recvonly",
        2,
    )
    .await;
    let a = client.get_agent("alice").await.unwrap();
    assert_eq!(
        a.state,
        AgentState::OnCall as i32,
        "on hold is still on call: {a:?}"
    );

    // Unhold: sendrecv both ways, and media flows again.
    caller_reinvite(
        &mut ua,
        &mut dlg,
        caller_rtp.port(),
        "sendrecv",
        "sendrecv",
        3,
    )
    .await;
    phone_reinvite(
        &mut phone,
        &tag,
        agent_rtp.port(),
        "sendrecv",
        "sendrecv",
        3,
    )
    .await;
    assert_media_both_ways(&caller_rtp, &agent_rtp, 1).await;

    // The caller hangs up; the phone gets the BYE in its dialog.
    let bye = dlg.request("BYE", None);
    ua.send(dlg.edge, &bye).await.unwrap();
    let r = ua.recv_final("BYE", dlg.cseq, SHORT).await.unwrap();
    assert_eq!(r.status(), Some(200), "{}", r.text);
    let pbye = phone.recv_request("BYE", SHORT).await.unwrap();
    assert_eq!(pbye.to_tag(), Some(tag.as_str()), "{}", pbye.text);
    let ok = response(&pbye, 200, "OK", &tag, phone.local, None);
    phone.send(pbye.from, &ok).await.unwrap();
    alice.await_state(AgentState::WrapUp, SHORT).await.unwrap();
    // Exactly the two re-INVITEs reached the phone (no third, no duplicate
    // offer after its 200s were acknowledged).
    let invites = phone
        .log
        .iter()
        .filter(|m| m.method() == Some("INVITE"))
        .map(|m| m.cseq_num())
        .collect::<std::collections::BTreeSet<_>>();
    assert_eq!(
        invites.len(),
        3,
        "INVITE transactions at the phone: {}",
        phone.summary()
    );
    acd.assert_running();
}
