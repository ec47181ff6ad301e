//! Primary → standby replication: `ReplicationService/Follow` on the primary
//! streams a snapshot (or the missing log entries) and then every event; the
//! standby applies each record to its own core, so both hold the same state.
//!
//! The standby acknowledges every record it has applied on the same stream;
//! the primary releases effects only once they are acknowledged (see
//! `Distributor::ack` and `SYNC_TIMEOUT`). Which primary to follow comes
//! from a `watch` channel: fixed (`--standby-of`) or the current leader
//! (see `leadership`), and the loop re-points whenever it changes.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use acd_proto::v1 as pb;
use acd_routing::{EventRecord, Snapshot, SNAPSHOT_FORMAT_VERSION};
use futures::Stream;
use pb::follower_message::Kind as FollowerKind;
use pb::replication_message::Kind;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
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

/// A record the follower's snapshot holds, for its call records only.
fn backfill_entry(rec: &EventRecord) -> Result<pb::ReplicationMessage, Status> {
    let mut m = event_entry(rec)?;
    if let Some(Kind::Event(e)) = m.kind.take() {
        m.kind = Some(Kind::Backfill(e));
    }
    Ok(m)
}

/// The snapshot, after the records it holds that the log still has when
/// the follower asked for them (`records_backfill`).
fn snapshot_catch_up(
    inner: &crate::Inner,
    backfill: bool,
) -> Result<Vec<pb::ReplicationMessage>, Status> {
    let upto = inner.core.last_seq().0;
    let mut out = Vec::new();
    if backfill {
        for e in inner.log.retained().iter().filter(|e| e.seq <= upto) {
            out.push(backfill_entry(&e.payload)?);
        }
        metrics::counter!("acd_replication_backfilled_records_total").increment(out.len() as u64);
    }
    out.push(snapshot_message(&inner.core.snapshot())?);
    Ok(out)
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
            let catch_up = match entries_for(&inner.log, r.after_seq, r.after_term) {
                Some(entries) => entries
                    .iter()
                    .map(|e| event_entry(&e.payload))
                    .collect::<Result<Vec<_>, _>>()?,
                None => snapshot_catch_up(&inner, r.records_backfill)?,
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

/// The log entries a follower at `after_seq` (whose entry there has
/// `after_term`) needs, or `None` when it needs a snapshot: it has nothing,
/// it is behind the ring, or its log diverged from this one.
fn entries_for(
    log: &acd_replication::Leader<EventRecord>,
    after_seq: u64,
    after_term: u64,
) -> Option<Vec<acd_replication::Entry<EventRecord>>> {
    if after_seq == 0 {
        return None;
    }
    if after_term > 0 {
        // Log matching: the same (seq, term) means the same history up to it.
        let there = log.entries_after(after_seq - 1).ok()?;
        if there.first().map(|e| (e.seq, e.term)) != Some((after_seq, after_term)) {
            metrics::counter!("acd_replication_snapshots_total", "reason" => "diverged")
                .increment(1);
            return None;
        }
    }
    log.entries_after(after_seq).ok()
}

/// How a standby names itself to the primary: its advertised URL (so the
/// primary can point clients at it during a switchover), else something
/// stable for the process, so a re-attached stream counts as the same follower.
fn follower_id(d: &Distributor) -> String {
    let address = d.address();
    if address.is_empty() {
        format!("standby-{}", std::process::id())
    } else {
        address
    }
}

/// Runs the standby's side for a fixed primary (`--standby-of`).
pub fn follow(d: Distributor, primary_url: String) {
    let (tx, rx) = watch::channel(Some(primary_url));
    tokio::spawn(async move {
        // Kept alive with the loop: the target never changes.
        let _fixed = tx;
        follow_loop(d, rx, None).await
    });
}

/// Why following a primary failed.
#[derive(Debug, thiserror::Error)]
pub enum FollowFailure {
    /// Nothing listens at the primary's address: the process is gone (a
    /// partition or a hung process gives a timeout instead).
    #[error("connection refused")]
    Refused,
    #[error("{0}")]
    Broken(String),
}

/// Follows whichever primary `target` names (`None`: nobody to follow),
/// applies what it sends, re-attaches after any break from the last applied
/// sequence, and re-points at once when the target changes. A refused
/// connection is reported on `refused` (the fast fail-over path).
pub async fn follow_loop(
    d: Distributor,
    mut target: watch::Receiver<Option<String>>,
    refused: Option<mpsc::Sender<String>>,
) {
    let mut backoff = BACKOFF_MIN;
    loop {
        let Some(url) = target.borrow_and_update().clone() else {
            if target.changed().await.is_err() {
                return;
            }
            continue;
        };
        let result = tokio::select! {
            r = follow_once(&d, &url) => r,
            changed = target.changed() => {
                if changed.is_err() {
                    return;
                }
                tracing::info!(old = %url, "the primary changed; re-pointing");
                backoff = BACKOFF_MIN;
                continue;
            }
        };
        match &result {
            Ok(()) => tracing::warn!(primary = %url, "primary closed the replication stream"),
            Err(FollowFailure::Refused) => {
                tracing::warn!(primary = %url, "primary refuses connections");
                if let Some(tx) = &refused {
                    let _ = tx.try_send(url.clone());
                }
            }
            Err(e) => tracing::warn!(primary = %url, error = %e, "replication stream broken"),
        }
        if target.borrow().as_ref() == Some(&url) {
            d.set_serving(false, &format!("the primary at {url}"));
        }
        metrics::counter!("acd_replication_reconnects_total").increment(1);
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = target.changed() => {}
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// HTTP/2 pings on the follow stream (see `follow_once`).
const KEEPALIVE_INTERVAL: Duration = Duration::from_millis(500);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(1);
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

fn is_refused(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return true;
            }
        }
        cur = e.source();
    }
    false
}

async fn follow_once(d: &Distributor, url: &str) -> Result<(), FollowFailure> {
    let broken = |e: &dyn std::fmt::Display| FollowFailure::Broken(e.to_string());
    let channel = acd_proto::client::site_endpoint(url)
        .map_err(|e| broken(&e))?
        .connect_timeout(Duration::from_secs(1))
        .tcp_nodelay(true)
        // A partitioned primary never closes the stream: pings notice.
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .keep_alive_while_idle(true)
        .connect()
        .await
        .map_err(|e| {
            if is_refused(&e) {
                FollowFailure::Refused
            } else {
                broken(&e)
            }
        })?;
    follow_stream(d, url, channel)
        .await
        .map_err(FollowFailure::Broken)
}

async fn follow_stream(
    d: &Distributor,
    url: &str,
    channel: tonic::transport::Channel,
) -> Result<(), String> {
    let (after_seq, after_term) = d.log_position();
    let mut client = pb::replication_service_client::ReplicationServiceClient::new(
        acd_proto::client::site_authed(channel),
    );
    let (acks, acks_rx) = mpsc::channel::<pb::FollowerMessage>(1024);
    let start = pb::FollowRequest {
        follower_id: follower_id(d),
        after_seq,
        format_version: EVENT_FORMAT_VERSION,
        after_term,
        records_backfill: d.wants_backfill(),
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
    tracing::info!(primary = %url, after_seq, after_term, "following primary");
    d.set_following(url);
    d.set_serving(true, "");
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
                let seq = apply_entry(d, &e)?;
                acks.send(ack(seq)).await.map_err(|e| e.to_string())?;
            }
            Some(Kind::Backfill(e)) => backfill_entry_in(d, &e)?,
            None => tracing::warn!("replication message of an unknown kind ignored"),
        }
    }
    Ok(())
}

