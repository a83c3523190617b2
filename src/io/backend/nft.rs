//! The nftables backend: elements of two concatenated-key sets with per-element timeouts,
//! `ipv4_addr . ipv4_addr . inet_service` and `ipv6_addr . ipv6_addr . inet_service`.
//!
//! Owns the nf_tables messages (include/uapi/linux/netfilter/nf_tables.h; the kernel side
//! is net/netfilter/nf_tables_api.c; layouts measured in kernel-interfaces.md §2.1):
//! - add/remove: one transaction per call, `NFNL_MSG_BATCH_BEGIN`, `NFT_MSG_NEWSETELEM`
//!   (or `DESTROYSETELEM`/`DELSETELEM`) per set and per 128 elements,
//!   `NFNL_MSG_BATCH_END`, in one `sendto`; every element message asks for an ACK. A batch
//!   is atomic: one refusal aborts all of it. A packet's removals and installs go in one
//!   batch (`apply`);
//! - element: `NFTA_LIST_ELEM { NFTA_SET_ELEM_KEY { NFTA_DATA_VALUE key },
//!   NFTA_SET_ELEM_TIMEOUT be64 ms }`; each field of a concatenated key is padded to
//!   4 bytes (`src(4) dst(4) dport_be(2) 00 00`, or 16 + 16 + 4 for IPv6);
//! - check: `NFT_MSG_GETSET` for each set, reading `NFTA_SET_FLAGS`, `NFTA_SET_KEY_TYPE`
//!   and `NFTA_SET_KEY_LEN` from the reply.

use std::net::IpAddr;
use std::time::Duration;

use crate::expect::DataKey;
use crate::io::backend::Applied;
use crate::io::backend::Backend;
use crate::io::backend::BackendError;
use crate::io::backend::DEFAULT_ANSWER_TIMEOUT;
use crate::io::backend::Element;
use crate::io::backend::split_families;
use crate::io::netlink;
use crate::io::netlink::Exchange;
use crate::io::netlink::Expect;
use crate::io::netlink::Header;
use crate::io::netlink::KernelError;
use crate::io::netlink::Link;
use crate::io::netlink::Writer;
use crate::io::netlink::consts::NFNL_MSG_BATCH_BEGIN;
use crate::io::netlink::consts::NFNL_MSG_BATCH_END;
use crate::io::netlink::consts::NFNL_SUBSYS_NFTABLES;
use crate::io::netlink::consts::NFPROTO_INET;
use crate::io::netlink::consts::NFPROTO_UNSPEC;
use crate::io::netlink::consts::NFT_MSG_DELSETELEM;
use crate::io::netlink::consts::NFT_MSG_DESTROYSETELEM;
use crate::io::netlink::consts::NFT_MSG_GETSET;
use crate::io::netlink::consts::NFT_MSG_NEWSETELEM;
use crate::io::netlink::consts::NFT_SET_TIMEOUT;
use crate::io::netlink::consts::NFTA_DATA_VALUE;
use crate::io::netlink::consts::NFTA_LIST_ELEM;
use crate::io::netlink::consts::NFTA_SET_ELEM_KEY;
use crate::io::netlink::consts::NFTA_SET_ELEM_LIST_ELEMENTS;
use crate::io::netlink::consts::NFTA_SET_ELEM_LIST_SET;
use crate::io::netlink::consts::NFTA_SET_ELEM_LIST_TABLE;
use crate::io::netlink::consts::NFTA_SET_ELEM_TIMEOUT;
use crate::io::netlink::consts::NFTA_SET_FLAGS;
use crate::io::netlink::consts::NFTA_SET_KEY_LEN;
use crate::io::netlink::consts::NFTA_SET_KEY_TYPE;
use crate::io::netlink::consts::NFTA_SET_NAME;
use crate::io::netlink::consts::NFTA_SET_TABLE;
use crate::io::netlink::consts::NLM_F_ACK;
use crate::io::netlink::consts::NLM_F_CREATE;
use crate::io::netlink::consts::NLM_F_REQUEST;
use crate::io::netlink::consts::nfnl_type;

/// Expectations in two sets of an nftables `inet` table.
///
/// Re-adding an element that exists (no `NLM_F_EXCL`) succeeds and, on Linux 6.18 as
/// measured, refreshes its timeout. Older kernels (before element timeout updates were
/// added, around 6.10) keep the old timeout: there a refreshed expectation still expires
/// at its first deadline. The engine's lifetimes are short, so this is tolerated.
#[derive(Debug)]
pub struct NftBackend {
    names: Names,
    link: Link,
    writer: Writer,
    /// False once the kernel turned `DESTROYSETELEM` down (before Linux 6.3).
    destroy: bool,
}

