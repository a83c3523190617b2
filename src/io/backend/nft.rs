//! The nftables backend: elements of two concatenated-key sets with per-element timeouts,
//! `ipv4_addr . ipv4_addr . inet_service` and `ipv6_addr . ipv6_addr . inet_service`; and,
//! when NAT maps are enabled, of two DNAT maps beside them,
//! `ipv4_addr . ipv4_addr . inet_service : ipv4_addr . inet_service` (and IPv6).
//!
//! Owns the nf_tables transactions (include/uapi/linux/netfilter/nf_tables.h; the kernel
//! side is net/netfilter/nf_tables_api.c; layouts measured in kernel-interfaces.md §2.1;
//! the bytes are in `wire`, the objects and what refusals mean in `names`):
//! - add/remove: one transaction per call, `NFNL_MSG_BATCH_BEGIN`, `NFT_MSG_NEWSETELEM`
//!   (or `DESTROYSETELEM`/`DELSETELEM`) per set or map and per 128 elements,
//!   `NFNL_MSG_BATCH_END`, in one `sendto`; every element message asks for an ACK. A batch
//!   is atomic: one refusal aborts all of it. A packet's removals and installs go in one
//!   batch (`apply`), and so do an element's set element and its NAT map element;
//! - set element: `NFTA_LIST_ELEM { NFTA_SET_ELEM_KEY { NFTA_DATA_VALUE key },
//!   NFTA_SET_ELEM_TIMEOUT be64 ms }`; each field of a concatenated key is padded to
//!   4 bytes (`src(4) dst(4) dport_be(2) 00 00`, or 16 + 16 + 4 for IPv6);
//! - NAT map element (an [`Element`] with `nat`): key `src . public . port`, plus
//!   `NFTA_SET_ELEM_DATA { NFTA_DATA_VALUE dst . dport }`, same padding, same timeout;
//! - check: `NFT_MSG_GETSET` for each set (and map), reading `NFTA_SET_FLAGS`,
//!   `NFTA_SET_KEY_TYPE`, `NFTA_SET_KEY_LEN`, `NFTA_SET_DATA_TYPE` and `NFTA_SET_DATA_LEN`.

mod names;
mod wire;

use std::time::Duration;

use crate::io::backend::Applied;
use crate::io::backend::Backend;
use crate::io::backend::BackendError;
use crate::io::backend::DEFAULT_ANSWER_TIMEOUT;
use crate::io::backend::Element;
use crate::io::netlink;
use crate::io::netlink::Exchange;
use crate::io::netlink::Expect;
use crate::io::netlink::KernelError;
use crate::io::netlink::Link;
use crate::io::netlink::Writer;
use crate::io::netlink::consts::NFNL_MSG_BATCH_BEGIN;
use crate::io::netlink::consts::NFNL_MSG_BATCH_END;
use crate::io::netlink::consts::NFT_MSG_DELSETELEM;
use crate::io::netlink::consts::NFT_MSG_DESTROYSETELEM;
use crate::io::netlink::consts::NFT_MSG_NEWSETELEM;

use names::Names;
use names::Target;
use wire::CHUNK;
use wire::Entry;
use wire::batch_marker;
use wire::elements_message;
use wire::get_set_message;
use wire::parse_set;

/// The NAT map names `ftp-alg` suggests, IPv4 and IPv6.
pub const DEFAULT_NAT_MAPS: [&str; 2] = ["dnat4", "dnat6"];

/// Expectations in two sets of an nftables `inet` table, and their NAT mappings in two maps
/// of the same table once [`with_nat_maps`](Self::with_nat_maps) enables them.
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

/// Which message a sequence number carried: the object it targeted, and its kind.
type Sent = Vec<(u32, Target, u16)>;

/// Wire entries per [`Target`] (indexed by [`Target::index`]).
type Groups = [Vec<Entry>; 4];

/// One part of a transaction: a message kind and its entries, per target.
type Part<'a> = (u16, &'a Groups);

impl NftBackend {
    /// Use sets `set4` (IPv4) and `set6` (IPv6) of table `inet table`, waiting at most
    /// [`DEFAULT_ANSWER_TIMEOUT`] for the kernel. NAT maps are off. Nothing is opened until
    /// the first call.
    pub fn new(table: &str, set4: &str, set6: &str) -> Self {
        Self {
            names: Names {
                table: table.to_owned(),
                sets: [set4.to_owned(), set6.to_owned()],
                maps: None,
            },
            link: Link::new(DEFAULT_ANSWER_TIMEOUT),
            writer: Writer::new(),
            destroy: true,
        }
    }

