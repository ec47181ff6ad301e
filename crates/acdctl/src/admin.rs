//! `acdctl status` and `acdctl drain`: AdminService calls.

use acd_proto::v1::admin_service_client::AdminServiceClient;
use acd_proto::v1::{DrainRequest, StatusRequest};
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
