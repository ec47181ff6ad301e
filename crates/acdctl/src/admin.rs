//! `acdctl status`, `acdctl drain` and `acdctl snapshot`: AdminService calls
//! (on the first server that answers).

use acd_proto::v1::admin_service_client::AdminServiceClient;
use acd_proto::v1::{DrainRequest, EdgeSnapshotRequest, StatusRequest};
use anyhow::Result;

use crate::output::{self, emit};
use crate::request;
use crate::servers::Servers;

pub async fn status(servers: &mut Servers, json: bool) -> Result<()> {
    let resp = servers
        .call(|ch| async move {
            AdminServiceClient::new(ch)
                .status(request(StatusRequest {}))
                .await
        })
        .await?
        .into_inner();
    Ok(emit(
        json,
        || output::status_text(&resp),
        || output::status_json(&resp),
    )?)
}

pub async fn drain(servers: &mut Servers, json: bool) -> Result<()> {
    let resp = servers
        .call(|ch| async move {
            AdminServiceClient::new(ch)
                .drain(request(DrainRequest {}))
                .await
        })
        .await?
        .into_inner();
    Ok(emit(
        json,
        || output::drain_text(&resp),
        || output::drain_json(&resp),
    )?)
}

/// The edge's whole state as JSON on stdout (what a live hand-over passes
/// on): for inspecting a running edge.
pub async fn snapshot(servers: &mut Servers) -> Result<()> {
    use std::io::Write;
    let resp = servers
        .call(|ch| async move {
            AdminServiceClient::new(ch)
                .edge_snapshot(request(EdgeSnapshotRequest {}))
                .await
        })
        .await?
        .into_inner();
    let mut out = std::io::stdout().lock();
    out.write_all(&resp.snapshot)?;
    out.write_all(b"\n")?;
    Ok(())
}
