//! The distributor service: the async shell around `acd-routing`'s
//! deterministic core.
//!
//! Data flow: gRPC request → [`Distributor::command`] → `Core::handle(cmd, now)`
//! → event records → appended to the replication log and sent to standbys at
//! once → released as *effects* once every attached standby has acknowledged
//! them (effects after durability) → each effect subscriber turns the events
//! it cares about into actions: an edge stream sends `ConnectAgent`, an
//! agent's `Watch` stream sends the offer. A standby that does not
//! acknowledge within [`SYNC_TIMEOUT`] is dropped from the commit (calls
//! must not wait on it) until it catches up again.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use acd_replication::Leader;
use acd_routing::{Command, CommandError, Core, EventRecord, RoutingConfig, Term, Timestamp};
use tokio::sync::{broadcast, watch, Notify};

pub mod access;
pub mod agent_events;
pub mod agent_service;
pub mod announce;
pub mod bindings;
pub mod config_diff;
pub mod convert;
pub mod edge_forward;
pub mod edge_registry;
pub mod edge_service;
pub mod explain_log;
pub mod journal;
pub mod leadership;
pub mod replication;
pub mod reports;
pub mod supervisor_service;
pub mod telemetry;
pub mod wallboard;

#[cfg(test)]
mod durable_tests;

/// Records kept for a standby to catch up without a snapshot.
const LOG_CAPACITY: usize = 10_000;
/// Subscribers further behind than this are cut off and re-sync.
const BROADCAST_CAPACITY: usize = 65_536;
/// Longest an event's effects wait for the standby before it is dropped
/// from the commit and replication falls back to asynchronous.
pub const SYNC_TIMEOUT: Duration = Duration::from_millis(1000);
/// Extra time the core gives an offer beyond the edge's ring time.
const OFFER_GRACE_SECS: u64 = 5;
/// Serialisation version of replicated event payloads.
pub const EVENT_FORMAT_VERSION: u32 = 1;

/// Primary (takes commands) or standby (applies the primary's records).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Primary,
    Standby { primary_url: String },
}

pub struct Inner {
    pub core: Core,
    pub log: Leader<EventRecord>,
    pub role: Role,
    /// Published but not yet acknowledged by every attached standby.
    pending: VecDeque<(Arc<EventRecord>, Instant)>,
    /// With leadership from etcd: the primary may act until this instant
    /// (its lease, less a margin); keep-alive successes push it forward.
    /// `None`: a static pair, no lease.
    lease_deadline: Option<Instant>,
    /// During a switchover: commands are held (refused, naming the standby).
    handover: Option<String>,
    /// The gRPC URL this process advertises.
    address: String,
    /// Lossless copies of released records (see [`Distributor::tap_committed`]).
    taps: Vec<std::sync::mpsc::Sender<Arc<EventRecord>>>,
}

/// Whether a distributor can serve, and if not what it waits for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Serving {
    pub ready: bool,
    pub waiting_for: String,
}

/// Shared handle to the distributor state; cheap to clone.
#[derive(Clone)]
pub struct Distributor {
    inner: Arc<Mutex<Inner>>,
    /// Every event at once, for standbys.
    replication: broadcast::Sender<Arc<EventRecord>>,
    /// Events whose effects may be released (durable on every standby).
    effects: broadcast::Sender<Arc<EventRecord>>,
    committed: watch::Sender<u64>,
    serving: watch::Sender<Serving>,
    timers: Arc<Notify>,
    config: Arc<RoutingConfig>,
    /// `acd_routing_decision_duration_seconds`, looked up once.
    decisions: metrics::Histogram,
}

/// Why a command was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum ShellError {
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error("not the leader; the primary is {0}")]
    NotLeader(String),
}

pub fn now_ms() -> Timestamp {
    Timestamp(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
    )
}

/// Builds the routing core's configuration from the config file (see
/// `acd_config::routing`). A loaded config was checked already, so errors can
/// only come from a hand-built one: they are logged and the parts in error left
/// at their defaults rather than refusing to start.
pub fn routing_config(cfg: &acd_config::Config) -> RoutingConfig {
    let (mut rc, errors) = acd_config::routing::routing_config_lossy(cfg);
    for e in &errors {
        metrics::counter!("acd_distributor_config_errors_total", "reason" => "routing")
            .increment(1);
        tracing::error!(error = %e, "routing configuration");
    }
    // The edge rings for offer_timeout_secs and then reports the failure
    // itself; the core's own timeout is the backstop for a lost edge.
    rc.offer_timeout_ms = (cfg.distributor.offer_timeout_secs + OFFER_GRACE_SECS) * 1000;
    rc
}

