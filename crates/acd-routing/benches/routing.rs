//! Benchmarks of the distributor's routing core on a mid-size site: 200 agents with
//! three skills each over 10 skill-based queues (plus a 1,000-agent variant of the
//! per-call benches, for the large-site goal).
//!
//! The issue-8 scale (`routing/scale/*`): 10,000 agents, 200 queues with skill
//! expressions mixing AND, OR and NOT and a mix of strategies, 50,000 waiting calls;
//! one routing decision timed per iteration (an agent becoming Ready and matched to the
//! best waiting call of its queues; a call arriving where agents are Ready), with
//! p50/p99 printed from per-iteration times, and the bytes held per waiting call
//! (counted by a global allocator).
//!
//! Run: `cargo bench -p acd-routing --bench routing -- --measurement-time 3`
//! (results and machine notes in BENCHMARKS.md at the workspace root).

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use acd_routing::{
    AgentDef, CallId, CallerInfo, Command, Core, Event, EventRecord, QueueDef, QueueId,
    RoutingConfig, SkillId, Term, Timestamp,
};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

/// The site the brief asks about; 1,000 is measured too, for the large-site goal.
const AGENTS: usize = 200;
const QUEUES: usize = 10;
const WRAP_UP_MS: u64 = 10_000;
/// 2026-11-23T00:00:00Z in ms; any value works, the core never reads a clock.
const T0: u64 = 1_795_392_000_000;

fn queue_id(q: usize) -> QueueId {
    QueueId(format!("q{q:02}"))
}

/// Queue `q` needs skill `s{q}` (at level 1..=3); queues 8 and 9 also need `billing`.
/// Agent `j` has `s{j}`, `s{j+3}`, `s{j+7}` (mod 10) at varied levels, and `billing`
/// when `j` is even: about 40-60 eligible agents per queue, overlapping.
fn config(n_agents: usize) -> RoutingConfig {
    let skill = |s: &str, l: u8| (SkillId::from(s), l);
    let queues = (0..QUEUES)
        .map(|q| {
            let mut required = vec![skill(&format!("s{q}"), 1 + (q % 3) as u8)];
            if q >= 8 {
                required.push(skill("billing", 1));
            }
            QueueDef {
                id: queue_id(q),
                skills: acd_routing::SkillExpr::all_of(required.iter().map(|(s, l)| (s, *l))),
                wrap_up_ms: None,
                max_wait_ms: Some(600_000),
                ..QueueDef::new("", acd_routing::SkillExpr::Any)
            }
        })
        .collect();
    let agents = (0..n_agents)
        .map(|j| {
            let mut skills = vec![
                skill(&format!("s{}", j % 10), 3 + (j % 3) as u8),
                skill(&format!("s{}", (j + 3) % 10), 2 + (j % 2) as u8),
                skill(&format!("s{}", (j + 7) % 10), 5),
            ];
            if j % 2 == 0 {
                skills.push(skill("billing", 2));
            }
            AgentDef {
                id: format!("agent{j:03}").into(),
                name: format!("Agent {j}"),
                skills,
                auto_answer: false,
            }
        })
        .collect();
    site_config(queues, agents)
}

fn site_config(queues: Vec<QueueDef>, agents: Vec<AgentDef>) -> RoutingConfig {
    RoutingConfig {
        queues,
        agents,
        default_wrap_up_ms: WRAP_UP_MS,
        offer_timeout_ms: 20_000,
        extensions: Default::default(),
        not_ready_reasons: Vec::new(),
    }
}

fn caller(n: usize) -> CallerInfo {
    CallerInfo {
        from: format!("sip:+1555{n:07}@carrier.example.net"),
        display: "Alice Caller".into(),
        did: "+18005550100".into(),
        variables: BTreeMap::from([
            (
                "account".to_string(),
                format!("{:08}", n * 7919 % 100_000_000),
            ),
            ("lang".to_string(), "en".to_string()),
        ]),
        number: String::new(),
    }
}

fn enqueue(call: &CallId, n: usize) -> Command {
    Command::Enqueue {
        call: call.clone(),
        queue: queue_id(n % QUEUES),
        priority: (n % 3) as i32,
        caller: caller(n),
        skills: Default::default(),
    }
}

