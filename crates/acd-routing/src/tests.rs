//! Unit tests of each transition, through the public API.

use crate::*;

fn skills(list: &[(&str, u8)]) -> Vec<(SkillId, u8)> {
    list.iter().map(|(s, l)| (SkillId::from(*s), *l)).collect()
}

fn config() -> RoutingConfig {
    RoutingConfig {
        queues: vec![
            QueueDef {
                id: "sales".into(),
                skills: SkillExpr::all_of(skills(&[("en", 1)]).iter().map(|(s, l)| (s, *l))),
                wrap_up_ms: None,
                max_wait_ms: None,
                ..QueueDef::new("", SkillExpr::Any)
            },
            QueueDef {
                id: "ru".into(),
                skills: SkillExpr::all_of(skills(&[("ru", 3)]).iter().map(|(s, l)| (s, *l))),
                wrap_up_ms: Some(5_000),
                max_wait_ms: Some(60_000),
                ..QueueDef::new("", SkillExpr::Any)
            },
            QueueDef {
                id: "quick".into(),
                skills: SkillExpr::Any,
                wrap_up_ms: Some(0),
                max_wait_ms: None,
                ..QueueDef::new("", SkillExpr::Any)
            },
        ],
        agents: vec![
            AgentDef {
                id: "alice".into(),
                name: "Alice".into(),
                skills: skills(&[("en", 5)]),
                auto_answer: false,
            },
            AgentDef {
                id: "bob".into(),
                name: "Bob".into(),
                skills: skills(&[("en", 3), ("ru", 2)]),
                auto_answer: false,
            },
            AgentDef {
                id: "carol".into(),
                name: "Carol".into(),
                skills: skills(&[("ru", 5)]),
                auto_answer: false,
            },
        ],
        default_wrap_up_ms: 10_000,
        offer_timeout_ms: 20_000,
        extensions: Default::default(),
        not_ready_reasons: Vec::new(),
    }
}

fn t(ms: u64) -> Timestamp {
    Timestamp(ms)
}

fn core() -> Core {
    Core::new(config(), Term(1))
}

fn login(c: &mut Core, agent: &str, ext: &str, now: u64) {
    c.handle(
        Command::AgentLogin {
            agent: agent.into(),
            extension: ext.into(),
        },
        t(now),
    )
    .expect("login");
}

fn ready(c: &mut Core, agent: &str, now: u64) -> Vec<EventRecord> {
    c.handle(
        Command::AgentReady {
            agent: agent.into(),
        },
        t(now),
    )
    .expect("ready")
}

fn online(c: &mut Core, agent: &str, now: u64) -> Vec<EventRecord> {
    login(c, agent, &format!("ext-{agent}"), now);
    ready(c, agent, now)
}

fn enqueue(c: &mut Core, call: &str, queue: &str, priority: i32, now: u64) -> Vec<EventRecord> {
    c.handle(
        Command::Enqueue {
            call: call.into(),
            queue: queue.into(),
            priority,
            caller: CallerInfo {
                from: format!("sip:{call}@example.org"),
                ..CallerInfo::default()
            },
            skills: Default::default(),
        },
        t(now),
    )
    .expect("enqueue")
}

/// `(call, agent)` for every offer in `recs`.
fn offers(recs: &[EventRecord]) -> Vec<(String, String)> {
    recs.iter()
        .filter_map(|r| match &r.event {
            Event::CallOffered { call, agent, .. } => Some((call.0.clone(), agent.0.clone())),
            _ => None,
        })
        .collect()
}

fn state(c: &Core, agent: &str) -> AgentState {
    c.agent(&agent.into()).expect("agent").state
}

fn offer(call: &str, agent: &str) -> (String, String) {
    (call.to_owned(), agent.to_owned())
}

// ---- agent transitions ---------------------------------------------------------------

#[test]
fn login_starts_not_ready_at_extension() {
    let mut c = core();
    let recs = c
        .handle(
            Command::AgentLogin {
                agent: "alice".into(),
                extension: "1001".into(),
            },
            t(5),
        )
        .expect("login");
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].seq, Seq(1));
    assert_eq!(recs[0].term, Term(1));
    assert_eq!(recs[0].at, t(5));
    let a = c.agent(&"alice".into()).expect("alice");
    assert_eq!(a.state, AgentState::NotReady);
    assert_eq!(a.extension, Some("1001".into()));
    assert_eq!(a.name, "Alice");
}

