//! The shipped 24/7 support line (`config/flows/support247.toml` on DID
//! 5550247) as a caller uses it: each test copies `config/` (acd.toml,
//! flows, prompts) to its log directory, points the demo order API, the
//! lookup URL and the night team's URI at its own ports, and runs
//! `acd run --config … --ivr-clock …` (a Tuesday 11:00 or 23:00 in Moscow, a
//! holiday). Callers are SIPp trunks pressing keys as SIP INFO (repeated
//! keys are fine there); keys are timed from the shipped prompts' lengths so
//! each lands while the prompt that asks for it plays.
//!
//! Ports: blocks 104-106, each split into three sites of 66 ports (see
//! [`Site`]): 104 the daytime tests, 105 the night ones, 106 voicemail and
//! the holiday.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use acd_tests::dtmf::{trunk_scenario, Press, SPEECH_PCAP};
use acd_tests::metrics::{counter_with, scrape};
use acd_tests::proto::{AgentState, CallOffer};
use acd_tests::{
    acdctl, AcdClient, AcdProcess, AgentWatch, PortBlock, RtpObserver, SippCmd, SippPorts, SippRun,
    TestEnv, LONG,
};
use serde_json::Value;

const DID: &str = "5550247";
/// A Tuesday, 11:00 and 23:00 in Moscow, and a day of the New Year holidays.
const DAY: &str = "2026-12-15T11:00:00+03:00";
const NIGHT: &str = "2026-12-15T23:00:00+03:00";
const HOLIDAY: &str = "2027-01-03T11:00:00+03:00";
/// Callers of the flow's `vip` list.
const VIP: &str = "79990000001";
const VIP2: &str = "79990000002";
const CALLER: &str = "0611223344";

/// One test's ports: a third of a port block, laid out by offset from
/// `base`: `+0` SIP, `+1` gRPC, `+2` metrics, `+3` the order API (or a
/// closed port), `+4..+7` RTP observers, SIPp slot `k` (0..5) on `+8+k`
/// (SIP), `+13+k` (control), `+18+4k` (media), the edge's RTP on `+40..+65`.
#[derive(Debug, Clone, Copy)]
struct Site {
    base: u16,
}

impl Site {
    fn new(block: u16, third: u16) -> Self {
        assert!(third < 3);
        Site {
            base: PortBlock::for_test(block).base + 66 * third,
        }
    }
    fn sip(self) -> String {
        format!("127.0.0.1:{}", self.base)
    }
    fn grpc(self) -> u16 {
        self.base + 1
    }
    fn metrics(self) -> u16 {
        self.base + 2
    }
    fn orders(self) -> u16 {
        self.base + 3
    }
    fn observer(self, i: u16) -> u16 {
        assert!(i < 4);
        self.base + 4 + i
    }
    fn sipp(self, k: u16) -> SippPorts {
        assert!(k < 5);
        SippPorts {
            sip: self.base + 8 + k,
            control: self.base + 13 + k,
            media: self.base + 18 + 4 * k,
        }
    }
    fn rtp(self) -> String {
        format!("{}-{}", self.base + 40, self.base + 65)
    }
}

/// `dir` made to hold a copy of `from`'s files, recursively.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, target).unwrap();
        }
    }
}

fn shipped() -> PathBuf {
    acd_tests::env::workspace_root().join("config")
}

/// `text` with `from` replaced (it must be there).
fn rewrite(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "the shipped config has no {from:?}");
    text.replace(from, to)
}

/// The shipped config copied into the test's log directory; the order API
/// on the site's port (`None`: no API, the port stays closed) and the night
/// team at `night_port`. Returns acd.toml's path.
fn copy_config(env: &TestEnv, site: Site, api: bool, night_port: u16) -> PathBuf {
    let dir = env.log_path("config");
    copy_dir(&shipped().join("prompts"), &dir.join("prompts"));
    copy_dir(&shipped().join("flows"), &dir.join("flows"));
    let orders = format!("127.0.0.1:{}", site.orders());
    let toml = std::fs::read_to_string(shipped().join("acd.toml")).unwrap();
    let line = "orders_listen = \"127.0.0.1:8089\"";
    let toml = if api {
        rewrite(&toml, line, &format!("orders_listen = \"{orders}\""))
    } else {
        rewrite(&toml, line, "")
    };
    std::fs::write(dir.join("acd.toml"), toml).unwrap();
    let flow_path = dir.join("flows/support247.toml");
    let flow = std::fs::read_to_string(&flow_path).unwrap();
    let flow = rewrite(&flow, "127.0.0.1:8089", &orders);
    let flow = rewrite(&flow, "127.0.0.1:5080", &format!("127.0.0.1:{night_port}"));
    std::fs::write(&flow_path, flow).unwrap();
    dir.join("acd.toml")
}

