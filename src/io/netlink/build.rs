//! Building netfilter netlink requests: `nlmsghdr` + `nfgenmsg` + attributes, several
//! messages per buffer (one `sendto`).
//!
//! Layout rules (include/uapi/linux/netlink.h, netlink(7), and
//! include/uapi/linux/netfilter/nfnetlink.h for `nfgenmsg`):
//! - every message and every attribute starts 4-byte aligned (`NLMSG_ALIGN`, `NLA_ALIGN`);
//! - `nla_len` counts the 4-byte header and the payload, not the trailing padding;
//! - a nested attribute's length covers its children including their padding, and its type
//!   carries `NLA_F_NESTED`;
//! - integers are host order in headers (`nlmsghdr`, `nla_len`), and big-endian in
//!   netfilter payloads (`nfgenmsg.res_id`, and every attribute we send).
//!
//! Only sizes can fail: a message is at most `u32::MAX` bytes, an attribute 65535.

use crate::io::netlink::Error;
use crate::io::netlink::consts::NFNETLINK_V0;
use crate::io::netlink::consts::NLA_F_NESTED;
use crate::io::netlink::consts::NLA_HDRLEN;
use crate::io::netlink::consts::NLMSG_HDRLEN;

/// A growing buffer of netlink messages.
#[derive(Debug, Default, Clone)]
pub struct Writer {
    buf: Vec<u8>,
}

/// Where an unfinished message starts; hand it back to [`Writer::finish`].
#[derive(Debug)]
#[must_use = "a message must be finished"]
pub struct MessageStart(usize);

/// Where an unfinished nested attribute starts; hand it back to [`Writer::end_nest`].
#[derive(Debug)]
#[must_use = "a nest must be ended"]
pub struct Nest(usize);

/// The header fields of one netfilter message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// `nlmsg_type`, e.g. `nfnl_type(NFNL_SUBSYS_NFTABLES, NFT_MSG_NEWSETELEM)`.
    pub kind: u16,
    /// `nlmsg_flags` (`NLM_F_*`).
    pub flags: u16,
    /// `nlmsg_seq`, echoed in the kernel's answer.
    pub seq: u32,
    /// `nfgenmsg.nfgen_family` (`NFPROTO_*`).
    pub family: u8,
    /// `nfgenmsg.res_id` (queue number, or subsystem for a batch header).
    pub res_id: u16,
}

