//! `acd`: one binary, one role per subcommand. This crate only wires the
//! shells together; all behaviour lives in the role crates.
//!
//! Start-up, the same for every role:
//! ```text
//! signals ─▶ config ─▶ metrics recorder ─▶ bind gRPC + metrics listeners
//!   ─▶ distributor / IVR runner services ─▶ gRPC serves (health NOT_SERVING)
//!   ─▶ edge (`run`: over loopback gRPC to this very process)
//!   ─▶ health SERVING, /ready 200, sd_notify READY=1, `ACD READY ...` on stdout
//! ```
//! Shutdown (SIGINT/SIGTERM): not ready first, then the gRPC server stops
//! accepting and gets a short grace period, then the process exits 0.

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use acd_config::{ConfigErrors, Loaded};
use acd_distributor::{Distributor, Role};
use acd_edge::{EdgeHandle, EdgeSettings};
use anyhow::{bail, Context, Result};
use clap::Parser;
use metrics_exporter_prometheus::PrometheusBuilder;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::server::NamedService;
use tonic::transport::{Endpoint, Server};

mod admin;
mod check;
mod cli;
mod health;
mod http;
mod notify;

use cli::{Cli, Cmd, CommonArgs, SipArgs};

/// How long an edge waits for its distributor before reporting ready anyway.
const DISTRIBUTOR_WAIT: Duration = Duration::from_secs(5);
/// Grace period for in-flight gRPC calls at shutdown; long-lived streams
/// (an edge's Attach, an agent's Watch) are cut after it and re-attach to
/// whichever process takes over.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Cmd::CheckConfig { file } = &cli.command {
        return check_config(file);
    }
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("acd: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(serve(cli.command));
    // Tasks still running (edge, distributor timers, streams) are dropped here.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => match e.downcast_ref::<ConfigErrors>() {
            Some(errors) => {
                eprintln!("{errors}");
                ExitCode::from(2)
            }
            None => {
                eprintln!("acd: error: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: logs in files and the journal stay plain.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_env_filter(filter)
        .init();
}

/// `acd check-config FILE`: exit 0 with "FILE: ok", or 2 with one error per line.
fn check_config(file: &Path) -> ExitCode {
    match check::check(file) {
        Ok(_) => {
            println!("{}: ok", file.display());
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            ExitCode::from(2)
        }
    }
}

/// The role a process plays, as named in the READY line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RoleName {
    Run,
    Edge,
    Ivr,
    Distributor,
}

impl RoleName {
    fn as_str(self) -> &'static str {
        match self {
            RoleName::Run => "run",
            RoleName::Edge => "edge",
            RoleName::Ivr => "ivr",
            RoleName::Distributor => "distributor",
        }
    }
    /// Roles reported by AdminService.Status.
    fn roles(self) -> &'static [&'static str] {
        match self {
            RoleName::Run => &["edge", "ivr", "distributor"],
            RoleName::Edge => &["edge"],
            RoleName::Ivr => &["ivr"],
            RoleName::Distributor => &["distributor"],
        }
    }
}

/// Where an edge sends IVR steps and queue requests.
enum EdgePeers {
    /// `acd run`: this process's own gRPC listener.
    Loopback,
    Remote {
        distributor: String,
        ivr: Vec<String>,
        edge_id: Option<String>,
    },
}

/// Everything a serving role needs from the command line.
struct Plan {
    role: RoleName,
    common: CommonArgs,
    /// With an edge: its SIP options and peers.
    edge: Option<(SipArgs, EdgePeers)>,
    ivr: bool,
    /// With a distributor: `Some(None)` primary, `Some(Some(url))` standby.
    distributor: Option<Option<String>>,
}

impl Plan {
    fn from_cmd(cmd: Cmd) -> Plan {
        match cmd {
            Cmd::Run { common, sip } => Plan {
                role: RoleName::Run,
                common,
                edge: Some((sip, EdgePeers::Loopback)),
                ivr: true,
                distributor: Some(None),
            },
            Cmd::Edge {
                common,
                sip,
                distributor,
                ivr,
                edge_id,
            } => Plan {
                role: RoleName::Edge,
                common,
                edge: Some((
                    sip,
                    EdgePeers::Remote {
                        distributor,
                        ivr,
                        edge_id,
                    },
                )),
                ivr: false,
                distributor: None,
            },
            Cmd::Ivr { common } => Plan {
                role: RoleName::Ivr,
                common,
                edge: None,
                ivr: true,
                distributor: None,
            },
            Cmd::Distributor { common, standby_of } => Plan {
                role: RoleName::Distributor,
                common,
                edge: None,
                ivr: false,
                distributor: Some(standby_of),
            },
            Cmd::CheckConfig { .. } => {
                unreachable!("check-config is handled before the runtime starts")
            }
        }
    }
}

