use super::*;

const ENV: StepEnv = StepEnv { now_unix_ms: 0 };

fn started() -> Event {
    Event::Started {
        did: "5550100".into(),
        caller: "1001".into(),
        caller_name: String::new(),
    }
}

fn play(prompt: &str, next: &str) -> Node {
    Node::Play {
        prompt: prompt.into(),
        next: next.into(),
    }
}

fn welcome_then_queue() -> Flow {
    Flow {
        answer: AnswerMode::Immediate,
        start: "welcome".into(),
        fallback_queue: "sales".into(),
        nodes: BTreeMap::from([
            ("welcome".into(), play("welcome", "queue")),
            (
                "queue".into(),
                Node::Enqueue {
                    queue: "sales".into(),
                    priority: 0,
                },
            ),
        ]),
    }
}

#[test]
fn welcome_then_enqueue() {
    let flow = welcome_then_queue();
    let (s, a) = step(&flow, Session::default(), started(), &ENV).unwrap();
    assert_eq!(
        a,
        vec![Action::Play {
            prompts: vec!["welcome".into()],
            barge_in: false
        }]
    );
    assert_eq!(s.node, "welcome");
    let (s, a) = step(&flow, s, Event::PromptFinished, &ENV).unwrap();
    assert_eq!(
        a,
        vec![Action::Enqueue {
            queue: "sales".into(),
            priority: 0,
            skills: BTreeMap::new(),
            data: BTreeMap::new()
        }]
    );
    assert_eq!(s.node, "queue");
}

#[test]
fn step_is_pure_so_any_runner_can_serve_it() {
    let flow = welcome_then_queue();
    let (s1, a1) = step(&flow, Session::default(), started(), &ENV).unwrap();
    let (s2, a2) = step(&flow.clone(), Session::default(), started(), &ENV).unwrap();
    assert_eq!((s1.clone(), a1), (s2, a2));
    let r1 = step(&flow, s1.clone(), Event::PromptFinished, &ENV).unwrap();
    let r2 = step(&flow, s1, Event::PromptFinished, &ENV).unwrap();
    assert_eq!(r1, r2);
}

#[test]
fn event_before_start_is_refused() {
    let flow = welcome_then_queue();
    let err = step(&flow, Session::default(), Event::PromptFinished, &ENV).unwrap_err();
    assert!(matches!(err, StepError::UnexpectedEvent { .. }));
}

#[test]
fn unknown_node_in_session_is_an_error() {
    let flow = welcome_then_queue();
    let s = Session {
        node: "gone".into(),
        ..Session::default()
    };
    assert_eq!(
        step(&flow, s, Event::PromptFinished, &ENV).unwrap_err(),
        StepError::UnknownNode("gone".into())
    );
}

fn menu_flow() -> Flow {
    Flow {
        answer: AnswerMode::Early,
        start: "menu".into(),
        fallback_queue: "sales".into(),
        nodes: BTreeMap::from([
            (
                "menu".into(),
                Node::Menu {
                    prompt: "menu".into(),
                    options: BTreeMap::from([
                        ("1".into(), "vip".into()),
                        ("2".into(), "queue".into()),
                    ]),
                    timeout_ms: 3000,
                    default: "queue".into(),
                    retries: 1,
                },
            ),
            (
                "vip".into(),
                Node::Set {
                    var: "priority".into(),
                    value: "5".into(),
                    next: "queue".into(),
                },
            ),
            (
                "queue".into(),
                Node::Enqueue {
                    queue: "sales".into(),
                    priority: 0,
                },
            ),
        ]),
    }
}

#[test]
fn menu_choice_sets_priority() {
    let flow = menu_flow();
    let (s, a) = step(&flow, Session::default(), started(), &ENV).unwrap();
    assert_eq!(
        a[1],
        Action::Collect(CollectSpec {
            min_digits: 1,
            max_digits: 1,
            terminator: Some('#'),
            first_digit_timeout_ms: 3000,
            inter_digit_timeout_ms: 3000,
        })
    );
    let (s, a) = step(&flow, s, Event::Digits { digits: "1".into() }, &ENV).unwrap();
    assert_eq!(
        a,
        vec![Action::Enqueue {
            queue: "sales".into(),
            priority: 5,
            skills: BTreeMap::new(),
            data: BTreeMap::new()
        }]
    );
    assert_eq!(s.variables.get("priority").map(String::as_str), Some("5"));
}

#[test]
fn menu_retries_then_default() {
    let flow = menu_flow();
    let (s, _) = step(&flow, Session::default(), started(), &ENV).unwrap();
    let (s, a) = step(&flow, s, Event::NoInput, &ENV).unwrap();
    assert_eq!(s.node, "menu", "first timeout replays the menu");
    assert_eq!(
        a[0],
        Action::Play {
            prompts: vec!["menu".into()],
            barge_in: true
        }
    );
    let (s, a) = step(&flow, s, Event::Digits { digits: "9".into() }, &ENV).unwrap();
    assert_eq!(
        a,
        vec![Action::Enqueue {
            queue: "sales".into(),
            priority: 0,
            skills: BTreeMap::new(),
            data: BTreeMap::new()
        }]
    );
    assert!(!s.variables.contains_key("_retries.menu"));
}

#[test]
fn set_cycle_hangs_up_instead_of_spinning() {
    let flow = Flow {
        answer: AnswerMode::Immediate,
        start: "a".into(),
        fallback_queue: "q".into(),
        nodes: BTreeMap::from([
            (
                "a".into(),
                Node::Set {
                    var: "x".into(),
                    value: "1".into(),
                    next: "b".into(),
                },
            ),
            (
                "b".into(),
                Node::Set {
                    var: "y".into(),
                    value: "1".into(),
                    next: "a".into(),
                },
            ),
        ]),
    };
    let (_, a) = step(&flow, Session::default(), started(), &ENV).unwrap();
    assert!(matches!(a.as_slice(), [Action::Hangup { .. }]));
}
