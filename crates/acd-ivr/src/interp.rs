//! The step function: react to the event at the current node, then enter
//! nodes until one waits for the caller (or the runner, for a lookup).

use std::collections::BTreeMap;

use crate::calendar::{self, Hours};
use crate::flow::{Flow, Node, SayItem};
use crate::io::{Action, CollectSpec, Event, Session};
use crate::{say, template, vars};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StepError {
    #[error("flow has no node `{0}`")]
    UnknownNode(String),
    #[error("event {event:?} does not fit node `{node}`")]
    UnexpectedEvent { node: String, event: Event },
}

/// Bounds chains of nodes that take no input (set, branch, hours…) so a
/// flow with such a cycle cannot spin; validation refuses those cycles too.
const MAX_TRANSITIONS_PER_STEP: usize = 64;

/// What a step may read besides the flow, the session and the event; passed
/// in by the runner so the step stays pure (and tests can set the clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepEnv {
    /// Wall-clock time, Unix milliseconds (UTC).
    pub now_unix_ms: i64,
}

/// Where the flow goes after an event.
enum Move {
    /// Same node; whatever actions were pushed (maybe none) are the answer.
    Stay,
    To(String),
}

/// Advances `session` by one event. Pure: the same inputs give the same outputs.
pub fn step(
    flow: &Flow,
    mut session: Session,
    event: Event,
    env: &StepEnv,
) -> Result<(Session, Vec<Action>), StepError> {
    let mut out = Vec::new();
    let next = match event {
        Event::Started {
            did,
            caller,
            caller_name,
        } => {
            session.variables = BTreeMap::from([
                (vars::CALLER.to_string(), caller),
                (vars::DID.to_string(), did),
                (vars::CALLER_NAME.to_string(), caller_name),
                (vars::LANGUAGE.to_string(), flow.default_language.clone()),
            ]);
            flow.start.clone()
        }
        event if session.node.is_empty() => {
            return Err(StepError::UnexpectedEvent {
                node: String::new(),
                event,
            })
        }
        event => {
            let current = session.node.clone();
            let node = get(flow, &current)?;
            match react(flow, node, &current, &mut session, event, &mut out)? {
                Move::Stay => return Ok((session, out)),
                Move::To(next) => next,
            }
        }
    };
    enter(flow, &mut session, next, env, &mut out)?;
    Ok((session, out))
}

/// The prompt name the edge plays for `name`: as it is when the flow lists
/// it as neutral or it already has a `/` (`ru/welcome`, a fixed language);
/// otherwise `<language>/<name>` with the session's language.
pub fn prompt_name(flow: &Flow, session: &Session, name: &str) -> String {
    if name.contains('/') || flow.neutral_prompts.iter().any(|n| n == name) {
        name.to_string()
    } else {
        format!("{}/{name}", language(flow, session))
    }
}

fn language<'a>(flow: &'a Flow, session: &'a Session) -> &'a str {
    session
        .variables
        .get(vars::LANGUAGE)
        .filter(|l| !l.is_empty())
        .unwrap_or(&flow.default_language)
}

fn get<'f>(flow: &'f Flow, name: &str) -> Result<&'f Node, StepError> {
    flow.nodes
        .get(name)
        .ok_or_else(|| StepError::UnknownNode(name.to_string()))
}

