//! A distributor pair elected through a real etcd: fail-over after kill -9,
//! switchover both ways, fencing of a paused primary, honest readiness.
//!
//! Calls are queued through the EdgeService with a small test edge (no SIP
//! needed: the distributor only sees the edge's messages); agents through
//! the AgentService.

use std::time::Duration;

use acd_tests::metrics::http_status;
use acd_tests::proto::edge_service_client::EdgeServiceClient;
use acd_tests::proto::{
    distributor_message, edge_message, AgentAnswered, AgentState, CallEnded, Caller,
    DistributorMessage, DistributorStatus, EdgeHello, EdgeMessage, EnqueueCall,
};
use acd_tests::{acdctl, AcdClient, AcdProcess, EtcdServer, TestEnv, LONG, SHORT};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;

/// A stand-in SIP edge: one Attach stream to a distributor.
struct TestEdge {
    tx: mpsc::Sender<EdgeMessage>,
    rx: tonic::Streaming<DistributorMessage>,
    /// Every message received, in order.
    seen: Vec<DistributorMessage>,
}

impl TestEdge {
    async fn attach(url: &str, live_calls: &[&str]) -> TestEdge {
        let ch = acd_tests::grpc::connect(url, SHORT).await.unwrap();
        let (tx, rx) = mpsc::channel(64);
        tx.send(msg(edge_message::Kind::Hello(EdgeHello {
            edge_id: "test-edge".into(),
            live_calls: live_calls.iter().map(|c| c.to_string()).collect(),
            last_msg_id: 0,
        })))
        .await
        .unwrap();
        let rx = EdgeServiceClient::new(ch)
            .attach(ReceiverStream::new(rx))
            .await
            .unwrap()
            .into_inner();
        TestEdge {
            tx,
            rx,
            seen: Vec::new(),
        }
    }

    async fn send(&self, kind: edge_message::Kind) {
        self.tx.send(msg(kind)).await.unwrap();
    }

    async fn enqueue(&self, call: &str, queue: &str) {
        self.send(edge_message::Kind::Enqueue(EnqueueCall {
            call_id: call.into(),
            queue_id: queue.into(),
            priority: 0,
            caller: Some(Caller {
                from_uri: format!("sip:{call}@test"),
                ..Default::default()
            }),
            ..Default::default()
        }))
        .await;
    }

    /// Waits for a ConnectAgent for `call`; its term.
    async fn await_connect(&mut self, call: &str, within: Duration) -> u64 {
        let deadline = Instant::now() + within;
        loop {
            let m = match tokio::time::timeout_at(deadline, self.rx.message()).await {
                Ok(Ok(Some(m))) => m,
                other => panic!(
                    "no ConnectAgent for {call} within {within:?}: {other:?}; seen {:?}",
                    self.seen
                ),
            };
            self.seen.push(m.clone());
            if let Some(distributor_message::Kind::Connect(c)) = &m.kind {
                if c.call_id == call {
                    return m.term;
                }
            }
        }
    }

    /// Collects whatever arrives within `within`.
    async fn collect(&mut self, within: Duration) -> Vec<DistributorMessage> {
        let deadline = Instant::now() + within;
        let mut out = Vec::new();
        while let Ok(Ok(Some(m))) = tokio::time::timeout_at(deadline, self.rx.message()).await {
            self.seen.push(m.clone());
            out.push(m);
        }
        out
    }
}

fn msg(kind: edge_message::Kind) -> EdgeMessage {
    EdgeMessage {
        kind: Some(kind),
        msg_id: 0,
    }
}

fn dist(s: &acd_tests::proto::StatusResponse) -> DistributorStatus {
    s.distributor.clone().expect("distributor status")
}

