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
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tonic::server::NamedService;
use tonic::transport::{Endpoint, Server};

mod admin;
mod check;
mod cli;
mod demo_orders;
mod grpc_access;
mod health;
mod http;
mod notify;
mod reload;
mod shutdown;
mod takeover;
mod telemetry;
mod wallboard;
mod watchdog;

use cli::{Cli, Cmd, CommonArgs, IvrArgs, LeadershipArgs, SipArgs};

/// Longest a taking-over edge waits to attach to its distributor before it
/// tells the old process it is done.
const TAKE_OVER_ATTACH_WAIT: Duration = Duration::from_secs(2);
/// How often readiness is re-evaluated (distributor attached, standby
/// following) once the process is up.
const READINESS_POLL: Duration = Duration::from_millis(100);
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
    let result = match cli.command {
        Cmd::DemoOrders { listen, metrics } => {
            runtime.block_on(demo_orders::standalone(listen, metrics))
        }
        cmd => runtime.block_on(serve(cmd)),
    };
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

/// Starts the call records writer on the distributor's committed records
/// (primary and standby alike), next to the event journal.
fn start_records(
    d: &acd_distributor::Distributor,
    loaded: &acd_config::Loaded,
    records: &acd_config::RecordsConfig,
) -> anyhow::Result<()> {
    let db = acd_records::Database::parse(&records.database, &loaded.base_dir())
        .map_err(anyhow::Error::msg)
        .context("[records] database")?;
    let spool = loaded.resolve(&records.spool);
    // Detached: it ends with the process; the spool keeps what is unwritten.
    acd_records::writer::spawn(db, spool.clone(), d.tap_committed())
        .with_context(|| format!("call records spool in {}", spool.display()))?;
    Ok(())
}

