//! Validates every SIPp scenario of tests/sipp/ against a SIPp stand-in for
//! the edge (tests/sipp/validate/), without acd: the scenarios, the SIPp
//! runner and the RtpObserver must pass here, and fail where they should.

use std::time::Duration;

use acd_tests::{RtpObserver, SippCmd, TestEnv};

const SIPP_LIMIT: Duration = Duration::from_secs(30);

async fn fake_edge(env: &TestEnv, scenario: &str, tcp: bool) -> acd_tests::SippRun {
    let mut cmd = SippCmd::new(
        "fake-edge",
        &format!("validate/{scenario}"),
        env.ports.sipp(0),
    )
    .limit(SIPP_LIMIT)
    .pause_ms(1500);
    if tcp {
        cmd = cmd.tcp();
    }
    cmd.spawn(env).await.expect("fake edge")
}

fn fake_addr(env: &TestEnv) -> String {
    format!("127.0.0.1:{}", env.ports.sipp(0).sip)
}

async fn register(block: u16, scenario: &str, password: &str, expect_success: bool) {
    let env = TestEnv::new(
        &format!("sipp_{}_{password}", scenario.trim_end_matches(".xml")),
        block,
    );
    let registrar = fake_edge(&env, "fake_registrar.xml", false).await;
    let reg = SippCmd::new("register", scenario, env.ports.sipp(1))
        .remote(fake_addr(&env))
        .service("1001")
        .auth("1001", password)
        .key("contact_port", env.ports.sipp(2).sip)
        .arg("-default_behaviors")
        .arg("all,-bye")
        .limit(SIPP_LIMIT)
        .spawn(&env)
        .await
        .unwrap()
        .wait()
        .await;
    if expect_success {
        reg.assert_success(1);
    } else {
        reg.assert_failure();
    }
    let _ = registrar.wait().await;
}

#[tokio::test]
async fn register_right_password_succeeds() {
    register(0, "register.xml", "secret1001", true).await;
}

#[tokio::test]
async fn register_wrong_password_fails() {
    register(1, "register.xml", "wrong", false).await;
}

#[tokio::test]
async fn register_wrong_password_scenario_accepts_refusal() {
    register(2, "register_wrong_password.xml", "wrong", true).await;
}

#[tokio::test]
async fn register_wrong_password_scenario_counts_200_as_failure() {
    register(3, "register_wrong_password.xml", "secret1001", false).await;
}

