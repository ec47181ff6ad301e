//! Flows reload without dropping callers: a caller in the middle of a flow
//! when its file changes finishes on the version they started (the old
//! queue's agent answers), a caller arriving after the reload gets the new
//! version, and `acdctl reload` refuses a broken flow file, naming file and
//! line, while the last good flow keeps serving.
//!
//! Port block 100: `acd run` on slot 0; SIPp 1 alice's phone, 2 bob's, 3
//! registrations, 4 and 5 the two callers.

use std::path::{Path, PathBuf};
use std::time::Duration;

use acd_tests::flows::{agent_phone, register, trunk};
use acd_tests::metrics::scrape_counter;
use acd_tests::proto::AgentState;
use acd_tests::{acdctl, AcdClient, RtpObserver, TestEnv, LONG, SHORT};
use tokio::time::Instant;

const DID: &str = "5550300";

/// Three prompts (each a few seconds) before the queue: a caller stays in
/// the flow long enough for the file to change under them.
fn hold_flow(queue: &str) -> String {
    format!(
        "start = \"p1\"\nfallback_queue = \"{queue}\"\n\n\
         [nodes.p1]\ntype = \"play\"\nprompt = \"welcome\"\nnext = \"p2\"\n\n\
         [nodes.p2]\ntype = \"play\"\nprompt = \"welcome\"\nnext = \"p3\"\n\n\
         [nodes.p3]\ntype = \"play\"\nprompt = \"welcome\"\nnext = \"queue\"\n\n\
         [nodes.queue]\ntype = \"enqueue\"\nqueue = \"{queue}\"\n"
    )
}

/// Replaces the flow file in one step, as an editor or a deploy would.
fn write_flow(dir: &Path, text: &str) {
    let tmp = dir.join(".hold.toml.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, dir.join("hold.toml")).unwrap();
}

async fn await_counter(addr: &str, name: &str, at_least: f64) -> f64 {
    let deadline = Instant::now() + SHORT;
    loop {
        let v = scrape_counter(addr, name).await.unwrap_or(0.0);
        if v >= at_least {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{name} stayed at {v} (want {at_least})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn callers_finish_on_their_version_and_broken_reloads_are_refused() {
    let env = TestEnv::new("ivr_reload", 100);
    let flows: PathBuf = env.log_path("flows");
    std::fs::create_dir_all(&flows).unwrap();
    write_flow(&flows, &hold_flow("sales"));
    let config = env.write_config(&format!(
        "[ivr]\nflows_dir = \"flows\"\n\n[[dids]]\nnumber = \"{DID}\"\nflow = \"hold\"\n"
    ));
    let acd = env.start_run_with(&config, &[]).await.unwrap();
    let url = acd.grpc_url();
    let metrics = acd.metrics_addr();

    let caller_a = RtpObserver::bind("caller-a", env.ports.observer(0))
        .await
        .unwrap();
    let caller_b = RtpObserver::bind("caller-b", env.ports.observer(1))
        .await
        .unwrap();
    let alice_rtp = RtpObserver::bind("alice", env.ports.observer(2))
        .await
        .unwrap();
    let bob_rtp = RtpObserver::bind("bob", env.ports.observer(3))
        .await
        .unwrap();
    let alice_phone = agent_phone(&env, "alice-1001", 1, alice_rtp.port(), Some(2000)).await;
    let bob_phone = agent_phone(&env, "bob-1002", 2, bob_rtp.port(), Some(2000)).await;
    register(&env, 3, "1001", "secret1001", env.ports.sipp(1).sip)
        .await
        .assert_success(1);
    register(&env, 3, "1002", "secret1002", env.ports.sipp(2).sip)
        .await
        .assert_success(1);
    let mut client = AcdClient::connect(&url).await.unwrap();
    client.login("alice", "1001").await.unwrap();
    client.login("bob", "1002").await.unwrap();
    let mut alice = client.watch("alice").await.unwrap();
    let mut bob = client.watch("bob").await.unwrap();
    client.ready("alice").await.unwrap();
    client.ready("bob").await.unwrap();

    // Caller A enters the flow (version 1: queue `sales`).
    let run_a = trunk(&env, "caller-a", "trunk_call.xml", 4, DID, caller_a.port())
        .spawn(&env)
        .await
        .unwrap();
    caller_a.await_g711(25, SHORT).await.unwrap();

    // The file changes under caller A: version 2 leads to `support`.
    write_flow(&flows, &hold_flow("support"));
    await_counter(&metrics, "acd_ivr_reloads_total", 1.0).await;
    let sales = client.queue("sales").await.unwrap();
    assert_eq!(
        sales.offered, 0,
        "caller A must still be in the flow when it reloads: {sales:?}"
    );

    // A broken file is refused, with its file and line, and changes nothing.
    let broken = hold_flow("support").replace("next = \"p3\"", "next = \"nowhere\"");
    write_flow(&flows, &broken);
    let out = acdctl(&url, &["reload"]).await.unwrap();
    assert!(!out.success(), "a broken flow must be refused: {out:?}");
    let line = broken.lines().position(|l| l.contains("nowhere")).unwrap() + 1;
    let node_line = broken.lines().position(|l| l == "[nodes.p2]").unwrap() + 1;
    let file = flows.join("hold.toml").display().to_string();
    assert!(
        out.stderr.contains("INVALID_ARGUMENT")
            && (out.stderr.contains(&format!("{file}:{line}:"))
                || out.stderr.contains(&format!("{file}:{node_line}:")))
            && out.stderr.contains("p2"),
        "want file, line and node in: {}",
        out.stderr
    );
    await_counter(&metrics, "acd_ivr_reload_refused_total", 2.0).await;

    // Caller B arrives after the reload: the last good version (2).
    let run_b = trunk(&env, "caller-b", "trunk_call.xml", 5, DID, caller_b.port())
        .spawn(&env)
        .await
        .unwrap();

    let offer_a = alice.await_offer(LONG).await.unwrap();
    assert_eq!(
        offer_a.queue_id, "sales",
        "caller A on version 1: {offer_a:?}"
    );
    let offer_b = bob.await_offer(LONG).await.unwrap();
    assert_eq!(
        offer_b.queue_id, "support",
        "caller B on version 2: {offer_b:?}"
    );
    alice.await_state(AgentState::OnCall, LONG).await.unwrap();
    bob.await_state(AgentState::OnCall, LONG).await.unwrap();
    alice_phone.wait().await.assert_success(1);
    bob_phone.wait().await.assert_success(1);
    run_a.wait().await.assert_success(1);
    run_b.wait().await.assert_success(1);

    // A good file again: reload reports the flow as changed.
    write_flow(&flows, &hold_flow("sales"));
    let out = acdctl(&url, &["reload"]).await.unwrap();
    assert!(out.success(), "{out:?}");
    assert!(out.stdout.contains("hold@"), "{}", out.stdout);
    let fallbacks = scrape_counter(&metrics, "acd_edge_ivr_fallbacks_total")
        .await
        .unwrap();
    assert_eq!(fallbacks, 0.0, "no caller may take the fallback path");
}
