//! NFQUEUE: receive queued packets and give verdicts, one queue per [`Queue`] (its own
//! socket, pollable through [`AsFd`]).
//!
//! Owns: binding and configuring a queue, parsing `NFQNL_MSG_PACKET`, sending
//! `NFQNL_MSG_VERDICT` (optionally with a replacement payload), unbinding on drop. Messages
//! and structures are from include/uapi/linux/netfilter/nfnetlink_queue.h; the kernel side
//! is net/netfilter/nfnetlink_queue.c. It does not decide verdicts.
//!
//! Choices (see `/work/shared/docs/kernel-interfaces.md` §1.2 and `docs/netlink.md`):
//! - bind, copy mode, queue length and flags go in **one** config message, so no packet is
//!   queued under a half-done configuration;
//! - GSO is explicitly off (`NFQA_CFG_F_GSO` in the mask, not in the flags): packets arrive
//!   segmented, so no single payload exceeds the MTU;
//! - `NETLINK_NO_ENOBUFS` is **not** set: an overrun (the kernel dropped packets because
//!   our receive buffer was full) is reported as `ENOBUFS` by [`Queue::try_recv`]
//!   ([`is_overrun`]) so the daemon can count it and carry on;
//! - the receive buffer is raised with `SO_RCVBUFFORCE` (needs `CAP_NET_ADMIN`), falling
//!   back to `SO_RCVBUF` (capped by `net.core.rmem_max`), socket(7).

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::os::fd::AsFd;
use std::os::fd::BorrowedFd;

use crate::io::netlink;
use crate::io::netlink::Expect;
use crate::io::netlink::Header;
use crate::io::netlink::KernelError;
use crate::io::netlink::Malformed;
use crate::io::netlink::Message;
use crate::io::netlink::Socket;
use crate::io::netlink::Writer;
use crate::io::netlink::consts::NF_ACCEPT;
use crate::io::netlink::consts::NF_DROP;
use crate::io::netlink::consts::NFNL_SUBSYS_QUEUE;
use crate::io::netlink::consts::NFPROTO_UNSPEC;
use crate::io::netlink::consts::NFQA_CAP_LEN;
use crate::io::netlink::consts::NFQA_CFG_CMD;
use crate::io::netlink::consts::NFQA_CFG_F_FAIL_OPEN;
use crate::io::netlink::consts::NFQA_CFG_F_GSO;
use crate::io::netlink::consts::NFQA_CFG_FLAGS;
use crate::io::netlink::consts::NFQA_CFG_MASK;
use crate::io::netlink::consts::NFQA_CFG_PARAMS;
use crate::io::netlink::consts::NFQA_CFG_QUEUE_MAXLEN;
use crate::io::netlink::consts::NFQA_PACKET_HDR;
use crate::io::netlink::consts::NFQA_PAYLOAD;
use crate::io::netlink::consts::NFQA_VERDICT_HDR;
use crate::io::netlink::consts::NFQNL_CFG_CMD_BIND;
use crate::io::netlink::consts::NFQNL_CFG_CMD_UNBIND;
use crate::io::netlink::consts::NFQNL_COPY_PACKET;
use crate::io::netlink::consts::NFQNL_MSG_CONFIG;
use crate::io::netlink::consts::NFQNL_MSG_PACKET;
use crate::io::netlink::consts::NFQNL_MSG_VERDICT;
use crate::io::netlink::consts::NFQNL_MSG_VERDICT_BATCH;
use crate::io::netlink::consts::NLM_F_ACK;
use crate::io::netlink::consts::NLM_F_REQUEST;
use crate::io::netlink::consts::nfnl_type;
use crate::io::sys;
use crate::io::sys::SocketOption;

