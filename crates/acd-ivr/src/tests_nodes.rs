//! One block per node type: what entering it asks of the edge, and where
//! each event leads.

use std::collections::BTreeMap;

use crate::tests::{digits, flow, play, start, started, var, ENV};
use crate::*;

fn at(ms: i64) -> StepEnv {
    StepEnv { now_unix_ms: ms }
}

/// Unix ms of an RFC 3339 instant (`2026-03-29T07:30:00Z`).
fn utc(instant: &str) -> i64 {
    match instant.parse::<jiff::Timestamp>() {
        Ok(t) => t.as_millisecond(),
        Err(e) => panic!("{instant}: {e}"),
    }
}

fn go(flow: &Flow, s: Session, e: Event) -> (Session, Vec<Action>) {
    step(flow, s, e, &ENV).unwrap()
}

fn hangup(reason: &str) -> Action {
    Action::Hangup {
        reason: reason.into(),
    }
}

/// A flow whose other nodes are all hang-ups named after themselves, so a
/// test sees where a node led by the reason.
fn with_ends(body: &str, ends: &[&str]) -> Flow {
    let mut text = format!("start = \"n\"\nfallback_queue = \"q\"\n{body}\n");
    for end in ends {
        text.push_str(&format!(
            "[nodes.{end}]\ntype = \"hangup\"\nreason = \"{end}\"\n"
        ));
    }
    flow(&text)
}

fn ended_at(actions: &[Action]) -> &str {
    match actions.last() {
        Some(Action::Hangup { reason }) => reason,
        other => panic!("expected a hang-up, got {other:?}"),
    }
}

// ---- play

#[test]
fn play_prompts_then_next() {
    let mut f = with_ends(
        "[nodes.n]\ntype = \"play\"\nprompt = \"a\"\nprompts = [\"b\", \"moh\"]\nbarge_in = true\nnext = \"end\"",
        &["end"],
    );
    f.neutral_prompts = vec!["moh".into()];
    let (s, a) = start(&f);
    assert_eq!(a, vec![play(&["en/a", "en/b", "moh"], true)]);
    let (_, a) = go(&f, s, Event::PromptFinished);
    assert_eq!(ended_at(&a), "end");
}

// ---- menu

const MENU: &str = r#"
[nodes.n]
type = "menu"
prompt = "menu"
options = { "1" = "one", "22" = "two" }
timeout_ms = 4000
retries = 1
no_input_prompt = "no_input"
invalid_prompt = "invalid"
default = "fallback"
"#;

#[test]
fn menu_plays_with_barge_in_and_collects_the_longest_option() {
    let f = with_ends(MENU, &["one", "two", "fallback"]);
    let (s, a) = start(&f);
    assert_eq!(
        a,
        vec![
            play(&["en/menu"], true),
            Action::Collect(CollectSpec {
                min_digits: 1,
                max_digits: 2,
                terminator: Some('#'),
                first_digit_timeout_ms: 4000,
                inter_digit_timeout_ms: 4000,
            })
        ]
    );
    assert_eq!(ended_at(&go(&f, s.clone(), digits("22")).1), "two");
    assert_eq!(ended_at(&go(&f, s, digits("1")).1), "one");
}

#[test]
fn menu_retries_with_the_right_prompt_then_default() {
    let f = with_ends(MENU, &["one", "two", "fallback"]);
    let (s, _) = start(&f);
    let (s, a) = go(&f, s, Event::NoInput);
    assert_eq!(s.node, "n");
    assert_eq!(a[0], play(&["en/no_input", "en/menu"], true));
    assert!(matches!(a[1], Action::Collect(_)));
    let (s, a) = go(&f, s, digits("9"));
    assert_eq!(ended_at(&a), "fallback", "retries used up");
    assert!(!s.variables.keys().any(|k| k.starts_with("_retries")));

    let (s, _) = start(&f);
    let (_, a) = go(&f, s, digits("7"));
    assert_eq!(a[0], play(&["en/invalid", "en/menu"], true));
}

