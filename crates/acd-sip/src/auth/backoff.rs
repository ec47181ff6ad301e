//! Per-source back-off on failed authentication, in the spirit of
//! Kamailio's `pike` and fail2ban: after `max_failures` failures within
//! `window`, a source address is refused without any digest work for a ban
//! that doubles with each repeat offence, up to `max_ban`.
//!
//! Sans-IO: `now` comes in with every call; the table is bounded and evicts
//! the entry seen longest ago, keeping live bans as long as it can.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Thresholds of the back-off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffConfig {
    /// Failures within `window` that start a ban.
    pub max_failures: u32,
    pub window: Duration,
    /// First ban; each further ban doubles it.
    pub first_ban: Duration,
    pub max_ban: Duration,
    /// Sources tracked at once.
    pub capacity: usize,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            max_failures: 5,
            window: Duration::from_secs(60),
            first_ban: Duration::from_secs(30),
            max_ban: Duration::from_secs(3600),
            capacity: 4096,
        }
    }
}

/// Whether a source may try to authenticate now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Verdict {
    Allow,
    /// Banned for `retry_after` more.
    Refuse {
        retry_after: Duration,
    },
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Failures in the current window.
    failures: u32,
    window_start: Instant,
    /// Bans so far; the next ban lasts `first_ban * 2^strikes`.
    strikes: u32,
    banned_until: Option<Instant>,
    last_seen: Instant,
}

/// The per-source failure table.
#[derive(Debug, Clone)]
pub struct FailureBackoff {
    cfg: BackoffConfig,
    sources: HashMap<IpAddr, Entry>,
}

impl FailureBackoff {
    pub fn new(cfg: BackoffConfig) -> Self {
        FailureBackoff {
            cfg,
            sources: HashMap::new(),
        }
    }

    pub fn config(&self) -> &BackoffConfig {
        &self.cfg
    }

