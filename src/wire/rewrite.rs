//! [`rewrite_segment`]: one TCP segment rewritten for NAT (sequence and acknowledgement
//! numbers, SACK edges, payload), with every length and checksum kept in step.
//!
//! Owns: applying a [`SegmentEdit`] to a datagram that [`super::parse`] accepts, including the
//! IP length field (RFC 791 total length, RFC 8200 payload length), the IPv4 header checksum and
//! the TCP checksum (RFC 9293 §3.1, pseudo-header included). Does not own: deciding what the
//! new numbers or bytes are (the NAT layer keeps the sequence offsets), or the IP addresses.
//!
//! Checksums are updated incrementally (RFC 1624), never recomputed: a segment whose checksum
//! was wrong leaves here exactly as wrong, so its receiver still drops it, and a right one stays
//! right. Sans-IO: bytes in, bytes out.

use std::fmt;
use std::ops::Range;

use super::Datagram;
use super::Error;
use super::SeqNumber;
use super::TcpPacket;
use super::checksum;
use super::parse;

/// What to change in one TCP segment. The default changes nothing.
#[derive(Clone, Copy, Default)]
pub struct SegmentEdit<'a> {
    /// New sequence number, if it changes.
    pub seq: Option<SeqNumber>,
    /// New acknowledgement number, if it changes (only when the ACK flag is set: without it
    /// the field carries no acknowledgement, RFC 9293 §3.1, and is left as it was).
    pub ack: Option<SeqNumber>,
    /// Maps every SACK block edge (RFC 2018 option kind 5) of the segment; None = leave them.
    pub sack: Option<&'a dyn Fn(SeqNumber) -> SeqNumber>,
    /// New TCP payload, if it changes (its length may differ from the old one).
    pub payload: Option<&'a [u8]>,
}

/// Write into `out` (cleared first) the datagram `datagram` (an IPv4 or IPv6 packet holding one
/// TCP segment, as [`super::parse`] accepts) with `edit` applied: TCP seq/ack/SACK edges and
/// payload replaced, IPv4 total length / IPv6 payload length updated, the IPv4 header checksum
/// and the TCP checksum updated incrementally (RFC 1624: HC' = ~(~HC + ~m + m')), never
/// recomputed from scratch, so that a segment whose checksum was wrong stays exactly as wrong
/// (the receiver must still drop it) and one that was right stays right.
///
/// Bytes after the IP length (link-layer padding) are not copied. Edits that change nothing
/// leave every byte as it was. On error `out` is left empty, and the error says why:
/// - whatever [`super::parse`] refuses, [`Error::Fragment`] included;
/// - [`Error::MalformedIp`]`("protocol")`: the datagram holds no TCP segment;
/// - [`Error::MalformedIp`]`("length")`: the IP length field disagrees with the bytes present
///   (a capture cut short, a zero or jumbo length): the old payload, which the checksum update
///   needs, is not all there;
/// - [`Error::MalformedIp`]`("total length")` / `("payload length")`: the new IPv4 datagram or
///   IPv6 payload would exceed 65535 bytes.
pub fn rewrite_segment(
    datagram: &[u8],
    edit: &SegmentEdit<'_>,
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    out.clear();
    let result = write_edited(datagram, edit, out);
    if result.is_err() {
        out.clear();
    }
    result
}

impl SegmentEdit<'_> {
    /// Applies the header changes (seq, ack, SACK edges) to `tcp`, keeping its checksum in step.
    fn apply_to_header<T: AsRef<[u8]> + AsMut<[u8]>>(&self, tcp: &mut TcpPacket<T>) {
        if let Some(seq) = self.seq {
            tcp.set_seq(seq);
        }
        if let Some(ack) = self.ack.filter(|_| tcp.has_ack()) {
            tcp.set_ack(ack);
        }
        if let Some(map) = self.sack {
            tcp.map_sack_edges(map);
        }
    }
}

impl fmt::Debug for SegmentEdit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SegmentEdit")
            .field("seq", &self.seq)
            .field("ack", &self.ack)
            .field("sack", &self.sack.map(|_| "<map>"))
            .field("payload", &self.payload)
            .finish()
    }
}

/// Where the parts of a checked, complete TCP datagram lie.
#[derive(Debug, Clone)]
struct Layout {
    version: Version,
    /// The TCP header's offset.
    tcp: usize,
    /// The TCP payload, ending where the IP length field says the datagram ends.
    payload: Range<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V4,
    V6,
}

