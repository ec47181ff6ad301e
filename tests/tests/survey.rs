//! The edge's call note and the post-call survey end to end: `acd run` with
//! a journal, a SIPp trunk caller whose media (prompts in, RFC 4733 key
//! presses out) is the test's own RTP endpoint, and SIPp agent phones. What
//! the edge noted is read back from the journal's `call_noted` lines, and
//! from the call records (SQLite in the test's directory) and `acdctl
//! report`. Port blocks 142-143.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use acd_tests::flows::{agent_phone, register, trunk};
use acd_tests::metrics::{counter_with, scrape};
use acd_tests::proto::AgentState;
use acd_tests::{AcdClient, AcdProcess, AgentWatch, RtpObserver, SippRun, TestEnv, LONG, SHORT};
use common::Db;
use serde_json::Value;

/// The telephone-event payload type the trunk scenarios offer.
const TE_PT: u8 = 101;

/// A menu in front of the sales queue (whose survey is `survey`), a flow
/// that takes an account number and then waits, and the survey flow.
const FLOWS: &str = r#"
[[dids]]
number = "5550142"
flow = "menu_survey"

[[dids]]
number = "5550143"
flow = "account"

[flows.menu_survey]
answer = "immediate"
start = "menu"
fallback_queue = "sales"

[flows.menu_survey.nodes.menu]
type = "menu"
prompt = "welcome"
options = { "1" = "queue" }
timeout_ms = 10000
default = "queue"

[flows.menu_survey.nodes.queue]
type = "enqueue"
queue = "sales"

[flows.account]
answer = "immediate"
start = "account"
fallback_queue = "sales"

[flows.account.nodes.account]
type = "collect"
prompt = "welcome"
var = "account"
min_length = 4
max_length = 4
timeout_ms = 10000
next = "hold"
fallback = "hold"

[flows.account.nodes.hold]
type = "menu"
prompt = "welcome"
options = { "9" = "queue" }
timeout_ms = 20000
retries = 2
default = "queue"

[flows.account.nodes.queue]
type = "enqueue"
queue = "support"

[flows.survey]
answer = "immediate"
start = "ask"
fallback_queue = "sales"

[flows.survey.nodes.ask]
type = "collect"
prompt = "survey_ask"
var = "survey_score"
min_length = 1
max_length = 1
terminator = ""
pattern = "[1-5]"
timeout_ms = 10000
retries = 1
next = "thanks"
fallback = "bye"

[flows.survey.nodes.thanks]
type = "hangup"
prompt = "survey_thanks"
reason = "survey answered"

[flows.survey.nodes.bye]
type = "hangup"
reason = "survey not answered"
"#;

/// The e2e config with a journal, the survey on `sales`, the shipped survey
/// prompts, [`FLOWS`] and call records in [`records_db`].
fn survey_config(env: &TestEnv) -> std::path::PathBuf {
    let prompts = acd_tests::env::workspace_root().join("config/prompts/en");
    let records = format!(
        "\n[records]\ndatabase = \"{}\"\nspool = \"{}\"\n",
        records_db(env).setting(),
        env.log_path("records-spool").display()
    );
    env.config_variant(|text| {
        let text = text
            .replacen(
                "offer_timeout_secs = 8",
                "offer_timeout_secs = 8\njournal = \"journal\"",
                1,
            )
            .replacen(
                "id = \"sales\"\nskills = { sales = 1 }\n",
                "id = \"sales\"\nskills = { sales = 1 }\nsurvey = { flow = \"survey\" }\n",
                1,
            );
        let extra = format!(
            "[prompts]\nsurvey_ask = \"{0}/survey_ask.wav\"\nsurvey_thanks = \"{0}/survey_thanks.wav\"\n",
            prompts.display()
        );
        text.replacen("[prompts]\n", &extra, 1) + FLOWS + &records
    })
}

fn records_db(env: &TestEnv) -> Db {
    Db::Sqlite(env.log_path("records.db"))
}

/// The columns `cols` of call `call`'s record once `ready` (an SQL
/// condition) holds for it, polled within [`LONG`].
async fn call_row(db: &Db, call: &str, ready: &str, cols: &str) -> Vec<String> {
    db.await_count(
        &format!("SELECT COUNT(*) FROM calls WHERE call_id = '{call}' AND {ready}"),
        1,
        LONG,
    )
    .await;
    let rows = db
        .rows(&format!(
            "SELECT {cols} FROM calls WHERE call_id = '{call}'"
        ))
        .await
        .unwrap();
    rows.into_iter().next().unwrap_or_default()
}

