//! Prometheus metrics of the distributor: the HELP text of every metric this
//! crate emits ([`describe`]), the routing decision timer, and the queue,
//! agent, role and replication figures sampled from the core once a second
//! ([`sample_loop`]) on the primary and the standby alike.
//!
//! The per-queue counters are the core's own (`QueueCounters`, replicated with
//! every event and carried in snapshots), exported with `absolute`: the same
//! definitions as `acdctl queue list` and the wallboard, identical on both
//! distributors, and continuous across a fail-over.

use std::time::{Duration, Instant};

use acd_routing::{AgentState, EventRecord};

use crate::{now_ms, Distributor, Inner, Role};

/// Time of `Core::handle` for one command, as the shell sees it.
pub const DECISION_SECONDS: &str = "acd_routing_decision_duration_seconds";
/// 10 µs to 100 ms: a decision is tens of µs; the top buckets catch stalls.
pub const DECISION_BUCKETS: &[f64] = &[
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.05, 0.1,
];
/// How long a switchover held commands (see `leadership`).
pub const SWITCHOVER_PAUSE_SECONDS: &str = "acd_switchover_pause_seconds";
pub const SWITCHOVER_BUCKETS: &[f64] = &[0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];
/// Every agent state, as the `state` label of `acd_agents` (0s included).
pub const AGENT_STATES: [&str; 6] = [
    "logged_out",
    "not_ready",
    "ready",
    "reserved",
    "on_call",
    "wrap_up",
];
const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// Label value of an agent state in [`AGENT_STATES`].
pub fn agent_state_label(state: &AgentState) -> &'static str {
    match state {
        AgentState::LoggedOut => AGENT_STATES[0],
        AgentState::NotReady => AGENT_STATES[1],
        AgentState::Ready => AGENT_STATES[2],
        AgentState::Reserved { .. } => AGENT_STATES[3],
        AgentState::OnCall { .. } => AGENT_STATES[4],
        AgentState::WrapUp { .. } => AGENT_STATES[5],
    }
}

/// The decision histogram, looked up once per distributor.
pub fn decision_histogram() -> metrics::Histogram {
    metrics::histogram!(DECISION_SECONDS)
}

/// A standby applied `rec`: how long after the leader decided it (wall
/// clocks of both hosts, so as good as their NTP).
pub fn record_applied(rec: &EventRecord) {
    let delay_ms = now_ms().0.saturating_sub(rec.at.0);
    metrics::gauge!("acd_replication_lag_seconds").set(delay_ms as f64 / 1000.0);
}

/// Refreshes the sampled figures every second for as long as the process runs.
pub async fn sample_loop(d: Distributor) {
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        sample(&d.lock());
    }
}

/// One sample; cheap enough to take under the lock once a second
/// (queues × calls, agents).
fn sample(inner: &Inner) {
    let now = now_ms();
    for q in inner.core.queues() {
        let queue = q.id.to_string();
        let counter = |name: &'static str, v: u64| {
            metrics::counter!(name, "queue" => queue.clone()).absolute(v);
        };
        counter("acd_queue_calls_offered_total", q.offered);
        counter("acd_queue_calls_answered_total", q.answered);
        counter("acd_queue_calls_abandoned_total", q.abandoned);
        counter("acd_queue_calls_timed_out_total", q.timed_out);
        counter("acd_queue_calls_overflowed_total", q.overflowed);
        counter(
            "acd_queue_calls_answered_within_target_total",
            q.answered_in_sl,
        );
        let longest = q
            .longest_wait_since
            .map_or(0.0, |t| now.0.saturating_sub(t.0) as f64 / 1000.0);
        metrics::gauge!("acd_queue_waiting_calls", "queue" => queue.clone()).set(q.waiting as f64);
        metrics::gauge!("acd_queue_longest_wait_seconds", "queue" => queue.clone()).set(longest);
        metrics::gauge!("acd_queue_service_level_ratio", "queue" => queue)
            .set(service_level(q.answered_in_sl, q.offered));
    }
    let mut by_state = [0u64; AGENT_STATES.len()];
    for a in inner.core.agents() {
        let label = agent_state_label(&a.state);
        if let Some(i) = AGENT_STATES.iter().position(|s| *s == label) {
            by_state[i] += 1;
        }
    }
    for (state, n) in AGENT_STATES.iter().zip(by_state) {
        metrics::gauge!("acd_agents", "state" => *state).set(n as f64);
    }
    let primary = inner.role == Role::Primary;
    metrics::gauge!("acd_distributor_role", "role" => "primary").set(f64::from(u8::from(primary)));
    metrics::gauge!("acd_distributor_role", "role" => "standby").set(f64::from(u8::from(!primary)));
    metrics::gauge!("acd_distributor_term").set(inner.core.term().0 as f64);
    if primary {
        sample_leader_lag(inner, Instant::now());
    }
}

