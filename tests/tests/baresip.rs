//! A real softphone as the agent's phone: baresip 1.0 registers extension
//! 1003 with digest auth, carol logs in there, a trunk call to the sales DID
//! hears the welcome prompt, is offered to carol, baresip auto-answers and
//! audio flows both ways through the edge's relay until the caller hangs up.
//!
//! Audio is told apart by level, not SSRC (the relay rewrites SSRCs onto each
//! leg's stream): baresip plays a constant +3000 WAV, the caller sends PCMU
//! of constant -7932; the caller's probe decodes what it receives and
//! baresip's `sndfile` module records what it received.

use std::time::Duration;

use acd_tests::baresip::{
    near_level, read_wav_s16, ulaw_decode, write_level_wav, Baresip, BaresipSpec, MediaProbe,
};
use acd_tests::flows::trunk;
use acd_tests::proto::AgentState;
use acd_tests::{AcdClient, TestEnv, LONG, SHORT};

/// What baresip plays (its "microphone"): a constant level.
const AGENT_LEVEL: i16 = 3000;
/// What the caller sends: PCMU bytes all 0x20, i.e. a constant -7932.
const CALLER_BYTE: u8 = 0x20;
const CALLER_SSRC: u32 = 0xCA11_E500;

#[tokio::test]
async fn baresip_agent_answers_trunk_call() {
    let env = TestEnv::new("baresip_agent_answers_trunk_call", 45);
    // baresip 1.0 refuses to register when a SHA-256 challenge is offered
    // at all (see config/acd.toml): offer MD5 only, as the default does.
    let config = env.config_variant(|t| {
        let md5_only = t.replace(
            "algorithms = [\"MD5\", \"SHA-256\"]",
            "algorithms = [\"MD5\"]",
        );
        assert_ne!(md5_only, t, "e2e.toml offers both algorithms");
        md5_only
    });
    let mut acd = env.start_run_with(&config, &[]).await.unwrap();
    let api = acd.grpc_url();
    let mut client = AcdClient::connect(&api).await.unwrap();

    // baresip registers 1003 (digest, realm acd.local) and waits for calls.
    let wav = env.log_path("baresip-source.wav");
    write_level_wav(&wav, AGENT_LEVEL, 30).unwrap();
    let spec = BaresipSpec::new(&env, "agent-1003", "1003", "secret1003", &wav);
    let mut phone = Baresip::spawn(&env, spec).await.unwrap();
    client
        .await_status("showing 1 registration", SHORT, |s| {
            s.edge.as_ref().is_some_and(|e| e.registrations == 1)
        })
        .await
        .unwrap_or_else(|e| panic!("baresip did not register: {e:#}"));
    phone.assert_running();

    client.login("carol", "1003").await.unwrap();
    let mut watch = client.watch("carol").await.unwrap();
    client.ready("carol").await.unwrap();
    watch.await_state(AgentState::Ready, SHORT).await.unwrap();

    // The caller hangs up 8 s after the answer: 2.5 s of welcome prompt, then
    // the offer, baresip's answer and about 5 s of conversation.
    let caller = MediaProbe::bind("caller", env.ports.observer(0))
        .await
        .unwrap();
    let trunk_run = trunk(
        &env,
        "trunk",
        "trunk_call_hangup.xml",
        0,
        "5550100",
        caller.port(),
    )
    .pause_ms(8000)
    .spawn(&env)
    .await
    .unwrap();

    let is_agent =
        |p: &acd_tests::baresip::Packet| p.level.is_some_and(|l| near_level(l, AGENT_LEVEL));
    let prompt = caller
        .await_count("prompt packets", 50, LONG, |p| {
            (p.pt == 0 || p.pt == 8) && !is_agent(p)
        })
        .await
        .unwrap();
    eprintln!("[e2e] caller heard {prompt} prompt packets");
    // The welcome prompt lasts 2.5 s: nobody can have answered yet.
    assert_eq!(
        caller.count(is_agent),
        0,
        "caller heard the agent's audio during the welcome prompt"
    );

    let offer = watch.await_offer(LONG).await.unwrap();
    assert_eq!(offer.queue_id, "sales", "offer: {offer:?}");
    assert_eq!(
        offer.caller.as_ref().map(|c| c.did.as_str()),
        Some("5550100"),
        "offer: {offer:?}"
    );
    let on_call = watch.await_state(AgentState::OnCall, LONG).await.unwrap();
    assert_eq!(on_call.call_id, offer.call_id, "ON_CALL for another call");
    let answered_at = tokio::time::Instant::now();

    // baresip -> edge -> caller.
    let heard = caller
        .await_count("packets of baresip's audio after ON_CALL", 50, SHORT, |p| {
            p.at >= answered_at && is_agent(p)
        })
        .await
        .unwrap();
    eprintln!("[e2e] caller heard {heard} packets of baresip's audio");

    // caller -> edge -> baresip (recorded by sndfile).
    let edge_leg = caller.last_source().expect("edge sent RTP to the caller");
    caller
        .send_level(edge_leg, CALLER_SSRC, CALLER_BYTE, 75)
        .await
        .unwrap();

    // The caller hangs up; the edge ends baresip's call.
    trunk_run.wait().await.assert_success(1);
    watch.await_state(AgentState::WrapUp, SHORT).await.unwrap();
    watch.await_state(AgentState::Ready, SHORT).await.unwrap();

    let after = caller.packets();
    let ssrcs: std::collections::BTreeSet<u32> = after.iter().map(|p| p.ssrc).collect();
    let settled = answered_at + Duration::from_secs(1);
    let other_after_answer = after
        .iter()
        .filter(|p| p.at >= settled && !is_agent(p))
        .count();
    eprintln!(
        "[e2e] caller got {} packets in all ({} of baresip's audio, {other_after_answer} \
         others from 1 s after ON_CALL), SSRCs {ssrcs:x?}",
        after.len(),
        after.iter().filter(|p| is_agent(p)).count()
    );
    assert_eq!(
        other_after_answer, 0,
        "the caller still heard prompt/MOH audio 1 s after ON_CALL"
    );

    // What baresip received, as recorded by its sndfile module.
    let caller_level = ulaw_decode(CALLER_BYTE);
    let deadline = tokio::time::Instant::now() + SHORT;
    let (rec, matching) = loop {
        let rec = phone.received_recordings();
        let matching = rec
            .first()
            .and_then(|p| read_wav_s16(p).ok())
            .map(|s| s.iter().filter(|&&x| near_level(x, caller_level)).count())
            .unwrap_or(0);
        if matching >= 40 * 160 || tokio::time::Instant::now() >= deadline {
            break (rec, matching);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        rec.len(),
        1,
        "expected one sndfile recording of received audio in {}: {rec:?}\n{}",
        phone.dir.display(),
        phone.output()
    );
    assert!(
        matching >= 40 * 160,
        "baresip recorded only {matching} samples of the caller's level {caller_level} in {}",
        rec[0].display()
    );
    eprintln!("[e2e] baresip recorded {matching} samples of the caller's audio");

    let out = phone.output();
    assert!(
        out.contains("Call established"),
        "baresip never established the call:\n{out}"
    );
    phone.assert_running();

    // On SIGTERM baresip unregisters (REGISTER Expires: 0, digest again).
    phone.stop().await;
    client
        .await_status("showing no registration", SHORT, |s| {
            s.edge.as_ref().is_some_and(|e| e.registrations == 0)
        })
        .await
        .unwrap_or_else(|e| panic!("baresip's unregistration was not applied: {e:#}"));
    acd.assert_running();
}