/// How a queue is configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueOptions {
    /// Packets the kernel holds for us before it drops (or, with `fail_open`, accepts)
    /// new ones (`NFQA_CFG_QUEUE_MAXLEN`; kernel default 1024).
    pub max_len: u32,
    /// Bytes of each packet copied to us; 0 means as much as possible (the kernel caps it
    /// at 65531). A packet longer than this arrives truncated ([`Packet::truncated`]).
    pub copy_range: u16,
    /// Accept packets instead of dropping them when the queue is full
    /// (`NFQA_CFG_F_FAIL_OPEN`). Such packets bypass us **uncounted**.
    pub fail_open: bool,
    /// Socket receive buffer in bytes (0 leaves the system default).
    pub rcvbuf: usize,
}

/// One bound queue.
#[derive(Debug)]
pub struct Queue {
    socket: Socket,
    number: u16,
    pending: VecDeque<Packet>,
    writer: Writer,
}

/// What to do with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueVerdict {
    /// Let it continue (`NF_ACCEPT`).
    Accept,
    /// Drop it (`NF_DROP`).
    Drop,
}

/// A queued packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// The kernel's id for the verdict.
    pub id: u32,
    /// The link-layer protocol (EtherType: 0x0800 IPv4, 0x86dd IPv6), or 0.
    pub hw_protocol: u16,
    /// The packet from its network header, at most `copy_range` bytes.
    pub payload: Vec<u8>,
    /// The packet's full length when the copy was truncated (`NFQA_CAP_LEN`).
    pub original_len: Option<u32>,
}

/// Why a queue could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// Another socket (another daemon, or an earlier instance still running) holds it.
    Busy {
        /// The queue number.
        queue: u16,
    },
    /// The socket could not be opened, or the kernel did not answer properly.
    Netlink(netlink::Error),
    /// The kernel refused the configuration.
    Refused {
        /// The queue number.
        queue: u16,
        /// What the kernel said.
        error: KernelError,
    },
}

/// True when `error` (from [`Queue::try_recv`]) says the kernel dropped packets because
/// our receive buffer was full (`ENOBUFS`, netlink(7)). Count it and keep receiving.
pub fn is_overrun(error: &io::Error) -> bool {
    error.raw_os_error() == Some(libc::ENOBUFS)
}

/// The kernel's own counters of one queue, from `/proc/net/netfilter/nfnetlink_queue` (of the
/// reader's network namespace). Both count packets the daemon never saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KernelCounters {
    /// Dropped because the queue held `--queue-maxlen` packets already (`queue_dropped`).
    /// With fail-open such packets are accepted unread instead, and nothing counts them.
    pub queue_full: u64,
    /// Dropped because our socket's receive buffer was full (`queue_user_dropped`; each
    /// such loss also reaches us as one `ENOBUFS`, [`is_overrun`]).
    pub socket_full: u64,
}

/// Where the kernel lists its queues and their counters.
const PROC_QUEUES: &str = "/proc/net/netfilter/nfnetlink_queue";

/// The kernel's counters of queue `number`; `Ok(None)` if it is not listed (not bound).
pub fn kernel_counters(number: u16) -> io::Result<Option<KernelCounters>> {
    Ok(parse_kernel_counters(
        &std::fs::read_to_string(PROC_QUEUES)?,
        number,
    ))
}

/// Read queue `number`'s line of `/proc/net/netfilter/nfnetlink_queue`: queue number, peer
/// port id, packets waiting, copy mode, copy range, queue_dropped, queue_user_dropped, id
/// sequence, 1 (net/netfilter/nfnetlink_queue.c, `seq_show`).
fn parse_kernel_counters(text: &str, number: u16) -> Option<KernelCounters> {
    text.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 8 || fields[0].parse::<u16>().ok()? != number {
            return None;
        }
        Some(KernelCounters {
            queue_full: fields[5].parse().ok()?,
            socket_full: fields[6].parse().ok()?,
        })
    })
}

impl Queue {
    /// Bind queue `number` and configure it per `options`.
    pub fn open(number: u16, options: &QueueOptions) -> Result<Self, OpenError> {
        let socket = Socket::open(RECEIVE_BUFFER).map_err(OpenError::Netlink)?;
        set_receive_buffer(&socket, options.rcvbuf);
        let mut queue = Self {
            socket,
            number,
            pending: VecDeque::new(),
            writer: Writer::new(),
        };
        queue.bind(options)?;
        Ok(queue)
    }