impl Distributor {
    pub fn new(config: RoutingConfig, role: Role) -> Distributor {
        let term = if role == Role::Primary {
            Term(1)
        } else {
            Term(0)
        };
        let core = Core::new(config.clone(), term);
        let (replication, _) = broadcast::channel(BROADCAST_CAPACITY);
        let (effects, _) = broadcast::channel(BROADCAST_CAPACITY);
        let d = Distributor {
            inner: Arc::new(Mutex::new(Inner {
                core,
                log: Leader::new(LOG_CAPACITY, 0),
                role,
                pending: VecDeque::new(),
                lease_deadline: None,
                handover: None,
                address: String::new(),
                taps: Vec::new(),
            })),
            replication,
            effects,
            committed: watch::channel(0).0,
            serving: watch::channel(Serving::default()).0,
            timers: Arc::new(Notify::new()),
            config: Arc::new(config),
            decisions: telemetry::decision_histogram(),
        };
        tokio::spawn(d.clone().timer_loop());
        tokio::spawn(telemetry::sample_loop(d.clone()));
        d
    }

    /// Pending callback requests, in inbound-call order (`ListCallbacks`).
    pub fn callbacks(&self) -> Vec<acd_proto::v1::CallbackRequest> {
        let inner = self.lock();
        inner
            .core
            .callbacks()
            .map(|(call, r)| convert::callback_to_wire(call, r))
            .collect()
    }

    /// The routing configuration in force: the file's, or the last one applied
    /// at run time (`ConfigChanged`), as the core holds it.
    pub fn config(&self) -> RoutingConfig {
        self.lock().core.config().clone()
    }

    /// Locks the state; never held across an await.
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves a core mid-update; there is no
        // safe way to continue from that, so propagate it.
        match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Every event as soon as it is decided, for standbys.
    pub fn subscribe_replication(&self) -> broadcast::Receiver<Arc<EventRecord>> {
        self.replication.subscribe()
    }

    /// Events whose effects may be carried out, in order.
    pub fn subscribe_effects(&self) -> broadcast::Receiver<Arc<EventRecord>> {
        self.effects.subscribe()
    }

