//! Determinism: a leader driven by a seeded random workload, a follower fed its records,
//! and a copy restored from a mid-run snapshot must all stay in the same state.

use acd_routing::*;

/// splitmix64: a tiny, well-known PRNG, so the workload is reproducible from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, items: &'a [&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

const AGENTS: &[&str] = &["a1", "a2", "a3", "a4", "a5", "a6", "ghost"];
const QUEUES: &[&str] = &["en", "ru", "vip", "nowhere"];
const EXTS: &[&str] = &["100", "101", "102", "103", "104", "105"];

fn config() -> RoutingConfig {
    let sk = |l: &[(&str, u8)]| -> Vec<(SkillId, u8)> {
        l.iter().map(|(s, v)| (SkillId::from(*s), *v)).collect()
    };
    let agent = |id: &str, skills| AgentDef {
        id: id.into(),
        name: id.to_uppercase(),
        skills,
        auto_answer: false,
    };
    RoutingConfig {
        queues: vec![
            QueueDef {
                id: "en".into(),
                skills: SkillExpr::all_of(sk(&[("en", 1)]).iter().map(|(s, l)| (s, *l))),
                wrap_up_ms: None,
                max_wait_ms: Some(120_000),
                ..QueueDef::new("", SkillExpr::Any)
            },
            QueueDef {
                id: "ru".into(),
                skills: SkillExpr::all_of(sk(&[("ru", 3)]).iter().map(|(s, l)| (s, *l))),
                wrap_up_ms: Some(2_000),
                max_wait_ms: None,
                ..QueueDef::new("", SkillExpr::Any)
            },
            QueueDef {
                id: "vip".into(),
                skills: SkillExpr::all_of(
                    sk(&[("en", 4), ("billing", 2)])
                        .iter()
                        .map(|(s, l)| (s, *l)),
                ),
                wrap_up_ms: Some(0),
                max_wait_ms: Some(30_000),
                ..QueueDef::new("", SkillExpr::Any)
            },
        ],
        agents: vec![
            agent("a1", sk(&[("en", 5), ("billing", 3)])),
            agent("a2", sk(&[("en", 2)])),
            agent("a3", sk(&[("ru", 4)])),
            agent("a4", sk(&[("ru", 2), ("en", 4)])),
            agent("a5", sk(&[("en", 4), ("billing", 1), ("ru", 5)])),
            agent("a6", sk(&[])),
        ],
        default_wrap_up_ms: 5_000,
        offer_timeout_ms: 15_000,
        extensions: Default::default(),
        not_ready_reasons: Vec::new(),
    }
}

/// One step of the workload: a command or a clock tick.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)]
enum Step {
    Cmd(Command, Timestamp),
    Tick(Timestamp),
    Promote(Term),
    /// A command about the `n`-th call some agent is reserved for (`offered`) or talking
    /// on; resolved against the state when run, so the edge's reports hit live calls.
    /// Resolution reads only the state, so a restored copy resolves it the same way.
    OnLive {
        offered: bool,
        n: u64,
        make: fn(CallId) -> Command,
        at: Timestamp,
    },
}

