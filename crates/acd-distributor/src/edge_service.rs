//! `acd.v1.EdgeService/Attach`: the stream each SIP edge opens. Edge messages
//! become core commands; the events about the edge's own calls become
//! commands back to the edge (connect an agent, queued, rejected).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;

use acd_proto::v1 as pb;
use acd_routing::{AgentId, CallId, CallPhase, Command, EdgeId, MsgId, Origin, QueueId};
use dashmap::DashSet;
use futures::{Stream, StreamExt};
use pb::distributor_message::Kind as ToEdge;
use pb::edge_message::Kind as FromEdge;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::convert::{caller_from_wire, status_from};
use crate::edge_forward::Forwarder;
use crate::edge_registry::{AttachedEdge, EdgeRegistry};
use crate::{Distributor, ShellError};

#[derive(Clone)]
pub struct EdgeApi {
    d: Distributor,
    registry: Arc<EdgeRegistry>,
}

impl EdgeApi {
    /// Inside a Tokio runtime, also starts the queue announcements.
    pub fn new(d: Distributor) -> Self {
        let registry = Arc::new(EdgeRegistry::default());
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(crate::announce::run(d.clone(), registry.clone()));
        }
        EdgeApi { d, registry }
    }

    pub fn into_service(self) -> pb::edge_service_server::EdgeServiceServer<Self> {
        pb::edge_service_server::EdgeServiceServer::new(self)
    }
}

/// How often an attached edge's stream checks this distributor still leads.
const LEADER_CHECK: std::time::Duration = std::time::Duration::from_millis(100);

pub type ToEdgeStream = Pin<Box<dyn Stream<Item = Result<pb::DistributorMessage, Status>> + Send>>;

/// One attached edge: the calls it owns and where to send their commands.
struct EdgeConn {
    d: Distributor,
    owned: Arc<DashSet<CallId>>,
    tx: mpsc::Sender<Result<pb::DistributorMessage, Status>>,
    edge_id: String,
    /// This stream in the registry, and its edge id for the forwarder.
    stream: u64,
    registry: Arc<EdgeRegistry>,
    shared_id: Arc<std::sync::Mutex<String>>,
}

impl EdgeConn {
    async fn send(&self, kind: ToEdge) -> bool {
        let term = self.d.lock().core.term().0;
        self.tx
            .send(Ok(pb::DistributorMessage {
                term,
                kind: Some(kind),
            }))
            .await
            .is_ok()
    }

    /// A report about an offer that is no longer current (the core timed it
    /// out and offered the call to someone else) must not touch the new offer.
    /// `ring`: an agent rung with the one offered the call (ring-all) counts too;
    /// only an answer is taken from them (one of several legs failing does not end
    /// the offer).
    fn offered_to(&self, call: &str, agent: &str, ring: bool) -> bool {
        let current = match self
            .d
            .lock()
            .core
            .call(&CallId(call.to_string()))
            .map(|c| c.phase)
        {
            Some(CallPhase::Offered {
                agent: a,
                ring_also,
                ..
            }) => a.0 == agent || (ring && ring_also.iter().any(|r| r.0 == agent)),
            _ => false,
        };
        if !current {
            metrics::counter!("acd_edge_stale_reports_total").increment(1);
            tracing::info!(call_id = %call, %agent, "report about an offer that is no longer current ignored");
        }
        current
    }

    /// The site's bindings, whole, so the edge reaches phones registered
    /// elsewhere; changes follow as the events are released.
    async fn send_all_bindings(&self) {
        let update = crate::bindings::full_update(&self.d);
        tracing::info!(edge = %self.edge_id, bindings = update.bindings.len(), "bindings sent");
        self.send(ToEdge::Bindings(update)).await;
    }

