//! Staffing: operators needed per interval by Erlang C and Erlang A, with
//! shrinkage, and the `staffing` report built from recorded traffic.
//!
//! Notation: λ calls per second, AHT = 1/μ seconds, A = λ/μ erlangs offered,
//! n operators on the phones, t the service-level target in seconds, and for
//! Erlang A an average patience 1/θ seconds (exponential).
//!
//! - Erlang B (the recursion, stable for any n): B(0) = 1,
//!   B(k) = A·B(k−1) ÷ (k + A·B(k−1)).
//! - Erlang C (M/M/n): P(wait) = B ÷ (1 − ρ + ρ·B) with ρ = A/n (1 when
//!   n ≤ A); SL(t) = 1 − P(wait)·e^(−(n−A)·t/AHT); ASA = P(wait)·AHT ÷ (n − A).
//! - Erlang A (M/M/n+M, Palm): the birth–death chain with birth rate λ and
//!   death rate min(k, n)·μ + max(k − n, 0)·θ. With π_{n+j} = π_n·∏_{i=1..j}
//!   λ/(nμ + iθ) and the Erlang B weight of the states below n, P(wait) =
//!   P(N ≥ n) (PASTA), P(abandon) = θ·E[queue] ÷ λ, and SL(t) = the share of
//!   all callers answered within t: those who find a free operator plus, for
//!   one who finds j waiting ahead, the probability of reaching an operator
//!   before both t and its own patience run out (the chain of its position,
//!   solved by uniformization). Sums run in log space, so 0–500 operators
//!   and any load stay finite.
//! - Shrinkage: scheduled = ⌈needed ÷ (1 − shrinkage)⌉.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::report::{interval_of_day, is_callback, ReportError, ServiceTarget};
use crate::rows::{CallRow, Dataset, TimeRange};
use crate::shifts::{self, ShiftPlan};

/// Most operators any search tries (a bound on every loop).
pub const MAX_AGENTS: u32 = 10_000;

/// The fewest operators on the phones (before shrinkage) for `calls` arriving
/// in `interval_secs` with `aht_secs` average handle time to answer
/// `sl_fraction` (0..1) of them within `target_secs`, by Erlang C.
/// 0 when there is no traffic.
pub fn agents_needed_c(
    calls: f64,
    interval_secs: f64,
    aht_secs: f64,
    sl_fraction: f64,
    target_secs: f64,
) -> u32 {
    let Some(load) = Load::new(calls, interval_secs, aht_secs) else {
        return 0;
    };
    let goal = goal(sl_fraction);
    let first = (load.erlangs.floor() as u32).saturating_add(1).max(1);
    (first..=MAX_AGENTS)
        .find(|&n| erlang_c(n, load.erlangs).service_level(load.aht, target_secs) >= goal)
        .unwrap_or(MAX_AGENTS)
}

/// As [`agents_needed_c`], by Erlang A with callers of average patience
/// `patience_secs` (abandoned calls count as not answered in time).
pub fn agents_needed_a(
    calls: f64,
    interval_secs: f64,
    aht_secs: f64,
    sl_fraction: f64,
    target_secs: f64,
    patience_secs: f64,
) -> u32 {
    let Some(load) = Load::new(calls, interval_secs, aht_secs) else {
        return 0;
    };
    let goal = goal(sl_fraction);
    let meets = |n: u32| erlang_a(n, &load, patience_secs).service_level(target_secs) >= goal;
    // The service level grows with n: bisect below Erlang C's answer (which
    // abandons, taking load off, nearly always undercut), else count up.
    let upper = agents_needed_c(calls, interval_secs, aht_secs, sl_fraction, target_secs).max(1);
    if !meets(upper) {
        return (upper + 1..=MAX_AGENTS)
            .find(|&n| meets(n))
            .unwrap_or(MAX_AGENTS);
    }
    let (mut lo, mut hi) = (1, upper);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if meets(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    hi
}

/// A target of 100 % is never met exactly; 99.9 % is the most asked of.
fn goal(sl_fraction: f64) -> f64 {
    sl_fraction.clamp(0.0, 0.999)
}

/// Offered traffic.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    /// λ, calls per second.
    pub rate: f64,
    /// 1/μ, seconds.
    pub aht: f64,
    /// A = λ·AHT.
    pub erlangs: f64,
}

