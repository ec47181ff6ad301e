//! IVR node types end to end: `acd run` with small purpose-built flows, SIPp
//! callers pressing keys (RFC 4733 and INFO), and the outcome read where an
//! operator would see it: which agent is offered the call, from which queue,
//! with which call-pop data (the `enqueue` node's `data`), and the callbacks
//! the distributor keeps (`acdctl callbacks --json`). Prompts are the shipped
//! sets `config/prompts/{en,ru}`; expected durations are read from the WAVs.
//!
//! Port blocks 108 (collect), 109 (menu, branch, VIP), 110 (hours with an
//! injected clock, callback, hang-up), 111 (HTTP lookup, language, say).
//! In each: `acd run` on slot 0, agent phones on SIPp 0-2, registrations on
//! SIPp 9, callers on SIPp 4-8; 111's order API on gRPC slot 3's port.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use acd_tests::dtmf::{trunk_scenario, Press};
use acd_tests::env::workspace_root;
use acd_tests::flows::{register, SIPP_LIMIT};
use acd_tests::metrics::{counter, scrape};
use acd_tests::proto::AgentState;
use acd_tests::{
    acdctl, AcdClient, AcdProcess, AgentWatch, RtpObserver, SippCmd, SippRun, TestEnv, LONG,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOLERANCE: Duration = Duration::from_millis(1500);

/// Length of the shipped prompt `config/prompts/<name>.wav`.
fn prompt_len(name: &str) -> Duration {
    let path = workspace_root()
        .join("config/prompts")
        .join(format!("{name}.wav"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let info = acd_media::wav::wav_info(&bytes).expect("a WAV prompt");
    Duration::from_millis(info.samples as u64 * 1000 / u64::from(info.sample_rate))
}

/// `[ivr] prompt_dirs` on the shipped sets, the neutral `choose_language`,
/// then `flows` (DIDs and flows).
fn config(env: &TestEnv, flows: &str) -> PathBuf {
    let prompts = workspace_root().join("config/prompts");
    let path = env.write_config(&format!(
        "[ivr]\nprompt_dirs = {{ en = \"{en}\", ru = \"{ru}\" }}\n\n{flows}",
        en = prompts.join("en").display(),
        ru = prompts.join("ru").display(),
    ));
    let text = std::fs::read_to_string(&path).unwrap();
    let neutral = format!(
        "[prompts]\nchoose_language = \"{}\"\n",
        prompts.join("choose_language.wav").display()
    );
    assert!(text.contains("[prompts]\n"), "e2e.toml has no [prompts]");
    std::fs::write(&path, text.replacen("[prompts]\n", &neutral, 1)).unwrap();
    path
}

/// `acd run` and the agents (id, extension) logged in and ready, each with a
/// phone that answers every call and hangs up after 1 s.
struct Site {
    acd: AcdProcess,
    watches: Vec<AgentWatch>,
    _phones: Vec<SippRun>,
    _rtp: Vec<RtpObserver>,
}

async fn site(env: &TestEnv, flows: &str, agents: &[(&str, &str)], extra: &[String]) -> Site {
    let config = config(env, flows);
    let acd = env.start_run_with(&config, extra).await.unwrap();
    let mut client = AcdClient::connect(&acd.grpc_url()).await.unwrap();
    let (mut phones, mut rtp, mut watches) = (Vec::new(), Vec::new(), Vec::new());
    for (slot, (agent, ext)) in (0u16..).zip(agents) {
        let obs = RtpObserver::bind(agent, env.ports.observer(slot))
            .await
            .unwrap();
        let mut phone = SippCmd::new(
            &format!("phone-{ext}"),
            "agent_answer_hangup.xml",
            env.ports.sipp(slot),
        )
        .key("rtpport", obs.port())
        .pause_ms(1000)
        .limit(SIPP_LIMIT);
        phone.calls = 20;
        phones.push(phone.spawn(env).await.unwrap());
        register(
            env,
            9,
            ext,
            &format!("secret{ext}"),
            env.ports.sipp(slot).sip,
        )
        .await
        .assert_success(1);
        client.login(agent, ext).await.unwrap();
        let watch = client.watch(agent).await.unwrap();
        client.ready(agent).await.unwrap();
        rtp.push(obs);
        watches.push(watch);
    }
    Site {
        acd,
        watches,
        _phones: phones,
        _rtp: rtp,
    }
}

/// A caller from `from` on SIPp slot `slot` dialling `did`, pressing `script`.
async fn call(
    env: &TestEnv,
    name: &str,
    slot: u16,
    did: &str,
    from: &str,
    script: &[Press],
) -> (SippRun, Instant) {
    let scenario = trunk_scenario(env, name, script);
    let run = SippCmd::new(name, &scenario.display().to_string(), env.ports.sipp(slot))
        .remote(env.sip_addr())
        .service(did)
        .key("caller", from)
        .limit(SIPP_LIMIT)
        .spawn(env)
        .await
        .unwrap();
    (run, Instant::now())
}

/// What the agent saw of a call.
#[derive(Debug)]
struct Popped {
    queue: String,
    vars: HashMap<String, String>,
    /// From the call's start to the offer.
    after: Duration,
}

impl Popped {
    fn var(&self, k: &str) -> Option<&str> {
        self.vars.get(k).map(String::as_str)
    }
}

/// The offer of `caller`'s call to `watch`'s agent; waits until the agent
/// took it, the caller got the BYE, and the agent is ready again.
async fn answered(watch: &mut AgentWatch, (caller, started): (SippRun, Instant)) -> Popped {
    let offer = watch.await_offer(LONG).await.unwrap();
    let after = started.elapsed();
    watch.await_state(AgentState::OnCall, LONG).await.unwrap();
    caller.wait().await.assert_success(1);
    watch.await_state(AgentState::Ready, LONG).await.unwrap();
    let vars = offer.caller.map(|c| c.variables).unwrap_or_default();
    eprintln!(
        "[e2e] offer from {} after {after:?}: {vars:?}",
        offer.queue_id
    );
    Popped {
        queue: offer.queue_id,
        vars,
        after,
    }
}

fn info(keys: &str) -> Vec<Press> {
    keys.chars().map(Press::InfoDtmf).collect()
}

fn script(parts: &[&[Press]]) -> Vec<Press> {
    parts.concat()
}

async fn metric(acd: &AcdProcess, name: &str) -> f64 {
    let text = scrape(&acd.metrics_addr()).await.unwrap();
    counter(&text, name).unwrap_or(0.0)
}

// ---- (1) collect

const COLLECT_DID: &str = "5550400";

fn collect_flows(inter_digit_ms: u32) -> String {
    format!(
        r##"
[[dids]]
number = "{COLLECT_DID}"
flow = "collect"

[flows.collect]
start = "order"
fallback_queue = "support"

[flows.collect.nodes.order]
type = "collect"
prompt = "enter_order"
var = "order"
min_length = 3
max_length = 5
terminator = "#"
timeout_ms = 2000
inter_digit_timeout_ms = {inter_digit_ms}
pattern = "1[0-9]*"
retries = 2
no_input_prompt = "no_input"
invalid_prompt = "invalid"
next = "got"
fallback = "gave_up"

[flows.collect.nodes.got]
type = "enqueue"
queue = "sales"
data = {{ order = "${{order}}", path = "got" }}

[flows.collect.nodes.gave_up]
type = "enqueue"
queue = "support"
data = {{ order = "${{order}}", path = "gave_up" }}
"##
    )
}

/// Collect: max length ends the input at once, `#` ends it early, the
/// inter-digit timeout ends it, too short and pattern-rejected inputs get
/// the invalid prompt and a retry that accepts the third input; no input at
/// all uses both retries (no_input prompt) and takes the fallback.
#[tokio::test]
async fn collect_lengths_terminator_timeouts_pattern_and_fallback() {
    let env = TestEnv::new("ivr_flows_collect", 108);
    let inter = Duration::from_millis(3000);
    let flows = collect_flows(inter.as_millis() as u32);
    let mut site = site(&env, &flows, &[("alice", "1001"), ("bob", "1002")], &[]).await;
    let mut bob = site.watches.pop().unwrap();
    let mut alice = site.watches.pop().unwrap();
    let from = "0611223344";

    // No input, alongside the others (Bob takes the fallback queue).
    let silent = call(&env, "silent", 8, COLLECT_DID, from, &[]).await;
    let silent = tokio::spawn(async move { answered(&mut bob, silent).await });

    // Max length (RTP, distinct keys): no wait for a terminator or timeout.
    let keys: Vec<Press> = "12345".chars().map(Press::Rtp).collect();
    let pressed = Duration::from_millis(300 + 5 * 450);
    let c = call(
        &env,
        "maxlen",
        4,
        COLLECT_DID,
        from,
        &script(&[&[Press::Pause(300)], &keys]),
    )
    .await;
    let p = answered(&mut alice, c).await;
    assert_eq!(
        (p.queue.as_str(), p.var("order")),
        ("sales", Some("12345")),
        "{p:?}"
    );
    assert!(
        p.after < pressed + inter - Duration::from_millis(500),
        "max length must end the input: {p:?}"
    );

    // `#` ends it early (INFO dtmf-relay); the terminator is not stored.
    let keys: Vec<Press> = "123#".chars().map(Press::InfoRelay).collect();
    let c = call(
        &env,
        "terminator",
        5,
        COLLECT_DID,
        from,
        &script(&[&[Press::Pause(300)], &keys]),
    )
    .await;
    let p = answered(&mut alice, c).await;
    assert_eq!(p.var("order"), Some("123"), "{p:?}");
    assert!(
        p.after < Duration::from_millis(300) + inter,
        "# must end the input: {p:?}"
    );

    // Four keys then silence: the inter-digit timeout ends the input.
    let c = call(
        &env,
        "interdigit",
        6,
        COLLECT_DID,
        from,
        &script(&[&[Press::Pause(300)], &info("1234")]),
    )
    .await;
    let p = answered(&mut alice, c).await;
    assert_eq!(p.var("order"), Some("1234"), "{p:?}");
    assert!(
        p.after >= Duration::from_millis(300) + inter - Duration::from_millis(200),
        "the input ended before the inter-digit timeout: {p:?}"
    );
    assert!(
        p.after < Duration::from_millis(300) + inter + TOLERANCE,
        "{p:?}"
    );

    // Too short (12#), then not matching `1[0-9]*` (987#): two invalid
    // prompts, the third input (156#) is taken.
    let s = script(&[
        &[Press::Pause(300)],
        &info("12#"),
        &[Press::Pause(800)],
        &info("987#"),
        &[Press::Pause(800)],
        &info("156#"),
    ]);
    let c = call(&env, "pattern", 7, COLLECT_DID, from, &s).await;
    let p = answered(&mut alice, c).await;
    assert_eq!(
        (p.queue.as_str(), p.var("order")),
        ("sales", Some("156")),
        "{p:?}"
    );

    // No input: prompt + timeout, then twice no_input + prompt + timeout.
    let p = silent.await.unwrap();
    let (prompt, no_input) = (prompt_len("en/enter_order"), prompt_len("en/no_input"));
    let expected = prompt
        + Duration::from_millis(2000)
        + 2 * (no_input + prompt + Duration::from_millis(2000));
    eprintln!(
        "[e2e] no input: fallback after {:?} (expected {expected:?})",
        p.after
    );
    assert_eq!(
        (p.queue.as_str(), p.var("path"), p.var("order")),
        ("support", Some("gave_up"), None),
        "{p:?}"
    );
    assert!(
        p.after + Duration::from_millis(300) >= expected && p.after < expected + TOLERANCE,
        "fallback after {:?}, expected {expected:?}",
        p.after
    );
    site.acd.assert_running();
}

// ---- (2) menu, (4) branch and VIP

const MENU_DID: &str = "5550401";
const VIP_DID: &str = "5550402";
const MENU_TIMEOUT_MS: u64 = 2000;

fn menu_flows() -> String {
    format!(
        r##"
[[dids]]
number = "{MENU_DID}"
flow = "menu"

[[dids]]
number = "{VIP_DID}"
flow = "vip"

[flows.menu]
start = "menu"
fallback_queue = "support"

[flows.menu.nodes.menu]
type = "menu"
prompt = "welcome"
options = {{ "1" = "to_sales", "2" = "to_support" }}
timeout_ms = {MENU_TIMEOUT_MS}
retries = 2
no_input_prompt = "no_input"
invalid_prompt = "invalid"
default = "to_default"

[flows.menu.nodes.to_sales]
type = "enqueue"
queue = "sales"
data = {{ path = "sales" }}

[flows.menu.nodes.to_support]
type = "enqueue"
queue = "support"
data = {{ path = "support" }}

[flows.menu.nodes.to_default]
type = "enqueue"
queue = "support"
data = {{ path = "default" }}

[flows.vip]
start = "vip_check"
fallback_queue = "support"
lists = {{ vip = ["79990000001", "79990000002"] }}

[flows.vip.nodes.vip_check]
type = "branch"
var = "caller"
lists = {{ vip = "gold" }}
default = "basic"

[flows.vip.nodes.gold]
type = "set"
vars = {{ tier = "gold", priority = "10" }}
next = "route"

[flows.vip.nodes.basic]
type = "set"
var = "tier"
value = "basic"
next = "route"

[flows.vip.nodes.route]
type = "branch"
var = "tier"
cases = {{ gold = "to_sales" }}
default = "to_support"

[flows.vip.nodes.to_sales]
type = "enqueue"
queue = "sales"
data = {{ tier = "${{tier}}", number = "${{caller}}", prio = "${{priority}}", name = "${{caller_name}}" }}

[flows.vip.nodes.to_support]
type = "enqueue"
queue = "support"
data = {{ tier = "${{tier}}", number = "${{caller}}", prio = "${{priority}}" }}
"##
    )
}

/// Menu: no input at all takes the default only after every retry (each
/// with the no_input prompt) — a prompt shorter than the timeout must not
/// replay the menu when it finishes (the known defect); an invalid key then
/// no input use the two retries and a key in the last one still counts.
/// Branch: a VIP caller (From in the flow's list) gets the gold tier and
/// sales, another caller the basic tier and support; set variables reach the
/// call pop.
#[tokio::test]
async fn menu_retries_default_and_branches_on_variables_and_vip_list() {
    let env = TestEnv::new("ivr_flows_menu", 109);
    let mut site = site(
        &env,
        &menu_flows(),
        &[("alice", "1001"), ("bob", "1002")],
        &[],
    )
    .await;
    let mut bob = site.watches.pop().unwrap();
    let mut alice = site.watches.pop().unwrap();
    let from = "0611223344";
    let (menu, no_input, invalid) = (
        prompt_len("en/welcome"),
        prompt_len("en/no_input"),
        prompt_len("en/invalid"),
    );
    let timeout = Duration::from_millis(MENU_TIMEOUT_MS);
    assert!(
        menu < timeout,
        "the defect needs a prompt shorter than the timeout"
    );

    let silent = call(&env, "silent", 4, MENU_DID, from, &[]).await;
    // 9 (invalid) during the prompt, then nothing (no input), then 1 during
    // the last retry's prompts.
    let first_retry_end = Duration::from_millis(300) + invalid + menu + timeout;
    let press_1_at = first_retry_end + no_input / 2;
    let s = script(&[
        &[Press::Pause(300)],
        &info("9"),
        &[Press::Pause((press_1_at.as_millis() - 300) as u64)],
        &info("1"),
    ]);
    let retried = call(&env, "retried", 5, MENU_DID, from, &s).await;
    let (p_silent, p_retried) =
        tokio::join!(answered(&mut bob, silent), answered(&mut alice, retried));

    let expected = 3 * (menu + timeout) + 2 * no_input;
    eprintln!(
        "[e2e] menu default after {:?} (expected {expected:?})",
        p_silent.after
    );
    assert_eq!(
        (p_silent.queue.as_str(), p_silent.var("path")),
        ("support", Some("default")),
        "{p_silent:?}"
    );
    assert!(
        p_silent.after + Duration::from_millis(300) >= expected && p_silent.after < expected + TOLERANCE,
        "the default must come after 3 x (prompt + timeout) + 2 no_input prompts ({expected:?}): {:?}",
        p_silent.after
    );
    assert_eq!(
        (p_retried.queue.as_str(), p_retried.var("path")),
        ("sales", Some("sales")),
        "{p_retried:?}"
    );
    assert!(p_retried.after >= press_1_at, "{p_retried:?}");

    // VIP list by the caller's number; branch on the variable set for it.
    let vip = call(&env, "vip", 6, VIP_DID, "79990000001", &[]).await;
    let regular = call(&env, "regular", 7, VIP_DID, from, &[]).await;
    let (p_vip, p_regular) = tokio::join!(answered(&mut alice, vip), answered(&mut bob, regular));
    assert_eq!(p_vip.queue, "sales", "{p_vip:?}");
    assert_eq!(
        (
            p_vip.var("tier"),
            p_vip.var("number"),
            p_vip.var("prio"),
            p_vip.var("language")
        ),
        (Some("gold"), Some("79990000001"), Some("10"), Some("en")),
        "{p_vip:?}"
    );
    assert_eq!(p_regular.queue, "support", "{p_regular:?}");
    assert_eq!(
        (
            p_regular.var("tier"),
            p_regular.var("number"),
            p_regular.var("prio")
        ),
        (Some("basic"), Some(from), None),
        "{p_regular:?}"
    );
    site.acd.assert_running();
}

// ---- (3) hours, (7) callback and hang-up

const HOURS_DID: &str = "5550404";
/// Sunday 2026-10-25, 02:30 in Berlin *after* the clocks went back (CET,
/// the second 02:30 of that night): 01:30 UTC.
const CLOCK: &str = "2026-10-25T02:30:00+01:00";

/// An hours node `name` recording its branch in the variable `name`, then `next`.
fn hours_check(name: &str, spec: &str, next: &str) -> String {
    let mut out = format!(
        "[flows.hours.nodes.{name}]\ntype = \"hours\"\n{spec}\nopen = \"{name}_open\"\nclosed = \"{name}_closed\"\nholiday = \"{name}_holiday\"\n\n"
    );
    for branch in ["open", "closed", "holiday"] {
        out.push_str(&format!(
            "[flows.hours.nodes.{name}_{branch}]\ntype = \"set\"\nvar = \"{name}\"\nvalue = \"{branch}\"\nnext = \"{next}\"\n\n"
        ));
    }
    out
}

fn hours_flows() -> String {
    let mut f = format!(
        "[[dids]]\nnumber = \"{HOURS_DID}\"\nflow = \"hours\"\n\n\
         [flows.hours]\nstart = \"dst_in\"\nfallback_queue = \"support\"\n\n"
    );
    let berlin = "timezone = \"Europe/Berlin\"";
    // 02:30 CET is inside 02:00-03:00 and outside 03:00-04:00 (a clock that
    // kept summer time would read 03:30).
    f += &hours_check(
        "dst_in",
        &format!("{berlin}\nweekly = {{ sun = [\"02:00-03:00\"] }}"),
        "dst_out",
    );
    f += &hours_check(
        "dst_out",
        &format!("{berlin}\nweekly = {{ sun = [\"03:00-04:00\"] }}"),
        "office",
    );
    f += &hours_check(
        "office",
        &format!(
            "{berlin}\nweekly = {{ mon-fri = [\"08:00-20:00\"] }}\nholidays = [\"2026-12-24\"]"
        ),
        "holiday",
    );
    f += &hours_check(
        "holiday",
        &format!("{berlin}\nweekly = {{ mon-sun = [\"00:00-24:00\"] }}\nholidays = [\"2026-10-24..2026-10-26\"]"),
        "tokyo",
    );
    // 10:30 on Sunday in Tokyo.
    f += &hours_check(
        "tokyo",
        "timezone = \"Asia/Tokyo\"\nweekly = { sun = [\"09:00-18:00\"] }",
        "honolulu",
    );
    // Still Saturday (15:30) in Honolulu.
    f += r##"
[flows.hours.nodes.honolulu]
type = "weekday"
timezone = "Pacific/Honolulu"
days = { mon-fri = "hnl_weekday", sat = "hnl_sat", sun = "hnl_sun" }
default = "hnl_weekday"

[flows.hours.nodes.hnl_weekday]
type = "set"
var = "honolulu"
value = "weekday"
next = "ask_number"

[flows.hours.nodes.hnl_sat]
type = "set"
var = "honolulu"
value = "sat"
next = "ask_number"

[flows.hours.nodes.hnl_sun]
type = "set"
var = "honolulu"
value = "sun"
next = "ask_number"

[flows.hours.nodes.ask_number]
type = "collect"
prompt = "enter_callback_number"
var = "cb_number"
min_length = 6
max_length = 12
terminator = "#"
timeout_ms = 2000
inter_digit_timeout_ms = 2000
retries = 0
next = "book"
fallback = "book_caller"

[flows.hours.nodes.book]
type = "callback"
queue = "support"
number = "${cb_number}"
data = { dst_in = "${dst_in}", dst_out = "${dst_out}", office = "${office}", holiday = "${holiday}", tokyo = "${tokyo}", honolulu = "${honolulu}" }
next = "bye"

[flows.hours.nodes.book_caller]
type = "callback"
queue = "sales"
data = { asked = "no number" }
next = "bye"

[flows.hours.nodes.bye]
type = "hangup"
prompt = "goodbye"
reason = "callback booked"
"##;
    f
}

/// Hours and weekday branches with the clock at a DST change night in
/// Berlin (open, closed, holiday, other zones), then a callback number
/// collected and booked with the distributor and a hang-up after the
/// goodbye prompt; a caller giving no number is called back on their own.
#[tokio::test]
async fn hours_branches_on_a_dst_night_then_callback_and_hangup() {
    let env = TestEnv::new("ivr_flows_hours", 110);
    let site = site(
        &env,
        &hours_flows(),
        &[],
        &["--ivr-clock".into(), CLOCK.into()],
    )
    .await;
    let mut acd = site.acd;

    let s = script(&[&[Press::Pause(300)], &info("0612345678#")]);
    let (booked, started) = call(&env, "booked", 4, HOURS_DID, "0611223344", &s).await;
    let (silent, silent_started) = call(&env, "silent", 5, HOURS_DID, "0698765432", &[]).await;
    booked.wait().await.assert_success(1);
    let took = started.elapsed();
    silent.wait().await.assert_success(1);
    let silent_took = silent_started.elapsed();
    let (goodbye, ask) = (
        prompt_len("en/goodbye"),
        prompt_len("en/enter_callback_number"),
    );
    eprintln!("[e2e] number given: BYE after {took:?}; none: after {silent_took:?}");
    // The goodbye prompt plays before the BYE.
    assert!(took >= Duration::from_millis(300) + goodbye, "{took:?}");
    let silent_expected = ask + Duration::from_millis(2000) + goodbye;
    assert!(
        silent_took + Duration::from_millis(300) >= silent_expected
            && silent_took < silent_expected + TOLERANCE,
        "no number: BYE after {silent_took:?}, expected {silent_expected:?}"
    );

    let out = acdctl(&acd.grpc_url(), &["callbacks", "--json"])
        .await
        .unwrap();
    assert!(out.success(), "acdctl callbacks: {out:?}");
    let lines = out.json_lines().unwrap();
    assert_eq!(lines.len(), 2, "callbacks: {lines:?}");
    let cb = lines
        .iter()
        .find(|c| c["queue_id"] == "support")
        .unwrap_or_else(|| panic!("no support callback: {lines:?}"));
    assert_eq!(cb["number"], "0612345678", "{cb}");
    let vars = &cb["caller"]["variables"];
    for (k, want) in [
        ("dst_in", "open"),
        ("dst_out", "closed"),
        ("office", "closed"),
        ("holiday", "holiday"),
        ("tokyo", "open"),
        ("honolulu", "sat"),
    ] {
        assert_eq!(vars[k], want, "{k}: {cb}");
    }
    assert_eq!(cb["caller"]["did"], HOURS_DID, "{cb}");
    let own = lines
        .iter()
        .find(|c| c["queue_id"] == "sales")
        .unwrap_or_else(|| panic!("no sales callback: {lines:?}"));
    assert_eq!(own["number"], "0698765432", "{own}");
    assert_eq!(own["caller"]["variables"]["asked"], "no number", "{own}");
    acd.assert_running();
}

// ---- (5) HTTP lookup, (6) language and say

const ORDERS_DID: &str = "5550403";
const LOOKUP_TIMEOUT_MS: u64 = 1500;

fn orders_flows(api_port: u16) -> String {
    format!(
        r##"
[[dids]]
number = "{ORDERS_DID}"
flow = "orders"

[flows.orders]
start = "language"
fallback_queue = "support"
neutral_prompts = ["choose_language"]

[flows.orders.nodes.language]
type = "language"
prompt = "choose_language"
options = {{ "1" = "en", "2" = "ru" }}
timeout_ms = 2000
retries = 1
next = "order"

[flows.orders.nodes.order]
type = "collect"
prompt = "enter_order"
var = "order"
min_length = 4
max_length = 4
timeout_ms = 3000
retries = 1
next = "lookup"
fallback = "unavailable"

[flows.orders.nodes.lookup]
type = "lookup"
url = "http://127.0.0.1:{api_port}/orders/${{order}}"
timeout_ms = {LOOKUP_TIMEOUT_MS}
fields = {{ status = "order_status", eta = "eta", amount = "amount" }}
on_status = {{ "404" = "not_found" }}
next = "say"
fallback = "unavailable"

[flows.orders.nodes.say]
type = "say"
items = [{{ prompt = "order_is" }}, {{ digits = "${{order}}" }}, {{ number = "${{amount}}" }}, {{ date = "${{eta}}" }}]
next = "found"

[flows.orders.nodes.found]
type = "enqueue"
queue = "sales"
data = {{ order = "${{order}}", status = "${{order_status}}", eta = "${{eta}}", amount = "${{amount}}" }}

[flows.orders.nodes.not_found]
type = "play"
prompt = "order_not_found"
next = "not_found_queue"

[flows.orders.nodes.not_found_queue]
type = "enqueue"
queue = "support"
data = {{ order = "${{order}}", path = "not_found", http = "${{lookup_status}}" }}

[flows.orders.nodes.unavailable]
type = "enqueue"
queue = "support"
data = {{ order = "${{order}}", path = "unavailable" }}
"##
    )
}

/// Requests the order API saw: path and when.
type Seen = Arc<Mutex<Vec<(String, Instant)>>>;

/// A tiny order API: `/orders/1234` is shipped (JSON), `/orders/7777`
/// answers only after 5 s, anything else is 404.
async fn order_api(port: u16) -> Seen {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind the order API");
    let seen: Seen = Arc::default();
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            tokio::spawn(serve_order(sock, log.clone()));
        }
    });
    seen
}

