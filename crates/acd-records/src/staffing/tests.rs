//! Erlang C against published values, Erlang A against its limits and an
//! independent numeric solution, shrinkage, and the staffing report.

use super::*;

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

#[test]
fn erlang_b_matches_the_published_example() {
    // Wolfram Language docs, ErlangB: "if there are 30 call lines and the
    // traffic is 25 Erlangs, then the blocking or loss probability is
    // approximately 0.05" (0.0526 to four places).
    let b = erlang_b(30, 25.0);
    assert!(close(b, 0.0526, 0.00005), "{b}");
}

#[test]
fn erlang_c_matches_the_textbook_m_m_3() {
    // M/M/3 offered 2 erlangs: P0 = 1/(1 + 2 + 2 + (8/6)·3) = 1/9 and
    // P(wait) = (8/6)·3·P0 = 4/9 (the classic worked example).
    assert!(close(erlang_c(3, 2.0).p_wait, 4.0 / 9.0, 1e-12));
    // Unstable: everyone waits.
    assert_eq!(erlang_c(10, 10.0).p_wait, 1.0);
    assert_eq!(erlang_c(10, 12.0).service_level(180.0, 20.0), 0.0);
}

#[test]
fn agents_needed_matches_the_published_average_hour() {
    // jonesthenet.com, "Erlang uplift": 250 calls in the hour, AHT 330 s,
    // 80 % in 30 s: "Erlang … thinks we need 28 advisors" (22.9 erlangs).
    assert_eq!(agents_needed_c(250.0, 3600.0, 330.0, 0.80, 30.0), 28);
    // 27 reach only 78.2 %, 28 reach 85.7 %.
    let a = 250.0 * 330.0 / 3600.0;
    assert!(erlang_c(27, a).service_level(330.0, 30.0) < 0.80);
    assert!(close(
        erlang_c(28, a).service_level(330.0, 30.0),
        0.8569,
        0.0005
    ));
    assert_eq!(agents_needed_c(0.0, 1800.0, 180.0, 0.8, 20.0), 0);
}

#[test]
fn erlang_c_asa_and_service_level_are_consistent() {
    // 10 erlangs, 14 agents, AHT 180 s, 20 s: from the formulas in the
    // module doc, checked against a direct evaluation of the sums.
    let c = erlang_c(14, 10.0);
    let direct = {
        let mut sum = 0.0;
        let mut term = 1.0; // a^k / k!
        for k in 0..14 {
            if k > 0 {
                term *= 10.0 / k as f64;
            }
            sum += term;
        }
        let top = term * 10.0 / 14.0 * 14.0 / 4.0; // a^14/14! · 14/(14 − 10)
        top / (sum + top)
    };
    assert!(close(c.p_wait, direct, 1e-12), "{} {direct}", c.p_wait);
    assert!(close(c.p_wait, 0.1741, 0.0001));
    assert!(close(c.service_level(180.0, 20.0), 0.8883, 0.0001));
    assert!(close(c.asa(180.0), 7.836, 0.001));
}

fn load(erlangs: f64, aht: f64) -> Load {
    Load::new(erlangs * 1800.0 / aht, 1800.0, aht).unwrap()
}

#[test]
fn erlang_a_with_endless_patience_is_erlang_c() {
    for (n, a) in [(3u32, 2.0), (14, 10.0), (55, 48.0), (120, 110.0)] {
        let l = load(a, 240.0);
        let c = erlang_c(n, a);
        for patience in [f64::INFINITY, 1e12] {
            let ea = erlang_a(n, &l, patience);
            assert!(
                close(ea.p_wait, c.p_wait, 1e-6),
                "n={n}: {} vs {}",
                ea.p_wait,
                c.p_wait
            );
            assert!(ea.p_abandon < 1e-6);
            let (sa, sc) = (ea.service_level(15.0), c.service_level(240.0, 15.0));
            assert!(close(sa, sc, 1e-6), "n={n}: SL {sa} vs {sc}");
        }
    }
}

fn poisson_tail_and_excess(a: f64, n: u32) -> (f64, f64) {
    // For N ~ Poisson(a): P(N ≥ n) and E[(N − n)+], summed term by term.
    let mut p = (-a).exp();
    let (mut below, mut mean_below) = (0.0, 0.0);
    for k in 0..n {
        if k > 0 {
            p *= a / f64::from(k);
        }
        below += p;
        mean_below += f64::from(k) * p;
    }
    let tail = 1.0 - below;
    // E[(N − n)+] = E[N] − n·P(N ≥ n) − E[N·1{N<n}]
    let excess = a - f64::from(n) * tail - mean_below;
    (tail, excess)
}

