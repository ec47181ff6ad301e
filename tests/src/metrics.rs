//! Prometheus scraping over a raw TcpStream (HTTP/1.0 GET), and counters.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// GET http://<addr>/metrics; returns the body.
pub async fn scrape(addr: &str) -> Result<String> {
    let fut = async {
        let mut s = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connect {addr}"))?;
        s.write_all(format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\nAccept: text/plain\r\nConnection: close\r\n\r\n").as_bytes())
            .await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        let text = String::from_utf8_lossy(&buf).to_string();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        if !head.starts_with("HTTP/1.") || head.split_whitespace().nth(1).is_none_or(|c| c != "200")
        {
            bail!("GET http://{addr}/metrics: unexpected response head {head:?}");
        }
        Ok(body.to_string())
    };
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .context("metrics scrape timed out")?
}

/// Sum of every sample of metric `name` (any labels). `None` if absent.
pub fn counter(text: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        // "name{labels} value [timestamp]" or "name value [timestamp]".
        let (series, rest) = match line.rfind('}') {
            Some(end) if line.contains('{') => (&line[..=end], &line[end + 1..]),
            _ => match line.split_once(char::is_whitespace) {
                Some(x) => x,
                None => continue,
            },
        };
        let value = rest.split_whitespace().next().unwrap_or("");
        let metric = series.split('{').next().unwrap_or("").trim();
        if metric == name {
            if let Ok(v) = value.trim().parse::<f64>() {
                *found.get_or_insert(0.0) += v;
            }
        }
    }
    found
}

/// Sum of the samples of metric `name` whose labels include every
/// `(label, value)` of `want` (e.g. `&[("method", "INVITE")]`). `None` if none.
pub fn counter_with(text: &str, name: &str, want: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some(open) = line.find('{') else { continue };
        let Some(close) = line.rfind('}') else {
            continue;
        };
        if line[..open].trim() != name || close < open {
            continue;
        }
        let labels = &line[open + 1..close];
        let has = |k: &str, v: &str| {
            labels
                .split(',')
                .filter_map(|kv| kv.split_once('='))
                .any(|(lk, lv)| lk.trim() == k && lv.trim().trim_matches('"') == v)
        };
        if !want.iter().all(|(k, v)| has(k, v)) {
            continue;
        }
        let value = line[close + 1..].split_whitespace().next().unwrap_or("");
        if let Ok(v) = value.parse::<f64>() {
            *found.get_or_insert(0.0) += v;
        }
    }
    found
}

/// Scrapes `addr` and returns counter `name` (0 if absent).
pub async fn scrape_counter(addr: &str, name: &str) -> Result<f64> {
    Ok(counter(&scrape(addr).await?, name).unwrap_or(0.0))
}

/// Status code of `GET path` on `addr` (e.g. `/ready`), 0 when unreadable.
pub async fn http_status(addr: &str, path: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
        return 0;
    };
    if s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .is_err()
    {
        return 0;
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf).await;
    buf.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::{counter, counter_with};

    #[test]
    fn parses_counters() {
        let t = "# HELP acd_ivr_steps_total steps\n# TYPE acd_ivr_steps_total counter\n\
                 acd_ivr_steps_total{flow=\"sales\"} 3\nacd_ivr_steps_total{flow=\"support\"} 2\n\
                 acd_ivr_steps_total_other 7\nplain 5 1700000000000\n";
        assert_eq!(counter(t, "acd_ivr_steps_total"), Some(5.0));
        assert_eq!(counter(t, "plain"), Some(5.0));
        assert_eq!(counter(t, "absent"), None);
        assert_eq!(
            counter_with(t, "acd_ivr_steps_total", &[("flow", "sales")]),
            Some(3.0)
        );
        assert_eq!(
            counter_with(t, "acd_ivr_steps_total", &[("flow", "x")]),
            None
        );
    }
}