#[test]
fn prompt_finished_at_a_menu_changes_nothing() {
    // The known defect: a prompt shorter than the timeout used to re-enter
    // the menu, replaying it and resetting the digit deadline forever.
    let f = with_ends(MENU, &["one", "two", "fallback"]);
    let (s, _) = start(&f);
    for _ in 0..3 {
        let (s2, a) = go(&f, s.clone(), Event::PromptFinished);
        assert!(a.is_empty(), "no actions: {a:?}");
        assert_eq!(s2, s, "session unchanged");
    }
    // After a retry too.
    let (s, _) = go(&f, s, Event::NoInput);
    let (s2, a) = go(&f, s.clone(), Event::PromptFinished);
    assert!(a.is_empty());
    assert_eq!(s2, s);
}

#[test]
fn menu_entered_again_starts_its_retries_over() {
    let f = with_ends(
        r#"
[nodes.n]
type = "menu"
prompt = "menu"
options = { "9" = "n", "1" = "one" }
retries = 1
default = "fallback"
"#,
        &["one", "fallback"],
    );
    let (s, _) = start(&f);
    let (s, _) = go(&f, s, Event::NoInput);
    // "9 repeat" goes back to the menu itself with a fresh count.
    let (s, a) = go(&f, s, digits("9"));
    assert_eq!(a[0], play(&["en/menu"], true));
    let (s, a) = go(&f, s, Event::NoInput);
    assert_eq!(s.node, "n", "one retry left after re-entering: {a:?}");
}

// ---- collect

const COLLECT: &str = r##"
[nodes.n]
type = "collect"
prompt = "enter_order"
var = "order"
min_length = 4
max_length = 10
terminator = "#"
timeout_ms = 6000
inter_digit_timeout_ms = 2500
pattern = "[1-9][0-9]*"
retries = 1
invalid_prompt = "invalid"
no_input_prompt = "no_input"
next = "ok"
fallback = "fail"
"##;

#[test]
fn collect_asks_with_its_spec() {
    let f = with_ends(COLLECT, &["ok", "fail"]);
    let (_, a) = start(&f);
    assert_eq!(
        a,
        vec![
            play(&["en/enter_order"], true),
            Action::Collect(CollectSpec {
                min_digits: 4,
                max_digits: 10,
                terminator: Some('#'),
                first_digit_timeout_ms: 6000,
                inter_digit_timeout_ms: 2500,
            })
        ]
    );
}

#[test]
fn collect_stores_valid_input() {
    let f = with_ends(COLLECT, &["ok", "fail"]);
    let (s, _) = start(&f);
    let (s, a) = go(&f, s, digits("12345"));
    assert_eq!(ended_at(&a), "ok");
    assert_eq!(var(&s, "order"), Some("12345"));
}

#[test]
fn collect_rejects_short_and_unmatched_input() {
    let f = with_ends(COLLECT, &["ok", "fail"]);
    let (s, _) = start(&f);
    let (s, a) = go(&f, s, digits("123"));
    assert_eq!(
        a[0],
        play(&["en/invalid", "en/enter_order"], true),
        "too short"
    );
    let (s, a) = go(&f, s, digits("01234"));
    assert_eq!(ended_at(&a), "fail", "pattern wants no leading zero");
    assert_eq!(var(&s, "order"), None);
    let (s, _) = start(&f);
    let (s, a) = go(&f, s, Event::NoInput);
    assert_eq!(a[0], play(&["en/no_input", "en/enter_order"], true));
    let (s2, a) = go(&f, s.clone(), Event::PromptFinished);
    assert!(a.is_empty());
    assert_eq!(s2, s);
}

#[test]
fn collect_without_terminator() {
    let f = with_ends(
        "[nodes.n]\ntype = \"collect\"\nprompt = \"p\"\nvar = \"v\"\nterminator = \"\"\nnext = \"ok\"\nfallback = \"fail\"",
        &["ok", "fail"],
    );
    let (_, a) = start(&f);
    assert!(matches!(&a[1], Action::Collect(c) if c.terminator.is_none() && c.min_digits == 1));
}

// ---- language