    /// Take the next queued packet without blocking; `Ok(None)` when none is waiting
    /// (wait with [`sys::wait_readable`] on [`AsFd::as_fd`]). An `ENOBUFS` error
    /// ([`is_overrun`]) means packets were lost; the queue remains usable.
    pub fn try_recv(&mut self) -> io::Result<Option<Packet>> {
        loop {
            if let Some(packet) = self.pending.pop_front() {
                return Ok(Some(packet));
            }
            let Some(datagram) = self.socket.recv()? else {
                return Ok(None);
            };
            for message in netlink::messages(datagram) {
                match message {
                    Ok(message) => file(message, &mut self.pending),
                    Err(malformed) => log::warn!("nfqueue {}: {malformed}", self.number),
                }
            }
        }
    }

    /// Give the verdict for packet `id`. No ACK is awaited; a refused verdict (unknown
    /// id) is logged when it comes back.
    pub fn verdict(&mut self, id: u32, verdict: QueueVerdict) -> io::Result<()> {
        let code = match verdict {
            QueueVerdict::Accept => NF_ACCEPT,
            QueueVerdict::Drop => NF_DROP,
        };
        self.send_verdict(id, code, None)
    }

    /// Accept every packet of this queue still waiting for its verdict whose id is at most
    /// `id`, in one message (`NFQNL_MSG_VERDICT_BATCH`). The caller must know that each of
    /// them is to be accepted as it is: the kernel releases them all.
    pub fn accept_through(&mut self, id: u32) -> io::Result<()> {
        let seq = self.socket.next_seq();
        let verdict = Verdict {
            kind: NFQNL_MSG_VERDICT_BATCH,
            id,
            code: NF_ACCEPT,
        };
        verdict_message(&mut self.writer, self.number, seq, verdict, None)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        self.socket.send(self.writer.as_bytes()).map_err(into_io)
    }

    /// Accept packet `id` with `payload` in place of its bytes (the whole packet from the
    /// network header; its checksums must be right, the kernel re-verifies them). Never
    /// do this for a [`Packet::truncated`] packet.
    pub fn accept_with_payload(&mut self, id: u32, payload: &[u8]) -> io::Result<()> {
        self.send_verdict(id, NF_ACCEPT, Some(payload))
    }

    /// The queue number.
    pub fn number(&self) -> u16 {
        self.number
    }

    /// Send the bind-and-configure message and wait for its ACK.
    fn bind(&mut self, options: &QueueOptions) -> Result<(), OpenError> {
        let seq = self.socket.next_seq();
        config_message(&mut self.writer, self.number, seq, Some(options))
            .map_err(OpenError::Netlink)?;
        let expect = Expect {
            acked: &[seq],
            fatal: &[],
        };
        let pending = &mut self.pending;
        let exchange = self
            .socket
            .exchange(self.writer.as_bytes(), expect, &mut |m| file(m, pending))
            .map_err(OpenError::Netlink)?;
        match exchange.outcomes.into_iter().next() {
            Some((_, Err(error))) => Err(OpenError::refused(self.number, error)),
            _ => Ok(()),
        }
    }

    fn send_verdict(&mut self, id: u32, code: u32, payload: Option<&[u8]>) -> io::Result<()> {
        let seq = self.socket.next_seq();
        let verdict = Verdict {
            kind: NFQNL_MSG_VERDICT,
            id,
            code,
        };
        verdict_message(&mut self.writer, self.number, seq, verdict, payload)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        self.socket.send(self.writer.as_bytes()).map_err(into_io)
    }
}

impl AsFd for Queue {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        // Closing the socket unbinds too (NETLINK_URELEASE); this makes it explicit.
        let seq = self.socket.next_seq();
        if config_message(&mut self.writer, self.number, seq, None).is_ok() {
            let _ = self.socket.send(self.writer.as_bytes());
        }
    }
}