    /// A phone registered, moved, unregistered or expired at this edge.
    fn binding(&self, b: pb::Binding) {
        let aor = b.aor.clone();
        if let Err(e) = self.d.command(crate::bindings::command(b, &self.edge_id)) {
            metrics::counter!("acd_edge_binding_refused_total", "reason" => "command").increment(1);
            tracing::warn!(edge = %self.edge_id, %aor, error = %e, "binding report refused");
        }
    }

    /// A call of this edge that the distributor holds (announced in the hello,
    /// or enqueued by a message applied before the stream broke): its commands
    /// come through this stream from now on. An offer released just before a
    /// crash or a broken stream may never have arrived: it is sent again (the
    /// edge ignores a connect for a call already ringing that agent).
    async fn adopt(&self, call: CallId) {
        // Owned first: an offer released meanwhile is then forwarded (at worst
        // twice, which the edge ignores) rather than missed.
        self.owned.insert(call.clone());
        let phase = self.d.lock().core.call(&call).map(|c| c.phase);
        let Some(phase) = phase else {
            self.owned.remove(&call);
            return;
        };
        if let CallPhase::Offered {
            agent, extension, ..
        } = phase
        {
            metrics::counter!("acd_edge_offers_resent_total").increment(1);
            tracing::info!(edge = %self.edge_id, call_id = %call, %agent, "offer sent again after attach");
            let (contact, source) = crate::bindings::offered_contact(&self.d, &extension);
            self.send(ToEdge::Connect(pb::ConnectAgent {
                call_id: call.0,
                agent_id: agent.0,
                extension: extension.0,
                contact,
                source,
                ..Default::default()
            }))
            .await;
        }
    }

    /// True for a message this distributor (or the leader before it) applied
    /// already: the edge re-sends what was not acknowledged.
    fn already_applied(&self, msg_id: u64) -> bool {
        let applied = self
            .d
            .lock()
            .core
            .applied_msg_id(&EdgeId(self.edge_id.clone()));
        msg_id > 0 && MsgId(msg_id) <= applied
    }

