//! The ipset backend: elements of two `hash:ip,port,ip` sets with timeouts, so that
//! `-m set --match-set NAME src,dst,dst` matches a data connection's SYN.
//!
//! Owns the ipset messages (include/uapi/linux/netfilter/ipset/ip_set.h; the kernel side
//! is net/netfilter/ipset/ip_set_core.c and ip_set_hash_ipportip.c; measured in
//! kernel-interfaces.md §2.2):
//! - `IPSET_CMD_ADD`/`IPSET_CMD_DEL`: `PROTOCOL`, `SETNAME`, `DATA { IP { IPADDR_* },
//!   PORT be16, PROTO 6, IP2 { IPADDR_* }, TIMEOUT be32 s }`; addresses, port and timeout
//!   carry `NLA_F_NET_BYTEORDER`, nests `NLA_F_NESTED` (the kernel checks both);
//! - element = (data source address, tcp:announced port, announced address);
//! - ipset has no transactions: all messages go in one `sendto`, each with its own ACK.
//!   Without `NLM_F_EXCL` the kernel sets `IPSET_FLAG_EXIST`, so a re-add refreshes the
//!   timeout and deleting a missing element succeeds (`IPSET_ERR_EXIST` is still
//!   tolerated, for kernels that report it);
//! - check: `IPSET_CMD_HEADER`, whose reply names the type and family;
//! - NAT: an ipset cannot express a DNAT map, so an element with a NAT mapping is refused
//!   ([`BackendError::NatUnsupported`]) before anything is sent.

use std::net::IpAddr;
use std::time::Duration;

use crate::io::backend::Backend;
use crate::io::backend::BackendError;
use crate::io::backend::DEFAULT_ANSWER_TIMEOUT;
use crate::io::backend::Element;
use crate::io::backend::split_families;
use crate::io::netlink;
use crate::io::netlink::Expect;
use crate::io::netlink::Header;
use crate::io::netlink::KernelError;
use crate::io::netlink::Link;
use crate::io::netlink::Writer;
use crate::io::netlink::consts::IPSET_ATTR_DATA;
use crate::io::netlink::consts::IPSET_ATTR_FAMILY;
use crate::io::netlink::consts::IPSET_ATTR_IP;
use crate::io::netlink::consts::IPSET_ATTR_IP2;
use crate::io::netlink::consts::IPSET_ATTR_IPADDR_IPV4;
use crate::io::netlink::consts::IPSET_ATTR_IPADDR_IPV6;
use crate::io::netlink::consts::IPSET_ATTR_PORT;
use crate::io::netlink::consts::IPSET_ATTR_PROTO;
use crate::io::netlink::consts::IPSET_ATTR_PROTOCOL;
use crate::io::netlink::consts::IPSET_ATTR_SETNAME;
use crate::io::netlink::consts::IPSET_ATTR_TIMEOUT;
use crate::io::netlink::consts::IPSET_ATTR_TYPENAME;
use crate::io::netlink::consts::IPSET_CMD_ADD;
use crate::io::netlink::consts::IPSET_CMD_DEL;
use crate::io::netlink::consts::IPSET_CMD_HEADER;
use crate::io::netlink::consts::IPSET_ERR_EXIST;
use crate::io::netlink::consts::IPSET_ERR_HASH_FULL;
use crate::io::netlink::consts::IPSET_ERR_INVALID_FAMILY;
use crate::io::netlink::consts::IPSET_ERR_PRIVATE;
use crate::io::netlink::consts::IPSET_ERR_PROTOCOL;
use crate::io::netlink::consts::IPSET_ERR_TIMEOUT;
use crate::io::netlink::consts::IPSET_PROTOCOL;
use crate::io::netlink::consts::NFNL_SUBSYS_IPSET;
use crate::io::netlink::consts::NFPROTO_IPV4;
use crate::io::netlink::consts::NFPROTO_IPV6;
use crate::io::netlink::consts::NLA_F_NET_BYTEORDER;
use crate::io::netlink::consts::NLM_F_ACK;
use crate::io::netlink::consts::NLM_F_REQUEST;
use crate::io::netlink::consts::nfnl_type;

