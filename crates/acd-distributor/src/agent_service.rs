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
            ..Default::default()
        })
    };
    let (agent, implied, call_event) = match &rec.event {
        // Implied too: a replayed login must not show the agent's later state.
        Event::AgentLoggedIn { agent, .. } => (agent, Some((AgentState::NotReady, None)), None),
        Event::AgentLoggedOut { agent } => (agent, Some((AgentState::LoggedOut, None)), None),
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
            let (enqueued_at, priority, skills) = match d.lock().core.call(call) {
                Some(c) => (Some(c.enqueued_at), c.priority, c.skills.clone()),
                None => (None, 0, Default::default()),
            };
            let offer = pb::CallOffer {
                call_id: call.0.clone(),
                queue_id: queue.0.clone(),
                caller: Some(caller_to_wire(caller)),
                waited_ms: enqueued_at.map_or(0, |at| rec.at.ms_since(at)),
                enqueued_at_ms: enqueued_at.map_or(0, |at| at.0),
                priority,
                skills: skills
                    .into_iter()
                    .map(|(k, v)| (k.0, u32::from(v)))
                    .collect(),
                ..Default::default()
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
            ..
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

    async fn accept_offer(
        &self,
        _req: Request<pb::OfferRequest>,
    ) -> Result<Response<pb::AgentStatus>, Status> {
        Err(Status::unimplemented("AcceptOffer is not implemented yet"))
    }

    async fn reject_offer(
        &self,
        _req: Request<pb::OfferRequest>,
    ) -> Result<Response<pb::AgentStatus>, Status> {
        Err(Status::unimplemented("RejectOffer is not implemented yet"))
    }

    async fn end_wrap_up(
        &self,
        _req: Request<pb::EndWrapUpRequest>,
    ) -> Result<Response<pb::AgentStatus>, Status> {
        Err(Status::unimplemented("EndWrapUp is not implemented yet"))
    }

    async fn transfer(
        &self,
        _req: Request<pb::TransferRequest>,
    ) -> Result<Response<pb::AgentStatus>, Status> {
        Err(Status::unimplemented("Transfer is not implemented yet"))
    }

    async fn list_reasons(
        &self,
        _req: Request<pb::ListReasonsRequest>,
    ) -> Result<Response<pb::ListReasonsResponse>, Status> {
        Err(Status::unimplemented("ListReasons is not implemented yet"))
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
                    .map(|d| crate::convert::expr_terms(&d.skills))
                    .unwrap_or_default();
                queue_status(q, &required, now)
            })
            .collect();
        Ok(Response::new(pb::ListQueuesResponse { queues }))
    }

    type WatchStream = WatchStream;

    async fn watch(&self, req: Request<pb::WatchRequest>) -> Result<Response<WatchStream>, Status> {
        let req = req.into_inner();
        let agent = agent_id(req.agent_id)?;
        // A standby's view may stop at any moment (its primary gone, not yet
        // promoted): watchers follow the leader like every other client.
        self.d.refuse_unless_leader().map_err(|e| {
            metrics::counter!("acd_agent_api_errors_total", "command" => "watch").increment(1);
            status_from(e)
        })?;
        // Subscribe before reading the state so no change falls in between;
        // what is already released is replayed or summed up by the status.
        let events = self.d.subscribe_effects();
        let start = self.watch_start(&agent, req.after_seq)?;
        metrics::counter!("acd_agent_watches_total").increment(1);
        let (tx, rx) = mpsc::channel(256);
        tokio::spawn(watch_agent(self.d.clone(), agent, start, events, tx));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// Where a watch begins: the events it missed, or the agent's status now.
struct WatchStart {
    /// Sent first, in order.
    backlog: Vec<pb::AgentEvent>,
    /// Live events at or below this seq are covered by the backlog.
    after: u64,
}

impl AgentApi {
    /// With `after_seq` and the log still holding what followed it: the
    /// missed events concerning `agent` (released ones only, as live). Else
    /// (a first watch, or a gap too old): the status now, at the released seq.
    fn watch_start(&self, agent: &AgentId, after_seq: u64) -> Result<WatchStart, Status> {
        let inner = self.d.lock();
        let view = inner
            .core
            .agent(agent)
            .ok_or_else(|| Status::not_found(format!("unknown agent `{agent}`")))?;
        let committed = inner.log.committed();
        let missed = (after_seq > 0)
            .then(|| inner.log.entries_after(after_seq).ok())
            .flatten();
        drop(inner);
        let Some(missed) = missed else {
            if after_seq > 0 {
                metrics::counter!("acd_agent_watch_resyncs_total").increment(1);
                tracing::info!(%agent, after_seq, committed, "watch resumes past the log: status re-sync");
            }
            let status = pb::AgentEvent {
                seq: committed,
                kind: Some(pb::agent_event::Kind::Status(agent_status(&view))),
            };
            return Ok(WatchStart {
                backlog: vec![status],
                after: committed,
            });
        };
        let backlog = missed
            .iter()
            .map(|e| &e.payload)
            .filter(|rec| rec.seq.0 <= committed && concerned_agent(&rec.event) == Some(agent))
            .flat_map(|rec| wire_events(rec, &self.d))
            .collect();
        metrics::counter!("acd_agent_watch_resumed_total").increment(1);
        Ok(WatchStart {
            backlog,
            after: committed.max(after_seq),
        })
    }
}

/// One record as the events a watcher gets, each carrying the record's seq.
fn wire_events(rec: &EventRecord, d: &Distributor) -> Vec<pb::AgentEvent> {
    agent_events(rec, d)
        .into_iter()
        .flatten()
        .map(|kind| pb::AgentEvent {
            seq: rec.seq.0,
            kind: Some(kind),
        })
        .collect()
}

/// Sends the backlog, then every released event about `agent` after it.
async fn watch_agent(
    d: Distributor,
    agent: AgentId,
    start: WatchStart,
    mut events: tokio::sync::broadcast::Receiver<std::sync::Arc<EventRecord>>,
    tx: mpsc::Sender<Result<pb::AgentEvent, Status>>,
) {
    for ev in start.backlog {
        if tx.send(Ok(ev)).await.is_err() {
            return;
        }
    }
    loop {
        let rec = match events.recv().await {
            Ok(rec) => rec,
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
        };
        if rec.seq.0 <= start.after || concerned_agent(&rec.event) != Some(&agent) {
            continue;
        }
        for ev in wire_events(&rec, &d) {
            if tx.send(Ok(ev)).await.is_err() {
                return;
            }
        }
    }
}
