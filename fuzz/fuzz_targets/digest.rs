//! `cargo fuzz run digest`: see fuzz/README.md. The harness lives in
//! `acd_fuzz::sip::digest`, shared with the stable smoke test.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| acd_fuzz::sip::digest(data));
