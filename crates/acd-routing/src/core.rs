//! [`Core`]: decides, records and applies.

use crate::bindings::BindingRecord;
use crate::command::Command;
use crate::config::RoutingConfig;
use crate::digest::Fnv1a;
use crate::directory::Directory;
use crate::error::{ApplyError, CommandError, SnapshotError};
use crate::event::{AgentState, Event, EventRecord};
use crate::ids::{AgentId, CallId, Extension, Seq, Term, Timestamp};
use crate::index::{self, RoutingIndex};
use crate::matcher::{self, Pass};
use crate::origin::{AppliedOrigins, Origin};
use crate::state::{AgentRuntime, CallPhase, CallRecord, QueueCounters, State};
use crate::timer::{self, Timer};
use crate::view::{AgentView, CallView, QueueView};
use serde::{Deserialize, Serialize};

/// Snapshot layout version written by this build; readers accept this and older.
/// 2: agents carry session statistics (`logged_in_at`, `busy_ms`, `calls`), the state
/// the round-robin cursor (`last_offered`), a ring-all offer its other agents.
pub const SNAPSHOT_FORMAT_VERSION: u32 = 2;

/// Requeue reason used when the edge reports nothing within the offer timeout.
pub const OFFER_TIMEOUT_REASON: &str = "no answer";

/// A full copy of the core's run-time state at `last_seq`, for a joining standby or a
/// restart. The configuration is included once changed at run time (version > 0);
/// before that it comes from the config file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub format_version: u32,
    pub term: Term,
    pub last_seq: Seq,
    pub state: State,
    /// Highest edge message applied per edge (exactly-once across fail-overs).
    #[serde(default, skip_serializing_if = "AppliedOrigins::is_empty")]
    pub origins: AppliedOrigins,
    /// The configuration in force, when it differs from the file's (version > 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<RoutingConfig>,
    /// Its version: 0 for the file's, then one more per `ConfigChanged`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub config_version: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The distributor's deterministic routing state machine.
///
/// Leader: [`Core::handle`] and [`Core::handle_timeout`] decide events and apply them.
/// Follower: [`Core::apply`] the leader's records in order. Both paths run the same
/// mutation code, so equal record streams give equal states ([`Core::state_digest`]).
#[derive(Clone, Debug)]
pub struct Core {
    dir: Directory,
    state: State,
    term: Term,
    last_seq: Seq,
    origins: AppliedOrigins,
    /// The configuration `dir` was built from, and its version (see `reconfig`).
    config: RoutingConfig,
    config_version: u64,
    /// Derived from `dir` and `state` (see `index`); not part of snapshots or digests.
    index: RoutingIndex,
}

/// The passes [`Core::handle_timeout`] makes before giving up: each pass only fires
/// timers that are due, and firing cannot create new due timers more than a couple of
/// times over (offer expiry → waiting → max wait), so hitting this means a bug.
const MAX_TIMER_PASSES: usize = 16;

impl Core {
    /// A core with every configured agent logged out and no calls, at `term`.
    pub fn new(config: RoutingConfig, term: Term) -> Self {
        let dir = Directory::new(config.clone());
        let state = State::new(&dir);
        let index = RoutingIndex::build(&dir, &state);
        Core {
            dir,
            state,
            term,
            last_seq: Seq(0),
            origins: AppliedOrigins::default(),
            config,
            config_version: 0,
            index,
        }
    }

    /// The configuration in force (the file's, or the last applied `ConfigChanged`).
    pub fn config(&self) -> &RoutingConfig {
        &self.config
    }

    /// Version of [`Core::config`]: 0 for the file's, +1 per `ConfigChanged`.
    pub fn config_version(&self) -> u64 {
        self.config_version
    }

    /// Decides what `cmd` changes, applies it, then offers calls to Ready agents where
    /// possible. The returned records are to be replicated and then turned into effects.
    /// On `Err` other than [`CommandError::Internal`] nothing changed.
    pub fn handle(
        &mut self,
        cmd: Command,
        now: Timestamp,
    ) -> Result<Vec<EventRecord>, CommandError> {
        let events = self.decide(cmd, now)?;
        let mut out = Vec::with_capacity(events.len() + 1);
        for event in events {
            self.emit(&mut out, now, event)?;
        }
        self.settle(&mut out, now)?;
        self.run_matcher(&mut out, now)?;
        Ok(out)
    }

