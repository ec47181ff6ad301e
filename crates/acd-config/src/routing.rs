//! The queue model of `[[queues]]` (skill expressions, strategy, service level,
//! hours, relaxation, overflow, announcements, callbacks, survey) and its translation into
//! the routing core's [`acd_routing::RoutingConfig`].
//!
//! The TOML speaks seconds and names; the core speaks milliseconds and typed ids.
//! Checking and translating are one pass ([`build`]), so what `acd check-config`
//! accepts is exactly what the distributor runs.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use acd_routing::{
    Announce, BusinessHours, CallbackPolicy, Overflow, OverflowAction, QueueId, RelaxStep,
    RoutingConfig, ServiceLevel, SkillExpr, SkillId,
};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use crate::locate::{self, Seg};
use crate::{Config, ConfigError, ConfigErrors};

/// `skills = { sales = 1 }` (every skill at least at its level) or
/// `skills = "lang_ru >= 1 AND billing >= 3 OR vip_desk"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkillsSpec {
    Levels(BTreeMap<String, u8>),
    Expr(String),
}

impl Default for SkillsSpec {
    fn default() -> Self {
        SkillsSpec::Levels(BTreeMap::new())
    }
}

impl<'de> Deserialize<'de> for SkillsSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SkillsSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a table of skill = level or a skill expression string")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<SkillsSpec, E> {
                Ok(SkillsSpec::Expr(s.to_string()))
            }
            fn visit_map<M: MapAccess<'de>>(self, m: M) -> Result<SkillsSpec, M::Error> {
                BTreeMap::deserialize(de::value::MapAccessDeserializer::new(m))
                    .map(SkillsSpec::Levels)
            }
        }
        d.deserialize_any(V)
    }
}

/// `service_level = { percent = 80, within_secs = 20 }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceLevelDef {
    pub percent: u8,
    pub within_secs: u64,
}

/// `hours = { timezone = "Europe/Moscow", weekly = { "mon-fri" = ["09:00-18:00"] } }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoursDef {
    pub timezone: String,
    pub weekly: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub holidays: Vec<String>,
}

/// One of `queue`, `uri`, `message`, `flow`, `callback = true`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionDef {
    pub queue: Option<String>,
    pub uri: Option<String>,
    pub message: Option<String>,
    pub flow: Option<String>,
    pub callback: Option<bool>,
}

/// `relax = [{ after_secs = 30, skills = "support >= 1", priority_boost = 1 }]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelaxDef {
    pub after_secs: u64,
    pub skills: Option<String>,
    #[serde(default)]
    pub priority_boost: i32,
    pub overflow: Option<ActionDef>,
}

/// `overflow = { closed = {…}, full = {…}, max_wait = {…}, no_agents = {…} }`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverflowDef {
    pub closed: Option<ActionDef>,
    pub full: Option<ActionDef>,
    pub max_wait: Option<ActionDef>,
    pub no_agents: Option<ActionDef>,
}

/// `announce = { every_secs = 30, position = true, estimated_wait = true }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnnounceDef {
    pub every_secs: u64,
    #[serde(default = "yes")]
    pub position: bool,
    #[serde(default = "yes")]
    pub estimated_wait: bool,
}

fn yes() -> bool {
    true
}

/// `callback = { trunk = "carrier", retries = 2, retry_after_secs = 300, ring_secs = 30 }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallbackDef {
    #[serde(default)]
    pub trunk: String,
    #[serde(default)]
    pub retries: u32,
    #[serde(default = "default_retry_after")]
    pub retry_after_secs: u64,
    #[serde(default = "default_ring")]
    pub ring_secs: u64,
}

/// `survey = { flow = "survey" }`: when the agent hangs up, the caller stays
/// for this IVR flow, which stores a 1–5 answer in `survey_score`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SurveyDef {
    pub flow: String,
}

fn default_retry_after() -> u64 {
    300
}

fn default_ring() -> u64 {
    30
}

/// The routing core's configuration for a loaded (validated) config.
pub fn routing_config(cfg: &Config) -> Result<RoutingConfig, ConfigErrors> {
    let (rc, errors) = build(cfg, "", "<config>");
    if errors.is_empty() {
        Ok(rc)
    } else {
        Err(ConfigErrors(errors))
    }
}

