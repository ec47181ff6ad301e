//! Call figures over a time range, by queue, by agent or by interval: a pure
//! function of a [`Dataset`] and [`ReportParams`].
//!
//! The calls counted are the inbound calls that reached a queue (`queue`
//! set; a callback's own `<call>:cb` row is not an inbound call) and arrived
//! in the range (`arrived_at`, else `queued_at`). By queue a call counts in
//! the queue it ended in (`queue`, after overflows and transfers); by agent,
//! in the agent's row who took it last (`agent`); by interval, in the
//! interval it arrived in (local time of the report's zone).
//!
//! Each figure (times in seconds, rates as fractions 0–1):
//! - offered = calls counted; answered = those with `answered_at`.
//! - short abandons = callers who hung up (`abandoned_at`) after waiting
//!   less than `short_abandon_secs`; abandoned = the other abandons.
//! - abandon rate = abandoned ÷ (offered − short abandons).
//! - ASA = mean of (`answered_at` − `queued_at`) over answered calls.
//! - service level = answered within the call's queue's target ÷
//!   (offered − short abandons).
//! - AHT = mean of talk (`talk_ended_at` − `answered_at`) + wrap-up
//!   (`wrap_ended_at` − `talk_ended_at`, 0 without one) over answered calls
//!   whose talk has ended.
//! - FCR = answered calls whose number did not call again (any inbound call,
//!   also after the range) within `fcr_window_hours` after arriving ÷
//!   answered calls with a caller number.
//! - callbacks requested = callback rows (`callback_of` set) in the group;
//!   completed = those answered.
//! - satisfaction = mean survey score (1–5) over the calls with one; surveys
//!   = how many.
//! - per agent, from the agent state changes clipped to the range (and to
//!   `now`): talk = time `on_call`, wrap = `wrap_up`, ready = `ready` +
//!   `reserved`, not ready = `not_ready`, logged in = all four;
//!   calls handled = answered calls (callbacks too) the agent took;
//!   occupancy = (talk + wrap) ÷ (talk + wrap + ready);
//!   utilisation = (talk + wrap) ÷ logged in.
//! - the total row: the same over all counted calls (agent time summed).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::rows::{AgentEventRow, CallRow, Dataset, TimeRange};

/// How rows are formed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Grouping {
    #[default]
    Queue,
    Agent,
    Interval,
}

/// A queue's service-level target: `percent` % within `within_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceTarget {
    pub percent: u8,
    pub within_ms: u64,
}

impl Default for ServiceTarget {
    /// The industry's usual 80 % in 20 s (the routing config's default too).
    fn default() -> Self {
        ServiceTarget {
            percent: 80,
            within_ms: 20_000,
        }
    }
}

impl ServiceTarget {
    pub fn within_secs(&self) -> f64 {
        self.within_ms as f64 / 1000.0
    }
}

/// Why a report cannot be made (the caller's fault).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReportError {
    #[error("invalid range: {0}")]
    InvalidRange(String),
    #[error("interval must be 15, 30 or 60 minutes, not {0}")]
    InvalidInterval(u32),
    #[error("unknown time zone `{0}`")]
    UnknownTimeZone(String),
}

/// What a report is computed with.
#[derive(Clone, Debug)]
pub struct ReportParams {
    pub range: TimeRange,
    /// The present: agent time is not counted past it.
    pub now: i64,
    pub by: Grouping,
    /// 15, 30 or 60 (for [`Grouping::Interval`]).
    pub interval_mins: u32,
    /// Only calls that ended in these queues (empty: all).
    pub queues: Vec<String>,
    pub short_abandon_secs: u32,
    pub fcr_window_hours: u32,
    /// Service-level target per queue; queues not named get the default.
    pub targets: BTreeMap<String, ServiceTarget>,
    pub tz: jiff::tz::TimeZone,
}

impl ReportParams {
    /// The range to load: FCR looks at calls up to the window past `to`.
    pub fn load_range(&self) -> TimeRange {
        TimeRange {
            from: self.range.from,
            to: self
                .range
                .to
                .saturating_add(i64::from(self.fcr_window_hours) * 3_600_000),
        }
    }
}

/// The report (what `acdctl report --format json` prints).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub range: TimeRange,
    pub by: Grouping,
    pub interval_mins: u32,
    pub time_zone: String,
    pub short_abandon_secs: u32,
    pub fcr_window_hours: u32,
    pub rows: Vec<ReportRow>,
    pub total: ReportRow,
}