/// `acd run` on the site's ports with the IVR clock at `clock`.
async fn start(env: &TestEnv, site: Site, config: &Path, clock: &str) -> AcdProcess {
    let listen = |p: u16| format!("127.0.0.1:{p}");
    let args: Vec<String> = [
        "run",
        "--config",
        &config.display().to_string(),
        "--sip-udp",
        &site.sip(),
        "--sip-tcp",
        &site.sip(),
        "--grpc",
        &listen(site.grpc()),
        "--metrics",
        &listen(site.metrics()),
        "--rtp-ports",
        &site.rtp(),
        "--public-ip",
        "127.0.0.1",
        "--ivr-clock",
        clock,
    ]
    .map(String::from)
    .to_vec();
    AcdProcess::spawn(env, "acd-run", &args).await.unwrap()
}

/// Length of a shipped prompt, `<lang>/<name>` or a neutral `<name>`.
fn prompt_ms(name: &str) -> u64 {
    let path = shipped().join("prompts").join(format!("{name}.wav"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let info = acd_media::wav::wav_info(&bytes).unwrap();
    info.samples as u64 * 1000 / u64::from(info.sample_rate)
}

/// Length of `digits` said one by one in `lang`.
fn digits_ms(lang: &str, digits: &str) -> u64 {
    digits
        .chars()
        .map(|d| prompt_ms(&format!("{lang}/digit_{d}")))
        .sum()
}

/// Slack after a prompt starts before a key is pressed into it (steps,
/// scheduling on a busy machine).
const INTO_PROMPT_MS: u64 = 1200;

/// A caller's script built on a timeline: keys as INFO digits and audio at
/// times from the start of the call (its ACK).
#[derive(Default)]
struct Script {
    at: u64,
    presses: Vec<Press>,
}

impl Script {
    fn wait_until(&mut self, at_ms: u64) {
        assert!(at_ms >= self.at, "the script goes back in time");
        if at_ms > self.at {
            self.presses.push(Press::Pause(at_ms - self.at));
        }
        self.at = at_ms;
    }
    /// Presses `keys` from `at_ms` on, 250 ms apart; returns when the last went.
    fn keys(&mut self, at_ms: u64, keys: &str) -> u64 {
        self.wait_until(at_ms);
        for (i, k) in keys.chars().enumerate() {
            if i > 0 {
                self.presses.push(Press::Pause(250));
                self.at += 250;
            }
            self.presses.push(Press::InfoRelay(k));
        }
        self.at
    }
    fn audio(&mut self, at_ms: u64) {
        self.wait_until(at_ms);
        self.presses.push(Press::Audio(SPEECH_PCAP));
    }
}

/// The first key: the language (1 English, 2 Russian), into the bilingual
/// menu. Returns when the caller's next menu starts (`main_menu` or, when
/// closed, after `closed`/`holiday`): welcome, VIP welcome, then that.
fn choose_language(s: &mut Script, key: char, vip: bool, before_menu: &[&str]) -> u64 {
    let lang = if key == '2' { "ru" } else { "en" };
    let pressed = s.keys(1000, &key.to_string());
    let mut at = pressed + prompt_ms(&format!("{lang}/welcome"));
    if vip {
        at += prompt_ms(&format!("{lang}/vip_welcome"));
    }
    for p in before_menu {
        at += prompt_ms(&format!("{lang}/{p}"));
    }
    at
}

/// The night menu's callback path from the moment `callback_confirm`
/// starts: it says the number (no barge-in), then 1 books the callback.
fn confirm_callback(s: &mut Script, lang: &str, confirm_at: u64, number: &str) {
    let keys_at =
        confirm_at + prompt_ms(&format!("{lang}/callback_confirm")) + digits_ms(lang, number);
    s.keys(keys_at + INTO_PROMPT_MS, "1");
}

async fn caller(
    env: &TestEnv,
    site: Site,
    name: &str,
    slot: u16,
    number: &str,
    s: Script,
) -> SippRun {
    let scenario = trunk_scenario(env, name, &s.presses);
    SippCmd::new(name, &scenario.display().to_string(), site.sipp(slot))
        .remote(site.sip())
        .service(DID)
        .key("caller", number)
        .limit(Duration::from_secs(80))
        .spawn(env)
        .await
        .unwrap()
}

/// REGISTERs `ext` (SIPp slot `slot`) with its Contact at `contact_port`.
async fn register(env: &TestEnv, site: Site, slot: u16, ext: &str, contact_port: u16) {
    SippCmd::new(&format!("register-{ext}"), "register.xml", site.sipp(slot))
        .remote(site.sip())
        .service(ext)
        .auth(ext, &format!("secret{ext}"))
        .key("contact_port", contact_port)
        .arg("-default_behaviors")
        .arg("all,-bye")
        .limit(Duration::from_secs(20))
        .spawn(env)
        .await
        .unwrap()
        .wait()
        .await
        .assert_success(1);
}

/// An operator at a phone: logged in (not ready), the phone answering one
/// call and hanging up after 1.5 s.
struct Agent {
    watch: AgentWatch,
    phone: SippRun,
    _rtp: RtpObserver,
}

/// Logs in `agent` at `ext`, its phone on SIPp slot `slot` (registered
/// from slot 4) and RTP observer `obs`.
async fn agent(
    env: &TestEnv,
    site: Site,
    client: &mut AcdClient,
    (agent, ext): (&str, &str),
    slot: u16,
    obs: u16,
) -> Agent {
    let rtp = RtpObserver::bind(agent, site.observer(obs)).await.unwrap();
    let phone = SippCmd::new(
        &format!("phone-{agent}"),
        "agent_answer_hangup.xml",
        site.sipp(slot),
    )
    .key("rtpport", rtp.port())
    .pause_ms(1500)
    .limit(Duration::from_secs(80))
    .spawn(env)
    .await
    .unwrap();
    register(env, site, 4, ext, site.sipp(slot).sip).await;
    client.login(agent, ext).await.unwrap();
    let watch = client.watch(agent).await.unwrap();
    Agent {
        watch,
        phone,
        _rtp: rtp,
    }
}

fn var<'a>(offer: &'a CallOffer, key: &str) -> Option<&'a str> {
    offer
        .caller
        .as_ref()
        .and_then(|c| c.variables.get(key))
        .map(String::as_str)
}