/// The call's trail as (kind, detail JSON), in order.
async fn trail(db: &Db, call: &str) -> Vec<(String, Value)> {
    db.rows(&format!(
        "SELECT kind, detail FROM call_events WHERE call_id = '{call}' ORDER BY at, seq, idx"
    ))
    .await
    .unwrap()
    .into_iter()
    .map(|r| {
        let detail = serde_json::from_str(&r[1]).unwrap_or(Value::Null);
        (r[0].clone(), detail)
    })
    .collect()
}

/// The surveyed call's record: score 4, `queued` at the edge, the caller
/// left after the agent's talk ended, and the trail has the menu choice,
/// the survey and the leaving.
async fn assert_surveyed_record(db: &Db, call: &str) {
    let row = call_row(
        db,
        call,
        "left_at IS NOT NULL",
        "survey_score, edge_outcome, outcome, talk_ended_at, left_at, queue",
    )
    .await;
    assert_eq!(
        (
            row[0].as_str(),
            row[1].as_str(),
            row[2].as_str(),
            row[5].as_str()
        ),
        ("4", "queued", "answered", "sales"),
        "{call}: {row:?}"
    );
    let (talk_ended, left): (i64, i64) = (row[3].parse().unwrap(), row[4].parse().unwrap());
    assert!(
        left > talk_ended,
        "the caller stayed for the survey: talk ended {talk_ended}, left {left}"
    );
    let trail = trail(db, call).await;
    let kinds: Vec<&str> = trail.iter().map(|(k, _)| k.as_str()).collect();
    let menu = trail
        .iter()
        .find(|(k, _)| k == "ivr_input")
        .unwrap_or_else(|| panic!("no ivr_input in {trail:?}"));
    assert_eq!(
        (&menu.1["node"], &menu.1["input"]),
        (&Value::from("menu"), &Value::from("1")),
        "{trail:?}"
    );
    let survey = trail
        .iter()
        .find(|(k, _)| k == "survey")
        .unwrap_or_else(|| panic!("no survey row in {kinds:?}"));
    assert_eq!(survey.1["score"], 4, "{trail:?}");
    // The caller's choice, then the agent's call, then the survey, then gone.
    let order: Vec<usize> = ["ivr_input", "answered", "ended", "survey", "left"]
        .iter()
        .filter_map(|kind| kinds.iter().position(|k| k == kind))
        .collect();
    assert!(
        order.len() == 5 && order.is_sorted() && order[4] == kinds.len() - 1,
        "trail out of order: {kinds:?}"
    );
}

/// Every `call_noted` event of the journal directory, in order (with the
/// record's `seq` and `at`, as `logged_at`).
fn notes(journal: &Path) -> Vec<Value> {
    journal_events(journal)
        .into_iter()
        .filter(|e| e["type"] == "call_noted")
        .collect()
}