async fn trunk_call(block: u16, tcp: bool) {
    let env = TestEnv::new(
        if tcp {
            "sipp_trunk_call_tcp"
        } else {
            "sipp_trunk_call"
        },
        block,
    );
    let caller = RtpObserver::bind("caller", env.ports.observer(0))
        .await
        .unwrap();
    let edge = fake_edge(&env, "fake_edge_answer.xml", tcp).await;
    let mut cmd = SippCmd::new("trunk", "trunk_call.xml", env.ports.sipp(1))
        .remote(fake_addr(&env))
        .service("5550100")
        .key("caller", "0611223344")
        .key("rtpport", caller.port())
        .limit(SIPP_LIMIT);
    if tcp {
        cmd = cmd.tcp();
    }
    let trunk = cmd.spawn(&env).await.unwrap();
    // The stand-in plays g711a.pcap (PCMA) to the address of our SDP offer.
    let st = caller
        .await_g711(50, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(st.pt(8) >= 50, "expected PCMA from the pcap: {st:?}");
    let src = caller.last_source().unwrap();
    assert_eq!(
        src.port(),
        env.ports.sipp(0).media,
        "RTP should come from the stand-in's media port"
    );
    trunk.wait().await.assert_success(1);
    edge.wait().await.assert_success(1);
}

#[tokio::test]
async fn trunk_call_udp() {
    trunk_call(4, false).await;
}

#[tokio::test]
async fn trunk_call_tcp() {
    trunk_call(5, true).await;
}

#[tokio::test]
async fn trunk_call_hangup() {
    let env = TestEnv::new("sipp_trunk_call_hangup", 6);
    let edge = fake_edge(&env, "fake_edge_byed.xml", false).await;
    let trunk = SippCmd::new("trunk", "trunk_call_hangup.xml", env.ports.sipp(1))
        .remote(fake_addr(&env))
        .service("5550100")
        .key("caller", "0611223344")
        .key("rtpport", env.ports.observer(0))
        .pause_ms(500)
        .limit(SIPP_LIMIT)
        .spawn(&env)
        .await
        .unwrap();
    trunk.wait().await.assert_success(1);
    edge.wait().await.assert_success(1);
}

#[tokio::test]
async fn trunk_cancel() {
    let env = TestEnv::new("sipp_trunk_cancel", 7);
    // The stand-in also checks that CANCEL and ACK carry the INVITE's branch.
    let edge = fake_edge(&env, "fake_edge_early.xml", false).await;
    let trunk = SippCmd::new("trunk", "trunk_cancel.xml", env.ports.sipp(1))
        .remote(fake_addr(&env))
        .service("5550200")
        .key("caller", "0611223344")
        .key("rtpport", env.ports.observer(0))
        .pause_ms(500)
        .limit(SIPP_LIMIT)
        .spawn(&env)
        .await
        .unwrap();
    trunk.wait().await.assert_success(1);
    edge.wait().await.assert_success(1);
}

#[tokio::test]
async fn trunk_404() {
    let env = TestEnv::new("sipp_trunk_404", 8);
    let edge = fake_edge(&env, "fake_edge_404.xml", false).await;
    let trunk = SippCmd::new("trunk", "trunk_404.xml", env.ports.sipp(1))
        .remote(fake_addr(&env))
        .service("5559999")
        .key("caller", "0611223344")
        .key("rtpport", env.ports.observer(0))
        .limit(SIPP_LIMIT)
        .spawn(&env)
        .await
        .unwrap();
    trunk.wait().await.assert_success(1);
    edge.wait().await.assert_success(1);
}

#[tokio::test]
async fn trunk_404_fails_on_an_answer() {
    // The 404 scenario against an answering stand-in must fail: it can fail.
    let env = TestEnv::new("sipp_trunk_404_negative", 9);
    let _edge = fake_edge(&env, "fake_edge_byed.xml", false).await;
    let trunk = SippCmd::new("trunk", "trunk_404.xml", env.ports.sipp(1))
        .remote(fake_addr(&env))
        .service("5550100")
        .key("caller", "0611223344")
        .key("rtpport", env.ports.observer(0))
        .limit(SIPP_LIMIT)
        .spawn(&env)
        .await
        .unwrap();
    trunk.wait().await.assert_failure();
}

async fn agent(block: u16, scenario: &str, fake: &str) {
    let env = TestEnv::new(
        &format!("sipp_{}", scenario.trim_end_matches(".xml")),
        block,
    );
    let obs = RtpObserver::bind("agent", env.ports.observer(0))
        .await
        .unwrap();
    // The agent's UAS is spawned first and waited on until bound.
    let agent = SippCmd::new("agent", scenario, env.ports.sipp(1))
        .key("rtpport", obs.port())
        .pause_ms(1500)
        .limit(SIPP_LIMIT)
        .spawn(&env)
        .await
        .unwrap();
    let edge = SippCmd::new("fake-edge", &format!("validate/{fake}"), env.ports.sipp(0))
        .remote(format!("127.0.0.1:{}", env.ports.sipp(1).sip))
        .pause_ms(1500)
        .limit(SIPP_LIMIT)
        .spawn(&env)
        .await
        .unwrap();
    // The stand-in plays PCMA to the port of the agent's SDP answer.
    obs.await_g711(50, Duration::from_secs(10)).await.unwrap();
    agent.wait().await.assert_success(1);
    edge.wait().await.assert_success(1);
}

#[tokio::test]
async fn agent_answer() {
    agent(10, "agent_answer.xml", "fake_edge_call_agent.xml").await;
}

#[tokio::test]
async fn agent_answer_hangup() {
    agent(
        11,
        "agent_answer_hangup.xml",
        "fake_edge_call_agent_byed.xml",
    )
    .await;
}

/// Runs `trunk_503.xml` against the stand-in `fake` (blocks 31-32).
async fn run_trunk_503(block: u16, name: &str, fake: &str) -> acd_tests::SippOutcome {
    let env = TestEnv::new(name, block);
    let _edge = fake_edge(&env, fake, false).await;
    SippCmd::new("trunk", "trunk_503.xml", env.ports.sipp(1))
        .remote(fake_addr(&env))
        .service("5550100")
        .key("caller", "0611223344")
        .key("rtpport", env.ports.observer(0))
        .limit(SIPP_LIMIT)
        .spawn(&env)
        .await
        .unwrap()
        .wait()
        .await
}

#[tokio::test]
async fn trunk_503() {
    run_trunk_503(31, "sipp_trunk_503", "fake_edge_503.xml")
        .await
        .assert_success(1);
}

#[tokio::test]
async fn trunk_503_fails_without_retry_after() {
    // The scenario checks the header: a bare 503 must fail it.
    run_trunk_503(
        32,
        "sipp_trunk_503_negative",
        "fake_edge_503_no_retry_after.xml",
    )
    .await
    .assert_failure();
}

/// `trunk_call_or_503.xml` (load test, overload.rs) against three stand-ins
/// in turn (block 56): answered and hung up by the edge, refused with 503 +
/// Retry-After (both successful, told apart by the message counts), and a
/// bare 503 (failed).
#[tokio::test]
async fn trunk_call_or_503_tells_answered_from_refused() {
    let env = TestEnv::new("sipp_trunk_call_or_503", 56);
    let run = |name: &'static str| {
        SippCmd::new(name, "trunk_call_or_503.xml", env.ports.sipp(1))
            .remote(fake_addr(&env))
            .service("5550100")
            .key("caller", "0611223344")
            .key("rtpport", env.ports.observer(0))
            .trace_counts()
            .limit(SIPP_LIMIT)
    };
    let cases = [
        ("fake_edge_answer.xml", "answered", Some((1, 0))),
        ("fake_edge_503.xml", "refused", Some((0, 1))),
        ("fake_edge_503_no_retry_after.xml", "bare_503", None),
    ];
    for (fake, name, counts) in cases {
        let edge = fake_edge(&env, fake, false).await;
        let out = run(name).spawn(&env).await.unwrap().wait().await;
        match counts {
            Some((ok, refused)) => {
                out.assert_success(1);
                assert_eq!(out.count("_200_Recv"), Some(ok), "{name}: {:?}", out.counts);
                assert_eq!(
                    out.count("_503_Recv"),
                    Some(refused),
                    "{name}: {:?}",
                    out.counts
                );
            }
            None => out.assert_failure(),
        }
        let _ = edge.stop_and_wait().await;
    }
}

