//! Digits end to end: a trunk caller (SIPp) in a `menu` presses keys as
//! RFC 4733 telephone-events or SIP INFO; `acd run` routes the call by the
//! choice to the queue whose agent then gets the offer. Alice takes `sales`
//! (key 1), Bob `support` (key 2, and the menu's default).

use std::path::Path;
use std::time::{Duration, Instant};

use acd_tests::baresip::write_level_wav;
use acd_tests::dtmf::{trunk_scenario, Press};
use acd_tests::flows::{agent_phone, register, SIPP_LIMIT};
use acd_tests::metrics::{counter_with, scrape};
use acd_tests::proto::AgentState;
use acd_tests::{AcdClient, AcdProcess, AgentWatch, RtpObserver, SippCmd, SippRun, TestEnv, LONG};

/// Length of the `long` prompt: barge-in must cut it.
const LONG_PROMPT_SECS: u32 = 20;

/// Menus on their own numbers: 5550300 behind the long prompt (barge-in),
/// 5550301 behind the short welcome prompt with a short timeout (retries).
const FLOWS: &str = r#"
[[dids]]
number = "5550300"
flow = "menu_long"

[[dids]]
number = "5550301"
flow = "menu_short"

[flows.menu_long]
answer = "immediate"
start = "menu"
fallback_queue = "sales"

[flows.menu_long.nodes.menu]
type = "menu"
prompt = "long"
options = { "1" = "sales", "2" = "support" }
timeout_ms = 3000
retries = 1
default = "support"

[flows.menu_long.nodes.sales]
type = "enqueue"
queue = "sales"

[flows.menu_long.nodes.support]
type = "enqueue"
queue = "support"

[flows.menu_short]
answer = "immediate"
start = "menu"
fallback_queue = "sales"

[flows.menu_short.nodes.menu]
type = "menu"
prompt = "welcome"
options = { "1" = "sales", "2" = "support" }
timeout_ms = 1500
retries = 1
default = "support"

[flows.menu_short.nodes.sales]
type = "enqueue"
queue = "sales"

[flows.menu_short.nodes.support]
type = "enqueue"
queue = "support"
"#;

/// `acd run` with the menus, Alice (1001) and Bob (1002) registered,
/// logged in and ready, their phones answering and hanging up after 1 s.
struct Site {
    acd: AcdProcess,
    alice: AgentWatch,
    bob: AgentWatch,
    _phones: Vec<SippRun>,
    _rtp: Vec<RtpObserver>,
}

async fn site(env: &TestEnv) -> Site {
    let long = env.log_path("long.wav");
    write_level_wav(&long, 2000, LONG_PROMPT_SECS).unwrap();
    let config = env.config_variant(|text| {
        let prompt = format!("[prompts]\nlong = \"{}\"\n", long.display());
        text.replacen("[prompts]\n", &prompt, 1) + FLOWS
    });
    let acd = env.start_run_with(&config, &[]).await.unwrap();
    let mut phones = Vec::new();
    let mut rtp = Vec::new();
    let mut client = AcdClient::connect(&acd.grpc_url()).await.unwrap();
    let mut watches = Vec::new();
    for (i, (agent, ext)) in [("alice", "1001"), ("bob", "1002")].into_iter().enumerate() {
        let slot = i as u16;
        let obs = RtpObserver::bind(agent, env.ports.observer(slot))
            .await
            .unwrap();
        let phone = agent_phone(env, &format!("agent-{ext}"), slot, obs.port(), Some(1000)).await;
        register(
            env,
            2 + slot,
            ext,
            &format!("secret{ext}"),
            env.ports.sipp(slot).sip,
        )
        .await
        .assert_success(1);
        client.login(agent, ext).await.unwrap();
        let watch = client.watch(agent).await.unwrap();
        client.ready(agent).await.unwrap();
        phones.push(phone);
        rtp.push(obs);
        watches.push(watch);
    }
    let bob = watches.pop().unwrap();
    let alice = watches.pop().unwrap();
    Site {
        acd,
        alice,
        bob,
        _phones: phones,
        _rtp: rtp,
    }
}

