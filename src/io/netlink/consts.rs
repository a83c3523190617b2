//! The netlink numbers we use, each from the kernel UAPI header named above its group.
//! `libc` has the generic netlink ones (as `c_int`) but few netfilter attribute numbers, so
//! all of them are defined here with the wire's own integer types.

// ---- include/uapi/linux/netlink.h ------------------------------------------------------

/// `struct nlmsghdr` length.
pub const NLMSG_HDRLEN: usize = 16;
/// `struct nlattr` header length.
pub const NLA_HDRLEN: usize = 4;
/// Control message: nothing; the kernel skips it (and acknowledges it only if asked).
pub const NLMSG_NOOP: u16 = 1;
/// Control message: an error or (error 0) an acknowledgement.
pub const NLMSG_ERROR: u16 = 2;
/// Control message: the end of a multi-part reply.
pub const NLMSG_DONE: u16 = 3;
/// Control message types are below this.
pub const NLMSG_MIN_TYPE: u16 = 16;
/// It is a request.
pub const NLM_F_REQUEST: u16 = 0x1;
/// Part of a multi-part reply, ended by `NLMSG_DONE`.
pub const NLM_F_MULTI: u16 = 0x2;
/// Ask for an acknowledgement.
pub const NLM_F_ACK: u16 = 0x4;
/// NEW: fail if it exists.
pub const NLM_F_EXCL: u16 = 0x200;
/// NEW: create if missing.
pub const NLM_F_CREATE: u16 = 0x400;
/// In an `NLMSG_ERROR`: the request's payload was left out (`NETLINK_CAP_ACK`).
pub const NLM_F_CAPPED: u16 = 0x100;
/// In an `NLMSG_ERROR`: extended-ACK attributes follow (`NETLINK_EXT_ACK`).
pub const NLM_F_ACK_TLVS: u16 = 0x200;
/// Attribute flag: the payload is a list of attributes.
pub const NLA_F_NESTED: u16 = 0x8000;
/// Attribute flag: the payload is in network byte order.
pub const NLA_F_NET_BYTEORDER: u16 = 0x4000;
/// Attribute type without its flags.
pub const NLA_TYPE_MASK: u16 = !(NLA_F_NESTED | NLA_F_NET_BYTEORDER);
/// Extended ACK: the kernel's error message (string).
pub const NLMSGERR_ATTR_MSG: u16 = 1;
/// Extended ACK: offset of the offending attribute in the request (u32).
pub const NLMSGERR_ATTR_OFFS: u16 = 2;

// ---- include/uapi/linux/netfilter/nfnetlink.h and linux/netfilter.h --------------------

/// `nfgenmsg.version`.
pub const NFNETLINK_V0: u8 = 0;
/// Batch start (`NLMSG_MIN_TYPE`); its `res_id` names the subsystem.
pub const NFNL_MSG_BATCH_BEGIN: u16 = NLMSG_MIN_TYPE;
/// Batch end.
pub const NFNL_MSG_BATCH_END: u16 = NLMSG_MIN_TYPE + 1;
/// Subsystem: ctnetlink (conntrack entries).
pub const NFNL_SUBSYS_CTNETLINK: u16 = 1;
/// Subsystem: nfnetlink_queue.
pub const NFNL_SUBSYS_QUEUE: u16 = 3;
/// Subsystem: ipset.
pub const NFNL_SUBSYS_IPSET: u16 = 6;
/// Subsystem: nf_tables.
pub const NFNL_SUBSYS_NFTABLES: u16 = 10;
/// `AF_UNSPEC`.
pub const NFPROTO_UNSPEC: u8 = 0;
/// The nft `inet` family.
pub const NFPROTO_INET: u8 = 1;
/// IPv4.
pub const NFPROTO_IPV4: u8 = 2;
/// IPv6.
pub const NFPROTO_IPV6: u8 = 10;

/// The netlink message type of subsystem `subsys`'s message `message` (nfnetlink.h
/// `NFNL_SUBSYS_ID`/`NFNL_MSG_TYPE`).
pub const fn nfnl_type(subsys: u16, message: u16) -> u16 {
    (subsys << 8) | message
}

// ---- include/uapi/linux/netfilter/nf_tables.h -----------------------------------------

