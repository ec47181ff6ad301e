//! `acdctl status`, `drain`, `snapshot` and `switchover`: AdminService calls
//! (through the leader-following server list).

use acd_proto::v1::admin_service_client::AdminServiceClient;
use acd_proto::v1::{
    DrainRequest, EdgeSnapshotRequest, ReloadRequest, ReloadResponse, StatusRequest,
    SwitchoverRequest, SwitchoverResponse,
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

/// `acdctl reload`: every listed process reloads its flows; the first
/// refusal is the command's error once all were asked.
pub async fn reload(servers: &str, json: bool) -> Result<()> {
    let mut first_error = None;
    for url in servers.split(',').filter(|u| !u.is_empty()) {
        let result = async {
            let channel = crate::connect(url).await?;
            let resp = AdminServiceClient::new(channel)
                .reload(request(ReloadRequest {}))
                .await?;
            anyhow::Ok(resp.into_inner())
        }
        .await;
        match result {
            Ok(resp) => emit(json, || reload_text(url, &resp), || reload_json(url, &resp))?,
            Err(e) => {
                if servers.contains(',') {
                    eprintln!("{url}: {}", crate::error_line(&e));
                }
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// `URL: 2 flows, 1 changed`, then one `  flow@version [changed]` line each.
fn reload_text(url: &str, r: &ReloadResponse) -> String {
    let mut out = format!(
        "{url}: {} flows, {} changed",
        r.flows.len(),
        r.changed.len()
    );
    for flow in &r.flows {
        let id = flow.split('@').next().unwrap_or_default();
        let mark = if r.changed.iter().any(|c| c == id) {
            "  changed"
        } else {
            ""
        };
        out.push_str(&format!("\n  {flow}{mark}"));
    }
    for gone in r.changed.iter().filter(|c| {
        !r.flows
            .iter()
            .any(|f| f.split('@').next() == Some(c.as_str()))
    }) {
        out.push_str(&format!("\n  {gone}  removed"));
    }
    out
}

fn reload_json(url: &str, r: &ReloadResponse) -> serde_json::Value {
    serde_json::json!({ "server": url, "flows": r.flows, "changed": r.changed })
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
    fn reload_output() {
        let r = ReloadResponse {
            flows: vec!["night@0a1b".into(), "sales@2c3d".into()],
            changed: vec!["night".into(), "old".into()],
        };
        assert_eq!(
            reload_text("http://i:1", &r),
            "http://i:1: 2 flows, 2 changed\n  night@0a1b  changed\n  sales@2c3d\n  old  removed"
        );
        assert_eq!(reload_json("u", &r)["changed"][1], "old");
    }

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