/// One row; see the module doc for each figure.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReportRow {
    /// Queue id, agent id, or the interval's local start `YYYY-MM-DD HH:MM`.
    pub key: String,
    pub offered: u32,
    pub answered: u32,
    pub abandoned: u32,
    pub short_abandons: u32,
    pub abandon_rate: Option<f64>,
    pub asa_secs: Option<f64>,
    pub answered_in_target: u32,
    pub service_level: Option<f64>,
    /// The queue's target (rows by queue only).
    pub target_percent: Option<u8>,
    pub target_secs: Option<f64>,
    pub aht_secs: Option<f64>,
    pub fcr_rate: Option<f64>,
    pub callbacks_requested: u32,
    pub callbacks_completed: u32,
    pub satisfaction: Option<f64>,
    pub surveys: u32,
    /// Rows by agent, and their total.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentFigures>,
}

/// An agent's time (seconds) and load.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentFigures {
    pub calls_handled: u32,
    pub talk_secs: f64,
    pub wrap_secs: f64,
    pub ready_secs: f64,
    pub not_ready_secs: f64,
    pub logged_in_secs: f64,
    pub occupancy: Option<f64>,
    pub utilisation: Option<f64>,
}

/// Checks the interval length.
pub fn check_interval(mins: u32) -> Result<(), ReportError> {
    match mins {
        15 | 30 | 60 => Ok(()),
        other => Err(ReportError::InvalidInterval(other)),
    }
}

/// Checks a range: `from < to`, at most ten years.
pub fn check_range(range: TimeRange) -> Result<(), ReportError> {
    const TEN_YEARS_MS: i64 = 10 * 366 * 86_400_000;
    if range.from >= range.to {
        return Err(ReportError::InvalidRange(format!(
            "`from` ({}) is not before `to` ({})",
            show_ms(range.from),
            show_ms(range.to)
        )));
    }
    if range.to - range.from > TEN_YEARS_MS {
        return Err(ReportError::InvalidRange("longer than ten years".into()));
    }
    Ok(())
}

fn show_ms(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(|_| ms.to_string(), |t| t.to_string())
}

/// A time zone by IANA name (`UTC` when empty).
pub fn time_zone(name: &str) -> Result<jiff::tz::TimeZone, ReportError> {
    if name.is_empty() || name.eq_ignore_ascii_case("utc") {
        return Ok(jiff::tz::TimeZone::UTC);
    }
    jiff::tz::TimeZone::get(name).map_err(|_| ReportError::UnknownTimeZone(name.to_string()))
}

/// When the call arrived (or queued, without the edge's note).
pub fn arrival(c: &CallRow) -> Option<i64> {
    c.arrived_at.or(c.queued_at)
}

/// A callback's own row, not an inbound call.
pub fn is_callback(c: &CallRow) -> bool {
    c.callback_of.is_some()
}

/// Local wall-clock minutes since midnight of `at`.
fn local_minutes(at: i64, tz: &jiff::tz::TimeZone) -> Option<(jiff::civil::Date, u32)> {
    let dt = jiff::Timestamp::from_millisecond(at)
        .ok()?
        .to_zoned(tz.clone())
        .datetime();
    let mins = u32::try_from(i32::from(dt.hour()) * 60 + i32::from(dt.minute())).ok()?;
    Some((dt.date(), mins))
}

/// Which interval of the (local) day `at` falls in.
pub fn interval_of_day(at: i64, tz: &jiff::tz::TimeZone, interval_mins: u32) -> usize {
    local_minutes(at, tz).map_or(0, |(_, m)| (m / interval_mins.max(1)) as usize)
}

/// The local start of `at`'s interval, `YYYY-MM-DD HH:MM`.
pub fn interval_label(at: i64, tz: &jiff::tz::TimeZone, interval_mins: u32) -> String {
    match local_minutes(at, tz) {
        Some((date, m)) => {
            let start = m / interval_mins.max(1) * interval_mins.max(1);
            format!("{date} {:02}:{:02}", start / 60, start % 60)
        }
        None => "?".into(),
    }
}