/// Expectations in two ipsets of type `hash:ip,port,ip` (`family inet` and `inet6`,
/// created with `timeout`).
#[derive(Debug)]
pub struct IpsetBackend {
    sets: [String; 2],
    link: Link,
    writer: Writer,
}

impl IpsetBackend {
    /// Use `set4` for IPv4 and `set6` for IPv6, waiting at most [`DEFAULT_ANSWER_TIMEOUT`]
    /// for the kernel. Nothing is opened until the first call.
    pub fn new(set4: &str, set6: &str) -> Self {
        Self {
            sets: [set4.to_owned(), set6.to_owned()],
            link: Link::new(DEFAULT_ANSWER_TIMEOUT),
            writer: Writer::new(),
        }
    }

    /// Wait at most `timeout` for the kernel's answers; past it a call fails with
    /// [`BackendError::Timeout`].
    pub fn with_answer_timeout(mut self, timeout: Duration) -> Self {
        self.link.set_timeout(timeout);
        self
    }

    /// Send one ADD or DEL per element in one datagram and collect the refusals.
    fn transact(&mut self, command: u16, elements: &[Element]) -> Result<(), BackendError> {
        if let Some(element) = elements.iter().find(|e| e.nat.is_some()) {
            return Err(BackendError::NatUnsupported {
                backend: self.describe(),
                key: element.key,
                fix: "an ipset cannot hold a DNAT map: use the nftables backend for NAT".to_owned(),
            });
        }
        let (v4, v6) = split_families(elements)?;
        let socket = self.link.socket().map_err(BackendError::Socket)?;
        self.writer.clear();
        let mut sent = Vec::new();
        for (index, group) in [v4, v6].iter().enumerate() {
            for element in group {
                let seq = socket.next_seq();
                element_message(&mut self.writer, command, seq, &self.sets[index], element)
                    .map_err(|e| netlink_error(&self.sets, index, e))?;
                sent.push((seq, index));
            }
        }
        if sent.is_empty() {
            return Ok(());
        }
        let acked: Vec<u32> = sent.iter().map(|(seq, _)| *seq).collect();
        let expect = Expect {
            acked: &acked,
            fatal: &[],
        };
        let exchange = self
            .link
            .exchange(self.writer.as_bytes(), expect)
            .map_err(|e| netlink_error(&self.sets, 0, e))?;
        for (seq, outcome) in exchange.outcomes {
            let Err(refusal) = outcome else { continue };
            if command == IPSET_CMD_DEL && refusal.errno == IPSET_ERR_EXIST {
                continue;
            }
            let index = sent.iter().find(|(s, _)| *s == seq).map_or(0, |(_, i)| *i);
            return Err(refused(&self.sets, index, command, refusal));
        }
        Ok(())
    }

    /// HEADER one set: it must exist, be `hash:ip,port,ip`, and have the right family.
    fn check_set(&mut self, index: usize) -> Result<(), BackendError> {
        let seq = self.link.socket().map_err(BackendError::Socket)?.next_seq();
        header_message(&mut self.writer, seq, &self.sets[index])
            .map_err(|e| netlink_error(&self.sets, index, e))?;
        let expect = Expect {
            acked: &[seq],
            fatal: &[],
        };
        let exchange = self
            .link
            .exchange(self.writer.as_bytes(), expect)
            .map_err(|e| netlink_error(&self.sets, index, e))?;
        if let Some((_, Err(refusal))) = exchange.outcomes.into_iter().next() {
            return Err(refused(&self.sets, index, IPSET_CMD_HEADER, refusal));
        }
        let missing = netlink::Malformed("IPSET_CMD_HEADER reply (missing)");
        let reply = exchange.replies.first().ok_or(missing);
        let header = reply.and_then(|reply| parse_header(&reply.payload));
        let (type_name, family) = header.map_err(|e| netlink_error(&self.sets, index, e.into()))?;
        judge_header(&self.sets, index, &type_name, family)
    }
}

