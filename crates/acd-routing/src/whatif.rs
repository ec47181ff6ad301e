//! What-if replay: a recorded day of traffic against a changed configuration.
//!
//! ```text
//!  journal (Vec<EventRecord>) ─▶ Workload::from_journal ─▶ exogenous inputs + facts
//!                                                             │
//!        RoutingConfig ─▶ simulate: a fresh Core fed the inputs in time order,
//!                         handle_timeout between them, and the reactions the
//!                         outside world had (answer after the ring delay, hang up
//!                         after the talk time, abandon at the caller's patience)
//!                                                             │
//!                                                             ▼
//!                                  Report (per queue, total, per agent)
//! ```
//!
//! What is replayed is what the routing does not decide: when callers arrive and
//! how long they would wait before hanging up, how long they talk, how long phones
//! ring, and when agents log in, go ready or take a break on their own. What the
//! routing decides (who gets which call, when) is decided afresh by the core, so
//! the new configuration's strategies, priorities, relaxation and overflow apply.
//!
//! Simplifications, stated once: a caller who did not abandon in the recording is
//! taken to wait for ever (patience unknown); a call never answered in the recording
//! talks for its queue's mean talk time; a transfer ends the call (the second leg is
//! not replayed); an agent command refused because the agent is busy in the replay
//! (a break asked for while on a call) is carried out once the agent is free.
//! Agents of the new configuration absent from the baseline work the whole span.
//!
//! Pure: no I/O, no clock; the same inputs give the same report.

use crate::callbacks::CallbackRecord;
use crate::command::{CallbackOutcome, Command};
use crate::config::{OverflowAction, RoutingConfig};
use crate::event::{AgentState, EndReason, Event, EventRecord, RONA_REASON};
use crate::ids::{AgentId, CallId, Extension, QueueId, Term, Timestamp};
use crate::state::CallPhase;
use crate::Core;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Talk time assumed when the journal has no connected call at all.
const DEFAULT_TALK_MS: u64 = 180_000;

/// One exogenous input at its recorded time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Input {
    pub at: Timestamp,
    pub command: Command,
}

/// What the recording tells about one call's caller and agent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallFacts {
    /// Hung up this long after arriving (abandoned calls only).
    pub patience_ms: Option<u64>,
    /// From connection to end (answered calls only).
    pub talk_ms: Option<u64>,
    /// From the (successful) offer to the connection.
    pub ring_ms: Option<u64>,
}

/// The exogenous part of a recording.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Workload {
    /// First and last record times.
    pub start: Timestamp,
    pub end: Timestamp,
    /// Arrivals, agents' own state changes, callback requests; in time order.
    pub inputs: Vec<Input>,
    pub calls: BTreeMap<CallId, CallFacts>,
    /// The queue each call arrived in.
    pub arrival_queue: BTreeMap<CallId, QueueId>,
    pub agent_ring_ms: BTreeMap<AgentId, u64>,
    pub mean_ring_ms: u64,
    pub queue_talk_ms: BTreeMap<QueueId, u64>,
    pub mean_talk_ms: u64,
    /// Agents that appear in the recording.
    pub agents: BTreeSet<AgentId>,
    /// Extensions agents used in the recording.
    pub extensions: BTreeSet<Extension>,
}

/// Mean of samples, 0 for none (integer arithmetic keeps it deterministic).
#[derive(Clone, Copy, Debug, Default)]
struct Mean {
    sum: u64,
    n: u64,
}

impl Mean {
    fn add(&mut self, v: u64) {
        self.sum = self.sum.saturating_add(v);
        self.n += 1;
    }

    fn get(self) -> Option<u64> {
        (self.n > 0).then(|| self.sum / self.n)
    }
}

/// Reads a journal once, keeping what the outside world did.
#[derive(Default)]
struct Extractor {
    w: Workload,
    arrived: BTreeMap<CallId, Timestamp>,
    offered_at: BTreeMap<CallId, Timestamp>,
    connected_at: BTreeMap<CallId, Timestamp>,
    /// Agents logged in as the recording goes.
    logged_in: BTreeSet<AgentId>,
    /// Wrap-up end per agent in wrap-up (its Ready then comes from the timer).
    wrap_until: BTreeMap<AgentId, Timestamp>,
    ring: BTreeMap<AgentId, Mean>,
    ring_all: Mean,
    talk: BTreeMap<QueueId, Mean>,
    talk_all: Mean,
}

