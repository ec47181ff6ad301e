//! Callbacks as queued calls: conversion in place, dialling details on the offer,
//! retries, giving up, and the pending list.

use super::support::*;
use super::*;

fn with_policy(retries: u32) -> RoutingConfig {
    cfg_with(|cfg| {
        queue_mut(cfg, "sales").callback = Some(CallbackPolicy {
            trunk: "pstn".into(),
            retries,
            retry_after_ms: 60_000,
            ring_ms: 25_000,
        });
    })
}

fn request(call: &str, queue: &str) -> Command {
    Command::RequestCallback {
        call: call.into(),
        record: CallbackRecord {
            queue: queue.into(),
            number: "+15550002".into(),
            priority: 7,
            voicemail: Some("vm.wav".into()),
            caller: CallerInfo::default(),
            requested_at: Timestamp(0),
        },
    }
}

fn result(call: &str, outcome: CallbackOutcome) -> Command {
    Command::CallbackResult {
        call: call.into(),
        outcome,
    }
}

fn dial_of(recs: &[EventRecord]) -> Option<(CallbackDial, Timestamp)> {
    recs.iter().find_map(|r| match &r.event {
        Event::CallOffered {
            dial: Some(d),
            expires_at,
            ..
        } => Some((d.clone(), *expires_at)),
        _ => None,
    })
}

#[test]
fn a_waiting_call_becomes_its_callback_in_place() {
    let cfg = with_policy(0);
    let mut c = Core::new(cfg.clone(), Term(1));
    let mut all = enqueue(&mut c, "c0", "sales", 0, 500);
    all.extend(enqueue(&mut c, "c1", "sales", 1, 1_000));
    let before = rec(&c, "c1").expect("waiting");
    all.extend(run(&mut c, request("c1", "sales"), 5_000));
    assert!(rec(&c, "c1").is_none());
    let cb = rec(&c, "c1:cb").expect("callback call");
    assert_eq!(
        (cb.enqueued_at, cb.arrival, cb.priority),
        (before.enqueued_at, before.arrival, before.priority)
    );
    assert_eq!(
        cb.callback,
        Some(CallbackCall {
            number: "+15550002".into(),
            attempts: 0,
            voicemail: Some("vm.wav".into())
        })
    );
    assert_eq!(
        c.call(&"c1:cb".into()).and_then(|v| v.position),
        Some(1),
        "kept its place"
    );
    assert_eq!(counters(&c, "sales").offered, 2, "not counted twice");
    // A re-sent request books nothing more.
    assert!(run(&mut c, request("c1", "sales"), 6_000).is_empty());
    assert_follows(cfg, &all, &c);
}

#[test]
fn a_request_for_a_call_not_waiting_enqueues_a_new_callback_now() {
    let mut c = Core::new(with_policy(0), Term(1));
    run(&mut c, request("ivr-7", "sales"), 5_000);
    let cb = rec(&c, "ivr-7:cb").expect("callback call");
    assert_eq!((cb.enqueued_at, cb.priority), (t(5_000), 7));
    assert_eq!(counters(&c, "sales").offered, 1);
}

#[test]
fn the_offer_carries_the_dial_and_an_answer_connects_as_usual() {
    let cfg = with_policy(0);
    let mut c = Core::new(cfg.clone(), Term(1));
    let mut all = run(&mut c, request("c1", "sales"), 0);
    all.extend(go_online(&mut c, "alice", 1_000));
    let (dial, expires) = dial_of(&all).expect("offer with dial");
    assert_eq!(
        dial,
        CallbackDial {
            number: "+15550002".into(),
            trunk: "pstn".into(),
            ring_ms: 25_000,
            attempt: 1
        }
    );
    assert_eq!(
        expires,
        t(1_000 + 20_000 + 25_000),
        "the customer's ring is covered"
    );
    assert!(run(&mut c, result("c1:cb", CallbackOutcome::Answered), 5_000).is_empty());
    all.extend(answer(&mut c, "c1:cb", 8_000));
    assert_eq!(c.callbacks().count(), 0, "connected: no longer pending");
    assert_eq!(
        state(&c, "alice"),
        AgentState::OnCall {
            call: "c1:cb".into()
        }
    );
    assert_follows(cfg, &all, &c);
}

#[test]
fn a_failed_attempt_retries_after_the_policys_wait_then_gives_up() {
    let cfg = with_policy(1);
    let mut c = Core::new(cfg.clone(), Term(1));
    let mut all = run(&mut c, request("c1", "sales"), 0);
    all.extend(go_online(&mut c, "alice", 1_000));
    let recs = run(&mut c, result("c1:cb", CallbackOutcome::Busy), 10_000);
    assert_eq!(
        events(&recs)[0],
        Event::CallbackAttemptFailed {
            call: "c1:cb".into(),
            agent: "alice".into(),
            outcome: CallbackOutcome::Busy,
            retry_at: Some(t(70_000)),
        }
    );
    assert!(offers(&recs).is_empty(), "not before the retry time");
    all.extend(recs);
    assert_eq!(state(&c, "alice"), AgentState::Ready);
    assert_eq!(
        c.agent(&"alice".into()).and_then(|a| a.idle_since),
        Some(t(1_000))
    );
    assert_eq!(c.next_deadline(), Some(t(70_000)));
    assert!(offers(&c.handle_timeout(t(69_999))).is_empty());
    let recs = c.handle_timeout(t(70_000));
    assert_eq!(
        events(&recs)[0],
        Event::CallbackRetryDue {
            call: "c1:cb".into()
        }
    );
    assert_eq!(dial_of(&recs).map(|(d, _)| d.attempt), Some(2));
    all.extend(recs);
    // Second failure: retries (1) used up, the callback is given up.
    let recs = run(&mut c, result("c1:cb", CallbackOutcome::NoAnswer), 80_000);
    assert!(matches!(
        events(&recs)[0],
        Event::CallbackAttemptFailed { retry_at: None, .. }
    ));
    all.extend(recs);
    assert!(rec(&c, "c1:cb").is_none());
    assert_eq!(counters(&c, "sales").callbacks_failed, 1);
    assert_eq!(c.callbacks().count(), 0);
    assert_follows(cfg, &all, &c);
}

#[test]
fn callback_results_are_refused_for_other_calls_and_phases() {
    let mut c = Core::new(with_policy(0), Term(1));
    enqueue(&mut c, "plain", "sales", 0, 0);
    run(&mut c, request("c1", "sales"), 0);
    let kind = |c: &mut Core, cmd| c.handle(cmd, t(1)).expect_err("refused").kind();
    assert_eq!(
        kind(&mut c, result("plain", CallbackOutcome::Busy)),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        kind(&mut c, result("c1:cb", CallbackOutcome::Busy)),
        ErrorKind::FailedPrecondition
    );
    assert_eq!(
        kind(&mut c, result("zz", CallbackOutcome::Busy)),
        ErrorKind::NotFound
    );
}
