//! Bindings as replicated state: decided, replayed, snapshotted, expired.

use crate::*;

fn config() -> RoutingConfig {
    RoutingConfig {
        queues: vec![QueueDef {
            id: "sales".into(),
            skills: SkillExpr::Any,
            wrap_up_ms: None,
            max_wait_ms: None,
            ..QueueDef::new("", SkillExpr::Any)
        }],
        agents: vec![AgentDef {
            id: "alice".into(),
            name: "Alice".into(),
            skills: vec![],
            auto_answer: false,
        }],
        default_wrap_up_ms: 0,
        offer_timeout_ms: 20_000,
        extensions: Default::default(),
        not_ready_reasons: Vec::new(),
    }
}

fn record(edge: &str, contact: &str, expires_at: u64) -> BindingRecord {
    BindingRecord {
        contact: contact.into(),
        source: "udp:10.0.0.7:5062".into(),
        edge: edge.into(),
        expires_at: Timestamp(expires_at),
    }
}

fn bind(c: &mut Core, ext: &str, b: BindingRecord, now: u64) -> Vec<EventRecord> {
    c.handle(
        Command::Bind {
            extension: ext.into(),
            binding: b,
        },
        Timestamp(now),
    )
    .expect("bind")
}

fn unbind(c: &mut Core, ext: &str, edge: &str, now: u64) -> Vec<EventRecord> {
    c.handle(
        Command::Unbind {
            extension: ext.into(),
            edge: edge.into(),
        },
        Timestamp(now),
    )
    .expect("unbind")
}

