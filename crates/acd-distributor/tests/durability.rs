//! Effects after durability: with a standby attached, an event's effects
//! (offers to edges, agents' watch streams, answers to commands) wait for the
//! standby's acknowledgement; a standby that does not answer is dropped from
//! the commit after SYNC_TIMEOUT so calls never hang on it.

use std::time::{Duration, Instant};

use acd_distributor::{Distributor, Role, SYNC_TIMEOUT};
use acd_routing::{AgentDef, AgentId, Command, Extension, RoutingConfig};
use tokio::sync::broadcast::error::TryRecvError;

fn config() -> RoutingConfig {
    RoutingConfig {
        queues: vec![],
        agents: vec![AgentDef {
            id: AgentId("alice".into()),
            name: "Alice".into(),
            skills: vec![],
            auto_answer: false,
        }],
        default_wrap_up_ms: 1000,
        offer_timeout_ms: 10_000,
        extensions: Default::default(),
        not_ready_reasons: Vec::new(),
    }
}

fn login() -> Command {
    Command::AgentLogin {
        agent: AgentId("alice".into()),
        extension: Extension("1001".into()),
    }
}

#[tokio::test]
async fn without_a_standby_effects_are_immediate() {
    let d = Distributor::new(config(), Role::Primary);
    let mut effects = d.subscribe_effects();
    let records = d.command(login()).unwrap();
    assert!(!records.is_empty());
    for rec in &records {
        assert_eq!(effects.try_recv().unwrap().seq, rec.seq);
    }
}

#[tokio::test]
async fn effects_wait_for_the_standby_ack() {
    let d = Distributor::new(config(), Role::Primary);
    d.attach_follower("standby-1");
    let mut effects = d.subscribe_effects();
    let mut replication = d.subscribe_replication();

    let records = d.command(login()).unwrap();
    let last = records.last().unwrap().seq.0;
    // The standby gets the events at once...
    assert_eq!(replication.try_recv().unwrap().seq, records[0].seq);
    // ...their effects wait.
    assert!(matches!(effects.try_recv(), Err(TryRecvError::Empty)));

    // An ack for part of them releases exactly that part.
    if records.len() > 1 {
        d.ack("standby-1", records[0].seq.0);
        assert_eq!(effects.try_recv().unwrap().seq, records[0].seq);
        assert!(matches!(effects.try_recv(), Err(TryRecvError::Empty)));
    }
    d.ack("standby-1", last);
    let mut got = vec![];
    while let Ok(r) = effects.try_recv() {
        got.push(r.seq.0);
    }
    assert_eq!(got.last(), Some(&last));
}

#[tokio::test]
async fn command_durable_answers_after_the_ack() {
    let d = Distributor::new(config(), Role::Primary);
    d.attach_follower("standby-1");
    let mut replication = d.subscribe_replication();
    let d2 = d.clone();
    let call = tokio::spawn(async move { d2.command_durable(login()).await.map(|r| r.len()) });
    // Play the standby: acknowledge what arrives.
    let rec = replication.recv().await.unwrap();
    let mut last = rec.seq.0;
    while let Ok(r) = replication.try_recv() {
        last = r.seq.0;
    }
    assert!(
        !call.is_finished(),
        "answered before the standby had the events"
    );
    d.ack("standby-1", last);
    let n = tokio::time::timeout(Duration::from_secs(5), call)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(n >= 1);
}

#[tokio::test]
async fn a_silent_standby_is_dropped_after_the_sync_timeout() {
    let d = Distributor::new(config(), Role::Primary);
    d.attach_follower("silent");
    let mut effects = d.subscribe_effects();
    let started = Instant::now();
    d.command(login()).unwrap();
    assert!(matches!(effects.try_recv(), Err(TryRecvError::Empty)));
    let first = tokio::time::timeout(SYNC_TIMEOUT * 5, effects.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        started.elapsed() >= SYNC_TIMEOUT,
        "released after {:?}",
        started.elapsed()
    );
    assert_eq!(first.seq.0, 1);
    // Replication is asynchronous now: the next command's effects are immediate.
    d.command(Command::AgentReady {
        agent: AgentId("alice".into()),
    })
    .unwrap();
    while effects.try_recv().is_ok() {}
    // A standby that catches up rejoins the commit.
    let last = d.lock().core.last_seq().0;
    d.ack("silent", last);
    d.command(Command::AgentNotReady {
        agent: AgentId("alice".into()),
        reason: "break".into(),
    })
    .unwrap();
    assert!(
        matches!(effects.try_recv(), Err(TryRecvError::Empty)),
        "rejoined standby gates effects again"
    );
}