#[test]
fn login_errors() {
    let mut c = core();
    let err = c
        .handle(
            Command::AgentLogin {
                agent: "nobody".into(),
                extension: "1".into(),
            },
            t(0),
        )
        .expect_err("unknown agent");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    login(&mut c, "alice", "1001", 0);
    // Same extension again: retried login, no-op.
    let recs = c
        .handle(
            Command::AgentLogin {
                agent: "alice".into(),
                extension: "1001".into(),
            },
            t(1),
        )
        .expect("retry");
    assert!(recs.is_empty());
    let err = c
        .handle(
            Command::AgentLogin {
                agent: "alice".into(),
                extension: "1002".into(),
            },
            t(1),
        )
        .expect_err("elsewhere");
    assert!(matches!(err, CommandError::AgentAlreadyLoggedIn { .. }));
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition);
    let err = c
        .handle(
            Command::AgentLogin {
                agent: "bob".into(),
                extension: "1001".into(),
            },
            t(1),
        )
        .expect_err("ext in use");
    assert!(matches!(err, CommandError::ExtensionInUse { .. }));
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert_eq!(c.last_seq(), Seq(1), "refused commands record nothing");
}

#[test]
fn hot_desking_extension_freed_on_logout() {
    let mut c = core();
    login(&mut c, "alice", "1001", 0);
    c.handle(
        Command::AgentLogout {
            agent: "alice".into(),
        },
        t(1),
    )
    .expect("logout");
    assert_eq!(state(&c, "alice"), AgentState::LoggedOut);
    login(&mut c, "bob", "1001", 2);
    login(&mut c, "alice", "1002", 3);
    assert_eq!(
        c.agent(&"alice".into()).and_then(|a| a.extension),
        Some("1002".into())
    );
}

#[test]
fn ready_not_ready_transitions() {
    let mut c = core();
    let err = c
        .handle(
            Command::AgentReady {
                agent: "alice".into(),
            },
            t(0),
        )
        .expect_err("not logged in");
    assert_eq!(err, CommandError::AgentNotLoggedIn("alice".into()));
    login(&mut c, "alice", "1001", 0);
    ready(&mut c, "alice", 10);
    let a = c.agent(&"alice".into()).expect("alice");
    assert_eq!(a.state, AgentState::Ready);
    assert_eq!(a.idle_since, Some(t(10)));
    assert!(
        ready(&mut c, "alice", 11).is_empty(),
        "ready twice is a no-op"
    );
    c.handle(
        Command::AgentNotReady {
            agent: "alice".into(),
            reason: "lunch".into(),
        },
        t(20),
    )
    .expect("not ready");
    let a = c.agent(&"alice".into()).expect("alice");
    assert_eq!(a.state, AgentState::NotReady);
    assert_eq!(a.reason.as_deref(), Some("lunch"));
    assert_eq!(a.since, t(20));
    let again = c
        .handle(
            Command::AgentNotReady {
                agent: "alice".into(),
                reason: "lunch".into(),
            },
            t(21),
        )
        .expect("same reason");
    assert!(again.is_empty());
    let other = c
        .handle(
            Command::AgentNotReady {
                agent: "alice".into(),
                reason: "training".into(),
            },
            t(22),
        )
        .expect("new reason");
    assert_eq!(other.len(), 1);
}

#[test]
fn logout_refused_while_reserved_or_on_call() {
    let mut c = core();
    online(&mut c, "alice", 0);
    assert_eq!(
        offers(&enqueue(&mut c, "c1", "sales", 0, 1)),
        vec![offer("c1", "alice")]
    );
    let err = c
        .handle(
            Command::AgentLogout {
                agent: "alice".into(),
            },
            t(2),
        )
        .expect_err("reserved");
    assert!(matches!(err, CommandError::AgentBusy { .. }));
    c.handle(
        Command::AgentAnswered {
            call: "c1".into(),
            agent: None,
        },
        t(3),
    )
    .expect("answer");
    let err = c
        .handle(
            Command::AgentLogout {
                agent: "alice".into(),
            },
            t(4),
        )
        .expect_err("on call");
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition);
    let err = c
        .handle(
            Command::AgentReady {
                agent: "alice".into(),
            },
            t(4),
        )
        .expect_err("on call");
    assert!(matches!(err, CommandError::AgentBusy { .. }));
}

// ---- call transitions ----------------------------------------------------------------

