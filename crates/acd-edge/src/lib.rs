//! The SIP edge's shell: sockets, tasks and gRPC clients around the sans-IO
//! B2BUA core in `acd-b2bua` (calls, dialogs, registrar, IVR sessions,
//! timers, admission) and the media cores in `acd-media`.
//!
//! Data flow:
//! ```text
//! UDP/TCP sockets ─▶ transport ─(bounded channel)─▶ driver loop ─▶ EdgeCore::handle
//!                                                      │   ▲
//!        Output::Transmit ◀── transport ◀──────────────┤   │ Input::IvrReply / Distributor / Media*
//!        Output::Ivr ──▶ IVR runners (IvrService.Step) ─┤───┘
//!        Output::Distributor ──▶ distributor (EdgeService.Attach)
//!        Output::Media ──▶ media threads, an epoll loop each (prompt, MOH, relay)
//! ```
//! Routing policy lives in the distributor; the edge only carries it out.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use acd_config::Loaded;
use acd_proto::v1 as pb;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;

mod convert;
mod distributor_link;
mod driver;
pub use distributor_link::{
    DistributorLink, DistributorMessages, EdgeMessages, LocalDistributor, LocalLink,
};
pub use driver::{EdgeSnapshot, Frozen, Reloaded};
pub use ivr_client::LocalIvr;
pub mod handover;
mod ivr_client;
pub mod media;
pub mod outbox;
pub mod telemetry;
mod transfer_target;
pub mod transport;
mod voicemail;

/// Flow id → flow.
pub type Flows = BTreeMap<String, acd_ivr::Flow>;

/// Where the edge listens and whom it talks to.
#[derive(Debug, Clone)]
pub struct EdgeSettings {
    pub sip_udp: SocketAddr,
    pub sip_tcp: SocketAddr,
    /// TLS listen address; `None` takes `[sip.tls] listen` (no TLS listener
    /// without a `[sip.tls]` table).
    pub sip_tls: Option<SocketAddr>,
    pub public_ip: IpAddr,
    pub rtp_ports: (u16, u16),
    /// The distributors, `URL[,URL...]`: the edge attaches to whichever leads.
    pub distributor_url: String,
    pub ivr_urls: Vec<String>,
    /// An IVR runner in this process (`acd run`), called without gRPC.
    pub local_ivr: Option<LocalIvr>,
    /// The distributor in this process (`acd run`), attached without gRPC.
    pub local_distributor: Option<LocalLink>,
    pub edge_id: String,
}

/// Live counters shared with the admin service.
#[derive(Default)]
pub struct EdgeShared {
    pub active_calls: AtomicU32,
    pub registrations: AtomicU32,
    pub sip_transactions: AtomicU32,
    pub distributor_connected: AtomicBool,
    pub draining: AtomicBool,
    /// Turns true when the edge starts draining (the process waits on it).
    pub drain_signal: tokio::sync::watch::Sender<bool>,
    /// Turns of the driver loop: the process watchdog pings systemd only
    /// while this moves (the loop turns at least every [`LOOP_MAX_IDLE`]).
    pub loop_turns: AtomicU64,
}

/// Longest the driver loop sleeps without a deadline of its own, so that a
/// stuck loop can be told from an idle one.
pub const LOOP_MAX_IDLE: Duration = Duration::from_secs(1);

/// The loop's next wake-up: the core's deadline, or [`LOOP_MAX_IDLE`] from
/// now if that is sooner (an early wake-up is a no-op for the core).
pub(crate) fn wake_at(core_deadline: Option<std::time::Instant>) -> tokio::time::Instant {
    let idle = std::time::Instant::now() + LOOP_MAX_IDLE;
    tokio::time::Instant::from_std(core_deadline.map_or(idle, |d| d.min(idle)))
}

/// A running edge.
#[derive(Clone)]
pub struct EdgeHandle {
    shared: Arc<EdgeShared>,
    control: mpsc::UnboundedSender<driver::Control>,
    pub sip_udp: SocketAddr,
    pub sip_tcp: SocketAddr,
    pub sip_tls: Option<SocketAddr>,
}

