//! What the SIP edge does with the routing engine's decisions (issue 8):
//! the caller's number in the agent's offer, the auto-answer request in the
//! agent's INVITE, and — once the routing core emits them (h8-core) — an
//! overflow to the night team's URI, a closed queue's message and BYE,
//! position / wait announcements, an agent's transfer, and a callback that
//! dials the customer and connects them to an agent.
//!
//! Port blocks 120-126.

use std::path::PathBuf;
use std::time::Duration;

use acd_tests::flows::{agent_phone, agent_phone_scenario, register, trunk};
use acd_tests::metrics::{counter, counter_with, scrape};
use acd_tests::proto::AgentState;
use acd_tests::{AcdClient, AcdProcess, RtpObserver, TestEnv, LONG, SHORT};

/// The caller number `flows::trunk` puts in the From header.
const CALLER_NUMBER: &str = "0611223344";
/// Tags of the RTP a test sends through the edge's relay.
const CALLER_SSRC: u32 = 0xCA11_0120;
const CUSTOMER_SSRC: u32 = 0xC057_0125;

/// `from` sends 50 tagged packets to where the edge's RTP comes from; `to`
/// must receive most of them through the relay.
async fn relayed(from: &RtpObserver, to: &RtpObserver, ssrc: u32) {
    from.await_g711(5, LONG).await.unwrap();
    let edge_leg = from.last_source().expect("the edge sent RTP");
    from.send_tagged(edge_leg, ssrc, 50).await.unwrap();
    to.await_from(ssrc, 40, SHORT).await.unwrap();
}

/// e2e.toml with `edit` applied to the text of the sales queue's table and
/// the English prompt set loaded from config/prompts/en.
fn sales_queue_config(env: &TestEnv, queue_keys: &str, extra: &str) -> PathBuf {
    let prompts = acd_tests::env::workspace_root()
        .join("config")
        .join("prompts")
        .join("en");
    let queue_keys = queue_keys.to_string();
    let extra = extra.to_string();
    env.config_variant(move |text| {
        let text = text.replace(
            "id = \"sales\"\nskills = { sales = 1 }\n",
            &format!("id = \"sales\"\nskills = {{ sales = 1 }}\n{queue_keys}\n"),
        );
        format!(
            "{text}\n[ivr]\nprompt_dirs = {{ en = \"{}\" }}\n{extra}\n",
            prompts.display()
        )
    })
}

async fn observer(env: &TestEnv, name: &str, slot: u16) -> RtpObserver {
    RtpObserver::bind(name, env.ports.observer(slot))
        .await
        .unwrap()
}

/// `acd run` with `config`, an API client, and the caller's RTP observer.
async fn started(env: &TestEnv, config: &std::path::Path) -> (AcdProcess, AcdClient, RtpObserver) {
    let acd = env.start_run_with(config, &[]).await.unwrap();
    let client = AcdClient::connect(&acd.grpc_url()).await.unwrap();
    let caller = observer(env, "caller", 0).await;
    (acd, client, caller)
}

/// `agent` logs in at `extension`, whose phone (SIPp slot `phone_slot`) is
/// registered from slot `phone_slot + 1`, and is made ready.
async fn ready_agent(
    env: &TestEnv,
    client: &mut AcdClient,
    agent: &str,
    extension: &str,
    phone_slot: u16,
) -> acd_tests::AgentWatch {
    let password = format!("secret{extension}");
    register(
        env,
        phone_slot + 1,
        extension,
        &password,
        env.ports.sipp(phone_slot).sip,
    )
    .await
    .assert_success(1);
    client.login(agent, extension).await.unwrap();
    let mut watch = client.watch(agent).await.unwrap();
    client.ready(agent).await.unwrap();
    watch.await_state(AgentState::Ready, SHORT).await.unwrap();
    watch
}

