//! The agent and supervisor API against a real `acd run` with SIPp phones:
//! watch numbering (unique, increasing, resumable inside a record), the
//! caller's number and name in an offer, why a call left an agent
//! (CallFinished codes), logins at unknown extensions, a supervisor forcing
//! a state the agent's watch sees, boards, and configuration changes.

use std::time::Duration;

use acd_proto::client::{AuthChannel, Credentials};
use acd_tests::flows::{agent_phone, agent_phone_scenario, register, trunk};
use acd_tests::grpc::{agent_password, SUPERVISOR_TOKEN};
use acd_tests::proto::agent_event::Kind;
use acd_tests::proto::supervisor_service_client::SupervisorServiceClient;
use acd_tests::proto::{
    AgentState, ApplyConfigRequest, DrainRequest, ExplainRequest, FinishReason, ForceStateRequest,
    ListCallsRequest, UpsertAgentRequest, WatchAgentsRequest, WatchQueuesRequest,
};
use acd_tests::{acdctl, AcdClient, AgentWatch, RtpObserver, TestEnv, LONG, SHORT};
use tokio::time::Instant;
use tonic::Code;

async fn supervisor(url: &str) -> SupervisorServiceClient<AuthChannel> {
    let ch = acd_tests::grpc::connect_plain(url, SHORT, &Default::default())
        .await
        .unwrap();
    let creds = Credentials::bearer(SUPERVISOR_TOKEN);
    SupervisorServiceClient::new(acd_proto::client::authed(ch, &creds))
}

/// Agent dave (sales 4), added by a supervisor.
fn dave(dry_run: bool) -> UpsertAgentRequest {
    UpsertAgentRequest {
        agent_id: "dave".into(),
        name: "Dave".into(),
        skills: [("sales".to_string(), 4)].into(),
        auto_answer: false,
        dry_run,
    }
}

