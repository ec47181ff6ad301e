//! Live hand-over (`--take-over`): a new process takes the sockets and the
//! calls of the running one, which exits 0. A bridged call keeps its RTP
//! (the largest inter-packet gap at each receiver is printed and bounded),
//! a queued caller keeps its music and later reaches an agent, the bridged
//! call's BYE after the hand-over is answered and ends both legs.

use std::time::Duration;

use acd_tests::flows::{agent_phone, register, trunk};
use acd_tests::proto::AgentState;
use acd_tests::{AcdClient, AcdProcess, RtpObserver, TestEnv, LONG, SHORT};

const CALLER_SSRC: u32 = 0xCA11_0A01;
const AGENT_SSRC: u32 = 0xA6E7_0A01;
/// Generous for a loaded 2-core machine; the goal is one packet interval
/// (measured: about 20-30 ms, see BENCHMARKS.md).
const MAX_GAP: Duration = Duration::from_millis(100);

enum Mode {
    Run,
    Edge,
}

fn s(v: impl ToString) -> String {
    v.to_string()
}

/// The serving process(es): the one handed over first, the others after.
struct Site {
    edge: AcdProcess,
    /// `acd edge` mode: distributor and IVR runner.
    _others: Vec<AcdProcess>,
    /// Where AgentService lives.
    api: String,
    dist_url: String,
    ivr_url: String,
}

async fn start(env: &TestEnv, mode: &Mode, extra: &[String]) -> Site {
    match mode {
        Mode::Run => {
            let edge = env.start_run_named("acd-run-old", extra).await.unwrap();
            let api = edge.grpc_url();
            Site {
                edge,
                _others: vec![],
                dist_url: api.clone(),
                ivr_url: api.clone(),
                api,
            }
        }
        Mode::Edge => {
            let dist = env.start_distributor("distributor", 1, None).await.unwrap();
            let ivr = env.start_ivr("ivr", 2).await.unwrap();
            let (dist_url, ivr_url) = (dist.grpc_url(), ivr.grpc_url());
            let edge = env
                .start_edge_with("edge-old", 0, &dist_url, &[ivr_url.clone()], extra)
                .await
                .unwrap();
            Site {
                edge,
                api: dist_url.clone(),
                _others: vec![dist, ivr],
                dist_url,
                ivr_url,
            }
        }
    }
}

/// The new process's name (its log is `<name>.stderr.log`).
fn new_name(mode: &Mode) -> &'static str {
    match mode {
        Mode::Run => "acd-run-new",
        Mode::Edge => "edge-new",
    }
}

/// The phases the new process logged ("hand-over phases: asked=… done=…").
fn phase_line(env: &TestEnv, name: &str) -> String {
    let log = std::fs::read_to_string(env.log_path(&format!("{name}.stderr.log")));
    log.unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.split_once("hand-over phases: ")
                .map(|(_, p)| p.to_string())
        })
        .unwrap_or_else(|| "(no phase line logged)".into())
}

async fn take_over(env: &TestEnv, mode: &Mode, site: &Site, extra: &[String]) -> AcdProcess {
    match mode {
        Mode::Run => env.start_run_named(new_name(mode), extra).await.unwrap(),
        Mode::Edge => env
            .start_edge_with(
                new_name(mode),
                0,
                &site.dist_url,
                &[site.ivr_url.clone()],
                extra,
            )
            .await
            .unwrap(),
    }
}