/// The table and set names (apart from the socket, so both can be borrowed at once).
#[derive(Debug)]
struct Names {
    table: String,
    sets: [String; 2],
}

/// Which message a sequence number carried: the set it targeted, and its kind.
type Sent = Vec<(u32, usize, u16)>;

/// One part of a transaction: a message kind and its elements, per set.
type Part<'a> = (u16, &'a [Vec<Element>; 2]);

impl NftBackend {
    /// Use sets `set4` (IPv4) and `set6` (IPv6) of table `inet table`, waiting at most
    /// [`DEFAULT_ANSWER_TIMEOUT`] for the kernel. Nothing is opened until the first call.
    pub fn new(table: &str, set4: &str, set6: &str) -> Self {
        Self {
            names: Names {
                table: table.to_owned(),
                sets: [set4.to_owned(), set6.to_owned()],
            },
            link: Link::new(DEFAULT_ANSWER_TIMEOUT),
            writer: Writer::new(),
            destroy: true,
        }
    }

    /// Wait at most `timeout` for the kernel's answers; past it a call fails with
    /// [`BackendError::Timeout`].
    pub fn with_answer_timeout(mut self, timeout: Duration) -> Self {
        self.link.set_timeout(timeout);
        self
    }

    /// Send one batch made of `parts`, in order (each a message kind and one element list
    /// per set), and wait for every answer.
    fn transact(&mut self, parts: &[Part<'_>]) -> Result<(Exchange, Sent), BackendError> {
        let socket = self.link.socket().map_err(BackendError::Socket)?;
        let mut sent = Vec::new();
        let begin = socket.next_seq();
        self.writer.clear();
        batch_marker(&mut self.writer, NFNL_MSG_BATCH_BEGIN, begin);
        for &(kind, groups) in parts {
            for (index, elements) in groups.iter().enumerate() {
                for chunk in elements.chunks(CHUNK) {
                    let seq = socket.next_seq();
                    let target = (self.names.table.as_str(), self.names.sets[index].as_str());
                    elements_message(&mut self.writer, kind, seq, target, chunk)
                        .map_err(|e| self.names.netlink_error(index, e))?;
                    sent.push((seq, index, kind));
                }
            }
        }
        let end = socket.next_seq();
        batch_marker(&mut self.writer, NFNL_MSG_BATCH_END, end);
        let acked: Vec<u32> = sent.iter().map(|(seq, _, _)| *seq).collect();
        let expect = Expect {
            acked: &acked,
            fatal: &[begin, end],
        };
        let exchange = self
            .link
            .exchange(self.writer.as_bytes(), expect)
            .map_err(|e| BackendError::netlink(self.names.table_name(), e))?;
        Ok((exchange, sent))
    }

    /// Remove elements one transaction each, ignoring those already gone; then make sure
    /// the sets themselves exist (a missing set also answers ENOENT).
    fn remove_one_by_one(&mut self, groups: &[Vec<Element>; 2]) -> Result<(), BackendError> {
        let mut gone = [false; 2];
        for (index, elements) in groups.iter().enumerate() {
            for element in elements {
                let mut single = [Vec::new(), Vec::new()];
                single[index].push(*element);
                let (exchange, sent) = self.transact(&[(NFT_MSG_DELSETELEM, &single)])?;
                match first_refusal(&exchange, &sent) {
                    Some((_, _, refusal)) if refusal.errno == libc::ENOENT => gone[index] = true,
                    Some((index, _, refusal)) => {
                        return Err(self.names.refused(index, "remove", refusal));
                    }
                    None => {}
                }
            }
        }
        for index in (0..2).filter(|i| gone[*i]) {
            self.check_set(index)?;
        }
        Ok(())
    }

    /// Removals, then installs, each in its own transaction.
    fn apply_apart(&mut self, removals: &[Element], installs: &[Element]) -> Applied {
        let mut applied = Applied::default();
        if !removals.is_empty() {
            applied.remove_error = self.remove(removals).err();
        }
        if !installs.is_empty() {
            if let Err(error) = self.install(installs) {
                applied.install_error = Some((installs.iter().map(|e| e.key).collect(), error));
            }
        }
        applied
    }

    /// GETSET one set and check what can be checked cheaply.
    fn check_set(&mut self, index: usize) -> Result<(), BackendError> {
        let seq = self.link.socket().map_err(BackendError::Socket)?.next_seq();
        let names = &self.names;
        get_set_message(&mut self.writer, seq, &names.table, &names.sets[index])
            .map_err(|e| names.netlink_error(index, e))?;
        let expect = Expect {
            acked: &[seq],
            fatal: &[],
        };
        let exchange = self
            .link
            .exchange(self.writer.as_bytes(), expect)
            .map_err(|e| names.netlink_error(index, e))?;
        if let Some((_, Err(refusal))) = exchange.outcomes.into_iter().next() {
            return Err(names.refused(index, "inspect", refusal));
        }
        let missing = netlink::Malformed("GETSET reply (missing)");
        let reply = exchange.replies.first().ok_or(missing);
        let shape = reply.and_then(|reply| parse_set(&reply.payload));
        let shape = shape.map_err(|e| names.netlink_error(index, e.into()))?;
        names.judge_shape(index, shape)
    }
}

impl Names {
    /// Compare a set's shape with what our elements need.
    fn judge_shape(&self, index: usize, shape: SetShape) -> Result<(), BackendError> {
        let (key_type, key_len) = EXPECTED_KEYS[index];
        let problem = if shape.flags & NFT_SET_TIMEOUT == 0 {
            Some("lacks `flags timeout`, so its elements cannot expire".to_owned())
        } else if shape.key_len != Some(key_len) || shape.key_type.is_some_and(|t| t != key_type) {
            Some(format!(
                "has the wrong key type (want `{}`)",
                KEY_TYPE_NAMES[index]
            ))
        } else {
            None
        };
        match problem {
            Some(problem) => Err(BackendError::WrongSet {
                set: self.set_name(index),
                problem,
                fix: RULES_FIX.to_owned(),
            }),
            None => Ok(()),
        }
    }

