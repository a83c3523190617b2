//! ftp-alg: a userspace FTP application-layer gateway for Linux firewalls.
//!
//! (crate documentation is filled in as modules land)

pub mod action;
pub mod cli;
pub mod config;
pub mod engine;
pub mod expect;
pub mod flow;
pub mod ftp;
pub mod io;
pub mod oracle;
pub mod policy;
pub mod stats;
pub mod stream;
#[doc(hidden)]
pub mod testkit;
pub mod time;
pub mod wire;
