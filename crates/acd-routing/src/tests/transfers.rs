//! Transfer of a connected call (to a queue, to an agent) and rejection of an offer.

use super::support::*;
use super::*;

/// Alice online, `c1` in sales offered to her and connected at 1 s.
fn connected() -> (Core, Vec<EventRecord>) {
    let mut c = core();
    let mut all = go_online(&mut c, "alice", 0);
    all.extend(enqueue(&mut c, "c1", "sales", 3, 500));
    all.extend(answer(&mut c, "c1", 1_000));
    (c, all)
}

fn transfer(
    c: &mut Core,
    by: &str,
    target: TransferTarget,
    now: u64,
) -> Result<Vec<EventRecord>, CommandError> {
    c.handle(
        Command::Transfer {
            call: "c1".into(),
            by: by.into(),
            target,
        },
        t(now),
    )
}

#[test]
fn transfer_to_a_queue_keeps_the_calls_data_and_wraps_the_agent_up() {
    let (mut c, mut all) = connected();
    online(&mut c, "carol", 1_500);
    let recs =
        transfer(&mut c, "alice", TransferTarget::Queue("ru".into()), 2_000).expect("transfer");
    let ev = events(&recs);
    assert_eq!(
        ev[0],
        Event::CallTransferred {
            call: "c1".into(),
            from_agent: "alice".into(),
            target: TransferTarget::Queue("ru".into()),
            wrap_up_until: t(12_000),
        }
    );
    // Carol (ru) is offered the call at once.
    assert_eq!(offers(&recs), vec![offer("c1", "carol")]);
    assert_eq!(state(&c, "alice"), AgentState::WrapUp { until: t(12_000) });
    let r = rec(&c, "c1").expect("call");
    assert_eq!(
        (r.queue.as_str(), r.priority, r.enqueued_at),
        ("ru", 3, t(500))
    );
    assert_eq!(counters(&c, "ru").offered, 1);
    all.extend(recs);
    let _ = all;
}

#[test]
fn transfer_to_an_agent_offers_only_to_them() {
    let (mut c, all) = connected();
    login(&mut c, "bob", "ext-bob", 1_500);
    let recs =
        transfer(&mut c, "alice", TransferTarget::Agent("bob".into()), 2_000).expect("transfer");
    assert!(offers(&recs).is_empty(), "bob is not ready yet");
    let r = rec(&c, "c1").expect("call");
    assert_eq!(
        (r.queue.as_str(), r.for_agent),
        ("sales", Some(AgentId::from("bob")))
    );
    // Alice's wrap-up ends first: she is Ready, but the call is for Bob.
    let recs = c.handle_timeout(t(12_000));
    assert!(offers(&recs).is_empty(), "{recs:?}");
    assert_eq!(state(&c, "alice"), AgentState::Ready);
    run(
        &mut c,
        Command::AgentNotReady {
            agent: "alice".into(),
            reason: "break".into(),
        },
        12_500,
    );
    let recs = ready(&mut c, "bob", 13_000);
    assert_eq!(offers(&recs), vec![offer("c1", "bob")]);
    let _ = all;
}

#[test]
fn transfer_is_refused_unless_by_the_connected_agent_to_a_known_target() {
    let (mut c, _) = connected();
    online(&mut c, "bob", 0);
    let digest = c.state_digest();
    let kind = |r: Result<Vec<EventRecord>, CommandError>| r.expect_err("refused").kind();
    let cases = [
        (
            "bob",
            TransferTarget::Queue("ru".into()),
            ErrorKind::FailedPrecondition,
        ),
        (
            "alice",
            TransferTarget::Queue("nope".into()),
            ErrorKind::NotFound,
        ),
        (
            "alice",
            TransferTarget::Agent("carol".into()),
            ErrorKind::FailedPrecondition,
        ),
        (
            "alice",
            TransferTarget::Agent("zed".into()),
            ErrorKind::NotFound,
        ),
        (
            "alice",
            TransferTarget::Agent("alice".into()),
            ErrorKind::InvalidArgument,
        ),
    ];
    for (by, target, want) in cases {
        let what = format!("{by} → {target:?}");
        assert_eq!(kind(transfer(&mut c, by, target, 2_000)), want, "{what}");
    }
    let unknown = c.handle(
        Command::Transfer {
            call: "nope".into(),
            by: "alice".into(),
            target: TransferTarget::Queue("ru".into()),
        },
        t(2_000),
    );
    assert_eq!(kind(unknown), ErrorKind::NotFound);
    assert_eq!(c.state_digest(), digest, "nothing changed");
}

