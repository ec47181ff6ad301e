//! SIPp runs: `timeout -s USR1 -k 5 <limit> sipp ...`, one per scenario and
//! role, with statistics, messages and errors traced to the test's log dir.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::process::{Child, Command};

use crate::env::{sipp_dir, tail, TestEnv};
use crate::ports::SippPorts;

/// Fails (never skips) when SIPp is not installed.
pub fn require_sipp() {
    let ok = std::process::Command::new("sipp")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !ok {
        panic!("`sipp` not found on PATH: install it (`apt-get install -y sip-tester`; tests/run.sh does)");
    }
}

/// What to run: build with [`SippCmd::new`], then [`SippCmd::spawn`].
#[derive(Debug, Clone)]
pub struct SippCmd {
    pub name: String,
    pub scenario: PathBuf,
    pub ports: SippPorts,
    pub remote: Option<String>,
    pub tcp: bool,
    pub calls: u32,
    pub limit: Duration,
    pub args: Vec<String>,
    /// `-trace_counts`: per-message counts, see [`SippOutcome::counts`].
    pub trace_counts: bool,
}

impl SippCmd {
    /// `scenario` is a file name in `tests/sipp/` (or a path relative to it).
    pub fn new(name: &str, scenario: &str, ports: SippPorts) -> Self {
        SippCmd {
            name: name.to_string(),
            scenario: sipp_dir().join(scenario),
            ports,
            remote: None,
            tcp: false,
            calls: 1,
            limit: Duration::from_secs(60),
            args: Vec::new(),
            trace_counts: false,
        }
    }
    /// Where requests go (UAC scenarios): `ip:port`.
    pub fn remote(mut self, addr: impl Into<String>) -> Self {
        self.remote = Some(addr.into());
        self
    }
    /// `-t t1` instead of `-t u1`.
    pub fn tcp(mut self) -> Self {
        self.tcp = true;
        self
    }
    /// `-key name value`, used as `[name]` in the scenario.
    pub fn key(mut self, k: &str, v: impl ToString) -> Self {
        self.args
            .extend(["-key".to_string(), k.to_string(), v.to_string()]);
        self
    }
    /// `-s user`: `[service]`, the DID or the extension.
    pub fn service(mut self, s: &str) -> Self {
        self.args.extend(["-s".to_string(), s.to_string()]);
        self
    }
    /// `-au user -ap password` for `[authentication]`.
    pub fn auth(mut self, user: &str, password: &str) -> Self {
        self.args
            .extend(["-au".into(), user.into(), "-ap".into(), password.into()]);
        self
    }
    /// `-d ms`: the length of the scenario's `<pause/>`.
    pub fn pause_ms(mut self, ms: u64) -> Self {
        self.args.extend(["-d".to_string(), ms.to_string()]);
        self
    }
    /// Upper bound of the whole run (SIGUSR1 then SIGKILL after it).
    pub fn limit(mut self, d: Duration) -> Self {
        self.limit = d;
        self
    }
    /// `-r calls_per_second -rp 1000` with `calls` calls in all, and `-l
    /// calls` so SIPp's default limit of simultaneous calls (3 x rate x the
    /// scenario's pause) does not throttle the offered rate.
    pub fn rate(mut self, calls_per_second: u32, calls: u32) -> Self {
        self.calls = calls;
        self.args.extend([
            "-r".to_string(),
            calls_per_second.to_string(),
            "-rp".to_string(),
            "1000".to_string(),
            "-l".to_string(),
            calls.to_string(),
        ]);
        self
    }
    /// Count every message of the scenario (`-trace_counts`).
    pub fn trace_counts(mut self) -> Self {
        self.trace_counts = true;
        self
    }
    pub fn arg(mut self, a: impl ToString) -> Self {
        self.args.push(a.to_string());
        self
    }