/// Get one set.
pub const NFT_MSG_GETSET: u16 = 10;
/// Add set elements.
pub const NFT_MSG_NEWSETELEM: u16 = 12;
/// Delete set elements.
pub const NFT_MSG_DELSETELEM: u16 = 14;
/// Delete set elements, elements already gone included (Linux 6.3+; after
/// `NFT_MSG_GETRULE_RESET` = 25 come the `DESTROY*` messages 26..32).
pub const NFT_MSG_DESTROYSETELEM: u16 = 30;
/// `enum nft_set_attributes`: table name.
pub const NFTA_SET_TABLE: u16 = 1;
/// Set name.
pub const NFTA_SET_NAME: u16 = 2;
/// Set flags (be32, `NFT_SET_*`).
pub const NFTA_SET_FLAGS: u16 = 3;
/// Key type (be32).
pub const NFTA_SET_KEY_TYPE: u16 = 4;
/// Key length in bytes (be32).
pub const NFTA_SET_KEY_LEN: u16 = 5;
/// A map's data type (be32).
pub const NFTA_SET_DATA_TYPE: u16 = 6;
/// A map's data length in bytes (be32).
pub const NFTA_SET_DATA_LEN: u16 = 7;
/// `enum nft_set_flags`: a map (elements carry data).
pub const NFT_SET_MAP: u32 = 0x8;
/// `enum nft_set_flags`: elements may time out.
pub const NFT_SET_TIMEOUT: u32 = 0x10;
/// `enum nft_set_elem_list_attributes`: table.
pub const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
/// Set.
pub const NFTA_SET_ELEM_LIST_SET: u16 = 2;
/// Elements (nested list of `NFTA_LIST_ELEM`).
pub const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
/// `enum nft_list_attributes`: one list entry.
pub const NFTA_LIST_ELEM: u16 = 1;
/// `enum nft_set_elem_attributes`: key (nested `NFTA_DATA_VALUE`).
pub const NFTA_SET_ELEM_KEY: u16 = 1;
/// A map element's data (nested `NFTA_DATA_VALUE`).
pub const NFTA_SET_ELEM_DATA: u16 = 2;
/// Timeout in milliseconds (be64).
pub const NFTA_SET_ELEM_TIMEOUT: u16 = 4;
/// `enum nft_data_attributes`: a value.
pub const NFTA_DATA_VALUE: u16 = 1;

// ---- include/uapi/linux/netfilter/nfnetlink_conntrack.h ------------------------------

/// `enum cntl_msg_types`: a conntrack entry (also the answer to a GET).
pub const IPCTNL_MSG_CT_NEW: u16 = 0;
/// Get one conntrack entry by one of its tuples.
pub const IPCTNL_MSG_CT_GET: u16 = 1;
/// `enum ctattr_type`: the original direction's tuple (nested `CTA_TUPLE_*`).
pub const CTA_TUPLE_ORIG: u16 = 1;
/// The reply direction's tuple.
pub const CTA_TUPLE_REPLY: u16 = 2;
/// `enum ctattr_tuple`: addresses (nested `CTA_IP_*`).
pub const CTA_TUPLE_IP: u16 = 1;
/// Protocol and ports (nested `CTA_PROTO_*`).
pub const CTA_TUPLE_PROTO: u16 = 2;
/// `enum ctattr_ip`: IPv4 source (4 bytes, network order).
pub const CTA_IP_V4_SRC: u16 = 1;
/// IPv4 destination.
pub const CTA_IP_V4_DST: u16 = 2;
/// IPv6 source (16 bytes).
pub const CTA_IP_V6_SRC: u16 = 3;
/// IPv6 destination.
pub const CTA_IP_V6_DST: u16 = 4;
/// `enum ctattr_l4proto`: the L4 protocol number (u8).
pub const CTA_PROTO_NUM: u16 = 1;
/// Source port (be16).
pub const CTA_PROTO_SRC_PORT: u16 = 2;
/// Destination port (be16).
pub const CTA_PROTO_DST_PORT: u16 = 3;

// ---- include/uapi/linux/netfilter/nfnetlink_queue.h -----------------------------------

