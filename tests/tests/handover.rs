//! Live hand-over (`--take-over`): a new process takes the sockets and the
//! calls of the running one, which exits 0. A bridged call keeps its RTP
//! (the largest inter-packet gap at each receiver is printed and bounded),
//! a queued caller keeps its music and later reaches an agent, the bridged
//! call's BYE after the hand-over is answered and ends both legs.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use acd_tests::flows::{agent_phone, register, trunk};
use acd_tests::proto::AgentState;
use acd_tests::sipp::SippCmd;
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
                .start_edge_with(
                    "edge-old",
                    0,
                    &dist_url,
                    std::slice::from_ref(&ivr_url),
                    extra,
                )
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
                std::slice::from_ref(&site.ivr_url),
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

/// Every RTP stream arriving at one port, told apart by source (each call's
/// RTP port on the edge): packets and the largest inter-arrival gap since
/// [`Streams::mark`]. A plain thread reads, so that the test's runtime does
/// not add its own gaps.
struct Streams {
    port: u16,
    state: Arc<Mutex<HashMap<SocketAddr, Stream>>>,
    stop: Arc<AtomicBool>,
}

#[derive(Default, Clone)]
struct Stream {
    packets: u64,
    at_mark: u64,
    last: Option<Instant>,
    max_gap: Duration,
}