fn from_uri(offer: &CallOffer) -> &str {
    offer.caller.as_ref().map_or("", |c| c.from_uri.as_str())
}

/// The offer to `a`, then the call on it to its end (the agent hangs up).
async fn answered(a: &mut Agent) -> CallOffer {
    let offer = a.watch.await_offer(LONG).await.unwrap();
    a.watch.await_state(AgentState::OnCall, LONG).await.unwrap();
    offer
}

async fn callbacks(acd: &AcdProcess) -> Vec<Value> {
    let out = acdctl(&acd.grpc_url(), &["callbacks", "--json"])
        .await
        .unwrap();
    assert!(out.success(), "acdctl callbacks: {out:?}");
    out.json_lines().unwrap()
}

async fn lookups(acd: &AcdProcess, outcome: &str) -> f64 {
    let text = scrape(&acd.metrics_addr()).await.unwrap();
    counter_with(&text, "acd_ivr_lookups_total", &[("outcome", outcome)]).unwrap_or(0.0)
}

/// The process is still up and every key the caller pressed was taken by
/// the step asking for it (none fell into a prompt without barge-in).
async fn finish(env: &TestEnv, acd: &mut AcdProcess, started: Instant) {
    acd.assert_running();
    let text = scrape(&acd.metrics_addr()).await.unwrap();
    let lost = acd_tests::metrics::counter(&text, "acd_edge_dtmf_discarded_total").unwrap_or(0.0);
    assert_eq!(lost, 0.0, "keys were discarded: the script's timing is off");
    eprintln!("[e2e] {}: {:?}", env.name, started.elapsed());
}

