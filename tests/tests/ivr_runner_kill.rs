//! A runner killed mid-prompt loses no caller: edge, distributor and two
//! `acd ivr` runners as separate processes; while the caller hears a prompt
//! the runner that served the step is SIGKILLed, and the next steps go to
//! the other runner (the edge retries on it), so the caller reaches an agent
//! through the flow, not through the fallback.
//!
//! Port block 101: gRPC/metrics slot 0 the distributor, 1-2 the runners, 3
//! the edge; SIPp 1 the agent's phone, 2 registration, 3 the caller.

use std::path::Path;
use std::time::Duration;

use acd_tests::flows::{agent_phone, register, trunk};
use acd_tests::metrics::scrape_counter;
use acd_tests::proto::AgentState;
use acd_tests::{AcdClient, AcdProcess, RtpObserver, TestEnv, LONG, SHORT};
use tokio::time::Instant;

const DID: &str = "5550400";

/// A flow of two prompts, then the `sales` queue.
const FLOW: &str = "[[dids]]\nnumber = \"5550400\"\nflow = \"twice\"\n\n\
[flows.twice]\nstart = \"p1\"\nfallback_queue = \"sales\"\n\n\
[flows.twice.nodes.p1]\ntype = \"play\"\nprompt = \"welcome\"\nnext = \"p2\"\n\n\
[flows.twice.nodes.p2]\ntype = \"play\"\nprompt = \"welcome\"\nnext = \"queue\"\n\n\
[flows.twice.nodes.queue]\ntype = \"enqueue\"\nqueue = \"sales\"\n";

fn listen(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

async fn start_ivr(env: &TestEnv, name: &str, slot: u16, config: &Path) -> AcdProcess {
    let args: Vec<String> = vec![
        "ivr".into(),
        "--config".into(),
        config.display().to_string(),
        "--grpc".into(),
        listen(env.ports.grpc(slot)),
        "--metrics".into(),
        listen(env.ports.metrics(slot)),
    ];
    AcdProcess::spawn(env, name, &args).await.unwrap()
}

async fn steps(runner: &AcdProcess) -> f64 {
    scrape_counter(&runner.metrics_addr(), "acd_ivr_steps_total")
        .await
        .unwrap_or(0.0)
}

#[tokio::test]
async fn caller_reaches_an_agent_when_a_runner_dies_mid_prompt() {
    let env = TestEnv::new("ivr_runner_kill", 101);
    let config = env.write_config(FLOW);
    let dist = env.start_distributor("distributor", 0, None).await.unwrap();
    let mut runners = [
        start_ivr(&env, "ivr-0", 1, &config).await,
        start_ivr(&env, "ivr-1", 2, &config).await,
    ];
    let ivr_urls: Vec<String> = runners.iter().map(AcdProcess::grpc_url).collect();
    let mut edge_args = vec!["edge".to_string()];
    edge_args.extend(env.edge_args(3, &config));
    edge_args.extend([
        "--distributor".into(),
        dist.grpc_url(),
        "--ivr".into(),
        ivr_urls.join(","),
    ]);
    let edge = AcdProcess::spawn(&env, "edge", &edge_args).await.unwrap();

    let caller = RtpObserver::bind("caller", env.ports.observer(0))
        .await
        .unwrap();
    let agent_rtp = RtpObserver::bind("agent", env.ports.observer(1))
        .await
        .unwrap();
    let phone = agent_phone(&env, "agent-1001", 1, agent_rtp.port(), Some(2000)).await;
    register(&env, 2, "1001", "secret1001", env.ports.sipp(1).sip)
        .await
        .assert_success(1);
    let mut client = AcdClient::connect(&dist.grpc_url()).await.unwrap();
    client.login("alice", "1001").await.unwrap();
    let mut watch = client.watch("alice").await.unwrap();
    client.ready("alice").await.unwrap();

    let call = trunk(&env, "caller", "trunk_call.xml", 3, DID, caller.port())
        .spawn(&env)
        .await
        .unwrap();
    // The first prompt plays: exactly one step has been served.
    caller.await_g711(25, SHORT).await.unwrap();
    let deadline = Instant::now() + SHORT;
    let served = loop {
        let counts = [steps(&runners[0]).await, steps(&runners[1]).await];
        if let Some(i) = counts.iter().position(|c| *c >= 1.0) {
            assert_eq!(counts.iter().sum::<f64>(), 1.0, "steps so far: {counts:?}");
            break i;
        }
        assert!(Instant::now() < deadline, "no runner served the first step");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    runners[served].signal("KILL").unwrap();
    let _ = runners[served].wait_exit(SHORT).await;
    let other = &runners[1 - served];

    let offer = watch.await_offer(LONG).await.unwrap();
    assert_eq!(offer.queue_id, "sales", "{offer:?}");
    watch.await_state(AgentState::OnCall, LONG).await.unwrap();
    phone.wait().await.assert_success(1);
    call.wait().await.assert_success(1);

    // Both later steps (second prompt, queue) were served by the survivor,
    // and the caller never took the fallback path.
    assert!(
        steps(other).await >= 2.0,
        "the other runner served the rest"
    );
    let fallbacks = scrape_counter(&edge.metrics_addr(), "acd_edge_ivr_fallbacks_total")
        .await
        .unwrap();
    assert_eq!(fallbacks, 0.0, "the caller must go through the flow");
    let retried = scrape_counter(&edge.metrics_addr(), "acd_edge_ivr_errors_total")
        .await
        .unwrap();
    eprintln!("[e2e] steps refused by the dead runner and retried: {retried}");
}