fn journal_events(journal: &Path) -> Vec<Value> {
    let Ok(entries) = std::fs::read_dir(journal) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|text| {
            text.lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .map(|r| {
                    let mut e = r["event"].clone();
                    e["seq"] = r["seq"].clone();
                    e["logged_at"] = r["at"].clone();
                    e
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Polls the journal (bounded) until a note matching `pred` is there.
async fn await_note(journal: &Path, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + SHORT;
    loop {
        if let Some(n) = notes(journal).into_iter().find(|n| pred(n)) {
            return n;
        }
        assert!(
            Instant::now() < deadline,
            "no call_noted for {what} in {}: {:?}",
            journal.display(),
            notes(journal)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn steps(note: &Value) -> Vec<(String, String)> {
    note["note"]["steps"]
        .as_array()
        .map(|s| {
            s.iter()
                .map(|s| {
                    let text = |k: &str| s[k].as_str().unwrap_or_default().to_string();
                    (text("node"), text("input"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// An agent registered at `ext` from SIPp slot `slot` (register from
/// `slot + 2`), logged in and ready; the phone answers with media to its
/// own observer and hangs up after `hangup_after_ms` if given.
async fn agent(
    env: &TestEnv,
    client: &mut AcdClient,
    (agent, ext, slot): (&str, &str, u16),
    hangup_after_ms: Option<u64>,
) -> (AgentWatch, SippRun, RtpObserver) {
    let obs = RtpObserver::bind(agent, env.ports.observer(slot))
        .await
        .unwrap();
    let phone = agent_phone(
        env,
        &format!("agent-{ext}"),
        slot,
        obs.port(),
        hangup_after_ms,
    )
    .await;
    register(
        env,
        slot + 2,
        ext,
        &format!("secret{ext}"),
        env.ports.sipp(slot).sip,
    )
    .await
    .assert_success(1);
    client.login(agent, ext).await.unwrap();
    let watch = client.watch(agent).await.unwrap();
    client.ready(agent).await.unwrap();
    (watch, phone, obs)
}

/// The caller's ear and keypad: waits for the edge's first prompt packets,
/// then presses `keys` (one RFC 4733 event each, `ts` onwards).
async fn press_after_prompt(caller: &RtpObserver, keys: &str, ts: u32) {
    caller.await_g711(5, LONG).await.unwrap();
    let edge = caller.last_source().expect("the edge's caller port");
    for (i, key) in keys.chars().enumerate() {
        caller
            .send_digit(edge, TE_PT, key, ts + 1000 * i as u32)
            .await
            .unwrap();
    }
}

async fn surveys_started(acd: &AcdProcess) -> f64 {
    let text = scrape(&acd.metrics_addr()).await.unwrap();
    counter_with(&text, "acd_edge_surveys_total", &[("outcome", "started")]).unwrap_or(0.0)
}

/// (a) Alice hangs up: the caller stays, hears the survey, presses 4 and is
/// hung up by the edge; the note has the score, `queued` and the menu
/// choice. (c) The caller hangs up on Carol first: no survey, no score.
#[tokio::test]
async fn the_agent_hanging_up_gets_a_survey_the_caller_hanging_up_does_not() {
    acd_tests::sipp::require_sipp();
    let env = TestEnv::new("survey", 142);
    let since = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(60);
    let config = survey_config(&env);
    let journal = env.log_path("journal");
    let acd = env.start_run_with(&config, &[]).await.unwrap();
    let mut client = AcdClient::connect(&acd.grpc_url()).await.unwrap();
    let (mut alice, _alice_phone, _alice_rtp) =
        agent(&env, &mut client, ("alice", "1001", 0), Some(1500)).await;

    // (a)
    let ear = RtpObserver::bind("caller-a", env.ports.observer(4))
        .await
        .unwrap();
    let caller = trunk(&env, "caller-a", "trunk_call.xml", 5, "5550142", ear.port())
        .spawn(&env)
        .await
        .unwrap();
    press_after_prompt(&ear, "1", 10_000).await;
    let offer = alice.await_offer(LONG).await.unwrap();
    assert_eq!(offer.queue_id, "sales");
    alice.await_state(AgentState::OnCall, LONG).await.unwrap();
    alice.await_state(AgentState::WrapUp, LONG).await.unwrap();
    // Alice's leg is gone: what the caller hears now is the survey prompt.
    let heard = ear.stats().g711();
    ear.await_g711(heard + 50, LONG).await.unwrap();
    assert_eq!(surveys_started(&acd).await, 1.0);
    let edge = ear.last_source().expect("the edge's caller port");
    ear.send_digit(edge, TE_PT, '4', 20_000).await.unwrap();
    // The edge thanks the caller and hangs up: SIPp's call ends with the edge's BYE.
    caller.wait().await.assert_success(1);
    let note = await_note(&journal, "the surveyed call", |n| {
        n["call"] == offer.call_id
    })
    .await;
    assert_eq!(note["note"]["survey_score"], 4, "{note}");
    assert_eq!(note["note"]["outcome"], "queued", "{note}");
    assert_eq!(note["note"]["did"], "5550142");
    assert_eq!(note["note"]["caller"], "0611223344");
    assert_eq!(
        note["note"]["flow"], "menu_survey",
        "the first flow, not the survey"
    );
    assert_eq!(steps(&note), [("menu".to_string(), "1".to_string())]);
    // The agent's call ended (by the agent) before the survey was over.
    let ended = journal_events(&journal)
        .into_iter()
        .find(|e| e["type"] == "call_ended" && e["call"] == offer.call_id)
        .expect("call_ended in the journal");
    assert_eq!(ended["by"], "agent_hung_up", "{ended}");
    assert!(ended["seq"].as_u64() < note["seq"].as_u64());
    let db = records_db(&env);
    assert_surveyed_record(&db, &offer.call_id).await;

    // (c) Carol takes the next call and never hangs up; the caller does.
    alice.await_state(AgentState::Ready, LONG).await.unwrap();
    client.not_ready("alice", "break").await.unwrap();
    let (mut carol, _carol_phone, _carol_rtp) =
        agent(&env, &mut client, ("carol", "1003", 1), None).await;
    let ear = RtpObserver::bind("caller-c", env.ports.observer(5))
        .await
        .unwrap();
    let caller = trunk(
        &env,
        "caller-c",
        "trunk_call_hangup.xml",
        6,
        "5550142",
        ear.port(),
    )
    .pause_ms(6000)
    .spawn(&env)
    .await
    .unwrap();
    press_after_prompt(&ear, "1", 30_000).await;
    let offer = carol.await_offer(LONG).await.unwrap();
    carol.await_state(AgentState::OnCall, LONG).await.unwrap();
    let finished = carol.await_finished(LONG).await.unwrap();
    caller.wait().await.assert_success(1);
    let note = await_note(&journal, "the caller's hang-up", |n| {
        n["call"] == offer.call_id
    })
    .await;
    assert_eq!(note["note"]["outcome"], "queued", "{note}");
    assert!(
        note["note"].get("survey_score").is_none(),
        "no score: {note}"
    );
    assert_eq!(surveys_started(&acd).await, 1.0, "no survey for call (c)");
    let ended = journal_events(&journal)
        .into_iter()
        .find(|e| e["type"] == "call_ended" && e["call"] == offer.call_id)
        .expect("call_ended in the journal");
    assert_eq!(ended["by"], "caller_hung_up", "{ended} / {finished:?}");
    let row = call_row(
        &db,
        &offer.call_id,
        "left_at IS NOT NULL",
        "survey_score, edge_outcome",
    )
    .await;
    assert_eq!(row, ["", "queued"], "no score for call (c)");

    // The report through the running distributor: one survey, score 4.
    let report = common::report_json(&acd.grpc_url(), since, &[]).await;
    let sales = common::report_row(&report, "sales");
    assert_eq!(
        (
            common::fig(sales, "satisfaction"),
            common::fig(sales, "surveys")
        ),
        (4.0, 1.0),
        "{sales}"
    );
    assert_eq!(common::fig(sales, "offered"), 2.0, "{sales}");
}

/// (b) The caller keys an account number and hangs up while the flow still
/// waits: `abandoned_in_ivr`, with the input, and no queue ever saw it.
#[tokio::test]
async fn a_caller_hanging_up_in_the_ivr_is_noted_abandoned_with_its_inputs() {
    acd_tests::sipp::require_sipp();
    let env = TestEnv::new("survey_ivr_abandon", 143);
    let config = survey_config(&env);
    let journal = env.log_path("journal");
    let _acd = env.start_run_with(&config, &[]).await.unwrap();
    let ear = RtpObserver::bind("caller-b", env.ports.observer(4))
        .await
        .unwrap();
    let caller = trunk(
        &env,
        "caller-b",
        "trunk_call_hangup.xml",
        5,
        "5550143",
        ear.port(),
    )
    .pause_ms(5000)
    .spawn(&env)
    .await
    .unwrap();
    press_after_prompt(&ear, "2468", 10_000).await;
    caller.wait().await.assert_success(1);
    let note = await_note(&journal, "5550143", |n| n["note"]["did"] == "5550143").await;
    assert_eq!(note["note"]["outcome"], "abandoned_in_ivr", "{note}");
    assert_eq!(note["note"]["flow"], "account");
    assert_eq!(steps(&note), [("account".to_string(), "2468".to_string())]);
    assert!(note["note"].get("survey_score").is_none());
    let arrived = note["note"]["arrived_at"].as_u64().unwrap_or_default();
    let left = note["note"]["left_at"].as_u64().unwrap_or_default();
    assert!(
        (4000..30_000).contains(&left.saturating_sub(arrived)),
        "in the IVR for the scenario's 5 s: {note}"
    );
    // The edge's clock is the distributor's (one machine): the note is
    // logged just after the caller left, never before.
    let logged = note["logged_at"].as_u64().unwrap_or_default();
    assert!(
        left <= logged && logged - left < 1000,
        "left at {left}, logged at {logged}"
    );
    let call = note["call"].clone();
    assert!(
        !journal_events(&journal)
            .iter()
            .any(|e| e["call"] == call && e["type"] != "call_noted"),
        "the distributor never held the call"
    );
    let call = call.as_str().unwrap_or_default();
    let db = records_db(&env);
    let row = call_row(
        &db,
        call,
        "left_at IS NOT NULL",
        "edge_outcome, outcome, queue, survey_score",
    )
    .await;
    assert_eq!(row, ["abandoned_in_ivr", "", "", ""], "{call}: {row:?}");
    let kinds: Vec<String> = trail(&db, call).await.into_iter().map(|(k, _)| k).collect();
    assert_eq!(kinds, ["arrived", "ivr_input", "left"], "{call}");
}
