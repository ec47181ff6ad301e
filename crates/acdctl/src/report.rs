//! `acdctl report`: call figures by queue, agent or interval, and `acdctl
//! report staffing`: operators needed per interval (Erlang C and A) and a
//! shift plan. Through the distributor's `Report` RPC, or with `--db`
//! straight from the records database.

use std::collections::BTreeMap;

use acd_proto::v1 as pb;
use acd_proto::v1::supervisor_service_client::SupervisorServiceClient;
use acd_records::report::{Report, ReportRow};
use acd_records::staffing::StaffingReport;
use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};

use crate::output;
use crate::request;
use crate::servers::Servers;

#[derive(Args, Debug)]
pub struct ReportArgs {
    #[command(subcommand)]
    pub what: Option<ReportWhat>,
    #[command(flatten)]
    pub common: CommonArgs,
    /// Rows by queue, agent or interval.
    #[arg(long, value_enum, default_value_t = By::Queue)]
    pub by: By,
    /// Callers hanging up sooner are short abandons (default: configured).
    #[arg(long, value_name = "SECS")]
    pub short_abandon_secs: Option<u32>,
    /// First-contact resolution window (default: configured).
    #[arg(long, value_name = "HOURS")]
    pub fcr_hours: Option<u32>,
}

#[derive(Subcommand, Debug)]
pub enum ReportWhat {
    /// Operators needed per interval of the day (Erlang C and A, with
    /// shrinkage) from the recorded traffic, and a 24/7 shift plan.
    Staffing(StaffingArgs),
}

#[derive(Args, Debug)]
pub struct StaffingArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Share of paid time not on the phones (default: configured).
    #[arg(long, value_name = "PCT")]
    pub shrinkage: Option<u32>,
    /// Shift length of the plan (default: configured).
    #[arg(long, value_name = "H")]
    pub shift_hours: Option<u32>,
}

