//! `acd.v1.AgentService`: the operators' API over the distributor.

use std::pin::Pin;

use acd_proto::v1 as pb;
use acd_routing::{AgentId, AgentState, AgentView, CallId, Command, Event, EventRecord, Extension};
use futures::Stream;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::convert::{agent_status, caller_to_wire, queue_status, status_from};
use crate::{now_ms, Distributor};

#[derive(Clone)]
pub struct AgentApi {
    d: Distributor,
}

impl AgentApi {
    pub fn new(d: Distributor) -> Self {
        AgentApi { d }
    }

    pub fn into_service(self) -> pb::agent_service_server::AgentServiceServer<Self> {
        pb::agent_service_server::AgentServiceServer::new(self)
    }

    /// Runs an agent command; answers once it is durable on the standby.
    async fn run(
        &self,
        cmd: Command,
        agent: &AgentId,
    ) -> Result<Response<pb::AgentStatus>, Status> {
        let name = command_name(&cmd);
        self.d.command_durable(cmd).await.map_err(|e| {
            metrics::counter!("acd_agent_api_errors_total", "command" => name).increment(1);
            tracing::info!(agent = %agent, command = name, error = %e, "agent command refused");
            status_from(e)
        })?;
        self.status_of(agent).map(Response::new)
    }

    fn status_of(&self, agent: &AgentId) -> Result<pb::AgentStatus, Status> {
        let inner = self.d.lock();
        inner
            .core
            .agent(agent)
            .map(|v| agent_status(&v))
            .ok_or_else(|| Status::not_found(format!("unknown agent `{agent}`")))
    }
}

fn command_name(cmd: &Command) -> &'static str {
    match cmd {
        Command::AgentLogin { .. } => "login",
        Command::AgentReady { .. } => "ready",
        Command::AgentNotReady { .. } => "not_ready",
        Command::AgentLogout { .. } => "logout",
        _ => "other",
    }
}

fn agent_id(id: String) -> Result<AgentId, Status> {
    if id.trim().is_empty() {
        return Err(Status::invalid_argument("agent_id is empty"));
    }
    Ok(AgentId(id))
}

/// What an event means for the agent it concerns: the state it implies
/// (so the watcher sees every transition even if the next event has
/// already moved the agent on) and the call event itself.
/// The agent an event concerns, read without touching the core, so each
/// watcher skips other agents' events cheaply.
fn concerned_agent(event: &Event) -> Option<&AgentId> {
    match event {
        Event::AgentLoggedIn { agent, .. }
        | Event::AgentLoggedOut { agent }
        | Event::AgentStateChanged { agent, .. }
        | Event::CallOffered { agent, .. }
        | Event::CallConnected { agent, .. }
        | Event::CallEnded { agent, .. }
        | Event::CallRequeued { agent, .. }
        | Event::CallAbandoned {
            agent: Some(agent), ..
        } => Some(agent),
        _ => None,
    }
}