#[test]
fn enqueue_errors() {
    let mut c = core();
    let err = c
        .handle(
            Command::Enqueue {
                call: "c1".into(),
                queue: "nope".into(),
                priority: 0,
                caller: CallerInfo::default(),
                skills: Default::default(),
            },
            t(0),
        )
        .expect_err("unknown queue");
    assert_eq!(err, CommandError::UnknownQueue("nope".into()));
    enqueue(&mut c, "c1", "sales", 0, 0);
    let err = c
        .handle(
            Command::Enqueue {
                call: "c1".into(),
                queue: "sales".into(),
                priority: 0,
                caller: CallerInfo::default(),
                skills: Default::default(),
            },
            t(1),
        )
        .expect_err("duplicate");
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    let err = c
        .handle(
            Command::AgentAnswered {
                call: "zz".into(),
                agent: None,
            },
            t(1),
        )
        .expect_err("unknown call");
    assert_eq!(err, CommandError::UnknownCall("zz".into()));
}

#[test]
fn full_call_lifecycle() {
    let mut c = core();
    online(&mut c, "alice", 0);
    let recs = enqueue(&mut c, "c1", "sales", 0, 100);
    assert!(matches!(recs[0].event, Event::CallQueued { .. }));
    match &recs[1].event {
        Event::CallOffered {
            call,
            agent,
            extension,
            queue,
            caller,
            expires_at,
            ..
        } => {
            assert_eq!((call.as_str(), agent.as_str()), ("c1", "alice"));
            assert_eq!(extension.as_str(), "ext-alice");
            assert_eq!(queue.as_str(), "sales");
            assert_eq!(caller.from, "sip:c1@example.org");
            assert_eq!(*expires_at, t(20_100));
        }
        e => panic!("expected offer, got {e:?}"),
    }
    assert_eq!(
        state(&c, "alice"),
        AgentState::Reserved { call: "c1".into() }
    );
    assert_eq!(c.next_deadline(), Some(t(20_100)));

    let recs = c
        .handle(
            Command::AgentAnswered {
                call: "c1".into(),
                agent: None,
            },
            t(200),
        )
        .expect("answer");
    assert_eq!(
        recs[0].event,
        Event::CallConnected {
            call: "c1".into(),
            agent: "alice".into()
        }
    );
    assert_eq!(state(&c, "alice"), AgentState::OnCall { call: "c1".into() });
    assert!(
        c.handle(
            Command::AgentAnswered {
                call: "c1".into(),
                agent: None
            },
            t(201)
        )
        .expect("retry")
        .is_empty(),
        "a repeated answer report is a no-op"
    );
    assert_eq!(c.next_deadline(), None);

    let recs = c
        .handle(
            Command::CallEnded {
                call: "c1".into(),
                by: Default::default(),
            },
            t(1_000),
        )
        .expect("end");
    assert_eq!(
        recs[0].event,
        Event::CallEnded {
            call: "c1".into(),
            agent: "alice".into(),
            wrap_up_until: t(11_000),
            by: EndReason::Unknown,
        }
    );
    assert_eq!(state(&c, "alice"), AgentState::WrapUp { until: t(11_000) });
    assert!(c.call(&"c1".into()).is_none());
    let q = &c.queues()[c
        .queues()
        .iter()
        .position(|q| q.id.as_str() == "sales")
        .expect("sales")];
    assert_eq!((q.offered, q.answered, q.abandoned), (1, 1, 0));
}

#[test]
fn answered_or_failed_in_wrong_phase_is_refused() {
    let mut c = core();
    enqueue(&mut c, "c1", "sales", 0, 0);
    let err = c
        .handle(
            Command::AgentAnswered {
                call: "c1".into(),
                agent: None,
            },
            t(1),
        )
        .expect_err("not offered");
    assert!(matches!(err, CommandError::CallNotInPhase { .. }));
    let err = c
        .handle(
            Command::AgentFailed {
                call: "c1".into(),
                reason: "busy".into(),
            },
            t(1),
        )
        .expect_err("not offered");
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition);
}

#[test]
fn zero_wrap_up_goes_straight_to_ready_and_matches() {
    let mut c = core();
    online(&mut c, "alice", 0);
    enqueue(&mut c, "c1", "quick", 0, 1);
    enqueue(&mut c, "c2", "quick", 0, 2);
    c.handle(
        Command::AgentAnswered {
            call: "c1".into(),
            agent: None,
        },
        t(3),
    )
    .expect("answer");
    let recs = c
        .handle(
            Command::CallEnded {
                call: "c1".into(),
                by: Default::default(),
            },
            t(4),
        )
        .expect("end");
    assert_eq!(offers(&recs), vec![offer("c2", "alice")]);
}

