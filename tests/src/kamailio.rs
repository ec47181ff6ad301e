//! Kamailio in front of the edges: `deploy/kamailio/kamailio.cfg` (the very
//! file operators adapt), run in the foreground (`-DD -E`) on a test port
//! with a generated dispatcher list and its own runtime directory in the
//! test's log directory. Killed (with its children) when dropped.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::process::{Child, Command};

use crate::env::{tail, workspace_root, TestEnv};
use crate::sipp::port_bound;

/// `deploy/kamailio/kamailio.cfg`.
pub fn config_path() -> PathBuf {
    workspace_root().join("deploy/kamailio/kamailio.cfg")
}

/// Fails (never skips) when Kamailio is not installed.
pub fn require_kamailio() {
    let ok = std::process::Command::new("kamailio")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        panic!("`kamailio` not found on PATH: install it (`apt-get install -y kamailio`; tests/run.sh does)");
    }
}

/// A running Kamailio.
pub struct Kamailio {
    child: Child,
    pub addr: SocketAddr,
    pub log: PathBuf,
}

impl Kamailio {
    /// Starts Kamailio `name` on UDP `127.0.0.1:port` dispatching to
    /// `edges` (dispatcher set 1), with `defines` overriding the config's
    /// (e.g. `PING_INTERVAL=3600`), and waits (bounded) until it listens.
    pub async fn start(
        env: &TestEnv,
        name: &str,
        port: u16,
        edges: &[SocketAddr],
        defines: &[&str],
    ) -> Result<Kamailio> {
        require_kamailio();
        let list = env.log_path(&format!("{name}.dispatcher.list"));
        let lines: Vec<String> = edges
            .iter()
            .enumerate()
            .map(|(i, e)| format!("1 sip:{e} 0 0 duid=edge-{i}"))
            .collect();
        std::fs::write(&list, lines.join("\n") + "\n")?;
        let run_dir = env.log_path(&format!("{name}-run"));
        std::fs::create_dir_all(&run_dir)?;
        let log = env.log_path(&format!("{name}.log"));
        let mut args: Vec<String> = vec![
            "-f".into(),
            config_path().display().to_string(),
            "-DD".into(),
            "-E".into(),
            "-A".into(),
            format!("LISTEN=udp:127.0.0.1:{port}"),
            "-A".into(),
            format!("DISPATCHER_LIST=\"{}\"", list.display()),
            "-P".into(),
            run_dir.join("kamailio.pid").display().to_string(),
            "-Y".into(),
            run_dir.display().to_string(),
            // Shared and private memory (MB): plenty for a test.
            "-m".into(),
            "64".into(),
            "-M".into(),
            "8".into(),
        ];
        for d in defines {
            args.extend(["-A".to_string(), d.to_string()]);
        }
        std::fs::write(
            env.log_path(&format!("{name}.cmdline")),
            format!("kamailio {}\n", args.join(" ")),
        )?;
        let child = Command::new("kamailio")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(std::fs::File::create(
                env.log_path(&format!("{name}.stdout.log")),
            )?))
            .stderr(Stdio::from(std::fs::File::create(&log)?))
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .context("spawning kamailio")?;
        let mut k = Kamailio {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            log,
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !port_bound(port, false) {
            if let Ok(Some(status)) = k.child.try_wait() {
                bail!("kamailio exited ({status}):\n{}", tail(&k.log, 30));
            }
            if tokio::time::Instant::now() >= deadline {
                bail!(
                    "kamailio did not bind UDP {port} within 10 s:\n{}",
                    tail(&k.log, 30)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(k)
    }

    /// Lines of Kamailio's log containing `needle`.
    pub fn log_lines(&self, needle: &str) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_string)
            .collect()
    }

    /// Fails if Kamailio has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("kamailio exited ({status}):\n{}", tail(&self.log, 30));
        }
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        // Kamailio forks its workers into the same process group.
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .stderr(Stdio::null())
                .status();
        }
    }
}
