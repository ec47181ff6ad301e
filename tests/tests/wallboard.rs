//! The live wallboard in a real browser: headless Chromium driven through
//! chromedriver (W3C WebDriver, plain HTTP and JSON) shows SIPp calls on
//! `acd run` as they happen: a call waiting while no agent is ready, then
//! answered once the agent goes ready, and the day's service-level chart.
//!
//! Port block 139: `acd run` on its usual slots, chromedriver on `+98`.

use std::time::Duration;

use acd_tests::flows::{agent_phone, register, trunk};
use acd_tests::proto::AgentState;
use acd_tests::{AcdClient, AcdProcess, RtpObserver, SippRun, TestEnv, LONG};
use anyhow::{bail, Context, Result};
use base64::Engine as _;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::time::Instant;

const BLOCK: u16 = 139;
/// The page's figures must follow the calls within this.
const PAGE_DEADLINE: Duration = Duration::from_secs(20);

/// One HTTP/1.1 exchange with chromedriver; the JSON `value` of its answer.
async fn wd(port: u16, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut s = TcpStream::connect(("127.0.0.1", port)).await?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await?;
    let (head, json) = tokio::time::timeout(Duration::from_secs(60), read_answer(&mut s))
        .await
        .context("chromedriver did not answer")??;
    let v: Value = serde_json::from_str(&json).with_context(|| format!("{head}\n{json}"))?;
    if !head.starts_with("HTTP/1.1 200") {
        bail!("{method} {path}: {head}\n{v}");
    }
    Ok(v["value"].clone())
}

/// Head and body of one answer; chromedriver keeps the connection open
/// whatever the request says, so the body is read by its Content-Length.
async fn read_answer(s: &mut TcpStream) -> Result<(String, String)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .context("no Content-Length")?;
            if buf.len() >= end + 4 + len {
                let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).to_string();
                return Ok((head, body));
            }
        }
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            bail!("chromedriver closed the connection mid-answer");
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// chromedriver and one headless Chromium session.
struct Browser {
    _driver: Child,
    port: u16,
    session: String,
    _profile: TempDir,
}

struct TempDir(std::path::PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Browser {
    async fn start(env: &TestEnv, width: u32, height: u32) -> Result<Browser> {
        let port = env.ports.etcd_client();
        let log = std::fs::File::create(env.log_path("chromedriver.log"))?;
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("starting chromedriver (Debian package chromium-driver)")?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while !wd(port, "GET", "/status", None)
            .await
            .is_ok_and(|v| v["ready"] == true)
        {
            if Instant::now() > deadline {
                bail!("chromedriver did not get ready on port {port}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = TempDir(env.log_path("chromium-profile"));
        let _ = std::fs::remove_dir_all(&profile.0);
        // As root Chromium needs --no-sandbox; /dev/shm is small in containers.
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--hide-scrollbars", format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", profile.0.display()),
                ]
            }
        }}});
        let session = wd(port, "POST", "/session", Some(caps)).await?;
        let session = session["sessionId"]
            .as_str()
            .context("no sessionId")?
            .to_string();
        Ok(Browser {
            _driver: driver,
            port,
            session,
            _profile: profile,
        })
    }

    async fn call(&self, method: &str, what: &str, body: Option<Value>) -> Result<Value> {
        let path = format!("/session/{}/{what}", self.session);
        wd(self.port, method, &path, body).await
    }

    async fn open(&self, url: &str) -> Result<()> {
        self.call("POST", "url", Some(json!({ "url": url })))
            .await
            .map(drop)
    }

    async fn script(&self, js: &str) -> Result<Value> {
        self.call(
            "POST",
            "execute/sync",
            Some(json!({ "script": js, "args": [] })),
        )
        .await
    }

    async fn screenshot(&self) -> Result<Vec<u8>> {
        let b64 = self.call("GET", "screenshot", None).await?;
        Ok(base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().context("screenshot is not a string")?)?)
    }

    async fn close(self) {
        let path = format!("/session/{}", self.session);
        let _ = wd(self.port, "DELETE", &path, None).await;
    }
}

impl Drop for Browser {
    /// Chromium's processes outlive chromedriver when a test fails before
    /// `close` (they are not its children's children in one group): end every
    /// process started with this test's profile directory.
    fn drop(&mut self) {
        let _ = std::process::Command::new("pkill")
            .arg("-KILL")
            .arg("-f")
            .arg(format!("--user-data-dir={}", self._profile.0.display()))
            .status();
    }
}

/// What the page shows for queue `sales`, read from the DOM by the ids and
/// data attributes wallboard.html defines.
const READ_PAGE: &str = r#"
const t = document.querySelector('[data-queue="sales"]');
const f = n => t ? t.querySelector('[data-field="' + n + '"]').textContent : null;
return {
  status: document.getElementById('status').textContent,
  waiting: f('waiting'), offered: f('offered'), answered: f('answered'), sl: f('sl'),
  below: t ? t.classList.contains('below') : null,
  on_call: (document.getElementById('agents-on_call') || {}).textContent || null,
  bars: document.querySelectorAll('#chart rect.bar').length,
};
"#;