const LANGUAGE: &str = r#"
neutral_prompts = ["choose_language"]
[nodes.n]
type = "language"
prompt = "choose_language"
options = { "1" = "en", "2" = "ru" }
retries = 0
next = "welcome"
[nodes.welcome]
type = "play"
prompt = "welcome"
next = "end"
"#;

#[test]
fn language_choice_switches_the_prompt_set() {
    let f = with_ends(LANGUAGE, &["end"]);
    let (s, a) = start(&f);
    assert_eq!(a[0], play(&["choose_language"], true));
    let (s, a) = go(&f, s, digits("2"));
    assert_eq!(var(&s, "language"), Some("ru"));
    assert_eq!(a, vec![play(&["ru/welcome"], false)]);
}

#[test]
fn no_language_choice_keeps_the_default() {
    let f = with_ends(LANGUAGE, &["end"]);
    let (s, _) = start(&f);
    let (s, a) = go(&f, s, digits("7"));
    assert_eq!(var(&s, "language"), Some("en"));
    assert_eq!(a, vec![play(&["en/welcome"], false)]);
}

// ---- hours and weekday

const HOURS_MOSCOW: &str = r#"
[nodes.n]
type = "hours"
timezone = "Europe/Moscow"
weekly = { mon = ["08:00-20:00"], tue = ["08:00-13:00", "14:00-20:00"], sat = ["10:00-24:00"] }
holidays = ["2026-12-31", "2027-01-01..2027-01-08"]
open = "open"
closed = "closed"
holiday = "holiday"
"#;

fn hours_at(f: &Flow, instant: &str) -> String {
    let (_, a) = step(f, Session::default(), started(), &at(utc(instant))).unwrap();
    ended_at(&a).to_string()
}

#[test]
fn hours_open_closed_and_holiday() {
    let f = with_ends(HOURS_MOSCOW, &["open", "closed", "holiday"]);
    // Moscow is UTC+3 all year.
    assert_eq!(hours_at(&f, "2026-12-07T05:00:00Z"), "open", "Mon 08:00");
    assert_eq!(hours_at(&f, "2026-12-07T04:59:59Z"), "closed", "Mon 07:59");
    assert_eq!(
        hours_at(&f, "2026-12-07T17:00:00Z"),
        "closed",
        "Mon 20:00, end exclusive"
    );
    assert_eq!(
        hours_at(&f, "2026-12-08T10:30:00Z"),
        "closed",
        "Tue lunch 13:30"
    );
    assert_eq!(hours_at(&f, "2026-12-08T11:00:00Z"), "open", "Tue 14:00");
    assert_eq!(hours_at(&f, "2026-12-12T20:59:00Z"), "open", "Sat 23:59");
    assert_eq!(
        hours_at(&f, "2026-12-13T10:00:00Z"),
        "closed",
        "Sun: no hours"
    );
    assert_eq!(
        hours_at(&f, "2026-12-31T10:00:00Z"),
        "holiday",
        "Thu 31 Dec"
    );
    assert_eq!(
        hours_at(&f, "2027-01-08T10:00:00Z"),
        "holiday",
        "last day of the range"
    );
    assert_eq!(
        hours_at(&f, "2027-01-08T21:00:00Z"),
        "closed",
        "Sat 9 Jan 00:00 local"
    );
    assert_eq!(
        hours_at(&f, "2027-01-11T06:00:00Z"),
        "open",
        "Mon 11 Jan 09:00"
    );
    assert_eq!(
        hours_at(&f, "2026-12-30T21:30:00Z"),
        "holiday",
        "already the 31st in Moscow"
    );
}

#[test]
fn holiday_defaults_to_closed() {
    let f = with_ends(
        &HOURS_MOSCOW.replace("holiday = \"holiday\"\n", ""),
        &["open", "closed", "holiday"],
    );
    assert_eq!(hours_at(&f, "2026-12-31T10:00:00Z"), "closed");
}

