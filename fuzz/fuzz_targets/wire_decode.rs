//! The `wire_decode` fuzz target: a thin wrapper over `ftp_alg::testkit::fuzz::wire_decode`, whose module
//! doc lists the invariants it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ftp_alg::testkit::fuzz::wire_decode(data));
