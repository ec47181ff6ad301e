//! All of the core's deadlines in one structure: the next one is found in
//! O(log n) and nothing scans every call per input. Firing early is a no-op
//! for every kind (each handler re-checks its state).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use acd_sip::TxKey;
use serde::{Deserialize, Serialize};

use crate::ids::{CallId, Side, StepNo};

/// What a deadline is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TimerKind {
    /// Resend our 2xx to an INVITE on this side (§13.3.1.4, unreliable transports).
    Retransmit2xx(Side),
    /// No ACK for our 2xx within 64*T1: the dialog is dead (every transport).
    NoAck(Side),
    /// The agent's phone rang too long (ring-no-answer).
    Ring,
    /// Digit collection of this IVR step timed out.
    Digits(StepNo),
    /// RFC 4028: the peer should have refreshed the session by now.
    SessionExpiry(Side),
    /// RFC 4028: we are the refresher on this side; refresh now.
    SessionRefresh(Side),
    /// Offer again after a 491 (§14.1: after a random 2.1–4 s).
    Reoffer(Side),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TimerKey {
    Call(CallId, TimerKind),
    /// An agent INVITE of a call that has ended: a late 2xx still gets ACK + BYE
    /// until this fires (64*T1).
    Orphan(TxKey),
    /// A late 2xx we ACKed and BYEd (Call-ID, phone's tag): its
    /// retransmissions get the same ACK until this fires (64*T1).
    HungUp(String, String),
    /// The registration of this extension runs out: removed and reported.
    Registration(String),
    /// A callback's customer rang `ring_secs` without answering: CANCEL.
    Dial(CallId),
}

#[derive(Default)]
pub struct Timers {
    by_deadline: BTreeMap<(Instant, u64), TimerKey>,
    by_key: HashMap<TimerKey, (Instant, u64)>,
    seq: u64,
}

/// A timer as it serialises: time left instead of an `Instant`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingTimer {
    pub key: TimerKey,
    pub remaining: Duration,
}

impl Timers {
    /// Arms (or re-arms) `key` at `at`.
    pub fn set(&mut self, key: TimerKey, at: Instant) {
        self.cancel(&key);
        self.seq += 1;
        self.by_deadline.insert((at, self.seq), key.clone());
        self.by_key.insert(key, (at, self.seq));
    }

    pub fn cancel(&mut self, key: &TimerKey) {
        if let Some(slot) = self.by_key.remove(key) {
            self.by_deadline.remove(&slot);
        }
    }

    pub fn is_armed(&self, key: &TimerKey) -> bool {
        self.by_key.contains_key(key)
    }

    pub fn next(&self) -> Option<Instant> {
        self.by_deadline.keys().next().map(|(at, _)| *at)
    }

    /// Removes and returns the earliest timer due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<TimerKey> {
        let (&slot, _) = self.by_deadline.iter().next()?;
        if slot.0 > now {
            return None;
        }
        let key = self.by_deadline.remove(&slot)?;
        self.by_key.remove(&key);
        Some(key)
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    pub fn snapshot(&self, now: Instant) -> Vec<PendingTimer> {
        self.by_deadline
            .iter()
            .map(|((at, _), key)| PendingTimer {
                key: key.clone(),
                remaining: at.saturating_duration_since(now),
            })
            .collect()
    }

    pub fn restore(pending: Vec<PendingTimer>, now: Instant) -> Timers {
        let mut t = Timers::default();
        for p in pending {
            // A damaged snapshot's absurd duration fires at once (no overflow).
            t.set(p.key, now.checked_add(p.remaining).unwrap_or(now));
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: &str, kind: TimerKind) -> TimerKey {
        TimerKey::Call(CallId(n.into()), kind)
    }

    #[test]
    fn earliest_first_rearm_replaces_cancel_removes() {
        let t0 = Instant::now();
        let mut t = Timers::default();
        t.set(key("a", TimerKind::Ring), t0 + Duration::from_secs(5));
        t.set(key("b", TimerKind::Ring), t0 + Duration::from_secs(2));
        t.set(key("a", TimerKind::Ring), t0 + Duration::from_secs(1));
        assert_eq!(t.len(), 2);
        assert_eq!(t.next(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(t.pop_due(t0), None);
        assert_eq!(
            t.pop_due(t0 + Duration::from_secs(3)),
            Some(key("a", TimerKind::Ring))
        );
        t.cancel(&key("b", TimerKind::Ring));
        assert!(t.is_empty());
    }

    #[test]
    fn snapshot_keeps_time_left() {
        let t0 = Instant::now();
        let mut t = Timers::default();
        t.set(
            key("a", TimerKind::NoAck(Side::Caller)),
            t0 + Duration::from_secs(4),
        );
        let snap = t.snapshot(t0 + Duration::from_secs(1));
        let later = t0 + Duration::from_secs(100);
        let r = Timers::restore(snap, later);
        assert_eq!(r.next(), Some(later + Duration::from_secs(3)));
    }
}
