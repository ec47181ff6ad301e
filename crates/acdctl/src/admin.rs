//! `acdctl status`, `drain`, `snapshot` and `switchover`: AdminService calls
//! (through the leader-following server list).

use acd_proto::v1::admin_service_client::AdminServiceClient;
use acd_proto::v1::{
    DrainRequest, EdgeSnapshotRequest, StatusRequest, SwitchoverRequest, SwitchoverResponse,
};
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

/// `acdctl switchover`: the standby becomes primary; prints where and how
/// long commands were held.
pub async fn switchover(servers: &mut Servers, json: bool) -> Result<()> {
    let resp = servers
        .call(|ch| async move {
            AdminServiceClient::new(ch)
                .switchover(request(SwitchoverRequest {}))
                .await
        })
        .await?
        .into_inner();
    Ok(emit(
        json,
        || switchover_text(&resp),
        || switchover_json(&resp),
    )?)
}

fn switchover_text(r: &SwitchoverResponse) -> String {
    format!(
        "switchover: new primary {} (term {}), commands held {:.1} ms",
        r.new_primary,
        r.term,
        r.pause_us as f64 / 1000.0
    )
}

fn switchover_json(r: &SwitchoverResponse) -> serde_json::Value {
    serde_json::json!({
        "new_primary": r.new_primary,
        "term": r.term,
        "pause_us": r.pause_us,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switchover_output() {
        let r = SwitchoverResponse {
            term: 42,
            pause_us: 12_345,
            new_primary: "http://10.0.0.6:50051".into(),
        };
        assert_eq!(
            switchover_text(&r),
            "switchover: new primary http://10.0.0.6:50051 (term 42), commands held 12.3 ms"
        );
        assert_eq!(switchover_json(&r)["pause_us"], 12_345);
    }
}