    /// Applies one edge message. `Err` only when this distributor no longer
    /// leads: the message is then neither applied nor acknowledged, and the
    /// stream must close so the edge re-sends it to the leader.
    async fn handle(&mut self, msg: pb::EdgeMessage) -> Result<(), ShellError> {
        let msg_id = msg.msg_id;
        if self.already_applied(msg_id) {
            metrics::counter!("acd_edge_duplicate_messages_total").increment(1);
            tracing::debug!(edge = %self.edge_id, msg_id, "edge message applied before; ignored");
            if let Some(FromEdge::Enqueue(e)) = msg.kind {
                self.adopt(CallId(e.call_id)).await;
            }
            return Ok(());
        }
        let Some(kind) = msg.kind else {
            tracing::warn!(edge = %self.edge_id, "edge message of an unknown kind ignored");
            return Ok(());
        };
        metrics::counter!("acd_edge_messages_total", "kind" => kind_name(&kind)).increment(1);
        let (call, cmd) = match kind {
            FromEdge::CallbackResult(r) => {
                let Some(outcome) = crate::convert::callback_outcome(r.outcome) else {
                    metrics::counter!("acd_edge_callback_results_refused_total", "reason" => "outcome").increment(1);
                    tracing::warn!(edge = %self.edge_id, call_id = %r.call_id, outcome = r.outcome, "callback result without an outcome ignored");
                    return Ok(());
                };
                (
                    CallId(r.call_id.clone()),
                    Command::CallbackResult {
                        call: CallId(r.call_id),
                        outcome,
                    },
                )
            }
            FromEdge::Hello(h) => {
                self.edge_id = h.edge_id;
                self.registered();
                // After a broken stream the edge still holds these calls:
                // their offers must reach it through this stream.
                let (known, unknown): (Vec<CallId>, Vec<CallId>) = {
                    let inner = self.d.lock();
                    h.live_calls
                        .into_iter()
                        .map(CallId)
                        .partition(|c| inner.core.call(c).is_some())
                };
                for call in known {
                    self.adopt(call).await;
                }
                let applied = self
                    .d
                    .lock()
                    .core
                    .applied_msg_id(&EdgeId(self.edge_id.clone()));
                tracing::info!(edge = %self.edge_id, live_calls = self.owned.len(), unknown = unknown.len(), last_msg_id = h.last_msg_id, applied_msg_id = applied.0, "edge attached");

                // Calls this distributor does not hold (its state was lost):
                // the edge enqueues them again rather than leave them waiting.
                for call in unknown {
                    metrics::counter!("acd_edge_unknown_calls_total").increment(1);
                    self.send(ToEdge::Unknown(pb::CallUnknown { call_id: call.0 }))
                        .await;
                }
                self.send_all_bindings().await;
                return Ok(());
            }
            FromEdge::Enqueue(e) => {
                let call = CallId(e.call_id);
                // Own the call before the command, so an immediate offer finds its edge.
                self.owned.insert(call.clone());
                let cmd = Command::Enqueue {
                    call: call.clone(),
                    queue: QueueId(e.queue_id),
                    priority: e.priority,
                    caller: caller_from_wire(e.caller),
                    skills: crate::convert::skills_from_wire(e.skills),
                };
                (call, cmd)
            }
            FromEdge::Callback(c) => {
                metrics::counter!("acd_callbacks_requested_total").increment(1);
                (
                    CallId(c.call_id.clone()),
                    crate::convert::callback_from_wire(c),
                )
            }
            FromEdge::Note(n) => {
                let (call, note) = crate::convert::note_from_wire(n);
                (call.clone(), Command::NoteCall { call, note })
            }
            FromEdge::Abandon(a) => (
                CallId(a.call_id.clone()),
                Command::Abandon {
                    call: CallId(a.call_id),
                },
            ),
            FromEdge::AgentAnswered(a) => {
                if !self.offered_to(&a.call_id, &a.agent_id, true) {
                    return Ok(());
                }
                (
                    CallId(a.call_id.clone()),
                    Command::AgentAnswered {
                        call: CallId(a.call_id),
                        agent: (!a.agent_id.is_empty()).then_some(AgentId(a.agent_id)),
                    },
                )
            }
            FromEdge::AgentFailed(f) => {
                if !self.offered_to(&f.call_id, &f.agent_id, false) {
                    return Ok(());
                }
                (
                    CallId(f.call_id.clone()),
                    Command::AgentFailed {
                        call: CallId(f.call_id),
                        reason: f.reason,
                    },
                )
            }
            FromEdge::Binding(b) => {
                self.binding(b);
                return Ok(());
            }
            FromEdge::CallEnded(c) => (
                CallId(c.call_id.clone()),
                Command::CallEnded {
                    call: CallId(c.call_id),
                    by: crate::convert::ended_by(c.by),
                },
            ),
        };
        let is_enqueue = matches!(cmd, Command::Enqueue { .. });
        let span = tracing::info_span!("call", call_id = %call);
        let _e = span.enter();
        let result = match msg_id {
            0 => self.d.command(cmd),
            id => self.d.command_from(
                Origin {
                    edge: EdgeId(self.edge_id.clone()),
                    msg_id: MsgId(id),
                },
                cmd,
            ),
        };
        match result {
            Ok(_) => {}
            Err(e @ ShellError::NotLeader(_)) => {
                self.owned.remove(&call);
                return Err(e);
            }
            Err(e) => {
                metrics::counter!("acd_edge_api_errors_total").increment(1);
                tracing::warn!(edge = %self.edge_id, error = %e, "edge command refused");
                if is_enqueue {
                    self.owned.remove(&call);
                    let reason = match &e {
                        ShellError::NotLeader(url) => format!("not leader; try {url}"),
                        ShellError::Command(c) => c.to_string(),
                    };
                    drop(_e);
                    self.send(ToEdge::Rejected(pb::CallRejected {
                        call_id: call.0,
                        reason,
                    }))
                    .await;
                }
            }
        }
        Ok(())
    }

