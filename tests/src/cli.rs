//! Running `acdctl` (bounded) and reading its `--json` output.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::Value;
use tokio::process::Command;

use crate::env::acdctl_bin;

#[derive(Debug, Clone)]
pub struct CliOutput {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl CliOutput {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
    /// One JSON object per non-empty line of stdout.
    pub fn json_lines(&self) -> Result<Vec<Value>> {
        self.stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l)
                    .with_context(|| format!("acdctl --json line is not JSON: {l:?}"))
            })
            .collect()
    }
}

/// `acdctl --server <url> <args>`, bounded to 20 s.
pub async fn acdctl(server_url: &str, args: &[&str]) -> Result<CliOutput> {
    let bin = acdctl_bin();
    let child = Command::new(&bin)
        // Every harness command acts as the admin of tests/config/e2e.toml;
        // a test passes `--token`/`--agent-password` to act as someone else.
        .env("ACD_TOKEN", crate::grpc::ADMIN_TOKEN)
        .arg("--server")
        .arg(server_url)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("spawning {}", bin.display()))?;
    let out = match tokio::time::timeout(Duration::from_secs(20), child.wait_with_output()).await {
        Ok(o) => o?,
        Err(_) => bail!("acdctl {args:?} did not finish within 20 s"),
    };
    let out = CliOutput {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    };
    eprintln!(
        "[e2e] acdctl {args:?} -> {:?}\n{}{}",
        out.code, out.stdout, out.stderr
    );
    Ok(out)
}

/// A u64 field of a JSON object, accepting a number or a numeric string
/// (proto3 JSON writes 64-bit integers as strings).
pub fn json_field_u64(v: &Value, key: &str) -> Option<u64> {
    match v.get(key)? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        Value::Null => Some(0),
        _ => None,
    }
}

/// The object of queue `id` among `acdctl queue list --json` lines
/// (its id under `queue_id`, `queueId`, `id` or `queue`).
pub fn find_queue<'a>(lines: &'a [Value], id: &str) -> Option<&'a Value> {
    lines.iter().find(|v| {
        ["queue_id", "queueId", "id", "queue"]
            .iter()
            .any(|k| v.get(*k).and_then(Value::as_str) == Some(id))
    })
}

/// A field of a queue object; a missing counter is 0 (proto3 JSON omits zeros).
pub fn queue_counter(q: &Value, key: &str) -> u64 {
    json_field_u64(q, key).unwrap_or(0)
}
