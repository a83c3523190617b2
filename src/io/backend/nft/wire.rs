//! The nf_tables messages the backend sends and the one reply it reads
//! (include/uapi/linux/netfilter/nf_tables.h; layouts measured in kernel-interfaces.md §2.1).
//!
//! Owns the bytes: batch markers, `NEWSETELEM`/`DELSETELEM`/`DESTROYSETELEM` with their
//! element lists, `GETSET` and the reading of its reply, and the layout of concatenated keys
//! and map data ([`Entry`]). It does not own which object an element goes to, nor what a
//! refusal means: that is the backend's.

use std::net::IpAddr;
use std::num::NonZeroU16;
use std::time::Duration;

use crate::expect::NatMapping;
use crate::io::backend::Element;
use crate::io::netlink;
use crate::io::netlink::Header;
use crate::io::netlink::Writer;
use crate::io::netlink::consts::NFNL_SUBSYS_NFTABLES;
use crate::io::netlink::consts::NFPROTO_INET;
use crate::io::netlink::consts::NFPROTO_UNSPEC;
use crate::io::netlink::consts::NFT_MSG_GETSET;
use crate::io::netlink::consts::NFT_MSG_NEWSETELEM;
use crate::io::netlink::consts::NFTA_DATA_VALUE;
use crate::io::netlink::consts::NFTA_LIST_ELEM;
use crate::io::netlink::consts::NFTA_SET_DATA_LEN;
use crate::io::netlink::consts::NFTA_SET_DATA_TYPE;
use crate::io::netlink::consts::NFTA_SET_ELEM_DATA;
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

/// One element as the wire carries it: the key, a map element's data, and the timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Entry {
    /// `NFTA_SET_ELEM_KEY { NFTA_DATA_VALUE }`.
    pub(super) key: Vec<u8>,
    /// `NFTA_SET_ELEM_DATA { NFTA_DATA_VALUE }`, for map elements.
    pub(super) data: Option<Vec<u8>>,
    /// `NFTA_SET_ELEM_TIMEOUT`, sent with additions only.
    pub(super) timeout: Duration,
}

/// What GETSET tells about a set or map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct SetShape {
    pub(super) flags: u32,
    pub(super) key_type: Option<u32>,
    pub(super) key_len: Option<u32>,
    pub(super) data_type: Option<u32>,
    pub(super) data_len: Option<u32>,
}

impl Entry {
    /// The set element of `element`: `src . dst . dport`.
    pub(super) fn set(element: &Element) -> Self {
        let key = &element.key;
        Self {
            key: concat(&[key.src, key.dst], key.dport),
            data: None,
            timeout: element.timeout,
        }
    }

    /// The NAT map element of `element`: `src . public . port : dst . dport` (the data SYN
    /// arrives for the public endpoint and is translated to the private one the key names).
    pub(super) fn map(element: &Element, nat: NatMapping) -> Self {
        let key = &element.key;
        Self {
            key: concat(&[key.src, nat.public], nat.port),
            data: Some(concat(&[key.dst], key.dport)),
            timeout: element.timeout,
        }
    }
}

/// A batch BEGIN or END (`res_id` = the nf_tables subsystem; nfnetlink.h).
pub(super) fn batch_marker(w: &mut Writer, kind: u16, seq: u32) {
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

/// One NEWSETELEM/DELSETELEM/DESTROYSETELEM message for `(table, set)`, a set or a map.
pub(super) fn elements_message(
    w: &mut Writer,
    kind: u16,
    seq: u32,
    (table, set): (&str, &str),
    entries: &[Entry],
) -> Result<(), netlink::Error> {
    let add = kind == NFT_MSG_NEWSETELEM;
    // No NLM_F_ACK: the batch is sent with `Socket::send_batch`, which hears of refusals only.
    let flags = if add {
        NLM_F_REQUEST | NLM_F_CREATE
    } else {
        NLM_F_REQUEST
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
    for entry in entries {
        element(w, entry, add)?;
    }
    w.end_nest(list)?;
    w.finish(message)
}

/// One `NFTA_LIST_ELEM`: the key; with `add`, the data (maps) and the timeout.
fn element(w: &mut Writer, entry: &Entry, add: bool) -> Result<(), netlink::Error> {
    let item = w.nest(NFTA_LIST_ELEM);
    value(w, NFTA_SET_ELEM_KEY, &entry.key)?;
    if add {
        if let Some(data) = &entry.data {
            value(w, NFTA_SET_ELEM_DATA, data)?;
        }
        let millis = u64::try_from(entry.timeout.as_millis()).unwrap_or(u64::MAX);
        w.attr_be64(NFTA_SET_ELEM_TIMEOUT, millis.max(1))?;
    }
    w.end_nest(item)
}

/// `kind { NFTA_DATA_VALUE bytes }`.
fn value(w: &mut Writer, kind: u16, bytes: &[u8]) -> Result<(), netlink::Error> {
    let nest = w.nest(kind);
    w.attr(NFTA_DATA_VALUE, bytes)?;
    w.end_nest(nest)
}

/// A GETSET request for one set or map.
pub(super) fn get_set_message(
    w: &mut Writer,
    seq: u32,
    table: &str,
    set: &str,
) -> Result<(), netlink::Error> {
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

/// Read flags, key and data from a NEWSET reply payload (`nfgenmsg` + attributes).
pub(super) fn parse_set(payload: &[u8]) -> Result<SetShape, netlink::Malformed> {
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
            NFTA_SET_DATA_TYPE => shape.data_type = Some(attribute.be32("NFTA_SET_DATA_TYPE")?),
            NFTA_SET_DATA_LEN => shape.data_len = Some(attribute.be32("NFTA_SET_DATA_LEN")?),
            _ => {}
        }
    }
    Ok(shape)
}

/// A concatenation `address . address ... . port`, each field padded to 4 bytes (addresses
/// already are: 4 or 16 bytes).
pub(super) fn concat(addresses: &[IpAddr], port: NonZeroU16) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(36);
    for address in addresses {
        match address {
            IpAddr::V4(a) => bytes.extend_from_slice(&a.octets()),
            IpAddr::V6(a) => bytes.extend_from_slice(&a.octets()),
        }
    }
    bytes.extend_from_slice(&port.get().to_be_bytes());
    bytes.extend_from_slice(&[0, 0]);
    bytes
}

/// Elements per NEWSETELEM message: 128 IPv6 map elements are ~11 KiB, far below the
/// 64 KiB a nested attribute can hold.
pub(super) const CHUNK: usize = 128;
