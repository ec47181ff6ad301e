//! A suggested 24/7 shift plan from the operators needed per interval of the
//! day: shifts of a fixed length starting at interval boundaries (wrapping
//! past midnight), how many people start each one, a day/evening/night
//! summary, and the head count of a 5/2 rota.
//!
//! The cover is greedy on a circle: walk the day from a starting interval,
//! and wherever the shifts begun so far cover less than the need, start the
//! missing people there. Coverage only grows and every interval is topped up
//! when it is passed, so the plan covers the need everywhere; on a line this
//! greedy is optimal, and trying every starting interval of the circle and
//! keeping the fewest people handles the wrap-around.

use serde::{Deserialize, Serialize};

/// One shift start.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shift {
    /// `HH:MM` local, and where it ends (may be the next day).
    pub start: String,
    pub end: String,
    pub people: u32,
}

/// People per part of the day, by when their shift starts: day 06:00–13:59,
/// evening 14:00–21:59, night 22:00–05:59.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayParts {
    pub day: u32,
    pub evening: u32,
    pub night: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShiftPlan {
    pub shift_hours: u32,
    pub interval_mins: u32,
    /// Shifts with people, in start order.
    pub shifts: Vec<Shift>,
    /// Per interval: people needed, and people on shift under the plan.
    pub need: Vec<u32>,
    pub coverage: Vec<u32>,
    pub parts: DayParts,
    /// People working on one day (the sum of `shifts`).
    pub daily_heads: u32,
    /// People to employ so each works 5 days of 7: ⌈daily × 7 ÷ 5⌉.
    pub rota_5_2_heads: u32,
}

/// The plan for `need` (one entry per interval of the day).
pub fn plan(need: &[u32], interval_mins: u32, shift_hours: u32) -> ShiftPlan {
    let len = ((shift_hours.max(1) * 60) / interval_mins.max(1)).max(1) as usize;
    let starts = best_cover(need, len);
    let coverage = coverage(&starts, len);
    let label = |i: usize| {
        let m = (i * interval_mins as usize) % (24 * 60);
        format!("{:02}:{:02}", m / 60, m % 60)
    };
    let shifts: Vec<Shift> = starts
        .iter()
        .enumerate()
        .filter(|(_, &p)| p > 0)
        .map(|(i, &people)| Shift {
            start: label(i),
            end: label(i + len),
            people,
        })
        .collect();
    let mut parts = DayParts::default();
    for (i, &people) in starts.iter().enumerate() {
        let hour = i * interval_mins as usize / 60;
        match hour {
            6..=13 => parts.day += people,
            14..=21 => parts.evening += people,
            _ => parts.night += people,
        }
    }
    let daily: u32 = starts.iter().sum();
    ShiftPlan {
        shift_hours,
        interval_mins,
        shifts,
        need: need.to_vec(),
        coverage,
        parts,
        daily_heads: daily,
        rota_5_2_heads: (daily * 7).div_ceil(5),
    }
}

/// People starting at each interval, the fewest over every starting point.
fn best_cover(need: &[u32], len: usize) -> Vec<u32> {
    (0..need.len())
        .map(|first| greedy_from(need, len, first))
        .min_by_key(|starts| starts.iter().sum::<u32>())
        .unwrap_or_default()
}

/// The greedy cover walking the circle from `first`.
fn greedy_from(need: &[u32], len: usize, first: usize) -> Vec<u32> {
    let n = need.len();
    let mut starts = vec![0u32; n];
    let mut cover = vec![0u32; n];
    for step in 0..n {
        let i = (first + step) % n;
        let missing = need[i].saturating_sub(cover[i]);
        if missing > 0 {
            starts[i] += missing;
            for k in 0..len.min(n) {
                cover[(i + k) % n] += missing;
            }
        }
    }
    starts
}

/// People on shift per interval.
fn coverage(starts: &[u32], len: usize) -> Vec<u32> {
    let n = starts.len();
    let mut cover = vec![0u32; n];
    for (i, &people) in starts.iter().enumerate() {
        for k in 0..len.min(n) {
            cover[(i + k) % n] += people;
        }
    }
    cover
}

#[cfg(test)]
mod tests {
    use super::*;

    fn covers(p: &ShiftPlan) -> bool {
        p.need.iter().zip(&p.coverage).all(|(n, c)| c >= n)
    }

    #[test]
    fn flat_need_is_three_shifts_a_day() {
        // 10 people needed around the clock, 8-hour shifts: 3 × 10 people, no
        // fewer possible (each person covers a third of the day).
        let need = vec![10u32; 48];
        let p = plan(&need, 30, 8);
        assert!(covers(&p));
        assert_eq!(p.daily_heads, 30);
        assert_eq!(p.shifts.len(), 3);
        assert_eq!(p.coverage, vec![10; 48]);
        // 30 a day, each working 5 of 7: ⌈30 × 7 ÷ 5⌉ = 42.
        assert_eq!(p.rota_5_2_heads, 42);
        assert_eq!(p.parts.day + p.parts.evening + p.parts.night, 30);
    }

    #[test]
    fn a_peak_across_midnight_is_covered_by_one_wrapping_shift() {
        // Hourly need: 4 people 22:00-05:59, none otherwise. One 8-hour
        // shift from 22:00 covers it all: 4 people, starting at night.
        let mut need = vec![0u32; 24];
        for h in [22, 23, 0, 1, 2, 3, 4, 5] {
            need[h] = 4;
        }
        let p = plan(&need, 60, 8);
        assert!(covers(&p));
        assert_eq!(p.daily_heads, 4);
        assert_eq!(
            p.shifts,
            vec![Shift {
                start: "22:00".into(),
                end: "06:00".into(),
                people: 4
            }]
        );
        assert_eq!(
            p.parts,
            DayParts {
                day: 0,
                evening: 0,
                night: 4
            }
        );
    }

    #[test]
    fn covers_a_ragged_day_everywhere_and_near_the_bound() {
        // A pseudo-random day of needs 0-20 per half hour: covered
        // everywhere, and within the trivial lower bounds' reach: at least
        // the peak, at least ⌈Σneed ÷ shift length⌉.
        let mut x: u32 = 12345;
        let need: Vec<u32> = (0..48)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 16) % 21
            })
            .collect();
        let p = plan(&need, 30, 8);
        assert!(covers(&p));
        let peak = *need.iter().max().unwrap();
        let area = need.iter().sum::<u32>().div_ceil(16);
        assert!(p.daily_heads >= peak.max(area));
        // No interval is topped up by more people than its need asked for.
        for s in &p.shifts {
            assert!(s.people <= peak);
        }
    }

    #[test]
    fn no_need_no_shifts() {
        let p = plan(&[0; 96], 15, 8);
        assert!(p.shifts.is_empty());
        assert_eq!(p.daily_heads, 0);
        assert_eq!(p.rota_5_2_heads, 0);
    }
}