/// (a) Daytime, Russian, order status: 2 (Russian), 1 (order status), an
/// order ending in 1 and `#`; the demo API says "shipped", then 2 asks for
/// an operator. Carol, the only Russian speaker, gets the offer with the
/// order and its status in the call pop; Bob, ready first, gets nothing.
#[tokio::test]
async fn daytime_russian_order_status_then_carol() {
    let env = TestEnv::new("support247_ru_order", 104);
    let started = Instant::now();
    let site = Site::new(104, 0);
    let config = copy_config(&env, site, true, site.sipp(3).sip);
    let mut acd = start(&env, site, &config, DAY).await;
    let mut client = AcdClient::connect(&acd.grpc_url()).await.unwrap();
    let mut bob = agent(&env, site, &mut client, ("bob", "1002"), 0, 0).await;
    let mut carol = agent(&env, site, &mut client, ("carol", "1003"), 1, 1).await;
    client.ready("bob").await.unwrap();
    client.ready("carol").await.unwrap();

    let order = "58231";
    let mut s = Script::default();
    let menu = choose_language(&mut s, '2', false, &[]);
    let pressed = s.keys(menu + INTO_PROMPT_MS, "1");
    let hash = s.keys(pressed + INTO_PROMPT_MS, &format!("{order}#"));
    // Into the status being read out (barge-in), or typed ahead of the
    // "anything else" menu: either way it is that menu's choice.
    s.keys(hash + 2000, "2");
    let call = caller(&env, site, "caller", 2, CALLER, s).await;

    let offer = answered(&mut carol).await;
    carol.phone.wait().await.assert_success(1);
    call.wait().await.assert_success(1);
    assert_eq!(offer.queue_id, "support", "{offer:?}");
    assert_eq!(var(&offer, "language"), Some("ru"), "{offer:?}");
    assert_eq!(var(&offer, "order"), Some(order), "{offer:?}");
    assert_eq!(var(&offer, "order_status"), Some("shipped"), "{offer:?}");
    assert_eq!(var(&offer, "vip"), None, "{offer:?}");
    assert!(from_uri(&offer).contains(CALLER), "{offer:?}");
    assert_eq!(lookups(&acd, "ok").await, 1.0, "one lookup, answered");
    bob.watch.drain(Duration::from_millis(200)).await;
    assert!(bob.watch.offers().is_empty(), "bob speaks no Russian");
    finish(&env, &mut acd, started).await;
}

