//! Who gets which call: strategies, selection across queues, aging, calls kept
//! for or from agents, ring-all, explanations; and the indexed matcher against the
//! plain reference over random states.

use super::*;
use crate::state::State;
use std::collections::BTreeMap;

fn expr(text: &str) -> SkillExpr {
    SkillExpr::parse(text).expect("expression")
}

fn queue(id: &str, skills: &str, strategy: Strategy) -> QueueDef {
    QueueDef {
        strategy,
        wrap_up_ms: Some(0),
        ..QueueDef::new(id, expr(skills))
    }
}

fn agent(id: &str, list: &[(&str, u8)]) -> AgentDef {
    AgentDef {
        id: id.into(),
        name: id.to_uppercase(),
        skills: skills(list),
        auto_answer: false,
    }
}

fn site(queues: Vec<QueueDef>, agents: Vec<AgentDef>) -> RoutingConfig {
    RoutingConfig {
        queues,
        agents,
        default_wrap_up_ms: 0,
        offer_timeout_ms: 20_000,
        extensions: Default::default(),
        not_ready_reasons: Vec::new(),
    }
}

/// Three English agents (alice en 5, bob en 3 + ru 2, carol en 4 + ru 5) and one
/// queue `q` needing `en` with `strategy`.
fn trio(strategy: Strategy) -> RoutingConfig {
    site(
        vec![queue("q", "en", strategy)],
        vec![
            agent("alice", &[("en", 5)]),
            agent("bob", &[("en", 3), ("ru", 2)]),
            agent("carol", &[("en", 4), ("ru", 5)]),
        ],
    )
}

/// Logs in `agents` and makes them Ready at `at`, `at + 1`, … (in that order).
fn all_ready(c: &mut Core, agents: &[&str], at: u64) {
    for (i, a) in agents.iter().enumerate() {
        online(c, a, at + i as u64);
    }
}

/// A core restored from `c`'s snapshot after `edit`: how tests reach states that
/// other parts of the engine produce (transfers, rejects, callbacks, relaxation).
fn edited(c: &Core, config: RoutingConfig, edit: impl FnOnce(&mut State)) -> Core {
    let mut snap = c.snapshot();
    edit(&mut snap.state);
    Core::from_snapshot(config, snap).expect("restore")
}

fn call_mut<'a>(s: &'a mut State, id: &str) -> &'a mut CallRecord {
    s.calls.get_mut(&CallId::from(id)).expect("call")
}

fn offered(recs: &[EventRecord]) -> Vec<(String, String, Vec<String>)> {
    crate::matcher::offers_in(recs)
        .into_iter()
        .map(|(c, a, also)| (c.0, a.0, also.into_iter().map(|a| a.0).collect()))
        .collect()
}

fn explanation(recs: &[EventRecord]) -> Explanation {
    recs.iter()
        .find_map(|r| match &r.event {
            Event::CallOffered { explanation, .. } => Some(explanation.clone()),
            _ => None,
        })
        .expect("an offer")
}

/// Answers `call` at `at` and hangs up a millisecond later: with no wrap-up the
/// agent is Ready again.
fn talk(c: &mut Core, call: &str, at: u64) {
    let answer = Command::AgentAnswered {
        call: call.into(),
        agent: None,
    };
    c.handle(answer, t(at)).expect("answer");
    let end = Command::CallEnded {
        call: call.into(),
        by: EndReason::CallerHungUp,
    };
    c.handle(end, t(at + 1)).expect("end");
}

// ---- strategies ----------------------------------------------------------------------

