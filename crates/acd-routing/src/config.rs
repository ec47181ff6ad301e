//! Configuration the shell builds from the TOML file and hands to [`crate::Core::new`].
//!
//! The configuration is part of the replicated state's meaning: leader and followers
//! start from the same file, and every change at run time (a supervisor adding an
//! agent, an admin applying a new file) is one [`crate::Event::ConfigChanged`] record
//! carrying the whole new configuration, so a follower and a replay switch at exactly
//! the same point of the log.

use crate::expr::SkillExpr;
use crate::ids::{AgentId, Extension, QueueId, SkillId};
use crate::strategy::Strategy;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Everything the routing core needs to know that only changes by a configuration event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingConfig {
    pub queues: Vec<QueueDef>,
    pub agents: Vec<AgentDef>,
    /// Wrap-up time for queues that do not set their own.
    pub default_wrap_up_ms: u64,
    /// How long the edge may take to report an answer (or a failure) for an offer
    /// before the core treats it as a ring-no-answer.
    pub offer_timeout_ms: u64,
    /// Extensions an agent may log in at (the site's SIP accounts). Empty: any
    /// (unit tests, sites without a registrar).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub extensions: BTreeSet<Extension>,
    /// Not-ready reason codes agents may give (besides the core's own `RONA`).
    /// Empty: any text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_ready_reasons: Vec<String>,
}

/// One queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueDef {
    pub id: QueueId,
    /// Which agents may take its calls, e.g. `lang_ru >= 1 AND billing >= 3 OR vip_desk`
    /// (a bare skill means level >= 1). [`SkillExpr::Any`]: every agent.
    #[serde(default)]
    pub skills: SkillExpr,
    /// Added to each call's own priority when calls of several queues compete for an
    /// agent (higher first).
    #[serde(default)]
    pub priority: i32,
    /// How its agents are chosen.
    #[serde(default)]
    pub strategy: Strategy,
    /// The service-level target: `percent` % of calls answered within `within_ms`.
    #[serde(default)]
    pub service_level: ServiceLevel,
    /// Overrides [`RoutingConfig::default_wrap_up_ms`].
    #[serde(default)]
    pub wrap_up_ms: Option<u64>,
    /// A call waiting longer than this runs the queue's overflow action
    /// ([`Overflow::max_wait`]), else leaves with [`crate::Event::CallTimedOut`].
    #[serde(default)]
    pub max_wait_ms: Option<u64>,
    /// Calls waiting at most; one more runs [`Overflow::full`].
    #[serde(default)]
    pub max_size: Option<u32>,
    /// Opening hours; outside them new calls run [`Overflow::closed`].
    #[serde(default)]
    pub hours: Option<BusinessHours>,
    /// Priority points a call gains per second waited (0: none), so long waits rise
    /// above newer higher-priority calls.
    #[serde(default)]
    pub aging_per_sec: u32,
    /// Relaxation steps in increasing `after_ms`, applied to calls already waiting.
    #[serde(default)]
    pub relax: Vec<RelaxStep>,
    /// What happens to a call the queue cannot serve.
    #[serde(default)]
    pub overflow: Overflow,
    /// Position and estimated-wait announcements (played by the edge).
    #[serde(default)]
    pub announce: Option<Announce>,
    /// How callbacks (virtual hold) from this queue are placed.
    #[serde(default)]
    pub callback: Option<CallbackPolicy>,
    /// Post-call survey: when the agent hangs up, the caller stays for this flow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub survey: Option<Survey>,
}

/// A post-call satisfaction survey run by the edge after the agent hangs up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Survey {
    /// The IVR flow (in `[flows]`) that asks; it stores the caller's 1–5 in the
    /// flow variable `survey_score`.
    pub flow: String,
}

/// `percent` % answered within `within_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceLevel {
    pub percent: u8,
    pub within_ms: u64,
}

impl Default for ServiceLevel {
    fn default() -> Self {
        ServiceLevel {
            percent: 80,
            within_ms: 20_000,
        }
    }
}

/// Opening hours in a time zone (same notation as the IVR's `hours` node).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusinessHours {
    /// IANA zone, e.g. `Europe/Moscow`.
    pub timezone: String,
    /// Day (`mon`) or days (`mon-fri`) → ranges `HH:MM-HH:MM`.
    pub weekly: std::collections::BTreeMap<String, Vec<String>>,
    /// `YYYY-MM-DD` or `YYYY-MM-DD..YYYY-MM-DD` (inclusive), closed all day.
    #[serde(default)]
    pub holidays: Vec<String>,
}

/// One relaxation step: once a call has waited `after_ms`, these apply to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelaxStep {
    pub after_ms: u64,
    /// Replaces the queue's expression (and drops the call's extra IVR skills), e.g.
    /// a lower proficiency or a second skill group.
    #[serde(default)]
    pub skills: Option<SkillExpr>,
    /// Added to the call's priority from this step on.
    #[serde(default)]
    pub priority_boost: i32,
    /// Leave the queue now with this action (the last step usually).
    #[serde(default)]
    pub overflow: Option<OverflowAction>,
}