#[test]
fn zero_wrap_up_transfer_leaves_the_agent_ready() {
    let mut c = core();
    online(&mut c, "alice", 0);
    enqueue(&mut c, "c1", "quick", 0, 100);
    answer(&mut c, "c1", 200);
    let ev = events(
        &transfer(&mut c, "alice", TransferTarget::Queue("sales".into()), 300).expect("transfer"),
    );
    assert!(
        matches!(
            ev[1],
            Event::AgentStateChanged {
                state: AgentState::Ready,
                ..
            }
        ),
        "{ev:?}"
    );
}

#[test]
fn a_rejected_offer_returns_to_its_place_and_is_not_offered_to_that_agent_again() {
    let mut c = core();
    let mut all = go_online(&mut c, "alice", 0);
    all.extend(enqueue(&mut c, "c1", "sales", 0, 100));
    let before = rec(&c, "c1").expect("c1");
    let recs = run(
        &mut c,
        Command::RejectOffer {
            call: "c1".into(),
            agent: "alice".into(),
        },
        300,
    );
    let ev = events(&recs);
    assert_eq!(
        ev[0],
        Event::OfferRejected {
            call: "c1".into(),
            agent: "alice".into()
        }
    );
    // Alice stays Ready with her idle time, and is not offered c1 again.
    assert!(offers(&recs).is_empty(), "{recs:?}");
    assert_eq!(state(&c, "alice"), AgentState::Ready);
    all.extend(recs);
    let recs = c.handle_timeout(t(30_000));
    assert!(offers(&recs).is_empty());
    all.extend(recs);
    let r = rec(&c, "c1").expect("c1");
    assert_eq!(
        (r.enqueued_at, r.arrival, r.phase.clone()),
        (before.enqueued_at, before.arrival, CallPhase::Waiting)
    );
    assert!(r.declined.contains(&AgentId::from("alice")));
    let a = c.agent(&"alice".into()).expect("alice");
    assert_eq!(a.idle_since, Some(t(0)));
    // Bob takes c1 once Alice is busy elsewhere.
    all.extend(run(
        &mut c,
        Command::AgentNotReady {
            agent: "alice".into(),
            reason: "break".into(),
        },
        30_350,
    ));
    let recs = run(
        &mut c,
        Command::AgentLogin {
            agent: "bob".into(),
            extension: "ext-bob".into(),
        },
        30_400,
    );
    all.extend(recs);
    let recs = ready(&mut c, "bob", 30_400);
    assert!(offers(&recs).contains(&offer("c1", "bob")), "{recs:?}");
    all.extend(recs);
    assert_follows(config(), &all, &c);
}

#[test]
fn only_the_offered_agent_may_reject() {
    let mut c = core();
    online(&mut c, "alice", 0);
    online(&mut c, "bob", 0);
    enqueue(&mut c, "c1", "sales", 0, 100);
    let offered_to = match rec(&c, "c1").map(|r| r.phase) {
        Some(CallPhase::Offered { agent, .. }) => agent,
        other => panic!("{other:?}"),
    };
    let other: AgentId = if offered_to.as_str() == "alice" {
        "bob".into()
    } else {
        "alice".into()
    };
    let err = c
        .handle(
            Command::RejectOffer {
                call: "c1".into(),
                agent: other,
            },
            t(200),
        )
        .expect_err("refused");
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition);
    let err = c
        .handle(
            Command::RejectOffer {
                call: "zz".into(),
                agent: offered_to,
            },
            t(200),
        )
        .expect_err("refused");
    assert_eq!(err.kind(), ErrorKind::NotFound);
}
