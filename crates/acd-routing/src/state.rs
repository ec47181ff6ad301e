//! The run-time state and the one place that mutates it ([`State::apply_event`]).
//!
//! The leader and its followers both change state only through `apply_event`, so a
//! follower that applies the leader's records ends in the same state. The state is
//! plain data in ordered maps: its serialisation is canonical, which the snapshot and
//! [`crate::Core::state_digest`] rely on.

use crate::bindings::BindingRecord;
use crate::command::CallerInfo;
use crate::directory::Directory;
use crate::event::{AgentState, Event, RONA_REASON};
use crate::ids::{AgentId, CallId, Extension, QueueId, SkillId, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What changes about an agent while the core runs (the rest is in [`crate::AgentDef`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRuntime {
    pub state: AgentState,
    /// Where the agent sits while logged in.
    pub extension: Option<Extension>,
    /// Why they are NotReady (reason code), if they are.
    pub reason: Option<String>,
    /// When `state` last changed.
    pub since: Timestamp,
    /// When they last became Ready: the longest-idle strategy's key. Kept while Reserved
    /// so an offer withdrawn by an abandon does not cost the agent their place.
    pub idle_since: Option<Timestamp>,
    /// When the current session began (the least-occupied strategy's denominator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logged_in_at: Option<Timestamp>,
    /// Time spent reserved, on a call or in wrap-up this session, up to `since`
    /// (the least-occupied strategy's numerator).
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub busy_ms: u64,
    /// Calls answered this session (the fewest-calls strategy's key).
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub calls: u64,
}

impl AgentRuntime {
    pub(crate) fn logged_out() -> Self {
        AgentRuntime {
            state: AgentState::LoggedOut,
            extension: None,
            reason: None,
            since: Timestamp(0),
            idle_since: None,
            logged_in_at: None,
            busy_ms: 0,
            calls: 0,
        }
    }

    /// Moves to `state` at `at`, counting the time spent in a busy state (reserved,
    /// on a call, wrap-up) into `busy_ms`.
    pub(crate) fn enter(&mut self, state: AgentState, at: Timestamp) {
        if matches!(
            self.state,
            AgentState::Reserved { .. } | AgentState::OnCall { .. } | AgentState::WrapUp { .. }
        ) {
            self.busy_ms += at.ms_since(self.since);
        }
        self.state = state;
        self.since = at;
    }
}

fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

/// Where a call is in its life inside the distributor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CallPhase {
    /// In the queue, eligible for matching.
    Waiting,
    /// Offered to `agent`; requeued if not answered by `expires_at`.
    Offered {
        agent: AgentId,
        extension: Extension,
        expires_at: Timestamp,
        /// Ring-all: the other agents reserved for the call. The first of them (or
        /// `agent`) to answer takes it; the rest go back to Ready.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        ring_also: Vec<AgentId>,
    },
    /// Bridged to `agent` since `since`.
    Connected { agent: AgentId, since: Timestamp },
}

impl CallPhase {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            CallPhase::Waiting => "waiting",
            CallPhase::Offered { .. } => "offered",
            CallPhase::Connected { .. } => "connected",
        }
    }
}

/// A call known to the distributor (from enqueue until it ends or leaves).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRecord {
    pub queue: QueueId,
    pub priority: i32,
    pub caller: CallerInfo,
    pub enqueued_at: Timestamp,
    /// Order of arrival, the last tie-breaker between calls enqueued in the same
    /// millisecond. Kept across a requeue so the call keeps its place.
    pub arrival: u64,
    pub phase: CallPhase,
    /// Skills the call needs beyond the queue's (the matcher checks them per agent).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub skills: BTreeMap<SkillId, u8>,
    /// The queue's relaxation step in force (0: none yet; see [`CallRecord::requirement`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub relax_step: u32,
    /// Agents who rejected the call; it is not offered to them again.
    #[serde(default, skip_serializing_if = "std::collections::BTreeSet::is_empty")]
    pub declined: std::collections::BTreeSet<AgentId>,
    /// Transferred to one agent: only they may be offered the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_agent: Option<AgentId>,
    /// A callback (virtual hold): dial this customer when the call's turn comes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback: Option<CallbackCall>,
    /// Not offered before this instant (a callback between attempts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<Timestamp>,
    /// Overflow moves so far; past [`crate::overflow::MAX_HOPS`] the call times out
    /// instead, so queues overflowing into each other cannot loop.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub overflow_hops: u32,
}

