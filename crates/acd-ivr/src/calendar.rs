//! Opening hours and weekdays in a time zone. The instant is turned into the
//! zone's civil date and time first (jiff, with the tz database built in), so
//! "08:00" means 08:00 on the wall clock on DST-change days too.

use jiff::civil::{Date, DateTime, Weekday};
use jiff::tz::TimeZone;
use jiff::Timestamp;

/// Where the caller is in the calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hours {
    Open,
    Closed,
    Holiday,
}

/// The civil date and time of `now_unix_ms` in `zone`.
pub fn local(zone: &str, now_unix_ms: i64) -> Result<DateTime, String> {
    let tz = TimeZone::get(zone).map_err(|e| format!("time zone `{zone}`: {e}"))?;
    let ts = Timestamp::from_millisecond(now_unix_ms).map_err(|e| e.to_string())?;
    Ok(ts.to_zoned(tz).datetime())
}

/// `mon`…`sun`.
pub fn day_key(day: Weekday) -> &'static str {
    match day {
        Weekday::Monday => "mon",
        Weekday::Tuesday => "tue",
        Weekday::Wednesday => "wed",
        Weekday::Thursday => "thu",
        Weekday::Friday => "fri",
        Weekday::Saturday => "sat",
        Weekday::Sunday => "sun",
    }
}

pub const DAY_KEYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// The days a key names: one day (`sat`) or a range (`mon-fri`, `fri-mon`
/// wraps over the weekend).
pub fn parse_days(key: &str) -> Result<Vec<&'static str>, String> {
    let index = |d: &str| {
        DAY_KEYS.iter().position(|k| *k == d.trim()).ok_or_else(|| {
            format!("`{key}` is not a day or a range of days (mon, tue, … sun, mon-fri)")
        })
    };
    let (from, to) = match key.split_once('-') {
        Some((a, b)) => (index(a)?, index(b)?),
        None => (index(key)?, index(key)?),
    };
    let len = (to + 7 - from) % 7 + 1;
    Ok((0..len).map(|i| DAY_KEYS[(from + i) % 7]).collect())
}

/// Whether the day key (or range) `key` covers `day`.
pub fn covers(key: &str, day: &str) -> bool {
    parse_days(key).is_ok_and(|days| days.contains(&day))
}

/// `HH:MM-HH:MM` as minutes of the day, end exclusive (`24:00` allowed).
pub fn parse_range(range: &str) -> Result<(u32, u32), String> {
    let bad = || format!("bad time range `{range}` (want HH:MM-HH:MM)");
    let (from, to) = range.split_once('-').ok_or_else(bad)?;
    let (from, to) = (
        parse_time(from).ok_or_else(bad)?,
        parse_time(to).ok_or_else(bad)?,
    );
    if from >= to {
        return Err(format!(
            "time range `{range}` ends before it starts (split ranges over midnight into two days)"
        ));
    }
    Ok((from, to))
}

fn parse_time(t: &str) -> Option<u32> {
    let (h, m) = t.trim().split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) => Some(24 * 60),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

/// `YYYY-MM-DD` or `YYYY-MM-DD..YYYY-MM-DD` (inclusive) as a date range.
pub fn parse_holiday(spec: &str) -> Result<(Date, Date), String> {
    let date = |s: &str| {
        s.trim()
            .parse::<Date>()
            .map_err(|_| format!("bad holiday date `{}` (want YYYY-MM-DD)", s.trim()))
    };
    let (from, to) = match spec.split_once("..") {
        Some((a, b)) => (date(a)?, date(b)?),
        None => (date(spec)?, date(spec)?),
    };
    if from > to {
        return Err(format!("holiday range `{spec}` ends before it starts"));
    }
    Ok((from, to))
}

/// Open, closed or holiday at `now`; an invalid calendar (refused by
/// validation) counts as closed rather than guessing.
pub fn hours(
    zone: &str,
    weekly: &std::collections::BTreeMap<String, Vec<String>>,
    holidays: &[String],
    now_unix_ms: i64,
) -> Hours {
    let Ok(now) = local(zone, now_unix_ms) else {
        return Hours::Closed;
    };
    let today = now.date();
    let holiday = holidays
        .iter()
        .filter_map(|h| parse_holiday(h).ok())
        .any(|(from, to)| from <= today && today <= to);
    if holiday {
        return Hours::Holiday;
    }
    let minute =
        u32::try_from(now.hour()).unwrap_or(0) * 60 + u32::try_from(now.minute()).unwrap_or(0);
    let today_key = day_key(now.weekday());
    let open = weekly
        .iter()
        .filter(|(days, _)| covers(days, today_key))
        .flat_map(|(_, ranges)| ranges)
        .filter_map(|r| parse_range(r).ok())
        .any(|(from, to)| from <= minute && minute < to);
    if open {
        Hours::Open
    } else {
        Hours::Closed
    }
}

/// The day key (`mon`…) at `now` in `zone`.
pub fn weekday(zone: &str, now_unix_ms: i64) -> Result<&'static str, String> {
    local(zone, now_unix_ms).map(|d| day_key(d.weekday()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("08:00-20:00"), Ok((480, 1200)));
        assert_eq!(parse_range("00:00-24:00"), Ok((0, 1440)));
        assert!(parse_range("20:00-08:00").is_err());
        assert!(parse_range("8:00-20:00").is_err());
        assert!(parse_range("08:00-25:00").is_err());
        assert!(parse_range("08:60-09:00").is_err());
        assert!(parse_range("0800").is_err());
    }

    #[test]
    fn day_ranges() {
        assert_eq!(parse_days("sat"), Ok(vec!["sat"]));
        assert_eq!(
            parse_days("mon-fri"),
            Ok(vec!["mon", "tue", "wed", "thu", "fri"])
        );
        assert_eq!(parse_days("fri-mon"), Ok(vec!["fri", "sat", "sun", "mon"]));
        assert!(parse_days("monday").is_err());
        assert!(parse_days("mon-xyz").is_err());
        assert!(covers("sat-sun", "sun"));
        assert!(!covers("sat-sun", "mon"));
    }

    #[test]
    fn holidays() {
        assert!(parse_holiday("2026-12-31").is_ok());
        assert!(parse_holiday("2027-01-01..2027-01-08").is_ok());
        assert!(parse_holiday("2027-01-08..2027-01-01").is_err());
        assert!(parse_holiday("2027-02-30").is_err());
        assert!(parse_holiday("31.12.2026").is_err());
    }

    #[test]
    fn zones() {
        assert!(local("Europe/Berlin", 0).is_ok());
        assert!(local("Mars/Olympus", 0).is_err());
        assert_eq!(weekday("UTC", 0), Ok("thu"), "1970-01-01 was a Thursday");
    }
}
