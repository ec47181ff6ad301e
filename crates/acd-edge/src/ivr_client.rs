//! Client side of the stateless IVR: each step goes to the next runner in
//! turn (so consecutive steps of one call may be served by different
//! runners), and to the others if that one fails.
//!
//! A runner in the same process (`acd run`) is called through the same
//! `IvrService` trait without the loopback HTTP/2 hop: no protobuf encoding,
//! no TCP round trip, no connection task wake-ups per step. The roles stay
//! separable; only the transport between them is shorter.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use acd_proto::client::{site_authed, site_endpoint, AuthChannel};
use acd_proto::v1 as pb;
use pb::ivr_service_client::IvrServiceClient;
use pb::ivr_service_server::IvrService;

/// A step that takes longer is treated as a failed runner. A step may wait
/// on HTTP lookups (at most 8 s in all, bounded by the runner); a runner that
/// died refuses the connection at once and is skipped without this wait.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// The name an in-process runner has in logs (where a remote one has its URL).
const LOCAL_NAME: &str = "in-process";

/// An IVR runner living in this process, served without gRPC.
#[derive(Clone)]
pub struct LocalIvr(Arc<dyn IvrService>);

impl LocalIvr {
    pub fn new(runner: impl IvrService) -> LocalIvr {
        LocalIvr(Arc::new(runner))
    }
}

impl fmt::Debug for LocalIvr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LocalIvr")
    }
}

enum Runner {
    Remote(String, Box<IvrServiceClient<AuthChannel>>),
    Local(LocalIvr),
}

impl Runner {
    fn name(&self) -> &str {
        match self {
            Runner::Remote(url, _) => url,
            Runner::Local(_) => LOCAL_NAME,
        }
    }

    async fn step(&self, req: pb::StepRequest) -> Result<pb::StepResponse, tonic::Status> {
        match self {
            Runner::Remote(_, client) => Ok(client.as_ref().clone().step(req).await?.into_inner()),
            Runner::Local(local) => {
                // The channel's timeout bounds a remote step; this bounds a local one.
                match tokio::time::timeout(STEP_TIMEOUT, local.0.step(tonic::Request::new(req)))
                    .await
                {
                    Ok(resp) => Ok(resp?.into_inner()),
                    Err(_) => Err(tonic::Status::deadline_exceeded("IVR step timed out")),
                }
            }
        }
    }
}

#[derive(Clone)]
pub struct IvrClients {
    runners: Arc<Vec<Runner>>,
    next: Arc<AtomicUsize>,
}

impl IvrClients {
    /// Lazily connecting clients; a runner that is down is skipped per step.
    /// `local`, when given, serves steps ahead of `urls` in the rotation.
    pub fn new(
        urls: &[String],
        local: Option<LocalIvr>,
    ) -> Result<IvrClients, tonic::transport::Error> {
        let mut runners: Vec<Runner> = local.into_iter().map(Runner::Local).collect();
        for u in urls {
            let ch = site_endpoint(u)?
                .connect_timeout(Duration::from_secs(1))
                .timeout(STEP_TIMEOUT)
                .connect_lazy();
            runners.push(Runner::Remote(
                u.clone(),
                Box::new(IvrServiceClient::new(site_authed(ch))),
            ));
        }
        Ok(IvrClients {
            runners: Arc::new(runners),
            next: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// Runs one step on some runner; `Err` only when every runner failed.
    pub async fn step(&self, req: pb::StepRequest) -> Result<pb::StepResponse, String> {
        let n = self.runners.len();
        if n == 0 {
            return Err("no IVR runner configured".into());
        }
        let first = self.next.fetch_add(1, Ordering::Relaxed);
        let mut last_error = String::new();
        for i in 0..n {
            let runner = &self.runners[(first + i) % n];
            match runner.step(req.clone()).await {
                Ok(resp) => return Ok(resp),
                Err(status) => {
                    let url = runner.name();
                    metrics::counter!("acd_edge_ivr_errors_total").increment(1);
                    tracing::warn!(call_id = %req.call_id, runner = %url, code = ?status.code(), error = %status.message(), "IVR step failed");
                    last_error = format!("{url}: {}", status.message());
                    // The runner understood and refused: another would refuse too.
                    if !matches!(
                        status.code(),
                        tonic::Code::Unavailable
                            | tonic::Code::DeadlineExceeded
                            | tonic::Code::Unknown
                            | tonic::Code::Cancelled
                    ) {
                        break;
                    }
                }
            }
        }
        Err(last_error)
    }
}