/// The callback part of a waiting call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackCall {
    pub number: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// The voicemail the caller left, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voicemail: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl CallRecord {
    /// What an agent must have for this call now: the expression of the relaxation
    /// step in force if it sets one (the IVR's extra skills are dropped then), else
    /// the queue's expression plus the call's extra skills; and the priority boost
    /// of the steps reached so far.
    pub fn requirement<'a>(
        &'a self,
        queue: &'a crate::config::QueueDef,
    ) -> (
        &'a crate::expr::SkillExpr,
        Option<&'a BTreeMap<SkillId, u8>>,
        i32,
    ) {
        let reached = queue.relax.iter().take(self.relax_step as usize);
        let boost = reached.clone().map(|s| s.priority_boost).sum();
        match reached.filter_map(|s| s.skills.as_ref()).next_back() {
            Some(expr) => (expr, None, boost),
            None => (
                &queue.skills,
                (!self.skills.is_empty()).then_some(&self.skills),
                boost,
            ),
        }
    }

    /// Sort key of a waiting call: priority desc, then oldest, then first to arrive.
    pub(crate) fn rank(&self) -> (std::cmp::Reverse<i32>, Timestamp, u64) {
        (
            std::cmp::Reverse(self.priority),
            self.enqueued_at,
            self.arrival,
        )
    }
}

/// Per-queue counters since the distributor's state began.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueCounters {
    /// Calls that entered the queue (the reporting sense of "offered"), not offers to agents.
    pub offered: u64,
    /// Calls connected to an agent.
    pub answered: u64,
    /// Calls whose caller hung up before being connected.
    pub abandoned: u64,
    /// Calls removed after waiting longer than the queue's `max_wait_ms`.
    pub timed_out: u64,
    /// Calls that left by an overflow action (any reason). The new fields are left
    /// out while zero, so snapshots and digests of older builds still match.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub overflowed: u64,
    /// Of `answered`, those connected within the queue's `service_level.within_ms`
    /// of `enqueued_at` (kept across overflow and transfer).
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub answered_in_sl: u64,
    /// Callbacks given up after their last failed attempt.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub callbacks_failed: u64,
}

/// Everything that changes at run time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub agents: BTreeMap<AgentId, AgentRuntime>,
    pub calls: BTreeMap<CallId, CallRecord>,
    pub counters: BTreeMap<QueueId, QueueCounters>,
    /// Next value for [`CallRecord::arrival`].
    pub next_arrival: u64,
    /// Registered phones by extension. Left out of the serialisation while empty,
    /// so the digest of a site without them matches older builds.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub bindings: BTreeMap<Extension, BindingRecord>,
    /// Pending callbacks by inbound call (left out while empty, as `bindings`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub callbacks: BTreeMap<CallId, crate::callbacks::CallbackRecord>,
    /// Per queue, the agent offered its last call (the round-robin strategy's cursor).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub last_offered: BTreeMap<QueueId, AgentId>,
}

fn bad(reason: impl Into<String>) -> String {
    reason.into()
}

impl State {
    pub(crate) fn new(dir: &Directory) -> Self {
        State {
            agents: dir
                .agents
                .keys()
                .map(|id| (id.clone(), AgentRuntime::logged_out()))
                .collect(),
            calls: BTreeMap::new(),
            counters: dir
                .queues
                .keys()
                .map(|id| (id.clone(), QueueCounters::default()))
                .collect(),
            next_arrival: 0,
            bindings: BTreeMap::new(),
            callbacks: BTreeMap::new(),
            last_offered: BTreeMap::new(),
        }
    }

    /// The agent logged in at `extension`, if any.
    pub(crate) fn agent_at(&self, extension: &Extension) -> Option<&AgentId> {
        self.agents
            .iter()
            .find(|(_, a)| a.extension.as_ref() == Some(extension))
            .map(|(id, _)| id)
    }

