//! A bound `NETLINK_NETFILTER` socket with sequence numbers, and the request/answer
//! exchange every netfilter subsystem uses.
//!
//! netlink(7): each request message carries a sequence number; with `NLM_F_ACK` the kernel
//! answers every message with an `NLMSG_ERROR` (error 0 = ACK), and a refusal is answered
//! even without it. Data replies (GET) carry the request's sequence number and come before
//! its ACK; a dump is multi-part (`NLM_F_MULTI`) and ends with `NLMSG_DONE`. The socket is
//! non-blocking; an exchange waits with poll(2), bounded by the socket's answer timeout
//! ([`ANSWER_TIMEOUT`] unless [`Socket::set_answer_timeout`] says otherwise). A netfilter
//! batch that asks for no ACK ([`Socket::send_batch`]) needs no wait: nfnetlink answers
//! its refusals inside the send.
//!
//! A late answer (one that arrives after its exchange gave up) is never taken for another
//! request's: every message gets a fresh sequence number, and an exchange only files answers
//! carrying its own; the rest go to its `other` callback.

use std::collections::HashSet;
use std::io;
use std::os::fd::AsFd;
use std::os::fd::BorrowedFd;
use std::os::fd::OwnedFd;
use std::time::Duration;
use std::time::Instant;
use std::time::SystemTime;
use std::time::UNIX_EPOCH;

use crate::io::netlink::Error;
use crate::io::netlink::KernelError;
use crate::io::netlink::Malformed;
use crate::io::netlink::Message;
use crate::io::netlink::consts::NLMSG_DONE;
use crate::io::netlink::messages;
use crate::io::sys;
use crate::io::sys::SocketOption;

/// How long an exchange on a newly opened socket waits for the kernel's answers. The kernel
/// answers netfilter requests synchronously (inside `sendto`), so this is only reached if
/// something is badly wrong. Callers that hold a packet meanwhile set a shorter bound.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// Receive buffer for answers that are ACKs or small GET replies.
pub const SMALL_RECEIVE: usize = 16 * 1024;

/// A netfilter netlink socket.
#[derive(Debug)]
pub struct Socket {
    fd: OwnedFd,
    port_id: u32,
    seq: u32,
    buf: Vec<u8>,
    timeout: Duration,
}

/// What to wait for in an [`Socket::exchange`].
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    /// Sequence numbers of the messages sent with `NLM_F_ACK`: wait for one answer each.
    pub acked: &'a [u32],
    /// Sequence numbers sent without `NLM_F_ACK` (a batch's BEGIN and END): a refusal of
    /// one of these ends the exchange, as no other answer will come.
    pub fatal: &'a [u32],
}

/// The answers to a request.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// One outcome per answered sequence number, in arrival order.
    pub outcomes: Vec<(u32, Result<(), KernelError>)>,
    /// Data messages carrying one of the request's sequence numbers.
    pub replies: Vec<Reply>,
}

/// A data message received in an exchange (copied out of the receive buffer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// `nlmsg_type`.
    pub kind: u16,
    /// `nlmsg_seq`.
    pub seq: u32,
    /// The payload after the netlink header (`nfgenmsg` and attributes).
    pub payload: Vec<u8>,
}

impl Socket {
    /// Open and bind a `NETLINK_NETFILTER` socket whose receive buffer (our copy, not the
    /// kernel's `SO_RCVBUF`) holds `receive` bytes. Sets `NETLINK_CAP_ACK` and
    /// `NETLINK_EXT_ACK` when the kernel has them.
    pub fn open(receive: usize) -> Result<Self, Error> {
        let fd =
            sys::netlink_socket(libc::NETLINK_NETFILTER).map_err(|e| Error::io("socket", e))?;
        let port_id = sys::bind_netlink(fd.as_fd()).map_err(|e| Error::io("bind", e))?;
        for option in [SocketOption::NetlinkCapAck, SocketOption::NetlinkExtAck] {
            if let Err(error) = sys::set_option(fd.as_fd(), option, 1) {
                log::debug!("netlink socket option {option:?} not set: {error}");
            }
        }
        Ok(Self {
            fd,
            port_id,
            seq: initial_seq(),
            buf: vec![0; receive],
            timeout: ANSWER_TIMEOUT,
        })
    }