/// A leader core with every agent logged in and Ready (staggered idle times), and the
/// records that produced it.
fn ready_core(n_agents: usize) -> (Core, Vec<EventRecord>, u64) {
    let mut core = Core::new(config(n_agents), Term(1));
    let mut recs = Vec::new();
    let mut t = T0;
    for j in 0..n_agents {
        let agent = format!("agent{j:03}");
        let login = Command::AgentLogin {
            agent: agent.as_str().into(),
            extension: format!("{}", 2000 + j).as_str().into(),
        };
        recs.extend(core.handle(login, Timestamp(t)).unwrap());
        recs.extend(
            core.handle(
                Command::AgentReady {
                    agent: agent.as_str().into(),
                },
                Timestamp(t),
            )
            .unwrap(),
        );
        t += 37;
    }
    (core, recs, t)
}

fn offered_agent(recs: &[EventRecord]) -> bool {
    recs.iter()
        .any(|r| matches!(r.event, Event::CallOffered { .. }))
}

/// One complete call: Enqueue (offered at once) → AgentAnswered → CallEnded →
/// wrap-up timer. Returns the time after wrap-up and the number of records.
fn call_cycle(core: &mut Core, n: usize, t: u64) -> (u64, usize) {
    let call = CallId(format!("call{n}"));
    let mut records = 0;
    let r = core.handle(enqueue(&call, n), Timestamp(t)).unwrap();
    debug_assert!(offered_agent(&r), "call {n} offered at once");
    records += r.len();
    records += core
        .handle(
            Command::AgentAnswered {
                call: call.clone(),
                agent: None,
            },
            Timestamp(t + 4_000),
        )
        .unwrap()
        .len();
    records += core
        .handle(
            Command::CallEnded {
                call,
                by: Default::default(),
            },
            Timestamp(t + 184_000),
        )
        .unwrap()
        .len();
    let end = t + 184_000 + WRAP_UP_MS;
    records += core.handle_timeout(Timestamp(end)).len();
    (end, records)
}

/// `busy` calls connected in the background, spread over the queues (the agents on
/// them stay OnCall), with every queue still having a Ready agent.
fn busy_core(n_agents: usize, busy: usize) -> (Core, u64) {
    let (mut core, _, mut t) = ready_core(n_agents);
    for n in 0..busy {
        let call = CallId(format!("bg{n}"));
        let r = core.handle(enqueue(&call, n), Timestamp(t)).unwrap();
        assert!(offered_agent(&r), "background call {n} offered");
        core.handle(Command::AgentAnswered { call, agent: None }, Timestamp(t))
            .unwrap();
        t += 1;
    }
    (core, t)
}

fn bench_enqueue(c: &mut Criterion) {
    let mut g = c.benchmark_group("routing/enqueue_match");
    g.throughput(Throughput::Elements(1));

    // Only `Core::handle(Enqueue)` is timed (CallQueued + CallOffered, matcher run);
    // the call is then abandoned untimed, which returns the agent to Ready with its
    // idle time, so every iteration sees the same site.
    let variants: [(&str, usize, usize, usize); 4] = [
        ("200_ready", AGENTS, 0, 0),
        ("100_oncall_100_ready", AGENTS, 100, 0),
        ("200_ready_50_waiting_unservable", AGENTS, 0, 50),
        ("1000_agents_500_oncall", 1000, 500, 0),
    ];
    for (name, n_agents, busy, waiting) in variants {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let (mut core, mut t) = busy_core(n_agents, busy);
                // Park `waiting` calls in queue 9 with all of its agents on a break:
                // the matcher must rank and skip them on every Enqueue.
                if waiting > 0 {
                    let cfg = config(n_agents);
                    for a in cfg
                        .agents
                        .iter()
                        .filter(|a| cfg.queues[9].accepts(&a.skills))
                    {
                        let cmd = Command::AgentNotReady {
                            agent: a.id.clone(),
                            reason: "break".into(),
                        };
                        core.handle(cmd, Timestamp(t)).unwrap();
                    }
                    for n in 0..waiting {
                        let call = CallId(format!("wait{n}"));
                        let cmd = Command::Enqueue {
                            call,
                            queue: queue_id(9),
                            priority: 0,
                            caller: caller(n),
                            skills: Default::default(),
                        };
                        assert!(!offered_agent(&core.handle(cmd, Timestamp(t)).unwrap()));
                    }
                }
                let mut total = Duration::ZERO;
                for i in 0..iters as usize {
                    // Queues 0..8 (queue 9 may be unstaffed in the waiting variant).
                    let n = i % 9;
                    let call = CallId(format!("c{i}"));
                    let cmd = enqueue(&call, n);
                    let start = Instant::now();
                    let recs = core.handle(black_box(cmd), Timestamp(t)).unwrap();
                    total += start.elapsed();
                    // Queued and offered at once; waiting calls whose relaxation step came due
                    // meanwhile are relaxed in the same command (part of its cost).
                    let offered = matches!(
                        recs.last().map(|r| &r.event),
                        Some(Event::CallOffered { call: c, .. }) if *c == call
                    );
                    assert!(offered, "call {i} was not offered at once: {recs:?}");
                    core.handle(Command::Abandon { call }, Timestamp(t + 1))
                        .unwrap();
                    t += 2;
                }
                total
            })
        });
    }
    g.finish();
}

