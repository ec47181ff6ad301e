//! Sans-IO replication bookkeeping between a distributor primary and its hot standby,
//! generic over the entry payload (the distributor uses `acd_routing::EventRecord`).
//!
//! # Data flow
//!
//! ```text
//!  primary core ── records ──▶ Leader::append ──▶ ring of recent entries
//!                                   │
//!     standby asks "after seq s" ──▶ Leader::entries_after(s)
//!                                   ├─ Ok(entries)  → send them
//!                                   └─ Err(NeedSnapshot) → send a core snapshot first
//!  standby: Follower::accept(seq, term) for each entry (gap and term fencing),
//!           applies it, acknowledges seq
//!  primary: Leader::ack(follower, seq) ──▶ Leader::committed()
//!           effects of entries up to `committed()` may be released
//! ```
//!
//! No sockets, no clock: the shell moves the bytes, this crate only keeps count.

use std::collections::{BTreeMap, VecDeque};

/// One replicated log entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry<T> {
    pub seq: u64,
    pub term: u64,
    pub payload: T,
}

/// The entries a follower asked for have left the ring (or never existed here): it must
/// be brought up to date with a snapshot, then continue from the snapshot's seq.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("entries after {requested} are not available (ring holds {first_available}..={last}); send a snapshot")]
pub struct NeedSnapshot {
    pub requested: u64,
    /// Oldest seq still in the ring (`last + 1` when the ring is empty).
    pub first_available: u64,
    pub last: u64,
}

/// Why an acknowledgement was not counted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    /// Usually an ack racing a detach; harmless.
    #[error("follower `{0}` is not attached")]
    UnknownFollower(String),
    /// The follower claims entries the leader never wrote: it followed someone else.
    #[error("follower `{follower}` acknowledged {acked}, beyond the last entry {last}")]
    Ahead {
        follower: String,
        acked: u64,
        last: u64,
    },
}

/// The primary's side: a bounded ring of recent entries and each follower's progress.
#[derive(Clone, Debug)]
pub struct Leader<T> {
    log: VecDeque<Entry<T>>,
    capacity: usize,
    last_seq: u64,
    followers: BTreeMap<String, u64>,
    /// High-water mark of [`Leader::committed`]: attaching a new follower must not
    /// un-commit what was already acknowledged.
    commit: u64,
}

impl<T: Clone> Leader<T> {
    /// A leader whose log continues after `last_seq` (0 for a fresh state, the core's
    /// `last_seq` after a promotion or restore), keeping at most `capacity` entries
    /// (at least one).
    pub fn new(capacity: usize, last_seq: u64) -> Self {
        Leader {
            log: VecDeque::with_capacity(capacity.clamp(1, 4096)),
            capacity: capacity.max(1),
            last_seq,
            followers: BTreeMap::new(),
            commit: last_seq,
        }
    }

    /// Adds an entry, evicting the oldest if the ring is full, and returns its seq.
    pub fn append(&mut self, term: u64, payload: T) -> u64 {
        self.last_seq += 1;
        if self.log.len() == self.capacity {
            self.log.pop_front();
        }
        self.log.push_back(Entry {
            seq: self.last_seq,
            term,
            payload,
        });
        self.recompute_commit();
        self.last_seq
    }

    /// Every entry with a seq greater than `seq`, oldest first.
    pub fn entries_after(&self, seq: u64) -> Result<Vec<Entry<T>>, NeedSnapshot> {
        let first_available = self.log.front().map_or(self.last_seq + 1, |e| e.seq);
        if seq > self.last_seq || seq + 1 < first_available {
            return Err(NeedSnapshot {
                requested: seq,
                first_available,
                last: self.last_seq,
            });
        }
        // `seq + 1 >= first_available`, so the skip is within the ring.
        let skip = usize::try_from(seq + 1 - first_available).unwrap_or(usize::MAX);
        Ok(self.log.iter().skip(skip).cloned().collect())
    }

    /// Every entry still in the ring, oldest first.
    pub fn retained(&self) -> Vec<Entry<T>> {
        self.log.iter().cloned().collect()
    }

