//! Exactly-once for numbered edge messages, on the leader and through a follower.

use super::*;

fn from(edge: &str, id: u64) -> Origin {
    Origin {
        edge: EdgeId::from(edge),
        msg_id: MsgId(id),
    }
}

fn enqueue_cmd(call: &str, queue: &str) -> Command {
    Command::Enqueue {
        call: call.into(),
        queue: queue.into(),
        priority: 0,
        caller: CallerInfo::default(),
        skills: Default::default(),
    }
}

fn abandon_cmd(call: &str) -> Command {
    Command::Abandon { call: call.into() }
}

/// A follower that applies every record `leader` produced so far.
fn follow(follower: &mut Core, recs: &[EventRecord]) {
    for r in recs {
        follower.apply(r).expect("apply");
    }
}

#[test]
fn a_resent_message_is_applied_once() {
    let mut c = core();
    let recs = c
        .handle_from(from("e1", 1), enqueue_cmd("c1", "sales"), t(0))
        .expect("enqueue");
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].origin, Some(from("e1", 1)));
    // Re-sent after a broken stream: nothing happens, and it is no error.
    let again = c
        .handle_from(from("e1", 1), enqueue_cmd("c1", "sales"), t(5))
        .expect("duplicate is not an error");
    assert!(again.is_empty());
    // Another edge's id 1 is another message.
    let other = c
        .handle_from(from("e2", 1), enqueue_cmd("c2", "sales"), t(6))
        .expect("other edge");
    assert_eq!(other.len(), 1);
    assert_eq!(c.applied_msg_id(&EdgeId::from("e1")), MsgId(1));
    assert_eq!(c.applied_msg_id(&EdgeId::from("e2")), MsgId(1));
}

#[test]
fn a_failed_command_fails_the_same_way_when_resent() {
    let mut c = core();
    let first = c.handle_from(from("e1", 1), enqueue_cmd("c1", "nope"), t(0));
    let second = c.handle_from(from("e1", 1), enqueue_cmd("c1", "nope"), t(1));
    assert!(matches!(first, Err(CommandError::UnknownQueue(_))));
    assert_eq!(first, second);
    assert_eq!(c.applied_msg_id(&EdgeId::from("e1")), MsgId(0));
    assert_eq!(c.last_seq(), Seq(0));
}

#[test]
fn only_the_first_record_carries_the_origin() {
    let mut c = core();
    online(&mut c, "alice", 0);
    let recs = c
        .handle_from(from("e1", 7), enqueue_cmd("c1", "sales"), t(1))
        .expect("enqueue");
    assert_eq!(offers(&recs), vec![offer("c1", "alice")]);
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0].origin, Some(from("e1", 7)));
    assert_eq!(recs[1].origin, None);
}

#[test]
fn a_follower_promoted_after_a_crash_ignores_what_the_leader_applied() {
    let mut leader = core();
    let mut follower = Core::new(config(), Term(1));
    let mut log = Vec::new();
    log.extend(
        leader
            .handle_from(from("e1", 1), enqueue_cmd("c1", "sales"), t(0))
            .expect("1"),
    );
    log.extend(
        leader
            .handle_from(from("e1", 2), abandon_cmd("c1"), t(10))
            .expect("2"),
    );
    follow(&mut follower, &log);
    assert_eq!(follower.state_digest(), leader.state_digest());
    assert_eq!(follower.applied_msg_id(&EdgeId::from("e1")), MsgId(2));

    // The leader dies before acking; the edge re-sends 1 and 2, then sends 3.
    follower.set_term(Term(2));
    assert!(follower
        .handle_from(from("e1", 1), enqueue_cmd("c1", "sales"), t(20))
        .expect("resent 1")
        .is_empty());
    assert!(follower
        .handle_from(from("e1", 2), abandon_cmd("c1"), t(20))
        .expect("resent 2")
        .is_empty());
    let q = follower.queues();
    let sales = q.iter().find(|q| q.id.as_str() == "sales").expect("sales");
    assert_eq!(
        (sales.waiting, sales.abandoned),
        (0, 1),
        "enqueued and abandoned once"
    );
    let next = follower
        .handle_from(from("e1", 3), enqueue_cmd("c2", "sales"), t(21))
        .expect("3");
    assert_eq!(next.len(), 1);
}

#[test]
fn origins_survive_a_snapshot_and_are_in_the_digest() {
    let mut c = core();
    let before = c.state_digest();
    let plain = c.clone();
    let _ = c
        .handle_from(from("e1", 4), enqueue_cmd("c1", "sales"), t(0))
        .expect("enqueue");
    let mut twin = plain;
    let _ = twin
        .handle(enqueue_cmd("c1", "sales"), t(0))
        .expect("enqueue");
    assert_ne!(before, c.state_digest());
    assert_ne!(
        twin.state_digest(),
        c.state_digest(),
        "same state, different origins: different digests"
    );

    let json = serde_json::to_string(&c.snapshot()).expect("ser");
    let back: Snapshot = serde_json::from_str(&json).expect("de");
    let mut restored = Core::from_snapshot(config(), back).expect("restore");
    assert_eq!(restored.state_digest(), c.state_digest());
    assert!(restored
        .handle_from(from("e1", 4), enqueue_cmd("c1", "sales"), t(1))
        .expect("dup")
        .is_empty());

    // A snapshot written before origins existed still reads.
    let mut old = serde_json::to_value(twin.snapshot()).expect("value");
    if let Some(o) = old.as_object_mut() {
        o.remove("origins");
    }
    let old: Snapshot = serde_json::from_value(old).expect("old snapshot");
    assert!(old.origins.is_empty());
}