impl Workload {
    /// Extracts the workload from records in log order.
    pub fn from_journal(records: &[EventRecord]) -> Workload {
        let mut x = Extractor::default();
        if let (Some(first), Some(last)) = (records.first(), records.last()) {
            x.w.start = first.at;
            x.w.end = last.at;
        }
        for rec in records {
            x.record(rec);
        }
        x.finish()
    }
}

impl Extractor {
    fn input(&mut self, at: Timestamp, command: Command) {
        self.w.inputs.push(Input { at, command });
    }

    fn facts(&mut self, call: &CallId) -> &mut CallFacts {
        self.w.calls.entry(call.clone()).or_default()
    }

    /// An agent seen at work without a login in the recording (logged in before it
    /// starts) is logged in (and made Ready when `ready`) at that moment.
    fn ensure_logged_in(
        &mut self,
        at: Timestamp,
        agent: &AgentId,
        ext: Option<&Extension>,
        ready: bool,
    ) {
        self.w.agents.insert(agent.clone());
        if self.logged_in.insert(agent.clone()) {
            let extension = ext
                .cloned()
                .unwrap_or_else(|| Extension(format!("whatif-{agent}")));
            self.w.extensions.insert(extension.clone());
            self.input(
                at,
                Command::AgentLogin {
                    agent: agent.clone(),
                    extension,
                },
            );
            if ready {
                self.input(
                    at,
                    Command::AgentReady {
                        agent: agent.clone(),
                    },
                );
            }
        }
    }

    fn record(&mut self, rec: &EventRecord) {
        let at = rec.at;
        match &rec.event {
            Event::CallQueued {
                call,
                queue,
                priority,
                caller,
                skills,
                ..
            } => {
                if self.arrived.contains_key(call) {
                    return;
                }
                self.arrived.insert(call.clone(), at);
                self.w.arrival_queue.insert(call.clone(), queue.clone());
                self.facts(call);
                self.input(
                    at,
                    Command::Enqueue {
                        call: call.clone(),
                        queue: queue.clone(),
                        priority: *priority,
                        caller: caller.clone(),
                        skills: skills.clone(),
                    },
                );
            }
            Event::CallOffered {
                call,
                agent,
                extension,
                ..
            } => {
                self.ensure_logged_in(at, agent, Some(extension), true);
                self.offered_at.insert(call.clone(), at);
            }
            Event::CallConnected { call, agent } => self.connected(at, call, agent),
            Event::CallEnded {
                call,
                agent,
                wrap_up_until,
                ..
            } => {
                self.ended(at, call);
                self.wrap_until.insert(agent.clone(), *wrap_up_until);
            }
            Event::CallTransferred {
                call,
                from_agent,
                wrap_up_until,
                ..
            } => {
                self.ended(at, call);
                self.wrap_until.insert(from_agent.clone(), *wrap_up_until);
            }
            Event::CallAbandoned { call, .. } if !self.connected_at.contains_key(call) => {
                if let Some(arrived) = self.arrived.get(call).copied() {
                    self.facts(call).patience_ms = Some(at.ms_since(arrived));
                }
            }
            Event::AgentLoggedIn { agent, extension } => {
                self.w.agents.insert(agent.clone());
                self.w.extensions.insert(extension.clone());
                self.logged_in.insert(agent.clone());
                self.wrap_until.remove(agent);
                let cmd = Command::AgentLogin {
                    agent: agent.clone(),
                    extension: extension.clone(),
                };
                self.input(at, cmd);
            }
            Event::AgentLoggedOut { agent } => {
                self.logged_in.remove(agent);
                self.input(
                    at,
                    Command::AgentLogout {
                        agent: agent.clone(),
                    },
                );
            }
            Event::AgentStateChanged {
                agent,
                state,
                reason,
            } => self.state_changed(at, agent, state, reason.as_deref()),
            Event::CallbackRequested { call, record } => {
                let record: CallbackRecord = record.clone();
                self.input(
                    at,
                    Command::RequestCallback {
                        call: call.clone(),
                        record,
                    },
                );
            }
            _ => {}
        }
    }

    fn connected(&mut self, at: Timestamp, call: &CallId, agent: &AgentId) {
        self.connected_at.insert(call.clone(), at);
        if let Some(offered) = self.offered_at.get(call).copied() {
            let ring = at.ms_since(offered);
            self.facts(call).ring_ms = Some(ring);
            self.ring.entry(agent.clone()).or_default().add(ring);
            self.ring_all.add(ring);
        }
    }