impl Default for QueueOptions {
    fn default() -> Self {
        Self {
            max_len: 4096,
            copy_range: 0,
            fail_open: false,
            rcvbuf: 8 << 20,
        }
    }
}

impl Packet {
    /// True when only part of the packet was copied: do not rewrite it.
    pub fn truncated(&self) -> bool {
        self.original_len
            .is_some_and(|length| usize::try_from(length).map_or(true, |l| l > self.payload.len()))
    }
}

impl OpenError {
    fn refused(queue: u16, error: KernelError) -> Self {
        // nfqnl_recv_config: a queue bound by another port id answers EPERM; binding it
        // twice from one socket answers EBUSY.
        if error.errno == libc::EBUSY || (error.errno == libc::EPERM && is_root()) {
            return Self::Busy { queue };
        }
        Self::Refused { queue, error }
    }
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Busy { queue } => write!(
                f,
                "NFQUEUE {queue} is busy: another process (another ftp-alg, or an NFQUEUE \
                 program) has bound it; stop that process or use another queue number"
            ),
            Self::Netlink(error) => write!(f, "cannot open an NFQUEUE socket: {error}"),
            Self::Refused { queue, error } if error.errno == libc::EPERM => write!(
                f,
                "cannot bind NFQUEUE {queue}: permission denied; run as root or with \
                 CAP_NET_ADMIN"
            ),
            Self::Refused { queue, error } => {
                write!(f, "the kernel refused to bind NFQUEUE {queue}: {error}")
            }
        }
    }
}

impl std::error::Error for OpenError {}

/// Our copy of one datagram: the largest packet copy (65531) plus headers and metadata.
const RECEIVE_BUFFER: usize = 65536 + 8192;

/// Raise the kernel receive buffer, forcing past `rmem_max` when allowed.
fn set_receive_buffer(socket: &Socket, bytes: usize) {
    if bytes == 0 {
        return;
    }
    let value = i32::try_from(bytes / 2).unwrap_or(i32::MAX / 2); // the kernel doubles it
    let fd = socket.as_fd();
    if sys::set_option(fd, SocketOption::ReceiveBufferForce, value).is_err() {
        if let Err(error) = sys::set_option(fd, SocketOption::ReceiveBuffer, value) {
            log::warn!("nfqueue: cannot set the receive buffer to {bytes} bytes: {error}");
        }
    }
}

/// Queue a packet message; log anything else (a refused verdict, a malformed packet).
fn file(message: Message<'_>, pending: &mut VecDeque<Packet>) {
    match parse_packet(message) {
        Ok(Some(packet)) => pending.push_back(packet),
        Ok(None) => match message.outcome() {
            Ok(Some(Err(error))) => log::warn!("nfqueue: the kernel refused a verdict: {error}"),
            Ok(_) => {}
            Err(malformed) => log::warn!("nfqueue: {malformed}"),
        },
        Err(malformed) => log::warn!("nfqueue: packet dropped from view: {malformed}"),
    }
}

/// A `NFQNL_MSG_PACKET` as a [`Packet`]; `None` for any other message.
fn parse_packet(message: Message<'_>) -> Result<Option<Packet>, Malformed> {
    if message.kind != nfnl_type(NFNL_SUBSYS_QUEUE, NFQNL_MSG_PACKET) {
        return Ok(None);
    }
    let (_, attributes) = message.netfilter()?;
    let mut header = None;
    let mut packet = Packet {
        id: 0,
        hw_protocol: 0,
        payload: Vec::new(),
        original_len: None,
    };
    for attribute in netlink::attributes(attributes) {
        let attribute = attribute?;
        match attribute.kind {
            NFQA_PACKET_HDR => header = Some(attribute.payload),
            NFQA_PAYLOAD => packet.payload = attribute.payload.to_vec(),
            NFQA_CAP_LEN => packet.original_len = Some(attribute.be32("NFQA_CAP_LEN")?),
            _ => {}
        }
    }
    // struct nfqnl_msg_packet_hdr (packed): be32 packet_id, be16 hw_protocol, u8 hook.
    let header = header.ok_or(Malformed("NFQA_PACKET_HDR (missing)"))?;
    let header = header.get(..6).ok_or(Malformed("NFQA_PACKET_HDR"))?;
    packet.id = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    packet.hw_protocol = u16::from_be_bytes([header[4], header[5]]);
    Ok(Some(packet))
}