#[test]
fn most_skilled_takes_the_highest_proficiency_then_longest_idle() {
    let mut c = Core::new(trio(Strategy::MostSkilled), Term(1));
    all_ready(&mut c, &["bob", "carol", "alice"], 0);
    let recs = enqueue(&mut c, "c1", "q", 0, 10);
    assert_eq!(
        offers(&recs),
        vec![offer("c1", "alice")],
        "en 5 beats 4 and 3"
    );
    assert_eq!(explanation(&recs).candidates[0].1, "proficiency 5");

    // Extra skills count too: carol's en 4 + ru 5 beats bob's en 3 + ru 2.
    let recs = c
        .handle(
            Command::Enqueue {
                call: "c2".into(),
                queue: "q".into(),
                priority: 0,
                caller: CallerInfo::default(),
                skills: BTreeMap::from([(SkillId::from("ru"), 1)]),
            },
            t(11),
        )
        .expect("enqueue");
    assert_eq!(offers(&recs), vec![offer("c2", "carol")]);
    let why = explanation(&recs);
    assert_eq!(why.skills, "en >= 1 + ru >= 1");
    assert_eq!(
        why.candidates,
        vec![
            ("carol".into(), "proficiency 9".into()),
            ("bob".into(), "proficiency 5".into())
        ]
    );

    // A tie of proficiency goes to the longest idle.
    let config = site(
        vec![queue("q", "en", Strategy::MostSkilled)],
        vec![agent("a", &[("en", 3)]), agent("b", &[("en", 3)])],
    );
    let mut c = Core::new(config, Term(1));
    all_ready(&mut c, &["b", "a"], 0);
    assert_eq!(
        offers(&enqueue(&mut c, "c1", "q", 0, 5)),
        vec![offer("c1", "b")]
    );
}

#[test]
fn least_occupied_takes_the_lowest_busy_share() {
    let config = trio(Strategy::LeastOccupied);
    let mut c = Core::new(config.clone(), Term(1));
    all_ready(&mut c, &["alice", "bob", "carol"], 0);
    for a in ["alice", "bob", "carol"] {
        c.handle(
            Command::AgentNotReady {
                agent: a.into(),
                reason: "break".into(),
            },
            t(10),
        )
        .expect("not ready");
    }
    let mut c = edited(&c, config, |s| {
        for (a, busy) in [("alice", 600), ("bob", 300), ("carol", 900)] {
            s.agents.get_mut(&AgentId::from(a)).expect("agent").busy_ms = busy;
        }
    });
    all_ready(&mut c, &["alice", "bob", "carol"], 1_000);
    let recs = enqueue(&mut c, "c1", "q", 0, 2_000);
    assert_eq!(offers(&recs), vec![offer("c1", "bob")]);
    assert_eq!(
        explanation(&recs).candidates,
        vec![
            ("bob".into(), "occupancy 15%".into()),
            ("alice".into(), "occupancy 30%".into()),
            ("carol".into(), "occupancy 45%".into()),
        ]
    );
}

#[test]
fn fewest_calls_counts_answered_calls_since_login() {
    let mut c = Core::new(trio(Strategy::FewestCalls), Term(1));
    all_ready(&mut c, &["alice", "bob", "carol"], 0);
    // Each takes one in turn (longest idle among those with fewest calls), then
    // alice again: all have one and she has been idle longest.
    let plan = [
        ("c1", "alice"),
        ("c2", "bob"),
        ("c3", "carol"),
        ("c4", "alice"),
    ];
    for (i, (call, who)) in plan.iter().enumerate() {
        let at = 100 + 10 * i as u64;
        let recs = enqueue(&mut c, call, "q", 0, at);
        assert_eq!(offers(&recs), vec![offer(call, who)], "call {call}");
        talk(&mut c, call, at + 1);
    }
    let calls = |c: &Core, a: &str| c.snapshot().state.agents[&AgentId::from(a)].calls;
    assert_eq!((calls(&c, "alice"), calls(&c, "bob")), (2, 1));
    // bob and carol have one call each; bob has been idle longer.
    let recs = enqueue(&mut c, "c5", "q", 0, 200);
    assert_eq!(offers(&recs), vec![offer("c5", "bob")]);
    let why = explanation(&recs);
    assert_eq!(why.candidates[1], ("carol".into(), "calls 1".into()));
    assert_eq!(why.candidates[2], ("alice".into(), "calls 2".into()));
}

