//! Smoke tests of the issue-10 bench pipeline (tests/bench/README.md) on
//! tiny loads: `tests/load/calls.sh` drives acd (both flows) and Kamailio
//! and prints its `SUMMARY {json}`; `ramp.py` + `results.py` turn two ramps
//! into `RESULT` lines; `table.py` appends to a history and compares with
//! the previous run. The figures themselves are not judged here, only that
//! the calls went through and the pipeline carries them.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use acd_tests::env::workspace_root;
use acd_tests::{acd_bin, acdctl_bin, TestEnv};
use serde_json::Value;

/// Runs `program args` under `timeout` (bounded), with the debug binaries.
fn run(env: &TestEnv, what: &str, secs: u32, program: &Path, args: &[&str]) -> Output {
    let out = Command::new("timeout")
        .args(["-k", "5", &secs.to_string()])
        .arg(program)
        .args(args)
        .current_dir(workspace_root())
        .env("ACD_BIN", acd_bin())
        .env("ACDCTL_BIN", acdctl_bin())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {}: {e}", program.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(env.log_path(&format!("{what}.out")), &text).unwrap();
    eprintln!("[e2e] {what}: exit {:?}\n{text}", out.status.code());
    out
}

/// The JSON of the last stdout line starting with `prefix`.
fn json_line(out: &Output, prefix: &str) -> Value {
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` line"));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("`{prefix}` line is not JSON: {e}"))
}

fn calls_sh(env: &TestEnv, what: &str, extra: &[&str]) -> Value {
    let base = env.ports.base.to_string();
    let rtp = (env.ports.base + 100).to_string();
    let log = env.log_path(what).display().to_string();
    let mut args = vec![
        "-P", &base, "-M", &rtp, "-k", "100", "-t", "0", "-w", "0", "-T", "10", "-n", "5", "-o",
        &log,
    ];
    args.extend_from_slice(extra);
    let script = workspace_root().join("tests/load/calls.sh");
    let out = run(env, what, 240, &script, &args);
    assert_eq!(out.status.code(), Some(0), "{what}: calls.sh failed");
    json_line(&out, "SUMMARY ")
}

#[test]
fn calls_sh_drives_acd_on_both_flows_and_kamailio() {
    let env = TestEnv::new("bench_calls_sh", 148);

    let s = calls_sh(&env, "direct", &["-r", "10", "-c", "30", "-f", "direct"]);
    assert_eq!(s["verdict"], "PASS", "{s}");
    assert_eq!(s["answered"], 30, "{s}");
    assert_eq!(s["agent_ok"], 30, "{s}");
    assert_eq!(s["refused"], 0, "{s}");
    assert_eq!(s["expected_call_ms"], 0, "{s}");
    assert!(
        s["cpu_s"].as_f64().is_some_and(|c| c > 0.0),
        "acd's CPU is measured: {s}"
    );
    assert!(
        s["sipp_cpu_s"].as_f64().is_some_and(|c| c > 0.0),
        "SIPp's CPU is measured: {s}"
    );

    // The prompt flow: every call lasts about the 2.5 s welcome prompt.
    let s = calls_sh(&env, "prompt", &["-r", "5", "-c", "10", "-f", "prompt"]);
    assert_eq!(s["verdict"], "PASS", "{s}");
    assert_eq!(s["answered"], 10, "{s}");
    let call_ms = s["call_ms"].as_f64().expect("call_ms");
    assert!(
        (2400.0..3500.0).contains(&call_ms),
        "calls last the prompt: {s}"
    );

    let s = calls_sh(
        &env,
        "kamailio",
        &["-r", "10", "-c", "30", "-f", "direct", "-S", "kamailio"],
    );
    assert_eq!(s["verdict"], "PASS", "{s}");
    assert_eq!(s["subject"], "kamailio", "{s}");
    assert_eq!(s["answered"], 30, "{s}");
    assert_eq!(s["agent_ok"], 30, "{s}");
    assert!(
        s["cpu_s"].as_f64().is_some_and(|c| c > 0.0),
        "Kamailio's CPU is measured: {s}"
    );
}

/// The RESULT lines of `out` (stdout), parsed.
fn results(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("RESULT "))
        .map(|l| serde_json::from_str(l).expect("RESULT line is JSON"))
        .collect()
}

fn result<'a>(rs: &'a [Value], metric: &str, subject: &str) -> &'a Value {
    rs.iter()
        .find(|r| r["metric"] == metric && r["subject"] == subject)
        .unwrap_or_else(|| panic!("no RESULT {metric}/{subject} in {rs:?}"))
}

#[test]
fn ramps_give_result_lines_and_the_table_keeps_history() {
    let env = TestEnv::new("bench_ramp", 149);
    let bench = workspace_root().join("tests/bench");
    let base = env.ports.base.to_string();
    let rtp = (env.ports.base + 100).to_string();
    let mut ramps = Vec::new();
    for subject in ["acd", "kamailio"] {
        let dir = env.log_path(subject).display().to_string();
        let out = run(
            &env,
            &format!("ramp-{subject}"),
            300,
            &bench.join("ramp.py"),
            &[
                "--subject",
                subject,
                "--flow",
                "direct",
                "--rates",
                "10,20",
                "--secs",
                "2",
                "--min-calls",
                "20",
                "--agents",
                "5",
                "--port-base",
                &base,
                "--rtp-min",
                &rtp,
                "--rtp-ports",
                "100",
                "--refine",
                "0",
                "--out",
                &dir,
            ],
        );
        assert_eq!(out.status.code(), Some(0), "ramp.py {subject}");
        let ramp = json_line(&out, "RAMP ");
        assert_eq!(ramp["knee"], 20, "both steps pass: {ramp}");
        ramps.push(format!("{dir}/ramp.json"));
    }
    let out = run(
        &env,
        "results",
        30,
        &bench.join("results.py"),
        &["signalling", &ramps[0], &ramps[1]],
    );
    assert_eq!(out.status.code(), Some(0));
    let rs = results(&out);
    assert_eq!(result(&rs, "knee_calls_per_s", "acd")["value"], 20);
    assert_eq!(result(&rs, "knee_calls_per_s", "kamailio")["value"], 20);
    assert_eq!(result(&rs, "ratio_to_kamailio", "acd")["value"], 1.0);
    assert!(result(&rs, "cpu_ms_per_call", "kamailio")["value"].is_number());

    // table.py: two runs into a fresh history; the second shows the first's figure.
    let out_dir = env.log_path("run");
    std::fs::create_dir_all(&out_dir).unwrap();
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("RESULT "))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(out_dir.join("results.txt"), lines.concat()).unwrap();
    std::fs::write(out_dir.join("machine.txt"), "date=test\nquick=1\ncores=2\n").unwrap();
    std::fs::write(
        out_dir.join("benches.txt"),
        "signalling ran 0 1/1/1 1/1/1 9\nmedia not-run - - - 0\n",
    )
    .unwrap();
    let history = env.log_path("history.jsonl").display().to_string();
    let od = out_dir.display().to_string();
    let table = |what: &str| {
        let out = run(
            &env,
            what,
            30,
            &bench.join("table.py"),
            &["--out", &od, "--history", &history],
        );
        assert_eq!(out.status.code(), Some(0), "{what}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let first = table("table-1");
    let second = table("table-2");
    let row = |t: &str| {
        t.lines()
            .find(|l| l.starts_with("signalling | knee_calls_per_s"))
            .map(|l| {
                l.split('|')
                    .map(|c| c.trim().to_string())
                    .collect::<Vec<_>>()
            })
            .expect("knee row")
    };
    // bench | metric | acd | anchor | acd/anchor | goal | met? | previous acd
    assert_eq!(row(&first)[2], "20");
    assert_eq!(row(&first)[3], "20 (kamailio)");
    assert_eq!(row(&first)[6], "NO", "20 calls/s is not >= 2000");
    assert_eq!(row(&first)[7], "-", "no earlier run");
    assert_eq!(row(&second)[7], "20", "the first run's figure");
    let kept = std::fs::read_to_string(&history).unwrap();
    assert_eq!(kept.lines().count(), 2, "one line per run");
    assert!(second.contains("media: not run"), "{second}");
}