/// (b) Daytime, English, 2 for an operator, with no agent ready: a
/// regular caller queues first, a VIP caller second. Bob, made ready, gets
/// the VIP (priority 10 ranks it first, `vip=yes` in the call pop); Carol,
/// made ready next, the regular caller. Both speak English and do support.
#[tokio::test]
async fn daytime_english_operator_serves_the_vip_first() {
    let env = TestEnv::new("support247_en_vip", 104);
    let started = Instant::now();
    let site = Site::new(104, 1);
    let config = copy_config(&env, site, true, site.sipp(3).sip);
    let mut acd = start(&env, site, &config, DAY).await;
    let mut client = AcdClient::connect(&acd.grpc_url()).await.unwrap();
    let mut bob = agent(&env, site, &mut client, ("bob", "1002"), 0, 0).await;
    let mut carol = agent(&env, site, &mut client, ("carol", "1003"), 1, 1).await;

    let script = |vip: bool| {
        let mut s = Script::default();
        let menu = choose_language(&mut s, '1', vip, &[]);
        s.keys(menu + INTO_PROMPT_MS, "2");
        s
    };
    let regular = caller(&env, site, "caller", 2, CALLER, script(false)).await;
    client
        .await_queue("support", "holding the regular caller", LONG, |q| {
            q.waiting == 1
        })
        .await
        .unwrap();
    let vip = caller(&env, site, "vip", 3, VIP, script(true)).await;
    client
        .await_queue("support", "holding both callers", LONG, |q| q.waiting == 2)
        .await
        .unwrap();

    client.ready("bob").await.unwrap();
    let first = answered(&mut bob).await;
    client.ready("carol").await.unwrap();
    let second = answered(&mut carol).await;
    for p in [bob.phone, carol.phone] {
        p.wait().await.assert_success(1);
    }
    regular.wait().await.assert_success(1);
    vip.wait().await.assert_success(1);
    assert!(from_uri(&first).contains(VIP), "the VIP first: {first:?}");
    assert_eq!(var(&first, "vip"), Some("yes"), "{first:?}");
    assert_eq!(first.priority, 10, "the offer shows the VIP's priority");
    assert_eq!(second.priority, 0, "{second:?}");
    assert_eq!(
        second.skills.get("english"),
        Some(&1),
        "the language's skill: {second:?}"
    );
    assert!(from_uri(&second).contains(CALLER), "{second:?}");
    assert_eq!(var(&second, "vip"), None, "{second:?}");
    assert!(
        first.waited_ms < second.waited_ms,
        "the VIP waited less and still went first: {} vs {} ms",
        first.waited_ms,
        second.waited_ms
    );
    for o in [&first, &second] {
        assert_eq!(o.queue_id, "support", "{o:?}");
        assert_eq!(var(o, "language"), Some("en"), "{o:?}");
    }
    finish(&env, &mut acd, started).await;
}

/// (f) Daytime, the order API down (nothing listens on the lookup's
/// port): after the order number the caller hears that the lookup is
/// unavailable and goes to an operator, order number in the call pop.
#[tokio::test]
async fn order_lookup_down_sends_the_caller_to_an_operator() {
    let env = TestEnv::new("support247_lookup_down", 104);
    let started = Instant::now();
    let site = Site::new(104, 2);
    let config = copy_config(&env, site, false, site.sipp(3).sip);
    let mut acd = start(&env, site, &config, DAY).await;
    let mut client = AcdClient::connect(&acd.grpc_url()).await.unwrap();
    let mut bob = agent(&env, site, &mut client, ("bob", "1002"), 0, 0).await;
    client.ready("bob").await.unwrap();

    let order = "12343";
    let mut s = Script::default();
    let menu = choose_language(&mut s, '1', false, &[]);
    let pressed = s.keys(menu + INTO_PROMPT_MS, "1");
    s.keys(pressed + INTO_PROMPT_MS, &format!("{order}#"));
    let call = caller(&env, site, "caller", 2, CALLER, s).await;

    let offer = answered(&mut bob).await;
    bob.phone.wait().await.assert_success(1);
    call.wait().await.assert_success(1);
    assert_eq!(offer.queue_id, "support", "{offer:?}");
    assert_eq!(var(&offer, "order"), Some(order), "{offer:?}");
    assert_eq!(var(&offer, "order_status"), None, "{offer:?}");
    assert_eq!(var(&offer, "language"), Some("en"), "{offer:?}");
    assert_eq!(lookups(&acd, "ok").await, 0.0);
    finish(&env, &mut acd, started).await;
}

/// The night menu's key `key` after language 1 (English): returns the
/// script and when the key went.
fn night_key(vip: bool, before_menu: &str, key: char) -> (Script, u64) {
    let mut s = Script::default();
    let menu = choose_language(&mut s, '1', vip, &[before_menu]);
    let at = s.keys(menu + INTO_PROMPT_MS, &key.to_string());
    (s, at)
}

