//! Conntrack lookups over ctnetlink: how the gateway's own NAT rules translated one control
//! connection.
//!
//! Owns: [`Conntrack`] (one `NETLINK_NETFILTER` socket per worker, opened at start and again
//! after a failed exchange, each answer awaited at most the answer timeout), the
//! `IPCTNL_MSG_CT_GET` request, the reading of its answer ([`CtTuples`]), and
//! [`ConntrackError`]. It does not own what the tuples mean for FTP: that is
//! [`Translation::from_tuples`].
//!
//! Messages (include/uapi/linux/netfilter/nfnetlink_conntrack.h; the kernel side is
//! `ctnetlink_get_conntrack` in net/netfilter/nf_conntrack_netlink.c):
//! - request: `(NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET` with
//!   `NLM_F_REQUEST | NLM_F_ACK`, nfgenmsg family `AF_INET`/`AF_INET6`, and one tuple,
//!   `CTA_TUPLE_ORIG` or `CTA_TUPLE_REPLY` `{ CTA_TUPLE_IP { CTA_IP_V4_SRC, CTA_IP_V4_DST }
//!   (or `CTA_IP_V6_*`), CTA_TUPLE_PROTO { CTA_PROTO_NUM 6, CTA_PROTO_SRC_PORT be16,
//!   CTA_PROTO_DST_PORT be16 } }`, in conntrack zone 0;
//! - answer: one `IPCTNL_MSG_CT_NEW` carrying the entry (`CTA_TUPLE_ORIG`,
//!   `CTA_TUPLE_REPLY`, status, timeout, ...), then the ACK; or ENOENT when no entry has
//!   that tuple in either direction (the kernel looks it up in the one hash that holds both
//!   directions of every entry, `nf_conntrack_find_get`).
//!
//! Which tuple: a queue in FORWARD sees packets after DNAT and before SNAT. For a client
//! behind SNAT or masquerade, `client -> server` as the queue sees it is the entry's
//! original tuple (only the reply tuple names the public address). For a server behind
//! DNAT, the original tuple names the public address, and `server -> client` is the reply
//! tuple. So [`Conntrack::lookup`] asks for `client -> server` as the original tuple first,
//! and on ENOENT for `server -> client` as the reply tuple.

use std::fmt;
use std::net::IpAddr;
use std::net::Ipv4Addr;
use std::net::Ipv6Addr;
use std::net::SocketAddr;
use std::time::Duration;

use crate::flow::Control;
use crate::io::backend::DEFAULT_ANSWER_TIMEOUT;
use crate::io::netlink;
use crate::io::netlink::Attribute;
use crate::io::netlink::Expect;
use crate::io::netlink::Header;
use crate::io::netlink::KernelError;
use crate::io::netlink::Link;
use crate::io::netlink::Malformed;
use crate::io::netlink::Reply;
use crate::io::netlink::Writer;
use crate::io::netlink::consts::CTA_IP_V4_DST;
use crate::io::netlink::consts::CTA_IP_V4_SRC;
use crate::io::netlink::consts::CTA_IP_V6_DST;
use crate::io::netlink::consts::CTA_IP_V6_SRC;
use crate::io::netlink::consts::CTA_PROTO_DST_PORT;
use crate::io::netlink::consts::CTA_PROTO_NUM;
use crate::io::netlink::consts::CTA_PROTO_SRC_PORT;
use crate::io::netlink::consts::CTA_TUPLE_IP;
use crate::io::netlink::consts::CTA_TUPLE_ORIG;
use crate::io::netlink::consts::CTA_TUPLE_PROTO;
use crate::io::netlink::consts::CTA_TUPLE_REPLY;
use crate::io::netlink::consts::IPCTNL_MSG_CT_GET;
use crate::io::netlink::consts::IPCTNL_MSG_CT_NEW;
use crate::io::netlink::consts::NFNL_SUBSYS_CTNETLINK;
use crate::io::netlink::consts::NFPROTO_IPV4;
use crate::io::netlink::consts::NFPROTO_IPV6;
use crate::io::netlink::consts::NLM_F_ACK;
use crate::io::netlink::consts::NLM_F_REQUEST;
use crate::io::netlink::consts::nfnl_type;
use crate::io::netlink::find;
use crate::nat::Translation;

