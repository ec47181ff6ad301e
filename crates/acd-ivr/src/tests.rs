//! Step basics; see `tests_nodes.rs` for each node type, `tests_validate.rs`
//! for validation and `tests_support247.rs` for the shipped flow.

use std::collections::BTreeMap;

use super::*;

pub const ENV: StepEnv = StepEnv { now_unix_ms: 0 };

/// A flow from TOML, as the config loader reads it.
pub fn flow(text: &str) -> Flow {
    match toml_edit::de::from_str(text) {
        Ok(f) => f,
        Err(e) => panic!("flow does not parse: {e}"),
    }
}

pub fn started() -> Event {
    Event::Started {
        did: "5550100".into(),
        caller: "1001".into(),
        caller_name: "Ann".into(),
    }
}

pub fn start(flow: &Flow) -> (Session, Vec<Action>) {
    step(flow, Session::default(), started(), &ENV).unwrap()
}

pub fn digits(d: &str) -> Event {
    Event::Digits { digits: d.into() }
}

pub fn play(prompts: &[&str], barge_in: bool) -> Action {
    Action::Play {
        prompts: prompts.iter().map(|p| p.to_string()).collect(),
        barge_in,
    }
}

pub fn var<'s>(s: &'s Session, name: &str) -> Option<&'s str> {
    s.variables.get(name).map(String::as_str)
}

const WELCOME_THEN_QUEUE: &str = r#"
start = "welcome"
fallback_queue = "sales"
[nodes.welcome]
type = "play"
prompt = "welcome"
next = "queue"
[nodes.queue]
type = "enqueue"
queue = "sales"
priority = 0
"#;

#[test]
fn welcome_then_enqueue() {
    let flow = flow(WELCOME_THEN_QUEUE);
    let (s, a) = start(&flow);
    assert_eq!(a, vec![play(&["en/welcome"], false)]);
    assert_eq!(s.node, "welcome");
    let (s, a) = step(&flow, s, Event::PromptFinished, &ENV).unwrap();
    assert_eq!(
        a,
        vec![Action::Enqueue {
            queue: "sales".into(),
            priority: 0,
            skills: BTreeMap::new(),
            data: BTreeMap::from([("language".into(), "en".into())]),
        }]
    );
    assert_eq!(s.node, "queue");
}

#[test]
fn started_sets_the_call_variables() {
    let flow = flow(WELCOME_THEN_QUEUE);
    let stale = Session {
        variables: BTreeMap::from([("old".into(), "x".into())]),
        ..Session::default()
    };
    let (s, _) = step(&flow, stale, started(), &ENV).unwrap();
    assert_eq!(var(&s, "caller"), Some("1001"));
    assert_eq!(var(&s, "did"), Some("5550100"));
    assert_eq!(var(&s, "caller_name"), Some("Ann"));
    assert_eq!(var(&s, "language"), Some("en"));
    assert_eq!(var(&s, "old"), None, "a new call starts clean");
}

#[test]
fn default_language_comes_from_the_flow() {
    let flow = flow(&format!("default_language = \"ru\"\n{WELCOME_THEN_QUEUE}"));
    let (s, a) = start(&flow);
    assert_eq!(var(&s, "language"), Some("ru"));
    assert_eq!(a, vec![play(&["ru/welcome"], false)]);
}

#[test]
fn neutral_and_qualified_prompts_pass_as_they_are() {
    let mut flow = flow(WELCOME_THEN_QUEUE);
    flow.neutral_prompts = vec!["chime".into()];
    let s = Session {
        variables: BTreeMap::from([("language".into(), "ru".into())]),
        ..Session::default()
    };
    assert_eq!(prompt_name(&flow, &s, "welcome"), "ru/welcome");
    assert_eq!(prompt_name(&flow, &s, "chime"), "chime");
    assert_eq!(prompt_name(&flow, &s, "en/welcome"), "en/welcome");
    assert_eq!(
        prompt_name(&flow, &Session::default(), "welcome"),
        "en/welcome"
    );
}

#[test]
fn step_is_pure_so_any_runner_can_serve_it() {
    let flow = flow(WELCOME_THEN_QUEUE);
    let (s1, a1) = start(&flow);
    let (s2, a2) = step(&flow.clone(), Session::default(), started(), &ENV).unwrap();
    assert_eq!((s1.clone(), a1), (s2, a2));
    let r1 = step(&flow, s1.clone(), Event::PromptFinished, &ENV).unwrap();
    let r2 = step(&flow, s1, Event::PromptFinished, &ENV).unwrap();
    assert_eq!(r1, r2);
}

#[test]
fn event_before_start_is_refused() {
    let flow = flow(WELCOME_THEN_QUEUE);
    let err = step(&flow, Session::default(), Event::PromptFinished, &ENV).unwrap_err();
    assert!(matches!(err, StepError::UnexpectedEvent { .. }));
}

#[test]
fn unknown_node_in_session_is_an_error() {
    let flow = flow(WELCOME_THEN_QUEUE);
    let s = Session {
        node: "gone".into(),
        ..Session::default()
    };
    assert_eq!(
        step(&flow, s, Event::PromptFinished, &ENV).unwrap_err(),
        StepError::UnknownNode("gone".into())
    );
}

#[test]
fn event_that_does_not_fit_is_an_error() {
    let flow = flow(WELCOME_THEN_QUEUE);
    let (s, _) = start(&flow);
    let err = step(&flow, s, digits("1"), &ENV).unwrap_err();
    assert!(matches!(err, StepError::UnexpectedEvent { node, .. } if node == "welcome"));
}

#[test]
fn set_cycle_hangs_up_instead_of_spinning() {
    let flow = flow(
        r#"
start = "a"
fallback_queue = "q"
[nodes.a]
type = "set"
var = "x"
value = "1"
next = "b"
[nodes.b]
type = "set"
var = "y"
value = "1"
next = "a"
"#,
    );
    let (_, a) = start(&flow);
    assert!(matches!(a.as_slice(), [Action::Hangup { .. }]));
}

#[test]
fn existing_config_shapes_still_parse() {
    // The node keys of the flows shipped before issue 7.
    let flow = flow(
        r#"
answer = "early"
start = "welcome"
fallback_queue = "support"
[nodes.welcome]
type = "play"
prompt = "welcome"
next = "menu"
[nodes.menu]
type = "menu"
prompt = "menu"
options = { "1" = "vip", "2" = "queue" }
timeout_ms = 3000
default = "queue"
retries = 1
[nodes.vip]
type = "set"
var = "priority"
value = "5"
next = "queue"
[nodes.queue]
type = "enqueue"
queue = "support"
priority = 0
[nodes.bye]
type = "hangup"
reason = "done"
"#,
    );
    assert_eq!(flow.answer, AnswerMode::Early);
    assert_eq!(flow.nodes.len(), 5);
}

#[test]
fn unknown_keys_are_refused() {
    let r: Result<Flow, _> = toml_edit::de::from_str(
        r#"
start = "a"
fallback_queue = "q"
[nodes.a]
type = "hangup"
reson = "typo"
"#,
    );
    assert!(r.is_err());
}

#[test]
fn version_changes_with_the_flow() {
    let a = flow(WELCOME_THEN_QUEUE);
    let mut b = a.clone();
    assert_eq!(version(&a), version(&b));
    b.default_language = "ru".into();
    assert_ne!(version(&a), version(&b));
}
