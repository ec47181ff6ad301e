//! Prometheus scraping over a raw TcpStream (HTTP/1.0 GET), counters, and a
//! parser of the text exposition format with a naming-conventions lint.

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

/// One sample line of the text exposition format.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A metric family: its `# TYPE`, `# HELP` and samples (a histogram's
/// `_bucket`, `_sum` and `_count` lines included).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Family {
    pub kind: Option<String>,
    pub help: Option<String>,
    pub samples: Vec<Sample>,
}

/// A parsed `/metrics` body, by family name.
#[derive(Debug, Clone, Default)]
pub struct Exposition {
    pub families: std::collections::BTreeMap<String, Family>,
}

impl Exposition {
    /// Parses the Prometheus text format (version 0.0.4).
    pub fn parse(text: &str) -> Result<Exposition> {
        let mut e = Exposition::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            if let Some(rest) = line.strip_prefix('#') {
                e.comment(rest.trim_start());
                continue;
            }
            let sample = parse_sample(line).with_context(|| format!("line {}: {line:?}", n + 1))?;
            let family = e.family_of(&sample.name);
            e.families.entry(family).or_default().samples.push(sample);
        }
        Ok(e)
    }

    fn comment(&mut self, c: &str) {
        let mut parts = c.splitn(3, ' ');
        let (Some(kw), Some(name)) = (parts.next(), parts.next()) else {
            return;
        };
        let rest = parts.next().unwrap_or("").to_string();
        let f = self.families.entry(name.to_string()).or_default();
        match kw {
            "TYPE" => f.kind = Some(rest),
            "HELP" => f.help = Some(rest),
            _ => {}
        }
    }

    /// The family a sample belongs to: its own name, or a histogram's or
    /// summary's name without the `_bucket`/`_sum`/`_count` suffix.
    fn family_of(&self, sample: &str) -> String {
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(base) = sample.strip_suffix(suffix) {
                let typed = self.families.get(base).and_then(|f| f.kind.as_deref());
                if matches!(typed, Some("histogram" | "summary")) {
                    return base.to_string();
                }
            }
        }
        sample.to_string()
    }

    pub fn family(&self, name: &str) -> Option<&Family> {
        self.families.get(name)
    }

    /// Sum of the samples named `sample` whose labels include all of `want`.
    pub fn sum(&self, sample: &str, want: &[(&str, &str)]) -> Option<f64> {
        let family = self.families.get(&self.family_of(sample))?;
        let mut found = None;
        for s in family.samples.iter().filter(|s| s.name == sample) {
            if want.iter().all(|(k, v)| s.label(k) == Some(*v)) {
                *found.get_or_insert(0.0) += s.value;
            }
        }
        found
    }

    /// Names of every family with at least one sample or a TYPE.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.families.keys().map(String::as_str)
    }

    /// Where this exposition breaks the naming conventions
    /// (<https://prometheus.io/docs/practices/naming/>); empty when it does not.
    pub fn lint(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (name, f) in &self.families {
            problems.extend(lint_family(name, f));
        }
        problems
    }
}

/// Label names that would carry unbounded values.
const UNBOUNDED_LABELS: &[&str] = &["call", "call_id", "callid", "session", "dialog", "branch"];
/// Most series one family may have in a test installation.
const MAX_SERIES: usize = 300;

fn lint_family(name: &str, f: &Family) -> Vec<String> {
    let mut p = Vec::new();
    let valid = name.strip_prefix("acd_").is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    });
    if !valid {
        p.push(format!("{name}: not ^acd_[a-z0-9_]+$"));
    }
    if f.help.as_deref().is_none_or(str::is_empty) {
        p.push(format!("{name}: no HELP"));
    }
    let kind = f.kind.as_deref().unwrap_or("");
    match kind {
        "counter" if !name.ends_with("_total") => p.push(format!("{name}: counter without _total")),
        "gauge" | "histogram" if name.ends_with("_total") => {
            p.push(format!("{name}: a {kind} named like a counter"))
        }
        "counter" | "gauge" => {}
        "histogram" => p.extend(lint_histogram(name, f)),
        "" => p.push(format!("{name}: no TYPE")),
        other => p.push(format!(
            "{name}: TYPE {other} (histograms with buckets expected)"
        )),
    }
    let words: Vec<&str> = name.split('_').collect();
    for unit in [
        "ms",
        "millis",
        "milliseconds",
        "us",
        "micros",
        "unix",
        "percent",
    ] {
        if words.contains(&unit) {
            p.push(format!("{name}: non-base unit `{unit}`"));
        }
    }
    for s in &f.samples {
        for (k, _) in &s.labels {
            if UNBOUNDED_LABELS.contains(&k.as_str()) {
                p.push(format!("{name}: unbounded label `{k}`"));
            }
        }
    }
    if f.samples.len() > MAX_SERIES {
        p.push(format!("{name}: {} series", f.samples.len()));
    }
    p
}

fn lint_histogram(name: &str, f: &Family) -> Vec<String> {
    let mut p = Vec::new();
    let bucket = format!("{name}_bucket");
    let buckets: Vec<&Sample> = f.samples.iter().filter(|s| s.name == bucket).collect();
    if buckets.is_empty() || buckets.iter().any(|s| s.label("le").is_none()) {
        p.push(format!("{name}: histogram without le buckets"));
    }
    if !buckets.iter().any(|s| s.label("le") == Some("+Inf")) {
        p.push(format!("{name}: no +Inf bucket"));
    }
    for part in ["_sum", "_count"] {
        let want = format!("{name}{part}");
        if !f.samples.iter().any(|s| s.name == want) {
            p.push(format!("{name}: no {want}"));
        }
    }
    p
}