/// Write the config message: bind and configure (`Some(options)`) or unbind (`None`).
fn config_message(
    w: &mut Writer,
    queue: u16,
    seq: u32,
    options: Option<&QueueOptions>,
) -> Result<(), netlink::Error> {
    w.clear();
    let flags = NLM_F_REQUEST | if options.is_some() { NLM_F_ACK } else { 0 };
    let message = w.begin(Header {
        kind: nfnl_type(NFNL_SUBSYS_QUEUE, NFQNL_MSG_CONFIG),
        flags,
        seq,
        family: NFPROTO_UNSPEC,
        res_id: queue,
    });
    // struct nfqnl_msg_config_cmd: u8 command, u8 pad, be16 pf (unused since Linux 3.8).
    let command = if options.is_some() {
        NFQNL_CFG_CMD_BIND
    } else {
        NFQNL_CFG_CMD_UNBIND
    };
    w.attr(NFQA_CFG_CMD, &[command, 0, 0, 0])?;
    if let Some(options) = options {
        // struct nfqnl_msg_config_params (packed): be32 copy_range, u8 copy_mode.
        let mut params = u32::from(options.copy_range).to_be_bytes().to_vec();
        params.push(NFQNL_COPY_PACKET);
        w.attr(NFQA_CFG_PARAMS, &params)?;
        w.attr_be32(NFQA_CFG_QUEUE_MAXLEN, options.max_len)?;
        let flags = if options.fail_open {
            NFQA_CFG_F_FAIL_OPEN
        } else {
            0
        };
        w.attr_be32(NFQA_CFG_MASK, NFQA_CFG_F_FAIL_OPEN | NFQA_CFG_F_GSO)?;
        w.attr_be32(NFQA_CFG_FLAGS, flags)?;
    }
    w.finish(message)
}

/// A verdict message's kind (`NFQNL_MSG_VERDICT` or `NFQNL_MSG_VERDICT_BATCH`), packet id
/// and verdict code.
#[derive(Debug, Clone, Copy)]
struct Verdict {
    kind: u16,
    id: u32,
    code: u32,
}

/// Write a verdict message, with an optional new payload.
fn verdict_message(
    w: &mut Writer,
    queue: u16,
    seq: u32,
    Verdict { kind, id, code }: Verdict,
    payload: Option<&[u8]>,
) -> Result<(), netlink::Error> {
    w.clear();
    let message = w.begin(Header {
        kind: nfnl_type(NFNL_SUBSYS_QUEUE, kind),
        flags: NLM_F_REQUEST,
        seq,
        family: NFPROTO_UNSPEC,
        res_id: queue,
    });
    // struct nfqnl_msg_verdict_hdr: be32 verdict, be32 id.
    let mut header = [0; 8];
    header[..4].copy_from_slice(&code.to_be_bytes());
    header[4..].copy_from_slice(&id.to_be_bytes());
    w.attr(NFQA_VERDICT_HDR, &header)?;
    if let Some(payload) = payload {
        w.attr(NFQA_PAYLOAD, payload)?;
    }
    w.finish(message)
}

fn into_io(error: netlink::Error) -> io::Error {
    match error {
        netlink::Error::Io { source, .. } => source,
        other => io::Error::other(other),
    }
}

/// Whether we run as root (then EPERM from a bind means "someone else has it").
fn is_root() -> bool {
    sys::effective_uid() == 0
}

#[cfg(test)]
mod tests;