async fn serve(cmd: Cmd) -> Result<()> {
    let plan = Plan::from_cmd(cmd);
    let role = plan.role;
    // Installed first: a signal arriving during start-up still shuts down cleanly.
    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;

    let loaded = Loaded::from_option(plan.common.config.as_deref())?;
    let cfg = &loaded.config;
    check_urls(&plan)?;

    let prometheus = PrometheusBuilder::new()
        .install_recorder()
        .context("installing the Prometheus recorder")?;
    metrics::gauge!("acd_build_info", "version" => env!("CARGO_PKG_VERSION"), "role" => role.as_str()).set(1.0);

    let grpc_listener = bind("gRPC", plan.common.grpc.unwrap_or(cfg.grpc.listen)).await?;
    let grpc_addr = grpc_listener
        .local_addr()
        .context("local address of the gRPC listener")?;
    let metrics_listener =
        bind("metrics", plan.common.metrics.unwrap_or(cfg.metrics.listen)).await?;
    let metrics_addr = metrics_listener
        .local_addr()
        .context("local address of the metrics listener")?;

    let edge_cell: Arc<OnceLock<EdgeHandle>> = Arc::new(OnceLock::new());
    let (reporter, health_service) = tonic_health::server::health_reporter();
    let readiness = health::Readiness::new(reporter, edge_cell.clone());
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(acd_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("building the gRPC reflection service")?;

    let distributor = plan.distributor.as_ref().map(|standby_of| {
        let role = match standby_of {
            Some(url) => Role::Standby {
                primary_url: url.clone(),
            },
            None => Role::Primary,
        };
        Distributor::new(acd_distributor::routing_config(cfg), role)
    });

    let admin =
        admin::AdminApi::new(role.roles(), distributor.clone(), readiness.clone()).into_service();
    readiness.register(service_name(&admin));
    let mut router = Server::builder()
        .add_service(health_service)
        .add_service(reflection)
        .add_service(admin);
    if let Some(d) = &distributor {
        let agents = acd_distributor::agent_service::AgentApi::new(d.clone()).into_service();
        let edges = acd_distributor::edge_service::EdgeApi::new(d.clone()).into_service();
        let replication =
            acd_distributor::replication::ReplicationApi::new(d.clone()).into_service();
        readiness.register(service_name(&agents));
        readiness.register(service_name(&edges));
        readiness.register(service_name(&replication));
        router = router
            .add_service(agents)
            .add_service(edges)
            .add_service(replication);
    }
    if plan.ivr {
        let ivr = acd_ivr_runner::IvrRunner::new(cfg.flows.clone()).into_service();
        readiness.register(service_name(&ivr));
        router = router.add_service(ivr);
    }
    readiness.set(false).await;

    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let mut grpc_server = tokio::spawn(router.serve_with_incoming_shutdown(
        TcpListenerStream::new(grpc_listener),
        async move {
            let _ = stop_rx.wait_for(|stop| *stop).await;
        },
    ));
    tracing::info!(addr = %grpc_addr, "gRPC listening");
    http::spawn(metrics_listener, prometheus, readiness.clone());
    tracing::info!(addr = %metrics_addr, "metrics listening (/metrics, /ready)");

    if let (Some(d), Some(Some(primary))) = (&distributor, &plan.distributor) {
        acd_distributor::replication::follow(d.clone(), primary.clone());
        tracing::info!(%primary, "standby: following the primary");
    }

    let edge = match &plan.edge {
        Some((sip, peers)) => Some(start_edge(&loaded, sip, peers, grpc_addr, &edge_cell).await?),
        None => None,
    };

    readiness.set(true).await;
    let mut ready = format!("ACD READY role={} grpc={grpc_addr}", role.as_str());
    if let Some(edge) = &edge {
        ready.push_str(&format!(
            " sip_udp={} sip_tcp={}",
            edge.sip_udp, edge.sip_tcp
        ));
        if let Some(tls) = edge.sip_tls {
            ready.push_str(&format!(" sip_tls={tls}"));
        }
    }
    ready.push_str(&format!(" metrics={metrics_addr}"));
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{ready}").context("writing the READY line to stdout")?;
        stdout.flush().context("flushing stdout")?;
    }
    tracing::info!(
        role = role.as_str(),
        version = env!("CARGO_PKG_VERSION"),
        "ready"
    );

    let signal = tokio::select! {
        _ = sigint.recv() => "SIGINT",
        _ = sigterm.recv() => "SIGTERM",
        stopped = &mut grpc_server => {
            return match stopped {
                Ok(Ok(())) => Err(anyhow::anyhow!("the gRPC server on {grpc_addr} stopped unexpectedly")),
                Ok(Err(e)) => Err(e).with_context(|| format!("the gRPC server on {grpc_addr} failed")),
                Err(e) => Err(e).with_context(|| format!("the gRPC server on {grpc_addr} panicked")),
            };
        }
    };
    tracing::info!("{signal}: shutting down");
    notify::send("STOPPING=1");
    readiness.set(false).await;
    let _ = stop_tx.send(true);
    if tokio::time::timeout(SHUTDOWN_GRACE, grpc_server)
        .await
        .is_err()
    {
        tracing::info!("open gRPC streams cut after {SHUTDOWN_GRACE:?}");
    }
    Ok(())
}