impl Backend for IpsetBackend {
    fn describe(&self) -> String {
        format!(
            "ipset sets {}/{} (hash:ip,port,ip)",
            self.sets[0], self.sets[1]
        )
    }

    fn check(&mut self) -> Result<(), BackendError> {
        self.check_set(0)?;
        self.check_set(1)
    }

    fn install(&mut self, elements: &[Element]) -> Result<(), BackendError> {
        self.transact(IPSET_CMD_ADD, elements)
    }

    fn remove(&mut self, elements: &[Element]) -> Result<(), BackendError> {
        self.transact(IPSET_CMD_DEL, elements)
    }
}

/// One ADD or DEL message.
fn element_message(
    w: &mut Writer,
    command: u16,
    seq: u32,
    set: &str,
    element: &Element,
) -> Result<(), netlink::Error> {
    let family = if element.key.dst.is_ipv4() {
        NFPROTO_IPV4
    } else {
        NFPROTO_IPV6
    };
    let message = w.begin(Header {
        kind: nfnl_type(NFNL_SUBSYS_IPSET, command),
        flags: NLM_F_REQUEST | NLM_F_ACK,
        seq,
        family,
        res_id: 0,
    });
    w.attr_u8(IPSET_ATTR_PROTOCOL, IPSET_PROTOCOL)?;
    w.attr_str(IPSET_ATTR_SETNAME, set)?;
    let data = w.nest(IPSET_ATTR_DATA);
    address(w, IPSET_ATTR_IP, element.key.src)?;
    w.attr_be16(
        IPSET_ATTR_PORT | NLA_F_NET_BYTEORDER,
        element.key.dport.get(),
    )?;
    w.attr_u8(IPSET_ATTR_PROTO, TCP)?;
    address(w, IPSET_ATTR_IP2, element.key.dst)?;
    if command == IPSET_CMD_ADD {
        w.attr_be32(IPSET_ATTR_TIMEOUT | NLA_F_NET_BYTEORDER, seconds(element))?;
    }
    w.end_nest(data)?;
    w.finish(message)
}

/// A nested address attribute.
fn address(w: &mut Writer, kind: u16, address: IpAddr) -> Result<(), netlink::Error> {
    let nest = w.nest(kind);
    match address {
        IpAddr::V4(a) => w.attr(IPSET_ATTR_IPADDR_IPV4 | NLA_F_NET_BYTEORDER, &a.octets())?,
        IpAddr::V6(a) => w.attr(IPSET_ATTR_IPADDR_IPV6 | NLA_F_NET_BYTEORDER, &a.octets())?,
    }
    w.end_nest(nest)
}

/// The element's timeout in whole seconds, rounded up, at least 1, at most what the
/// kernel accepts (`IPSET_MAX_TIMEOUT`).
fn seconds(element: &Element) -> u32 {
    let secs = element.timeout.as_nanos().div_ceil(1_000_000_000);
    u32::try_from(secs)
        .unwrap_or(u32::MAX)
        .clamp(1, MAX_TIMEOUT)
}

/// A HEADER request.
fn header_message(w: &mut Writer, seq: u32, set: &str) -> Result<(), netlink::Error> {
    w.clear();
    let message = w.begin(Header {
        kind: nfnl_type(NFNL_SUBSYS_IPSET, IPSET_CMD_HEADER),
        flags: NLM_F_REQUEST | NLM_F_ACK,
        seq,
        family: NFPROTO_IPV4,
        res_id: 0,
    });
    w.attr_u8(IPSET_ATTR_PROTOCOL, IPSET_PROTOCOL)?;
    w.attr_str(IPSET_ATTR_SETNAME, set)?;
    w.finish(message)
}