impl EdgeHandle {
    pub fn status(&self) -> pb::EdgeStatus {
        let s = &self.shared;
        pb::EdgeStatus {
            active_calls: s.active_calls.load(Ordering::Relaxed),
            registrations: s.registrations.load(Ordering::Relaxed),
            sip_transactions: s.sip_transactions.load(Ordering::Relaxed),
            distributor_connected: s.distributor_connected.load(Ordering::Relaxed),
        }
    }

    /// Stop taking new calls (503 + Retry-After, OPTIONS 503); existing
    /// dialogs carry on.
    pub fn drain(&self) -> u32 {
        self.shared.draining.store(true, Ordering::Relaxed);
        self.shared.drain_signal.send_replace(true);
        let _ = self.control.send(driver::Control::Drain);
        self.shared.active_calls.load(Ordering::Relaxed)
    }

    /// Takes the numbers, flows and prompts of a reloaded config (see
    /// [`prepare_reload`]) for new calls; calls in progress carry on as
    /// they are.
    pub fn reload(&self, reloaded: Reloaded) -> Result<(), EdgeError> {
        self.control
            .send(driver::Control::Reload(Box::new(reloaded)))
            .map_err(|_| EdgeError::Stopped)
    }

    /// The edge's whole call state, as a live hand-over passes it on.
    pub async fn snapshot(&self) -> Option<driver::EdgeSnapshot> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.control.send(driver::Control::Snapshot(tx)).ok()?;
        rx.await.ok()
    }

    /// Turns of the driver loop so far (see [`EdgeShared::loop_turns`]).
    pub fn loop_turns(&self) -> u64 {
        self.shared.loop_turns.load(Ordering::Relaxed)
    }

    pub fn is_draining(&self) -> bool {
        self.shared.draining.load(Ordering::Relaxed)
    }

    /// Resolves once the edge drains (at once if it already does).
    pub async fn draining(&self) {
        let mut rx = self.shared.drain_signal.subscribe();
        let _ = rx.wait_for(|d| *d).await;
    }

    /// Calls up now (as of the driver loop's last turn).
    pub fn active_calls(&self) -> u32 {
        self.shared.active_calls.load(Ordering::Relaxed)
    }

    /// The drain deadline passed: a BYE (or a final response) to every
    /// call left.
    pub fn end_all(&self) {
        let _ = self.control.send(driver::Control::EndAll);
    }

    /// Stops the edge reading and hands over its state and sockets; `None`
    /// if its loop has stopped. See [`driver::Frozen`].
    pub async fn hand_over(&self) -> Option<driver::Frozen> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.control.send(driver::Control::HandOver(tx)).ok()?;
        rx.await.ok()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    #[error("cannot bind SIP {what} on {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("prompt `{name}`: {message}")]
    Prompt { name: String, message: String },
    #[error("bad URL: {0}")]
    Url(String),
    #[error("SIP TLS: {0}")]
    Tls(String),
    #[error("hand-over: {0}")]
    Handover(String),
    #[error("the edge's loop has stopped")]
    Stopped,
}

/// SIP messages from the transports waiting for the driver loop. Beyond
/// this UDP drops and stream readers wait (see `transport`).
const INBOUND_QUEUE: usize = 1024;

/// Binds the SIP sockets and starts the edge's tasks.
pub async fn start(settings: EdgeSettings, loaded: &Loaded) -> Result<EdgeHandle, EdgeError> {
    let udp = UdpSocket::bind(settings.sip_udp)
        .await
        .map_err(|source| EdgeError::Bind {
            what: "UDP",
            addr: settings.sip_udp,
            source,
        })?;
    let tcp = TcpListener::bind(settings.sip_tcp)
        .await
        .map_err(|source| EdgeError::Bind {
            what: "TCP",
            addr: settings.sip_tcp,
            source,
        })?;
    let tls = match tls_listen_addr(&settings, loaded)? {
        Some(addr) => {
            let bind_error = |source| EdgeError::Bind {
                what: "TLS",
                addr,
                source,
            };
            Some(TcpListener::bind(addr).await.map_err(bind_error)?)
        }
        None => None,
    };
    let prepared = prepare(loaded)?;
    start_on(settings, loaded, prepared, (udp, tcp, tls), None).await
}

/// What an edge needs that no socket does (prompts decoded, TLS set up).
/// A taking-over process builds it before it asks for the hand-over: from
/// the ask on, the old edge is stopped and the calls' media waits for us.
pub struct Prepared {
    prompts: BTreeMap<String, Arc<acd_media::Prompt>>,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    tls_client: tokio_rustls::TlsConnector,
}