async fn call(env: &TestEnv, did: &str, script: &[Press]) -> SippRun {
    let scenario = trunk_scenario(env, "caller", script);
    SippCmd::new("caller", &scenario.display().to_string(), env.ports.sipp(5))
        .remote(env.sip_addr())
        .service(did)
        .key("caller", "0611223344")
        .limit(SIPP_LIMIT)
        .spawn(env)
        .await
        .unwrap()
}

/// Waits for `watch`'s offer and the call on it to end; returns the queue
/// and when the offer came.
async fn offered(watch: &mut AgentWatch, caller: SippRun) -> (String, Instant) {
    let offer = watch.await_offer(LONG).await.unwrap();
    let at = Instant::now();
    watch.await_state(AgentState::OnCall, LONG).await.unwrap();
    caller.wait().await.assert_success(1);
    (offer.queue_id, at)
}

async fn edge_counter(acd: &AcdProcess, name: &str, labels: &[(&str, &str)]) -> f64 {
    let text = scrape(&acd.metrics_addr()).await.unwrap();
    counter_with(&text, name, labels).unwrap_or(0.0)
}

fn require_pcaps() {
    let p = acd_tests::dtmf::pcap_of('2');
    assert!(
        Path::new(&p).exists(),
        "{} missing: install sip-tester (tests/run.sh)",
        p.display()
    );
}

/// RFC 4733 from SIPp's captures: key 2 one second into a 20 s menu prompt
/// stops it (barge-in) and routes the call to support, so Bob is offered
/// the call long before the prompt would have ended; Alice never is.
#[tokio::test]
async fn rfc4733_digit_barges_in_and_routes_to_the_chosen_queue() {
    require_pcaps();
    let env = TestEnv::new("dtmf_rfc4733", 92);
    let mut site = site(&env).await;
    let started = Instant::now();
    let caller = call(&env, "5550300", &[Press::Pause(1000), Press::Rtp('2')]).await;
    let (queue, at) = offered(&mut site.bob, caller).await;
    let took = at - started;
    eprintln!("[e2e] offer to bob {took:?} after the call started (prompt {LONG_PROMPT_SECS} s)");
    assert_eq!(queue, "support");
    assert!(
        took < Duration::from_secs(6),
        "barge-in did not cut the {LONG_PROMPT_SECS} s prompt: offer after {took:?}"
    );
    site.alice.drain(Duration::from_millis(200)).await;
    assert!(site.alice.offers().is_empty(), "alice was offered the call");
    let rtp = edge_counter(
        &site.acd,
        "acd_edge_dtmf_digits_total",
        &[("source", "rfc4733")],
    )
    .await;
    assert_eq!(rtp, 1.0, "one press, one digit (redundant end packets)");
    site.acd.assert_running();
}

/// INFO `application/dtmf-relay`: key 1 routes to sales (Alice).
#[tokio::test]
async fn info_dtmf_relay_digit_routes_to_sales() {
    let env = TestEnv::new("dtmf_info_relay", 93);
    let mut site = site(&env).await;
    let started = Instant::now();
    let caller = call(&env, "5550300", &[Press::Pause(800), Press::InfoRelay('1')]).await;
    let (queue, at) = offered(&mut site.alice, caller).await;
    eprintln!(
        "[e2e] offer to alice {:?} after the call started",
        at - started
    );
    assert_eq!(queue, "sales");
    assert!(at - started < Duration::from_secs(6), "barge-in by INFO");
    site.bob.drain(Duration::from_millis(200)).await;
    assert!(site.bob.offers().is_empty(), "bob was offered the call");
    let info = edge_counter(
        &site.acd,
        "acd_edge_dtmf_digits_total",
        &[("source", "info")],
    )
    .await;
    assert_eq!(info, 1.0);
    site.acd.assert_running();
}

