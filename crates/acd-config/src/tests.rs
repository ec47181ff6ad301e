use super::*;

const GOOD: &str = include_str!("../../../config/acd.toml");

#[test]
fn embedded_defaults_are_valid() {
    let loaded = Loaded::embedded().expect("embedded config must be valid");
    assert!(loaded.config.dids.iter().any(|d| d.number == "5550100"));
    let prompts = loaded.prompt_files().expect("embedded prompts");
    assert!(prompts["welcome"].starts_with(b"RIFF"));
}

fn errors_of(text: &str) -> Vec<ConfigError> {
    parse(text, "test.toml")
        .expect_err("config should be refused")
        .0
}

#[test]
fn unknown_queue_in_flow_names_key_and_line() {
    let text = GOOD.replacen(
        "queue = \"sales\"\npriority",
        "queue = \"nosuch\"\npriority",
        1,
    );
    let errs = errors_of(&text);
    let e = errs
        .iter()
        .find(|e| e.message.contains("nosuch"))
        .expect("error about nosuch");
    assert_eq!(e.key, "flows.sales.nodes.queue.queue");
    let line = text.lines().position(|l| l.contains("\"nosuch\"")).unwrap() + 1;
    assert_eq!(e.line, Some(line));
    assert!(e.to_string().starts_with(&format!(
        "test.toml:{line}: key `flows.sales.nodes.queue.queue`"
    )));
}

#[test]
fn did_to_missing_flow() {
    let text = GOOD.replace("flow = \"support\"", "flow = \"nope\"");
    let errs = errors_of(&text);
    let e = &errs[0];
    assert_eq!(e.key, "dids[1].flow");
    let line = text.lines().position(|l| l.contains("\"nope\"")).unwrap() + 1;
    assert_eq!(e.line, Some(line));
}

#[test]
fn bad_type_is_located() {
    let text = GOOD.replace("wrap_up_secs = 5", "wrap_up_secs = \"five\"");
    let errs = errors_of(&text);
    let line = text.lines().position(|l| l.contains("\"five\"")).unwrap() + 1;
    assert_eq!(errs[0].line, Some(line), "{}", errs[0]);
    assert_eq!(errs[0].key, "distributor.wrap_up_secs");
}

#[test]
fn bad_type_in_array_of_tables_names_the_element() {
    let text = GOOD.replace("number = \"1002\"", "number = 1002");
    let errs = errors_of(&text);
    assert_eq!(errs[0].key, "extensions[1].number", "{}", errs[0]);
}

#[test]
fn missing_key_is_reported() {
    let text = GOOD.replace("realm = \"acd.local\"", "");
    let errs = errors_of(&text);
    assert!(errs[0].message.contains("realm"), "{}", errs[0]);
}

#[test]
fn skill_level_out_of_range_in_inline_table() {
    let text = GOOD.replace(
        "skills = { sales = 5, english = 8 }",
        "skills = { sales = 50, english = 8 }",
    );
    let errs = errors_of(&text);
    assert_eq!(errs[0].key, "agents[0].skills.sales");
    let line = text.lines().position(|l| l.contains("sales = 50")).unwrap() + 1;
    assert_eq!(errs[0].line, Some(line));
}

#[test]
fn duplicate_agent() {
    let text = GOOD.replace("id = \"bob\"", "id = \"alice\"");
    let errs = errors_of(&text);
    assert_eq!(errs[0].key, "agents[1].id");
    assert!(errs[0].message.contains("twice"));
}

#[test]
fn unknown_field_refused() {
    let text = GOOD.replace("[grpc]", "[grpc]\nlisten_typo = 1");
    let errs = errors_of(&text);
    assert!(errs[0].message.contains("listen_typo"), "{}", errs[0]);
    assert!(errs[0].line.is_some());
}

#[test]
fn sip_t1_defaults_to_500_ms_and_must_not_be_zero() {
    let without = GOOD.replace("t1_ms = 500\n", "");
    assert!(!without.contains("t1_ms"));
    assert_eq!(parse(&without, "test.toml").unwrap().sip.t1_ms, 500);
    let fast = GOOD.replace("t1_ms = 500", "t1_ms = 50");
    assert_eq!(parse(&fast, "test.toml").unwrap().sip.t1_ms, 50);
    let errs = errors_of(&GOOD.replace("t1_ms = 500", "t1_ms = 0"));
    assert_eq!(errs[0].key, "sip.t1_ms", "{}", errs[0]);
}
