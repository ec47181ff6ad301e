//! The IVR interpreter: a pure function `step(flow, session, event)` that
//! returns the caller's next session state and the actions the edge must
//! carry out (play a prompt, collect digits, enqueue, hang up).
//!
//! The session lives with the caller at the edge and travels with every step,
//! so any runner can serve any step of any call, and a runner can be
//! restarted between two steps without the caller noticing.
//!
//! Data flow: edge → `Step(session, event)` → [`step`] → `(session', actions)` → edge.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

mod io;
mod validate;
pub use io::{Action, CollectSpec, Event, Session};
pub use validate::{validate, version, FlowIssue, Known};

/// A flow: a graph of nodes, entered at `start`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Flow {
    /// How the edge answers the call before the flow's prompts play.
    #[serde(default)]
    pub answer: AnswerMode,
    /// Node the caller enters first.
    pub start: String,
    /// Queue the edge uses when no IVR runner answers.
    pub fallback_queue: String,
    pub nodes: BTreeMap<String, Node>,
}

/// When the caller's leg is answered.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AnswerMode {
    /// 200 OK at once, prompts and music after it.
    #[default]
    Immediate,
    /// Prompts and music as early media (183); 200 OK only when an agent answers.
    Early,
}

/// One step of a flow.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Node {
    /// Play a prompt, then go to `next`.
    Play { prompt: String, next: String },
    /// Play a prompt and collect digits; branch on them.
    Menu {
        prompt: String,
        /// Digit string → next node.
        options: BTreeMap<String, String>,
        #[serde(default = "default_menu_timeout_ms")]
        timeout_ms: u32,
        /// Node for no input or an unknown choice once retries are used up.
        default: String,
        #[serde(default = "default_retries")]
        retries: u32,
    },
    /// Set a variable (e.g. language, priority) and go on.
    Set {
        var: String,
        value: String,
        next: String,
    },
    /// Put the caller in a queue; the flow ends here.
    Enqueue {
        queue: String,
        #[serde(default)]
        priority: i32,
    },
    /// End the call.
    Hangup {
        #[serde(default)]
        reason: String,
    },
}

fn default_menu_timeout_ms() -> u32 {
    5000
}
fn default_retries() -> u32 {
    2
}

impl Node {
    /// Every node name this node can lead to, for validating a flow.
    pub fn successors(&self) -> Vec<&str> {
        match self {
            Node::Play { next, .. } | Node::Set { next, .. } => vec![next],
            Node::Menu {
                options, default, ..
            } => options
                .values()
                .map(String::as_str)
                .chain([default.as_str()])
                .collect(),
            Node::Enqueue { .. } | Node::Hangup { .. } => vec![],
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StepError {
    #[error("flow has no node `{0}`")]
    UnknownNode(String),
    #[error("event {event:?} does not fit node `{node}`")]
    UnexpectedEvent { node: String, event: Event },
}

/// Bounds `Set` chains so a flow with a cycle of `set` nodes cannot spin.
const MAX_TRANSITIONS_PER_STEP: usize = 64;

/// What a step may read besides the flow, the session and the event; passed
/// in by the runner so the step stays pure (and tests can set the clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepEnv {
    /// Wall-clock time, Unix milliseconds (UTC).
    pub now_unix_ms: i64,
}

/// Advances `session` by one event. Pure: the same inputs give the same outputs.
pub fn step(
    flow: &Flow,
    mut session: Session,
    event: Event,
    _env: &StepEnv,
) -> Result<(Session, Vec<Action>), StepError> {
    let current = std::mem::take(&mut session.node);
    let next = match (&event, current.as_str()) {
        (Event::Started { .. }, _) => flow.start.clone(),
        (_, "") => {
            return Err(StepError::UnexpectedEvent {
                node: current,
                event,
            })
        }
        (_, current) => {
            let node = lookup(flow, current)?;
            transition(node, current, &mut session, event)?
        }
    };
    let actions = enter(flow, &mut session, next)?;
    Ok((session, actions))
}

/// Where an event at the current node leads.
fn transition(
    node: &Node,
    current: &str,
    session: &mut Session,
    event: Event,
) -> Result<String, StepError> {
    match (node, event) {
        (Node::Play { next, .. }, Event::PromptFinished) => Ok(next.clone()),
        (
            Node::Menu {
                options,
                default,
                retries,
                ..
            },
            event @ (Event::Digits { .. } | Event::NoInput),
        ) => {
            if let Event::Digits { digits: d } = &event {
                if let Some(next) = options.get(d) {
                    session.variables.remove(&retry_key(current));
                    return Ok(next.clone());
                }
            }
            let key = retry_key(current);
            let tries: u32 = session
                .variables
                .get(&key)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if tries >= *retries {
                session.variables.remove(&key);
                Ok(default.clone())
            } else {
                session.variables.insert(key, (tries + 1).to_string());
                Ok(current.to_string())
            }
        }
        // The menu prompt finished: keep waiting for digits.
        (Node::Menu { .. }, Event::PromptFinished) => Ok(current.to_string()),
        (_, event) => Err(StepError::UnexpectedEvent {
            node: current.to_string(),
            event,
        }),
    }
}

fn retry_key(node: &str) -> String {
    format!("_retries.{node}")
}

/// Enters `name`, following `set` nodes, and returns the actions it asks for.
fn enter(flow: &Flow, session: &mut Session, mut name: String) -> Result<Vec<Action>, StepError> {
    for _ in 0..MAX_TRANSITIONS_PER_STEP {
        let node = lookup(flow, &name)?;
        session.node = name.clone();
        match node {
            Node::Set { var, value, next } => {
                session.variables.insert(var.clone(), value.clone());
                name = next.clone();
            }
            Node::Play { prompt, .. } => {
                return Ok(vec![Action::Play {
                    prompts: vec![prompt.clone()],
                    barge_in: false,
                }])
            }
            Node::Menu {
                prompt,
                timeout_ms,
                options,
                ..
            } => {
                let max_digits = options.keys().map(|k| k.len()).max().unwrap_or(1) as u32;
                return Ok(vec![
                    Action::Play {
                        prompts: vec![prompt.clone()],
                        barge_in: true,
                    },
                    Action::Collect(CollectSpec {
                        min_digits: 1,
                        max_digits,
                        terminator: Some('#'),
                        first_digit_timeout_ms: *timeout_ms,
                        inter_digit_timeout_ms: *timeout_ms,
                    }),
                ]);
            }
            Node::Enqueue { queue, priority } => {
                let priority = session
                    .variables
                    .get("priority")
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(*priority);
                return Ok(vec![Action::Enqueue {
                    queue: queue.clone(),
                    priority,
                    skills: BTreeMap::new(),
                    data: BTreeMap::new(),
                }]);
            }
            Node::Hangup { reason } => {
                return Ok(vec![Action::Hangup {
                    reason: reason.clone(),
                }])
            }
        }
    }
    Ok(vec![Action::Hangup {
        reason: format!("flow loops through set nodes at `{name}`"),
    }])
}

fn lookup<'f>(flow: &'f Flow, name: &str) -> Result<&'f Node, StepError> {
    flow.nodes
        .get(name)
        .ok_or_else(|| StepError::UnknownNode(name.to_string()))
}

#[cfg(test)]
mod tests;