fn workload(seed: u64, steps: usize) -> Vec<Step> {
    let mut rng = Rng(seed);
    let mut now = 1_700_000_000_000u64;
    let mut next_call = 0u64;
    let mut out = Vec::with_capacity(steps);
    for i in 0..steps {
        now += rng.below(4_000);
        let at = Timestamp(now);
        // Refer mostly to recent calls so that answers/failures/ends hit live ones.
        let recent = |rng: &mut Rng| -> CallId {
            let back = rng.below(6);
            CallId(format!("call-{}", next_call.saturating_sub(back)))
        };
        let cmd = match rng.below(100) {
            0..=7 => Command::AgentLogin {
                agent: rng.pick(AGENTS).into(),
                extension: rng.pick(EXTS).into(),
            },
            8..=22 => Command::AgentReady {
                agent: rng.pick(AGENTS).into(),
            },
            23..=27 => Command::AgentNotReady {
                agent: rng.pick(AGENTS).into(),
                reason: rng.pick(&["break", "lunch", "training"]).into(),
            },
            28..=30 => Command::AgentLogout {
                agent: rng.pick(AGENTS).into(),
            },
            31..=47 => {
                next_call += 1;
                Command::Enqueue {
                    call: CallId(format!("call-{next_call}")),
                    queue: rng.pick(QUEUES).into(),
                    priority: rng.below(3) as i32,
                    caller: CallerInfo {
                        from: format!("+4930{}", rng.below(1_000_000)),
                        display: "Caller".into(),
                        did: "+498000".into(),
                        variables: [("lang".to_owned(), rng.pick(&["en", "ru"]).to_owned())]
                            .into_iter()
                            .collect(),
                        number: String::new(),
                    },
                    skills: Default::default(),
                }
            }
            48..=53 => Command::Abandon {
                call: recent(&mut rng),
            },
            54..=68 => Command::AgentAnswered {
                call: recent(&mut rng),
                agent: None,
            },
            69..=73 => Command::AgentFailed {
                call: recent(&mut rng),
                reason: "480".into(),
            },
            74..=84 => Command::CallEnded {
                call: recent(&mut rng),
                by: Default::default(),
            },
            85..=94 => {
                let (offered, make): (bool, fn(CallId) -> Command) = match rng.below(5) {
                    0 | 1 => (true, |call| Command::AgentAnswered { call, agent: None }),
                    2 => (true, |call| Command::AgentFailed {
                        call,
                        reason: "486".into(),
                    }),
                    3 => (false, |call| Command::CallEnded {
                        call,
                        by: Default::default(),
                    }),
                    _ => (rng.below(2) == 0, |call| Command::Abandon { call }),
                };
                out.push(Step::OnLive {
                    offered,
                    n: rng.below(8),
                    make,
                    at,
                });
                continue;
            }
            95..=96 if i > 0 && rng.below(10) == 0 => {
                out.push(Step::Promote(Term(2 + i as u64)));
                continue;
            }
            _ => {
                out.push(Step::Tick(at));
                continue;
            }
        };
        out.push(Step::Cmd(cmd, at));
    }
    out
}

/// Runs one step on `core`, returning its records (errors are part of the workload).
fn run(core: &mut Core, step: &Step) -> Vec<EventRecord> {
    match step {
        Step::Cmd(cmd, at) => core.handle(cmd.clone(), *at).unwrap_or_default(),
        Step::Tick(at) => {
            // Tick exactly at the deadline when one is due, so timers really fire.
            let at = match core.next_deadline() {
                Some(d) if d <= *at => d,
                _ => *at,
            };
            core.handle_timeout(at)
        }
        Step::OnLive {
            offered,
            n,
            make,
            at,
        } => {
            let live: Vec<CallId> = core
                .agents()
                .filter_map(|a| match (a.state, offered) {
                    (AgentState::Reserved { call }, true)
                    | (AgentState::OnCall { call }, false) => Some(call),
                    _ => None,
                })
                .collect();
            if live.is_empty() {
                return Vec::new();
            }
            let call = live[(*n as usize) % live.len()].clone();
            core.handle(make(call), *at).unwrap_or_default()
        }
        Step::Promote(term) => {
            core.set_term(*term);
            Vec::new()
        }
    }
}

/// Cross-checks the read models: agent and call states agree, and no Ready agent sits
/// idle while a call it could take is waiting (the matcher ran to completion).
fn check_invariants(core: &Core) {
    for a in core.agents() {
        match &a.state {
            AgentState::Reserved { call } => {
                let c = core.call(call).expect("reserved call exists");
                assert!(
                    matches!(&c.phase, CallPhase::Offered { agent, .. } if *agent == a.id),
                    "{a:?} vs {c:?}"
                );
            }
            AgentState::OnCall { call } => {
                let c = core.call(call).expect("active call exists");
                assert!(matches!(&c.phase, CallPhase::Connected { agent, .. } if *agent == a.id));
            }
            AgentState::LoggedOut => assert!(a.extension.is_none()),
            _ => assert!(a.extension.is_some()),
        }
    }
    for q in core.queues() {
        assert!(
            q.waiting == q.offering || q.agents_ready == 0,
            "queue {} has {} waiting calls and {} ready agents",
            q.id,
            q.waiting - q.offering,
            q.agents_ready
        );
    }
}

