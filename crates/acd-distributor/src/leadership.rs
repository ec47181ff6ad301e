//! Leadership of a distributor pair from an etcd election.
//!
//! Every distributor of a pair runs the same command. Each holds a lease and
//! campaigns with its advertised gRPC URL as the value; the winner is the
//! primary and its term is the election revision (the leader key's create
//! revision, which grows with every new leader). The others observe the
//! leader and follow its URL.
//!
//! ```text
//!  lease task ── granted / keep-alive ok / lost ──┐
//!  campaign task ── won ──────────────────────────┤
//!  observe task ── leader seen ───────────────────┼─▶ Machine::handle(input, now)
//!  follow loop ── primary refused ────────────────┤        │ actions
//!  tick, switchover ──────────────────────────────┘        ▼
//!       promote / demote the Distributor, re-point the follow loop,
//!       (re)campaign, revoke a lease, grant a new one, resign
//! ```
//!
//! The decisions live in [`Machine`], sans-IO and unit-tested; the etcd I/O
//! is the thin shell below it ([`start`]).
//!
//! Fencing: a primary acts only until its lease deadline (the instant a
//! keep-alive was *sent* plus the TTL etcd granted, less a margin), so it
//! stops before etcd can hand leadership to someone else.
//!
//! Fast fail-over: a lease-backed election alone waits for the TTL (at least
//! 1 s: etcd raises any TTL to `ceil(1.5 × election timeout)` seconds). When
//! the standby's connection to the primary is *refused*, the primary's
//! process is gone (a partition or a hung process gives a timeout instead),
//! so the standby revokes the leader's lease and its own campaign wins at once.

use std::time::{Duration, Instant};

use acd_etcd::{Etcd, LeaderKey};
use acd_routing::Term;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::Distributor;

/// A leader as seen in the election.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderSeen {
    pub url: String,
    pub rev: i64,
    pub lease: i64,
    pub key: Vec<u8>,
}

/// What happened, as the shell reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A new lease; `sent_at`: when the grant was asked for.
    LeaseGranted {
        lease: i64,
        ttl: Duration,
        sent_at: Instant,
    },
    KeepAliveOk {
        lease: i64,
        ttl: Duration,
        sent_at: Instant,
    },
    /// etcd says the lease has expired or was revoked.
    LeaseLost { lease: i64 },
    /// Our campaign returned: we hold the election.
    Won { lease: i64, rev: i64, key: Vec<u8> },
    /// The election's current leader (observe).
    Leader(LeaderSeen),
    /// Connecting to `url` was refused.
    Refused { url: String },
    /// Switchover: give leadership to the standby at `to`.
    Resign { to: String },
    /// Time passes.
    Tick,
}

/// What the shell must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Action {
    /// Campaign (again) under `lease`.
    Campaign {
        lease: i64,
    },
    /// Act as primary under `term` until `until` (extended by keep-alives).
    Promote {
        term: u64,
        until: Instant,
    },
    ExtendLease(Instant),
    /// Stop acting at once; `leader`: where clients should go (may be empty).
    Demote {
        leader: String,
    },
    /// Follow this primary (`None`: nobody).
    Follow(Option<String>),
    /// Revoke a lease (a dead primary's, or our own after fencing).
    Revoke {
        lease: i64,
    },
    /// Give up leadership held under `key`.
    Resign {
        rev: i64,
        key: Vec<u8>,
    },
    /// Grant a fresh lease (the old one is gone).
    Regrant,
}

#[derive(Debug, Clone, Copy)]
struct LeaseState {
    id: i64,
    deadline: Instant,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// Campaigning; following whoever leads.
    Candidate,
    Leading {
        rev: i64,
        key: Vec<u8>,
    },
}

/// The leadership decisions of one distributor.
#[derive(Debug)]
pub struct Machine {
    lease: Option<LeaseState>,
    phase: Phase,
    leader: Option<LeaderSeen>,
    following: Option<String>,
    /// The last lease revoked on a refusal, so a burst revokes once.
    revoked: Option<i64>,
    /// The key we resigned (switchover): a late observation of it, or a
    /// campaign that found it still in place, must not make us lead again.
    resigned: Option<(i64, Vec<u8>)>,
}