impl Layout {
    /// Locates the TCP header and payload the way [`super::parse`] does (it does the parsing),
    /// and refuses a datagram whose IP length field does not match the bytes present.
    fn of(datagram: &[u8]) -> Result<Self, Error> {
        let segment = match parse(datagram)? {
            Datagram::Tcp(segment) => segment,
            Datagram::Other(_) => return Err(Error::MalformedIp("protocol")),
        };
        let start = segment.payload_offset();
        let payload = start..start + segment.payload().len();
        let version = if segment.src().is_ipv4() {
            Version::V4
        } else {
            Version::V6
        };
        let layout = Self {
            version,
            tcp: segment.header_offset(),
            payload,
        };
        if layout.declared_end(datagram) != Some(layout.payload.end) {
            return Err(Error::MalformedIp("length"));
        }
        Ok(layout)
    }

    /// Where the IP length field says the datagram ends (parse checked the fixed header).
    fn declared_end(&self, datagram: &[u8]) -> Option<usize> {
        match self.version {
            Version::V4 => read_u16(datagram, ipv4::TOTAL_LEN).map(usize::from),
            Version::V6 => {
                read_u16(datagram, ipv6::PAYLOAD_LEN).map(|n| ipv6::HEADER_LEN + usize::from(n))
            }
        }
    }

    /// Writes the IP length field for a datagram that now ends at `end`, adjusting the IPv4
    /// header checksum; refused when the field cannot hold it.
    fn set_end(&self, out: &mut [u8], end: usize) -> Result<(), Error> {
        let (at, len, field) = match self.version {
            Version::V4 => (ipv4::TOTAL_LEN, end, "total length"),
            Version::V6 => (
                ipv6::PAYLOAD_LEN,
                end.saturating_sub(ipv6::HEADER_LEN),
                "payload length",
            ),
        };
        let new = u16::try_from(len).map_err(|_| Error::MalformedIp(field))?;
        // The fixed IP header was copied unchanged, and parse checked that it is there.
        let old = read_u16(out, at).ok_or(Error::MalformedIp("header"))?;
        if old == new {
            return Ok(());
        }
        let (old, new) = (old.to_be_bytes(), new.to_be_bytes());
        out[at..at + 2].copy_from_slice(&new);
        if self.version == Version::V4 {
            // RFC 791 §3.1: the header checksum covers the total length.
            let sum = read_u16(out, ipv4::CHECKSUM).unwrap_or_default();
            let sum = checksum::update(sum, &old, &new);
            out[ipv4::CHECKSUM..ipv4::CHECKSUM + 2].copy_from_slice(&sum.to_be_bytes());
        }
        Ok(())
    }
}

fn write_edited(datagram: &[u8], edit: &SegmentEdit<'_>, out: &mut Vec<u8>) -> Result<(), Error> {
    let layout = Layout::of(datagram)?;
    let old_payload = &datagram[layout.payload.clone()];
    let new_payload = edit.payload.unwrap_or(old_payload);
    let new_end = layout.payload.start + new_payload.len();
    out.reserve(new_end);
    out.extend_from_slice(&datagram[..layout.payload.start]);
    out.extend_from_slice(new_payload);
    // The new length fits the IP length field, and the TCP length is less than it.
    layout.set_end(out, new_end)?;
    let old_tcp_len = tcp_len(layout.payload.end - layout.tcp)?;
    let new_tcp_len = tcp_len(new_end - layout.tcp)?;
    let mut tcp = TcpPacket::new_checked(&mut out[layout.tcp..])?;
    edit.apply_to_header(&mut tcp);
    tcp.update_payload_checksum(old_payload);
    tcp.update_pseudo_header_len(old_tcp_len, new_tcp_len);
    Ok(())
}

/// The pseudo-header's TCP length (RFC 9293 §3.1; RFC 8200 §8.1 widens it to 32 bits, whose
/// high half is zero here because an IPv6 payload length is 16 bits).
fn tcp_len(len: usize) -> Result<u16, Error> {
    u16::try_from(len).map_err(|_| Error::MalformedIp("length"))
}

fn read_u16(bytes: &[u8], at: usize) -> Option<u16> {
    let pair = bytes.get(at..at + 2)?;
    Some(u16::from_be_bytes([pair[0], pair[1]]))
}

/// IPv4 header fields (RFC 791 §3.1).
mod ipv4 {
    pub(super) const TOTAL_LEN: usize = 2;
    pub(super) const CHECKSUM: usize = 10;
}

/// IPv6 header fields (RFC 8200 §3).
mod ipv6 {
    pub(super) const PAYLOAD_LEN: usize = 4;
    pub(super) const HEADER_LEN: usize = 40;
}

#[cfg(test)]
mod tests;