impl Writer {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Start a message: `nlmsghdr` (length patched by [`Writer::finish`], port id 0) then
    /// `nfgenmsg`.
    pub fn begin(&mut self, header: Header) -> MessageStart {
        self.pad();
        let start = self.buf.len();
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        self.buf.extend_from_slice(&header.kind.to_ne_bytes());
        self.buf.extend_from_slice(&header.flags.to_ne_bytes());
        self.buf.extend_from_slice(&header.seq.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        self.buf.push(header.family);
        self.buf.push(NFNETLINK_V0);
        self.buf.extend_from_slice(&header.res_id.to_be_bytes());
        MessageStart(start)
    }

    /// Finish a message: write its length.
    pub fn finish(&mut self, message: MessageStart) -> Result<(), Error> {
        let length =
            u32::try_from(self.buf.len() - message.0).map_err(|_| Error::TooLong("message"))?;
        self.buf[message.0..message.0 + 4].copy_from_slice(&length.to_ne_bytes());
        Ok(())
    }

    /// Append an attribute of type `kind` (flags included) with `payload`, padded.
    pub fn attr(&mut self, kind: u16, payload: &[u8]) -> Result<(), Error> {
        let length =
            u16::try_from(NLA_HDRLEN + payload.len()).map_err(|_| Error::TooLong("attribute"))?;
        self.buf.extend_from_slice(&length.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(payload);
        self.pad();
        Ok(())
    }

    /// A NUL-terminated string attribute (`NLA_NUL_STRING`/`NLA_STRING`).
    pub fn attr_str(&mut self, kind: u16, value: &str) -> Result<(), Error> {
        let mut payload = Vec::with_capacity(value.len() + 1);
        payload.extend_from_slice(value.as_bytes());
        payload.push(0);
        self.attr(kind, &payload)
    }

    /// A one-byte attribute.
    pub fn attr_u8(&mut self, kind: u16, value: u8) -> Result<(), Error> {
        self.attr(kind, &[value])
    }

    /// A big-endian 16-bit attribute.
    pub fn attr_be16(&mut self, kind: u16, value: u16) -> Result<(), Error> {
        self.attr(kind, &value.to_be_bytes())
    }

    /// A big-endian 32-bit attribute.
    pub fn attr_be32(&mut self, kind: u16, value: u32) -> Result<(), Error> {
        self.attr(kind, &value.to_be_bytes())
    }

    /// A big-endian 64-bit attribute.
    pub fn attr_be64(&mut self, kind: u16, value: u64) -> Result<(), Error> {
        self.attr(kind, &value.to_be_bytes())
    }

    /// Open a nested attribute of type `kind` (`NLA_F_NESTED` is added).
    pub fn nest(&mut self, kind: u16) -> Nest {
        let start = self.buf.len();
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf
            .extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        Nest(start)
    }

    /// Close a nested attribute: write its length.
    pub fn end_nest(&mut self, nest: Nest) -> Result<(), Error> {
        let length = u16::try_from(self.buf.len() - nest.0)
            .map_err(|_| Error::TooLong("nested attribute"))?;
        self.buf[nest.0..nest.0 + 2].copy_from_slice(&length.to_ne_bytes());
        Ok(())
    }

    /// Forget everything written.
    pub fn clear(&mut self) {
        self.buf.clear();
    }

    /// The bytes written so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Pad to 4 bytes.
    fn pad(&mut self) {
        let padded = self.buf.len().next_multiple_of(4);
        self.buf.resize(padded, 0);
    }
}

/// `NLMSG_HDRLEN` plus `nfgenmsg`: where a netfilter message's attributes start.
pub const NFNL_HDRLEN: usize = NLMSG_HDRLEN + 4;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::netlink::consts::NLA_F_NET_BYTEORDER;

    const HEADER: Header = Header {
        kind: 0x0a0c,
        flags: 0x0405,
        seq: 7,
        family: 1,
        res_id: 0,
    };

    #[test]
    fn message_header_and_nfgenmsg() {
        let mut w = Writer::new();
        let m = w.begin(Header {
            res_id: 10,
            ..HEADER
        });
        w.finish(m).unwrap();
        let mut expected = Vec::new();
        expected.extend_from_slice(&20u32.to_ne_bytes());
        expected.extend_from_slice(&0x0a0cu16.to_ne_bytes());
        expected.extend_from_slice(&0x0405u16.to_ne_bytes());
        expected.extend_from_slice(&7u32.to_ne_bytes());
        expected.extend_from_slice(&0u32.to_ne_bytes());
        expected.extend_from_slice(&[1, 0, 0, 10]);
        assert_eq!(w.as_bytes(), expected);
    }

    #[test]
    fn attributes_are_padded_but_lengths_are_not() {
        let mut w = Writer::new();
        w.attr_str(1, "ftpalg").unwrap();
        w.attr_u8(7, 6).unwrap();
        w.attr_be16(4 | NLA_F_NET_BYTEORDER, 2121).unwrap();
        let mut expected = Vec::new();
        expected.extend_from_slice(&11u16.to_ne_bytes());
        expected.extend_from_slice(&1u16.to_ne_bytes());
        expected.extend_from_slice(b"ftpalg\0\0");
        expected.extend_from_slice(&5u16.to_ne_bytes());
        expected.extend_from_slice(&7u16.to_ne_bytes());
        expected.extend_from_slice(&[6, 0, 0, 0]);
        expected.extend_from_slice(&6u16.to_ne_bytes());
        expected.extend_from_slice(&0x4004u16.to_ne_bytes());
        expected.extend_from_slice(&[0x08, 0x49, 0, 0]);
        assert_eq!(w.as_bytes(), expected);
    }

    #[test]
    fn nests_cover_padded_children_and_set_the_flag() {
        let mut w = Writer::new();
        let outer = w.nest(3);
        let inner = w.nest(1);
        w.attr(1, &[0xaa; 5]).unwrap();
        w.end_nest(inner).unwrap();
        w.attr_be64(4, 1500).unwrap();
        w.end_nest(outer).unwrap();
        let bytes = w.as_bytes();
        assert_eq!(bytes.len(), 4 + 4 + 12 + 12);
        assert_eq!(u16::from_ne_bytes([bytes[0], bytes[1]]), 32);
        assert_eq!(u16::from_ne_bytes([bytes[2], bytes[3]]), 0x8003);
        assert_eq!(u16::from_ne_bytes([bytes[4], bytes[5]]), 16);
        assert_eq!(u16::from_ne_bytes([bytes[8], bytes[9]]), 9);
        assert_eq!(&bytes[24..32], &1500u64.to_be_bytes());
    }

    #[test]
    fn oversized_attributes_are_refused() {
        let mut w = Writer::new();
        assert!(matches!(
            w.attr(1, &vec![0; 65532]),
            Err(Error::TooLong("attribute"))
        ));
        let mut w = Writer::new();
        w.attr(1, &vec![0; 65531]).unwrap();
        let mut w = Writer::new();
        let n = w.nest(1);
        w.attr(1, &vec![0; 65000]).unwrap();
        w.attr(1, &vec![0; 1000]).unwrap();
        assert!(matches!(
            w.end_nest(n),
            Err(Error::TooLong("nested attribute"))
        ));
    }
}