    /// A kernel refusal as a [`BackendError`] naming set `index`.
    fn refused(&self, index: usize, action: &'static str, refusal: KernelError) -> BackendError {
        let set = self.set_name(index);
        match refusal.errno {
            libc::ENOENT => BackendError::MissingSet {
                set,
                fix: RULES_FIX.to_owned(),
            },
            libc::EPERM => BackendError::PermissionDenied { set },
            libc::ENFILE => BackendError::SetFull { set },
            libc::EINVAL => BackendError::Refused {
                set,
                action,
                reason: format!(
                    "{refusal}; does the set have `flags timeout` and the key `{}`?",
                    KEY_TYPE_NAMES[index]
                ),
            },
            _ => BackendError::Refused {
                set,
                action,
                reason: refusal.to_string(),
            },
        }
    }

    fn netlink_error(&self, index: usize, error: netlink::Error) -> BackendError {
        BackendError::netlink(self.set_name(index), error)
    }

    fn set_name(&self, index: usize) -> String {
        format!("nftables set inet {} {}", self.table, self.sets[index])
    }

    fn table_name(&self) -> String {
        format!("nftables table inet {}", self.table)
    }
}

impl Backend for NftBackend {
    fn describe(&self) -> String {
        let Names { table, sets } = &self.names;
        format!("nft table inet {table}, sets {}/{}", sets[0], sets[1])
    }

    fn check(&mut self) -> Result<(), BackendError> {
        self.check_set(0)?;
        self.check_set(1)
    }

    fn install(&mut self, elements: &[Element]) -> Result<(), BackendError> {
        let (v4, v6) = split_families(elements)?;
        if elements.is_empty() {
            return Ok(());
        }
        let groups = [v4, v6];
        let (exchange, sent) = self.transact(&[(NFT_MSG_NEWSETELEM, &groups)])?;
        match first_refusal(&exchange, &sent) {
            Some((index, _, refusal)) => Err(self.names.refused(index, "add", refusal)),
            None => Ok(()),
        }
    }