/// Like [`routing_config`], but always gives a configuration: parts in error are
/// left at their defaults (a config that passed [`crate::parse`] has none).
pub fn routing_config_lossy(cfg: &Config) -> (RoutingConfig, Vec<ConfigError>) {
    build(cfg, "", "<config>")
}

/// One queue table (the text of one `[[queues]]` element, without the header),
/// for the supervisor API's UpsertQueue. References to other queues, flows,
/// prompts and trunks are not checked: see [`queue_from_toml_in`].
pub fn queue_from_toml(text: &str) -> Result<acd_routing::QueueDef, ConfigErrors> {
    queue_in(text, None)
}

/// [`queue_from_toml`], checking the queue's references against `cfg`.
pub fn queue_from_toml_in(text: &str, cfg: &Config) -> Result<acd_routing::QueueDef, ConfigErrors> {
    queue_in(text, Some(cfg))
}

const QUEUE_ORIGIN: &str = "<queue>";

fn queue_in(text: &str, cfg: Option<&Config>) -> Result<acd_routing::QueueDef, ConfigErrors> {
    let q: crate::QueueDef = toml_edit::de::from_str(text)
        .map_err(|e| ConfigErrors(vec![crate::de_error(text, QUEUE_ORIGIN, &e)]))?;
    let refs = cfg.map(Refs::of);
    let mut b = Builder {
        text,
        name: QUEUE_ORIGIN,
        refs: refs.as_ref(),
        errors: Vec::new(),
    };
    let def = b.queue(&q, &[]);
    if b.errors.is_empty() {
        Ok(def)
    } else {
        Err(ConfigErrors(b.errors))
    }
}

/// What actions may refer to.
struct Refs {
    queues: BTreeSet<String>,
    flows: BTreeSet<String>,
    prompts: BTreeSet<String>,
    trunks: BTreeSet<String>,
}

impl Refs {
    fn of(c: &Config) -> Refs {
        Refs {
            queues: c.queues.iter().map(|q| q.id.clone()).collect(),
            flows: c.flows.keys().cloned().collect(),
            prompts: c.prompt_names().into_keys().collect(),
            trunks: c.trunks.iter().map(|t| t.name.clone()).collect(),
        }
    }

    /// A prompt as a flow names it: as is, or in some language's set.
    fn has_prompt(&self, name: &str) -> bool {
        self.prompts.contains(name)
            || self
                .prompts
                .iter()
                .any(|p| p.split_once('/').is_some_and(|(_, n)| n == name))
    }
}

/// Checks the routing part of `c` and translates it; errors are located in `text`.
pub(crate) fn build(c: &Config, text: &str, name: &str) -> (RoutingConfig, Vec<ConfigError>) {
    let refs = Refs::of(c);
    let mut b = Builder {
        text,
        name,
        refs: Some(&refs),
        errors: Vec::new(),
    };
    let queues = c
        .queues
        .iter()
        .enumerate()
        .map(|(i, q)| b.queue(q, &[Seg::Key("queues"), Seg::Index(i)]))
        .collect();
    b.reasons(&c.distributor.not_ready_reasons);
    let agents = c
        .agents
        .iter()
        .map(|a| acd_routing::AgentDef {
            id: acd_routing::AgentId(a.id.clone()),
            name: a.name.clone(),
            skills: levels(&a.skills),
            auto_answer: a.auto_answer,
        })
        .collect();
    let rc = RoutingConfig {
        queues,
        agents,
        default_wrap_up_ms: c.distributor.wrap_up_secs.saturating_mul(1000),
        offer_timeout_ms: c.distributor.offer_timeout_secs.saturating_mul(1000),
        extensions: c
            .extensions
            .iter()
            .map(|e| acd_routing::Extension(e.number.clone()))
            .collect(),
        not_ready_reasons: c.distributor.not_ready_reasons.clone(),
    };
    (rc, b.errors)
}

fn levels(m: &BTreeMap<String, u8>) -> Vec<(SkillId, u8)> {
    m.iter().map(|(k, v)| (SkillId(k.clone()), *v)).collect()
}