#[derive(Args, Debug, Clone)]
pub struct CommonArgs {
    /// Start: YYYY-MM-DD (local midnight), RFC 3339, `today` or `yesterday`.
    #[arg(long, default_value = "today")]
    pub from: String,
    /// End (exclusive; a date means the end of that day). Default: the end
    /// of the `--from` day, or now after an RFC 3339 `--from`.
    #[arg(long)]
    pub to: Option<String>,
    /// Interval length in minutes (15, 30 or 60; default: configured).
    #[arg(long, value_name = "MINS")]
    pub interval: Option<u32>,
    /// Only these queues (repeat the flag).
    #[arg(long = "queue", value_name = "Q")]
    pub queues: Vec<String>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Time zone of dates and intervals (IANA name).
    #[arg(long, default_value = "UTC")]
    pub tz: String,
    /// Read this records database instead of asking a distributor:
    /// `sqlite:PATH` or `postgres://user@host:port/db`.
    #[arg(long, value_name = "URL")]
    pub db: Option<String>,
    /// With `--db`: the acd config whose queue targets and `[records]` /
    /// `[staffing]` settings apply (default: the built-in defaults).
    #[arg(long, value_name = "FILE", requires = "db")]
    pub config: Option<std::path::PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum By {
    Queue,
    Agent,
    Interval,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

/// Runs `acdctl report …`; `servers` is only used without `--db`.
pub async fn run(args: &ReportArgs, server_list: &str) -> Result<()> {
    let (common, req) = match &args.what {
        Some(ReportWhat::Staffing(s)) => (&s.common, staffing_request(s)?),
        None => (&args.common, calls_request(args)?),
    };
    let json = match &common.db {
        Some(db) => local(db, common.config.as_deref(), req.clone()).await?,
        None => {
            let mut servers = Servers::new(server_list)?;
            servers
                .call(|ch| {
                    let req = req.clone();
                    async move { SupervisorServiceClient::new(ch).report(request(req)).await }
                })
                .await?
                .into_inner()
                .json
        }
    };
    let text = if req.staffing {
        let r: StaffingReport = serde_json::from_str(&json).context("the staffing report")?;
        render_staffing(&r, common.format)
    } else {
        let r: Report = serde_json::from_str(&json).context("the report")?;
        render_report(&r, common.format)
    };
    output::print(text.trim_end())?;
    Ok(())
}

/// The same computation as the distributor's, on this machine.
async fn local(
    db: &str,
    config: Option<&std::path::Path>,
    req: pb::ReportRequest,
) -> Result<String> {
    use acd_distributor::reports::{self, ReportSettings};
    let (settings, targets) = match config {
        Some(path) => {
            let loaded = acd_config::Loaded::from_option(Some(path))
                .map_err(|e| anyhow!("--config {}: {e}", path.display()))?;
            let routing = acd_config::routing::routing_config(&loaded.config)
                .map_err(|e| anyhow!("--config {}: {e}", path.display()))?;
            let s = ReportSettings::from_config(&loaded).map_err(|e| anyhow!(e))?;
            (s, reports::targets(&routing))
        }
        None => (ReportSettings::none(), BTreeMap::new()),
    };
    let cwd = std::env::current_dir().context("the working directory")?;
    let database = acd_records::Database::parse(db, &cwd).map_err(|e| anyhow!("--db: {e}"))?;
    let settings = ReportSettings {
        database: Some(database),
        ..settings
    };
    let now = jiff::Timestamp::now().as_millisecond();
    reports::report(req, &settings, targets, now)
        .await
        .map(|r| r.json)
        .map_err(anyhow::Error::from)
}

fn calls_request(args: &ReportArgs) -> Result<pb::ReportRequest> {
    let mut req = base_request(&args.common)?;
    req.by = match args.by {
        By::Queue => pb::ReportGrouping::Queue,
        By::Agent => pb::ReportGrouping::Agent,
        By::Interval => pb::ReportGrouping::Interval,
    } as i32;
    req.short_abandon_secs = args.short_abandon_secs.unwrap_or(0);
    req.fcr_window_hours = args.fcr_hours.unwrap_or(0);
    Ok(req)
}

fn staffing_request(args: &StaffingArgs) -> Result<pb::ReportRequest> {
    let mut req = base_request(&args.common)?;
    req.staffing = true;
    if matches!(args.shrinkage, Some(p) if p == 0 || p > 95) {
        // 0 on the wire means "the configured value".
        bail!("--shrinkage must be 1-95");
    }
    req.shrinkage_percent = args.shrinkage.unwrap_or(0);
    req.shift_hours = args.shift_hours.unwrap_or(0);
    Ok(req)
}

fn base_request(c: &CommonArgs) -> Result<pb::ReportRequest> {
    let tz = acd_records::report::time_zone(&c.tz).map_err(|e| anyhow!("--tz: {e}"))?;
    let now = jiff::Timestamp::now();
    let (from, from_is_day) = parse_bound(&c.from, &tz, now, false).context("--from")?;
    let to = match &c.to {
        Some(t) => parse_bound(t, &tz, now, true).context("--to")?.0,
        None if from_is_day => day_after(from, &tz)?,
        None => 0,
    };
    Ok(pb::ReportRequest {
        from_ms: from,
        to_ms: to,
        interval_mins: c.interval.unwrap_or(0),
        queues: c.queues.clone(),
        time_zone: c.tz.clone(),
        ..Default::default()
    })
}

/// `(unix ms, whether it named a whole day)`. A day as an end bound is the
/// end of that day.
fn parse_bound(
    s: &str,
    tz: &jiff::tz::TimeZone,
    now: jiff::Timestamp,
    end: bool,
) -> Result<(u64, bool)> {
    let today = now.to_zoned(tz.clone()).date();
    let day = match s {
        "today" => Some(today),
        "yesterday" => Some(today.yesterday().map_err(|e| anyhow!("{e}"))?),
        _ => s.parse::<jiff::civil::Date>().ok(),
    };
    let ms = match day {
        Some(d) => {
            let d = if end {
                d.tomorrow().map_err(|e| anyhow!("{e}"))?
            } else {
                d
            };
            d.to_zoned(tz.clone())
                .map_err(|e| anyhow!("{s}: {e}"))?
                .timestamp()
                .as_millisecond()
        }
        None => s
            .parse::<jiff::Timestamp>()
            .map_err(|_| anyhow!("`{s}` is not YYYY-MM-DD, RFC 3339, today or yesterday"))?
            .as_millisecond(),
    };
    let ms = u64::try_from(ms).map_err(|_| anyhow!("`{s}` is before 1970"))?;
    Ok((ms, day.is_some()))
}

fn day_after(from_ms: u64, tz: &jiff::tz::TimeZone) -> Result<u64> {
    let ts = jiff::Timestamp::from_millisecond(from_ms as i64).map_err(|e| anyhow!("{e}"))?;
    let next = ts
        .to_zoned(tz.clone())
        .date()
        .tomorrow()
        .and_then(|d| d.to_zoned(tz.clone()))
        .map_err(|e| anyhow!("{e}"))?;
    Ok(next.timestamp().as_millisecond().max(0) as u64)
}

// ---------------------------------------------------------------- rendering

fn pct(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{:.1}%", v * 100.0))
}

fn secs(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{v:.1}"))
}

fn hms(secs: f64) -> String {
    let s = secs.round() as i64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

fn csv_num(x: Option<f64>) -> String {
    x.map_or(String::new(), |v| format!("{v}"))
}

/// A CSV field, quoted when it must be.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn csv(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = headers.join(",");
    for r in rows {
        out.push('\n');
        out.push_str(&r.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(","));
    }
    out
}

const CALL_HEADERS: [&str; 14] = [
    "offered",
    "answered",
    "abandoned",
    "short",
    "aband%",
    "asa_s",
    "sl%",
    "target",
    "aht_s",
    "fcr%",
    "cb_req",
    "cb_done",
    "csat",
    "surveys",
];
const AGENT_HEADERS: [&str; 8] = [
    "handled",
    "talk",
    "wrap",
    "ready",
    "not_ready",
    "logged_in",
    "occ%",
    "util%",
];

/// Table cells (percentages, rounded) or CSV fields (fractions, exact).
fn call_cells(r: &ReportRow, csv: bool) -> Vec<String> {
    let target = match (csv, r.target_percent, r.target_secs) {
        (true, p, _) => p.map_or(String::new(), |p| p.to_string()),
        (false, Some(p), Some(s)) => format!("{p}/{s}s"),
        _ => "-".into(),
    };
    let p = |x: Option<f64>| if csv { csv_num(x) } else { pct(x) };
    let n = |x: Option<f64>| if csv { csv_num(x) } else { secs(x) };
    let score = match (csv, r.satisfaction) {
        (true, x) => csv_num(x),
        (false, x) => x.map_or("-".into(), |v| format!("{v:.2}")),
    };
    vec![
        r.offered.to_string(),
        r.answered.to_string(),
        r.abandoned.to_string(),
        r.short_abandons.to_string(),
        p(r.abandon_rate),
        n(r.asa_secs),
        p(r.service_level),
        target,
        n(r.aht_secs),
        p(r.fcr_rate),
        r.callbacks_requested.to_string(),
        r.callbacks_completed.to_string(),
        score,
        r.surveys.to_string(),
    ]
}

fn agent_cells(r: &ReportRow, csv: bool) -> Vec<String> {
    let Some(a) = &r.agent else {
        return vec![String::new(); AGENT_HEADERS.len()];
    };
    let t = |s: f64| if csv { format!("{s}") } else { hms(s) };
    let p = |x: Option<f64>| if csv { csv_num(x) } else { pct(x) };
    vec![
        a.calls_handled.to_string(),
        t(a.talk_secs),
        t(a.wrap_secs),
        t(a.ready_secs),
        t(a.not_ready_secs),
        t(a.logged_in_secs),
        p(a.occupancy),
        p(a.utilisation),
    ]
}

/// The report as a table, CSV (fractions as 0–1, seconds) or JSON.
pub fn render_report(r: &Report, format: Format) -> String {
    if format == Format::Json {
        return serde_json::to_string_pretty(r).unwrap_or_default();
    }
    let key = match r.by {
        acd_records::report::Grouping::Queue => "queue",
        acd_records::report::Grouping::Agent => "agent",
        acd_records::report::Grouping::Interval => "interval",
    };
    let with_agents = r.total.agent.is_some();
    let mut headers = vec![key];
    headers.extend(CALL_HEADERS);
    if with_agents {
        headers.extend(AGENT_HEADERS);
    }
    let csv_out = format == Format::Csv;
    let rows: Vec<Vec<String>> = r
        .rows
        .iter()
        .chain(std::iter::once(&r.total))
        .map(|row| {
            let mut cells = vec![row.key.clone()];
            cells.extend(call_cells(row, csv_out));
            if with_agents {
                cells.extend(agent_cells(row, csv_out));
            }
            cells
        })
        .collect();
    if csv_out {
        csv(&headers, &rows)
    } else {
        output::table(&headers, &rows)
    }
}

const NEED_HEADERS: [&str; 11] = [
    "interval", "calls", "aht_s", "erlangs", "agents_c", "agents_a", "sched_c", "sched_a", "sl_c%",
    "sl_a%", "aband_a%",
];

fn need_cells(n: &acd_records::staffing::IntervalNeed, csv_out: bool) -> Vec<String> {
    let p = |x: Option<f64>| if csv_out { csv_num(x) } else { pct(x) };
    vec![
        n.start.clone(),
        format!("{:.2}", n.calls),
        format!("{:.1}", n.aht_secs),
        format!("{:.2}", n.erlangs),
        n.agents_c.to_string(),
        n.agents_a.to_string(),
        n.scheduled_c.to_string(),
        n.scheduled_a.to_string(),
        p(n.sl_c),
        p(n.sl_a),
        p(n.abandon_a),
    ]
}

/// The staffing forecast: per queue and in total, then the shift plan.
/// CSV: one row per queue and interval (queue `total` for the sums).
pub fn render_staffing(r: &StaffingReport, format: Format) -> String {
    match format {
        Format::Json => serde_json::to_string_pretty(r).unwrap_or_default(),
        Format::Csv => {
            let mut headers = vec!["queue"];
            headers.extend(NEED_HEADERS);
            let rows: Vec<Vec<String>> = r
                .queues
                .iter()
                .flat_map(|q| q.intervals.iter().map(move |n| (q.queue.as_str(), n)))
                .chain(r.total.iter().map(|n| ("total", n)))
                .map(|(q, n)| {
                    let mut cells = vec![q.to_string()];
                    cells.extend(need_cells(n, true));
                    cells
                })
                .collect();
            csv(&headers, &rows)
        }
        Format::Table => staffing_table(r),
    }
}

fn staffing_table(r: &StaffingReport) -> String {
    let mut out = format!(
        "Traffic averaged over {} day(s), {}-minute intervals ({}), shrinkage {}%.\n",
        r.days, r.interval_mins, r.time_zone, r.shrinkage_percent
    );
    let busy = |n: &&acd_records::staffing::IntervalNeed| n.calls > 0.0 || n.scheduled_c > 0;
    for q in &r.queues {
        let patience = q
            .patience_secs
            .map_or("none abandoned".into(), |p| format!("{p:.0} s"));
        out.push_str(&format!(
            "\nqueue {}: target {}% in {} s, patience {}\n",
            q.queue, q.target_percent, q.target_secs, patience
        ));
        let rows: Vec<Vec<String>> = q
            .intervals
            .iter()
            .filter(busy)
            .map(|n| need_cells(n, false))
            .collect();
        out.push_str(&output::table(&NEED_HEADERS, &rows));
        out.push('\n');
    }
    let p = &r.plan;
    out.push_str(&format!(
        "\nshift plan ({} h shifts, covering the Erlang C schedule):\n",
        p.shift_hours
    ));
    let rows: Vec<Vec<String>> = p
        .shifts
        .iter()
        .map(|s| vec![s.start.clone(), s.end.clone(), s.people.to_string()])
        .collect();
    out.push_str(&output::table(&["start", "end", "people"], &rows));
    out.push_str(&format!(
        "\nday {} / evening {} / night {}; {} people a day; 5/2 rota: {} people\n",
        p.parts.day, p.parts.evening, p.parts.night, p.daily_heads, p.rota_5_2_heads
    ));
    out
}

#[cfg(test)]
mod tests;