/// Actions per reason a queue cannot serve a call. A missing action: the call is
/// queued and waits (closed, full, no agents: nothing is refused silently) or times
/// out (max wait). See the `overflow` module for the order of checks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overflow {
    #[serde(default)]
    pub closed: Option<OverflowAction>,
    #[serde(default)]
    pub full: Option<OverflowAction>,
    #[serde(default)]
    pub max_wait: Option<OverflowAction>,
    /// No eligible agent logged in (at enqueue, or when the last one logs out).
    #[serde(default)]
    pub no_agents: Option<OverflowAction>,
}

/// Where a call goes when its queue cannot serve it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverflowAction {
    /// Into another queue, keeping priority, data and its wait so far.
    Queue(QueueId),
    /// The edge transfers the caller to an external SIP URI (e.g. the night team).
    Uri(String),
    /// The edge plays this prompt, then hangs up.
    Message(String),
    /// The edge runs this IVR flow for the caller (e.g. a callback offer).
    Flow(String),
    /// The caller keeps their place as a callback to the caller's number.
    Callback,
}

/// Why an overflow action ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverflowReason {
    Closed,
    Full,
    MaxWait,
    NoAgents,
    /// A relaxation step's `overflow`.
    Relaxation,
    /// The queue was removed by a configuration change.
    QueueRemoved,
}

/// Position / estimated-wait announcements for waiting callers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announce {
    /// First announcement after this long, then every `every_ms`.
    pub every_ms: u64,
    #[serde(default = "yes")]
    pub position: bool,
    #[serde(default = "yes")]
    pub estimated_wait: bool,
}

fn yes() -> bool {
    true
}

/// How a callback is placed when its turn comes (an agent is reserved first).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackPolicy {
    /// The trunk (its name in the edge's `[[trunks]]`) the edge dials out through.
    /// Empty: the number is dialled as a SIP URI as is.
    #[serde(default)]
    pub trunk: String,
    /// Further attempts after a no-answer or busy.
    #[serde(default)]
    pub retries: u32,
    /// Wait between attempts.
    pub retry_after_ms: u64,
    /// How long the customer's phone rings per attempt.
    pub ring_ms: u64,
}

/// One agent (operator).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentDef {
    pub id: AgentId,
    pub name: String,
    #[serde(default)]
    pub skills: Vec<(SkillId, u8)>,
    /// The edge asks the agent's phone to answer by itself (Call-Info answer-after=0).
    #[serde(default)]
    pub auto_answer: bool,
}

/// A configuration the core would silently tolerate but that is almost certainly a mistake.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("queue `{0}` is defined more than once")]
    DuplicateQueue(QueueId),
    #[error("agent `{0}` is defined more than once")]
    DuplicateAgent(AgentId),
    #[error("offer_timeout_ms must be greater than zero")]
    ZeroOfferTimeout,
}

impl RoutingConfig {
    /// Checks what [`crate::Core::new`] would otherwise paper over (it keeps the first
    /// of duplicated ids). The shell calls this before applying a configuration.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut seen = BTreeSet::new();
        for q in &self.queues {
            if !seen.insert(&q.id) {
                return Err(ConfigError::DuplicateQueue(q.id.clone()));
            }
        }
        let mut seen = BTreeSet::new();
        for a in &self.agents {
            if !seen.insert(&a.id) {
                return Err(ConfigError::DuplicateAgent(a.id.clone()));
            }
        }
        if self.offer_timeout_ms == 0 {
            return Err(ConfigError::ZeroOfferTimeout);
        }
        Ok(())
    }
}

impl QueueDef {
    /// A queue with defaults for everything but its id and skills (tests, the shell).
    pub fn new(id: impl Into<QueueId>, skills: SkillExpr) -> Self {
        QueueDef {
            id: id.into(),
            skills,
            priority: 0,
            strategy: Strategy::default(),
            service_level: ServiceLevel::default(),
            wrap_up_ms: None,
            max_wait_ms: None,
            max_size: None,
            hours: None,
            aging_per_sec: 0,
            relax: Vec::new(),
            overflow: Overflow::default(),
            announce: None,
            callback: None,
            survey: None,
        }
    }

    /// Whether an agent with `skills` may take calls from this queue (before relaxation).
    pub fn accepts(&self, skills: &[(SkillId, u8)]) -> bool {
        self.skills.eval(skills)
    }
}

/// Whether `skills` has every skill of `required` at least at its level.
pub(crate) fn meets<'a>(
    mut required: impl Iterator<Item = (&'a SkillId, &'a u8)>,
    skills: &[(SkillId, u8)],
) -> bool {
    required.all(|(need, min)| {
        skills
            .iter()
            .any(|(have, level)| have == need && level >= min)
    })
}