#[test]
fn round_robin_goes_round_in_id_order() {
    let mut c = Core::new(trio(Strategy::RoundRobin), Term(1));
    all_ready(&mut c, &["carol", "bob", "alice"], 0);
    let mut got = Vec::new();
    for (i, call) in ["c1", "c2", "c3", "c4", "c5"].iter().enumerate() {
        let at = 100 + 10 * i as u64;
        got.extend(offers(&enqueue(&mut c, call, "q", 0, at)));
        talk(&mut c, call, at + 1);
    }
    let who: Vec<_> = got.iter().map(|(_, a)| a.as_str()).collect();
    assert_eq!(who, ["alice", "bob", "carol", "alice", "bob"]);
    let recs = enqueue(&mut c, "c6", "q", 0, 300);
    assert_eq!(
        explanation(&recs).candidates[0],
        ("carol".into(), "rr after bob".into())
    );
}

#[test]
fn random_is_a_replayable_draw() {
    let run = || {
        let mut c = Core::new(trio(Strategy::Random), Term(1));
        all_ready(&mut c, &["alice", "bob", "carol"], 0);
        let mut who = Vec::new();
        for i in 0..12u64 {
            let call = format!("c{i}");
            let recs = enqueue(&mut c, &call, "q", 0, 100 + i);
            who.extend(offers(&recs).into_iter().map(|(_, a)| a));
            assert!(explanation(&recs).candidates[0].1.starts_with("random 0x"));
            c.handle(
                Command::Abandon {
                    call: call.as_str().into(),
                },
                t(100 + i),
            )
            .expect("abandon");
        }
        who
    };
    let first = run();
    assert_eq!(first, run(), "the same log draws the same agents");
    let distinct: std::collections::BTreeSet<_> = first.iter().collect();
    assert!(distinct.len() > 1, "draws vary with the call: {first:?}");
}

// ---- ring-all --------------------------------------------------------------------------

fn ring_core() -> (Core, Vec<EventRecord>) {
    let mut c = Core::new(trio(Strategy::RingAll), Term(1));
    all_ready(&mut c, &["carol", "alice", "bob"], 0);
    let recs = enqueue(&mut c, "c1", "q", 0, 100);
    (c, recs)
}

#[test]
fn ring_all_reserves_every_ready_agent_and_the_first_answer_wins() {
    let (mut c, recs) = ring_core();
    assert_eq!(
        offered(&recs),
        vec![(
            "c1".into(),
            "alice".into(),
            vec!["bob".into(), "carol".into()]
        )]
    );
    for a in ["alice", "bob", "carol"] {
        assert_eq!(state(&c, a), AgentState::Reserved { call: "c1".into() });
    }
    let err = c
        .handle(
            Command::AgentAnswered {
                call: "c1".into(),
                agent: Some("dave".into()),
            },
            t(101),
        )
        .expect_err("not rung");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    let idle_before = c.agent(&"alice".into()).expect("alice").idle_since;
    let recs = c
        .handle(
            Command::AgentAnswered {
                call: "c1".into(),
                agent: Some("carol".into()),
            },
            t(102),
        )
        .expect("answer");
    assert_eq!(
        recs[0].event,
        Event::CallConnected {
            call: "c1".into(),
            agent: "carol".into()
        }
    );
    assert_eq!(state(&c, "carol"), AgentState::OnCall { call: "c1".into() });
    assert_eq!(state(&c, "alice"), AgentState::Ready);
    assert_eq!(state(&c, "bob"), AgentState::Ready);
    let alice = c.agent(&"alice".into()).expect("alice");
    assert_eq!(
        alice.idle_since, idle_before,
        "a lost ring keeps the idle time"
    );
    let busy = c.snapshot().state.agents[&AgentId::from("alice")].busy_ms;
    assert_eq!(busy, 2, "reserved from 100 to 102");
}