    /// Most removals name an element the kernel already consumed (the data connection came).
    /// `DELSETELEM` of a missing element fails the whole transaction, and an aborted
    /// nf_tables transaction costs 15-20 ms (measured on 6.18), stalling the worker and the
    /// packet it holds. `DESTROYSETELEM` (Linux 6.3+) skips missing elements and commits in
    /// microseconds; older kernels fall back to `DELSETELEM`.
    fn remove(&mut self, elements: &[Element]) -> Result<(), BackendError> {
        let (v4, v6) = split_families(elements)?;
        if elements.is_empty() {
            return Ok(());
        }
        let groups = [v4, v6];
        if self.destroy {
            let (exchange, sent) = self.transact(&[(NFT_MSG_DESTROYSETELEM, &groups)])?;
            match first_refusal(&exchange, &sent) {
                None => return Ok(()),
                Some((_, _, refusal))
                    if matches!(refusal.errno, libc::EOPNOTSUPP | libc::EINVAL) =>
                {
                    log::info!(
                        "nft: DESTROYSETELEM unsupported (kernel before 6.3); using DELSETELEM"
                    );
                    self.destroy = false;
                }
                // A missing set, or another refusal: the slow path below says which.
                Some(_) => {}
            }
        }
        let (exchange, sent) = self.transact(&[(NFT_MSG_DELSETELEM, &groups)])?;
        match first_refusal(&exchange, &sent) {
            None => Ok(()),
            // One missing element aborts the whole batch: redo it element by element.
            Some((_, _, refusal)) if refusal.errno == libc::ENOENT => {
                self.remove_one_by_one(&groups)
            }
            Some((index, _, refusal)) => Err(self.names.refused(index, "remove", refusal)),
        }
    }

    /// One transaction: `DESTROYSETELEM` for the removals, then `NEWSETELEM` for the
    /// installs, so a packet's whole change costs one round trip. The transaction is atomic:
    /// if the kernel refuses an install, nothing happened, and the removals are carried out
    /// again on their own. If it refuses a removal (a kernel without `DESTROYSETELEM`), the
    /// two are done apart.
    fn apply(&mut self, removals: &[Element], installs: &[Element]) -> Applied {
        if removals.is_empty() || installs.is_empty() || !self.destroy {
            return self.apply_apart(removals, installs);
        }
        let all_installs = || installs.iter().map(|e| e.key).collect::<Vec<_>>();
        let (gone, added) = match (split_families(removals), split_families(installs)) {
            (Ok((r4, r6)), Ok((i4, i6))) => ([r4, r6], [i4, i6]),
            (Err(error), _) | (_, Err(error)) => {
                return Applied {
                    install_error: Some((all_installs(), error)),
                    remove_error: None,
                };
            }
        };
        let parts = [
            (NFT_MSG_DESTROYSETELEM, &gone),
            (NFT_MSG_NEWSETELEM, &added),
        ];
        let refusal = match self.transact(&parts) {
            Ok((exchange, sent)) => first_refusal(&exchange, &sent),
            Err(error) => {
                // The answer did not come: the transaction may or may not have happened.
                let remove_error = self.remove(removals).err();
                return Applied {
                    install_error: Some((all_installs(), error)),
                    remove_error,
                };
            }
        };
        match refusal {
            None => Applied::default(),
            Some((index, NFT_MSG_NEWSETELEM, refusal)) => Applied {
                remove_error: self.remove(removals).err(),
                install_error: Some((all_installs(), self.names.refused(index, "add", refusal))),
            },
            Some(_) => self.apply_apart(removals, installs),
        }
    }
}

/// The first refused message of an exchange, with the set it targeted and its kind.
fn first_refusal(exchange: &Exchange, sent: &Sent) -> Option<(usize, u16, KernelError)> {
    exchange.outcomes.iter().find_map(|(seq, outcome)| {
        let refusal = outcome.as_ref().err()?;
        let (index, kind) = sent
            .iter()
            .find(|(s, _, _)| s == seq)
            .map_or((0, 0), |(_, i, k)| (*i, *k));
        Some((index, kind, refusal.clone()))
    })
}

/// What GETSET tells about a set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct SetShape {
    flags: u32,
    key_type: Option<u32>,
    key_len: Option<u32>,
}

/// A batch BEGIN or END (`res_id` = the nf_tables subsystem; nfnetlink.h).
fn batch_marker(w: &mut Writer, kind: u16, seq: u32) {
    let message = w.begin(Header {
        kind,
        flags: NLM_F_REQUEST,
        seq,
        family: NFPROTO_UNSPEC,
        res_id: NFNL_SUBSYS_NFTABLES,
    });
    // NOTE(unwrap): a bare header is 20 bytes.
    w.finish(message).expect("a batch marker fits");
}