/// (c) Night, 1: the outsourced night team (a SIPp UAS) answers and the
/// call is bridged: the caller's speech reaches the night team's RTP port;
/// the night team hangs up and the caller gets the BYE. Nothing is queued.
#[tokio::test]
async fn night_transfer_is_answered_and_bridged() {
    let env = TestEnv::new("support247_night_transfer", 105);
    let started = Instant::now();
    let site = Site::new(105, 0);
    let night = site.sipp(0);
    let config = copy_config(&env, site, true, night.sip);
    let mut acd = start(&env, site, &config, NIGHT).await;
    let far = RtpObserver::bind("night-team", site.observer(0))
        .await
        .unwrap();
    let team = SippCmd::new("night-team", "agent_answer_hangup.xml", night)
        .key("rtpport", far.port())
        .pause_ms(4000)
        .limit(Duration::from_secs(80))
        .spawn(&env)
        .await
        .unwrap();

    let (mut s, pressed) = night_key(false, "closed", '1');
    // Talk from before the transfer is answered until after.
    s.audio(pressed + 1000);
    let call = caller(&env, site, "caller", 1, CALLER, s).await;
    let heard = far.await_g711(50, LONG).await.unwrap();
    team.wait().await.assert_success(1);
    call.wait().await.assert_success(1);
    eprintln!("[e2e] the night team got {} G.711 packets", heard.g711());
    assert!(callbacks(&acd).await.is_empty());
    let q = AcdClient::connect(&acd.grpc_url())
        .await
        .unwrap()
        .queue("support")
        .await
        .unwrap();
    assert_eq!(q.offered + u64::from(q.waiting), 0, "nothing queued: {q:?}");
    finish(&env, &mut acd, started).await;
}

/// (c) Night, 1 with the night team busy (486): the flow falls to the
/// callback offer; 1 confirms the caller's number and the distributor
/// keeps the callback.
#[tokio::test]
async fn night_transfer_busy_falls_to_the_callback_offer() {
    let env = TestEnv::new("support247_night_busy", 105);
    let started = Instant::now();
    let site = Site::new(105, 1);
    let night = site.sipp(0);
    let config = copy_config(&env, site, true, night.sip);
    let mut acd = start(&env, site, &config, NIGHT).await;
    let team = SippCmd::new("night-team", "agent_reject.xml", night)
        .key("rtpport", site.observer(0))
        .limit(Duration::from_secs(80))
        .spawn(&env)
        .await
        .unwrap();

    let number = "0611220000";
    let (mut s, pressed) = night_key(false, "closed", '1');
    let confirm_at = pressed + prompt_ms("en/transferring");
    confirm_callback(&mut s, "en", confirm_at, number);
    let call = caller(&env, site, "caller", 1, number, s).await;
    team.wait().await.assert_success(1);
    call.wait().await.assert_success(1);
    let cbs = callbacks(&acd).await;
    assert_eq!(cbs.len(), 1, "{cbs:?}");
    let cb = &cbs[0];
    assert_eq!(cb["number"], number, "{cb}");
    assert_eq!(cb["queue_id"], "support", "{cb}");
    assert_eq!(cb["priority"], 0, "{cb}");
    assert_eq!(cb["voicemail"], "", "{cb}");
    assert_eq!(cb["caller"]["did"], DID, "{cb}");
    finish(&env, &mut acd, started).await;
}

/// (d) Night, a VIP caller presses 2 for a callback and 1 to confirm
/// their number: the callback is kept with the VIP's priority 10.
#[tokio::test]
async fn night_callback_is_booked_with_the_vip_priority() {
    let env = TestEnv::new("support247_night_callback", 105);
    let started = Instant::now();
    let site = Site::new(105, 2);
    let config = copy_config(&env, site, true, site.sipp(0).sip);
    let mut acd = start(&env, site, &config, NIGHT).await;

    let (mut s, pressed) = night_key(true, "closed", '2');
    confirm_callback(&mut s, "en", pressed, VIP2);
    let call = caller(&env, site, "caller", 1, VIP2, s).await;
    call.wait().await.assert_success(1);
    let cbs = callbacks(&acd).await;
    assert_eq!(cbs.len(), 1, "{cbs:?}");
    let cb = &cbs[0];
    assert_eq!(cb["number"], VIP2, "{cb}");
    assert_eq!(cb["priority"], 10, "{cb}");
    assert_eq!(cb["voicemail"], "", "{cb}");
    assert_eq!(cb["caller"]["variables"]["vip"], "yes", "{cb}");
    assert_eq!(cb["caller"]["variables"]["language"], "en", "{cb}");
    let table = acdctl(&acd.grpc_url(), &["callbacks"]).await.unwrap();
    assert!(table.stdout.contains(VIP2), "{}", table.stdout);
    finish(&env, &mut acd, started).await;
}