/// Alice's phone refuses (486): her watch shows the offer (caller number
/// and name), RESERVED, then the call finished with RONA, each numbered
/// uniquely and increasingly; a watch resumed after the offer starts with
/// RESERVED, no duplicate. Carol then takes the call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_numbers_offers_and_tells_why_a_call_left() {
    let env = TestEnv::new("api_watch_rona", 117);
    let acd = env.start_run().await.unwrap();
    let url = acd.grpc_url();
    let caller = RtpObserver::bind("caller", env.ports.observer(0))
        .await
        .unwrap();
    let carol_rtp = RtpObserver::bind("carol", env.ports.observer(2))
        .await
        .unwrap();
    let alice_phone = agent_phone_scenario(
        &env,
        "alice-1001",
        "agent_reject.xml",
        1,
        env.ports.observer(1),
    )
    .await;
    let carol_phone = agent_phone(&env, "carol-1003", 4, carol_rtp.port(), Some(1000)).await;
    register(&env, 2, "1001", "secret1001", env.ports.sipp(1).sip)
        .await
        .assert_success(1);
    register(&env, 5, "1003", "secret1003", env.ports.sipp(4).sip)
        .await
        .assert_success(1);

    // Alice works with her own credentials.
    let mut alice_api =
        AcdClient::connect_as(&url, Credentials::basic("alice", &agent_password("alice")))
            .await
            .unwrap();
    let mut admin = AcdClient::connect(&url).await.unwrap();
    alice_api.login("alice", "1001").await.unwrap();
    admin.login("carol", "1003").await.unwrap();
    let mut alice = alice_api.watch("alice").await.unwrap();
    let mut carol = admin.watch("carol").await.unwrap();
    alice_api.ready("alice").await.unwrap();
    alice.await_state(AgentState::Ready, SHORT).await.unwrap();
    // Ready in the same millisecond or later, carol comes second: longest
    // idle breaks ties by agent id.
    admin.ready("carol").await.unwrap();
    carol.await_state(AgentState::Ready, SHORT).await.unwrap();

    let call = trunk(&env, "trunk", "trunk_call.xml", 3, "5550100", caller.port())
        .spawn(&env)
        .await
        .unwrap();

    let offer = alice.await_offer(LONG).await.unwrap();
    let offer_seq = alice.last_seq;
    let who = offer.caller.clone().unwrap_or_default();
    assert_eq!(who.number, "0611223344", "{offer:?}");
    assert_eq!(who.display_name, "Trunk Caller", "{offer:?}");
    let reserved = alice
        .await_state(AgentState::Reserved, SHORT)
        .await
        .unwrap();
    assert_eq!(reserved.call_id, offer.call_id);
    let reserved_seq = alice.last_seq;
    assert!(
        reserved_seq > offer_seq,
        "offer {offer_seq}, reserved {reserved_seq}"
    );
    let finished = alice.await_finished(SHORT).await.unwrap();
    assert_eq!(finished.call_id, offer.call_id);
    assert_eq!(finished.code, FinishReason::Rona as i32, "{finished:?}");
    assert!(!finished.reason.is_empty());
    alice
        .await_state(AgentState::NotReady, SHORT)
        .await
        .unwrap();
    alice_phone.wait().await.assert_success(1);
    let seqs: Vec<u64> = alice.history.iter().map(|e| e.seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "strictly increasing: {seqs:?}"
    );

    // Resumed right after the offer: the RESERVED of the same record comes
    // first, the offer is not repeated.
    let mut resumed = AgentWatch::following(std::slice::from_ref(&url), "alice", offer_seq, SHORT)
        .await
        .unwrap();
    let first = resumed.next(Instant::now() + SHORT).await.unwrap();
    assert_eq!(first.seq, reserved_seq, "{first:?}");
    assert!(
        matches!(first.kind, Some(Kind::Status(ref s)) if s.state == AgentState::Reserved as i32)
    );
    resumed.drain(Duration::from_millis(300)).await;
    let again: Vec<u64> = resumed.history.iter().map(|e| e.seq).collect();
    assert_eq!(
        &again[..],
        &seqs[seqs.len() - again.len()..],
        "the same events, no duplicate"
    );

    // Carol takes it and hangs up: the agent ended the call.
    let second = carol.await_offer(LONG).await.unwrap();
    assert_eq!(second.call_id, offer.call_id);
    carol.await_state(AgentState::OnCall, LONG).await.unwrap();
    carol_phone.wait().await.assert_success(1);
    call.wait().await.assert_success(1);

    // The decisions, in order: queued, offered to alice, back (RONA), offered to carol.
    let why = supervisor(&url)
        .await
        .explain(ExplainRequest {
            call_id: offer.call_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let steps: Vec<(&str, &str)> = why
        .decisions
        .iter()
        .map(|d| (d.kind.as_str(), d.agent_id.as_str()))
        .collect();
    assert_eq!(
        steps,
        [
            ("queued", ""),
            ("offered", "alice"),
            ("requeued", "alice"),
            ("offered", "carol")
        ],
        "{why:?}"
    );
}

/// Supervisor: boards, a forced NOT_READY the agent's watch sees, refusals
/// of admin-only calls, a dry-run agent change with its diff; logins at an
/// unknown extension are NOT_FOUND.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supervisor_boards_forced_states_and_changes() {
    let env = TestEnv::new("api_supervisor", 118);
    let acd = env.start_run().await.unwrap();
    let url = acd.grpc_url();
    let mut admin = AcdClient::connect(&url).await.unwrap();
    let mut sup = supervisor(&url).await;

    let e = admin.login("alice", "1009").await.unwrap_err();
    let st = e.downcast_ref::<tonic::Status>().expect("a gRPC status");
    assert_eq!(st.code(), Code::NotFound, "{st:?}");
    assert!(
        st.message().contains("extension 1009 is not configured"),
        "{st:?}"
    );
    assert_eq!(
        admin.get_agent("alice").await.unwrap().state,
        AgentState::LoggedOut as i32
    );

    admin.login("alice", "1001").await.unwrap();
    admin.ready("alice").await.unwrap();
    let mut alice = admin.watch("alice").await.unwrap();
    alice.await_state(AgentState::Ready, SHORT).await.unwrap();

    let forced = sup
        .force_state(ForceStateRequest {
            agent_id: "alice".into(),
            state: AgentState::NotReady as i32,
            reason: "coaching".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(forced.state, AgentState::NotReady as i32);
    let seen = alice
        .await_state(AgentState::NotReady, SHORT)
        .await
        .unwrap();
    assert_eq!(seen.reason, "coaching");

    // Boards: every queue with its definition, every agent.
    let mut boards = sup
        .watch_queues(WatchQueuesRequest {
            min_interval_ms: 50,
        })
        .await
        .unwrap()
        .into_inner();
    let board = boards.message().await.unwrap().expect("a first board");
    let sales = board
        .queues
        .iter()
        .find(|q| q.queue_id == "sales")
        .expect("sales");
    assert_eq!(sales.skills, "sales >= 1", "{sales:?}");
    assert_eq!(sales.strategy, "longest_idle", "{sales:?}");
    assert!(sales.open && sales.target_percent > 0, "{sales:?}");
    assert_eq!(sales.agents_logged_in, 1, "{sales:?}");
    // A change makes a new board.
    admin.ready("alice").await.unwrap();
    let next = tokio::time::timeout(SHORT, boards.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let sales = next.queues.iter().find(|q| q.queue_id == "sales").unwrap();
    assert_eq!(sales.agents_ready, 1, "{next:?}");
    let mut agents = sup
        .watch_agents(WatchAgentsRequest {})
        .await
        .unwrap()
        .into_inner();
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(agents.message().await.unwrap().unwrap().agent_id);
    }
    assert_eq!(ids, ["alice", "bob", "carol"]);

    let calls = sup
        .list_calls(ListCallsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(calls.calls.is_empty(), "{calls:?}");
    let e = sup
        .explain(ExplainRequest {
            call_id: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    // A dry run says what would change and changes nothing.
    let change = sup.upsert_agent(dave(true)).await.unwrap().into_inner();
    assert!(!change.applied);
    assert_eq!(change.diff, ["+ agent dave"]);
    assert!(
        admin.get_agent("dave").await.is_err(),
        "a dry run added dave"
    );
    let out = acdctl(
        &url,
        &[
            "--token",
            SUPERVISOR_TOKEN,
            "supervisor",
            "agent-set",
            "alice",
            "--name",
            "Alice",
            "--skill",
            "sales=6",
            "--skill",
            "english=8",
            "--dry-run",
            "--json",
        ],
    )
    .await
    .unwrap();
    assert!(out.success(), "{out:?}");
    let v = &out.json_lines().unwrap()[0];
    assert_eq!(v["applied"], false);
    assert_eq!(
        v["diff"][0],
        "~ agent alice: skills [[\"english\",8],[\"sales\",5]] -> [[\"english\",8],[\"sales\",6]]",
        "{v}"
    );

    // Admin-only: a supervisor may neither drain nor replace the config.
    let e = sup
        .apply_config(ApplyConfigRequest {
            toml: String::new(),
            dry_run: true,
            move_calls_to: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let mut sup_admin = AcdClient::connect_as(&url, Credentials::bearer(SUPERVISOR_TOKEN))
        .await
        .unwrap();
    let e = sup_admin.admin.drain(DrainRequest {}).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);

    // acdctl boards.
    let out = acdctl(&url, &["supervisor", "queues", "--json"])
        .await
        .unwrap();
    assert!(
        out.success() && out.json_lines().unwrap().len() == 2,
        "{out:?}"
    );
    let out = acdctl(
        &url,
        &["supervisor", "force", "alice", "not-ready", "lunch"],
    )
    .await
    .unwrap();
    assert!(out.success(), "{out:?}");
    alice
        .await_state(AgentState::NotReady, SHORT)
        .await
        .unwrap();
}

/// A supervisor adds agent dave; dave logs in and takes a SIPp call, which
/// the caller ends (CallFinished CALLER_HUNG_UP), and Explain tells why the
/// call went to dave.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_added_agent_takes_a_call() {
    let env = TestEnv::new("api_upsert_agent", 119);
    let acd = env.start_run().await.unwrap();
    let url = acd.grpc_url();
    let mut admin = AcdClient::connect(&url).await.unwrap();
    let mut sup = supervisor(&url).await;
    let caller = RtpObserver::bind("caller", env.ports.observer(0))
        .await
        .unwrap();
    let dave_rtp = RtpObserver::bind("dave", env.ports.observer(1))
        .await
        .unwrap();

    let change = sup.upsert_agent(dave(false)).await.unwrap().into_inner();
    assert!(change.applied && change.version > 0, "{change:?}");
    let dave_phone = agent_phone(&env, "dave-1002", 1, dave_rtp.port(), None).await;
    register(&env, 2, "1002", "secret1002", env.ports.sipp(1).sip)
        .await
        .assert_success(1);
    admin.login("dave", "1002").await.unwrap();
    let mut dave = admin.watch("dave").await.unwrap();
    admin.ready("dave").await.unwrap();
    dave.await_state(AgentState::Ready, SHORT).await.unwrap();

    let call = trunk(
        &env,
        "trunk",
        "trunk_call_hangup.xml",
        3,
        "5550100",
        caller.port(),
    )
    .pause_ms(3000)
    .spawn(&env)
    .await
    .unwrap();
    let offer = dave.await_offer(LONG).await.unwrap();
    dave.await_state(AgentState::OnCall, LONG).await.unwrap();
    let finished = dave.await_finished(LONG).await.unwrap();
    assert_eq!(
        finished.code,
        FinishReason::CallerHungUp as i32,
        "{finished:?}"
    );
    call.wait().await.assert_success(1);
    dave_phone.stop_and_wait().await;

    let why = sup
        .explain(ExplainRequest {
            call_id: offer.call_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        why.decisions
            .iter()
            .any(|d| d.kind == "offered" && d.agent_id == "dave"),
        "{why:?}"
    );
}
