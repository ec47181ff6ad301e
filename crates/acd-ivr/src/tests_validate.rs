//! Every kind of problem `validate` reports, with the node and key it names.

use std::collections::BTreeSet;

use crate::tests::flow;
use crate::*;

fn known() -> Known {
    let mut prompts: BTreeSet<String> = ["choose_language", "moh"].map(String::from).into();
    for lang in ["en", "ru"] {
        for p in ["welcome", "menu", "invalid", "no_input", "goodbye"] {
            prompts.insert(format!("{lang}/{p}"));
        }
    }
    Known {
        queues: ["sales", "support"].map(String::from).into(),
        prompts,
        languages: vec!["en".into(), "ru".into()],
    }
}

/// A valid flow skeleton around `body` (nodes reached from `n`).
fn issues_in(head: &str, body: &str) -> Vec<FlowIssue> {
    let text = format!(
        "start = \"n\"\nfallback_queue = \"sales\"\n{head}\n{body}\n[nodes.end]\ntype = \"hangup\"\nprompt = \"goodbye\"\n"
    );
    validate(&flow(&text), &known())
}

fn issues(body: &str) -> Vec<FlowIssue> {
    issues_in("", body)
}

/// Asserts exactly one issue, at `node`/`key`, whose message contains `text`.
#[track_caller]
fn one(issues: &[FlowIssue], node: Option<&str>, key: Option<&str>, text: &str) {
    assert_eq!(issues.len(), 1, "{issues:#?}");
    let i = &issues[0];
    assert_eq!(i.node.as_deref(), node, "{i:?}");
    assert_eq!(i.key.as_deref(), key, "{i:?}");
    assert!(i.message.contains(text), "`{}` lacks `{text}`", i.message);
}

const MENU: &str = r#"
[nodes.n]
type = "menu"
prompt = "menu"
options = { "1" = "end", "2" = "q" }
invalid_prompt = "invalid"
no_input_prompt = "no_input"
default = "end"
[nodes.q]
type = "enqueue"
queue = "support"
"#;

#[test]
fn a_good_flow_has_no_issues() {
    assert_eq!(issues(MENU), vec![]);
}

#[test]
fn start_and_fallback_queue() {
    let f = flow("start = \"nope\"\nfallback_queue = \"gone\"\n[nodes]\n");
    let got = validate(&f, &known());
    assert_eq!(got.len(), 2, "{got:#?}");
    assert_eq!(got[0].key.as_deref(), Some("start"));
    assert_eq!(got[1].key.as_deref(), Some("fallback_queue"));
}

#[test]
fn default_language_needs_a_prompt_set() {
    one(
        &issues_in("default_language = \"de\"", MENU),
        None,
        Some("default_language"),
        "`de`",
    );
}

#[test]
fn neutral_prompts_must_exist() {
    one(
        &issues_in("neutral_prompts = [\"moh\", \"jingle\"]", MENU),
        None,
        Some("neutral_prompts"),
        "`jingle`",
    );
}

#[test]
fn unknown_node_reference() {
    one(
        &issues(&MENU.replace("\"2\" = \"q\"", "\"2\" = \"q\", \"3\" = \"nowhere\"")),
        Some("n"),
        Some("options"),
        "`nowhere`",
    );
}

#[test]
fn unreachable_node() {
    let got = issues(&format!("{MENU}\n[nodes.lost]\ntype = \"hangup\"\n"));
    one(&got, Some("lost"), None, "unreachable");
}

#[test]
fn loop_without_input() {
    let got = issues(
        r#"
[nodes.n]
type = "set"
var = "x"
value = "1"
next = "b"
[nodes.b]
type = "branch"
var = "x"
cases = { "1" = "n" }
default = "h"
[nodes.h]
type = "hours"
timezone = "UTC"
open = "n"
closed = "end"
"#,
    );
    // One report per loop found by a depth-first walk: at least one for n-b-n / n-b-h-n.
    assert!(!got.is_empty());
    assert!(got
        .iter()
        .all(|i| i.message.starts_with("loop without input") && i.key.is_none()));
    assert!(got[0].message.contains("b -> n -> b"), "{got:#?}");
}

#[test]
fn loops_through_a_menu_are_fine() {
    // "9 repeat" and a retry back to the menu wait for the caller.
    let got = issues(&MENU.replace("\"2\" = \"q\"", "\"2\" = \"q\", \"9\" = \"again\"").replace(
        "[nodes.q]",
        "[nodes.again]\ntype = \"set\"\nvar = \"r\"\nvalue = \"1\"\nnext = \"n\"\n[nodes.q]",
    ));
    assert_eq!(got, vec![]);
}