/// Loads the prompts and the TLS material (see [`Prepared`]).
pub fn prepare(loaded: &Loaded) -> Result<Prepared, EdgeError> {
    let (acceptor, tls_client) = tls_setup(loaded)?;
    Ok(Prepared {
        prompts: load_prompts(loaded)?,
        acceptor,
        tls_client,
    })
}

/// Starts the edge on the sockets and calls a running edge handed over
/// (`handover::recv_transfer`): no bind, the calls carry on. The calls'
/// media tasks run before anything else starts.
pub async fn take_over(
    settings: EdgeSettings,
    loaded: &Loaded,
    prepared: Prepared,
    snapshot: EdgeSnapshot,
    fds: &mut handover::Descriptors,
) -> Result<EdgeHandle, EdgeError> {
    let udp = udp_from(inherit(fds, handover::FdKind::SipUdp)?)?;
    let tcp = tcp_from(inherit(fds, handover::FdKind::SipTcpListener)?)?;
    let tls = match tls_listen_addr(&settings, loaded)? {
        Some(_) => Some(tcp_from(inherit(fds, handover::FdKind::SipTlsListener)?)?),
        None => None,
    };
    start_on(
        settings,
        loaded,
        prepared,
        (udp, tcp, tls),
        Some((snapshot, fds)),
    )
    .await
}

fn inherit(
    fds: &mut handover::Descriptors,
    kind: handover::FdKind,
) -> Result<std::os::fd::OwnedFd, EdgeError> {
    fds.take(&kind)
        .ok_or_else(|| EdgeError::Handover(format!("no {kind:?} descriptor was passed")))
}

fn udp_from(fd: std::os::fd::OwnedFd) -> Result<UdpSocket, EdgeError> {
    let sock = std::net::UdpSocket::from(fd);
    sock.set_nonblocking(true)
        .and_then(|()| UdpSocket::from_std(sock))
        .map_err(|e| EdgeError::Handover(format!("SIP UDP socket: {e}")))
}

fn tcp_from(fd: std::os::fd::OwnedFd) -> Result<TcpListener, EdgeError> {
    let l = std::net::TcpListener::from(fd);
    l.set_nonblocking(true)
        .and_then(|()| TcpListener::from_std(l))
        .map_err(|e| EdgeError::Handover(format!("SIP listener: {e}")))
}

type Bound = (UdpSocket, TcpListener, Option<TcpListener>);

