//! gRPC helpers: connect with retry, agent commands, a watch stream with
//! deadline-bounded awaits, queue and admin status.

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use tokio::time::Instant;
use tonic::transport::{Channel, Endpoint};

use acd_proto::v1::admin_service_client::AdminServiceClient;
use acd_proto::v1::agent_event::Kind;
use acd_proto::v1::agent_service_client::AgentServiceClient;
use acd_proto::v1::{
    AgentEvent, AgentState, AgentStatus, CallOffer, GetAgentRequest, ListQueuesRequest,
    LoginRequest, LogoutRequest, QueueStatus, SetNotReadyRequest, SetReadyRequest, StatusRequest,
    StatusResponse, WatchRequest,
};

/// Connects to `url`, retrying until `within` elapses.
pub async fn connect(url: &str, within: Duration) -> Result<Channel> {
    let deadline = Instant::now() + within;
    let endpoint = Endpoint::from_shared(url.to_string())?.connect_timeout(Duration::from_secs(2));
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
    pub agent: AgentServiceClient<Channel>,
    pub admin: AdminServiceClient<Channel>,
}

impl AcdClient {
    pub async fn connect(url: &str) -> Result<Self> {
        let ch = connect(url, Duration::from_secs(10)).await?;
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
            stream,
            history: Vec::new(),
        })
    }
}

/// An agent's Watch stream. Awaits consume events in order; every event
/// received is kept in `history`.
pub struct AgentWatch {
    pub agent: String,
    stream: tonic::Streaming<AgentEvent>,
    pub history: Vec<AgentEvent>,
}

impl AgentWatch {
    /// Next event, or an error at the deadline / end of stream.
    pub async fn next(&mut self, deadline: Instant) -> Result<AgentEvent> {
        match tokio::time::timeout_at(deadline, self.stream.message()).await {
            Ok(Ok(Some(ev))) => {
                eprintln!("[e2e] watch {}: {:?}", self.agent, ev.kind);
                self.history.push(ev.clone());
                Ok(ev)
            }
            Ok(Ok(None)) => bail!("watch {}: stream ended", self.agent),
            Ok(Err(e)) => bail!("watch {}: stream error {e}", self.agent),
            Err(_) => bail!("watch {}: deadline", self.agent),
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