/// Polls the page until `ok` holds for what it shows; fails at the deadline
/// with the last reading.
async fn await_page(b: &Browser, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + PAGE_DEADLINE;
    loop {
        let page = b.script(READ_PAGE).await.unwrap_or(Value::Null);
        if ok(&page) {
            eprintln!("[e2e] page shows {what}: {page}");
            return page;
        }
        assert!(
            Instant::now() < deadline,
            "the wallboard never showed {what}; last reading {page}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn field(page: &Value, name: &str) -> String {
    page[name].as_str().unwrap_or_default().to_string()
}

/// Started phone, trunk call and agent client of the scenario.
struct Scenario {
    phone: SippRun,
    trunk: SippRun,
    client: AcdClient,
    watch: acd_tests::AgentWatch,
}

/// Alice registered (her phone answers and hangs up after 4 s) and not ready;
/// one trunk call to sales that waits.
async fn call_waits(env: &TestEnv, acd: &AcdProcess) -> Scenario {
    let agent_rtp = RtpObserver::bind("agent", env.ports.observer(1))
        .await
        .unwrap();
    let phone = agent_phone(env, "agent-1001", 1, agent_rtp.port(), Some(4000)).await;
    register(env, 2, "1001", "secret1001", env.ports.sipp(1).sip)
        .await
        .assert_success(1);
    let mut client = AcdClient::connect(&acd.grpc_url()).await.unwrap();
    let st = client.login("alice", "1001").await.unwrap();
    let watch = client.watch("alice").await.unwrap();
    if st.state != AgentState::NotReady as i32 {
        client.not_ready("alice", "e2e").await.unwrap();
    }
    let trunk = trunk(
        env,
        "trunk",
        "trunk_call.xml",
        3,
        "5550100",
        env.ports.observer(0),
    )
    .spawn(env)
    .await
    .unwrap();
    Scenario {
        phone,
        trunk,
        client,
        watch,
    }
}

#[tokio::test]
async fn wallboard_in_chromium_follows_sipp_calls() {
    let env = TestEnv::new("wallboard_in_chromium", BLOCK);
    let mut acd = env.start_run().await.unwrap();
    let url = format!("http://{}/wallboard", acd.metrics_addr());
    let browser = Browser::start(&env, 1600, 900).await.unwrap();
    browser.open(&url).await.unwrap();

    let before = await_page(&browser, "the live board", |p| {
        field(p, "status") == "live" && field(p, "waiting") == "0"
    })
    .await;
    assert_eq!(field(&before, "answered"), "0", "{before}");
    assert_eq!(before["bars"], 0, "no calls, no bars: {before}");

    let mut s = call_waits(&env, &acd).await;
    let waiting = await_page(&browser, "the call waiting", |p| field(p, "waiting") == "1").await;
    assert_eq!(field(&waiting, "offered"), "1", "{waiting}");
    assert_eq!(field(&waiting, "answered"), "0", "{waiting}");

    s.client.ready("alice").await.unwrap();
    s.watch.await_state(AgentState::OnCall, LONG).await.unwrap();
    let answered = await_page(&browser, "the call answered", |p| {
        field(p, "answered") == "1" && field(p, "waiting") == "0"
    })
    .await;
    // One interval, with the call answered at once: a bar at 100 %.
    assert_eq!(answered["bars"], 1, "{answered}");
    assert_eq!(field(&answered, "on_call"), "1", "{answered}");
    assert_eq!(field(&answered, "sl"), "100%", "{answered}");
    assert_eq!(answered["below"], false, "{answered}");

    s.phone.wait().await.assert_success(1);
    s.trunk.wait().await.assert_success(1);
    browser.close().await;
    acd.assert_running();
}

/// Saves `docs/wallboard.png` for the README: the scenario above, plus a
/// support call left waiting. `cargo nextest run -p acd-tests --test
/// wallboard --run-ignored only`.
#[tokio::test]
#[ignore]
async fn wallboard_screenshot() {
    let env = TestEnv::new("wallboard_screenshot", BLOCK);
    let mut acd = env.start_run().await.unwrap();
    let url = format!("http://{}/wallboard", acd.metrics_addr());
    // 1600 x 900 of page under the window's own bars.
    let browser = Browser::start(&env, 1600, 1043).await.unwrap();
    browser.open(&url).await.unwrap();
    let mut s = call_waits(&env, &acd).await;
    await_page(&browser, "the call waiting", |p| field(p, "waiting") == "1").await;
    s.client.ready("alice").await.unwrap();
    s.watch.await_state(AgentState::OnCall, LONG).await.unwrap();
    let support = trunk(
        &env,
        "trunk-support",
        "trunk_call.xml",
        4,
        "5550200",
        env.ports.observer(2),
    )
    .spawn(&env)
    .await
    .unwrap();
    await_page(&browser, "the answered call", |p| {
        field(p, "answered") == "1"
    })
    .await;
    // Past the support flow's welcome prompt, with some wait on the clock.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let png = browser.screenshot().await.unwrap();
    let path = acd_tests::env::workspace_root().join("docs/wallboard.png");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, png).unwrap();
    eprintln!("[e2e] wrote {}", path.display());
    browser.close().await;
    s.phone.wait().await;
    acd.kill().await;
    drop((s.trunk, support));
}
