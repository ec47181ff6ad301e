//! A real single-member etcd for a test: loopback only, on its block's etcd
//! ports (+98 client, +99 peer), data in a fresh temporary directory, fast
//! Raft timings (heartbeat 10 ms, election 100 ms: the smallest lease TTL
//! etcd then grants is 1 s, `ceil(1.5 × election timeout)`). Killed and its
//! data removed on drop.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::time::Instant;

use crate::env::{tail, TestEnv};

/// The etcd binary: `$ETCD_BIN`, else `etcd` on the PATH.
pub fn etcd_bin() -> PathBuf {
    std::env::var_os("ETCD_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("etcd"))
}

pub struct EtcdServer {
    /// `http://127.0.0.1:<client port>`
    pub url: String,
    child: Child,
    data_dir: PathBuf,
    log: PathBuf,
}

impl EtcdServer {
    /// Starts etcd and waits (bounded) until `/health` answers.
    pub async fn start(env: &TestEnv) -> Result<EtcdServer> {
        Self::start_with(env, &[]).await
    }

    /// [`EtcdServer::start`] also listening on `extra_hosts` (e.g. the host's
    /// end of a test's veth link, for processes in network namespaces);
    /// `url` stays the loopback one.
    pub async fn start_with(env: &TestEnv, extra_hosts: &[String]) -> Result<EtcdServer> {
        let client = format!("http://127.0.0.1:{}", env.ports.etcd_client());
        let listen_client = std::iter::once(client.clone())
            .chain(
                extra_hosts
                    .iter()
                    .map(|h| format!("http://{h}:{}", env.ports.etcd_client())),
            )
            .collect::<Vec<_>>()
            .join(",");
        let peer = format!("http://127.0.0.1:{}", env.ports.etcd_peer());
        let data_dir =
            std::env::temp_dir().join(format!("acd-etcd-{}-{}", env.ports.n, std::process::id()));
        let _ = std::fs::remove_dir_all(&data_dir);
        let log = env.log_path("etcd.stderr.log");
        let child = Command::new(etcd_bin())
            .args(["--name", "e2e", "--data-dir"])
            .arg(&data_dir)
            .args([
                "--listen-client-urls",
                &listen_client,
                "--advertise-client-urls",
                &client,
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
                "--initial-cluster",
                &format!("e2e={peer}"),
                "--heartbeat-interval",
                "10",
                "--election-timeout",
                "100",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&log)?))
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("spawning {}", etcd_bin().display()))?;
        let mut etcd = EtcdServer {
            url: client,
            child,
            data_dir,
            log,
        };
        etcd.await_healthy(Duration::from_secs(15)).await?;
        eprintln!("[e2e] etcd ready at {}", etcd.url);
        Ok(etcd)
    }

    async fn await_healthy(&mut self, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        let addr = self.url.trim_start_matches("http://").to_string();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                bail!("etcd exited ({status}):\n{}", tail(&self.log, 20));
            }
            if health(&addr).await.unwrap_or(false) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "etcd not healthy within {within:?}:\n{}",
                    tail(&self.log, 20)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// `GET /health` → `{"health":"true"}`.
async fn health(addr: &str) -> Result<bool> {
    let mut s = tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(addr)).await??;
    s.write_all(format!("GET /health HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await?;
    let mut body = String::new();
    tokio::time::timeout(Duration::from_secs(1), s.read_to_string(&mut body)).await??;
    Ok(body.contains("\"health\":\"true\""))
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}