#[test]
fn ring_all_released_by_abandon_and_by_offer_expiry() {
    let (mut c, _) = ring_core();
    c.handle(Command::Abandon { call: "c1".into() }, t(150))
        .expect("abandon");
    for a in ["alice", "bob", "carol"] {
        assert_eq!(state(&c, a), AgentState::Ready, "{a}");
    }

    // An edge that rings only the first agent: nobody answers, the offer expires;
    // that agent is RONA, the others were never rung and take the call again.
    let (mut c, _) = ring_core();
    let recs = c.handle_timeout(t(100 + 20_000));
    assert!(matches!(
        &recs[0].event,
        Event::CallRequeued { agent, .. } if agent.as_str() == "alice"
    ));
    assert_eq!(state(&c, "alice"), AgentState::NotReady);
    assert_eq!(
        offered(&recs),
        vec![("c1".into(), "bob".into(), vec!["carol".into()])]
    );
    // The first agent answering (no agent named) releases the other.
    c.handle(
        Command::AgentAnswered {
            call: "c1".into(),
            agent: None,
        },
        t(20_200),
    )
    .expect("answer");
    assert_eq!(state(&c, "bob"), AgentState::OnCall { call: "c1".into() });
    assert_eq!(state(&c, "carol"), AgentState::Ready);
}

// ---- call selection --------------------------------------------------------------------

/// Queues `hi` (priority 10) and `lo` (priority 0, `aging` per second); agent `a`
/// serves both.
fn two_queues(aging: u32) -> RoutingConfig {
    site(
        vec![
            QueueDef {
                priority: 10,
                ..queue("hi", "en", Strategy::LongestIdle)
            },
            QueueDef {
                aging_per_sec: aging,
                ..queue("lo", "en", Strategy::LongestIdle)
            },
        ],
        vec![agent("a", &[("en", 1)])],
    )
}

/// Agent `a` logs in, `calls` (id, queue, priority, enqueued at) wait, `a` becomes
/// Ready at `at`: the call `a` is offered and why.
fn first_pick(aging: u32, calls: &[(&str, &str, i32, u64)], at: u64) -> (String, Explanation) {
    let mut c = Core::new(two_queues(aging), Term(1));
    login(&mut c, "a", "100", 0);
    for (call, queue, priority, enqueued) in calls {
        enqueue(&mut c, call, queue, *priority, *enqueued);
    }
    let recs = ready(&mut c, "a", at);
    let got = offers(&recs);
    assert_eq!(got.len(), 1, "one offer: {got:?}");
    (got[0].0.clone(), explanation(&recs))
}

#[test]
fn queue_priority_counts_across_queues() {
    let calls = [("old-lo", "lo", 5, 1_000), ("new-hi", "hi", 0, 2_000)];
    let (call, why) = first_pick(0, &calls, 3_000);
    assert_eq!((call.as_str(), why.effective_priority), ("new-hi", 10));
    let lost = vec![("old-lo".into(), "priority 5 < 10".into())];
    assert_eq!(why.other_calls, lost);
}

#[test]
fn aging_lifts_an_old_low_priority_call_above_a_new_high_one() {
    let calls = [("old-lo", "lo", 0, 0), ("new-hi", "hi", 0, 5_000)];
    // At 9.999 s the old call has 9 (and a bit) < 10: the new one still wins.
    assert_eq!(first_pick(1, &calls, 9_999).0, "new-hi");
    // At 12 s the old call is at 12 > 10.
    let (call, why) = first_pick(1, &calls, 12_000);
    assert_eq!((call.as_str(), why.effective_priority), ("old-lo", 12));
    let lost = vec![("new-hi".into(), "priority 10 < 12".into())];
    assert_eq!(why.other_calls, lost);
}

#[test]
fn equal_priority_loser_waited_less() {
    let calls = [("first", "lo", 10, 1_000), ("second", "hi", 0, 2_000)];
    let (call, why) = first_pick(0, &calls, 3_000);
    assert_eq!(call, "first");
    let lost = vec![("second".into(), "waited less".into())];
    assert_eq!(why.other_calls, lost);
}

// ---- calls kept for or from agents -----------------------------------------------------

/// `trio` with alice and bob logged in NotReady and call `c1` waiting.
fn waiting_call(strategy: Strategy) -> Core {
    let mut c = Core::new(trio(strategy), Term(1));
    login(&mut c, "alice", "1", 0);
    login(&mut c, "bob", "2", 0);
    enqueue(&mut c, "c1", "q", 0, 10);
    c
}