    fn ended(&mut self, at: Timestamp, call: &CallId) {
        let Some(connected) = self.connected_at.get(call).copied() else {
            return;
        };
        let facts = self.facts(call);
        if facts.talk_ms.is_some() {
            return; // a transferred call's later legs are not replayed
        }
        let talk = at.ms_since(connected);
        facts.talk_ms = Some(talk);
        if let Some(q) = self.w.arrival_queue.get(call).cloned() {
            self.talk.entry(q).or_default().add(talk);
        }
        self.talk_all.add(talk);
    }

    fn state_changed(
        &mut self,
        at: Timestamp,
        agent: &AgentId,
        state: &AgentState,
        reason: Option<&str>,
    ) {
        let wrap = self.wrap_until.remove(agent);
        match state {
            AgentState::Ready => {
                // Wrap-up ending on its own is the configuration's doing, not the agent's.
                if wrap.is_some_and(|until| at >= until) {
                    return;
                }
                self.ensure_logged_in(at, agent, None, false);
                self.input(
                    at,
                    Command::AgentReady {
                        agent: agent.clone(),
                    },
                );
            }
            AgentState::NotReady if reason != Some(RONA_REASON) => {
                self.ensure_logged_in(at, agent, None, false);
                let reason = reason.unwrap_or_default().to_string();
                self.input(
                    at,
                    Command::AgentNotReady {
                        agent: agent.clone(),
                        reason,
                    },
                );
            }
            _ => {}
        }
    }

    fn finish(mut self) -> Workload {
        self.w.agent_ring_ms = self
            .ring
            .iter()
            .filter_map(|(a, m)| Some((a.clone(), m.get()?)))
            .collect();
        self.w.mean_ring_ms = self.ring_all.get().unwrap_or(0);
        self.w.queue_talk_ms = self
            .talk
            .iter()
            .filter_map(|(q, m)| Some((q.clone(), m.get()?)))
            .collect();
        self.w.mean_talk_ms = self.talk_all.get().unwrap_or(DEFAULT_TALK_MS);
        // Stable: equal times keep log order.
        self.w.inputs.sort_by_key(|i| i.at);
        self.w
    }
}

/// Figures of one queue (or of all: [`Report::total`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct QueueStats {
    /// Calls that entered the queue (arrivals, and overflows from other queues).
    pub offered: u64,
    pub answered: u64,
    pub abandoned: u64,
    /// Left after the queue's max wait with no overflow action.
    pub timed_out: u64,
    /// Moved on by an overflow action (another queue, a URI, a message, …).
    pub overflowed: u64,
    /// Still waiting when the replay ran out of inputs.
    pub unserved: u64,
    /// `abandoned / offered`, in %.
    pub abandon_pct: f64,
    /// Answered within the queue's target ÷ (answered + abandoned), in %.
    pub service_level_pct: f64,
    /// Average wait of answered calls (since arrival).
    pub asa_ms: u64,
    /// Average and longest wait of every call that left the queue.
    pub avg_wait_ms: u64,
    pub max_wait_ms: u64,
    #[serde(skip)]
    acc: WaitAcc,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct WaitAcc {
    within_target: u64,
    answered_wait: Mean2,
    all_wait: Mean2,
}

/// [`Mean`] with equality, for the report's derived `PartialEq`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Mean2 {
    sum: u64,
    n: u64,
}

impl Mean2 {
    fn add(&mut self, v: u64) {
        self.sum = self.sum.saturating_add(v);
        self.n += 1;
    }
    fn get(self) -> u64 {
        self.sum.checked_div(self.n).unwrap_or(0)
    }
    fn merge(&mut self, o: Mean2) {
        self.sum = self.sum.saturating_add(o.sum);
        self.n += o.n;
    }
}

/// `part / whole` in %, to 0.1, 0 for an empty whole.
fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    (part as f64 * 1000.0 / whole as f64).round() / 10.0
}

impl QueueStats {
    fn left(&mut self, wait: u64) {
        self.acc.all_wait.add(wait);
        self.max_wait_ms = self.max_wait_ms.max(wait);
    }

    fn finish(&mut self) {
        self.abandon_pct = pct(self.abandoned, self.offered);
        self.service_level_pct = pct(self.acc.within_target, self.answered + self.abandoned);
        self.asa_ms = self.acc.answered_wait.get();
        self.avg_wait_ms = self.acc.all_wait.get();
    }

