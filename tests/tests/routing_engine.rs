//! The routing engine through the running services: SIPp callers through the
//! edge, agents over gRPC. Priorities across DIDs, skill expressions with
//! relaxation firing at its time, overflow to another queue at max wait, the
//! most-skilled strategy, an offer rejected by one agent going to the next,
//! a queue changed by a supervisor while a call waits in it, and a call
//! transferred to an agent by name.

use std::path::PathBuf;
use std::time::Duration;

use acd_tests::cli::acdctl;
use acd_tests::flows::{agent_phone, agent_phone_scenario, register, trunk};
use acd_tests::proto::{transfer_request, AgentState, FinishReason, OfferRequest, TransferRequest};
use acd_tests::{AcdClient, AcdProcess, AgentWatch, RtpObserver, SippRun, TestEnv, LONG, SHORT};

/// e2e.toml with the sales queue's keys replaced by `sales_keys` and `extra`
/// tables appended; a VIP number (5550300) enqueues into sales at priority 10.
fn config(env: &TestEnv, sales_keys: &str, extra: &str) -> PathBuf {
    let sales_keys = sales_keys.to_string();
    let extra = extra.to_string();
    env.config_variant(move |text| {
        let text = text.replace(
            "id = \"sales\"\nskills = { sales = 1 }\n",
            &format!("id = \"sales\"\n{sales_keys}\n"),
        );
        format!(
            "{text}\n\
             [[dids]]\nnumber = \"5550300\"\nflow = \"vip\"\n\n\
             [flows.vip]\nanswer = \"immediate\"\nstart = \"queue\"\nfallback_queue = \"sales\"\n\n\
             [flows.vip.nodes.queue]\ntype = \"enqueue\"\nqueue = \"sales\"\npriority = 10\n\n\
             {extra}\n"
        )
    })
}

struct Site {
    acd: AcdProcess,
    client: AcdClient,
    caller: RtpObserver,
}

async fn start(env: &TestEnv, config: &std::path::Path) -> Site {
    let acd = env.start_run_with(config, &[]).await.unwrap();
    let client = AcdClient::connect(&acd.grpc_url()).await.unwrap();
    let caller = RtpObserver::bind("caller", env.ports.observer(0))
        .await
        .unwrap();
    Site {
        acd,
        client,
        caller,
    }
}

/// `agent` logs in at `extension` (its phone registered from SIPp slot
/// `slot + 1` for the phone on `slot`) and, if `ready`, becomes ready.
async fn agent(
    env: &TestEnv,
    site: &mut Site,
    agent: &str,
    extension: &str,
    slot: u16,
    ready: bool,
) -> AgentWatch {
    register(
        env,
        slot + 1,
        extension,
        &format!("secret{extension}"),
        env.ports.sipp(slot).sip,
    )
    .await
    .assert_success(1);
    site.client.login(agent, extension).await.unwrap();
    let mut watch = site.client.watch(agent).await.unwrap();
    if ready {
        site.client.ready(agent).await.unwrap();
        watch.await_state(AgentState::Ready, SHORT).await.unwrap();
    }
    watch
}

/// A trunk call from SIPp slot `slot` to `did`; the caller waits for the BYE.
async fn call(env: &TestEnv, site: &Site, name: &str, slot: u16, did: &str) -> SippRun {
    trunk(env, name, "trunk_call.xml", slot, did, site.caller.port())
        .spawn(env)
        .await
        .unwrap()
}

async fn await_waiting(site: &mut Site, queue: &str, n: u32) {
    site.client
        .await_queue(queue, &format!("{n} waiting"), LONG, |q| q.waiting == n)
        .await
        .unwrap();
}

