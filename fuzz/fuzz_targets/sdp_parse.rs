//! `cargo fuzz run sdp_parse`: see fuzz/README.md. The harness lives in
//! `acd_fuzz::media::sdp_parse`, shared with the stable smoke test.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| acd_fuzz::media::sdp_parse(data));