// ---- routing -------------------------------------------------------------------------

#[test]
fn skills_decide_who_gets_which_call() {
    let mut c = core();
    // alice: en only; carol: ru 5. bob: ru 2 is below the ru queue's minimum of 3.
    online(&mut c, "alice", 0);
    online(&mut c, "carol", 0);
    let r = enqueue(&mut c, "ru1", "ru", 0, 10);
    assert_eq!(offers(&r), vec![offer("ru1", "carol")]);
    let r = enqueue(&mut c, "en1", "sales", 0, 11);
    assert_eq!(offers(&r), vec![offer("en1", "alice")]);
    let r = enqueue(&mut c, "ru2", "ru", 0, 12);
    assert!(offers(&r).is_empty());
    // bob's ru level is 2 < 3: still not offered.
    let r = online(&mut c, "bob", 13);
    assert!(offers(&r).is_empty(), "bob lacks ru>=3: {r:?}");
    // but he takes an English call.
    let r = enqueue(&mut c, "en2", "sales", 0, 14);
    assert_eq!(offers(&r), vec![offer("en2", "bob")]);
}

#[test]
fn a_call_nobody_can_take_does_not_block_others() {
    let mut c = core();
    enqueue(&mut c, "ru1", "ru", 9, 0); // top priority, but only carol could take it
    enqueue(&mut c, "en1", "sales", 0, 1);
    let r = online(&mut c, "alice", 2);
    assert_eq!(offers(&r), vec![offer("en1", "alice")]);
}

#[test]
fn priority_then_age_then_arrival() {
    let mut c = core();
    enqueue(&mut c, "low-old", "sales", 0, 0);
    enqueue(&mut c, "high", "sales", 5, 10);
    // Same priority and millisecond: arrival decides, not the id (ids sort the other way).
    enqueue(&mut c, "z-low-new", "sales", 0, 20);
    enqueue(&mut c, "a-low-new", "sales", 0, 20);
    assert_eq!(c.call(&"high".into()).and_then(|v| v.position), Some(1));
    assert_eq!(
        c.call(&"z-low-new".into()).and_then(|v| v.position),
        Some(3)
    );
    assert_eq!(
        c.call(&"a-low-new".into()).and_then(|v| v.position),
        Some(4)
    );
    let mut got = Vec::new();
    for (i, agent) in ["alice", "bob"].iter().enumerate() {
        got.extend(offers(&online(&mut c, agent, 30 + i as u64)));
    }
    assert_eq!(got, vec![offer("high", "alice"), offer("low-old", "bob")]);
    // arrival breaks the tie of equal priority and time
    c.handle(
        Command::AgentAnswered {
            call: "high".into(),
            agent: None,
        },
        t(40),
    )
    .expect("answer");
    c.handle(
        Command::CallEnded {
            call: "high".into(),
            by: Default::default(),
        },
        t(41),
    )
    .expect("end");
    let r = ready(&mut c, "alice", 42);
    assert_eq!(offers(&r), vec![offer("z-low-new", "alice")]);
}

#[test]
fn priority_ranks_across_queues() {
    let mut c = core();
    enqueue(&mut c, "sales-old", "sales", 0, 0);
    enqueue(&mut c, "quick-high", "quick", 3, 50);
    let r = online(&mut c, "alice", 60); // eligible for both
    assert_eq!(offers(&r), vec![offer("quick-high", "alice")]);
}

#[test]
fn longest_idle_agent_gets_the_call() {
    let mut c = core();
    online(&mut c, "bob", 100);
    online(&mut c, "alice", 50); // ready earlier
    let r = enqueue(&mut c, "c1", "sales", 0, 200);
    assert_eq!(offers(&r), vec![offer("c1", "alice")]);
    let r = enqueue(&mut c, "c2", "sales", 0, 201);
    assert_eq!(offers(&r), vec![offer("c2", "bob")]);
    // alice finishes first, becomes ready first → longer idle than bob, who is ready later.
    for (call, at) in [("c1", 300), ("c2", 310)] {
        c.handle(
            Command::AgentAnswered {
                call: call.into(),
                agent: None,
            },
            t(at),
        )
        .expect("answer");
        c.handle(
            Command::CallEnded {
                call: call.into(),
                by: Default::default(),
            },
            t(at + 1),
        )
        .expect("end");
    }
    ready(&mut c, "bob", 400);
    ready(&mut c, "alice", 500);
    let r = enqueue(&mut c, "c3", "sales", 0, 600);
    assert_eq!(offers(&r), vec![offer("c3", "bob")]);
}