#[test]
fn a_call_for_an_agent_goes_to_that_agent_only() {
    let c = waiting_call(Strategy::LongestIdle);
    // Transferred to dave, who lacks `en`: a person chose him.
    let mut config = trio(Strategy::LongestIdle);
    config.agents.push(agent("dave", &[("fr", 1)]));
    let mut c = edited(&c, config, |s| {
        call_mut(s, "c1").for_agent = Some("dave".into());
    });
    assert!(ready(&mut c, "alice", 20)
        .iter()
        .all(|r| offers(std::slice::from_ref(r)).is_empty()));
    login(&mut c, "dave", "4", 30);
    let recs = ready(&mut c, "dave", 31);
    assert_eq!(offers(&recs), vec![offer("c1", "dave")]);
    assert_eq!(explanation(&recs).note, "transferred to agent dave");
}

#[test]
fn an_agent_who_declined_is_not_offered_the_call_again() {
    let c = waiting_call(Strategy::LongestIdle);
    let mut c = edited(&c, trio(Strategy::LongestIdle), |s| {
        call_mut(s, "c1").declined.insert("alice".into());
    });
    assert!(offers(&ready(&mut c, "alice", 20)).is_empty());
    assert_eq!(offers(&ready(&mut c, "bob", 30)), vec![offer("c1", "bob")]);
}

#[test]
fn a_call_is_not_offered_before_its_time() {
    let c = waiting_call(Strategy::LongestIdle);
    let mut c = edited(&c, trio(Strategy::LongestIdle), |s| {
        let call = call_mut(s, "c1");
        call.not_before = Some(t(50_000));
        call.callback = Some(CallbackCall {
            number: "+15550001".into(),
            attempts: 1,
            voicemail: None,
        });
    });
    assert!(offers(&ready(&mut c, "alice", 20)).is_empty());
    assert!(offers(&c.handle_timeout(t(49_999))).is_empty());
    let recs = c.handle_timeout(t(50_000));
    assert_eq!(offers(&recs), vec![offer("c1", "alice")]);
    assert_eq!(explanation(&recs).note, "callback to +15550001, attempt 2");
}

#[test]
fn a_relaxed_call_takes_the_step_expression() {
    let mut config = trio(Strategy::LongestIdle);
    config.queues[0].skills = expr("en >= 5");
    config.queues[0].relax = vec![RelaxStep {
        after_ms: 30_000,
        skills: Some(expr("en >= 3")),
        priority_boost: 2,
        overflow: None,
    }];
    let mut c = Core::new(config.clone(), Term(1));
    login(&mut c, "bob", "2", 0);
    enqueue(&mut c, "c1", "q", 0, 10);
    assert!(offers(&ready(&mut c, "bob", 20)).is_empty(), "en 3 < 5");
    c.handle(
        Command::AgentNotReady {
            agent: "bob".into(),
            reason: "break".into(),
        },
        t(21),
    )
    .expect("not ready");
    let mut c = edited(&c, config, |s| call_mut(s, "c1").relax_step = 1);
    let recs = ready(&mut c, "bob", 40_000);
    assert_eq!(offers(&recs), vec![offer("c1", "bob")]);
    let why = explanation(&recs);
    assert_eq!((why.relax_step, why.skills.as_str()), (1, "en >= 3"));
    assert_eq!(why.effective_priority, 2);
}

#[test]
fn explanation_names_strategy_requirement_and_scores() {
    let mut c = Core::new(trio(Strategy::LongestIdle), Term(1));
    all_ready(&mut c, &["carol", "alice"], 0);
    let recs = enqueue(&mut c, "c1", "q", 3, 42_000);
    let why = explanation(&recs);
    assert_eq!(why.strategy, Some(Strategy::LongestIdle));
    assert_eq!(why.skills, "en >= 1");
    assert_eq!(why.effective_priority, 3);
    assert_eq!(
        why.candidates,
        vec![
            ("carol".into(), "idle 42 s".into()),
            ("alice".into(), "idle 41 s".into())
        ]
    );
    assert!(why.other_calls.is_empty());
}

