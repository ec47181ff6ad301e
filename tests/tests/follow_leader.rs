//! Clients follow the distributor leader, and nothing an edge sends is lost
//! or applied twice when its distributor goes away.
//!
//! (a) an edge given `STANDBY,PRIMARY` is refused by the standby, follows its
//!     hint and attaches to the primary; a call goes through; acdctl with a
//!     dead address and the standby first reaches the primary too.
//! (b) an abandon produced while no distributor is up is kept in the edge's
//!     outbox and reaches the distributor that comes back.
//! (c) an agent's Watch resumes after a seq: exactly the missed events.

use std::time::Duration;

use acd_tests::cli::json_field_u64;
use acd_tests::flows::{agent_phone, register, trunk};
use acd_tests::metrics::{counter, counter_with, scrape, scrape_counter};
use acd_tests::proto::agent_event::Kind;
use acd_tests::proto::AgentState;
use acd_tests::{acdctl, AcdClient, AgentWatch, RtpObserver, TestEnv, LONG, SHORT};
use tokio::time::Instant;

/// Polls `metric` (with `labels`) on `addr` until `ok` holds.
async fn await_metric(
    addr: &str,
    metric: &str,
    labels: &[(&str, &str)],
    ok: impl Fn(f64) -> bool,
) -> f64 {
    let deadline = Instant::now() + LONG;
    loop {
        let v = scrape(addr)
            .await
            .ok()
            .and_then(|t| match labels {
                [] => counter(&t, metric),
                _ => counter_with(&t, metric, labels),
            })
            .unwrap_or(0.0);
        if ok(v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{metric}{labels:?} on {addr} stayed at {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn edge_and_acdctl_find_the_primary_behind_a_standby() {
    let env = TestEnv::new("follow_leader_pair", 65);
    let primary = env.start_distributor("primary", 0, None).await.unwrap();
    let standby = env
        .start_distributor("standby", 1, Some(&primary.grpc_url()))
        .await
        .unwrap();
    let ivr = env.start_ivr("ivr", 2).await.unwrap();
    let list = format!("{},{}", standby.grpc_url(), primary.grpc_url());
    let mut edge = env
        .start_edge("edge", 3, &list, &[ivr.grpc_url()])
        .await
        .unwrap();

    // The standby refused the edge; the edge followed its hint.
    await_metric(
        &edge.metrics_addr(),
        "acd_edge_leader_hints_followed_total",
        &[],
        |v| v >= 1.0,
    )
    .await;
    await_metric(
        &primary.metrics_addr(),
        "acd_edge_streams_attached",
        &[],
        |v| v == 1.0,
    )
    .await;
    let standby_streams = scrape_counter(&standby.metrics_addr(), "acd_edge_streams_attached")
        .await
        .unwrap();
    assert_eq!(standby_streams, 0.0, "no edge sits on the standby");
    let mut e = AcdClient::connect(&edge.grpc_url()).await.unwrap();
    let status = e.status().await.unwrap();
    assert!(
        status
            .edge
            .as_ref()
            .is_some_and(|s| s.distributor_connected),
        "{status:?}"
    );

    // acdctl: a dead address and the standby first, the primary last.
    let dead = format!("http://127.0.0.1:{}", env.ports.grpc(4));
    let servers = format!("{dead},{list}");
    let login = acdctl(
        &servers,
        &["agent", "login", "alice", "--extension", "1001"],
    )
    .await
    .unwrap();
    assert!(login.success(), "{login:?}");
    let caller = RtpObserver::bind("caller", env.ports.observer(0))
        .await
        .unwrap();
    let agent_rtp = RtpObserver::bind("agent", env.ports.observer(1))
        .await
        .unwrap();
    let phone = agent_phone(&env, "agent-1001", 1, agent_rtp.port(), Some(1500)).await;
    register(&env, 2, "1001", "secret1001", env.ports.sipp(1).sip)
        .await
        .assert_success(1);
    let mut watch =
        AgentWatch::following(&[standby.grpc_url(), primary.grpc_url()], "alice", 0, SHORT)
            .await
            .unwrap();
    let ready = acdctl(&servers, &["agent", "ready", "alice"])
        .await
        .unwrap();
    assert!(ready.success(), "{ready:?}");
    let call = trunk(&env, "trunk", "trunk_call.xml", 3, "5550100", caller.port())
        .spawn(&env)
        .await
        .unwrap();
    let offer = watch.await_offer(LONG).await.unwrap();
    assert_eq!(offer.queue_id, "sales");
    watch.await_state(AgentState::OnCall, LONG).await.unwrap();
    phone.wait().await.assert_success(1);
    call.wait().await.assert_success(1);
    edge.assert_running();
}

#[tokio::test]
async fn an_abandon_made_while_the_distributor_is_down_reaches_its_successor() {
    let env = TestEnv::new("follow_leader_outbox", 66);
    let mut dist = env.start_distributor("distributor", 0, None).await.unwrap();
    let ivr = env.start_ivr("ivr", 1).await.unwrap();
    let mut edge = env
        .start_edge("edge", 2, &dist.grpc_url(), &[ivr.grpc_url()])
        .await
        .unwrap();
    let c1 = RtpObserver::bind("caller-1", env.ports.observer(0))
        .await
        .unwrap();
    let c2 = RtpObserver::bind("caller-2", env.ports.observer(1))
        .await
        .unwrap();
    let agent_rtp = RtpObserver::bind("agent", env.ports.observer(2))
        .await
        .unwrap();

    // Nobody is ready: both calls wait; caller 2 hangs up 12 s after its 200.
    let stays = trunk(
        &env,
        "trunk-stays",
        "trunk_call.xml",
        3,
        "5550100",
        c1.port(),
    )
    .spawn(&env)
    .await
    .unwrap();
    let leaves = trunk(
        &env,
        "trunk-leaves",
        "trunk_call_hangup.xml",
        4,
        "5550100",
        c2.port(),
    )
    .pause_ms(12_000)
    .spawn(&env)
    .await
    .unwrap();
    let mut client = AcdClient::connect(&dist.grpc_url()).await.unwrap();
    client
        .await_queue("sales", "both calls waiting", LONG, |q| q.waiting == 2)
        .await
        .unwrap();

    // The distributor dies; caller 2 hangs up while none is up.
    dist.kill().await;
    leaves.wait().await.assert_success(1);
    let unacked = scrape_counter(&edge.metrics_addr(), "acd_edge_outbox_messages")
        .await
        .unwrap();
    assert!(unacked >= 1.0, "the abandon waits in the outbox: {unacked}");

    let dist = env
        .start_distributor("distributor-again", 0, None)
        .await
        .unwrap();
    // The abandon arrives (the new distributor does not know the call: it
    // lost its state) and everything is acknowledged.
    await_metric(
        &dist.metrics_addr(),
        "acd_edge_messages_total",
        &[("kind", "abandon")],
        |v| v == 1.0,
    )
    .await;
    await_metric(&edge.metrics_addr(), "acd_edge_outbox_messages", &[], |v| {
        v == 0.0
    })
    .await;
    let resent = scrape_counter(&edge.metrics_addr(), "acd_edge_outbox_resent_total")
        .await
        .unwrap();
    assert!(resent >= 1.0, "re-sent after attaching: {resent}");

    // Caller 1 is enqueued again and is the only call offered.
    let mut client = AcdClient::connect(&dist.grpc_url()).await.unwrap();
    let q = client
        .await_queue("sales", "caller 1 enqueued again", LONG, |q| q.waiting == 1)
        .await
        .unwrap();
    assert_eq!(q.offered, 1, "{q:?}");
    let phone = agent_phone(&env, "agent-1001", 5, agent_rtp.port(), Some(1000)).await;
    register(&env, 6, "1001", "secret1001", env.ports.sipp(5).sip)
        .await
        .assert_success(1);
    client.login("alice", "1001").await.unwrap();
    let mut watch = client.watch("alice").await.unwrap();
    client.ready("alice").await.unwrap();
    watch.await_state(AgentState::OnCall, LONG).await.unwrap();
    phone.wait().await.assert_success(1);
    stays.wait().await.assert_success(1);
    watch.drain(Duration::from_millis(500)).await;
    assert_eq!(
        watch.offers().len(),
        1,
        "only caller 1 is offered: {:?}",
        watch.offers()
    );
    edge.assert_running();
}

#[tokio::test]
async fn a_watch_resumes_with_exactly_the_missed_events() {
    let env = TestEnv::new("follow_leader_watch", 67);
    let primary = env.start_distributor("primary", 0, None).await.unwrap();
    let standby = env
        .start_distributor("standby", 1, Some(&primary.grpc_url()))
        .await
        .unwrap();
    let mut client = AcdClient::connect(&primary.grpc_url()).await.unwrap();
    client.login("alice", "1001").await.unwrap();
    client.ready("alice").await.unwrap();

    let urls = [standby.grpc_url(), primary.grpc_url()];
    let mut watch = AgentWatch::following(&urls, "alice", 0, SHORT)
        .await
        .unwrap();
    watch.await_state(AgentState::Ready, SHORT).await.unwrap();
    let seen = watch.last_seq;
    assert!(seen >= 2, "login and ready are events: {seen}");
    drop(watch);

    client.not_ready("alice", "lunch").await.unwrap();
    client.ready("alice").await.unwrap();
    client.not_ready("alice", "meeting").await.unwrap();

    let mut resumed = AgentWatch::following(&urls, "alice", seen, SHORT)
        .await
        .unwrap();
    let deadline = Instant::now() + SHORT;
    for _ in 0..3 {
        resumed.next(deadline).await.unwrap();
    }
    // Nothing more: no duplicate, no re-sync status.
    resumed.drain(Duration::from_millis(500)).await;
    let got: Vec<(u64, AgentState, String)> = resumed
        .history
        .iter()
        .filter_map(|e| match &e.kind {
            Some(Kind::Status(s)) => {
                Some((e.seq, AgentState::try_from(s.state).ok()?, s.reason.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(got.len(), resumed.history.len(), "{:?}", resumed.history);
    let states: Vec<(AgentState, &str)> = got.iter().map(|(_, s, r)| (*s, r.as_str())).collect();
    assert_eq!(
        states,
        vec![
            (AgentState::NotReady, "lunch"),
            (AgentState::Ready, ""),
            (AgentState::NotReady, "meeting"),
        ]
    );
    let seqs: Vec<u64> = got.iter().map(|(s, _, _)| *s).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]) && seqs[0] > seen,
        "in order, after {seen}: {seqs:?}"
    );

    // acdctl watch with a dead address and the standby first: the standby
    // refuses watches, acdctl follows it to the primary.
    let dead = format!("http://127.0.0.1:{}", env.ports.grpc(4));
    let servers = format!("{dead},{},{}", standby.grpc_url(), primary.grpc_url());
    drop(resumed);
    let opened = scrape_counter(&primary.metrics_addr(), "acd_agent_watches_total")
        .await
        .unwrap();
    let watcher = tokio::spawn({
        let servers = servers.clone();
        async move {
            acdctl(
                &servers,
                &["--json", "agent", "watch", "alice", "--count", "2"],
            )
            .await
        }
    });
    // The standby refused the watch and acdctl opened it on the primary.
    await_metric(
        &standby.metrics_addr(),
        "acd_agent_api_errors_total",
        &[("command", "watch")],
        |v| v >= 1.0,
    )
    .await;
    await_metric(
        &primary.metrics_addr(),
        "acd_agent_watches_total",
        &[],
        |v| v > opened,
    )
    .await;
    let ready = acdctl(&servers, &["agent", "ready", "alice"])
        .await
        .unwrap();
    assert!(ready.success(), "{ready:?}");
    let out = watcher.await.unwrap().unwrap();
    assert!(out.success(), "{out:?}");
    let lines = out.json_lines().unwrap();
    assert_eq!(lines.len(), 2, "{lines:?}");
    let seqs: Vec<u64> = lines
        .iter()
        .map(|l| json_field_u64(l, "seq").unwrap_or(0))
        .collect();
    assert!(seqs[1] > seqs[0], "{seqs:?}");
}