#[test]
fn idle_tie_broken_by_agent_id() {
    let mut c = core();
    online(&mut c, "bob", 7);
    online(&mut c, "alice", 7);
    let r = enqueue(&mut c, "c1", "sales", 0, 8);
    assert_eq!(offers(&r), vec![offer("c1", "alice")]);
}

#[test]
fn rona_requeues_in_original_place_and_sets_agent_not_ready() {
    let mut c = core();
    online(&mut c, "alice", 0);
    enqueue(&mut c, "first", "sales", 0, 10); // offered to alice
    enqueue(&mut c, "second", "sales", 0, 20); // waits
    let recs = c
        .handle(
            Command::AgentFailed {
                call: "first".into(),
                reason: "486 Busy Here".into(),
            },
            t(30),
        )
        .expect("fail");
    assert_eq!(
        recs[0].event,
        Event::CallRequeued {
            call: "first".into(),
            agent: "alice".into(),
            reason: "486 Busy Here".into()
        }
    );
    let a = c.agent(&"alice".into()).expect("alice");
    assert_eq!(a.state, AgentState::NotReady);
    assert_eq!(a.reason.as_deref(), Some(RONA_REASON));
    let v = c.call(&"first".into()).expect("first");
    assert_eq!(v.enqueued_at, t(10));
    assert_eq!(v.position, Some(1), "keeps its place ahead of `second`");
    let r = online(&mut c, "bob", 40);
    assert_eq!(offers(&r), vec![offer("first", "bob")]);
}

#[test]
fn offer_timeout_is_a_rona() {
    let mut c = core();
    online(&mut c, "alice", 0);
    enqueue(&mut c, "c1", "sales", 0, 1_000);
    assert_eq!(c.next_deadline(), Some(t(21_000)));
    assert!(c.handle_timeout(t(20_999)).is_empty(), "early is a no-op");
    let recs = c.handle_timeout(t(21_000));
    assert_eq!(
        recs[0].event,
        Event::CallRequeued {
            call: "c1".into(),
            agent: "alice".into(),
            reason: OFFER_TIMEOUT_REASON.into()
        }
    );
    assert_eq!(state(&c, "alice"), AgentState::NotReady);
    assert_eq!(
        c.call(&"c1".into()).map(|v| v.phase),
        Some(CallPhase::Waiting)
    );
}

#[test]
fn abandon_while_queued() {
    let mut c = core();
    enqueue(&mut c, "c1", "sales", 0, 1_000);
    let recs = c
        .handle(Command::Abandon { call: "c1".into() }, t(4_000))
        .expect("abandon");
    assert_eq!(
        recs[0].event,
        Event::CallAbandoned {
            call: "c1".into(),
            queue: "sales".into(),
            waited_ms: 3_000,
            agent: None
        }
    );
    assert!(c.call(&"c1".into()).is_none());
    let q = c
        .queues()
        .into_iter()
        .find(|q| q.id.as_str() == "sales")
        .expect("sales");
    assert_eq!((q.waiting, q.abandoned), (0, 1));
    // A later agent gets nothing.
    assert!(offers(&online(&mut c, "alice", 5_000)).is_empty());
}

#[test]
fn abandon_while_offered_releases_agent_keeping_idle_time() {
    let mut c = core();
    online(&mut c, "alice", 100);
    online(&mut c, "bob", 200);
    enqueue(&mut c, "c1", "sales", 0, 300); // → alice
    let recs = c
        .handle(Command::Abandon { call: "c1".into() }, t(400))
        .expect("abandon");
    assert_eq!(
        recs[0].event,
        Event::CallAbandoned {
            call: "c1".into(),
            queue: "sales".into(),
            waited_ms: 100,
            agent: Some("alice".into())
        }
    );
    let a = c.agent(&"alice".into()).expect("alice");
    assert_eq!(a.state, AgentState::Ready);
    assert_eq!(a.idle_since, Some(t(100)));
    assert_eq!(c.next_deadline(), None, "offer timer gone");
    let r = enqueue(&mut c, "c2", "sales", 0, 500);
    assert_eq!(
        offers(&r),
        vec![offer("c2", "alice")],
        "alice is still the longest idle"
    );
}