    fn add(&mut self, o: &QueueStats) {
        self.answered += o.answered;
        self.abandoned += o.abandoned;
        self.timed_out += o.timed_out;
        self.unserved += o.unserved;
        self.max_wait_ms = self.max_wait_ms.max(o.max_wait_ms);
        self.acc.within_target += o.acc.within_target;
        self.acc.answered_wait.merge(o.acc.answered_wait);
        self.acc.all_wait.merge(o.acc.all_wait);
    }
}

/// Figures of one agent.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentStats {
    /// Calls connected.
    pub calls: u64,
    pub talk_ms: u64,
    pub logged_in_ms: u64,
    /// Time reserved, talking or in wrap-up ÷ time logged in, in %.
    pub occupancy_pct: f64,
    #[serde(skip)]
    busy_ms: u64,
}

/// The outcome of one configuration on a workload.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub queues: BTreeMap<QueueId, QueueStats>,
    /// Over every queue: `offered` counts arrivals once, `overflowed` only calls
    /// that left the centre (not those moved to another queue).
    pub total: QueueStats,
    pub agents: BTreeMap<AgentId, AgentStats>,
    /// Recorded inputs the core refused under this configuration (an agent or
    /// queue it does not have, …), by command kind.
    pub refused: BTreeMap<String, u64>,
    /// The drive loop hit its bound (a bug in the core or the replay).
    pub truncated: bool,
}

/// Baseline and new configuration on the same workload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WhatIf {
    pub baseline: Report,
    pub new: Report,
}

/// Replays `journal` under both configurations.
pub fn replay(baseline: &RoutingConfig, new: &RoutingConfig, journal: &[EventRecord]) -> WhatIf {
    let w = Workload::from_journal(journal);
    let base_agents: BTreeSet<&AgentId> = baseline.agents.iter().map(|a| &a.id).collect();
    let extra: Vec<AgentId> = new
        .agents
        .iter()
        .map(|a| &a.id)
        .filter(|a| !base_agents.contains(a) && !w.agents.contains(*a))
        .cloned()
        .collect();
    WhatIf {
        baseline: simulate(baseline, &w, &[]),
        new: simulate(new, &w, &extra),
    }
}

/// What the replay does at a point in time besides the recorded inputs.
#[derive(Clone, Debug)]
enum Action {
    Input(Command),
    Answer { call: CallId, agent: AgentId },
    CallbackAnswered { call: CallId, agent: AgentId },
    HangUp { call: CallId, agent: AgentId },
    Abandon { call: CallId },
}

/// Runs `config` on the workload; `extra_agents` work the whole span.
pub fn simulate(config: &RoutingConfig, w: &Workload, extra_agents: &[AgentId]) -> Report {
    let mut sim = Sim {
        core: Core::new(config.clone(), Term(1)),
        config,
        w,
        actions: BTreeMap::new(),
        next_seq: 0,
        now: w.start,
        report: Report::default(),
        call_queue: BTreeMap::new(),
        arrived: BTreeMap::new(),
        agents: BTreeMap::new(),
        pending: BTreeMap::new(),
    };
    sim.add_extra_agents(extra_agents);
    for input in &w.inputs {
        sim.schedule(input.at, Action::Input(input.command.clone()));
    }
    sim.run();
    sim.finish()
}

/// Per-agent time accounting.
#[derive(Clone, Debug)]
struct AgentClock {
    state: AgentState,
    since: Timestamp,
}

struct Sim<'a> {
    core: Core,
    config: &'a RoutingConfig,
    w: &'a Workload,
    /// Pending actions by (time, insertion order).
    actions: BTreeMap<(Timestamp, u64), Action>,
    next_seq: u64,
    now: Timestamp,
    report: Report,
    call_queue: BTreeMap<CallId, QueueId>,
    arrived: BTreeMap<CallId, Timestamp>,
    agents: BTreeMap<AgentId, AgentClock>,
    /// Agent commands refused while busy, carried out once free.
    pending: BTreeMap<AgentId, Command>,
}