/// A VIP caller (priority 10 from its number's flow) who arrived second is
/// offered first; the explanation says why.
#[tokio::test]
async fn a_higher_priority_call_is_served_first() {
    let env = TestEnv::new("routing_priority", 112);
    let cfg = config(&env, "skills = { sales = 1 }", "");
    let mut site = start(&env, &cfg).await;
    let phone = agent_phone(&env, "alice-1001", 1, env.ports.observer(1), Some(500)).await;
    let mut alice = agent(&env, &mut site, "alice", "1001", 1, false).await;

    let plain = call(&env, &site, "trunk-plain", 3, "5550100").await;
    await_waiting(&mut site, "sales", 1).await;
    let vip = call(&env, &site, "trunk-vip", 5, "5550300").await;
    await_waiting(&mut site, "sales", 2).await;

    site.client.ready("alice").await.unwrap();
    let offer = alice.await_offer(LONG).await.unwrap();
    assert_eq!(offer.priority, 10, "{offer:?}");
    let did = offer.caller.as_ref().map(|c| c.did.as_str());
    assert_eq!(did, Some("5550300"), "{offer:?}");
    assert!(
        offer.explanation.contains("priority"),
        "explanation: {}",
        offer.explanation
    );
    phone.wait().await.assert_success(1);
    vip.wait().await.assert_success(1);
    // The plain call is still there, first in line now.
    await_waiting(&mut site, "sales", 1).await;
    plain.stop();
    site.acd.assert_running();
}

/// The queue needs `sales >= 5`; only carol (sales 3) is ready. Nothing is
/// offered before the relaxation step at 2 s; then carol gets the call.
#[tokio::test]
async fn relaxation_widens_the_skills_at_its_time() {
    let env = TestEnv::new("routing_relax", 113);
    let cfg = config(
        &env,
        "skills = \"sales >= 5\"\nrelax = [{ after_secs = 2, skills = \"sales >= 1\" }]",
        "",
    );
    let mut site = start(&env, &cfg).await;
    let phone = agent_phone(&env, "carol-1003", 1, env.ports.observer(1), Some(500)).await;
    let mut carol = agent(&env, &mut site, "carol", "1003", 1, true).await;

    let caller = call(&env, &site, "trunk", 3, "5550100").await;
    let offer = carol.await_offer(LONG).await.unwrap();
    assert!(
        offer.waited_ms >= 2000,
        "offered after {} ms, before the step",
        offer.waited_ms
    );
    assert!(
        offer.explanation.contains("step 1"),
        "explanation: {}",
        offer.explanation
    );
    phone.wait().await.assert_success(1);
    caller.wait().await.assert_success(1);
    site.acd.assert_running();
}

/// Sales has no ready agent; after its max wait (2 s) the call overflows into
/// support, where bob takes it, keeping its caller data.
#[tokio::test]
async fn max_wait_overflows_into_another_queue() {
    let env = TestEnv::new("routing_overflow_queue", 114);
    let cfg = config(
        &env,
        "skills = { sales = 1 }\nmax_wait_secs = 2\noverflow = { max_wait = { queue = \"support\" } }",
        "",
    );
    let mut site = start(&env, &cfg).await;
    let phone = agent_phone(&env, "bob-1002", 1, env.ports.observer(1), Some(500)).await;
    let mut bob = agent(&env, &mut site, "bob", "1002", 1, true).await;
    // Alice is logged in (so sales has an agent) but not ready.
    let _alice = agent(&env, &mut site, "alice", "1001", 4, false).await;

    let caller = call(&env, &site, "trunk", 3, "5550100").await;
    let offer = bob.await_offer(LONG).await.unwrap();
    assert_eq!(offer.queue_id, "support", "{offer:?}");
    assert!(offer.waited_ms >= 2000, "{offer:?}");
    assert_eq!(
        offer.caller.as_ref().map(|c| c.did.as_str()),
        Some("5550100")
    );
    phone.wait().await.assert_success(1);
    caller.wait().await.assert_success(1);
    let sales = site.client.queue("sales").await.unwrap();
    assert_eq!(sales.overflowed, 1, "{sales:?}");
    site.acd.assert_running();
}

