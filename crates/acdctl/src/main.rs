//! `acdctl`: the operator's and ops' command-line client of `acd`.

mod admin;
mod agent;
mod callbacks;
mod console;
mod explain;
mod installation;
mod output;
mod queue;
mod replay;
mod report;
mod rolling;
mod servers;
mod supervisor;

use std::process::ExitCode;
use std::time::Duration;

use acd_proto::client::{AuthChannel, ClientTls, Credentials};
use anyhow::{anyhow, Result};
use clap::{Parser, Subcommand};
use tonic::transport::Endpoint;

/// Deadline of every unary call (not of `agent watch`).
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Parser, Debug)]
#[command(
    name = "acdctl",
    version,
    about = "Command-line client of the acd contact-centre daemon"
)]
struct Cli {
    /// gRPC addresses of acd, comma separated (a bare host:port means
    /// http://host:port): commands go to whichever distributor leads.
    #[arg(long, value_name = "URL[,URL...]", env = "ACD_SERVER", default_value = "http://127.0.0.1:50051", value_parser = parse_servers)]
    server: String,
    /// One JSON object per line instead of tables.
    #[arg(long, global = true)]
    json: bool,
    /// Bearer token of a supervisor or admin (`[[access.users]]`).
    #[arg(long, global = true, env = "ACD_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The agent's own password: `agent ...` commands then authenticate as
    /// the agent they name (HTTP Basic), instead of with `--token`.
    #[arg(
        long,
        global = true,
        env = "ACD_AGENT_PASSWORD",
        hide_env_values = true
    )]
    agent_password: Option<String>,
    /// PEM CA to trust for `https://` servers (default: the system's roots).
    #[arg(long, global = true, env = "ACD_CA", value_name = "FILE")]
    ca: Option<std::path::PathBuf>,
    /// PEM certificate and key to present where the server requires mutual TLS.
    #[arg(
        long,
        global = true,
        env = "ACD_CERT",
        value_name = "FILE",
        requires = "key"
    )]
    cert: Option<std::path::PathBuf>,
    #[arg(
        long,
        global = true,
        env = "ACD_KEY",
        value_name = "FILE",
        requires = "cert"
    )]
    key: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Agent login, state and events.
    #[command(subcommand)]
    Agent(AgentCmd),
    /// Queues.
    #[command(subcommand)]
    Queue(QueueCmd),
    /// Supervisors' live boards and changes (role supervisor; `apply` admin).
    #[command(subcommand)]
    Supervisor(supervisor::SupervisorCmd),
    // Room for h8-replay's `Explain` and `Replay` (and `agent console`).
    /// Roles, replication and edge status of the daemon; with `--server
    /// URL,URL...` or `--installation FILE`, one row per process of the
    /// installation (exit 1 if any is down or not ready).
    Status(StatusArgs),
    /// Stop taking new calls and report the calls still active.
    Drain,
    /// Print the edge's whole state (calls, dialogs, timers, media) as JSON.
    Snapshot,
    /// Re-read the config and flow files on every IVR runner named by
    /// `--server` (each one, not just the leader): prints each runner's
    /// flows and which changed; an invalid config is refused with its file
    /// and line, and the flows in service stay.
    Reload,
    /// Callback requests the distributor keeps (queue, number, priority,
    /// voicemail, requested at, caller data).
    Callbacks {
        /// Ask these servers instead of the global `--server`.
        #[arg(long = "server", value_name = "URL[,URL...]", value_parser = parse_servers)]
        server: Option<String>,
    },
    /// Hand the distributor primary's role to its standby (run against the
    /// primary): commands are held until the standby leads.
    Switchover,
    /// Restart every process of an installation one at a time (IVR runners,
    /// distributor standby, switchover, old primary, edges), waiting for each
    /// to be ready again; stops at the first one that is not.
    RollingRestart {
        /// TOML file with one `[[process]]` per process: name, role
        /// (ivr|distributor|edge|run), admin (gRPC URL), restart (shell command).
        #[arg(long, value_name = "FILE")]
        installation: std::path::PathBuf,
        /// Longest wait for one process to be ready again.
        #[arg(long, default_value = "60", value_name = "SECS")]
        timeout_secs: u64,
    },
    /// What-if: replay a recorded event journal (a day of traffic) against
    /// a changed configuration, offline, and compare service level, waits and
    /// agent load with the baseline's.
    Replay(replay::ReplayArgs),
    /// Why a call went where it went: every routing decision recorded for it
    /// (candidates with scores, calls that lost).
    Explain { call_id: String },
    /// Call figures from the records database over a time range, by queue,
    /// agent or interval (table, CSV or JSON); `report staffing`: operators
    /// needed per interval (Erlang C and A) and a 24/7 shift plan.
    Report(Box<report::ReportArgs>),
}