#[test]
fn erlang_a_with_patience_equal_to_handle_time_is_m_m_infinity() {
    // θ = μ: every caller leaves at rate μ whether waiting or served, so the
    // number in the system is Poisson(A): P(wait) = P(N ≥ n) and
    // P(abandon) = θ·E[(N − n)+] ÷ λ = E[(N − n)+] ÷ A.
    for (n, a) in [(1u32, 0.5), (5, 4.0), (20, 25.0), (100, 95.0)] {
        let l = load(a, 180.0);
        let ea = erlang_a(n, &l, 180.0);
        let (tail, excess) = poisson_tail_and_excess(a, n);
        assert!(
            close(ea.p_wait, tail, 1e-9),
            "n={n}: {} vs {tail}",
            ea.p_wait
        );
        assert!(
            close(ea.p_abandon, excess / a, 1e-9),
            "n={n}: {} vs {}",
            ea.p_abandon,
            excess / a
        );
    }
}

/// The tagged caller's chain, integrated with small RK4 steps instead of
/// uniformization: u'_j = r_j·(u_{j−1} − u_j) − θ·u_j, u_{−1} = 1.
fn reach_by_rk4(n: u32, l: &Load, patience: f64, j_max: usize, t: f64) -> Vec<f64> {
    let (nmu, theta) = (f64::from(n) / l.aht, 1.0 / patience);
    let deriv = |u: &[f64]| -> Vec<f64> {
        (0..u.len())
            .map(|j| {
                let below = if j == 0 { 1.0 } else { u[j - 1] };
                (nmu + j as f64 * theta) * (below - u[j]) - theta * u[j]
            })
            .collect()
    };
    let steps = 20_000;
    let h = t / steps as f64;
    let mut u = vec![0.0; j_max];
    for _ in 0..steps {
        let k1 = deriv(&u);
        let add = |u: &[f64], k: &[f64], s: f64| -> Vec<f64> {
            u.iter().zip(k).map(|(a, b)| a + s * b).collect()
        };
        let k2 = deriv(&add(&u, &k1, h / 2.0));
        let k3 = deriv(&add(&u, &k2, h / 2.0));
        let k4 = deriv(&add(&u, &k3, h));
        for j in 0..j_max {
            u[j] += h / 6.0 * (k1[j] + 2.0 * k2[j] + 2.0 * k3[j] + k4[j]);
        }
    }
    u
}

#[test]
fn erlang_a_service_level_matches_a_direct_integration() {
    // Overloaded (A = 12 > n = 10) and underloaded cases, patience 60 s.
    for (n, a) in [(10u32, 12.0), (10, 8.0), (3, 2.5)] {
        let l = load(a, 180.0);
        let ea = erlang_a(n, &l, 60.0);
        let reach = reach_by_rk4(n, &l, 60.0, ea.queue.len(), 20.0);
        let by_rk4 =
            (1.0 - ea.p_wait) + ea.queue.iter().zip(&reach).map(|(p, r)| p * r).sum::<f64>();
        let sl = ea.service_level(20.0);
        assert!(close(sl, by_rk4, 1e-7), "n={n} a={a}: {sl} vs {by_rk4}");
        // The stationary probabilities add up.
        let below: f64 = 1.0 - ea.p_wait;
        assert!(close(below + ea.queue.iter().sum::<f64>(), 1.0, 1e-9));
    }
}

#[test]
fn erlang_a_is_stable_from_0_to_500_agents() {
    for n in [0u32, 1, 50, 250, 499, 500] {
        for a in [0.5, 10.0, 250.0, 480.0, 520.0, 700.0] {
            let l = load(a, 240.0);
            let ea = erlang_a(n, &l, 90.0);
            let sl = ea.service_level(20.0);
            for x in [ea.p_wait, ea.p_abandon, sl] {
                assert!(
                    x.is_finite() && (0.0..=1.0).contains(&x),
                    "n={n} a={a}: {x}"
                );
            }
            let c = erlang_c(n, a);
            assert!(c.p_wait.is_finite() && (0.0..=1.0).contains(&c.p_wait));
        }
    }
    // More operators: less waiting, fewer abandons.
    let l = load(480.0, 240.0);
    let (few, many) = (erlang_a(470, &l, 90.0), erlang_a(500, &l, 90.0));
    assert!(many.p_wait < few.p_wait && many.p_abandon < few.p_abandon);
}

