//! The flows a runner serves: the current version of each, plus the earlier
//! versions it has loaded, so a caller who started before a reload finishes
//! on the version they started (issue 7: reloads drop no caller).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use acd_ivr::Flow;

/// Earlier versions kept per flow: callers rarely outlive more than a few
/// reloads, and each version is only a small graph.
pub const MAX_VERSIONS_PER_FLOW: usize = 8;

/// Flows by id and version.
#[derive(Debug, Default)]
pub struct FlowStore {
    current: BTreeMap<String, (String, Arc<Flow>)>,
    /// Every loaded version per flow id, oldest first (the current one included).
    history: BTreeMap<String, VecDeque<(String, Arc<Flow>)>>,
}

/// What a reload changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadReport {
    /// `flow_id@version` of every flow now current.
    pub flows: Vec<String>,
    /// Ids of the flows added, changed or removed by the reload.
    pub changed: Vec<String>,
}

/// Why a step cannot be served here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unresolved {
    /// No such flow at all (the edge's config names a flow this runner lacks).
    NoFlow,
    /// The flow exists but not in the version the caller started on (e.g.
    /// this runner was restarted after a reload): another runner may have it.
    NoVersion,
}

impl FlowStore {
    pub fn new(flows: BTreeMap<String, Flow>) -> FlowStore {
        let mut store = FlowStore::default();
        let _ = store.replace(flows);
        store
    }

    /// Makes `flows` current; earlier versions stay servable (bounded).
    pub fn replace(&mut self, flows: BTreeMap<String, Flow>) -> ReloadReport {
        let mut changed: Vec<String> = self
            .current
            .keys()
            .filter(|id| !flows.contains_key(*id))
            .cloned()
            .collect();
        let mut current = BTreeMap::new();
        for (id, flow) in flows {
            let version = acd_ivr::version(&flow);
            if self.current.get(&id).map(|(v, _)| v) != Some(&version) {
                changed.push(id.clone());
            }
            let flow = Arc::new(flow);
            let versions = self.history.entry(id.clone()).or_default();
            versions.retain(|(v, _)| *v != version);
            versions.push_back((version.clone(), flow.clone()));
            while versions.len() > MAX_VERSIONS_PER_FLOW {
                versions.pop_front();
            }
            current.insert(id, (version, flow));
        }
        self.current = current;
        changed.sort();
        ReloadReport {
            flows: self.current_versions(),
            changed,
        }
    }

    /// `flow_id@version` of every current flow.
    pub fn current_versions(&self) -> Vec<String> {
        self.current
            .iter()
            .map(|(id, (v, _))| format!("{id}@{v}"))
            .collect()
    }

    /// The flow a step runs on: the current version for a caller who has
    /// none yet, else exactly the version they started on.
    pub fn resolve(&self, id: &str, version: &str) -> Result<(String, Arc<Flow>), Unresolved> {
        if version.is_empty() {
            return self.current.get(id).cloned().ok_or(Unresolved::NoFlow);
        }
        let versions = self.history.get(id).ok_or(Unresolved::NoFlow)?;
        versions
            .iter()
            .find(|(v, _)| v == version)
            .cloned()
            .ok_or(Unresolved::NoVersion)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use acd_ivr::{AnswerMode, Node};

    fn flow(queue: &str) -> Flow {
        Flow {
            answer: AnswerMode::Immediate,
            start: "q".into(),
            fallback_queue: queue.into(),
            nodes: BTreeMap::from([(
                "q".into(),
                Node::Enqueue {
                    queue: queue.into(),
                    priority: 0,
                    skills: Default::default(),
                    language_skills: Default::default(),
                    data: Default::default(),
                },
            )]),
            ..Default::default()
        }
    }

    #[test]
    fn old_versions_stay_servable_and_unknown_ones_are_not() {
        let mut store = FlowStore::new(BTreeMap::from([("main".into(), flow("a"))]));
        let (v1, _) = store.resolve("main", "").unwrap();
        let report = store.replace(BTreeMap::from([("main".into(), flow("b"))]));
        assert_eq!(report.changed, ["main"]);
        let (v2, f2) = store.resolve("main", "").unwrap();
        assert_ne!(v1, v2);
        assert_eq!(report.flows, [format!("main@{v2}")]);
        assert_eq!(f2.fallback_queue, "b");
        assert_eq!(store.resolve("main", &v1).unwrap().1.fallback_queue, "a");
        assert_eq!(
            store.resolve("main", "feedface").unwrap_err(),
            Unresolved::NoVersion
        );
        assert_eq!(store.resolve("other", "").unwrap_err(), Unresolved::NoFlow);
        // Same content again: nothing changed.
        let again = store.replace(BTreeMap::from([("main".into(), flow("b"))]));
        assert!(again.changed.is_empty());
        // A removed flow is reported; its callers still finish.
        let removed = store.replace(BTreeMap::new());
        assert_eq!(removed.changed, ["main"]);
        assert!(store.resolve("main", &v2).is_ok());
        assert_eq!(store.resolve("main", "").unwrap_err(), Unresolved::NoFlow);
    }

    #[test]
    fn history_is_bounded() {
        let mut store = FlowStore::default();
        let mut versions = Vec::new();
        for i in 0..MAX_VERSIONS_PER_FLOW + 3 {
            store.replace(BTreeMap::from([("main".into(), flow(&format!("q{i}")))]));
            versions.push(store.resolve("main", "").unwrap().0);
        }
        assert_eq!(store.history["main"].len(), MAX_VERSIONS_PER_FLOW);
        assert!(store.resolve("main", &versions[0]).is_err());
        assert!(store.resolve("main", versions.last().unwrap()).is_ok());
    }
}
