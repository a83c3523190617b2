//! [`Segment`]: the checked view of one IPv4/IPv6 TCP datagram, and [`parse`], its only constructor.
//!
//! Parsing goes through etherparse's lax slices so that a capture cut short by its snap length
//! still yields the headers and the bytes that were captured; [`Segment::wire_len`] says how
//! many payload bytes were really on the wire (RFC 791 total length, RFC 8200 payload length).
//! IPv6 extension headers are walked by etherparse (bounded: it refuses loops and over-long
//! chains); a fragment is refused as [`Error::Fragment`] because its TCP payload is incomplete.

use std::net::IpAddr;
use std::net::SocketAddr;

use etherparse::IpNumber;
use etherparse::LaxIpSlice;
use etherparse::TcpSlice;

use super::Error;
use super::SeqNumber;

/// The TCP control flags that change connection state (RFC 9293 §3.1).
///
/// SYN+FIN, SYN+RST and FIN+RST are contradictory and refused at [`parse`], so one value
/// suffices, as in smoltcp's `TcpControl`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// None of SYN, FIN, RST.
    None,
    /// SYN (a connection request, or with an ACK, its acceptance).
    Syn,
    /// FIN (the sender has no more data).
    Fin,
    /// RST (the connection is aborted).
    Rst,
}

/// A parsed TCP segment inside an IPv4 or IPv6 datagram.
#[derive(Debug, Clone)]
pub struct Segment<'a> {
    src: SocketAddr,
    dst: SocketAddr,
    tcp: TcpSlice<'a>,
    control: Control,
    wire_len: u32,
    payload_offset: usize,
}

/// What a datagram holds, once parsed.
#[derive(Debug, Clone)]
pub enum Datagram<'a> {
    /// A TCP segment.
    Tcp(Segment<'a>),
    /// Any other transport protocol (UDP, ICMP, ...), by IP protocol number.
    Other(u8),
}

/// Parse an IP datagram (starting at the IPv4 or IPv6 header).
pub fn parse(datagram: &[u8]) -> Result<Datagram<'_>, Error> {
    if let Peek::Tcp(..) = peek(datagram) {
        if let Some(segment) = plain_v4(datagram) {
            return Ok(Datagram::Tcp(segment));
        }
    }
    parse_general(datagram)
}

/// [`parse`] through etherparse's lax slices: any IPv4 or IPv6 datagram.
fn parse_general(datagram: &[u8]) -> Result<Datagram<'_>, Error> {
    let (ip, _ext_error) =
        LaxIpSlice::from_slice(datagram).map_err(|_| Error::MalformedIp("header"))?;
    let payload = ip.payload();
    if payload.fragmented {
        return Err(Error::Fragment);
    }
    if payload.ip_number != IpNumber::TCP {
        return Ok(Datagram::Other(payload.ip_number.0));
    }
    let declared = declared_payload_len(&ip, datagram, payload.payload);
    let tcp = TcpSlice::from_slice(payload.payload).map_err(|_| Error::MalformedTcp("header"))?;
    let control = control(&tcp)?;
    let header_len = tcp.header_slice().len();
    let wire_len = declared
        .checked_sub(header_len)
        .ok_or(Error::MalformedIp("length"))?;
    let payload_offset = offset_in(datagram, tcp.payload());
    Ok(Datagram::Tcp(Segment {
        src: SocketAddr::new(ip.source_addr(), tcp.source_port()),
        dst: SocketAddr::new(ip.destination_addr(), tcp.destination_port()),
        control,
        wire_len: u32::try_from(wire_len).map_err(|_| Error::MalformedIp("length"))?,
        payload_offset,
        tcp,
    }))
}

/// [`parse`] of a datagram [`peek`] found to be a plain IPv4 TCP segment (header of 20 bytes,
/// whole, not a fragment, a sound TCP header length): its fields read from fixed offsets, the
/// IP header's walk through etherparse skipped. The same `Segment` the general path builds
/// (a test checks it); `None` leaves the datagram to that path.
fn plain_v4(datagram: &[u8]) -> Option<Segment<'_>> {
    const IPV4_LEN: usize = 20;
    let tcp = TcpSlice::from_slice(datagram.get(IPV4_LEN..)?).ok()?;
    let control = control(&tcp).ok()?;
    // `peek` checked the total length equals the datagram's: nothing was cut short.
    let wire_len = datagram.len() - IPV4_LEN - tcp.header_slice().len();
    let address = |at: usize| -> Option<IpAddr> {
        let octets: [u8; 4] = datagram.get(at..at + 4)?.try_into().ok()?;
        Some(IpAddr::from(octets))
    };
    Some(Segment {
        src: SocketAddr::new(address(12)?, tcp.source_port()),
        dst: SocketAddr::new(address(16)?, tcp.destination_port()),
        control,
        wire_len: u32::try_from(wire_len).ok()?,
        payload_offset: offset_in(datagram, tcp.payload()),
        tcp,
    })
}

