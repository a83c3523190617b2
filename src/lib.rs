//! ftp-alg: a userspace FTP application-layer gateway for Linux firewalls.
//!
//! (crate documentation is filled in as modules land)

pub mod io;
#[doc(hidden)]
pub mod testkit;
pub mod time;
