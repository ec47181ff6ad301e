use super::*;
use crate::{parse_in, FlowDir};
use acd_routing::Strategy;

const GOOD: &str = include_str!("../../../config/acd.toml");

fn parse(text: &str) -> Result<Config, ConfigErrors> {
    parse_in(text, "test.toml", FlowDir::Embedded)
}

/// The shipped config with one more queue appended.
fn with_queue(table: &str) -> String {
    format!("{GOOD}\n[[queues]]\nid = \"extra\"\n{table}\n")
}

fn errors_of(text: &str) -> Vec<ConfigError> {
    parse(text).expect_err("config should be refused").0
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .expect("needle in text")
        + 1
}

fn extra(cfg: &Config) -> acd_routing::QueueDef {
    let rc = routing_config(cfg).expect("routing config");
    rc.queues
        .into_iter()
        .find(|q| q.id.as_str() == "extra")
        .expect("extra queue")
}

#[test]
fn shipped_config_translates() {
    let cfg = parse(GOOD).expect("shipped config is valid");
    let rc = routing_config(&cfg).expect("routing config");
    rc.validate().expect("core accepts it");
    assert!(rc
        .extensions
        .contains(&acd_routing::Extension("1001".into())));
    assert!(!rc.not_ready_reasons.is_empty());
    let support = rc.queues.iter().find(|q| q.id.as_str() == "support");
    let support = support.expect("support queue");
    assert!(support.hours.is_some());
    assert!(!support.relax.is_empty());
    assert_eq!(
        rc.offer_timeout_ms,
        cfg.distributor.offer_timeout_secs * 1000
    );
}

#[test]
fn every_key_translates() {
    let text = with_queue(
        r#"skills = "lang_ru >= 1 AND billing >= 3 OR vip_desk"
priority = 5
strategy = "most_skilled"
service_level = { percent = 90, within_secs = 15 }
wrap_up_secs = 7
max_wait_secs = 600
max_size = 40
aging_per_sec = 2
hours = { timezone = "Europe/Moscow", weekly = { "mon-fri" = ["09:00-18:00"] }, holidays = ["2026-12-31..2027-01-08"] }
relax = [{ after_secs = 30, skills = "support >= 1", priority_boost = 1 }, { after_secs = 120, overflow = { queue = "sales" } }]
overflow = { closed = { uri = "sip:night@night.example.net" }, full = { message = "moh" }, max_wait = { callback = true }, no_agents = { queue = "support" } }
announce = { every_secs = 30, estimated_wait = false }
callback = { retries = 2, retry_after_secs = 300, ring_secs = 25 }"#,
    );
    let q = extra(&parse(&text).expect("valid"));
    assert_eq!(
        q.skills.to_string(),
        SkillExpr::parse("lang_ru >= 1 AND billing >= 3 OR vip_desk")
            .unwrap()
            .to_string()
    );
    assert_eq!(q.priority, 5);
    assert_eq!(q.strategy, Strategy::MostSkilled);
    assert_eq!(q.service_level.percent, 90);
    assert_eq!(q.service_level.within_ms, 15_000);
    assert_eq!(q.wrap_up_ms, Some(7_000));
    assert_eq!(q.max_wait_ms, Some(600_000));
    assert_eq!(q.max_size, Some(40));
    assert_eq!(q.aging_per_sec, 2);
    let hours = q.hours.expect("hours");
    assert_eq!(hours.timezone, "Europe/Moscow");
    assert_eq!(hours.holidays, vec!["2026-12-31..2027-01-08".to_string()]);
    assert_eq!(q.relax.len(), 2);
    assert_eq!(q.relax[0].after_ms, 30_000);
    assert_eq!(q.relax[0].priority_boost, 1);
    assert!(q.relax[0].skills.is_some());
    assert_eq!(
        q.relax[1].overflow,
        Some(OverflowAction::Queue(QueueId("sales".into())))
    );
    assert_eq!(
        q.overflow.closed,
        Some(OverflowAction::Uri("sip:night@night.example.net".into()))
    );
    assert_eq!(q.overflow.full, Some(OverflowAction::Message("moh".into())));
    assert_eq!(q.overflow.max_wait, Some(OverflowAction::Callback));
    let announce = q.announce.expect("announce");
    assert_eq!(announce.every_ms, 30_000);
    assert!(announce.position && !announce.estimated_wait);
    let cb = q.callback.expect("callback");
    assert_eq!(
        (cb.retries, cb.retry_after_ms, cb.ring_ms),
        (2, 300_000, 25_000)
    );
}

#[test]
fn map_skills_stay_all_of() {
    let q = extra(&parse(&with_queue("skills = { sales = 2, english = 3 }")).unwrap());
    assert!(q.accepts(&[("sales".into(), 2), ("english".into(), 3)]));
    assert!(!q.accepts(&[("sales".into(), 2)]));
}

