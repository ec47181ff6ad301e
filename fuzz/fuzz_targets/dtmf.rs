//! `cargo fuzz run dtmf`: see fuzz/README.md. The harness lives in
//! `acd_fuzz::ivr::dtmf`, shared with the stable smoke test.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| acd_fuzz::ivr::dtmf(data));
