//! Honest readiness of an edge: until it is attached to a leading
//! distributor it prints no READY line, `/ready` answers 503 and Status says
//! it waits for a distributor; it is ready once one leads, and not ready
//! again while it has none.

use std::time::Duration;

use acd_tests::cluster::status_once;
use acd_tests::metrics::http_status;
use acd_tests::proto::StatusResponse;
use acd_tests::{config_path, AcdProcess, TestEnv, SHORT};
use tokio::time::Instant;

/// Polls the edge's Status until `cond` holds.
async fn await_status(
    url: &str,
    what: &str,
    cond: impl Fn(&StatusResponse) -> bool,
) -> StatusResponse {
    let deadline = Instant::now() + SHORT;
    loop {
        if let Ok(st) = status_once(url).await {
            if cond(&st) {
                return st;
            }
        }
        assert!(
            Instant::now() < deadline,
            "edge: {what} not seen within {SHORT:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_is_ready_only_with_a_distributor() {
    let env = TestEnv::new("edge_readiness", 91);
    let p = env.ports;
    let ivr = env.start_ivr("ivr", 1).await.unwrap();
    let distributor_url = format!("http://127.0.0.1:{}", p.grpc(0));
    let mut args = vec!["edge".to_string()];
    args.extend(env.edge_args(2, &config_path()));
    args.extend([
        "--distributor".into(),
        distributor_url,
        "--ivr".into(),
        ivr.grpc_url(),
    ]);
    let mut edge = AcdProcess::spawn_unready(&env, "edge", &args)
        .await
        .unwrap();
    let edge_url = format!("http://127.0.0.1:{}", p.grpc(2));
    let ready_addr = format!("127.0.0.1:{}", p.metrics(2));

    let st = await_status(&edge_url, "waiting for a distributor", |s| {
        !s.ready && s.waiting_for == "a distributor"
    })
    .await;
    eprintln!(
        "[e2e] edge without distributor: ready {}, waiting for {:?}",
        st.ready, st.waiting_for
    );
    assert_eq!(http_status(&ready_addr, "/ready").await, 503);
    assert!(
        !edge.has_printed_ready(),
        "READY printed without a distributor"
    );

    let mut distributor = env.start_distributor("distributor", 0, None).await.unwrap();
    edge.await_ready(SHORT).await.unwrap();
    await_status(&edge_url, "ready", |s| s.ready && s.waiting_for.is_empty()).await;
    assert_eq!(http_status(&ready_addr, "/ready").await, 200);

    distributor.kill().await;
    await_status(&edge_url, "not ready again", |s| {
        !s.ready && s.waiting_for == "a distributor"
    })
    .await;
    assert_eq!(http_status(&ready_addr, "/ready").await, 503);
    edge.assert_running();
}
