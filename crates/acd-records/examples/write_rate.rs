//! Records per second the writer sustains (spool with fsync per batch, then
//! the database in transactions of up to 500): realistic answered calls
//! (queued, offered, connected, ended, agent ready: 5 records each).
//!
//! ```sh
//! cargo run --release -p acd-records --example write_rate -- sqlite:/tmp/rate.db 20000
//! cargo run --release -p acd-records --example write_rate -- postgres://postgres@127.0.0.1:5432/acd 20000
//! ```

use std::sync::{mpsc, Arc};
use std::time::Instant;

use acd_records::Database;
use acd_routing::{
    AgentState, CallerInfo, EndReason, Event, EventRecord, Explanation, Seq, Term, Timestamp,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let db = args
        .next()
        .unwrap_or_else(|| "sqlite:target/write_rate.db".into());
    let records: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(20_000);
    let db = Database::parse(&db, std::path::Path::new("."))?;
    let spool = std::env::temp_dir().join(format!("acd-write-rate-{}", std::process::id()));
    let (tx, rx) = mpsc::channel();
    let start = Instant::now();
    let writer = acd_records::writer::spawn(db, spool.clone(), rx)?;
    // Unique (seq, at) per run, so a reused database does not skip them.
    let base = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as u64;
    let mut seq = base;
    for call in 0..records / 5 {
        for event in answered_call(&format!("rate-{base}-{call}")) {
            seq += 1;
            tx.send(Arc::new(EventRecord {
                seq: Seq(seq),
                term: Term(1),
                at: Timestamp(seq),
                event,
                origin: None,
            }))?;
        }
    }
    drop(tx);
    writer.join().map_err(|_| "writer panicked")?;
    let secs = start.elapsed().as_secs_f64();
    let n = records / 5 * 5;
    println!(
        "{n} records in {secs:.2} s: {:.0} records/s",
        n as f64 / secs
    );
    let _ = std::fs::remove_dir_all(spool);
    Ok(())
}

fn answered_call(call: &str) -> Vec<Event> {
    vec![
        Event::CallQueued {
            call: call.into(),
            queue: "sales".into(),
            priority: 0,
            caller: CallerInfo {
                from: "sip:0611223344@trunk".into(),
                display: "Caller".into(),
                number: "0611223344".into(),
                did: "5550100".into(),
                variables: Default::default(),
            },
            enqueued_at: Timestamp(1),
            skills: Default::default(),
        },
        Event::CallOffered {
            call: call.into(),
            agent: "alice".into(),
            extension: "1001".into(),
            queue: "sales".into(),
            caller: CallerInfo::default(),
            expires_at: Timestamp(2),
            explanation: Explanation::default(),
            auto_answer: false,
            ring_also: Vec::new(),
            dial: None,
        },
        Event::CallConnected {
            call: call.into(),
            agent: "alice".into(),
        },
        Event::CallEnded {
            call: call.into(),
            agent: "alice".into(),
            wrap_up_until: Timestamp(3),
            by: EndReason::CallerHungUp,
        },
        Event::AgentStateChanged {
            agent: "alice".into(),
            state: AgentState::Ready,
            reason: None,
        },
    ]
}
