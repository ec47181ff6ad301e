//! Exactly-once for edge messages across fail-overs.
//!
//! An edge numbers its messages (`MsgId`, increasing from 1 per edge) and sends
//! the unacknowledged ones again after re-attaching, possibly to another
//! distributor. The core remembers, per edge, the highest id it applied and
//! ignores anything at or below it. The memory lives in the replicated state:
//! the id travels on the first record the command produced ([`Origin`] on
//! `EventRecord`), so a standby applying that record learns it too, and it is
//! part of the snapshot and the state digest.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::{EdgeId, MsgId};

/// Which edge message a command came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub edge: EdgeId,
    pub msg_id: MsgId,
}

/// Highest message id applied per edge.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AppliedOrigins(BTreeMap<EdgeId, MsgId>);

impl AppliedOrigins {
    /// True when `origin` was applied already (or an id after it was).
    pub fn is_duplicate(&self, origin: &Origin) -> bool {
        self.0
            .get(&origin.edge)
            .is_some_and(|last| origin.msg_id <= *last)
    }

    /// Notes `origin` as applied; ids never go back.
    pub fn record(&mut self, origin: &Origin) {
        let last = self.0.entry(origin.edge.clone()).or_default();
        *last = (*last).max(origin.msg_id);
    }

    /// The highest id applied for `edge` (0: none).
    pub fn last(&self, edge: &EdgeId) -> MsgId {
        self.0.get(edge).copied().unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(edge: &str, id: u64) -> Origin {
        Origin {
            edge: EdgeId::from(edge),
            msg_id: MsgId(id),
        }
    }

    #[test]
    fn ids_at_or_below_the_last_applied_are_duplicates_per_edge() {
        let mut m = AppliedOrigins::default();
        assert!(!m.is_duplicate(&o("e1", 1)));
        m.record(&o("e1", 3));
        assert!(m.is_duplicate(&o("e1", 1)));
        assert!(m.is_duplicate(&o("e1", 3)));
        assert!(!m.is_duplicate(&o("e1", 4)));
        assert!(!m.is_duplicate(&o("e2", 1)));
        m.record(&o("e1", 2));
        assert_eq!(m.last(&EdgeId::from("e1")), MsgId(3));
        assert_eq!(m.last(&EdgeId::from("e2")), MsgId(0));
    }
}