    /// Every record whose effects are released, in order, on the primary
    /// and on a standby as it applies the primary's records. Unlike
    /// [`Distributor::subscribe_effects`] it never drops a record (an
    /// unbounded channel that never blocks the distributor): call records
    /// must be complete. The receiver's owner must keep up or spool.
    pub fn tap_committed(&self) -> std::sync::mpsc::Receiver<Arc<EventRecord>> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.lock().taps.push(tx);
        rx
    }

    /// Whether anything taps the committed records (the call records
    /// writer): a standby then asks for a backfill with a snapshot.
    pub fn wants_backfill(&self) -> bool {
        !self.lock().taps.is_empty()
    }

    /// A record a snapshot about to be installed already holds, for the
    /// taps only (not applied): without it a standby that catches up by a
    /// snapshot would never write the records committed while it was away.
    /// A record the tap's owner has already is harmless (its writer applies
    /// each record once).
    pub fn backfill(&self, rec: EventRecord) {
        let rec = Arc::new(rec);
        self.lock().taps.retain(|t| t.send(rec.clone()).is_ok());
    }

    /// Runs a command and waits until its events are durable on every
    /// attached standby, so what the caller is told survives a fail-over.
    pub async fn command_durable(&self, cmd: Command) -> Result<Vec<EventRecord>, ShellError> {
        let records = self.command(cmd)?;
        let Some((last, term)) = records.last().map(|r| (r.seq.0, r.term)) else {
            return Ok(records);
        };
        let mut committed = self.committed.subscribe();
        // SYNC_TIMEOUT commits everything of a primary that keeps its lease;
        // one that loses it never commits, hence the bound.
        // `wait_for` returns a borrow that holds the watch's read lock: it
        // must be gone before taking the distributor lock, or `release`
        // (distributor lock held, waiting to write the watch) deadlocks.
        let durable = matches!(
            tokio::time::timeout(2 * SYNC_TIMEOUT, committed.wait_for(|c| *c >= last)).await,
            Ok(Ok(_))
        );
        let inner = self.lock();
        // The seq alone is not enough: after a demotion the same seq may be
        // another leader's entry.
        if durable && inner.role == Role::Primary && inner.core.term() == term {
            return Ok(records);
        }
        metrics::counter!("acd_distributor_refusals_total", "reason" => "lost_leadership")
            .increment(1);
        Err(ShellError::NotLeader(leader_hint(&inner)))
    }

    /// Runs a command on the primary and publishes its events.
    pub fn command(&self, cmd: Command) -> Result<Vec<EventRecord>, ShellError> {
        let mut inner = self.lock();
        if let Some(reason) = refusal(&inner, Instant::now()) {
            metrics::counter!("acd_distributor_refusals_total", "reason" => reason).increment(1);
            return Err(ShellError::NotLeader(leader_hint(&inner)));
        }
        let started = Instant::now();
        let records = inner.core.handle(cmd, now_ms());
        self.decisions.record(started.elapsed().as_secs_f64());
        let records = records?;
        self.publish(&mut inner, &records);
        drop(inner);
        // New deadlines: the core's timers, or a pending acknowledgement.
        self.timers.notify_one();
        Ok(records)
    }

    /// [`Distributor::command`] for a numbered edge message: applied once even
    /// when the edge sends it again after a fail-over (`acd_routing::Origin`).
    pub fn command_from(
        &self,
        origin: acd_routing::Origin,
        cmd: Command,
    ) -> Result<Vec<EventRecord>, ShellError> {
        let mut inner = self.lock();
        if let Some(reason) = refusal(&inner, Instant::now()) {
            metrics::counter!("acd_distributor_refusals_total", "reason" => reason).increment(1);
            return Err(ShellError::NotLeader(leader_hint(&inner)));
        }
        let started = Instant::now();
        let records = inner.core.handle_from(origin, cmd, now_ms());
        self.decisions.record(started.elapsed().as_secs_f64());
        let records = records?;
        self.publish(&mut inner, &records);
        drop(inner);
        self.timers.notify_one();
        Ok(records)
    }

    /// `Some(NotLeader)` while this distributor is a standby: clients that
    /// must talk to the leader (edges, agents) are sent there.
    pub fn refuse_unless_leader(&self) -> Result<(), ShellError> {
        let inner = self.lock();
        match refusal(&inner, Instant::now()) {
            Some(_) => Err(ShellError::NotLeader(leader_hint(&inner))),
            None => Ok(()),
        }
    }

    /// The highest seq whose effects are released (durable on every attached
    /// standby), as it advances.
    pub fn subscribe_committed(&self) -> watch::Receiver<u64> {
        self.committed.subscribe()
    }

    /// Appends records to the log, sends them to standbys, and releases
    /// whatever is durable; in order, under the lock.
    fn publish(&self, inner: &mut Inner, records: &[EventRecord]) {
        let now = Instant::now();
        for rec in records {
            inner.log.append(rec.term.0, rec.clone());
            metrics::counter!("acd_distributor_events_total").increment(1);
            tracing::debug!(seq = rec.seq.0, event = ?rec.event, "event");
            let rec = Arc::new(rec.clone());
            // No receivers is fine: nobody is following yet.
            let _ = self.replication.send(rec.clone());
            inner.pending.push_back((rec, now));
        }
        self.release(inner);
    }

    /// Sends the effects of every committed event.
    fn release(&self, inner: &mut Inner) {
        // Fencing: a primary whose lease may have run out releases nothing,
        // not even in the asynchronous fallback; a new primary may be acting.
        if inner.role == Role::Primary && !lease_valid(inner, Instant::now()) {
            metrics::counter!("acd_distributor_fenced_releases_total").increment(1);
            return;
        }
        let committed = inner.log.committed();
        let mut released = 0u64;
        while inner
            .pending
            .front()
            .is_some_and(|(r, _)| r.seq.0 <= committed)
        {
            if let Some((rec, _)) = inner.pending.pop_front() {
                // A tap whose receiver is gone is dropped.
                inner.taps.retain(|t| t.send(rec.clone()).is_ok());
                let _ = self.effects.send(rec);
                released += 1;
            }
        }
        if released > 0 && inner.role == Role::Primary {
            record_acting(released);
        }
        self.committed.send_replace(committed);
    }

    /// A standby starts following: the commit waits for it from now on.
    pub fn attach_follower(&self, follower: &str) {
        let mut inner = self.lock();
        inner.log.attach(follower);
        metrics::gauge!("acd_replication_followers").increment(1.0);
    }

    /// A standby is gone: stop waiting for it.
    pub fn detach_follower(&self, follower: &str) {
        let mut inner = self.lock();
        if inner.log.followers().any(|(f, _)| f == follower) {
            inner.log.detach(follower);
            metrics::gauge!("acd_replication_followers").decrement(1.0);
            self.release(&mut inner);
        }
    }

    /// A standby has applied everything up to `seq`.
    pub fn ack(&self, follower: &str, seq: u64) {
        let mut inner = self.lock();
        if let Err(e) = inner.log.ack(follower, seq) {
            // A follower dropped for being slow rejoins once it has caught up.
            if seq >= inner.log.last_seq() && !inner.log.followers().any(|(f, _)| f == follower) {
                inner.log.attach(follower);
                let _ = inner.log.ack(follower, seq);
                metrics::gauge!("acd_replication_followers").increment(1.0);
                tracing::info!(%follower, seq, "standby caught up; replication synchronous again");
            } else {
                tracing::debug!(%follower, error = %e, "ack ignored");
            }
        }
        self.release(&mut inner);
    }

    /// Drops standbys that kept effects waiting longer than SYNC_TIMEOUT.
    fn expire_slow_followers(&self, inner: &mut Inner, now: Instant) {
        let overdue = inner
            .pending
            .front()
            .is_some_and(|(_, at)| now.duration_since(*at) >= SYNC_TIMEOUT);
        if !overdue {
            return;
        }
        let committed = inner.log.committed();
        let slow: Vec<String> = inner
            .log
            .followers()
            .filter(|(_, acked)| *acked <= committed)
            .map(|(f, _)| f.to_string())
            .collect();
        for f in slow {
            tracing::warn!(follower = %f, "standby did not acknowledge in time; replication asynchronous until it catches up");
            metrics::counter!("acd_replication_sync_timeouts_total").increment(1);
            metrics::gauge!("acd_replication_followers").decrement(1.0);
            inner.log.detach(&f);
        }
        self.release(inner);
    }

    /// A standby applies a record from the primary.
    pub fn apply(&self, rec: EventRecord) -> Result<(), acd_routing::ApplyError> {
        let mut inner = self.lock();
        inner.core.apply(&rec)?;
        telemetry::record_applied(&rec);
        self.publish(&mut inner, std::slice::from_ref(&rec));
        Ok(())
    }

    /// A standby replaces its state with the primary's snapshot.
    pub fn install_snapshot(
        &self,
        snapshot: acd_routing::Snapshot,
    ) -> Result<(), acd_routing::SnapshotError> {
        let core = Core::from_snapshot((*self.config).clone(), snapshot)?;
        let mut inner = self.lock();
        let last = core.last_seq().0;
        inner.core = core;
        inner.log = Leader::new(LOG_CAPACITY, last);
        inner.pending.clear();
        self.committed.send_replace(last);
        // The snapshot's timers (wrap-up ends, offers) need the timer loop
        // to look again.
        self.timers.notify_one();
        Ok(())
    }

    /// Fires the core's timers (wrap-up end, ring-no-answer) at their deadlines.
    async fn timer_loop(self) {
        loop {
            let (core_deadline, sync_deadline) = {
                let inner = self.lock();
                let core = match inner.role {
                    Role::Primary if refusal(&inner, Instant::now()).is_none() => {
                        inner.core.next_deadline()
                    }
                    // Fenced or handing over: the timers fire on the next primary.
                    Role::Primary => None,
                    // A standby's timers fire on the primary and arrive as events.
                    Role::Standby { .. } => None,
                };
                (
                    core,
                    inner.pending.front().map(|(_, at)| *at + SYNC_TIMEOUT),
                )
            };
            let core_wait =
                core_deadline.map(|at| Duration::from_millis(at.0.saturating_sub(now_ms().0)));
            let sync_wait = sync_deadline.map(|at| at.saturating_duration_since(Instant::now()));
            let wait = match (core_wait, sync_wait) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let sleep = async {
                match wait {
                    Some(w) => tokio::time::sleep(w).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = sleep => {
                    let mut inner = self.lock();
                    if inner.role == Role::Primary && refusal(&inner, Instant::now()).is_none() {
                        let records = inner.core.handle_timeout(now_ms());
                        self.publish(&mut inner, &records);
                    }
                    self.expire_slow_followers(&mut inner, Instant::now());
                }
                _ = self.timers.notified() => {}
            }
        }
    }

    pub fn status(&self) -> acd_proto::v1::DistributorStatus {
        let inner = self.lock();
        let (role, following) = match &inner.role {
            Role::Primary => ("primary".to_string(), String::new()),
            Role::Standby { primary_url } => ("standby".to_string(), primary_url.clone()),
        };
        let queues = inner.core.queues();
        let last = inner.log.last_seq();
        let replication_lag = inner
            .log
            .followers()
            .map(|(_, acked)| last.saturating_sub(acked))
            .max()
            .unwrap_or(0);
        let leader = match &inner.role {
            Role::Primary => inner.address.clone(),
            Role::Standby { primary_url } => primary_url.clone(),
        };
        let role_kind = match &inner.role {
            Role::Primary => acd_proto::v1::DistributorRole::Primary,
            Role::Standby { .. } => acd_proto::v1::DistributorRole::Standby,
        };
        let state_digest = inner.core.state_digest();
        acd_proto::v1::DistributorStatus {
            replication_lag,
            followers: inner.log.followers().count() as u32,
            leader,
            role,
            term: inner.core.term().0,
            last_seq: inner.core.last_seq().0,
            state_digest,
            state_digest_hex: format!("{state_digest:016x}"),
            role_kind: role_kind as i32,
            config_version: inner.core.config_version(),
            following,
            calls_waiting: queues.iter().map(|q| q.waiting as u32).sum(),
            agents_logged_in: inner
                .core
                .agents()
                .filter(|a| a.state.is_logged_in())
                .count() as u32,
        }
    }
}