impl Load {
    /// `None` when there is no traffic (or nonsense figures).
    pub fn new(calls: f64, interval_secs: f64, aht_secs: f64) -> Option<Load> {
        let ok = |x: f64| x.is_finite() && x > 0.0;
        if !(ok(calls) && ok(interval_secs) && ok(aht_secs)) {
            return None;
        }
        let rate = calls / interval_secs;
        Some(Load {
            rate,
            aht: aht_secs,
            erlangs: rate * aht_secs,
        })
    }
}

/// Erlang B: the blocking probability of `n` servers offered `a` erlangs.
pub fn erlang_b(n: u32, a: f64) -> f64 {
    (1..=n).fold(1.0, |b, k| a * b / (f64::from(k) + a * b))
}

/// An M/M/n queue's figures (Erlang C).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ErlangC {
    pub agents: u32,
    pub erlangs: f64,
    /// Probability that a caller waits at all.
    pub p_wait: f64,
}

/// Erlang C for `n` operators and `a` erlangs.
pub fn erlang_c(n: u32, a: f64) -> ErlangC {
    let nf = f64::from(n);
    let p_wait = if nf <= a {
        1.0
    } else {
        let b = erlang_b(n, a);
        let rho = a / nf;
        b / (1.0 - rho + rho * b)
    };
    ErlangC {
        agents: n,
        erlangs: a,
        p_wait,
    }
}

impl ErlangC {
    /// Share answered within `target_secs` (0 when the queue grows forever).
    pub fn service_level(&self, aht_secs: f64, target_secs: f64) -> f64 {
        let spare = f64::from(self.agents) - self.erlangs;
        if spare <= 0.0 {
            return 0.0;
        }
        1.0 - self.p_wait * (-spare * target_secs / aht_secs).exp()
    }

    /// Average speed of answer in seconds (infinite when unstable).
    pub fn asa(&self, aht_secs: f64) -> f64 {
        let spare = f64::from(self.agents) - self.erlangs;
        if spare <= 0.0 {
            return f64::INFINITY;
        }
        self.p_wait * aht_secs / spare
    }
}

/// An M/M/n+M queue's stationary state (Erlang A).
#[derive(Clone, Debug)]
pub struct ErlangA {
    pub agents: u32,
    /// Probability that an arriving caller waits (finds every operator busy).
    pub p_wait: f64,
    /// Probability that an arriving caller hangs up before being answered.
    pub p_abandon: f64,
    /// `queue[j]`: probability that an arriving caller finds `j` waiting.
    queue: Vec<f64>,
    /// nμ and θ, per second.
    service_rate: f64,
    abandon_rate: f64,
}

/// Longest waiting line the Erlang A sums follow (a bound on the loop).
const MAX_QUEUE: usize = 200_000;

/// Erlang A for `n` operators, `load`, and callers' average patience
/// `patience_secs` (∞ or 0: nobody abandons, which is Erlang C when stable).
pub fn erlang_a(n: u32, load: &Load, patience_secs: f64) -> ErlangA {
    let mu = 1.0 / load.aht;
    let theta = if patience_secs.is_finite() && patience_secs > 0.0 {
        1.0 / patience_secs
    } else {
        0.0
    };
    let service_rate = f64::from(n) * mu;
    // ln of ∏_{i=1..j} λ/(nμ + iθ): the states above n relative to π_n.
    let mut logs = vec![0.0_f64];
    let mut l = 0.0;
    let mut peak = 0.0_f64;
    for j in 1..MAX_QUEUE {
        let death = service_rate + j as f64 * theta;
        if death <= 0.0 {
            break;
        }
        l += (load.rate / death).ln();
        logs.push(l);
        peak = peak.max(l);
        // Past the peak the terms shrink for good; stop when negligible.
        if load.rate < death && l < peak - 40.0 {
            break;
        }
    }
    if theta == 0.0 && load.rate >= service_rate {
        // No abandonment and no spare capacity: everyone waits, forever.
        return ErlangA {
            agents: n,
            p_wait: 1.0,
            p_abandon: 0.0,
            queue: Vec::new(),
            service_rate,
            abandon_rate: 0.0,
        };
    }
    let s = peak + logs.iter().map(|x| (x - peak).exp()).sum::<f64>().ln(); // ln(1 + T)
    let b = erlang_b(n, load.erlangs);
    // P(wait) = B·e^s ÷ (1 + B·(e^s − 1)), written to stay finite.
    let p_wait = if n == 0 {
        1.0
    } else {
        1.0 / (1.0 + (1.0 - b) * (-(b.ln() + s)).exp())
    };
    let queue: Vec<f64> = logs.iter().map(|x| p_wait * (x - s).exp()).collect();
    let mean_queue: f64 = queue.iter().enumerate().map(|(j, p)| j as f64 * p).sum();
    let p_abandon = if load.rate > 0.0 {
        (theta * mean_queue / load.rate).min(1.0)
    } else {
        0.0
    };
    ErlangA {
        agents: n,
        p_wait,
        p_abandon,
        queue,
        service_rate,
        abandon_rate: theta,
    }
}