/// How long before the lease's TTL a primary stops acting: room for the
/// keep-alive's own latency and the two clocks' drift.
pub fn margin(ttl: Duration) -> Duration {
    (ttl / 4).clamp(Duration::from_millis(100), Duration::from_secs(1))
}

impl Default for Machine {
    fn default() -> Self {
        Machine::new()
    }
}

impl Machine {
    pub fn new() -> Machine {
        Machine {
            lease: None,
            phase: Phase::Candidate,
            leader: None,
            following: None,
            revoked: None,
            resigned: None,
        }
    }

    pub fn is_leading(&self) -> bool {
        matches!(self.phase, Phase::Leading { .. })
    }

    pub fn term(&self) -> Option<u64> {
        match self.phase {
            Phase::Leading { rev, .. } => Some(rev as u64),
            Phase::Candidate => None,
        }
    }

    /// The leader as last seen in the election.
    pub fn leader(&self) -> Option<&LeaderSeen> {
        self.leader.as_ref()
    }

    pub fn handle(&mut self, input: Input, now: Instant) -> Vec<Action> {
        match input {
            Input::LeaseGranted {
                lease,
                ttl,
                sent_at,
            } => {
                self.lease = Some(LeaseState {
                    id: lease,
                    deadline: sent_at + ttl.saturating_sub(margin(ttl)),
                });
                vec![Action::Campaign { lease }]
            }
            Input::KeepAliveOk {
                lease,
                ttl,
                sent_at,
            } => self.keep_alive(lease, sent_at + ttl.saturating_sub(margin(ttl))),
            Input::LeaseLost { lease } if self.lease.is_some_and(|l| l.id == lease) => {
                let mut out = self.step_down();
                self.lease = None;
                out.push(Action::Regrant);
                out
            }
            Input::LeaseLost { .. } => Vec::new(),
            Input::Won { lease, rev, key } => self.won(lease, rev, key, now),
            Input::Leader(l) => self.leader_seen(l, now),
            Input::Refused { url } => self.refused(&url),
            Input::Resign { to } => self.resign(to),
            Input::Tick => self.tick(now),
        }
    }

    fn keep_alive(&mut self, lease: i64, deadline: Instant) -> Vec<Action> {
        let Some(l) = self.lease.as_mut().filter(|l| l.id == lease) else {
            return Vec::new();
        };
        l.deadline = l.deadline.max(deadline);
        let until = l.deadline;
        if self.is_leading() {
            vec![Action::ExtendLease(until)]
        } else {
            Vec::new()
        }
    }

    fn won(&mut self, lease: i64, rev: i64, key: Vec<u8>, now: Instant) -> Vec<Action> {
        let Some(l) = self.lease.filter(|l| l.id == lease) else {
            // A campaign under a lease we no longer hold.
            return Vec::new();
        };
        if self.resigned.as_ref().is_some_and(|(r, _)| *r == rev) {
            // The key we gave up is still there (a campaign reused it, or the
            // resign failed): remove it and stand again, never lead on it.
            return vec![Action::Resign { rev, key }, Action::Campaign { lease }];
        }
        if self.is_leading() {
            return Vec::new();
        }
        if now >= l.deadline {
            // Elected under a lease we can no longer vouch for: holding the
            // key without acting would block the other side. Give it up.
            self.lease = None;
            return vec![Action::Revoke { lease }, Action::Regrant];
        }
        self.phase = Phase::Leading { rev, key };
        self.following = None;
        vec![
            Action::Follow(None),
            Action::Promote {
                term: rev as u64,
                until: l.deadline,
            },
        ]
    }