/// A queued packet.
pub const NFQNL_MSG_PACKET: u16 = 0;
/// A verdict.
pub const NFQNL_MSG_VERDICT: u16 = 1;
/// Configuration.
pub const NFQNL_MSG_CONFIG: u16 = 2;
/// One verdict for every packet still queued whose id is at most the one given.
pub const NFQNL_MSG_VERDICT_BATCH: u16 = 3;
/// `struct nfqnl_msg_packet_hdr` (packed: be32 id, be16 hw_protocol, u8 hook).
pub const NFQA_PACKET_HDR: u16 = 1;
/// `struct nfqnl_msg_verdict_hdr` (be32 verdict, be32 id).
pub const NFQA_VERDICT_HDR: u16 = 2;
/// The packet, from its network header.
pub const NFQA_PAYLOAD: u16 = 10;
/// The packet's length before copy-range truncation (be32; only when truncated).
pub const NFQA_CAP_LEN: u16 = 13;
/// `struct nfqnl_msg_config_cmd` (u8 command, u8 pad, be16 pf).
pub const NFQA_CFG_CMD: u16 = 1;
/// `struct nfqnl_msg_config_params` (packed: be32 copy_range, u8 copy_mode).
pub const NFQA_CFG_PARAMS: u16 = 2;
/// Queue length limit (be32).
pub const NFQA_CFG_QUEUE_MAXLEN: u16 = 3;
/// Which flags to change (be32).
pub const NFQA_CFG_MASK: u16 = 4;
/// Flag values (be32).
pub const NFQA_CFG_FLAGS: u16 = 5;
/// Bind this socket to the queue.
pub const NFQNL_CFG_CMD_BIND: u8 = 1;
/// Unbind.
pub const NFQNL_CFG_CMD_UNBIND: u8 = 2;
/// Copy the packet (up to the copy range).
pub const NFQNL_COPY_PACKET: u8 = 2;
/// Accept instead of dropping when the queue is full.
pub const NFQA_CFG_F_FAIL_OPEN: u32 = 0x1;
/// Deliver GSO packets unsegmented (we never set it).
pub const NFQA_CFG_F_GSO: u32 = 0x4;

// ---- include/uapi/linux/netfilter.h ----------------------------------------------------

/// Verdict: drop.
pub const NF_DROP: u32 = 0;
/// Verdict: accept.
pub const NF_ACCEPT: u32 = 1;

// ---- include/uapi/linux/netfilter/ipset/ip_set.h --------------------------------------

/// Protocol version sent; kernels accept `IPSET_PROTOCOL_MIN` (6) up to 7.
pub const IPSET_PROTOCOL: u8 = 6;
/// Add an element.
pub const IPSET_CMD_ADD: u16 = 9;
/// Delete an element.
pub const IPSET_CMD_DEL: u16 = 10;
/// Get a set's header (type, family).
pub const IPSET_CMD_HEADER: u16 = 12;
/// Top level: protocol version (u8).
pub const IPSET_ATTR_PROTOCOL: u16 = 1;
/// Set name (string).
pub const IPSET_ATTR_SETNAME: u16 = 2;
/// Type name (string, in HEADER replies).
pub const IPSET_ATTR_TYPENAME: u16 = 3;
/// Family (u8, in HEADER replies).
pub const IPSET_ATTR_FAMILY: u16 = 5;
/// Nested element data.
pub const IPSET_ATTR_DATA: u16 = 7;
/// Data: first address (nested `IPSET_ATTR_IPADDR_*`).
pub const IPSET_ATTR_IP: u16 = 1;
/// Data: port (be16).
pub const IPSET_ATTR_PORT: u16 = 4;
/// Data: timeout in seconds (be32).
pub const IPSET_ATTR_TIMEOUT: u16 = 6;
/// Data: L4 protocol (u8).
pub const IPSET_ATTR_PROTO: u16 = 7;
/// Data: second address (nested).
pub const IPSET_ATTR_IP2: u16 = 20;
/// Address: IPv4 (4 bytes, network order).
pub const IPSET_ATTR_IPADDR_IPV4: u16 = 1;
/// Address: IPv6 (16 bytes).
pub const IPSET_ATTR_IPADDR_IPV6: u16 = 2;
/// `enum ipset_errno`: first ipset-private error number.
pub const IPSET_ERR_PRIVATE: i32 = 4096;
/// The kernel does not speak our protocol version.
pub const IPSET_ERR_PROTOCOL: i32 = 4097;
/// Element already added / already deleted.
pub const IPSET_ERR_EXIST: i32 = 4103;
/// Wrong family for this set.
pub const IPSET_ERR_INVALID_FAMILY: i32 = 4106;
/// The set was created without timeout support.
pub const IPSET_ERR_TIMEOUT: i32 = 4107;
/// `ip_set_hash.h`: the hash is full (`maxelem`).
pub const IPSET_ERR_HASH_FULL: i32 = 4352;
