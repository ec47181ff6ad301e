//! Property tests: random sequences of commands and clock advances, with the core's
//! promises checked after every step:
//! - an agent holds at most one call, and agent and call agree on it (Reserved ⇔
//!   Offered to them, OnCall ⇔ Connected to them);
//! - an offer never goes to an agent who declined the call, who is not the agent a
//!   transfer named, before a callback's retry time, or who lacks the requirement of
//!   the relaxation step in force (checked on a follower just before it applies the
//!   offer, so under the configuration in force then);
//! - after `handle_timeout(now)` no timer is left due (nothing past its max wait, no
//!   step or retry pending), so the shell never spins;
//! - a follower applying every record has the leader's digest;
//! - a snapshot (through JSON) restores to the same digest.

use super::support::*;
use super::*;
use proptest::prelude::{
    any, prop_assert, prop_assert_eq, prop_oneof, proptest, ProptestConfig, TestCaseError,
};
use proptest::strategy::Strategy as _;

const AGENTS: [&str; 4] = ["alice", "bob", "carol", "dave"];
const QUEUES: [&str; 3] = ["sales", "ru", "quick"];
/// Monday 2024-01-01 10:00 UTC (the office is open) and 20:00 (closed).
const STARTS: [u64; 2] = [1_704_103_200_000, 1_704_139_200_000];

#[derive(Clone, Debug)]
enum Op {
    Login(u8),
    Ready(u8),
    NotReady(u8),
    Logout(u8),
    Enqueue(u8, i8),
    Abandon(u8),
    Answer(u8),
    Fail(u8),
    End(u8),
    Transfer(u8, u8),
    Reject(u8),
    Callback(u8, u8),
    CallbackResult(u8, u8),
    ApplyConfig(u8, bool),
    Advance(u32),
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    prop_oneof![
        4 => any::<u8>().prop_map(Op::Login),
        6 => any::<u8>().prop_map(Op::Ready),
        1 => any::<u8>().prop_map(Op::NotReady),
        1 => any::<u8>().prop_map(Op::Logout),
        5 => (any::<u8>(), -2i8..3).prop_map(|(q, p)| Op::Enqueue(q, p)),
        1 => any::<u8>().prop_map(Op::Abandon),
        5 => any::<u8>().prop_map(Op::Answer),
        1 => any::<u8>().prop_map(Op::Fail),
        2 => any::<u8>().prop_map(Op::End),
        3 => (any::<u8>(), any::<u8>()).prop_map(|(c, t)| Op::Transfer(c, t)),
        2 => any::<u8>().prop_map(Op::Reject),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(c, q)| Op::Callback(c, q)),
        3 => (any::<u8>(), any::<u8>()).prop_map(|(c, o)| Op::CallbackResult(c, o)),
        1 => (any::<u8>(), any::<bool>()).prop_map(|(v, o)| Op::ApplyConfig(v, o)),
        5 => (0u32..40_000).prop_map(Op::Advance),
    ]
}

/// The base configuration with every lifecycle feature in use.
fn lifecycle_config() -> RoutingConfig {
    cfg_with(|cfg| {
        let s = queue_mut(cfg, "sales");
        s.max_wait_ms = Some(90_000);
        s.overflow.max_wait = Some(OverflowAction::Queue("quick".into()));
        s.relax = vec![
            RelaxStep {
                after_ms: 20_000,
                skills: Some(expr("en >= 1 OR ru >= 1")),
                priority_boost: 2,
                overflow: None,
            },
            RelaxStep {
                after_ms: 200_000,
                skills: None,
                priority_boost: 0,
                overflow: Some(OverflowAction::Message("bye".into())),
            },
        ];
        s.hours = Some(BusinessHours {
            timezone: "UTC".into(),
            weekly: [("mon-fri".to_string(), vec!["09:00-17:00".to_string()])].into(),
            holidays: Vec::new(),
        });
        s.overflow.closed = Some(OverflowAction::Queue("ru".into()));
        let r = queue_mut(cfg, "ru");
        r.max_size = Some(2);
        r.overflow.full = Some(OverflowAction::Callback);
        r.overflow.no_agents = Some(OverflowAction::Queue("sales".into()));
        let q = queue_mut(cfg, "quick");
        q.max_wait_ms = Some(50_000);
        q.callback = Some(CallbackPolicy {
            trunk: "pstn".into(),
            retries: 1,
            retry_after_ms: 15_000,
            ring_ms: 10_000,
        });
        cfg.agents.push(AgentDef {
            id: "dave".into(),
            name: "Dave".into(),
            skills: vec![("ru".into(), 1)],
            auto_answer: false,
        });
    })
}

