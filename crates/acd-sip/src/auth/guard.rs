//! Digest verification behind the per-source back-off: one decision per
//! request that carries (or should carry) credentials, REGISTER or INVITE.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::backoff::{BackoffConfig, FailureBackoff, Verdict};
use super::{AuthOutcome, DigestServer, FailReason, Verified};
use crate::{Request, Response};

/// What to do with a request's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Decision {
    Verified(Verified),
    /// Answer 401 with fresh challenges (`stale=true` when `why` is not
    /// [`Challenge::Missing`]).
    Challenge(Challenge),
    /// 403: wrong credentials. Counted towards the source's back-off.
    Refused(FailReason),
    /// 503 + Retry-After: the source is backed off; no digest work was done.
    BackedOff {
        retry_after: Duration,
    },
}

/// Why a 401 is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenge {
    Missing,
    Stale,
    Replay,
}

impl Decision {
    /// Metrics label.
    pub fn label(&self) -> &'static str {
        match self {
            Decision::Verified(_) => "verified",
            Decision::Challenge(Challenge::Missing) => "challenged",
            Decision::Challenge(Challenge::Stale) => "stale",
            Decision::Challenge(Challenge::Replay) => "replay",
            Decision::Refused(r) => r.as_str(),
            Decision::BackedOff { .. } => "backed_off",
        }
    }
}

/// A [`DigestServer`] and a [`FailureBackoff`] keyed by source IP.
///
/// A backed-off source gets 503 with Retry-After rather than 403 or silence:
/// the ban is temporary and 503 + Retry-After (RFC 3261 §21.5.4) is the
/// status that says so and says until when, so an honest phone with a
/// mistyped password stops hammering for exactly that long instead of
/// giving up for good (403) or retransmitting into silence (pike's drop,
/// which would also leave a server transaction open here). Answering costs
/// one small datagram and no hashing.
#[derive(Debug, Clone)]
pub struct AuthGuard {
    pub digest: DigestServer,
    pub backoff: FailureBackoff,
}

impl AuthGuard {
    pub fn new(digest: DigestServer, backoff: BackoffConfig) -> Self {
        AuthGuard {
            digest,
            backoff: FailureBackoff::new(backoff),
        }
    }

    /// Checks `authorization` (the request's Authorization value, if any)
    /// for `method` on `request_uri`, from `source`.
    #[allow(clippy::too_many_arguments)]
    pub fn authenticate(
        &mut self,
        authorization: Option<&str>,
        method: &str,
        request_uri: &str,
        source: IpAddr,
        now: Instant,
        unix_now: u64,
        password_of: impl Fn(&str) -> Option<String>,
    ) -> Decision {
        if let Verdict::Refuse { retry_after } = self.backoff.check(source, now) {
            return Decision::BackedOff { retry_after };
        }
        let Some(authorization) = authorization else {
            return Decision::Challenge(Challenge::Missing);
        };
        let outcome =
            self.digest
                .verify_request(authorization, method, request_uri, unix_now, password_of);
        match outcome {
            AuthOutcome::Ok(v) => {
                self.backoff.success(source, now);
                Decision::Verified(v)
            }
            AuthOutcome::Missing => Decision::Challenge(Challenge::Missing),
            AuthOutcome::Stale => Decision::Challenge(Challenge::Stale),
            AuthOutcome::Replay => Decision::Challenge(Challenge::Replay),
            AuthOutcome::Fail(reason) => {
                self.failure(source, now);
                Decision::Refused(reason)
            }
        }
    }

    /// Counts a failure that the digest alone cannot see (valid credentials
    /// of another user, say). Returns the ban it started, if any.
    pub fn failure(&mut self, source: IpAddr, now: Instant) -> Option<Duration> {
        self.backoff.failure(source, now)
    }

    /// 401 with a challenge per offered algorithm.
    pub fn challenge(&mut self, req: &Request, unix_now: u64, stale: bool) -> Response {
        let mut resp = Response::for_request(req, 401, "Unauthorized");
        for value in self.digest.challenges(unix_now, stale) {
            resp.headers.push("WWW-Authenticate", value);
        }
        resp
    }

    /// The response for any decision but `Verified` (None for that one).
    pub fn response(&mut self, req: &Request, d: &Decision, unix_now: u64) -> Option<Response> {
        Some(match d {
            Decision::Verified(_) => return None,
            Decision::Challenge(why) => self.challenge(req, unix_now, *why != Challenge::Missing),
            Decision::Refused(_) => Response::for_request(req, 403, "Forbidden"),
            Decision::BackedOff { retry_after } => backed_off(req, *retry_after),
        })
    }
}

/// 503 with Retry-After in whole seconds, rounded up.
pub fn backed_off(req: &Request, retry_after: Duration) -> Response {
    let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    let mut resp = Response::for_request(req, 503, "Service Unavailable");
    resp.headers.push("Retry-After", secs.max(1).to_string());
    resp
}