#[test]
fn abandon_after_connect_is_an_end_and_end_before_connect_is_an_abandon() {
    let mut c = core();
    online(&mut c, "alice", 0);
    enqueue(&mut c, "c1", "sales", 0, 1);
    c.handle(
        Command::AgentAnswered {
            call: "c1".into(),
            agent: None,
        },
        t(2),
    )
    .expect("answer");
    let recs = c
        .handle(Command::Abandon { call: "c1".into() }, t(3))
        .expect("hangup");
    assert!(matches!(recs[0].event, Event::CallEnded { .. }));
    enqueue(&mut c, "c2", "sales", 0, 4);
    let recs = c
        .handle(
            Command::CallEnded {
                call: "c2".into(),
                by: Default::default(),
            },
            t(5),
        )
        .expect("gone");
    assert!(matches!(
        recs[0].event,
        Event::CallAbandoned { agent: None, .. }
    ));
}

#[test]
fn wrap_up_ends_exactly_at_deadline() {
    let mut c = core();
    online(&mut c, "carol", 0);
    enqueue(&mut c, "c1", "ru", 0, 10);
    c.handle(
        Command::AgentAnswered {
            call: "c1".into(),
            agent: None,
        },
        t(20),
    )
    .expect("answer");
    c.handle(
        Command::CallEnded {
            call: "c1".into(),
            by: Default::default(),
        },
        t(1_000),
    )
    .expect("end");
    assert_eq!(state(&c, "carol"), AgentState::WrapUp { until: t(6_000) });
    enqueue(&mut c, "c2", "ru", 0, 2_000);
    assert_eq!(c.next_deadline(), Some(t(6_000)));
    assert!(c.handle_timeout(t(5_999)).is_empty(), "early is a no-op");
    assert_eq!(state(&c, "carol"), AgentState::WrapUp { until: t(6_000) });
    let recs = c.handle_timeout(t(6_000));
    assert_eq!(
        recs[0].event,
        Event::AgentStateChanged {
            agent: "carol".into(),
            state: AgentState::Ready,
            reason: None
        }
    );
    assert_eq!(offers(&recs), vec![offer("c2", "carol")]);
    assert_eq!(
        c.agent(&"carol".into()).and_then(|a| a.idle_since),
        Some(t(6_000))
    );
}

#[test]
fn ready_ends_wrap_up_early() {
    let mut c = core();
    online(&mut c, "alice", 0);
    enqueue(&mut c, "c1", "sales", 0, 1);
    c.handle(
        Command::AgentAnswered {
            call: "c1".into(),
            agent: None,
        },
        t(2),
    )
    .expect("answer");
    c.handle(
        Command::CallEnded {
            call: "c1".into(),
            by: Default::default(),
        },
        t(3),
    )
    .expect("end");
    ready(&mut c, "alice", 4);
    assert_eq!(state(&c, "alice"), AgentState::Ready);
    assert_eq!(c.next_deadline(), None);
    assert!(c.handle_timeout(t(10_003)).is_empty());
}

#[test]
fn max_wait_times_the_call_out() {
    let mut c = core();
    enqueue(&mut c, "c1", "ru", 0, 1_000);
    assert_eq!(c.next_deadline(), Some(t(61_000)));
    assert!(c.handle_timeout(t(60_999)).is_empty());
    let recs = c.handle_timeout(t(61_000));
    assert_eq!(
        recs[0].event,
        Event::CallTimedOut {
            call: "c1".into(),
            queue: "ru".into(),
            waited_ms: 60_000
        }
    );
    let q = c
        .queues()
        .into_iter()
        .find(|q| q.id.as_str() == "ru")
        .expect("ru");
    assert_eq!((q.waiting, q.timed_out), (0, 1));
}

#[test]
fn queue_view_counts() {
    let mut c = core();
    online(&mut c, "alice", 0);
    login(&mut c, "bob", "b", 0);
    enqueue(&mut c, "c1", "sales", 0, 10);
    enqueue(&mut c, "c2", "sales", 0, 20);
    let q = c
        .queues()
        .into_iter()
        .find(|q| q.id.as_str() == "sales")
        .expect("sales");
    assert_eq!(q.waiting, 2);
    assert_eq!(q.offering, 1);
    assert_eq!(q.longest_wait_since, Some(t(10)));
    assert_eq!(q.agents_ready, 0);
    assert_eq!(q.agents_logged_in, 2);
    assert_eq!(q.offered, 2);
    assert_eq!(c.agents().count(), 3);
}

