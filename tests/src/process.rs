//! `acd` child processes: spawned with stderr to a log file, stdout read
//! line by line until the `ACD READY ...` line; killed on drop.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

use crate::env::{acd_bin, config_path, tail, TestEnv};

/// How long a process may take from spawn to its READY line.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The parsed `ACD READY role=... grpc=... sip_udp=... sip_tcp=... metrics=...` line.
#[derive(Debug, Clone, Default)]
pub struct ReadyLine {
    pub role: String,
    pub fields: HashMap<String, String>,
}

impl ReadyLine {
    pub fn parse(line: &str) -> Option<Self> {
        let rest = line.trim().strip_prefix("ACD READY")?;
        let fields: HashMap<String, String> = rest
            .split_whitespace()
            .filter_map(|kv| {
                kv.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .collect();
        Some(ReadyLine {
            role: fields.get("role").cloned().unwrap_or_default(),
            fields,
        })
    }
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(String::as_str)
    }
    /// `http://<grpc>` (0.0.0.0 replaced by 127.0.0.1).
    pub fn grpc_url(&self) -> Option<String> {
        self.get("grpc")
            .map(|a| format!("http://{}", a.replace("0.0.0.0", "127.0.0.1")))
    }
    pub fn metrics_addr(&self) -> Option<String> {
        self.get("metrics")
            .map(|a| a.replace("0.0.0.0", "127.0.0.1"))
    }
}

/// A running `acd` process. Killed (SIGKILL) when dropped.
pub struct AcdProcess {
    pub name: String,
    pub ready: ReadyLine,
    child: Child,
    stderr_log: std::path::PathBuf,
    /// The READY line, until [`AcdProcess::await_ready`] takes it.
    ready_rx: Option<oneshot::Receiver<String>>,
}

impl AcdProcess {
    /// Spawns `acd <args>` and waits (bounded) for its READY line. Fails with
    /// the tail of its log if it exits or stays silent.
    pub async fn spawn(env: &TestEnv, name: &str, args: &[String]) -> Result<Self> {
        Self::spawn_with_env(env, name, args, &[]).await
    }

    /// [`AcdProcess::spawn`] with extra environment variables (e.g.
    /// `NOTIFY_SOCKET`, `WATCHDOG_USEC`).
    pub async fn spawn_with_env(
        env: &TestEnv,
        name: &str,
        args: &[String],
        vars: &[(&str, String)],
    ) -> Result<Self> {
        let mut p = Self::spawn_unready_with_env(env, name, args, vars).await?;
        p.await_ready(READY_TIMEOUT).await?;
        Ok(p)
    }

    /// Spawns `acd <args>` without waiting for its READY line (see
    /// [`AcdProcess::await_ready`]); `ready` stays empty until then.
    pub async fn spawn_unready(env: &TestEnv, name: &str, args: &[String]) -> Result<Self> {
        Self::spawn_unready_with_env(env, name, args, &[]).await
    }

    async fn spawn_unready_with_env(
        env: &TestEnv,
        name: &str,
        args: &[String],
        vars: &[(&str, String)],
    ) -> Result<Self> {
        Self::spawn_unready_prefixed(env, name, &[], args, vars).await
    }

    /// `<prefix...> acd <args>` (e.g. `ip netns exec NS`, which execs `acd`
    /// in place: the child's pid is acd's), waiting for READY if `wait_ready`.
    pub async fn spawn_prefixed(
        env: &TestEnv,
        name: &str,
        prefix: &[String],
        args: &[String],
        wait_ready: bool,
    ) -> Result<Self> {
        let mut p = Self::spawn_unready_prefixed(env, name, prefix, args, &[]).await?;
        if wait_ready {
            p.await_ready(READY_TIMEOUT).await?;
        }
        Ok(p)
    }