impl ErlangA {
    /// Share of ALL arriving callers answered within `target_secs`.
    pub fn service_level(&self, target_secs: f64) -> f64 {
        if self.queue.is_empty() {
            return 1.0 - self.p_wait;
        }
        let reach = self.reach_within(target_secs);
        let waited: f64 = self.queue.iter().zip(&reach).map(|(p, r)| p * r).sum();
        ((1.0 - self.p_wait) + waited).clamp(0.0, 1.0)
    }

    /// For each `j` callers ahead: the probability of being answered within
    /// `t` seconds. The tagged caller's position moves down at rate
    /// nμ + jθ and it leaves at rate θ; uniformization at rate Λ turns that
    /// into a discrete chain weighted by Poisson(Λt) step counts.
    fn reach_within(&self, t: f64) -> Vec<f64> {
        let jmax = self.queue.len();
        let (nmu, theta) = (self.service_rate, self.abandon_rate);
        let lambda = nmu + jmax as f64 * theta + theta;
        if t <= 0.0 || lambda <= 0.0 {
            return vec![0.0; jmax];
        }
        let lt = lambda * t;
        // Enough steps for the Poisson tail to fall below 1e-12.
        let steps = (lt + 10.0 * lt.sqrt() + 30.0).ceil() as usize;
        let mut g = vec![0.0_f64; jmax]; // P(answered within k steps | j ahead)
        let mut next = vec![0.0_f64; jmax];
        // ln Poisson(k; Λt), kept in logs: e^(−Λt) alone underflows.
        let mut log_weight = -lt;
        let mut out = vec![0.0_f64; jmax];
        for k in 0..=steps {
            let w = log_weight.exp();
            for (o, gj) in out.iter_mut().zip(&g) {
                *o += w * gj;
            }
            for j in 0..jmax {
                let down = (nmu + j as f64 * theta) / lambda;
                let below = if j == 0 { 1.0 } else { g[j - 1] };
                next[j] = down * below + (1.0 - down - theta / lambda) * g[j];
            }
            std::mem::swap(&mut g, &mut next);
            log_weight += (lt / (k as f64 + 1.0)).ln();
        }
        out
    }
}

/// Operators to schedule so that `needed` are on the phones after
/// `shrinkage_percent` % of paid time goes elsewhere.
pub fn with_shrinkage(needed: u32, shrinkage_percent: u32) -> u32 {
    if needed == 0 {
        return 0;
    }
    let keep = 1.0 - f64::from(shrinkage_percent.min(95)) / 100.0;
    // Float noise must not push an exact quotient (8 ÷ 0.8) up by one.
    ((f64::from(needed) / keep) - 1e-9).ceil() as u32
}

/// What the staffing report is computed with.
#[derive(Clone, Debug)]
pub struct StaffingParams {
    pub range: TimeRange,
    /// 15, 30 or 60.
    pub interval_mins: u32,
    /// Only these queues (empty: all).
    pub queues: Vec<String>,
    /// Service-level target per queue; queues not named get the default.
    pub targets: BTreeMap<String, ServiceTarget>,
    pub shrinkage_percent: u32,
    pub shift_hours: u32,
    /// Callers' average patience; `None`: measured from the abandons.
    pub patience_secs: Option<f64>,
    pub tz: jiff::tz::TimeZone,
}

