//! A reload reaches the edge too: a number, a flow file and a prompt added to
//! the config while `acd run` serves are in use for the next call, without a
//! restart. Before the reload the number is unknown (404).
//!
//! Port block 54: `acd run` on slot 0; SIPp 1 alice's phone, 3 registration,
//! 4 the caller refused, 5 the caller after the reload.

use std::path::Path;

use acd_tests::flows::{agent_phone, register, trunk};
use acd_tests::metrics::scrape_counter;
use acd_tests::proto::AgentState;
use acd_tests::{acdctl, AcdClient, RtpObserver, TestEnv, LONG, SHORT};

const DID: &str = "5550301";

/// A flow playing a prompt only the reloaded config knows, then queueing.
const GREETING_FLOW: &str = "start = \"hello\"\nfallback_queue = \"sales\"\n\n\
[nodes.hello]\ntype = \"play\"\nprompt = \"greeting\"\nnext = \"queue\"\n\n\
[nodes.queue]\ntype = \"enqueue\"\nqueue = \"sales\"\n";

fn welcome_wav() -> Vec<u8> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/prompts/welcome.wav");
    std::fs::read(root).unwrap()
}

#[tokio::test]
async fn a_number_flow_and_prompt_added_by_reload_serve_the_next_call() {
    let env = TestEnv::new("edge_reload", 54);
    let flows = env.log_path("flows");
    std::fs::create_dir_all(&flows).unwrap();
    let config = env.write_config("[ivr]\nflows_dir = \"flows\"\n");
    let acd = env.start_run_with(&config, &[]).await.unwrap();
    let url = acd.grpc_url();

    // Not configured yet: the number is refused.
    trunk(
        &env,
        "caller-404",
        "trunk_404.xml",
        4,
        DID,
        env.ports.observer(0),
    )
    .spawn(&env)
    .await
    .unwrap()
    .wait()
    .await
    .assert_success(1);

    // The number, its flow and a new prompt arrive in the config.
    std::fs::write(env.log_path("greeting.wav"), welcome_wav()).unwrap();
    std::fs::write(flows.join("greet.toml"), GREETING_FLOW).unwrap();
    let text = std::fs::read_to_string(&config).unwrap();
    let extra = format!(
        "\n[prompt_sets.en]\ngreeting = \"greeting.wav\"\n\n[[dids]]\nnumber = \"{DID}\"\nflow = \"greet\"\n"
    );
    std::fs::write(&config, text + &extra).unwrap();
    let out = acdctl(&url, &["reload"]).await.unwrap();
    assert!(out.success(), "{out:?}");
    assert!(out.stdout.contains("greet@"), "{}", out.stdout);

    let caller = RtpObserver::bind("caller", env.ports.observer(1))
        .await
        .unwrap();
    let alice_rtp = RtpObserver::bind("alice", env.ports.observer(2))
        .await
        .unwrap();
    let alice_phone = agent_phone(&env, "alice-1001", 1, alice_rtp.port(), Some(2000)).await;
    register(&env, 3, "1001", "secret1001", env.ports.sipp(1).sip)
        .await
        .assert_success(1);
    let mut client = AcdClient::connect(&url).await.unwrap();
    client.login("alice", "1001").await.unwrap();
    let mut alice = client.watch("alice").await.unwrap();
    client.ready("alice").await.unwrap();

    let run = trunk(&env, "caller", "trunk_call.xml", 5, DID, caller.port())
        .spawn(&env)
        .await
        .unwrap();
    // The new prompt plays (it is the only audio before the queue's music).
    caller.await_g711(25, SHORT).await.unwrap();
    let offer = alice.await_offer(LONG).await.unwrap();
    assert_eq!(offer.queue_id, "sales", "{offer:?}");
    alice.await_state(AgentState::OnCall, LONG).await.unwrap();
    alice_phone.wait().await.assert_success(1);
    run.wait().await.assert_success(1);

    let metrics = acd.metrics_addr();
    let missing = scrape_counter(&metrics, "acd_edge_ivr_prompts_missing_total")
        .await
        .unwrap_or(0.0);
    assert_eq!(
        missing, 0.0,
        "the reloaded prompt must be known to the edge"
    );
}