    async fn spawn_unready_prefixed(
        env: &TestEnv,
        name: &str,
        prefix: &[String],
        args: &[String],
        vars: &[(&str, String)],
    ) -> Result<Self> {
        let bin = acd_bin();
        let stderr_log = env.log_path(&format!("{name}.stderr.log"));
        let stdout_log = env.log_path(&format!("{name}.stdout.log"));
        let stderr = std::fs::File::create(&stderr_log)?;
        let mut argv: Vec<String> = prefix.to_vec();
        argv.push(bin.display().to_string());
        argv.extend(args.iter().cloned());
        std::fs::write(
            env.log_path(&format!("{name}.cmdline")),
            format!("{}\n", argv.join(" ")),
        )?;
        let mut child = Command::new(&argv[0])
            .args(&argv[1..])
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "debug".into()),
            )
            .env("RUST_BACKTRACE", "1")
            .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("spawning {}", argv.join(" ")))?;

        // Read stdout for the whole life of the child (so it never blocks on a
        // full pipe), copy it to a log, and hand over the READY line.
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = oneshot::channel::<String>();
        tokio::spawn(async move {
            let mut tx = Some(tx);
            let mut log = tokio::fs::File::create(&stdout_log).await.ok();
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(f) = log.as_mut() {
                    let _ = f.write_all(format!("{line}\n").as_bytes()).await;
                    let _ = f.flush().await;
                }
                if line.starts_with("ACD READY") {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(line);
                    }
                }
            }
        });

        Ok(AcdProcess {
            name: name.to_string(),
            ready: ReadyLine::default(),
            child,
            stderr_log,
            ready_rx: Some(rx),
        })
    }

    /// Waits (bounded) for the READY line; fails with the tail of the log if
    /// the process exits or stays silent.
    pub async fn await_ready(&mut self, within: Duration) -> Result<()> {
        let name = &self.name;
        let Some(rx) = self.ready_rx.take() else {
            return Ok(());
        };
        let ready = match tokio::time::timeout(within, rx).await {
            Ok(Ok(line)) => line,
            Ok(Err(_)) => {
                let status = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
                bail!(
                    "{name}: stdout closed before the READY line (exit: {status:?}); stderr tail:\n{}",
                    tail(&self.stderr_log, 30)
                )
            }
            Err(_) => bail!(
                "{name}: no `ACD READY` line within {within:?}; stderr tail:\n{}",
                tail(&self.stderr_log, 30)
            ),
        };
        self.ready =
            ReadyLine::parse(&ready).ok_or_else(|| anyhow!("{name}: bad READY line {ready:?}"))?;
        eprintln!("[e2e] {name} ready: {:?}", self.ready.fields);
        Ok(())
    }

    /// Whether the READY line has been printed (without waiting).
    pub fn has_printed_ready(&mut self) -> bool {
        match self.ready_rx.as_mut().map(|rx| rx.try_recv()) {
            None => true,
            Some(Ok(line)) => {
                self.ready_rx = None;
                self.ready = ReadyLine::parse(&line).unwrap_or_default();
                true
            }
            Some(Err(_)) => false,
        }
    }

    /// Sends a signal by name (`STOP`, `CONT`, ...) with kill(1).
    pub fn signal(&self, sig: &str) -> Result<()> {
        let pid = self
            .child
            .id()
            .ok_or_else(|| anyhow!("{}: already exited", self.name))?;
        let st = std::process::Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status()?;
        if !st.success() {
            bail!("kill -{sig} {pid} failed: {st}");
        }
        Ok(())
    }

    pub fn grpc_url(&self) -> String {
        self.ready
            .grpc_url()
            .unwrap_or_else(|| panic!("{}: READY line has no grpc=", self.name))
    }

    pub fn metrics_addr(&self) -> String {
        self.ready
            .metrics_addr()
            .unwrap_or_else(|| panic!("{}: READY line has no metrics=", self.name))
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Fails if the process has exited (e.g. crashed during the test).
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "{} exited unexpectedly ({status}); stderr tail:\n{}",
                self.name,
                tail(&self.stderr_log, 30)
            );
        }
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
    }

    /// Waits (bounded) for the process to exit by itself.
    pub async fn wait_exit(&mut self, within: Duration) -> Result<std::process::ExitStatus> {
        match tokio::time::timeout(within, self.child.wait()).await {
            Ok(r) => Ok(r?),
            Err(_) => bail!("{} still running after {within:?}", self.name),
        }
    }

    pub async fn kill(&mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}