/// A ctnetlink connection that looks up conntrack entries.
#[derive(Debug)]
pub struct Conntrack {
    link: Link,
    writer: Writer,
}

/// The addresses of one conntrack entry's two tuples, as the kernel holds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CtTuples {
    /// `CTA_TUPLE_ORIG`: (source, destination) of the connection's first packet as it
    /// entered the gateway.
    pub original: (IpAddr, IpAddr),
    /// `CTA_TUPLE_REPLY`: (source, destination) of the answer as the answering host sends it.
    pub reply: (IpAddr, IpAddr),
}

/// Why a conntrack lookup failed. An entry that does not exist is not an error
/// ([`Conntrack::lookup`] answers `None`).
#[derive(Debug)]
pub enum ConntrackError {
    /// The two endpoints are of different families (caller misuse); nothing was sent.
    MixedFamily {
        /// The client endpoint asked about.
        client: SocketAddr,
        /// The server endpoint asked about.
        server: SocketAddr,
    },
    /// The exchange failed: no answer within the answer timeout ([`is_timeout`]), an I/O
    /// error, or an answer that could not be read.
    ///
    /// [`is_timeout`]: Self::is_timeout
    Netlink(netlink::Error),
    /// The kernel said EPERM: the daemon lacks `CAP_NET_ADMIN`.
    PermissionDenied,
    /// The kernel refused the lookup for another reason.
    Refused(KernelError),
    /// The netlink socket could not be opened.
    Socket(netlink::Error),
}

impl Conntrack {
    /// Open the socket now (so that a daemon that cannot look up fails at start), waiting at
    /// most [`DEFAULT_ANSWER_TIMEOUT`] for each answer.
    pub fn open() -> Result<Self, ConntrackError> {
        let mut conntrack = Self::unopened();
        conntrack.link.socket().map_err(ConntrackError::Socket)?;
        Ok(conntrack)
    }

    /// Wait at most `timeout` for the kernel's answers; past it a lookup fails with
    /// [`ConntrackError::Netlink`] ([`ConntrackError::is_timeout`]).
    pub fn with_answer_timeout(mut self, timeout: Duration) -> Self {
        self.link.set_timeout(timeout);
        self
    }

    /// The conntrack entry of the TCP connection between `client` and `server`, the control
    /// connection's endpoints as a FORWARD-hook queue sees them (after DNAT, before SNAT);
    /// `None` when conntrack has no such entry. At most two exchanges: the original tuple
    /// `client -> server`, then the reply tuple `server -> client`.
    pub fn lookup(
        &mut self,
        client: SocketAddr,
        server: SocketAddr,
    ) -> Result<Option<CtTuples>, ConntrackError> {
        if client.is_ipv4() != server.is_ipv4() {
            return Err(ConntrackError::MixedFamily { client, server });
        }
        if let Some(found) = self.get(CTA_TUPLE_ORIG, client, server)? {
            return Ok(Some(found));
        }
        self.get(CTA_TUPLE_REPLY, server, client)
    }

    /// How the gateway translated `control`: [`Translation::NONE`] when conntrack has no
    /// entry for it.
    pub fn translation(&mut self, control: &Control) -> Result<Translation, ConntrackError> {
        let Some(tuples) = self.lookup(control.client, control.server)? else {
            return Ok(Translation::NONE);
        };
        let tuples = tuples.oriented(control.client.ip());
        Ok(Translation::from_tuples(
            control,
            tuples.original,
            tuples.reply,
        ))
    }

    /// A handle whose socket is opened on first use.
    fn unopened() -> Self {
        Self {
            link: Link::new(DEFAULT_ANSWER_TIMEOUT),
            writer: Writer::new(),
        }
    }