fn bench_call_cycle(c: &mut Criterion) {
    let mut g = c.benchmark_group("routing/call_cycle");
    g.throughput(Throughput::Elements(1));
    let variants = [
        ("200_ready", AGENTS, 0usize),
        ("100_oncall_100_ready", AGENTS, 100),
        ("1000_agents_500_oncall", 1000, 500),
    ];
    for (name, n_agents, busy) in variants {
        g.bench_function(name, |b| {
            let (mut core, t0) = busy_core(n_agents, busy);
            // Check the first cycles produce the expected 5 records.
            let (mut t, recs) = call_cycle(&mut core, 0, t0);
            assert_eq!(recs, 5, "queued, offered, connected, ended, ready");
            let mut n = 1;
            b.iter(|| {
                let (next, recs) = call_cycle(&mut core, n, t);
                assert_eq!(recs, 5);
                n += 1;
                t = next;
            });
        });
    }
    g.finish();
}

/// A recorded leader log: 200 logins, then 1,000 calls in waves of 100 concurrent calls
/// (enqueue all, answer all, end all, wrap-up timers).
fn recorded_stream() -> Vec<EventRecord> {
    let (mut core, mut recs, mut t) = ready_core(AGENTS);
    let mut n = 0;
    for _wave in 0..10 {
        let calls: Vec<CallId> = (n..n + 100).map(|k| CallId(format!("call{k}"))).collect();
        for (k, call) in calls.iter().enumerate() {
            recs.extend(core.handle(enqueue(call, n + k), Timestamp(t)).unwrap());
            t += 50;
        }
        for call in &calls {
            recs.extend(
                core.handle(
                    Command::AgentAnswered {
                        call: call.clone(),
                        agent: None,
                    },
                    Timestamp(t),
                )
                .unwrap(),
            );
            t += 50;
        }
        for call in &calls {
            recs.extend(
                core.handle(
                    Command::CallEnded {
                        call: call.clone(),
                        by: Default::default(),
                    },
                    Timestamp(t),
                )
                .unwrap(),
            );
            t += 50;
        }
        t += WRAP_UP_MS;
        recs.extend(core.handle_timeout(Timestamp(t)));
        n += 100;
    }
    // The standby must end in the leader's state.
    let mut follower = Core::new(config(AGENTS), Term(1));
    for r in &recs {
        follower.apply(r).unwrap();
    }
    assert_eq!(follower.state_digest(), core.state_digest());
    recs
}

