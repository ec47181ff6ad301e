//! The `Report` RPC: call figures and staffing forecasts from the records
//! database (`[records]`), computed on a blocking thread so the runtime
//! never waits on the database.

use std::collections::BTreeMap;

use acd_config::{Loaded, StaffingConfig};
use acd_proto::v1 as pb;
use acd_records::query::{self, Query, QueryError, StaffingOptions};
use acd_records::report::{Grouping, ServiceTarget};
use acd_records::{Database, StoreError, TimeRange};
use acd_routing::RoutingConfig;
use tonic::Status;

/// What reports need from the configuration.
#[derive(Clone, Debug)]
pub struct ReportSettings {
    /// `None`: `[records]` is absent (no records kept).
    pub database: Option<Database>,
    pub short_abandon_secs: u32,
    pub fcr_window_hours: u32,
    pub staffing: StaffingConfig,
}

impl ReportSettings {
    /// From the loaded config; a `database` that does not parse is an error.
    pub fn from_config(loaded: &Loaded) -> Result<Self, String> {
        let cfg = &loaded.config;
        let records = cfg.records.as_ref();
        let database = records
            .map(|r| Database::parse(&r.database, &loaded.base_dir()))
            .transpose()
            .map_err(|e| format!("[records] database: {e}"))?;
        Ok(ReportSettings {
            database,
            short_abandon_secs: records.map_or(5, |r| r.short_abandon_secs),
            fcr_window_hours: records.map_or(24, |r| r.fcr_window_hours),
            staffing: cfg.staffing.clone(),
        })
    }

    /// No records kept.
    pub fn none() -> Self {
        ReportSettings {
            database: None,
            short_abandon_secs: 5,
            fcr_window_hours: 24,
            staffing: StaffingConfig::default(),
        }
    }
}

/// Each queue's service-level target from the routing configuration.
pub fn targets(config: &RoutingConfig) -> BTreeMap<String, ServiceTarget> {
    config
        .queues
        .iter()
        .map(|q| {
            let t = ServiceTarget {
                percent: q.service_level.percent,
                within_ms: q.service_level.within_ms,
            };
            (q.id.0.clone(), t)
        })
        .collect()
}

/// `0` means "the configured value".
fn or(value: u32, configured: u32) -> u32 {
    if value == 0 {
        configured
    } else {
        value
    }
}

/// The request as a [`Query`], with the configured settings filled in.
pub fn query_from(
    r: &pb::ReportRequest,
    s: &ReportSettings,
    targets: BTreeMap<String, ServiceTarget>,
    now: i64,
) -> Result<Query, Status> {
    let ms = |v: u64, what: &str| {
        i64::try_from(v).map_err(|_| Status::invalid_argument(format!("{what} is out of range")))
    };
    let to = if r.to_ms == 0 {
        now
    } else {
        ms(r.to_ms, "to_ms")?
    };
    let by = match pb::ReportGrouping::try_from(r.by) {
        Ok(pb::ReportGrouping::Agent) => Grouping::Agent,
        Ok(pb::ReportGrouping::Interval) => Grouping::Interval,
        Ok(pb::ReportGrouping::Queue | pb::ReportGrouping::Unspecified) => Grouping::Queue,
        Err(_) => {
            return Err(Status::invalid_argument(format!(
                "unknown grouping {}",
                r.by
            )))
        }
    };
    let st = &s.staffing;
    Ok(Query {
        range: TimeRange {
            from: ms(r.from_ms, "from_ms")?,
            to,
        },
        now,
        by,
        interval_mins: or(r.interval_mins, st.interval_mins),
        queues: r.queues.clone(),
        time_zone: r.time_zone.clone(),
        short_abandon_secs: or(r.short_abandon_secs, s.short_abandon_secs),
        fcr_window_hours: or(r.fcr_window_hours, s.fcr_window_hours),
        targets,
        staffing: r.staffing.then(|| StaffingOptions {
            shrinkage_percent: or(r.shrinkage_percent, st.shrinkage_percent),
            shift_hours: or(r.shift_hours, st.shift_hours),
            patience_secs: (st.patience_secs > 0).then(|| f64::from(st.patience_secs)),
        }),
    })
}

/// Runs the report on a blocking thread; errors as gRPC statuses.
pub async fn report(
    r: pb::ReportRequest,
    s: &ReportSettings,
    targets: BTreeMap<String, ServiceTarget>,
    now: i64,
) -> Result<pb::ReportResponse, Status> {
    let refuse = |reason: &'static str, status: Status| {
        metrics::counter!("acd_report_errors_total", "reason" => reason).increment(1);
        tracing::info!(reason, error = %status.message(), "report refused");
        status
    };
    let Some(db) = s.database.clone() else {
        return Err(refuse(
            "no_records",
            Status::failed_precondition("no call records are kept: [records] is not configured"),
        ));
    };
    let q = query_from(&r, s, targets, now).map_err(|e| refuse("invalid", e))?;
    let started = std::time::Instant::now();
    let json = tokio::task::spawn_blocking(move || query::run(&db, &q))
        .await
        .map_err(|e| refuse("internal", Status::internal(format!("report task: {e}"))))?
        .map_err(|e| match e {
            QueryError::Invalid(e) => refuse("invalid", Status::invalid_argument(e.to_string())),
            QueryError::Store(e @ StoreError::Unavailable(_)) => {
                refuse("unavailable", Status::unavailable(e.to_string()))
            }
            QueryError::Store(e) => refuse("database", Status::internal(e.to_string())),
        })?;
    metrics::counter!("acd_reports_total", "kind" => if r.staffing { "staffing" } else { "calls" })
        .increment(1);
    tracing::info!(
        staffing = r.staffing,
        ms = started.elapsed().as_millis() as u64,
        "report made"
    );
    Ok(pb::ReportResponse { json })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ReportSettings {
        ReportSettings {
            database: Some(Database::Sqlite("/nonexistent/dir/r.db".into())),
            ..ReportSettings::none()
        }
    }

    #[test]
    fn zero_means_configured() {
        let r = pb::ReportRequest {
            from_ms: 1_000,
            staffing: true,
            short_abandon_secs: 9,
            ..Default::default()
        };
        let q = query_from(&r, &settings(), BTreeMap::new(), 5_000).unwrap();
        assert_eq!(
            q.range,
            TimeRange {
                from: 1_000,
                to: 5_000
            }
        );
        assert_eq!(q.short_abandon_secs, 9);
        assert_eq!(q.fcr_window_hours, 24);
        assert_eq!(q.interval_mins, 30);
        let s = q.staffing.unwrap();
        assert_eq!(
            (s.shrinkage_percent, s.shift_hours, s.patience_secs),
            (30, 8, None)
        );
    }

    #[tokio::test]
    async fn errors_map_to_statuses() {
        let bad = pb::ReportRequest {
            from_ms: 10,
            to_ms: 5,
            ..Default::default()
        };
        let e = report(bad.clone(), &ReportSettings::none(), BTreeMap::new(), 0)
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::FailedPrecondition);
        let e = report(bad, &settings(), BTreeMap::new(), 0)
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(e.message().contains("not before"), "{}", e.message());
        let ok_range = pb::ReportRequest {
            from_ms: 0,
            to_ms: 5,
            ..Default::default()
        };
        let e = report(ok_range, &settings(), BTreeMap::new(), 0)
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unavailable);
    }
}