/// The leader's view of replication: records decided and not yet
/// acknowledged by the slowest attached standby, and how long the oldest
/// of them has waited. (A standby sets the seconds itself, per record.)
fn sample_leader_lag(inner: &Inner, now: Instant) {
    let last = inner.log.last_seq();
    let records = inner
        .log
        .followers()
        .map(|(_, acked)| last.saturating_sub(acked))
        .max()
        .unwrap_or(0);
    let waited = inner.pending.front().map_or(0.0, |(_, at)| {
        now.saturating_duration_since(*at).as_secs_f64()
    });
    metrics::gauge!("acd_replication_lag_records").set(records as f64);
    metrics::gauge!("acd_replication_lag_seconds").set(waited);
}

/// Share of the calls that entered the queue answered within its target,
/// as `acdctl queue list` shows it (1 while none entered).
pub fn service_level(within_target: u64, offered: u64) -> f64 {
    if offered == 0 {
        return 1.0;
    }
    within_target as f64 / offered as f64
}

type Help = (&'static str, &'static str);

const COUNTERS: &[Help] = &[
    ("acd_reports_total", "Reports served through the Report RPC, by kind."),
    ("acd_report_errors_total", "Report RPCs refused or failed, by reason."),
    ("acd_wallboard_errors_total", "Wallboard problems (seeding, time zone, lagging events, slow or excess clients), by reason."),
    (
        "acd_queue_calls_offered_total",
        "Calls that entered the queue, by queue (core counters, carried across fail-over).",
    ),
    (
        "acd_queue_calls_answered_total",
        "Calls of the queue connected to an agent.",
    ),
    (
        "acd_queue_calls_abandoned_total",
        "Calls of the queue whose caller hung up before being connected.",
    ),
    (
        "acd_queue_calls_timed_out_total",
        "Calls removed from the queue after its maximum wait.",
    ),
    (
        "acd_queue_calls_overflowed_total",
        "Calls that left the queue by an overflow action.",
    ),
    (
        "acd_queue_calls_answered_within_target_total",
        "Answered calls connected within the queue's service-level time.",
    ),
    (
        "acd_agent_api_errors_total",
        "Agent API commands refused, by command.",
    ),
    (
        "acd_agent_watch_resumed_total",
        "Agent watch streams resumed from a sequence number.",
    ),
    (
        "acd_agent_watch_resyncs_total",
        "Agent watch streams that had to start over (resume point gone).",
    ),
    (
        "acd_agent_watch_lagged_total",
        "Agent watch streams cut off for falling behind the events.",
    ),
    ("acd_agent_watches_total", "Agent watch streams opened."),
    (
        "acd_callbacks_requested_total",
        "Callbacks booked through the API.",
    ),
    (
        "acd_config_changes_total",
        "Routing configurations applied at run time.",
    ),
    (
        "acd_distributor_config_errors_total",
        "Routing configuration parts in error, left at their defaults.",
    ),
    (
        "acd_distributor_demotions_total",
        "Times this distributor stopped acting as primary.",
    ),
    (
        "acd_distributor_effects_released_total",
        "Event effects released by the primary (durable on every standby).",
    ),
    (
        "acd_distributor_events_total",
        "Events appended to this distributor's log.",
    ),
    (
        "acd_distributor_fenced_releases_total",
        "Releases withheld because the primary's lease may have run out.",
    ),
    (
        "acd_distributor_promotions_total",
        "Times this distributor became primary.",
    ),
    (
        "acd_distributor_refusals_total",
        "Commands refused by the shell, by reason (standby, lease, switchover).",
    ),
    (
        "acd_edge_api_errors_total",
        "Edge stream messages the distributor refused, by reason.",
    ),
    (
        "acd_edge_attach_refused_total",
        "Edge stream attachments refused, by reason.",
    ),
    (
        "acd_edge_binding_refused_total",
        "Phone binding reports from edges refused.",
    ),
    (
        "acd_edge_callback_results_refused_total",
        "Callback dial results from edges refused.",
    ),
    (
        "acd_edge_duplicate_messages_total",
        "Edge messages received again and applied once.",
    ),
    (
        "acd_edge_messages_total",
        "Edge messages received by the distributor, by kind.",
    ),
    (
        "acd_edge_offers_resent_total",
        "Offers sent again to an edge that re-attached.",
    ),
    (
        "acd_edge_stale_reports_total",
        "Edge reports about calls or offers no longer current.",
    ),
    (
        "acd_edge_stream_lagged_total",
        "Edge streams cut off for falling behind the events.",
    ),
    (
        "acd_edge_streams_closed_total",
        "Edge streams closed by the distributor, by reason.",
    ),
    (
        "acd_edge_unknown_calls_total",
        "Calls announced by an edge that this distributor did not hold.",
    ),
    (
        "acd_explain_records_missed_total",
        "Routing explanations not written (the log fell behind).",
    ),
    (
        "acd_grpc_refused_total",
        "gRPC requests refused by access control, by service and reason.",
    ),
    (
        "acd_journal_dropped_total",
        "Events not journalled (the writer fell behind).",
    ),
    ("acd_journal_errors_total", "Journal failures, by reason."),
    ("acd_journal_events_total", "Events written to the journal."),
    (
        "acd_leadership_errors_total",
        "Leader election failures in etcd, by reason.",
    ),
    (
        "acd_leadership_revokes_total",
        "Leases revoked on stepping down.",
    ),
    (
        "acd_queue_announcements_dropped_total",
        "Queue position announcements dropped, by reason.",
    ),
    (
        "acd_queue_announcements_total",
        "Queue position announcements sent to edges.",
    ),
    (
        "acd_replication_follows_total",
        "Follow streams opened by standbys.",
    ),
    (
        "acd_replication_backfilled_records_total",
        "Records sent to standbys before a snapshot, for their call records.",
    ),
    (
        "acd_replication_lagged_total",
        "Follow streams cut off for falling behind.",
    ),
    (
        "acd_replication_reconnects_total",
        "Times a standby connected to its primary again.",
    ),
    (
        "acd_replication_snapshots_total",
        "Snapshots sent to standbys, by reason.",
    ),
    (
        "acd_replication_sync_timeouts_total",
        "Standbys dropped from the commit for not acknowledging in time.",
    ),
    (
        "acd_supervisor_api_errors_total",
        "Supervisor API commands refused, by command.",
    ),
    (
        "acd_supervisor_watch_lagged_total",
        "Supervisor watch streams cut off for falling behind.",
    ),
    (
        "acd_supervisor_watches_total",
        "Supervisor watch streams opened, by kind.",
    ),
];