async fn start_on(
    settings: EdgeSettings,
    loaded: &Loaded,
    prepared: Prepared,
    (udp, tcp, tls): Bound,
    restore: Option<(EdgeSnapshot, &mut handover::Descriptors)>,
) -> Result<EdgeHandle, EdgeError> {
    let local = |what: &'static str, addr: SocketAddr, r: std::io::Result<SocketAddr>| {
        r.map_err(|source| EdgeError::Bind { what, addr, source })
    };
    let udp_addr = local("UDP", settings.sip_udp, udp.local_addr())?;
    let Prepared {
        prompts,
        acceptor,
        tls_client,
    } = prepared;
    let (media_tx, media_rx) = mpsc::unbounded_channel();
    // RTP listens where SIP does (all interfaces if SIP does).
    let ports = media::PortPool::new(udp_addr.ip(), settings.rtp_ports.0, settings.rtp_ports.1);
    // Taken-over calls' media first: it is silent until these tasks run.
    let (restore, media) = match restore {
        Some((snap, fds)) => {
            let media = restore_media(&snap.media, fds, &ports, &prompts, &media_tx)?;
            (Some(snap), media)
        }
        None => (None, Default::default()),
    };
    let tcp_addr = local("TCP", settings.sip_tcp, tcp.local_addr())?;
    let tls = match (tls, acceptor) {
        (Some(l), Some(a)) => {
            let addr = local("TLS", settings.sip_tcp, l.local_addr())?;
            Some((l, a, addr))
        }
        _ => None,
    };
    let tls_addr = tls.as_ref().map(|(_, _, addr)| *addr);
    let tls = tls.map(|(listener, acceptor, _)| (listener, acceptor));

    let (input_tx, input_rx) = mpsc::channel(INBOUND_QUEUE);
    let (control_tx, control_rx) = mpsc::unbounded_channel();
    let (sip_tx, sip_rx) = mpsc::channel(INBOUND_QUEUE);
    let sockets = transport::Sockets { udp, tcp, tls };
    let limits = transport::TransportLimits::from(&loaded.config.sip.limits);
    let ivr = ivr_client::IvrClients::new(&settings.ivr_urls, settings.local_ivr.clone())
        .map_err(|e| EdgeError::Url(e.to_string()))?;
    let shared = Arc::new(EdgeShared::default());
    let mut core_cfg = core_config(&settings, udp_addr, tcp_addr, tls_addr, loaded, &prompts);
    core_cfg.admission.max_calls =
        admitted_calls(core_cfg.admission.max_calls, ports.call_capacity());
    let now = std::time::Instant::now();
    let mut dist = DistributorLink::new(settings.edge_id.clone());
    let (mut core, finished) = match restore {
        Some(snap) => {
            dist.restore(snap.link);
            let core = acd_b2bua::EdgeCore::restore(core_cfg, snap.core, now);
            tracing::info!(
                calls = core.active_calls(),
                media = media.len(),
                "edge state taken over"
            );
            (core, snap.prompts_finished)
        }
        None => {
            let unix_now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let core = acd_b2bua::EdgeCore::new(core_cfg, rand::random(), now, unix_now);
            (core, Vec::new())
        }
    };
    let unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    core.set_wall_clock(unix_ms, now);
    let transports = transport::Transports::start(sockets, limits, tls_client, sip_tx);
    distributor_link::start(
        &settings.distributor_url,
        settings.local_distributor.clone(),
        input_tx,
    )
    .map_err(EdgeError::Url)?;
    let driver = driver::Driver {
        core,
        transports,
        ports,
        ivr,
        dist,
        shared: shared.clone(),
        media_options: media_options(&prompts, loaded.voicemail_dir()),
        registrations_counted: (u64::MAX, now),
        lateness_gauge: metrics::gauge!("acd_edge_loop_lateness_seconds"),
        calls_gauge: metrics::gauge!("acd_edge_active_calls"),
        prompts,
        media_events: media_tx,
    };
    tokio::spawn(driver.run(
        driver::Inputs {
            sip: sip_rx,
            other: input_rx,
            control: control_rx,
            media: media_rx,
        },
        media,
        finished,
    ));
    tracing::info!(udp = %udp_addr, tcp = %tcp_addr, tls = ?tls_addr, "SIP edge listening");
    Ok(EdgeHandle {
        shared,
        control: control_tx,
        sip_udp: udp_addr,
        sip_tcp: tcp_addr,
        sip_tls: tls_addr,
    })
}

/// Media tasks again, on the sockets passed with each call's snapshot.
fn restore_media(
    streams: &[media::MediaSnapshot],
    fds: &mut handover::Descriptors,
    ports: &Arc<media::PortPool>,
    prompts: &BTreeMap<String, Arc<acd_media::Prompt>>,
    events: &mpsc::UnboundedSender<media::MediaEvent>,
) -> Result<std::collections::HashMap<acd_b2bua::CallId, media::MediaHandle>, EdgeError> {
    use handover::{FdKind, MediaLeg};
    let now = std::time::Instant::now();
    let mut out = std::collections::HashMap::new();
    for snap in streams {
        let mut leg = |leg: MediaLeg, port: u16| {
            let mut take = |rtcp: bool| {
                let call = snap.call.clone();
                inherit(fds, FdKind::Rtp { call, leg, rtcp })
            };
            let (rtp, rtcp) = (take(false)?, take(true)?);
            ports
                .adopt(port, rtp, rtcp)
                .map_err(|e| EdgeError::Handover(format!("RTP port {port}: {e}")))
        };
        let caller = leg(MediaLeg::Caller, snap.caller_port)?;
        let agent = leg(MediaLeg::Agent, snap.agent_port)?;
        let handle = media::restore(
            snap,
            caller,
            agent,
            |name| prompts.get(name).cloned(),
            events.clone(),
            now,
        );
        out.insert(acd_b2bua::CallId(snap.call.clone()), handle);
    }
    Ok(out)
}

