//! `acd.v1.AdminService`, served by every role: status, drain, switchover.

use std::sync::Arc;

use acd_distributor::leadership::Leadership;
use acd_distributor::Distributor;
use acd_proto::v1 as pb;
use pb::admin_service_server::{AdminService, AdminServiceServer};
use tonic::{Request, Response, Status};

use crate::health::Readiness;
use crate::reload::FlowReloader;

/// When this process started (Unix ms); `serve` fixes it at start-up.
pub fn started_at_ms() -> u64 {
    static STARTED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *STARTED.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    })
}

pub struct AdminApi {
    roles: Vec<String>,
    distributor: Option<Distributor>,
    readiness: Arc<Readiness>,
    leadership: Option<Leadership>,
    reloader: Option<Arc<FlowReloader>>,
}

impl AdminApi {
    /// `roles` as reported by Status, e.g. `["edge", "ivr", "distributor"]`.
    /// The edge (if any) is found through `readiness`, since in `acd run` it
    /// starts only after gRPC serves.
    pub fn new(
        roles: &[&str],
        distributor: Option<Distributor>,
        readiness: Arc<Readiness>,
    ) -> Self {
        AdminApi {
            roles: roles.iter().map(|r| r.to_string()).collect(),
            distributor,
            readiness,
            leadership: None,
            reloader: None,
        }
    }

    /// A distributor elected through etcd can hand over (Switchover).
    pub fn with_leadership(mut self, leadership: Option<Leadership>) -> Self {
        self.leadership = leadership;
        self
    }

    /// A process with the IVR role reloads its flows (Reload).
    pub fn with_reloader(mut self, reloader: Option<Arc<FlowReloader>>) -> Self {
        self.reloader = reloader;
        self
    }

    pub fn into_service(self) -> AdminServiceServer<Self> {
        AdminServiceServer::new(self)
    }
}

#[tonic::async_trait]
impl AdminService for AdminApi {
    async fn status(
        &self,
        _req: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        let edge = self.readiness.edge();
        Ok(Response::new(pb::StatusResponse {
            roles: self.roles.clone(),
            role_kinds: self.roles.iter().map(|r| role_kind(r) as i32).collect(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            distributor: self.distributor.as_ref().map(Distributor::status),
            edge: edge.map(|e| e.status()),
            draining: edge.is_some_and(|e| e.is_draining()),
            pid: std::process::id(),
            started_at_ms: started_at_ms(),
            ready: self.readiness.is_ready(),
            waiting_for: crate::health::waiting_for(self.distributor.as_ref(), edge),
            address: self
                .distributor
                .as_ref()
                .map(Distributor::address)
                .unwrap_or_default(),
        }))
    }

    async fn drain(
        &self,
        _req: Request<pb::DrainRequest>,
    ) -> Result<Response<pb::DrainResponse>, Status> {
        let Some(edge) = self.readiness.edge() else {
            return Err(Status::failed_precondition("this process has no edge"));
        };
        // Not ready first, so load balancers and health checkers move away
        // before the edge starts refusing INVITEs.
        self.readiness.set(false).await;
        crate::notify::send("STATUS=draining");
        let active_calls = edge.drain();
        tracing::info!(
            active_calls,
            "draining: new calls refused, existing calls carry on"
        );
        Ok(Response::new(pb::DrainResponse { active_calls }))
    }

    async fn edge_snapshot(
        &self,
        _req: Request<pb::EdgeSnapshotRequest>,
    ) -> Result<Response<pb::EdgeSnapshotResponse>, Status> {
        let Some(edge) = self.readiness.edge() else {
            return Err(Status::failed_precondition("this process has no edge"));
        };
        let snap = edge
            .snapshot()
            .await
            .ok_or_else(|| Status::unavailable("the edge's loop has stopped"))?;
        let snapshot = serde_json::to_vec(&snap)
            .map_err(|e| Status::internal(format!("snapshot does not serialise: {e}")))?;
        Ok(Response::new(pb::EdgeSnapshotResponse {
            snapshot,
            calls: snap.core.calls.len() as u32,
            media_streams: snap.media.len() as u32,
        }))
    }

    async fn reload(
        &self,
        _req: Request<pb::ReloadRequest>,
    ) -> Result<Response<pb::ReloadResponse>, Status> {
        let Some(reloader) = &self.reloader else {
            metrics::counter!("acd_ivr_reload_refused_total", "reason" => "no_flows").increment(1);
            return Err(Status::failed_precondition(
                "this process has neither an IVR runner nor an edge: reload the processes with the ivr or edge role",
            ));
        };
        match reloader.reload("AdminService.Reload").await {
            Ok(report) => Ok(Response::new(pb::ReloadResponse {
                flows: report.flows,
                changed: report.changed,
            })),
            // Every problem, one per line: file:line: key: message.
            Err(errors) => Err(Status::invalid_argument(errors.to_string())),
        }
    }

    async fn list_callbacks(
        &self,
        _req: Request<pb::ListCallbacksRequest>,
    ) -> Result<Response<pb::ListCallbacksResponse>, Status> {
        let Some(d) = &self.distributor else {
            return Err(Status::failed_precondition(
                "this process has no distributor",
            ));
        };
        Ok(Response::new(pb::ListCallbacksResponse {
            callbacks: d.callbacks(),
        }))
    }

    async fn switchover(
        &self,
        _req: Request<pb::SwitchoverRequest>,
    ) -> Result<Response<pb::SwitchoverResponse>, Status> {
        let Some(leadership) = &self.leadership else {
            metrics::counter!("acd_switchover_refused_total", "reason" => "no_election")
                .increment(1);
            return Err(Status::failed_precondition(
                "switchover needs leadership from etcd (acd distributor --etcd URL)",
            ));
        };
        match leadership.switchover().await {
            Ok(s) => Ok(Response::new(pb::SwitchoverResponse {
                term: s.term,
                pause_us: s.pause.as_micros() as u64,
                new_primary: s.new_primary,
            })),
            Err(e) => {
                metrics::counter!("acd_switchover_refused_total", "reason" => "failed")
                    .increment(1);
                Err(Status::failed_precondition(format!("switchover: {e}")))
            }
        }
    }
}

/// A role name of Status as its enum.
fn role_kind(role: &str) -> pb::ProcessRole {
    match role {
        "edge" => pb::ProcessRole::Edge,
        "ivr" => pb::ProcessRole::Ivr,
        "distributor" => pb::ProcessRole::Distributor,
        _ => pb::ProcessRole::Unspecified,
    }
}
