//! What-if replay on a real journal: `acd run` records its events, SIPp calls
//! queue for one agent, and `acdctl replay` on that journal reproduces the
//! answered count under the recording's config and shows shorter waits with
//! one more agent. Port blocks 127-128.

use std::path::Path;
use std::time::{Duration, Instant};

use acd_tests::cli::acdctl;
use acd_tests::flows::{register, trunk};
use acd_tests::proto::AgentState;
use acd_tests::sipp::SippCmd;
use acd_tests::{AcdClient, RtpObserver, TestEnv, LONG, SHORT};
use serde_json::Value;

/// Calls placed at once on the sales line; alice (the only agent) takes them
/// one after another, 1.5 s each plus 1 s of wrap-up.
const CALLS: u32 = 3;

/// Lines of the journal directory whose event is of `kind`.
fn journal_count(dir: &Path, kind: &str) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let needle = format!("\"type\":\"{kind}\"");
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .map(|text| text.lines().filter(|l| l.contains(&needle)).count())
        .sum()
}

/// Polls until the journal holds `n` events of `kind` (bounded).
async fn await_journal(dir: &Path, kind: &str, n: usize) {
    let deadline = Instant::now() + SHORT;
    while journal_count(dir, kind) < n {
        assert!(
            Instant::now() < deadline,
            "journal {} has {} `{kind}` events, want {n}",
            dir.display(),
            journal_count(dir, kind)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The waits (enqueue to connection, ms) the journal recorded.
fn recorded_waits(dir: &Path) -> Vec<u64> {
    let mut queued = std::collections::BTreeMap::new();
    let mut waits = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    for f in files {
        for line in std::fs::read_to_string(f).unwrap().lines() {
            let r: Value = serde_json::from_str(line).unwrap();
            let (at, e) = (r["at"].as_u64().unwrap(), &r["event"]);
            let call = e["call"].as_str().unwrap_or_default().to_string();
            match e["type"].as_str() {
                Some("call_queued") => {
                    queued.insert(call, at);
                }
                Some("call_connected") => waits.push(at - queued[&call]),
                _ => {}
            }
        }
    }
    waits
}

fn u64_at(v: &Value, path: &[&str]) -> u64 {
    let mut at = v;
    for key in path {
        at = &at[*key];
    }
    at.as_u64()
        .unwrap_or_else(|| panic!("no number at {path:?} in {v}"))
}

/// Config of the run: the e2e config with a journal next to it.
fn journal_config(env: &TestEnv) -> std::path::PathBuf {
    env.config_variant(|text| {
        text.replacen(
            "offer_timeout_secs = 8",
            "offer_timeout_secs = 8\njournal = \"journal\"",
            1,
        )
    })
}

#[tokio::test]
async fn replay_reproduces_the_day_and_one_more_agent_cuts_the_wait() {
    let env = TestEnv::new("replay", 127);
    let config = journal_config(&env);
    let journal = env.log_path("journal");
    let mut acd = env.start_run_with(&config, &[]).await.unwrap();
    let api = acd.grpc_url();
    let mut client = AcdClient::connect(&api).await.unwrap();
    let caller = RtpObserver::bind("caller", env.ports.observer(0))
        .await
        .unwrap();
    let alice_rtp = RtpObserver::bind("alice", env.ports.observer(1))
        .await
        .unwrap();

    let mut phone = SippCmd::new("alice-1001", "agent_answer_hangup.xml", env.ports.sipp(1))
        .key("rtpport", alice_rtp.port())
        .pause_ms(1500)
        .limit(Duration::from_secs(60));
    phone.calls = CALLS;
    let phone = phone.spawn(&env).await.unwrap();
    register(&env, 2, "1001", "secret1001", env.ports.sipp(1).sip)
        .await
        .assert_success(1);
    client.login("alice", "1001").await.unwrap();
    let mut alice = client.watch("alice").await.unwrap();
    client.ready("alice").await.unwrap();
    alice.await_state(AgentState::Ready, SHORT).await.unwrap();

    let calls = trunk(
        &env,
        "trunk-sales",
        "trunk_call.xml",
        3,
        "5550100",
        caller.port(),
    )
    .rate(10, CALLS)
    .spawn(&env)
    .await
    .unwrap();
    let sipp = calls.wait().await;
    sipp.assert_success(u64::from(CALLS));
    phone.wait().await.assert_success(u64::from(CALLS));
    await_journal(&journal, "call_ended", CALLS as usize).await;

    // The variant: one more sales agent.
    let base_text = std::fs::read_to_string(&config).unwrap();
    let new_text = format!(
        "{base_text}\n[[agents]]\nid = \"dave\"\nname = \"Dave\"\nskills = {{ sales = 5 }}\n"
    );
    let new_config = env.log_path("new.toml");
    std::fs::write(&new_config, new_text).unwrap();

    let out = acdctl(
        &api,
        &[
            "--json",
            "replay",
            "--journal",
            &journal.display().to_string(),
            "--config",
            &new_config.display().to_string(),
            "--baseline",
            &config.display().to_string(),
        ],
    )
    .await
    .unwrap();
    assert!(out.success(), "{}", out.stderr);
    let result: Value = serde_json::from_str(out.stdout.trim()).expect("one JSON object");
    let answered = u64_at(&result, &["baseline", "queues", "sales", "answered"]);
    assert_eq!(
        answered,
        sipp.successful.unwrap_or_default(),
        "the baseline replays what SIPp saw: {result}"
    );
    assert_eq!(
        u64_at(&result, &["baseline", "agents", "alice", "calls"]),
        u64::from(CALLS)
    );
    // The replayed waits are the recorded ones (ring and talk times are the
    // recorded ones, and the 1 s wrap-up is the config's), to within timer slack.
    let recorded = recorded_waits(&journal);
    assert_eq!(recorded.len(), CALLS as usize, "{recorded:?}");
    let recorded_max = recorded.iter().copied().max().unwrap_or_default();
    let replayed_max = u64_at(&result, &["baseline", "queues", "sales", "max_wait_ms"]);
    assert!(
        replayed_max.abs_diff(recorded_max) <= 250,
        "replayed max wait {replayed_max} ms, recorded {recorded_max} ms ({recorded:?})"
    );
    let base_wait = u64_at(&result, &["baseline", "queues", "sales", "avg_wait_ms"]);
    let new_wait = u64_at(&result, &["new", "queues", "sales", "avg_wait_ms"]);
    // Three calls at once, one agent: the later ones wait for 2.5 s talk + wrap-up each.
    assert!(
        base_wait >= 1_000,
        "baseline waits {base_wait} ms: {result}"
    );
    assert!(
        new_wait < base_wait,
        "one more agent: {new_wait} ms vs {base_wait} ms"
    );
    assert_eq!(
        u64_at(&result, &["new", "queues", "sales", "answered"]),
        u64::from(CALLS)
    );
    assert!(
        u64_at(&result, &["new", "agents", "dave", "calls"]) >= 1,
        "{result}"
    );

    // The human table shows both sides.
    let out = acdctl(
        &api,
        &[
            "replay",
            "--journal",
            &journal.display().to_string(),
            "--config",
            &new_config.display().to_string(),
            "--baseline",
            &config.display().to_string(),
        ],
    )
    .await
    .unwrap();
    assert!(out.success(), "{}", out.stderr);
    let row = out
        .stdout
        .lines()
        .find(|l| l.starts_with("sales") && l.contains("offered"))
        .unwrap_or_else(|| panic!("no sales row in\n{}", out.stdout));
    assert!(row.contains(&CALLS.to_string()), "{row}");
    acd.assert_running();
}

#[tokio::test]
async fn explain_shows_who_got_the_call() {
    let env = TestEnv::new("replay-explain", 128);
    let mut acd = env.start_run().await.unwrap();
    let api = acd.grpc_url();
    let mut client = AcdClient::connect(&api).await.unwrap();
    let caller = RtpObserver::bind("caller", env.ports.observer(0))
        .await
        .unwrap();
    let alice_rtp = RtpObserver::bind("alice", env.ports.observer(1))
        .await
        .unwrap();
    let phone = SippCmd::new("alice-1001", "agent_answer_hangup.xml", env.ports.sipp(1))
        .key("rtpport", alice_rtp.port())
        .pause_ms(500)
        .limit(Duration::from_secs(60))
        .spawn(&env)
        .await
        .unwrap();
    register(&env, 2, "1001", "secret1001", env.ports.sipp(1).sip)
        .await
        .assert_success(1);
    client.login("alice", "1001").await.unwrap();
    let mut alice = client.watch("alice").await.unwrap();
    client.ready("alice").await.unwrap();
    alice.await_state(AgentState::Ready, SHORT).await.unwrap();
    let call = trunk(
        &env,
        "trunk-sales",
        "trunk_call.xml",
        3,
        "5550100",
        caller.port(),
    )
    .spawn(&env)
    .await
    .unwrap();
    let offer = alice.await_offer(LONG).await.unwrap();
    call.wait().await.assert_success(1);
    phone.wait().await.assert_success(1);

    let out = acdctl(&api, &["--json", "explain", &offer.call_id])
        .await
        .unwrap();
    assert!(out.success(), "{}", out.stderr);
    let decisions = out.json_lines().unwrap();
    assert!(
        decisions.iter().any(|d| d["kind"] == "offered"
            && d["agent_id"] == "alice"
            && d["queue_id"] == "sales"),
        "{decisions:?}"
    );
    acd.assert_running();
}
