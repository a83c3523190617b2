//! The `reassembly` fuzz target: a thin wrapper over `ftp_alg::testkit::fuzz::reassembly`, whose module
//! doc lists the invariants it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ftp_alg::testkit::fuzz::reassembly(data));