impl Sim<'_> {
    fn schedule(&mut self, at: Timestamp, action: Action) {
        self.actions.insert((at, self.next_seq), action);
        self.next_seq += 1;
    }

    fn add_extra_agents(&mut self, extra: &[AgentId]) {
        let mut free = self
            .config
            .extensions
            .iter()
            .filter(|e| !self.w.extensions.contains(*e));
        for agent in extra {
            let extension = free
                .next()
                .cloned()
                .unwrap_or_else(|| Extension(format!("whatif-{agent}")));
            let login = Command::AgentLogin {
                agent: agent.clone(),
                extension,
            };
            self.schedule(self.w.start, Action::Input(login));
            let ready = Command::AgentReady {
                agent: agent.clone(),
            };
            self.schedule(self.w.start, Action::Input(ready));
        }
    }

    /// The drive loop: the next action or the core's next deadline, whichever is
    /// first, bounded in steps.
    fn run(&mut self) {
        let limit = 64 * (self.w.inputs.len() as u64 + 16) + 100_000;
        // A deadline that fired and changed nothing is skipped until the next input.
        let mut spent: Option<Timestamp> = None;
        for _ in 0..limit {
            let next_action = self.actions.first_key_value().map(|((t, _), _)| *t);
            let deadline = self.core.next_deadline().filter(|d| Some(*d) != spent);
            match (next_action, deadline) {
                (None, None) => return,
                (a, Some(d)) if a.is_none_or(|a| d <= a) => {
                    self.now = self.now.max(d);
                    let recs = self.core.handle_timeout(self.now);
                    spent = recs.is_empty().then_some(d);
                    self.observe(&recs);
                }
                _ => {
                    spent = None;
                    if let Some(((at, _), action)) = self.actions.pop_first() {
                        self.now = self.now.max(at);
                        self.act(action);
                    }
                }
            }
        }
        self.report.truncated = true;
    }

    fn act(&mut self, action: Action) {
        match action {
            Action::Input(cmd) => self.input(cmd),
            Action::Answer { call, agent } => {
                if self.offered_to(&call, &agent) {
                    self.command(Command::AgentAnswered { call, agent: None });
                }
            }
            Action::CallbackAnswered { call, agent } => {
                if self.offered_to(&call, &agent) {
                    let outcome = CallbackOutcome::Answered;
                    if self.command(Command::CallbackResult {
                        call: call.clone(),
                        outcome,
                    }) {
                        let ring = self.ring_ms(&call, &agent);
                        self.schedule(self.now.plus_ms(ring), Action::Answer { call, agent });
                    }
                }
            }
            Action::HangUp { call, agent } => {
                let on_call = self.core.call(&call).is_some_and(
                    |c| matches!(&c.phase, CallPhase::Connected { agent: a, .. } if *a == agent),
                );
                if on_call {
                    self.command(Command::CallEnded {
                        call,
                        by: EndReason::CallerHungUp,
                    });
                }
            }
            Action::Abandon { call } => {
                let waiting = self
                    .core
                    .call(&call)
                    .is_some_and(|c| !matches!(c.phase, CallPhase::Connected { .. }));
                if waiting {
                    self.command(Command::Abandon { call });
                }
            }
        }
    }

    fn offered_to(&self, call: &CallId, agent: &AgentId) -> bool {
        self.core
            .call(call)
            .is_some_and(|c| matches!(&c.phase, CallPhase::Offered { agent: a, .. } if a == agent))
    }

    /// A recorded input; an agent's break or logout refused while busy waits.
    fn input(&mut self, cmd: Command) {
        let agent = match &cmd {
            Command::AgentNotReady { agent, .. } | Command::AgentLogout { agent } => {
                Some(agent.clone())
            }
            _ => None,
        };
        match self.core.handle(cmd.clone(), self.now) {
            Ok(recs) => self.observe(&recs),
            Err(_) if agent.as_ref().is_some_and(|a| self.busy(a)) => {
                if let Some(a) = agent {
                    self.pending.insert(a, cmd);
                }
            }
            Err(_) => *self.report.refused.entry(kind(&cmd)).or_default() += 1,
        }
    }

    fn busy(&self, agent: &AgentId) -> bool {
        self.core.agent(agent).is_some_and(|a| {
            matches!(
                a.state,
                AgentState::Reserved { .. } | AgentState::OnCall { .. }
            )
        })
    }

    /// A reaction; refusals are counted (they mean the replay's bookkeeping and
    /// the core disagree).
    fn command(&mut self, cmd: Command) -> bool {
        match self.core.handle(cmd.clone(), self.now) {
            Ok(recs) => {
                self.observe(&recs);
                true
            }
            Err(_) => {
                *self.report.refused.entry(kind(&cmd)).or_default() += 1;
                false
            }
        }
    }

    fn ring_ms(&self, call: &CallId, agent: &AgentId) -> u64 {
        self.w
            .calls
            .get(call)
            .and_then(|f| f.ring_ms)
            .or_else(|| self.w.agent_ring_ms.get(agent).copied())
            .unwrap_or(self.w.mean_ring_ms)
    }

    fn talk_ms(&self, call: &CallId) -> u64 {
        self.w
            .calls
            .get(call)
            .and_then(|f| f.talk_ms)
            .or_else(|| {
                let q = self.w.arrival_queue.get(call)?;
                self.w.queue_talk_ms.get(q).copied()
            })
            .unwrap_or(self.w.mean_talk_ms)
    }

    fn observe(&mut self, recs: &[EventRecord]) {
        let mut touched = BTreeSet::new();
        for rec in recs {
            self.count(rec);
            self.react(rec);
            touched.extend(agents_of(&rec.event));
        }
        for agent in touched {
            self.clock(&agent);
        }
        self.release_pending();
    }

    /// Carries out agent commands that waited for the agent to be free.
    fn release_pending(&mut self) {
        let free: Vec<AgentId> = self
            .pending
            .keys()
            .filter(|a| !self.busy(a))
            .cloned()
            .collect();
        for agent in free {
            if let Some(cmd) = self.pending.remove(&agent) {
                self.input(cmd);
            }
        }
    }

    fn clock(&mut self, agent: &AgentId) {
        let Some(view) = self.core.agent(agent) else {
            return;
        };
        let now = self.now;
        let clock = self.agents.entry(agent.clone()).or_insert(AgentClock {
            state: AgentState::LoggedOut,
            since: now,
        });
        let elapsed = now.ms_since(clock.since);
        let stats = self.report.agents.entry(agent.clone()).or_default();
        account(stats, &clock.state, elapsed);
        clock.state = view.state;
        clock.since = now;
    }

    fn react(&mut self, rec: &EventRecord) {
        match &rec.event {
            Event::CallQueued { call, .. } if !self.arrived.contains_key(call) => {
                self.arrived.insert(call.clone(), rec.at);
                let patience = self.w.calls.get(call).and_then(|f| f.patience_ms);
                if let Some(p) = patience {
                    self.schedule(rec.at.plus_ms(p), Action::Abandon { call: call.clone() });
                }
            }
            Event::CallOffered {
                call, agent, dial, ..
            } => {
                let ring = self.ring_ms(call, agent);
                let (call, agent) = (call.clone(), agent.clone());
                let action = if dial.is_some() {
                    Action::CallbackAnswered { call, agent }
                } else {
                    Action::Answer { call, agent }
                };
                self.schedule(rec.at.plus_ms(ring), action);
            }
            Event::CallConnected { call, agent } => {
                let talk = self.talk_ms(call);
                let hang_up = Action::HangUp {
                    call: call.clone(),
                    agent: agent.clone(),
                };
                self.schedule(rec.at.plus_ms(talk), hang_up);
            }
            _ => {}
        }
    }

    fn wait_of(&self, call: &CallId, at: Timestamp) -> u64 {
        self.arrived.get(call).map_or(0, |t| at.ms_since(*t))
    }

    fn queue_stats(&mut self, q: &QueueId) -> &mut QueueStats {
        self.report.queues.entry(q.clone()).or_default()
    }

    /// Statistics from one record.
    fn count(&mut self, rec: &EventRecord) {
        let at = rec.at;
        match &rec.event {
            Event::CallQueued { call, queue, .. } => {
                if !self.arrived.contains_key(call) {
                    self.report.total.offered += 1;
                }
                self.call_queue.insert(call.clone(), queue.clone());
                self.queue_stats(queue).offered += 1;
            }
            Event::CallConnected { call, agent } => {
                let wait = self.wait_of(call, at);
                let Some(q) = self.call_queue.get(call).cloned() else {
                    return;
                };
                let target = self.target_ms(&q);
                let s = self.queue_stats(&q);
                s.answered += 1;
                s.acc.answered_wait.add(wait);
                s.acc.within_target += u64::from(wait <= target);
                s.left(wait);
                self.report.agents.entry(agent.clone()).or_default().calls += 1;
            }
            Event::CallAbandoned { call, queue, .. } => {
                let wait = self.wait_of(call, at);
                let q = self
                    .call_queue
                    .remove(call)
                    .unwrap_or_else(|| queue.clone());
                let s = self.queue_stats(&q);
                s.abandoned += 1;
                s.left(wait);
            }
            Event::CallTimedOut { call, queue, .. } => {
                let wait = self.wait_of(call, at);
                self.call_queue.remove(call);
                let s = self.queue_stats(queue);
                s.timed_out += 1;
                s.left(wait);
            }
            Event::CallOverflowed {
                call, from, action, ..
            } => {
                let wait = self.wait_of(call, at);
                let s = self.queue_stats(from);
                s.overflowed += 1;
                s.left(wait);
                match action {
                    OverflowAction::Queue(to) => {
                        self.call_queue.insert(call.clone(), to.clone());
                        self.queue_stats(to).offered += 1;
                    }
                    _ => {
                        self.call_queue.remove(call);
                        self.report.total.overflowed += 1;
                    }
                }
            }
            Event::CallEnded { call, .. } | Event::CallTransferred { call, .. } => {
                self.call_queue.remove(call);
            }
            _ => {}
        }
    }

    fn target_ms(&self, q: &QueueId) -> u64 {
        self.config
            .queues
            .iter()
            .find(|d| &d.id == q)
            .map_or(20_000, |d| d.service_level.within_ms)
    }

    fn finish(mut self) -> Report {
        let end = self.now.max(self.w.end);
        self.now = end;
        let agents: Vec<AgentId> = self.agents.keys().cloned().collect();
        for a in &agents {
            self.clock(a);
        }
        let unserved: Vec<QueueId> = self
            .call_queue
            .iter()
            .filter(|(c, _)| {
                self.core
                    .call(c)
                    .is_some_and(|v| !matches!(v.phase, CallPhase::Connected { .. }))
            })
            .map(|(_, q)| q.clone())
            .collect();
        for q in unserved {
            self.queue_stats(&q).unserved += 1;
        }
        let mut total = std::mem::take(&mut self.report.total);
        for s in self.report.queues.values_mut() {
            s.finish();
            total.add(s);
        }
        total.finish();
        self.report.total = total;
        for s in self.report.agents.values_mut() {
            s.occupancy_pct = pct(s.busy_ms, s.logged_in_ms);
        }
        self.report
    }
}