fn bench_apply(c: &mut Criterion) {
    let recs = recorded_stream();
    let cfg = config(AGENTS);
    let mut g = c.benchmark_group("routing/apply");
    g.throughput(Throughput::Elements(recs.len() as u64));
    g.bench_function(format!("standby_replay_{}_records", recs.len()), |b| {
        b.iter_batched(
            || Core::new(cfg.clone(), Term(1)),
            |mut core| {
                for r in &recs {
                    core.apply(r).unwrap();
                }
                core
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

// ---- the issue-8 scale ------------------------------------------------------------------

/// Counts live heap bytes, for the bytes held per waiting call.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is passed through to `System`; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

mod scale {
    use super::*;
    use acd_routing::{AgentId, RelaxStep, SkillExpr, Strategy};

    pub const AGENTS: usize = 10_000;
    pub const QUEUES: usize = 200;
    pub const WAITING: usize = 50_000;
    /// Queues `0..BUSY_QUEUES` hold the waiting calls and agents `0..BUSY_AGENTS`
    /// (skills `w*`) serve them, all NotReady; the other queues (skills `r*`) have
    /// their agents Ready and no calls waiting.
    const BUSY_QUEUES: usize = 180;
    const BUSY_AGENTS: usize = 9_000;

    fn expr(text: &str) -> SkillExpr {
        SkillExpr::parse(text).unwrap()
    }

    /// Queue `k`'s expression over skills `{p}0..{p}{n}` (AND, OR, NOT mixed).
    fn queue_expr(k: usize, p: &str, n: usize) -> String {
        let (a, b, c) = (k % n, (k * 7 + 3) % n, (k * 13 + 11) % n);
        match k % 3 {
            0 => format!("{p}{a} >= 2 AND {p}{b}"),
            1 => format!("{p}{a} >= 3 OR {p}{b} >= 2 AND {p}{c}"),
            _ => format!("({p}{a} OR {p}{b}) AND NOT {p}{c} >= 4"),
        }
    }

    fn strategy(k: usize) -> Strategy {
        match k % 8 {
            0..=3 => Strategy::LongestIdle,
            4 => Strategy::MostSkilled,
            5 => Strategy::FewestCalls,
            6 => Strategy::RoundRobin,
            _ if k % 16 == 7 => Strategy::LeastOccupied,
            _ => Strategy::Random,
        }
    }

    pub fn config() -> RoutingConfig {
        let queues = (0..QUEUES)
            .map(|k| {
                let (p, n) = if k < BUSY_QUEUES {
                    ("w", 40)
                } else {
                    ("r", 10)
                };
                let relax = if k % 2 == 0 {
                    vec![RelaxStep {
                        after_ms: 60_000,
                        skills: Some(expr(&format!("{p}{}", k % n))),
                        priority_boost: 1,
                        overflow: None,
                    }]
                } else {
                    Vec::new()
                };
                QueueDef {
                    id: QueueId(format!("q{k:03}")),
                    priority: (k % 3) as i32,
                    strategy: strategy(k),
                    aging_per_sec: u32::from(k % 4 == 0),
                    relax,
                    ..QueueDef::new("", expr(&queue_expr(k, p, n)))
                }
            })
            .collect();
        let agents = (0..AGENTS)
            .map(|j| {
                let skill = |s: String, l: usize| (SkillId::from(s), l as u8);
                let skills = if j < BUSY_AGENTS {
                    vec![
                        skill(format!("w{}", j % 40), 1 + j % 5),
                        skill(format!("w{}", (j * 7 + 3) % 40), 1 + (j / 5) % 5),
                        skill(format!("w{}", (j * 13 + 11) % 40), 3),
                        skill(format!("w{}", (j * 17 + 5) % 40), 2),
                    ]
                } else {
                    vec![
                        skill(format!("r{}", j % 10), 1 + j % 5),
                        skill(format!("r{}", (j * 3 + 1) % 10), 2 + j % 3),
                        skill(format!("r{}", (j * 7 + 2) % 10), 4),
                    ]
                };
                AgentDef {
                    id: agent_id(j),
                    name: format!("Agent {j}"),
                    skills,
                    auto_answer: false,
                }
            })
            .collect();
        site_config(queues, agents)
    }

    fn agent_id(j: usize) -> AgentId {
        AgentId(format!("agent{j:05}"))
    }

    pub struct Site {
        pub core: Core,
        pub t: u64,
        /// NotReady agents that serve at least one queue with waiting calls.
        pub idle: Vec<AgentId>,
        /// Live heap bytes added by enqueuing the waiting calls, per call.
        pub bytes_per_call: f64,
        /// Mean JSON size of a waiting call's record in the state.
        pub json_per_call: f64,
    }

    pub fn site() -> Site {
        let cfg = config();
        let mut core = Core::new(cfg.clone(), Term(1));
        let mut t = T0;
        for j in 0..AGENTS {
            let login = Command::AgentLogin {
                agent: agent_id(j),
                extension: format!("{}", 10_000 + j).as_str().into(),
            };
            core.handle(login, Timestamp(t)).unwrap();
            if j >= BUSY_AGENTS {
                let ready = Command::AgentReady { agent: agent_id(j) };
                core.handle(ready, Timestamp(t)).unwrap();
            }
            t += 1;
        }
        let before = LIVE.load(Ordering::Relaxed);
        for n in 0..WAITING {
            let cmd = Command::Enqueue {
                call: CallId(format!("wait{n:06}")),
                queue: QueueId(format!("q{:03}", n % BUSY_QUEUES)),
                priority: (n % 3) as i32,
                caller: caller(n),
                skills: Default::default(),
            };
            let recs = core.handle(cmd, Timestamp(t)).unwrap();
            assert_eq!(recs.len(), 1, "nobody is Ready for the waiting calls");
            t += 1;
        }
        let bytes_per_call = (LIVE.load(Ordering::Relaxed) - before) as f64 / WAITING as f64;
        let snap = core.snapshot();
        let json: usize = snap
            .state
            .calls
            .values()
            .map(|c| serde_json::to_vec(c).unwrap().len())
            .sum();
        let idle = cfg
            .agents
            .iter()
            .take(BUSY_AGENTS)
            .filter(|a| {
                cfg.queues[..BUSY_QUEUES]
                    .iter()
                    .any(|q| q.accepts(&a.skills))
            })
            .map(|a| a.id.clone())
            .collect();
        Site {
            core,
            t,
            idle,
            bytes_per_call,
            json_per_call: json as f64 / WAITING as f64,
        }
    }

    /// Agent `i`'s turn: Ready (timed) → offered the best waiting call; then,
    /// untimed, the offer fails (the call goes back to its place, the agent NotReady).
    pub fn agent_ready(site: &mut Site, i: usize) -> Timed {
        let agent = site.idle[i % site.idle.len()].clone();
        let t = site.t;
        let clock = Timed::start();
        let recs = site
            .core
            .handle(black_box(Command::AgentReady { agent }), Timestamp(t))
            .unwrap();
        let took = clock.stop();
        let Some(Event::CallOffered { call, .. }) = recs.last().map(|r| &r.event) else {
            panic!("agent {i} was not offered a call: {recs:?}");
        };
        let fail = Command::AgentFailed {
            call: call.clone(),
            reason: "bench".into(),
        };
        site.core.handle(fail, Timestamp(t + 1)).unwrap();
        site.t += 2;
        took
    }

    /// Call `i` arrives in one of the staffed queues (timed) → offered at once; then,
    /// untimed, abandoned (the agent back to Ready with its idle time).
    pub fn call_arrives(site: &mut Site, i: usize) -> Timed {
        let call = CallId(format!("new{i}"));
        let cmd = Command::Enqueue {
            call: call.clone(),
            queue: QueueId(format!("q{:03}", BUSY_QUEUES + i % (QUEUES - BUSY_QUEUES))),
            priority: (i % 3) as i32,
            caller: caller(i),
            skills: Default::default(),
        };
        let t = site.t;
        let clock = Timed::start();
        let recs = site.core.handle(black_box(cmd), Timestamp(t)).unwrap();
        let took = clock.stop();
        // Queued and offered at once; waiting calls whose relaxation step came due
        // meanwhile are relaxed in the same command (part of its cost).
        let offered = matches!(
            recs.last().map(|r| &r.event),
            Some(Event::CallOffered { call: c, .. }) if *c == call
        );
        assert!(offered, "call {i} was not offered at once: {recs:?}");
        site.core
            .handle(Command::Abandon { call }, Timestamp(t + 1))
            .unwrap();
        site.t += 2;
        took
    }
}

type Decision = fn(&mut scale::Site, usize) -> Timed;

/// One decision's wall time and the time its thread spent on a core (the CPU
/// clock): on a shared machine the difference is time spent waiting for a core.
#[derive(Clone, Copy, Debug)]
struct Timed {
    wall: Duration,
    cpu: Duration,
}

impl Timed {
    fn start() -> (Instant, Duration) {
        let cpu = thread_cpu();
        (Instant::now(), cpu)
    }
}

trait Stop {
    fn stop(self) -> Timed;
}

impl Stop for (Instant, Duration) {
    fn stop(self) -> Timed {
        let wall = self.0.elapsed();
        Timed {
            wall,
            cpu: thread_cpu().saturating_sub(self.1),
        }
    }
}

/// This thread's CPU time.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the call only writes it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn bench_scale(c: &mut Criterion) {
    let mut g = c.benchmark_group("routing/scale");
    g.throughput(Throughput::Elements(1));
    let cases: [(&str, Decision); 2] = [
        ("agent_ready_50k_waiting", scale::agent_ready),
        ("call_arrives_1k_ready", scale::call_arrives),
    ];
    for (name, decide) in cases {
        // Built on first use, so a filter that skips the group skips the set-up too.
        let mut site: Option<scale::Site> = None;
        let mut times: Vec<Timed> = Vec::new();
        let mut n = 0;
        g.bench_function(name, |b| {
            let s = site.get_or_insert_with(scale::site);
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let took = decide(s, n);
                    times.push(took);
                    total += took.wall;
                    n += 1;
                }
                total
            })
        });
        if let Some(s) = &site {
            report(name, s, &mut times);
        }
    }
    g.finish();
}

/// Prints the percentiles of every timed decision criterion ran (warm-up included)
/// in wall time and in CPU time (less the clocks' own cost), and decisions per
/// second from the mean wall time and from the mean CPU time (one core's worth).
fn report(name: &str, site: &scale::Site, times: &mut [Timed]) {
    let overhead = {
        let mut empty: Vec<Duration> = (0..1001).map(|_| Timed::start().stop().cpu).collect();
        empty.sort();
        empty[500]
    };
    // Runs of different speed make different numbers of decisions: the first
    // 100,000 are the same sequence in every run, so they compare code with code.
    let mut first: Vec<Duration> = times.iter().take(100_000).map(|t| t.cpu).collect();
    first.sort();
    println!(
        "routing/scale/{name}: first {} decisions: CPU p50 {:.2?} p90 {:.2?} p99 {:.2?}, mean {:.2?}",
        first.len(),
        first[first.len() / 2],
        first[first.len() * 9 / 10],
        first[first.len() * 99 / 100],
        first.iter().sum::<Duration>() / first.len().max(1) as u32,
    );
    let mut wall: Vec<Duration> = times.iter().map(|t| t.wall).collect();
    let mut cpu: Vec<Duration> = times
        .iter()
        .map(|t| t.cpu.saturating_sub(overhead))
        .collect();
    wall.sort();
    cpu.sort();
    let at = |ts: &[Duration], p: f64| ts[((ts.len() - 1) as f64 * p) as usize];
    // The distributor asks for the next deadline after every command.
    let mut deadline: Vec<Duration> = (0..1001)
        .map(|_| {
            let clock = Instant::now();
            black_box(site.core.next_deadline());
            clock.elapsed()
        })
        .collect();
    deadline.sort();
    let rate = |ts: &[Duration]| ts.len() as f64 / ts.iter().sum::<Duration>().as_secs_f64();
    println!(
        "routing/scale/{name}: {} decisions; wall p50 {:.2?} p90 {:.2?} p99 {:.2?} max {:.2?}, \
         {:.0}/s; CPU p50 {:.2?} p90 {:.2?} p99 {:.2?} max {:.2?}, {:.0}/s per core \
         (clock overhead {:.2?} subtracted); {} agents, {} queues, {} waiting calls: \
         {:.0} heap bytes per waiting call (state record + indexes), record {:.0} bytes as JSON; \
         next_deadline p50 {:.2?}",
        times.len(),
        at(&wall, 0.50),
        at(&wall, 0.90),
        at(&wall, 0.99),
        at(&wall, 1.0),
        rate(&wall),
        at(&cpu, 0.50),
        at(&cpu, 0.90),
        at(&cpu, 0.99),
        at(&cpu, 1.0),
        rate(&cpu),
        overhead,
        scale::AGENTS,
        scale::QUEUES,
        scale::WAITING,
        site.bytes_per_call,
        site.json_per_call,
        deadline[500],
    );
}

criterion_group!(
    benches,
    bench_enqueue,
    bench_call_cycle,
    bench_apply,
    bench_scale
);
criterion_main!(benches);
