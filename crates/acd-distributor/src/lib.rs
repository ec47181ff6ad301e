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

pub mod agent_service;
pub mod convert;
pub mod edge_service;
pub mod replication;

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
    timers: Arc<Notify>,
    config: Arc<RoutingConfig>,
}

/// Why a command was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum ShellError {
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error("not the leader; the primary is {0}")]
    NotLeader(String),
}

fn not_leader(role: &Role) -> Option<ShellError> {
    match role {
        Role::Primary => None,
        Role::Standby { primary_url } => Some(ShellError::NotLeader(primary_url.clone())),
    }
}

pub fn now_ms() -> Timestamp {
    Timestamp(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
    )
}

/// Builds the routing core's configuration from the config file.
pub fn routing_config(cfg: &acd_config::Config) -> RoutingConfig {
    use acd_routing::{AgentDef, AgentId, QueueDef, QueueId, SkillId};
    let skills = |m: &std::collections::BTreeMap<String, u8>| {
        m.iter().map(|(k, v)| (SkillId(k.clone()), *v)).collect()
    };
    RoutingConfig {
        queues: cfg
            .queues
            .iter()
            .map(|q| QueueDef {
                id: QueueId(q.id.clone()),
                required: skills(&q.skills),
                wrap_up_ms: q.wrap_up_secs.map(|s| s * 1000),
                max_wait_ms: None,
            })
            .collect(),
        agents: cfg
            .agents
            .iter()
            .map(|a| AgentDef {
                id: AgentId(a.id.clone()),
                name: a.name.clone(),
                skills: skills(&a.skills),
            })
            .collect(),
        default_wrap_up_ms: cfg.distributor.wrap_up_secs * 1000,
        // The edge rings for offer_timeout_secs and then reports the failure
        // itself; the core's own timeout is the backstop for a lost edge.
        offer_timeout_ms: (cfg.distributor.offer_timeout_secs + OFFER_GRACE_SECS) * 1000,
    }
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
            })),
            replication,
            effects,
            committed: watch::channel(0).0,
            timers: Arc::new(Notify::new()),
            config: Arc::new(config),
        };
        tokio::spawn(d.clone().timer_loop());
        d
    }

    pub fn config(&self) -> &RoutingConfig {
        &self.config
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

    /// Runs a command and waits until its events are durable on every
    /// attached standby, so what the caller is told survives a fail-over.
    pub async fn command_durable(&self, cmd: Command) -> Result<Vec<EventRecord>, ShellError> {
        let records = self.command(cmd)?;
        if let Some(last) = records.last().map(|r| r.seq.0) {
            let mut committed = self.committed.subscribe();
            // SYNC_TIMEOUT releases everything eventually, so this ends.
            let _ = committed.wait_for(|c| *c >= last).await;
        }
        Ok(records)
    }

    /// Runs a command on the primary and publishes its events.
    pub fn command(&self, cmd: Command) -> Result<Vec<EventRecord>, ShellError> {
        let mut inner = self.lock();
        if let Role::Standby { primary_url } = &inner.role {
            return Err(ShellError::NotLeader(primary_url.clone()));
        }
        let records = inner.core.handle(cmd, now_ms())?;
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
        if let Some(refusal) = not_leader(&inner.role) {
            return Err(refusal);
        }
        let records = inner.core.handle_from(origin, cmd, now_ms())?;
        self.publish(&mut inner, &records);
        drop(inner);
        self.timers.notify_one();
        Ok(records)
    }

    /// `Some(NotLeader)` while this distributor is a standby: clients that
    /// must talk to the leader (edges, agents) are sent there.
    pub fn refuse_unless_leader(&self) -> Result<(), ShellError> {
        not_leader(&self.lock().role).map_or(Ok(()), Err)
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
        let committed = inner.log.committed();
        while inner
            .pending
            .front()
            .is_some_and(|(r, _)| r.seq.0 <= committed)
        {
            if let Some((rec, _)) = inner.pending.pop_front() {
                let _ = self.effects.send(rec);
            }
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
        Ok(())
    }

    /// Fires the core's timers (wrap-up end, ring-no-answer) at their deadlines.
    async fn timer_loop(self) {
        loop {
            let (core_deadline, sync_deadline) = {
                let inner = self.lock();
                let core = match inner.role {
                    Role::Primary => inner.core.next_deadline(),
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
                    if inner.role == Role::Primary {
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
        acd_proto::v1::DistributorStatus {
            role,
            term: inner.core.term().0,
            last_seq: inner.core.last_seq().0,
            state_digest: inner.core.state_digest(),
            following,
            calls_waiting: queues.iter().map(|q| q.waiting as u32).sum(),
            agents_logged_in: inner
                .core
                .agents()
                .filter(|a| a.state.is_logged_in())
                .count() as u32,
            ..Default::default()
        }
    }
}
