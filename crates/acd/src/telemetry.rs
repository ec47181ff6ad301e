//! The Prometheus recorder of every role: real histograms (buckets, not
//! summaries) for the latency metrics, and the HELP text of every metric the
//! process may emit, registered once at start-up.

use anyhow::{Context, Result};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use acd_distributor::telemetry as dist;

type Help = (&'static str, &'static str);

/// Metrics of the binary itself (start-up, shutdown, hand-over, demo API).
const COUNTERS: &[Help] = &[
    (
        "acd_demo_orders_refused_total",
        "Demo orders API connections refused, by reason.",
    ),
    (
        "acd_demo_orders_responses_total",
        "Demo orders API responses, by HTTP status code.",
    ),
    (
        "acd_drain_deadline_calls_ended_total",
        "Calls still up at the drain deadline and ended.",
    ),
    (
        "acd_handover_failures_total",
        "Failed live hand-overs of the edge, by reason.",
    ),
    (
        "acd_ivr_reload_refused_total",
        "IVR flow reloads refused, by reason.",
    ),
    (
        "acd_switchover_refused_total",
        "Switchovers refused, by reason.",
    ),
    (
        "acd_watchdog_withheld_total",
        "systemd watchdog pings withheld, by reason.",
    ),
];

const GAUGES: &[Help] = &[(
    "acd_build_info",
    "Always 1; the version and role of this process as labels.",
)];

/// Installs the recorder for this process and describes every metric.
pub fn install() -> Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(dist::DECISION_SECONDS.to_string()),
            dist::DECISION_BUCKETS,
        )
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full(dist::SWITCHOVER_PAUSE_SECONDS.to_string()),
                dist::SWITCHOVER_BUCKETS,
            )
        })
        .context("histogram buckets")?
        .install_recorder()
        .context("installing the Prometheus recorder")?;
    describe();
    Ok(handle)
}

fn describe() {
    for (name, help) in COUNTERS {
        metrics::describe_counter!(*name, *help);
    }
    for (name, help) in GAUGES {
        metrics::describe_gauge!(*name, *help);
    }
    dist::describe();
    acd_edge::telemetry::describe();
    acd_ivr_runner::describe_metrics();
    acd_records::describe_metrics();
}