/// One NEWSETELEM/DELSETELEM message for `(table, set)`.
fn elements_message(
    w: &mut Writer,
    kind: u16,
    seq: u32,
    (table, set): (&str, &str),
    elements: &[Element],
) -> Result<(), netlink::Error> {
    let flags = if kind == NFT_MSG_NEWSETELEM {
        NLM_F_REQUEST | NLM_F_CREATE | NLM_F_ACK
    } else {
        NLM_F_REQUEST | NLM_F_ACK
    };
    let message = w.begin(Header {
        kind: nfnl_type(NFNL_SUBSYS_NFTABLES, kind),
        flags,
        seq,
        family: NFPROTO_INET,
        res_id: 0,
    });
    w.attr_str(NFTA_SET_ELEM_LIST_TABLE, table)?;
    w.attr_str(NFTA_SET_ELEM_LIST_SET, set)?;
    let list = w.nest(NFTA_SET_ELEM_LIST_ELEMENTS);
    for element in elements {
        let item = w.nest(NFTA_LIST_ELEM);
        let key = w.nest(NFTA_SET_ELEM_KEY);
        w.attr(NFTA_DATA_VALUE, &key_bytes(&element.key))?;
        w.end_nest(key)?;
        if kind == NFT_MSG_NEWSETELEM {
            let millis = u64::try_from(element.timeout.as_millis()).unwrap_or(u64::MAX);
            w.attr_be64(NFTA_SET_ELEM_TIMEOUT, millis.max(1))?;
        }
        w.end_nest(item)?;
    }
    w.end_nest(list)?;
    w.finish(message)
}

/// A GETSET request for one set.
fn get_set_message(w: &mut Writer, seq: u32, table: &str, set: &str) -> Result<(), netlink::Error> {
    w.clear();
    let message = w.begin(Header {
        kind: nfnl_type(NFNL_SUBSYS_NFTABLES, NFT_MSG_GETSET),
        flags: NLM_F_REQUEST | NLM_F_ACK,
        seq,
        family: NFPROTO_INET,
        res_id: 0,
    });
    w.attr_str(NFTA_SET_TABLE, table)?;
    w.attr_str(NFTA_SET_NAME, set)?;
    w.finish(message)
}

/// Read flags and key from a NEWSET reply payload (`nfgenmsg` + attributes).
fn parse_set(payload: &[u8]) -> Result<SetShape, netlink::Malformed> {
    let (_, split) = payload
        .split_at_checked(4)
        .ok_or(netlink::Malformed("nfgenmsg"))?;
    let mut shape = SetShape::default();
    for attribute in netlink::attributes(split) {
        let attribute = attribute?;
        match attribute.kind {
            NFTA_SET_FLAGS => shape.flags = attribute.be32("NFTA_SET_FLAGS")?,
            NFTA_SET_KEY_TYPE => shape.key_type = Some(attribute.be32("NFTA_SET_KEY_TYPE")?),
            NFTA_SET_KEY_LEN => shape.key_len = Some(attribute.be32("NFTA_SET_KEY_LEN")?),
            _ => {}
        }
    }
    Ok(shape)
}

/// The concatenated key `src . dst . dport`, each field padded to 4 bytes.
fn key_bytes(key: &DataKey) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(36);
    for address in [key.src, key.dst] {
        match address {
            IpAddr::V4(a) => bytes.extend_from_slice(&a.octets()),
            IpAddr::V6(a) => bytes.extend_from_slice(&a.octets()),
        }
    }
    bytes.extend_from_slice(&key.dport.get().to_be_bytes());
    bytes.extend_from_slice(&[0, 0]);
    bytes
}

/// Elements per NEWSETELEM message: 128 IPv6 elements are ~7.7 KiB, far below the
/// 64 KiB a nested attribute can hold.
const CHUNK: usize = 128;

/// nft's type ids (nftables `datatype.h`: ipv4_addr 7, ipv6_addr 8, inet_service 13)
/// concatenated as nft does, 6 bits per field, first field highest; and key lengths.
const EXPECTED_KEYS: [(u32, u32); 2] = [
    ((7 << 12) | (7 << 6) | 13, 12),
    ((8 << 12) | (8 << 6) | 13, 36),
];

const KEY_TYPE_NAMES: [&str; 2] = [
    "ipv4_addr . ipv4_addr . inet_service",
    "ipv6_addr . ipv6_addr . inet_service",
];

const RULES_FIX: &str = "load the ruleset with `ftp-alg rules --backend nft | nft -f -` \
     (on kernels without the nft queue statement: `ftp-alg rules --backend nft --queue-via \
     iptables | sh`)";

#[cfg(test)]
mod tests;