/// What an event at the current node leads to.
fn react(
    flow: &Flow,
    node: &Node,
    current: &str,
    session: &mut Session,
    event: Event,
    out: &mut Vec<Action>,
) -> Result<Move, StepError> {
    if let Some(ask) = Ask::of(node) {
        return match event {
            // The prompt of a node that collects ended: the digit deadline
            // runs at the edge; replaying here would loop forever.
            Event::PromptFinished => Ok(Move::Stay),
            Event::Digits { digits } => Ok(answer(
                flow,
                node,
                &ask,
                current,
                session,
                Some(&digits),
                out,
            )),
            Event::NoInput => Ok(answer(flow, node, &ask, current, session, None, out)),
            event => Err(unexpected(current, event)),
        };
    }
    let vars = &mut session.variables;
    let moved = match (node, event) {
        (Node::Play { next, .. } | Node::Say { next, .. }, Event::PromptFinished) => {
            Move::To(next.clone())
        }
        (Node::Voicemail { .. }, Event::PromptFinished) => {
            out.push(record(node));
            Move::Stay
        }
        (Node::Voicemail { var, next, .. }, Event::Recorded { file, .. }) => {
            vars.insert(var.clone(), file);
            Move::To(next.clone())
        }
        (Node::Voicemail { fallback, .. }, Event::RecordFailed { reason }) => {
            vars.insert(vars::ERROR.into(), reason);
            Move::To(fallback.clone())
        }
        (
            Node::Transfer {
                uri, timeout_ms, ..
            },
            Event::PromptFinished,
        ) => {
            out.push(Action::Transfer {
                uri: template::expand(uri, vars),
                timeout_ms: *timeout_ms,
            });
            Move::Stay
        }
        (Node::Transfer { on_fail, .. }, Event::TransferFailed { sip_status, reason }) => {
            vars.insert(vars::ERROR.into(), format!("{sip_status} {reason}"));
            Move::To(on_fail.clone())
        }
        (Node::Hangup { reason, .. }, Event::PromptFinished) => {
            out.push(Action::Hangup {
                reason: reason.clone(),
            });
            Move::Stay
        }
        (
            Node::Lookup {
                fields,
                on_status,
                next,
                fallback,
                ..
            },
            Event::LookupDone {
                http_status,
                fields: got,
            },
        ) => {
            vars.insert(vars::LOOKUP_STATUS.into(), http_status.to_string());
            let ok = (200..300).contains(&http_status);
            if ok {
                for (field, var) in fields {
                    vars.insert(var.clone(), got.get(field).cloned().unwrap_or_default());
                }
            }
            let to = match on_status.get(&http_status.to_string()) {
                Some(to) => to,
                None if ok => next,
                None => fallback,
            };
            Move::To(to.clone())
        }
        (Node::Lookup { fallback, .. }, Event::LookupFailed { reason }) => {
            vars.insert(vars::LOOKUP_STATUS.into(), "0".into());
            vars.insert(vars::ERROR.into(), reason);
            Move::To(fallback.clone())
        }
        (_, event) => return Err(unexpected(current, event)),
    };
    Ok(moved)
}

fn unexpected(node: &str, event: Event) -> StepError {
    StepError::UnexpectedEvent {
        node: node.to_string(),
        event,
    }
}

/// The shared shape of nodes that play a prompt and collect digits.
struct Ask<'a> {
    prompt: &'a str,
    no_input_prompt: Option<&'a str>,
    invalid_prompt: Option<&'a str>,
    retries: u32,
    barge_in: bool,
    spec: CollectSpec,
}

