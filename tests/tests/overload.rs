//! Overload: the trunk offers twice the calls per second the edge admits
//! (`[admission] max_calls_per_second`). The excess must get `503 Service
//! Unavailable` with Retry-After at once, while every admitted call keeps
//! its timing: answered, bridged to an agent, hung up, no retransmissions,
//! every agent READY again, no call left at the edge, and
//! `acd_calls_shed_total` counting exactly the refusals.
//!
//! Rates are small (5 admitted of 10 offered per second) because the RTP
//! range of a port block holds 25 calls (two even ports per call): at ~2.6 s
//! per call (2.5 s prompt, the agent hangs up at once) the admitted calls
//! peak at ~18 simultaneous. `max_calls = 24` is the backstop that keeps a
//! burst from reaching the end of the RTP range (that would be a 503 after
//! allocation, not a shed).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use acd_tests::env::workspace_root;
use acd_tests::flows::{register, trunk};
use acd_tests::metrics::{counter, counter_with, scrape};
use acd_tests::proto::AgentState;
use acd_tests::{AcdClient, SippCmd, TestEnv, SHORT};

/// Admitted new calls per second (token bucket, burst of one second).
const ADMITTED_PER_SECOND: u32 = 5;
/// Offered by the trunk: twice the admitted rate.
const OFFERED_PER_SECOND: u32 = 10;
/// Six seconds of offered load.
const CALLS: u32 = 60;
const MAX_CALLS: u32 = 24;
const AGENTS: u16 = 10;
const FIRST_EXT: u16 = 3001;

fn ext(i: u16) -> String {
    (FIRST_EXT + i).to_string()
}

fn agent(i: u16) -> String {
    format!("o{}", FIRST_EXT + i)
}

/// A site of `AGENTS` agents on `sales` (no wrap-up) and the admission limits
/// under test, written into the log directory.
fn write_config(env: &TestEnv) -> PathBuf {
    let prompts = workspace_root().join("config/prompts");
    let mut t = format!(
        r#"# Written by tests/tests/overload.rs.
[sip]
realm = "acd.local"
udp = "127.0.0.1:5060"
tcp = "127.0.0.1:5060"
public_ip = "127.0.0.1"

[admission]
max_calls = {MAX_CALLS}
max_calls_per_second = {ADMITTED_PER_SECOND}
max_lateness_ms = 100
retry_after_secs = 7

[media]
rtp_port_min = 20000
rtp_port_max = 20999

[grpc]
listen = "127.0.0.1:50051"

[access]
users = [{{ name = "admin", role = "admin", token = "{admin}" }}]

[metrics]
listen = "127.0.0.1:9464"

[distributor]
wrap_up_secs = 0
offer_timeout_secs = 8

[prompts]
welcome = "{welcome}"
moh = "{moh}"

[[queues]]
id = "sales"
skills = {{ sales = 1 }}

[[dids]]
number = "5550100"
flow = "sales"

[flows.sales]
answer = "immediate"
start = "welcome"
fallback_queue = "sales"

[flows.sales.nodes.welcome]
type = "play"
prompt = "welcome"
next = "queue"

[flows.sales.nodes.queue]
type = "enqueue"
queue = "sales"
priority = 0
"#,
        admin = acd_tests::grpc::ADMIN_TOKEN,
        welcome = prompts.join("welcome.wav").display(),
        moh = prompts.join("moh.wav").display(),
    );
    for i in 0..AGENTS {
        t.push_str(&format!(
            "\n[[extensions]]\nnumber = \"{e}\"\npassword = \"ovl{e}\"\n\n[[agents]]\nid = \"{a}\"\nname = \"Agent {e}\"\nskills = {{ sales = 5 }}\n",
            e = ext(i),
            a = agent(i)
        ));
    }
    let path = env.log_path("overload.toml");
    std::fs::write(&path, t).expect("write overload.toml");
    path
}