    fn leader_seen(&mut self, l: LeaderSeen, now: Instant) -> Vec<Action> {
        if self.lease.is_some_and(|ours| ours.id == l.lease)
            && self.resigned.as_ref().is_some_and(|(r, _)| *r == l.rev)
        {
            // A late report of the key we resigned: it no longer leads.
            return Vec::new();
        }
        self.leader = Some(l.clone());
        if self.lease.is_some_and(|ours| ours.id == l.lease) {
            // Our own key leads (observe may report it before the campaign returns).
            return self.won(l.lease, l.rev, l.key, now);
        }
        let mut out = Vec::new();
        if self.is_leading() {
            // Someone else leads: our key is gone. Stop, then campaign again.
            out = self.step_down();
            if let Some(lease) = self.lease {
                out.push(Action::Campaign { lease: lease.id });
            }
        }
        if self.following.as_deref() != Some(l.url.as_str()) {
            self.following = Some(l.url.clone());
            out.push(Action::Follow(Some(l.url)));
        }
        out
    }

    fn refused(&mut self, url: &str) -> Vec<Action> {
        if self.is_leading() {
            return Vec::new();
        }
        match &self.leader {
            Some(l)
                if l.url == url
                    && self.revoked != Some(l.lease)
                    && self.lease.is_none_or(|ours| ours.id != l.lease) =>
            {
                self.revoked = Some(l.lease);
                vec![Action::Revoke { lease: l.lease }]
            }
            _ => Vec::new(),
        }
    }

    fn resign(&mut self, to: String) -> Vec<Action> {
        let Phase::Leading { rev, key } = std::mem::replace(&mut self.phase, Phase::Candidate)
        else {
            return Vec::new();
        };
        self.resigned = Some((rev, key.clone()));
        let mut out = vec![Action::Demote { leader: to }, Action::Resign { rev, key }];
        if let Some(lease) = self.lease {
            out.push(Action::Campaign { lease: lease.id });
        }
        out
    }

    fn tick(&mut self, now: Instant) -> Vec<Action> {
        match self.lease {
            Some(l) if self.is_leading() && now >= l.deadline => {
                // Keep-alives failed for too long: etcd may hand leadership
                // over any moment. Stop, and make sure it does so at once.
                let mut out = self.step_down();
                self.lease = None;
                out.push(Action::Revoke { lease: l.id });
                out.push(Action::Regrant);
                out
            }
            _ => Vec::new(),
        }
    }

    /// Leading → Candidate: demote, pointing at the leader if another is known.
    fn step_down(&mut self) -> Vec<Action> {
        if !self.is_leading() {
            return Vec::new();
        }
        self.phase = Phase::Candidate;
        let ours = self.lease.map(|l| l.id);
        let other = self
            .leader
            .as_ref()
            .filter(|l| Some(l.lease) != ours)
            .map(|l| l.url.clone());
        self.following = other.clone();
        vec![
            Action::Demote {
                leader: other.clone().unwrap_or_default(),
            },
            Action::Follow(other),
        ]
    }
}

/// How a distributor takes part in the election.
#[derive(Debug, Clone)]
pub struct LeadershipConfig {
    pub endpoints: Vec<String>,
    pub election: String,
    pub ttl_secs: u64,
    /// This process's gRPC URL, the value it campaigns with.
    pub advertise: String,
}

/// Outcome of a switchover.
#[derive(Debug, Clone)]
pub struct Switchover {
    pub term: u64,
    pub pause: Duration,
    pub new_primary: String,
}

/// Talks to the running leadership shell.
#[derive(Clone)]
pub struct Leadership {
    inputs: mpsc::Sender<Input>,
    leader: watch::Receiver<Option<LeaderSeen>>,
    d: Distributor,
}

/// Longest a switchover waits for the standby to acknowledge the whole log.
const CATCH_UP_WAIT: Duration = Duration::from_secs(1);
/// Longest a switchover waits for the standby to take over.
const TAKE_OVER_WAIT: Duration = Duration::from_secs(3);
const TICK: Duration = Duration::from_millis(20);
const RETRY: Duration = Duration::from_millis(200);

