//! The IVR's actions carried out by the edge and the distributor, end to
//! end: transfer to an external SIP URI (answered and bridged; busy back to
//! the flow), a voicemail recorded from SIPp's pcap audio followed by a
//! callback request kept by the distributor, and an enqueue with an extra
//! skill offered only to the agent who has it.
//!
//! The flows are scripted by a stub IVR runner inside the test (a real
//! `acd.v1.IvrService` gRPC server the edge steps against), so each test
//! decides the actions and sees every event the edge reports.
//! Port blocks 96, 97, 98 (tests/src/ports.rs).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use acd_tests::flows::{agent_phone, agent_phone_scenario, register, trunk};
use acd_tests::proto::{self as pb, AgentState};
use acd_tests::{acdctl, AcdClient, AcdProcess, RtpObserver, SippCmd, TestEnv, LONG, SHORT};
use pb::ivr_action::Kind as Act;
use pb::ivr_event::Kind as Ev;
use tokio::sync::mpsc;

type Script = dyn Fn(u32, &Ev) -> Vec<Act> + Send + Sync;

/// An IVR runner whose answers come from `script(call number, event)`
/// (calls numbered from 1 in the order they start); every event it gets
/// is also passed to the test.
struct StubIvr {
    script: Arc<Script>,
    calls: Arc<std::sync::Mutex<HashMap<String, u32>>>,
    next: AtomicU32,
    events: mpsc::UnboundedSender<(u32, Ev)>,
}

#[tonic::async_trait]
impl pb::ivr_service_server::IvrService for StubIvr {
    async fn step(
        &self,
        req: tonic::Request<pb::StepRequest>,
    ) -> Result<tonic::Response<pb::StepResponse>, tonic::Status> {
        let r = req.into_inner();
        let ev = r
            .event
            .and_then(|e| e.kind)
            .ok_or_else(|| tonic::Status::invalid_argument("no event"))?;
        let n = {
            let mut calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
            *calls
                .entry(r.call_id.clone())
                .or_insert_with(|| self.next.fetch_add(1, Ordering::Relaxed) + 1)
        };
        let _ = self.events.send((n, ev.clone()));
        let actions = (self.script)(n, &ev)
            .into_iter()
            .map(|kind| pb::IvrAction { kind: Some(kind) })
            .collect();
        Ok(tonic::Response::new(pb::StepResponse {
            session: r.session,
            actions,
            step: r.step,
        }))
    }
}

/// Serves the stub on `port`; the listener is bound before this returns.
async fn stub_ivr(
    port: u16,
    script: impl Fn(u32, &Ev) -> Vec<Act> + Send + Sync + 'static,
) -> (String, mpsc::UnboundedReceiver<(u32, Ev)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let stub = StubIvr {
        script: Arc::new(script),
        calls: Default::default(),
        next: AtomicU32::new(0),
        events: tx,
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind the stub IVR");
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(pb::ivr_service_server::IvrServiceServer::new(stub))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    (format!("http://127.0.0.1:{port}"), rx)
}

/// The next event of call `n` that `pick` accepts, within `within`.
async fn await_event<T>(
    rx: &mut mpsc::UnboundedReceiver<(u32, Ev)>,
    n: u32,
    within: Duration,
    pick: impl Fn(&Ev) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let got = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no such IVR event of call {n} within {within:?}"))
            .expect("stub IVR alive");
        if got.0 == n {
            if let Some(v) = pick(&got.1) {
                return v;
            }
        }
    }
}

fn hangup(reason: &str) -> Act {
    Act::Hangup(pb::Hangup {
        reason: reason.into(),
    })
}

/// Distributor (slot 0) and an edge (slot 2) stepping against `ivr_url`,
/// with `config` (e2e.toml and more) for the edge.
async fn edge_and_distributor(
    env: &TestEnv,
    ivr_url: &str,
    config: &std::path::Path,
) -> (AcdProcess, AcdProcess) {
    let dist = env.start_distributor("distributor", 0, None).await.unwrap();
    let mut args = vec!["edge".to_string()];
    args.extend(env.edge_args(2, config));
    args.extend([
        "--distributor".to_string(),
        dist.grpc_url(),
        "--ivr".to_string(),
        ivr_url.to_string(),
    ]);
    let edge = AcdProcess::spawn(env, "edge", &args).await.unwrap();
    (dist, edge)
}

const CALLER_SSRC: u32 = 0xCA11_0096;
const FAR_SSRC: u32 = 0xFA12_0096;