/// `acdctl status` over several processes.
#[derive(clap::Args, Debug)]
struct StatusArgs {
    /// gRPC addresses of every process, comma separated (one row each).
    #[arg(
        long = "server",
        value_name = "URL[,URL...]",
        conflicts_with = "installation"
    )]
    servers: Option<String>,
    /// A file listing the processes' gRPC addresses, one per line (`#` comments).
    #[arg(long, value_name = "FILE")]
    installation: Option<std::path::PathBuf>,
}

impl StatusArgs {
    /// The processes to ask, if more than the one `--server` before the
    /// subcommand names.
    fn processes(&self) -> Result<Option<Vec<String>>> {
        if let Some(list) = &self.servers {
            return Ok(Some(
                installation::parse_server_list(list).map_err(|e| anyhow!("--server: {e}"))?,
            ));
        }
        let Some(file) = &self.installation else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(file)
            .map_err(|e| anyhow!("--installation {}: {e}", file.display()))?;
        installation::parse_installation(&text)
            .map(Some)
            .map_err(|e| anyhow!("--installation {}: {e}", file.display()))
    }
}

#[derive(Subcommand, Debug)]
pub enum AgentCmd {
    /// Log an agent in at an extension.
    Login {
        agent: String,
        #[arg(long)]
        extension: String,
    },
    /// Make an agent ready for calls.
    Ready { agent: String },
    /// Make an agent not ready.
    NotReady {
        agent: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Log an agent out.
    Logout { agent: String },
    /// Show one agent.
    Show { agent: String },
    /// List every agent.
    List,
    /// Interactive operator console (terminal UI): logs the agent in and
    /// shows state, wrap-up countdown and the call pop; keys: r ready,
    /// n not ready, w end wrap-up, a accept, x reject, t transfer, l logout,
    /// q quit.
    Console {
        agent: String,
        #[arg(long)]
        extension: String,
    },
    /// Stream an agent's status changes and offers, one line per event.
    Watch {
        agent: String,
        /// Stop after this many events.
        #[arg(long)]
        count: Option<u64>,
    },
    /// Take the call offered to the agent.
    Accept { agent: String, call: String },
    /// Decline the call offered to the agent (it goes to another agent).
    Reject { agent: String, call: String },
    /// End the agent's wrap-up now: ready, or not ready with `--reason`.
    Wrapup {
        agent: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Hand the agent's connected call to a queue or another agent.
    Transfer {
        agent: String,
        call: String,
        #[arg(
            long,
            conflicts_with = "to_agent",
            required_unless_present = "to_agent"
        )]
        queue: Option<String>,
        #[arg(long)]
        to_agent: Option<String>,
    },
    /// The site's not-ready reason codes.
    Reasons,
}

