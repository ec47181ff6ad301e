//! The demo order-status API over real TCP: `acd demo-orders --listen ADDR`
//! answers orders by their last digit, 404 for unknown ones, 400 for garbage,
//! and counts every response code; `acd run` serves it when the config has
//! `[demo] orders_listen`.
//!
//! Port block 107: the standalone process on slot 4's gRPC (API) and metrics
//! ports; `acd run` on slot 0 with the API on slot 3's gRPC port.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use acd_tests::metrics::{counter_with, scrape};
use acd_tests::{AcdProcess, TestEnv};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const BLOCK: u16 = 107;

/// Sends `request` as is and returns the status code and body of the answer.
async fn exchange(addr: &str, request: &[u8]) -> (u16, String) {
    let fut = async {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(request).await.expect("send");
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.expect("read");
        buf
    };
    let buf = tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .expect("answered within 10 s");
    let text = String::from_utf8(buf).expect("UTF-8 answer");
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    assert!(head.starts_with("HTTP/1.1 "), "{text:?}");
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status code in {head:?}"));
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no Content-Length in {head:?}"));
    assert_eq!(length, body.len(), "{text:?}");
    (code, body.to_string())
}

async fn get(addr: &str, path: &str) -> (u16, serde_json::Value) {
    let (code, body) = exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await;
    let json = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {body:?}: {e}"));
    (code, json)
}

/// Days since 1970-01-01 of `YYYY-MM-DD` (H. Hinnant's `days_from_civil`).
fn days_of(date: &str) -> i64 {
    let parts: Vec<i64> = date
        .split('-')
        .map(|p| p.parse().unwrap_or_else(|_| panic!("date {date:?}")))
        .collect();
    let [y, m, d] = parts[..] else {
        panic!("date {date:?}")
    };
    assert_eq!(date.len(), 10, "date {date:?}");
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn today() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    i64::try_from(secs / 86_400).unwrap()
}

/// An existing order: its number echoed, the status expected, an eta 1-5 days ahead.
fn assert_order(json: &serde_json::Value, number: &str, status: &str) {
    assert_eq!(json["order"], number, "{json}");
    assert_eq!(json["status"], status, "{json}");
    let eta = json["eta"]
        .as_str()
        .unwrap_or_else(|| panic!("no eta: {json}"));
    // The day may turn between the answer and this check.
    let ahead = days_of(eta) - today();
    assert!((0..=5).contains(&ahead), "eta {eta} is {ahead} days ahead");
}

#[tokio::test]
async fn demo_orders_answers_over_tcp() {
    let env = TestEnv::new("demo_orders_answers_over_tcp", BLOCK);
    let api = format!("127.0.0.1:{}", env.ports.grpc(4));
    let metrics = format!("127.0.0.1:{}", env.ports.metrics(4));
    let args = ["demo-orders", "--listen", &api, "--metrics", &metrics].map(String::from);
    let mut p = AcdProcess::spawn(&env, "demo-orders", &args).await.unwrap();
    assert_eq!(p.ready.role, "demo-orders");
    assert_eq!(p.ready.get("orders"), Some(api.as_str()));

    let (code, json) = get(&api, "/orders/12341").await;
    assert_eq!(code, 200, "{json}");
    assert_order(&json, "12341", "shipped");
    let (code, json) = get(&api, "/orders/775?from=ivr").await;
    assert_eq!(code, 200, "{json}");
    assert_order(&json, "775", "processing");
    let (code, json) = get(&api, "/orders/9").await;
    assert_eq!(code, 200, "{json}");
    assert_order(&json, "9", "delivered");

    let (code, json) = get(&api, "/orders/120").await;
    assert_eq!(
        (code, json),
        (404, serde_json::json!({"error": "not found"}))
    );
    let (code, _) = get(&api, "/orders/12x").await;
    assert_eq!(code, 404);
    let (code, body) = exchange(&api, b"HELLO THERE\r\n\r\n").await;
    assert_eq!((code, body.as_str()), (400, r#"{"error":"bad request"}"#));
    let (code, _) = exchange(&api, b"DELETE /orders/11 HTTP/1.1\r\n\r\n").await;
    assert_eq!(code, 405);
    // A peer that sends half a request and stops gets 400, not a hang.
    let (code, _) = {
        let mut s = TcpStream::connect(&api).await.unwrap();
        s.write_all(b"GET /orders/11 HT").await.unwrap();
        s.shutdown().await.unwrap();
        let mut buf = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
            .await
            .expect("answered")
            .unwrap();
        let text = String::from_utf8_lossy(&buf).to_string();
        (text.split_whitespace().nth(1).map(str::to_string), text)
    };
    assert_eq!(code.as_deref(), Some("400"));

    let text = scrape(&metrics).await.unwrap();
    let responses = |code: &str| {
        counter_with(&text, "acd_demo_orders_responses_total", &[("code", code)]).unwrap_or(0.0)
    };
    assert_eq!(
        [
            responses("200"),
            responses("404"),
            responses("400"),
            responses("405")
        ],
        [3.0, 2.0, 2.0, 1.0],
        "{text}"
    );

    p.terminate();
    let status = p.wait_exit(Duration::from_secs(10)).await.unwrap();
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn acd_run_serves_demo_orders_from_config() {
    let env = TestEnv::new("acd_run_serves_demo_orders_from_config", BLOCK);
    let api = format!("127.0.0.1:{}", env.ports.grpc(3));
    let config = env.write_config(&format!("[demo]\norders_listen = \"{api}\"\n"));
    let run = env.start_run_with(&config, &[]).await.unwrap();
    assert_eq!(run.ready.get("demo_orders"), Some(api.as_str()));

    let (code, json) = get(&api, "/orders/3").await;
    assert_eq!(code, 200, "{json}");
    assert_order(&json, "3", "shipped");
    let (code, _) = get(&api, "/orders/30").await;
    assert_eq!(code, 404);
    let text = scrape(&run.metrics_addr()).await.unwrap();
    let ok = counter_with(&text, "acd_demo_orders_responses_total", &[("code", "200")]);
    assert_eq!(ok, Some(1.0), "{text}");
}