/// Why a primary must not take a command now, if it must not.
fn refusal(inner: &Inner, now: Instant) -> Option<&'static str> {
    match inner.role {
        Role::Standby { .. } => Some("standby"),
        Role::Primary if !lease_valid(inner, now) => Some("lease_expired"),
        Role::Primary if inner.handover.is_some() => Some("switchover"),
        Role::Primary => None,
    }
}

/// Evidence of acting as primary, for checks across processes (partition
/// tests: the old primary's last release must precede the new one's
/// promotion): how many effects, and when the last ones went out.
fn record_acting(released: u64) {
    metrics::counter!("acd_distributor_effects_released_total").increment(released);
    metrics::gauge!("acd_distributor_last_release_timestamp_seconds").set(unix_seconds());
}

/// Now as Unix seconds with milliseconds, for `_timestamp_seconds` gauges.
fn unix_seconds() -> f64 {
    now_ms().0 as f64 / 1000.0
}

fn lease_valid(inner: &Inner, now: Instant) -> bool {
    inner.lease_deadline.is_none_or(|d| now < d)
}

/// Where a refused client should go: the primary as far as this process knows.
fn leader_hint(inner: &Inner) -> String {
    match (&inner.role, &inner.handover) {
        (Role::Standby { primary_url }, _) => primary_url.clone(),
        (Role::Primary, Some(target)) => target.clone(),
        (Role::Primary, None) => inner.address.clone(),
    }
}

