//! A busy edge's whole state, taken from the running process
//! (AdminService.EdgeSnapshot, `acdctl snapshot`): the queued call with its
//! dialog and timers, and its media stream as the caller hears it: the SSRC
//! the caller receives, a sequence number that moves on with the music on
//! hold, the prompt by name. The core part decodes as `acd_b2bua::Snapshot`.

use std::net::SocketAddr;

use acd_tests::ua::{sdp, CallerDialog, RawUa};
use acd_tests::{AcdClient, RtpObserver, TestEnv, LONG, SHORT};
use serde_json::Value;

async fn snapshot(client: &mut AcdClient) -> Value {
    let resp = client.edge_snapshot().await.unwrap();
    assert_eq!(resp.calls, 1, "one call in the snapshot");
    assert_eq!(resp.media_streams, 1, "its media in the snapshot");
    serde_json::from_slice(&resp.snapshot).expect("snapshot is JSON")
}

fn caller_stream(v: &Value) -> (u64, u64) {
    let stream = &v["media"][0]["media"]["caller"]["stream"];
    let ssrc = stream["ssrc"].as_u64().expect("caller stream SSRC");
    let seq = stream["seq"].as_u64().expect("caller stream seq");
    (ssrc, seq)
}

#[tokio::test]
async fn a_queued_call_is_in_the_running_edges_snapshot_with_its_media_stream() {
    let env = TestEnv::new("edge_snapshot", 47);
    let mut acd = env.start_run().await.unwrap();
    let mut client = AcdClient::connect(&acd.grpc_url()).await.unwrap();
    let caller_rtp = RtpObserver::bind("caller", env.ports.observer(0))
        .await
        .unwrap();
    let edge: SocketAddr = env.sip_addr().parse().unwrap();
    let mut ua = RawUa::udp(env.ports.sipp(0).sip).await.unwrap();
    let mut dlg = CallerDialog::new(&ua, edge, "5550100", "e2e-snapshot");
    let offer = sdp("127.0.0.1", caller_rtp.port(), &[0, 8], "sendrecv", 1);
    ua.send(edge, &dlg.invite(Some(&offer), true))
        .await
        .unwrap();
    let ok = ua.recv_final("INVITE", 1, LONG).await.unwrap();
    assert_eq!(ok.status(), Some(200), "{}", ok.text);
    dlg.established(&ok);
    ua.send(edge, &dlg.ack(1, None)).await.unwrap();
    // No agent is ready: after the welcome prompt the call waits in the queue.
    client
        .await_queue("sales", "waiting = 1", LONG, |q| q.waiting == 1)
        .await
        .unwrap();

    let first = snapshot(&mut client).await;
    let call = &first["core"]["calls"][0];
    assert_eq!(call["phase"], Value::from("Queued"), "{call}");
    let entries = call["caller"]["invite"]["headers"]["entries"]
        .as_array()
        .expect("the caller's INVITE is kept");
    assert!(
        entries
            .iter()
            .any(|h| h[0] == "Call-ID" && h[1] == "e2e-snapshot"),
        "{entries:?}"
    );
    // The caller's INVITE server transaction (RFC 6026 Accepted) travels too,
    // so a retransmission after a hand-over is absorbed.
    let txs = first["core"]["transactions"]["txs"]
        .as_array()
        .expect("transactions");
    assert!(
        txs.iter().any(|t| t["key"]["method"] == "Invite"),
        "{txs:?}"
    );
    let playing = &first["media"][0]["media"]["playing"];
    assert_eq!(playing["prompt"], Value::from("moh"), "{playing}");
    assert_eq!(playing["looping"], Value::from(true));
    let (ssrc, seq1) = caller_stream(&first);
    // The SSRC in the snapshot is the one the caller receives.
    let heard = caller_rtp
        .await_from(ssrc as u32, 10, SHORT)
        .await
        .unwrap_or_else(|e| panic!("caller does not hear SSRC {ssrc:#x}: {e}"));

    // Music keeps playing; a later snapshot carries the stream on.
    let before = heard.from_ssrc(ssrc as u32);
    caller_rtp
        .await_from(ssrc as u32, before + 20, SHORT)
        .await
        .unwrap();
    let second = snapshot(&mut client).await;
    let (ssrc2, seq2) = caller_stream(&second);
    assert_eq!(ssrc2, ssrc, "one SSRC for the whole call");
    let advanced = (seq2 + 65536 - seq1) % 65536;
    assert!(
        (5..200).contains(&advanced),
        "sequence moved on by {advanced}"
    );

    // The core part is the format acd_b2bua reads back.
    let core = serde_json::to_vec(&second["core"]).unwrap();
    let decoded = acd_b2bua::Snapshot::from_json(&core).expect("core snapshot decodes");
    assert_eq!(decoded.calls.len(), 1);
    acd.assert_running();
}