#[test]
fn erlang_a_bisection_finds_the_fewest() {
    // Against a plain count from 1 on loads from light to 400 erlangs.
    for (calls, aht, patience) in [
        (5.0, 120.0, 30.0),
        (100.0, 180.0, 60.0),
        (2400.0, 300.0, 90.0),
    ] {
        let l = Load::new(calls, 1800.0, aht).unwrap();
        let by_count = (1..)
            .find(|&n| erlang_a(n, &l, patience).service_level(20.0) >= 0.8)
            .unwrap();
        assert_eq!(
            agents_needed_a(calls, 1800.0, aht, 0.8, 20.0, patience),
            by_count
        );
    }
}

#[test]
fn erlang_a_needs_no_more_than_erlang_c() {
    // Abandons take load off, so for the same target A never asks for more.
    let c = agents_needed_c(100.0, 1800.0, 180.0, 0.8, 20.0);
    let a = agents_needed_a(100.0, 1800.0, 180.0, 0.8, 20.0, 60.0);
    assert_eq!(c, 14);
    assert!(a <= c, "{a} > {c}");
    let l = load(10.0, 180.0);
    assert!(erlang_a(a, &l, 60.0).service_level(20.0) >= 0.8);
    assert!(a == 1 || erlang_a(a - 1, &l, 60.0).service_level(20.0) < 0.8);
    // Endless patience: the same as C.
    assert_eq!(
        agents_needed_a(100.0, 1800.0, 180.0, 0.8, 20.0, f64::INFINITY),
        14
    );
}

#[test]
fn shrinkage_rounds_up() {
    // 14 ÷ 0.7 = 20 exactly; 10 ÷ 0.7 = 14.3 → 15; 8 ÷ 0.8 = 10.
    assert_eq!(with_shrinkage(14, 30), 20);
    assert_eq!(with_shrinkage(10, 30), 15);
    assert_eq!(with_shrinkage(8, 20), 10);
    assert_eq!(with_shrinkage(0, 30), 0);
    assert_eq!(with_shrinkage(5, 0), 5);
}

#[test]
fn staffing_report_over_the_scripted_day() {
    use crate::report::tests::{day, targets};
    let from = "2026-11-27T00:00:00Z"
        .parse::<jiff::Timestamp>()
        .unwrap()
        .as_millisecond();
    let p = StaffingParams {
        range: TimeRange {
            from,
            to: from + 86_400_000,
        },
        interval_mins: 60,
        queues: Vec::new(),
        targets: targets(),
        shrinkage_percent: 30,
        shift_hours: 8,
        patience_secs: None,
        tz: jiff::tz::TimeZone::UTC,
    };
    let r = staffing(&day(), &p).unwrap();
    assert_eq!(r.days, 1);
    assert_eq!(r.queues.len(), 2);
    let sales = &r.queues[0];
    assert_eq!(sales.queue, "sales");
    // Waited: 10 + 30 + 3 + 40 + 5 = 88 s over 2 abandons: 44 s patience.
    assert_eq!(sales.patience_secs, Some(44.0));
    let nine = &sales.intervals[9];
    assert_eq!(nine.start, "09:00");
    // 5 calls in the 09:00 hour, AHT (150 + 220 + 60) ÷ 3.
    assert_eq!(nine.calls, 5.0);
    assert!(close(nine.aht_secs, 430.0 / 3.0, 1e-9));
    let erl = 5.0 * (430.0 / 3.0) / 3600.0;
    assert!(close(nine.erlangs, erl, 1e-12));
    assert_eq!(
        nine.agents_c,
        agents_needed_c(5.0, 3600.0, 430.0 / 3.0, 0.8, 20.0)
    );
    // 0.199 erlangs: one operator answers 1 − 0.199·e^(−0.801·20/143.3)
    // = 82 % within 20 s; scheduled 1 ÷ 0.7 = 1.4 → 2.
    assert_eq!(nine.agents_c, 1);
    assert_eq!(nine.scheduled_c, 2);
    assert!(nine.agents_a <= nine.agents_c);
    // Nothing else in sales's day.
    assert_eq!(sales.intervals.iter().filter(|i| i.calls > 0.0).count(), 1);
    // Support: nobody abandoned, so Erlang A is Erlang C.
    assert_eq!(r.queues[1].patience_secs, None);
    let ten = &r.queues[1].intervals[10];
    assert_eq!(ten.agents_a, ten.agents_c);
    // The plan covers the summed schedule everywhere.
    assert!(r
        .plan
        .coverage
        .iter()
        .zip(&r.total)
        .all(|(c, t)| *c >= t.scheduled_c));
    assert!(r.plan.daily_heads > 0);
}
