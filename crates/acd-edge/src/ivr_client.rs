//! Client side of the stateless IVR: each step goes to the next runner in
//! turn (so consecutive steps of one call may be served by different
//! runners), and to the others if that one fails.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use acd_proto::client::{site_authed, site_endpoint, AuthChannel};
use acd_proto::v1 as pb;
use pb::ivr_service_client::IvrServiceClient;

/// A step that takes longer is treated as a failed runner. A step may wait
/// on HTTP lookups (at most 8 s in all, bounded by the runner); a runner that
/// died refuses the connection at once and is skipped without this wait.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct IvrClients {
    runners: Arc<Vec<(String, IvrServiceClient<AuthChannel>)>>,
    next: Arc<AtomicUsize>,
}

impl IvrClients {
    /// Lazily connecting clients; a runner that is down is skipped per step.
    pub fn new(urls: &[String]) -> Result<IvrClients, tonic::transport::Error> {
        let runners = urls
            .iter()
            .map(|u| {
                let ch = site_endpoint(u)?
                    .connect_timeout(Duration::from_secs(1))
                    .timeout(STEP_TIMEOUT)
                    .connect_lazy();
                Ok((u.clone(), IvrServiceClient::new(site_authed(ch))))
            })
            .collect::<Result<Vec<_>, tonic::transport::Error>>()?;
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
            let (url, client) = &self.runners[(first + i) % n];
            match client.clone().step(req.clone()).await {
                Ok(resp) => return Ok(resp.into_inner()),
                Err(status) => {
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
