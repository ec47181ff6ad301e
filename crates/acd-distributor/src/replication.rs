//! Primary → standby replication: `ReplicationService/Follow` on the primary
//! streams a snapshot (or the missing log entries) and then every event; the
//! standby applies each record to its own core, so both hold the same state.
//!
//! The standby acknowledges every record it has applied on the same stream;
//! the primary releases effects only once they are acknowledged (see
//! `Distributor::ack` and `SYNC_TIMEOUT`). Promotion of the standby arrives
//! with fail-over.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use acd_proto::v1 as pb;
use acd_routing::{EventRecord, Snapshot, SNAPSHOT_FORMAT_VERSION};
use futures::Stream;
use pb::follower_message::Kind as FollowerKind;
use pb::replication_message::Kind;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Endpoint;
use tonic::{Request, Response, Status, Streaming};

use crate::{Distributor, EVENT_FORMAT_VERSION};

#[derive(Clone)]
pub struct ReplicationApi {
    d: Distributor,
}

impl ReplicationApi {
    pub fn new(d: Distributor) -> Self {
        ReplicationApi { d }
    }

    pub fn into_service(self) -> pb::replication_service_server::ReplicationServiceServer<Self> {
        pb::replication_service_server::ReplicationServiceServer::new(self)
    }
}

fn event_entry(rec: &EventRecord) -> Result<pb::ReplicationMessage, Status> {
    let payload = serde_json::to_vec(rec)
        .map_err(|e| Status::internal(format!("cannot encode event: {e}")))?;
    Ok(pb::ReplicationMessage {
        kind: Some(Kind::Event(pb::EventEntry {
            format_version: EVENT_FORMAT_VERSION,
            seq: rec.seq.0,
            term: rec.term.0,
            payload,
        })),
    })
}

fn snapshot_message(s: &Snapshot) -> Result<pb::ReplicationMessage, Status> {
    let state = serde_json::to_vec(s)
        .map_err(|e| Status::internal(format!("cannot encode snapshot: {e}")))?;
    Ok(pb::ReplicationMessage {
        kind: Some(Kind::Snapshot(pb::Snapshot {
            format_version: s.format_version,
            seq: s.last_seq.0,
            term: s.term.0,
            state,
        })),
    })
}

type FollowStream = Pin<Box<dyn Stream<Item = Result<pb::ReplicationMessage, Status>> + Send>>;

#[tonic::async_trait]
impl pb::replication_service_server::ReplicationService for ReplicationApi {
    type FollowStream = FollowStream;