/// Most skilled: alice (sales 5) gets the call although carol (sales 3) has
/// been idle longer.
#[tokio::test]
async fn most_skilled_beats_longest_idle() {
    let env = TestEnv::new("routing_most_skilled", 130);
    let cfg = config(
        &env,
        "skills = { sales = 1 }\nstrategy = \"most_skilled\"",
        "",
    );
    let mut site = start(&env, &cfg).await;
    let phone = agent_phone(&env, "alice-1001", 1, env.ports.observer(1), Some(500)).await;
    let mut carol = agent(&env, &mut site, "carol", "1003", 4, true).await;
    let mut alice = agent(&env, &mut site, "alice", "1001", 1, true).await;

    let caller = call(&env, &site, "trunk", 3, "5550100").await;
    let offer = alice.await_offer(LONG).await.unwrap();
    assert!(
        offer.explanation.contains("most_skilled"),
        "explanation: {}",
        offer.explanation
    );
    phone.wait().await.assert_success(1);
    caller.wait().await.assert_success(1);
    carol.drain(Duration::from_millis(300)).await;
    assert!(carol.offers().is_empty(), "carol: {:?}", carol.offers());
    site.acd.assert_running();
}

/// Alice rejects the offer (AgentService.RejectOffer): the call goes to
/// carol, alice stays ready and is not offered it again.
#[tokio::test]
async fn a_rejected_offer_goes_to_the_next_agent() {
    let env = TestEnv::new("routing_reject", 131);
    let cfg = config(&env, "skills = { sales = 1 }", "");
    let mut site = start(&env, &cfg).await;
    // Alice's phone rings until cancelled; carol's answers.
    let alice_phone = agent_phone_scenario(
        &env,
        "alice-ring",
        "agent_ring_forever.xml",
        1,
        env.ports.observer(1),
    )
    .await;
    let carol_phone = agent_phone(&env, "carol-1003", 4, env.ports.observer(2), Some(500)).await;
    let mut alice = agent(&env, &mut site, "alice", "1001", 1, true).await;
    let mut carol = agent(&env, &mut site, "carol", "1003", 4, true).await;

    let caller = call(&env, &site, "trunk", 3, "5550100").await;
    let offer = alice.await_offer(LONG).await.unwrap();
    site.client
        .agent
        .reject_offer(OfferRequest {
            agent_id: "alice".into(),
            call_id: offer.call_id.clone(),
        })
        .await
        .unwrap();
    let second = carol.await_offer(LONG).await.unwrap();
    assert_eq!(second.call_id, offer.call_id);
    // Alice's phone was cancelled, not left ringing.
    alice_phone.wait().await.assert_success(1);
    alice.await_state(AgentState::Ready, SHORT).await.unwrap();
    carol_phone.wait().await.assert_success(1);
    caller.wait().await.assert_success(1);
    alice.drain(Duration::from_millis(300)).await;
    assert_eq!(alice.offers().len(), 1, "alice: {:?}", alice.offers());
    site.acd.assert_running();
}

/// A call waits in sales with no sales agent ready; a supervisor changes the
/// queue (dry run first, then applied) to accept support agents, and the
/// waiting call goes to bob at once.
#[tokio::test]
async fn a_queue_changed_while_a_call_waits_serves_it() {
    let env = TestEnv::new("routing_reconfig", 132);
    let cfg = config(&env, "skills = { sales = 1 }", "");
    let mut site = start(&env, &cfg).await;
    let phone = agent_phone(&env, "bob-1002", 1, env.ports.observer(1), Some(500)).await;
    let mut bob = agent(&env, &mut site, "bob", "1002", 1, true).await;
    let _alice = agent(&env, &mut site, "alice", "1001", 4, false).await;

    let caller = call(&env, &site, "trunk", 3, "5550100").await;
    await_waiting(&mut site, "sales", 1).await;
    let queue = env.log_path("sales.toml");
    std::fs::write(
        &queue,
        "id = \"sales\"\nskills = \"sales >= 1 OR support >= 5\"\n",
    )
    .unwrap();
    let url = site.acd.grpc_url();
    let queue_arg = queue.display().to_string();
    let dry = acdctl(
        &url,
        &["supervisor", "queue-set", "--file", &queue_arg, "--dry-run"],
    )
    .await
    .unwrap();
    assert!(dry.success(), "{dry:?}");
    assert!(dry.stdout.contains("sales"), "{dry:?}");
    // A dry run changes nothing: the call still waits.
    bob.drain(Duration::from_millis(300)).await;
    assert!(bob.offers().is_empty(), "{:?}", bob.offers());

    let applied = acdctl(&url, &["supervisor", "queue-set", "--file", &queue_arg])
        .await
        .unwrap();
    assert!(applied.success(), "{applied:?}");
    let offer = bob.await_offer(LONG).await.unwrap();
    assert_eq!(offer.queue_id, "sales", "{offer:?}");
    phone.wait().await.assert_success(1);
    caller.wait().await.assert_success(1);
    let status = site.client.status().await.unwrap();
    let version = status.distributor.map(|d| d.config_version).unwrap_or(0);
    assert_eq!(version, 1, "config version after one change");
    site.acd.assert_running();
}