impl<'a> Ask<'a> {
    fn of(node: &'a Node) -> Option<Ask<'a>> {
        let choice = |options: &BTreeMap<String, String>, timeout_ms: u32| {
            let max = options.keys().map(|k| k.len()).max().unwrap_or(1).max(1);
            CollectSpec {
                min_digits: 1,
                max_digits: u32::try_from(max).unwrap_or(u32::MAX),
                terminator: Some('#').filter(|_| !options.keys().any(|k| k.contains('#'))),
                first_digit_timeout_ms: timeout_ms,
                inter_digit_timeout_ms: timeout_ms,
            }
        };
        let ask = |prompt: &'a String,
                   no_input: &'a Option<String>,
                   invalid: &'a Option<String>,
                   retries: &u32,
                   barge_in: &bool,
                   spec| Ask {
            prompt,
            no_input_prompt: no_input.as_deref(),
            invalid_prompt: invalid.as_deref(),
            retries: *retries,
            barge_in: *barge_in,
            spec,
        };
        let ask = match node {
            Node::Menu {
                prompt,
                options,
                timeout_ms,
                retries,
                no_input_prompt,
                invalid_prompt,
                barge_in,
                ..
            }
            | Node::Language {
                prompt,
                options,
                timeout_ms,
                retries,
                no_input_prompt,
                invalid_prompt,
                barge_in,
                ..
            } => ask(
                prompt,
                no_input_prompt,
                invalid_prompt,
                retries,
                barge_in,
                choice(options, *timeout_ms),
            ),
            Node::Collect {
                prompt,
                min_length,
                max_length,
                terminator,
                timeout_ms,
                inter_digit_timeout_ms,
                retries,
                no_input_prompt,
                invalid_prompt,
                barge_in,
                ..
            } => ask(
                prompt,
                no_input_prompt,
                invalid_prompt,
                retries,
                barge_in,
                CollectSpec {
                    min_digits: *min_length,
                    max_digits: *max_length,
                    terminator: terminator.chars().next(),
                    first_digit_timeout_ms: *timeout_ms,
                    inter_digit_timeout_ms: *inter_digit_timeout_ms,
                },
            ),
            _ => return None,
        };
        Some(ask)
    }

    /// The prompt (after a retry prompt, if any) and the collection.
    fn actions(&self, flow: &Flow, session: &Session, before: Option<&str>) -> [Action; 2] {
        let prompts = before
            .into_iter()
            .chain([self.prompt])
            .map(|p| prompt_name(flow, session, p))
            .collect();
        [
            Action::Play {
                prompts,
                barge_in: self.barge_in,
            },
            Action::Collect(self.spec.clone()),
        ]
    }
}

fn retry_key(node: &str) -> String {
    format!("_retries.{node}")
}

/// Digits (or none) at a node that asked: the chosen node, a retry, or the
/// node's fallback once retries are used up.
fn answer(
    flow: &Flow,
    node: &Node,
    ask: &Ask<'_>,
    current: &str,
    session: &mut Session,
    digits: Option<&str>,
    out: &mut Vec<Action>,
) -> Move {
    let vars = &mut session.variables;
    let chosen = digits.and_then(|d| match node {
        Node::Menu { options, .. } => options.get(d).cloned(),
        Node::Language { options, next, .. } => options.get(d).map(|lang| {
            vars.insert(vars::LANGUAGE.into(), lang.clone());
            next.clone()
        }),
        Node::Collect {
            var,
            min_length,
            max_length,
            pattern,
            next,
            ..
        } => collected_ok(d, *min_length, *max_length, pattern.as_deref()).then(|| {
            vars.insert(var.clone(), d.to_string());
            next.clone()
        }),
        _ => None,
    });
    let key = retry_key(current);
    if let Some(next) = chosen {
        vars.remove(&key);
        return Move::To(next);
    }
    let tries: u32 = vars.get(&key).and_then(|v| v.parse().ok()).unwrap_or(0);
    if tries >= ask.retries {
        vars.remove(&key);
        let fallback = match node {
            Node::Menu { default, .. } => default,
            Node::Collect { fallback, .. } => fallback,
            // No choice made: the language stays as it was.
            Node::Language { next, .. } => next,
            _ => return Move::Stay,
        };
        return Move::To(fallback.clone());
    }
    vars.insert(key, (tries + 1).to_string());
    let before = match digits {
        None => ask.no_input_prompt,
        Some(_) => ask.invalid_prompt,
    };
    out.extend(ask.actions(flow, session, before));
    Move::Stay
}

fn collected_ok(digits: &str, min: u32, max: u32, pattern: Option<&str>) -> bool {
    let len = u32::try_from(digits.chars().count()).unwrap_or(u32::MAX);
    if len < min || len > max {
        return false;
    }
    match pattern {
        // Validation refuses bad patterns; one that slipped through matches nothing.
        Some(p) => regex::Regex::new(&format!("^(?:{p})$")).is_ok_and(|re| re.is_match(digits)),
        None => true,
    }
}

/// Enters `name` and the nodes after it that take no input; pushes the
/// actions of each.
fn enter(
    flow: &Flow,
    session: &mut Session,
    mut name: String,
    env: &StepEnv,
    out: &mut Vec<Action>,
) -> Result<(), StepError> {
    for _ in 0..MAX_TRANSITIONS_PER_STEP {
        let node = get(flow, &name)?;
        session.node = name.clone();
        match arrive(flow, node, &name, session, env, out) {
            Some(next) => name = next,
            None => return Ok(()),
        }
    }
    out.push(Action::Hangup {
        reason: format!("flow loops without input at `{name}`"),
    });
    Ok(())
}

/// Carries out entering `node`: pushes its actions and returns the next
/// node when it does not wait.
fn arrive(
    flow: &Flow,
    node: &Node,
    name: &str,
    session: &mut Session,
    env: &StepEnv,
    out: &mut Vec<Action>,
) -> Option<String> {
    if let Some(ask) = Ask::of(node) {
        session.variables.remove(&retry_key(name));
        out.extend(ask.actions(flow, session, None));
        return None;
    }
    let play = |prompts: Vec<String>, barge_in: bool| Action::Play { prompts, barge_in };
    match node {
        Node::Play {
            prompt,
            prompts,
            barge_in,
            next,
        } => {
            let list: Vec<String> = std::iter::once(prompt)
                .filter(|p| !p.is_empty())
                .chain(prompts)
                .map(|p| prompt_name(flow, session, p))
                .collect();
            if list.is_empty() {
                return Some(next.clone());
            }
            out.push(play(list, *barge_in));
            None
        }
        Node::Say {
            items,
            barge_in,
            next,
        } => {
            let list = say_items(flow, session, items);
            if list.is_empty() {
                return Some(next.clone());
            }
            out.push(play(list, *barge_in));
            None
        }
        Node::Hours {
            timezone,
            weekly,
            holidays,
            open,
            closed,
            holiday,
        } => Some(
            match calendar::hours(timezone, weekly, holidays, env.now_unix_ms) {
                Hours::Open => open,
                Hours::Closed => closed,
                Hours::Holiday => holiday.as_ref().unwrap_or(closed),
            }
            .clone(),
        ),
        Node::Weekday {
            timezone,
            days,
            default,
        } => {
            let today = calendar::weekday(timezone, env.now_unix_ms).ok();
            let to = today.and_then(|d| {
                days.iter()
                    .find(|(key, _)| calendar::covers(key, d))
                    .map(|(_, to)| to)
            });
            Some(to.unwrap_or(default).clone())
        }
        Node::Branch {
            var,
            cases,
            lists,
            default,
        } => Some(
            branch(flow, session, var, cases, lists)
                .unwrap_or(default)
                .clone(),
        ),
        Node::Set {
            var,
            value,
            vars,
            next,
        } => {
            let pairs = std::iter::once((var, value))
                .filter(|(k, _)| !k.is_empty())
                .chain(vars);
            // Every value sees the variables as they were before this node.
            let values: Vec<(String, String)> = pairs
                .map(|(k, t)| (k.clone(), template::expand(t, &session.variables)))
                .collect();
            session.variables.extend(values);
            Some(next.clone())
        }
        Node::Lookup {
            url, timeout_ms, ..
        } => {
            out.push(Action::Lookup {
                url: template::expand_url(url, &session.variables),
                timeout_ms: *timeout_ms,
            });
            None
        }
        Node::Enqueue {
            queue,
            priority,
            skills,
            language_skills,
            data,
        } => {
            let lang = language(flow, session);
            let mut skills = skills.clone();
            skills.extend(language_skills.get(lang).cloned().unwrap_or_default());
            out.push(Action::Enqueue {
                queue: queue.clone(),
                priority: priority_of(session, *priority),
                skills,
                data: call_data(flow, session, data),
            });
            None
        }
        Node::Callback {
            queue,
            number,
            priority,
            voicemail,
            data,
            next,
        } => {
            let vars = &session.variables;
            out.push(Action::Callback {
                queue: queue.clone(),
                number: template::expand(number, vars),
                priority: priority_of(session, *priority),
                voicemail: voicemail
                    .as_ref()
                    .map(|t| template::expand(t, vars))
                    .filter(|v| !v.is_empty()),
                data: call_data(flow, session, data),
            });
            Some(next.clone())
        }
        Node::Voicemail { prompt, .. } => {
            out.push(match prompt {
                Some(p) => play(vec![prompt_name(flow, session, p)], false),
                None => record(node),
            });
            None
        }
        Node::Transfer {
            prompt,
            uri,
            timeout_ms,
            ..
        } => {
            out.push(match prompt {
                Some(p) => play(vec![prompt_name(flow, session, p)], false),
                None => Action::Transfer {
                    uri: template::expand(uri, &session.variables),
                    timeout_ms: *timeout_ms,
                },
            });
            None
        }
        Node::Hangup { prompt, reason } => {
            out.push(match prompt {
                Some(p) => play(vec![prompt_name(flow, session, p)], false),
                None => Action::Hangup {
                    reason: reason.clone(),
                },
            });
            None
        }
        // Nodes with an `Ask` were entered above.
        Node::Menu { .. } | Node::Collect { .. } | Node::Language { .. } => None,
    }
}

fn record(node: &Node) -> Action {
    match node {
        Node::Voicemail {
            max_ms,
            silence_ms,
            beep,
            ..
        } => Action::Record {
            max_ms: *max_ms,
            silence_ms: *silence_ms,
            beep: *beep,
        },
        _ => Action::Hangup {
            reason: "record outside a voicemail node".into(),
        },
    }
}

fn branch<'f>(
    flow: &'f Flow,
    session: &Session,
    var: &str,
    cases: &'f BTreeMap<String, String>,
    lists: &'f BTreeMap<String, String>,
) -> Option<&'f String> {
    let value = session.variables.get(var).map(String::as_str).unwrap_or("");
    cases.get(value).or_else(|| {
        lists
            .iter()
            .find(|(list, _)| {
                flow.lists
                    .get(*list)
                    .is_some_and(|l| l.iter().any(|v| v == value))
            })
            .map(|(_, to)| to)
    })
}