async fn serve_order(mut sock: tokio::net::TcpStream, seen: Seen) {
    let mut buf = vec![0u8; 4096];
    let mut n = 0;
    while n < buf.len() {
        match sock.read(&mut buf[n..]).await {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
        if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let request = String::from_utf8_lossy(&buf[..n]);
    let path = request.split_whitespace().nth(1).unwrap_or("").to_string();
    seen.lock().unwrap().push((path.clone(), Instant::now()));
    let (status, body) = match path.as_str() {
        "/orders/1234" => (
            "200 OK",
            r#"{"status":"shipped","eta":"2026-11-03","amount":250}"#,
        ),
        "/orders/7777" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            ("200 OK", r#"{"status":"late"}"#)
        }
        _ => ("404 Not Found", r#"{"error":"no such order"}"#),
    };
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = sock.write_all(reply.as_bytes()).await;
    let _ = sock.shutdown().await;
}

/// Language choice (ru) switches the prompt set for the say node (digits,
/// number, date in Russian) and the call pop; the lookup's JSON fields reach
/// the call pop; a 404 takes on_status; a slow API takes the fallback
/// within the node's timeout. No prompt was missing at the edge.
#[tokio::test]
async fn lookup_fields_404_and_timeout_language_and_say() {
    let env = TestEnv::new("ivr_flows_lookup", 111);
    let api_port = env.ports.grpc(3);
    let seen = order_api(api_port).await;
    let mut site = site(
        &env,
        &orders_flows(api_port),
        &[("alice", "1001"), ("bob", "1002")],
        &[],
    )
    .await;
    let mut bob = site.watches.pop().unwrap();
    let mut alice = site.watches.pop().unwrap();
    let from = "0611223344";

    // Russian, order 1234: found, said, queued for sales with its fields.
    let s = script(&[
        &[Press::Pause(300)],
        &info("2"),
        &[Press::Pause(300)],
        &"1234".chars().map(Press::Rtp).collect::<Vec<_>>(),
    ]);
    let found = call(&env, "found", 4, ORDERS_DID, from, &s).await;
    // English, order 4040: 404.
    let s = script(&[
        &[Press::Pause(300)],
        &info("1"),
        &[Press::Pause(300)],
        &info("4040"),
    ]);
    let missing = call(&env, "missing", 5, ORDERS_DID, from, &s).await;
    let (p_found, p_missing) =
        tokio::join!(answered(&mut alice, found), answered(&mut bob, missing));
    assert_eq!(p_found.queue, "sales", "{p_found:?}");
    assert_eq!(
        (
            p_found.var("language"),
            p_found.var("order"),
            p_found.var("status"),
            p_found.var("eta"),
            p_found.var("amount")
        ),
        (
            Some("ru"),
            Some("1234"),
            Some("shipped"),
            Some("2026-11-03"),
            Some("250")
        ),
        "{p_found:?}"
    );
    // The say node played (order_is + 4 digits + 2 number words + day and
    // month) before the enqueue.
    let said = [
        "ru/order_is",
        "ru/digit_1",
        "ru/digit_2",
        "ru/digit_3",
        "ru/digit_4",
        "ru/num_200",
        "ru/num_50",
        "ru/day_3",
        "ru/month_11",
    ]
    .iter()
    .map(|p| prompt_len(p))
    .sum::<Duration>();
    eprintln!("[e2e] say: {said:?} of fragments");
    assert!(
        p_found.after > said,
        "the say fragments ({said:?}) were not all played: {p_found:?}"
    );
    assert_eq!(p_missing.queue, "support", "{p_missing:?}");
    assert_eq!(
        (
            p_missing.var("language"),
            p_missing.var("path"),
            p_missing.var("http"),
            p_missing.var("order")
        ),
        (Some("en"), Some("not_found"), Some("404"), Some("4040")),
        "{p_missing:?}"
    );

    // A slow API: the fallback within the lookup's timeout.
    let s = script(&[
        &[Press::Pause(300)],
        &info("1"),
        &[Press::Pause(300)],
        &info("7777"),
    ]);
    let (slow, started) = call(&env, "slow", 6, ORDERS_DID, from, &s).await;
    let offer = bob.await_offer(LONG).await.unwrap();
    let offered_at = Instant::now();
    let asked_at = seen
        .lock()
        .unwrap()
        .iter()
        .find(|(p, _)| p == "/orders/7777")
        .map(|(_, at)| *at)
        .expect("the runner asked the API for order 7777");
    let held = offered_at - asked_at;
    eprintln!(
        "[e2e] slow lookup: offer {held:?} after the request ({:?} after the call began)",
        offered_at - started
    );
    let vars = offer.caller.map(|c| c.variables).unwrap_or_default();
    assert_eq!(
        vars.get("path").map(String::as_str),
        Some("unavailable"),
        "{vars:?}"
    );
    let timeout = Duration::from_millis(LOOKUP_TIMEOUT_MS);
    assert!(
        held + Duration::from_millis(100) >= timeout
            && held < timeout + Duration::from_millis(1000),
        "held {held:?} for a {timeout:?} lookup"
    );
    bob.await_state(AgentState::OnCall, LONG).await.unwrap();
    slow.wait().await.assert_success(1);

    let missing = metric(&site.acd, "acd_edge_ivr_prompts_missing_total").await;
    assert_eq!(missing, 0.0, "prompts missing at the edge");
    site.acd.assert_running();
}
