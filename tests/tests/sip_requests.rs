//! Requests the edge must answer by the book: an INVITE without Contact
//! gets 400 (no call set up); OPTIONS is answered with Allow, Accept and
//! Supported; a late-offer INVITE (no SDP) gets a 200 carrying our offer of
//! PCMU and PCMA, the ACK carries the caller's answer, and the prompt is
//! then sent where that answer says (SIPp, trunk_late_offer.xml).

use std::net::SocketAddr;
use std::time::Duration;

use acd_tests::flows::trunk;
use acd_tests::sip::headers;
use acd_tests::ua::{sdp, CallerDialog, RawUa};
use acd_tests::{
    AcdClient, AcdProcess, RtpObserver, SippCmd, SippOutcome, SippRun, TestEnv, SHORT,
};

fn list(values: Vec<&str>) -> Vec<String> {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .map(|m| m.trim().to_ascii_uppercase())
        .filter(|m| !m.is_empty())
        .collect()
}

async fn contactless_invite_gets_400(env: &TestEnv, acd: &AcdProcess) {
    let edge: SocketAddr = env.sip_addr().parse().unwrap();
    let mut ua = RawUa::udp(env.ports.sipp(5).sip).await.unwrap();
    let mut dlg = CallerDialog::new(&ua, edge, "5550100", "e2e-no-contact");
    let offer = sdp("127.0.0.1", env.ports.observer(1), &[0, 8], "sendrecv", 1);
    let inv = dlg.invite(Some(&offer), false);
    assert!(!inv.contains("Contact:"), "{inv}");
    ua.send(edge, &inv).await.unwrap();
    let r = ua.recv_final("INVITE", 1, SHORT).await.unwrap();
    assert_eq!(r.status(), Some(400), "INVITE without Contact:\n{}", r.text);
    ua.send(edge, &dlg.ack_non_2xx(&r)).await.unwrap();
    let mut client = AcdClient::connect(&acd.grpc_url()).await.unwrap();
    let st = client.status().await.unwrap();
    assert_eq!(
        st.edge.map(|e| e.active_calls),
        Some(0),
        "a call was set up: {st:?}"
    );
}

async fn options_lists_capabilities(env: &TestEnv) {
    let edge: SocketAddr = env.sip_addr().parse().unwrap();
    let mut ua = RawUa::udp(env.ports.sipp(6).sip).await.unwrap();
    let mut dlg = CallerDialog::new(&ua, edge, "5550100", "e2e-options");
    // An out-of-dialog OPTIONS: no To tag.
    let req = dlg
        .request_as("OPTIONS", 1, "e2e-opt", "", None)
        .replace(";tag=\r\n", "\r\n")
        .replace(
            "Content-Length: 0",
            "Accept: application/sdp\r\nContent-Length: 0",
        );
    ua.send(edge, &req).await.unwrap();
    let r = ua.recv_final("OPTIONS", 1, SHORT).await.unwrap();
    assert_eq!(r.status(), Some(200), "OPTIONS:\n{}", r.text);
    let allow = list(headers(&r.text, "Allow"));
    for m in ["INVITE", "ACK", "BYE", "CANCEL", "OPTIONS"] {
        assert!(
            allow.iter().any(|a| a == m),
            "Allow lacks {m}: {allow:?}\n{}",
            r.text
        );
    }
    let accept = list(headers(&r.text, "Accept"));
    assert!(
        accept.iter().any(|a| a == "APPLICATION/SDP"),
        "Accept lacks application/sdp: {accept:?}\n{}",
        r.text
    );
    let supported = headers(&r.text, "Supported");
    assert!(!supported.is_empty(), "no Supported header:\n{}", r.text);
}

#[tokio::test]
async fn contactless_invite_options_and_late_offer() {
    let env = TestEnv::new("sip_requests_late_offer", 44);
    let mut acd = env.start_run().await.unwrap();
    contactless_invite_gets_400(&env, &acd).await;
    options_lists_capabilities(&env).await;

    // Late offer: SIPp checks that the 200 offers PCMU and PCMA; its ACK
    // answers PCMA only, with media to the observer; it hangs up after 8 s,
    // so the prompt (2.5 s from the answer) is awaited for 7 s.
    let caller = RtpObserver::bind("caller", env.ports.observer(0))
        .await
        .unwrap();
    let call = trunk(
        &env,
        "trunk-late-offer",
        "trunk_late_offer.xml",
        3,
        "5550100",
        caller.port(),
    )
    .pause_ms(8000)
    .spawn(&env)
    .await
    .unwrap();
    // Media follows the ACK's SDP (MediaCommand::Update in the edge's media
    // task): the welcome prompt, in PCMA, at the answer's port.
    let heard = caller
        .wait_for("50 PCMA packets", Duration::from_secs(7), |s| s.pt(8) >= 50)
        .await;
    call.wait().await.assert_success(1);
    let mut client = AcdClient::connect(&acd.grpc_url()).await.unwrap();
    client
        .await_status("without calls", SHORT, |s| {
            s.edge.as_ref().is_some_and(|e| e.active_calls == 0)
        })
        .await
        .unwrap();
    // MEDIA-UPDATE: fails until the edge's media task follows
    // MediaCommand::Update (the caller's address and codec from the ACK).
    let heard = heard.unwrap_or_else(|e| {
        panic!("late offer: no prompt at the port of the ACK's SDP (media does not follow MediaCommand::Update yet?): {e}")
    });
    assert_eq!(
        heard.pt(0),
        0,
        "PCMU sent although the answer chose PCMA: {heard:?}"
    );
    acd.assert_running();
}

/// trunk_late_offer.xml against a SIPp stand-in for the edge that offers
/// `codecs` in its 200, on SIPp slots `(edge, trunk)` and RTP observer
/// `observer` of block 44: each test its own, disjoint from the test above,
/// since the tests of one file run in parallel.
async fn late_offer_scenario(
    name: &str,
    codecs: &str,
    (edge_slot, trunk_slot, observer): (u16, u16, u16),
) -> (SippOutcome, SippRun) {
    let env = TestEnv::new(name, 44);
    let edge = SippCmd::new(
        "fake-edge",
        "validate/fake_edge_late_offer.xml",
        env.ports.sipp(edge_slot),
    )
    .key("codecs", codecs)
    .limit(Duration::from_secs(20))
    .spawn(&env)
    .await
    .unwrap();
    let out = SippCmd::new("trunk", "trunk_late_offer.xml", env.ports.sipp(trunk_slot))
        .remote(format!("127.0.0.1:{}", env.ports.sipp(edge_slot).sip))
        .service("5550100")
        .key("caller", "0611223344")
        .key("rtpport", env.ports.observer(observer))
        .pause_ms(200)
        .limit(Duration::from_secs(20))
        .spawn(&env)
        .await
        .unwrap()
        .wait()
        .await;
    (out, edge)
}

#[tokio::test]
async fn late_offer_scenario_passes_against_an_offer_of_both_laws() {
    let (trunk, edge) = late_offer_scenario("sipp_trunk_late_offer", "0 8 101", (7, 8, 7)).await;
    trunk.assert_success(1);
    edge.wait().await.assert_success(1);
}

#[tokio::test]
async fn late_offer_scenario_fails_on_an_offer_without_pcma() {
    let (trunk, _edge) =
        late_offer_scenario("sipp_trunk_late_offer_pcmu_only", "0 101", (4, 9, 6)).await;
    trunk.assert_failure();
}