fn core_config(
    settings: &EdgeSettings,
    udp: SocketAddr,
    tcp: SocketAddr,
    tls: Option<SocketAddr>,
    loaded: &Loaded,
    prompts: &BTreeMap<String, Arc<acd_media::Prompt>>,
) -> acd_b2bua::CoreConfig {
    let cfg = &loaded.config;
    let mut core = acd_b2bua::CoreConfig::with_defaults(settings.public_ip);
    core.edge_id = settings.edge_id.clone();
    core.listen = acd_b2bua::Listen {
        public_ip: settings.public_ip,
        udp_port: udp.port(),
        tcp_port: tcp.port(),
        tls_port: tls.map(|a| a.port()),
    };
    core.realm = cfg.sip.realm.clone();
    core.ring_timeout = Duration::from_secs(cfg.distributor.offer_timeout_secs);
    core.dids = dids(cfg);
    core.flows = cfg.flows.clone();
    core.prompts = prompts.keys().cloned().collect();
    core.extensions = cfg
        .extensions
        .iter()
        .map(|e| (e.number.clone(), e.password.clone()))
        .collect();
    core.nonce_secret = nonce_secret(cfg);
    core.auth_algorithms = cfg
        .auth
        .algorithms
        .iter()
        .map(|alg| match alg {
            acd_config::DigestAlgorithm::Md5 => acd_sip::auth::Algorithm::Md5,
            acd_config::DigestAlgorithm::Sha256 => acd_sip::auth::Algorithm::Sha256,
        })
        .collect();
    core.auth_backoff = acd_sip::auth::BackoffConfig {
        max_failures: cfg.auth.max_failures,
        window: Duration::from_secs(cfg.auth.failure_window_secs),
        first_ban: Duration::from_secs(cfg.auth.first_ban_secs),
        max_ban: Duration::from_secs(cfg.auth.max_ban_secs),
        ..acd_sip::auth::BackoffConfig::default()
    };
    core.trunks = cfg.trunks.clone();
    let a = &cfg.admission;
    core.admission = acd_b2bua::Admission {
        max_calls: a.max_calls,
        max_calls_per_second: a.max_calls_per_second,
        max_lateness: Duration::from_millis(a.max_lateness_ms),
        retry_after_secs: a.retry_after_secs,
    };
    core.sip.t1 = Duration::from_millis(cfg.sip.t1_ms);
    core
}

/// Where the TLS listener listens: `--sip-tls` or `[sip.tls] listen`;
/// `None` without a `[sip.tls]` table.
fn tls_listen_addr(
    settings: &EdgeSettings,
    loaded: &Loaded,
) -> Result<Option<SocketAddr>, EdgeError> {
    match (&loaded.config.sip.tls, settings.sip_tls) {
        (None, Some(_)) => Err(EdgeError::Tls(
            "a TLS listen address needs [sip.tls] cert and key in the config".into(),
        )),
        (None, None) => Ok(None),
        (Some(t), addr) => Ok(Some(addr.unwrap_or(t.listen))),
    }
}

/// The TLS acceptor (if `[sip.tls]` is configured) and the connector that
/// dials agents over TLS (always available: system roots without `ca`).
fn tls_setup(
    loaded: &Loaded,
) -> Result<
    (
        Option<tokio_rustls::TlsAcceptor>,
        tokio_rustls::TlsConnector,
    ),
    EdgeError,
> {
    let tls_cfg = loaded.config.sip.tls.as_ref();
    let ca = match tls_cfg.and_then(|t| t.ca.as_ref()) {
        Some(file) => Some(loaded.read_file(file).map_err(EdgeError::Tls)?),
        None => None,
    };
    let connector =
        transport::tls::connector(ca.as_deref()).map_err(|e| EdgeError::Tls(e.to_string()))?;
    let Some(tls_cfg) = tls_cfg else {
        return Ok((None, connector));
    };
    let cert = loaded.read_file(&tls_cfg.cert).map_err(EdgeError::Tls)?;
    let key = loaded.read_file(&tls_cfg.key).map_err(EdgeError::Tls)?;
    let acceptor =
        transport::tls::acceptor(&cert, &key).map_err(|e| EdgeError::Tls(e.to_string()))?;
    Ok((Some(acceptor), connector))
}