    /// Records that `follower` has durably applied everything up to `seq`. Acks never
    /// move a follower backwards (a late duplicate is ignored).
    pub fn ack(&mut self, follower: &str, seq: u64) -> Result<(), AckError> {
        if seq > self.last_seq {
            return Err(AckError::Ahead {
                follower: follower.to_owned(),
                acked: seq,
                last: self.last_seq,
            });
        }
        let acked = self
            .followers
            .get_mut(follower)
            .ok_or_else(|| AckError::UnknownFollower(follower.to_owned()))?;
        *acked = (*acked).max(seq);
        self.recompute_commit();
        Ok(())
    }

    /// Starts counting `follower` (having acknowledged nothing yet) towards the commit
    /// index. Attaching again keeps its progress.
    pub fn attach(&mut self, follower: &str) {
        self.followers.entry(follower.to_owned()).or_insert(0);
    }

    /// Stops waiting for `follower`; entries only it was missing become committed.
    pub fn detach(&mut self, follower: &str) {
        self.followers.remove(follower);
        self.recompute_commit();
    }

    /// The highest seq every attached follower has acknowledged (all entries when none is
    /// attached). Never decreases: entries committed before a follower attached stay
    /// committed.
    pub fn committed(&self) -> u64 {
        self.commit
    }

    /// Seq of the newest entry.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// The acknowledged seq of each attached follower.
    pub fn followers(&self) -> impl Iterator<Item = (&str, u64)> {
        self.followers.iter().map(|(k, v)| (k.as_str(), *v))
    }

    fn recompute_commit(&mut self) {
        let min_acked = self
            .followers
            .values()
            .copied()
            .min()
            .unwrap_or(self.last_seq);
        self.commit = self.commit.max(min_acked);
    }
}

/// Why a follower refused an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FollowError {
    /// Not the next entry: missing ones (`got > expected`: ask again from `expected - 1`)
    /// or a duplicate (`got < expected`: ignore).
    #[error("expected entry {expected}, got {got}")]
    Gap { expected: u64, got: u64 },
    /// From a leader older than one already followed: fenced off.
    #[error("entry from term {got}, but term {current} has been seen")]
    StaleTerm { current: u64, got: u64 },
}

impl FollowError {
    /// A retransmission of an entry already accepted.
    pub fn is_duplicate(&self) -> bool {
        matches!(self, FollowError::Gap { expected, got } if got < expected)
    }
}

/// The standby's side: which entry comes next and the highest term seen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Follower {
    last_seq: u64,
    term: u64,
}

impl Follower {
    /// A follower whose state is at `last_seq`, having seen `term`.
    pub fn new(last_seq: u64, term: u64) -> Self {
        Follower { last_seq, term }
    }

    /// Checks that an entry may be applied, and if so counts it. Refuses a lower term
    /// first (fencing beats ordering), then anything but the next seq.
    pub fn accept(&mut self, seq: u64, term: u64) -> Result<(), FollowError> {
        if term < self.term {
            return Err(FollowError::StaleTerm {
                current: self.term,
                got: term,
            });
        }
        let expected = self.last_seq + 1;
        if seq != expected {
            return Err(FollowError::Gap { expected, got: seq });
        }
        self.last_seq = seq;
        self.term = term;
        Ok(())
    }

    /// After installing a snapshot taken at `seq` under `term`.
    pub fn reset_to(&mut self, seq: u64, term: u64) {
        self.last_seq = seq;
        self.term = self.term.max(term);
    }