/// Rejects malformed peer URLs before anything starts, naming the flag.
fn check_urls(plan: &Plan) -> Result<()> {
    let check = |flag: &str, url: &str| -> Result<()> {
        Endpoint::from_shared(url.to_string())
            .map(drop)
            .with_context(|| format!("{flag}: bad URL `{url}`"))
    };
    if let Some((
        _,
        EdgePeers::Remote {
            distributor, ivr, ..
        },
    )) = &plan.edge
    {
        // A list: the edge follows the leader among them.
        for url in distributor
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
        {
            check("--distributor", url)?;
        }
        if ivr.iter().all(|u| u.trim().is_empty()) {
            bail!("--ivr: no IVR runner URL given");
        }
        for url in ivr {
            check("--ivr", url)?;
        }
    }
    if let Some(Some(primary)) = &plan.distributor {
        check("--standby-of", primary)?;
    }
    Ok(())
}

async fn bind(what: &str, addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot bind the {what} listener on {addr}"))
}

fn service_name<S: NamedService>(_: &S) -> &'static str {
    S::NAME
}

/// `http://ADDR` reaching a listener bound to `addr` from this host.
fn loopback_url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::from([127, 0, 0, 1]),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

async fn start_edge(
    loaded: &Loaded,
    sip: &SipArgs,
    peers: &EdgePeers,
    grpc_addr: SocketAddr,
    cell: &OnceLock<EdgeHandle>,
) -> Result<EdgeHandle> {
    let cfg = &loaded.config;
    let public_ip = sip.public_ip.unwrap_or(cfg.sip.public_ip);
    let sip_udp = sip.sip_udp.unwrap_or(cfg.sip.udp);
    let (distributor_url, ivr_urls, edge_id) = match peers {
        EdgePeers::Loopback => {
            let url = loopback_url(grpc_addr);
            (url.clone(), vec![url], None)
        }
        EdgePeers::Remote {
            distributor,
            ivr,
            edge_id,
        } => {
            let ivr = ivr
                .iter()
                .filter(|u| !u.trim().is_empty())
                .cloned()
                .collect();
            (distributor.clone(), ivr, edge_id.clone())
        }
    };
    // Stable across restarts of the same edge, distinct between edges of a
    // site; with an ephemeral port the pid keeps it distinct.
    let edge_id = edge_id.unwrap_or_else(|| match sip_udp.port() {
        0 => format!("edge-{public_ip}-pid{}", std::process::id()),
        port => format!("edge-{public_ip}-{port}"),
    });
    let settings = EdgeSettings {
        sip_udp,
        sip_tcp: sip.sip_tcp.unwrap_or(cfg.sip.tcp),
        sip_tls: sip.sip_tls,
        public_ip,
        rtp_ports: sip
            .rtp_ports
            .unwrap_or((cfg.media.rtp_port_min, cfg.media.rtp_port_max)),
        distributor_url: distributor_url.clone(),
        ivr_urls,
        edge_id: edge_id.clone(),
    };
    let edge = acd_edge::start(settings, loaded)
        .await
        .context("starting the SIP edge")?;
    let _ = cell.set(edge.clone());
    tracing::info!(%edge_id, distributor = %distributor_url, "edge started");

    // Ready only once calls can be queued, within reason: a distributor that
    // is down must not keep the edge from starting (flows have fallbacks).
    let waited = tokio::time::timeout(DISTRIBUTOR_WAIT, async {
        while !edge.status().distributor_connected {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    if waited.is_err() {
        tracing::warn!(distributor = %distributor_url, "distributor not reachable after {DISTRIBUTOR_WAIT:?}; starting anyway, the edge keeps retrying");
    }
    Ok(edge)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_urls() {
        assert_eq!(
            loopback_url("0.0.0.0:5000".parse().unwrap()),
            "http://127.0.0.1:5000"
        );
        assert_eq!(
            loopback_url("[::]:5000".parse().unwrap()),
            "http://[::1]:5000"
        );
        assert_eq!(
            loopback_url("10.1.2.3:7".parse().unwrap()),
            "http://10.1.2.3:7"
        );
    }
}