/// Hold music for the caller while the agent holds; media inactivity ends
/// dead calls after the media core's default period.
fn media_options(
    prompts: &BTreeMap<String, Arc<acd_media::Prompt>>,
    voicemail_dir: std::path::PathBuf,
) -> media::MediaOptions {
    media::MediaOptions {
        voicemail_dir: Some(voicemail_dir.into()),
        config: acd_media::call::MediaConfig::default(),
        hold_music: prompts.get("moh").map(|p| acd_media::call::NamedPrompt {
            name: "moh".into(),
            prompt: p.clone(),
        }),
    }
}

/// `[admission] max_calls`, lowered to what the RTP range carries: past it
/// an INVITE would be accepted, bind ports in vain and get a late
/// `503 (media)` (and a WARN line) instead of the cheap shed at the door.
/// A call's ports return to the pool when its media task has closed them, a
/// moment after the call ended; a margin of 2 % (at least one call) keeps a
/// call admitted in that moment from finding the pool empty.
fn admitted_calls(configured: usize, rtp_calls: usize) -> usize {
    let usable = rtp_calls.saturating_sub((rtp_calls / 50).max(1));
    if usable < configured {
        tracing::info!(
            max_calls = configured,
            rtp_calls,
            admitted = usable,
            "[admission] max_calls lowered to the calls the RTP port range holds"
        );
    }
    configured.min(usable)
}

/// What a reloaded config gives the edge, its prompts read and decoded
/// (blocking: call it off the runtime); a prompt that does not decode
/// refuses the whole reload.
pub fn prepare_reload(loaded: &Loaded) -> Result<Reloaded, EdgeError> {
    let prompts = load_prompts(loaded)?;
    let cfg = &loaded.config;
    let core = acd_b2bua::Reconfigure {
        dids: dids(cfg),
        flows: cfg.flows.clone(),
        prompts: prompts.keys().cloned().collect(),
    };
    Ok(Reloaded { core, prompts })
}

fn dids(cfg: &acd_config::Config) -> BTreeMap<String, String> {
    cfg.dids
        .iter()
        .map(|d| (d.number.clone(), d.flow.clone()))
        .collect()
}

fn load_prompts(loaded: &Loaded) -> Result<BTreeMap<String, Arc<acd_media::Prompt>>, EdgeError> {
    let files = loaded.prompt_files().map_err(|message| EdgeError::Prompt {
        name: "*".into(),
        message,
    })?;
    files
        .into_iter()
        .map(|(name, bytes)| {
            let prompt = acd_media::load_wav(&bytes).map_err(|e| EdgeError::Prompt {
                name: name.clone(),
                message: e.to_string(),
            })?;
            Ok((name, Arc::new(prompt)))
        })
        .collect()
}

/// Nonces are keyed by the realm and passwords so that every edge of a site
/// (and a restarted edge) accepts the others' nonces without shared state.
fn nonce_secret(cfg: &acd_config::Config) -> [u8; 32] {
    let mut seed = cfg.sip.realm.clone();
    for e in &cfg.extensions {
        seed.push_str(&e.number);
        seed.push_str(&e.password);
    }
    let mut out = [0u8; 32];
    // FNV-1a spread over 32 bytes: not a MAC, but the digest check itself
    // guards the password; the secret only keeps nonces unguessable offline.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, chunk) in out.chunks_mut(8).enumerate() {
        for b in seed.bytes().chain([i as u8]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        chunk.copy_from_slice(&h.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_calls_is_capped_by_the_rtp_range() {
        // 34000-35799: 900 even ports, two per call.
        let pool = media::PortPool::new([127, 0, 0, 1].into(), 34000, 35799);
        assert_eq!(pool.call_capacity(), 450);
        // 2 % of the range stays free for ports still being released.
        assert_eq!(admitted_calls(2000, pool.call_capacity()), 441);
        assert_eq!(admitted_calls(100, pool.call_capacity()), 100);
        // An odd minimum starts at the next even port; a lone port holds no call.
        let pool = media::PortPool::new([127, 0, 0, 1].into(), 21101, 21199);
        assert_eq!(pool.call_capacity(), 24);
        // An even maximum has no odd partner: 20000-20010 holds 5 pairs, 2 calls.
        assert_eq!(
            media::PortPool::new([127, 0, 0, 1].into(), 20000, 20010).call_capacity(),
            2
        );
        assert_eq!(
            media::PortPool::new([127, 0, 0, 1].into(), 20000, 20001).call_capacity(),
            0
        );
    }
}
