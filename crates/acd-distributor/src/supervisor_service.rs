//! `acd.v1.SupervisorService`: live boards of queues and agents, forced
//! agent states, definition changes as one replicated `ApplyConfig`
//! command each, the calls held, and why a call went where it went.
//!
//! Roles are checked by the access layer (supervisor or admin; ApplyConfig
//! admin only), so nothing here looks at the caller.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use acd_proto::v1 as pb;
use acd_routing::{
    AgentDef, AgentId, CallId, CallPhase, Command, Event, QueueId, RoutingConfig, SkillId,
};
use futures::Stream;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::agent_events::{concerned_agent, next_record};
use crate::agent_service::queue_board;
use crate::convert::{agent_status, caller_to_wire, status_from};
use crate::explain_log::{self, ExplainLog};
use crate::{now_ms, Distributor};

/// Default and smallest interval between two queue boards.
const DEFAULT_BOARD_INTERVAL: Duration = Duration::from_millis(200);
const MIN_BOARD_INTERVAL: Duration = Duration::from_millis(20);

#[derive(Clone)]
pub struct SupervisorApi {
    d: Distributor,
    explain: Arc<Mutex<ExplainLog>>,
    reports: Arc<crate::reports::ReportSettings>,
}

impl SupervisorApi {
    /// Starts keeping the decision history (needs a tokio runtime).
    pub fn new(d: Distributor) -> Self {
        let explain = explain_log::spawn(&d);
        SupervisorApi {
            d,
            explain,
            reports: Arc::new(crate::reports::ReportSettings::none()),
        }
    }

    /// Where `Report` reads call records, and its defaults.
    pub fn with_reports(mut self, settings: crate::reports::ReportSettings) -> Self {
        self.reports = Arc::new(settings);
        self
    }

    pub fn into_service(self) -> pb::supervisor_service_server::SupervisorServiceServer<Self> {
        pb::supervisor_service_server::SupervisorServiceServer::new(self)
    }

    /// The configuration in force (changes applied at run time included).
    fn current_config(&self) -> RoutingConfig {
        self.d.config()
    }

    /// Runs `new` through the replicated command path unless `dry_run`;
    /// answers with the diff either way.
    async fn change(
        &self,
        what: &'static str,
        new: RoutingConfig,
        orphans_to: Option<QueueId>,
        dry_run: bool,
    ) -> Result<Response<pb::ConfigChange>, Status> {
        let old = self.current_config();
        let diff = crate::config_diff::diff(&old, &new);
        let calls_affected = self.calls_in_changed_queues(&old, &new);
        if dry_run {
            return Ok(Response::new(pb::ConfigChange {
                applied: false,
                version: 0,
                diff,
                calls_affected,
            }));
        }
        let cmd = Command::ApplyConfig {
            config: new,
            orphans_to,
        };
        let records = self.d.command_durable(cmd).await.map_err(|e| {
            metrics::counter!("acd_supervisor_api_errors_total", "command" => what).increment(1);
            tracing::info!(command = what, error = %e, "configuration change refused");
            status_from(e)
        })?;
        let version = records
            .iter()
            .find_map(|r| match &r.event {
                Event::ConfigChanged { version, .. } => Some(*version),
                _ => None,
            })
            .unwrap_or(0);
        tracing::info!(
            command = what,
            version,
            changes = diff.len(),
            "configuration changed"
        );
        metrics::counter!("acd_config_changes_total", "command" => what).increment(1);
        Ok(Response::new(pb::ConfigChange {
            applied: true,
            version,
            diff,
            calls_affected,
        }))
    }

    /// Waiting calls in queues the change removes or redefines.
    fn calls_in_changed_queues(&self, old: &RoutingConfig, new: &RoutingConfig) -> u32 {
        let changed: Vec<&QueueId> = old
            .queues
            .iter()
            .filter(|q| new.queues.iter().find(|n| n.id == q.id) != Some(*q))
            .map(|q| &q.id)
            .collect();
        let inner = self.d.lock();
        inner
            .core
            .queues()
            .iter()
            .filter(|q| changed.contains(&&q.id))
            .map(|q| q.waiting as u32)
            .sum()
    }
}