impl Leadership {
    /// Hands leadership to the standby: hold commands, wait until the standby
    /// has acknowledged everything, resign, wait until it leads.
    pub async fn switchover(&self) -> Result<Switchover, String> {
        if !self.d.is_acting_primary() {
            return Err("this distributor is not the acting primary".into());
        }
        let started = Instant::now();
        let standby = self
            .d
            .first_follower()
            .ok_or_else(|| "no standby is attached".to_string())?;
        self.d.hold_commands(&standby);
        if let Err(e) = self.d.await_standby_caught_up(CATCH_UP_WAIT).await {
            self.d.resume_commands();
            return Err(e);
        }
        // The term we give up: the new leader's election revision is higher.
        let old = self.d.status().term as i64;
        let own = self.d.address();
        self.inputs
            .send(Input::Resign { to: standby })
            .await
            .map_err(|_| "the leadership task has stopped".to_string())?;
        let mut leader = self.leader.clone();
        let seen = tokio::time::timeout(
            TAKE_OVER_WAIT,
            leader.wait_for(|l| l.as_ref().is_some_and(|l| l.rev > old && l.url != own)),
        )
        .await
        .map_err(|_| format!("no new leader within {TAKE_OVER_WAIT:?}"))?
        .map_err(|_| "the leadership task has stopped".to_string())?
        .clone()
        .ok_or_else(|| "no new leader".to_string())?;
        // The pause ends when the new primary takes commands, not when etcd
        // names it.
        await_acting(&seen, TAKE_OVER_WAIT).await?;
        let pause = started.elapsed();
        metrics::histogram!("acd_switchover_pause_seconds").record(pause.as_secs_f64());
        tracing::info!(new_primary = %seen.url, term = seen.rev, pause_us = pause.as_micros() as u64, "switchover done");
        Ok(Switchover {
            term: seen.rev as u64,
            pause,
            new_primary: seen.url,
        })
    }
}