/// (d) Night, 3: a voicemail. The caller speaks (SIPp's g711a.pcap) after
/// the prompt and the beep, then presses `#`; the recording lands in the
/// config's `voicemail/` directory and the callback names it.
#[tokio::test]
async fn night_voicemail_is_recorded_and_attached_to_a_callback() {
    let env = TestEnv::new("support247_night_voicemail", 106);
    let started = Instant::now();
    let site = Site::new(106, 0);
    let config = copy_config(&env, site, true, site.sipp(0).sip);
    let mut acd = start(&env, site, &config, NIGHT).await;

    let (mut s, pressed) = night_key(false, "closed", '3');
    let recording = pressed + prompt_ms("en/leave_voicemail") + prompt_ms("beep");
    s.audio(recording + 500);
    // g711a.pcap lasts about 7 s.
    s.keys(recording + 500 + 7500, "#");
    let call = caller(&env, site, "caller", 1, CALLER, s).await;
    call.wait().await.assert_success(1);

    let cbs = callbacks(&acd).await;
    assert_eq!(cbs.len(), 1, "{cbs:?}");
    let cb = &cbs[0];
    assert_eq!(cb["number"], CALLER, "{cb}");
    assert_eq!(cb["queue_id"], "support", "{cb}");
    let file = cb["voicemail"].as_str().unwrap_or("");
    assert!(!file.is_empty(), "no voicemail in {cb}");
    let path = config.parent().unwrap().join("voicemail").join(file);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let info = acd_media::wav::wav_info(&bytes).expect("a WAV file");
    assert_eq!((info.sample_rate, info.channels), (8000, 1));
    let secs = info.samples as f64 / 8000.0;
    eprintln!("[e2e] voicemail {file}: {secs:.1} s");
    assert!(
        (4.0..=10.0).contains(&secs),
        "implausible length {secs:.1} s"
    );
    let loud = acd_media::wav::load_wav(&bytes)
        .unwrap()
        .samples()
        .iter()
        .filter(|s| s.unsigned_abs() > 1000)
        .count();
    assert!(loud > 1000, "the recording is silent ({loud} loud samples)");
    finish(&env, &mut acd, started).await;
}

/// (e) A holiday (2027-01-03): the holiday prompt, much shorter than the
/// night's `closed`, leads to the night menu. Key 2 is pressed right after
/// the holiday prompt, while `closed` (no barge-in) would still be
/// playing, so only the holiday branch can book the callback.
#[tokio::test]
async fn a_holiday_takes_the_holiday_branch() {
    let env = TestEnv::new("support247_holiday", 106);
    let started = Instant::now();
    let site = Site::new(106, 1);
    let config = copy_config(&env, site, true, site.sipp(0).sip);
    let mut acd = start(&env, site, &config, HOLIDAY).await;

    let (mut s, pressed) = night_key(false, "holiday", '2');
    let closed_ends = 1000 + prompt_ms("en/welcome") + prompt_ms("en/closed");
    assert!(
        pressed + 500 < closed_ends,
        "key 2 at {pressed} ms must fall inside `closed` (until {closed_ends} ms)"
    );
    confirm_callback(&mut s, "en", pressed, CALLER);
    let call = caller(&env, site, "caller", 1, CALLER, s).await;
    call.wait().await.assert_success(1);
    let cbs = callbacks(&acd).await;
    assert_eq!(cbs.len(), 1, "{cbs:?}");
    assert_eq!(cbs[0]["number"], CALLER, "{}", cbs[0]);
    // The runner logs every node it steps into.
    let log = std::fs::read_to_string(env.log_path("acd-run.stderr.log")).unwrap();
    assert!(
        log.contains("node=holiday"),
        "the holiday node was never entered"
    );
    assert!(!log.contains("node=closed"), "the closed node was entered");
    finish(&env, &mut acd, started).await;
}

#[test]
fn sites_stay_inside_their_block() {
    for block in [104, 105, 106] {
        let b = PortBlock::for_test(block).base;
        let last = Site::new(block, 2);
        assert!(last.base + 65 < b + 200);
        assert!(last.sipp(4).media + 3 < last.base + 40);
    }
}