fn replay(seed: u64, steps: usize) -> (u64, usize) {
    let work = workload(seed, steps);
    let mut leader = Core::new(config(), Term(1));
    let mut follower = Core::new(config(), Term(1));
    let mut restored: Option<Core> = None;
    let mut total = 0usize;
    for (i, step) in work.iter().enumerate() {
        let recs = run(&mut leader, step);
        check_invariants(&leader);
        for r in &recs {
            assert_eq!(r.term, leader.term());
            follower
                .apply(r)
                .expect("follower applies every leader record");
        }
        total += recs.len();
        assert_eq!(follower.last_seq(), leader.last_seq());
        assert_eq!(
            follower.state_digest(),
            leader.state_digest(),
            "seed {seed} step {i}"
        );

        if let Some(copy) = restored.as_mut() {
            let again = run(copy, step);
            assert_eq!(
                again, recs,
                "restored copy decides the same, seed {seed} step {i}"
            );
        }
        if i == steps / 2 {
            let json = serde_json::to_vec(&leader.snapshot()).expect("serialise snapshot");
            let snap: Snapshot = serde_json::from_slice(&json).expect("parse snapshot");
            restored = Some(Core::from_snapshot(config(), snap).expect("restore"));
        }
    }
    assert_eq!(follower.snapshot(), leader.snapshot());
    let copy = restored.expect("snapshot taken");
    assert_eq!(copy.snapshot(), leader.snapshot());
    assert_eq!(copy.state_digest(), leader.state_digest());
    (leader.state_digest(), total)
}

#[test]
fn follower_and_restored_copy_track_the_leader() {
    for seed in 0..12 {
        let (_, records) = replay(seed, 1_500);
        assert!(
            records > 500,
            "seed {seed}: workload too idle ({records} records)"
        );
    }
}

#[test]
fn same_seed_same_digest() {
    assert_eq!(replay(42, 800), replay(42, 800));
    assert_ne!(replay(42, 800).0, replay(43, 800).0);
}

#[test]
fn workload_exercises_every_event_kind() {
    let mut leader = Core::new(config(), Term(1));
    let mut seen = std::collections::BTreeSet::new();
    for step in workload(7, 3_000) {
        for r in run(&mut leader, &step) {
            let json = serde_json::to_value(&r.event).expect("event to json");
            if let Some(kind) = json.get("type").and_then(|t| t.as_str()) {
                seen.insert(kind.to_owned());
            }
        }
    }
    for kind in [
        "agent_logged_in",
        "agent_state_changed",
        "agent_logged_out",
        "call_queued",
        "call_offered",
        "call_connected",
        "call_requeued",
        "call_abandoned",
        "call_timed_out",
        "call_ended",
    ] {
        assert!(
            seen.contains(kind),
            "workload never produced {kind}: {seen:?}"
        );
    }
}

/// Pins the digest of a fixed run. It changes only when the state layout or its
/// serialisation changes, which must come with a snapshot format version bump.
#[test]
fn digest_is_stable_across_builds() {
    let mut c = Core::new(config(), Term(1));
    c.handle(
        Command::AgentLogin {
            agent: "a1".into(),
            extension: "100".into(),
        },
        Timestamp(1),
    )
    .expect("login");
    c.handle(Command::AgentReady { agent: "a1".into() }, Timestamp(2))
        .expect("ready");
    c.handle(
        Command::Enqueue {
            call: "c1".into(),
            queue: "vip".into(),
            priority: 1,
            caller: CallerInfo::default(),
            skills: Default::default(),
        },
        Timestamp(3),
    )
    .expect("enqueue");
    assert_eq!(
        c.state_digest(),
        PINNED_DIGEST,
        "got {:#x}",
        c.state_digest()
    );
}

const PINNED_DIGEST: u64 = 0xc457_d747_4e84_31d2;
