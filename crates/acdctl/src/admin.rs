//! `acdctl status`, `acdctl drain` and `acdctl snapshot`: AdminService calls.

use acd_proto::v1::admin_service_client::AdminServiceClient;
use acd_proto::v1::{DrainRequest, EdgeSnapshotRequest, StatusRequest};
use anyhow::Result;
use tonic::transport::Channel;

use crate::output::{self, emit};
use crate::request;

pub async fn status(channel: Channel, json: bool) -> Result<()> {
    let resp = AdminServiceClient::new(channel)
        .status(request(StatusRequest {}))
        .await?
        .into_inner();
    Ok(emit(
        json,
        || output::status_text(&resp),
        || output::status_json(&resp),
    )?)
}

pub async fn drain(channel: Channel, json: bool) -> Result<()> {
    let resp = AdminServiceClient::new(channel)
        .drain(request(DrainRequest {}))
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
pub async fn snapshot(channel: Channel) -> Result<()> {
    use std::io::Write;
    let resp = AdminServiceClient::new(channel)
        .edge_snapshot(request(EdgeSnapshotRequest {}))
        .await?
        .into_inner();
    let mut out = std::io::stdout().lock();
    out.write_all(&resp.snapshot)?;
    out.write_all(b"\n")?;
    Ok(())
}