impl AgentCmd {
    /// The agent the command acts for, if one.
    fn agent(&self) -> Option<&str> {
        match self {
            AgentCmd::Login { agent, .. }
            | AgentCmd::Ready { agent }
            | AgentCmd::NotReady { agent, .. }
            | AgentCmd::Logout { agent }
            | AgentCmd::Show { agent }
            | AgentCmd::Watch { agent, .. }
            | AgentCmd::Accept { agent, .. }
            | AgentCmd::Reject { agent, .. }
            | AgentCmd::Wrapup { agent, .. }
            | AgentCmd::Transfer { agent, .. }
            | AgentCmd::Console { agent, .. } => Some(agent),
            AgentCmd::List | AgentCmd::Reasons => None,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum QueueCmd {
    /// List every queue with its counters.
    List,
}

/// Each address checked and normalised; kept as one comma-separated string.
fn parse_servers(list: &str) -> Result<String, String> {
    let urls = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(parse_server)
        .collect::<Result<Vec<_>, _>>()?;
    if urls.is_empty() {
        return Err("no server address".into());
    }
    Ok(urls.join(","))
}

fn parse_server(s: &str) -> Result<String, String> {
    let url = if s.contains("://") {
        s.to_string()
    } else {
        format!("http://{s}")
    };
    Endpoint::from_shared(url.clone()).map_err(|e| format!("invalid server URL {s:?}: {e}"))?;
    Ok(url)
}

/// A unary request with the call deadline.
pub fn request<T>(msg: T) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    req.set_timeout(CALL_TIMEOUT);
    req
}

/// A channel to `url` sending the credentials of the command line.
async fn connect(url: &str) -> Result<AuthChannel> {
    let endpoint = acd_proto::client::site_endpoint(url)?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true);
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| anyhow!("cannot reach {url}: {}", chain(&e)))?;
    Ok(acd_proto::client::site_authed(channel))
}

/// Who the command acts as: the agent it names with `--agent-password`,
/// else the `--token` holder.
fn credentials(cli: &Cli) -> Credentials {
    let agent = match &cli.command {
        Command::Agent(cmd) => cmd.agent(),
        _ => None,
    };
    match (agent, &cli.agent_password) {
        (Some(agent), Some(pw)) => Credentials::basic(agent, pw),
        _ => Credentials::bearer(cli.token.as_deref().unwrap_or_default()),
    }
}

/// Sets this process's identity for every connection it makes.
fn set_identity(cli: &Cli) -> Result<()> {
    let read = |flag: &str, f: &std::path::Path| {
        std::fs::read(f).map_err(|e| anyhow!("{flag} {}: {e}", f.display()))
    };
    let ca_pem = cli.ca.as_deref().map(|f| read("--ca", f)).transpose()?;
    let identity_pem = match (&cli.cert, &cli.key) {
        (Some(c), Some(k)) => Some((read("--cert", c)?, read("--key", k)?)),
        _ => None,
    };
    let tls = ClientTls {
        ca_pem,
        identity_pem,
    };
    acd_proto::client::set_site_identity(credentials(cli), tls);
    Ok(())
}

/// An error and its sources, `: `-separated, without repeated parts
/// (hyper and tonic often wrap an error in one with the same text).
fn chain(err: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = Some(err);
    while let Some(e) = cur {
        let text = e.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        cur = e.source();
    }
    parts.join(": ")
}

async fn run(cli: Cli) -> Result<()> {
    set_identity(&cli)?;
    if let Command::RollingRestart {
        installation,
        timeout_secs,
    } = &cli.command
    {
        return rolling::run(installation, Duration::from_secs(*timeout_secs)).await;
    }
    // Over an installation, no single process needs to be up.
    if let Command::Status(args) = &cli.command {
        if let Some(servers) = args.processes()? {
            return installation::status(&servers, cli.json).await;
        }
    }
    if let Command::Replay(args) = &cli.command {
        return replay::run(args, cli.json);
    }
    if let Command::Report(args) = &cli.command {
        return report::run(args, &cli.server).await;
    }
    if let Command::Reload = &cli.command {
        return admin::reload(&cli.server, cli.json).await;
    }
    if let Command::Callbacks { server: Some(list) } = &cli.command {
        let mut servers = servers::Servers::new(list)?;
        return callbacks::list(&mut servers, cli.json).await;
    }
    let mut servers = servers::Servers::new(&cli.server)?;
    match cli.command {
        Command::Agent(cmd) => agent::run(&mut servers, cmd, cli.json).await,
        Command::Queue(QueueCmd::List) => queue::list(&mut servers, cli.json).await,
        Command::Supervisor(cmd) => supervisor::run(&mut servers, cmd, cli.json).await,
        Command::Status(_) => admin::status(&mut servers, cli.json).await,
        Command::Drain => admin::drain(&mut servers, cli.json).await,
        Command::Snapshot => admin::snapshot(&mut servers).await,
        Command::Callbacks { .. } => callbacks::list(&mut servers, cli.json).await,
        Command::Explain { call_id } => explain::run(&mut servers, &call_id, cli.json).await,
        Command::RollingRestart { .. }
        | Command::Reload
        | Command::Replay(_)
        | Command::Report(_) => {
            unreachable!("handled above")
        }
        Command::Switchover => admin::switchover(&mut servers, cli.json).await,
    }
}

