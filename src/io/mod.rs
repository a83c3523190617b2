//! The shells: everything that touches the OS (files, sockets, clocks) lives under `io`.
//!
//! Owns: reading captures ([`capture`]), the offline replay loop ([`replay`]), its reporting
//! ([`report`]) and progress line ([`progress`]); the live, passive capture loop ([`watch`]);
//! for the daemon, the libc calls ([`sys`], the crate's only `unsafe`), netfilter netlink
//! ([`netlink`]), NFQUEUE ([`nfqueue`]), the kernel sets that hold expectations
//! ([`backend`]) and conntrack lookups ([`conntrack`]); the daemon's loop ([`daemon`])
//! and its metrics endpoint ([`metrics`]); what `ftp-alg check` reads from the kernel
//! ([`check`]); the configuration file spliced into the command line ([`config_file`]).

pub mod backend;
pub mod capture;
pub mod check;
pub mod config_file;
pub mod conntrack;
pub mod daemon;
pub mod metrics;
pub mod netlink;
pub mod nfqueue;
pub mod progress;
pub mod replay;
pub mod report;
pub mod sys;
pub mod watch;
