//! RFC 4028 session timers: a dialog whose peer vanished without a BYE is
//! ended when nobody refreshes it.

use std::time::{Duration, Instant};

use acd_sip::message::split_list;
use acd_sip::{Request, Response};

use crate::call::SessionTimer;
use crate::core::EdgeCore;
use crate::ids::{CallId, Side};
use crate::timers::TimerKind;

/// `Session-Expires: <secs>[;refresher=uac|uas]`.
fn parse_session_expires(value: &str) -> Option<(u64, Option<&str>)> {
    let mut parts = value.split(';');
    let secs = parts.next()?.trim().parse().ok()?;
    let refresher = parts.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case("refresher").then(|| v.trim())
    });
    Some((secs, refresher))
}

fn supports_timer(req: &Request) -> bool {
    ["Supported", "Require"].iter().any(|h| {
        req.headers
            .get_all(h)
            .flat_map(split_list)
            .any(|t| t.trim().eq_ignore_ascii_case("timer"))
    })
}

/// §5: an interval below our Min-SE gets 422 with our Min-SE; an unreadable
/// Session-Expires gets 400.
pub(crate) fn check_invite(req: &Request, min_se: Duration) -> Option<Response> {
    let value = req.headers.get("Session-Expires")?;
    let Some((secs, _)) = parse_session_expires(value) else {
        return Some(Response::for_request(
            req,
            400,
            "Bad Request (Session-Expires)",
        ));
    };
    if secs < min_se.as_secs() {
        let mut resp = Response::for_request(req, 422, "Session Interval Too Small");
        resp.headers.push("Min-SE", min_se.as_secs().to_string());
        return Some(resp);
    }
    None
}

/// The session timer we answer an INVITE with, and its Session-Expires value
/// (§9): the caller refreshes if it supports timers and did not ask us to.
pub(crate) fn negotiate_uas(req: &Request, default: Duration) -> Option<(SessionTimer, String)> {
    let supported = supports_timer(req);
    let asked = req
        .headers
        .get("Session-Expires")
        .and_then(parse_session_expires);
    let (secs, we_refresh) = match asked {
        Some((secs, Some(r))) if r.eq_ignore_ascii_case("uas") => (secs, true),
        Some((secs, _)) if supported => (secs, false),
        Some((secs, _)) => (secs, true),
        None if supported => (default.as_secs(), false),
        None => return None,
    };
    let who = if we_refresh { "uas" } else { "uac" };
    Some((
        SessionTimer {
            interval: Duration::from_secs(secs.max(1)),
            we_refresh,
        },
        format!("{secs};refresher={who}"),
    ))
}

/// The session timer an agent's 2xx sets on our INVITE (we are the UAC).
pub(crate) fn from_uac_2xx(resp: &Response) -> Option<SessionTimer> {
    let (secs, refresher) = parse_session_expires(resp.headers.get("Session-Expires")?)?;
    Some(SessionTimer {
        interval: Duration::from_secs(secs.max(1)),
        we_refresh: !refresher.is_some_and(|r| r.eq_ignore_ascii_case("uas")),
    })
}

impl EdgeCore {
    /// Refresh at half the interval if we refresh; else expect the peer's
    /// refresh before `interval - min(32 s, interval/3)` (§10).
    pub(crate) fn arm_session_timer(
        &mut self,
        id: &CallId,
        side: Side,
        st: SessionTimer,
        now: Instant,
    ) {
        if st.we_refresh {
            self.set_timer(id, TimerKind::SessionRefresh(side), st.interval / 2, now);
        } else {
            let margin = Duration::from_secs(32).min(st.interval / 3);
            self.set_timer(
                id,
                TimerKind::SessionExpiry(side),
                st.interval - margin,
                now,
            );
        }
    }

    /// A refresh (re-INVITE or UPDATE) went through on `side`.
    pub(crate) fn session_refreshed(&mut self, id: &CallId, side: Side, now: Instant) {
        if let Some(st) = self.established(id, side).and_then(|e| e.session_timer) {
            self.arm_session_timer(id, side, st, now);
        }
    }

    pub(crate) fn session_expired(&mut self, id: &CallId, side: Side, now: Instant) {
        tracing::warn!(?side, "session timer expired without refresh");
        metrics::counter!("acd_calls_dead_total", "reason" => "session_expired").increment(1);
        self.end_call(id, crate::teardown::EndReason::SessionExpired(side), now);
    }

    /// A refresh is an offer of our unchanged description; if another offer
    /// is out on this side, it goes when that one completes (`reoffer_pending`).
    pub(crate) fn refresh_session(&mut self, id: &CallId, side: Side, now: Instant) {
        let _ = self.send_reinvite(id, side, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invite(headers: &[(&str, &str)]) -> Request {
        let mut r = Request::new(acd_sip::Method::Invite, "sip:1@x");
        for (k, v) in headers {
            r.headers.push(k, *v);
        }
        r
    }

    #[test]
    fn caller_refreshes_when_it_supports_timers() {
        let r = invite(&[("Supported", "timer, 100rel"), ("Session-Expires", "600")]);
        let (st, h) = negotiate_uas(&r, Duration::from_secs(1800)).unwrap();
        assert!(!st.we_refresh);
        assert_eq!(st.interval, Duration::from_secs(600));
        assert_eq!(h, "600;refresher=uac");
    }

    #[test]
    fn we_refresh_for_a_caller_without_timer_support() {
        let r = invite(&[("Session-Expires", "300")]);
        let (st, h) = negotiate_uas(&r, Duration::from_secs(1800)).unwrap();
        assert!(st.we_refresh);
        assert_eq!(h, "300;refresher=uas");
        assert!(negotiate_uas(&invite(&[]), Duration::from_secs(1800)).is_none());
    }

    #[test]
    fn too_small_an_interval_gets_422_with_min_se() {
        let r = invite(&[("Session-Expires", "30")]);
        let resp = check_invite(&r, Duration::from_secs(90)).unwrap();
        assert_eq!(resp.status, 422);
        assert_eq!(resp.headers.get("Min-SE"), Some("90"));
        assert!(check_invite(
            &invite(&[("Session-Expires", "90")]),
            Duration::from_secs(90)
        )
        .is_none());
    }
}