    /// Also write each element's NAT mapping to map `map4` (IPv4) or `map6` (IPv6) of the
    /// same table ([`DEFAULT_NAT_MAPS`] are the usual names), in the same transaction as its
    /// set element; [`Backend::check`] then checks the maps too. Without this, an element
    /// with a NAT mapping is refused ([`BackendError::NatUnsupported`]).
    pub fn with_nat_maps(mut self, map4: &str, map6: &str) -> Self {
        self.names.maps = Some([map4.to_owned(), map6.to_owned()]);
        self
    }

    /// Wait at most `timeout` for the kernel's answers; past it a call fails with
    /// [`BackendError::Timeout`].
    pub fn with_answer_timeout(mut self, timeout: Duration) -> Self {
        self.link.set_timeout(timeout);
        self
    }

    /// The wire entries of `elements` per target: every element in its family's set, and
    /// those with a NAT mapping in that family's map too. Refused before anything is sent: a
    /// key (or key and mapping) mixing families, or a mapping while NAT maps are off.
    fn group(&self, elements: &[Element]) -> Result<Groups, BackendError> {
        let mut groups = Groups::default();
        for element in elements {
            let key = element.key;
            let v6 = key.src.is_ipv6();
            let public = element.nat.map(|nat| nat.public);
            if key.dst.is_ipv6() != v6 || public.is_some_and(|p| p.is_ipv6() != v6) {
                return Err(BackendError::MixedFamily(key));
            }
            groups[Target::of(false, v6).index()].push(Entry::set(element));
            if let Some(nat) = element.nat {
                if self.names.maps.is_none() {
                    return Err(self.nat_unsupported(element));
                }
                groups[Target::of(true, v6).index()].push(Entry::map(element, nat));
            }
        }
        Ok(groups)
    }

