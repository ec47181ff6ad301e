use super::*;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A local HTTP server answering every request with `response` (raw bytes),
/// or never answering when `None`; returns its base URL.
async fn server(response: Option<Vec<u8>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let response = response.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                match response {
                    Some(r) => {
                        let _ = sock.write_all(&r).await;
                    }
                    // Hold the connection open without answering.
                    None => tokio::time::sleep(Duration::from_secs(30)).await,
                }
            });
        }
    });
    format!("http://{addr}")
}

fn http(status: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[tokio::test]
async fn json_object_becomes_string_fields() {
    let body = r#"{"status":"shipped","eta_days":3,"vip":true,"addr":{"city":"Oslo","geo":{"lat":1.5}},"items":[1,2],"none":null}"#;
    let url = server(Some(http("200 OK", body))).await;
    let event = lookup("c1", &format!("{url}/orders/42?x=1"), 2000).await;
    let Event::LookupDone {
        http_status,
        fields,
    } = event
    else {
        panic!("not answered: {event:?}");
    };
    assert_eq!(http_status, 200);
    let want: BTreeMap<String, String> = [
        ("status", "shipped"),
        ("eta_days", "3"),
        ("vip", "true"),
        ("addr.city", "Oslo"),
        ("addr.geo.lat", "1.5"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(fields, want);
}

#[tokio::test]
async fn non_2xx_is_passed_on_with_its_status() {
    let url = server(Some(http("404 Not Found", "no such order"))).await;
    assert_eq!(
        lookup("c1", &url, 2000).await,
        Event::LookupDone {
            http_status: 404,
            fields: BTreeMap::new()
        }
    );
}

#[tokio::test]
async fn garbage_body_fails_the_lookup() {
    let url = server(Some(http("200 OK", "<html>oops"))).await;
    let event = lookup("c1", &url, 2000).await;
    assert!(
        matches!(&event, Event::LookupFailed { reason } if reason.contains("not a JSON object")),
        "{event:?}"
    );
    let url = server(Some(b"this is not HTTP at all\r\n\r\n".to_vec())).await;
    let event = lookup("c1", &url, 2000).await;
    assert!(matches!(event, Event::LookupFailed { .. }), "{event:?}");
}

#[tokio::test]
async fn oversized_body_fails_the_lookup() {
    let big = format!("{{\"a\":\"{}\"}}", "x".repeat(MAX_BODY_BYTES));
    let url = server(Some(http("200 OK", &big))).await;
    let event = lookup("c1", &url, 2000).await;
    assert!(
        matches!(&event, Event::LookupFailed { reason } if reason.contains("larger than")),
        "{event:?}"
    );
}

#[tokio::test]
async fn silent_server_times_out_within_the_flows_timeout() {
    let url = server(None).await;
    let started = Instant::now();
    let event = lookup("c1", &url, 300).await;
    let took = started.elapsed();
    assert!(
        matches!(&event, Event::LookupFailed { reason } if reason.contains("no answer within")),
        "{event:?}"
    );
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(2),
        "{took:?}"
    );
}

#[tokio::test]
async fn refused_and_bad_urls_fail() {
    // Bound then dropped: nothing listens there any more.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let event = lookup("c1", &format!("http://127.0.0.1:{port}/"), 1000).await;
    assert!(
        matches!(&event, Event::LookupFailed { reason } if reason.contains("cannot connect")),
        "{event:?}"
    );
    for url in ["ftp://example.com/x", "not a url", "http:///nohost"] {
        let event = lookup("c1", url, 1000).await;
        assert!(
            matches!(&event, Event::LookupFailed { reason } if reason.contains("bad URL")),
            "{url}: {event:?}"
        );
    }
}

#[tokio::test]
async fn a_slow_lookup_does_not_hold_up_another() {
    let slow = server(None).await;
    let fast = server(Some(http("200 OK", r#"{"ok":1}"#))).await;
    let slow = tokio::spawn(async move { lookup("slow", &slow, 3000).await });
    let started = Instant::now();
    let event = lookup("fast", &fast, 3000).await;
    assert!(matches!(event, Event::LookupDone { .. }), "{event:?}");
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(!slow.is_finished());
    slow.abort();
}

fn play(p: &str) -> Action {
    Action::Play {
        prompts: vec![p.into()],
        barge_in: false,
    }
}

#[tokio::test]
async fn rounds_accumulate_actions_and_feed_outcomes_back() {
    let ok = server(Some(http("200 OK", r#"{"state":"open"}"#))).await;
    let failing = server(None).await;
    let mut seen = Vec::new();
    let first = vec![
        play("a"),
        Action::Lookup {
            url: ok.clone(),
            timeout_ms: 2000,
        },
    ];
    let out = run_lookups("c1", first, |event| {
        seen.push(event.clone());
        Ok::<_, ()>(match seen.len() {
            1 => vec![
                play("b"),
                Action::Lookup {
                    url: failing.clone(),
                    timeout_ms: 200,
                },
            ],
            _ => vec![
                play("c"),
                Action::Hangup {
                    reason: "done".into(),
                },
            ],
        })
    })
    .await
    .unwrap();
    assert_eq!(
        out,
        vec![
            play("a"),
            play("b"),
            play("c"),
            Action::Hangup {
                reason: "done".into()
            }
        ]
    );
    assert!(
        matches!(&seen[0], Event::LookupDone { http_status: 200, fields } if fields["state"] == "open")
    );
    assert!(matches!(&seen[1], Event::LookupFailed { .. }));
}

#[tokio::test]
async fn endless_lookups_are_cut_after_the_round_limit() {
    let ok = server(Some(http("200 OK", "{}"))).await;
    let again = Action::Lookup {
        url: ok,
        timeout_ms: 1000,
    };
    let mut events = Vec::new();
    let out = run_lookups("c1", vec![again.clone()], |event| {
        events.push(event);
        Ok::<_, ()>(vec![again.clone()])
    })
    .await
    .unwrap();
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(events.len(), MAX_ROUNDS + 1);
    assert!(
        matches!(&events[MAX_ROUNDS], Event::LookupFailed { reason } if reason.contains("more than"))
    );
    // Without a lookup the actions pass through untouched.
    let plain = run_lookups("c1", vec![play("x")], |_| Ok::<_, ()>(vec![]))
        .await
        .unwrap();
    assert_eq!(plain, vec![play("x")]);
}

#[test]
fn flatten_bounds_fields() {
    let mut map = serde_json::Map::new();
    for i in 0..100 {
        map.insert(format!("k{i:03}"), Value::from(i));
    }
    map.insert("long".into(), Value::from("x".repeat(MAX_VALUE_CHARS + 1)));
    let fields = flatten(&map);
    assert_eq!(fields.len(), MAX_FIELDS);
    assert!(!fields.contains_key("long"));
}