#[test]
fn bad_expression_names_file_line_key_and_column() {
    let text = with_queue("skills = \"sales >= AND billing\"");
    let errs = errors_of(&text);
    let e = &errs[0];
    let queues = text.matches("[[queues]]").count();
    assert_eq!(e.key, format!("queues[{}].skills", queues - 1));
    assert_eq!(e.line, Some(line_of(&text, "sales >= AND")));
    // `skills = "` is 10 characters; `AND` starts at byte 9 of the expression.
    assert!(e.message.contains("at column 20"), "{e}");
    assert!(e.to_string().starts_with("test.toml:"), "{e}");
}

#[test]
fn bad_relax_expression_is_located_in_the_inline_array() {
    let text = with_queue("relax = [{ after_secs = 10, skills = \"((a\" }]");
    let errs = errors_of(&text);
    assert!(errs[0].key.ends_with(".relax[0].skills"), "{}", errs[0]);
    assert_eq!(errs[0].line, Some(line_of(&text, "((a")));
}

#[test]
fn unknown_strategy_is_refused() {
    let errs = errors_of(&with_queue("strategy = \"fastest\""));
    assert!(errs[0].message.contains("fastest"), "{}", errs[0]);
    assert!(errs[0].key.ends_with("strategy"), "{}", errs[0]);
}

#[test]
fn bad_hours_are_refused() {
    let text = with_queue(
        r#"hours = { timezone = "Mars/Olympus", weekly = { "mon-fry" = ["18:00-09:00"] }, holidays = ["2026-13-01"] }"#,
    );
    let errs = errors_of(&text);
    let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
    assert!(
        keys.iter().any(|k| k.ends_with("hours.timezone")),
        "{keys:?}"
    );
    assert_eq!(
        keys.iter()
            .filter(|k| k.ends_with("weekly.mon-fry"))
            .count(),
        2,
        "{keys:?}"
    );
    assert!(keys.iter().any(|k| k.ends_with("holidays[0]")), "{keys:?}");
}

#[test]
fn overflow_references_are_checked() {
    let text = with_queue(
        r#"overflow = { closed = { queue = "nosuch" }, full = { flow = "noflow" }, max_wait = { message = "noprompt" }, no_agents = { uri = "night" } }"#,
    );
    let errs = errors_of(&text);
    let msgs: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    for (key, what) in [
        ("overflow.closed.queue", "nosuch"),
        ("overflow.full.flow", "noflow"),
        ("overflow.max_wait.message", "noprompt"),
        ("overflow.no_agents.uri", "night"),
    ] {
        assert!(
            errs.iter()
                .any(|e| e.key.ends_with(key) && e.message.contains(what)),
            "{key}: {msgs:?}"
        );
    }
}

#[test]
fn an_action_is_exactly_one_thing() {
    let errs = errors_of(&with_queue(
        r#"overflow = { closed = { queue = "sales", uri = "sip:x@y" } }"#,
    ));
    assert!(errs[0].message.contains("exactly one"), "{}", errs[0]);
    let errs = errors_of(&with_queue(
        r#"overflow = { closed = { callback = false } }"#,
    ));
    assert!(errs[0].key.ends_with("closed.callback"), "{}", errs[0]);
    let errs = errors_of(&with_queue(
        r#"overflow = { closed = { queue = "extra" } }"#,
    ));
    assert!(errs[0].message.contains("itself"), "{}", errs[0]);
}

