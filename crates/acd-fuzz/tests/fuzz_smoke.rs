//! The fuzz harnesses on the stable toolchain: every corpus file, then a bounded
//! number of seeded mutations per target. No coverage guidance — that is what
//! `cargo fuzz run <target>` adds (see fuzz/README.md) — but it runs in every
//! `cargo test` and fails naming the input that broke an invariant.
//!
//! Rounds per target are sized so the whole file stays under ~5 s in a debug build
//! (the SIP harnesses parse and serialise several times per input, and the Digest one
//! hashes); `ACD_FUZZ_ROUNDS=<n>` overrides them all, e.g. for a longer local soak.

use std::panic::{catch_unwind, AssertUnwindSafe};

use acd_fuzz::mutate::{mutate, Rng};
use acd_fuzz::{corpus, escape, Harness, TARGETS};

fn rounds(default: usize) -> usize {
    std::env::var("ACD_FUZZ_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn run(target: &str, default_rounds: usize) {
    let harness: Harness = TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .map(|(_, h)| *h)
        .unwrap_or_else(|| panic!("no harness {target}"));
    let files = corpus::load(target).unwrap_or_else(|e| panic!("corpus of {target}: {e}"));
    assert!(
        files.len() >= 10,
        "corpus of {target} has only {} files",
        files.len()
    );
    for (name, bytes) in &files {
        check(target, harness, bytes, &format!("corpus file {name}"));
    }
    let seeds: Vec<&[u8]> = files.iter().map(|(_, b)| b.as_slice()).collect();
    // Seeded by the target name: each target explores differently, every run the same.
    let mut rng = Rng::new(
        target
            .bytes()
            .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b))),
    );
    for round in 0..rounds(default_rounds) {
        let i = rng.below(files.len());
        let input = mutate(&mut rng, seeds[i], &seeds);
        check(
            target,
            harness,
            &input,
            &format!("round {round}, a mutation of {}", files[i].0),
        );
    }
}

fn check(target: &str, harness: Harness, input: &[u8], what: &str) {
    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| harness(input))) {
        let msg = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("?");
        panic!(
            "{target} failed on {what}: {msg}\ninput: b\"{}\"",
            escape(input)
        );
    }
}

#[test]
fn sip_parse() {
    run("sip_parse", 10_000);
}

#[test]
fn sip_stream() {
    run("sip_stream", 10_000);
}

#[test]
fn sip_transaction() {
    run("sip_transaction", 5_000);
}

#[test]
fn digest() {
    run("digest", 10_000);
}

#[test]
fn sdp_parse() {
    run("sdp_parse", 20_000);
}

#[test]
fn rtp_parse() {
    run("rtp_parse", 20_000);
}

/// Every harness has a corpus and a test above; a new target cannot be half-added.
#[test]
fn b2bua() {
    run("b2bua", 3_000);
}

#[test]
fn dtmf() {
    run("dtmf", 20_000);
}

#[test]
fn ivr_step() {
    run("ivr_step", 5_000);
}

#[test]
fn skill_expr() {
    run("skill_expr", 20_000);
}

#[test]
fn every_target_has_a_corpus_and_a_smoke_test() {
    // Each target's #[test] above, by name: a target added to TARGETS
    // without one fails here.
    const SMOKED: [&str; 10] = [
        "sip_parse",
        "sip_stream",
        "sip_transaction",
        "digest",
        "sdp_parse",
        "rtp_parse",
        "b2bua",
        "dtmf",
        "ivr_step",
        "skill_expr",
    ];
    for (name, _) in TARGETS {
        assert!(SMOKED.contains(name), "target {name} has no smoke test");
        let files = corpus::load(name).unwrap_or_else(|e| panic!("corpus of {name}: {e}"));
        assert!(
            files.len() >= 10,
            "corpus of {name} has {} seeds, want 10",
            files.len()
        );
    }
}
