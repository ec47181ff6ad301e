//! TEMPORARY (branch h8-api): the two functions the supervisor API needs
//! from h8-replay's `routing` module, implemented minimally so this branch
//! builds and runs. At merge the lead keeps h8-replay's version of this file.
//!
//! - [`queue_from_toml`]: one `[[queues]]` table → `QueueDef` (id, skills as
//!   all-of, wrap-up).
//! - [`routing_config`]: a whole parsed config → `RoutingConfig`, as
//!   `acd_distributor::routing_config` builds it.

use acd_routing::{
    AgentDef, AgentId, Extension, QueueDef, QueueId, RoutingConfig, SkillExpr, SkillId,
};

use crate::{Config, ConfigError, ConfigErrors};

/// Extra time the core gives an offer beyond the edge's ring time (as the distributor).
const OFFER_GRACE_SECS: u64 = 5;

/// One queue in the `[[queues]]` syntax, e.g. `id = "vip"\nskills = { vip = 1 }`.
pub fn queue_from_toml(text: &str) -> Result<QueueDef, ConfigErrors> {
    let q: crate::QueueDef = toml_edit::de::from_str(text).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: "request".into(),
            line: None,
            key: String::new(),
            message: e.message().replace('\n', " "),
        }])
    })?;
    if q.id.trim().is_empty() {
        return Err(ConfigErrors(vec![ConfigError {
            file: "request".into(),
            line: None,
            key: "id".into(),
            message: "must not be empty".into(),
        }]));
    }
    Ok(queue_def(&q))
}

fn queue_def(q: &crate::QueueDef) -> QueueDef {
    let skills: Vec<(SkillId, u8)> = q
        .skills
        .iter()
        .map(|(k, v)| (SkillId(k.clone()), *v))
        .collect();
    QueueDef {
        id: QueueId(q.id.clone()),
        wrap_up_ms: q.wrap_up_secs.map(|s| s * 1000),
        ..QueueDef::new(
            q.id.as_str(),
            SkillExpr::all_of(skills.iter().map(|(k, v)| (k, *v))),
        )
    }
}

/// The routing core's configuration of a parsed config file.
pub fn routing_config(cfg: &Config) -> Result<RoutingConfig, ConfigErrors> {
    Ok(RoutingConfig {
        queues: cfg.queues.iter().map(queue_def).collect(),
        agents: cfg
            .agents
            .iter()
            .map(|a| AgentDef {
                id: AgentId(a.id.clone()),
                name: a.name.clone(),
                skills: a
                    .skills
                    .iter()
                    .map(|(k, v)| (SkillId(k.clone()), *v))
                    .collect(),
                auto_answer: false,
            })
            .collect(),
        default_wrap_up_ms: cfg.distributor.wrap_up_secs * 1000,
        offer_timeout_ms: (cfg.distributor.offer_timeout_secs + OFFER_GRACE_SECS) * 1000,
        extensions: cfg
            .extensions
            .iter()
            .map(|e| Extension(e.number.clone()))
            .collect(),
        not_ready_reasons: Vec::new(),
    })
}