/// Operators needed over the day, interval by interval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StaffingReport {
    pub range: TimeRange,
    pub time_zone: String,
    pub interval_mins: u32,
    /// Days the traffic is averaged over.
    pub days: u32,
    pub shrinkage_percent: u32,
    pub queues: Vec<QueueStaffing>,
    /// Per interval of the day: the queues' needs added up (each queue its
    /// own operators).
    pub total: Vec<IntervalNeed>,
    /// Shifts covering `total`'s Erlang C schedule.
    pub plan: ShiftPlan,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueueStaffing {
    pub queue: String,
    pub target_percent: u8,
    pub target_secs: f64,
    /// Average patience used for Erlang A (`None`: nobody abandoned, so
    /// Erlang A is Erlang C).
    pub patience_secs: Option<f64>,
    pub intervals: Vec<IntervalNeed>,
}

/// One interval of the day.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IntervalNeed {
    /// `HH:MM`, local time.
    pub start: String,
    /// Calls per day in this interval (averaged over the days).
    pub calls: f64,
    pub aht_secs: f64,
    pub erlangs: f64,
    pub agents_c: u32,
    pub agents_a: u32,
    pub scheduled_c: u32,
    pub scheduled_a: u32,
    /// Service level and abandon rate expected with `agents_c` / `agents_a`.
    pub sl_c: Option<f64>,
    pub sl_a: Option<f64>,
    pub abandon_a: Option<f64>,
}

/// The staffing report over `data` (see the module doc for each formula).
pub fn staffing(data: &Dataset, p: &StaffingParams) -> Result<StaffingReport, ReportError> {
    crate::report::check_interval(p.interval_mins)?;
    let slots = (24 * 60 / p.interval_mins) as usize;
    let days = days_in(p.range);
    let calls: Vec<&CallRow> = data
        .calls
        .iter()
        .filter(|c| !is_callback(c) && c.queue.is_some())
        .filter(|c| crate::report::arrival(c).is_some_and(|at| p.range.contains(at)))
        .filter(|c| p.queues.is_empty() || c.queue.as_ref().is_some_and(|q| p.queues.contains(q)))
        .collect();
    let mut by_queue: BTreeMap<&str, Vec<&CallRow>> = BTreeMap::new();
    for c in &calls {
        by_queue
            .entry(c.queue.as_deref().unwrap_or_default())
            .or_default()
            .push(c);
    }
    let queues: Vec<QueueStaffing> = by_queue
        .into_iter()
        .map(|(q, calls)| queue_staffing(q, &calls, p, slots, days))
        .collect();
    let total = (0..slots)
        .map(|i| {
            let mut t = IntervalNeed {
                start: slot_label(i, p.interval_mins),
                ..IntervalNeed::default()
            };
            for q in &queues {
                let n = &q.intervals[i];
                t.calls += n.calls;
                t.erlangs += n.erlangs;
                t.agents_c += n.agents_c;
                t.agents_a += n.agents_a;
                t.scheduled_c += n.scheduled_c;
                t.scheduled_a += n.scheduled_a;
            }
            t
        })
        .collect::<Vec<_>>();
    let need: Vec<u32> = total.iter().map(|t| t.scheduled_c).collect();
    let plan = shifts::plan(&need, p.interval_mins, p.shift_hours);
    Ok(StaffingReport {
        range: p.range,
        time_zone: tz_name(&p.tz),
        interval_mins: p.interval_mins,
        days,
        shrinkage_percent: p.shrinkage_percent,
        queues,
        total,
        plan,
    })
}

fn tz_name(tz: &jiff::tz::TimeZone) -> String {
    tz.iana_name().unwrap_or("UTC").to_string()
}

/// Whole days in the range (at least 1).
fn days_in(range: TimeRange) -> u32 {
    const DAY: i64 = 86_400_000;
    let ms = (range.to - range.from).max(1);
    u32::try_from((ms + DAY - 1) / DAY)
        .unwrap_or(u32::MAX)
        .max(1)
}

fn slot_label(i: usize, interval_mins: u32) -> String {
    let m = i as u32 * interval_mins;
    format!("{:02}:{:02}", m / 60, m % 60)
}

