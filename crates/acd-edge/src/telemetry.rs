//! Metrics of the edge shell: media packet counters (handles looked up once
//! per process, added to about once a second per call, never per packet),
//! and the HELP text of every metric of the edge process (this crate's and
//! the B2BUA core's).

use std::sync::OnceLock;

/// Packet figures of one call, cumulative.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MediaFigures {
    pub played: u64,
    pub relayed: u64,
    pub rtcp_relayed: u64,
    pub lost: u64,
}

/// The process's media counters.
pub struct MediaCounters {
    played: metrics::Counter,
    relayed: metrics::Counter,
    rtcp_relayed: metrics::Counter,
    lost: metrics::Counter,
}

impl MediaCounters {
    /// Adds `now - before` to the counters; returns what is counted from now
    /// on. A figure that went down (a late packet filling a gap already
    /// counted lost) is left where it was: counters only go up.
    pub fn add(&self, before: MediaFigures, now: MediaFigures) -> MediaFigures {
        let step = |c: &metrics::Counter, b: u64, n: u64| {
            c.increment(n.saturating_sub(b));
            n.max(b)
        };
        MediaFigures {
            played: step(&self.played, before.played, now.played),
            relayed: step(&self.relayed, before.relayed, now.relayed),
            rtcp_relayed: step(&self.rtcp_relayed, before.rtcp_relayed, now.rtcp_relayed),
            lost: step(&self.lost, before.lost, now.lost),
        }
    }
}

/// The media counters, registered on first use (after the recorder).
pub fn media_counters() -> &'static MediaCounters {
    static COUNTERS: OnceLock<MediaCounters> = OnceLock::new();
    COUNTERS.get_or_init(|| MediaCounters {
        played: metrics::counter!("acd_rtp_packets_played_total"),
        relayed: metrics::counter!("acd_rtp_packets_relayed_total"),
        rtcp_relayed: metrics::counter!("acd_rtcp_packets_relayed_total"),
        lost: metrics::counter!("acd_rtp_packets_lost_total"),
    })
}

type Help = (&'static str, &'static str);

const COUNTERS: &[Help] = &[
    ("acd_rtp_packets_played_total", "RTP packets of prompts and music sent to callers."),
    ("acd_rtp_packets_relayed_total", "RTP packets relayed between the legs of bridged calls."),
    ("acd_rtcp_packets_relayed_total", "RTCP packets relayed between the legs of bridged calls."),
    ("acd_rtp_packets_lost_total", "RTP packets missing from the senders' sequence numbers on the relay path (gaps less late arrivals)."),
    ("acd_rtp_errors_total", "RTP datagrams refused or media set-up failures, by kind."),
    ("acd_rtp_inactive_total", "Call legs that stopped sending media."),
    ("acd_edge_attach_refused_total", "Distributor stream attachments refused, by reason."),
    ("acd_edge_distributor_disconnects_total", "Times the distributor stream went down."),
    ("acd_edge_handover_failures_total", "Failed steps of a live hand-over, by reason."),
    ("acd_edge_ivr_errors_total", "IVR steps that failed at a runner."),
    ("acd_edge_leader_hints_followed_total", "Redirections to the distributor named as leader."),
    ("acd_edge_outbox_overflow_total", "Messages to the distributor dropped from a full outbox."),
    ("acd_edge_outbox_resent_total", "Messages to the distributor sent again after a re-attach."),
    ("acd_edge_voicemail_failures_total", "Voicemail recordings that failed, by reason."),
    ("acd_sip_connections_closed_total", "SIP TCP/TLS connections closed, by reason."),
    ("acd_sip_connections_refused_total", "SIP TCP/TLS connections refused, by reason."),
    ("acd_sip_overload_drops_total", "SIP datagrams dropped because the core's queue was full."),
    ("acd_sip_parse_errors_total", "Malformed SIP messages, by transport."),
    ("acd_sip_send_drops_total", "SIP messages not sent, by transport and reason."),
    ("acd_sip_stream_reroutes_total", "Requests sent to a phone's Contact because its connection was gone."),
    ("acd_sip_transport_errors_total", "SIP transport failures, by kind."),
];

const GAUGES: &[Help] = &[
    (
        "acd_edge_active_calls",
        "Calls the edge holds now (any phase).",
    ),
    (
        "acd_edge_loop_lateness_seconds",
        "Smoothed delay between a SIP message's arrival and its handling.",
    ),
    (
        "acd_edge_outbox_messages",
        "Messages to the distributor not yet acknowledged.",
    ),
];

/// Registers the HELP text of every metric of the edge process.
pub fn describe() {
    for (name, help) in COUNTERS {
        metrics::describe_counter!(*name, *help);
    }
    for (name, help) in GAUGES {
        metrics::describe_gauge!(*name, *help);
    }
    acd_b2bua::telemetry::describe();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_only_go_up() {
        let c = media_counters();
        let a = MediaFigures {
            played: 3,
            relayed: 10,
            rtcp_relayed: 1,
            lost: 2,
        };
        let b = c.add(MediaFigures::default(), a);
        assert_eq!(b, a);
        let fewer_lost = MediaFigures { lost: 1, ..a };
        assert_eq!(c.add(b, fewer_lost), a);
    }
}
