//! ftp-alg: a userspace FTP application-layer gateway (ALG) for Linux firewalls.
//!
//! FTP moves data over a second TCP connection whose address and port are announced on the
//! control connection (`PORT`/`EPRT`/`LPRT` commands, `227`/`228`/`229` replies). A
//! default-drop firewall must read those announcements and open a narrow, short-lived pinhole
//! for exactly the announced connection. This crate is that reader, built as a **sans-IO
//! core** (bytes and `now` in, decisions out) with thin shells around it.
//!
//! ```text
//!               ┌──────────────────── pure core: no clock, no socket, no file ───────────────────┐
//!   datagram,   │ wire ──► flow ──────► stream ──────► ftp ───────► policy ──► engine ──► Verdict  │
//!   now ──────► │ (checked (4-tuple,    (reassembly,   (PORT/EPRT,   (strict/   (expectations  + queued │
//!               │  views)  TCP state,   gaps, lines,   227/228/229,  loose,     per control,    Actions │
//!               │          pickup)      Telnet IAC)    pipelining)   ports)     ownership)             │
//!               └──────────────────────────────────────────────────────────────────────────────────┘
//!   io::capture ──► io::replay ──(actions)──► oracle::SetModel (the kernel set, modelled) ──► io::report
//!   io::nfqueue ──► io::daemon ──(actions; install, wait for the ACK)──► io::backend (nft / ipset) ──► verdict
//! ```
//!
//! The entry point is [`engine::Engine`]: feed it every datagram with
//! [`engine::Engine::handle_packet`], carry out the [`action::Action`]s it queues (an
//! `Install` **before** releasing the datagram that caused it, so a data connection's SYN can
//! never beat its pinhole), and call [`engine::Engine::handle_timeout`] when
//! [`engine::Engine::poll_timeout`] says so.
//!
//! Invariants the core keeps:
//! - every packet gets a [`action::Verdict`]; malformed or unparseable input is counted and
//!   released (or dropped, per [`config::Unjudged`]), never a panic;
//! - every buffer is bounded (per line, per direction, per connection, globally), as is the
//!   number of connections and of expectations per connection;
//! - nothing is parsed from a connection that has not shown itself to be FTP (a `220`
//!   greeting and a known first command), nor after `AUTH TLS` succeeds;
//! - an expectation belongs to exactly one control connection and dies with it.
//!
//! Only [`io`], `main.rs` and [`cli`] touch the operating system (`make lint-core` checks).

pub mod action;
mod addr_text;
pub mod check;
pub mod cli;
pub mod config;
pub mod engine;
pub mod expect;
pub mod flow;
pub mod ftp;
pub mod hashing;
pub mod io;
pub mod nat;
pub mod oracle;
pub mod policy;
pub mod rules;
pub mod snapshot;
pub mod stats;
pub mod stream;
#[doc(hidden)]
pub mod testkit;
pub mod time;
pub mod wire;
