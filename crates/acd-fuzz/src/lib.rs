//! Fuzz harnesses for acd's network-facing parsers.
//!
//! Each harness takes arbitrary bytes, drives one parser and what the edge does with
//! its result, and panics only when an invariant breaks (a re-serialised message no
//! longer parses, chunked stream framing disagrees with one-shot framing, our own
//! Digest answer is refused …). The same functions are called by
//! * the cargo-fuzz targets in `fuzz/fuzz_targets/` (libFuzzer, coverage-guided), and
//! * `tests/fuzz_smoke.rs`, which replays `fuzz/corpus/<target>/` and a bounded
//!   number of seeded [`mutate`] rounds on the stable toolchain in `cargo test`,
//!
//! so the two cannot diverge.
//!
//! ```text
//!  fuzz/corpus/<target>/*  ──┬──► libFuzzer (fuzz/fuzz_targets/<target>.rs) ──┐
//!                            └──► mutate::Mutator (tests/fuzz_smoke.rs) ───────┴─► TARGETS[i].1(&bytes)
//! ```
//!
//! A new target is one function here, one line in [`TARGETS`], one file in
//! `fuzz/fuzz_targets/` and a corpus directory; see `fuzz/README.md`. The
//! `b2bua` target's harness lives in the core itself
//! (`acd_b2bua::fuzz_harness`), as its script format is the core's inputs.

pub mod corpus;
pub mod ivr;
pub mod media;
pub mod mutate;
pub mod routing;
pub mod sip;

/// A harness: arbitrary bytes in, panic only on a broken invariant.
pub type Harness = fn(&[u8]);

/// Every target by its corpus directory name (`fuzz/corpus/<name>/`), which is also
/// the cargo-fuzz target name.
pub const TARGETS: &[(&str, Harness)] = &[
    ("sip_parse", sip::sip_parse),
    ("sip_stream", sip::sip_stream),
    ("sip_transaction", sip::sip_transaction),
    ("digest", sip::digest),
    ("sdp_parse", media::sdp_parse),
    ("rtp_parse", media::rtp_parse),
    ("b2bua", acd_b2bua::fuzz_harness::run),
    ("dtmf", ivr::dtmf),
    ("ivr_step", ivr::ivr_step),
    ("skill_expr", routing::skill_expr),
];

/// `bytes` as printable ASCII with escapes, for panic messages that name an input.
#[must_use]
pub fn escape(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}