/// A trunk call (SIPp slot 3) to the sales DID, media to `caller`; the
/// caller hangs up after `hangup_after_ms` with trunk_call_hangup.xml.
async fn call_sales(
    env: &TestEnv,
    scenario: &str,
    caller: &RtpObserver,
    hangup_after_ms: Option<u64>,
) -> acd_tests::SippRun {
    let mut cmd = trunk(env, "trunk", scenario, 3, "5550100", caller.port());
    if let Some(ms) = hangup_after_ms {
        cmd = cmd.pause_ms(ms);
    }
    cmd.spawn(env).await.unwrap()
}

/// Polls the edge's metric `name{labels}` until it reaches `at_least`.
async fn await_metric(acd: &AcdProcess, name: &str, labels: &[(&str, &str)], at_least: f64) -> f64 {
    let addr = acd.metrics_addr();
    let deadline = tokio::time::Instant::now() + LONG;
    loop {
        let text = scrape(&addr).await.unwrap_or_default();
        let v = match labels {
            [] => counter(&text, name),
            _ => counter_with(&text, name, labels),
        }
        .unwrap_or(0.0);
        if v >= at_least {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name}{labels:?} stayed at {v} (< {at_least})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Alice (sales, extension 1001) set to auto-answer: her phone's INVITE must
/// ask for it (the SIPp scenario fails the call otherwise), and her offer
/// names the caller's number.
#[tokio::test]
async fn an_auto_answer_agent_is_asked_to_answer_and_the_offer_names_the_caller() {
    let env = TestEnv::new("routing_auto_answer", 120);
    let config = env
        .config_variant(|t| t.replace("id = \"alice\"\n", "id = \"alice\"\nauto_answer = true\n"));
    let (mut acd, mut client, caller) = started(&env, &config).await;
    let alice_rtp = observer(&env, "alice", 1).await;
    let phone = agent_phone_scenario(
        &env,
        "alice-auto",
        "agent_answer_auto.xml",
        1,
        alice_rtp.port(),
    )
    .await;
    let mut alice = ready_agent(&env, &mut client, "alice", "1001", 1).await;

    let call = call_sales(&env, "trunk_call_hangup.xml", &caller, Some(3000)).await;
    let offer = alice.await_offer(LONG).await.unwrap();
    let number = offer.caller.as_ref().map(|c| c.number.as_str());
    assert_eq!(number, Some(CALLER_NUMBER), "{offer:?}");
    alice.await_state(AgentState::OnCall, LONG).await.unwrap();
    call.wait().await.assert_success(1);
    phone.wait().await.assert_success(1);
    alice.await_state(AgentState::WrapUp, SHORT).await.unwrap();
    acd.assert_running();
}

/// No agent of the queue is logged in: the call overflows to the night
/// team's URI (a SIPp UAS), which answers; the caller hangs up.
#[tokio::test]
async fn a_queue_without_agents_overflows_to_the_night_team() {
    let env = TestEnv::new("routing_overflow_uri", 121);
    let night_port = env.ports.sipp(1).sip;
    let config = sales_queue_config(
        &env,
        &format!("overflow = {{ no_agents = {{ uri = \"sip:night@127.0.0.1:{night_port}\" }} }}"),
        "",
    );
    let (mut acd, _client, caller) = started(&env, &config).await;
    let night_rtp = observer(&env, "night", 1).await;
    let night = agent_phone(&env, "night", 1, night_rtp.port(), None).await;
    let call = call_sales(&env, "trunk_call_hangup.xml", &caller, Some(4000)).await;
    await_metric(
        &acd,
        "acd_edge_transfers_total",
        &[("outcome", "answered")],
        1.0,
    )
    .await;
    // The caller's media reaches the night team through the edge.
    relayed(&caller, &night_rtp, CALLER_SSRC).await;
    call.wait().await.assert_success(1);
    night.wait().await.assert_success(1);
    await_metric(&acd, "acd_edge_redirects_total", &[("kind", "uri")], 1.0).await;
    acd.assert_running();
}

/// Outside business hours the queue plays its closed message and hangs up.
#[tokio::test]
async fn after_hours_the_caller_hears_the_message_and_is_hung_up() {
    let env = TestEnv::new("routing_closed_message", 122);
    // Open round the clock, but today (in Moscow: within a day of today in
    // UTC) is a holiday by the calendar: closed whenever the test runs.
    let holidays = format!("{}..{}", utc_date(-1), utc_date(1));
    let config = sales_queue_config(
        &env,
        &format!(
            "hours = {{ timezone = \"Europe/Moscow\", weekly = {{ \"mon-sun\" = [\"00:00-24:00\"] }}, \
             holidays = [\"{holidays}\"] }}\n\
             overflow = {{ closed = {{ message = \"night_closed\" }} }}"
        ),
        "",
    );
    let (mut acd, _client, caller) = started(&env, &config).await;
    // trunk_call.xml waits for the edge's BYE.
    let call = call_sales(&env, "trunk_call.xml", &caller, None).await;
    call.wait().await.assert_success(1);
    // The message is several seconds of speech at 50 packets a second.
    assert!(
        caller.stats().g711() >= 100,
        "the caller heard too little: {:?}",
        caller.stats()
    );
    await_metric(
        &acd,
        "acd_edge_redirects_total",
        &[("kind", "message")],
        1.0,
    )
    .await;
    acd.assert_running();
}

/// A waiting caller hears position / wait announcements every 5 s (one
/// takes about 4 s to say; one still playing makes the next wait).
#[tokio::test]
async fn a_waiting_caller_hears_announcements() {
    let env = TestEnv::new("routing_announce", 123);
    let config = sales_queue_config(&env, "announce = { every_secs = 5 }", "");
    let mut acd = env.start_run_with(&config, &[]).await.unwrap();
    let mut client = AcdClient::connect(&acd.grpc_url()).await.unwrap();
    // Logged in, not ready: the call waits (and the wait is estimated).
    client.login("alice", "1001").await.unwrap();
    let caller = observer(&env, "caller", 0).await;
    let call = call_sales(&env, "trunk_call_hangup.xml", &caller, Some(16_000)).await;
    await_metric(&acd, "acd_edge_announcements_total", &[], 2.0).await;
    call.wait().await.assert_success(1);
    assert!(caller.stats().g711() >= 200, "{:?}", caller.stats());
    acd.assert_running();
}

/// Alice transfers her call to the support queue: her leg is hung up and
/// bob (support) gets the call.
#[tokio::test]
async fn an_agent_transfers_the_call_to_another_queue() {
    let env = TestEnv::new("routing_transfer", 124);
    let (mut acd, mut client, caller) = started(&env, &acd_tests::config_path()).await;
    let alice_rtp = observer(&env, "alice", 1).await;
    let bob_rtp = observer(&env, "bob", 2).await;
    let alice_phone = agent_phone(&env, "alice-1001", 1, alice_rtp.port(), None).await;
    let bob_phone = agent_phone(&env, "bob-1002", 4, bob_rtp.port(), Some(2000)).await;
    let mut alice = ready_agent(&env, &mut client, "alice", "1001", 1).await;
    // Bob is made ready once alice talks, so the call goes to alice first.
    register(&env, 5, "1002", "secret1002", env.ports.sipp(4).sip)
        .await
        .assert_success(1);
    client.login("bob", "1002").await.unwrap();
    let mut bob = client.watch("bob").await.unwrap();
    let call = call_sales(&env, "trunk_call.xml", &caller, None).await;
    let offer = alice.await_offer(LONG).await.unwrap();
    alice.await_state(AgentState::OnCall, LONG).await.unwrap();
    client.ready("bob").await.unwrap();
    client
        .agent
        .transfer(acd_tests::proto::TransferRequest {
            agent_id: "alice".into(),
            call_id: offer.call_id.clone(),
            target: Some(acd_tests::proto::transfer_request::Target::QueueId(
                "support".into(),
            )),
        })
        .await
        .unwrap();
    // Alice's leg gets the edge's BYE (her scenario ends), bob is rung.
    alice_phone.wait().await.assert_success(1);
    let second = bob.await_offer(LONG).await.unwrap();
    assert_eq!(second.call_id, offer.call_id);
    bob.await_state(AgentState::OnCall, LONG).await.unwrap();
    // Bob hangs up after 2 s; the caller gets the BYE.
    bob_phone.wait().await.assert_success(1);
    call.wait().await.assert_success(1);
    await_metric(&acd, "acd_edge_agent_releases_total", &[], 1.0).await;
    acd.assert_running();
}

/// No agent: the call overflows to a callback (the caller hears the
/// confirmation and is hung up). Once alice is ready the edge dials the
/// customer (a SIPp UAS behind the `carrier` trunk's dial template) and,
/// answered, rings alice and bridges them.
#[tokio::test]
async fn a_callback_dials_the_customer_and_connects_an_agent() {
    let env = TestEnv::new("routing_callback", 125);
    let customer_port = env.ports.sipp(6).sip;
    let config = sales_queue_config(
        &env,
        "overflow = { no_agents = { callback = true } }\n\
         callback = { trunk = \"carrier\", retries = 1, retry_after_secs = 2, ring_secs = 10 }",
        &format!(
            "[[trunks]]\nname = \"carrier\"\nsources = [\"127.0.0.1\"]\n\
             dial = \"sip:{{number}}@127.0.0.1:{customer_port}\"\n"
        ),
    );
    let (mut acd, mut client, caller) = started(&env, &config).await;
    let customer_rtp = observer(&env, "customer", 1).await;
    let alice_rtp = observer(&env, "alice", 2).await;
    // The inbound call: confirmation, then the edge's BYE.
    let call = call_sales(&env, "trunk_call.xml", &caller, None).await;
    call.wait().await.assert_success(1);
    await_metric(
        &acd,
        "acd_edge_redirects_total",
        &[("kind", "callback")],
        1.0,
    )
    .await;

    let customer = agent_phone(&env, "customer", 6, customer_rtp.port(), None).await;
    let alice_phone = agent_phone(&env, "alice-1001", 1, alice_rtp.port(), Some(3000)).await;
    let mut alice = ready_agent(&env, &mut client, "alice", "1001", 1).await;
    let offer = alice.await_offer(LONG).await.unwrap();
    assert!(offer.call_id.ends_with(":cb"), "{offer:?}");
    alice.await_state(AgentState::OnCall, LONG).await.unwrap();
    // The customer's media reaches alice through the edge: neither SIPp sends
    // RTP and nothing plays once they are bridged, so the customer's side
    // sends to the edge's port from the SDP of the INVITE it received.
    let edge_port = offered_media_port(&env.log_path("sipp-customer.messages.log"));
    let edge_leg = std::net::SocketAddr::from(([127, 0, 0, 1], edge_port));
    customer_rtp
        .send_tagged(edge_leg, CUSTOMER_SSRC, 50)
        .await
        .unwrap();
    alice_rtp
        .await_from(CUSTOMER_SSRC, 40, SHORT)
        .await
        .unwrap();
    // Alice hangs up after 3 s; the customer gets the BYE.
    alice_phone.wait().await.assert_success(1);
    customer.wait().await.assert_success(1);
    await_metric(
        &acd,
        "acd_edge_callback_dials_total",
        &[("outcome", "answered")],
        1.0,
    )
    .await;
    acd.assert_running();
}

/// The media port of the first SDP (`m=audio PORT`) a SIPp instance received:
/// the edge's side of the leg it answered.
fn offered_media_port(messages_log: &std::path::Path) -> u16 {
    let text = std::fs::read_to_string(messages_log).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no m=audio line in {}", messages_log.display()))
}

/// Today's UTC date shifted by `days`, as `YYYY-MM-DD` (civil from days since
/// the epoch, after H. Hinnant's algorithm).
fn utc_date(days: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let z = now.div_euclid(86_400) + days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}