    /// Applies one event at time `at`. Checks everything before changing anything, so an
    /// `Err` (text describing the mismatch) leaves the state untouched.
    pub(crate) fn apply_event(&mut self, at: Timestamp, event: &Event) -> Result<(), String> {
        match event {
            Event::AgentLoggedIn { agent, extension } => {
                let a = self
                    .agents
                    .get(agent)
                    .ok_or_else(|| bad(format!("unknown agent {agent}")))?;
                if a.state.is_logged_in() {
                    return Err(bad(format!("agent {agent} already logged in")));
                }
                if let Some(other) = self.agent_at(extension) {
                    return Err(bad(format!("extension {extension} used by {other}")));
                }
                let a = self.agent_mut(agent)?;
                a.state = AgentState::NotReady;
                a.extension = Some(extension.clone());
                a.reason = None;
                a.since = at;
                a.idle_since = None;
                a.logged_in_at = Some(at);
                a.busy_ms = 0;
                a.calls = 0;
            }
            Event::AgentStateChanged {
                agent,
                state,
                reason,
            } => {
                if !matches!(
                    state,
                    AgentState::NotReady | AgentState::Ready | AgentState::WrapUp { .. }
                ) {
                    return Err(bad(format!(
                        "state change of {agent} to {state:?} needs a call event"
                    )));
                }
                let a = self.agent_mut(agent)?;
                if !a.state.is_logged_in() || a.state.call().is_some() {
                    return Err(bad(format!(
                        "agent {agent} cannot change state from {:?}",
                        a.state
                    )));
                }
                if *state == AgentState::Ready {
                    a.idle_since = Some(at);
                }
                a.enter(state.clone(), at);
                a.reason = reason.clone();
            }
            Event::AgentLoggedOut { agent } => {
                let a = self.agent_mut(agent)?;
                if !a.state.is_logged_in() || a.state.call().is_some() {
                    return Err(bad(format!(
                        "agent {agent} cannot log out from {:?}",
                        a.state
                    )));
                }
                *a = AgentRuntime {
                    since: at,
                    ..AgentRuntime::logged_out()
                };
            }
            Event::CallQueued {
                call,
                queue,
                priority,
                caller,
                enqueued_at,
                skills,
            } => {
                if self.calls.contains_key(call) {
                    return Err(bad(format!("call {call} already exists")));
                }
                let counters = self
                    .counters
                    .get_mut(queue)
                    .ok_or_else(|| bad(format!("unknown queue {queue}")))?;
                counters.offered += 1;
                self.calls.insert(
                    call.clone(),
                    CallRecord {
                        queue: queue.clone(),
                        priority: *priority,
                        caller: caller.clone(),
                        enqueued_at: *enqueued_at,
                        arrival: self.next_arrival,
                        phase: CallPhase::Waiting,
                        skills: skills.clone(),
                        relax_step: 0,
                        declined: Default::default(),
                        for_agent: None,
                        callback: None,
                        not_before: None,
                        overflow_hops: 0,
                    },
                );
                self.next_arrival += 1;
            }
            Event::CallOffered {
                call,
                agent,
                extension,
                queue,
                expires_at,
                ring_also,
                ..
            } => {
                let c = self.call_ref(call)?;
                if c.phase != CallPhase::Waiting {
                    return Err(bad(format!(
                        "call {call} is {}, not waiting",
                        c.phase.name()
                    )));
                }
                let ringing: Vec<&AgentId> = std::iter::once(agent)
                    .chain(ring_also.iter().map(|(id, _)| id))
                    .collect();
                self.check_all_ready(&ringing)?;
                for id in ringing {
                    let a = self.agent_mut(id)?;
                    a.enter(AgentState::Reserved { call: call.clone() }, at);
                    a.reason = None;
                }
                self.call_mut(call)?.phase = CallPhase::Offered {
                    agent: agent.clone(),
                    extension: extension.clone(),
                    expires_at: *expires_at,
                    ring_also: ring_also.iter().map(|(id, _)| id.clone()).collect(),
                };
                self.last_offered.insert(queue.clone(), agent.clone());
            }
            Event::CallConnected { call, agent } => {
                let others = self.check_answered_by(call, agent)?;
                self.check_counted(call)?;
                self.release_ringing(call, &others, at)?;
                let a = self.agent_mut(agent)?;
                a.enter(AgentState::OnCall { call: call.clone() }, at);
                a.calls += 1;
                let c = self.call_mut(call)?;
                c.phase = CallPhase::Connected {
                    agent: agent.clone(),
                    since: at,
                };
                let queue = c.queue.clone();
                self.counter_mut(&queue)?.answered += 1;
            }
            Event::CallRequeued { call, agent, .. } => {
                self.check_offered_to(call, agent)?;
                let others = self.ring_also_of(call);
                self.release_ringing(call, &others, at)?;
                let a = self.agent_mut(agent)?;
                a.enter(AgentState::NotReady, at);
                a.reason = Some(RONA_REASON.to_owned());
                self.call_mut(call)?.phase = CallPhase::Waiting;
            }
            Event::CallAbandoned { call, agent, .. } => {
                let c = self.call_ref(call)?;
                let reserved = match &c.phase {
                    CallPhase::Waiting => None,
                    CallPhase::Offered { agent, .. } => Some(agent.clone()),
                    CallPhase::Connected { .. } => {
                        return Err(bad(format!(
                            "call {call} is connected, cannot be abandoned"
                        )))
                    }
                };
                if reserved != *agent {
                    return Err(bad(format!(
                        "call {call} is reserved for {reserved:?}, record says {agent:?}"
                    )));
                }
                let queue = c.queue.clone();
                self.check_counted(call)?;
                if let Some(agent) = &reserved {
                    let mut ringing = self.ring_also_of(call);
                    ringing.push(agent.clone());
                    // Back to Ready with the idle time they had: the withdrawn offer
                    // was not a call handled.
                    self.release_ringing(call, &ringing, at)?;
                }
                self.counter_mut(&queue)?.abandoned += 1;
                self.calls.remove(call);
            }
            Event::CallTimedOut { call, .. } => {
                let c = self.call_ref(call)?;
                if c.phase != CallPhase::Waiting {
                    return Err(bad(format!(
                        "call {call} is {}, not waiting",
                        c.phase.name()
                    )));
                }
                let queue = c.queue.clone();
                self.counter_mut(&queue)?.timed_out += 1;
                self.calls.remove(call);
            }
            Event::CallEnded {
                call,
                agent,
                wrap_up_until,
                ..
            } => {
                let c = self.call_ref(call)?;
                match &c.phase {
                    CallPhase::Connected { agent: a, .. } if a == agent => {}
                    other => {
                        return Err(bad(format!(
                            "call {call} is {}, not connected to {agent}",
                            other.name()
                        )))
                    }
                }
                let a = self.agent_mut(agent)?;
                if a.state != (AgentState::OnCall { call: call.clone() }) {
                    return Err(bad(format!("agent {agent} is not on {call}")));
                }
                a.enter(
                    AgentState::WrapUp {
                        until: *wrap_up_until,
                    },
                    at,
                );
                a.reason = None;
                self.calls.remove(call);
            }
            Event::BindingChanged { extension, binding } => {
                crate::bindings::apply(self, extension, binding)?;
            }
            Event::CallbackRequested { call, record } => {
                crate::callbacks::apply(self, at, call, record)?;
            }
            Event::CallRelaxed { call, step } => crate::relax::apply(self, call, *step)?,
            Event::CallOverflowed {
                call, from, action, ..
            } => crate::overflow::apply(self, at, call, from, action)?,
            Event::CallTransferred {
                call,
                from_agent,
                target,
                wrap_up_until,
            } => {
                crate::transfer::apply_transfer(self, at, call, from_agent, target, *wrap_up_until)?
            }
            Event::OfferRejected { call, agent } => {
                crate::transfer::apply_reject(self, at, call, agent)?;
            }
            Event::CallbackAttemptFailed {
                call,
                agent,
                retry_at,
                ..
            } => crate::callbacks::apply_attempt_failed(self, at, call, agent, *retry_at)?,
            Event::CallbackRetryDue { call } => crate::callbacks::apply_retry_due(self, at, call)?,
            Event::ConfigChanged { config, .. } => crate::reconfig::apply(self, config)?,
            Event::CallNoted { .. } => {}
        }
        // A callback call that connected or left takes its pending entry with it.
        if let Some(call) = crate::callbacks::call_of(event) {
            crate::callbacks::settle_entry(self, call);
        }
        Ok(())
    }

