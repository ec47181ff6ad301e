//! A whole installation as separate processes, for the chaos tests: etcd, a
//! distributor pair elected through it, two IVR runners, one edge (with a
//! hand-over socket), eight agents whose phones are one SIPp UAS, and steady
//! trunk load from SIPp.
//!
//! Slots of the test's port block: gRPC/metrics 0-1 distributors, 2-3 IVR
//! runners, 4 the edge; SIPp 0 the trunk load, 1 the agents' phone, 2
//! registrations; observers 0 callers' media, 1 agents' media.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::time::Instant;

use crate::env::TestEnv;
use crate::etcd::EtcdServer;
use crate::flows::{register, trunk, SIPP_LIMIT};
use crate::grpc::AcdClient;
use crate::process::{AcdProcess, DistributorAt};
use crate::proto::admin_service_client::AdminServiceClient;
use crate::proto::{AgentState, QueueStatus, StatusRequest, StatusResponse};
use crate::rtp::RtpObserver;
use crate::sipp::{SippCmd, SippOutcome, SippRun};

/// Agents of the chaos installation (`a1`..`a8` at extensions 2001..2008,
/// skill `sales`).
pub const AGENTS: u16 = 8;
const QUEUE: &str = "sales";
const SALES_DID: &str = "5550100";

pub struct Cluster {
    pub etcd: EtcdServer,
    pub distributors: Vec<AcdProcess>,
    pub ivrs: Vec<AcdProcess>,
    pub edge: AcdProcess,
    pub config: PathBuf,
    /// The edge's hand-over socket (`--handover-socket`).
    pub handover_socket: PathBuf,
    phone: Option<SippRun>,
    _callers: RtpObserver,
    _agents_media: RtpObserver,
}

fn s(v: impl ToString) -> String {
    v.to_string()
}

fn agent_id(i: u16) -> String {
    format!("a{i}")
}

fn extension(i: u16) -> String {
    format!("{}", 2000 + i)
}

/// tests/config/e2e.toml plus the eight sales agents and their extensions.
fn write_config(env: &TestEnv) -> PathBuf {
    let mut extra = String::new();
    for i in 1..=AGENTS {
        extra.push_str(&format!(
            "[[extensions]]\nnumber = \"{ext}\"\npassword = \"secret{ext}\"\n\n\
             [[agents]]\nid = \"{id}\"\nname = \"Agent {i}\"\nskills = {{ sales = 5 }}\n\n",
            ext = extension(i),
            id = agent_id(i),
        ));
    }
    env.write_config(&extra)
}

/// The common config, or a copy of it for distributor `slot` with `extra`
/// appended when there is any.
fn distributor_config(env: &TestEnv, common: &Path, slot: u16, extra: &str) -> Result<PathBuf> {
    if extra.is_empty() {
        return Ok(common.to_path_buf());
    }
    let text =
        std::fs::read_to_string(common).with_context(|| format!("reading {}", common.display()))?;
    let own = env.log_path(&format!("distributor-{slot}.toml"));
    std::fs::write(&own, format!("{text}\n{extra}\n"))
        .with_context(|| format!("writing {}", own.display()))?;
    Ok(own)
}

/// `AdminService.Status` of `url`, with a single connection attempt.
pub async fn status_once(url: &str) -> Result<StatusResponse> {
    let channel = tonic::transport::Endpoint::from_shared(url.to_string())?
        .connect_timeout(Duration::from_millis(200))
        .connect()
        .await?;
    let channel = acd_proto::client::authed(channel, &crate::grpc::admin());
    Ok(AdminServiceClient::new(channel)
        .status(StatusRequest {})
        .await?
        .into_inner())
}

/// Where the distributor pair runs (the default: loopback, directly).
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// One per distributor: listen address and command prefix.
    pub distributors: [DistributorAt; 2],
    /// A host address etcd also listens on, which the distributors use
    /// (`None`: loopback only).
    pub etcd_host: Option<String>,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        let local = DistributorAt {
            host: s("127.0.0.1"),
            prefix: Vec::new(),
        };
        ClusterOptions {
            distributors: [local.clone(), local],
            etcd_host: None,
        }
    }
}

impl Cluster {
    /// Starts everything and brings the eight agents to Ready.
    pub async fn start(env: &TestEnv) -> Result<Cluster> {
        Self::start_with(env, &ClusterOptions::default()).await
    }

    /// [`Cluster::start`] with the distributors where `opts` puts them.
    pub async fn start_with(env: &TestEnv, opts: &ClusterOptions) -> Result<Cluster> {
        Self::start_with_extra(env, opts, ["", ""]).await
    }

