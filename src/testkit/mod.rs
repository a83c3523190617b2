//! Test support (not a stable API): builders for packets, conversations and capture files.
//!
//! Pure code: it builds bytes in memory and never touches the OS. Used by unit tests,
//! integration tests, benches and the sample-capture generator.

pub mod actions;
pub mod conversation;
pub mod fixtures;
pub mod fuzz;
pub mod pcap;
pub mod samples;
pub mod writer;