/// `name{k="v",...} value [timestamp]`, label values unescaped.
fn parse_sample(line: &str) -> Result<Sample> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .context("no value")?;
    let name = line[..name_end].to_string();
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let (parsed, after) = parse_labels(inner)?;
        labels = parsed;
        rest = after;
    }
    let value = rest.split_whitespace().next().context("no value")?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().with_context(|| format!("bad value {v:?}"))?,
    };
    Ok(Sample {
        name,
        labels,
        value,
    })
}

/// Labels up to the closing `}`; what follows it.
fn parse_labels(mut s: &str) -> Result<(Vec<(String, String)>, &str)> {
    let mut labels = Vec::new();
    loop {
        s = s.trim_start_matches([' ', ',']);
        if let Some(after) = s.strip_prefix('}') {
            return Ok((labels, after));
        }
        let (key, after) = s.split_once('=').context("label without =")?;
        let mut chars = after
            .strip_prefix('"')
            .context("unquoted label value")?
            .char_indices();
        let mut value = String::new();
        let end = loop {
            match chars.next().context("unterminated label value")? {
                (i, '"') => break i,
                (_, '\\') => match chars.next().context("dangling escape")?.1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (_, c) => value.push(c),
            }
        };
        labels.push((key.trim().to_string(), value));
        s = &after[end + 2..];
    }
}

/// Metric names used by the queries (`expr`) of a Grafana dashboard; a
/// histogram's `_bucket`/`_sum`/`_count` are reported as the family.
pub fn dashboard_metrics(dashboard: &serde_json::Value) -> std::collections::BTreeSet<String> {
    let mut exprs = Vec::new();
    collect_exprs(dashboard, &mut exprs);
    let mut names = std::collections::BTreeSet::new();
    for e in exprs {
        let mut rest = e.as_str();
        while let Some(i) = rest.find("acd_") {
            let tail = &rest[i..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            let name = &tail[..end];
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(name);
            names.insert(family.to_string());
            rest = &tail[end..];
        }
    }
    names
}

fn collect_exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("expr" | "query", serde_json::Value::String(s)) => out.push(s.clone()),
                    _ => collect_exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::{counter, counter_with, dashboard_metrics, Exposition};

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

    const GOOD: &str = "# HELP acd_x_total Things.\n# TYPE acd_x_total counter\n\
        acd_x_total{code=\"200\",note=\"a \\\"b\\\", c\"} 3\nacd_x_total{code=\"404\"} 1\n\
        # HELP acd_d_seconds Time.\n# TYPE acd_d_seconds histogram\n\
        acd_d_seconds_bucket{le=\"0.001\"} 1\nacd_d_seconds_bucket{le=\"+Inf\"} 2\n\
        acd_d_seconds_sum 0.5\nacd_d_seconds_count 2\n";

    #[test]
    fn parses_families_labels_and_histograms() {
        let e = Exposition::parse(GOOD).unwrap();
        let x = e.family("acd_x_total").unwrap();
        assert_eq!(x.kind.as_deref(), Some("counter"));
        assert_eq!(x.samples[0].label("note"), Some("a \"b\", c"));
        assert_eq!(e.sum("acd_x_total", &[]), Some(4.0));
        assert_eq!(e.sum("acd_x_total", &[("code", "404")]), Some(1.0));
        assert_eq!(e.sum("acd_d_seconds_count", &[]), Some(2.0));
        assert_eq!(e.family("acd_d_seconds").unwrap().samples.len(), 4);
        assert_eq!(e.lint(), Vec::<String>::new());
    }

    #[test]
    fn lint_finds_every_kind_of_offence() {
        let bad = "# TYPE acd_a counter\nacd_a 1\n\
            # HELP acd_b_unix_ms When.\n# TYPE acd_b_unix_ms gauge\nacd_b_unix_ms 1\n\
            # HELP acd_c_seconds Time.\n# TYPE acd_c_seconds summary\nacd_c_seconds{quantile=\"0.5\"} 1\n\
            # HELP Other_x X.\n# TYPE Other_x gauge\nOther_x{call_id=\"abc\"} 1\n";
        let problems = Exposition::parse(bad).unwrap().lint();
        for want in [
            "acd_a: no HELP",
            "acd_a: counter without _total",
            "acd_b_unix_ms: non-base unit `ms`",
            "acd_b_unix_ms: non-base unit `unix`",
            "acd_c_seconds: TYPE summary",
            "Other_x: not ^acd_",
            "Other_x: unbounded label `call_id`",
        ] {
            assert!(
                problems.iter().any(|p| p.starts_with(want)),
                "{want} not in {problems:?}"
            );
        }
    }

    #[test]
    fn dashboard_queries_name_their_metrics() {
        let d = serde_json::json!({"panels": [{"targets": [
            {"expr": "histogram_quantile(0.99, sum by (le) (rate(acd_d_seconds_bucket[5m])))"},
            {"expr": "sum by (queue) (rate(acd_x_total[1m])) / on() acd_y"}
        ]}]});
        let names: Vec<String> = dashboard_metrics(&d).into_iter().collect();
        assert_eq!(names, ["acd_d_seconds", "acd_x_total", "acd_y"]);
    }
}
