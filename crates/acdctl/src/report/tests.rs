use super::*;
use acd_records::report::{AgentFigures, Grouping};
use acd_records::TimeRange;

fn row(key: &str) -> ReportRow {
    ReportRow {
        key: key.into(),
        offered: 5,
        answered: 3,
        abandoned: 1,
        short_abandons: 1,
        abandon_rate: Some(0.25),
        asa_secs: Some(15.0),
        answered_in_target: 2,
        service_level: Some(0.5),
        target_percent: Some(80),
        target_secs: Some(20.0),
        aht_secs: Some(430.0 / 3.0),
        fcr_rate: Some(1.0 / 3.0),
        callbacks_requested: 0,
        callbacks_completed: 0,
        satisfaction: Some(4.0),
        surveys: 2,
        agent: None,
    }
}

fn report(by: Grouping) -> Report {
    let mut total = row("total");
    total.target_percent = None;
    total.target_secs = None;
    Report {
        range: TimeRange { from: 0, to: 1 },
        by,
        interval_mins: 60,
        time_zone: "UTC".into(),
        short_abandon_secs: 5,
        fcr_window_hours: 24,
        rows: vec![row("sales"), row("a-much-longer-queue-name")],
        total,
    }
}

#[test]
fn table_columns_line_up() {
    let text = render_report(&report(Grouping::Queue), Format::Table);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[0].starts_with("queue "));
    // Every column starts at the same offset on every line.
    let col = lines[0].find("offered").unwrap();
    for l in &lines[1..] {
        assert_eq!(&l[col..col + 1], "5", "{text}");
    }
    let sl = lines[0].find("sl%").unwrap();
    assert_eq!(&lines[1][sl..sl + 5], "50.0%");
    assert!(lines[1].contains("80/20s"));
    assert!(lines[1].contains("143.3"));
    assert!(lines[3].starts_with("total"));
}

#[test]
fn csv_has_a_header_and_raw_numbers() {
    let text = render_report(&report(Grouping::Queue), Format::Csv);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "queue,offered,answered,abandoned,short,aband%,asa_s,sl%,target,aht_s,fcr%,cb_req,cb_done,csat,surveys"
    );
    assert_eq!(lines.len(), 4);
    assert!(
        lines[1].starts_with("sales,5,3,1,1,0.25,15,0.5,80,"),
        "{}",
        lines[1]
    );
    assert_eq!(csv_field("a,b"), "\"a,b\"");
    assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
}

#[test]
fn agent_columns_only_by_agent() {
    let mut r = report(Grouping::Agent);
    let a = AgentFigures {
        calls_handled: 3,
        talk_secs: 280.0,
        wrap_secs: 30.0,
        ready_secs: 6590.0,
        not_ready_secs: 900.0,
        logged_in_secs: 7800.0,
        occupancy: Some(310.0 / 6900.0),
        utilisation: Some(310.0 / 7800.0),
    };
    r.rows[0].agent = Some(a.clone());
    r.total.agent = Some(a);
    let text = render_report(&r, Format::Table);
    let first = text.lines().nth(1).unwrap();
    assert!(first.contains("2:10:00"), "{text}");
    assert!(first.contains("4.5%"));
    assert!(text.lines().next().unwrap().contains("util%"));
    let plain = render_report(&report(Grouping::Queue), Format::Table);
    assert!(!plain.contains("util%"));
}

#[test]
fn json_is_the_report() {
    let r = report(Grouping::Interval);
    let back: Report = serde_json::from_str(&render_report(&r, Format::Json)).unwrap();
    assert_eq!(back, r);
}

