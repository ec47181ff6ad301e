//! Admission control: new calls are refused early and cheaply (503 +
//! Retry-After) when the edge is late or at its limits, so the calls it
//! already accepted keep their timing.

use std::time::{Duration, Instant};

use crate::config::Admission;

pub(crate) struct Load {
    /// Smoothed arrival-to-handling delay of SIP messages.
    lateness: Duration,
    tokens: f64,
    refilled: Instant,
    rate: f64,
}

/// Why a new call was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shed {
    Late,
    TooManyCalls,
    Rate,
}

impl Shed {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Shed::Late => "late",
            Shed::TooManyCalls => "max_calls",
            Shed::Rate => "rate",
        }
    }
}

impl Load {
    pub(crate) fn new(cfg: &Admission, now: Instant) -> Load {
        let rate = f64::from(cfg.max_calls_per_second.max(1));
        Load {
            lateness: Duration::ZERO,
            tokens: rate,
            refilled: now,
            rate,
        }
    }

    /// EWMA with weight 1/8, as TCP's SRTT: one slow message does not shed,
    /// a loop that stays late does.
    pub(crate) fn observe(&mut self, delay: Duration) {
        self.lateness = (self.lateness * 7 + delay) / 8;
    }

    pub(crate) fn lateness(&self) -> Duration {
        self.lateness
    }

    pub(crate) fn admit(
        &mut self,
        cfg: &Admission,
        calls: usize,
        now: Instant,
    ) -> Result<(), Shed> {
        if self.lateness > cfg.max_lateness {
            return Err(Shed::Late);
        }
        if calls >= cfg.max_calls {
            return Err(Shed::TooManyCalls);
        }
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.refilled = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        if self.tokens < 1.0 {
            return Err(Shed::Rate);
        }
        self.tokens -= 1.0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sheds_when_late_and_recovers() {
        let cfg = Admission::default();
        let t0 = Instant::now();
        let mut l = Load::new(&cfg, t0);
        assert!(l.admit(&cfg, 0, t0).is_ok());
        for _ in 0..40 {
            l.observe(Duration::from_millis(500));
        }
        assert_eq!(l.admit(&cfg, 0, t0), Err(Shed::Late));
        for _ in 0..60 {
            l.observe(Duration::ZERO);
        }
        assert!(l.admit(&cfg, 0, t0).is_ok());
    }

    #[test]
    fn rate_limit_refills_over_time() {
        let cfg = Admission {
            max_calls_per_second: 2,
            ..Admission::default()
        };
        let t0 = Instant::now();
        let mut l = Load::new(&cfg, t0);
        assert!(l.admit(&cfg, 0, t0).is_ok());
        assert!(l.admit(&cfg, 0, t0).is_ok());
        assert_eq!(l.admit(&cfg, 0, t0), Err(Shed::Rate));
        assert!(l.admit(&cfg, 0, t0 + Duration::from_millis(600)).is_ok());
        assert_eq!(l.admit(&cfg, 5000, t0), Err(Shed::TooManyCalls));
    }
}