/// Polls both until they hold the same (last_seq, digest); that status.
async fn await_converged(a: &mut AcdClient, b: &mut AcdClient) -> DistributorStatus {
    let deadline = Instant::now() + LONG;
    loop {
        let (x, y) = (
            dist(&a.status().await.unwrap()),
            dist(&b.status().await.unwrap()),
        );
        if x.last_seq > 0 && x.last_seq == y.last_seq && x.state_digest == y.state_digest {
            return x;
        }
        assert!(
            Instant::now() < deadline,
            "not converged within {LONG:?}: {x:?} vs {y:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls until `c` reports itself primary; how long that took from `since`.
async fn await_primary(
    c: &mut AcdClient,
    since: Instant,
    within: Duration,
) -> (Duration, DistributorStatus) {
    loop {
        if let Ok(s) = c.status().await {
            let d = dist(&s);
            if d.role == "primary" {
                return (since.elapsed(), d);
            }
        }
        assert!(
            since.elapsed() < within,
            "{} not primary within {within:?}",
            c.url
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

struct Pair {
    env: TestEnv,
    _etcd: EtcdServer,
    config: std::path::PathBuf,
}

impl Pair {
    /// etcd plus a config whose wrap-up lasts `wrap_up_secs`.
    async fn new(name: &str, block: u16, wrap_up_secs: u64) -> Pair {
        let env = TestEnv::new(name, block);
        let etcd = EtcdServer::start(&env).await.unwrap();
        let config = match wrap_up_secs {
            1 => acd_tests::config_path(),
            n => env
                .config_variant(|s| s.replace("wrap_up_secs = 1", &format!("wrap_up_secs = {n}"))),
        };
        Pair {
            env,
            _etcd: etcd,
            config,
        }
    }

    async fn start(&self, name: &str, slot: u16) -> AcdProcess {
        self.env
            .start_elected_distributor(name, slot, &self._etcd.url, &self.config, true)
            .await
            .unwrap()
    }
}

impl Pair {
    /// distributor-a (slot 0) elected primary, then distributor-b (slot 1)
    /// following it; each with a client.
    async fn start_both(&self) -> (AcdProcess, AcdClient, AcdProcess, AcdClient) {
        let a = self.start("distributor-a", 0).await;
        let mut ca = AcdClient::connect(&a.grpc_url()).await.unwrap();
        ca.await_status("primary", SHORT, |s| dist(s).role == "primary")
            .await
            .unwrap();
        let b = self.start("distributor-b", 1).await;
        let cb = AcdClient::connect(&b.grpc_url()).await.unwrap();
        (a, ca, b, cb)
    }
}

/// alice takes `call` and ends it: she is in wrap-up afterwards.
async fn through_wrap_up(edge: &mut TestEdge, call: &str) {
    edge.enqueue(call, "sales").await;
    edge.await_connect(call, SHORT).await;
    edge.send(edge_message::Kind::AgentAnswered(AgentAnswered {
        call_id: call.into(),
        agent_id: "alice".into(),
    }))
    .await;
    edge.send(edge_message::Kind::CallEnded(CallEnded {
        call_id: call.into(),
        reason: "hangup".into(),
        ..Default::default()
    }))
    .await;
}

#[tokio::test]
async fn kill_9_of_the_primary_fails_over_with_state_and_timers() {
    let pair = Pair::new("failover_kill", 60, 4).await;
    let (mut primary, mut p, mut standby, mut s) = pair.start_both().await;
    let st = dist(&s.status().await.unwrap());
    assert_eq!(st.role, "standby", "{st:?}");
    assert_eq!(st.following, primary.grpc_url(), "{st:?}");

    // alice through one call into wrap-up; bob logged in, not ready; four
    // calls waiting (three for sales, one for support).
    p.login("alice", "1001").await.unwrap();
    p.ready("alice").await.unwrap();
    p.login("bob", "1002").await.unwrap();
    let mut edge = TestEdge::attach(&primary.grpc_url(), &[]).await;
    through_wrap_up(&mut edge, "c1").await;
    for call in ["c2", "c3", "c4"] {
        edge.enqueue(call, "sales").await;
    }
    edge.enqueue("c5", "support").await;
    p.await_queue("sales", "three waiting", SHORT, |q| q.waiting == 3)
        .await
        .unwrap();
    p.await_queue("support", "one waiting", SHORT, |q| q.waiting == 1)
        .await
        .unwrap();
    let before = await_converged(&mut p, &mut s).await;
    assert_eq!(
        p.get_agent("alice").await.unwrap().state,
        AgentState::WrapUp as i32
    );

    primary.kill().await;
    let killed = Instant::now();
    let (took, after) = await_primary(&mut s, killed, Duration::from_secs(5)).await;
    eprintln!("[e2e] fail-over after kill -9: standby primary in {took:?}");
    assert!(took < Duration::from_secs(1), "fail-over took {took:?}");
    assert!(after.term > before.term, "{after:?} vs {before:?}");
    // The wrap-up (4 s) has not ended yet: nothing happened since.
    assert_eq!(after.last_seq, before.last_seq, "{after:?}");
    assert_eq!(
        after.state_digest, before.state_digest,
        "same calls, positions, enqueue times and agents"
    );
    let sales = s.queue("sales").await.unwrap();
    assert_eq!(sales.waiting, 3, "{sales:?}");

    // The edge re-attaches to the new primary; alice's wrap-up timer fires
    // there and the first queued call (c2) is offered, with the new term.
    let mut edge = TestEdge::attach(&standby.grpc_url(), &["c2", "c3", "c4", "c5"]).await;
    let mut watch = s.watch("alice").await.unwrap();
    let term = edge.await_connect("c2", LONG).await;
    assert_eq!(term, after.term, "offer under the new term");
    let offer = watch.await_offer(SHORT).await.unwrap();
    assert_eq!(offer.call_id, "c2", "queue order kept");

    // Commands work on the new primary.
    s.ready("bob").await.unwrap();
    let term = edge.await_connect("c5", SHORT).await;
    assert_eq!(term, after.term);
    standby.assert_running();
}

#[tokio::test]
async fn switchover_both_ways() {
    let pair = Pair::new("failover_switchover", 61, 1).await;
    let (mut a, mut ca, mut b, mut cb) = pair.start_both().await;
    ca.login("alice", "1001").await.unwrap();
    ca.ready("alice").await.unwrap();
    let edge = TestEdge::attach(&a.grpc_url(), &[]).await;
    edge.enqueue("s1", "support").await;
    ca.await_queue("support", "one waiting", SHORT, |q| q.waiting == 1)
        .await
        .unwrap();
    await_converged(&mut ca, &mut cb).await;

    let mut term = dist(&ca.status().await.unwrap()).term;
    for (from, to, mut cfrom, mut cto) in [
        (a.grpc_url(), b.grpc_url(), ca.clone(), cb.clone()),
        (b.grpc_url(), a.grpc_url(), cb.clone(), ca.clone()),
    ] {
        let (cfrom, cto) = (&mut cfrom, &mut cto);
        // Followers attach within moments of each start; the switchover
        // needs one.
        cfrom
            .await_status("a standby attached", SHORT, |s| dist(s).followers == 1)
            .await
            .unwrap();
        // Agent commands keep arriving at the old primary during the handover.
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let hammer = {
            let (mut c, stop) = (cfrom.clone(), stop.clone());
            tokio::spawn(async move {
                let mut refusals = Vec::new();
                let mut n = 0u32;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) && n < 2000 {
                    n += 1;
                    if let Err(e) = c
                        .get_agent("alice")
                        .await
                        .and(c.not_ready("alice", "busy").await)
                    {
                        if let Some(st) = e.downcast_ref::<tonic::Status>() {
                            if st.message().starts_with("not leader") {
                                refusals.push(st.clone());
                            }
                        }
                    }
                    let _ = c.ready("alice").await;
                }
                refusals
            })
        };
        let out = acdctl(&from, &["--json", "switchover"]).await.unwrap();
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let refusals = hammer.await.unwrap();
        assert!(out.success(), "acdctl switchover: {out:?}");
        let v = &out.json_lines().unwrap()[0];
        let pause_us = v["pause_us"].as_u64().unwrap();
        eprintln!("[e2e] switchover {from} -> {to}: commands held {pause_us} us");
        assert_eq!(v["new_primary"], to.as_str(), "{v}");
        assert!(pause_us < 500_000, "pause {pause_us} us");
        eprintln!(
            "[e2e] {} commands refused during the handover",
            refusals.len()
        );
        for st in &refusals {
            assert_eq!(st.code(), tonic::Code::FailedPrecondition, "{st:?}");
            assert_eq!(
                st.metadata()
                    .get("x-acd-leader")
                    .and_then(|v| v.to_str().ok()),
                Some(to.as_str()),
                "{st:?}"
            );
        }
        let new = cto
            .await_status("primary", SHORT, |s| dist(s).role == "primary")
            .await
            .unwrap();
        assert!(dist(&new).term > term, "{new:?}");
        term = dist(&new).term;
        assert_eq!(v["term"].as_u64(), Some(term));
        let old = cfrom
            .await_status("following the new primary", SHORT, |s| {
                let d = dist(s);
                d.role == "standby" && d.following == to && s.ready
            })
            .await
            .unwrap();
        assert_eq!(dist(&old).leader, to);
        // The old primary refuses commands and names the new one.
        let err = cfrom.not_ready("alice", "x").await.unwrap_err();
        let st = err.downcast_ref::<tonic::Status>().expect("a gRPC status");
        assert_eq!(st.code(), tonic::Code::FailedPrecondition, "{st:?}");
        assert_eq!(
            st.metadata()
                .get("x-acd-leader")
                .and_then(|v| v.to_str().ok()),
            Some(to.as_str())
        );
        // New work lands on the new primary and reaches the old one.
        cto.not_ready("alice", "switch").await.unwrap();
        cto.ready("alice").await.unwrap();
        await_converged(cto, cfrom).await;
    }
    a.assert_running();
    b.assert_running();
}

#[tokio::test]
async fn a_paused_primary_is_fenced_and_follows_after() {
    let pair = Pair::new("failover_fencing", 62, 2).await;
    let (mut a, mut ca, mut b, mut cb) = pair.start_both().await;
    let old_term = dist(&ca.status().await.unwrap()).term;

    // alice in a 2 s wrap-up with a call waiting: when it ends, the call is
    // offered. The paused primary must not be the one offering it.
    ca.login("alice", "1001").await.unwrap();
    ca.ready("alice").await.unwrap();
    let mut edge = TestEdge::attach(&a.grpc_url(), &[]).await;
    through_wrap_up(&mut edge, "f1").await;
    edge.enqueue("f2", "sales").await;
    ca.await_queue("sales", "one waiting", SHORT, |q| q.waiting == 1)
        .await
        .unwrap();
    await_converged(&mut ca, &mut cb).await;
    // What was released before the pause (the Queued of f2) is read now.
    let before = edge.collect(Duration::from_millis(300)).await;
    assert!(before.iter().all(|m| m.term == old_term), "{before:?}");

    a.signal("STOP").unwrap();
    let stopped = Instant::now();
    let (took, new) = await_primary(&mut cb, stopped, Duration::from_secs(10)).await;
    eprintln!("[e2e] fencing: standby primary {took:?} after SIGSTOP of the primary");
    assert!(new.term > old_term);
    // The wrap-up ends on the new primary: the call is offered there.
    let mut edge_b = TestEdge::attach(&b.grpc_url(), &["f2"]).await;
    assert_eq!(edge_b.await_connect("f2", LONG).await, new.term);
    // Longer than the lease (1 s) in any case.
    tokio::time::sleep(Duration::from_secs(3).saturating_sub(stopped.elapsed())).await;
    a.signal("CONT").unwrap();

    // The old primary follows the new one and releases nothing of its term.
    let st = ca
        .await_status("following the new primary", SHORT, |s| {
            let d = dist(s);
            d.role == "standby" && d.following == b.grpc_url()
        })
        .await
        .unwrap();
    assert!(dist(&st).term >= new.term || dist(&st).last_seq > 0);
    let late = edge.collect(Duration::from_secs(1)).await;
    assert!(
        late.iter().all(|m| m.term >= new.term),
        "the paused primary sent messages of its old term {old_term} after resuming: {late:?}"
    );
    let err = ca.ready("bob").await.unwrap_err();
    assert_eq!(
        err.downcast_ref::<tonic::Status>().map(|s| s.code()),
        Some(tonic::Code::FailedPrecondition)
    );
    await_converged(&mut ca, &mut cb).await;
    a.assert_running();
    b.assert_running();
}

#[tokio::test]
async fn a_standby_without_its_primary_is_not_ready() {
    let env = TestEnv::new("failover_readiness", 63);
    // Static pair: the primary's port has nobody listening yet.
    let primary_url = format!("http://127.0.0.1:{}", env.ports.grpc(0));
    let p = &env.ports;
    let args: Vec<String> = [
        "distributor",
        "--config",
        &acd_tests::config_path().display().to_string(),
        "--grpc",
        &format!("127.0.0.1:{}", p.grpc(1)),
        "--metrics",
        &format!("127.0.0.1:{}", p.metrics(1)),
        "--standby-of",
        &primary_url,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut standby = AcdProcess::spawn_unready(&env, "standby", &args)
        .await
        .unwrap();
    let mut c = AcdClient::connect(&format!("http://127.0.0.1:{}", p.grpc(1)))
        .await
        .unwrap();
    let st = c
        .await_status("waiting for its primary", SHORT, |s| {
            s.waiting_for.contains(&primary_url)
        })
        .await
        .unwrap();
    assert!(!st.ready, "{st:?}");
    assert_eq!(st.waiting_for, format!("the primary at {primary_url}"));
    let ready = http_status(&format!("127.0.0.1:{}", p.metrics(1)), "/ready").await;
    assert_eq!(ready, 503);
    assert!(!standby.has_printed_ready(), "READY line before following");

    // An elected standby whose etcd is down says so.
    let args: Vec<String> = [
        "distributor",
        "--config",
        &acd_tests::config_path().display().to_string(),
        "--grpc",
        &format!("127.0.0.1:{}", p.grpc(2)),
        "--metrics",
        &format!("127.0.0.1:{}", p.metrics(2)),
        "--etcd",
        &format!("http://127.0.0.1:{}", p.etcd_client()),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut elected = AcdProcess::spawn_unready(&env, "elected", &args)
        .await
        .unwrap();
    let mut ce = AcdClient::connect(&format!("http://127.0.0.1:{}", p.grpc(2)))
        .await
        .unwrap();
    let st = ce
        .await_status("waiting for etcd", SHORT, |s| {
            s.waiting_for.contains("etcd at")
        })
        .await
        .unwrap();
    assert!(!st.ready, "{st:?}");
    assert!(!elected.has_printed_ready());

    // The primary comes up: the standby follows and only then is ready.
    let primary = env.start_distributor("primary", 0, None).await.unwrap();
    assert_eq!(primary.grpc_url(), primary_url);
    standby.await_ready(SHORT).await.unwrap();
    let st = c.status().await.unwrap();
    assert!(st.ready && st.waiting_for.is_empty(), "{st:?}");
    assert_eq!(dist(&st).leader, primary_url);
    assert_eq!(
        http_status(&format!("127.0.0.1:{}", p.metrics(1)), "/ready").await,
        200
    );
}
