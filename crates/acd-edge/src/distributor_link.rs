//! The edge's end of `EdgeService/Attach`: one bidirectional stream to the
//! distributor, re-opened with back-off whenever it breaks.

use std::time::Duration;

use acd_proto::v1 as pb;
use pb::edge_service_client::EdgeServiceClient;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Endpoint;

use std::sync::Arc;

use crate::driver::Input;
use crate::EdgeShared;

/// Sends edge messages to the distributor; cheap to clone.
#[derive(Clone)]
pub struct DistributorLink {
    tx: mpsc::UnboundedSender<pb::EdgeMessage>,
}

impl DistributorLink {
    pub fn send(&self, kind: pb::edge_message::Kind) {
        let _ = self.tx.send(pb::EdgeMessage {
            kind: Some(kind),
            msg_id: 0,
        });
    }
}

pub fn start(
    url: String,
    edge_id: String,
    input: mpsc::Sender<Input>,
    shared: Arc<EdgeShared>,
) -> DistributorLink {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(run(url, edge_id, rx, input, shared));
    DistributorLink { tx }
}

async fn run(
    url: String,
    edge_id: String,
    mut outbound: mpsc::UnboundedReceiver<pb::EdgeMessage>,
    input: mpsc::Sender<Input>,
    shared: Arc<EdgeShared>,
) {
    let mut backoff = Duration::from_millis(50);
    loop {
        match attach_once(&url, &edge_id, &mut outbound, &input, &shared).await {
            Ok(()) => return, // the engine is gone
            Err(e) => {
                let _ = input.send(Input::DistributorUp(false)).await;
                metrics::counter!("acd_edge_distributor_disconnects_total").increment(1);
                tracing::warn!(distributor = %url, error = %e, "distributor stream down, retrying");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

async fn attach_once(
    url: &str,
    edge_id: &str,
    outbound: &mut mpsc::UnboundedReceiver<pb::EdgeMessage>,
    input: &mpsc::Sender<Input>,
    shared: &EdgeShared,
) -> Result<(), String> {
    let channel = Endpoint::from_shared(url.to_string())
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(1))
        .connect()
        .await
        .map_err(|e| e.to_string())?;
    let (tx, rx) = mpsc::channel::<pb::EdgeMessage>(1024);
    let live_calls = shared
        .queued_calls
        .iter()
        .map(|c| c.key().clone())
        .collect();
    let hello = pb::EdgeMessage {
        kind: Some(pb::edge_message::Kind::Hello(pb::EdgeHello {
            edge_id: edge_id.to_string(),
            live_calls,
            last_msg_id: 0,
        })),
        msg_id: 0,
    };
    tx.send(hello).await.map_err(|e| e.to_string())?;
    let mut inbound = EdgeServiceClient::new(channel)
        .attach(ReceiverStream::new(rx))
        .await
        .map_err(|s| s.message().to_string())?
        .into_inner();
    let _ = input.send(Input::DistributorUp(true)).await;
    tracing::info!(distributor = %url, "attached to distributor");
    loop {
        tokio::select! {
            msg = outbound.recv() => match msg {
                Some(m) => tx.send(m).await.map_err(|e| e.to_string())?,
                None => return Ok(()),
            },
            msg = inbound.message() => match msg {
                Ok(Some(m)) => {
                    if input.send(Input::Distributor(m)).await.is_err() {
                        return Ok(());
                    }
                }
                Ok(None) => return Err("stream closed by distributor".into()),
                Err(s) => return Err(s.message().to_string()),
            },
        }
    }
}
