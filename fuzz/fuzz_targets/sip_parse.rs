//! `cargo fuzz run sip_parse`: see fuzz/README.md. The harness lives in
//! `acd_fuzz::sip::sip_parse`, shared with the stable smoke test.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| acd_fuzz::sip::sip_parse(data));
