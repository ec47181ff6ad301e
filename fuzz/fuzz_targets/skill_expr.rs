//! `cargo fuzz run skill_expr`: see fuzz/README.md. The harness lives in
//! `acd_fuzz::routing::skill_expr`, shared with the stable smoke test.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| acd_fuzz::routing::skill_expr(data));
