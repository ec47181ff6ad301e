//! Checks a flow before it is used: every problem names the node (and the
//! key within it) so the config loader can point at the file and line.

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};

use crate::Flow;

/// What a flow may refer to outside itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Known {
    pub queues: BTreeSet<String>,
    /// Prompt names as the edge knows them: `moh`, `en/welcome`, `ru/welcome`…
    pub prompts: BTreeSet<String>,
    /// Languages with a prompt set (`en`, `ru`); the first is the default.
    pub languages: Vec<String>,
}

/// One problem in a flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowIssue {
    /// The node at fault; `None` for the flow's own keys (`start`, …).
    pub node: Option<String>,
    /// The key within the node (or flow) at fault, e.g. `next`, `options`.
    pub key: Option<String>,
    pub message: String,
}

/// Every problem found in `flow`; empty when it can run.
pub fn validate(flow: &Flow, known: &Known) -> Vec<FlowIssue> {
    let mut issues = Vec::new();
    if !flow.nodes.contains_key(&flow.start) {
        issues.push(FlowIssue {
            node: None,
            key: Some("start".into()),
            message: format!("no node `{}`", flow.start),
        });
    }
    if !known.queues.is_empty() && !known.queues.contains(&flow.fallback_queue) {
        issues.push(FlowIssue {
            node: None,
            key: Some("fallback_queue".into()),
            message: format!("no queue `{}`", flow.fallback_queue),
        });
    }
    for (name, node) in &flow.nodes {
        for next in node.successors() {
            if !flow.nodes.contains_key(next) {
                issues.push(FlowIssue {
                    node: Some(name.clone()),
                    key: None,
                    message: format!("leads to `{next}`, which is not a node of this flow"),
                });
            }
        }
    }
    issues
}

/// The flow's version: a hash of its content, equal on every runner that
/// loaded the same flow, different after any change.
pub fn version(flow: &Flow) -> String {
    let canonical = serde_json::to_vec(flow).unwrap_or_default();
    let digest = Sha256::digest(&canonical);
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}