#[test]
fn session_statistics_follow_the_agent() {
    let mut c = Core::new(trio(Strategy::LongestIdle), Term(1));
    online(&mut c, "alice", 1_000);
    enqueue(&mut c, "c1", "q", 0, 2_000);
    c.handle(
        Command::AgentAnswered {
            call: "c1".into(),
            agent: None,
        },
        t(3_000),
    )
    .expect("answer");
    c.handle(
        Command::CallEnded {
            call: "c1".into(),
            by: EndReason::CallerHungUp,
        },
        t(10_000),
    )
    .expect("end");
    let a = &c.snapshot().state.agents[&AgentId::from("alice")];
    assert_eq!(
        (a.logged_in_at, a.calls, a.busy_ms),
        (Some(t(1_000)), 1, 8_000)
    );
    c.handle(
        Command::AgentLogout {
            agent: "alice".into(),
        },
        t(11_000),
    )
    .expect("logout");
    let a = &c.snapshot().state.agents[&AgentId::from("alice")];
    assert_eq!((a.logged_in_at, a.calls, a.busy_ms), (None, 0, 0));
}

// ---- the indexed matcher against the reference ---------------------------------------

mod property {
    use super::*;
    use crate::Strategy as S;
    use proptest::prelude::*;
    use proptest::strategy::Strategy;

    const STRATEGIES: [S; 7] = [
        S::LongestIdle,
        S::MostSkilled,
        S::LeastOccupied,
        S::FewestCalls,
        S::RoundRobin,
        S::Random,
        S::RingAll,
    ];
    const SKILLS: [&str; 3] = ["en", "ru", "vip"];
    const EXPRS: [&str; 5] = [
        "en",
        "ru >= 3",
        "en AND ru OR vip",
        "en >= 2 AND NOT vip",
        "",
    ];

    fn config(strategies: &[usize], agents: &[Vec<u8>]) -> RoutingConfig {
        let queues = strategies
            .iter()
            .enumerate()
            .map(|(i, s)| QueueDef {
                priority: (i as i32 % 3) * 2,
                aging_per_sec: (i as u32 % 2) * 3,
                relax: vec![RelaxStep {
                    after_ms: 10_000,
                    skills: (i % 2 == 0).then(|| expr(EXPRS[(i + 1) % EXPRS.len()])),
                    priority_boost: 1,
                    overflow: None,
                }],
                ..queue(
                    &format!("q{i}"),
                    EXPRS[i % EXPRS.len()],
                    STRATEGIES[s % STRATEGIES.len()],
                )
            })
            .collect();
        let agents = agents
            .iter()
            .enumerate()
            .map(|(i, levels)| {
                let list: Vec<(&str, u8)> = SKILLS
                    .iter()
                    .zip(levels)
                    .filter(|(_, l)| **l > 0)
                    .map(|(s, l)| (*s, *l))
                    .collect();
                agent(&format!("a{i}"), &list)
            })
            .collect();
        site(queues, agents)
    }

