//! Hand-made journals whose replay can be worked out by hand.

use super::*;
use crate::command::CallerInfo;
use crate::config::{AgentDef, QueueDef, ServiceLevel};
use crate::expr::SkillExpr;
use crate::ids::Seq;

fn config(agents: &[&str]) -> RoutingConfig {
    RoutingConfig {
        queues: vec![QueueDef::new("q", SkillExpr::Any)],
        agents: agents
            .iter()
            .map(|a| AgentDef {
                id: AgentId((*a).into()),
                name: (*a).into(),
                skills: vec![],
                auto_answer: false,
            })
            .collect(),
        default_wrap_up_ms: 0,
        offer_timeout_ms: 30_000,
        extensions: Default::default(),
        not_ready_reasons: vec![],
    }
}

/// Builds a journal in log order.
#[derive(Default)]
struct Journal {
    recs: Vec<EventRecord>,
}

fn s(secs: u64) -> Timestamp {
    Timestamp(1_800_000_000_000 + secs * 1000)
}

impl Journal {
    fn push(&mut self, secs: u64, event: Event) -> &mut Self {
        let seq = Seq(self.recs.len() as u64 + 1);
        self.recs.push(EventRecord {
            seq,
            term: Term(1),
            at: s(secs),
            event,
            origin: None,
        });
        self
    }

    fn login(&mut self, secs: u64, agent: &str, ext: &str) -> &mut Self {
        self.push(
            secs,
            Event::AgentLoggedIn {
                agent: agent.into(),
                extension: ext.into(),
            },
        );
        self.push(
            secs,
            Event::AgentStateChanged {
                agent: agent.into(),
                state: AgentState::Ready,
                reason: None,
            },
        )
    }

    fn queued(&mut self, secs: u64, call: &str, queue: &str) -> &mut Self {
        self.push(
            secs,
            Event::CallQueued {
                call: call.into(),
                queue: queue.into(),
                priority: 0,
                caller: CallerInfo::default(),
                enqueued_at: s(secs),
                skills: Default::default(),
            },
        )
    }

    /// Offered at `secs`, connected `ring` s later, ended `talk` s after that,
    /// then wrap-up ends (0 s) by the timer.
    fn served(
        &mut self,
        secs: u64,
        call: &str,
        queue: &str,
        agent: &str,
        ring: u64,
        talk: u64,
    ) -> &mut Self {
        self.push(
            secs,
            Event::CallOffered {
                call: call.into(),
                agent: agent.into(),
                extension: "1001".into(),
                queue: queue.into(),
                caller: CallerInfo::default(),
                expires_at: s(secs + 30),
                explanation: Default::default(),
                auto_answer: false,
                ring_also: vec![],
                dial: None,
            },
        );
        self.push(
            secs + ring,
            Event::CallConnected {
                call: call.into(),
                agent: agent.into(),
            },
        );
        let end = secs + ring + talk;
        self.push(
            end,
            Event::CallEnded {
                call: call.into(),
                agent: agent.into(),
                wrap_up_until: s(end),
                by: EndReason::CallerHungUp,
            },
        );
        self.push(
            end,
            Event::AgentStateChanged {
                agent: agent.into(),
                state: AgentState::Ready,
                reason: None,
            },
        )
    }

    fn abandoned(&mut self, secs: u64, call: &str, queue: &str, waited: u64) -> &mut Self {
        self.push(
            secs,
            Event::CallAbandoned {
                call: call.into(),
                queue: queue.into(),
                waited_ms: waited * 1000,
                agent: None,
            },
        )
    }
}

/// Two calls at once, one agent, 60 s talk: the second waits 60 s.
fn two_calls_one_agent() -> Vec<EventRecord> {
    let mut j = Journal::default();
    j.login(0, "a1", "1001")
        .queued(1, "c1", "q")
        .queued(1, "c2", "q");
    j.served(1, "c1", "q", "a1", 0, 60);
    j.served(61, "c2", "q", "a1", 0, 60);
    j.recs
}

#[test]
fn workload_keeps_what_the_outside_world_did() {
    let mut j = Journal::default();
    j.login(0, "a1", "1001")
        .queued(1, "c1", "q")
        .served(3, "c1", "q", "a1", 2, 40)
        .queued(10, "c2", "q")
        .abandoned(25, "c2", "q", 15)
        .push(
            50,
            Event::AgentStateChanged {
                agent: "a1".into(),
                state: AgentState::NotReady,
                reason: Some(RONA_REASON.into()),
            },
        )
        .push(
            60,
            Event::AgentStateChanged {
                agent: "a1".into(),
                state: AgentState::NotReady,
                reason: Some("lunch".into()),
            },
        );
    let w = Workload::from_journal(&j.recs);
    assert_eq!(
        w.calls[&CallId("c1".into())],
        CallFacts {
            patience_ms: None,
            talk_ms: Some(40_000),
            ring_ms: Some(2_000)
        }
    );
    assert_eq!(w.calls[&CallId("c2".into())].patience_ms, Some(15_000));
    let kinds: Vec<String> = w.inputs.iter().map(|i| kind(&i.command)).collect();
    // Login, ready, two arrivals, lunch: not the wrap-up end, not the RONA.
    assert_eq!(
        kinds,
        [
            "agent_login",
            "agent_ready",
            "enqueue",
            "enqueue",
            "agent_not_ready"
        ]
    );
    assert_eq!(w.mean_talk_ms, 40_000);
    assert_eq!(w.agent_ring_ms[&AgentId("a1".into())], 2_000);
}

