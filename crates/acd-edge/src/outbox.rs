//! The edge's outbox to the distributor: every message gets an id (per edge,
//! increasing from 1) and stays here until the distributor acknowledges it
//! (`EdgeAck`, cumulative), so a broken stream, a distributor crash or a
//! fail-over loses nothing: after re-attaching the link sends the whole outbox
//! again, in order, and the distributor applies each id once.
//!
//! Plain bookkeeping with no I/O; the driver loop owns it and the link only
//! carries what it hands over. Its state is part of the edge snapshot, so the
//! next process of a live hand-over continues the ids.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// Unacknowledged messages kept at most; past this the oldest is dropped (and
/// counted): the distributor has been gone far too long for it to matter.
pub const OUTBOX_CAPACITY: usize = 100_000;

/// Sent (or waiting to be sent) and not yet acknowledged, oldest first.
#[derive(Debug, Clone)]
pub struct Outbox<M> {
    next_id: u64,
    pending: VecDeque<(u64, M)>,
    capacity: usize,
}

/// What [`Outbox::push`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Pushed {
    pub id: u64,
    /// The oldest unacknowledged message had to go to make room.
    pub dropped: Option<u64>,
}

/// The outbox as a live hand-over passes it on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxSnapshot<M> {
    /// The id the next message gets.
    pub next_id: u64,
    pub pending: Vec<(u64, M)>,
}

impl<M> Default for OutboxSnapshot<M> {
    fn default() -> Self {
        OutboxSnapshot {
            next_id: 1,
            pending: Vec::new(),
        }
    }
}

impl<M: Clone> Outbox<M> {
    pub fn new(capacity: usize) -> Self {
        Self::starting_at(1, capacity)
    }

    /// An outbox whose first id is `first` (at least 1).
    pub fn starting_at(first: u64, capacity: usize) -> Self {
        Outbox {
            next_id: first.max(1),
            pending: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Numbers `msg` and keeps it until acknowledged.
    pub fn push(&mut self, msg: M) -> Pushed {
        let id = self.next_id;
        self.next_id += 1;
        let dropped = if self.pending.len() >= self.capacity {
            self.pending.pop_front().map(|(old, _)| old)
        } else {
            None
        };
        self.pending.push_back((id, msg));
        Pushed { id, dropped }
    }

    /// The distributor holds every message up to `id`; returns how many left.
    pub fn ack(&mut self, id: u64) -> usize {
        let before = self.pending.len();
        while self.pending.front().is_some_and(|(m, _)| *m <= id) {
            self.pending.pop_front();
        }
        before - self.pending.len()
    }

    /// Everything to send again after re-attaching, in order.
    pub fn unacked(&self) -> impl Iterator<Item = &(u64, M)> {
        self.pending.iter()
    }

    /// The highest id used so far (0: none).
    pub fn last_id(&self) -> u64 {
        self.next_id - 1
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    pub fn snapshot(&self) -> OutboxSnapshot<M> {
        OutboxSnapshot {
            next_id: self.next_id,
            pending: self.pending.iter().cloned().collect(),
        }
    }

    /// Continues from a previous process's outbox: its ids go on, and its
    /// unacknowledged messages are sent again on the next attach. Ids must
    /// never repeat, so the next id stays past every restored message (and
    /// never goes back).
    pub fn restore(&mut self, snap: OutboxSnapshot<M>) {
        let past_pending = snap.pending.last().map_or(1, |(id, _)| id + 1);
        self.next_id = self.next_id.max(snap.next_id).max(past_pending);
        self.pending = snap.pending.into();
        while self.pending.len() > self.capacity {
            self.pending.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(o: &Outbox<String>) -> Vec<u64> {
        o.unacked().map(|(id, _)| *id).collect()
    }

    #[test]
    fn ids_increase_from_one_and_acks_are_cumulative() {
        let mut o = Outbox::new(10);
        assert_eq!(o.last_id(), 0);
        for (i, m) in ["a", "b", "c", "d"].into_iter().enumerate() {
            assert_eq!(
                o.push(m.to_string()),
                Pushed {
                    id: i as u64 + 1,
                    dropped: None
                }
            );
        }
        assert_eq!(o.ack(2), 2);
        assert_eq!(ids(&o), vec![3, 4]);
        // An old or repeated ack changes nothing.
        assert_eq!(o.ack(1), 0);
        assert_eq!(o.ack(2), 0);
        assert_eq!(o.last_id(), 4);
        assert_eq!(o.ack(9), 2);
        assert!(o.is_empty());
        assert_eq!(
            o.push("e".into()).id,
            5,
            "ids go on after the outbox empties"
        );
    }

    #[test]
    fn unacked_messages_are_resent_in_order() {
        let mut o = Outbox::new(10);
        for m in ["enqueue", "abandon", "ended"] {
            let _ = o.push(m);
        }
        let _ = o.ack(1);
        let resend: Vec<_> = o.unacked().cloned().collect();
        assert_eq!(resend, vec![(2, "abandon"), (3, "ended")]);
        // Resending does not consume: a second broken stream resends again.
        assert_eq!(o.unacked().count(), 2);
    }

    #[test]
    fn an_outbox_can_start_past_one() {
        assert_eq!(Outbox::starting_at(1_000, 10).push("f").id, 1_000);
        assert_eq!(Outbox::starting_at(0, 10).push("g").id, 1);
    }

    #[test]
    fn overflow_drops_the_oldest_and_says_so() {
        let mut o = Outbox::new(2);
        let _ = o.push("a".to_string());
        let _ = o.push("b".to_string());
        let p = o.push("c".to_string());
        assert_eq!(
            p,
            Pushed {
                id: 3,
                dropped: Some(1)
            }
        );
        assert_eq!(ids(&o), vec![2, 3]);
        assert_eq!(o.len(), 2);
    }

    #[test]
    fn snapshot_and_restore_continue_the_ids() {
        let mut o = Outbox::new(10);
        for m in ["a", "b", "c"] {
            let _ = o.push(m.to_string());
        }
        let _ = o.ack(1);
        let snap = o.snapshot();
        let json = serde_json::to_string(&snap).expect("ser");
        let back: OutboxSnapshot<String> = serde_json::from_str(&json).expect("de");
        let mut next = Outbox::new(10);
        next.restore(back);
        assert_eq!(ids(&next), vec![2, 3]);
        assert_eq!(next.push("d".into()).id, 4);
        // A snapshot claiming a next id below its own messages cannot make ids repeat.
        let mut odd = Outbox::new(10);
        odd.restore(OutboxSnapshot {
            next_id: 1,
            pending: vec![(7, "x".to_string())],
        });
        assert_eq!(odd.push("y".into()).id, 8);
        // An edge snapshot from before outboxes existed starts at 1.
        let mut fresh = Outbox::<String>::new(10);
        fresh.restore(OutboxSnapshot::default());
        assert_eq!(fresh.push("z".into()).id, 1);
    }
}