    /// One GET by the tuple `src -> dst` given as `direction`; `None` on ENOENT.
    fn get(
        &mut self,
        direction: u16,
        src: SocketAddr,
        dst: SocketAddr,
    ) -> Result<Option<CtTuples>, ConntrackError> {
        let seq = self
            .link
            .socket()
            .map_err(ConntrackError::Socket)?
            .next_seq();
        self.writer.clear();
        get_message(&mut self.writer, seq, direction, src, dst).map_err(ConntrackError::Netlink)?;
        let expect = Expect {
            acked: &[seq],
            fatal: &[],
        };
        let exchange = self
            .link
            .exchange(self.writer.as_bytes(), expect)
            .map_err(ConntrackError::Netlink)?;
        match exchange.outcomes.into_iter().next() {
            Some((_, Err(refusal))) if refusal.errno == libc::ENOENT => return Ok(None),
            Some((_, Err(refusal))) => return Err(ConntrackError::refused(refusal)),
            _ => {}
        }
        let answer = exchange.replies.first();
        let answer = answer.ok_or(Malformed("IPCTNL_MSG_CT_GET answer (missing)"));
        let tuples = answer.and_then(parse_answer);
        tuples
            .map(Some)
            .map_err(|e| ConntrackError::Netlink(e.into()))
    }
}

impl CtTuples {
    /// The tuples with `original` in the client's direction. An entry the server side opened
    /// (conntrack picked the connection up mid-stream from one of the server's segments,
    /// `nf_conntrack_tcp_loose`) has them the other way round: its reply tuple starts at
    /// the client.
    pub fn oriented(self, client: IpAddr) -> Self {
        if self.original.0 != client && self.reply.0 == client {
            Self {
                original: self.reply,
                reply: self.original,
            }
        } else {
            self
        }
    }
}

impl ConntrackError {
    /// True when the kernel did not answer in time.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Netlink(netlink::Error::Timeout(_)))
    }

    /// A kernel refusal: EPERM is [`PermissionDenied`](Self::PermissionDenied).
    fn refused(refusal: KernelError) -> Self {
        if refusal.errno == libc::EPERM {
            Self::PermissionDenied
        } else {
            Self::Refused(refusal)
        }
    }
}

impl fmt::Display for ConntrackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MixedFamily { client, server } => write!(
                f,
                "conntrack lookup of {client} -> {server} mixes IPv4 and IPv6: nothing was \
                 asked (a bug in the caller)"
            ),
            Self::Netlink(error) => write!(f, "conntrack lookup: {error}"),
            Self::PermissionDenied => f.write_str(
                "conntrack lookup: permission denied by the kernel: run as root or with \
                 CAP_NET_ADMIN in the firewall's network namespace",
            ),
            Self::Refused(refusal) if refusal.errno == libc::EINVAL => write!(
                f,
                "the kernel refused a conntrack lookup: {refusal}; is ctnetlink \
                 (nf_conntrack_netlink) available?"
            ),
            Self::Refused(refusal) => write!(f, "the kernel refused a conntrack lookup: {refusal}"),
            Self::Socket(error) => write!(
                f,
                "cannot open a netfilter netlink socket for conntrack lookups ({error}): is \
                 this Linux with nfnetlink, and are we root?"
            ),
        }
    }
}

impl std::error::Error for ConntrackError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Netlink(error) | Self::Socket(error) => Some(error),
            Self::Refused(refusal) => Some(refusal),
            Self::MixedFamily { .. } | Self::PermissionDenied => None,
        }
    }
}

/// A GET request naming the TCP tuple `src -> dst` as `direction` (`CTA_TUPLE_ORIG` or
/// `CTA_TUPLE_REPLY`); `src` and `dst` are of one family.
fn get_message(
    w: &mut Writer,
    seq: u32,
    direction: u16,
    src: SocketAddr,
    dst: SocketAddr,
) -> Result<(), netlink::Error> {
    let message = w.begin(Header {
        kind: nfnl_type(NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_GET),
        flags: NLM_F_REQUEST | NLM_F_ACK,
        seq,
        family: if src.is_ipv4() {
            NFPROTO_IPV4
        } else {
            NFPROTO_IPV6
        },
        res_id: 0,
    });
    let tuple = w.nest(direction);
    let ip = w.nest(CTA_TUPLE_IP);
    address(w, (CTA_IP_V4_SRC, CTA_IP_V6_SRC), src.ip())?;
    address(w, (CTA_IP_V4_DST, CTA_IP_V6_DST), dst.ip())?;
    w.end_nest(ip)?;
    let proto = w.nest(CTA_TUPLE_PROTO);
    w.attr_u8(CTA_PROTO_NUM, TCP)?;
    w.attr_be16(CTA_PROTO_SRC_PORT, src.port())?;
    w.attr_be16(CTA_PROTO_DST_PORT, dst.port())?;
    w.end_nest(proto)?;
    w.end_nest(tuple)?;
    w.finish(message)
}