type BoardStream = Pin<Box<dyn Stream<Item = Result<pb::QueueBoard, Status>> + Send>>;
type AgentStream = Pin<Box<dyn Stream<Item = Result<pb::AgentStatus, Status>> + Send>>;

#[tonic::async_trait]
impl pb::supervisor_service_server::SupervisorService for SupervisorApi {
    type WatchQueuesStream = BoardStream;

    async fn watch_queues(
        &self,
        req: Request<pb::WatchQueuesRequest>,
    ) -> Result<Response<BoardStream>, Status> {
        let ms = req.into_inner().min_interval_ms;
        let interval = match ms {
            0 => DEFAULT_BOARD_INTERVAL,
            ms => Duration::from_millis(u64::from(ms)).max(MIN_BOARD_INTERVAL),
        };
        let records = self.d.subscribe_effects();
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(watch_queues(self.d.clone(), interval, records, tx));
        metrics::counter!("acd_supervisor_watches_total", "kind" => "queues").increment(1);
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    type WatchAgentsStream = AgentStream;

    async fn watch_agents(
        &self,
        _req: Request<pb::WatchAgentsRequest>,
    ) -> Result<Response<AgentStream>, Status> {
        // Subscribed before the first list: no change falls in between.
        let records = self.d.subscribe_effects();
        let all: Vec<pb::AgentStatus> = self
            .d
            .lock()
            .core
            .agents()
            .map(|v| agent_status(&v))
            .collect();
        let (tx, rx) = mpsc::channel(256);
        tokio::spawn(watch_agents(self.d.clone(), all, records, tx));
        metrics::counter!("acd_supervisor_watches_total", "kind" => "agents").increment(1);
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn force_state(
        &self,
        req: Request<pb::ForceStateRequest>,
    ) -> Result<Response<pb::AgentStatus>, Status> {
        let r = req.into_inner();
        if r.agent_id.trim().is_empty() {
            return Err(Status::invalid_argument("agent_id is empty"));
        }
        let agent = AgentId(r.agent_id);
        let cmd = match pb::AgentState::try_from(r.state) {
            Ok(pb::AgentState::Ready) => Command::AgentReady {
                agent: agent.clone(),
            },
            Ok(pb::AgentState::NotReady) => Command::AgentNotReady {
                agent: agent.clone(),
                reason: if r.reason.is_empty() {
                    "supervisor".into()
                } else {
                    r.reason
                },
            },
            Ok(pb::AgentState::LoggedOut) => Command::AgentLogout {
                agent: agent.clone(),
            },
            _ => {
                return Err(Status::invalid_argument(
                    "state must be READY, NOT_READY or LOGGED_OUT",
                ))
            }
        };
        self.d.command_durable(cmd).await.map_err(|e| {
            metrics::counter!("acd_supervisor_api_errors_total", "command" => "force_state")
                .increment(1);
            status_from(e)
        })?;
        tracing::info!(%agent, state = r.state, "state forced by a supervisor");
        let inner = self.d.lock();
        inner
            .core
            .agent(&agent)
            .map(|v| Response::new(agent_status(&v)))
            .ok_or_else(|| Status::not_found(format!("unknown agent `{agent}`")))
    }

    async fn upsert_agent(
        &self,
        req: Request<pb::UpsertAgentRequest>,
    ) -> Result<Response<pb::ConfigChange>, Status> {
        let r = req.into_inner();
        if r.agent_id.trim().is_empty() {
            return Err(Status::invalid_argument("agent_id is empty"));
        }
        let mut skills = Vec::new();
        for (skill, level) in r.skills {
            match u8::try_from(level) {
                Ok(l @ 1..=10) => skills.push((SkillId(skill), l)),
                _ => {
                    return Err(Status::invalid_argument(format!(
                        "skill {skill}: level {level} is outside 1-10"
                    )))
                }
            }
        }
        skills.sort();
        let def = AgentDef {
            id: AgentId(r.agent_id),
            name: r.name,
            skills,
            auto_answer: r.auto_answer,
        };
        let mut new = self.current_config();
        match new.agents.iter_mut().find(|a| a.id == def.id) {
            Some(a) => *a = def,
            None => new.agents.push(def),
        }
        self.change("upsert_agent", new, None, r.dry_run).await
    }

    async fn remove_agent(
        &self,
        req: Request<pb::RemoveAgentRequest>,
    ) -> Result<Response<pb::ConfigChange>, Status> {
        let r = req.into_inner();
        let mut new = self.current_config();
        let before = new.agents.len();
        new.agents.retain(|a| a.id.0 != r.agent_id);
        if new.agents.len() == before {
            return Err(Status::not_found(format!("unknown agent `{}`", r.agent_id)));
        }
        self.change("remove_agent", new, None, r.dry_run).await
    }

    async fn upsert_queue(
        &self,
        req: Request<pb::UpsertQueueRequest>,
    ) -> Result<Response<pb::ConfigChange>, Status> {
        let r = req.into_inner();
        let def = acd_config::routing::queue_from_toml(&r.toml)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let mut new = self.current_config();
        match new.queues.iter_mut().find(|q| q.id == def.id) {
            Some(q) => *q = def,
            None => new.queues.push(def),
        }
        self.change("upsert_queue", new, None, r.dry_run).await
    }

    async fn remove_queue(
        &self,
        req: Request<pb::RemoveQueueRequest>,
    ) -> Result<Response<pb::ConfigChange>, Status> {
        let r = req.into_inner();
        let mut new = self.current_config();
        let before = new.queues.len();
        new.queues.retain(|q| q.id.0 != r.queue_id);
        if new.queues.len() == before {
            return Err(Status::not_found(format!("unknown queue `{}`", r.queue_id)));
        }
        let orphans_to = (!r.move_calls_to.is_empty()).then_some(QueueId(r.move_calls_to));
        self.change("remove_queue", new, orphans_to, r.dry_run)
            .await
    }

    async fn apply_config(
        &self,
        req: Request<pb::ApplyConfigRequest>,
    ) -> Result<Response<pb::ConfigChange>, Status> {
        let r = req.into_inner();
        let cfg = acd_config::parse(&r.toml, "request")
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let new = acd_config::routing::routing_config(&cfg)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let orphans_to = (!r.move_calls_to.is_empty()).then_some(QueueId(r.move_calls_to));
        self.change("apply_config", new, orphans_to, r.dry_run)
            .await
    }

    async fn list_calls(
        &self,
        req: Request<pb::ListCallsRequest>,
    ) -> Result<Response<pb::ListCallsResponse>, Status> {
        let queue = req.into_inner().queue_id;
        let calls = list_calls(&self.d, &queue, now_ms());
        Ok(Response::new(pb::ListCallsResponse { calls }))
    }

    async fn explain(
        &self,
        req: Request<pb::ExplainRequest>,
    ) -> Result<Response<pb::ExplainResponse>, Status> {
        let call = CallId(req.into_inner().call_id);
        let decisions = explain_log::lock(&self.explain)
            .decisions(&call)
            .ok_or_else(|| {
                Status::not_found(format!(
                    "no decisions recorded for call {call} (unknown, or older than the last {} calls)",
                    explain_log::MAX_CALLS
                ))
            })?;
        Ok(Response::new(pb::ExplainResponse {
            call_id: call.0,
            decisions,
        }))
    }

    async fn report(
        &self,
        req: Request<pb::ReportRequest>,
    ) -> Result<Response<pb::ReportResponse>, Status> {
        let targets = crate::reports::targets(&self.current_config());
        let now = i64::try_from(now_ms().0).unwrap_or(i64::MAX);
        crate::reports::report(req.into_inner(), &self.reports, targets, now)
            .await
            .map(Response::new)
    }
}

/// The calls held (of `queue`, or all), waiting ones in queue order first.
fn list_calls(d: &Distributor, queue: &str, now: acd_routing::Timestamp) -> Vec<pb::CallStatus> {
    let state = d.lock().core.snapshot().state;
    let mut calls: Vec<(&CallId, &acd_routing::CallRecord)> = state
        .calls
        .iter()
        .filter(|(_, c)| queue.is_empty() || c.queue.0 == queue)
        .collect();
    // Waiting first, then by queue and rank (priority desc, oldest, arrival).
    calls.sort_by_key(|(_, c)| {
        (
            c.phase != CallPhase::Waiting,
            c.queue.clone(),
            std::cmp::Reverse(c.priority),
            c.enqueued_at,
            c.arrival,
        )
    });
    let mut position: std::collections::HashMap<&QueueId, u32> = Default::default();
    calls
        .into_iter()
        .map(|(id, c)| {
            let (phase, agent) = match &c.phase {
                CallPhase::Waiting if c.callback.is_some() => ("callback_scheduled", None),
                CallPhase::Waiting => ("waiting", None),
                CallPhase::Offered { agent, .. } => ("offered", Some(agent)),
                CallPhase::Connected { agent, .. } => ("connected", Some(agent)),
            };
            let pos = match c.phase {
                CallPhase::Waiting => {
                    let p = position.entry(&c.queue).or_insert(0);
                    *p += 1;
                    *p
                }
                _ => 0,
            };
            pb::CallStatus {
                call_id: id.0.clone(),
                queue_id: c.queue.0.clone(),
                phase: phase.into(),
                priority: c.priority,
                waited_ms: now.ms_since(c.enqueued_at),
                position: pos,
                estimated_wait_secs: 0,
                agent_id: agent.map(|a| a.0.clone()).unwrap_or_default(),
                relax_step: c.relax_step,
                caller: Some(caller_to_wire(&c.caller)),
                callback: c.callback.is_some(),
            }
        })
        .collect()
}

/// Sends the board at once, then after changes, at most every `interval`.
async fn watch_queues(
    d: Distributor,
    interval: Duration,
    mut records: tokio::sync::broadcast::Receiver<Arc<acd_routing::EventRecord>>,
    tx: mpsc::Sender<Result<pb::QueueBoard, Status>>,
) {
    let board = |d: &Distributor| {
        let now = now_ms();
        pb::QueueBoard {
            queues: queue_board(d, now),
            at_ms: now.0,
        }
    };
    if tx.send(Ok(board(&d))).await.is_err() {
        return;
    }
    loop {
        // Wait for a change, then let more gather for the interval.
        match records.recv().await {
            Ok(_) | Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => return,
        }
        tokio::time::sleep(interval).await;
        // Everything that arrived meanwhile is in the board about to be sent.
        while let Ok(_) | Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) =
            records.try_recv()
        {}
        if tx.send(Ok(board(&d))).await.is_err() {
            return;
        }
    }
}

/// Sends every agent, then the agent each released record concerns.
async fn watch_agents(
    d: Distributor,
    all: Vec<pb::AgentStatus>,
    mut records: tokio::sync::broadcast::Receiver<Arc<acd_routing::EventRecord>>,
    tx: mpsc::Sender<Result<pb::AgentStatus, Status>>,
) {
    for a in all {
        if tx.send(Ok(a)).await.is_err() {
            return;
        }
    }
    while let Some(rec) = next_record(&mut records, &tx, "acd_supervisor_watch_lagged_total").await
    {
        let Some(agent) = concerned_agent(&rec.event) else {
            continue;
        };
        let status = d.lock().core.agent(agent).map(|v| agent_status(&v));
        if let Some(s) = status {
            if tx.send(Ok(s)).await.is_err() {
                return;
            }
        }
    }
}
