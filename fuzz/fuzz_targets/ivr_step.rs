//! `cargo fuzz run ivr_step`: see fuzz/README.md. The harness lives in
//! `acd_fuzz::ivr::ivr_step`, shared with the stable smoke test.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| acd_fuzz::ivr::ivr_step(data));