/// One address attribute: the IPv4 or the IPv6 kind of `kinds`.
fn address(w: &mut Writer, (v4, v6): (u16, u16), address: IpAddr) -> Result<(), netlink::Error> {
    match address {
        IpAddr::V4(a) => w.attr(v4, &a.octets()),
        IpAddr::V6(a) => w.attr(v6, &a.octets()),
    }
}

/// The tuples of a GET answer: an `IPCTNL_MSG_CT_NEW` message.
fn parse_answer(answer: &Reply) -> Result<CtTuples, Malformed> {
    if answer.kind != nfnl_type(NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_NEW) {
        return Err(Malformed("ctnetlink answer type"));
    }
    parse_entry(&answer.payload)
}

/// The tuples of a conntrack entry's payload (`nfgenmsg` + attributes).
fn parse_entry(payload: &[u8]) -> Result<CtTuples, Malformed> {
    let (_, attributes) = payload.split_at_checked(4).ok_or(Malformed("nfgenmsg"))?;
    let original = find(attributes, CTA_TUPLE_ORIG)?;
    let original = original.ok_or(Malformed("CTA_TUPLE_ORIG (missing)"))?;
    let reply = find(attributes, CTA_TUPLE_REPLY)?;
    let reply = reply.ok_or(Malformed("CTA_TUPLE_REPLY (missing)"))?;
    Ok(CtTuples {
        original: tuple_addresses(&original)?,
        reply: tuple_addresses(&reply)?,
    })
}

/// (source, destination) of one tuple attribute.
fn tuple_addresses(tuple: &Attribute<'_>) -> Result<(IpAddr, IpAddr), Malformed> {
    let ip = find(tuple.payload, CTA_TUPLE_IP)?;
    let ip = ip.ok_or(Malformed("CTA_TUPLE_IP (missing)"))?;
    let (mut src, mut dst) = (None, None);
    for attribute in ip.children() {
        let attribute = attribute?;
        match attribute.kind {
            CTA_IP_V4_SRC => src = Some(v4(&attribute, "CTA_IP_V4_SRC")?),
            CTA_IP_V4_DST => dst = Some(v4(&attribute, "CTA_IP_V4_DST")?),
            CTA_IP_V6_SRC => src = Some(v6(&attribute, "CTA_IP_V6_SRC")?),
            CTA_IP_V6_DST => dst = Some(v6(&attribute, "CTA_IP_V6_DST")?),
            _ => {}
        }
    }
    match (src, dst) {
        (Some(src), Some(dst)) if src.is_ipv4() == dst.is_ipv4() => Ok((src, dst)),
        _ => Err(Malformed("CTA_TUPLE_IP addresses")),
    }
}

fn v4(attribute: &Attribute<'_>, what: &'static str) -> Result<IpAddr, Malformed> {
    let octets: [u8; 4] = attribute.payload.try_into().map_err(|_| Malformed(what))?;
    Ok(IpAddr::V4(Ipv4Addr::from(octets)))
}

fn v6(attribute: &Attribute<'_>, what: &'static str) -> Result<IpAddr, Malformed> {
    let octets: [u8; 16] = attribute.payload.try_into().map_err(|_| Malformed(what))?;
    Ok(IpAddr::V6(Ipv6Addr::from(octets)))
}

/// `IPPROTO_TCP`.
const TCP: u8 = 6;

#[cfg(test)]
mod tests;