    #[derive(Clone, Debug)]
    enum Step {
        Ready(usize),
        NotReady(usize),
        Enqueue {
            queue: usize,
            priority: i32,
            extra: Option<(usize, u8)>,
        },
        Answer(usize),
        End(usize),
        Abandon(usize),
        Fail(usize),
        Tick,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            3 => (0..8usize).prop_map(Step::Ready),
            1 => (0..8usize).prop_map(Step::NotReady),
            3 => (0..4usize, -2..3i32, proptest::option::of((0..3usize, 1..4u8)))
                .prop_map(|(queue, priority, extra)| Step::Enqueue { queue, priority, extra }),
            2 => (0..32usize).prop_map(Step::Answer),
            2 => (0..32usize).prop_map(Step::End),
            1 => (0..32usize).prop_map(Step::Abandon),
            1 => (0..32usize).prop_map(Step::Fail),
            1 => Just(Step::Tick),
        ]
    }

    /// Edits giving some calls what other parts of the engine set.
    #[derive(Clone, Debug)]
    struct Twist {
        call: usize,
        kind: u8,
        agent: usize,
    }

    fn twist() -> impl Strategy<Value = Twist> {
        (0..32usize, 0..4u8, 0..8usize).prop_map(|(call, kind, agent)| Twist { call, kind, agent })
    }

    fn command(s: &Step, n_agents: usize, calls: &[String], next: usize) -> Option<Command> {
        let a = |i: usize| AgentId(format!("a{}", i % n_agents));
        let c = |i: usize| calls.get(i % calls.len().max(1)).map(|c| CallId(c.clone()));
        Some(match s {
            Step::Ready(i) => Command::AgentReady { agent: a(*i) },
            Step::NotReady(i) => Command::AgentNotReady {
                agent: a(*i),
                reason: "break".into(),
            },
            Step::Enqueue {
                queue,
                priority,
                extra,
            } => Command::Enqueue {
                call: CallId(format!("c{next}")),
                queue: QueueId(format!("q{queue}")),
                priority: *priority,
                caller: CallerInfo::default(),
                skills: extra
                    .iter()
                    .map(|(s, l)| (SkillId::from(SKILLS[*s]), *l))
                    .collect(),
            },
            Step::Answer(i) => Command::AgentAnswered {
                call: c(*i)?,
                agent: None,
            },
            Step::End(i) => Command::CallEnded {
                call: c(*i)?,
                by: EndReason::CallerHungUp,
            },
            Step::Abandon(i) => Command::Abandon { call: c(*i)? },
            Step::Fail(i) => Command::AgentFailed {
                call: c(*i)?,
                reason: "486".into(),
            },
            Step::Tick => return None,
        })
    }

    fn twist_state(s: &mut State, twists: &[Twist], n_agents: usize) {
        let ids: Vec<CallId> = s.calls.keys().cloned().collect();
        for tw in twists {
            let Some(id) = ids.get(tw.call % ids.len().max(1)) else {
                return;
            };
            let Some(c) = s.calls.get_mut(id) else {
                continue;
            };
            let agent = AgentId(format!("a{}", tw.agent % n_agents));
            match tw.kind {
                0 => {
                    c.declined.insert(agent);
                }
                1 => c.for_agent = Some(agent),
                2 => c.not_before = Some(Timestamp(c.enqueued_at.0 + 5_000)),
                _ => c.relax_step = 1,
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn indexed_matcher_equals_the_reference(
            strategies in proptest::collection::vec(0..7usize, 1..5),
            agents in proptest::collection::vec(proptest::collection::vec(0..5u8, 3), 1..8),
            before in proptest::collection::vec(step(), 0..40),
            twists in proptest::collection::vec(twist(), 0..8),
            after in proptest::collection::vec(step(), 0..60),
        ) {
            let config = config(&strategies, &agents);
            let n = agents.len();
            let mut c = Core::new(config.clone(), Term(1));
            for i in 0..n {
                login(&mut c, &format!("a{i}"), &format!("{}", 100 + i), 0);
            }
            let mut calls: Vec<String> = Vec::new();
            let mut now = 1_000;
            let run = |c: &mut Core, steps: &[Step], calls: &mut Vec<String>, now: &mut u64| {
                for s in steps {
                    *now += 700;
                    match command(s, n, calls, calls.len()) {
                        Some(cmd) => {
                            if let Command::Enqueue { call, .. } = &cmd {
                                calls.push(call.0.clone());
                            }
                            let _ = c.handle_checked(cmd, t(*now));
                        }
                        None => {
                            *now += 9_000;
                            c.timeout_checked(t(*now));
                        }
                    }
                }
            };
            run(&mut c, &before, &mut calls, &mut now);
            // Restore with some calls twisted (every entry counts as changed), then
            // go on incrementally.
            let mut c = edited(&c, config, |s| twist_state(s, &twists, n));
            now += 1;
            c.timeout_checked(t(now));
            run(&mut c, &after, &mut calls, &mut now);
        }
    }
}
