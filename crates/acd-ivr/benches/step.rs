//! Cost of IVR steps on the shipped 24/7 flow: one whole order-status call
//! (language menu, welcome, business hours, main menu, order number,
//! lookup answer said back with digits and a date, goodbye) through
//! `acd_ivr::step`, and flow validation at load.
//!
//! `cargo bench -p acd-ivr --bench step`

use std::collections::BTreeMap;

use acd_ivr::{step, validate, Event, Flow, Known, Session, StepEnv};
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};

const SUPPORT247: &str = include_str!("../../../config/flows/support247.toml");
/// Monday 2026-11-30 12:00 Moscow: open.
const MONDAY_NOON_MS: i64 = 1_796_029_200_000;

fn flow() -> Flow {
    match toml_edit::de::from_str(SUPPORT247) {
        Ok(f) => f,
        Err(e) => panic!("support247.toml: {e}"),
    }
}

/// The events of one order-status call, in order.
fn order_call() -> Vec<Event> {
    vec![
        Event::Started {
            did: "5550247".into(),
            caller: "74950000000".into(),
            caller_name: String::new(),
        },
        Event::Digits { digits: "1".into() },
        Event::PromptFinished,
        Event::Digits { digits: "1".into() },
        Event::Digits {
            digits: "4711".into(),
        },
        Event::LookupDone {
            http_status: 200,
            fields: BTreeMap::from([
                ("status".into(), "shipped".into()),
                ("eta".into(), "2026-12-25".into()),
            ]),
        },
        Event::PromptFinished,
        Event::Digits { digits: "5".into() },
        Event::PromptFinished,
    ]
}

fn whole_call(c: &mut Criterion) {
    let flow = flow();
    let events = order_call();
    let env = StepEnv {
        now_unix_ms: MONDAY_NOON_MS,
    };
    c.bench_function("support247 order-status call (9 steps)", |b| {
        b.iter(|| {
            let mut session = Session::default();
            for e in &events {
                match step(&flow, session, e.clone(), &env) {
                    Ok((s, actions)) => {
                        black_box(&actions);
                        session = s;
                    }
                    Err(err) => panic!("{err}"),
                }
            }
            session
        })
    });
}

fn validation(c: &mut Criterion) {
    let flow = flow();
    let known = Known::default();
    c.bench_function("support247 validate", |b| {
        b.iter(|| black_box(validate(black_box(&flow), &known)))
    });
}

criterion_group!(benches, whole_call, validation);
criterion_main!(benches);