fn secs(s: u64) -> u64 {
    s.saturating_mul(1000)
}

struct Builder<'a> {
    text: &'a str,
    name: &'a str,
    refs: Option<&'a Refs>,
    errors: Vec<ConfigError>,
}

impl Builder<'_> {
    fn push(&mut self, path: &[Seg], message: String) {
        self.errors
            .push(locate::error(self.text, self.name, path, message));
    }

    fn queue(&mut self, q: &crate::QueueDef, at: &[Seg]) -> acd_routing::QueueDef {
        let path = |key: &'static str| [at, &[Seg::Key(key)]].concat();
        let skills = self.skills(&q.skills, &path("skills"));
        let mut def = acd_routing::QueueDef::new(q.id.as_str(), skills);
        def.priority = q.priority;
        def.strategy = q.strategy;
        def.wrap_up_ms = q.wrap_up_secs.map(secs);
        def.aging_per_sec = q.aging_per_sec;
        if let Some(sl) = &q.service_level {
            def.service_level = self.service_level(sl, &path("service_level"));
        }
        def.max_wait_ms = self
            .positive(q.max_wait_secs, &path("max_wait_secs"))
            .map(secs);
        def.max_size = self
            .positive(q.max_size.map(u64::from), &path("max_size"))
            .and(q.max_size);
        def.hours = q.hours.as_ref().map(|h| self.hours(h, &path("hours")));
        def.relax = self.relax(&q.relax, q.id.as_str(), &path("relax"));
        def.overflow = self.overflow(&q.overflow, q.id.as_str(), &path("overflow"));
        def.announce = q.announce.as_ref().and_then(|a| {
            let every = self.positive(
                Some(a.every_secs),
                &[&path("announce")[..], &[Seg::Key("every_secs")]].concat(),
            )?;
            Some(Announce {
                every_ms: secs(every),
                position: a.position,
                estimated_wait: a.estimated_wait,
            })
        });
        def.callback = q
            .callback
            .as_ref()
            .map(|cb| self.callback(cb, &path("callback")));
        def.survey = q
            .survey
            .as_ref()
            .and_then(|s| self.survey(s, &path("survey")));
        def
    }

    /// The survey's flow must exist (when the config is known).
    fn survey(&mut self, s: &SurveyDef, path: &[Seg]) -> Option<acd_routing::Survey> {
        let known = self.refs.is_none_or(|r| r.flows.contains(&s.flow));
        if s.flow.is_empty() || !known {
            let p = [path, &[Seg::Key("flow")]].concat();
            self.push(
                &p,
                format!("no flow `{}` in [flows] or [ivr] flows_dir", s.flow),
            );
            return None;
        }
        Some(acd_routing::Survey {
            flow: s.flow.clone(),
        })
    }

    /// `Some(v)` when `v` is at least 1; an error (and `None`) for 0.
    fn positive(&mut self, v: Option<u64>, path: &[Seg]) -> Option<u64> {
        match v {
            Some(0) => {
                self.push(path, "must be at least 1".to_string());
                None
            }
            other => other,
        }
    }

    fn skills(&mut self, spec: &SkillsSpec, path: &[Seg]) -> SkillExpr {
        match spec {
            SkillsSpec::Levels(m) => {
                for (skill, level) in m {
                    if !(1..=10).contains(level) {
                        let p = [path, &[Seg::Key(skill)]].concat();
                        self.push(&p, format!("proficiency {level} is outside 1-10"));
                    }
                }
                let ls = levels(m);
                SkillExpr::all_of(ls.iter().map(|(k, v)| (k, *v)))
            }
            SkillsSpec::Expr(text) => self.expr(text, path),
        }
    }

    /// Parses an expression; an error names the column in the file when the
    /// string can be found there (else the column within the expression).
    fn expr(&mut self, text: &str, path: &[Seg]) -> SkillExpr {
        match SkillExpr::parse(text) {
            Ok(e) => e,
            Err(e) => {
                let message = match self.file_column(path, e.at) {
                    Some(col) => {
                        format!("skill expression `{text}`: {} at column {col}", e.message)
                    }
                    None => e.to_string(),
                };
                self.push(path, message);
                SkillExpr::Any
            }
        }
    }

    /// 1-based column in the file of byte `at` of the string value at `path`
    /// (exact for strings without escapes, which expressions never need).
    fn file_column(&self, path: &[Seg], at: usize) -> Option<usize> {
        let span = locate::value_span(self.text, path)?;
        let quote = usize::from(self.text.get(span.start..)?.starts_with(['"', '\'']));
        let pos = span.start + quote + at;
        let line_start = self.text.get(..pos)?.rfind('\n').map_or(0, |i| i + 1);
        Some(pos - line_start + 1)
    }

    fn service_level(&mut self, sl: &ServiceLevelDef, path: &[Seg]) -> ServiceLevel {
        if !(1..=100).contains(&sl.percent) {
            let p = [path, &[Seg::Key("percent")]].concat();
            self.push(&p, format!("{} is outside 1-100", sl.percent));
        }
        let p = [path, &[Seg::Key("within_secs")]].concat();
        let within = self.positive(Some(sl.within_secs), &p).unwrap_or(20);
        ServiceLevel {
            percent: sl.percent.min(100),
            within_ms: secs(within),
        }
    }

    fn hours(&mut self, h: &HoursDef, path: &[Seg]) -> BusinessHours {
        if let Err(e) = acd_ivr::calendar::local(&h.timezone, 0) {
            self.push(&[path, &[Seg::Key("timezone")]].concat(), e);
        }
        if h.weekly.is_empty() {
            let p = [path, &[Seg::Key("weekly")]].concat();
            self.push(
                &p,
                "names no open hours (the queue would always be closed)".into(),
            );
        }
        for (days, ranges) in &h.weekly {
            let p = [path, &[Seg::Key("weekly"), Seg::Key(days)]].concat();
            if let Err(e) = acd_ivr::calendar::parse_days(days) {
                self.push(&p, e);
            }
            for r in ranges {
                if let Err(e) = acd_ivr::calendar::parse_range(r) {
                    self.push(&p, e);
                }
            }
        }
        for (i, spec) in h.holidays.iter().enumerate() {
            if let Err(e) = acd_ivr::calendar::parse_holiday(spec) {
                self.push(&[path, &[Seg::Key("holidays"), Seg::Index(i)]].concat(), e);
            }
        }
        BusinessHours {
            timezone: h.timezone.clone(),
            weekly: h.weekly.clone(),
            holidays: h.holidays.clone(),
        }
    }

    fn relax(&mut self, steps: &[RelaxDef], queue: &str, path: &[Seg]) -> Vec<RelaxStep> {
        let mut last = None;
        let mut out = Vec::new();
        for (i, s) in steps.iter().enumerate() {
            let at = [path, &[Seg::Index(i)]].concat();
            let key = |k: &'static str| [&at[..], &[Seg::Key(k)]].concat();
            if last.is_some_and(|l| s.after_secs <= l) {
                self.push(
                    &key("after_secs"),
                    "must be later than the previous step's".into(),
                );
            }
            last = Some(s.after_secs);
            if s.skills.is_none() && s.priority_boost == 0 && s.overflow.is_none() {
                self.push(
                    &at,
                    "changes nothing (give skills, priority_boost or overflow)".into(),
                );
            }
            let skills = s.skills.as_deref().map(|e| self.expr(e, &key("skills")));
            let overflow = s
                .overflow
                .as_ref()
                .and_then(|a| self.action(a, queue, &key("overflow")));
            out.push(RelaxStep {
                after_ms: secs(s.after_secs),
                skills,
                priority_boost: s.priority_boost,
                overflow,
            });
        }
        out
    }

    fn overflow(&mut self, o: &OverflowDef, queue: &str, path: &[Seg]) -> Overflow {
        let mut one = |a: &Option<ActionDef>, key: &'static str| {
            let p = [path, &[Seg::Key(key)]].concat();
            a.as_ref().and_then(|a| self.action(a, queue, &p))
        };
        Overflow {
            closed: one(&o.closed, "closed"),
            full: one(&o.full, "full"),
            max_wait: one(&o.max_wait, "max_wait"),
            no_agents: one(&o.no_agents, "no_agents"),
        }
    }

    /// Exactly one of the action's keys, its reference checked.
    fn action(&mut self, a: &ActionDef, queue: &str, path: &[Seg]) -> Option<OverflowAction> {
        let mut set = Vec::new();
        if let Some(q) = &a.queue {
            set.push(("queue", OverflowAction::Queue(QueueId(q.clone()))));
        }
        if let Some(u) = &a.uri {
            set.push(("uri", OverflowAction::Uri(u.clone())));
        }
        if let Some(m) = &a.message {
            set.push(("message", OverflowAction::Message(m.clone())));
        }
        if let Some(f) = &a.flow {
            set.push(("flow", OverflowAction::Flow(f.clone())));
        }
        match a.callback {
            Some(true) => set.push(("callback", OverflowAction::Callback)),
            Some(false) => {
                let p = [path, &[Seg::Key("callback")]].concat();
                self.push(&p, "only `callback = true` is an action".into());
                return None;
            }
            None => {}
        }
        if set.len() != 1 {
            self.push(
                path,
                "give exactly one of queue, uri, message, flow, callback = true".into(),
            );
            return None;
        }
        let (key, action) = set.pop()?;
        let p = [path, &[Seg::Key(key)]].concat();
        match self.bad_reference(&action, queue) {
            Some(message) => {
                self.push(&p, message);
                None
            }
            None => Some(action),
        }
    }

    fn bad_reference(&self, action: &OverflowAction, queue: &str) -> Option<String> {
        match action {
            OverflowAction::Queue(q) if q.as_str() == queue => {
                Some(format!("queue `{q}` overflows to itself"))
            }
            OverflowAction::Uri(u)
                if !["sip:", "sips:", "tel:"].iter().any(|s| u.starts_with(s)) =>
            {
                Some(format!("`{u}` is not a sip:, sips: or tel: URI"))
            }
            _ => {
                let refs = self.refs?;
                match action {
                    OverflowAction::Queue(q) if !refs.queues.contains(q.as_str()) => {
                        Some(format!("no queue `{q}` in [[queues]]"))
                    }
                    OverflowAction::Flow(f) if !refs.flows.contains(f) => {
                        Some(format!("no flow `{f}` in [flows] or [ivr] flows_dir"))
                    }
                    OverflowAction::Message(m) if !refs.has_prompt(m) => {
                        Some(format!("no prompt `{m}` in [prompts] or a prompt set"))
                    }
                    _ => None,
                }
            }
        }
    }

    fn callback(&mut self, cb: &CallbackDef, path: &[Seg]) -> CallbackPolicy {
        let key = |k: &'static str| [path, &[Seg::Key(k)]].concat();
        let known = self.refs.is_none_or(|r| r.trunks.contains(&cb.trunk));
        if !cb.trunk.is_empty() && !known {
            self.push(
                &key("trunk"),
                format!("no trunk `{}` in [[trunks]]", cb.trunk),
            );
        }
        let retry = self
            .positive(Some(cb.retry_after_secs), &key("retry_after_secs"))
            .unwrap_or(default_retry_after());
        let ring = self
            .positive(Some(cb.ring_secs), &key("ring_secs"))
            .unwrap_or(default_ring());
        CallbackPolicy {
            trunk: cb.trunk.clone(),
            retries: cb.retries,
            retry_after_ms: secs(retry),
            ring_ms: secs(ring),
        }
    }

    fn reasons(&mut self, reasons: &[String]) {
        let mut seen = BTreeSet::new();
        for (i, r) in reasons.iter().enumerate() {
            let p = [
                Seg::Key("distributor"),
                Seg::Key("not_ready_reasons"),
                Seg::Index(i),
            ];
            if r.trim().is_empty() {
                self.push(&p, "must not be empty".into());
            } else if r == acd_routing::RONA_REASON {
                self.push(&p, "`RONA` is the distributor's own reason".into());
            } else if !seen.insert(r) {
                self.push(&p, format!("`{r}` is listed twice"));
            }
        }
    }
}

#[cfg(test)]
#[path = "tests_routing.rs"]
mod tests;
