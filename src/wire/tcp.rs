//! [`TcpPacket`]: a smoltcp-style view over a TCP header and its payload, with setters that
//! keep the checksum in step incrementally (RFC 1624), for NAT.
//!
//! Owns: the TCP header layout (RFC 9293 §3.1), the option walk as Linux's
//! `tcp_parse_options` does it, and SACK block edges (RFC 2018 §3). Does not own: the IP layer
//! (the pseudo-header's addresses and length are the caller's) or trusting a datagram ([`super::parse`] is the trust boundary; this view only checks that
//! the header fits).

use super::Error;
use super::SeqNumber;
use super::checksum;

/// A TCP header followed by its payload, over any byte buffer.
///
/// [`Self::new_checked`] makes sure the fixed header and the data offset fit in the buffer;
/// after that no accessor or setter can panic. Setters that change covered bytes adjust the
/// checksum field with [`checksum::update`] and never recompute it, so a wrong checksum stays
/// exactly as wrong.
#[derive(Debug, Clone)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// A view over `buffer`, which starts at the TCP header: refused unless the fixed header is
    /// present and the data offset is at least 5 words and within the buffer.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let bytes = buffer.as_ref();
        if bytes.len() < field::MIN_HEADER_LEN {
            return Err(Error::MalformedTcp("header"));
        }
        let header_len = usize::from(bytes[field::DATA_OFFSET] >> 4) * 4;
        if header_len < field::MIN_HEADER_LEN || header_len > bytes.len() {
            return Err(Error::MalformedTcp("data offset"));
        }
        Ok(Self { buffer })
    }

    /// The buffer the view was made over.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The sequence number field.
    pub fn seq(&self) -> SeqNumber {
        SeqNumber(self.read_u32(field::SEQ.start))
    }

    /// The acknowledgement number, when the ACK flag is set.
    pub fn ack(&self) -> Option<SeqNumber> {
        self.has_ack()
            .then(|| SeqNumber(self.read_u32(field::ACK.start)))
    }

    /// Whether the ACK flag is set.
    pub fn has_ack(&self) -> bool {
        self.bytes()[field::FLAGS] & field::FLAG_ACK != 0
    }

    /// The header length in bytes, options included (the data offset times 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.bytes()[field::DATA_OFFSET] >> 4) * 4
    }

    /// The checksum field.
    pub fn checksum(&self) -> u16 {
        let b = self.bytes();
        u16::from_be_bytes([b[field::CHECKSUM.start], b[field::CHECKSUM.start + 1]])
    }

    /// The option bytes (between the fixed header and the payload).
    pub fn options(&self) -> &[u8] {
        &self.bytes()[field::MIN_HEADER_LEN..self.header_len()]
    }

    /// The payload: everything in the buffer after the header.
    pub fn payload(&self) -> &[u8] {
        &self.bytes()[self.header_len()..]
    }

    /// The SACK block edges (RFC 2018 §3), in the order they appear: each block's left edge,
    /// then its right edge.
    pub fn sack_edges(&self) -> impl Iterator<Item = SeqNumber> + '_ {
        sack_edge_offsets(self.options()).map(|at| SeqNumber(self.read_u32(at)))
    }

    fn bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Reads four bytes at `at`; callers pass fixed-header fields or SACK edges found inside
    /// the options, so `at + 4` is within the header.
    fn read_u32(&self, at: usize) -> u32 {
        let b = self.bytes();
        u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    /// Writes the sequence number, adjusting the checksum.
    pub fn set_seq(&mut self, seq: SeqNumber) {
        self.replace(field::SEQ.start, &seq.0.to_be_bytes());
    }

    /// Writes the acknowledgement number field, adjusting the checksum. The field is written
    /// even when the ACK flag is clear; callers that follow RFC 9293 §3.1 leave it alone then.
    pub fn set_ack(&mut self, ack: SeqNumber) {
        self.replace(field::ACK.start, &ack.0.to_be_bytes());
    }

    /// Writes the checksum field as given (no adjustment).
    pub fn set_checksum(&mut self, sum: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&sum.to_be_bytes());
    }

    /// Replaces every SACK block edge `e` by `map(e)`, adjusting the checksum. Options Linux
    /// would not read (a malformed length, anything after one) are left as they are.
    pub fn map_sack_edges(&mut self, map: &dyn Fn(SeqNumber) -> SeqNumber) {
        for at in sack_edge_offsets(self.options()) {
            let edge = SeqNumber(self.read_u32(at));
            self.replace(at, &map(edge).0.to_be_bytes());
        }
    }

    /// Adjusts the checksum for the pseudo-header's TCP length changing from `old` to `new`
    /// bytes (RFC 9293 §3.1; for IPv6 the low half of the 32-bit length, RFC 8200 §8.1). The
    /// length field sits at an even offset of both pseudo-headers.
    pub fn update_pseudo_header_len(&mut self, old: u16, new: u16) {
        if old != new {
            let sum = checksum::update(self.checksum(), &old.to_be_bytes(), &new.to_be_bytes());
            self.set_checksum(sum);
        }
    }

    /// Adjusts the checksum for the payload having been `old` before (it is this view's
    /// payload now). The payload starts at an even offset, the header being whole words.
    pub fn update_payload_checksum(&mut self, old: &[u8]) {
        if old != self.payload() {
            let sum = checksum::update(self.checksum(), old, self.payload());
            self.set_checksum(sum);
        }
    }

    /// Writes the 4 bytes `new` at `at` (inside the header) and adjusts the checksum over the
    /// even-aligned words they touch, so that an option at an odd offset is summed right.
    /// Writing the bytes already there changes nothing, not even a `0xffff` checksum.
    fn replace(&mut self, at: usize, new: &[u8; 4]) {
        if self.bytes()[at..at + 4] == new[..] {
            return;
        }
        let window = (at & !1)..((at + 5) & !1);
        let mut old = [0; 6];
        let old = &mut old[..window.len()];
        old.copy_from_slice(&self.bytes()[window.clone()]);
        self.buffer.as_mut()[at..at + 4].copy_from_slice(new);
        let sum = checksum::update(self.checksum(), old, &self.bytes()[window]);
        self.set_checksum(sum);
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for TcpPacket<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// The offsets, counted from the TCP header start, of the SACK block edges in `options` (the
/// bytes after the fixed header), walked as Linux's `tcp_parse_options` walks them: EOL ends
/// the list, NOP is one byte, a length below 2 or past the end stops the walk, and a SACK
/// option counts only with a length of 2 + 8n, n >= 1 (RFC 2018 §3).
pub(super) fn sack_edge_offsets(options: &[u8]) -> impl Iterator<Item = usize> + use<> {
    let mut sacks = [(0, 0); field::MAX_SACK_OPTIONS];
    let mut found = 0;
    let mut at = 0;
    while let Some(&kind) = options.get(at) {
        match kind {
            field::OPT_END => break,
            field::OPT_NOP => at += 1,
            _ => {
                let Some(&len) = options.get(at + 1) else {
                    break;
                };
                let len = usize::from(len);
                if len < 2 || at + len > options.len() {
                    break;
                }
                let blocks = len - 2;
                if kind == field::OPT_SACK && blocks >= 8 && blocks % 8 == 0 && found < sacks.len()
                {
                    sacks[found] = (at + 2, at + len);
                    found += 1;
                }
                at += len;
            }
        }
    }
    sacks
        .into_iter()
        .take(found)
        .flat_map(|(start, end)| (start..end).step_by(4))
        .map(|at| at + field::MIN_HEADER_LEN)
}

/// Field offsets and constants of the TCP header (RFC 9293 §3.1).
mod field {
    use std::ops::Range;

    pub(super) const SEQ: Range<usize> = 4..8;
    pub(super) const ACK: Range<usize> = 8..12;
    pub(super) const DATA_OFFSET: usize = 12;
    pub(super) const FLAGS: usize = 13;
    pub(super) const CHECKSUM: Range<usize> = 16..18;
    pub(super) const MIN_HEADER_LEN: usize = 20;
    /// The 40 option bytes (15 header words, 5 of them fixed) hold at most four SACK options
    /// of one block (10 bytes) each.
    pub(super) const MAX_SACK_OPTIONS: usize = 4;
    pub(super) const FLAG_ACK: u8 = 0x10;
    pub(super) const OPT_END: u8 = 0;
    pub(super) const OPT_NOP: u8 = 1;
    pub(super) const OPT_SACK: u8 = 5;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::conversation::Flags;
    use crate::testkit::conversation::tcp;
    use crate::wire::Datagram;
    use crate::wire::parse;

    /// Fixed header (seq 1000, ack 5000, ACK set, data offset 8 words), then NOP, NOP, SACK
    /// [7000, 7100), and a SACK option of a wrong length (11) that must not be read.
    static HEADER_WITH_SACK: [u8; 32] = [
        0x9c, 0x40, 0x00, 0x15, 0x00, 0x00, 0x03, 0xe8, 0x00, 0x00, 0x13, 0x88, 0x80, 0x10, 0xfa,
        0xf0, 0x00, 0x00, 0x00, 0x00, // fixed header
        1, 1, 5, 10, 0, 0, 0x1b, 0x58, 0, 0, 0x1b, 0xbc,
    ];

    #[test]
    fn deconstruct() {
        let packet = TcpPacket::new_checked(&HEADER_WITH_SACK[..]).expect("a TCP header");
        assert_eq!(packet.seq(), SeqNumber(1000));
        assert_eq!(packet.ack(), Some(SeqNumber(5000)));
        assert_eq!(packet.header_len(), 32);
        assert_eq!(packet.options(), &HEADER_WITH_SACK[20..]);
        assert!(packet.payload().is_empty());
        let edges: Vec<_> = packet.sack_edges().collect();
        assert_eq!(edges, [SeqNumber(7000), SeqNumber(7100)]);
    }

    #[test]
    fn short_or_inconsistent_headers_are_refused() {
        assert_eq!(
            TcpPacket::new_checked(&HEADER_WITH_SACK[..19]).unwrap_err(),
            Error::MalformedTcp("header")
        );
        assert_eq!(
            TcpPacket::new_checked(&HEADER_WITH_SACK[..31]).unwrap_err(),
            Error::MalformedTcp("data offset")
        );
        let mut short_offset = HEADER_WITH_SACK;
        short_offset[12] = 0x40;
        assert_eq!(
            TcpPacket::new_checked(&short_offset[..]).unwrap_err(),
            Error::MalformedTcp("data offset")
        );
    }

    #[test]
    fn sack_options_are_read_as_linux_reads_them() {
        let offsets = |options: &[u8]| sack_edge_offsets(options).collect::<Vec<_>>();
        assert_eq!(offsets(&HEADER_WITH_SACK[20..]), [24, 28]);
        // Two blocks; then a second SACK option of one block.
        let two = [
            5, 18, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 10, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        assert_eq!(offsets(&two), [22, 26, 30, 34, 40, 44]);
        assert_eq!(offsets(&[5, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0]), [0usize; 0]);
        assert_eq!(offsets(&[5, 2]), [0usize; 0]);
        assert_eq!(offsets(&[0, 5, 10, 0, 0, 0, 0, 0, 0, 0, 0]), [0usize; 0]);
        assert_eq!(offsets(&[1, 5, 10, 0, 0, 0, 0, 0, 0, 0]), [0usize; 0]);
        assert_eq!(offsets(&[3, 1, 5, 10, 0, 0, 0, 0, 0, 0, 0, 0]), [0usize; 0]);
        assert_eq!(offsets(&[1, 5, 10, 0, 0, 0, 0, 0, 0, 0, 0]), [23, 27]);
    }

    #[test]
    fn setters_keep_the_checksum_right() {
        let psh = Flags {
            psh: true,
            ..Flags::default()
        };
        let client = "198.51.100.2:40000".parse().expect("an address");
        let server = "203.0.113.2:21".parse().expect("an address");
        let datagram = tcp(client, server, 1000, Some(5000), psh, b"NOOP\r\n");
        let mut bytes = datagram[20..].to_vec();
        let mut packet = TcpPacket::new_checked(&mut bytes[..]).expect("a TCP header");
        packet.set_seq(SeqNumber(0xdead_beef));
        packet.set_ack(SeqNumber(2));
        assert_eq!(packet.seq(), SeqNumber(0xdead_beef));
        assert_eq!(packet.ack(), Some(SeqNumber(2)));
        assert_eq!(packet.payload(), b"NOOP\r\n");
        let rewritten = [&datagram[..20], packet.as_ref()].concat();
        match parse(&rewritten) {
            Ok(Datagram::Tcp(segment)) => assert_eq!(segment.checksum_ok(), Some(true)),
            other => panic!("expected TCP, got {other:?}"),
        }
    }
}
