//! The `nat_rewrite` fuzz target: a thin wrapper over `ftp_alg::testkit::fuzz::nat_rewrite`, whose module
//! doc lists the invariants it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ftp_alg::testkit::fuzz::nat_rewrite(data));