#[test]
fn staffing_renders_needs_and_the_plan() {
    use acd_records::staffing::{IntervalNeed, QueueStaffing};
    let need = IntervalNeed {
        start: "09:00".into(),
        calls: 100.0,
        aht_secs: 180.0,
        erlangs: 10.0,
        agents_c: 14,
        agents_a: 13,
        scheduled_c: 20,
        scheduled_a: 19,
        sl_c: Some(0.888),
        sl_a: Some(0.85),
        abandon_a: Some(0.02),
    };
    let quiet = IntervalNeed {
        start: "03:00".into(),
        ..IntervalNeed::default()
    };
    let r = StaffingReport {
        range: TimeRange { from: 0, to: 1 },
        time_zone: "UTC".into(),
        interval_mins: 60,
        days: 1,
        shrinkage_percent: 30,
        queues: vec![QueueStaffing {
            queue: "sales".into(),
            target_percent: 80,
            target_secs: 20.0,
            patience_secs: Some(60.0),
            intervals: vec![quiet.clone(), need.clone()],
        }],
        total: vec![quiet, need],
        plan: acd_records::shifts::plan(&[0, 20], 60, 1),
    };
    let text = render_staffing(&r, Format::Table);
    assert!(
        text.contains("queue sales: target 80% in 20 s, patience 60 s"),
        "{text}"
    );
    // The quiet interval is left out of the table.
    assert!(!text.contains("03:00  "), "{text}");
    assert!(text.contains("88.8%"));
    assert!(text.contains("5/2 rota: 28 people"), "{text}");
    let csv_text = render_staffing(&r, Format::Csv);
    assert_eq!(csv_text.lines().count(), 1 + 2 + 2);
    assert!(csv_text
        .lines()
        .nth(2)
        .unwrap()
        .starts_with("sales,09:00,100.00,180.0,10.00,14,13,20,19,0.888,"));
}

#[test]
fn bounds_parse_as_days_in_the_zone_or_instants() {
    let berlin = acd_records::report::time_zone("Europe/Berlin").unwrap();
    let now: jiff::Timestamp = "2026-11-28T10:00:00Z".parse().unwrap();
    let ms = |s: &str| s.parse::<jiff::Timestamp>().unwrap().as_millisecond() as u64;
    assert_eq!(
        parse_bound("2026-11-27", &berlin, now, false).unwrap(),
        (ms("2026-11-26T23:00:00Z"), true)
    );
    assert_eq!(
        parse_bound("2026-11-27", &berlin, now, true).unwrap().0,
        ms("2026-11-27T23:00:00Z")
    );
    assert_eq!(
        parse_bound("yesterday", &jiff::tz::TimeZone::UTC, now, false)
            .unwrap()
            .0,
        ms("2026-11-27T00:00:00Z")
    );
    assert_eq!(
        parse_bound("2026-11-27T09:30:00Z", &berlin, now, true).unwrap(),
        (ms("2026-11-27T09:30:00Z"), false)
    );
    assert!(parse_bound("last tuesday", &berlin, now, false).is_err());
    assert_eq!(
        day_after(ms("2026-11-26T23:00:00Z"), &berlin).unwrap(),
        ms("2026-11-27T23:00:00Z")
    );
}

#[test]
fn requests_carry_the_flags() {
    use clap::Parser;
    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: ReportArgs,
    }
    let t = T::try_parse_from([
        "x",
        "--from",
        "2026-11-27",
        "--by",
        "interval",
        "--interval",
        "15",
        "--queue",
        "a",
        "--queue",
        "b",
        "--short-abandon-secs",
        "7",
    ])
    .unwrap();
    let req = calls_request(&t.a).unwrap();
    assert_eq!(req.by, pb::ReportGrouping::Interval as i32);
    assert_eq!((req.interval_mins, req.short_abandon_secs), (15, 7));
    assert_eq!(req.queues, ["a", "b"]);
    assert_eq!(req.to_ms - req.from_ms, 86_400_000);
    let t =
        T::try_parse_from(["x", "staffing", "--shrinkage", "25", "--shift-hours", "10"]).unwrap();
    let Some(ReportWhat::Staffing(s)) = &t.a.what else {
        panic!("not staffing");
    };
    let req = staffing_request(s).unwrap();
    assert!(req.staffing);
    assert_eq!((req.shrinkage_percent, req.shift_hours), (25, 10));
    let t = T::try_parse_from(["x", "staffing", "--shrinkage", "0"]).unwrap();
    let Some(ReportWhat::Staffing(s)) = &t.a.what else {
        panic!("not staffing");
    };
    assert!(staffing_request(s).is_err());
}