fn changes(recs: &[EventRecord]) -> Vec<(String, Option<BindingRecord>)> {
    recs.iter()
        .filter_map(|r| match &r.event {
            Event::BindingChanged { extension, binding } => {
                Some((extension.0.clone(), binding.clone()))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn bind_refresh_move_and_unbind() {
    let mut c = Core::new(config(), Term(1));
    let a = record("edge-a", "sip:1001@10.0.0.7:5062", 60_000);
    let recs = bind(&mut c, "1001", a.clone(), 1_000);
    assert_eq!(changes(&recs), vec![("1001".into(), Some(a.clone()))]);
    assert_eq!(c.binding(&"1001".into()), Some(&a));
    // The same report again (a re-sent message) changes nothing.
    assert!(bind(&mut c, "1001", a.clone(), 2_000).is_empty());
    // A refresh moves the expiry.
    let refreshed = record("edge-a", "sip:1001@10.0.0.7:5062", 90_000);
    assert_eq!(bind(&mut c, "1001", refreshed.clone(), 30_000).len(), 1);
    // The phone moves to edge B: B holds it now, and A's late expiry or
    // unregister cannot remove B's binding.
    let b = record("edge-b", "sip:1001@10.0.0.8:5062", 95_000);
    assert_eq!(bind(&mut c, "1001", b.clone(), 31_000).len(), 1);
    assert!(unbind(&mut c, "1001", "edge-a", 32_000).is_empty());
    assert_eq!(c.binding(&"1001".into()), Some(&b));
    let recs = unbind(&mut c, "1001", "edge-b", 33_000);
    assert_eq!(changes(&recs), vec![("1001".into(), None)]);
    assert!(c.binding(&"1001".into()).is_none());
    // Unbinding what is not there is a no-op, not an error (edges retry).
    assert!(unbind(&mut c, "1001", "edge-b", 34_000).is_empty());
}

#[test]
fn a_report_already_expired_removes() {
    let mut c = Core::new(config(), Term(1));
    bind(&mut c, "1001", record("edge-a", "sip:x@h", 10_000), 1_000);
    let recs = bind(&mut c, "1001", record("edge-a", "sip:x@h", 5_000), 6_000);
    assert_eq!(changes(&recs), vec![("1001".into(), None)]);
    assert!(bind(&mut c, "1002", record("edge-a", "sip:y@h", 5_000), 6_000).is_empty());
}

#[test]
fn expiry_is_a_core_timer() {
    let mut c = Core::new(config(), Term(1));
    bind(&mut c, "1001", record("edge-a", "sip:x@h", 60_000), 1_000);
    bind(&mut c, "1002", record("edge-a", "sip:y@h", 45_000), 1_000);
    assert_eq!(c.next_deadline(), Some(Timestamp(45_000)));
    assert!(c.handle_timeout(Timestamp(44_999)).is_empty());
    let recs = c.handle_timeout(Timestamp(45_000));
    assert_eq!(changes(&recs), vec![("1002".into(), None)]);
    assert_eq!(c.next_deadline(), Some(Timestamp(60_000)));
    let recs = c.handle_timeout(Timestamp(70_000));
    assert_eq!(changes(&recs), vec![("1001".into(), None)]);
    assert_eq!(c.next_deadline(), None);
    assert_eq!(c.bindings().count(), 0);
}

#[test]
fn a_follower_replays_bindings_and_a_promoted_one_expires_them() {
    let mut leader = Core::new(config(), Term(1));
    let mut follower = Core::new(config(), Term(0));
    let mut log = Vec::new();
    log.extend(bind(
        &mut leader,
        "1001",
        record("edge-a", "sip:x@h", 60_000),
        1_000,
    ));
    log.extend(bind(
        &mut leader,
        "1002",
        record("edge-b", "sip:y@h", 70_000),
        2_000,
    ));
    log.extend(unbind(&mut leader, "1002", "edge-b", 3_000));
    log.extend(bind(
        &mut leader,
        "1003",
        record("edge-b", "sip:z@h", 80_000),
        4_000,
    ));
    for rec in &log {
        follower.apply(rec).expect("apply");
    }
    assert_eq!(follower.state_digest(), leader.state_digest());
    assert_eq!(
        follower
            .bindings()
            .map(|(e, _)| e.0.clone())
            .collect::<Vec<_>>(),
        vec!["1001".to_string(), "1003".to_string()]
    );
    // The leader is gone: the promoted follower fires the same deadline.
    follower.set_term(Term(2));
    let recs = follower.handle_timeout(Timestamp(60_000));
    assert_eq!(changes(&recs), vec![("1001".into(), None)]);
    assert_eq!(recs[0].term, Term(2));
    // A removal of an absent binding is an inconsistent record.
    let bad = EventRecord {
        seq: follower.last_seq().next(),
        term: Term(2),
        at: Timestamp(61_000),
        event: Event::BindingChanged {
            extension: "1001".into(),
            binding: None,
        },
        origin: None,
    };
    assert!(matches!(
        follower.apply(&bad),
        Err(ApplyError::Inconsistent { .. })
    ));
}

#[test]
fn snapshot_round_trip_keeps_bindings_and_old_snapshots_load() {
    let mut c = Core::new(config(), Term(1));
    bind(&mut c, "1001", record("edge-a", "sip:x@h", 60_000), 1_000);
    let json = serde_json::to_vec(&c.snapshot()).expect("serialise");
    let snap: Snapshot = serde_json::from_slice(&json).expect("parse");
    let restored = Core::from_snapshot(config(), snap).expect("restore");
    assert_eq!(restored.state_digest(), c.state_digest());
    assert_eq!(restored.binding(&"1001".into()), c.binding(&"1001".into()));
    assert_eq!(restored.next_deadline(), Some(Timestamp(60_000)));

    // A snapshot written before bindings existed has no such field.
    let empty = Core::new(config(), Term(1));
    let mut value = serde_json::to_value(empty.snapshot()).expect("serialise");
    assert!(
        value["state"].get("bindings").is_none(),
        "omitted while empty"
    );
    value["state"]
        .as_object_mut()
        .expect("state object")
        .remove("bindings");
    let snap: Snapshot = serde_json::from_value(value).expect("old snapshot loads");
    let restored = Core::from_snapshot(config(), snap).expect("restore");
    assert_eq!(restored.bindings().count(), 0);
    assert_eq!(restored.state_digest(), empty.state_digest());
}

#[test]
fn bindings_change_the_digest() {
    let mut c = Core::new(config(), Term(1));
    let before = c.state_digest();
    bind(&mut c, "1001", record("edge-a", "sip:x@h", 60_000), 1_000);
    assert_ne!(c.state_digest(), before);
}