#[tokio::test]
async fn twice_the_admitted_rate_is_shed_with_503_and_admitted_calls_complete() {
    let env = TestEnv::new("overload", 55);
    let config = write_config(&env);
    let mut acd = env.start_run_with(&config, &[]).await.unwrap();
    let api = acd.grpc_url();
    let mut client = AcdClient::connect(&api).await.unwrap();

    // One SIPp is the phone of every agent: answer, hang up at once.
    let phone_ports = env.ports.sipp(0);
    let mut phone = SippCmd::new("agents-phone", "../load/agent_uas.xml", phone_ports)
        .key("rtpport", phone_ports.media)
        .pause_ms(0)
        .arg("-l")
        .arg(CALLS)
        .limit(Duration::from_secs(90));
    phone.calls = CALLS;
    let phone = phone.spawn(&env).await.unwrap();
    for i in 0..AGENTS {
        let e = ext(i);
        register(&env, 1, &e, &format!("ovl{e}"), phone_ports.sip)
            .await
            .assert_success(1);
        client.login(&agent(i), &e).await.unwrap();
        client.ready(&agent(i)).await.unwrap();
    }

    let started = Instant::now();
    let caller = trunk(
        &env,
        "trunk",
        "trunk_call_or_503.xml",
        2,
        "5550100",
        env.ports.sipp(2).media,
    )
    .rate(OFFERED_PER_SECOND, CALLS)
    .trace_counts()
    .spawn(&env)
    .await
    .unwrap()
    .wait()
    .await;
    let took = started.elapsed();

    // Every call ended as a SIPp success: answered and hung up by the agent,
    // or refused with 503 + Retry-After (the scenario checks the header).
    caller.assert_success(u64::from(CALLS));
    let answered = caller.count("_200_Recv").expect("trunk counts");
    let refused = caller.count("_503_Recv").expect("trunk counts");
    eprintln!("[e2e] overload: {answered} answered, {refused} refused in {took:?}");
    assert_eq!(
        answered + refused,
        u64::from(CALLS),
        "answered + refused must be the calls placed: {:?}",
        caller.counts
    );
    assert!(answered > 0, "no call was admitted: {:?}", caller.counts);
    assert!(refused > 0, "twice the admitted rate shed nothing");
    // The token bucket: one second's burst, then the configured rate over
    // the seconds INVITEs were offered (not the whole run with its calls),
    // plus a second for SIPp falling behind its schedule on a busy machine.
    // Without the bucket nearly every call would be admitted.
    let offered_secs = u64::from(CALLS / OFFERED_PER_SECOND);
    let bound = u64::from(ADMITTED_PER_SECOND) * (1 + offered_secs + 2);
    assert!(
        answered <= bound,
        "{answered} calls admitted in {took:?}, above the bucket's {bound}"
    );
    // Refusals come at once and admitted calls keep their timing: no
    // retransmissions of INVITE (500 ms) or of anything else.
    let retrans = caller.retransmissions.expect("trunk stat");
    assert!(
        retrans <= u64::from(CALLS) / 20,
        "{retrans} retransmissions on the trunk: a retransmission storm"
    );

    // The edge lets go of every call; then the phone has seen them all.
    client
        .await_status("without active calls", SHORT, |s| {
            s.edge.as_ref().is_some_and(|e| e.active_calls == 0)
        })
        .await
        .unwrap();
    let phone = phone.stop_and_wait().await;
    assert_eq!(
        phone.successful,
        Some(answered),
        "the agents' phone must have completed every admitted call"
    );
    assert_eq!(phone.failed, Some(0), "agents' phone: failed calls");
    let phone_retrans = phone.retransmissions.unwrap_or(0);
    assert!(
        phone_retrans <= u64::from(CALLS) / 20,
        "{phone_retrans} retransmissions on the agents' phone"
    );

    // Every agent READY again.
    let deadline = Instant::now() + SHORT;
    for i in 0..AGENTS {
        loop {
            let a = client.get_agent(&agent(i)).await.unwrap();
            if a.state == AgentState::Ready as i32 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "agent {} not READY after the run: {a:?}",
                agent(i)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let q = client.queue("sales").await.unwrap();
    assert_eq!(q.answered, answered, "{q:?}");
    assert_eq!(q.waiting, 0, "{q:?}");
    assert_eq!(q.abandoned, 0, "{q:?}");

    // The edge counted each refusal as shed (rate, or max_calls / late on a
    // slow machine), none as a failed media allocation.
    let m = scrape(&acd.metrics_addr()).await.unwrap();
    let shed = counter(&m, "acd_calls_shed_total").unwrap_or(0.0);
    assert_eq!(
        shed as u64, refused,
        "acd_calls_shed_total must count the 503s the trunk got"
    );
    let by_rate = counter_with(&m, "acd_calls_shed_total", &[("reason", "rate")]).unwrap_or(0.0);
    assert!(by_rate >= 1.0, "no call shed by the rate limit:\n{m}");
    let accepted = counter_with(&m, "acd_calls_total", &[("outcome", "accepted")]).unwrap_or(0.0);
    assert_eq!(accepted as u64, answered, "acd_calls_total{{accepted}}");
    let media_503 = counter_with(&m, "acd_calls_refused_total", &[("status", "503")]);
    assert_eq!(
        media_503, None,
        "calls refused after admission (RTP range?)"
    );
    acd.assert_running();
}