/// INFO `application/dtmf`: an invalid key (9) replays the menu, then no
/// input uses the last retry, and the menu's default (support) takes the
/// call: Bob is offered it only after the second prompt and timeout.
#[tokio::test]
async fn invalid_digit_then_no_input_take_the_menu_default() {
    let env = TestEnv::new("dtmf_menu_default", 94);
    let mut site = site(&env).await;
    let started = Instant::now();
    let caller = call(&env, "5550301", &[Press::Pause(500), Press::InfoDtmf('9')]).await;
    let (queue, at) = offered(&mut site.bob, caller).await;
    let took = at - started;
    eprintln!("[e2e] default reached {took:?} after the call started");
    assert_eq!(queue, "support");
    // Invalid key at 0.5 s (barge-in), the prompt again (2.5 s), then the
    // 1.5 s timeout: about 4.5 s. Had the key been lost, the first timeout
    // would come at 4 s and the default only at 8 s.
    assert!(
        took > Duration::from_millis(4000) && took < Duration::from_millis(7000),
        "expected the default after one retry and one timeout (~4.5 s): {took:?}"
    );
    site.alice.drain(Duration::from_millis(200)).await;
    assert!(site.alice.offers().is_empty(), "alice was offered the call");
    let text = scrape(&site.acd.metrics_addr()).await.unwrap();
    let steps = acd_tests::metrics::counter(&text, "acd_ivr_steps_total").unwrap_or(0.0);
    assert!(steps >= 3.0, "started, digits, no input: {steps} steps");
    site.acd.assert_running();
}

/// A real softphone as the caller: baresip 1.0 dials the long menu and
/// presses 2 through its control interface (`ctrl_tcp`, command `sndcode`).
/// baresip 1.0 sends DTMF only as RFC 4733 telephone-events (it reads INFO
/// digits but cannot send them: no `dtmfmode` setting in 1.0), so the digit
/// must arrive as RFC 4733 and none as INFO; it barges in and Bob is offered
/// the call.
#[tokio::test]
async fn baresip_caller_presses_a_key_through_its_control_interface() {
    use acd_tests::baresip::{ctrl_command, ctrl_tcp_config, Baresip, BaresipSpec};
    let env = TestEnv::new("dtmf_baresip", 95);
    let mut site = site(&env).await;
    let wav = env.log_path("baresip-source.wav");
    write_level_wav(&wav, 1000, 60).unwrap();
    let ctrl = env.ports.observer(7);
    let mut spec = BaresipSpec::new(&env, "caller", "1003", "secret1003", &wav);
    spec.extra_config = ctrl_tcp_config(ctrl);
    let phone = Baresip::spawn(&env, spec).await.unwrap();
    let started = Instant::now();
    let target = format!("sip:5550300@{}", env.sip_addr());
    let resp = ctrl_command(ctrl, "dial", &target, Duration::from_secs(10))
        .await
        .unwrap();
    eprintln!("[e2e] baresip dial: {resp}");
    let deadline = Instant::now() + LONG;
    while !phone.output().to_ascii_lowercase().contains("established") {
        assert!(
            Instant::now() < deadline,
            "baresip's call was not established"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let resp = ctrl_command(ctrl, "sndcode", "2", Duration::from_secs(5))
        .await
        .unwrap();
    eprintln!("[e2e] baresip sndcode: {resp}");
    let offer = site.bob.await_offer(LONG).await.unwrap();
    let took = started.elapsed();
    eprintln!("[e2e] offer to bob {took:?} after baresip dialled");
    assert_eq!(offer.queue_id, "support");
    assert!(
        took < Duration::from_secs(8),
        "the key did not barge in: {took:?}"
    );
    site.bob
        .await_state(AgentState::OnCall, LONG)
        .await
        .unwrap();
    let rtp = edge_counter(
        &site.acd,
        "acd_edge_dtmf_digits_total",
        &[("source", "rfc4733")],
    )
    .await;
    let info = edge_counter(
        &site.acd,
        "acd_edge_dtmf_digits_total",
        &[("source", "info")],
    )
    .await;
    eprintln!("[e2e] baresip sent {rtp} RFC 4733 digit(s), {info} INFO digit(s)");
    assert_eq!((rtp, info), (1.0, 0.0), "baresip 1.0 sends RFC 4733 only");
    site.alice.drain(Duration::from_millis(200)).await;
    assert!(site.alice.offers().is_empty(), "alice was offered the call");
    site.acd.assert_running();
}
