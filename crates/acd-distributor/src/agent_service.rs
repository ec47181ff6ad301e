//! `acd.v1.AgentService`: the operators' API over the distributor.

use std::pin::Pin;

use acd_proto::v1 as pb;
use acd_routing::{AgentId, CallId, Command, EventRecord, Extension, QueueId, TransferTarget};
use futures::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::access::Principal;
use crate::agent_events::{self, AgentFilter};
use crate::convert::{agent_status, status_from};
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
        Command::RejectOffer { .. } => "reject_offer",
        Command::Transfer { .. } => "transfer",
        _ => "other",
    }
}

fn agent_id(id: String) -> Result<AgentId, Status> {
    if id.trim().is_empty() {
        return Err(Status::invalid_argument("agent_id is empty"));
    }
    Ok(AgentId(id))
}

/// The agent a request names, once its caller may act for it.
fn acting<T>(req: &Request<T>, id: String) -> Result<AgentId, Status> {
    let agent = agent_id(id)?;
    Principal::may_act_for(req.extensions().get::<Principal>(), &agent.0)?;
    Ok(agent)
}

fn call_id(id: String) -> Result<CallId, Status> {
    if id.trim().is_empty() {
        return Err(Status::invalid_argument("call_id is empty"));
    }
    Ok(CallId(id))
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::AgentEvent, Status>> + Send>>;

#[tonic::async_trait]
impl pb::agent_service_server::AgentService for AgentApi {
    async fn login(
        &self,
        req: Request<pb::LoginRequest>,
    ) -> Result<Response<pb::AgentStatus>, Status> {
        let agent = acting(&req, req.get_ref().agent_id.clone())?;
        let r = req.into_inner();
        if r.extension.trim().is_empty() {
            return Err(Status::invalid_argument("extension is empty"));
        }
        let extension = Extension(r.extension);
        self.check_extension(&extension)?;
        let cmd = Command::AgentLogin {
            agent: agent.clone(),
            extension,
        };
        self.run(cmd, &agent).await
    }

    async fn set_ready(
        &self,
        req: Request<pb::SetReadyRequest>,
    ) -> Result<Response<pb::AgentStatus>, Status> {
        let agent = acting(&req, req.get_ref().agent_id.clone())?;
        let cmd = Command::AgentReady {
            agent: agent.clone(),
        };
        self.run(cmd, &agent).await
    }

    async fn set_not_ready(
        &self,
        req: Request<pb::SetNotReadyRequest>,
    ) -> Result<Response<pb::AgentStatus>, Status> {
        let agent = acting(&req, req.get_ref().agent_id.clone())?;
        let reason = req.into_inner().reason;
        self.run(not_ready(&agent, reason), &agent).await
    }

    async fn accept_offer(
        &self,
        req: Request<pb::OfferRequest>,
    ) -> Result<Response<pb::AgentStatus>, Status> {
        let agent = acting(&req, req.get_ref().agent_id.clone())?;
        let call = call_id(req.into_inner().call_id)?;
        // The phone answers the call; accepting only confirms the offer is
        // this agent's (an auto-answer phone has already been told to).
        let status = self.status_of(&agent)?;
        if status.state != pb::AgentState::Reserved as i32 || status.call_id != call.0 {
            metrics::counter!("acd_agent_api_errors_total", "command" => "accept_offer")
                .increment(1);
            return Err(Status::failed_precondition(format!(
                "call {call} is not offered to agent {agent}"
            )));
        }
        Ok(Response::new(status))
    }

    async fn reject_offer(
        &self,
        req: Request<pb::OfferRequest>,
    ) -> Result<Response<pb::AgentStatus>, Status> {
        let agent = acting(&req, req.get_ref().agent_id.clone())?;
        let call = call_id(req.into_inner().call_id)?;
        let cmd = Command::RejectOffer {
            call,
            agent: agent.clone(),
        };
        self.run(cmd, &agent).await
    }

    async fn end_wrap_up(
        &self,
        req: Request<pb::EndWrapUpRequest>,
    ) -> Result<Response<pb::AgentStatus>, Status> {
        let agent = acting(&req, req.get_ref().agent_id.clone())?;
        let reason = req.into_inner().not_ready_reason;
        let cmd = if reason.is_empty() {
            Command::AgentReady {
                agent: agent.clone(),
            }
        } else {
            not_ready(&agent, reason)
        };
        self.run(cmd, &agent).await
    }

    async fn transfer(
        &self,
        req: Request<pb::TransferRequest>,
    ) -> Result<Response<pb::AgentStatus>, Status> {
        use pb::transfer_request::Target;
        let agent = acting(&req, req.get_ref().agent_id.clone())?;
        let r = req.into_inner();
        let call = call_id(r.call_id)?;
        let target = match r.target {
            Some(Target::QueueId(q)) if !q.is_empty() => TransferTarget::Queue(QueueId(q)),
            Some(Target::ToAgentId(a)) if !a.is_empty() => TransferTarget::Agent(AgentId(a)),
            _ => return Err(Status::invalid_argument("give a queue_id or a to_agent_id")),
        };
        let cmd = Command::Transfer {
            call,
            by: agent.clone(),
            target,
        };
        self.run(cmd, &agent).await
    }

    async fn list_reasons(
        &self,
        _req: Request<pb::ListReasonsRequest>,
    ) -> Result<Response<pb::ListReasonsResponse>, Status> {
        let reasons = self.d.lock().core.config().not_ready_reasons.clone();
        Ok(Response::new(pb::ListReasonsResponse { reasons }))
    }

    async fn logout(
        &self,
        req: Request<pb::LogoutRequest>,
    ) -> Result<Response<pb::AgentStatus>, Status> {
        let agent = acting(&req, req.get_ref().agent_id.clone())?;
        let cmd = Command::AgentLogout {
            agent: agent.clone(),
        };
        self.run(cmd, &agent).await
    }

    async fn get_agent(
        &self,
        req: Request<pb::GetAgentRequest>,
    ) -> Result<Response<pb::AgentStatus>, Status> {
        let agent = acting(&req, req.get_ref().agent_id.clone())?;
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
        let queues = queue_board(&self.d, now_ms());
        Ok(Response::new(pb::ListQueuesResponse { queues }))
    }

    type WatchStream = WatchStream;

    async fn watch(&self, req: Request<pb::WatchRequest>) -> Result<Response<WatchStream>, Status> {
        let agent = acting(&req, req.get_ref().agent_id.clone())?;
        let after_seq = req.into_inner().after_seq;
        // A standby's view may stop at any moment (its primary gone, not yet
        // promoted): watchers follow the leader like every other client.
        self.d.refuse_unless_leader().map_err(|e| {
            metrics::counter!("acd_agent_api_errors_total", "command" => "watch").increment(1);
            status_from(e)
        })?;
        // Subscribe before reading the state so no change falls in between;
        // what is already released is replayed or summed up by the status.
        let events = self.d.subscribe_effects();
        let mut filter = AgentFilter::new(agent.clone());
        let start = self.watch_start(&mut filter, after_seq)?;
        metrics::counter!("acd_agent_watches_total").increment(1);
        let (tx, rx) = mpsc::channel(256);
        tokio::spawn(watch_agent(self.d.clone(), filter, start, events, tx));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

fn not_ready(agent: &AgentId, reason: String) -> Command {
    let reason = if reason.is_empty() {
        "not ready".to_string()
    } else {
        reason
    };
    Command::AgentNotReady {
        agent: agent.clone(),
        reason,
    }
}

/// Every queue's status now, with its definition's figures.
pub fn queue_board(d: &Distributor, now: acd_routing::Timestamp) -> Vec<pb::QueueStatus> {
    let inner = d.lock();
    let config = inner.core.config();
    inner
        .core
        .queues()
        .iter()
        .map(|q| {
            let def = config.queues.iter().find(|def| def.id == q.id);
            crate::convert::queue_status_full(q, def, now)
        })
        .collect()
}

/// Where a watch begins: the events it missed, or the agent's status now.
struct WatchStart {
    /// Sent first, in order.
    backlog: Vec<pb::AgentEvent>,
    /// Live records at or below this record seq are covered by the backlog.
    after: u64,
}

impl AgentApi {
    /// With `after_seq` and the log still holding what followed it: the
    /// missed events concerning the agent (released ones only, as live).
    /// Else (a first watch, or a gap too old): the status now, numbered as
    /// the last event of the released record.
    fn watch_start(&self, filter: &mut AgentFilter, after_seq: u64) -> Result<WatchStart, Status> {
        let agent = filter.agent.clone();
        let inner = self.d.lock();
        let view = inner
            .core
            .agent(&agent)
            .ok_or_else(|| Status::not_found(format!("unknown agent `{agent}`")))?;
        let committed = inner.log.committed();
        // The record the resume point is in is read again: its later events
        // may not have been seen.
        let resume_record = agent_events::record_of(after_seq);
        let missed = (after_seq > 0)
            .then(|| {
                inner
                    .log
                    .entries_after(resume_record.saturating_sub(1))
                    .ok()
            })
            .flatten();
        drop(inner);
        let Some(missed) = missed else {
            if after_seq > 0 {
                metrics::counter!("acd_agent_watch_resyncs_total").increment(1);
                tracing::info!(%agent, after_seq, committed, "watch resumes past the log: status re-sync");
            }
            let status = pb::AgentEvent {
                seq: agent_events::wire_seq_through(committed),
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
            .filter(|rec| rec.seq.0 <= committed)
            .flat_map(|rec| filter.wire_events(rec, &self.d))
            .filter(|ev| ev.seq > after_seq)
            .collect();
        metrics::counter!("acd_agent_watch_resumed_total").increment(1);
        Ok(WatchStart {
            backlog,
            after: committed.max(resume_record),
        })
    }

    /// Refuses a login at an extension the site does not have (the core
    /// checks too once the configuration lists extensions).
    fn check_extension(&self, extension: &Extension) -> Result<(), Status> {
        let inner = self.d.lock();
        let known = &inner.core.config().extensions;
        if known.is_empty() || known.contains(extension) {
            return Ok(());
        }
        metrics::counter!("acd_agent_api_errors_total", "command" => "login_unknown_extension")
            .increment(1);
        Err(Status::not_found(format!(
            "extension {extension} is not configured"
        )))
    }
}

/// Sends the backlog, then every released event about the agent after it.
async fn watch_agent(
    d: Distributor,
    mut filter: AgentFilter,
    start: WatchStart,
    mut events: tokio::sync::broadcast::Receiver<std::sync::Arc<EventRecord>>,
    tx: mpsc::Sender<Result<pb::AgentEvent, Status>>,
) {
    for ev in start.backlog {
        if tx.send(Ok(ev)).await.is_err() {
            return;
        }
    }
    while let Some(rec) =
        agent_events::next_record(&mut events, &tx, "acd_agent_watch_lagged_total").await
    {
        if rec.seq.0 <= start.after {
            continue;
        }
        for ev in filter.wire_events(&rec, &d) {
            if tx.send(Ok(ev)).await.is_err() {
                return;
            }
        }
    }
}