    async fn follow(
        &self,
        req: Request<Streaming<pb::FollowerMessage>>,
    ) -> Result<Response<FollowStream>, Status> {
        let mut inbound = req.into_inner();
        let r = match inbound.message().await? {
            Some(pb::FollowerMessage {
                kind: Some(FollowerKind::Start(r)),
            }) => r,
            _ => {
                return Err(Status::invalid_argument(
                    "a Follow stream must open with `start`",
                ))
            }
        };
        let follower = if r.follower_id.is_empty() {
            "standby".to_string()
        } else {
            r.follower_id
        };
        // Subscribe first, then read the state: every later event reaches the stream.
        let mut events = self.d.subscribe_replication();
        let (catch_up, upto) = {
            let inner = self.d.lock();
            if let crate::Role::Standby { primary_url } = &inner.role {
                return Err(Status::failed_precondition(format!(
                    "not leader; try {primary_url}"
                )));
            }
            let upto = inner.core.last_seq().0;
            let catch_up = match inner.log.entries_after(r.after_seq) {
                Ok(entries) if r.after_seq > 0 => entries
                    .iter()
                    .map(|e| event_entry(&e.payload))
                    .collect::<Result<Vec<_>, _>>()?,
                _ => vec![snapshot_message(&inner.core.snapshot())?],
            };
            (catch_up, upto)
        };
        tracing::info!(%follower, after_seq = r.after_seq, upto, "standby following");
        metrics::counter!("acd_replication_follows_total").increment(1);
        self.d.attach_follower(&follower);

        // Acknowledgements: each one may release effects waiting on this standby.
        let d = self.d.clone();
        let who = follower.clone();
        tokio::spawn(async move {
            while let Ok(Some(msg)) = inbound.message().await {
                if let Some(FollowerKind::Ack(a)) = msg.kind {
                    d.ack(&who, a.seq);
                }
            }
            tracing::info!(follower = %who, "standby stream closed");
            d.detach_follower(&who);
        });

        let (tx, rx) = mpsc::channel(1024);
        let d = self.d.clone();
        tokio::spawn(async move {
            send_stream(catch_up, upto, &mut events, &tx).await;
            d.detach_follower(&follower);
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// Sends the catch-up, then every event after `upto`, until the standby is
/// gone or falls too far behind.
async fn send_stream(
    catch_up: Vec<pb::ReplicationMessage>,
    upto: u64,
    events: &mut broadcast::Receiver<Arc<EventRecord>>,
    tx: &mpsc::Sender<Result<pb::ReplicationMessage, Status>>,
) {
    for m in catch_up {
        if tx.send(Ok(m)).await.is_err() {
            return;
        }
    }
    loop {
        match events.recv().await {
            Ok(rec) if rec.seq.0 <= upto => continue,
            Ok(rec) => {
                if tx.send(event_entry(&rec)).await.is_err() {
                    return;
                }
            }
            Err(RecvError::Lagged(n)) => {
                metrics::counter!("acd_replication_lagged_total").increment(1);
                let _ = tx
                    .send(Err(Status::data_loss(format!(
                        "standby fell {n} events behind"
                    ))))
                    .await;
                return;
            }
            Err(RecvError::Closed) => return,
        }
    }
}

/// How a standby names itself to the primary: stable for the process, so
/// a re-attached stream counts as the same follower.
fn follower_id() -> String {
    format!("standby-{}", std::process::id())
}

/// Runs the standby's side: follow the primary, apply what it sends, and
/// re-attach after any break from the last applied sequence.
pub fn follow(d: Distributor, primary_url: String) {
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(50);
        loop {
            let after = d.lock().core.last_seq().0;
            match follow_once(&d, &primary_url, after).await {
                Ok(()) => {
                    tracing::warn!(primary = %primary_url, "primary closed the replication stream")
                }
                Err(e) => {
                    tracing::warn!(primary = %primary_url, error = %e, "replication stream broken")
                }
            }
            metrics::counter!("acd_replication_reconnects_total").increment(1);
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    });
}

async fn follow_once(d: &Distributor, url: &str, after_seq: u64) -> Result<(), String> {
    let channel = Endpoint::from_shared(url.to_string())
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(1))
        .connect()
        .await
        .map_err(|e| e.to_string())?;
    let mut client = pb::replication_service_client::ReplicationServiceClient::new(channel);
    let (acks, acks_rx) = mpsc::channel::<pb::FollowerMessage>(1024);
    let start = pb::FollowRequest {
        follower_id: follower_id(),
        after_seq,
        format_version: EVENT_FORMAT_VERSION,
    };
    acks.send(pb::FollowerMessage {
        kind: Some(FollowerKind::Start(start)),
    })
    .await
    .map_err(|e| e.to_string())?;
    let mut stream = client
        .follow(ReceiverStream::new(acks_rx))
        .await
        .map_err(|s| s.message().to_string())?
        .into_inner();
    let ack = |seq: u64| pb::FollowerMessage {
        kind: Some(FollowerKind::Ack(pb::Ack { seq })),
    };
    tracing::info!(primary = %url, after_seq, "following primary");
    while let Some(msg) = stream
        .message()
        .await
        .map_err(|s| s.message().to_string())?
    {
        match msg.kind {
            Some(Kind::Snapshot(s)) => {
                if s.format_version > SNAPSHOT_FORMAT_VERSION {
                    return Err(format!(
                        "snapshot format {} is newer than this build understands",
                        s.format_version
                    ));
                }
                let snap: Snapshot =
                    serde_json::from_slice(&s.state).map_err(|e| format!("bad snapshot: {e}"))?;
                d.install_snapshot(snap).map_err(|e| e.to_string())?;
                tracing::info!(seq = s.seq, term = s.term, "snapshot installed");
                acks.send(ack(s.seq)).await.map_err(|e| e.to_string())?;
            }
            Some(Kind::Event(e)) => {
                if e.format_version > EVENT_FORMAT_VERSION {
                    return Err(format!(
                        "event format {} is newer than this build understands",
                        e.format_version
                    ));
                }
                let rec: EventRecord = serde_json::from_slice(&e.payload)
                    .map_err(|err| format!("bad event {}: {err}", e.seq))?;
                let seq = rec.seq.0;
                d.apply(rec).map_err(|err| err.to_string())?;
                acks.send(ack(seq)).await.map_err(|e| e.to_string())?;
            }
            None => tracing::warn!("replication message of an unknown kind ignored"),
        }
    }
    Ok(())
}