    /// Every agent in `ids` is Ready, and none is listed twice.
    fn check_all_ready(&self, ids: &[&AgentId]) -> Result<(), String> {
        for (i, id) in ids.iter().enumerate() {
            let a = self
                .agents
                .get(*id)
                .ok_or_else(|| bad(format!("unknown agent {id}")))?;
            if a.state != AgentState::Ready {
                return Err(bad(format!("agent {id} is {:?}, not ready", a.state)));
            }
            if ids[..i].contains(id) {
                return Err(bad(format!("agent {id} offered the call twice")));
            }
        }
        Ok(())
    }

    /// The ring-all agents reserved for `call` besides the one it was offered to.
    pub(crate) fn ring_also_of(&self, call: &CallId) -> Vec<AgentId> {
        match self.calls.get(call).map(|c| &c.phase) {
            Some(CallPhase::Offered { ring_also, .. }) => ring_also.clone(),
            _ => Vec::new(),
        }
    }

    /// `agent` may answer `call` (the agent offered it, or one rung with them);
    /// returns the other agents reserved for it, who are released on the answer.
    fn check_answered_by(&self, call: &CallId, agent: &AgentId) -> Result<Vec<AgentId>, String> {
        let CallPhase::Offered {
            agent: first,
            ring_also,
            ..
        } = &self.call_ref(call)?.phase
        else {
            return Err(bad(format!("call {call} is not offered to {agent}")));
        };
        let ringing: Vec<AgentId> = std::iter::once(first).chain(ring_also).cloned().collect();
        if !ringing.contains(agent) {
            return Err(bad(format!("call {call} is not offered to {agent}")));
        }
        for id in &ringing {
            let a = self
                .agents
                .get(id)
                .ok_or_else(|| bad(format!("unknown agent {id}")))?;
            if a.state != (AgentState::Reserved { call: call.clone() }) {
                return Err(bad(format!("agent {id} is not reserved for {call}")));
            }
        }
        Ok(ringing.into_iter().filter(|id| id != agent).collect())
    }