    /// Send one batch made of `parts`, in order (each a message kind and entries per
    /// target), and wait for every answer.
    fn transact(&mut self, parts: &[Part<'_>]) -> Result<(Exchange, Sent), BackendError> {
        let socket = self.link.socket().map_err(BackendError::Socket)?;
        let mut sent = Vec::new();
        let begin = socket.next_seq();
        self.writer.clear();
        batch_marker(&mut self.writer, NFNL_MSG_BATCH_BEGIN, begin);
        for &(kind, groups) in parts {
            for target in Target::ALL {
                let entries = &groups[target.index()];
                if entries.is_empty() {
                    continue;
                }
                let names = &self.names;
                // `group` makes map entries only when the maps are enabled.
                let object = names.object(target).unwrap_or_default();
                for chunk in entries.chunks(CHUNK) {
                    let seq = socket.next_seq();
                    let into = (names.table.as_str(), object);
                    elements_message(&mut self.writer, kind, seq, into, chunk)
                        .map_err(|e| names.netlink_error(target, e))?;
                    sent.push((seq, target, kind));
                }
            }
        }
        let end = socket.next_seq();
        batch_marker(&mut self.writer, NFNL_MSG_BATCH_END, end);
        // The element messages ask for no ACK: a refusal is answered all the same, and the
        // batch is done when the send returns (`Socket::send_batch`).
        let mut seqs: Vec<u32> = Vec::with_capacity(sent.len() + 2);
        seqs.push(begin);
        seqs.extend(sent.iter().map(|(seq, _, _)| *seq));
        seqs.push(end);
        let exchange = self
            .link
            .send_batch(self.writer.as_bytes(), &seqs)
            .map_err(|e| BackendError::netlink(self.names.table_name(), e))?;
        Ok((exchange, sent))
    }

    /// Remove entries one transaction each, ignoring those already gone; then make sure the
    /// sets and maps themselves exist (a missing set also answers ENOENT).
    fn remove_one_by_one(&mut self, groups: &Groups) -> Result<(), BackendError> {
        let mut gone = [false; 4];
        for target in Target::ALL {
            for entry in &groups[target.index()] {
                let mut single = Groups::default();
                single[target.index()].push(entry.clone());
                let (exchange, sent) = self.transact(&[(NFT_MSG_DELSETELEM, &single)])?;
                match first_refusal(&exchange, &sent) {
                    Some((_, _, refusal)) if refusal.errno == libc::ENOENT => {
                        gone[target.index()] = true;
                    }
                    Some((target, _, refusal)) => {
                        return Err(self.names.refused(target, "remove", refusal));
                    }
                    None => {}
                }
            }
        }
        for target in Target::ALL.into_iter().filter(|t| gone[t.index()]) {
            self.check_target(target)?;
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

    /// GETSET one set or map and check what can be checked cheaply.
    fn check_target(&mut self, target: Target) -> Result<(), BackendError> {
        let seq = self.link.socket().map_err(BackendError::Socket)?.next_seq();
        let names = &self.names;
        let object = names.object(target).unwrap_or_default();
        get_set_message(&mut self.writer, seq, &names.table, object)
            .map_err(|e| names.netlink_error(target, e))?;
        let expect = Expect {
            acked: &[seq],
            fatal: &[],
        };
        let exchange = self
            .link
            .exchange(self.writer.as_bytes(), expect)
            .map_err(|e| names.netlink_error(target, e))?;
        if let Some((_, Err(refusal))) = exchange.outcomes.into_iter().next() {
            return Err(names.refused(target, "inspect", refusal));
        }
        let missing = netlink::Malformed("GETSET reply (missing)");
        let reply = exchange.replies.first().ok_or(missing);
        let shape = reply.and_then(|reply| parse_set(&reply.payload));
        let shape = shape.map_err(|e| names.netlink_error(target, e.into()))?;
        names.judge_shape(target, shape)
    }

    /// The refusal of `element`'s NAT mapping while NAT maps are off.
    fn nat_unsupported(&self, element: &Element) -> BackendError {
        BackendError::NatUnsupported {
            backend: self.describe(),
            key: element.key,
            fix: "its NAT maps are not enabled (a bug in the caller: NAT needs \
                  `NftBackend::with_nat_maps`)"
                .to_owned(),
        }
    }
}

impl Backend for NftBackend {
    fn describe(&self) -> String {
        let Names { table, sets, maps } = &self.names;
        let mut text = format!("nft table inet {table}, sets {}/{}", sets[0], sets[1]);
        if let Some(maps) = maps {
            text.push_str(&format!(", NAT maps {}/{}", maps[0], maps[1]));
        }
        text
    }

    fn check(&mut self) -> Result<(), BackendError> {
        let targets: Vec<Target> = self.names.targets().collect();
        targets
            .into_iter()
            .try_for_each(|target| self.check_target(target))
    }

    fn install(&mut self, elements: &[Element]) -> Result<(), BackendError> {
        let groups = self.group(elements)?;
        if elements.is_empty() {
            return Ok(());
        }
        let (exchange, sent) = self.transact(&[(NFT_MSG_NEWSETELEM, &groups)])?;
        match first_refusal(&exchange, &sent) {
            Some((target, _, refusal)) => Err(self.names.refused(target, "add", refusal)),
            None => Ok(()),
        }
    }

    /// Most removals name an element the kernel already consumed (the data connection came).
    /// `DELSETELEM` of a missing element fails the whole transaction, and an aborted
    /// nf_tables transaction costs 15-20 ms (measured on 6.18), stalling the worker and the
    /// packet it holds. `DESTROYSETELEM` (Linux 6.3+) skips missing elements and commits in
    /// microseconds; older kernels fall back to `DELSETELEM`. A NAT map element goes with
    /// its set element, in the same message kind and transaction.
    fn remove(&mut self, elements: &[Element]) -> Result<(), BackendError> {
        let groups = self.group(elements)?;
        if elements.is_empty() {
            return Ok(());
        }
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
            Some((target, _, refusal)) => Err(self.names.refused(target, "remove", refusal)),
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
        let (gone, added) = match (self.group(removals), self.group(installs)) {
            (Ok(gone), Ok(added)) => (gone, added),
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
            Some((target, NFT_MSG_NEWSETELEM, refusal)) => Applied {
                remove_error: self.remove(removals).err(),
                install_error: Some((all_installs(), self.names.refused(target, "add", refusal))),
            },
            Some(_) => self.apply_apart(removals, installs),
        }
    }
}

/// The first refused message of an exchange, with the object it targeted and its kind.
fn first_refusal(exchange: &Exchange, sent: &Sent) -> Option<(Target, u16, KernelError)> {
    exchange.outcomes.iter().find_map(|(seq, outcome)| {
        let refusal = outcome.as_ref().err()?;
        let (target, kind) = sent
            .iter()
            .find(|(s, _, _)| s == seq)
            .map_or((Target::Set4, 0), |(_, t, k)| (*t, *k));
        Some((target, kind, refusal.clone()))
    })
}

#[cfg(test)]
mod tests;