    /// The edge said who it is: the forwarder and the registry learn it.
    fn registered(&self) {
        match self.shared_id.lock() {
            Ok(mut g) => g.clone_from(&self.edge_id),
            Err(p) => p.into_inner().clone_from(&self.edge_id),
        }
        self.registry.attach(
            self.stream,
            AttachedEdge {
                edge_id: self.edge_id.clone(),
                owned: self.owned.clone(),
                tx: self.tx.clone(),
            },
        );
    }

    /// Closes the stream towards a distributor that no longer leads, with
    /// the leader's address for the edge to follow.
    async fn leave(&self, e: ShellError) {
        metrics::counter!("acd_edge_streams_closed_total", "reason" => "not_leader").increment(1);
        tracing::info!(edge = %self.edge_id, error = %e, "not the leader any more: edge sent on");
        let _ = self.tx.send(Err(status_from(e))).await;
    }
}

fn kind_name(kind: &FromEdge) -> &'static str {
    match kind {
        FromEdge::Hello(_) => "hello",
        FromEdge::Enqueue(_) => "enqueue",
        FromEdge::Abandon(_) => "abandon",
        FromEdge::AgentAnswered(_) => "agent_answered",
        FromEdge::AgentFailed(_) => "agent_failed",
        FromEdge::CallEnded(_) => "call_ended",
        FromEdge::Binding(_) => "binding",
        FromEdge::Callback(_) => "callback",
        FromEdge::CallbackResult(_) => "callback_result",
        FromEdge::Note(_) => "note",
    }
}

/// Acknowledges each edge message once what it did is durable: `(msg_id,
/// seq)` in arrival order, acked (cumulatively) as the committed seq passes
/// `seq`, so the stream never waits on the standby message by message.
async fn send_acks(
    d: Distributor,
    mut committed: tokio::sync::watch::Receiver<u64>,
    mut queue: mpsc::UnboundedReceiver<(u64, u64)>,
    tx: mpsc::Sender<Result<pb::DistributorMessage, Status>>,
) {
    let mut waiting: VecDeque<(u64, u64)> = VecDeque::new();
    loop {
        tokio::select! {
            item = queue.recv() => match item {
                Some(item) => waiting.push_back(item),
                None => return,
            },
            changed = committed.changed() => if changed.is_err() {
                return;
            },
        }
        let durable = *committed.borrow_and_update();
        let mut last = None;
        while let Some(&(msg_id, _)) = waiting.front().filter(|(_, seq)| *seq <= durable) {
            last = Some(msg_id);
            waiting.pop_front();
        }
        let Some(msg_id) = last else { continue };
        let term = d.lock().core.term().0;
        let ack = pb::DistributorMessage {
            term,
            kind: Some(ToEdge::Ack(pb::EdgeAck { msg_id })),
        };
        if tx.send(Ok(ack)).await.is_err() {
            return;
        }
    }
}

/// Turns the events about the edge's calls into commands to the edge.
async fn forward_events(
    fwd: Forwarder,
    mut events: tokio::sync::broadcast::Receiver<Arc<acd_routing::EventRecord>>,
    tx: mpsc::Sender<Result<pb::DistributorMessage, Status>>,
) {
    loop {
        let rec = match events.recv().await {
            Ok(rec) => rec,
            Err(RecvError::Lagged(n)) => {
                metrics::counter!("acd_edge_stream_lagged_total").increment(1);
                let _ = tx
                    .send(Err(Status::data_loss(format!(
                        "edge stream fell {n} events behind"
                    ))))
                    .await;
                return;
            }
            Err(RecvError::Closed) => return,
        };
        let Some(kind) = fwd.message_for(&rec) else {
            continue;
        };
        let msg = pb::DistributorMessage {
            term: rec.term.0,
            kind: Some(kind),
        };
        if tx.send(Ok(msg)).await.is_err() {
            return;
        }
    }
}