    /// [`Core::handle`] for a numbered edge message: a message applied before (here or
    /// on the leader this core follows) is ignored with no records, so a message re-sent
    /// after a fail-over acts once. The origin rides on the first record; a command that
    /// fails or changes nothing leaves no trace, so re-sending it decides it afresh.
    pub fn handle_from(
        &mut self,
        origin: Origin,
        cmd: Command,
        now: Timestamp,
    ) -> Result<Vec<EventRecord>, CommandError> {
        if self.origins.is_duplicate(&origin) {
            return Ok(Vec::new());
        }
        let mut out = self.handle(cmd, now)?;
        if let Some(first) = out.first_mut() {
            first.origin = Some(origin.clone());
            // `emit` applied the record before the origin was on it.
            self.origins.record(&origin);
        }
        Ok(out)
    }

    /// The highest message id applied from `edge` (0: none).
    pub fn applied_msg_id(&self, edge: &crate::ids::EdgeId) -> crate::ids::MsgId {
        self.origins.last(edge)
    }

    /// Fires every timer due at `now` (wrap-up end, offer expiry, max wait), then matches.
    /// Calling it early is a harmless no-op.
    pub fn handle_timeout(&mut self, now: Timestamp) -> Vec<EventRecord> {
        let mut out = Vec::new();
        // Apply failures here would be bugs (every event is decided from the current
        // state); stop firing rather than panic, and keep what was recorded.
        let _ = self
            .fire_timers(&mut out, now)
            .and_then(|()| self.settle(&mut out, now));
        let _ = self.run_matcher(&mut out, now);
        out
    }