/// Adds `elapsed` ms spent in `state` to an agent's figures.
fn account(stats: &mut AgentStats, state: &AgentState, elapsed: u64) {
    if !state.is_logged_in() {
        return;
    }
    stats.logged_in_ms += elapsed;
    match state {
        AgentState::OnCall { .. } => {
            stats.talk_ms += elapsed;
            stats.busy_ms += elapsed;
        }
        AgentState::Reserved { .. } | AgentState::WrapUp { .. } => stats.busy_ms += elapsed,
        _ => {}
    }
}

/// The agents whose state an event may change.
fn agents_of(e: &Event) -> Vec<AgentId> {
    match e {
        Event::AgentLoggedIn { agent, .. }
        | Event::AgentStateChanged { agent, .. }
        | Event::AgentLoggedOut { agent }
        | Event::CallConnected { agent, .. }
        | Event::CallRequeued { agent, .. }
        | Event::CallEnded { agent, .. }
        | Event::OfferRejected { agent, .. }
        | Event::CallbackAttemptFailed { agent, .. }
        | Event::CallTransferred {
            from_agent: agent, ..
        } => vec![agent.clone()],
        Event::CallOffered {
            agent, ring_also, ..
        } => std::iter::once(agent.clone())
            .chain(ring_also.iter().map(|(a, _)| a.clone()))
            .collect(),
        Event::CallAbandoned {
            agent: Some(agent), ..
        } => vec![agent.clone()],
        _ => Vec::new(),
    }
}

/// The command's name, for the refused counts.
fn kind(cmd: &Command) -> String {
    serde_json::to_value(cmd)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_string))
        .unwrap_or_else(|| "unknown".to_string())
}

/// The configuration the journal itself records (its last `ConfigChanged`), if any.
pub fn journal_config(records: &[EventRecord]) -> Option<RoutingConfig> {
    records.iter().rev().find_map(|r| match &r.event {
        Event::ConfigChanged { config, .. } => Some(config.clone()),
        _ => None,
    })
}

#[cfg(test)]
#[path = "tests_whatif.rs"]
mod tests;