#[test]
fn missing_prompt_in_one_language() {
    let mut k = known();
    k.prompts.remove("ru/menu");
    let text = format!(
        "start = \"n\"\nfallback_queue = \"sales\"\n{MENU}\n[nodes.end]\ntype = \"hangup\"\n"
    );
    let got = validate(&flow(&text), &k);
    one(&got, Some("n"), Some("prompt"), "`ru/menu`");
    assert!(!got[0].message.contains("en/menu"));
}

#[test]
fn missing_retry_and_neutral_prompts() {
    let got = issues(&MENU.replace("\"invalid\"", "\"oops\""));
    one(
        &got,
        Some("n"),
        Some("invalid_prompt"),
        "`en/oops`, `ru/oops`",
    );
    let got = issues_in(
        "neutral_prompts = [\"choose_language\"]",
        &MENU.replace("prompt = \"menu\"", "prompt = \"choose_language\""),
    );
    assert_eq!(
        got,
        vec![],
        "neutral prompts are checked under their own name"
    );
    one(
        &issues(&MENU.replace("prompt = \"menu\"", "prompt = \"de/menu\"")),
        Some("n"),
        Some("prompt"),
        "no prompt `de/menu`",
    );
}

#[test]
fn play_with_nothing_to_play() {
    one(
        &issues("[nodes.n]\ntype = \"play\"\nnext = \"end\""),
        Some("n"),
        Some("prompt"),
        "nothing to play",
    );
}

#[test]
fn bad_templates() {
    one(
        &issues("[nodes.n]\ntype = \"set\"\nvars = { a = \"${caller\" }\nnext = \"end\""),
        Some("n"),
        Some("vars"),
        "unclosed",
    );
    one(
        &issues("[nodes.n]\ntype = \"transfer\"\nuri = \"sip:${}@x\"\non_fail = \"end\""),
        Some("n"),
        Some("uri"),
        "bad variable",
    );
}

#[test]
fn bad_menu_options() {
    one(
        &issues(&MENU.replace("\"1\" = \"end\"", "\"a\" = \"end\"")),
        Some("n"),
        Some("options"),
        "`a` is not a digit string",
    );
    let got =
        issues("[nodes.n]\ntype = \"menu\"\nprompt = \"menu\"\noptions = {}\ndefault = \"end\"");
    one(&got, Some("n"), Some("options"), "no options");
}

#[test]
fn language_options_need_prompt_sets() {
    one(
        &issues_in(
            "neutral_prompts = [\"choose_language\"]",
            "[nodes.n]\ntype = \"language\"\nprompt = \"choose_language\"\noptions = { \"1\" = \"en\", \"3\" = \"de\" }\nnext = \"end\"",
        ),
        Some("n"),
        Some("options"),
        "`de`",
    );
}

const COLLECT: &str = r#"
[nodes.n]
type = "collect"
prompt = "menu"
var = "order"
min_length = 4
max_length = 10
pattern = "[0-9]+"
next = "end"
fallback = "end"
"#;

#[test]
fn collect_checks() {
    assert_eq!(issues(COLLECT), vec![]);
    one(
        &issues(&COLLECT.replace("\"[0-9]+\"", "\"[0-9\"")),
        Some("n"),
        Some("pattern"),
        "bad pattern",
    );
    one(
        &issues(&COLLECT.replace("max_length = 10", "max_length = 3")),
        Some("n"),
        Some("min_length"),
        "4..3",
    );
    one(
        &issues(&COLLECT.replace("pattern", "terminator = \"x\"\npattern")),
        Some("n"),
        Some("terminator"),
        "not one DTMF key",
    );
    one(
        &issues(&COLLECT.replace("var = \"order\"", "var = \"\"")),
        Some("n"),
        Some("var"),
        "no variable",
    );
}

const HOURS: &str = r#"
[nodes.n]
type = "hours"
timezone = "Europe/Moscow"
weekly = { mon = ["08:00-20:00"] }
holidays = ["2026-12-31", "2027-01-01..2027-01-08"]
open = "end"
closed = "end"
"#;

#[test]
fn hours_checks() {
    assert_eq!(issues(HOURS), vec![]);
    one(
        &issues(&HOURS.replace("Europe/Moscow", "Europe/Atlantis")),
        Some("n"),
        Some("timezone"),
        "Atlantis",
    );
    one(
        &issues(&HOURS.replace("mon =", "monday =")),
        Some("n"),
        Some("weekly"),
        "`monday` is not a day",
    );
    one(
        &issues(&HOURS.replace("08:00-20:00", "20:00-08:00")),
        Some("n"),
        Some("weekly"),
        "ends before",
    );
    one(
        &issues(&HOURS.replace("08:00-20:00", "8-20")),
        Some("n"),
        Some("weekly"),
        "bad time range",
    );
    one(
        &issues(&HOURS.replace("2026-12-31", "2026-12-32")),
        Some("n"),
        Some("holidays"),
        "bad holiday date",
    );
    one(
        &issues(&HOURS.replace("2027-01-01..2027-01-08", "2027-01-08..2027-01-01")),
        Some("n"),
        Some("holidays"),
        "ends before",
    );
}