/// The type name and family from a HEADER reply payload.
fn parse_header(payload: &[u8]) -> Result<(String, u8), netlink::Malformed> {
    let (_, attributes) = payload
        .split_at_checked(4)
        .ok_or(netlink::Malformed("nfgenmsg"))?;
    let mut type_name = String::new();
    let mut family = 0;
    for attribute in netlink::attributes(attributes) {
        let attribute = attribute?;
        match attribute.kind {
            IPSET_ATTR_TYPENAME => type_name = attribute.string(),
            IPSET_ATTR_FAMILY => family = attribute.u8("IPSET_ATTR_FAMILY")?,
            _ => {}
        }
    }
    Ok((type_name, family))
}

/// Whether set `index` has our type and family.
fn judge_header(
    sets: &[String; 2],
    index: usize,
    type_name: &str,
    family: u8,
) -> Result<(), BackendError> {
    let want_family = [NFPROTO_IPV4, NFPROTO_IPV6][index];
    let problem = if type_name != TYPE_NAME {
        format!("has type {type_name}, not {TYPE_NAME}")
    } else if family != want_family {
        format!("has the wrong family (want {})", FAMILY_NAMES[index])
    } else {
        return Ok(());
    };
    Err(BackendError::WrongSet {
        set: set_name(sets, index),
        problem,
        fix: format!("recreate it: {}", create_command(sets, index)),
    })
}

/// A kernel refusal as a [`BackendError`].
fn refused(sets: &[String; 2], index: usize, command: u16, refusal: KernelError) -> BackendError {
    let set = set_name(sets, index);
    let fix = || format!("create it: {}", create_command(sets, index));
    let action = match command {
        IPSET_CMD_ADD => "add",
        IPSET_CMD_DEL => "remove",
        _ => "inspect",
    };
    match refusal.errno {
        libc::ENOENT => BackendError::MissingSet { set, fix: fix() },
        libc::EPERM => BackendError::PermissionDenied { set },
        IPSET_ERR_HASH_FULL => BackendError::SetFull { set },
        IPSET_ERR_TIMEOUT => BackendError::WrongSet {
            set,
            problem: "was created without `timeout`, so its elements cannot expire".to_owned(),
            fix: format!("recreate it: {}", create_command(sets, index)),
        },
        errno => BackendError::Refused {
            set,
            action,
            reason: reason(errno, &refusal),
        },
    }
}

/// An ipset-private errno spelled out (libipset's messages), or the OS text.
fn reason(errno: i32, refusal: &KernelError) -> String {
    match errno {
        IPSET_ERR_PROTOCOL => "the kernel speaks another ipset protocol version".to_owned(),
        IPSET_ERR_INVALID_FAMILY => "the set has the wrong family".to_owned(),
        e if e >= IPSET_ERR_PRIVATE => format!("ipset error {e} (see ipset/ip_set.h)"),
        _ => refusal.to_string(),
    }
}

fn netlink_error(sets: &[String; 2], index: usize, error: netlink::Error) -> BackendError {
    BackendError::netlink(set_name(sets, index), error)
}

fn set_name(sets: &[String; 2], index: usize) -> String {
    format!("ipset {}", sets[index])
}

/// The command that creates set `index` as we need it.
fn create_command(sets: &[String; 2], index: usize) -> String {
    format!(
        "`ipset create {} {TYPE_NAME} family {} timeout 30`",
        sets[index], FAMILY_NAMES[index]
    )
}

const TYPE_NAME: &str = "hash:ip,port,ip";
const FAMILY_NAMES: [&str; 2] = ["inet", "inet6"];
const TCP: u8 = 6;
/// ip_set_timeout.h `IPSET_MAX_TIMEOUT`.
const MAX_TIMEOUT: u32 = (u32::MAX >> 1) / 1000;

#[cfg(test)]
mod tests;
