//! Trunk policy against the real edge: with `[[trunks]]` configured, an
//! INVITE from a source no trunk lists is refused with 403 before any RTP
//! port is reserved, and the refusal is counted with its reason; a listed
//! source is answered as usual.

use std::net::SocketAddr;

use acd_tests::metrics::{counter_with, scrape};
use acd_tests::ua::{sdp, CallerDialog, RawUa};
use acd_tests::{AcdClient, TestEnv, SHORT};

#[tokio::test]
async fn an_invite_from_an_unlisted_source_gets_403_and_no_media() {
    let env = TestEnv::new("trunk_policy", 57);
    // Only 127.0.0.2 is a trunk; the test's caller sends from 127.0.0.1.
    let config = env.config_variant(|t| {
        format!("{t}\n[[trunks]]\nname = \"carrier\"\nsources = [\"127.0.0.2/32\"]\n")
    });
    let mut acd = env.start_run_with(&config, &[]).await.unwrap();
    let edge: SocketAddr = env.sip_addr().parse().unwrap();

    let mut stranger = RawUa::udp(env.ports.sipp(0).sip).await.unwrap();
    let mut dlg = CallerDialog::new(&stranger, edge, "5550100", "e2e-unknown-source");
    let offer = sdp("127.0.0.1", env.ports.observer(0), &[0, 8], "sendrecv", 1);
    stranger
        .send(edge, &dlg.invite(Some(&offer), true))
        .await
        .unwrap();
    let r = stranger.recv_final("INVITE", 1, SHORT).await.unwrap();
    assert_eq!(r.status(), Some(403), "unlisted source:\n{}", r.text);
    stranger.send(edge, &dlg.ack_non_2xx(&r)).await.unwrap();

    let metrics = scrape(&acd.metrics_addr()).await.unwrap();
    assert_eq!(
        counter_with(
            &metrics,
            "acd_calls_total",
            &[("outcome", "unknown_source")]
        ),
        Some(1.0),
        "refusal counted with its reason"
    );
    assert_eq!(
        counter_with(&metrics, "acd_calls_total", &[("outcome", "accepted")]),
        None,
        "no call was accepted"
    );
    let mut client = AcdClient::connect(&acd.grpc_url()).await.unwrap();
    let st = client.status().await.unwrap();
    assert_eq!(st.edge.map(|e| e.active_calls), Some(0), "{st:?}");
    let snap = client.edge_snapshot().await.unwrap();
    assert_eq!(
        (snap.calls, snap.media_streams),
        (0, 0),
        "no call and no RTP sockets for the refused INVITE"
    );

    // The listed source is served.
    let mut carrier = RawUa::udp_on("127.0.0.2", env.ports.sipp(1).sip)
        .await
        .unwrap();
    let mut dlg = CallerDialog::new(&carrier, edge, "5550100", "e2e-carrier");
    let offer = sdp("127.0.0.2", env.ports.observer(1), &[0, 8], "sendrecv", 1);
    carrier
        .send(edge, &dlg.invite(Some(&offer), true))
        .await
        .unwrap();
    let ok = carrier.recv_final("INVITE", 1, SHORT).await.unwrap();
    assert_eq!(ok.status(), Some(200), "listed source:\n{}", ok.text);
    dlg.established(&ok);
    carrier.send(edge, &dlg.ack(1, None)).await.unwrap();
    carrier.send(edge, &dlg.request("BYE", None)).await.unwrap();
    let bye = carrier.recv_final("BYE", 2, SHORT).await.unwrap();
    assert_eq!(bye.status(), Some(200));
    acd.assert_running();
}