#[test]
fn hours_follow_the_wall_clock_across_dst_in_berlin() {
    let f = with_ends(
        r#"
[nodes.n]
type = "hours"
timezone = "Europe/Berlin"
weekly = { sun = ["09:00-17:00"] }
open = "open"
closed = "closed"
"#,
        &["open", "closed"],
    );
    // Sunday 29 March 2026: clocks go 02:00 CET -> 03:00 CEST (UTC+2).
    assert_eq!(hours_at(&f, "2026-03-29T07:00:00Z"), "open", "09:00 CEST");
    assert_eq!(hours_at(&f, "2026-03-29T06:59:00Z"), "closed", "08:59 CEST");
    assert_eq!(hours_at(&f, "2026-03-29T14:59:00Z"), "open", "16:59 CEST");
    assert_eq!(hours_at(&f, "2026-03-29T15:00:00Z"), "closed", "17:00 CEST");
    // A week before, still CET (UTC+1): the same UTC time is an hour earlier locally.
    assert_eq!(hours_at(&f, "2026-03-22T07:00:00Z"), "closed", "08:00 CET");
    assert_eq!(hours_at(&f, "2026-03-22T08:00:00Z"), "open", "09:00 CET");
    // Sunday 25 October 2026: 03:00 CEST -> 02:00 CET.
    assert_eq!(hours_at(&f, "2026-10-25T07:59:00Z"), "closed", "08:59 CET");
    assert_eq!(hours_at(&f, "2026-10-25T08:00:00Z"), "open", "09:00 CET");
    assert_eq!(hours_at(&f, "2026-10-25T15:59:00Z"), "open", "16:59 CET");
    assert_eq!(hours_at(&f, "2026-10-25T16:00:00Z"), "closed", "17:00 CET");
}

#[test]
fn hours_follow_the_wall_clock_across_dst_in_new_york() {
    let f = with_ends(
        r#"
[nodes.n]
type = "hours"
timezone = "America/New_York"
weekly = { sun = ["01:00-03:00", "10:00-18:00"] }
open = "open"
closed = "closed"
"#,
        &["open", "closed"],
    );
    // Sunday 8 March 2026: 02:00 EST -> 03:00 EDT (UTC-4); 02:xx does not exist.
    assert_eq!(hours_at(&f, "2026-03-08T06:59:00Z"), "open", "01:59 EST");
    assert_eq!(hours_at(&f, "2026-03-08T07:00:00Z"), "closed", "03:00 EDT");
    assert_eq!(hours_at(&f, "2026-03-08T14:00:00Z"), "open", "10:00 EDT");
    assert_eq!(hours_at(&f, "2026-03-08T13:59:00Z"), "closed", "09:59 EDT");
    // Sunday 1 November 2026: 02:00 EDT -> 01:00 EST; 01:xx happens twice, open both times.
    assert_eq!(hours_at(&f, "2026-11-01T05:30:00Z"), "open", "01:30 EDT");
    assert_eq!(hours_at(&f, "2026-11-01T06:30:00Z"), "open", "01:30 EST");
    assert_eq!(hours_at(&f, "2026-11-01T08:00:00Z"), "closed", "03:00 EST");
    assert_eq!(hours_at(&f, "2026-11-01T15:00:00Z"), "open", "10:00 EST");
    assert_eq!(hours_at(&f, "2026-11-01T14:59:00Z"), "closed", "09:59 EST");
}

#[test]
fn weekday_branches_per_day_in_the_zone() {
    let f = with_ends(
        r#"
[nodes.n]
type = "weekday"
timezone = "Asia/Tokyo"
days = { sat-sun = "weekend", fri = "friday" }
default = "weekday"
"#,
        &["weekend", "weekday", "friday"],
    );
    // Friday 23:30 UTC is already Saturday in Tokyo (UTC+9).
    assert_eq!(hours_at(&f, "2026-12-11T23:30:00Z"), "weekend");
    assert_eq!(hours_at(&f, "2026-12-11T12:00:00Z"), "friday");
    assert_eq!(hours_at(&f, "2026-12-10T12:00:00Z"), "weekday", "Thursday");
    assert_eq!(hours_at(&f, "2026-12-13T14:59:00Z"), "weekend", "Sun 23:59");
    assert_eq!(hours_at(&f, "2026-12-13T15:00:00Z"), "weekday", "Mon 00:00");
}

// ---- branch and set

