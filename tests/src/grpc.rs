//! gRPC helpers: connect with retry, agent commands, a watch stream with
//! deadline-bounded awaits, queue and admin status.

use std::time::Duration;

use acd_proto::client::{AuthChannel, ClientTls, Credentials};
use anyhow::{anyhow, bail, Context, Result};
use tokio::time::Instant;
use tonic::transport::Channel;

use acd_proto::v1::admin_service_client::AdminServiceClient;
use acd_proto::v1::agent_event::Kind;
use acd_proto::v1::agent_service_client::AgentServiceClient;
use acd_proto::v1::{
    AgentEvent, AgentState, AgentStatus, CallFinished, CallOffer, GetAgentRequest,
    ListQueuesRequest, LoginRequest, LogoutRequest, QueueStatus, SetNotReadyRequest,
    SetReadyRequest, StatusRequest, StatusResponse, WatchRequest,
};

/// The admin's token in tests/config/e2e.toml and config/acd.toml (the
/// demo secrets): the harness acts with it.
pub const ADMIN_TOKEN: &str = "demo-admin-token-change-me";
/// The supervisor's token in tests/config/e2e.toml and config/acd.toml.
pub const SUPERVISOR_TOKEN: &str = "demo-supervisor-token-change-me";
/// The site's cluster token in tests/config/e2e.toml and config/acd.toml.
pub const CLUSTER_TOKEN: &str = "demo-cluster-token-change-me";

/// An agent's password in tests/config/e2e.toml and config/acd.toml
/// (`alice-demo-password`).
pub fn agent_password(agent: &str) -> String {
    format!("{agent}-demo-password")
}

/// The admin's credentials (what the harness sends unless told otherwise).
pub fn admin() -> Credentials {
    Credentials::bearer(ADMIN_TOKEN)
}

/// Connects to `url` as the admin, retrying until `within` elapses.
pub async fn connect(url: &str, within: Duration) -> Result<AuthChannel> {
    let ch = connect_plain(url, within, &ClientTls::default()).await?;
    Ok(acd_proto::client::authed(ch, &admin()))
}

/// Connects to `url` (TLS trusting `tls` for https://), retrying until `within` elapses.
pub async fn connect_plain(url: &str, within: Duration, tls: &ClientTls) -> Result<Channel> {
    let deadline = Instant::now() + within;
    let endpoint = acd_proto::client::endpoint(url, tls)?.connect_timeout(Duration::from_secs(2));
    loop {
        match endpoint.connect().await {
            Ok(ch) => return Ok(ch),
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(anyhow!("cannot connect to {url} within {within:?}: {e}")),
        }
    }
}

/// Clients of one process's AgentService and AdminService.
#[derive(Clone)]
pub struct AcdClient {
    pub url: String,
    pub agent: AgentServiceClient<AuthChannel>,
    pub admin: AdminServiceClient<AuthChannel>,
}