    /// The earliest pending deadline; the shell wakes the core then.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        let first = self.index.timers.first();
        #[cfg(test)]
        debug_assert_eq!(
            first,
            timer::pending(&self.state, &self.dir)
                .first()
                .map(|(at, _)| *at),
            "indexed timers differ from the scan"
        );
        first
    }

    /// Applies a record from the leader (or a replayed log). Refuses a record that is not
    /// the next in sequence or comes from a lower term; adopts a higher term.
    pub fn apply(&mut self, rec: &EventRecord) -> Result<(), ApplyError> {
        let expected = self.last_seq.next();
        if rec.seq != expected {
            return Err(ApplyError::Gap {
                expected,
                got: rec.seq,
            });
        }
        if rec.term < self.term {
            return Err(ApplyError::StaleTerm {
                current: self.term,
                got: rec.term,
            });
        }
        if let Event::ConfigChanged { version, .. } = &rec.event {
            if *version <= self.config_version {
                return Err(ApplyError::Inconsistent {
                    seq: rec.seq,
                    reason: format!(
                        "configuration version {version} is not after {}",
                        self.config_version
                    ),
                });
            }
        }
        let touched = index::touched(&self.state, &rec.event);
        let old_timers = timer::timers_of(&self.dir, &self.state, &touched);
        self.state
            .apply_event(rec.at, &rec.event)
            .map_err(|reason| ApplyError::Inconsistent {
                seq: rec.seq,
                reason,
            })?;
        self.after_apply(&rec.event);
        self.last_seq = rec.seq;
        self.term = rec.term;
        if let Some(origin) = &rec.origin {
            self.origins.record(origin);
        }
        // Last: a configuration change rebuilds the index from the directory in force.
        self.index.sync(&self.dir, &self.state, &touched);
        let new_timers = timer::timers_of(&self.dir, &self.state, &touched);
        self.index.timers.replace(old_timers, new_timers);
        Ok(())
    }

    /// Raises the term on promotion; records are then stamped with it. A lower term is
    /// ignored: terms never go back.
    pub fn set_term(&mut self, term: Term) {
        self.term = self.term.max(term);
    }

    /// Sequence number of the last applied record (0 before any).
    pub fn last_seq(&self) -> Seq {
        self.last_seq
    }

    /// Current leadership term.
    pub fn term(&self) -> Term {
        self.term
    }

    /// A copy of the run-time state.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            format_version: SNAPSHOT_FORMAT_VERSION,
            term: self.term,
            last_seq: self.last_seq,
            state: self.state.clone(),
            origins: self.origins.clone(),
            config: (self.config_version > 0).then(|| self.config.clone()),
            config_version: self.config_version,
        }
    }

    /// Restores from a snapshot under `config`, or under the snapshot's own
    /// configuration when it carries one (changed at run time: it wins over the file).
    /// Agents added to the configuration since start logged out; an agent removed from
    /// it must have been logged out; every call must belong to a configured queue.
    pub fn from_snapshot(config: RoutingConfig, snapshot: Snapshot) -> Result<Self, SnapshotError> {
        if snapshot.format_version > SNAPSHOT_FORMAT_VERSION {
            return Err(SnapshotError::UnsupportedVersion {
                got: snapshot.format_version,
                supported: SNAPSHOT_FORMAT_VERSION,
            });
        }
        let config = snapshot.config.unwrap_or(config);
        let dir = Directory::new(config.clone());
        let mut state = snapshot.state;
        for (id, a) in &state.agents {
            if !dir.agents.contains_key(id) && a.state.is_logged_in() {
                return Err(SnapshotError::ConfigMismatch(format!(
                    "agent `{id}` is logged in but no longer configured"
                )));
            }
        }
        state.agents.retain(|id, _| dir.agents.contains_key(id));
        for id in dir.agents.keys() {
            state
                .agents
                .entry(id.clone())
                .or_insert_with(AgentRuntime::logged_out);
        }
        for (id, c) in &state.calls {
            if !dir.queues.contains_key(&c.queue) {
                return Err(SnapshotError::ConfigMismatch(format!(
                    "call `{id}` waits in queue `{}`, which is no longer configured",
                    c.queue
                )));
            }
        }
        state.counters.retain(|id, _| dir.queues.contains_key(id));
        for id in dir.queues.keys() {
            state.counters.entry(id.clone()).or_default();
        }
        let index = RoutingIndex::build(&dir, &state);
        Ok(Core {
            dir,
            state,
            term: snapshot.term,
            last_seq: snapshot.last_seq,
            origins: snapshot.origins,
            config,
            config_version: snapshot.config_version,
            index,
        })
    }

    /// FNV-1a over the canonical JSON of `(last_seq, state)`: equal states give equal
    /// digests in any process. The term is left out: it is leadership, not state.
    pub fn state_digest(&self) -> u64 {
        #[derive(Serialize)]
        struct Canonical<'a> {
            last_seq: Seq,
            state: &'a State,
            // Left out while empty, so digests from before origins existed still match.
            #[serde(skip_serializing_if = "AppliedOrigins::is_empty")]
            origins: &'a AppliedOrigins,
            // Left out at 0 (the file's configuration), as origins.
            #[serde(skip_serializing_if = "is_zero")]
            config_version: u64,
        }
        let mut h = Fnv1a::new();
        let canonical = Canonical {
            last_seq: self.last_seq,
            state: &self.state,
            origins: &self.origins,
            config_version: self.config_version,
        };
        // Cannot fail: every map key is a string newtype. Should it ever, the error text
        // goes into the digest, which then differs rather than panicking.
        if let Err(e) = serde_json::to_writer(&mut h, &canonical) {
            h.update(e.to_string().as_bytes());
        }
        h.finish()
    }

    /// All configured agents, in id order.
    pub fn agents(&self) -> impl Iterator<Item = AgentView> + '_ {
        self.state
            .agents
            .keys()
            .filter_map(move |id| self.agent(id))
    }

    /// Whether `id`'s phone answers offers by itself (a map look-up, for the
    /// shell's per-offer work).
    pub fn auto_answer(&self, id: &AgentId) -> bool {
        self.dir.agents.get(id).is_some_and(|a| a.auto_answer)
    }

    /// One agent.
    pub fn agent(&self, id: &AgentId) -> Option<AgentView> {
        let def = self.dir.agents.get(id)?;
        let rt = self.state.agents.get(id)?;
        Some(AgentView {
            id: id.clone(),
            name: def.name.clone(),
            skills: def.skills.clone(),
            state: rt.state.clone(),
            extension: rt.extension.clone(),
            reason: rt.reason.clone(),
            since: rt.since,
            idle_since: rt.idle_since,
        })
    }

    /// Every configured queue with its figures, in id order.
    pub fn queues(&self) -> Vec<QueueView> {
        self.dir
            .queues
            .keys()
            .map(|qid| {
                let mut v = QueueView {
                    id: qid.clone(),
                    waiting: 0,
                    offering: 0,
                    longest_wait_since: None,
                    agents_ready: 0,
                    agents_logged_in: 0,
                    offered: 0,
                    answered: 0,
                    abandoned: 0,
                    timed_out: 0,
                    overflowed: 0,
                    answered_in_sl: 0,
                    callbacks_failed: 0,
                };
                let n: QueueCounters = self.state.counters.get(qid).copied().unwrap_or_default();
                (v.offered, v.answered, v.abandoned, v.timed_out) =
                    (n.offered, n.answered, n.abandoned, n.timed_out);
                (v.overflowed, v.answered_in_sl, v.callbacks_failed) =
                    (n.overflowed, n.answered_in_sl, n.callbacks_failed);
                for c in self.state.calls.values().filter(|c| &c.queue == qid) {
                    match c.phase {
                        CallPhase::Connected { .. } => continue,
                        CallPhase::Offered { .. } => v.offering += 1,
                        CallPhase::Waiting => {}
                    }
                    v.waiting += 1;
                    v.longest_wait_since = Some(match v.longest_wait_since {
                        Some(t) => t.min(c.enqueued_at),
                        None => c.enqueued_at,
                    });
                }
                for aid in self.dir.eligible.get(qid).into_iter().flatten() {
                    if let Some(a) = self.state.agents.get(aid) {
                        v.agents_logged_in += usize::from(a.state.is_logged_in());
                        v.agents_ready += usize::from(a.state == AgentState::Ready);
                    }
                }
                v
            })
            .collect()
    }

    /// The registration binding of `extension`, if its phone is registered.
    pub fn binding(&self, extension: &Extension) -> Option<&BindingRecord> {
        self.state.bindings.get(extension)
    }

    /// Every registration binding, in extension order.
    pub fn bindings(&self) -> impl Iterator<Item = (&Extension, &BindingRecord)> + '_ {
        self.state.bindings.iter()
    }

    /// Pending callbacks by inbound call, in call-id order.
    pub fn callbacks(&self) -> impl Iterator<Item = (&CallId, &crate::CallbackRecord)> + '_ {
        self.state.callbacks.iter()
    }

    /// One call, with its place in the queue while waiting.
    pub fn call(&self, id: &CallId) -> Option<CallView> {
        let c = self.state.calls.get(id)?;
        let position = (c.phase == CallPhase::Waiting).then(|| {
            1 + self
                .state
                .calls
                .iter()
                .filter(|(oid, o)| {
                    o.queue == c.queue
                        && o.phase == CallPhase::Waiting
                        && (o.rank(), *oid) < (c.rank(), id)
                })
                .count()
        });
        Some(CallView {
            id: id.clone(),
            queue: c.queue.clone(),
            priority: c.priority,
            skills: c.skills.clone(),
            caller: c.caller.clone(),
            enqueued_at: c.enqueued_at,
            phase: c.phase.clone(),
            position,
        })
    }

    // ---- leader internals ------------------------------------------------------------

    /// Stamps `event` as the next record, applies it through the follower path and
    /// collects it.
    fn emit(
        &mut self,
        out: &mut Vec<EventRecord>,
        now: Timestamp,
        event: Event,
    ) -> Result<(), ApplyError> {
        let rec = EventRecord {
            seq: self.last_seq.next(),
            term: self.term,
            at: now,
            event,
            origin: None,
        };
        self.apply(&rec)?;
        out.push(rec);
        Ok(())
    }

    /// What a record changes beyond the state: a new configuration replaces the
    /// directory; a connect may count towards the service level.
    fn after_apply(&mut self, event: &Event) {
        match event {
            Event::ConfigChanged { version, config } => {
                self.dir = Directory::new(config.clone());
                self.config = config.clone();
                self.config_version = *version;
            }
            Event::CallConnected { call, .. } => {
                crate::reconfig::count_service_level(&mut self.state, &self.dir, call);
            }
            _ => {}
        }
    }

    /// Brings waiting calls to the relaxation step their wait has reached (after a
    /// move into another queue, a configuration change, or a step that came due), so
    /// the matcher sees every call under the rules in force.
    fn settle(&mut self, out: &mut Vec<EventRecord>, now: Timestamp) -> Result<(), ApplyError> {
        for _ in 0..MAX_TIMER_PASSES {
            let calls = self.index.out_of_step(&self.dir, &self.state, now);
            #[cfg(test)]
            debug_assert_eq!(
                calls,
                crate::relax::out_of_step(&self.dir, &self.state, now),
                "indexed relaxation check differs from the scan"
            );
            if calls.is_empty() {
                return Ok(());
            }
            for call in calls {
                for event in crate::relax::events(&self.dir, &self.state, &call, now) {
                    self.emit(out, now, event)?;
                }
            }
        }
        Ok(())
    }

    /// Makes every offer the state allows now (see `matcher`).
    fn run_matcher(
        &mut self,
        out: &mut Vec<EventRecord>,
        now: Timestamp,
    ) -> Result<(), ApplyError> {
        let mut pass = Pass::start(&mut self.index, &self.dir, &self.state, now);
        let done = loop {
            let view = matcher::View {
                dir: &self.dir,
                state: &self.state,
                index: &self.index,
            };
            let Some(offer) = pass.next(&view) else {
                break Ok(());
            };
            let Some(event) = self.offer_event(offer, now) else {
                continue;
            };
            if let Err(e) = self.emit(out, now, event) {
                pass.abort(&mut self.index);
                break Err(e);
            }
        };
        self.index.flush(&self.dir, &self.state);
        done
    }

    /// The `CallOffered` record of a decision.
    fn offer_event(&self, offer: matcher::Offer, now: Timestamp) -> Option<Event> {
        let call = self.state.calls.get(&offer.call)?;
        let extension_of = |a: &AgentId| self.state.agents.get(a)?.extension.clone();
        let extension = extension_of(&offer.agent)?;
        let ring_also = offer
            .ring_also
            .into_iter()
            .filter_map(|a| Some((a.clone(), extension_of(&a)?)))
            .collect();
        // The matcher applies the offer rules itself (declined, transfer target,
        // retry time, relaxed requirement; property-tested against a reference);
        // checking them again here would hide a matcher bug instead of showing it.
        debug_assert!(
            crate::relax::may_offer(&self.dir, call, &offer.agent, now),
            "the matcher offered {} to {} against the offer rules",
            offer.call,
            offer.agent
        );
        let auto_answer = self
            .dir
            .agents
            .get(&offer.agent)
            .is_some_and(|a| a.auto_answer);
        let dial = crate::callbacks::dial_for(&self.dir, call);
        // A callback's offer also covers ringing the customer first.
        let ring_ms = dial.as_ref().map_or(0, |d| d.ring_ms);
        Some(Event::CallOffered {
            call: offer.call,
            agent: offer.agent,
            extension,
            queue: call.queue.clone(),
            caller: call.caller.clone(),
            expires_at: now.plus_ms(self.dir.offer_timeout_ms.saturating_add(ring_ms)),
            explanation: offer.explanation,
            auto_answer,
            ring_also,
            dial,
        })
    }

    fn fire_timers(
        &mut self,
        out: &mut Vec<EventRecord>,
        now: Timestamp,
    ) -> Result<(), ApplyError> {
        for _ in 0..MAX_TIMER_PASSES {
            let due: Vec<Timer> = self.index.timers.due(now).cloned().collect();
            #[cfg(test)]
            debug_assert_eq!(
                due,
                timer::pending(&self.state, &self.dir)
                    .into_iter()
                    .take_while(|(at, _)| *at <= now)
                    .map(|(_, t)| t)
                    .collect::<Vec<_>>(),
                "indexed timers differ from the scan"
            );
            if due.is_empty() {
                return Ok(());
            }
            for t in due {
                // Re-check against the current state: an earlier timer of this pass may
                // have changed it.
                for event in self.timer_event(&t, now) {
                    self.emit(out, now, event)?;
                }
            }
        }
        Ok(())
    }

    fn timer_event(&self, t: &Timer, now: Timestamp) -> Vec<Event> {
        match t {
            Timer::MaxWait(call) => self.max_wait_events(call, now),
            Timer::Relax(call) => crate::relax::events(&self.dir, &self.state, call, now),
            Timer::CallbackRetry(call) => crate::callbacks::retry_event(&self.state, call, now)
                .into_iter()
                .collect(),
            _ => self.timer_event_one(t, now).into_iter().collect(),
        }
    }

    /// A call waited its queue's `max_wait_ms`: its `max_wait` overflow, else it times out.
    fn max_wait_events(&self, call: &CallId, now: Timestamp) -> Vec<Event> {
        let Some(c) = self.state.calls.get(call) else {
            return Vec::new();
        };
        let Some(q) = self.dir.queues.get(&c.queue) else {
            return Vec::new();
        };
        let due = q
            .max_wait_ms
            .is_some_and(|max| c.enqueued_at.plus_ms(max) <= now);
        if c.phase != CallPhase::Waiting || !due || c.callback.is_some() {
            return Vec::new();
        }
        match &q.overflow.max_wait {
            Some(action) => crate::overflow::leave(
                &self.dir,
                &self.state,
                crate::overflow::Leave::of(
                    call,
                    c,
                    crate::config::OverflowReason::MaxWait,
                    action.clone(),
                ),
                now,
            ),
            None => vec![Event::CallTimedOut {
                call: call.clone(),
                queue: c.queue.clone(),
                waited_ms: now.ms_since(c.enqueued_at),
            }],
        }
    }

    fn timer_event_one(&self, t: &Timer, now: Timestamp) -> Option<Event> {
        match t {
            Timer::WrapUpEnd(agent) => match self.state.agents.get(agent)?.state {
                AgentState::WrapUp { until } if until <= now => Some(Event::AgentStateChanged {
                    agent: agent.clone(),
                    state: AgentState::Ready,
                    reason: None,
                }),
                _ => None,
            },
            Timer::OfferExpiry(call) => match &self.state.calls.get(call)?.phase {
                CallPhase::Offered {
                    agent, expires_at, ..
                } if *expires_at <= now => Some(Event::CallRequeued {
                    call: call.clone(),
                    agent: agent.clone(),
                    reason: OFFER_TIMEOUT_REASON.to_owned(),
                }),
                _ => None,
            },
            Timer::BindingExpiry(ext) => crate::bindings::expiry_event(&self.state, ext, now),
            Timer::MaxWait(_) | Timer::Relax(_) | Timer::CallbackRetry(_) => None,
        }
    }

    /// Validates `cmd` against the current state and returns the events it leads to.
    fn decide(&self, cmd: Command, now: Timestamp) -> Result<Vec<Event>, CommandError> {
        match cmd {
            Command::AgentLogin { agent, extension } => {
                let a = self.agent_rt(&agent)?;
                if !self.config.extensions.is_empty()
                    && !self.config.extensions.contains(&extension)
                {
                    return Err(CommandError::Invalid(format!(
                        "extension {extension} is not configured"
                    )));
                }
                if let Some(current) = &a.extension {
                    if *current == extension {
                        return Ok(Vec::new()); // a retried login
                    }
                    return Err(CommandError::AgentAlreadyLoggedIn {
                        agent,
                        extension: current.clone(),
                    });
                }
                if let Some(other) = self.state.agent_at(&extension) {
                    return Err(CommandError::ExtensionInUse {
                        extension,
                        agent: other.clone(),
                    });
                }
                Ok(vec![Event::AgentLoggedIn { agent, extension }])
            }
            Command::AgentReady { agent } => {
                let a = self.logged_in(&agent)?;
                match a.state {
                    AgentState::Ready => Ok(Vec::new()),
                    AgentState::NotReady | AgentState::WrapUp { .. } => {
                        Ok(vec![Event::AgentStateChanged {
                            agent,
                            state: AgentState::Ready,
                            reason: None,
                        }])
                    }
                    ref s => Err(busy(&agent, "become ready", s)),
                }
            }
            Command::AgentNotReady { agent, reason } => {
                let a = self.logged_in(&agent)?;
                let reasons = &self.config.not_ready_reasons;
                if !reasons.is_empty()
                    && reason != crate::event::RONA_REASON
                    && !reasons.contains(&reason)
                {
                    return Err(CommandError::Invalid(format!(
                        "not-ready reason `{reason}` is not configured"
                    )));
                }
                match a.state {
                    AgentState::NotReady if a.reason.as_deref() == Some(reason.as_str()) => {
                        Ok(Vec::new())
                    }
                    AgentState::Ready | AgentState::NotReady | AgentState::WrapUp { .. } => {
                        Ok(vec![Event::AgentStateChanged {
                            agent,
                            state: AgentState::NotReady,
                            reason: Some(reason),
                        }])
                    }
                    ref s => Err(busy(&agent, "become not ready", s)),
                }
            }
            Command::AgentLogout { agent } => {
                let a = self.logged_in(&agent)?;
                match a.state {
                    AgentState::Reserved { .. } | AgentState::OnCall { .. } => {
                        Err(busy(&agent, "log out", &a.state))
                    }
                    _ => {
                        let overflows =
                            crate::overflow::on_logout(&self.dir, &self.state, &agent, now);
                        let mut events = vec![Event::AgentLoggedOut { agent }];
                        events.extend(overflows);
                        Ok(events)
                    }
                }
            }
            Command::Enqueue {
                call,
                queue,
                priority,
                caller,
                skills,
            } => {
                if !self.dir.queues.contains_key(&queue) {
                    return Err(CommandError::UnknownQueue(queue));
                }
                if self.state.calls.contains_key(&call) {
                    return Err(CommandError::DuplicateCall(call));
                }
                let overflow =
                    crate::overflow::admission(&self.dir, &self.state, &queue, now, None);
                let mut events = vec![Event::CallQueued {
                    call: call.clone(),
                    queue: queue.clone(),
                    priority,
                    caller,
                    enqueued_at: now,
                    skills,
                }];
                if let Some((reason, action)) = overflow {
                    let leave = crate::overflow::Leave {
                        call: &call,
                        queue: &queue,
                        enqueued_at: now,
                        hops: 0,
                        is_callback: false,
                        reason,
                        action,
                        leaving_agent: None,
                    };
                    events.extend(crate::overflow::leave(&self.dir, &self.state, leave, now));
                }
                Ok(events)
            }
            Command::Abandon { call } if self.converted(&call) => Ok(Vec::new()),
            Command::CallEnded { call, .. } if self.converted(&call) => Ok(Vec::new()),
            Command::Abandon { call } => {
                let c = self.call_rec(&call)?;
                Ok(match &c.phase {
                    CallPhase::Connected { .. } => self.end_connected(call, c, now),
                    _ => vec![self.abandon(call, c, now)],
                })
            }
            Command::CallEnded { call, by } => {
                let c = self.call_rec(&call)?;
                Ok(match &c.phase {
                    CallPhase::Connected { .. } => self.end_connected_by(call, c, now, by),
                    _ => vec![self.abandon(call, c, now)],
                })
            }
            Command::AgentAnswered { call, agent: who } => {
                let c = self.call_rec(&call)?;
                match &c.phase {
                    CallPhase::Offered {
                        agent, ring_also, ..
                    } => {
                        let agent = match who {
                            None => agent.clone(),
                            Some(w) if w == *agent || ring_also.contains(&w) => w,
                            Some(w) => {
                                return Err(CommandError::Invalid(format!(
                                    "call {call} was not offered to {w}"
                                )))
                            }
                        };
                        Ok(vec![Event::CallConnected { call, agent }])
                    }
                    CallPhase::Connected { .. } => Ok(Vec::new()), // a retried report
                    p => Err(not_in_phase(call, "be answered", p)),
                }
            }
            Command::RequestCallback { call, record } => crate::callbacks::decide(
                &self.dir,
                &self.state,
                call,
                crate::callbacks::CallbackRecord {
                    requested_at: now,
                    ..record
                },
            ),
            Command::Bind { extension, binding } => Ok(crate::bindings::decide_bind(
                &self.state,
                extension,
                binding,
                now,
            )),
            Command::Unbind { extension, edge } => Ok(crate::bindings::decide_unbind(
                &self.state,
                extension,
                &edge,
            )),
            Command::Transfer { call, by, target } => {
                crate::transfer::decide_transfer(&self.dir, &self.state, call, by, target, now)
            }
            Command::RejectOffer { call, agent } => {
                crate::transfer::decide_reject(&self.state, call, agent)
            }
            Command::CallbackResult { call, outcome } => {
                crate::callbacks::decide_result(&self.dir, &self.state, call, outcome, now)
            }
            Command::ApplyConfig { config, orphans_to } => {
                crate::reconfig::decide(&self.state, self.config_version, config, orphans_to, now)
            }
            Command::NoteCall { call, note } => crate::command::check_note(&note)
                .map(|()| vec![Event::CallNoted { call, note }])
                .map_err(CommandError::Invalid),
            Command::AgentFailed { call, reason } => {
                let c = self.call_rec(&call)?;
                match &c.phase {
                    CallPhase::Offered { agent, .. } => Ok(vec![Event::CallRequeued {
                        call,
                        agent: agent.clone(),
                        reason,
                    }]),
                    p => Err(not_in_phase(call, "fail an offer", p)),
                }
            }
        }
    }

    fn abandon(&self, call: CallId, c: &CallRecord, now: Timestamp) -> Event {
        let agent = match &c.phase {
            CallPhase::Offered { agent, .. } => Some(agent.clone()),
            _ => None,
        };
        Event::CallAbandoned {
            call,
            queue: c.queue.clone(),
            waited_ms: now.ms_since(c.enqueued_at),
            agent,
        }
    }

    fn end_connected(&self, call: CallId, c: &CallRecord, now: Timestamp) -> Vec<Event> {
        self.end_connected_by(call, c, now, crate::event::EndReason::CallerHungUp)
    }

    /// A connected call ended: wrap-up, or straight back to Ready when it is zero.
    fn end_connected_by(
        &self,
        call: CallId,
        c: &CallRecord,
        now: Timestamp,
        by: crate::event::EndReason,
    ) -> Vec<Event> {
        let CallPhase::Connected { agent, .. } = &c.phase else {
            return Vec::new();
        };
        let wrap = self.dir.wrap_up_ms(&c.queue);
        let mut events = vec![Event::CallEnded {
            call,
            agent: agent.clone(),
            wrap_up_until: now.plus_ms(wrap),
            by,
        }];
        if wrap == 0 {
            events.push(Event::AgentStateChanged {
                agent: agent.clone(),
                state: AgentState::Ready,
                reason: None,
            });
        }
        events
    }

    /// `call` was turned into its callback call: the edge's later hang-up of the
    /// inbound leg is expected and changes nothing.
    fn converted(&self, call: &CallId) -> bool {
        !self.state.calls.contains_key(call)
            && self
                .state
                .calls
                .contains_key(&crate::callbacks::callback_id(call))
    }

    fn agent_rt(&self, agent: &AgentId) -> Result<&AgentRuntime, CommandError> {
        self.state
            .agents
            .get(agent)
            .ok_or_else(|| CommandError::UnknownAgent(agent.clone()))
    }

    fn logged_in(&self, agent: &AgentId) -> Result<&AgentRuntime, CommandError> {
        let a = self.agent_rt(agent)?;
        if a.state.is_logged_in() {
            Ok(a)
        } else {
            Err(CommandError::AgentNotLoggedIn(agent.clone()))
        }
    }

    fn call_rec(&self, call: &CallId) -> Result<&CallRecord, CommandError> {
        self.state
            .calls
            .get(call)
            .ok_or_else(|| CommandError::UnknownCall(call.clone()))
    }
}

