//! `acdctl replay`: a recorded journal replayed offline against a changed
//! configuration (see `acd_routing::whatif`), printed side by side.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use acd_routing::whatif::{self, AgentStats, QueueStats, Report, WhatIf};
use acd_routing::{EventRecord, RoutingConfig, Timestamp};
use anyhow::{anyhow, Context, Result};

use crate::output;

#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    /// A journal file (`events-YYYY-MM-DD.jsonl`) or the journal directory
    /// (`[distributor] journal`; every day in it).
    #[arg(long, value_name = "FILE_OR_DIR")]
    pub journal: PathBuf,
    /// The configuration to try.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// The configuration the journal was recorded under [default: the
    /// journal's own last configuration change, if it has one].
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Only records at or after this instant (RFC 3339, e.g. 2026-11-28T09:00:00Z).
    #[arg(long, value_name = "RFC3339", value_parser = parse_instant)]
    pub from: Option<Timestamp>,
    /// Only records before this instant (RFC 3339).
    #[arg(long, value_name = "RFC3339", value_parser = parse_instant)]
    pub to: Option<Timestamp>,
}

fn parse_instant(s: &str) -> Result<Timestamp, String> {
    let t: jiff::Timestamp = s
        .parse()
        .map_err(|e| format!("`{s}` is not an RFC 3339 instant: {e}"))?;
    u64::try_from(t.as_millisecond())
        .map(Timestamp)
        .map_err(|_| format!("`{s}` is before 1970"))
}

/// Runs the replay and prints it (one JSON object with `--json`).
pub fn run(args: &ReplayArgs, json: bool) -> Result<()> {
    let records = acd_distributor::journal::read(&args.journal)?;
    let records = window(records, args.from, args.to);
    if records.is_empty() {
        return Err(anyhow!(
            "{}: no events in the journal (or the --from/--to window)",
            args.journal.display()
        ));
    }
    let new = load(&args.config)?;
    let baseline = match &args.baseline {
        Some(path) => load(path)?,
        None => whatif::journal_config(&records).ok_or_else(|| {
            anyhow!("the journal records no configuration: give --baseline FILE (the config it was recorded under)")
        })?,
    };
    let result = whatif::replay(&baseline, &new, &records);
    if json {
        output::print(&serde_json::to_string(&result)?)?;
    } else {
        output::print(&table(&result))?;
    }
    Ok(())
}

fn window(
    records: Vec<EventRecord>,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
) -> Vec<EventRecord> {
    records
        .into_iter()
        .filter(|r| from.is_none_or(|f| r.at >= f) && to.is_none_or(|t| r.at < t))
        .collect()
}

/// The routing configuration a distributor would run from this file.
fn load(path: &Path) -> Result<RoutingConfig> {
    let loaded = acd_config::Loaded::from_file(path)
        .map_err(|e| anyhow!("{e}"))
        .with_context(|| format!("loading {}", path.display()))?;
    Ok(acd_distributor::routing_config(&loaded.config))
}