/// Polls the new leader's AdminService.Status until it acts as primary.
async fn await_acting(leader: &LeaderSeen, within: Duration) -> Result<(), String> {
    use acd_proto::v1::admin_service_client::AdminServiceClient;
    let deadline = tokio::time::Instant::now() + within;
    let channel = acd_proto::client::site_endpoint(&leader.url)
        .map_err(|e| format!("the new primary's URL {}: {e}", leader.url))?
        .connect_timeout(within)
        .connect()
        .await
        .map_err(|e| format!("the new primary at {}: {e}", leader.url))?;
    let mut admin = AdminServiceClient::new(acd_proto::client::site_authed(channel));
    loop {
        if let Ok(s) = admin.status(acd_proto::v1::StatusRequest {}).await {
            let acting = s
                .into_inner()
                .distributor
                .is_some_and(|d| d.role == "primary" && d.term >= leader.rev as u64);
            if acting {
                return Ok(());
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "the new primary at {} did not take over within {within:?}",
                leader.url
            ));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Starts taking part in the election; the Distributor starts as a standby
/// following nobody until a leader is known.
pub fn start(d: Distributor, cfg: LeadershipConfig) -> Leadership {
    let (inputs_tx, inputs_rx) = mpsc::channel(64);
    let (leader_tx, leader_rx) = watch::channel(None);
    let (target_tx, target_rx) = watch::channel(None);
    let (refused_tx, mut refused_rx) = mpsc::channel::<String>(4);
    tokio::spawn(crate::replication::follow_loop(
        d.clone(),
        target_rx,
        Some(refused_tx),
    ));
    let fwd = inputs_tx.clone();
    tokio::spawn(async move {
        while let Some(url) = refused_rx.recv().await {
            if fwd.send(Input::Refused { url }).await.is_err() {
                return;
            }
        }
    });
    tokio::spawn(observe_task(cfg.clone(), d.clone(), inputs_tx.clone()));
    let shell = Shell {
        d: d.clone(),
        cfg,
        machine: Machine::new(),
        inputs: inputs_tx.clone(),
        target: target_tx,
        leader: leader_tx,
        lease_task: None,
        campaign_task: None,
    };
    tokio::spawn(shell.run(inputs_rx));
    Leadership {
        inputs: inputs_tx,
        leader: leader_rx,
        d,
    }
}

struct Shell {
    d: Distributor,
    cfg: LeadershipConfig,
    machine: Machine,
    inputs: mpsc::Sender<Input>,
    target: watch::Sender<Option<String>>,
    leader: watch::Sender<Option<LeaderSeen>>,
    lease_task: Option<JoinHandle<()>>,
    campaign_task: Option<JoinHandle<()>>,
}

impl Shell {
    async fn run(mut self, mut inputs: mpsc::Receiver<Input>) {
        self.regrant();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let input = tokio::select! {
                i = inputs.recv() => match i {
                    Some(i) => i,
                    None => return,
                },
                _ = tick.tick() => Input::Tick,
            };
            if let Input::Leader(l) = &input {
                self.leader.send_replace(Some(l.clone()));
            }
            for action in self.machine.handle(input, Instant::now()) {
                self.act(action).await;
            }
        }
    }

    async fn act(&mut self, action: Action) {
        tracing::debug!(?action, "leadership");
        match action {
            Action::Campaign { lease } => self.campaign(lease),
            Action::Promote { term, until } => {
                self.d.promote(Term(term), Some(until));
                self.d.set_serving(true, "");
            }
            Action::ExtendLease(until) => self.d.extend_lease(until),
            Action::Demote { leader } => {
                self.d.demote(&leader);
                let waiting = if leader.is_empty() {
                    format!("a leader in etcd at {}", self.cfg.endpoints.join(","))
                } else {
                    format!("the primary at {leader}")
                };
                self.d.set_serving(false, &waiting);
            }
            Action::Follow(url) => {
                if let Some(url) = &url {
                    self.d.set_following(url);
                }
                self.target.send_replace(url);
            }
            Action::Revoke { lease } => {
                metrics::counter!("acd_leadership_revokes_total").increment(1);
                tracing::warn!(lease = format!("{lease:x}"), "revoking a lease");
                let endpoints = self.cfg.endpoints.clone();
                tokio::spawn(async move {
                    let r = match Etcd::connect_any(&endpoints).await {
                        Ok(etcd) => etcd.revoke(lease).await,
                        Err(e) => Err(e),
                    };
                    if let Err(e) = r {
                        metrics::counter!("acd_leadership_errors_total", "reason" => "revoke")
                            .increment(1);
                        tracing::warn!(error = %e, "lease revoke failed");
                    }
                });
            }
            Action::Resign { rev, key } => self.resign(rev, key).await,
            Action::Regrant => self.regrant(),
        }
    }

    fn campaign(&mut self, lease: i64) {
        if let Some(t) = self.campaign_task.take() {
            t.abort();
        }
        let cfg = self.cfg.clone();
        let inputs = self.inputs.clone();
        self.campaign_task = Some(tokio::spawn(async move {
            loop {
                let r = match Etcd::connect_any(&cfg.endpoints).await {
                    Ok(etcd) => etcd.campaign(&cfg.election, lease, &cfg.advertise).await,
                    Err(e) => Err(e),
                };
                match r {
                    Ok(k) => {
                        let _ = inputs
                            .send(Input::Won {
                                lease: k.lease,
                                rev: k.rev,
                                key: k.key,
                            })
                            .await;
                        return;
                    }
                    Err(e) => {
                        metrics::counter!("acd_leadership_errors_total", "reason" => "campaign")
                            .increment(1);
                        tracing::warn!(error = %e, "campaign failed; retrying");
                        tokio::time::sleep(RETRY).await;
                    }
                }
            }
        }));
    }

    async fn resign(&mut self, rev: i64, key: Vec<u8>) {
        let Some(lease) = self.machine_lease() else {
            return;
        };
        let leader = LeaderKey {
            name: self.cfg.election.as_bytes().to_vec(),
            key,
            rev,
            lease,
        };
        let r = match Etcd::connect_any(&self.cfg.endpoints).await {
            Ok(etcd) => etcd.resign(leader).await,
            Err(e) => Err(e),
        };
        if let Err(e) = r {
            // Still the leader in etcd: the campaign that follows returns at
            // once with our key, and we act again.
            metrics::counter!("acd_leadership_errors_total", "reason" => "resign").increment(1);
            tracing::warn!(error = %e, "resign failed");
        }
    }

    fn machine_lease(&self) -> Option<i64> {
        self.machine.lease.map(|l| l.id)
    }

    /// Grants a lease and keeps it alive; reports through `inputs`.
    fn regrant(&mut self) {
        if let Some(t) = self.lease_task.take() {
            t.abort();
        }
        if let Some(t) = self.campaign_task.take() {
            t.abort();
        }
        let cfg = self.cfg.clone();
        let inputs = self.inputs.clone();
        let d = self.d.clone();
        self.lease_task = Some(tokio::spawn(async move {
            loop {
                if let Err(e) = lease_once(&cfg, &inputs).await {
                    metrics::counter!("acd_leadership_errors_total", "reason" => "lease")
                        .increment(1);
                    tracing::warn!(error = %e, "etcd lease");
                    d.set_serving_if_idle(&format!("etcd at {}", cfg.endpoints.join(",")));
                    tokio::time::sleep(RETRY).await;
                } else {
                    return;
                }
            }
        }));
    }
}

/// One lease's life: grant, then keep-alive every third of the TTL until it
/// is lost (reported; a new one is granted by the machine's `Regrant`).
async fn lease_once(cfg: &LeadershipConfig, inputs: &mpsc::Sender<Input>) -> Result<(), String> {
    let etcd = Etcd::connect_any(&cfg.endpoints)
        .await
        .map_err(|e| e.to_string())?;
    let sent_at = Instant::now();
    let lease = etcd
        .grant(cfg.ttl_secs as i64)
        .await
        .map_err(|e| e.to_string())?;
    let ttl = Duration::from_secs(lease.ttl_secs.max(1) as u64);
    tracing::info!(lease = format!("{:x}", lease.id), ttl_secs = lease.ttl_secs, endpoint = %etcd.endpoint(), "etcd lease granted");
    let _ = inputs
        .send(Input::LeaseGranted {
            lease: lease.id,
            ttl,
            sent_at,
        })
        .await;
    let every = (ttl / 4).max(Duration::from_millis(50));
    let mut etcd = etcd;
    loop {
        // The first refresh goes out with the stream: date it from here.
        let mut sent_at = Instant::now();
        let mut ka = match etcd.keep_alive(lease.id).await {
            Ok(ka) => ka,
            Err(e) => {
                tracing::warn!(error = %e, "keep-alive stream");
                tokio::time::sleep(every / 2).await;
                etcd = reconnect(cfg, etcd).await;
                continue;
            }
        };
        loop {
            match ka.refresh().await {
                Ok(ttl_secs) => {
                    let _ = inputs
                        .send(Input::KeepAliveOk {
                            lease: lease.id,
                            ttl: Duration::from_secs(ttl_secs as u64),
                            sent_at,
                        })
                        .await;
                }
                Err(acd_etcd::Error::LeaseGone { .. }) => {
                    tracing::warn!(lease = format!("{:x}", lease.id), "lease lost");
                    let _ = inputs.send(Input::LeaseLost { lease: lease.id }).await;
                    // The machine asks for a new lease; this task ends then.
                    std::future::pending::<()>().await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "keep-alive failed");
                    metrics::counter!("acd_leadership_errors_total", "reason" => "keep_alive")
                        .increment(1);
                    break;
                }
            }
            tokio::time::sleep(every).await;
            sent_at = Instant::now();
        }
        etcd = reconnect(cfg, etcd).await;
    }
}

