//! The systemd watchdog (`WatchdogSec=` in the unit): `WATCHDOG=1` every
//! half timeout, but only while the process really works, so that systemd
//! restarts a wedged process instead of a ping task keeping it "alive".
//!
//! What "works" means per role:
//! - edge: its driver loop turns (a counter it bumps; idle, it still turns
//!   every [`acd_edge::LOOP_MAX_IDLE`]);
//! - distributor: its state lock can be taken within [`LOCK_PROBE`], and on
//!   a primary no core timer is overdue by more than [`TIMER_LATE`] (the
//!   timer loop would have fired it);
//! - every role: this task itself runs, so the async runtime is not stuck.

use std::time::{Duration, Instant};

use acd_distributor::{Distributor, Role};
use acd_edge::EdgeHandle;
use tokio::task::JoinHandle;

use crate::notify::{self, Progress};

/// An edge loop that has not turned for this long is stuck.
const LOOP_STALE: Duration = Duration::from_secs(3);
/// Longest wait for the distributor's state lock.
const LOCK_PROBE: Duration = Duration::from_secs(2);
/// A core timer overdue by more than this means the timer loop is stuck.
const TIMER_LATE: Duration = Duration::from_secs(2);

/// Starts the watchdog task if systemd asked for one (`WATCHDOG_USEC`).
pub fn spawn(edge: Option<EdgeHandle>, distributor: Option<Distributor>) {
    let usec = std::env::var("WATCHDOG_USEC").ok();
    let pid = std::env::var("WATCHDOG_PID").ok();
    let timeout =
        match notify::watchdog_timeout(usec.as_deref(), pid.as_deref(), std::process::id()) {
            Ok(Some(t)) => t,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!("systemd watchdog not started: {e}");
                return;
            }
        };
    let interval = notify::ping_interval(timeout);
    tracing::info!(
        ?timeout,
        ?interval,
        "systemd watchdog: pinging while healthy"
    );
    tokio::spawn(run(interval, edge, distributor));
}

async fn run(interval: Duration, edge: Option<EdgeHandle>, distributor: Option<Distributor>) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut edge_progress = Progress::new(LOOP_STALE, Instant::now());
    let mut probe: Option<JoinHandle<Result<(), String>>> = None;
    let mut withheld = false;
    loop {
        ticker.tick().await;
        let mut verdict = Ok(());
        if let Some(edge) = &edge {
            verdict = edge_progress
                .observe(edge.loop_turns(), Instant::now())
                .map_err(|age| format!("edge loop stalled for {:.1}s", age.as_secs_f64()));
        }
        if let (Ok(()), Some(d)) = (&verdict, &distributor) {
            verdict = probe_distributor(d, &mut probe).await;
        }
        match verdict {
            Ok(()) => {
                if withheld {
                    tracing::info!("systemd watchdog: healthy again");
                    withheld = false;
                }
                notify::send("WATCHDOG=1");
            }
            Err(why) => {
                let reason = if why.starts_with("edge") {
                    "edge_loop"
                } else {
                    "distributor"
                };
                metrics::counter!("acd_watchdog_withheld_total", "reason" => reason).increment(1);
                if !withheld {
                    tracing::error!("systemd watchdog ping withheld: {why}");
                    notify::send(&format!("STATUS=unhealthy: {why}"));
                }
                withheld = true;
            }
        }
    }
}

/// Takes the distributor's lock on a blocking thread, at most one probe at
/// a time: a probe still stuck from the last turn is a failure by itself
/// (and no second thread piles up behind the same lock).
async fn probe_distributor(
    d: &Distributor,
    probe: &mut Option<JoinHandle<Result<(), String>>>,
) -> Result<(), String> {
    let handle = match probe.take() {
        Some(h) if !h.is_finished() => {
            *probe = Some(h);
            return Err("distributor lock still held since the last probe".into());
        }
        _ => {
            let d = d.clone();
            tokio::task::spawn_blocking(move || timers_on_time(&d))
        }
    };
    let mut handle = handle;
    match tokio::time::timeout(LOCK_PROBE, &mut handle).await {
        Ok(Ok(result)) => result,
        Ok(Err(e)) => Err(format!("distributor probe failed: {e}")),
        Err(_) => {
            *probe = Some(handle);
            Err(format!("distributor lock not free within {LOCK_PROBE:?}"))
        }
    }
}

fn timers_on_time(d: &Distributor) -> Result<(), String> {
    let inner = d.lock();
    if inner.role != Role::Primary {
        return Ok(());
    }
    let Some(deadline) = inner.core.next_deadline() else {
        return Ok(());
    };
    let late = acd_distributor::now_ms().0.saturating_sub(deadline.0);
    if Duration::from_millis(late) > TIMER_LATE {
        return Err(format!("distributor timer overdue by {late} ms"));
    }
    Ok(())
}