const BRANCH: &str = r#"
[lists]
vip = ["1001", "1002"]
staff = ["2000"]
[nodes.n]
type = "set"
vars = { tier = "${caller}", greeting = "hi ${caller_name}" }
next = "b"
[nodes.b]
type = "branch"
var = "tier"
cases = { "2000" = "exact" }
lists = { vip = "vip", staff = "staff" }
default = "other"
"#;

#[test]
fn branch_on_value_then_list_membership() {
    let f = with_ends(BRANCH, &["exact", "vip", "staff", "other"]);
    let (s, a) = start(&f);
    assert_eq!(ended_at(&a), "vip", "caller 1001 is in the VIP list");
    assert_eq!(var(&s, "greeting"), Some("hi Ann"));
    let call = |caller: &str| {
        let e = Event::Started {
            did: "1".into(),
            caller: caller.into(),
            caller_name: String::new(),
        };
        let (_, a) = step(&f, Session::default(), e, &ENV).unwrap();
        ended_at(&a).to_string()
    };
    assert_eq!(call("2000"), "exact", "cases are checked before lists");
    assert_eq!(call("3000"), "other");
    assert_eq!(call(""), "other");
}

#[test]
fn set_values_see_the_variables_before_the_node() {
    let f = with_ends(
        r#"
[nodes.n]
type = "set"
var = "a"
value = "1"
vars = { b = "x${a}" }
next = "end"
"#,
        &["end"],
    );
    let (s, _) = start(&f);
    assert_eq!(var(&s, "a"), Some("1"));
    assert_eq!(var(&s, "b"), Some("x"));
}

// ---- lookup

const LOOKUP: &str = r#"
[nodes.n]
type = "set"
var = "order"
value = "12/34 5"
next = "l"
[nodes.l]
type = "lookup"
url = "http://127.0.0.1:8089/orders/${order}?lang=${language}"
timeout_ms = 1500
fields = { status = "order_status", eta = "eta" }
on_status = { "404" = "not_found" }
next = "found"
fallback = "failed"
"#;