#[tokio::test]
async fn transfer_answered_is_bridged_and_a_busy_one_returns_to_the_flow() {
    let env = TestEnv::new("ivr_actions_transfer", 96);
    let answering = format!("sip:night@127.0.0.1:{}", env.ports.sipp(1).sip);
    let busy = format!("sip:night@127.0.0.1:{}", env.ports.sipp(2).sip);
    let (ivr, mut events) = stub_ivr(env.ports.grpc(1), move |n, ev| match ev {
        Ev::Started(_) => vec![Act::Transfer(pb::Transfer {
            uri: if n == 1 {
                answering.clone()
            } else {
                busy.clone()
            },
            timeout_ms: 15_000,
        })],
        _ => vec![hangup("transfer failed")],
    })
    .await;
    let config = env.write_config("");
    let (mut dist, mut edge) = edge_and_distributor(&env, &ivr, &config).await;

    // 1. The night team answers, talks, hangs up.
    let caller = RtpObserver::bind("caller", env.ports.observer(0))
        .await
        .unwrap();
    let far = RtpObserver::bind("far", env.ports.observer(1))
        .await
        .unwrap();
    let far_phone = agent_phone(&env, "far-end", 1, far.port(), Some(5000)).await;
    let call = trunk(
        &env,
        "trunk-1",
        "trunk_call.xml",
        3,
        "5550100",
        caller.port(),
    )
    .spawn(&env)
    .await
    .unwrap();
    // Bridged: RTP both ways between the caller and the far end.
    let edge_caller_leg = loop {
        if let Some(src) = caller.last_source() {
            break src;
        }
        caller.await_g711(1, LONG).await.unwrap();
    };
    // Wait until the bridge stands (the far end's answer), then talk.
    far.reset_gap();
    let deadline = tokio::time::Instant::now() + LONG;
    loop {
        caller
            .send_tagged(edge_caller_leg, CALLER_SSRC, 5)
            .await
            .unwrap();
        if far.stats().tagged_from(CALLER_SSRC) >= 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the caller's RTP never reached the far end"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    caller
        .send_tagged(edge_caller_leg, CALLER_SSRC, 40)
        .await
        .unwrap();
    far.await_from(CALLER_SSRC, 30, SHORT).await.unwrap();
    let edge_far_leg = far.last_source().expect("edge sent RTP to the far end");
    assert_ne!(edge_far_leg, edge_caller_leg, "one RTP port per leg");
    far.send_tagged(edge_far_leg, FAR_SSRC, 40).await.unwrap();
    caller.await_from(FAR_SSRC, 30, SHORT).await.unwrap();
    // The far end's BYE reaches the caller; the flow heard nothing more.
    far_phone.wait().await.assert_success(1);
    call.wait().await.assert_success(1);

    // 2. The night team is busy: the flow hears it and hangs up.
    let reject = agent_phone_scenario(&env, "busy-end", "agent_reject.xml", 2, 0).await;
    let caller2 = RtpObserver::bind("caller2", env.ports.observer(2))
        .await
        .unwrap();
    let call2 = trunk(
        &env,
        "trunk-2",
        "trunk_call.xml",
        4,
        "5550100",
        caller2.port(),
    )
    .spawn(&env)
    .await
    .unwrap();
    let (status, reason) = await_event(&mut events, 2, LONG, |ev| match ev {
        Ev::TransferFailed(f) => Some((f.sip_status, f.reason.clone())),
        _ => None,
    })
    .await;
    assert_eq!(status, 486, "TransferFailed: {reason}");
    reject.wait().await.assert_success(1);
    call2.wait().await.assert_success(1);
    // Call 1 never came back to the flow.
    while let Ok((n, ev)) = events.try_recv() {
        assert_ne!(n, 1, "call 1 stepped again after its transfer: {ev:?}");
    }
    dist.assert_running();
    edge.assert_running();
}

#[tokio::test]
async fn a_voicemail_is_recorded_and_its_callback_reaches_the_distributor() {
    let env = TestEnv::new("ivr_actions_voicemail", 97);
    let (ivr, mut events) = stub_ivr(env.ports.grpc(1), |_, ev| match ev {
        Ev::Started(_) => vec![Act::Record(pb::Record {
            max_ms: 20_000,
            silence_ms: 2_500,
            beep: true,
        })],
        Ev::Recorded(r) => vec![
            Act::Callback(pb::RequestCallback {
                queue_id: "sales".into(),
                number: "0611223344".into(),
                priority: 1,
                voicemail: r.file.clone(),
                data: [("reason".to_string(), "voicemail".to_string())].into(),
            }),
            hangup("voicemail left"),
        ],
        _ => vec![hangup("no voicemail")],
    })
    .await;
    let vm_dir: PathBuf = env.log_dir.join("voicemail");
    let config = env.write_config(&format!(
        "[ivr]\nvoicemail_dir = \"{}\"\n",
        vm_dir.display()
    ));
    let (mut dist, mut edge) = edge_and_distributor(&env, &ivr, &config).await;

    let call = SippCmd::new("trunk", "trunk_call_voicemail.xml", env.ports.sipp(3))
        .remote(env.sip_addr())
        .service("5550100")
        .key("caller", "0611223344")
        .limit(Duration::from_secs(60))
        .spawn(&env)
        .await
        .unwrap();
    let (file, duration_ms) = await_event(&mut events, 1, Duration::from_secs(40), |ev| match ev {
        Ev::Recorded(r) => Some((r.file.clone(), r.duration_ms)),
        Ev::RecordFailed(f) => panic!("recording failed: {}", f.reason),
        _ => None,
    })
    .await;
    call.wait().await.assert_success(1);
    eprintln!("[e2e] voicemail {file}: {duration_ms} ms");
    // g711a.pcap holds about 7 s of speech; the beep takes the first 0.3 s.
    assert!(
        (2_000..=7_500).contains(&duration_ms),
        "implausible length {duration_ms} ms"
    );
    let bytes = std::fs::read(vm_dir.join(&file)).expect("voicemail file written");
    let info = acd_media::wav::wav_info(&bytes).expect("a WAV file");
    assert_eq!(info.encoding, acd_media::wav::WavEncoding::Pcm16);
    assert_eq!((info.sample_rate, info.channels), (8000, 1));
    assert_eq!(info.samples as u64, u64::from(duration_ms) * 8);
    let loud = acd_media::wav::load_wav(&bytes)
        .expect("loads")
        .samples()
        .iter()
        .filter(|s| s.unsigned_abs() > 1000)
        .count();
    assert!(loud > 1000, "the recording is silent ({loud} loud samples)");

    // The distributor keeps the callback, with the voicemail and the data.
    let out = acdctl(&dist.grpc_url(), &["callbacks", "--json"])
        .await
        .unwrap();
    assert!(out.success(), "acdctl callbacks: {out:?}");
    let lines = out.json_lines().unwrap();
    assert_eq!(lines.len(), 1, "callbacks: {lines:?}");
    let cb = &lines[0];
    assert_eq!(cb["queue_id"], "sales", "{cb}");
    assert_eq!(cb["number"], "0611223344", "{cb}");
    assert_eq!(cb["voicemail"], file.as_str(), "{cb}");
    assert_eq!(cb["caller"]["variables"]["reason"], "voicemail", "{cb}");
    assert_eq!(cb["caller"]["did"], "5550100", "{cb}");
    let table = acdctl(&dist.grpc_url(), &["callbacks"]).await.unwrap();
    assert!(
        table.stdout.contains("0611223344") && table.stdout.contains(&file),
        "acdctl callbacks table: {}",
        table.stdout
    );
    dist.assert_running();
    edge.assert_running();
}

#[tokio::test]
async fn an_enqueue_with_an_extra_skill_is_offered_only_to_the_agent_with_it() {
    let env = TestEnv::new("ivr_actions_skills", 98);
    let (ivr, _events) = stub_ivr(env.ports.grpc(1), |_, ev| match ev {
        Ev::Started(_) => vec![Act::Enqueue(pb::Enqueue {
            queue_id: "sales".into(),
            priority: 0,
            skills: [("support".to_string(), 1)].into(),
            data: [("account".to_string(), "42".to_string())].into(),
        })],
        _ => vec![hangup("unexpected")],
    })
    .await;
    let config = env.write_config("");
    let (dist, _edge) = edge_and_distributor(&env, &ivr, &config).await;

    // Carol (sales 3, support 3) answers; Alice (sales 5, no support) is
    // ready first, so without the extra skill she would get the call.
    let carol_rtp = RtpObserver::bind("carol", env.ports.observer(1))
        .await
        .unwrap();
    let carol_phone = agent_phone(&env, "agent-1003", 1, carol_rtp.port(), Some(2000)).await;
    register(&env, 2, "1003", "secret1003", env.ports.sipp(1).sip)
        .await
        .assert_success(1);
    let mut client = AcdClient::connect(&dist.grpc_url()).await.unwrap();
    client.login("alice", "1001").await.unwrap();
    client.login("carol", "1003").await.unwrap();
    let mut alice = client.watch("alice").await.unwrap();
    let mut carol = client.watch("carol").await.unwrap();
    client.ready("alice").await.unwrap();
    client.ready("carol").await.unwrap();

    let caller = RtpObserver::bind("caller", env.ports.observer(0))
        .await
        .unwrap();
    let call = trunk(&env, "trunk", "trunk_call.xml", 3, "5550100", caller.port())
        .spawn(&env)
        .await
        .unwrap();
    let offer = carol.await_offer(LONG).await.unwrap();
    let data = offer.caller.clone().expect("call pop data");
    assert_eq!(
        data.variables.get("account").map(String::as_str),
        Some("42"),
        "offer: {offer:?}"
    );
    carol.await_state(AgentState::OnCall, LONG).await.unwrap();
    carol_phone.wait().await.assert_success(1);
    call.wait().await.assert_success(1);
    alice.drain(Duration::from_millis(300)).await;
    assert!(
        alice.offers().is_empty(),
        "alice was offered: {:?}",
        alice.offers()
    );
    let st = client.get_agent("alice").await.unwrap();
    assert_eq!(st.state, AgentState::Ready as i32, "alice: {st:?}");
}