/// Term of the entry at the end of the log, when the ring still holds it;
/// otherwise the core's term (a mismatch only costs a snapshot).
fn last_entry_term(inner: &Inner) -> u64 {
    let last = inner.log.last_seq();
    match inner.log.entries_after(last.saturating_sub(1)) {
        Ok(entries) => entries
            .last()
            .filter(|e| e.seq == last)
            .map_or(inner.core.term().0, |e| e.term),
        Err(_) => inner.core.term().0,
    }
}

/// Leadership changes and readiness, used by the leadership shell, the
/// follow loop and the admin service.
impl Distributor {
    /// The gRPC URL this process advertises (status, refusals, follower id).
    pub fn set_address(&self, url: &str) {
        self.lock().address = url.to_string();
    }

    pub fn address(&self) -> String {
        self.lock().address.clone()
    }

    /// Whether this process is the primary and may act.
    pub fn is_acting_primary(&self) -> bool {
        refusal(&self.lock(), Instant::now()).is_none()
    }

    /// The standby won: act as primary under `term` from now on. Every call,
    /// agent and timer is already here (the same events were applied); the
    /// log continues from the last seq, so the old primary can follow.
    pub fn promote(&self, term: Term, lease_deadline: Option<Instant>) {
        let mut inner = self.lock();
        inner.core.set_term(term);
        inner.role = Role::Primary;
        inner.lease_deadline = lease_deadline;
        inner.handover = None;
        let committed = inner.log.committed();
        self.committed.send_replace(committed);
        drop(inner);
        metrics::counter!("acd_distributor_promotions_total").increment(1);
        metrics::gauge!("acd_distributor_promoted_timestamp_seconds").set(unix_seconds());
        tracing::info!(term = term.0, "promoted: primary from now on");
        self.timers.notify_one();
    }

