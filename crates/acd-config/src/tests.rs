use super::*;

const GOOD: &str = include_str!("../../../config/acd.toml");

/// Config text with its directories (flows, prompt sets) read from the
/// embedded `config/`, as the shipped file refers to them.
fn parse(text: &str, name: &str) -> Result<Config, ConfigErrors> {
    parse_in(text, name, FlowDir::Embedded)
}

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
fn zero_admission_limit_is_refused_with_its_line() {
    let text = GOOD.replacen("max_calls_per_second = 400", "max_calls_per_second = 0", 1);
    assert_ne!(text, GOOD, "the embedded config sets max_calls_per_second");
    let errs = errors_of(&text);
    let e = errs
        .iter()
        .find(|e| e.key == "admission.max_calls_per_second")
        .expect("error about the zero limit");
    let line = text
        .lines()
        .position(|l| l.starts_with("max_calls_per_second"))
        .unwrap()
        + 1;
    assert_eq!(e.line, Some(line));
}

#[test]
fn sip_limits_default_when_absent_and_are_read_when_present() {
    let text = GOOD.replace("\n[sip.limits]", "\n[sip.limits_unused_table_name_check]");
    assert!(parse(&text, "t.toml").is_err(), "unknown keys are refused");
    let without: String = GOOD
        .lines()
        .filter(|l| {
            !l.starts_with("[sip.limits]") && !l.starts_with("max_") && !l.starts_with("tcp_")
        })
        .collect::<Vec<_>>()
        .join("\n");
    let c = parse(&without, "t.toml").unwrap();
    assert_eq!(c.sip.limits, SipLimits::default());
    let text = GOOD.replace(
        "tcp_header_timeout_secs = 10",
        "tcp_header_timeout_secs = 2",
    );
    let c = parse(&text, "t.toml").unwrap();
    assert_eq!(c.sip.limits.tcp_header_timeout_secs, 2);
    assert!(c.sip.tls.is_none());
}

#[test]
fn bad_sip_limits_name_key_and_line() {
    let text = GOOD
        .replace("max_tcp_per_source = 128", "max_tcp_per_source = 5000")
        .replace("tcp_idle_timeout_secs = 600", "tcp_idle_timeout_secs = 0");
    let errs = errors_of(&text);
    let per_source = errs
        .iter()
        .find(|e| e.key == "sip.limits.max_tcp_per_source")
        .expect("error about max_tcp_per_source");
    let line = text.lines().position(|l| l.contains("= 5000")).unwrap() + 1;
    assert_eq!(per_source.line, Some(line), "{per_source}");
    let idle = errs
        .iter()
        .find(|e| e.key == "sip.limits.tcp_idle_timeout_secs")
        .expect("error about the idle timeout");
    assert!(idle.message.contains("at least 1"), "{idle}");
}

#[test]
fn tls_files_are_checked_at_load() {
    let text = GOOD.replace(
        "# [sip.tls]\n# listen = \"0.0.0.0:5061\"",
        "[sip.tls]\nlisten = \"0.0.0.0:5061\"\ncert = \"cert.pem\"\nkey = \"missing.key\"",
    );
    let dir = config_dir("tls", &text, &[]);
    std::fs::write(dir.join("cert.pem"), "x").unwrap();
    let file = dir.join("acd.toml");
    let errs = Loaded::from_file(&file).expect_err("missing key file").0;
    let e = errs
        .iter()
        .find(|e| e.key == "sip.tls.key")
        .unwrap_or_else(|| panic!("no error about sip.tls.key in {errs:?}"));
    let line = text
        .lines()
        .position(|l| l.contains("missing.key"))
        .unwrap()
        + 1;
    assert_eq!(e.line, Some(line));
    assert!(!errs.iter().any(|e| e.key == "sip.tls.cert"), "{errs:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn trunks_parse_and_bad_cidr_is_named_with_line() {
    let text = format!(
        "{GOOD}\n[[trunks]]\nname = \"carrier\"\nsources = [\"203.0.113.0/24\", \"127.0.0.1\"]\nmax_concurrent_calls = 30\nmax_calls_per_second = 5.0\n"
    );
    let c = parse(&text, "test.toml").expect("valid trunks");
    assert_eq!(c.trunks.len(), 1);
    assert_eq!(c.trunks[0].sources[0].prefix, 24);
    assert_eq!(c.trunks[0].max_concurrent_calls, Some(30));

    let bad = text.replace("203.0.113.0/24", "203.0.113.0/40");
    let errs = errors_of(&bad);
    let line = bad
        .lines()
        .collect::<Vec<_>>()
        .iter()
        .rposition(|l| l.contains("/40"))
        .unwrap()
        + 1;
    assert_eq!(errs[0].line, Some(line), "{errs:?}");
    assert!(errs[0].key.starts_with("trunks[0].sources"), "{errs:?}");
    assert!(
        errs[0].message.contains("bad CIDR `203.0.113.0/40`"),
        "{errs:?}"
    );
}

#[test]
fn trunk_credentials_and_limits_are_checked() {
    let text = format!(
        "{GOOD}\n[[trunks]]\nname = \"carrier\"\nsources = [\"127.0.0.1\"]\nusername = \"pbx\"\nmax_concurrent_calls = 0\nmax_calls_per_second = -1.0\n"
    );
    let errs = errors_of(&text);
    let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "trunks[0].password",
            "trunks[0].max_concurrent_calls",
            "trunks[0].max_calls_per_second"
        ],
        "{errs:?}"
    );
    let line = text.lines().count(); // the last line
    assert!(text
        .lines()
        .last()
        .unwrap()
        .starts_with("max_calls_per_second"));
    assert_eq!(errs[2].line, Some(line));
}