const GAUGES: &[Help] = &[
    ("acd_wallboard_streams", "Wallboard event streams (server-sent events) open."),
    ("acd_queue_waiting_calls", "Calls of the queue not yet connected (including those being offered)."),
    ("acd_queue_longest_wait_seconds", "How long the queue's longest-waiting call has waited."),
    ("acd_queue_service_level_ratio", "Calls answered within the queue's target over calls that entered it (1 with none)."),
    ("acd_agents", "Configured agents by state (0 included)."),
    ("acd_distributor_role", "1 for this distributor's current role (primary or standby), 0 for the other."),
    ("acd_distributor_term", "Leadership term this distributor's core holds."),
    ("acd_distributor_last_release_timestamp_seconds", "When this primary last released effects (Unix time)."),
    ("acd_distributor_promoted_timestamp_seconds", "When this distributor last became primary (Unix time)."),
    ("acd_edge_streams_attached", "Edge streams attached to this distributor."),
    ("acd_replication_followers", "Standbys attached to the commit."),
    ("acd_replication_lag_records", "On the primary: records decided and not yet acknowledged by the slowest attached standby."),
    ("acd_replication_lag_seconds", "On the primary: age of the oldest record not yet acknowledged; on a standby: delay from the leader's decision to applying the last record."),
];

const HISTOGRAMS: &[Help] = &[
    (
        DECISION_SECONDS,
        "Time the routing core took to handle one command (shell-measured).",
    ),
    (
        SWITCHOVER_PAUSE_SECONDS,
        "How long a switchover held commands.",
    ),
];

/// Registers the HELP text of every metric of this crate.
pub fn describe() {
    for (name, help) in COUNTERS {
        metrics::describe_counter!(*name, *help);
    }
    for (name, help) in GAUGES {
        metrics::describe_gauge!(*name, *help);
    }
    for (name, help) in HISTOGRAMS {
        metrics::describe_histogram!(*name, *help);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_level_is_the_share_answered_within_target() {
        assert_eq!(service_level(0, 0), 1.0);
        assert_eq!(service_level(3, 4), 0.75);
    }

    #[test]
    fn every_agent_state_has_its_own_label() {
        let states = [
            AgentState::LoggedOut,
            AgentState::NotReady,
            AgentState::Ready,
            AgentState::Reserved { call: "c".into() },
            AgentState::OnCall { call: "c".into() },
            AgentState::WrapUp {
                until: acd_routing::Timestamp(0),
            },
        ];
        let labels: Vec<_> = states.iter().map(agent_state_label).collect();
        assert_eq!(labels, AGENT_STATES);
    }

    #[test]
    fn help_names_follow_the_conventions() {
        for (name, _) in COUNTERS.iter().chain(GAUGES).chain(HISTOGRAMS) {
            assert!(name.starts_with("acd_"), "{name}");
            assert!(!name.ends_with("_ms"), "{name}");
        }
        assert!(COUNTERS.iter().all(|(n, _)| n.ends_with("_total")));
        assert!(GAUGES.iter().all(|(n, _)| !n.ends_with("_total")));
    }
}
