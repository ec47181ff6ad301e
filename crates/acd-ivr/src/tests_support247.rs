//! The shipped 24/7 support flow (`config/flows/support247.toml`): it parses
//! as the config loader reads it, validates against the shipped prompt
//! names, and callers get through it on the main paths.

use std::collections::{BTreeMap, BTreeSet};

use crate::tests::play;
use crate::*;

const SUPPORT247: &str = include_str!("../../../config/flows/support247.toml");

const PROMPTS: [&str; 25] = [
    "welcome",
    "vip_welcome",
    "closed",
    "holiday",
    "main_menu",
    "enter_order",
    "order_is",
    "status_shipped",
    "status_processing",
    "status_delivered",
    "order_not_found",
    "lookup_unavailable",
    "anything_else",
    "night_menu",
    "transferring",
    "callback_confirm",
    "callback_confirm_keys",
    "enter_callback_number",
    "callback_booked",
    "leave_voicemail",
    "voicemail_saved",
    "invalid",
    "no_input",
    "goodbye",
    "queue_wait",
];

fn known() -> Known {
    let mut prompts: BTreeSet<String> = ["choose_language", "moh", "beep"].map(String::from).into();
    for lang in ["en", "ru"] {
        for p in PROMPTS
            .iter()
            .map(|p| p.to_string())
            .chain(say_fragments(lang))
        {
            prompts.insert(format!("{lang}/{p}"));
        }
    }
    Known {
        queues: ["sales", "support"].map(String::from).into(),
        prompts,
        languages: vec!["en".into(), "ru".into()],
    }
}

fn support247() -> Flow {
    match toml_edit::de::from_str(SUPPORT247) {
        Ok(f) => f,
        Err(e) => panic!("support247.toml does not parse: {e}"),
    }
}

#[test]
fn support247_validates() {
    let flow = support247();
    assert_eq!(validate(&flow, &known()), vec![]);
}

#[test]
fn support247_round_trips_through_json() {
    // The runner hashes the JSON form for the flow version; nothing may be lost.
    let flow = support247();
    let json = serde_json::to_string(&flow).unwrap();
    let back: Flow = serde_json::from_str(&json).unwrap();
    assert_eq!(back, flow);
    assert_eq!(version(&back), version(&flow));
}

#[test]
fn support247_validation_notices_a_missing_prompt() {
    // The test above can fail: drop one Russian prompt.
    let mut k = known();
    k.prompts.remove("ru/status_shipped");
    let issues = validate(&support247(), &k);
    assert_eq!(issues.len(), 1, "{issues:#?}");
    assert_eq!(issues[0].node.as_deref(), Some("say_shipped"));
}

/// A caller walking through the flow at a fixed time.
struct Call {
    flow: Flow,
    env: StepEnv,
    session: Session,
}

impl Call {
    fn start(caller: &str, instant: &str) -> (Call, Vec<Action>) {
        let now = match instant.parse::<jiff::Timestamp>() {
            Ok(t) => t.as_millisecond(),
            Err(e) => panic!("{instant}: {e}"),
        };
        let mut call = Call {
            flow: support247(),
            env: StepEnv { now_unix_ms: now },
            session: Session::default(),
        };
        let a = call.on(Event::Started {
            did: "5550300".into(),
            caller: caller.into(),
            caller_name: String::new(),
        });
        (call, a)
    }

    fn on(&mut self, event: Event) -> Vec<Action> {
        let s = std::mem::take(&mut self.session);
        match step(&self.flow, s, event, &self.env) {
            Ok((s, a)) => {
                self.session = s;
                a
            }
            Err(e) => panic!("step failed: {e}"),
        }
    }

    fn press(&mut self, d: &str) -> Vec<Action> {
        self.on(Event::Digits { digits: d.into() })
    }

    fn prompt_done(&mut self) -> Vec<Action> {
        self.on(Event::PromptFinished)
    }
}

fn prompts(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .flat_map(|a| match a {
            Action::Play { prompts, .. } => prompts.clone(),
            _ => vec![],
        })
        .collect()
}

/// Mon 7 Dec 2026, 22:30 in Moscow.
const MONDAY_NIGHT: &str = "2026-12-07T19:30:00Z";
/// Mon 7 Dec 2026, 12:00 in Moscow.
const MONDAY_NOON: &str = "2026-12-07T09:00:00Z";

#[test]
fn vip_at_night_books_a_callback() {
    let (mut c, a) = Call::start("79990000001", MONDAY_NIGHT);
    assert_eq!(a[0], play(&["choose_language"], true));
    assert_eq!(c.press("2"), vec![play(&["ru/welcome"], false)]);
    assert_eq!(c.prompt_done(), vec![play(&["ru/vip_welcome"], false)]);
    assert_eq!(prompts(&c.prompt_done()), ["ru/closed"]);
    let a = c.prompt_done();
    assert_eq!(prompts(&a), ["ru/night_menu"]);
    assert!(matches!(a[1], Action::Collect(_)));
    // PromptFinished of the menu prompt changes nothing.
    assert_eq!(c.prompt_done(), vec![]);
    assert_eq!(
        c.press("2"),
        vec![play(
            &[
                "ru/callback_confirm",
                "ru/digit_7",
                "ru/digit_9",
                "ru/digit_9",
                "ru/digit_9",
                "ru/digit_0",
                "ru/digit_0",
                "ru/digit_0",
                "ru/digit_0",
                "ru/digit_0",
                "ru/digit_0",
                "ru/digit_1"
            ],
            false
        )]
    );
    assert_eq!(prompts(&c.prompt_done()), ["ru/callback_confirm_keys"]);
    assert_eq!(
        c.press("1"),
        vec![
            Action::Callback {
                queue: "support".into(),
                number: "79990000001".into(),
                priority: 10,
                voicemail: None,
                data: BTreeMap::from([
                    ("language".into(), "ru".into()),
                    ("vip".into(), "yes".into())
                ]),
            },
            play(&["ru/callback_booked"], false),
        ]
    );
    assert_eq!(
        c.prompt_done(),
        vec![Action::Hangup {
            reason: "callback booked".into()
        }]
    );
}