/// `acd check-config FILE`: exit 0 with "FILE: ok", or 2 with one error per line.
fn check_config(file: &Path) -> ExitCode {
    match check::check(file) {
        Ok(loaded) => {
            for w in acd_config::access::warnings(&loaded.config) {
                eprintln!("{}: warning: {w}", file.display());
            }
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
    /// With an IVR runner: its options.
    ivr: Option<IvrArgs>,
    /// With a distributor: `Some(None)` primary, `Some(Some(url))` standby.
    distributor: Option<Option<String>>,
    /// With a distributor: leadership options (etcd) from the command line.
    leadership: Option<LeadershipArgs>,
}

impl Plan {
    fn from_cmd(cmd: Cmd) -> Plan {
        match cmd {
            Cmd::Run { common, sip, ivr } => Plan {
                role: RoleName::Run,
                common,
                edge: Some((sip, EdgePeers::Loopback)),
                ivr: Some(ivr),
                distributor: Some(None),
                leadership: None,
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
                ivr: None,
                distributor: None,
                leadership: None,
            },
            Cmd::Ivr { common, ivr } => Plan {
                role: RoleName::Ivr,
                common,
                edge: None,
                ivr: Some(ivr),
                distributor: None,
                leadership: None,
            },
            Cmd::Distributor {
                common,
                standby_of,
                leadership,
            } => Plan {
                role: RoleName::Distributor,
                common,
                edge: None,
                ivr: None,
                distributor: Some(standby_of),
                leadership: Some(leadership),
            },
            Cmd::CheckConfig { .. } => {
                unreachable!("check-config is handled before the runtime starts")
            }
            Cmd::DemoOrders { .. } => unreachable!("demo-orders does not serve a role"),
        }
    }
}

async fn serve(cmd: Cmd) -> Result<()> {
    let plan = Plan::from_cmd(cmd);
    let role = plan.role;
    let _ = admin::started_at_ms();
    // Installed first: a signal arriving during start-up still shuts down cleanly.
    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;

    let loaded = Loaded::from_option(plan.common.config.as_deref())?;
    let cfg = &loaded.config;
    check_urls(&plan)?;
    // Before any client of this process dials out: they present its identity.
    let access_layer = grpc_access::setup(&loaded)?;
    let server_tls = grpc_access::server_tls(&loaded)?;
    let prometheus = telemetry::install()?;
    metrics::gauge!("acd_build_info", "version" => env!("CARGO_PKG_VERSION"), "role" => role.as_str()).set(1.0);
    let take_over_from = plan
        .edge
        .as_ref()
        .and_then(|(sip, _)| sip.take_over.as_deref());
    // Built before asking for the hand-over: from the ask on, the old edge
    // is stopped and its calls' media waits for us.
    let mut prepared = match take_over_from {
        Some(_) => Some(acd_edge::prepare(&loaded).context("--take-over: preparing the SIP edge")?),
        None => None,
    };
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(acd_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("building the gRPC reflection service")?;
    // Taken over before anything binds: the listeners come from the old
    // process. Dropped before `done` (any error below), the old one resumes.
    let mut taken = match take_over_from {
        Some(path) => Some(takeover::receive(path).await?),
        None => None,
    };

    let grpc_listener = match inherited(&mut taken, acd_edge::handover::FdKind::GrpcListener)? {
        Some(l) => l,
        None => bind("gRPC", plan.common.grpc.unwrap_or(cfg.grpc.listen)).await?,
    };
    let grpc_addr = grpc_listener
        .local_addr()
        .context("local address of the gRPC listener")?;
    let metrics_listener = match inherited(&mut taken, acd_edge::handover::FdKind::MetricsListener)?
    {
        Some(l) => l,
        None => bind("metrics", plan.common.metrics.unwrap_or(cfg.metrics.listen)).await?,
    };
    let metrics_fd = std::os::fd::AsFd::as_fd(&metrics_listener)
        .try_clone_to_owned()
        .context("copying the metrics listener")?;
    let metrics_addr = metrics_listener
        .local_addr()
        .context("local address of the metrics listener")?;

    // Made before the edge: in `acd run` the edge calls it in-process.
    let ivr_runner = plan.ivr.as_ref().map(|args| {
        let clock = args.ivr_clock.map_or_else(
            acd_ivr_runner::Clock::system,
            acd_ivr_runner::Clock::starting_at,
        );
        acd_ivr_runner::IvrRunner::new(cfg.flows.clone()).with_clock(clock)
    });
    let edge_cell: Arc<OnceLock<EdgeHandle>> = Arc::new(OnceLock::new());
    // A taken-over edge starts first: its calls' media is silent until it
    // runs. Its distributor (`acd run`: this process) is reached later.
    let mut edge = match (&mut taken, &plan.edge, prepared.take()) {
        (Some(t), Some((sip, peers)), Some(prepared)) => {
            let snapshot = t.edge.take().context("--take-over: no edge state")?;
            let inherit = Some((prepared, snapshot, &mut t.fds));
            let e = start_edge(
                &loaded,
                sip,
                peers,
                grpc_addr,
                &edge_cell,
                OwnRoles {
                    ivr: ivr_runner.as_ref(),
                    // Its distributor starts later: this edge attaches over gRPC.
                    edges: None,
                },
                inherit,
            )
            .await?;
            t.phase("media_running");
            Some(e)
        }
        _ => None,
    };
    let (reporter, health_service) = tonic_health::server::health_reporter();
    let readiness = health::Readiness::new(reporter, edge_cell.clone());

    let elected = leadership_config(&plan, cfg, grpc_addr);
    let distributor = plan.distributor.as_ref().map(|standby_of| {
        let role = match (standby_of, &elected) {
            (Some(url), _) => Role::Standby {
                primary_url: url.clone(),
            },
            // Standby until the election says otherwise.
            (None, Some(_)) => Role::Standby {
                primary_url: String::new(),
            },
            (None, None) => Role::Primary,
        };
        let d = Distributor::new(acd_distributor::routing_config(cfg), role);
        d.set_address(
            &elected
                .as_ref()
                .map_or_else(|| advertised(cfg, grpc_addr), |e| e.advertise.clone()),
        );
        if standby_of.is_none() && elected.is_none() {
            d.set_serving(true, "");
        }
        d
    });
    // Right after the distributor: the board follows every committed record.
    let wallboard = distributor.as_ref().map(|d| wallboard::start(d, &loaded));
    if let (Some(d), Some(dir)) = (&distributor, loaded.journal_dir()) {
        acd_distributor::journal::spawn(d, dir.clone())
            .with_context(|| format!("event journal in {}", dir.display()))?;
    }
    if let (Some(d), Some(records)) = (&distributor, &loaded.config.records) {
        start_records(d, &loaded, records)?;
    }
    if let (Some(d), Some(snap)) = (
        &distributor,
        taken.as_mut().and_then(|t| t.distributor.take()),
    ) {
        d.install_snapshot(snap)
            .context("--take-over: installing the distributor's state")?;
        tracing::info!(status = ?d.status(), "distributor state taken over");
        if let Some(t) = &mut taken {
            t.phase("distributor_restored");
        }
    }
    // The gRPC listener is bound already: a peer connecting before it serves
    // waits in the backlog rather than being refused (refusal means "gone").
    let leadership = match (&distributor, elected) {
        (Some(d), Some(c)) => {
            tracing::info!(etcd = %c.endpoints.join(","), election = %c.election, advertise = %c.advertise, "distributor: leadership from etcd");
            Some(acd_distributor::leadership::start(d.clone(), c))
        }
        _ => None,
    };

    let reloader = (ivr_runner.is_some() || plan.edge.is_some()).then(|| {
        let r = reload::FlowReloader::new(
            plan.common.config.clone(),
            ivr_runner.clone(),
            readiness.clone(),
            &loaded,
        );
        r.spawn_watch();
        r
    });
    let admin = admin::AdminApi::new(role.roles(), distributor.clone(), readiness.clone())
        .with_leadership(leadership)
        .with_reloader(reloader)
        .into_service();
    readiness.register(service_name(&admin));
    let mut server = Server::builder();
    if let Some(tls) = server_tls {
        server = server.tls_config(tls).context("[grpc.tls]")?;
    }
    let mut router = server
        .layer(access_layer)
        .add_service(health_service)
        .add_service(reflection)
        .add_service(admin);
    // The same EdgeApi (one edge registry) serves gRPC and this process's edge.
    let mut edge_api = None;
    if let Some(d) = &distributor {
        let agents = acd_distributor::agent_service::AgentApi::new(d.clone()).into_service();
        let api = acd_distributor::edge_service::EdgeApi::new(d.clone());
        edge_api = Some(api.clone());
        let edges = api.into_service();
        let replication =
            acd_distributor::replication::ReplicationApi::new(d.clone()).into_service();
        let report_settings = acd_distributor::reports::ReportSettings::from_config(&loaded)
            .map_err(|e| anyhow::anyhow!(e))?;
        let supervisors = acd_distributor::supervisor_service::SupervisorApi::new(d.clone())
            .with_reports(report_settings)
            .into_service();
        readiness.register(service_name(&supervisors));
        readiness.register(service_name(&agents));
        readiness.register(service_name(&edges));
        readiness.register(service_name(&replication));
        router = router
            .add_service(agents)
            .add_service(supervisors)
            .add_service(edges)
            .add_service(replication);
    }
    if let Some(runner) = ivr_runner.clone() {
        let ivr = runner.into_service();
        readiness.register(service_name(&ivr));
        router = router.add_service(ivr);
    }
    readiness.set(false).await;

    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let grpc_gate = takeover::GrpcGate::new(grpc_listener);
    let mut grpc_server = tokio::spawn(router.serve_with_incoming_shutdown(
        grpc_gate.incoming(),
        async move {
            let _ = stop_rx.wait_for(|stop| *stop).await;
        },
    ));
    tracing::info!(addr = %grpc_addr, "gRPC listening");
    let with_wallboard = if wallboard.is_some() {
        ", /wallboard"
    } else {
        ""
    };
    http::spawn_with(metrics_listener, prometheus, readiness.clone(), wallboard);
    tracing::info!(addr = %metrics_addr, "metrics listening (/metrics, /ready{with_wallboard})");
    let demo_orders_addr = start_demo_orders(role, cfg).await?;

    if let (Some(d), Some(Some(primary))) = (&distributor, &plan.distributor) {
        acd_distributor::replication::follow(d.clone(), primary.clone());
        tracing::info!(%primary, "standby: following the primary");
    }

    if let Some(t) = &mut taken {
        t.phase("grpc_serving");
    }
    if let (None, Some((sip, peers))) = (&edge, &plan.edge) {
        edge = Some(
            start_edge(
                &loaded,
                sip,
                peers,
                grpc_addr,
                &edge_cell,
                OwnRoles {
                    ivr: ivr_runner.as_ref(),
                    edges: edge_api,
                },
                None,
            )
            .await?,
        );
    }
    if let (Some(edge), true) = (&edge, taken.is_some()) {
        // Attached before the old process goes, within reason: the edge
        // serves meanwhile and keeps retrying.
        let _ = tokio::time::timeout(TAKE_OVER_ATTACH_WAIT, await_distributor(edge)).await;
    }
    let mut handed_over = match (&edge, &plan.edge) {
        (Some(edge), Some((sip, _))) => match sip
            .handover_socket
            .clone()
            .or(cfg.sip.handover_socket.clone())
        {
            Some(path) => {
                let server = takeover::Server {
                    path,
                    edge: edge.clone(),
                    grpc: grpc_gate.clone(),
                    metrics: metrics_fd,
                    distributor: distributor.clone(),
                };
                Some(tokio::spawn(server.run()))
            }
            None => None,
        },
        _ => None,
    };

    if let Some(t) = taken.take() {
        // Under systemd the new process becomes the unit's main process.
        notify::send(&format!("MAINPID={}", std::process::id()));
        t.done()?;
    }
    // Honest readiness: a standby is ready once it follows its primary (or
    // leads); until then no READY line, health NOT_SERVING, /ready 503.
    if let Some(d) = &distributor {
        let waited = tokio::select! {
            _ = await_serving(d) => None,
            _ = sigint.recv() => Some("SIGINT"),
            _ = sigterm.recv() => Some("SIGTERM"),
        };
        if let Some(signal) = waited {
            tracing::info!("{signal} before ready: shutting down");
            let _ = stop_tx.send(true);
            return Ok(());
        }
    }
    // An edge is ready once it is attached to a leading distributor: calls it
    // answers can then be queued (it serves meanwhile: flows have fallbacks).
    if let Some(e) = &edge {
        let waited = tokio::select! {
            _ = await_distributor(e) => None,
            _ = sigint.recv() => Some("SIGINT"),
            _ = sigterm.recv() => Some("SIGTERM"),
        };
        if let Some(signal) = waited {
            tracing::info!("{signal} before ready: shutting down");
            let _ = stop_tx.send(true);
            return Ok(());
        }
    }
    tokio::spawn(mirror_readiness(
        distributor.clone(),
        edge.clone(),
        readiness.clone(),
    ));

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
    if let Some(addr) = demo_orders_addr {
        ready.push_str(&format!(" demo_orders={addr}"));
    }
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
    watchdog::spawn(edge.clone(), distributor.clone());

    let handed = shutdown::handed_over(&mut handed_over);
    tokio::pin!(handed);
    let signal = tokio::select! {
        _ = sigint.recv() => "SIGINT",
        _ = sigterm.recv() => "SIGTERM",
        _ = shutdown::drain_asked(edge.as_ref()) => "drain",
        r = &mut handed => return r,
        stopped = &mut grpc_server => {
            return match stopped {
                Ok(Ok(())) => Err(anyhow::anyhow!("the gRPC server on {grpc_addr} stopped unexpectedly")),
                Ok(Err(e)) => Err(e).with_context(|| format!("the gRPC server on {grpc_addr} failed")),
                Err(e) => Err(e).with_context(|| format!("the gRPC server on {grpc_addr} panicked")),
            };
        }
    };
    if let (Some(edge), "SIGTERM" | "drain") = (&edge, signal) {
        let deadline = Duration::from_secs(cfg.sip.drain_deadline_secs);
        let signals = (&mut sigint, &mut sigterm);
        if shutdown::drain(edge, &readiness, deadline, signals, &mut handed).await {
            return Ok(()); // handed over while draining
        }
    }
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
    if let Some(l) = &plan.leadership {
        for url in &l.etcd {
            check("--etcd", url)?;
        }
        if let Some(url) = &l.advertise {
            check("--advertise", url)?;
        }
    }
    Ok(())
}

/// A listener passed by the process taken over, if any.
fn inherited(
    taken: &mut Option<takeover::Taken>,
    kind: acd_edge::handover::FdKind,
) -> Result<Option<TcpListener>> {
    match taken {
        Some(t) => t.listener(kind),
        None => Ok(None),
    }
}

/// The gRPC URL this process gives out: `[distributor] advertise`, else
/// its listen address (unspecified replaced by loopback).
fn advertised(cfg: &acd_config::Config, grpc_addr: SocketAddr) -> String {
    cfg.distributor
        .advertise
        .clone()
        .unwrap_or_else(|| own_url(cfg, grpc_addr))
}

/// [`loopback_url`], `https://` when the listener speaks TLS.
fn own_url(cfg: &acd_config::Config, addr: SocketAddr) -> String {
    let url = loopback_url(addr);
    match &cfg.grpc.tls {
        Some(_) => url.replacen("http://", "https://", 1),
        None => url,
    }
}

/// Leadership from etcd when the command line or the config names etcd
/// endpoints (and the pair is not a static one, `--standby-of`).
fn leadership_config(
    plan: &Plan,
    cfg: &acd_config::Config,
    grpc_addr: SocketAddr,
) -> Option<acd_distributor::leadership::LeadershipConfig> {
    let args = plan.leadership.as_ref()?;
    if matches!(plan.distributor, Some(Some(_))) {
        return None;
    }
    let d = &cfg.distributor;
    let endpoints: Vec<String> = if args.etcd.is_empty() {
        d.etcd.clone()
    } else {
        args.etcd.clone()
    };
    let endpoints: Vec<String> = endpoints
        .into_iter()
        .filter(|u| !u.trim().is_empty())
        .collect();
    if endpoints.is_empty() {
        return None;
    }
    Some(acd_distributor::leadership::LeadershipConfig {
        endpoints,
        election: args.election.clone().unwrap_or_else(|| d.election.clone()),
        ttl_secs: args.lease_ttl_secs.unwrap_or(d.lease_ttl_secs).max(1),
        advertise: args
            .advertise
            .clone()
            .unwrap_or_else(|| advertised(cfg, grpc_addr)),
    })
}

/// Returns once the distributor can serve, logging what it waits for.
async fn await_serving(d: &Distributor) {
    let mut serving = d.serving();
    loop {
        let s = serving.borrow_and_update().clone();
        if s.ready {
            return;
        }
        if !s.waiting_for.is_empty() {
            tracing::info!(waiting_for = %s.waiting_for, "not ready");
        }
        if serving.changed().await.is_err() {
            return;
        }
    }
}

/// Returns once the edge is attached to a leading distributor.
async fn await_distributor(edge: &EdgeHandle) {
    let mut logged = false;
    while !edge.status().distributor_connected {
        if !logged {
            tracing::info!(waiting_for = "a distributor", "not ready");
            logged = true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Keeps health, /ready and sd_notify in step with what the process can do:
/// a distributor that leads or follows, an edge attached to a distributor.
/// A draining edge's readiness belongs to the drain from then on.
async fn mirror_readiness(
    d: Option<Distributor>,
    edge: Option<EdgeHandle>,
    readiness: Arc<health::Readiness>,
) {
    let mut shown = true;
    let mut tick = tokio::time::interval(READINESS_POLL);
    loop {
        tick.tick().await;
        if edge.as_ref().is_some_and(EdgeHandle::is_draining) {
            return;
        }
        let waiting_for = health::waiting_for(d.as_ref(), edge.as_ref());
        let ready = waiting_for.is_empty();
        if ready != shown {
            if ready {
                tracing::info!("ready again");
            } else {
                tracing::warn!(%waiting_for, "not ready");
            }
            readiness.set(ready).await;
            shown = ready;
        }
    }
}

/// `acd run` with `[demo] orders_listen`: the demo order-status API.
async fn start_demo_orders(role: RoleName, cfg: &acd_config::Config) -> Result<Option<SocketAddr>> {
    let (RoleName::Run, Some(addr)) = (role, cfg.demo.orders_listen) else {
        return Ok(None);
    };
    let listener = demo_orders::bind(addr).await?;
    let bound = listener
        .local_addr()
        .context("local address of the demo orders listener")?;
    demo_orders::spawn(listener);
    tracing::info!(addr = %bound, "demo orders API listening (GET /orders/<digits>)");
    Ok(Some(bound))
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
    own: OwnRoles<'_>,
    inherit: Option<(
        acd_edge::Prepared,
        acd_edge::EdgeSnapshot,
        &mut acd_edge::handover::Descriptors,
    )>,
) -> Result<EdgeHandle> {
    let cfg = &loaded.config;
    let public_ip = sip.public_ip.unwrap_or(cfg.sip.public_ip);
    let sip_udp = sip.sip_udp.unwrap_or(cfg.sip.udp);
    let mut local_distributor = None;
    let (distributor_url, ivr_urls, local_ivr, edge_id) = match peers {
        EdgePeers::Loopback => {
            let url = own_url(&loaded.config, grpc_addr);
            local_distributor = own
                .edges
                .map(|api| acd_edge::LocalLink::new(url.clone(), InProcessDistributor(api)));
            // This process's IVR runner is called in-process (steps skip
            // loopback gRPC); without one, steps go to this process's address.
            let (ivr_urls, local_ivr) = match own.ivr {
                Some(r) => (Vec::new(), Some(acd_edge::LocalIvr::new(r.clone()))),
                None => (vec![url.clone()], None),
            };
            (url, ivr_urls, local_ivr, None)
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
            (distributor.clone(), ivr, None, edge_id.clone())
        }
    };
    // Stable across restarts of the same edge, distinct between edges of a
    // site; with an ephemeral port the pid keeps it distinct.
    let edge_id = edge_id.unwrap_or_else(|| match sip_udp.port() {
        0 => format!("edge-{public_ip}-pid{}", std::process::id()),
        port => format!("edge-{public_ip}-{port}"),
    });
    acd_edge::media::set_threads(cfg.media.threads);
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
        local_ivr,
        local_distributor,
        edge_id: edge_id.clone(),
    };
    let edge = match inherit {
        Some((prepared, snapshot, fds)) => {
            acd_edge::take_over(settings, loaded, prepared, snapshot, fds)
                .await
                .context("--take-over: starting the SIP edge on the passed sockets")?
        }
        None => acd_edge::start(settings, loaded)
            .await
            .context("starting the SIP edge")?,
    };
    let _ = cell.set(edge.clone());
    tracing::info!(%edge_id, distributor = %distributor_url, "edge started");
    Ok(edge)
}

/// The roles of this process an `acd run` edge reaches without gRPC.
struct OwnRoles<'a> {
    ivr: Option<&'a acd_ivr_runner::IvrRunner>,
    edges: Option<acd_distributor::edge_service::EdgeApi>,
}

/// `acd run`: the edge attaches to this process's distributor without gRPC.
struct InProcessDistributor(acd_distributor::edge_service::EdgeApi);

impl acd_edge::LocalDistributor for InProcessDistributor {
    fn attach(
        &self,
        inbound: acd_edge::EdgeMessages,
    ) -> Result<acd_edge::DistributorMessages, tonic::Status> {
        self.0.attach_stream(inbound)
    }
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