    /// Bound every later [`exchange`](Self::exchange) to `timeout`, counted from just before
    /// its request is sent.
    pub fn set_answer_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// The next sequence number (never 0: the kernel sends unsolicited messages with 0).
    pub fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1).max(1);
        self.seq
    }

    /// Send `bytes` (one or more messages) in one datagram.
    pub fn send(&self, bytes: &[u8]) -> Result<(), Error> {
        sys::send_to_kernel(self.fd.as_fd(), bytes).map_err(|e| Error::io("sendto", e))
    }

    /// Receive one datagram without blocking; `Ok(None)` when nothing is waiting. A
    /// datagram larger than the buffer is an error (its tail is lost).
    pub fn recv(&mut self) -> io::Result<Option<&[u8]>> {
        let Some(length) = sys::recv(self.fd.as_fd(), &mut self.buf)? else {
            return Ok(None);
        };
        if length > self.buf.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "netlink datagram of {length} bytes cut to the {}-byte buffer",
                    self.buf.len()
                ),
            ));
        }
        Ok(Some(&self.buf[..length]))
    }

    /// Send `request` and collect the answers `expect` names. Messages that belong to
    /// none of the request's sequence numbers (queued packets, stale answers) go to
    /// `other`. Fails with [`Error::Timeout`] when the answers have not all come within
    /// the answer timeout (counted from before the send; answers already waiting are
    /// always read first).
    pub fn exchange(
        &mut self,
        request: &[u8],
        expect: Expect<'_>,
        other: &mut dyn FnMut(Message<'_>),
    ) -> Result<Exchange, Error> {
        let deadline = Instant::now() + self.timeout;
        self.send(request)?;
        let mut waiting: HashSet<u32> = expect.acked.iter().copied().collect();
        let mut exchange = Exchange::default();
        while !waiting.is_empty() {
            let datagram = match self.recv() {
                Ok(Some(datagram)) => datagram,
                Ok(None) => {
                    wait(self.fd.as_fd(), deadline, self.timeout)?;
                    continue;
                }
                Err(error) => return Err(Error::io("recv", error)),
            };
            for message in messages(datagram) {
                let message = message?;
                sort(message, expect, &mut waiting, &mut exchange, other)?;
            }
        }
        Ok(exchange)
    }

    /// Send a netfilter batch whose messages ask for no ACK, and collect what the kernel
    /// refused. nfnetlink handles a batch inside `sendto` (net/netfilter/nfnetlink.c,
    /// `nfnetlink_rcv_batch`) and queues an `NLMSG_ERROR` only for a message it refused, or
    /// for a failed commit (answered against the BEGIN), before the send returns: so every
    /// answer is waiting once it has, and the socket is read until it is empty. `sent`
    /// names every sequence number of the batch; each gets an outcome, `Ok` unless refused.
    /// Without the ACKs the kernel builds and queues no answer for a change it made, and the
    /// caller reads one datagram instead of one per message. A lost answer (the receive
    /// buffer full: `ENOBUFS`) fails the exchange. Messages carrying none of `sent` (stale
    /// answers) are skipped.
    pub fn send_batch(&mut self, request: &[u8], sent: &[u32]) -> Result<Exchange, Error> {
        self.send(request)?;
        let mut exchange = Exchange::default();
        while let Some(datagram) = self.recv().map_err(|e| Error::io("recv", e))? {
            for message in messages(datagram) {
                let message = message?;
                if !sent.contains(&message.seq) {
                    continue;
                }
                if let Some(Err(refusal)) = message.outcome()? {
                    exchange.outcomes.push((message.seq, Err(refusal)));
                }
            }
        }
        for &seq in sent {
            if !exchange.outcomes.iter().any(|(s, _)| *s == seq) {
                exchange.outcomes.push((seq, Ok(())));
            }
        }
        Ok(exchange)
    }

    /// The port id the kernel gave this socket.
    pub fn port_id(&self) -> u32 {
        self.port_id
    }

    /// The bound on each exchange.
    pub fn answer_timeout(&self) -> Duration {
        self.timeout
    }
}

impl AsFd for Socket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// File one received message: an answer we wait for, a data reply, or something else.
fn sort(
    message: Message<'_>,
    expect: Expect<'_>,
    waiting: &mut HashSet<u32>,
    exchange: &mut Exchange,
    other: &mut dyn FnMut(Message<'_>),
) -> Result<(), Malformed> {
    let seq = message.seq;
    let ours = expect.acked.contains(&seq) || expect.fatal.contains(&seq);
    if !ours {
        other(message);
        return Ok(());
    }
    match message.outcome()? {
        Some(outcome) if waiting.remove(&seq) => exchange.outcomes.push((seq, outcome)),
        Some(Err(refusal)) if expect.fatal.contains(&seq) => {
            exchange.outcomes.push((seq, Err(refusal)));
            waiting.clear();
        }
        Some(_) => {}
        None if message.kind == NLMSG_DONE => {
            if waiting.remove(&seq) {
                exchange.outcomes.push((seq, Ok(())));
            }
        }
        None => exchange.replies.push(Reply {
            kind: message.kind,
            seq,
            payload: message.payload.to_vec(),
        }),
    }
    Ok(())
}

/// Wait for the socket to become readable, or fail at `deadline` (reported as `bound`).
fn wait(fd: BorrowedFd<'_>, deadline: Instant, bound: Duration) -> Result<(), Error> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(Error::Timeout(bound));
    }
    sys::wait_readable(&[fd], Some(left)).map_err(|e| Error::io("poll", e))?;
    Ok(())
}

/// A starting sequence number that differs between runs, so that a stale answer from an
/// earlier process on a reused port id is not taken for ours (as libmnl does with time).
fn initial_seq() -> u32 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH);
    now.map_or(1, |d| d.subsec_nanos() ^ (d.as_secs() as u32))
}