    /// [`Cluster::start_with`], each distributor's config with its own
    /// `extra` TOML appended (e.g. its own `[records]` database); the other
    /// roles use the common config.
    pub async fn start_with_extra(
        env: &TestEnv,
        opts: &ClusterOptions,
        extra_toml: [&str; 2],
    ) -> Result<Cluster> {
        let config = write_config(env);
        let extra: Vec<String> = opts.etcd_host.iter().cloned().collect();
        let etcd = EtcdServer::start_with(env, &extra).await?;
        let etcd_url = match &opts.etcd_host {
            Some(h) => format!("http://{h}:{}", env.ports.etcd_client()),
            None => etcd.url.clone(),
        };
        let mut distributors = Vec::new();
        for ((slot, at), extra) in (0..2).zip(&opts.distributors).zip(extra_toml) {
            let own = distributor_config(env, &config, slot, extra)?;
            distributors.push(
                env.start_elected_distributor_at(
                    &format!("distributor-{slot}"),
                    slot,
                    &etcd_url,
                    &own,
                    slot == 0,
                    at,
                )
                .await?,
            );
        }
        distributors[1].await_ready(Duration::from_secs(20)).await?;
        let ivrs = vec![
            env.start_ivr("ivr-0", 2).await?,
            env.start_ivr("ivr-1", 3).await?,
        ];
        let handover_socket = env.log_path("edge.sock");
        let edge = Self::spawn_edge(
            env,
            &config,
            "edge",
            &distributors,
            &ivrs,
            &handover_socket,
            None,
        )
        .await?;

        let callers = RtpObserver::bind("callers", env.ports.observer(0)).await?;
        let agents_media = RtpObserver::bind("agents", env.ports.observer(1)).await?;
        let mut phone = SippCmd::new("phones", "agent_answer.xml", env.ports.sipp(1))
            .key("rtpport", agents_media.port())
            .limit(SIPP_LIMIT * 2);
        phone.calls = 10_000;
        let phone = phone.spawn(env).await?;
        let mut cluster = Cluster {
            etcd,
            distributors,
            ivrs,
            edge,
            config,
            handover_socket,
            phone: Some(phone),
            _callers: callers,
            _agents_media: agents_media,
        };
        cluster.agents_ready(env).await?;
        Ok(cluster)
    }

    /// Arguments of the edge (the first one, or one taking over `take_over`).
    pub fn edge_args(
        env: &TestEnv,
        config: &std::path::Path,
        distributors: &[String],
        ivrs: &[String],
        handover_socket: &std::path::Path,
        take_over: Option<&std::path::Path>,
    ) -> Vec<String> {
        let p = &env.ports;
        let mut args = vec![
            s("edge"),
            s("--config"),
            s(config.display()),
            s("--sip-udp"),
            format!("127.0.0.1:{}", p.sip()),
            s("--sip-tcp"),
            format!("127.0.0.1:{}", p.sip()),
            s("--grpc"),
            format!("127.0.0.1:{}", p.grpc(4)),
            s("--metrics"),
            format!("127.0.0.1:{}", p.metrics(4)),
            s("--rtp-ports"),
            p.rtp_arg(),
            s("--public-ip"),
            s("127.0.0.1"),
            s("--edge-id"),
            s("chaos-edge"),
            s("--distributor"),
            distributors.join(","),
            s("--ivr"),
            ivrs.join(","),
            s("--handover-socket"),
            s(handover_socket.display()),
        ];
        if let Some(sock) = take_over {
            args.extend([s("--take-over"), s(sock.display())]);
        }
        args
    }

    async fn spawn_edge(
        env: &TestEnv,
        config: &std::path::Path,
        name: &str,
        distributors: &[AcdProcess],
        ivrs: &[AcdProcess],
        handover_socket: &std::path::Path,
        take_over: Option<&std::path::Path>,
    ) -> Result<AcdProcess> {
        let d: Vec<String> = distributors.iter().map(AcdProcess::grpc_url).collect();
        let i: Vec<String> = ivrs.iter().map(AcdProcess::grpc_url).collect();
        let args = Self::edge_args(env, config, &d, &i, handover_socket, take_over);
        AcdProcess::spawn(env, name, &args).await
    }

    /// The distributors' gRPC URLs (the edge and the agents know both).
    pub fn distributor_urls(&self) -> Vec<String> {
        self.distributors.iter().map(AcdProcess::grpc_url).collect()
    }

    /// A live hand-over of the edge to a new process, which replaces
    /// `self.edge`; returns the old process (it exits by itself).
    pub async fn take_over_edge(&mut self, env: &TestEnv, name: &str) -> Result<AcdProcess> {
        let new = Self::spawn_edge(
            env,
            &self.config,
            name,
            &self.distributors,
            &self.ivrs,
            &self.handover_socket,
            Some(&self.handover_socket),
        )
        .await?;
        Ok(std::mem::replace(&mut self.edge, new))
    }