fn s(v: impl ToString) -> String {
    v.to_string()
}

/// Where an elected distributor listens and how it is run.
#[derive(Debug, Clone)]
pub struct DistributorAt {
    /// Listen and advertised address (`127.0.0.1` by default).
    pub host: String,
    /// Command prefix, e.g. `ip netns exec NS` (empty: run directly).
    pub prefix: Vec<String>,
}

fn listen(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

impl TestEnv {
    pub fn edge_args(&self, slot: u16, config: &std::path::Path) -> Vec<String> {
        edge_args_in(&self.ports, slot, config)
    }

    /// `acd edge` on another port block's SIP, gRPC/metrics slot `slot` and
    /// RTP ports (a second edge of the same test), with `extra` arguments
    /// (e.g. `--edge-id`).
    pub async fn start_edge_in(
        &self,
        name: &str,
        ports: &crate::ports::PortBlock,
        slot: u16,
        distributor_url: &str,
        ivr_urls: &[String],
        extra: &[String],
    ) -> Result<AcdProcess> {
        let mut args = vec![s("edge")];
        args.extend(edge_args_in(ports, slot, &config_path()));
        args.extend([
            s("--distributor"),
            s(distributor_url),
            s("--ivr"),
            ivr_urls.join(","),
        ]);
        args.extend(extra.iter().cloned());
        AcdProcess::spawn(self, name, &args).await
    }

    /// `acd run` (all roles) on this test's ports; gRPC/metrics slot 0.
    pub async fn start_run(&self) -> Result<AcdProcess> {
        self.start_run_with(&config_path(), &[]).await
    }

    /// The arguments of `acd run` on this test's ports (slot 0).
    pub fn run_args(&self) -> Vec<String> {
        let mut args = vec![s("run")];
        args.extend(self.edge_args(0, &config_path()));
        args
    }

    /// `acd run` with another config file (see [`TestEnv::write_config`] and
    /// [`TestEnv::config_variant`])
    /// and extra arguments (e.g. `--sip-tls`).
    pub async fn start_run_with(
        &self,
        config: &std::path::Path,
        extra: &[String],
    ) -> Result<AcdProcess> {
        let mut args = vec![s("run")];
        args.extend(self.edge_args(0, config));
        args.extend(extra.iter().cloned());
        AcdProcess::spawn(self, "acd-run", &args).await
    }

    /// `acd distributor` on slot `slot`, optionally as standby of `primary_url`.
    pub async fn start_distributor(
        &self,
        name: &str,
        slot: u16,
        standby_of: Option<&str>,
    ) -> Result<AcdProcess> {
        let p = &self.ports;
        let mut args = vec![
            s("distributor"),
            s("--config"),
            s(config_path().display()),
            s("--grpc"),
            listen(p.grpc(slot)),
            s("--metrics"),
            listen(p.metrics(slot)),
        ];
        if let Some(url) = standby_of {
            args.extend([s("--standby-of"), s(url)]);
        }
        AcdProcess::spawn(self, name, &args).await
    }

    /// `acd distributor --etcd URL` on slot `slot`: one of a pair elected
    /// through etcd (election `e2e`, 1 s lease). With `wait_ready` false the
    /// process is returned before its READY line.
    pub async fn start_elected_distributor(
        &self,
        name: &str,
        slot: u16,
        etcd_url: &str,
        config: &std::path::Path,
        wait_ready: bool,
    ) -> Result<AcdProcess> {
        let at = DistributorAt {
            host: s("127.0.0.1"),
            prefix: Vec::new(),
        };
        self.start_elected_distributor_at(name, slot, etcd_url, config, wait_ready, &at)
            .await
    }

    /// [`TestEnv::start_elected_distributor`] listening (and advertising)
    /// on `at.host`, run through `at.prefix` (e.g. in a network namespace).
    pub async fn start_elected_distributor_at(
        &self,
        name: &str,
        slot: u16,
        etcd_url: &str,
        config: &std::path::Path,
        wait_ready: bool,
        at: &DistributorAt,
    ) -> Result<AcdProcess> {
        let p = &self.ports;
        let listen = |port: u16| format!("{}:{port}", at.host);
        let args = vec![
            s("distributor"),
            s("--config"),
            s(config.display()),
            s("--grpc"),
            listen(p.grpc(slot)),
            s("--metrics"),
            listen(p.metrics(slot)),
            s("--etcd"),
            s(etcd_url),
            s("--election"),
            s("e2e"),
            s("--lease-ttl-secs"),
            s(1),
            s("--advertise"),
            format!("http://{}:{}", at.host, p.grpc(slot)),
        ];
        AcdProcess::spawn_prefixed(self, name, &at.prefix, &args, wait_ready).await
    }

    /// `acd ivr` on slot `slot`.
    pub async fn start_ivr(&self, name: &str, slot: u16) -> Result<AcdProcess> {
        let p = &self.ports;
        let args = vec![
            s("ivr"),
            s("--config"),
            s(config_path().display()),
            s("--grpc"),
            listen(p.grpc(slot)),
            s("--metrics"),
            listen(p.metrics(slot)),
        ];
        AcdProcess::spawn(self, name, &args).await
    }

    /// `acd edge` on slot `slot` with this test's SIP and RTP ports.
    pub async fn start_edge(
        &self,
        name: &str,
        slot: u16,
        distributor_url: &str,
        ivr_urls: &[String],
    ) -> Result<AcdProcess> {
        self.start_edge_with(name, slot, distributor_url, ivr_urls, &[])
            .await
    }

    /// [`TestEnv::start_edge`] with extra arguments (e.g. `--take-over`).
    pub async fn start_edge_with(
        &self,
        name: &str,
        slot: u16,
        distributor_url: &str,
        ivr_urls: &[String],
        extra: &[String],
    ) -> Result<AcdProcess> {
        let mut args = vec![s("edge")];
        args.extend(self.edge_args(slot, &config_path()));
        args.extend([
            s("--distributor"),
            s(distributor_url),
            s("--ivr"),
            ivr_urls.join(","),
        ]);
        args.extend(extra.iter().cloned());
        AcdProcess::spawn(self, name, &args).await
    }

    /// `acd run` named `name` (a second one takes over the first).
    pub async fn start_run_named(&self, name: &str, extra: &[String]) -> Result<AcdProcess> {
        let mut args = vec![s("run")];
        args.extend(self.edge_args(0, &config_path()));
        args.extend(extra.iter().cloned());
        AcdProcess::spawn(self, name, &args).await
    }
}

/// Listen addresses of an edge on `p`'s ports, gRPC/metrics slot `slot`.
fn edge_args_in(p: &crate::ports::PortBlock, slot: u16, config: &std::path::Path) -> Vec<String> {
    vec![
        s("--config"),
        s(config.display()),
        s("--sip-udp"),
        listen(p.sip()),
        s("--sip-tcp"),
        listen(p.sip()),
        s("--grpc"),
        listen(p.grpc(slot)),
        s("--metrics"),
        listen(p.metrics(slot)),
        s("--rtp-ports"),
        p.rtp_arg(),
        s("--public-ip"),
        s("127.0.0.1"),
    ]
}

impl TestEnv {
    /// [`TestEnv::start_edge`] with `--edge-id`, for tests with several edges
    /// (or one restarted under the same name).
    pub async fn start_edge_named(
        &self,
        name: &str,
        slot: u16,
        distributor_url: &str,
        ivr_urls: &[String],
        edge_id: &str,
    ) -> Result<AcdProcess> {
        let mut args = vec![s("edge")];
        args.extend(self.edge_args(slot, &config_path()));
        args.extend([
            s("--distributor"),
            s(distributor_url),
            s("--ivr"),
            ivr_urls.join(","),
            s("--edge-id"),
            s(edge_id),
        ]);
        AcdProcess::spawn(self, name, &args).await
    }
}