    /// Starts SIPp. For a UAS scenario, also waits (bounded) until its SIP
    /// port is bound, so a request sent afterwards finds it.
    pub async fn spawn(self, env: &TestEnv) -> Result<SippRun> {
        require_sipp();
        let log = |suffix: &str| env.log_path(&format!("sipp-{}.{suffix}", self.name));
        let stat = log("stat.csv");
        let screen = log("screen.log");
        let messages = log("messages.log");
        let errors = log("errors.log");
        let stdout = log("stdout.log");
        for f in [&stat, &screen, &messages, &errors] {
            let _ = std::fs::remove_file(f);
        }
        let secs = self.limit.as_secs().max(1);
        let mut cmd = Command::new("timeout");
        cmd.args(["-s", "USR1", "-k", "5", &format!("{secs}s"), "sipp"]);
        let mut sipp_args: Vec<String> = vec![
            "-sf".into(),
            self.scenario.display().to_string(),
            "-i".into(),
            "127.0.0.1".into(),
            "-mi".into(),
            "127.0.0.1".into(),
            "-p".into(),
            self.ports.sip.to_string(),
            "-cp".into(),
            self.ports.control.to_string(),
            "-mp".into(),
            self.ports.media.to_string(),
            "-t".into(),
            if self.tcp { "t1" } else { "u1" }.into(),
            "-m".into(),
            self.calls.to_string(),
            "-nostdin".into(),
            "-trace_stat".into(),
            "-stf".into(),
            stat.display().to_string(),
            "-fd".into(),
            "1".into(),
            "-trace_screen".into(),
            "-screen_file".into(),
            screen.display().to_string(),
            "-trace_msg".into(),
            "-message_file".into(),
            messages.display().to_string(),
            "-trace_err".into(),
            "-error_file".into(),
            errors.display().to_string(),
        ];
        if self.trace_counts {
            // SIPp writes <scenario>_<pid>_counts.csv into its working directory.
            sipp_args.push("-trace_counts".into());
            cmd.current_dir(&env.log_dir);
        }
        sipp_args.extend(self.args.iter().cloned());
        if let Some(r) = &self.remote {
            sipp_args.push(r.clone());
        }
        std::fs::write(log("cmdline"), format!("sipp {}\n", sipp_args.join(" ")))?;
        cmd.args(&sipp_args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(std::fs::File::create(&stdout)?))
            .stderr(Stdio::from(std::fs::File::create(log("stderr.log"))?))
            .process_group(0)
            .kill_on_drop(true);
        let child = cmd.spawn().context("spawning timeout sipp ...")?;
        let run = SippRun {
            cmd: self,
            child,
            stat,
            screen,
            messages,
            errors,
            log_dir: env.log_dir.clone(),
        };
        if run.cmd.remote.is_none() {
            run.wait_bound(Duration::from_secs(10)).await?;
        }
        Ok(run)
    }
}

/// A running SIPp. Its whole process group is killed when dropped.
pub struct SippRun {
    pub cmd: SippCmd,
    child: Child,
    pub stat: PathBuf,
    pub screen: PathBuf,
    pub messages: PathBuf,
    pub errors: PathBuf,
    log_dir: PathBuf,
}

/// Result of a finished SIPp run.
#[derive(Debug, Clone)]
pub struct SippOutcome {
    pub name: String,
    /// Exit code (0 = every call succeeded, 1 = some failed, 124 = `timeout` hit).
    pub exit_code: Option<i32>,
    pub hit_limit: bool,
    pub successful: Option<u64>,
    pub failed: Option<u64>,
    /// `Retransmissions(C)`: messages SIPp sent again for want of an answer.
    pub retransmissions: Option<u64>,
    /// Last row of the `-trace_counts` file (column → count), e.g.
    /// `"4_503_Recv"`; empty without [`SippCmd::trace_counts`].
    pub counts: Vec<(String, u64)>,
    pub messages: PathBuf,
    pub errors: PathBuf,
    pub screen: PathBuf,
}

impl SippOutcome {
    /// Exit 0, `calls` successful calls and none failed.
    pub fn assert_success(&self, calls: u64) {
        let ok =
            self.exit_code == Some(0) && self.successful == Some(calls) && self.failed == Some(0);
        if !ok {
            panic!(
                "SIPp `{}`: expected exit 0 with {calls} successful / 0 failed calls, got exit {:?} \
                 (limit hit: {}), successful {:?}, failed {:?}\n--- errors:\n{}\n--- messages (tail):\n{}",
                self.name,
                self.exit_code,
                self.hit_limit,
                self.successful,
                self.failed,
                tail(&self.errors, 30),
                tail(&self.messages, 60)
            );
        }
    }
    /// Exit 1 with at least one failed call (for negative scenarios).
    pub fn assert_failure(&self) {
        let ok = self.exit_code == Some(1) && self.failed.unwrap_or(0) >= 1;
        if !ok {
            panic!(
                "SIPp `{}`: expected a FAILED call (exit 1), got exit {:?}, successful {:?}, failed {:?}",
                self.name, self.exit_code, self.successful, self.failed
            );
        }
    }
}

