//! `cargo fuzz run b2bua`: see fuzz/README.md. The harness lives in
//! `acd_b2bua::fuzz_harness::run` (a script of SIP messages, clock steps,
//! distributor, IVR and media events, snapshot/restore), shared with the
//! stable smoke test.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| acd_b2bua::fuzz_harness::run(data));