fn queue_staffing(
    queue: &str,
    calls: &[&CallRow],
    p: &StaffingParams,
    slots: usize,
    days: u32,
) -> QueueStaffing {
    let target = p.targets.get(queue).copied().unwrap_or_default();
    let patience = p.patience_secs.or_else(|| measured_patience(calls));
    let overall_aht = mean(calls.iter().filter_map(|c| handle_secs(c)));
    let mut slot_calls: Vec<Vec<&CallRow>> = vec![Vec::new(); slots];
    for c in calls {
        if let Some(at) = crate::report::arrival(c) {
            let i = interval_of_day(at, &p.tz, p.interval_mins);
            if let Some(v) = slot_calls.get_mut(i) {
                v.push(c);
            }
        }
    }
    let intervals = slot_calls
        .iter()
        .enumerate()
        .map(|(i, cs)| {
            let per_day = cs.len() as f64 / f64::from(days);
            let aht = mean(cs.iter().filter_map(|c| handle_secs(c)))
                .or(overall_aht)
                .unwrap_or(0.0);
            need_for(
                slot_label(i, p.interval_mins),
                per_day,
                aht,
                target,
                patience,
                p,
            )
        })
        .collect();
    QueueStaffing {
        queue: queue.to_string(),
        target_percent: target.percent,
        target_secs: target.within_secs(),
        patience_secs: patience,
        intervals,
    }
}

fn need_for(
    start: String,
    calls: f64,
    aht: f64,
    target: ServiceTarget,
    patience: Option<f64>,
    p: &StaffingParams,
) -> IntervalNeed {
    let secs = f64::from(p.interval_mins) * 60.0;
    let sl = f64::from(target.percent) / 100.0;
    let t = target.within_secs();
    let Some(load) = Load::new(calls, secs, aht) else {
        return IntervalNeed {
            start,
            calls,
            aht_secs: aht,
            ..IntervalNeed::default()
        };
    };
    let patience = patience.unwrap_or(f64::INFINITY);
    let agents_c = agents_needed_c(calls, secs, aht, sl, t);
    let agents_a = agents_needed_a(calls, secs, aht, sl, t, patience);
    let a = erlang_a(agents_a, &load, patience);
    IntervalNeed {
        start,
        calls,
        aht_secs: aht,
        erlangs: load.erlangs,
        agents_c,
        agents_a,
        scheduled_c: with_shrinkage(agents_c, p.shrinkage_percent),
        scheduled_a: with_shrinkage(agents_a, p.shrinkage_percent),
        sl_c: Some(erlang_c(agents_c, load.erlangs).service_level(aht, t)),
        sl_a: Some(a.service_level(t)),
        abandon_a: Some(a.p_abandon),
    }
}

/// Talk + wrap-up of an answered call, in seconds.
pub(crate) fn handle_secs(c: &CallRow) -> Option<f64> {
    let talk = c.talk_ended_at? - c.answered_at?;
    let wrap = c
        .wrap_ended_at
        .map_or(0, |w| (w - c.talk_ended_at.unwrap_or(w)).max(0));
    Some((talk.max(0) + wrap) as f64 / 1000.0)
}

/// Exponential patience estimated as total time waited ÷ abandons (the
/// maximum-likelihood estimate with answered callers censored). `None` when
/// nobody abandoned.
fn measured_patience(calls: &[&CallRow]) -> Option<f64> {
    let abandons = calls.iter().filter(|c| c.abandoned_at.is_some()).count();
    if abandons == 0 {
        return None;
    }
    let waited_ms: i64 = calls
        .iter()
        .filter_map(|c| match (c.answered_at, c.queued_at, c.waited_ms) {
            (Some(a), Some(q), _) => Some((a - q).max(0)),
            (None, _, Some(w)) => Some(w.max(0)),
            _ => None,
        })
        .sum();
    Some(waited_ms as f64 / 1000.0 / abandons as f64)
}

fn mean(xs: impl Iterator<Item = f64>) -> Option<f64> {
    let (n, sum) = xs.fold((0u32, 0.0), |(n, s), x| (n + 1, s + x));
    (n > 0).then(|| sum / f64::from(n))
}

#[cfg(test)]
mod tests;