    /// Returns agents reserved for `call` to Ready, keeping their idle time (a
    /// withdrawn or lost ring is not a call handled). Checks all before changing any.
    fn release_ringing(
        &mut self,
        call: &CallId,
        ids: &[AgentId],
        at: Timestamp,
    ) -> Result<(), String> {
        let reserved = AgentState::Reserved { call: call.clone() };
        for id in ids {
            let a = self
                .agents
                .get(id)
                .ok_or_else(|| bad(format!("unknown agent {id}")))?;
            if a.state != reserved {
                return Err(bad(format!("agent {id} is not reserved for {call}")));
            }
        }
        for id in ids {
            self.agent_mut(id)?.enter(AgentState::Ready, at);
        }
        Ok(())
    }

    pub(crate) fn check_offered_to(&self, call: &CallId, agent: &AgentId) -> Result<(), String> {
        match &self.call_ref(call)?.phase {
            CallPhase::Offered { agent: a, .. } if a == agent => {}
            other => {
                return Err(bad(format!(
                    "call {call} is {}, not offered to {agent}",
                    other.name()
                )))
            }
        }
        let a = self
            .agents
            .get(agent)
            .ok_or_else(|| bad(format!("unknown agent {agent}")))?;
        if a.state != (AgentState::Reserved { call: call.clone() }) {
            return Err(bad(format!("agent {agent} is not reserved for {call}")));
        }
        Ok(())
    }

    /// Counters exist for the call's queue (checked before mutating, so that updating
    /// them last cannot fail half-way).
    pub(crate) fn check_counted(&self, call: &CallId) -> Result<(), String> {
        let queue = &self.call_ref(call)?.queue;
        if self.counters.contains_key(queue) {
            Ok(())
        } else {
            Err(bad(format!("unknown queue {queue}")))
        }
    }

    pub(crate) fn call_ref(&self, call: &CallId) -> Result<&CallRecord, String> {
        self.calls
            .get(call)
            .ok_or_else(|| bad(format!("unknown call {call}")))
    }

    pub(crate) fn call_mut(&mut self, call: &CallId) -> Result<&mut CallRecord, String> {
        self.calls
            .get_mut(call)
            .ok_or_else(|| bad(format!("unknown call {call}")))
    }

    pub(crate) fn agent_mut(&mut self, agent: &AgentId) -> Result<&mut AgentRuntime, String> {
        self.agents
            .get_mut(agent)
            .ok_or_else(|| bad(format!("unknown agent {agent}")))
    }

    pub(crate) fn counter_mut(&mut self, queue: &QueueId) -> Result<&mut QueueCounters, String> {
        self.counters
            .get_mut(queue)
            .ok_or_else(|| bad(format!("unknown queue {queue}")))
    }
}