    /// Registers every agent's phone, logs the agents in and makes them
    /// ready on the leader.
    async fn agents_ready(&mut self, env: &TestEnv) -> Result<()> {
        let phone_port = env.ports.sipp(1).sip;
        for i in 1..=AGENTS {
            let ext = extension(i);
            let reg = register(env, 2, &ext, &format!("secret{ext}"), phone_port).await;
            if reg.successful != Some(1) {
                bail!("REGISTER {ext} failed: {reg:?}");
            }
        }
        let mut api = self.leader_client().await?;
        for i in 1..=AGENTS {
            api.login(&agent_id(i), &extension(i)).await?;
            api.ready(&agent_id(i)).await?;
        }
        Ok(())
    }

    /// Status of every distributor that answers.
    async fn statuses(&self) -> Vec<(usize, StatusResponse)> {
        let mut out = Vec::new();
        for (i, d) in self.distributors.iter().enumerate() {
            // One quick attempt: a dead process refuses at once.
            if let Ok(Ok(st)) =
                tokio::time::timeout(Duration::from_millis(500), status_once(&d.grpc_url())).await
            {
                out.push((i, st));
            }
        }
        out
    }

    /// Index of the distributor acting as primary (exactly one), waiting
    /// (bounded) for one to lead.
    pub async fn leader(&self, within: Duration) -> Result<usize> {
        let deadline = Instant::now() + within;
        loop {
            let primaries: Vec<usize> = self
                .statuses()
                .await
                .into_iter()
                .filter(|(_, st)| st.distributor.as_ref().is_some_and(|d| d.role == "primary"))
                .map(|(i, _)| i)
                .collect();
            match primaries.as_slice() {
                [one] => return Ok(*one),
                [] => {}
                many => bail!("several distributors act as primary at once: {many:?}"),
            }
            if Instant::now() >= deadline {
                bail!("no distributor leads after {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub async fn leader_client(&self) -> Result<AcdClient> {
        let i = self.leader(Duration::from_secs(10)).await?;
        AcdClient::connect(&self.distributors[i].grpc_url()).await
    }

    /// Trunk calls to the sales DID: `calls` at `rate`/s, each hung up by the
    /// caller `hold_ms` after the answer (prompt, queue and talk included).
    pub async fn load(
        &self,
        env: &TestEnv,
        rate: u32,
        calls: u32,
        hold_ms: u64,
    ) -> Result<SippRun> {
        trunk(
            env,
            "load",
            "trunk_call_hangup.xml",
            0,
            SALES_DID,
            env.ports.observer(0),
        )
        .pause_ms(hold_ms)
        .rate(rate, calls)
        .spawn(env)
        .await
    }

    /// Waits until `n` calls have entered the queue (their IVR is done).
    pub async fn await_offered(&self, n: u64, within: Duration) -> Result<QueueStatus> {
        let mut api = self.leader_client().await?;
        api.await_queue(QUEUE, "calls offered", within, |q| q.offered >= n)
            .await
    }

    /// The promise of the chaos suite, checked after the load: every call
    /// succeeded at SIPp, every one was answered by an agent (none lost in
    /// the queue: a lost caller would abandon), none is left waiting, every
    /// agent is back to Ready, the phones saw no failure, and exactly one
    /// distributor leads.
    pub async fn assert_every_call_served(
        &mut self,
        load: SippOutcome,
        calls: u32,
    ) -> Result<QueueStatus> {
        eprintln!(
            "[e2e] load: exit {:?}, successful {:?}, failed {:?}, retransmissions {:?}",
            load.exit_code, load.successful, load.failed, load.retransmissions
        );
        load.assert_success(u64::from(calls));
        let mut api = self.leader_client().await?;
        let q = api
            .await_queue(QUEUE, "every call answered", crate::LONG, |q| {
                q.answered >= u64::from(calls) && q.waiting == 0
            })
            .await
            .with_context(|| "calls lost or still waiting")?;
        if q.abandoned != 0 || q.answered != u64::from(calls) || q.offered != u64::from(calls) {
            bail!("calls lost or abandoned: {q:?}");
        }
        for i in 1..=AGENTS {
            let id = agent_id(i);
            let deadline = Instant::now() + crate::SHORT;
            loop {
                let a = api.get_agent(&id).await?;
                if a.state() == AgentState::Ready {
                    break;
                }
                if Instant::now() >= deadline {
                    bail!("agent {id} not back to Ready: {a:?}");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        self.leader(Duration::from_secs(1)).await?;
        if let Some(phone) = self.phone.take() {
            let out = phone.stop_and_wait().await;
            eprintln!(
                "[e2e] phones: successful {:?}, failed {:?}",
                out.successful, out.failed
            );
            if out.failed.unwrap_or(0) != 0 || out.successful.unwrap_or(0) < u64::from(calls) {
                bail!("the agents' phones saw failed or missing calls: {out:?}");
            }
        }
        Ok(q)
    }
}