/// Decodes a record the coming snapshot holds and hands it to the taps
/// (the call records) without applying it.
fn backfill_entry_in(d: &Distributor, e: &pb::EventEntry) -> Result<(), String> {
    d.backfill(decode_entry(e)?);
    Ok(())
}

/// Decodes one replicated event. Fields this build does not know are
/// ignored (serde's default), so a standby follows a primary of the same
/// format version that carries more.
fn decode_entry(e: &pb::EventEntry) -> Result<EventRecord, String> {
    if e.format_version > EVENT_FORMAT_VERSION {
        return Err(format!(
            "event format {} is newer than this build understands",
            e.format_version
        ));
    }
    serde_json::from_slice(&e.payload).map_err(|err| format!("bad event {}: {err}", e.seq))
}

/// Decodes and applies one replicated event; its seq.
pub fn apply_entry(d: &Distributor, e: &pb::EventEntry) -> Result<u64, String> {
    let rec = decode_entry(e)?;
    let seq = rec.seq.0;
    d.apply(rec).map_err(|err| err.to_string())?;
    Ok(seq)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{routing_config, Role};
    use acd_routing::{AgentId, Command, Extension, Term};

    fn distributor(role: Role) -> Distributor {
        let loaded = acd_config::Loaded::embedded().expect("embedded config");
        Distributor::new(routing_config(&loaded.config), role)
    }

    /// A primary one version newer writes fields this build does not know:
    /// the standby applies its events all the same and, promoted, carries on.
    #[tokio::test]
    async fn a_standby_applies_events_with_unknown_fields_and_carries_on_when_promoted() {
        let primary = distributor(Role::Primary);
        let standby = distributor(Role::Standby {
            primary_url: "http://primary".into(),
        });
        let records = primary
            .command(Command::AgentLogin {
                agent: AgentId("alice".into()),
                extension: Extension("1001".into()),
            })
            .expect("login");
        for rec in &records {
            let mut v = serde_json::to_value(rec).expect("encode");
            v["added_in_a_newer_version"] = serde_json::json!({"x": 1});
            v["event"]["also_new"] = serde_json::json!(true);
            let entry = pb::EventEntry {
                format_version: EVENT_FORMAT_VERSION,
                seq: rec.seq.0,
                term: rec.term.0,
                payload: serde_json::to_vec(&v).expect("encode"),
            };
            assert_eq!(apply_entry(&standby, &entry), Ok(rec.seq.0));
        }
        assert_eq!(standby.status().state_digest, primary.status().state_digest);

        standby.promote(Term(7), None);
        let next = standby
            .command(Command::AgentReady {
                agent: AgentId("alice".into()),
            })
            .expect("the promoted standby takes commands");
        assert!(next.iter().all(|r| r.term == Term(7)));
        assert_eq!(next[0].seq.0, records.last().map_or(0, |r| r.seq.0) + 1);
        // The old primary, demoted, follows from where it is: the promoted
        // log holds its last entry with the same term, so no snapshot.
        primary.demote("http://standby");
        let (seq, term) = primary.log_position();
        let inner = standby.lock();
        let entries = entries_for(&inner.log, seq, term).expect("entries, not a snapshot");
        assert_eq!(entries.len(), next.len());
        // A log that diverged (another term at that seq) gets a snapshot.
        assert!(entries_for(&inner.log, seq, term + 100).is_none());
    }

    /// A standby that catches up by a snapshot and asked for a backfill gets
    /// the records the snapshot holds first; its taps (the call records)
    /// see them, its core does not apply them twice.
    #[tokio::test]
    async fn a_snapshot_comes_after_the_records_it_holds_for_the_standbys_taps() {
        let primary = distributor(Role::Primary);
        let records = primary
            .command(Command::AgentLogin {
                agent: AgentId("alice".into()),
                extension: Extension("1001".into()),
            })
            .expect("login");
        let (without, with) = {
            let inner = primary.lock();
            (
                snapshot_catch_up(&inner, false).expect("catch-up"),
                snapshot_catch_up(&inner, true).expect("catch-up"),
            )
        };
        assert_eq!(without.len(), 1, "only the snapshot without a backfill");
        assert_eq!(with.len(), records.len() + 1);

        let standby = distributor(Role::Standby {
            primary_url: "http://primary".into(),
        });
        let tap = standby.tap_committed();
        assert!(standby.wants_backfill());
        for m in with {
            match m.kind {
                Some(Kind::Backfill(e)) => backfill_entry_in(&standby, &e).expect("backfill"),
                Some(Kind::Snapshot(s)) => {
                    let snap: Snapshot = serde_json::from_slice(&s.state).expect("snapshot");
                    standby.install_snapshot(snap).expect("install");
                }
                other => panic!("unexpected catch-up message {other:?}"),
            }
        }
        let tapped: Vec<u64> = tap.try_iter().map(|r| r.seq.0).collect();
        let sent: Vec<u64> = records.iter().map(|r| r.seq.0).collect();
        assert_eq!(tapped, sent);
        assert_eq!(standby.status().state_digest, primary.status().state_digest);
    }

    #[tokio::test]
    async fn a_newer_event_format_is_refused() {
        let standby = distributor(Role::Standby {
            primary_url: String::new(),
        });
        let entry = pb::EventEntry {
            format_version: EVENT_FORMAT_VERSION + 1,
            seq: 1,
            term: 1,
            payload: b"{}".to_vec(),
        };
        assert!(apply_entry(&standby, &entry).is_err());
    }
}