/// Alice transfers a VIP call to carol by name: carol is offered the same call
/// with its priority and caller data, alice's phone gets the BYE and her
/// stream says TRANSFERRED.
#[tokio::test]
async fn a_call_transferred_to_an_agent_keeps_its_data_and_priority() {
    let env = TestEnv::new("routing_transfer_agent", 133);
    let cfg = config(&env, "skills = { sales = 1 }", "");
    let mut site = start(&env, &cfg).await;
    let alice_phone = agent_phone(&env, "alice-1001", 1, env.ports.observer(1), None).await;
    let carol_phone = agent_phone(&env, "carol-1003", 4, env.ports.observer(2), Some(500)).await;
    let mut alice = agent(&env, &mut site, "alice", "1001", 1, true).await;
    // Carol is logged in but not ready, so the call goes to alice.
    let mut carol = agent(&env, &mut site, "carol", "1003", 4, false).await;

    let caller = call(&env, &site, "trunk-vip", 3, "5550300").await;
    let offer = alice.await_offer(LONG).await.unwrap();
    alice.await_state(AgentState::OnCall, LONG).await.unwrap();
    site.client
        .agent
        .transfer(TransferRequest {
            agent_id: "alice".into(),
            call_id: offer.call_id.clone(),
            target: Some(transfer_request::Target::ToAgentId("carol".into())),
        })
        .await
        .unwrap();
    let finished = alice.await_finished(LONG).await.unwrap();
    assert_eq!(finished.code(), FinishReason::Transferred, "{finished:?}");
    alice_phone.wait().await.assert_success(1);
    // Carol, not ready, is not offered it until she is.
    site.client.ready("carol").await.unwrap();
    let second = carol.await_offer(LONG).await.unwrap();
    assert_eq!(second.call_id, offer.call_id);
    assert_eq!(second.priority, 10, "{second:?}");
    assert_eq!(
        second.caller.as_ref().map(|c| c.number.as_str()),
        offer.caller.as_ref().map(|c| c.number.as_str())
    );
    carol_phone.wait().await.assert_success(1);
    caller.wait().await.assert_success(1);
    site.acd.assert_running();
}

/// Ring-all: alice's and carol's phones ring together; carol answers, so the
/// edge cancels alice's ring and alice's stream says another agent took it.
#[tokio::test]
async fn ring_all_rings_every_ready_agent_and_the_first_answer_wins() {
    let env = TestEnv::new("routing_ring_all", 134);
    let cfg = config(&env, "skills = { sales = 1 }\nstrategy = \"ring_all\"", "");
    let mut site = start(&env, &cfg).await;
    let alice_phone = agent_phone_scenario(
        &env,
        "alice-ring",
        "agent_ring_forever.xml",
        1,
        env.ports.observer(1),
    )
    .await;
    let carol_phone = agent_phone(&env, "carol-1003", 4, env.ports.observer(2), Some(500)).await;
    let mut alice = agent(&env, &mut site, "alice", "1001", 1, true).await;
    let mut carol = agent(&env, &mut site, "carol", "1003", 4, true).await;

    let caller = call(&env, &site, "trunk", 3, "5550100").await;
    let to_alice = alice.await_offer(LONG).await.unwrap();
    let to_carol = carol.await_offer(LONG).await.unwrap();
    assert_eq!(to_alice.call_id, to_carol.call_id);
    carol.await_state(AgentState::OnCall, LONG).await.unwrap();
    let finished = alice.await_finished(LONG).await.unwrap();
    assert_eq!(finished.code(), FinishReason::TakenByOther, "{finished:?}");
    alice.await_state(AgentState::Ready, SHORT).await.unwrap();
    // Alice's phone was cancelled, not left ringing.
    alice_phone.wait().await.assert_success(1);
    carol_phone.wait().await.assert_success(1);
    caller.wait().await.assert_success(1);
    site.acd.assert_running();
}

