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
//! primary is `failover.rs`; network partitions of the distributor pair
//! (in network namespaces) are `partition.rs`.

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

/// Every process of the installation restarted one at a time by `acdctl
/// rolling-restart` while calls flow: IVR runners, the standby, a
/// switchover, the old primary, then the edge by live hand-over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_of_every_process_under_load() {
    let env = TestEnv::new("chaos_rolling_restart", 85);
    let mut c = Cluster::start(&env).await.unwrap();
    let restarts = Restarts::new(&env, &c);
    let calls = 20;
    let load = c.load(&env, RATE, calls, HOLD_MS).await.unwrap();
    c.await_offered(BEFORE_FAULT, LONG).await.unwrap();

    let started = Instant::now();
    let out = tokio::process::Command::new(acd_tests::acdctl_bin())
        .env("ACD_TOKEN", acd_tests::grpc::ADMIN_TOKEN)
        .args(["rolling-restart", "--installation"])
        .arg(&restarts.installation)
        .args(["--timeout-secs", "30"])
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), out)
        .await
        .expect("rolling restart bounded")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!(
        "[e2e] chaos: rolling restart took {:?}:\n{stdout}{}",
        started.elapsed(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "rolling restart failed");
    assert_eq!(
        stdout.matches("done in").count(),
        6,
        "2 IVR runners, standby, switchover, old primary, edge"
    );

    let q = c
        .assert_every_call_served(load.wait().await, calls)
        .await
        .unwrap();
    eprintln!("[e2e] chaos: rolling restart under load: {q:?}");
    drop(restarts);
}

/// The installation file and restart scripts for `acdctl rolling-restart`:
/// each script stops the process it names (pid in a file) and starts the
/// same command line detached, or, for the edge, starts a new edge taking
/// over the old one. Kills whatever the pid files name when dropped.
struct Restarts {
    installation: std::path::PathBuf,
    pid_files: Vec<std::path::PathBuf>,
}

impl Restarts {
    fn new(env: &TestEnv, c: &Cluster) -> Restarts {
        let mut toml = String::new();
        let mut pid_files = Vec::new();
        let mut add = |name: &str, role: &str, p: &acd_tests::AcdProcess, take_over: bool| {
            let pid_file = env.log_path(&format!("{name}.pid"));
            std::fs::write(&pid_file, p.pid().expect("running").to_string()).unwrap();
            let cmdline = std::fs::read_to_string(env.log_path(&format!("{}.cmdline", p.name)))
                .unwrap()
                .trim()
                .to_string();
            let log = env.log_path(&format!("{name}.restarted.log"));
            let stop = if take_over {
                // The old edge stops itself once the new one took over.
                format!("{cmdline} --take-over {}", c.handover_socket.display())
            } else {
                format!(
                    "kill -TERM $old\n\
                     while [ -d /proc/$old ] && ! grep -q '^State:.*Z' /proc/$old/status; do sleep 0.05; done\n\
                     {cmdline}"
                )
            };
            let script = env.log_path(&format!("restart-{name}.sh"));
            std::fs::write(
                &script,
                format!(
                    "#!/bin/sh\nset -e\nold=$(cat {pid})\n{stop} >>{log} 2>&1 </dev/null &\necho $! >{pid}\n",
                    pid = pid_file.display(),
                    log = log.display(),
                ),
            )
            .unwrap();
            toml.push_str(&format!(
                "[[process]]\nname = \"{name}\"\nrole = \"{role}\"\nadmin = \"{}\"\nrestart = \"sh {}\"\n\n",
                p.grpc_url(),
                script.display()
            ));
            pid_files.push(pid_file);
        };
        for (i, p) in c.ivrs.iter().enumerate() {
            add(&format!("ivr-{i}"), "ivr", p, false);
        }
        for (i, p) in c.distributors.iter().enumerate() {
            add(&format!("distributor-{i}"), "distributor", p, false);
        }
        add("edge", "edge", &c.edge, true);
        let installation = env.log_path("installation.toml");
        std::fs::write(&installation, toml).unwrap();
        Restarts {
            installation,
            pid_files,
        }
    }
}

impl Drop for Restarts {
    fn drop(&mut self) {
        for f in &self.pid_files {
            if let Some(pid) = std::fs::read_to_string(f)
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok())
            {
                // Restarted processes are not this test's children.
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
    }
}
