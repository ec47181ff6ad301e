//! Which nonces have been used, and with which nonce count (RFC 7616 §3.4.5
//! `nc`), so a captured Authorization cannot be replayed while its nonce is
//! still fresh.

use std::collections::{HashMap, VecDeque};

/// How a nonce has been used so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Use {
    /// Used without `qop`: single-use, any further use is a replay.
    Once,
    /// Used with `qop=auth`; the highest `nc` accepted.
    Counted(u32),
}

/// A bounded table nonce → highest nonce count, evicting the nonce first
/// used longest ago. A nonce that is not in the table (never used, or
/// evicted) is accepted once with its nc; the age limit of the nonce itself
/// bounds how long an evicted one could be replayed, and the registrar
/// refuses a Contact change with a nonce that is not newer than the
/// binding's (see `acd-edge`'s registrar).
#[derive(Debug, Clone)]
pub struct NonceTable {
    capacity: usize,
    uses: HashMap<String, Use>,
    /// First-use order, oldest first, with the nonce's issue time.
    order: VecDeque<(u64, String)>,
}

impl NonceTable {
    pub fn new(capacity: usize) -> Self {
        NonceTable {
            capacity: capacity.max(1),
            uses: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.uses.len()
    }

    pub fn is_empty(&self) -> bool {
        self.uses.is_empty()
    }

    /// Records a use of `nonce` (issued at `issued`) with nonce count `nc`
    /// (`None` without qop). Returns false for a replay: a single-use nonce
    /// used again, or an nc not above the highest seen. Nonces issued before
    /// `expired_before` are dropped first: they fail the age check anyway.
    pub fn admit(
        &mut self,
        nonce: &str,
        issued: u64,
        nc: Option<u32>,
        expired_before: u64,
    ) -> bool {
        match (self.uses.get_mut(nonce), nc) {
            (Some(Use::Counted(highest)), Some(nc)) if nc > *highest => {
                *highest = nc;
                true
            }
            (Some(_), _) => false,
            (None, _) => {
                self.prune(expired_before);
                while self.uses.len() >= self.capacity {
                    self.evict_oldest();
                }
                let use_ = nc.map_or(Use::Once, Use::Counted);
                self.uses.insert(nonce.to_string(), use_);
                self.order.push_back((issued, nonce.to_string()));
                true
            }
        }
    }

    fn prune(&mut self, expired_before: u64) {
        while self
            .order
            .front()
            .is_some_and(|(issued, _)| *issued < expired_before)
        {
            self.evict_oldest();
        }
    }

    fn evict_oldest(&mut self) {
        if let Some((_, nonce)) = self.order.pop_front() {
            self.uses.remove(&nonce);
        } else {
            // `order` and `uses` hold the same keys; this only guards the loop.
            self.uses.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_nonce_needs_increasing_nc() {
        let mut t = NonceTable::new(8);
        assert!(t.admit("n1", 100, Some(1), 0));
        assert!(!t.admit("n1", 100, Some(1), 0), "same nc is a replay");
        assert!(t.admit("n1", 100, Some(3), 0), "nc may skip ahead");
        assert!(!t.admit("n1", 100, Some(2), 0), "lower nc is a replay");
        assert!(!t.admit("n1", 100, None, 0), "dropping qop is a replay");
        assert!(t.admit("n1", 100, Some(4), 0));
    }

    #[test]
    fn nonce_without_qop_is_single_use() {
        let mut t = NonceTable::new(8);
        assert!(t.admit("n1", 100, None, 0));
        assert!(!t.admit("n1", 100, None, 0));
        assert!(!t.admit("n1", 100, Some(5), 0));
    }

    #[test]
    fn table_is_bounded_and_evicts_oldest_first() {
        let mut t = NonceTable::new(3);
        for n in ["a", "b", "c", "d"] {
            assert!(t.admit(n, 100, Some(1), 0));
        }
        assert_eq!(t.len(), 3);
        // "a" was evicted: accepted once more with its nc, then tracked again.
        assert!(!t.admit("d", 100, Some(1), 0));
        assert!(t.admit("a", 100, Some(1), 0));
        assert!(!t.admit("a", 100, Some(1), 0));
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn expired_nonces_are_pruned() {
        let mut t = NonceTable::new(8);
        assert!(t.admit("old", 10, Some(1), 0));
        assert!(t.admit("new", 500, Some(1), 200));
        assert_eq!(t.len(), 1);
    }
}