impl Streams {
    fn bind(port: u16) -> Streams {
        let sock = std::net::UdpSocket::bind(("127.0.0.1", port)).expect("bind the RTP observer");
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("read timeout");
        let state: Arc<Mutex<HashMap<SocketAddr, Stream>>> = Arc::default();
        let stop: Arc<AtomicBool> = Arc::default();
        let (st, halt) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !halt.load(Ordering::Relaxed) {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                if n < 12 {
                    continue; // not RTP
                }
                let now = Instant::now();
                let mut map = st.lock().unwrap_or_else(|p| p.into_inner());
                let s = map.entry(from).or_default();
                if let Some(last) = s.last {
                    s.max_gap = s.max_gap.max(now - last);
                }
                s.last = Some(now);
                s.packets += 1;
            }
        });
        Streams { port, state, stop }
    }

    fn snapshot(&self) -> Vec<Stream> {
        let map = self.state.lock().unwrap_or_else(|p| p.into_inner());
        map.values().cloned().collect()
    }

    /// Counts and gaps start afresh from here.
    fn mark(&self) {
        let mut map = self.state.lock().unwrap_or_else(|p| p.into_inner());
        for s in map.values_mut() {
            s.at_mark = s.packets;
            s.max_gap = Duration::ZERO;
        }
    }

    /// Waits (bounded) until `streams` streams each have `packets` packets
    /// since the mark.
    async fn await_all(&self, streams: usize, packets: u64, within: Duration) -> Vec<Stream> {
        let deadline = Instant::now() + within;
        loop {
            let now = self.snapshot();
            let full = now
                .iter()
                .filter(|s| s.packets - s.at_mark >= packets)
                .count();
            if full >= streams {
                return now;
            }
            assert!(
                Instant::now() < deadline,
                "RTP on port {}: {full} of {streams} streams have {packets} packets since the mark \
                 ({} streams seen) after {within:?}",
                self.port,
                now.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Streams {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A `key=value` field of the first log line of `name` containing `needle`.
fn log_field(env: &TestEnv, name: &str, needle: &str, key: &str) -> Option<String> {
    let log = std::fs::read_to_string(env.log_path(&format!("{name}.stderr.log"))).ok()?;
    let line = log.lines().find(|l| l.contains(needle))?;
    let start = line.find(&format!(" {key}="))? + key.len() + 2;
    line[start..].split_whitespace().next().map(str::to_string)
}

/// `acd run` with `calls` trunk callers (SIPp, `rate` calls/s) queued and
/// hearing music (no agent logs in), then a take-over: every caller's music
/// goes on (the largest gap per call is reported) and every caller's BYE
/// after it gets its 200. `rtp`: the edge's RTP range (4 ports a call).
async fn hand_over_many(
    name: &str,
    block: u16,
    (calls, rate): (u32, u32),
    rtp: (u16, u16),
    max_gap: Duration,
) {
    let env = TestEnv::new(name, block);
    let sock = env.log_path("handover.sock");
    // A loaded debug build runs its loop late with hundreds of streams; the
    // default lateness cap would shed the calls this test needs.
    let config = env.write_config("[admission]\nmax_lateness_ms = 5000\n");
    let mut args = env.run_args();
    for (flag, value) in [
        ("--config", config.display().to_string()),
        ("--rtp-ports", format!("{}-{}", rtp.0, rtp.1)),
    ] {
        let i = args
            .iter()
            .position(|a| a == flag)
            .expect("flag in run_args")
            + 1;
        args[i] = value;
    }
    let with = |extra: [String; 2]| -> Vec<String> { args.iter().cloned().chain(extra).collect() };
    let streams = Streams::bind(env.ports.observer(0));
    let old_args = with([s("--handover-socket"), s(sock.display())]);
    let mut old = AcdProcess::spawn(&env, "acd-run-old", &old_args)
        .await
        .unwrap();
    let mut client = AcdClient::connect(&old.grpc_url()).await.unwrap();

    // Each caller hangs up on its own `hold` after its 200: long enough for
    // all of them to be queued, the hand-over and a few seconds after it.
    let setup = Duration::from_millis(u64::from(calls) * 1000 / u64::from(rate));
    let hold = setup + Duration::from_secs(15);
    let callers = SippCmd::new("callers", "trunk_call_hangup.xml", env.ports.sipp(0))
        .remote(env.sip_addr())
        .service("5550100")
        .key("caller", "0611223344")
        .key("rtpport", env.ports.observer(0))
        .rate(rate, calls)
        .pause_ms(hold.as_millis() as u64)
        .limit(setup + hold + Duration::from_secs(60))
        .spawn(&env)
        .await
        .unwrap();
    let n = calls as usize;
    client
        .await_queue("sales", "every caller waiting", setup + LONG, |q| {
            q.waiting == calls
        })
        .await
        .unwrap();
    // Music to every caller before the hand-over.
    streams.mark();
    streams.await_all(n, 10, SHORT).await;

    streams.mark();
    let started = Instant::now();
    let new_args = with([s("--take-over"), s(sock.display())]);
    let mut new = AcdProcess::spawn(&env, "acd-run-new", &new_args)
        .await
        .unwrap();
    let status = old.wait_exit(LONG).await.unwrap();
    assert!(status.success(), "the old process exits 0: {status}");
    let ready = started.elapsed();
    // One second of music to every caller after it.
    let after = streams.await_all(n, 50, SHORT).await;
    let mut gaps: Vec<Duration> = after
        .iter()
        .filter(|s| s.packets > s.at_mark)
        .map(|s| s.max_gap)
        .collect();
    gaps.sort();
    let pct = |p: usize| gaps[(gaps.len() - 1) * p / 100];
    let field = |needle, key| log_field(&env, "acd-run-new", needle, key).unwrap_or_default();
    eprintln!(
        "[e2e] {name}: {calls} calls handed over: descriptors {}, payload {} bytes; \
         new process READY {ready:?} after it started",
        field("hand-over received", "descriptors"),
        field("hand-over received", "bytes"),
    );
    eprintln!(
        "[e2e] {name}: phases (ms from the old process pausing): {}",
        phase_line(&env, "acd-run-new")
    );
    eprintln!(
        "[e2e] {name}: largest music gap per call: median {:?}, p99 {:?}, max {:?}",
        pct(50),
        pct(99),
        pct(100)
    );
    assert_eq!(gaps.len(), n, "every call's music goes on");
    assert!(pct(100) < max_gap, "largest gap {:?}", pct(100));

    // Every caller's BYE after the hand-over gets its 200.
    callers.wait().await.assert_success(u64::from(calls));
    let mut client = AcdClient::connect(&new.grpc_url()).await.unwrap();
    let q = client
        .await_queue("sales", "empty", SHORT, |q| q.waiting == 0)
        .await
        .unwrap();
    eprintln!("[e2e] {name}: after the calls: {q:?}");
    new.assert_running();
}

/// 50 queued callers: RTP 15900-16199 (block 89's range and block 90's
/// whole block, which this test also owns): 75 calls of room.
#[tokio::test]
async fn run_hands_over_fifty_queued_calls() {
    // Measured about 70 ms; generous for the 2 loaded cores the test's own
    // reader shares.
    let max_gap = Duration::from_millis(300);
    hand_over_many("handover_many_50", 89, (50, 25), (15_900, 16_199), max_gap).await;
}

/// The load run (block 72, the RTP range outside every test block, in
/// 36000-40199 by default: 1050 calls of room). Not in the suite:
/// `ACD_HANDOVER_CALLS=1000 ACD_HANDOVER_RATE=50 cargo nextest run -p
/// acd-tests --test handover --run-ignored only --no-capture`.
#[tokio::test]
#[ignore = "load run: minutes of CPU, see BENCHMARKS.md"]
async fn run_hands_over_many_queued_calls() {
    let var = |k: &str, default: u32| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let calls = var("ACD_HANDOVER_CALLS", 1000);
    let rate = var("ACD_HANDOVER_RATE", 50);
    let rtp_min = var("ACD_HANDOVER_RTP_MIN", 36_000) as u16;
    // 4 ports a call and the 2 % the edge keeps free.
    let rtp_max = rtp_min + (calls * 4 * 102 / 100 + 8) as u16;
    // The transfer grows with the calls (measured about 0.7 ms a call in a
    // debug build); a bound that still fails if music stops for good.
    let max_gap = Duration::from_millis(100 + 2 * u64::from(calls));
    hand_over_many(
        "handover_many",
        72,
        (calls, rate),
        (rtp_min, rtp_max),
        max_gap,
    )
    .await;
}