/// Round robin: carol has been idle longer, yet the first call goes to alice
/// (first in agent order) and the next to carol (after alice), where longest
/// idle would have given the first to carol.
#[tokio::test]
async fn round_robin_takes_agents_in_turn() {
    let env = TestEnv::new("routing_round_robin", 129);
    let cfg = config(
        &env,
        "skills = { sales = 1 }\nstrategy = \"round_robin\"",
        "",
    );
    let mut site = start(&env, &cfg).await;
    let alice_phone = agent_phone(&env, "alice-1001", 1, env.ports.observer(1), Some(300)).await;
    let carol_phone = agent_phone(&env, "carol-1003", 4, env.ports.observer(2), Some(300)).await;
    let mut carol = agent(&env, &mut site, "carol", "1003", 4, true).await;
    let mut alice = agent(&env, &mut site, "alice", "1001", 1, true).await;

    let first = call(&env, &site, "trunk-1", 3, "5550100").await;
    let offer = alice.await_offer(LONG).await.unwrap();
    assert!(
        offer.explanation.contains("round_robin"),
        "explanation: {}",
        offer.explanation
    );
    alice_phone.wait().await.assert_success(1);
    first.wait().await.assert_success(1);
    let second = call(&env, &site, "trunk-2", 5, "5550100").await;
    carol.await_offer(LONG).await.unwrap();
    carol_phone.wait().await.assert_success(1);
    second.wait().await.assert_success(1);
    assert_eq!(alice.offers().len(), 1, "alice: {:?}", alice.offers());
    site.acd.assert_running();
}

/// Fewest calls: alice took a call and has been ready longer than carol, who
/// took none; the next call goes to carol (longest idle would pick alice).
#[tokio::test]
async fn fewest_calls_prefers_the_agent_with_fewer_calls() {
    let env = TestEnv::new("routing_fewest_calls", 126);
    let cfg = config(
        &env,
        "skills = { sales = 1 }\nstrategy = \"fewest_calls\"",
        "",
    );
    let mut site = start(&env, &cfg).await;
    let alice_phone = agent_phone(&env, "alice-1001", 1, env.ports.observer(1), Some(300)).await;
    let carol_phone = agent_phone(&env, "carol-1003", 4, env.ports.observer(2), Some(300)).await;
    let mut alice = agent(&env, &mut site, "alice", "1001", 1, true).await;

    let first = call(&env, &site, "trunk-1", 3, "5550100").await;
    alice.await_offer(LONG).await.unwrap();
    alice_phone.wait().await.assert_success(1);
    first.wait().await.assert_success(1);
    // Ready again after the 1 s wrap-up, before carol is.
    alice.await_state(AgentState::WrapUp, LONG).await.unwrap();
    alice.await_state(AgentState::Ready, LONG).await.unwrap();
    let mut carol = agent(&env, &mut site, "carol", "1003", 4, true).await;

    let second = call(&env, &site, "trunk-2", 5, "5550100").await;
    let offer = carol.await_offer(LONG).await.unwrap();
    assert!(
        offer.explanation.contains("fewest_calls"),
        "explanation: {}",
        offer.explanation
    );
    carol_phone.wait().await.assert_success(1);
    second.wait().await.assert_success(1);
    assert_eq!(alice.offers().len(), 1, "alice: {:?}", alice.offers());
    site.acd.assert_running();
}