impl SippRun {
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Waits until the SIPp's SIP port is taken (it bound its socket).
    async fn wait_bound(&self, within: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + within;
        let port = self.cmd.ports.sip;
        loop {
            let taken = port_bound(port, self.cmd.tcp);
            if taken {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                bail!(
                    "SIPp `{}` did not bind port {port} within {within:?}",
                    self.cmd.name
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends SIGUSR1 (SIPp's graceful stop, final statistics) through `timeout`,
    /// which forwards it.
    pub fn stop(&self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-USR1", &pid.to_string()])
                .status();
        }
    }

    /// Waits for SIPp to exit, bounded by its limit plus a grace period (then
    /// SIGUSR1 twice, then SIGKILL), and parses its statistics.
    pub async fn wait(mut self) -> SippOutcome {
        let bound = self.cmd.limit + Duration::from_secs(10);
        let status = match tokio::time::timeout(bound, self.child.wait()).await {
            Ok(s) => s.ok(),
            Err(_) => {
                self.stop();
                tokio::time::sleep(Duration::from_millis(500)).await;
                self.stop();
                match tokio::time::timeout(Duration::from_secs(3), self.child.wait()).await {
                    Ok(s) => s.ok(),
                    Err(_) => {
                        self.kill_group();
                        None
                    }
                }
            }
        };
        let exit_code = status.and_then(|s| s.code());
        let (successful, failed) = parse_stat_csv(&self.stat);
        let counts = if self.cmd.trace_counts {
            self.counts_file()
                .map(|f| parse_counts_csv(&f))
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let outcome = SippOutcome {
            name: self.cmd.name.clone(),
            exit_code,
            hit_limit: exit_code == Some(124) || exit_code == Some(137) || exit_code.is_none(),
            successful,
            failed,
            retransmissions: stat_column(&self.stat, "Retransmissions(C)"),
            counts,
            messages: self.messages.clone(),
            errors: self.errors.clone(),
            screen: self.screen.clone(),
        };
        eprintln!(
            "[e2e] sipp {}: exit {:?}, successful {:?}, failed {:?}",
            outcome.name, outcome.exit_code, outcome.successful, outcome.failed
        );
        outcome
    }

    /// `<scenario>_<pid>_counts.csv` in the log directory (the newest one).
    fn counts_file(&self) -> Option<PathBuf> {
        let stem = self.cmd.scenario.file_stem()?.to_string_lossy().to_string();
        std::fs::read_dir(&self.log_dir)
            .ok()?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                p.file_name().map(|n| n.to_string_lossy()).is_some_and(|n| {
                    n.starts_with(&format!("{stem}_")) && n.ends_with("_counts.csv")
                })
            })
            .max_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
    }

    /// Like [`SippRun::wait`], but first asks SIPp to stop (SIGUSR1).
    pub async fn stop_and_wait(self) -> SippOutcome {
        self.stop();
        self.wait().await
    }

    fn kill_group(&self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Drop for SippRun {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill_group();
        }
    }
}

impl SippOutcome {
    /// Sum of the `-trace_counts` columns whose name ends with `suffix`
    /// (e.g. `"_503_Recv"`); `None` without counts.
    pub fn count(&self, suffix: &str) -> Option<u64> {
        if self.counts.is_empty() {
            return None;
        }
        Some(
            self.counts
                .iter()
                .filter(|(k, _)| k.ends_with(suffix))
                .map(|(_, v)| v)
                .sum(),
        )
    }
}

/// Columns and values of the last row of a SIPp `-trace_counts` file. The
/// first column holds date and time separated by tabs; it is skipped.
pub fn parse_counts_csv(path: &std::path::Path) -> Vec<(String, u64)> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let (Some(header), Some(last)) = (lines.next(), lines.next_back()) else {
        return Vec::new();
    };
    header
        .split(';')
        .zip(last.split(';'))
        .skip(2)
        .filter_map(|(k, v)| Some((k.trim().to_string(), v.trim().parse().ok()?)))
        .collect()
}

/// One column of the last row of a SIPp `-trace_stat` file.
pub fn stat_column(path: &std::path::Path, name: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = lines.next()?;
    let last = lines.next_back()?;
    let i = header.split(';').position(|c| c == name)?;
    last.split(';').nth(i)?.trim().parse().ok()
}

/// `SuccessfulCall(C)` and `FailedCall(C)` of the last row of a SIPp
/// `-trace_stat` file.
pub fn parse_stat_csv(path: &std::path::Path) -> (Option<u64>, Option<u64>) {
    let Ok(text) = std::fs::read_to_string(path) else {
        return (None, None);
    };
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let Some(header) = lines.next() else {
        return (None, None);
    };
    let Some(last) = lines.next_back() else {
        return (None, None);
    };
    let cols: Vec<&str> = header.split(';').collect();
    let vals: Vec<&str> = last.split(';').collect();
    let get = |name: &str| {
        cols.iter()
            .position(|c| *c == name)
            .and_then(|i| vals.get(i))
            .and_then(|v| v.trim().parse().ok())
    };
    (get("SuccessfulCall(C)"), get("FailedCall(C)"))
}

/// Whether a local socket is bound to `port` (UDP) or listening on it (TCP),
/// from /proc/net, without touching the port ourselves.
pub fn port_bound(port: u16, tcp: bool) -> bool {
    let files: &[&str] = if tcp {
        &["/proc/net/tcp", "/proc/net/tcp6"]
    } else {
        &["/proc/net/udp", "/proc/net/udp6"]
    };
    let want = format!(":{port:04X}");
    files.iter().any(|f| {
        std::fs::read_to_string(f)
            .map(|t| {
                t.lines().skip(1).any(|l| {
                    let cols: Vec<&str> = l.split_whitespace().collect();
                    cols.len() > 3 && cols[1].ends_with(&want) && (!tcp || cols[3] == "0A")
                })
            })
            .unwrap_or(false)
    })
}