fn busy(agent: &AgentId, action: &'static str, state: &AgentState) -> CommandError {
    CommandError::AgentBusy {
        agent: agent.clone(),
        action,
        state: match state {
            AgentState::LoggedOut => "logged out",
            AgentState::NotReady => "not ready",
            AgentState::Ready => "ready",
            AgentState::Reserved { .. } => "reserved for a call",
            AgentState::OnCall { .. } => "on a call",
            AgentState::WrapUp { .. } => "in wrap-up",
        },
    }
}

fn not_in_phase(call: CallId, action: &'static str, phase: &CallPhase) -> CommandError {
    CommandError::CallNotInPhase {
        call,
        action,
        phase: phase.name(),
    }
}

/// The matcher checked against its plain reference (property tests).
#[cfg(test)]
impl Core {
    /// [`Core::handle`], asserting the offers equal [`matcher::reference`]'s.
    pub(crate) fn handle_checked(
        &mut self,
        cmd: Command,
        now: Timestamp,
    ) -> Result<Vec<EventRecord>, CommandError> {
        let events = self.decide(cmd, now)?;
        let mut out = Vec::new();
        for event in events {
            self.emit(&mut out, now, event)?;
        }
        self.match_checked(&mut out, now);
        Ok(out)
    }

    /// [`Core::handle_timeout`], asserting as [`Core::handle_checked`].
    pub(crate) fn timeout_checked(&mut self, now: Timestamp) -> Vec<EventRecord> {
        let mut out = Vec::new();
        self.fire_timers(&mut out, now).expect("timers");
        self.match_checked(&mut out, now);
        out
    }

    fn match_checked(&mut self, out: &mut Vec<EventRecord>, now: Timestamp) {
        let want = matcher::reference(&self.state, &self.dir, now);
        let start = out.len();
        self.run_matcher(out, now).expect("matcher");
        let got = matcher::offers_in(&out[start..]);
        assert_eq!(got, want, "indexed matcher differs from the reference");
    }
}
