//! SIP traffic metrics of the edge core and the HELP text of every metric of
//! this crate. Requests and responses are counted per transaction (a
//! retransmission absorbed by the transaction layer counts once), inbound
//! where the core receives them and outbound where it hands them to the
//! transaction layer.

use std::sync::OnceLock;

use acd_sip::{Method, Peer, Request, Response, TxKey};

use crate::core::EdgeCore;

/// Which way a SIP message went, as the `direction` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    In,
    Out,
}

impl Direction {
    const fn label(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }
}

/// The 3-digit status code as a label value, without formatting per response.
pub fn status_label(status: u16) -> &'static str {
    static CODES: OnceLock<Box<[String]>> = OnceLock::new();
    let codes = CODES.get_or_init(|| (100..700u16).map(|c| c.to_string()).collect());
    match status
        .checked_sub(100)
        .and_then(|i| codes.get(usize::from(i)))
    {
        Some(code) => code,
        // Not a valid status; the parser refuses these, so never seen.
        None => "other",
    }
}

pub(crate) fn count_request(method: &Method, dir: Direction) {
    metrics::counter!("acd_sip_requests_total", "method" => method.label(), "direction" => dir.label())
        .increment(1);
}

pub(crate) fn count_response(resp: &Response, dir: Direction) {
    let method = resp.cseq().map_or("OTHER", |(_, m)| m.label());
    metrics::counter!(
        "acd_sip_responses_total",
        "code" => status_label(resp.status),
        "method" => method,
        "direction" => dir.label()
    )
    .increment(1);
}

impl EdgeCore {
    /// Starts a client transaction for `req`, counted.
    pub(crate) fn send_request(
        &mut self,
        req: Request,
        to: Peer,
        now: std::time::Instant,
    ) -> TxKey {
        count_request(&req.method, Direction::Out);
        self.tx.send_request(req, to, now)
    }
}

type Help = (&'static str, &'static str);