#[test]
fn weekday_checks() {
    let body = "[nodes.n]\ntype = \"weekday\"\ntimezone = \"Nowhere/City\"\ndays = { fri = \"end\", xyz = \"end\" }\ndefault = \"end\"";
    let got = issues(body);
    assert_eq!(got.len(), 2, "{got:#?}");
    assert_eq!(got[0].key.as_deref(), Some("timezone"));
    assert_eq!(got[1].key.as_deref(), Some("days"));
    let body = "[nodes.n]\ntype = \"weekday\"\ntimezone = \"UTC\"\ndays = { mon-fri = \"end\", fri-sun = \"end\" }\ndefault = \"end\"";
    one(
        &issues(body),
        Some("n"),
        Some("days"),
        "`fri` is in both `fri-sun` and `mon-fri`",
    );
}

#[test]
fn unknown_list_and_empty_branch_variable() {
    let body = "[nodes.n]\ntype = \"branch\"\nvar = \"caller\"\nlists = { vips = \"end\" }\ndefault = \"end\"";
    one(
        &issues_in("[lists]\nvip = [\"1\"]", body),
        Some("n"),
        Some("lists"),
        "no list `vips`",
    );
    let body = "[nodes.n]\ntype = \"branch\"\nvar = \"\"\ndefault = \"end\"";
    one(&issues(body), Some("n"), Some("var"), "no variable");
}

#[test]
fn set_without_variable() {
    one(
        &issues("[nodes.n]\ntype = \"set\"\nvalue = \"1\"\nnext = \"end\""),
        Some("n"),
        Some("var"),
        "needs `var`",
    );
}

#[test]
fn lookup_checks() {
    let body = "[nodes.n]\ntype = \"lookup\"\nurl = \"ftp://x/${order}\"\non_status = { \"404\" = \"end\", \"abc\" = \"end\" }\nnext = \"end\"\nfallback = \"end\"";
    let got = issues(body);
    assert_eq!(got.len(), 2, "{got:#?}");
    assert_eq!(got[0].key.as_deref(), Some("url"));
    assert!(got[1].message.contains("`abc` is not an HTTP status"));
}

#[test]
fn say_checks_fragments_in_every_language() {
    let mut k = known();
    for lang in ["en", "ru"] {
        for d in 0..=9 {
            k.prompts.insert(format!("{lang}/digit_{d}"));
        }
    }
    k.prompts.remove("ru/digit_7");
    let text = "start = \"n\"\nfallback_queue = \"sales\"\n[nodes.n]\ntype = \"say\"\nitems = [{ digits = \"${caller}\" }, { prompt = \"welcome\" }]\nnext = \"end\"\n[nodes.end]\ntype = \"hangup\"\n";
    let got = validate(&flow(text), &k);
    one(&got, Some("n"), Some("items"), "`ru/digit_7`");
    let got = validate(&flow(&text.replace("digits", "number")), &k);
    assert_eq!(
        got.len(),
        2,
        "numbers need num_* in both languages: {got:#?}"
    );
    assert!(got[1].message.contains("ru/thousand_5"));
    assert!(!got[0].message.contains("thousand_5"));
    let got = validate(&flow(&text.replace("items = [", "items = [] #")), &k);
    one(&got, Some("n"), Some("items"), "nothing to say");
}

#[test]
fn unknown_queues() {
    one(
        &issues(&MENU.replace("\"support\"", "\"billing\"")),
        Some("q"),
        Some("queue"),
        "`billing`",
    );
    one(
        &issues("[nodes.n]\ntype = \"callback\"\nqueue = \"x\"\nnext = \"end\""),
        Some("n"),
        Some("queue"),
        "no queue `x`",
    );
    // Not checked without a list of queues.
    let text =
        format!("start = \"n\"\nfallback_queue = \"x\"\n{MENU}\n[nodes.end]\ntype = \"hangup\"\n")
            .replace("\"support\"", "\"billing\"");
    assert_eq!(validate(&flow(&text), &Known::default()), vec![]);
}

#[test]
fn voicemail_needs_a_variable() {
    one(
        &issues("[nodes.n]\ntype = \"voicemail\"\nvar = \"\"\nnext = \"end\"\nfallback = \"end\""),
        Some("n"),
        Some("var"),
        "no variable",
    );
}