/// Another endpoint if one answers, else the same one again.
async fn reconnect(cfg: &LeadershipConfig, current: Etcd) -> Etcd {
    Etcd::connect_any(&cfg.endpoints).await.unwrap_or(current)
}

/// Reports every leader of the election, reconnecting after breaks.
async fn observe_task(cfg: LeadershipConfig, d: Distributor, inputs: mpsc::Sender<Input>) {
    loop {
        let r = async {
            let etcd = Etcd::connect_any(&cfg.endpoints).await?;
            let mut obs = etcd.observe(&cfg.election).await?;
            loop {
                let l = obs.next().await?;
                let seen = LeaderSeen {
                    url: String::from_utf8_lossy(&l.value).into_owned(),
                    rev: l.rev,
                    lease: l.lease,
                    key: l.key,
                };
                if inputs.send(Input::Leader(seen)).await.is_err() {
                    return Ok::<(), acd_etcd::Error>(());
                }
            }
        }
        .await;
        match r {
            Ok(()) => return,
            Err(e) => {
                metrics::counter!("acd_leadership_errors_total", "reason" => "observe")
                    .increment(1);
                tracing::warn!(error = %e, "observing the election");
                d.set_serving_if_idle(&format!("etcd at {}", cfg.endpoints.join(",")));
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(2);

    fn granted(m: &mut Machine, lease: i64, now: Instant) {
        let a = m.handle(
            Input::LeaseGranted {
                lease,
                ttl: TTL,
                sent_at: now,
            },
            now,
        );
        assert_eq!(a, vec![Action::Campaign { lease }]);
    }

    fn seen(url: &str, rev: i64, lease: i64) -> Input {
        Input::Leader(LeaderSeen {
            url: url.into(),
            rev,
            lease,
            key: format!("k{lease}").into_bytes(),
        })
    }

    #[test]
    fn winner_promotes_with_the_election_revision_as_term() {
        let t0 = Instant::now();
        let mut m = Machine::new();
        granted(&mut m, 7, t0);
        let a = m.handle(
            Input::Won {
                lease: 7,
                rev: 42,
                key: b"k7".to_vec(),
            },
            t0,
        );
        assert_eq!(
            a,
            vec![
                Action::Follow(None),
                Action::Promote {
                    term: 42,
                    until: t0 + TTL - margin(TTL)
                }
            ]
        );
        assert_eq!(m.term(), Some(42));
        // Observe reporting our own key afterwards changes nothing.
        assert!(m.handle(seen("http://me", 42, 7), t0).is_empty());
    }

    #[test]
    fn elected_under_a_lapsed_lease_gives_it_up() {
        let t0 = Instant::now();
        let mut m = Machine::new();
        granted(&mut m, 7, t0);
        let a = m.handle(
            Input::Won {
                lease: 7,
                rev: 42,
                key: b"k7".to_vec(),
            },
            t0 + TTL,
        );
        assert_eq!(a, vec![Action::Revoke { lease: 7 }, Action::Regrant]);
        assert!(!m.is_leading());
    }

    #[test]
    fn others_follow_the_leader_and_re_point_when_it_changes() {
        let t0 = Instant::now();
        let mut m = Machine::new();
        granted(&mut m, 8, t0);
        assert_eq!(
            m.handle(seen("http://a", 10, 1), t0),
            vec![Action::Follow(Some("http://a".into()))]
        );
        assert!(m.handle(seen("http://a", 10, 1), t0).is_empty());
        assert_eq!(
            m.handle(seen("http://b", 12, 2), t0),
            vec![Action::Follow(Some("http://b".into()))]
        );
    }

    #[test]
    fn a_refused_leader_has_its_lease_revoked_once() {
        let t0 = Instant::now();
        let mut m = Machine::new();
        granted(&mut m, 8, t0);
        let _ = m.handle(seen("http://a", 10, 1), t0);
        // Refusals from someone else than the leader are ignored.
        assert!(m
            .handle(
                Input::Refused {
                    url: "http://x".into()
                },
                t0
            )
            .is_empty());
        let refused = Input::Refused {
            url: "http://a".into(),
        };
        assert_eq!(
            m.handle(refused.clone(), t0),
            vec![Action::Revoke { lease: 1 }]
        );
        assert!(m.handle(refused, t0).is_empty(), "revoked once");
    }

    #[test]
    fn a_leader_never_revokes_on_refusal() {
        let t0 = Instant::now();
        let mut m = Machine::new();
        granted(&mut m, 7, t0);
        let _ = m.handle(seen("http://me", 5, 7), t0);
        assert!(m.is_leading());
        assert!(m
            .handle(
                Input::Refused {
                    url: "http://me".into()
                },
                t0
            )
            .is_empty());
    }

    #[test]
    fn keep_alives_extend_and_a_lapse_fences_the_primary() {
        let t0 = Instant::now();
        let mut m = Machine::new();
        granted(&mut m, 7, t0);
        let _ = m.handle(
            Input::Won {
                lease: 7,
                rev: 5,
                key: b"k7".to_vec(),
            },
            t0,
        );
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!(
            m.handle(
                Input::KeepAliveOk {
                    lease: 7,
                    ttl: TTL,
                    sent_at: t1
                },
                t1
            ),
            vec![Action::ExtendLease(t1 + TTL - margin(TTL))]
        );
        assert!(m
            .handle(Input::Tick, t1 + Duration::from_secs(1))
            .is_empty());
        let late = t1 + TTL;
        assert_eq!(
            m.handle(Input::Tick, late),
            vec![
                Action::Demote {
                    leader: String::new()
                },
                Action::Follow(None),
                Action::Revoke { lease: 7 },
                Action::Regrant
            ]
        );
        assert!(!m.is_leading());
        // A campaign answer under the lost lease does not promote again.
        assert!(m
            .handle(
                Input::Won {
                    lease: 7,
                    rev: 5,
                    key: b"k7".to_vec()
                },
                late
            )
            .is_empty());
    }

    #[test]
    fn lost_lease_or_another_leader_demotes_and_follows() {
        let t0 = Instant::now();
        let mut m = Machine::new();
        granted(&mut m, 7, t0);
        let _ = m.handle(seen("http://me", 5, 7), t0);
        assert_eq!(
            m.handle(seen("http://b", 9, 3), t0),
            vec![
                Action::Demote {
                    leader: "http://b".into()
                },
                Action::Follow(Some("http://b".into())),
                Action::Campaign { lease: 7 }
            ]
        );
        let mut m = Machine::new();
        granted(&mut m, 7, t0);
        let _ = m.handle(seen("http://me", 5, 7), t0);
        assert_eq!(
            m.handle(Input::LeaseLost { lease: 7 }, t0),
            vec![
                Action::Demote {
                    leader: String::new()
                },
                Action::Follow(None),
                Action::Regrant
            ]
        );
    }

    #[test]
    fn resign_demotes_resigns_and_campaigns_again() {
        let t0 = Instant::now();
        let mut m = Machine::new();
        granted(&mut m, 7, t0);
        let _ = m.handle(seen("http://me", 5, 7), t0);
        assert_eq!(
            m.handle(
                Input::Resign {
                    to: "http://b".into()
                },
                t0
            ),
            vec![
                Action::Demote {
                    leader: "http://b".into()
                },
                Action::Resign {
                    rev: 5,
                    key: b"k7".to_vec()
                },
                Action::Campaign { lease: 7 }
            ]
        );
        // The standby's key leads now: follow it.
        assert_eq!(
            m.handle(seen("http://b", 6, 3), t0),
            vec![Action::Follow(Some("http://b".into()))]
        );
        // Resigning twice does nothing.
        assert!(m
            .handle(
                Input::Resign {
                    to: "http://b".into()
                },
                t0
            )
            .is_empty());
    }

    #[test]
    fn the_resigned_key_never_makes_us_lead_again() {
        let t0 = Instant::now();
        let mut m = Machine::new();
        granted(&mut m, 7, t0);
        let _ = m.handle(seen("http://me", 5, 7), t0);
        let _ = m.handle(
            Input::Resign {
                to: "http://b".into(),
            },
            t0,
        );
        // A late observation of our old key: no promotion, nothing followed.
        assert!(m.handle(seen("http://me", 5, 7), t0).is_empty());
        assert!(!m.is_leading());
        // A campaign that found the old key still in place: remove it and
        // stand again, without promoting.
        assert_eq!(
            m.handle(
                Input::Won {
                    lease: 7,
                    rev: 5,
                    key: b"k7".to_vec()
                },
                t0
            ),
            vec![
                Action::Resign {
                    rev: 5,
                    key: b"k7".to_vec()
                },
                Action::Campaign { lease: 7 }
            ]
        );
        assert!(!m.is_leading());
        // A later, genuine win under a new key leads again.
        let a = m.handle(
            Input::Won {
                lease: 7,
                rev: 9,
                key: b"k7".to_vec(),
            },
            t0,
        );
        assert!(a.contains(&Action::Promote {
            term: 9,
            until: t0 + TTL - margin(TTL)
        }));
    }
}
