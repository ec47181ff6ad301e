//! Digits in SIP INFO on the caller's dialog (the legacy usage RFC 6086
//! §2 keeps, no Info-Package): `application/dtmf-relay` (`Signal=5` and
//! `Duration=160` lines) and `application/dtmf` (the key alone).
//!
//! In the flow, a digit gets 200 and joins the call's digit stream; another
//! body type gets 415 with the types we read; an unreadable key gets 400; an
//! empty INFO (a keep-alive probe) gets 200. Outside the flow (queued,
//! bridged) and on the agent's leg every INFO gets 200 and changes nothing,
//! as before.

use std::time::Instant;

use acd_sip::{Request, Response, TxKey};

use crate::call::Phase;
use crate::core::EdgeCore;
use crate::digits::DigitSource;
use crate::ids::{CallId, Side};

/// Body types that carry a digit.
pub const DTMF_TYPES: &str = "application/dtmf-relay, application/dtmf";

/// Why an INFO body is not a digit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InfoBody {
    /// Another content type.
    Unsupported,
    /// A DTMF type without a readable key.
    Malformed,
}

/// The key in an INFO body (`None` for an empty body).
pub fn parse_info_digit(content_type: &str, body: &[u8]) -> Result<Option<char>, InfoBody> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let text = std::str::from_utf8(body).map_err(|_| InfoBody::Malformed)?;
    let key = match media.as_str() {
        "application/dtmf-relay" => signal_line(text).ok_or(InfoBody::Malformed)?,
        "application/dtmf" => text.trim(),
        _ => return Err(InfoBody::Unsupported),
    };
    key_of(key).map(Some).ok_or(InfoBody::Malformed)
}

/// The value of the `Signal=` line (names are case-insensitive, spaces
/// around `=` allowed, as phones send them).
fn signal_line(text: &str) -> Option<&str> {
    text.lines().find_map(|line| {
        let (name, value) = line.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("signal")
            .then(|| value.trim())
    })
}

/// One DTMF key; `10` and `11` (event codes, as some phones send `*` and
/// `#`) are read too.
fn key_of(s: &str) -> Option<char> {
    match s {
        "10" => return Some('*'),
        "11" => return Some('#'),
        _ => {}
    }
    let mut chars = s.chars();
    let c = chars.next()?.to_ascii_uppercase();
    let ok = chars.next().is_none() && (c.is_ascii_digit() || "*#ABCD".contains(c));
    ok.then_some(c)
}

impl EdgeCore {
    /// An INFO inside a confirmed dialog of the call.
    pub(crate) fn info(
        &mut self,
        id: &CallId,
        side: Side,
        key: TxKey,
        req: &Request,
        now: Instant,
    ) {
        let in_flow = side == Side::Caller && matches!(self.phase_of(id), Some(Phase::Ivr { .. }));
        if !in_flow {
            return self.respond(&key, Response::for_request(req, 200, "OK"), now);
        }
        let ctype = req.headers.get("Content-Type").unwrap_or("");
        match parse_info_digit(ctype, &req.body) {
            Ok(digit) => {
                self.respond(&key, Response::for_request(req, 200, "OK"), now);
                if let Some(d) = digit {
                    self.digit(id, d, DigitSource::Info, now);
                }
            }
            Err(InfoBody::Unsupported) => {
                metrics::counter!("acd_edge_dtmf_info_refused_total", "reason" => "media_type")
                    .increment(1);
                let mut resp = Response::for_request(req, 415, "Unsupported Media Type");
                resp.headers.push("Accept", DTMF_TYPES);
                self.respond(&key, resp, now);
            }
            Err(InfoBody::Malformed) => {
                metrics::counter!("acd_edge_dtmf_info_refused_total", "reason" => "malformed")
                    .increment(1);
                tracing::info!(call_id = %id, "INFO without a readable DTMF key");
                let resp = Response::for_request(req, 400, "Bad Request (DTMF signal)");
                self.respond(&key, resp, now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtmf_relay_and_dtmf_bodies() {
        let relay = "application/dtmf-relay";
        assert_eq!(
            parse_info_digit(relay, b"Signal=5\r\nDuration=160\r\n"),
            Ok(Some('5'))
        );
        assert_eq!(
            parse_info_digit(relay, b"signal = #\nduration= 250"),
            Ok(Some('#'))
        );
        assert_eq!(parse_info_digit(relay, b"Signal=10\r\n"), Ok(Some('*')));
        assert_eq!(
            parse_info_digit("Application/DTMF", b"9\r\n"),
            Ok(Some('9'))
        );
        assert_eq!(parse_info_digit("application/dtmf", b"d"), Ok(Some('D')));
        assert_eq!(parse_info_digit("", b""), Ok(None), "empty INFO");
        assert_eq!(parse_info_digit(relay, b"\r\n"), Ok(None));
    }

    #[test]
    fn other_bodies_and_bad_keys_are_refused() {
        let relay = "application/dtmf-relay";
        assert_eq!(
            parse_info_digit("application/media_control+xml", b"<x/>"),
            Err(InfoBody::Unsupported)
        );
        assert_eq!(
            parse_info_digit(relay, b"Duration=160\r\n"),
            Err(InfoBody::Malformed)
        );
        assert_eq!(
            parse_info_digit(relay, b"Signal=55\r\n"),
            Err(InfoBody::Malformed)
        );
        assert_eq!(
            parse_info_digit("application/dtmf", b"x"),
            Err(InfoBody::Malformed)
        );
        assert_eq!(
            parse_info_digit("application/dtmf", &[0xff, 0xfe]),
            Err(InfoBody::Malformed)
        );
    }
}
