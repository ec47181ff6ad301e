//! The whole call path: a registered agent softphone, an agent client on
//! gRPC, a trunk call through IVR prompt, queue, offer, answer, two-way
//! media, hang-up by the agent, wrap-up — in `acd run` and with every role
//! as its own process.

use acd_tests::cli::{find_queue, queue_counter};
use acd_tests::flows::{agent_phone, register, trunk};
use acd_tests::metrics::scrape_counter;
use acd_tests::proto::AgentState;
use acd_tests::{acdctl, AcdClient, RtpObserver, TestEnv, LONG, SHORT};

const CALLER_SSRC: u32 = 0xCA11_E500;
const AGENT_SSRC: u32 = 0xA6E7_0100;

/// Drives one call through the edge at env.sip_addr(); `api` serves the
/// AgentService (acd run, or the distributor).
async fn call_through(env: &TestEnv, api: &str, tcp_trunk: bool) {
    let caller = RtpObserver::bind("caller", env.ports.observer(0))
        .await
        .unwrap();
    let agent_rtp = RtpObserver::bind("agent", env.ports.observer(1))
        .await
        .unwrap();

    // Alice's softphone: answers, talks 6 s, hangs up.
    let phone = agent_phone(env, "agent-1001", 1, agent_rtp.port(), Some(6000)).await;
    register(env, 2, "1001", "secret1001", env.ports.sipp(1).sip)
        .await
        .assert_success(1);

    let mut client = AcdClient::connect(api).await.unwrap();
    let st = client.login("alice", "1001").await.unwrap();
    let mut watch = client.watch("alice").await.unwrap();
    if st.state != AgentState::NotReady as i32 {
        client.not_ready("alice", "e2e").await.unwrap();
    }

    let mut cmd = trunk(env, "trunk", "trunk_call.xml", 3, "5550100", caller.port());
    if tcp_trunk {
        cmd = cmd.tcp();
    }
    let trunk_run = cmd.spawn(env).await.unwrap();

    // Welcome prompt (and then music on hold) before anyone answers.
    let st = caller.await_g711(50, LONG).await.unwrap();
    eprintln!(
        "[e2e] caller got {} G.711 packets before the agent was ready",
        st.g711()
    );
    assert!(
        agent_rtp.stats().total == 0,
        "agent got RTP before being offered a call"
    );

    client.ready("alice").await.unwrap();
    let offer = watch.await_offer(LONG).await.unwrap();
    let caller_data = offer.caller.clone().expect("offer carries caller data");
    assert_eq!(caller_data.did, "5550100", "offer: {offer:?}");
    assert!(
        caller_data.from_uri.contains("0611223344"),
        "offer from_uri: {offer:?}"
    );
    assert_eq!(offer.queue_id, "sales", "offer: {offer:?}");
    assert!(
        !offer.call_id.is_empty(),
        "offer without call id: {offer:?}"
    );
    let on_call = watch.await_state(AgentState::OnCall, LONG).await.unwrap();
    assert_eq!(on_call.call_id, offer.call_id, "ON_CALL for another call");

    // Media both ways through the relay, symmetric RTP on each leg.
    let edge_caller_leg = caller.last_source().expect("edge sent RTP to the caller");
    caller
        .send_tagged(edge_caller_leg, CALLER_SSRC, 50)
        .await
        .unwrap();
    agent_rtp.await_from(CALLER_SSRC, 40, SHORT).await.unwrap();
    let edge_agent_leg = agent_rtp.last_source().unwrap();
    assert_ne!(edge_agent_leg, edge_caller_leg, "one RTP port per leg");
    agent_rtp
        .send_tagged(edge_agent_leg, AGENT_SSRC, 50)
        .await
        .unwrap();
    caller.await_from(AGENT_SSRC, 40, SHORT).await.unwrap();

    // The agent hangs up; the caller gets the BYE.
    phone.wait().await.assert_success(1);
    trunk_run.wait().await.assert_success(1);

    watch.await_state(AgentState::WrapUp, SHORT).await.unwrap();
    watch.await_state(AgentState::Ready, SHORT).await.unwrap();

    let out = acdctl(api, &["queue", "list", "--json"]).await.unwrap();
    assert!(out.success(), "acdctl queue list failed: {out:?}");
    let lines = out.json_lines().unwrap();
    let sales =
        find_queue(&lines, "sales").unwrap_or_else(|| panic!("no sales queue in {lines:?}"));
    assert_eq!(queue_counter(sales, "answered"), 1, "sales: {sales}");
    assert_eq!(queue_counter(sales, "waiting"), 0, "sales: {sales}");
}

#[tokio::test]
async fn call_path_all_in_one() {
    let env = TestEnv::new("call_path_all_in_one", 12);
    let mut acd = env.start_run().await.unwrap();
    call_through(&env, &acd.grpc_url(), false).await;
    acd.assert_running();
}

#[tokio::test]
async fn call_path_split_roles_over_tcp() {
    let env = TestEnv::new("call_path_split_roles_over_tcp", 13);
    let mut dist = env.start_distributor("distributor", 0, None).await.unwrap();
    let ivr1 = env.start_ivr("ivr-1", 1).await.unwrap();
    let ivr2 = env.start_ivr("ivr-2", 2).await.unwrap();
    let mut edge = env
        .start_edge(
            "edge",
            3,
            &dist.grpc_url(),
            &[ivr1.grpc_url(), ivr2.grpc_url()],
        )
        .await
        .unwrap();
    call_through(&env, &dist.grpc_url(), true).await;

    // The edge alternated runners between the steps of the call.
    let s1 = scrape_counter(&ivr1.metrics_addr(), "acd_ivr_steps_total")
        .await
        .unwrap();
    let s2 = scrape_counter(&ivr2.metrics_addr(), "acd_ivr_steps_total")
        .await
        .unwrap();
    assert!(
        s1 >= 1.0 && s2 >= 1.0,
        "both IVR runners must serve steps: ivr-1 {s1}, ivr-2 {s2}"
    );
    dist.assert_running();
    edge.assert_running();
}