async fn hand_over_keeps_calls(name: &str, block: u16, mode: Mode) {
    let env = TestEnv::new(name, block);
    let sock = env.log_path("handover.sock");
    let serve = [s("--handover-socket"), s(sock.display())];
    let mut site = start(&env, &mode, &serve).await;
    let mut client = AcdClient::connect(&site.api).await.unwrap();
    let caller = RtpObserver::bind("caller", env.ports.observer(0))
        .await
        .unwrap();
    let agent_rtp = RtpObserver::bind("agent", env.ports.observer(1))
        .await
        .unwrap();
    let queued_rtp = RtpObserver::bind("queued", env.ports.observer(2))
        .await
        .unwrap();
    let carol_rtp = RtpObserver::bind("carol", env.ports.observer(3))
        .await
        .unwrap();

    // Alice answers and hangs up 12 s later, well after the hand-over.
    let alice_phone = agent_phone(&env, "agent-1001", 1, agent_rtp.port(), Some(12_000)).await;
    register(&env, 2, "1001", "secret1001", env.ports.sipp(1).sip)
        .await
        .assert_success(1);
    client.login("alice", "1001").await.unwrap();
    let mut watch = client.watch("alice").await.unwrap();
    client.ready("alice").await.unwrap();
    watch.await_state(AgentState::Ready, SHORT).await.unwrap();

    let bridged = trunk(
        &env,
        "trunk-bridged",
        "trunk_call.xml",
        3,
        "5550100",
        caller.port(),
    )
    .spawn(&env)
    .await
    .unwrap();
    watch.await_offer(LONG).await.unwrap();
    watch.await_state(AgentState::OnCall, LONG).await.unwrap();

    // A second caller waits in the queue with music.
    let queued = trunk(
        &env,
        "trunk-queued",
        "trunk_call.xml",
        4,
        "5550100",
        queued_rtp.port(),
    )
    .spawn(&env)
    .await
    .unwrap();
    client
        .await_queue("sales", "waiting = 1", LONG, |q| q.waiting == 1)
        .await
        .unwrap();
    queued_rtp.await_g711(10, LONG).await.unwrap();

    // RTP both ways over the bridged call for 3 s, the hand-over inside.
    let edge_caller_leg = caller.last_source().expect("edge sent RTP to the caller");
    // The agent's phone sends nothing: the caller's first packets show the
    // edge's agent leg.
    caller
        .send_tagged(edge_caller_leg, CALLER_SSRC, 5)
        .await
        .unwrap();
    agent_rtp.await_from(CALLER_SSRC, 3, SHORT).await.unwrap();
    let edge_agent_leg = agent_rtp.last_source().expect("edge sent RTP to the agent");
    let flows = async {
        tokio::join!(
            caller.send_tagged(edge_caller_leg, CALLER_SSRC, 150),
            agent_rtp.send_tagged(edge_agent_leg, AGENT_SSRC, 150),
        )
    };
    let hand_over = async {
        agent_rtp.await_from(CALLER_SSRC, 25, SHORT).await.unwrap();
        caller.await_from(AGENT_SSRC, 20, SHORT).await.unwrap();
        agent_rtp.reset_gap();
        caller.reset_gap();
        queued_rtp.reset_gap();
        let started = std::time::Instant::now();
        let taker = [s("--take-over"), s(sock.display())];
        let new = take_over(&env, &mode, &site, &taker).await;
        let status = site.edge.wait_exit(LONG).await.unwrap();
        eprintln!(
            "[e2e] {name}: new process ready {:?} after the take-over started; old exited {status}",
            started.elapsed()
        );
        assert!(status.success(), "the old process exits 0: {status}");
        new
    };
    let ((a, b), mut new) = tokio::join!(flows, hand_over);
    a.unwrap();
    b.unwrap();
    let to_agent = agent_rtp.await_from(CALLER_SSRC, 145, SHORT).await.unwrap();
    let to_caller = caller.await_from(AGENT_SSRC, 140, SHORT).await.unwrap();
    let music = queued_rtp.stats();
    eprintln!(
        "[e2e] {name}: largest RTP gap across the hand-over: caller->agent {:?}, agent->caller {:?}, music {:?}",
        to_agent.max_gap, to_caller.max_gap, music.max_gap
    );
    eprintln!(
        "[e2e] {name}: phases (ms from the old process pausing): {}",
        phase_line(&env, new_name(&mode))
    );
    assert!(
        to_agent.max_gap < MAX_GAP,
        "caller->agent gap {:?}",
        to_agent.max_gap
    );
    assert!(
        to_caller.max_gap < MAX_GAP,
        "agent->caller gap {:?}",
        to_caller.max_gap
    );
    // The queued caller still hears music from the new process.
    let heard = music.g711();
    queued_rtp.await_g711(heard + 25, SHORT).await.unwrap();
    assert!(music.max_gap < MAX_GAP, "music gap {:?}", music.max_gap);

    // The agent's view goes on (in `acd run` the old stream ended with the
    // old process: a new client on the same address reaches the new one).
    if matches!(mode, Mode::Run) {
        client = AcdClient::connect(&new.grpc_url()).await.unwrap();
        watch = client.watch("alice").await.unwrap();
    }
    assert_eq!(
        client.get_agent("alice").await.unwrap().state(),
        AgentState::OnCall,
        "alice is still on the call"
    );

    // Alice's BYE after the hand-over ends both legs.
    alice_phone.wait().await.assert_success(1);
    bridged.wait().await.assert_success(1);
    watch.await_state(AgentState::WrapUp, LONG).await.unwrap();

    // The queued caller reaches carol.
    let carol_phone = agent_phone(&env, "agent-1003", 5, carol_rtp.port(), Some(2_000)).await;
    register(&env, 6, "1003", "secret1003", env.ports.sipp(5).sip)
        .await
        .assert_success(1);
    client.login("carol", "1003").await.unwrap();
    client.ready("carol").await.unwrap();
    carol_phone.wait().await.assert_success(1);
    queued.wait().await.assert_success(1);
    let q = client
        .await_queue("sales", "answered = 2", LONG, |q| q.answered == 2)
        .await
        .unwrap();
    assert_eq!(q.waiting, 0, "{q:?}");
    if matches!(mode, Mode::Edge) {
        // One stream from login to wrap-up: nothing skipped or repeated.
        let states = watch.states();
        let on_call = states.iter().filter(|s| **s == AgentState::OnCall).count();
        assert_eq!(on_call, 1, "alice's states: {states:?}");
    }
    new.assert_running();
}

#[tokio::test]
async fn run_hands_over_a_bridged_and_a_queued_call() {
    hand_over_keeps_calls("handover_run", 69, Mode::Run).await;
}

#[tokio::test]
async fn edge_hands_over_a_bridged_and_a_queued_call() {
    hand_over_keeps_calls("handover_edge", 70, Mode::Edge).await;
}
