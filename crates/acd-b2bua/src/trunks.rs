//! Which sources may send calls, and how many (sans-IO: `now` passed in).
//!
//! [`TrunkGuard::admit`] runs on a new INVITE before anything is allocated
//! for it: an unknown source is refused with 403; a trunk over its limits
//! with 503. With no `[[trunks]]` configured the guard is *open*: every
//! source is admitted, as one implicit trunk without limits or digest.
//!
//! Status choices, after carrier practice: 403 for a source we do not know
//! (nothing to retry, nothing to reveal). Over a limit the carrier should
//! route this call elsewhere, not present "busy" to the caller, so 503
//! rather than 486. Over the *rate* limit the 503 carries a Retry-After of
//! the time until the next token (RFC 3261 §21.5.4: do not send to us
//! before then); at the *concurrency* cap it carries none, so the upstream
//! advances this one call without taking the whole gateway out of service.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use acd_config::{Cidr, TrunkDef};

/// Index of a trunk in the guard.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct TrunkId(pub usize);

/// Why an INVITE was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    UnknownSource,
    TooManyCalls {
        trunk: TrunkId,
    },
    RateLimited {
        trunk: TrunkId,
        retry_after: Duration,
    },
}

impl Refusal {
    /// SIP status and reason phrase.
    pub fn status(&self) -> (u16, &'static str) {
        match self {
            Refusal::UnknownSource => (403, "Forbidden"),
            Refusal::TooManyCalls { .. } | Refusal::RateLimited { .. } => {
                (503, "Service Unavailable")
            }
        }
    }

    /// Retry-After seconds to send, if any.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Refusal::RateLimited { retry_after, .. } => {
                let whole = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                Some(whole.max(1))
            }
            _ => None,
        }
    }

    /// Metrics label.
    pub fn label(&self) -> &'static str {
        match self {
            Refusal::UnknownSource => "unknown_source",
            Refusal::TooManyCalls { .. } => "trunk_concurrency",
            Refusal::RateLimited { .. } => "trunk_rate",
        }
    }
}

/// New calls per second with a burst of one second's worth (at least one).
#[derive(Debug, Clone)]
struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    fn new(rate: f64, now: Instant) -> Self {
        let burst = rate.max(1.0);
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Takes a token, or says how long until one is there.
    fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
        }
    }
}

#[derive(Debug, Clone)]
struct Trunk {
    name: String,
    sources: Vec<Cidr>,
    credentials: Option<(String, String)>,
    max_concurrent: Option<u32>,
    bucket: Option<TokenBucket>,
    active: u32,
}

/// Admission of new calls per trunk.
#[derive(Debug, Clone)]
pub struct TrunkGuard {
    trunks: Vec<Trunk>,
}

impl TrunkGuard {
    /// From `[[trunks]]`; an empty list gives [`Self::open`].
    pub fn from_config(defs: &[TrunkDef], now: Instant) -> Self {
        if defs.is_empty() {
            return TrunkGuard::open();
        }
        let trunks = defs
            .iter()
            .map(|d| Trunk {
                name: d.name.clone(),
                sources: d.sources.clone(),
                credentials: d.username.clone().zip(d.password.clone()),
                max_concurrent: d.max_concurrent_calls,
                bucket: d.max_calls_per_second.map(|r| TokenBucket::new(r, now)),
                active: 0,
            })
            .collect();
        TrunkGuard { trunks }
    }

    /// One implicit trunk for any source, without limits or digest.
    pub fn open() -> Self {
        let any = |addr: IpAddr| Cidr { addr, prefix: 0 };
        TrunkGuard {
            trunks: vec![Trunk {
                name: "any".into(),
                sources: vec![any([0u8; 4].into()), any([0u16; 8].into())],
                credentials: None,
                max_concurrent: None,
                bucket: None,
                active: 0,
            }],
        }
    }

    /// Decides on a new INVITE from `source`: the first trunk whose sources
    /// contain it, if that trunk is under its limits. Takes a rate token;
    /// call [`Self::call_started`] once the call exists.
    pub fn admit(&mut self, source: IpAddr, now: Instant) -> Result<TrunkId, Refusal> {
        let (i, trunk) = self
            .trunks
            .iter_mut()
            .enumerate()
            .find(|(_, t)| t.sources.iter().any(|c| c.contains(source)))
            .ok_or(Refusal::UnknownSource)?;
        let id = TrunkId(i);
        if trunk.max_concurrent.is_some_and(|max| trunk.active >= max) {
            return Err(Refusal::TooManyCalls { trunk: id });
        }
        if let Some(bucket) = trunk.bucket.as_mut() {
            bucket
                .take(now)
                .map_err(|retry_after| Refusal::RateLimited {
                    trunk: id,
                    retry_after,
                })?;
        }
        Ok(id)
    }