impl AcdClient {
    /// As the admin.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_as(url, admin()).await
    }

    /// With `creds` (an agent's, a supervisor's, none).
    pub async fn connect_as(url: &str, creds: Credentials) -> Result<Self> {
        let ch = connect_plain(url, Duration::from_secs(10), &ClientTls::default()).await?;
        let ch = acd_proto::client::authed(ch, &creds);
        Ok(AcdClient {
            url: url.to_string(),
            agent: AgentServiceClient::new(ch.clone()),
            admin: AdminServiceClient::new(ch),
        })
    }

    pub async fn login(&mut self, agent: &str, extension: &str) -> Result<AgentStatus> {
        let r = self
            .agent
            .login(LoginRequest {
                agent_id: agent.into(),
                extension: extension.into(),
            })
            .await
            .with_context(|| format!("Login({agent}, {extension})"))?;
        Ok(r.into_inner())
    }

    pub async fn ready(&mut self, agent: &str) -> Result<AgentStatus> {
        let r = self
            .agent
            .set_ready(SetReadyRequest {
                agent_id: agent.into(),
            })
            .await
            .with_context(|| format!("SetReady({agent})"))?;
        Ok(r.into_inner())
    }

    pub async fn not_ready(&mut self, agent: &str, reason: &str) -> Result<AgentStatus> {
        let r = self
            .agent
            .set_not_ready(SetNotReadyRequest {
                agent_id: agent.into(),
                reason: reason.into(),
            })
            .await
            .with_context(|| format!("SetNotReady({agent})"))?;
        Ok(r.into_inner())
    }

    pub async fn logout(&mut self, agent: &str) -> Result<AgentStatus> {
        let r = self
            .agent
            .logout(LogoutRequest {
                agent_id: agent.into(),
            })
            .await
            .with_context(|| format!("Logout({agent})"))?;
        Ok(r.into_inner())
    }

    pub async fn get_agent(&mut self, agent: &str) -> Result<AgentStatus> {
        Ok(self
            .agent
            .get_agent(GetAgentRequest {
                agent_id: agent.into(),
            })
            .await?
            .into_inner())
    }

    pub async fn queues(&mut self) -> Result<Vec<QueueStatus>> {
        Ok(self
            .agent
            .list_queues(ListQueuesRequest {})
            .await?
            .into_inner()
            .queues)
    }

    pub async fn queue(&mut self, id: &str) -> Result<QueueStatus> {
        self.queues()
            .await?
            .into_iter()
            .find(|q| q.queue_id == id)
            .ok_or_else(|| anyhow!("queue {id} not in ListQueues"))
    }

    /// Polls ListQueues until `pred` holds for queue `id` (bounded).
    pub async fn await_queue(
        &mut self,
        id: &str,
        what: &str,
        within: Duration,
        pred: impl Fn(&QueueStatus) -> bool,
    ) -> Result<QueueStatus> {
        let deadline = Instant::now() + within;
        loop {
            let q = self.queue(id).await?;
            if pred(&q) {
                return Ok(q);
            }
            if Instant::now() >= deadline {
                bail!("queue {id}: not {what} within {within:?}; last {q:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn status(&mut self) -> Result<StatusResponse> {
        Ok(self
            .admin
            .status(StatusRequest {})
            .await
            .context("AdminService.Status")?
            .into_inner())
    }

    /// AdminService.EdgeSnapshot: the edge's whole state as JSON.
    pub async fn edge_snapshot(&mut self) -> Result<acd_proto::v1::EdgeSnapshotResponse> {
        Ok(self
            .admin
            .edge_snapshot(acd_proto::v1::EdgeSnapshotRequest {})
            .await
            .context("AdminService.EdgeSnapshot")?
            .into_inner())
    }

    /// Polls AdminService.Status until `pred` holds (bounded).
    pub async fn await_status(
        &mut self,
        what: &str,
        within: Duration,
        pred: impl Fn(&StatusResponse) -> bool,
    ) -> Result<StatusResponse> {
        let deadline = Instant::now() + within;
        loop {
            let s = self.status().await?;
            if pred(&s) {
                return Ok(s);
            }
            if Instant::now() >= deadline {
                bail!(
                    "{}: status not {what} within {within:?}; last {s:?}",
                    self.url
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Opens the agent's Watch stream.
    pub async fn watch(&mut self, agent: &str) -> Result<AgentWatch> {
        let stream = self
            .agent
            .watch(WatchRequest {
                agent_id: agent.into(),
                after_seq: 0,
            })
            .await
            .with_context(|| format!("Watch({agent})"))?
            .into_inner();
        Ok(AgentWatch {
            agent: agent.to_string(),
            stream: Some(stream),
            history: Vec::new(),
            urls: Vec::new(),
            last_seq: 0,
        })
    }
}

/// An agent's Watch stream. Awaits consume events in order; every event
/// received is kept in `history`.
pub struct AgentWatch {
    pub agent: String,
    stream: Option<tonic::Streaming<AgentEvent>>,
    pub history: Vec<AgentEvent>,
    /// With addresses, a broken stream is re-opened on the leader among
    /// them, resuming after `last_seq` (as `acdctl agent watch` does).
    urls: Vec<String>,
    /// The highest seq received.
    pub last_seq: u64,
}

impl AgentWatch {
    /// A watch that follows the leader among `urls` and resumes by itself
    /// after `after_seq` (0: from the current status).
    pub async fn following(
        urls: &[String],
        agent: &str,
        after_seq: u64,
        within: Duration,
    ) -> Result<AgentWatch> {
        let mut w = AgentWatch {
            agent: agent.to_string(),
            stream: None,
            history: Vec::new(),
            urls: urls.to_vec(),
            last_seq: after_seq,
        };
        w.reopen(Instant::now() + within).await?;
        Ok(w)
    }

    /// Opens the stream on the first address that is the leader (following
    /// a standby's hint), retrying until `deadline`.
    async fn reopen(&mut self, deadline: Instant) -> Result<()> {
        let mut last_error = anyhow!("no address");
        while Instant::now() < deadline {
            let mut targets: Vec<String> = self.urls.iter().rev().cloned().collect();
            let mut hops = 0;
            while let Some(url) = targets.pop() {
                let Ok(endpoint) = acd_proto::client::endpoint(&url, &ClientTls::default()) else {
                    continue;
                };
                let ch = match endpoint
                    .connect_timeout(Duration::from_secs(1))
                    .connect()
                    .await
                {
                    Ok(ch) => ch,
                    Err(e) => {
                        last_error = anyhow!("{url}: {e}");
                        continue;
                    }
                };
                let req = WatchRequest {
                    agent_id: self.agent.clone(),
                    after_seq: self.last_seq,
                };
                let ch = acd_proto::client::authed(ch, &admin());
                match AgentServiceClient::new(ch).watch(req).await {
                    Ok(r) => {
                        eprintln!(
                            "[e2e] watch {}: attached to {url} after seq {}",
                            self.agent, self.last_seq
                        );
                        self.stream = Some(r.into_inner());
                        return Ok(());
                    }
                    Err(st) => {
                        if let Some(hint) = acd_proto::leader::leader_hint(&st) {
                            if hops < 3 {
                                hops += 1;
                                targets.push(hint);
                            }
                        }
                        last_error = anyhow!("{url}: {st}");
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("watch {}: no leader to watch on: {last_error}", self.agent)
    }

    /// Ends the stream as a broken connection would (a following watch
    /// re-opens it on the next await).
    pub fn break_stream(&mut self) {
        self.stream = None;
    }

    /// Next event, or an error at the deadline / end of stream (a following
    /// watch re-attaches instead).
    pub async fn next(&mut self, deadline: Instant) -> Result<AgentEvent> {
        loop {
            if self.stream.is_none() {
                if self.urls.is_empty() {
                    bail!("watch {}: stream ended", self.agent);
                }
                self.reopen(deadline).await?;
            }
            let Some(stream) = self.stream.as_mut() else {
                continue;
            };
            match tokio::time::timeout_at(deadline, stream.message()).await {
                Ok(Ok(Some(ev))) => {
                    eprintln!("[e2e] watch {}: seq {} {:?}", self.agent, ev.seq, ev.kind);
                    self.last_seq = self.last_seq.max(ev.seq);
                    self.history.push(ev.clone());
                    return Ok(ev);
                }
                Ok(Ok(None)) if self.urls.is_empty() => bail!("watch {}: stream ended", self.agent),
                Ok(Err(e)) if self.urls.is_empty() => {
                    bail!("watch {}: stream error {e}", self.agent)
                }
                Ok(_) => self.stream = None,
                Err(_) => bail!("watch {}: deadline", self.agent),
            }
        }
    }

    async fn await_kind<T>(
        &mut self,
        what: &str,
        within: Duration,
        f: impl Fn(&Kind) -> Option<T>,
    ) -> Result<T> {
        let deadline = Instant::now() + within;
        loop {
            match self.next(deadline).await {
                Ok(ev) => {
                    if let Some(t) = ev.kind.as_ref().and_then(&f) {
                        return Ok(t);
                    }
                }
                Err(e) => bail!(
                    "watch {}: no {what} within {within:?} ({e}); events so far: {:?}",
                    self.agent,
                    self.history
                ),
            }
        }
    }

    /// Waits for a status event with `state`.
    pub async fn await_state(
        &mut self,
        state: AgentState,
        within: Duration,
    ) -> Result<AgentStatus> {
        self.await_kind(&format!("state {state:?}"), within, |k| match k {
            Kind::Status(s) if s.state == state as i32 => Some(s.clone()),
            _ => None,
        })
        .await
    }

    /// Waits for an offer.
    pub async fn await_offer(&mut self, within: Duration) -> Result<CallOffer> {
        self.await_kind("offer", within, |k| match k {
            Kind::Offer(o) => Some(o.clone()),
            _ => None,
        })
        .await
    }

    /// Waits for a call to leave the agent (CallFinished).
    pub async fn await_finished(&mut self, within: Duration) -> Result<CallFinished> {
        self.await_kind("finished", within, |k| match k {
            Kind::Finished(f) => Some(f.clone()),
            _ => None,
        })
        .await
    }

    /// Offers seen so far.
    pub fn offers(&self) -> Vec<CallOffer> {
        self.history
            .iter()
            .filter_map(|e| match &e.kind {
                Some(Kind::Offer(o)) => Some(o.clone()),
                _ => None,
            })
            .collect()
    }

    /// States seen so far, in order.
    pub fn states(&self) -> Vec<AgentState> {
        self.history
            .iter()
            .filter_map(|e| match &e.kind {
                Some(Kind::Status(s)) => AgentState::try_from(s.state).ok(),
                _ => None,
            })
            .collect()
    }

    /// Takes whatever events are already buffered, without waiting past `within`.
    pub async fn drain(&mut self, within: Duration) {
        let deadline = Instant::now() + within;
        while self.next(deadline).await.is_ok() {}
    }
}