fn variant(v: u8) -> RoutingConfig {
    let base = lifecycle_config();
    match v % 4 {
        0 => base,
        1 => {
            let mut c = base;
            c.agents.retain(|a| a.id.as_str() != "dave");
            queue_mut(&mut c, "sales").relax[0].after_ms = 5_000;
            c
        }
        2 => {
            let mut c = base;
            c.queues.retain(|q| q.id.as_str() != "ru");
            queue_mut(&mut c, "sales").overflow.closed = None;
            c
        }
        _ => {
            let mut c = base;
            c.agents.retain(|a| a.id.as_str() != "alice");
            queue_mut(&mut c, "quick").skills = expr("en >= 4 OR ru >= 4");
            c
        }
    }
}

struct World {
    leader: Core,
    follower: Core,
    initial: RoutingConfig,
    now: u64,
    next_call: u32,
}

impl World {
    fn calls(&self, pick: impl Fn(&CallRecord) -> bool) -> Vec<(CallId, CallRecord)> {
        self.leader
            .snapshot()
            .state
            .calls
            .into_iter()
            .filter(|(_, c)| pick(c))
            .collect()
    }

    fn nth(&self, sel: u8, pick: impl Fn(&CallRecord) -> bool) -> Option<(CallId, CallRecord)> {
        let calls = self.calls(pick);
        (!calls.is_empty()).then(|| calls[sel as usize % calls.len()].clone())
    }

    fn command(&mut self, op: &Op) -> Option<Command> {
        let agent = |i: u8| AgentId::from(AGENTS[i as usize % AGENTS.len()]);
        let offered = |c: &CallRecord| matches!(c.phase, CallPhase::Offered { .. });
        let connected = |c: &CallRecord| matches!(c.phase, CallPhase::Connected { .. });
        let holder = |c: &CallRecord| match &c.phase {
            CallPhase::Offered { agent, .. } | CallPhase::Connected { agent, .. } => {
                Some(agent.clone())
            }
            CallPhase::Waiting => None,
        };
        Some(match *op {
            Op::Login(a) => Command::AgentLogin {
                agent: agent(a),
                extension: format!("ext-{}", agent(a)).into(),
            },
            Op::Ready(a) => Command::AgentReady { agent: agent(a) },
            Op::NotReady(a) => Command::AgentNotReady {
                agent: agent(a),
                reason: "break".into(),
            },
            Op::Logout(a) => Command::AgentLogout { agent: agent(a) },
            Op::Enqueue(q, priority) => {
                self.next_call += 1;
                Command::Enqueue {
                    call: format!("c{}", self.next_call).into(),
                    queue: QUEUES[q as usize % QUEUES.len()].into(),
                    priority: priority.into(),
                    caller: CallerInfo {
                        number: format!("+1555{}", self.next_call),
                        ..CallerInfo::default()
                    },
                    skills: Default::default(),
                }
            }
            Op::Abandon(s) => Command::Abandon {
                call: self.nth(s, |_| true)?.0,
            },
            Op::Answer(s) => Command::AgentAnswered {
                call: self.nth(s, offered)?.0,
                agent: None,
            },
            Op::Fail(s) => Command::AgentFailed {
                call: self.nth(s, offered)?.0,
                reason: "486".into(),
            },
            Op::End(s) => Command::CallEnded {
                call: self.nth(s, connected)?.0,
                by: EndReason::AgentHungUp,
            },
            Op::Transfer(s, target) => {
                let (call, c) = self.nth(s, connected)?;
                let target = match target % 8 {
                    t @ 0..=3 => {
                        TransferTarget::Queue(["sales", "ru", "quick", "nope"][t as usize].into())
                    }
                    t => TransferTarget::Agent(agent(t)),
                };
                Command::Transfer {
                    call,
                    by: holder(&c)?,
                    target,
                }
            }
            Op::Reject(s) => {
                let (call, c) = self.nth(s, offered)?;
                Command::RejectOffer {
                    call,
                    agent: holder(&c)?,
                }
            }
            Op::Callback(s, q) => {
                let call = match self.nth(s, |c| c.callback.is_none()) {
                    Some((id, _)) if s % 2 == 0 => id,
                    _ => format!("ivr{s}").into(),
                };
                Command::RequestCallback {
                    call,
                    record: CallbackRecord {
                        queue: QUEUES[q as usize % QUEUES.len()].into(),
                        number: "+15559999".into(),
                        priority: 1,
                        voicemail: None,
                        caller: CallerInfo::default(),
                        requested_at: Timestamp(0),
                    },
                }
            }
            Op::CallbackResult(s, o) => Command::CallbackResult {
                call: self.nth(s, |c| offered(c) && c.callback.is_some())?.0,
                outcome: [
                    CallbackOutcome::Answered,
                    CallbackOutcome::Busy,
                    CallbackOutcome::NoAnswer,
                    CallbackOutcome::Failed,
                ][o as usize % 4],
            },
            Op::ApplyConfig(v, orphans) => Command::ApplyConfig {
                config: variant(v),
                orphans_to: orphans.then(|| "quick".into()),
            },
            Op::Advance(_) => return None,
        })
    }

    fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        if let Op::Advance(ms) = op {
            self.now += u64::from(*ms);
        }
        let mut recs = Vec::new();
        if let Some(cmd) = self.command(op) {
            match self.leader.handle(cmd.clone(), t(self.now)) {
                Ok(r) => recs.extend(r),
                Err(CommandError::Internal(e)) => {
                    return Err(TestCaseError::fail(format!("{cmd:?}: internal {e}")))
                }
                Err(_) => {}
            }
        }
        recs.extend(self.leader.handle_timeout(t(self.now)));
        for r in &recs {
            check_offer(&self.follower, r)?;
            self.follower
                .apply(r)
                .map_err(|e| TestCaseError::fail(format!("follower: {e} at {r:?}")))?;
        }
        self.check()
    }

    fn check(&self) -> Result<(), TestCaseError> {
        let snap = self.leader.snapshot();
        check_pairs(&snap.state)?;
        if let Some(at) = self.leader.next_deadline() {
            prop_assert!(
                at.0 > self.now,
                "timer due at {at} left after handle_timeout({})",
                self.now
            );
        }
        prop_assert_eq!(
            self.follower.state_digest(),
            self.leader.state_digest(),
            "follower"
        );
        let json = serde_json::to_string(&snap).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back: Snapshot =
            serde_json::from_str(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let restored = Core::from_snapshot(self.initial.clone(), back)
            .map_err(|e| TestCaseError::fail(format!("restore: {e}")))?;
        prop_assert_eq!(
            restored.state_digest(),
            self.leader.state_digest(),
            "snapshot"
        );
        prop_assert_eq!(restored.config(), self.leader.config());
        Ok(())
    }
}

/// Agents and calls agree on who holds what.
fn check_pairs(s: &State) -> Result<(), TestCaseError> {
    for (id, a) in &s.agents {
        match &a.state {
            AgentState::Reserved { call } => prop_assert!(
                matches!(s.calls.get(call).map(|c| &c.phase), Some(CallPhase::Offered { agent, .. }) if agent == id),
                "{id} reserved for {call}, which is not offered to them"
            ),
            AgentState::OnCall { call } => prop_assert!(
                matches!(s.calls.get(call).map(|c| &c.phase), Some(CallPhase::Connected { agent, .. }) if agent == id),
                "{id} on {call}, which is not connected to them"
            ),
            _ => {}
        }
    }
    for (id, c) in &s.calls {
        let (agent, want) = match &c.phase {
            CallPhase::Offered { agent, .. } => (agent, AgentState::Reserved { call: id.clone() }),
            CallPhase::Connected { agent, .. } => (agent, AgentState::OnCall { call: id.clone() }),
            CallPhase::Waiting => continue,
        };
        prop_assert_eq!(
            s.agents.get(agent).map(|a| &a.state),
            Some(&want),
            "call {}",
            id
        );
    }
    Ok(())
}

/// An offer about to be applied on `follower` respects the call's rules.
fn check_offer(follower: &Core, r: &EventRecord) -> Result<(), TestCaseError> {
    let Event::CallOffered { call, agent, .. } = &r.event else {
        return Ok(());
    };
    let snap = follower.snapshot();
    let c = snap
        .state
        .calls
        .get(call)
        .ok_or_else(|| TestCaseError::fail("offer of unknown call"))?;
    prop_assert!(
        !c.declined.contains(agent),
        "{call} offered to {agent}, who declined it"
    );
    prop_assert!(
        c.for_agent.as_ref().is_none_or(|a| a == agent),
        "{call} is for {:?}",
        c.for_agent
    );
    prop_assert!(
        c.not_before.is_none_or(|nb| nb <= r.at),
        "{call} offered before its retry time"
    );
    let cfg = follower.config();
    let q = cfg
        .queues
        .iter()
        .find(|q| q.id == c.queue)
        .ok_or_else(|| TestCaseError::fail("queue"))?;
    let def = cfg
        .agents
        .iter()
        .find(|a| &a.id == agent)
        .ok_or_else(|| TestCaseError::fail("agent"))?;
    // A call transferred to one agent goes to them whatever their skills.
    if c.for_agent.is_some() {
        return Ok(());
    }
    let (e, extra, _) = c.requirement(q);
    prop_assert!(
        e.eval(&def.skills),
        "{agent} lacks `{e}` for {call} at step {}",
        c.relax_step
    );
    prop_assert!(extra.is_none_or(|x| x
        .iter()
        .all(|(s, l)| def.skills.iter().any(|(h, hl)| h == s && hl >= l))));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn random_lifecycles_keep_the_invariants(start in 0usize..5, ops in proptest::collection::vec(op(), 1..80)) {
        let initial = lifecycle_config();
        let mut w = World {
            leader: Core::new(initial.clone(), Term(1)),
            follower: Core::new(initial.clone(), Term(1)),
            initial,
            // Mostly in office hours, sometimes after (closed overflows, loops).
            now: STARTS[usize::from(start == 4)],
            next_call: 0,
        };
        for op in &ops {
            w.step(op)?;
        }
    }
}
