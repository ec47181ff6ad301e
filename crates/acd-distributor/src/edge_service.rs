//! `acd.v1.EdgeService/Attach`: the stream each SIP edge opens. Edge messages
//! become core commands; the events about the edge's own calls become
//! commands back to the edge (connect an agent, queued, rejected).

use std::pin::Pin;
use std::sync::Arc;

use acd_proto::v1 as pb;
use acd_routing::{CallId, CallPhase, Command, Event, QueueId};
use dashmap::DashSet;
use futures::Stream;
use pb::distributor_message::Kind as ToEdge;
use pb::edge_message::Kind as FromEdge;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::convert::caller_from_wire;
use crate::{Distributor, ShellError};

#[derive(Clone)]
pub struct EdgeApi {
    d: Distributor,
}

impl EdgeApi {
    pub fn new(d: Distributor) -> Self {
        EdgeApi { d }
    }

    pub fn into_service(self) -> pb::edge_service_server::EdgeServiceServer<Self> {
        pb::edge_service_server::EdgeServiceServer::new(self)
    }
}

type ToEdgeStream = Pin<Box<dyn Stream<Item = Result<pb::DistributorMessage, Status>> + Send>>;

/// One attached edge: the calls it owns and where to send their commands.
struct EdgeConn {
    d: Distributor,
    owned: Arc<DashSet<CallId>>,
    tx: mpsc::Sender<Result<pb::DistributorMessage, Status>>,
    edge_id: String,
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
    fn offered_to(&self, call: &str, agent: &str) -> bool {
        let current = match self
            .d
            .lock()
            .core
            .call(&CallId(call.to_string()))
            .map(|c| c.phase)
        {
            Some(CallPhase::Offered { agent: a, .. }) => a.0 == agent,
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

    async fn handle(&mut self, msg: pb::EdgeMessage) {
        let Some(kind) = msg.kind else {
            tracing::warn!(edge = %self.edge_id, "edge message of an unknown kind ignored");
            return;
        };
        let (call, cmd) = match kind {
            FromEdge::Hello(h) => {
                self.edge_id = h.edge_id;
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
                    self.owned.insert(call);
                }
                tracing::info!(edge = %self.edge_id, live_calls = self.owned.len(), unknown = unknown.len(), "edge attached");
                // Calls this distributor does not hold (its state was lost):
                // the edge enqueues them again rather than leave them waiting.
                for call in unknown {
                    metrics::counter!("acd_edge_unknown_calls_total").increment(1);
                    self.send(ToEdge::Unknown(pb::CallUnknown { call_id: call.0 }))
                        .await;
                }
                self.send_all_bindings().await;
                return;
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
                };
                (call, cmd)
            }
            FromEdge::Abandon(a) => (
                CallId(a.call_id.clone()),
                Command::Abandon {
                    call: CallId(a.call_id),
                },
            ),
            FromEdge::AgentAnswered(a) => {
                if !self.offered_to(&a.call_id, &a.agent_id) {
                    return;
                }
                (
                    CallId(a.call_id.clone()),
                    Command::AgentAnswered {
                        call: CallId(a.call_id),
                    },
                )
            }
            FromEdge::AgentFailed(f) => {
                if !self.offered_to(&f.call_id, &f.agent_id) {
                    return;
                }
                (
                    CallId(f.call_id.clone()),
                    Command::AgentFailed {
                        call: CallId(f.call_id),
                        reason: f.reason,
                    },
                )
            }
            FromEdge::Binding(b) => return self.binding(b),
            FromEdge::CallEnded(c) => (
                CallId(c.call_id.clone()),
                Command::CallEnded {
                    call: CallId(c.call_id),
                },
            ),
        };
        let is_enqueue = matches!(cmd, Command::Enqueue { .. });
        let span = tracing::info_span!("call", call_id = %call);
        let _e = span.enter();
        match self.d.command(cmd) {
            Ok(_) => {}
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
    }
}

/// Turns the events about `owned` calls into commands to the edge.
async fn forward_events(
    d: Distributor,
    mut events: tokio::sync::broadcast::Receiver<Arc<acd_routing::EventRecord>>,
    owned: Arc<DashSet<CallId>>,
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
        let kind = match &rec.event {
            Event::CallOffered {
                call,
                agent,
                extension,
                ..
            } if owned.contains(call) => {
                let (contact, source) = crate::bindings::offered_contact(&d, extension);
                ToEdge::Connect(pb::ConnectAgent {
                    call_id: call.0.clone(),
                    agent_id: agent.0.clone(),
                    extension: extension.0.clone(),
                    contact,
                    source,
                })
            }
            Event::BindingChanged { .. } => match crate::bindings::update_of(&rec.event) {
                Some(update) => ToEdge::Bindings(update),
                None => continue,
            },
            Event::CallQueued { call, queue, .. } if owned.contains(call) => {
                let position = d
                    .lock()
                    .core
                    .call(call)
                    .and_then(|c| c.position)
                    .unwrap_or(0) as u32;
                ToEdge::Queued(pb::CallQueued {
                    call_id: call.0.clone(),
                    queue_id: queue.0.clone(),
                    position,
                })
            }
            Event::CallAbandoned { call, .. }
            | Event::CallEnded { call, .. }
            | Event::CallTimedOut { call, .. } => {
                owned.remove(call);
                continue;
            }
            _ => continue,
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
        let mut inbound = req.into_inner();
        let (tx, rx) = mpsc::channel(1024);
        let owned = Arc::new(DashSet::new());
        // Subscribed here, before any command of this edge runs, so no offer is missed.
        let events = self.d.subscribe_effects();
        let forwarder = tokio::spawn(forward_events(
            self.d.clone(),
            events,
            owned.clone(),
            tx.clone(),
        ));
        let mut conn = EdgeConn {
            d: self.d.clone(),
            owned,
            tx,
            edge_id: "unnamed".into(),
        };
        tokio::spawn(async move {
            loop {
                match inbound.message().await {
                    Ok(Some(msg)) => conn.handle(msg).await,
                    Ok(None) => break,
                    Err(s) => {
                        tracing::warn!(edge = %conn.edge_id, error = %s.message(), "edge stream error");
                        break;
                    }
                }
            }
            tracing::info!(edge = %conn.edge_id, "edge detached");
            forwarder.abort();
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