#[test]
fn baseline_reproduces_the_recording() {
    let journal = two_calls_one_agent();
    let r = simulate(&config(&["a1"]), &Workload::from_journal(&journal), &[]);
    let q = &r.queues[&QueueId("q".into())];
    assert_eq!((q.offered, q.answered, q.abandoned), (2, 2, 0));
    assert_eq!(q.max_wait_ms, 60_000);
    assert_eq!(q.avg_wait_ms, 30_000);
    assert_eq!(q.asa_ms, 30_000);
    // One of two answered within 20 s.
    assert_eq!(q.service_level_pct, 50.0);
    let a1 = &r.agents[&AgentId("a1".into())];
    assert_eq!(a1.calls, 2);
    assert_eq!(a1.talk_ms, 120_000);
    // Logged in 0..121 s, talking 1..121 s.
    assert_eq!(a1.logged_in_ms, 121_000);
    assert_eq!(a1.occupancy_pct, 99.2);
    assert!(r.refused.is_empty(), "{:?}", r.refused);
    assert!(!r.truncated);
}

#[test]
fn one_more_agent_removes_the_wait() {
    let journal = two_calls_one_agent();
    let w = replay(&config(&["a1"]), &config(&["a1", "a2"]), &journal);
    let (base, new) = (&w.baseline.total, &w.new.total);
    assert_eq!(base.avg_wait_ms, 30_000);
    assert_eq!(new.avg_wait_ms, 0);
    assert_eq!(new.answered, 2);
    assert_eq!(new.service_level_pct, 100.0);
    assert_eq!(w.new.agents[&AgentId("a2".into())].calls, 1);
}

#[test]
fn an_impatient_caller_abandons_unless_answered_sooner() {
    let mut j = Journal::default();
    j.login(0, "a1", "1001")
        .queued(1, "c1", "q")
        .served(1, "c1", "q", "a1", 0, 60)
        .queued(5, "c2", "q")
        .abandoned(35, "c2", "q", 30);
    let w = replay(&config(&["a1"]), &config(&["a1", "a2"]), &j.recs);
    let base = &w.baseline.queues[&QueueId("q".into())];
    assert_eq!((base.answered, base.abandoned), (1, 1));
    assert_eq!(base.abandon_pct, 50.0);
    assert_eq!(base.max_wait_ms, 30_000);
    let new = &w.new.queues[&QueueId("q".into())];
    assert_eq!((new.answered, new.abandoned), (2, 0));
    // c2 was never answered in the recording: it talks the queue's mean (60 s).
    assert_eq!(w.new.agents[&AgentId("a2".into())].talk_ms, 60_000);
}

#[test]
fn a_break_asked_for_on_a_call_starts_when_the_call_ends() {
    // In the recording a1 went to lunch at 30 s, idle; in a replay with a longer
    // wrap-up... here: a2 is absent in the new config, so a1 takes c2 and is on
    // the phone at 30 s; the lunch waits for the call's end.
    let mut j = Journal::default();
    j.login(0, "a1", "1001")
        .login(0, "a2", "1002")
        .queued(1, "c1", "q")
        .served(1, "c1", "q", "a1", 0, 10)
        .queued(20, "c2", "q")
        .served(20, "c2", "q", "a2", 0, 60)
        .push(
            30,
            Event::AgentStateChanged {
                agent: "a1".into(),
                state: AgentState::NotReady,
                reason: Some("lunch".into()),
            },
        );
    let r = simulate(&config(&["a1"]), &Workload::from_journal(&j.recs), &[]);
    let a1 = &r.agents[&AgentId("a1".into())];
    assert_eq!(a1.calls, 2);
    assert_eq!(r.refused.get("agent_login"), Some(&1), "{:?}", r.refused);
    assert!(
        !r.refused.contains_key("agent_not_ready"),
        "{:?}",
        r.refused
    );
}

#[test]
fn same_inputs_give_byte_identical_reports() {
    let journal = two_calls_one_agent();
    let run = || {
        serde_json::to_string(&replay(&config(&["a1"]), &config(&["a1", "a2"]), &journal))
            .expect("json")
    };
    assert_eq!(run(), run());
}

#[test]
fn journal_config_is_the_last_change() {
    let mut j = Journal::default();
    j.push(
        0,
        Event::ConfigChanged {
            version: 1,
            config: config(&["a1"]),
        },
    )
    .push(
        1,
        Event::ConfigChanged {
            version: 2,
            config: config(&["a1", "a2"]),
        },
    );
    assert_eq!(journal_config(&j.recs), Some(config(&["a1", "a2"])));
}

/// One agent shared by two queues: giving `hi` priority serves it first.
#[test]
fn a_higher_priority_queue_meets_its_target() {
    let mut cfg = config(&["a1"]);
    cfg.queues = vec![
        QueueDef::new("lo", SkillExpr::Any),
        QueueDef::new("hi", SkillExpr::Any),
    ];
    cfg.queues[1].service_level = ServiceLevel {
        percent: 80,
        within_ms: 45_000,
    };
    let mut j = Journal::default();
    j.login(0, "a1", "1001")
        .queued(0, "c0", "lo")
        .served(0, "c0", "lo", "a1", 0, 60)
        .queued(10, "lo1", "lo")
        .queued(20, "hi1", "hi")
        .served(60, "lo1", "lo", "a1", 0, 60)
        .served(120, "hi1", "hi", "a1", 0, 60);
    let mut new = cfg.clone();
    new.queues[1].priority = 10;
    let w = replay(&cfg, &new, &j.recs);
    let hi = QueueId("hi".into());
    assert_eq!(w.baseline.queues[&hi].service_level_pct, 0.0);
    assert_eq!(w.new.queues[&hi].service_level_pct, 100.0);
    assert_eq!(w.new.queues[&hi].asa_ms, 40_000);
}