fn agent_events(rec: &EventRecord, d: &Distributor) -> Option<Vec<pb::agent_event::Kind>> {
    use pb::agent_event::Kind;
    let finished = |call: &CallId, reason: &str| {
        Kind::Finished(pb::CallFinished {
            call_id: call.0.clone(),
            reason: reason.into(),
        })
    };
    let (agent, implied, call_event) = match &rec.event {
        Event::AgentLoggedIn { agent, .. } | Event::AgentLoggedOut { agent } => (agent, None, None),
        Event::AgentStateChanged {
            agent,
            state,
            reason,
        } => (agent, Some((state.clone(), reason.clone())), None),
        Event::CallOffered {
            call,
            agent,
            queue,
            caller,
            ..
        } => {
            let enqueued_at = d.lock().core.call(call).map(|c| c.enqueued_at);
            let offer = pb::CallOffer {
                call_id: call.0.clone(),
                queue_id: queue.0.clone(),
                caller: Some(caller_to_wire(caller)),
                waited_ms: enqueued_at.map_or(0, |at| rec.at.ms_since(at)),
                enqueued_at_ms: enqueued_at.map_or(0, |at| at.0),
            };
            (
                agent,
                Some((AgentState::Reserved { call: call.clone() }, None)),
                Some(Kind::Offer(offer)),
            )
        }
        Event::CallConnected { call, agent } => (
            agent,
            Some((AgentState::OnCall { call: call.clone() }, None)),
            Some(Kind::Connected(pb::CallConnected {
                call_id: call.0.clone(),
            })),
        ),
        Event::CallEnded {
            call,
            agent,
            wrap_up_until,
        } => (
            agent,
            Some((
                AgentState::WrapUp {
                    until: *wrap_up_until,
                },
                None,
            )),
            Some(finished(call, "ended")),
        ),
        Event::CallRequeued {
            call,
            agent,
            reason,
        } => (agent, None, Some(finished(call, reason))),
        Event::CallAbandoned {
            call,
            agent: Some(agent),
            ..
        } => (agent, None, Some(finished(call, "caller abandoned"))),
        _ => return None,
    };
    let view = d.lock().core.agent(agent)?;
    let mut status = agent_status(&view);
    if let Some((state, reason)) = implied {
        let shown = AgentView {
            state,
            reason,
            ..view
        };
        status = agent_status(&shown);
    }
    // The call event first (offer before "reserved"), then the state.
    Some(
        call_event
            .into_iter()
            .chain([Kind::Status(status)])
            .collect(),
    )
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::AgentEvent, Status>> + Send>>;

#[tonic::async_trait]
impl pb::agent_service_server::AgentService for AgentApi {
    async fn login(
        &self,
        req: Request<pb::LoginRequest>,
    ) -> Result<Response<pb::AgentStatus>, Status> {
        let r = req.into_inner();
        let agent = agent_id(r.agent_id)?;
        if r.extension.trim().is_empty() {
            return Err(Status::invalid_argument("extension is empty"));
        }
        let cmd = Command::AgentLogin {
            agent: agent.clone(),
            extension: Extension(r.extension),
        };
        self.run(cmd, &agent).await
    }

    async fn set_ready(
        &self,
        req: Request<pb::SetReadyRequest>,
    ) -> Result<Response<pb::AgentStatus>, Status> {
        let agent = agent_id(req.into_inner().agent_id)?;
        self.run(
            Command::AgentReady {
                agent: agent.clone(),
            },
            &agent,
        )
        .await
    }

    async fn set_not_ready(
        &self,
        req: Request<pb::SetNotReadyRequest>,
    ) -> Result<Response<pb::AgentStatus>, Status> {
        let r = req.into_inner();
        let agent = agent_id(r.agent_id)?;
        let reason = if r.reason.is_empty() {
            "not ready".to_string()
        } else {
            r.reason
        };
        self.run(
            Command::AgentNotReady {
                agent: agent.clone(),
                reason,
            },
            &agent,
        )
        .await
    }

    async fn logout(
        &self,
        req: Request<pb::LogoutRequest>,
    ) -> Result<Response<pb::AgentStatus>, Status> {
        let agent = agent_id(req.into_inner().agent_id)?;
        self.run(
            Command::AgentLogout {
                agent: agent.clone(),
            },
            &agent,
        )
        .await
    }

    async fn get_agent(
        &self,
        req: Request<pb::GetAgentRequest>,
    ) -> Result<Response<pb::AgentStatus>, Status> {
        let agent = agent_id(req.into_inner().agent_id)?;
        self.status_of(&agent).map(Response::new)
    }

    async fn list_agents(
        &self,
        _req: Request<pb::ListAgentsRequest>,
    ) -> Result<Response<pb::ListAgentsResponse>, Status> {
        let inner = self.d.lock();
        let agents = inner.core.agents().map(|v| agent_status(&v)).collect();
        Ok(Response::new(pb::ListAgentsResponse { agents }))
    }

    async fn list_queues(
        &self,
        _req: Request<pb::ListQueuesRequest>,
    ) -> Result<Response<pb::ListQueuesResponse>, Status> {
        let now = now_ms();
        let inner = self.d.lock();
        let queues = inner
            .core
            .queues()
            .iter()
            .map(|q| {
                let required = self
                    .d
                    .config()
                    .queues
                    .iter()
                    .find(|d| d.id == q.id)
                    .map(|d| d.required.as_slice())
                    .unwrap_or(&[]);
                queue_status(q, required, now)
            })
            .collect();
        Ok(Response::new(pb::ListQueuesResponse { queues }))
    }

    type WatchStream = WatchStream;

    async fn watch(&self, req: Request<pb::WatchRequest>) -> Result<Response<WatchStream>, Status> {
        let agent = agent_id(req.into_inner().agent_id)?;
        // Subscribe before reading the current status so no change falls in
        // between; start after what is already released as effects.
        let mut events = self.d.subscribe_effects();
        let (first, seq) = {
            let inner = self.d.lock();
            let v = inner
                .core
                .agent(&agent)
                .ok_or_else(|| Status::not_found(format!("unknown agent `{agent}`")))?;
            (agent_status(&v), inner.log.committed())
        };
        let (tx, rx) = mpsc::channel(256);
        let d = self.d.clone();
        tokio::spawn(async move {
            let hello = pb::AgentEvent {
                seq,
                kind: Some(pb::agent_event::Kind::Status(first)),
            };
            if tx.send(Ok(hello)).await.is_err() {
                return;
            }
            loop {
                match events.recv().await {
                    Ok(rec) => {
                        if rec.seq.0 <= seq {
                            continue;
                        }
                        if concerned_agent(&rec.event) != Some(&agent) {
                            continue;
                        }
                        let Some(kinds) = agent_events(&rec, &d) else {
                            continue;
                        };
                        for kind in kinds {
                            if tx
                                .send(Ok(pb::AgentEvent {
                                    seq: rec.seq.0,
                                    kind: Some(kind),
                                }))
                                .await
                                .is_err()
                            {
                                return;
                            }
                        }
                    }
                    Err(RecvError::Lagged(n)) => {
                        metrics::counter!("acd_agent_watch_lagged_total").increment(1);
                        let _ = tx
                            .send(Err(Status::data_loss(format!(
                                "watch fell {n} events behind; watch again"
                            ))))
                            .await;
                        return;
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
