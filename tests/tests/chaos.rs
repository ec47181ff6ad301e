//! The chaos suite: the separate processes of an installation (etcd, an
//! elected distributor pair, two IVR runners, an edge, eight agents), steady
//! SIPp trunk load with calls in the IVR, queued and talking, and one fault
//! or upgrade in the middle of it. Every case asserts the promise: zero
//! failed calls at SIPp, every call answered by an agent (a caller lost from
//! the queue would abandon), no call dropped, agents back to Ready, exactly
//! one primary; and prints what it measured.
//!
//! Draining an edge under load is the Kamailio test (`kamailio.rs`: two
//! edges behind the dispatcher, 40 calls, none failed); the SIGSTOP'd
//! primary is `failover.rs`.

use std::time::Duration;

use acd_tests::cluster::Cluster;
use acd_tests::{acdctl, json_field_u64, TestEnv, LONG, SHORT};
use tokio::time::Instant;

/// 12 calls at 1/s, each held 12 s by the caller (2.5 s prompt, a short
/// wait, then talk): with 8 agents and 1 s wrap-up some calls are in the IVR,
/// some queued and most talking at any moment.
const RATE: u32 = 1;
const CALLS: u32 = 12;
const HOLD_MS: u64 = 12_000;
/// Calls queued before the fault: the rest arrive during and after it.
const BEFORE_FAULT: u64 = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_primary_under_load() {
    let env = TestEnv::new("chaos_kill_primary", 81);
    let mut c = Cluster::start(&env).await.unwrap();
    let load = c.load(&env, RATE, CALLS, HOLD_MS).await.unwrap();
    c.await_offered(BEFORE_FAULT, LONG).await.unwrap();

    let old = c.leader(SHORT).await.unwrap();
    let killed = Instant::now();
    c.distributors[old].kill().await;
    let new = c.leader(SHORT).await.unwrap();
    let failover = killed.elapsed();
    eprintln!("[e2e] chaos: fail-over after kill -9 of the primary took {failover:?}");
    assert_ne!(new, old, "the killed primary cannot lead");
    assert!(
        failover < Duration::from_secs(1),
        "fail-over took {failover:?}"
    );

    let q = c
        .assert_every_call_served(load.wait().await, CALLS)
        .await
        .unwrap();
    eprintln!("[e2e] chaos: kill -9 under load: {q:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switchover_under_load() {
    let env = TestEnv::new("chaos_switchover", 82);
    let mut c = Cluster::start(&env).await.unwrap();
    let load = c.load(&env, RATE, CALLS, HOLD_MS).await.unwrap();
    c.await_offered(BEFORE_FAULT, LONG).await.unwrap();

    let old = c.leader(SHORT).await.unwrap();
    let urls = c.distributor_urls().join(",");
    let out = acdctl(&urls, &["--json", "switchover"]).await.unwrap();
    assert!(out.success(), "acdctl switchover: {out:?}");
    let line = &out.json_lines().unwrap()[0];
    let pause_us = json_field_u64(line, "pause_us").unwrap();
    eprintln!("[e2e] chaos: switchover under load held commands {pause_us} µs");
    assert!(pause_us < 500_000, "switchover pause {pause_us} µs");
    let new = c.leader(SHORT).await.unwrap();
    assert_ne!(new, old, "leadership moved to the standby");

    let q = c
        .assert_every_call_served(load.wait().await, CALLS)
        .await
        .unwrap();
    eprintln!("[e2e] chaos: switchover under load: {q:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_edge_hand_over_under_load() {
    let env = TestEnv::new("chaos_edge_handover", 83);
    let mut c = Cluster::start(&env).await.unwrap();
    let load = c.load(&env, RATE, CALLS, HOLD_MS).await.unwrap();
    c.await_offered(BEFORE_FAULT, LONG).await.unwrap();

    let started = Instant::now();
    let mut old = c.take_over_edge(&env, "edge-2").await.unwrap();
    let taken = started.elapsed();
    let exit = old.wait_exit(SHORT).await.unwrap();
    eprintln!("[e2e] chaos: edge hand-over under load: new edge ready after {taken:?}");
    assert!(exit.success(), "the old edge exited with {exit}");

    let q = c
        .assert_every_call_served(load.wait().await, CALLS)
        .await
        .unwrap();
    eprintln!("[e2e] chaos: edge hand-over under load: {q:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_an_ivr_runner_under_load() {
    let env = TestEnv::new("chaos_kill_ivr", 84);
    let mut c = Cluster::start(&env).await.unwrap();
    let load = c.load(&env, RATE, CALLS, HOLD_MS).await.unwrap();
    // Callers are in the welcome prompt: their next step (enqueue) must be
    // served by the other runner.
    c.await_offered(1, LONG).await.unwrap();
    c.ivrs[0].kill().await;
    eprintln!("[e2e] chaos: IVR runner 0 killed with calls in the IVR");

    let q = c
        .assert_every_call_served(load.wait().await, CALLS)
        .await
        .unwrap();
    eprintln!("[e2e] chaos: IVR runner killed under load: {q:?}");
}
