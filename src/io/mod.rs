//! The shells: everything that touches the OS (files, sockets, clocks) lives under `io`.
//!
//! Owns: reading captures ([`capture`]), the offline replay loop ([`replay`]) and its
//! reporting ([`report`]).

pub mod capture;
pub mod replay;
pub mod report;