    /// Raises the highest term seen (e.g. a new leader announced itself), so entries
    /// from the old one are refused from now on.
    pub fn observe_term(&mut self, term: u64) {
        self.term = self.term.max(term);
    }

    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    pub fn term(&self) -> u64 {
        self.term
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_numbers_consecutively_and_replays() {
        let mut l = Leader::new(8, 0);
        assert_eq!(l.append(1, "a"), 1);
        assert_eq!(l.append(1, "b"), 2);
        assert_eq!(l.append(2, "c"), 3);
        let e = l.entries_after(1).expect("in ring");
        assert_eq!(
            e,
            vec![
                Entry {
                    seq: 2,
                    term: 1,
                    payload: "b"
                },
                Entry {
                    seq: 3,
                    term: 2,
                    payload: "c"
                }
            ]
        );
        assert_eq!(l.entries_after(0).expect("all").len(), 3);
        assert!(l.entries_after(3).expect("up to date").is_empty());
    }

    #[test]
    fn ring_overflow_needs_snapshot() {
        let mut l = Leader::new(3, 0);
        for i in 0..5 {
            l.append(1, i);
        }
        // ring holds 3..=5
        assert_eq!(
            l.entries_after(1),
            Err(NeedSnapshot {
                requested: 1,
                first_available: 3,
                last: 5
            })
        );
        let e = l.entries_after(2).expect("just in ring");
        assert_eq!(e.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![3, 4, 5]);
        // A follower claiming to be ahead followed someone else.
        assert!(l.entries_after(6).is_err());
    }

    #[test]
    fn leader_continuing_after_snapshot() {
        let mut l: Leader<u8> = Leader::new(4, 100);
        assert!(l.entries_after(100).expect("up to date").is_empty());
        assert!(
            l.entries_after(99).is_err(),
            "99..100 is only in the snapshot"
        );
        assert_eq!(l.append(3, 7), 101);
        assert_eq!(l.committed(), 101);
    }

    #[test]
    fn commit_is_min_ack_and_monotonic() {
        let mut l = Leader::new(16, 0);
        for _ in 0..5 {
            l.append(1, ());
        }
        assert_eq!(l.committed(), 5, "no follower: everything committed");
        l.attach("s1");
        l.attach("s2");
        assert_eq!(l.committed(), 5, "attaching does not un-commit");
        l.append(1, ());
        assert_eq!(l.committed(), 5);
        l.ack("s1", 6).expect("ack");
        assert_eq!(l.committed(), 5, "s2 has not acknowledged 6");
        l.ack("s2", 6).expect("ack");
        assert_eq!(l.committed(), 6);
        l.ack("s2", 3).expect("late ack");
        assert_eq!(
            l.followers().collect::<Vec<_>>(),
            vec![("s1", 6), ("s2", 6)]
        );
        l.append(1, ());
        l.ack("s1", 7).expect("ack");
        assert_eq!(l.committed(), 6);
        l.detach("s2");
        assert_eq!(
            l.committed(),
            7,
            "detaching releases what only s2 held back"
        );
        assert_eq!(l.ack("s2", 7), Err(AckError::UnknownFollower("s2".into())));
        assert!(matches!(l.ack("s1", 8), Err(AckError::Ahead { .. })));
    }

    #[test]
    fn follower_refuses_gaps_and_duplicates() {
        let mut f = Follower::new(0, 1);
        f.accept(1, 1).expect("first");
        assert_eq!(
            f.accept(3, 1),
            Err(FollowError::Gap {
                expected: 2,
                got: 3
            })
        );
        let dup = f.accept(1, 1).expect_err("duplicate");
        assert!(dup.is_duplicate());
        assert!(!FollowError::Gap {
            expected: 2,
            got: 3
        }
        .is_duplicate());
        f.accept(2, 1).expect("next");
        assert_eq!(f.last_seq(), 2);
    }

    #[test]
    fn follower_fences_lower_terms() {
        let mut f = Follower::new(0, 1);
        f.accept(1, 2).expect("higher term adopted");
        assert_eq!(f.term(), 2);
        assert_eq!(
            f.accept(2, 1),
            Err(FollowError::StaleTerm { current: 2, got: 1 })
        );
        assert_eq!(f.last_seq(), 1, "refused entry not counted");
        f.observe_term(5);
        assert_eq!(
            f.accept(2, 4),
            Err(FollowError::StaleTerm { current: 5, got: 4 })
        );
        f.accept(2, 5).expect("new leader");
    }

    #[test]
    fn follower_reset_after_snapshot() {
        let mut f = Follower::new(0, 3);
        f.reset_to(40, 2);
        assert_eq!((f.last_seq(), f.term()), (40, 3), "term never goes back");
        assert_eq!(
            f.accept(40, 3),
            Err(FollowError::Gap {
                expected: 41,
                got: 40
            })
        );
        f.accept(41, 3).expect("continues after snapshot");
    }

    #[test]
    fn leader_and_follower_in_step() {
        let mut l = Leader::new(4, 0);
        let mut f = Follower::default();
        l.attach("f");
        for round in 0..10u64 {
            l.append(1, round);
            l.append(1, round);
            let entries = match l.entries_after(f.last_seq()) {
                Ok(e) => e,
                Err(snap) => {
                    // ring too short for this follower: install "snapshot" at last
                    f.reset_to(snap.last, 1);
                    Vec::new()
                }
            };
            for e in entries {
                f.accept(e.seq, e.term).expect("in order");
            }
            l.ack("f", f.last_seq()).expect("ack");
            assert_eq!(l.committed(), l.last_seq());
        }
    }
}