/// An agent scenario that never answers, against a stand-in edge (UAC).
async fn agent_no_answer(block: u16, scenario: &str, fake: &str) {
    let env = TestEnv::new(
        &format!("sipp_{}", scenario.trim_end_matches(".xml")),
        block,
    );
    let agent = SippCmd::new("agent", scenario, env.ports.sipp(1))
        .key("rtpport", env.ports.observer(0))
        .limit(SIPP_LIMIT)
        .spawn(&env)
        .await
        .unwrap();
    let edge = SippCmd::new("fake-edge", &format!("validate/{fake}"), env.ports.sipp(0))
        .remote(format!("127.0.0.1:{}", env.ports.sipp(1).sip))
        .pause_ms(1000)
        .limit(SIPP_LIMIT)
        .spawn(&env)
        .await
        .unwrap();
    agent.wait().await.assert_success(1);
    edge.wait().await.assert_success(1);
}

#[tokio::test]
async fn agent_reject() {
    agent_no_answer(33, "agent_reject.xml", "fake_edge_call_agent_rejected.xml").await;
}

#[tokio::test]
async fn agent_ring_forever() {
    agent_no_answer(34, "agent_ring_forever.xml", "fake_edge_cancel_agent.xml").await;
}

#[tokio::test]
async fn agent_ring_forever_fails_without_cancel() {
    // Against a stand-in that waits for a 200 and never CANCELs
    // (fake_edge_call_agent.xml), the ringing phone must not count a
    // success: it is stopped by its limit still waiting for the CANCEL.
    let env = TestEnv::new("sipp_agent_ring_forever_negative", 35);
    let agent = SippCmd::new("agent", "agent_ring_forever.xml", env.ports.sipp(1))
        .limit(Duration::from_secs(3))
        .spawn(&env)
        .await
        .unwrap();
    let _edge = SippCmd::new(
        "fake-edge",
        "validate/fake_edge_call_agent.xml",
        env.ports.sipp(0),
    )
    .remote(format!("127.0.0.1:{}", env.ports.sipp(1).sip))
    .limit(Duration::from_secs(3))
    .spawn(&env)
    .await
    .unwrap();
    let out = agent.wait().await;
    assert_ne!(
        out.successful,
        Some(1),
        "agent_ring_forever succeeded without a CANCEL: {out:?}"
    );
}