/// What [`peek`] could tell without parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peek {
    /// [`parse`] would return `Ok(Datagram::Other(_))`.
    Other,
    /// [`parse`] would return a TCP segment with these source and destination ports.
    Tcp(u16, u16),
    /// Anything else: IPv6, IPv4 with options, cut short, a fragment, a malformed header.
    /// [`parse`] decides.
    Unsure,
}

/// The cheap check before [`parse`]: the common plain IPv4 datagram (no options, whole, not a
/// fragment, a sound TCP header) read from fixed offsets, so that the many datagrams that are
/// not on a control port need no full parse. Never claims what [`parse`] would not return.
pub fn peek(datagram: &[u8]) -> Peek {
    const PLAIN_V4: u8 = 0x45;
    const IPV4_LEN: usize = 20;
    let Some(ip) = datagram.get(..IPV4_LEN) else {
        return Peek::Unsure;
    };
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    // Bytes 6-7: reserved bit, DF, MF, then the 13-bit fragment offset.
    let fragment = u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0;
    if ip[0] != PLAIN_V4 || total != datagram.len() || fragment {
        return Peek::Unsure;
    }
    if ip[9] != IpNumber::TCP.0 {
        return Peek::Other;
    }
    let Some(tcp) = datagram.get(IPV4_LEN..IPV4_LEN + 20) else {
        return Peek::Unsure;
    };
    let header_len = usize::from(tcp[12] >> 4) * 4;
    let flags = tcp[13] & 0x07; // FIN, SYN, RST: at most one (see `control`)
    if header_len < 20 || IPV4_LEN + header_len > total || flags & flags.wrapping_sub(1) != 0 {
        return Peek::Unsure;
    }
    Peek::Tcp(
        u16::from_be_bytes([tcp[0], tcp[1]]),
        u16::from_be_bytes([tcp[2], tcp[3]]),
    )
}

impl<'a> Segment<'a> {
    /// The sender's address and port.
    pub fn src(&self) -> SocketAddr {
        self.src
    }

    /// The receiver's address and port.
    pub fn dst(&self) -> SocketAddr {
        self.dst
    }

    /// The sequence number of the first payload byte (or of the SYN/FIN).
    pub fn seq(&self) -> SeqNumber {
        SeqNumber(self.tcp.sequence_number())
    }

    /// The acknowledgement number, when the ACK flag is set.
    pub fn ack(&self) -> Option<SeqNumber> {
        self.tcp
            .ack()
            .then(|| SeqNumber(self.tcp.acknowledgment_number()))
    }

    /// SYN, FIN, RST or none of them.
    pub fn control(&self) -> Control {
        self.control
    }

    /// The payload bytes present in the buffer (fewer than [`Self::wire_len`] if the capture
    /// cut the datagram short).
    pub fn payload(&self) -> &'a [u8] {
        self.tcp.payload()
    }

    /// How many payload bytes the datagram carried on the wire, per its IP length field.
    pub fn wire_len(&self) -> u32 {
        self.wire_len
    }

    /// True when the buffer holds fewer payload bytes than the wire carried.
    pub fn is_truncated(&self) -> bool {
        (self.payload().len() as u64) < u64::from(self.wire_len)
    }

    /// Where the TCP payload starts inside the datagram (for in-place rewriting).
    pub fn payload_offset(&self) -> usize {
        self.payload_offset
    }

    /// Where the TCP header starts inside the datagram (after the IP header and any IPv4
    /// options or IPv6 extension headers).
    pub fn header_offset(&self) -> usize {
        // The payload follows the header in the same buffer, so this cannot underflow.
        self.payload_offset - self.tcp.header_slice().len()
    }

    /// Whether the TCP checksum (RFC 9293 §3.1, pseudo-header included) is right; `None`
    /// when it cannot be checked because the datagram was cut short.
    pub fn checksum_ok(&self) -> Option<bool> {
        if self.is_truncated() {
            return None;
        }
        let computed = match (self.src.ip(), self.dst.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => self.tcp.calc_checksum_ipv4(s.octets(), d.octets()),
            (IpAddr::V6(s), IpAddr::V6(d)) => self.tcp.calc_checksum_ipv6(s.octets(), d.octets()),
            _ => return Some(false),
        };
        computed.ok().map(|sum| sum == self.tcp.checksum())
    }
}

