//! The shells: everything that touches the OS (files, sockets, clocks) lives under `io`.
pub mod capture;