/// `acdctl: NOT_FOUND: unknown agent bob`, or the error chain.
fn error_line(err: &anyhow::Error) -> String {
    match err.downcast_ref::<tonic::Status>() {
        Some(st) if st.message().is_empty() => format!("acdctl: {}", output::code_name(st.code())),
        Some(st) => format!("acdctl: {}: {}", output::code_name(st.code()), st.message()),
        None => format!("acdctl: {err:#}"),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        // `acdctl ... | head`: the reader left; not an error.
        Err(e)
            if e.downcast_ref::<std::io::Error>().map(|io| io.kind())
                == Some(std::io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}", error_line(&e));
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_commands() {
        let cli = Cli::try_parse_from([
            "acdctl",
            "--json",
            "agent",
            "login",
            "alice",
            "--extension",
            "1001",
        ])
        .unwrap();
        assert!(cli.json);
        assert!(
            matches!(cli.command, Command::Agent(AgentCmd::Login { ref agent, ref extension }) if agent == "alice" && extension == "1001")
        );
        let cli = Cli::try_parse_from([
            "acdctl",
            "--server",
            "10.0.0.1:6000",
            "agent",
            "watch",
            "bob",
            "--count",
            "3",
        ])
        .unwrap();
        assert_eq!(cli.server, "http://10.0.0.1:6000");
        assert!(matches!(
            cli.command,
            Command::Agent(AgentCmd::Watch { count: Some(3), .. })
        ));
        let cli = Cli::try_parse_from(["acdctl", "agent", "not-ready", "bob", "--reason", "lunch"])
            .unwrap();
        assert!(
            matches!(cli.command, Command::Agent(AgentCmd::NotReady { ref reason, .. }) if reason == "lunch")
        );
        assert!(Cli::try_parse_from(["acdctl", "queue", "list"]).is_ok());
        assert!(Cli::try_parse_from(["acdctl", "status"]).is_ok());
        let cli = Cli::try_parse_from(["acdctl", "status", "--server", "a:1,b:2"]).unwrap();
        match &cli.command {
            Command::Status(args) => assert_eq!(
                args.processes().unwrap(),
                Some(vec!["http://a:1".to_string(), "http://b:2".to_string()])
            ),
            other => panic!("parsed as {other:?}"),
        }
        assert!(Cli::try_parse_from([
            "acdctl",
            "status",
            "--server",
            "a:1",
            "--installation",
            "f"
        ])
        .is_err());
        assert!(Cli::try_parse_from(["acdctl", "drain"]).is_ok());
        let cli = Cli::try_parse_from([
            "acdctl",
            "replay",
            "--journal",
            "j",
            "--config",
            "new.toml",
            "--from",
            "2026-11-28T09:00:00Z",
            "--json",
        ])
        .unwrap();
        assert!(cli.json);
        assert!(
            matches!(cli.command, Command::Replay(ref a) if a.from.is_some() && a.baseline.is_none())
        );
        assert!(Cli::try_parse_from(["acdctl", "replay", "--config", "x"]).is_err());
        assert!(Cli::try_parse_from(["acdctl", "explain", "c1"]).is_ok());
        assert!(Cli::try_parse_from(["acdctl", "agent", "login", "alice"]).is_err());
        let cli = Cli::try_parse_from([
            "acdctl",
            "--server",
            "10.0.0.1:6000, http://10.0.0.2:6000",
            "status",
        ])
        .unwrap();
        assert_eq!(cli.server, "http://10.0.0.1:6000,http://10.0.0.2:6000");
        assert!(Cli::try_parse_from(["acdctl", "--server", " , ", "status"]).is_err());
    }

    #[test]
    fn status_errors_are_rendered_with_their_code() {
        let e = anyhow::Error::from(tonic::Status::not_found("unknown agent bob"));
        assert_eq!(error_line(&e), "acdctl: NOT_FOUND: unknown agent bob");
    }
}