    pub fn name(&self, t: TrunkId) -> &str {
        self.trunks.get(t.0).map_or("", |t| t.name.as_str())
    }

    /// (username, password) the trunk's INVITEs must authenticate with.
    pub fn credentials(&self, t: TrunkId) -> Option<(&str, &str)> {
        let (u, p) = self.trunks.get(t.0)?.credentials.as_ref()?;
        Some((u.as_str(), p.as_str()))
    }

    pub fn call_started(&mut self, t: TrunkId) {
        if let Some(trunk) = self.trunks.get_mut(t.0) {
            trunk.active = trunk.active.saturating_add(1);
        }
    }

    pub fn call_ended(&mut self, t: TrunkId) {
        if let Some(trunk) = self.trunks.get_mut(t.0) {
            trunk.active = trunk.active.saturating_sub(1);
        }
    }

    /// Calls up on the trunk now.
    pub fn active(&self, t: TrunkId) -> u32 {
        self.trunks.get(t.0).map_or(0, |t| t.active)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(name: &str, sources: &[&str]) -> TrunkDef {
        TrunkDef {
            name: name.into(),
            sources: sources
                .iter()
                .map(|s| Cidr::try_from(s.to_string()).unwrap())
                .collect(),
            username: None,
            password: None,
            max_concurrent_calls: None,
            max_calls_per_second: None,
            dial: None,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn sources_pick_the_trunk_and_unknown_ones_get_403() {
        let now = Instant::now();
        let mut carrier = def("carrier", &["203.0.113.0/24"]);
        carrier.username = Some("pbx".into());
        carrier.password = Some("pw".into());
        let mut g = TrunkGuard::from_config(&[carrier, def("lab", &["127.0.0.1"])], now);
        assert_eq!(g.admit(ip("203.0.113.77"), now), Ok(TrunkId(0)));
        assert_eq!(g.credentials(TrunkId(0)), Some(("pbx", "pw")));
        assert_eq!(g.admit(ip("127.0.0.1"), now), Ok(TrunkId(1)));
        assert_eq!(g.name(TrunkId(1)), "lab");
        let r = g.admit(ip("198.51.100.1"), now).unwrap_err();
        assert_eq!(
            (r, r.status().0, r.retry_after_secs()),
            (Refusal::UnknownSource, 403, None)
        );
    }

    #[test]
    fn no_trunks_means_open() {
        let now = Instant::now();
        let mut g = TrunkGuard::from_config(&[], now);
        for s in ["127.0.0.1", "198.51.100.1", "2001:db8::1"] {
            assert_eq!(g.admit(ip(s), now), Ok(TrunkId(0)));
        }
        assert_eq!(g.credentials(TrunkId(0)), None);
    }

    #[test]
    fn concurrency_cap() {
        let now = Instant::now();
        let mut d = def("c", &["127.0.0.1"]);
        d.max_concurrent_calls = Some(2);
        let mut g = TrunkGuard::from_config(&[d], now);
        for _ in 0..2 {
            let t = g.admit(ip("127.0.0.1"), now).unwrap();
            g.call_started(t);
        }
        let r = g.admit(ip("127.0.0.1"), now).unwrap_err();
        assert_eq!(r, Refusal::TooManyCalls { trunk: TrunkId(0) });
        assert_eq!((r.status().0, r.retry_after_secs()), (503, None));
        g.call_ended(TrunkId(0));
        assert_eq!(g.active(TrunkId(0)), 1);
        assert!(g.admit(ip("127.0.0.1"), now).is_ok());
    }

    #[test]
    fn token_bucket_limits_rate_with_one_second_burst() {
        let t0 = Instant::now();
        let mut d = def("c", &["127.0.0.1"]);
        d.max_calls_per_second = Some(2.0);
        let mut g = TrunkGuard::from_config(&[d], t0);
        assert!(g.admit(ip("127.0.0.1"), t0).is_ok());
        assert!(g.admit(ip("127.0.0.1"), t0).is_ok());
        let r = g.admit(ip("127.0.0.1"), t0).unwrap_err();
        assert_eq!(
            r,
            Refusal::RateLimited {
                trunk: TrunkId(0),
                retry_after: Duration::from_millis(500)
            }
        );
        assert_eq!((r.status().0, r.retry_after_secs()), (503, Some(1)));
        // Half a second later exactly one more token is there.
        let t1 = t0 + Duration::from_millis(500);
        assert!(g.admit(ip("127.0.0.1"), t1).is_ok());
        assert!(g.admit(ip("127.0.0.1"), t1).is_err());
        // Idle time refills no more than the burst.
        let t2 = t1 + Duration::from_secs(60);
        assert!(g.admit(ip("127.0.0.1"), t2).is_ok());
        assert!(g.admit(ip("127.0.0.1"), t2).is_ok());
        assert!(g.admit(ip("127.0.0.1"), t2).is_err());
    }
}
