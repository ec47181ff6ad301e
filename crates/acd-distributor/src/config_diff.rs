//! A readable difference between two routing configurations, one line per
//! added, removed or changed agent, queue or setting:
//! `+ queue vip`, `- agent bob`, `~ queue sales: strategy "longest_idle" -> "most_skilled"`.

use std::collections::BTreeMap;

use acd_routing::RoutingConfig;
use serde_json::Value;

pub fn diff(old: &RoutingConfig, new: &RoutingConfig) -> Vec<String> {
    let mut lines = Vec::new();
    let by_id = |items: Vec<Value>| -> BTreeMap<String, Value> {
        items.into_iter().map(|v| (id_of(&v), v)).collect()
    };
    let (o, n) = (to_value(old), to_value(new));
    for (kind, key) in [("agent", "agents"), ("queue", "queues")] {
        let before = by_id(array(&o, key));
        let after = by_id(array(&n, key));
        entity_lines(kind, &before, &after, &mut lines);
    }
    // Everything else: one line per changed top-level setting.
    for (key, new_v) in n.as_object().into_iter().flatten() {
        if key == "agents" || key == "queues" {
            continue;
        }
        let old_v = o.get(key).cloned().unwrap_or(Value::Null);
        if &old_v != new_v {
            lines.push(format!("~ {key}: {} -> {}", text(&old_v), text(new_v)));
        }
    }
    lines
}

fn entity_lines(
    kind: &str,
    before: &BTreeMap<String, Value>,
    after: &BTreeMap<String, Value>,
    lines: &mut Vec<String>,
) {
    for id in before.keys().filter(|id| !after.contains_key(*id)) {
        lines.push(format!("- {kind} {id}"));
    }
    for (id, new) in after {
        let Some(old) = before.get(id) else {
            lines.push(format!("+ {kind} {id}"));
            continue;
        };
        for (field, new_v) in new.as_object().into_iter().flatten() {
            let old_v = old.get(field).cloned().unwrap_or(Value::Null);
            if &old_v != new_v {
                lines.push(format!(
                    "~ {kind} {id}: {field} {} -> {}",
                    text(&old_v),
                    text(new_v)
                ));
            }
        }
    }
}

fn to_value(c: &RoutingConfig) -> Value {
    serde_json::to_value(c).unwrap_or(Value::Null)
}

fn array(v: &Value, key: &str) -> Vec<Value> {
    v.get(key)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn id_of(v: &Value) -> String {
    match v.get("id") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

/// A value as one short line (strings unquoted, absent as "none").
fn text(v: &Value) -> String {
    match v {
        Value::Null => "none".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use acd_routing::{AgentDef, AgentId, QueueDef, SkillExpr, SkillId};

    fn config() -> RoutingConfig {
        RoutingConfig {
            queues: vec![QueueDef::new("sales", SkillExpr::Any)],
            agents: vec![AgentDef {
                id: AgentId("alice".into()),
                name: "Alice".into(),
                skills: vec![(SkillId("sales".into()), 5)],
                auto_answer: false,
            }],
            default_wrap_up_ms: 1000,
            offer_timeout_ms: 8000,
            extensions: Default::default(),
            not_ready_reasons: Vec::new(),
        }
    }

    #[test]
    fn one_line_per_change() {
        let old = config();
        let mut new = config();
        new.queues.push(QueueDef::new("vip", SkillExpr::Any));
        new.agents[0].name = "Alice B".into();
        new.default_wrap_up_ms = 2000;
        let d = diff(&old, &new);
        assert_eq!(
            d,
            vec![
                "~ agent alice: name Alice -> Alice B",
                "+ queue vip",
                "~ default_wrap_up_ms: 1000 -> 2000",
            ]
        );
        assert!(diff(&new, &new).is_empty());
        assert_eq!(diff(&new, &old)[1], "- queue vip");
    }
}