#[test]
fn callback_trunk_must_exist() {
    let errs = errors_of(&with_queue(r#"callback = { trunk = "carrier" }"#));
    assert!(errs[0].key.ends_with("callback.trunk"), "{}", errs[0]);
    let text = format!(
        "{}\n[[trunks]]\nname = \"carrier\"\nsources = [\"127.0.0.1\"]\n",
        with_queue(r#"callback = { trunk = "carrier" }"#)
    );
    let q = extra(&parse(&text).expect("trunk exists"));
    let cb = q.callback.expect("callback");
    assert_eq!((cb.retry_after_ms, cb.ring_ms), (300_000, 30_000));
}

#[test]
fn ranges_are_checked() {
    let text = with_queue(
        "service_level = { percent = 120, within_secs = 0 }\nmax_wait_secs = 0\nmax_size = 0\nannounce = { every_secs = 0 }",
    );
    let errs = errors_of(&text);
    let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
    for key in [
        "service_level.percent",
        "service_level.within_secs",
        "max_wait_secs",
        "max_size",
        "announce.every_secs",
    ] {
        assert!(keys.iter().any(|k| k.ends_with(key)), "{key}: {keys:?}");
    }
}

#[test]
fn relax_steps_must_increase_and_do_something() {
    let errs = errors_of(&with_queue(
        "relax = [{ after_secs = 60, priority_boost = 1 }, { after_secs = 30, priority_boost = 1 }, { after_secs = 90 }]",
    ));
    assert!(errs[0].key.ends_with("relax[1].after_secs"), "{}", errs[0]);
    assert!(errs[1].key.ends_with("relax[2]"), "{}", errs[1]);
}

#[test]
fn not_ready_reasons_are_checked() {
    let text = GOOD.replacen(
        "[distributor]\n",
        "[distributor]\nnot_ready_reasons = [\"lunch\", \"lunch\", \"RONA\", \"\"]\n",
        1,
    );
    let text = text.replacen(
        "\nnot_ready_reasons = [\"break\"",
        "\n# not_ready_reasons = [\"break\"",
        1,
    );
    let errs = errors_of(&text);
    let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "distributor.not_ready_reasons[1]",
            "distributor.not_ready_reasons[2]",
            "distributor.not_ready_reasons[3]"
        ]
    );
}

#[test]
fn agent_auto_answer() {
    let text = GOOD.replacen(
        "name = \"Alice\"",
        "name = \"Alice\"\nauto_answer = true",
        1,
    );
    let rc = routing_config(&parse(&text).unwrap()).unwrap();
    assert!(rc
        .agents
        .iter()
        .any(|a| a.id.as_str() == "alice" && a.auto_answer));
    assert!(rc
        .agents
        .iter()
        .any(|a| a.id.as_str() == "bob" && !a.auto_answer));
}

#[test]
fn one_queue_from_toml() {
    let q = queue_from_toml(
        "id = \"vip\"\nskills = \"vip_desk\"\npriority = 10\nstrategy = \"round_robin\"",
    )
    .expect("queue");
    assert_eq!(q.id.as_str(), "vip");
    assert_eq!(q.priority, 10);
    assert_eq!(q.strategy, Strategy::RoundRobin);
    // References are not checked without a config ...
    let text = "id = \"vip\"\noverflow = { closed = { queue = \"nosuch\" } }";
    assert!(queue_from_toml(text).is_ok());
    // ... and are with one.
    let cfg = parse(GOOD).unwrap();
    let errs = queue_from_toml_in(text, &cfg).expect_err("unknown queue").0;
    assert_eq!(errs[0].key, "overflow.closed.queue");
    assert_eq!(errs[0].line, Some(2));
    let errs = queue_from_toml("id = \"vip\"\nskills = \"a >=\"")
        .expect_err("bad")
        .0;
    assert_eq!(errs[0].key, "skills");
    assert_eq!(errs[0].file, "<queue>");
    let errs = queue_from_toml("id = \"vip\"\nbogus = 1")
        .expect_err("bad")
        .0;
    assert!(errs[0].message.contains("bogus"), "{}", errs[0]);
}

#[test]
fn a_survey_names_an_existing_flow() {
    let text = with_queue("survey = { flow = \"sales\" }");
    let q = extra(&parse(&text).expect("valid"));
    assert_eq!(
        q.survey,
        Some(acd_routing::Survey {
            flow: "sales".into()
        })
    );
    assert_eq!(extra(&parse(&with_queue("")).expect("valid")).survey, None);
}

#[test]
fn a_survey_with_a_missing_flow_names_file_line_and_key() {
    let text = with_queue("survey = { flow = \"nosuch_survey\" }");
    let errs = errors_of(&text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    let e = &errs[0];
    let queues = text.matches("[[queues]]").count();
    assert_eq!(e.key, format!("queues[{}].survey.flow", queues - 1));
    assert_eq!(e.line, Some(line_of(&text, "nosuch_survey")));
    assert!(e.message.contains("no flow `nosuch_survey`"), "{e}");
    assert!(e.to_string().starts_with("test.toml:"), "{e}");
    // An unknown key in the table is refused too.
    let errs = errors_of(&with_queue("survey = { flow = \"sales\", score = 5 }"));
    assert!(errs[0].to_string().contains("score"), "{}", errs[0]);
}

#[test]
fn an_upserted_queue_checks_its_survey_flow_against_the_config() {
    let cfg = parse(GOOD).expect("valid");
    let q = queue_from_toml_in("id = \"x\"\nsurvey = { flow = \"sales\" }\n", &cfg).expect("valid");
    assert!(q.survey.is_some());
    let errs = queue_from_toml_in("id = \"x\"\nsurvey = { flow = \"nope\" }\n", &cfg)
        .expect_err("unknown flow")
        .0;
    assert_eq!(errs[0].key, "survey.flow");
    assert_eq!(errs[0].line, Some(2));
}
