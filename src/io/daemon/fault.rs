//! Fault injection for the process tests, and nothing else: `FTP_ALG_FAULT` in the
//! environment makes a worker panic on purpose, so that `tests/daemon.rs` can check that a
//! panicking worker ends the process with status 1 (`docs/testing.md`).
//!
//! Owns: reading [`VARIABLE`] once at start-up and the `Faulty` wrapper around the first
//! queue. Without the variable nothing here runs: the queue is not wrapped. With it, a warning
//! says so at start-up. A value it cannot read is ignored with a warning, never fatal.
//!
//! Values: `panic-after-packets:N`: the first queue's worker panics on its first `try_recv`
//! after N packets were received from the queue (`0`: within a second of `ready`, with no
//! traffic at all).

use std::io;
use std::os::fd::BorrowedFd;

use crate::action::Verdict;
use crate::io::daemon::source::PacketSource;
use crate::io::daemon::source::QueuedPacket;

/// The environment variable.
pub const VARIABLE: &str = "FTP_ALG_FAULT";

/// A fault to inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Panic on the first `try_recv` after this many packets.
    PanicAfterPackets(u64),
}

/// A queue that injects a [`Fault`].
#[derive(Debug)]
pub(crate) struct Faulty<S> {
    inner: S,
    fault: Fault,
    packets: u64,
}

impl Fault {
    /// The fault named by [`VARIABLE`], if it is set (and readable).
    pub fn from_env() -> Option<Self> {
        let value = std::env::var(VARIABLE).ok()?;
        match Self::parse(&value) {
            Ok(fault) => {
                log::warn!("{VARIABLE}={value}: fault injection for tests is on");
                Some(fault)
            }
            Err(error) => {
                log::warn!("{VARIABLE}={value:?} ignored: {error}");
                None
            }
        }
    }

    /// Read a value such as `panic-after-packets:3`.
    pub fn parse(value: &str) -> Result<Self, String> {
        let count = value
            .strip_prefix("panic-after-packets:")
            .ok_or("the only fault is panic-after-packets:N")?;
        count
            .parse()
            .map(Self::PanicAfterPackets)
            .map_err(|_| format!("{count:?} is not a packet count"))
    }
}

impl<S> Faulty<S> {
    pub(crate) fn new(inner: S, fault: Fault) -> Self {
        Self {
            inner,
            fault,
            packets: 0,
        }
    }
}

impl<S: PacketSource> PacketSource for Faulty<S> {
    fn try_recv(&mut self) -> io::Result<Option<QueuedPacket>> {
        let Fault::PanicAfterPackets(limit) = self.fault;
        if self.packets >= limit {
            panic!("injected fault ({VARIABLE}=panic-after-packets:{limit})");
        }
        let packet = self.inner.try_recv()?;
        self.packets += u64::from(packet.is_some());
        Ok(packet)
    }

    fn verdict(&mut self, id: u32, verdict: Verdict) -> io::Result<()> {
        self.inner.verdict(id, verdict)
    }

    fn accept_through(&mut self, id: u32) -> io::Result<()> {
        self.inner.accept_through(id)
    }

    fn release_rewritten(&mut self, id: u32, datagram: &[u8]) -> io::Result<()> {
        self.inner.release_rewritten(id, datagram)
    }

    fn fd(&self) -> BorrowedFd<'_> {
        self.inner.fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_read_strictly() {
        assert_eq!(
            Fault::parse("panic-after-packets:0"),
            Ok(Fault::PanicAfterPackets(0))
        );
        assert_eq!(
            Fault::parse("panic-after-packets:12"),
            Ok(Fault::PanicAfterPackets(12))
        );
        for bad in [
            "",
            "panic",
            "panic-after-packets:",
            "panic-after-packets:-1",
        ] {
            assert!(Fault::parse(bad).is_err(), "{bad}");
        }
    }
}