#[test]
fn auth_section_defaults_and_checks() {
    let c = parse(GOOD, "test.toml").unwrap();
    assert_eq!(c.auth.max_failures, 5);
    let text = GOOD
        .replace("max_failures = 5", "max_failures = 0")
        .replace(r#"algorithms = ["MD5"]"#, r#"algorithms = ["MD5", "MD5"]"#);
    let errs = errors_of(&text);
    assert!(
        errs.iter().any(|e| e.key == "auth.max_failures"),
        "{errs:?}"
    );
    assert!(errs.iter().any(|e| e.key == "auth.algorithms"), "{errs:?}");
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

#[test]
fn drain_deadline_and_handover_socket() {
    let cfg = parse(GOOD, "test.toml").unwrap();
    assert_eq!(cfg.sip.drain_deadline_secs, 3600);
    assert_eq!(cfg.sip.handover_socket, None);
    let text = GOOD.replace(
        "drain_deadline_secs = 3600",
        "drain_deadline_secs = 30\nhandover_socket = \"/run/acd/h.sock\"",
    );
    let cfg = parse(&text, "test.toml").unwrap();
    assert_eq!(cfg.sip.drain_deadline_secs, 30);
    assert_eq!(
        cfg.sip.handover_socket.as_deref(),
        Some(std::path::Path::new("/run/acd/h.sock"))
    );
    let without = GOOD.replace("drain_deadline_secs = 3600\n", "");
    assert_eq!(
        parse(&without, "test.toml")
            .unwrap()
            .sip
            .drain_deadline_secs,
        3600
    );
}

#[test]
fn leadership_keys_are_read_and_checked() {
    let text = GOOD.replace(
        "offer_timeout_secs = 20",
        "offer_timeout_secs = 20\netcd = [\"http://127.0.0.1:2379\", \"http://10.0.0.2:2379\"]\nelection = \"pair-a\"\nlease_ttl_secs = 1\nadvertise = \"http://10.0.0.5:50051\"",
    );
    let c = parse(&text, "test.toml").expect("valid");
    assert_eq!(c.distributor.etcd.len(), 2);
    assert_eq!(c.distributor.election, "pair-a");
    assert_eq!(c.distributor.lease_ttl_secs, 1);
    assert_eq!(
        c.distributor.advertise.as_deref(),
        Some("http://10.0.0.5:50051")
    );

    let text = GOOD.replace(
        "offer_timeout_secs = 20",
        "offer_timeout_secs = 20\netcd = [\"127.0.0.1:2379\"]\nlease_ttl_secs = 0",
    );
    let errs = errors_of(&text);
    let e = errs
        .iter()
        .find(|e| e.key == "distributor.etcd[0]")
        .expect("error about the etcd URL");
    let line = text.lines().position(|l| l.starts_with("etcd =")).unwrap() + 1;
    assert_eq!(e.line, Some(line), "{e}");
    assert!(errs.iter().any(|e| e.key == "distributor.lease_ttl_secs"));

    let text = GOOD.replace(
        "offer_timeout_secs = 20",
        "offer_timeout_secs = 20\netcd_typo = 1",
    );
    assert!(errors_of(&text)[0].message.contains("etcd_typo"));
}

#[test]
fn demo_table_is_optional() {
    // GOOD without any [demo] table, then with one appended.
    let without = GOOD
        .lines()
        .filter(|l| !l.starts_with("[demo]") && !l.starts_with("orders_listen"))
        .collect::<Vec<_>>()
        .join("\n");
    let cfg = parse(&without, "test.toml").unwrap();
    assert_eq!(cfg.demo.orders_listen, None);
    let with = format!("{without}\n[demo]\norders_listen = \"127.0.0.1:8089\"\n");
    let cfg = parse(&with, "test.toml").unwrap();
    assert_eq!(cfg.demo.orders_listen, Some(([127, 0, 0, 1], 8089).into()));
    let errs = errors_of(&format!("{without}\n[demo]\norders = \"x\"\n"));
    assert!(
        errs.iter().any(|e| e.message.contains("orders")),
        "{errs:?}"
    );
}

/// A config dir with every embedded file (flows, prompts), `acd.toml` =
/// `text` and the given flow files under `flows/`.
fn config_dir(tag: &str, text: &str, flows: &[(&str, &str)]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("acd-config-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for (path, bytes) in defaults::FILES {
        let full = dir.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, bytes).unwrap();
    }
    std::fs::create_dir_all(dir.join("flows")).unwrap();
    for (name, body) in flows {
        std::fs::write(dir.join("flows").join(name), body).unwrap();
    }
    std::fs::write(dir.join("acd.toml"), text).unwrap();
    dir
}

const NIGHT_FLOW: &str = "start = \"hello\"\nfallback_queue = \"support\"\n\n\
[nodes.hello]\ntype = \"play\"\nprompt = \"en/welcome\"\nnext = \"q\"\n\n\
[nodes.q]\ntype = \"enqueue\"\nqueue = \"support\"\n";

fn with_flows_dir(text: &str) -> String {
    let text = text.replace(
        "[prompts]\n",
        "[prompt_sets.en]\nwelcome = \"prompts/welcome.wav\"\n\n[prompt_sets.ru]\nwelcome = \"prompts/welcome.wav\"\n\n[prompts]\n",
    );
    text.replace("flow = \"support\"", "flow = \"night\"")
}

#[test]
fn flows_come_from_files_and_prompt_sets_are_flattened() {
    let text = with_flows_dir(GOOD);
    let dir = config_dir(
        "flows-ok",
        &text,
        &[("night.toml", NIGHT_FLOW), ("notes.txt", "x")],
    );
    let loaded = Loaded::from_file(&dir.join("acd.toml")).expect("valid");
    let c = &loaded.config;
    assert_eq!(c.flows["night"].start, "hello");
    assert!(c.flows.contains_key("sales"), "inline flows stay");
    assert_eq!(
        c.flows.len(),
        5,
        "sales, support, survey, night and the shipped support247"
    );
    let prompts = loaded.prompt_files().unwrap();
    assert!(prompts["en/welcome"].starts_with(b"RIFF"));
    assert!(prompts.contains_key("ru/welcome") && prompts.contains_key("moh"));
    let k = known(c);
    assert_eq!(k.languages, ["en", "ru"]);
    assert!(k.prompts.contains("ru/welcome") && k.queues.contains("sales"));
    let watched = loaded.watched_files();
    assert!(
        watched.contains(&dir.join("flows").join("night.toml")),
        "{watched:?}"
    );
    assert!(watched.contains(&dir.join("acd.toml")));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn flow_file_issues_name_file_line_and_node() {
    let text = with_flows_dir(GOOD);
    let broken = NIGHT_FLOW
        .replace("next = \"q\"", "next = \"nowhere\"")
        .replace("\nqueue = \"support\"\n", "\nqueue = \"nosuch\"\n");
    let dir = config_dir("flows-bad", &text, &[("night.toml", &broken)]);
    let errs = Loaded::from_file(&dir.join("acd.toml"))
        .expect_err("refused")
        .0;
    let file = dir.join("flows").join("night.toml").display().to_string();
    let line_of = |needle: &str| broken.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let nowhere = errs
        .iter()
        .find(|e| e.message.contains("nowhere"))
        .unwrap_or_else(|| panic!("{errs:?}"));
    assert_eq!(nowhere.file, file);
    assert!(nowhere.key.starts_with("nodes.hello"), "{nowhere}");
    assert!(nowhere.message.contains("node `hello`"), "{nowhere}");
    assert!(
        [Some(line_of("[nodes.hello]")), Some(line_of("nowhere"))].contains(&nowhere.line),
        "{nowhere}"
    );
    let queue = errs
        .iter()
        .find(|e| e.message.contains("nosuch"))
        .unwrap_or_else(|| panic!("{errs:?}"));
    assert_eq!(queue.key, "nodes.q.queue");
    assert_eq!(queue.line, Some(line_of("nosuch")));
    assert!(queue.to_string().starts_with(&format!(
        "{file}:{}: key `nodes.q.queue`",
        line_of("nosuch")
    )));

    // A syntax error in a flow file is located in that file.
    std::fs::write(dir.join("flows/night.toml"), "start = \"a\"\nnodes = 3\n").unwrap();
    let errs = Loaded::from_file(&dir.join("acd.toml"))
        .expect_err("refused")
        .0;
    assert!(
        errs.iter().any(|e| e.file == file && e.line.is_some()),
        "{errs:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_flow_in_both_places_is_refused() {
    let text = with_flows_dir(GOOD);
    let dir = config_dir(
        "flows-dup",
        &text,
        &[("night.toml", NIGHT_FLOW), ("sales.toml", NIGHT_FLOW)],
    );
    let errs = Loaded::from_file(&dir.join("acd.toml"))
        .expect_err("refused")
        .0;
    let e = errs
        .iter()
        .find(|e| e.key == "flows.sales")
        .unwrap_or_else(|| panic!("{errs:?}"));
    assert!(e.message.contains("sales.toml"), "{e}");
    assert_eq!(
        e.line,
        Some(text.lines().position(|l| l == "[flows.sales]").unwrap() + 1)
    );
    // Text alone cannot have a flows_dir.
    assert!(crate::parse(&text, "t.toml").is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn missing_prompt_of_a_set_is_located() {
    let text = GOOD.replace(
        "[prompts]\n",
        "[prompt_sets.en]\nwelcome = \"prompts/welcome.wav\"\n\n[prompt_sets.ru]\nwelcome = \"prompts/nope.wav\"\n\n[prompts]\n",
    );
    let dir = config_dir("sets", &text, &[]);
    let errs = Loaded::from_file(&dir.join("acd.toml"))
        .expect_err("refused")
        .0;
    assert_eq!(errs[0].key, "prompt_sets.ru.welcome", "{errs:?}");
    assert_eq!(
        errs[0].line,
        Some(text.lines().position(|l| l.contains("nope.wav")).unwrap() + 1)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn every_file_under_config_is_embedded() {
    assert!(defaults::file("prompts/moh.wav").is_some());
    assert!(defaults::file("./prompts/welcome.wav").is_some());
    assert!(defaults::file("acd.toml").is_none());
    assert!(defaults::file("prompts/none.wav").is_none());
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/prompts");
    let on_disk = std::fs::read_dir(root)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_type().unwrap().is_file())
        .count();
    assert_eq!(defaults::files_under("prompts/").count(), on_disk);
}

#[test]
fn records_database_other_than_sqlite_or_postgres_is_refused_with_its_line() {
    let text = GOOD.replacen(
        "database = \"sqlite:data/records.db\"",
        "database = \"mysql://x\"",
        1,
    );
    let errs = errors_of(&text);
    let e = errs
        .iter()
        .find(|e| e.key == "records.database")
        .expect("error about records.database");
    assert!(e.message.contains("mysql://x"), "{e}");
    let line = text
        .lines()
        .position(|l| l.contains("mysql://x"))
        .map(|l| l + 1);
    assert_eq!(e.line, line);
    let text = GOOD.replacen("sqlite:data/records.db", "sqlite:", 1);
    assert!(errors_of(&text).iter().any(|e| e.key == "records.database"));
}

#[test]
fn staffing_zone_and_interval_are_checked_with_their_line() {
    let text = GOOD.replacen(
        "interval_mins = 30",
        "interval_mins = 20\ntime_zone = \"Mars/Olympus\"",
        1,
    );
    let errs = errors_of(&text);
    let zone = errs
        .iter()
        .find(|e| e.key == "staffing.time_zone")
        .expect("error about staffing.time_zone");
    assert!(zone.message.contains("Mars/Olympus"), "{zone}");
    assert!(
        errs.iter().any(|e| e.key == "staffing.interval_mins"),
        "{errs:?}"
    );
}

#[test]
fn media_threads_default_to_one_per_core_and_can_be_set() {
    let cfg = parse(GOOD, "acd.toml").expect("shipped config");
    assert_eq!(cfg.media.threads, 0, "0: one per core");
    let text = GOOD.replacen("threads = 0\n", "threads = 3\n", 1);
    assert_eq!(parse(&text, "t.toml").expect("valid").media.threads, 3);
    let text = GOOD.replacen("threads = 0\n", "", 1);
    assert_eq!(parse(&text, "t.toml").expect("optional").media.threads, 0);
}