const COUNTERS: &[Help] = &[
    (
        "acd_edge_call_notes_total",
        "Call notes sent to the distributor when a caller's leg ended, by outcome.",
    ),
    (
        "acd_edge_note_steps_dropped_total",
        "IVR inputs left out of a call note (past its step limit).",
    ),
    (
        "acd_edge_surveys_total",
        "Post-call surveys, by outcome (started, answered, unanswered).",
    ),
    (
        "acd_edge_surveys_refused_total",
        "Post-call surveys not run, by reason.",
    ),
    (
        "acd_sip_requests_total",
        "SIP requests by method and direction (per transaction: retransmissions count once).",
    ),
    (
        "acd_sip_responses_total",
        "SIP responses by 3-digit code, request method and direction (retransmissions count once).",
    ),
    (
        "acd_sip_error_responses_total",
        "SIP responses of 300 and above sent, by status.",
    ),
    (
        "acd_sip_bad_requests_total",
        "SIP requests refused before any transaction, by status and reason.",
    ),
    (
        "acd_sip_2xx_retransmissions_total",
        "2xx responses retransmitted while waiting for the ACK.",
    ),
    (
        "acd_sip_bad_answers_total",
        "SDP answers that could not be used.",
    ),
    (
        "acd_sip_orphan_2xx_total",
        "2xx responses for INVITEs of ended calls (ACKed and hung up).",
    ),
    (
        "acd_sip_stray_responses_total",
        "SIP responses matching no transaction.",
    ),
    (
        "acd_sip_unmatched_dialog_total",
        "In-dialog requests matching no dialog, by method.",
    ),
    (
        "acd_calls_total",
        "Inbound calls, by outcome (accepted or why not).",
    ),
    (
        "acd_calls_refused_total",
        "Inbound calls refused, by status.",
    ),
    (
        "acd_calls_shed_total",
        "Inbound calls shed with 503 under overload, by reason.",
    ),
    ("acd_calls_bridged_total", "Calls bridged to an agent."),
    ("acd_calls_ended_total", "Calls ended, by outcome."),
    (
        "acd_calls_dead_total",
        "Calls ended because a leg stopped answering, by reason.",
    ),
    (
        "acd_agent_leg_failures_total",
        "Agent legs that failed, by reason.",
    ),
    (
        "acd_agent_legs_hung_up_total",
        "Agent legs hung up by the edge, by reason.",
    ),
    (
        "acd_hold_changes_total",
        "Hold and unhold re-INVITEs passed on.",
    ),
    ("acd_registrations_total", "REGISTER requests, by result."),
    (
        "acd_edge_agent_releases_total",
        "Agent legs released with the caller put back on hold.",
    ),
    (
        "acd_edge_agent_routes_total",
        "Agent legs routed, by how the phone was found.",
    ),
    (
        "acd_edge_announcements_skipped_total",
        "Queue announcements not played, by reason.",
    ),
    (
        "acd_edge_announcements_total",
        "Queue announcements played.",
    ),
    (
        "acd_edge_binding_reports_total",
        "Phone registrations reported to the distributor.",
    ),
    (
        "acd_edge_callback_dials_repeated_total",
        "Callback dial orders received again (after a fail-over).",
    ),
    (
        "acd_edge_callback_dials_total",
        "Callback dials, by outcome.",
    ),
    (
        "acd_edge_callbacks_requested_total",
        "Callbacks requested by callers.",
    ),
    (
        "acd_edge_connect_refused_total",
        "Offers the edge could not carry out, by reason.",
    ),
    (
        "acd_edge_connect_repeated_total",
        "Offers received again for an agent leg already ringing.",
    ),
    (
        "acd_edge_dtmf_digits_total",
        "DTMF digits received, by source.",
    ),
    (
        "acd_edge_dtmf_discarded_total",
        "DTMF digits discarded, by reason.",
    ),
    (
        "acd_edge_dtmf_info_refused_total",
        "SIP INFO DTMF refused, by reason.",
    ),
    (
        "acd_edge_ivr_fallbacks_total",
        "Callers sent to the fallback because no IVR runner answered.",
    ),
    (
        "acd_edge_ivr_prompts_missing_total",
        "IVR prompts that were not loaded.",
    ),
    (
        "acd_edge_ivr_replies_ignored_total",
        "IVR replies ignored, by reason.",
    ),
    (
        "acd_edge_recordings_total",
        "Voicemail recordings, by outcome.",
    ),
    (
        "acd_edge_redirects_refused_total",
        "Redirects refused, by reason.",
    ),
    ("acd_edge_redirects_total", "Calls redirected, by kind."),
    (
        "acd_edge_reenqueued_calls_total",
        "Calls enqueued again after the distributor lost them.",
    ),
    (
        "acd_edge_releases_refused_total",
        "Agent leg releases refused, by reason.",
    ),
    (
        "acd_edge_ring_all_answers_total",
        "Ring-all offers answered, by leg.",
    ),
    (
        "acd_edge_stale_term_total",
        "Distributor commands of an older leadership term ignored.",
    ),
    ("acd_edge_transfers_total", "Transfers, by outcome."),
];

const GAUGES: &[Help] = &[(
    "acd_edge_remote_bindings",
    "Live phone bindings held by other edges.",
)];

/// Registers the HELP text of every metric of this crate.
pub fn describe() {
    for (name, help) in COUNTERS {
        metrics::describe_counter!(*name, *help);
    }
    for (name, help) in GAUGES {
        metrics::describe_gauge!(*name, *help);
    }
}

#[cfg(test)]
mod tests {
    use super::status_label;

    #[test]
    fn status_labels_are_the_three_digits() {
        assert_eq!(status_label(100), "100");
        assert_eq!(status_label(200), "200");
        assert_eq!(status_label(699), "699");
        assert_eq!(status_label(99), "other");
        assert_eq!(status_label(700), "other");
    }
}