/// One metric row: its name and how to read it off a queue's figures.
type Metric = (&'static str, fn(&QueueStats) -> f64, Unit);

#[derive(Clone, Copy)]
enum Unit {
    Count,
    Pct,
    Secs,
}

const METRICS: [Metric; 11] = [
    ("offered", |s| s.offered as f64, Unit::Count),
    ("answered", |s| s.answered as f64, Unit::Count),
    ("abandoned", |s| s.abandoned as f64, Unit::Count),
    ("abandon %", |s| s.abandon_pct, Unit::Pct),
    ("service level %", |s| s.service_level_pct, Unit::Pct),
    ("ASA s", |s| s.asa_ms as f64 / 1000.0, Unit::Secs),
    ("avg wait s", |s| s.avg_wait_ms as f64 / 1000.0, Unit::Secs),
    ("max wait s", |s| s.max_wait_ms as f64 / 1000.0, Unit::Secs),
    ("overflowed", |s| s.overflowed as f64, Unit::Count),
    ("timed out", |s| s.timed_out as f64, Unit::Count),
    ("unserved", |s| s.unserved as f64, Unit::Count),
];

fn fmt(v: f64, unit: Unit) -> String {
    match unit {
        Unit::Count => format!("{v:.0}"),
        Unit::Pct | Unit::Secs => format!("{v:.1}"),
    }
}

fn delta(base: f64, new: f64, unit: Unit) -> String {
    let d = new - base;
    if d.abs() < 0.05 {
        return "=".to_string();
    }
    format!("{}{}", if d > 0.0 { "+" } else { "" }, fmt(d, unit))
}

/// Baseline and new side by side with deltas: queues, total, agents.
pub fn table(w: &WhatIf) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<12} {:<16} {:>10} {:>10} {:>10}",
        "QUEUE", "METRIC", "BASELINE", "NEW", "DELTA"
    );
    let empty = QueueStats::default();
    let mut names: Vec<&acd_routing::QueueId> = w.baseline.queues.keys().collect();
    for q in w.new.queues.keys() {
        if !names.contains(&q) {
            names.push(q);
        }
    }
    names.sort();
    let rows = names
        .iter()
        .map(|q| {
            let b = w.baseline.queues.get(*q).unwrap_or(&empty);
            let n = w.new.queues.get(*q).unwrap_or(&empty);
            (q.as_str(), b, n)
        })
        .chain(std::iter::once((
            "(total)",
            &w.baseline.total,
            &w.new.total,
        )));
    for (name, b, n) in rows {
        for (i, (metric, get, unit)) in METRICS.iter().enumerate() {
            let label = if i == 0 { name } else { "" };
            let (bv, nv) = (get(b), get(n));
            let _ = writeln!(
                out,
                "{label:<12} {metric:<16} {:>10} {:>10} {:>10}",
                fmt(bv, *unit),
                fmt(nv, *unit),
                delta(bv, nv, *unit)
            );
        }
    }
    agents(&mut out, w);
    notes(&mut out, "baseline", &w.baseline);
    notes(&mut out, "new", &w.new);
    out.trim_end().to_string()
}

fn agents(out: &mut String, w: &WhatIf) {
    let _ = writeln!(
        out,
        "\n{:<12} {:>8} {:>8} {:>12} {:>12}",
        "AGENT", "CALLS", "CALLS'", "OCCUPANCY %", "OCCUPANCY' %"
    );
    let empty = AgentStats::default();
    let mut ids: Vec<&acd_routing::AgentId> = w.baseline.agents.keys().collect();
    for a in w.new.agents.keys() {
        if !ids.contains(&a) {
            ids.push(a);
        }
    }
    ids.sort();
    for id in ids {
        let b = w.baseline.agents.get(id).unwrap_or(&empty);
        let n = w.new.agents.get(id).unwrap_or(&empty);
        let _ = writeln!(
            out,
            "{:<12} {:>8} {:>8} {:>12.1} {:>12.1}",
            id.as_str(),
            b.calls,
            n.calls,
            b.occupancy_pct,
            n.occupancy_pct
        );
    }
}

fn notes(out: &mut String, which: &str, r: &Report) {
    for (kind, n) in &r.refused {
        let _ = writeln!(
            out,
            "note: {which}: {n} recorded {kind} refused under this configuration"
        );
    }
    if r.truncated {
        let _ = writeln!(
            out,
            "note: {which}: the replay stopped at its step bound (figures incomplete)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_are_rfc3339() {
        assert_eq!(parse_instant("1970-01-01T00:00:01Z"), Ok(Timestamp(1000)));
        assert!(parse_instant("yesterday").is_err());
    }

    #[test]
    fn table_shows_both_sides_and_deltas() {
        let mut base = Report::default();
        base.total.offered = 10;
        base.total.answered = 8;
        base.total.asa_ms = 30_000;
        let mut new = base.clone();
        new.total.answered = 10;
        new.total.asa_ms = 12_500;
        let text = table(&WhatIf {
            baseline: base,
            new,
        });
        let answered = text
            .lines()
            .find(|l| l.contains("answered"))
            .expect("answered row");
        assert!(answered.ends_with("+2"), "{answered}");
        let asa = text.lines().find(|l| l.contains("ASA")).expect("ASA row");
        assert!(
            asa.contains("30.0") && asa.contains("12.5") && asa.ends_with("-17.5"),
            "{asa}"
        );
        let offered = text
            .lines()
            .find(|l| l.contains("offered"))
            .expect("offered");
        assert!(
            offered.starts_with("(total)") && offered.ends_with('='),
            "{offered}"
        );
    }
}