// ---- follower path -------------------------------------------------------------------

#[test]
fn apply_refuses_gaps_stale_terms_and_inconsistent_records() {
    let mut leader = Core::new(config(), Term(2));
    let mut recs = Vec::new();
    login(&mut leader, "alice", "1", 0);
    recs.extend(ready(&mut leader, "alice", 1));
    recs.extend(enqueue(&mut leader, "c1", "sales", 0, 2));

    let mut f = Core::new(config(), Term(2));
    let err = f.apply(&recs[0]).expect_err("gap");
    assert_eq!(
        err,
        ApplyError::Gap {
            expected: Seq(1),
            got: Seq(2)
        }
    );

    let mut f = Core::new(config(), Term(3));
    let login_rec = EventRecord {
        seq: Seq(1),
        term: Term(2),
        at: t(0),
        event: Event::AgentLoggedIn {
            agent: "alice".into(),
            extension: "1".into(),
        },
        origin: None,
    };
    assert_eq!(
        f.apply(&login_rec),
        Err(ApplyError::StaleTerm {
            current: Term(3),
            got: Term(2)
        })
    );

    let mut f = Core::new(config(), Term(1));
    let bogus = EventRecord {
        event: Event::AgentLoggedIn {
            agent: "ghost".into(),
            extension: "1".into(),
        },
        ..login_rec.clone()
    };
    assert!(matches!(
        f.apply(&bogus),
        Err(ApplyError::Inconsistent { .. })
    ));
    assert_eq!(f.last_seq(), Seq(0), "refused record changes nothing");
    f.apply(&login_rec).expect("login");
    assert_eq!(
        f.term(),
        Term(2),
        "follower adopts the leader's higher term"
    );
}

#[test]
fn set_term_stamps_later_records_and_never_goes_back() {
    let mut c = core();
    c.set_term(Term(5));
    c.set_term(Term(3));
    assert_eq!(c.term(), Term(5));
    login(&mut c, "alice", "1", 0);
    let r = ready(&mut c, "alice", 1);
    assert_eq!(r[0].term, Term(5));
}

#[test]
fn snapshot_version_and_config_checks() {
    let mut c = core();
    online(&mut c, "carol", 0);
    enqueue(&mut c, "c1", "ru", 0, 1);
    let mut snap = c.snapshot();
    snap.format_version = SNAPSHOT_FORMAT_VERSION + 1;
    assert!(matches!(
        Core::from_snapshot(config(), snap),
        Err(SnapshotError::UnsupportedVersion { .. })
    ));
    let mut cfg = config();
    cfg.queues.retain(|q| q.id.as_str() != "ru");
    assert!(matches!(
        Core::from_snapshot(cfg, c.snapshot()),
        Err(SnapshotError::ConfigMismatch(_))
    ));
    let mut cfg = config();
    cfg.agents.retain(|a| a.id.as_str() != "carol");
    assert!(matches!(
        Core::from_snapshot(cfg, c.snapshot()),
        Err(SnapshotError::ConfigMismatch(_))
    ));
    let restored = Core::from_snapshot(config(), c.snapshot()).expect("restore");
    assert_eq!(restored.state_digest(), c.state_digest());
    // JSON round trip keeps everything.
    let json = serde_json::to_string(&c.snapshot()).expect("ser");
    let back: Snapshot = serde_json::from_str(&json).expect("de");
    assert_eq!(back, c.snapshot());
}

#[test]
fn digest_changes_with_state() {
    let mut a = core();
    let b = core();
    assert_eq!(a.state_digest(), b.state_digest());
    login(&mut a, "alice", "1", 0);
    assert_ne!(a.state_digest(), b.state_digest());
}

#[test]
fn config_validation() {
    let mut cfg = config();
    assert_eq!(cfg.validate(), Ok(()));
    cfg.agents.push(cfg.agents[0].clone());
    assert_eq!(
        cfg.validate(),
        Err(ConfigError::DuplicateAgent("alice".into()))
    );
}

mod actions;
mod callback_calls;
mod config_changes;
mod invariants;
mod matching;
mod origin;
mod overflows;
mod relaxation;
mod support;
mod transfers;
