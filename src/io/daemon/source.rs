//! The packet source the daemon reads from: the small trait between the worker loop and
//! NFQUEUE, so the loop can be driven by an in-memory source in tests.
//!
//! Owns: [`PacketSource`] and [`QueuedPacket`], and their implementation for the in-house
//! [`nfqueue::Queue`](crate::io::nfqueue::Queue) (`docs/netlink.md` says why not the `nfq`
//! crate: no pollable descriptor, so no clean signal handling or timers).

use std::io;
use std::os::fd::AsFd;
use std::os::fd::BorrowedFd;

use crate::action::Verdict;
use crate::io::nfqueue;

/// One packet held by the kernel until its verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedPacket {
    /// The kernel's packet id, echoed in the verdict.
    pub id: u32,
    /// The IP datagram (possibly cut at the copy range).
    pub payload: Vec<u8>,
    /// True when the copy range cut the datagram short (it cannot be judged).
    pub truncated: bool,
}

/// Where queued packets come from and where their verdicts go.
pub trait PacketSource {
    /// The next packet, without blocking; `Ok(None)` when none is waiting.
    fn try_recv(&mut self) -> io::Result<Option<QueuedPacket>>;
    /// Release or drop packet `id` as it is (`Verdict::Accept` or `Verdict::Drop`; the worker
    /// resolves the other verdicts into these or [`PacketSource::release_rewritten`]).
    fn verdict(&mut self, id: u32, verdict: Verdict) -> io::Result<()>;
    /// Accept, as they are, every packet still waiting whose id is at most `id` (one batch
    /// verdict). Only for a run of packets all to be accepted as they came.
    fn accept_through(&mut self, id: u32) -> io::Result<()>;
    /// Release packet `id` with `datagram` in its place (rewritten for NAT).
    fn release_rewritten(&mut self, id: u32, datagram: &[u8]) -> io::Result<()>;
    /// A descriptor that polls readable when a packet is waiting.
    fn fd(&self) -> BorrowedFd<'_>;
    /// The kernel's counters of packets this source lost before we saw them, if it has any.
    fn kernel_counters(&self) -> Option<nfqueue::KernelCounters> {
        None
    }
}

impl PacketSource for nfqueue::Queue {
    fn try_recv(&mut self) -> io::Result<Option<QueuedPacket>> {
        Ok(Self::try_recv(self)?.map(|packet| QueuedPacket {
            id: packet.id,
            truncated: packet.truncated(),
            payload: packet.payload,
        }))
    }

    fn verdict(&mut self, id: u32, verdict: Verdict) -> io::Result<()> {
        let verdict = match verdict {
            Verdict::Drop => nfqueue::QueueVerdict::Drop,
            Verdict::Accept | Verdict::Rewritten | Verdict::Hold(_) => {
                nfqueue::QueueVerdict::Accept
            }
        };
        Self::verdict(self, id, verdict)
    }

    fn accept_through(&mut self, id: u32) -> io::Result<()> {
        Self::accept_through(self, id)
    }

    fn release_rewritten(&mut self, id: u32, datagram: &[u8]) -> io::Result<()> {
        self.accept_with_payload(id, datagram)
    }

    fn fd(&self) -> BorrowedFd<'_> {
        self.as_fd()
    }

    fn kernel_counters(&self) -> Option<nfqueue::KernelCounters> {
        nfqueue::kernel_counters(self.number()).ok().flatten()
    }
}