    /// Sources tracked now (banned or with recent failures).
    pub fn len(&self) -> usize {
        self.sources.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// Call before verifying credentials from `ip`.
    pub fn check(&mut self, ip: IpAddr, now: Instant) -> Verdict {
        let Some(e) = self.sources.get_mut(&ip) else {
            return Verdict::Allow;
        };
        e.last_seen = now;
        match e.banned_until {
            Some(until) if until > now => Verdict::Refuse {
                retry_after: until - now,
            },
            _ => Verdict::Allow,
        }
    }

    /// Records a failed attempt; returns the ban it started, if any.
    pub fn failure(&mut self, ip: IpAddr, now: Instant) -> Option<Duration> {
        if !self.sources.contains_key(&ip) {
            self.make_room(now);
        }
        let cfg = self.cfg;
        let e = self.sources.entry(ip).or_insert(Entry {
            failures: 0,
            window_start: now,
            strikes: 0,
            banned_until: None,
            last_seen: now,
        });
        e.last_seen = now;
        if now.saturating_duration_since(e.window_start) > cfg.window
            || e.banned_until.is_some_and(|u| u <= now)
        {
            e.failures = 0;
            e.window_start = now;
            e.banned_until = None;
        }
        e.failures += 1;
        if e.failures < cfg.max_failures {
            return None;
        }
        let ban = ban_length(&cfg, e.strikes);
        e.strikes = e.strikes.saturating_add(1);
        e.failures = 0;
        e.banned_until = Some(now + ban);
        Some(ban)
    }

    /// Records a successful authentication: the failure count is cleared
    /// and the next ban shrinks by half (decay), so a phone behind a NAT
    /// shared with a noisy one is not punished for ever.
    pub fn success(&mut self, ip: IpAddr, now: Instant) {
        let Some(e) = self.sources.get_mut(&ip) else {
            return;
        };
        e.failures = 0;
        e.window_start = now;
        e.strikes /= 2;
        if e.strikes == 0 && e.banned_until.is_none_or(|u| u <= now) {
            self.sources.remove(&ip);
        }
    }

    /// Drops entries with nothing left to remember, then, if still full, the
    /// eighth of the table seen longest ago (banned ones last). Freeing a
    /// batch makes the O(n) pass rare: a flood from fresh (spoofed) sources
    /// costs O(1) per source on average, not a scan each.
    fn make_room(&mut self, now: Instant) {
        if self.sources.len() < self.cfg.capacity {
            return;
        }
        let idle = self.cfg.window.max(self.cfg.max_ban);
        self.sources.retain(|_, e| {
            let banned = e.banned_until.is_some_and(|u| u > now);
            banned || now.saturating_duration_since(e.last_seen) < idle
        });
        if self.sources.len() < self.cfg.capacity {
            return;
        }
        let batch = (self.cfg.capacity / 8).max(1).min(self.sources.len());
        let mut ranked: Vec<((bool, Instant), IpAddr)> = self
            .sources
            .iter()
            .map(|(ip, e)| ((e.banned_until.is_some_and(|u| u > now), e.last_seen), *ip))
            .collect();
        ranked.select_nth_unstable_by_key(batch - 1, |(rank, _)| *rank);
        for (_, ip) in &ranked[..batch] {
            self.sources.remove(ip);
        }
    }
}

fn ban_length(cfg: &BackoffConfig, strikes: u32) -> Duration {
    let factor = 1u32.checked_shl(strikes.min(31)).unwrap_or(u32::MAX);
    cfg.first_ban.saturating_mul(factor).min(cfg.max_ban)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, n])
    }

    fn cfg() -> BackoffConfig {
        BackoffConfig {
            max_failures: 3,
            window: Duration::from_secs(60),
            first_ban: Duration::from_secs(10),
            max_ban: Duration::from_secs(35),
            capacity: 4,
        }
    }

    #[test]
    fn bans_after_k_failures_and_grows_exponentially() {
        let t0 = Instant::now();
        let mut b = FailureBackoff::new(cfg());
        assert_eq!(b.failure(ip(1), t0), None);
        assert_eq!(b.failure(ip(1), t0), None);
        assert_eq!(b.check(ip(1), t0), Verdict::Allow);
        assert_eq!(b.failure(ip(1), t0), Some(Duration::from_secs(10)));
        assert_eq!(
            b.check(ip(1), t0 + Duration::from_secs(4)),
            Verdict::Refuse {
                retry_after: Duration::from_secs(6)
            }
        );
        // Another source is unaffected.
        assert_eq!(b.check(ip(2), t0), Verdict::Allow);
        // After the ban, three more failures: twice as long, then capped.
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(b.check(ip(1), t1), Verdict::Allow);
        b.failure(ip(1), t1);
        b.failure(ip(1), t1);
        assert_eq!(b.failure(ip(1), t1), Some(Duration::from_secs(20)));
        let t2 = t1 + Duration::from_secs(20);
        b.failure(ip(1), t2);
        b.failure(ip(1), t2);
        assert_eq!(b.failure(ip(1), t2), Some(Duration::from_secs(35)));
    }

    #[test]
    fn failures_outside_the_window_do_not_add_up() {
        let t0 = Instant::now();
        let mut b = FailureBackoff::new(cfg());
        b.failure(ip(1), t0);
        b.failure(ip(1), t0);
        assert_eq!(b.failure(ip(1), t0 + Duration::from_secs(61)), None);
    }

    #[test]
    fn success_clears_failures_and_decays_strikes() {
        let t0 = Instant::now();
        let mut b = FailureBackoff::new(cfg());
        b.failure(ip(1), t0);
        b.failure(ip(1), t0);
        b.success(ip(1), t0);
        assert!(b.is_empty(), "no strikes yet: nothing left to remember");
        assert_eq!(b.failure(ip(1), t0), None);
        b.failure(ip(1), t0);
        b.failure(ip(1), t0); // ban 10 s, strikes 1
        let t1 = t0 + Duration::from_secs(10);
        for _ in 0..3 {
            let _ = b.failure(ip(1), t1);
        } // ban 20 s, strikes 2
        let t2 = t1 + Duration::from_secs(20);
        b.success(ip(1), t2); // strikes 1
        b.failure(ip(1), t2);
        b.failure(ip(1), t2);
        assert_eq!(b.failure(ip(1), t2), Some(Duration::from_secs(20)));
    }

    #[test]
    fn table_is_bounded_and_keeps_bans() {
        let t0 = Instant::now();
        let mut b = FailureBackoff::new(cfg());
        for _ in 0..3 {
            let _ = b.failure(ip(1), t0);
        }
        for n in 2..=20 {
            let _ = b.failure(ip(n), t0 + Duration::from_millis(u64::from(n)));
        }
        assert_eq!(b.len(), 4);
        assert!(matches!(
            b.check(ip(1), t0 + Duration::from_secs(1)),
            Verdict::Refuse { .. }
        ));
    }
}