#[test]
fn order_status_shipped_in_business_hours() {
    let (mut c, _) = Call::start("74950000000", MONDAY_NOON);
    assert_eq!(c.press("1"), vec![play(&["en/welcome"], false)]);
    assert_eq!(
        prompts(&c.prompt_done()),
        ["en/main_menu"],
        "not a VIP, open"
    );
    let a = c.press("1");
    assert_eq!(prompts(&a), ["en/enter_order"]);
    assert!(matches!(&a[1], Action::Collect(spec)
        if spec.min_digits == 4 && spec.max_digits == 10 && spec.terminator == Some('#')));
    assert_eq!(
        c.press("4711"),
        vec![Action::Lookup {
            url: "http://127.0.0.1:8089/orders/4711".into(),
            timeout_ms: 2000
        }]
    );
    let a = c.on(Event::LookupDone {
        http_status: 200,
        fields: BTreeMap::from([
            ("status".into(), "shipped".into()),
            ("eta".into(), "2026-12-25".into()),
        ]),
    });
    assert_eq!(
        prompts(&a),
        [
            "en/order_is",
            "en/digit_4",
            "en/digit_7",
            "en/digit_1",
            "en/digit_1",
            "en/status_shipped",
            "en/month_12",
            "en/day_25"
        ]
    );
    assert_eq!(prompts(&c.prompt_done()), ["en/anything_else"]);
    assert_eq!(c.press("5"), vec![play(&["en/goodbye"], false)]);
    assert!(matches!(c.prompt_done()[..], [Action::Hangup { .. }]));
}

#[test]
fn lookup_failure_goes_to_an_operator() {
    let (mut c, _) = Call::start("74950000000", MONDAY_NOON);
    c.press("2");
    c.prompt_done();
    c.press("1");
    c.press("123456");
    let a = c.on(Event::LookupFailed {
        reason: "timeout".into(),
    });
    assert_eq!(a, vec![play(&["ru/lookup_unavailable"], false)]);
    assert_eq!(
        c.prompt_done(),
        vec![Action::Enqueue {
            queue: "support".into(),
            priority: 0,
            skills: BTreeMap::from([("russian".into(), 1)]),
            data: BTreeMap::from([
                ("language".into(), "ru".into()),
                ("order".into(), "123456".into())
            ]),
        }]
    );
}

#[test]
fn unknown_order_and_holiday() {
    let (mut c, _) = Call::start("74950000000", MONDAY_NOON);
    c.press("1");
    c.prompt_done();
    c.press("1");
    c.press("9999");
    let a = c.on(Event::LookupDone {
        http_status: 404,
        fields: BTreeMap::new(),
    });
    assert_eq!(prompts(&a), ["en/order_not_found"]);

    // 5 January 2027 is a Tuesday inside the New Year holidays.
    let (mut c, _) = Call::start("74950000000", "2027-01-05T09:00:00Z");
    c.press("1");
    assert_eq!(prompts(&c.prompt_done()), ["en/holiday"]);
}

#[test]
fn night_transfer_failure_offers_a_callback_and_voicemail_books_one() {
    let (mut c, _) = Call::start("74950000000", MONDAY_NIGHT);
    c.press("1");
    c.prompt_done();
    c.prompt_done();
    assert_eq!(c.press("1"), vec![play(&["en/transferring"], false)]);
    assert_eq!(
        c.prompt_done(),
        vec![Action::Transfer {
            uri: "sip:night@127.0.0.1:5080".into(),
            timeout_ms: 30000
        }]
    );
    let a = c.on(Event::TransferFailed {
        sip_status: 480,
        reason: "Temporarily Unavailable".into(),
    });
    assert_eq!(prompts(&a)[0], "en/callback_confirm");

    let (mut c, _) = Call::start("74950000000", MONDAY_NIGHT);
    c.press("1");
    c.prompt_done();
    c.prompt_done();
    assert_eq!(c.press("3"), vec![play(&["en/leave_voicemail"], false)]);
    assert!(matches!(
        c.prompt_done()[..],
        [Action::Record {
            max_ms: 60000,
            silence_ms: 5000,
            beep: true
        }]
    ));
    let a = c.on(Event::Recorded {
        file: "vm-42.wav".into(),
        duration_ms: 7000,
    });
    assert!(
        matches!(&a[0], Action::Callback { voicemail: Some(v), number, .. }
        if v == "vm-42.wav" && number == "74950000000")
    );
    assert_eq!(a[1], play(&["en/voicemail_saved"], false));
}
