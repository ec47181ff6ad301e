//! The distributor service: the async shell around `acd-routing`'s
//! deterministic core.
//!
//! Data flow: gRPC request → [`Distributor::command`] → `Core::handle(cmd, now)`
//! → event records → appended to the replication log and broadcast → each
//! subscriber turns the events it cares about into effects: an edge stream
//! sends `ConnectAgent`, an agent's `Watch` stream sends the offer, a standby
//! applies the record to its own core.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use acd_replication::Leader;
use acd_routing::{Command, CommandError, Core, EventRecord, RoutingConfig, Term, Timestamp};
use tokio::sync::{broadcast, Notify};

pub mod agent_service;
pub mod convert;
pub mod edge_service;
pub mod replication;

/// Records kept for a standby to catch up without a snapshot.
const LOG_CAPACITY: usize = 10_000;
/// Subscribers further behind than this are cut off and re-sync.
const BROADCAST_CAPACITY: usize = 65_536;
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
}

/// Shared handle to the distributor state; cheap to clone.
#[derive(Clone)]
pub struct Distributor {
    inner: Arc<Mutex<Inner>>,
    events: broadcast::Sender<Arc<EventRecord>>,
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
        let (events, _) = broadcast::channel(BROADCAST_CAPACITY);
        let d = Distributor {
            inner: Arc::new(Mutex::new(Inner {
                core,
                log: Leader::new(LOG_CAPACITY, 0),
                role,
            })),
            events,
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

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<EventRecord>> {
        self.events.subscribe()
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
        self.timers.notify_one();
        Ok(records)
    }

    /// Appends records to the log and broadcasts them, in order, under the lock.
    fn publish(&self, inner: &mut Inner, records: &[EventRecord]) {
        for rec in records {
            inner.log.append(rec.term.0, rec.clone());
            metrics::counter!("acd_distributor_events_total").increment(1);
            tracing::debug!(seq = rec.seq.0, event = ?rec.event, "event");
            // No receivers is fine: nobody is watching yet.
            let _ = self.events.send(Arc::new(rec.clone()));
        }
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
        Ok(())
    }

    /// Fires the core's timers (wrap-up end, ring-no-answer) at their deadlines.
    async fn timer_loop(self) {
        loop {
            let deadline = {
                let inner = self.lock();
                match inner.role {
                    Role::Primary => inner.core.next_deadline(),
                    // A standby's timers fire on the primary and arrive as events.
                    Role::Standby { .. } => None,
                }
            };
            let sleep = async {
                match deadline {
                    Some(at) => {
                        let wait = at.0.saturating_sub(now_ms().0);
                        tokio::time::sleep(std::time::Duration::from_millis(wait)).await
                    }
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
        }
    }
}