    /// Leadership is elsewhere (lost lease, resigned, another leader): stop
    /// acting at once and follow `leader_url` (empty while unknown). Effects
    /// not yet released are dropped: their term is over.
    pub fn demote(&self, leader_url: &str) {
        let mut inner = self.lock();
        let was_primary = inner.role == Role::Primary;
        inner.role = Role::Standby {
            primary_url: leader_url.to_string(),
        };
        inner.handover = None;
        if was_primary {
            let dropped = inner.pending.len();
            inner.pending.clear();
            let followers: Vec<String> =
                inner.log.followers().map(|(f, _)| f.to_string()).collect();
            for f in followers {
                inner.log.detach(&f);
            }
            metrics::counter!("acd_distributor_demotions_total").increment(1);
            tracing::warn!(leader = %leader_url, dropped, "demoted: standby from now on");
        }
        drop(inner);
        self.timers.notify_one();
    }

    /// A keep-alive succeeded: the primary may act until `deadline`.
    pub fn extend_lease(&self, deadline: Instant) {
        let mut inner = self.lock();
        inner.lease_deadline = Some(inner.lease_deadline.map_or(deadline, |d| d.max(deadline)));
    }

    /// Starts a switchover: new commands are refused naming `target`.
    pub fn hold_commands(&self, target: &str) {
        self.lock().handover = Some(target.to_string());
        self.timers.notify_one();
    }

    /// Ends a switchover that did not happen.
    pub fn resume_commands(&self) {
        self.lock().handover = None;
        self.timers.notify_one();
    }

    /// Waits (bounded) until every attached standby acknowledged the whole
    /// log; the first attached standby's id, or why not.
    pub async fn await_standby_caught_up(&self, within: Duration) -> Result<String, String> {
        let deadline = tokio::time::Instant::now() + within;
        let mut committed = self.committed.subscribe();
        loop {
            {
                let inner = self.lock();
                let Some((standby, _)) = inner.log.followers().next() else {
                    return Err("no standby is attached".into());
                };
                if inner.log.committed() >= inner.log.last_seq() {
                    return Ok(standby.to_string());
                }
            }
            match tokio::time::timeout_at(deadline, committed.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err("the distributor is shutting down".into()),
                Err(_) => return Err(format!("the standby did not catch up within {within:?}")),
            }
        }
    }

    /// Where the log ends: (seq, term of that entry), for a follow request.
    pub fn log_position(&self) -> (u64, u64) {
        let inner = self.lock();
        (inner.core.last_seq().0, last_entry_term(&inner))
    }

    pub fn set_serving(&self, ready: bool, waiting_for: &str) {
        self.serving.send_if_modified(|s| {
            let new = Serving {
                ready,
                waiting_for: waiting_for.to_string(),
            };
            let changed = *s != new;
            *s = new;
            changed
        });
    }

    /// Not ready for want of `what`, unless something already made it ready.
    pub fn set_serving_if_idle(&self, what: &str) {
        self.serving.send_if_modified(|s| {
            if s.ready || s.waiting_for == what {
                return false;
            }
            s.waiting_for = what.to_string();
            true
        });
    }

    /// The first attached standby's id (its URL when it advertises one).
    pub fn first_follower(&self) -> Option<String> {
        self.lock()
            .log
            .followers()
            .next()
            .map(|(f, _)| f.to_string())
    }

    pub fn serving(&self) -> watch::Receiver<Serving> {
        self.serving.subscribe()
    }

    /// Points a standby's refusals at the primary it follows.
    pub fn set_following(&self, url: &str) {
        let mut inner = self.lock();
        if let Role::Standby { primary_url } = &mut inner.role {
            *primary_url = url.to_string();
        }
    }
}
