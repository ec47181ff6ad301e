//! IVR actions that reach the distributor: callback requests (replicated,
//! deduplicated per inbound call, in snapshots and the digest) and enqueues
//! with extra skills the matcher must respect.

use super::*;
use std::collections::BTreeMap;

fn callback_cmd(call: &str, queue: &str, number: &str) -> Command {
    Command::RequestCallback {
        call: call.into(),
        record: CallbackRecord {
            queue: queue.into(),
            number: number.into(),
            priority: 2,
            voicemail: Some(format!("{call}-1.wav")),
            caller: CallerInfo {
                from: "sip:bob@example.org".into(),
                variables: BTreeMap::from([("lang".to_string(), "ru".to_string())]),
                ..CallerInfo::default()
            },
            requested_at: Timestamp(0),
        },
    }
}

#[test]
fn a_callback_is_kept_once_and_followed_by_the_standby() {
    let mut leader = core();
    let mut standby = core();
    let recs = leader
        .handle(callback_cmd("c1", "sales", "+15551234"), t(500))
        .expect("callback");
    assert_eq!(recs.len(), 1);
    let Event::CallbackRequested { call, record } = &recs[0].event else {
        panic!("not a callback: {:?}", recs[0].event);
    };
    assert_eq!(call.as_str(), "c1");
    assert_eq!(record.requested_at, t(500), "stamped by the core");
    assert_eq!(record.voicemail.as_deref(), Some("c1-1.wav"));
    for r in &recs {
        standby.apply(r).expect("apply");
    }
    assert_eq!(standby.state_digest(), leader.state_digest());
    assert_ne!(leader.state_digest(), core().state_digest());
    let listed: Vec<_> = standby.callbacks().collect();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].1.number, "+15551234");

    // The same inbound call asking again (an edge re-sending it, a flow
    // looping) books nothing more.
    let again = leader
        .handle(callback_cmd("c1", "sales", "+15550000"), t(900))
        .expect("repeat accepted");
    assert!(again.is_empty());
    assert_eq!(leader.callbacks().count(), 1);
    assert_eq!(
        leader.callbacks().next().map(|(_, r)| r.number.as_str()),
        Some("+15551234")
    );
    // A second call books its own; an unknown queue is refused.
    leader
        .handle(callback_cmd("c2", "ru", "+15550002"), t(1000))
        .expect("second");
    assert_eq!(leader.callbacks().count(), 2);
    let err = leader
        .handle(callback_cmd("c3", "nope", "+1"), t(1100))
        .expect_err("unknown queue");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    // A follower refuses a record that would book a call twice.
    let dup = EventRecord {
        seq: standby.last_seq().next(),
        ..recs[0].clone()
    };
    assert!(standby.apply(&dup).is_err());
}

#[test]
fn callbacks_survive_a_snapshot_and_match_the_digest() {
    let mut c = core();
    c.handle(callback_cmd("c1", "sales", "+15551234"), t(10))
        .expect("callback");
    let snap = c.snapshot();
    let restored = Core::from_snapshot(config(), snap.clone()).expect("restore");
    assert_eq!(restored.state_digest(), c.state_digest());
    assert_eq!(restored.callbacks().count(), 1);
    let json = serde_json::to_string(&snap).expect("ser");
    assert!(json.contains("+15551234"));
    let back: Snapshot = serde_json::from_str(&json).expect("de");
    assert_eq!(back, snap);
    // A state without callbacks serialises as before (older standbys agree).
    let empty = serde_json::to_string(&core().snapshot()).expect("ser");
    assert!(!empty.contains("callbacks"));
}

fn enqueue_with(
    c: &mut Core,
    call: &str,
    queue: &str,
    needs: &[(&str, u8)],
    now: u64,
) -> Vec<EventRecord> {
    c.handle(
        Command::Enqueue {
            call: call.into(),
            queue: queue.into(),
            priority: 0,
            caller: CallerInfo::default(),
            skills: needs.iter().map(|(s, l)| (SkillId::from(*s), *l)).collect(),
        },
        t(now),
    )
    .expect("enqueue")
}

#[test]
fn extra_skills_pick_only_agents_that_have_them() {
    let mut c = core();
    // Alice (en 5) has been idle longest; Bob (en 3, ru 2) speaks Russian.
    online(&mut c, "alice", 0);
    online(&mut c, "bob", 10);
    let recs = enqueue_with(&mut c, "c1", "sales", &[("ru", 1)], 20);
    assert_eq!(offers(&recs), vec![("c1".into(), "bob".into())]);
    // A call needing more Russian than anyone in the queue has waits, and
    // does not hold up the plain call behind it.
    let recs = enqueue_with(&mut c, "c2", "sales", &[("ru", 3)], 30);
    assert!(offers(&recs).is_empty());
    let recs = enqueue_with(&mut c, "c3", "sales", &[], 40);
    assert_eq!(offers(&recs), vec![("c3".into(), "alice".into())]);
    assert_eq!(
        c.call(&"c2".into()).map(|v| v.position),
        Some(Some(1)),
        "still waiting"
    );
}

#[test]
fn a_call_with_skills_leaves_the_best_agent_to_the_next_plain_call() {
    // The Russian call waits longest, but only Alice (no Russian) is free
    // first: she takes the plain call behind it; Bob then takes it.
    let mut c2 = core();
    enqueue_with(&mut c2, "plain", "sales", &[], 1);
    enqueue_with(&mut c2, "russian", "sales", &[("ru", 1)], 0);
    login(&mut c2, "alice", "1", 5);
    login(&mut c2, "bob", "2", 5);
    let mut got = ready(&mut c2, "alice", 6);
    got.extend(ready(&mut c2, "bob", 7));
    let mut pairs = offers(&got);
    pairs.sort();
    assert_eq!(
        pairs,
        vec![
            ("plain".to_string(), "alice".to_string()),
            ("russian".to_string(), "bob".to_string())
        ]
    );
}
