//! How a process with an edge ends: drained (SIGTERM or `acdctl drain`:
//! not ready, new calls refused, existing calls carry on, exit 0 when the
//! last one ends or at `[sip] drain_deadline_secs`, when the calls left get
//! a BYE), or handed over to a new process (exit 0 at once). A second
//! SIGTERM or a SIGINT during the drain exits at once.

use std::future::Future;
use std::time::Duration;

use acd_edge::EdgeHandle;
use anyhow::Result;
use tokio::signal::unix::Signal;
use tokio::task::JoinHandle;

use crate::health::Readiness;

/// After the deadline's BYEs, how long the calls get to end.
const END_ALL_GRACE: Duration = Duration::from_secs(5);
/// After the last call ended: time for the last BYE's 200 (and our own
/// BYE's retransmission, should it be lost) before the sockets close.
const LAST_CALL_LINGER: Duration = Duration::from_millis(300);
/// How often the call count is looked at while draining.
const POLL: Duration = Duration::from_millis(20);

/// Resolves with the hand-over server's end: `Ok` once a new process took
/// over (the process exits 0), an error if the server could not start.
/// Pending forever without a hand-over socket.
pub async fn handed_over(server: &mut Option<JoinHandle<Result<()>>>) -> Result<()> {
    match server {
        Some(task) => match task.await {
            Ok(r) => r,
            Err(e) => Err(anyhow::anyhow!("the hand-over server panicked: {e}")),
        },
        None => std::future::pending().await,
    }
}

/// Resolves when the edge starts draining (`acdctl drain`).
pub async fn drain_asked(edge: Option<&EdgeHandle>) {
    match edge {
        Some(e) => e.draining().await,
        None => std::future::pending().await,
    }
}

async fn idle(edge: &EdgeHandle) {
    while edge.active_calls() > 0 {
        tokio::time::sleep(POLL).await;
    }
}

/// Drains the edge until its last call ended, the deadline passed (BYE to
/// the calls left), a second signal came or a new process took over
/// (returns true: exit at once).
pub async fn drain(
    edge: &EdgeHandle,
    readiness: &Readiness,
    deadline: Duration,
    (sigint, sigterm): (&mut Signal, &mut Signal),
    handed: &mut (impl Future<Output = Result<()>> + Unpin),
) -> bool {
    // Not ready first, so balancers move away before INVITEs are refused.
    readiness.set(false).await;
    crate::notify::send("STATUS=draining");
    let calls = edge.drain();
    tracing::info!(
        active_calls = calls,
        deadline_secs = deadline.as_secs(),
        "draining: new calls refused, existing calls carry on"
    );
    tokio::select! {
        _ = idle(edge) => {
            tracing::info!("drained: the last call ended");
            tokio::time::sleep(LAST_CALL_LINGER).await;
        }
        _ = tokio::time::sleep(deadline) => {
            let left = edge.active_calls();
            metrics::counter!("acd_drain_deadline_calls_ended_total").increment(u64::from(left));
            tracing::warn!(calls = left, "drain deadline passed: ending the calls left");
            edge.end_all();
            if tokio::time::timeout(END_ALL_GRACE, idle(edge)).await.is_err() {
                tracing::warn!(calls = edge.active_calls(), "calls still up after their BYE");
            }
            tokio::time::sleep(LAST_CALL_LINGER).await;
        }
        _ = sigint.recv() => tracing::warn!("SIGINT while draining: exiting at once"),
        _ = sigterm.recv() => tracing::warn!("second SIGTERM while draining: exiting at once"),
        r = handed => {
            if let Err(e) = r {
                tracing::warn!(error = %e, "hand-over server ended");
            }
            return true;
        }
    }
    false
}