/// The report over `data` (see the module doc for each figure).
pub fn report(data: &Dataset, p: &ReportParams) -> Result<Report, ReportError> {
    check_range(p.range)?;
    check_interval(p.interval_mins)?;
    let fcr = FcrIndex::new(&data.calls, p.fcr_window_hours);
    let in_scope = |c: &&CallRow| {
        arrival(c).is_some_and(|at| p.range.contains(at))
            && c.queue.is_some()
            && (p.queues.is_empty() || c.queue.as_ref().is_some_and(|q| p.queues.contains(q)))
    };
    let calls: Vec<&CallRow> = data.calls.iter().filter(in_scope).collect();
    let key = |c: &CallRow| -> Option<String> {
        match p.by {
            Grouping::Queue => c.queue.clone(),
            Grouping::Agent => c.agent.clone(),
            Grouping::Interval => arrival(c).map(|at| interval_label(at, &p.tz, p.interval_mins)),
        }
    };
    let mut groups: BTreeMap<String, Acc> = BTreeMap::new();
    let mut total = Acc::default();
    for c in &calls {
        total.add(c, p, &fcr);
        if let Some(k) = key(c) {
            groups.entry(k).or_default().add(c, p, &fcr);
        }
    }
    let agent_time = match p.by {
        Grouping::Agent => Some(agent_time(&data.agent_events, p)),
        _ => None,
    };
    if let Some(times) = &agent_time {
        for agent in times.keys() {
            groups.entry(agent.clone()).or_default();
        }
    }
    let mut rows: Vec<ReportRow> = groups
        .into_iter()
        .map(|(k, acc)| {
            let mut row = acc.finish(k.clone());
            if p.by == Grouping::Queue {
                let t = p.targets.get(&k).copied().unwrap_or_default();
                row.target_percent = Some(t.percent);
                row.target_secs = Some(t.within_secs());
            }
            if let Some(times) = &agent_time {
                let time = times.get(&k).cloned().unwrap_or_default();
                row.agent = Some(time.finish(acc.handled));
            }
            row
        })
        .collect();
    rows.sort_by(|a, b| a.key.cmp(&b.key));
    let mut total_row = total.finish("total".into());
    if let Some(times) = &agent_time {
        let sum = times.values().fold(StateTime::default(), |s, t| s.plus(t));
        let handled = rows
            .iter()
            .filter_map(|r| r.agent.as_ref())
            .map(|a| a.calls_handled)
            .sum();
        total_row.agent = Some(sum.finish(handled));
    }
    Ok(Report {
        range: p.range,
        by: p.by,
        interval_mins: p.interval_mins,
        time_zone: p.tz.iana_name().unwrap_or("UTC").to_string(),
        short_abandon_secs: p.short_abandon_secs,
        fcr_window_hours: p.fcr_window_hours,
        rows,
        total: total_row,
    })
}

/// Inbound arrivals per caller number, sorted, for the FCR look-ups.
struct FcrIndex<'a> {
    by_number: HashMap<&'a str, Vec<i64>>,
    window_ms: i64,
}

impl<'a> FcrIndex<'a> {
    fn new(calls: &'a [CallRow], window_hours: u32) -> Self {
        let mut by_number: HashMap<&str, Vec<i64>> = HashMap::new();
        for c in calls.iter().filter(|c| !is_callback(c)) {
            if let (false, Some(at)) = (c.caller_number.is_empty(), arrival(c)) {
                by_number.entry(&c.caller_number).or_default().push(at);
            }
        }
        for v in by_number.values_mut() {
            v.sort_unstable();
        }
        FcrIndex {
            by_number,
            window_ms: i64::from(window_hours) * 3_600_000,
        }
    }

    /// `None`: no number to tell; else whether the number did not call again.
    fn resolved(&self, c: &CallRow) -> Option<bool> {
        let at = arrival(c)?;
        let calls = self.by_number.get(c.caller_number.as_str())?;
        let again = calls
            .iter()
            .any(|&t| t > at && t <= at.saturating_add(self.window_ms));
        Some(!again)
    }
}

/// Running sums of one row.
#[derive(Default)]
struct Acc {
    offered: u32,
    answered: u32,
    abandoned: u32,
    short: u32,
    in_target: u32,
    answer_ms: i64,
    handle: (u32, f64),
    fcr: (u32, u32),
    cb_requested: u32,
    cb_completed: u32,
    survey: (u32, i64),
    /// Answered calls, callbacks included (agent rows).
    handled: u32,
}

