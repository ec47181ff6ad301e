//! What stream peers may hold of the edge, and how the accept loop behaves
//! at the descriptor limit. No I/O here: connection slots are counters, the
//! back-off takes `now` as an argument.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Bounds on TCP and TLS connections (from `[sip.limits]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportLimits {
    /// Open stream connections in total, accepted and dialled.
    pub max_tcp_connections: usize,
    /// Accepted connections from one source IP.
    pub max_tcp_per_source: usize,
    /// Nothing received for this long: close.
    pub tcp_idle_timeout: Duration,
    /// A message (or a TLS handshake) not complete this long after its
    /// first byte: close.
    pub tcp_header_timeout: Duration,
    /// Largest message (headers + body) on a stream.
    pub max_message_bytes: usize,
}

impl Default for TransportLimits {
    fn default() -> Self {
        TransportLimits::from(&acd_config::SipLimits::default())
    }
}

impl From<&acd_config::SipLimits> for TransportLimits {
    fn from(c: &acd_config::SipLimits) -> Self {
        TransportLimits {
            max_tcp_connections: c.max_tcp_connections,
            max_tcp_per_source: c.max_tcp_per_source,
            tcp_idle_timeout: Duration::from_secs(c.tcp_idle_timeout_secs),
            tcp_header_timeout: Duration::from_secs(c.tcp_header_timeout_secs),
            max_message_bytes: c.max_message_bytes,
        }
    }
}

/// Why a connection got no slot (the metric's `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Total,
    PerSource,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Total => "max_connections",
            Refusal::PerSource => "max_per_source",
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_source: HashMap<IpAddr, usize>,
}

/// Connection slots: a counter for all connections and one per source
/// address, like a semaphore whose permits are returned on drop.
#[derive(Debug, Clone)]
pub struct ConnSlots {
    max_total: usize,
    max_per_source: usize,
    counts: Arc<Mutex<Counts>>,
}

impl ConnSlots {
    pub fn new(max_total: usize, max_per_source: usize) -> ConnSlots {
        ConnSlots {
            max_total,
            max_per_source,
            counts: Arc::default(),
        }
    }

    /// A slot for an accepted connection from `source`, or for a dialled
    /// one (`None`: counts against the total only).
    pub fn try_acquire(&self, source: Option<IpAddr>) -> Result<SlotGuard, Refusal> {
        // A panic elsewhere cannot leave the counts half-updated: every
        // critical section is a single increment or decrement.
        let mut c = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if c.total >= self.max_total {
            return Err(Refusal::Total);
        }
        if let Some(ip) = source {
            let n = c.per_source.entry(ip).or_insert(0);
            if *n >= self.max_per_source {
                return Err(Refusal::PerSource);
            }
            *n += 1;
        }
        c.total += 1;
        Ok(SlotGuard {
            counts: self.counts.clone(),
            source,
        })
    }

    /// Open connections in total (for tests and status).
    pub fn in_use(&self) -> usize {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .total
    }
}

/// One connection's slot; released when dropped.
#[derive(Debug)]
pub struct SlotGuard {
    counts: Arc<Mutex<Counts>>,
    source: Option<IpAddr>,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let mut c = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        c.total = c.total.saturating_sub(1);
        if let Some(ip) = self.source {
            if let Some(n) = c.per_source.get_mut(&ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    c.per_source.remove(&ip);
                }
            }
        }
    }
}

/// Linux errno values meaning "out of descriptors or kernel memory": retrying
/// at once cannot succeed until some connection closes.
const EMFILE: i32 = 24;
const ENFILE: i32 = 23;
const ENOBUFS: i32 = 105;
const ENOMEM: i32 = 12;

const FIRST_DELAY: Duration = Duration::from_millis(10);
const MAX_DELAY: Duration = Duration::from_secs(1);
const LOG_EVERY: Duration = Duration::from_secs(1);

