//! A throw-away PostgreSQL for a test: on 127.0.0.1 at its block's +98 port,
//! data and unix socket in a fresh temporary directory owned by `postgres`
//! (the server refuses to run as root, and the tests run as root), trust
//! authentication, a database `acd`. [`PgServer::stop`] and
//! [`PgServer::start`] take it down and up again on the same data (the
//! outage test); dropping it stops it at once and removes the data.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::env::TestEnv;

pub struct PgServer {
    /// `postgres://postgres@127.0.0.1:<port>/acd`
    pub url: String,
    pub port: u16,
    bin: PathBuf,
    dir: PathBuf,
    log: PathBuf,
}

/// `/usr/lib/postgresql/<newest>/bin`, where Debian keeps the server tools.
pub fn server_bin_dir() -> Result<PathBuf> {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .with_context(|| {
            format!(
                "PostgreSQL is not installed ({} missing; tests/run.sh installs it)",
                root.display()
            )
        })?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((v, e.path().join("bin")))
        })
        .filter(|(_, bin)| bin.join("initdb").is_file() && bin.join("pg_ctl").is_file())
        .collect();
    versions.sort();
    match versions.pop() {
        Some((_, bin)) => Ok(bin),
        None => bail!(
            "no PostgreSQL server binaries (initdb, pg_ctl) under {}",
            root.display()
        ),
    }
}

impl PgServer {
    /// initdb, start (waiting until it accepts connections), create `acd`.
    pub fn start_new(env: &TestEnv) -> Result<PgServer> {
        let bin = server_bin_dir()?;
        let port = env.ports.etcd_client();
        let dir =
            std::env::temp_dir().join(format!("acd-pg-{}-{}", env.ports.n, std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data"))?;
        let log = env.log_path("postgres.log");
        std::fs::File::create(&log)?;
        run(Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir)
            .arg(&log))?;
        let pg = PgServer {
            url: format!("postgres://postgres@127.0.0.1:{port}/acd"),
            port,
            bin,
            log,
            dir,
        };
        let data = pg.data();
        run(pg
            .tool("initdb")
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(&data))?;
        pg.start()?;
        run(pg.tool("createdb").args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            "postgres",
            "acd",
        ]))?;
        Ok(pg)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// `tool` from the server's bin directory, run as `postgres`.
    fn tool(&self, tool: &str) -> Command {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(self.bin.join(tool));
        cmd
    }

    /// Starts the server on the existing data; returns once it accepts
    /// connections (`pg_ctl -w`, bounded by its own 60 s timeout).
    pub fn start(&self) -> Result<()> {
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -c port={} -c unix_socket_directories={} -c fsync=off",
            self.port,
            self.dir.display()
        );
        run(self
            .tool("pg_ctl")
            .args(["-w", "-t", "60", "-l"])
            .arg(&self.log)
            .args(["-o", &opts, "-D"])
            .arg(self.data())
            .arg("start"))
    }

    /// Stops the server (fast: open sessions are cut, as in an outage).
    pub fn stop(&self) -> Result<()> {
        run(self
            .tool("pg_ctl")
            .args(["-w", "-t", "60", "-m", "fast", "-D"])
            .arg(self.data())
            .arg("stop"))
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["-w", "-m", "immediate", "-D"])
            .arg(self.dir.join("data"))
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `cmd`, failing with its output when it fails.
fn run(cmd: &mut Command) -> Result<()> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}
