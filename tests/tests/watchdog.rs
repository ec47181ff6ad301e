//! systemd's notify protocol, with the test as systemd: `NOTIFY_SOCKET`
//! names a datagram socket the test binds, `WATCHDOG_USEC` asks for the
//! watchdog. `acd run` (edge + distributor + IVR) must send READY=1 once
//! ready, then WATCHDOG=1 at half the timeout while its edge loop and
//! distributor are live, and STOPPING=1 on SIGTERM.

use std::time::Duration;

use acd_tests::{AcdProcess, TestEnv, SHORT};
use tokio::net::UnixDatagram;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Watchdog timeout given to acd: pings expected every 500 ms.
const WATCHDOG: Duration = Duration::from_secs(1);
/// How long the ping rate is measured.
const WINDOW: Duration = Duration::from_secs(4);

/// Every notify message as (arrival, text).
fn listen(sock: UnixDatagram) -> mpsc::UnboundedReceiver<(Instant, String)> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok(n) = sock.recv(&mut buf).await {
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            if tx.send((Instant::now(), text)).is_err() {
                return;
            }
        }
    });
    rx
}

/// The next message containing `want`, within `within`; the others seen
/// on the way are appended to `seen`.
async fn await_message(
    rx: &mut mpsc::UnboundedReceiver<(Instant, String)>,
    want: &str,
    within: Duration,
    seen: &mut Vec<(Instant, String)>,
) -> Instant {
    let deadline = Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((at, text))) => {
                let hit = text.lines().any(|l| l == want);
                seen.push((at, text));
                if hit {
                    return at;
                }
            }
            _ => panic!("no {want:?} within {within:?}; messages so far: {seen:?}"),
        }
    }
}

#[tokio::test]
async fn ready_then_watchdog_pings_then_stopping() {
    let env = TestEnv::new("watchdog", 77);
    let path = env.log_path("notify.sock");
    let _ = std::fs::remove_file(&path);
    let mut rx = listen(UnixDatagram::bind(&path).unwrap());
    let spawned = Instant::now();
    let acd = AcdProcess::spawn_with_env(
        &env,
        "acd-run",
        &env.run_args(),
        &[
            ("NOTIFY_SOCKET", path.display().to_string()),
            ("WATCHDOG_USEC", WATCHDOG.as_micros().to_string()),
        ],
    )
    .await
    .unwrap();
    let mut seen = Vec::new();
    let ready = await_message(&mut rx, "READY=1", SHORT, &mut seen).await;
    assert!(ready > spawned, "READY=1 before the process started?");
    assert!(
        !seen.iter().any(|(_, m)| m.contains("WATCHDOG=1")),
        "a watchdog ping before READY=1: {seen:?}"
    );

    // The rate: one ping per half timeout.
    let first = await_message(&mut rx, "WATCHDOG=1", WATCHDOG, &mut seen).await;
    let mut pings = vec![first];
    let end = first + WINDOW;
    while let Ok(Some((at, text))) = tokio::time::timeout_at(end, rx.recv()).await {
        if text.lines().any(|l| l == "WATCHDOG=1") {
            pings.push(at);
        }
    }
    let gaps: Vec<Duration> = pings.windows(2).map(|w| w[1] - w[0]).collect();
    eprintln!("[e2e] {} pings in {WINDOW:?}, gaps {gaps:?}", pings.len());
    let expected = (WINDOW.as_millis() / (WATCHDOG / 2).as_millis()) as usize;
    assert!(
        pings.len() + 1 >= expected && pings.len() <= expected + 2,
        "{} pings in {WINDOW:?}, expected about {expected}: gaps {gaps:?}",
        pings.len()
    );
    let longest = gaps.iter().max().copied().unwrap_or_default();
    assert!(
        longest < WATCHDOG,
        "a gap of {longest:?} between pings would let systemd kill a healthy process"
    );

    // SIGTERM: STOPPING=1.
    let pid = acd.pid().expect("acd runs");
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut seen = Vec::new();
    await_message(&mut rx, "STOPPING=1", SHORT, &mut seen).await;
}