/// What to do after a failed `accept()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct AcceptAction {
    /// Wait this long before accepting again.
    pub sleep: Duration,
    /// Log now, mentioning this many failures not logged since the last line.
    pub log: Option<u64>,
}

/// Back-off and rate-limited logging for the accept loop: at the descriptor
/// limit every accept fails at once, and retrying in a loop spins a core and
/// floods the log.
#[derive(Debug, Default)]
pub struct AcceptBackoff {
    delay: Option<Duration>,
    last_log: Option<Instant>,
    suppressed: u64,
}

impl AcceptBackoff {
    pub fn on_error(&mut self, errno: Option<i32>, now: Instant) -> AcceptAction {
        let exhausted = matches!(errno, Some(EMFILE | ENFILE | ENOBUFS | ENOMEM));
        let sleep = if exhausted {
            let d = self.delay.map_or(FIRST_DELAY, |d| (d * 2).min(MAX_DELAY));
            self.delay = Some(d);
            d
        } else {
            // A peer that reset before we accepted it: nothing to wait for.
            Duration::ZERO
        };
        let log = match self.last_log {
            Some(t) if now.saturating_duration_since(t) < LOG_EVERY => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last_log = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        };
        AcceptAction { sleep, log }
    }

    /// An accept succeeded: the next failure starts from the first delay.
    pub fn on_success(&mut self) {
        self.delay = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_cap_total_and_per_source_and_come_back_on_drop() {
        let slots = ConnSlots::new(3, 2);
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let a1 = slots.try_acquire(Some(a)).unwrap();
        let _a2 = slots.try_acquire(Some(a)).unwrap();
        assert_eq!(slots.try_acquire(Some(a)).unwrap_err(), Refusal::PerSource);
        let _b1 = slots.try_acquire(Some(b)).unwrap();
        assert_eq!(slots.try_acquire(Some(b)).unwrap_err(), Refusal::Total);
        assert_eq!(slots.try_acquire(None).unwrap_err(), Refusal::Total);
        assert_eq!(slots.in_use(), 3);
        drop(a1);
        assert_eq!(slots.in_use(), 2);
        let _a3 = slots.try_acquire(Some(a)).expect("slot returned on drop");
    }

    #[test]
    fn refused_attempts_take_no_slot() {
        let slots = ConnSlots::new(10, 1);
        let ip: IpAddr = [10, 0, 0, 1].into();
        let _g = slots.try_acquire(Some(ip)).unwrap();
        for _ in 0..5 {
            assert!(slots.try_acquire(Some(ip)).is_err());
        }
        assert_eq!(slots.in_use(), 1);
        assert_eq!(slots.counts.lock().unwrap().per_source[&ip], 1);
    }

    #[test]
    fn descriptor_exhaustion_backs_off_doubling_to_a_second() {
        let mut b = AcceptBackoff::default();
        let now = Instant::now();
        let sleeps: Vec<u64> = (0..10)
            .map(|_| b.on_error(Some(EMFILE), now).sleep.as_millis() as u64)
            .collect();
        assert_eq!(sleeps, [10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000]);
        b.on_success();
        assert_eq!(
            b.on_error(Some(ENFILE), now).sleep,
            Duration::from_millis(10)
        );
        assert_eq!(b.on_error(Some(104), now).sleep, Duration::ZERO);
    }

    #[test]
    fn logs_at_most_once_a_second_with_the_suppressed_count() {
        let mut b = AcceptBackoff::default();
        let t0 = Instant::now();
        assert_eq!(b.on_error(Some(EMFILE), t0).log, Some(0));
        let mut logged = 0;
        for i in 1..=1000u64 {
            // 1000 failures spread over 2.5 s.
            let now = t0 + Duration::from_micros(i * 2500);
            if let Some(n) = b.on_error(Some(EMFILE), now).log {
                logged += 1;
                assert!(n > 0, "the line reports what was suppressed");
            }
        }
        assert_eq!(logged, 2, "one line per second");
    }
}
