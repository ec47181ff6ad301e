//! `acd check-config`: the shipped config is valid; broken ones are refused
//! with "FILE:LINE: key `a.b`: problem".

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use acd_tests::env::workspace_root;
use acd_tests::{acd_bin, config_path, TestEnv};

async fn check(file: &Path) -> (Option<i32>, String) {
    let child = tokio::process::Command::new(acd_bin())
        .arg("check-config")
        .arg(file)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("check-config finishes")
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "[e2e] check-config {} -> {:?}\n{text}",
        file.display(),
        out.status.code()
    );
    (out.status.code(), text)
}

/// Writes e2e.toml with `edit` applied into the log dir, prompt paths made
/// absolute so only the intended error remains.
fn broken(env: &TestEnv, name: &str, edit: impl Fn(&str) -> String) -> PathBuf {
    let prompts = workspace_root().join("config/prompts");
    let base = std::fs::read_to_string(config_path()).unwrap().replace(
        "\"../../config/prompts/",
        &format!("\"{}/", prompts.display()),
    );
    let text = edit(&base);
    assert_ne!(text, base, "{name}: the edit changed nothing");
    let path = env.log_path(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// 1-based line of the first line of `file` containing `needle`.
fn line_of(file: &Path, needle: &str) -> usize {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .position(|l| l.contains(needle))
        .expect("needle")
        + 1
}

#[tokio::test]
async fn shipped_configs_are_valid() {
    let (code, out) = check(&workspace_root().join("config/acd.toml")).await;
    assert_eq!(code, Some(0), "config/acd.toml must be valid:\n{out}");
    let (code, out) = check(&config_path()).await;
    assert_eq!(code, Some(0), "tests/config/e2e.toml must be valid:\n{out}");
}

#[tokio::test]
async fn broken_configs_are_refused_with_file_line_and_key() {
    let env = TestEnv::new("check_config", 0);

    // An enqueue node naming a queue that does not exist.
    let f = broken(&env, "unknown-queue.toml", |t| {
        t.replacen(
            "queue = \"support\"\npriority = 0",
            "queue = \"no-such-queue\"\npriority = 0",
            1,
        )
    });
    let (code, out) = check(&f).await;
    assert_ne!(code, Some(0), "unknown queue accepted:\n{out}");
    let line = line_of(&f, "no-such-queue");
    assert!(
        out.contains(&format!("unknown-queue.toml:{line}:")),
        "want file:{line}: in\n{out}"
    );
    assert!(
        out.contains("flows.support.nodes.queue.queue"),
        "want the key in\n{out}"
    );

    // A wrong type.
    let f = broken(&env, "bad-type.toml", |t| {
        t.replace("wrap_up_secs = 1", "wrap_up_secs = \"one\"")
    });
    let (code, out) = check(&f).await;
    assert_ne!(code, Some(0), "bad type accepted:\n{out}");
    let line = line_of(&f, "wrap_up_secs");
    assert!(
        out.contains(&format!("bad-type.toml:{line}:")),
        "want file:{line}: in\n{out}"
    );
    assert!(
        out.contains("distributor.wrap_up_secs"),
        "want the key in\n{out}"
    );

    // A missing required key: a DID without its flow.
    let f = broken(&env, "missing-key.toml", |t| {
        t.replacen(
            "number = \"5550200\"\nflow = \"support\"\n",
            "number = \"5550200\"\n",
            1,
        )
    });
    let (code, out) = check(&f).await;
    assert_ne!(code, Some(0), "missing key accepted:\n{out}");
    assert!(
        out.contains("missing-key.toml:"),
        "want the file name in\n{out}"
    );
    assert!(out.contains("flow"), "want the missing key in\n{out}");
    // The line is the DID's table (its header or its first key).
    let header = line_of(&f, "number = \"5550200\"");
    assert!(
        out.contains(&format!("missing-key.toml:{header}:"))
            || out.contains(&format!("missing-key.toml:{}:", header - 1)),
        "want the DID's line ({}/{header}) in\n{out}",
        header - 1
    );
}