/// The IP payload length the header declares (it may exceed what was captured).
fn declared_payload_len(ip: &LaxIpSlice<'_>, datagram: &[u8], payload: &[u8]) -> usize {
    let start = offset_in(datagram, payload);
    let declared_total = match ip {
        LaxIpSlice::Ipv4(v4) => usize::from(v4.header().total_len()),
        LaxIpSlice::Ipv6(v6) => 40 + usize::from(v6.header().payload_length()),
    };
    // A zero or too-small length field makes etherparse fall back to the slice length.
    declared_total
        .max(start + payload.len())
        .saturating_sub(start)
}

/// The offset of `inner` within `outer`; `inner` must be a subslice of `outer`.
fn offset_in(outer: &[u8], inner: &[u8]) -> usize {
    (inner.as_ptr() as usize).saturating_sub(outer.as_ptr() as usize)
}

fn control(tcp: &TcpSlice<'_>) -> Result<Control, Error> {
    match (tcp.syn(), tcp.fin(), tcp.rst()) {
        (false, false, false) => Ok(Control::None),
        (true, false, false) => Ok(Control::Syn),
        (false, true, false) => Ok(Control::Fin),
        (false, false, true) => Ok(Control::Rst),
        _ => Err(Error::MalformedTcp("flags")),
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::net::Ipv6Addr;

    use etherparse::PacketBuilder;

    use super::*;

    fn v4_segment(payload: &[u8]) -> Vec<u8> {
        let builder = PacketBuilder::ipv4([198, 51, 100, 2], [203, 0, 113, 2], 64)
            .tcp(40000, 21, 1000, 64240)
            .ack(5000)
            .psh();
        let mut out = Vec::new();
        builder.write(&mut out, payload).expect("in-memory write");
        out
    }

    fn tcp(datagram: &[u8]) -> Segment<'_> {
        match parse(datagram) {
            Ok(Datagram::Tcp(segment)) => segment,
            other => panic!("expected TCP, got {other:?}"),
        }
    }

    #[test]
    fn ipv4_segment_fields() {
        let bytes = v4_segment(b"PORT 198,51,100,2,4,1\r\n");
        let seg = tcp(&bytes);
        assert_eq!(seg.src(), "198.51.100.2:40000".parse().unwrap());
        assert_eq!(seg.dst(), "203.0.113.2:21".parse().unwrap());
        assert_eq!(seg.seq(), SeqNumber(1000));
        assert_eq!(seg.ack(), Some(SeqNumber(5000)));
        assert_eq!(seg.control(), Control::None);
        assert_eq!(seg.payload(), b"PORT 198,51,100,2,4,1\r\n");
        assert_eq!(seg.wire_len(), 23);
        assert_eq!(seg.payload_offset(), 40);
        assert_eq!(seg.header_offset(), 20);
        assert_eq!(seg.checksum_ok(), Some(true));
    }

    #[test]
    fn bad_checksum_is_detected() {
        let mut bytes = v4_segment(b"PASV\r\n");
        let last = bytes.len() - 1;
        bytes[last] ^= 0x20;
        assert_eq!(tcp(&bytes).checksum_ok(), Some(false));
    }

    #[test]
    fn truncated_capture_keeps_wire_length() {
        let bytes = v4_segment(b"227 Entering Passive Mode (203,0,113,2,195,80)\r\n");
        let cut = &bytes[..bytes.len() - 10];
        let seg = tcp(cut);
        assert!(seg.is_truncated());
        assert_eq!(seg.wire_len(), 48);
        assert_eq!(seg.payload().len(), 38);
        assert_eq!(seg.checksum_ok(), None);
    }

    #[test]
    fn ipv6_with_extension_header() {
        let src = Ipv6Addr::new(0x2001, 0xdb8, 0x100, 0, 0, 0, 0, 2);
        let dst = Ipv6Addr::new(0x2001, 0xdb8, 0x113, 0, 0, 0, 0, 2);
        let builder = PacketBuilder::ipv6(src.octets(), dst.octets(), 64)
            .tcp(40000, 21, 7, 1000)
            .syn();
        let mut plain = Vec::new();
        builder.write(&mut plain, &[]).expect("in-memory write");
        // Insert a destination-options header (8 bytes, PadN) between IPv6 and TCP.
        let mut with_ext = plain[..40].to_vec();
        with_ext[6] = 60; // next header: destination options
        with_ext[5] += 8; // payload length grows by 8
        with_ext.extend_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0]);
        with_ext.extend_from_slice(&plain[40..]);
        let seg = tcp(&with_ext);
        assert_eq!(seg.src(), SocketAddr::new(src.into(), 40000));
        assert_eq!(seg.control(), Control::Syn);
        assert_eq!(seg.ack(), None);
        assert_eq!(seg.payload_offset(), 68);
        assert_eq!(seg.header_offset(), 48);
    }

    #[test]
    fn fragments_and_garbage_are_refused() {
        let mut bytes = v4_segment(b"PASV\r\n");
        bytes[6] |= 0x20; // more fragments
        assert_eq!(parse(&bytes).unwrap_err(), Error::Fragment);
        assert_eq!(parse(&[]).unwrap_err(), Error::MalformedIp("header"));
        assert_eq!(
            parse(&[0x45, 0, 0]).unwrap_err(),
            Error::MalformedIp("header")
        );
        assert!(parse(&bytes[..30]).is_err());
    }

    /// `peek` never claims what `parse` would not say, and the fast path it opens builds the
    /// segment the general path builds, over every prefix and every single-byte change of a
    /// few datagrams (and it is sure of the plain ones).
    #[test]
    fn peek_agrees_with_parse() {
        let udp = {
            let builder = PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64).udp(53, 5353);
            let mut out = Vec::new();
            builder.write(&mut out, b"query").expect("in-memory write");
            out
        };
        let plain = v4_segment(b"PASV\r\n");
        assert_eq!(peek(&plain), Peek::Tcp(40000, 21));
        assert_eq!(peek(&udp), Peek::Other);
        for bytes in [plain, v4_segment(b""), udp] {
            for end in 0..=bytes.len() {
                check_peek(&bytes[..end]);
            }
            for at in 0..bytes.len() {
                for value in [
                    0x00, 0x01, 0x02, 0x03, 0x05, 0x07, 0x20, 0x40, 0x45, 0x46, 0x50, 0x80, 0xff,
                ] {
                    let mut changed = bytes.clone();
                    changed[at] = value;
                    check_peek(&changed);
                }
            }
        }
    }

    fn check_peek(bytes: &[u8]) {
        if let Some(fast) = plain_v4(bytes).filter(|_| matches!(peek(bytes), Peek::Tcp(..))) {
            let general = parse_general(bytes);
            assert_eq!(
                format!("{:?}", Ok::<_, Error>(Datagram::Tcp(fast))),
                format!("{general:?}"),
                "{bytes:?}"
            );
        }
        match (peek(bytes), parse_general(bytes)) {
            (Peek::Unsure, _) | (Peek::Other, Ok(Datagram::Other(_))) => {}
            (Peek::Tcp(src, dst), Ok(Datagram::Tcp(segment))) => {
                assert_eq!((src, dst), (segment.src().port(), segment.dst().port()));
            }
            (peeked, parsed) => panic!("{bytes:?}: peek {peeked:?}, parse {parsed:?}"),
        }
    }

    #[test]
    fn contradictory_flags_are_refused() {
        let mut bytes = v4_segment(b"");
        bytes[33] |= 0x03; // SYN + FIN
        assert_eq!(parse(&bytes).unwrap_err(), Error::MalformedTcp("flags"));
    }

    #[test]
    fn other_protocols_are_named() {
        let builder =
            PacketBuilder::ipv4(Ipv4Addr::LOCALHOST.octets(), [127, 0, 0, 2], 64).udp(1, 2);
        let mut out = Vec::new();
        builder.write(&mut out, b"x").expect("in-memory write");
        assert!(matches!(parse(&out), Ok(Datagram::Other(17))));
    }

    #[test]
    fn never_panics_on_prefixes() {
        let bytes = v4_segment(b"EPRT |1|198.51.100.2|5282|\r\n");
        for end in 0..bytes.len() {
            let _ = parse(&bytes[..end]);
            let mut flipped = bytes.clone();
            flipped[end] ^= 0xff;
            let _ = parse(&flipped);
        }
    }
}