fn say_items(flow: &Flow, session: &Session, items: &[SayItem]) -> Vec<String> {
    let lang = language(flow, session);
    let vars = &session.variables;
    let mut out = Vec::new();
    for item in items {
        let fragments = match item {
            SayItem::Prompt(p) => {
                out.push(prompt_name(flow, session, p));
                continue;
            }
            SayItem::Number(t) => say::number(lang, &template::expand(t, vars)),
            SayItem::Digits(t) => say::digits(&template::expand(t, vars)),
            SayItem::Date(t) => say::date(lang, &template::expand(t, vars)),
        };
        out.extend(fragments.into_iter().map(|f| format!("{lang}/{f}")));
    }
    out
}

/// The variable `priority` (set by a VIP branch…) wins over the node's.
fn priority_of(session: &Session, node_priority: i32) -> i32 {
    session
        .variables
        .get(vars::PRIORITY)
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or(node_priority)
}

/// Call-pop data: the node's templates (empty values left out) and the language.
fn call_data(
    flow: &Flow,
    session: &Session,
    data: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = data
        .iter()
        .map(|(k, t)| (k.clone(), template::expand(t, &session.variables)))
        .filter(|(_, v)| !v.is_empty())
        .collect();
    out.insert(vars::LANGUAGE.into(), language(flow, session).to_string());
    out
}