fn done(status: u16, fields: &[(&str, &str)]) -> Event {
    Event::LookupDone {
        http_status: status,
        fields: fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

#[test]
fn lookup_asks_the_runner_with_an_encoded_url() {
    let f = with_ends(LOOKUP, &["found", "not_found", "failed"]);
    let (s, a) = start(&f);
    assert_eq!(s.node, "l");
    assert_eq!(
        a,
        vec![Action::Lookup {
            url: "http://127.0.0.1:8089/orders/12%2F34%205?lang=en".into(),
            timeout_ms: 1500,
        }]
    );
}

#[test]
fn lookup_maps_fields_of_a_2xx_answer() {
    let f = with_ends(LOOKUP, &["found", "not_found", "failed"]);
    let (s, _) = start(&f);
    let (s, a) = go(&f, s, done(200, &[("status", "shipped"), ("other", "x")]));
    assert_eq!(ended_at(&a), "found");
    assert_eq!(var(&s, "order_status"), Some("shipped"));
    assert_eq!(
        var(&s, "eta"),
        Some(""),
        "a missing field empties its variable"
    );
    assert_eq!(var(&s, "lookup_status"), Some("200"));
    assert_eq!(var(&s, "other"), None);
}

#[test]
fn lookup_branches_on_status_and_failure() {
    let f = with_ends(LOOKUP, &["found", "not_found", "failed"]);
    let (s, _) = start(&f);
    assert_eq!(ended_at(&go(&f, s.clone(), done(404, &[])).1), "not_found");
    let (s5, a) = go(&f, s.clone(), done(503, &[("status", "x")]));
    assert_eq!(ended_at(&a), "failed");
    assert_eq!(
        var(&s5, "order_status"),
        None,
        "no mapping from an error body"
    );
    let (s, a) = go(
        &f,
        s,
        Event::LookupFailed {
            reason: "timeout".into(),
        },
    );
    assert_eq!(ended_at(&a), "failed");
    assert_eq!(var(&s, "lookup_status"), Some("0"));
    assert_eq!(var(&s, "error"), Some("timeout"));
}

#[test]
fn lookup_refuses_edge_events() {
    let f = with_ends(LOOKUP, &["found", "not_found", "failed"]);
    let (s, _) = start(&f);
    assert!(step(&f, s, Event::PromptFinished, &ENV).is_err());
}

// ---- say

const SAY: &str = r#"
[nodes.n]
type = "set"
vars = { amount = "2001", order = "40*1", eta = "2026-12-25" }
next = "s"
[nodes.s]
type = "say"
items = [{ prompt = "order_is" }, { digits = "${order}" }, { number = "${amount}" }, { date = "${eta}" }]
next = "end"
"#;

#[test]
fn say_builds_fragments_in_english() {
    let f = with_ends(SAY, &["end"]);
    let (s, a) = start(&f);
    assert_eq!(
        a,
        vec![play(
            &[
                "en/order_is",
                "en/digit_4",
                "en/digit_0",
                "en/star",
                "en/digit_1",
                "en/num_2",
                "en/thousand",
                "en/num_1",
                "en/month_12",
                "en/day_25"
            ],
            false
        )]
    );
    assert_eq!(ended_at(&go(&f, s, Event::PromptFinished).1), "end");
}

#[test]
fn say_builds_fragments_in_russian() {
    let f = with_ends(&format!("default_language = \"ru\"\n{SAY}"), &["end"]);
    let (_, a) = start(&f);
    assert_eq!(
        a,
        vec![play(
            &[
                "ru/order_is",
                "ru/digit_4",
                "ru/digit_0",
                "ru/star",
                "ru/digit_1",
                "ru/num_2_f",
                "ru/thousand_2",
                "ru/num_1",
                "ru/day_25",
                "ru/month_12"
            ],
            false
        )]
    );
}

#[test]
fn say_with_nothing_to_say_goes_on() {
    let f = with_ends(
        "[nodes.n]\ntype = \"say\"\nitems = [{ number = \"${unset}\" }, { date = \"soon\" }]\nnext = \"end\"",
        &["end"],
    );
    let (s, a) = start(&f);
    assert_eq!(ended_at(&a), "end");
    assert_eq!(s.node, "end");
}

// ---- enqueue

const ENQUEUE: &str = r#"
[nodes.n]
type = "set"
vars = { order = "777" }
next = "q"
[nodes.q]
type = "enqueue"
queue = "support"
priority = 3
skills = { billing = 2 }
language_skills = { en = { english = 1 }, ru = { russian = 1 } }
data = { order = "${order}", account = "${account}" }
"#;

#[test]
fn enqueue_with_skills_by_language_and_call_data() {
    let f = flow(&format!("start = \"n\"\nfallback_queue = \"q\"\n{ENQUEUE}"));
    let (_, a) = start(&f);
    assert_eq!(
        a,
        vec![Action::Enqueue {
            queue: "support".into(),
            priority: 3,
            skills: BTreeMap::from([("billing".into(), 2), ("english".into(), 1)]),
            data: BTreeMap::from([
                ("order".into(), "777".into()),
                ("language".into(), "en".into()),
            ]),
        }]
    );
}

#[test]
fn enqueue_priority_variable_wins() {
    let text =
        format!("start = \"n\"\nfallback_queue = \"q\"\ndefault_language = \"ru\"\n{ENQUEUE}")
            .replace("order = \"777\" }", "order = \"777\", priority = \"10\" }");
    let f = flow(&text);
    let (_, a) = start(&f);
    match &a[..] {
        [Action::Enqueue {
            priority,
            skills,
            data,
            ..
        }] => {
            assert_eq!(*priority, 10);
            assert_eq!(skills.get("russian"), Some(&1));
            assert_eq!(skills.get("english"), None);
            assert_eq!(data.get("language").map(String::as_str), Some("ru"));
        }
        other => panic!("{other:?}"),
    }
}

// ---- callback, voicemail

const VOICEMAIL: &str = r#"
[nodes.n]
type = "voicemail"
prompt = "leave_voicemail"
max_ms = 60000
silence_ms = 5000
beep = true
next = "cb"
fallback = "failed"
[nodes.cb]
type = "callback"
queue = "support"
priority = 1
voicemail = "${voicemail}"
data = { reason = "voicemail" }
next = "end"
"#;

#[test]
fn voicemail_plays_then_records_then_books_a_callback() {
    let f = with_ends(VOICEMAIL, &["end", "failed"]);
    let (s, a) = start(&f);
    assert_eq!(a, vec![play(&["en/leave_voicemail"], false)]);
    let (s, a) = go(&f, s, Event::PromptFinished);
    assert_eq!(
        a,
        vec![Action::Record {
            max_ms: 60000,
            silence_ms: 5000,
            beep: true
        }]
    );
    assert_eq!(s.node, "n");
    let (s, a) = go(
        &f,
        s,
        Event::Recorded {
            file: "vm-1.wav".into(),
            duration_ms: 4000,
        },
    );
    assert_eq!(var(&s, "voicemail"), Some("vm-1.wav"));
    assert_eq!(
        a,
        vec![
            Action::Callback {
                queue: "support".into(),
                number: "1001".into(),
                priority: 1,
                voicemail: Some("vm-1.wav".into()),
                data: BTreeMap::from([
                    ("reason".into(), "voicemail".into()),
                    ("language".into(), "en".into())
                ]),
            },
            hangup("end"),
        ]
    );
}

#[test]
fn voicemail_failure_takes_the_fallback() {
    let f = with_ends(VOICEMAIL, &["end", "failed"]);
    let (s, _) = start(&f);
    let (s, _) = go(&f, s, Event::PromptFinished);
    let (s, a) = go(
        &f,
        s,
        Event::RecordFailed {
            reason: "silence".into(),
        },
    );
    assert_eq!(ended_at(&a), "failed");
    assert_eq!(var(&s, "error"), Some("silence"));
}

#[test]
fn voicemail_without_prompt_records_at_once_and_callback_without_one() {
    let f = with_ends(
        r#"
[nodes.n]
type = "callback"
queue = "support"
number = "+7${caller}"
next = "vm"
[nodes.vm]
type = "voicemail"
beep = false
next = "end"
fallback = "end"
"#,
        &["end"],
    );
    let (_, a) = start(&f);
    assert_eq!(
        a,
        vec![
            Action::Callback {
                queue: "support".into(),
                number: "+71001".into(),
                priority: 0,
                voicemail: None,
                data: BTreeMap::from([("language".into(), "en".into())]),
            },
            Action::Record {
                max_ms: 60000,
                silence_ms: 5000,
                beep: false
            }
        ]
    );
}

// ---- transfer, hangup

const TRANSFER: &str = r#"
[nodes.n]
type = "transfer"
prompt = "transferring"
uri = "sip:night@127.0.0.1:5080;did=${did}"
timeout_ms = 20000
on_fail = "failed"
"#;

#[test]
fn transfer_after_its_prompt_and_on_fail() {
    let f = with_ends(TRANSFER, &["failed"]);
    let (s, a) = start(&f);
    assert_eq!(a, vec![play(&["en/transferring"], false)]);
    let (s, a) = go(&f, s, Event::PromptFinished);
    assert_eq!(
        a,
        vec![Action::Transfer {
            uri: "sip:night@127.0.0.1:5080;did=5550100".into(),
            timeout_ms: 20000
        }]
    );
    let (s, a) = go(
        &f,
        s,
        Event::TransferFailed {
            sip_status: 486,
            reason: "Busy Here".into(),
        },
    );
    assert_eq!(ended_at(&a), "failed");
    assert_eq!(var(&s, "error"), Some("486 Busy Here"));
}

#[test]
fn hangup_plays_its_prompt_first() {
    let f = with_ends(
        "[nodes.n]\ntype = \"hangup\"\nprompt = \"goodbye\"\nreason = \"done\"",
        &[],
    );
    let (s, a) = start(&f);
    assert_eq!(a, vec![play(&["en/goodbye"], false)]);
    let (_, a) = go(&f, s, Event::PromptFinished);
    assert_eq!(a, vec![hangup("done")]);
}