impl Acc {
    fn add(&mut self, c: &CallRow, p: &ReportParams, fcr: &FcrIndex) {
        if c.answered_at.is_some() {
            self.handled += 1;
        }
        if is_callback(c) {
            self.cb_requested += 1;
            self.cb_completed += u32::from(c.answered_at.is_some());
            return;
        }
        self.offered += 1;
        if let Some(s) = c.survey_score {
            self.survey.0 += 1;
            self.survey.1 += i64::from(s);
        }
        if let Some(answered) = c.answered_at {
            self.answered += 1;
            let waited = c.queued_at.map_or(0, |q| (answered - q).max(0));
            self.answer_ms += waited;
            let target = c
                .queue
                .as_ref()
                .and_then(|q| p.targets.get(q))
                .copied()
                .unwrap_or_default();
            if u64::try_from(waited).unwrap_or(u64::MAX) <= target.within_ms {
                self.in_target += 1;
            }
            if let Some(h) = crate::staffing::handle_secs(c) {
                self.handle.0 += 1;
                self.handle.1 += h;
            }
            if let Some(resolved) = fcr.resolved(c) {
                self.fcr.0 += 1;
                self.fcr.1 += u32::from(resolved);
            }
        } else if c.abandoned_at.is_some() {
            let waited = c
                .waited_ms
                .or_else(|| Some(c.abandoned_at? - c.queued_at?))
                .unwrap_or(0);
            if waited < i64::from(p.short_abandon_secs) * 1000 {
                self.short += 1;
            } else {
                self.abandoned += 1;
            }
        }
    }

    fn finish(&self, key: String) -> ReportRow {
        let ratio = |num: f64, den: u32| (den > 0).then(|| num / f64::from(den));
        let base = self.offered.saturating_sub(self.short);
        ReportRow {
            key,
            offered: self.offered,
            answered: self.answered,
            abandoned: self.abandoned,
            short_abandons: self.short,
            abandon_rate: ratio(f64::from(self.abandoned), base),
            asa_secs: ratio(self.answer_ms as f64 / 1000.0, self.answered),
            answered_in_target: self.in_target,
            service_level: ratio(f64::from(self.in_target), base),
            target_percent: None,
            target_secs: None,
            aht_secs: ratio(self.handle.1, self.handle.0),
            fcr_rate: ratio(f64::from(self.fcr.1), self.fcr.0),
            callbacks_requested: self.cb_requested,
            callbacks_completed: self.cb_completed,
            satisfaction: ratio(self.survey.1 as f64, self.survey.0),
            surveys: self.survey.0,
            agent: None,
        }
    }
}

/// Milliseconds an agent spent in each state.
#[derive(Clone, Debug, Default)]
struct StateTime {
    talk: i64,
    wrap: i64,
    ready: i64,
    not_ready: i64,
}

impl StateTime {
    fn add(&mut self, state: &str, ms: i64) {
        match state {
            "on_call" => self.talk += ms,
            "wrap_up" => self.wrap += ms,
            "ready" | "reserved" => self.ready += ms,
            "not_ready" => self.not_ready += ms,
            _ => {}
        }
    }

    fn plus(mut self, o: &StateTime) -> StateTime {
        self.talk += o.talk;
        self.wrap += o.wrap;
        self.ready += o.ready;
        self.not_ready += o.not_ready;
        self
    }

    fn finish(&self, handled: u32) -> AgentFigures {
        let secs = |ms: i64| ms as f64 / 1000.0;
        let busy = self.talk + self.wrap;
        let logged_in = busy + self.ready + self.not_ready;
        let ratio = |den: i64| (den > 0).then(|| busy as f64 / den as f64);
        AgentFigures {
            calls_handled: handled,
            talk_secs: secs(self.talk),
            wrap_secs: secs(self.wrap),
            ready_secs: secs(self.ready),
            not_ready_secs: secs(self.not_ready),
            logged_in_secs: secs(logged_in),
            occupancy: ratio(busy + self.ready),
            utilisation: ratio(logged_in),
        }
    }
}

/// Each agent's time per state within the range (and before `now`): every
/// change lasts until the agent's next one.
fn agent_time(events: &[AgentEventRow], p: &ReportParams) -> BTreeMap<String, StateTime> {
    let end = p.range.to.min(p.now.max(p.range.from));
    let mut by_agent: BTreeMap<&str, Vec<&AgentEventRow>> = BTreeMap::new();
    for e in events {
        by_agent.entry(&e.agent).or_default().push(e);
    }
    by_agent
        .into_iter()
        .map(|(agent, mut evs)| {
            evs.sort_by_key(|e| (e.at, e.seq));
            let mut t = StateTime::default();
            for (i, e) in evs.iter().enumerate() {
                let until = evs.get(i + 1).map_or(end, |n| n.at.min(end));
                let since = e.at.max(p.range.from);
                if until > since {
                    t.add(&e.state, until - since);
                }
            }
            (agent.to_string(), t)
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests;