#[tonic::async_trait]
impl pb::edge_service_server::EdgeService for EdgeApi {
    type AttachStream = ToEdgeStream;

    async fn attach(
        &self,
        req: Request<Streaming<pb::EdgeMessage>>,
    ) -> Result<Response<ToEdgeStream>, Status> {
        self.attach_stream(req.into_inner()).map(Response::new)
    }
}

impl EdgeApi {
    /// The body of `Attach` over any stream of edge messages: gRPC's, or an
    /// edge's in the same process (`acd run`), which skips the encoding.
    pub fn attach_stream(
        &self,
        inbound: impl Stream<Item = Result<pb::EdgeMessage, Status>> + Send + 'static,
    ) -> Result<ToEdgeStream, Status> {
        // An edge attached to a standby would wait for offers that never come:
        // send it to the leader.
        if let Err(e) = self.d.refuse_unless_leader() {
            metrics::counter!("acd_edge_attach_refused_total", "reason" => "not_leader")
                .increment(1);
            return Err(status_from(e));
        }
        let mut inbound = Box::pin(inbound);
        let (tx, rx) = mpsc::channel(1024);
        let owned = Arc::new(DashSet::new());
        let stream = self.registry.open();
        let shared_id = Arc::new(std::sync::Mutex::new(String::new()));
        // Subscribed here, before any command of this edge runs, so no offer is missed
        // (and before the survey flows are read, so no config change is either).
        let events = self.d.subscribe_effects();
        let fwd = Forwarder {
            d: self.d.clone(),
            owned: owned.clone(),
            registry: self.registry.clone(),
            edge_id: shared_id.clone(),
            surveys: crate::edge_forward::SurveyFlows::of(&self.d.config()),
        };
        let forwarder = tokio::spawn(forward_events(fwd, events, tx.clone()));
        let (acks, to_ack) = mpsc::unbounded_channel();
        let acker = tokio::spawn(send_acks(
            self.d.clone(),
            self.d.subscribe_committed(),
            to_ack,
            tx.clone(),
        ));
        let mut conn = EdgeConn {
            d: self.d.clone(),
            owned,
            tx,
            edge_id: "unnamed".into(),
            stream,
            registry: self.registry.clone(),
            shared_id,
        };
        metrics::gauge!("acd_edge_streams_attached").increment(1.0);
        tokio::spawn(async move {
            // A primary that steps down (switchover, lost lease) sends its
            // edges to the new leader, idle ones included.
            let mut leader_check = tokio::time::interval(LEADER_CHECK);
            loop {
                let msg = tokio::select! {
                    msg = inbound.next() => msg.transpose(),
                    _ = leader_check.tick() => match conn.d.refuse_unless_leader() {
                        Ok(()) => continue,
                        Err(e) => {
                            conn.leave(e).await;
                            break;
                        }
                    },
                };
                match msg {
                    Ok(Some(msg)) => {
                        let msg_id = msg.msg_id;
                        if let Err(e) = conn.handle(msg).await {
                            conn.leave(e).await;
                            break;
                        }
                        if msg_id > 0 {
                            // Whatever the message did is at or before the last seq.
                            let seq = conn.d.lock().core.last_seq().0;
                            let _ = acks.send((msg_id, seq));
                        }
                    }
                    Ok(None) => break,
                    Err(s) => {
                        tracing::warn!(edge = %conn.edge_id, error = %s.message(), "edge stream error");
                        break;
                    }
                }
            }
            tracing::info!(edge = %conn.edge_id, "edge detached");
            conn.registry.detach(conn.stream);
            metrics::gauge!("acd_edge_streams_attached").decrement(1.0);
            forwarder.abort();
            acker.abort();
        });
        Ok(Box::pin(ReceiverStream::new(rx)))
    }
}
