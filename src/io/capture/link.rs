//! Link layers: which ones a capture may use, and how to find the IP datagram inside a frame.
//!
//! Owns: [`LinkType`], [`ip_datagram`] and [`NotIp`]. Pure: no I/O, never panics.
//! Does not own: the IP header's contents beyond its version nibble and length field (the
//! core parses IP and TCP), nor reading frames from files.
//!
//! Link-type numbers and header layouts follow the tcpdump.org list of link-layer header types
//! (<https://www.tcpdump.org/linktypes.html>, mirrored in draft-ietf-opsawg-pcaplinktype).

use std::fmt;

use etherparse::EtherType;
use etherparse::Ethernet2Slice;
use etherparse::SingleVlanSlice;

/// Link layers we can strip down to IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// `LINKTYPE_ETHERNET` (1): Ethernet II, with any number of 802.1Q / 802.1ad tags.
    Ethernet,
    /// `LINKTYPE_LINUX_SLL` (113): Linux "cooked" capture, version 1 (16-byte header).
    LinuxSll,
    /// `LINKTYPE_LINUX_SLL2` (276): Linux "cooked" capture, version 2 (20-byte header).
    LinuxSll2,
    /// `LINKTYPE_RAW` (101; 12 and 14 as some platforms wrote it): IPv4 or IPv6, told apart
    /// by the version nibble.
    Raw,
    /// `LINKTYPE_IPV4` (228): raw IPv4.
    RawIpv4,
    /// `LINKTYPE_IPV6` (229): raw IPv6.
    RawIpv6,
    /// `LINKTYPE_NULL` (0): BSD loopback, a 4-byte address family in the capturing host's
    /// byte order.
    Null,
    /// `LINKTYPE_LOOP` (108): OpenBSD loopback, a 4-byte address family in network byte order.
    Loop,
}

/// Why a frame yields no IP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotIp {
    /// The frame ends inside its link-layer header (or a VLAN tag), or nothing follows it.
    Truncated,
    /// The link layer carries another protocol: this ethertype (Ethernet, SLL, SLL2; after any
    /// VLAN tags), for example 0x0806 for ARP.
    OtherProtocol(u16),
    /// The null or loop header names another address family. For null, whose byte order is
    /// unknown, the smaller of its little- and big-endian readings.
    OtherFamily(u32),
    /// The link layer announces IP but the version nibble is this instead of 4 or 6 (or
    /// disagrees with the ethertype, family or link type).
    BadVersion(u8),
}

/// Strip the link layer: the IP datagram inside a frame, or why there is none.
///
/// The slice starts at the IPv4 or IPv6 header. It ends where that header's length field
/// says, when that is inside the frame, so Ethernet padding and a trailing FCS are dropped
/// (as the kernel trims in `ip_rcv` / `ipv6_rcv`); otherwise (a snapped capture, a zero or
/// bogus length) it runs to the end of the frame.
pub fn ip_datagram(link: LinkType, frame: &[u8]) -> Result<&[u8], NotIp> {
    match link {
        LinkType::Ethernet => ethernet(frame),
        LinkType::LinuxSll => cooked(frame, SLL_LEN, SLL_PROTOCOL_AT),
        LinkType::LinuxSll2 => cooked(frame, SLL2_LEN, SLL2_PROTOCOL_AT),
        LinkType::Raw => ip(frame, None),
        LinkType::RawIpv4 => ip(frame, Some(4)),
        LinkType::RawIpv6 => ip(frame, Some(6)),
        LinkType::Null => null(frame),
        LinkType::Loop => loopback(frame),
    }
}

impl LinkType {
    /// The link type a file names with this `LINKTYPE_` number, if it is one we handle.
    pub const fn from_number(number: u32) -> Option<Self> {
        match number {
            0 => Some(Self::Null),
            1 => Some(Self::Ethernet),
            12 | 14 | 101 => Some(Self::Raw),
            108 => Some(Self::Loop),
            113 => Some(Self::LinuxSll),
            228 => Some(Self::RawIpv4),
            229 => Some(Self::RawIpv6),
            276 => Some(Self::LinuxSll2),
            _ => None,
        }
    }

    /// The `LINKTYPE_` number a capture file records for this link type.
    pub const fn number(self) -> u16 {
        match self {
            Self::Null => 0,
            Self::Ethernet => 1,
            Self::Raw => 101,
            Self::Loop => 108,
            Self::LinuxSll => 113,
            Self::RawIpv4 => 228,
            Self::RawIpv6 => 229,
            Self::LinuxSll2 => 276,
        }
    }
}

impl fmt::Display for LinkType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::Ethernet => "Ethernet",
            Self::LinuxSll => "Linux cooked (SLL)",
            Self::LinuxSll2 => "Linux cooked v2 (SLL2)",
            Self::Raw => "raw IP",
            Self::RawIpv4 => "raw IPv4",
            Self::RawIpv6 => "raw IPv6",
            Self::Null => "BSD null/loopback",
            Self::Loop => "OpenBSD loopback",
        };
        write!(f, "{name} (link type {})", self.number())
    }
}

impl fmt::Display for NotIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => write!(f, "frame ends before an IP header"),
            Self::OtherProtocol(ether_type) => write!(f, "not IP (ethertype {ether_type:#06x})"),
            Self::OtherFamily(family) => write!(f, "not IP (address family {family})"),
            Self::BadVersion(version) => write!(f, "bad IP version {version}"),
        }
    }
}

/// Linux cooked v1: packet type, ARPHRD type, address length, 8 address bytes, protocol.
const SLL_LEN: usize = 16;
const SLL_PROTOCOL_AT: usize = 14;
/// Linux cooked v2: protocol, reserved, interface index, ARPHRD type, packet type, address
/// length, 8 address bytes.
const SLL2_LEN: usize = 20;
const SLL2_PROTOCOL_AT: usize = 0;
/// The fixed IPv4 and IPv6 header sizes (RFC 791, RFC 8200).
const IPV4_MIN_HEADER: usize = 20;
const IPV6_HEADER: usize = 40;

/// Ethernet II (IEEE 802.3 with an ethertype), parsed with etherparse; the FCS, if the capture
/// kept one, is trimmed with the padding by the IP length.
fn ethernet(frame: &[u8]) -> Result<&[u8], NotIp> {
    let ethernet = Ethernet2Slice::from_slice_without_fcs(frame).map_err(|_| NotIp::Truncated)?;
    by_ether_type(ethernet.ether_type(), ethernet.payload_slice())
}

/// SLL and SLL2 headers, read by hand: etherparse has no SLL2, and its SLL parser refuses
/// ARPHRD types that `tcpdump -i any` records (loopback, tun devices with ARPHRD_NONE).
fn cooked(frame: &[u8], header_len: usize, protocol_at: usize) -> Result<&[u8], NotIp> {
    let payload = frame.get(header_len..).ok_or(NotIp::Truncated)?;
    let Some(&[high, low]) = frame.get(protocol_at..protocol_at + 2) else {
        return Err(NotIp::Truncated);
    };
    by_ether_type(EtherType(u16::from_be_bytes([high, low])), payload)
}

/// Follows VLAN tags (802.1Q C-tags, 802.1ad S-tags and the pre-standard 0x9100 QinQ) to the
/// ethertype that names the payload.
fn by_ether_type(mut ether_type: EtherType, mut payload: &[u8]) -> Result<&[u8], NotIp> {
    while is_vlan_tag(ether_type) {
        let tag = SingleVlanSlice::from_slice(payload).map_err(|_| NotIp::Truncated)?;
        ether_type = tag.ether_type();
        payload = tag.payload_slice();
    }
    match ether_type {
        EtherType::IPV4 => ip(payload, Some(4)),
        EtherType::IPV6 => ip(payload, Some(6)),
        other => Err(NotIp::OtherProtocol(other.0)),
    }
}

fn is_vlan_tag(ether_type: EtherType) -> bool {
    matches!(
        ether_type,
        EtherType::VLAN_TAGGED_FRAME
            | EtherType::PROVIDER_BRIDGING
            | EtherType::VLAN_DOUBLE_TAGGED_FRAME
    )
}

/// `LINKTYPE_NULL`: the family is in the capturing host's byte order, which need not be the
/// file's, so both readings are tried.
fn null(frame: &[u8]) -> Result<&[u8], NotIp> {
    let (family, packet) = split_family(frame)?;
    let (little, big) = (u32::from_le_bytes(family), u32::from_be_bytes(family));
    let version = family_version(little).or(family_version(big));
    ip(
        packet,
        Some(version.ok_or(NotIp::OtherFamily(little.min(big)))?),
    )
}

/// `LINKTYPE_LOOP`: the family is in network byte order.
fn loopback(frame: &[u8]) -> Result<&[u8], NotIp> {
    let (family, packet) = split_family(frame)?;
    let family = u32::from_be_bytes(family);
    ip(
        packet,
        Some(family_version(family).ok_or(NotIp::OtherFamily(family))?),
    )
}

/// The 4-byte family field of a null or loop header, and what follows it.
fn split_family(frame: &[u8]) -> Result<([u8; 4], &[u8]), NotIp> {
    match frame.split_first_chunk::<4>() {
        Some((family, packet)) => Ok((*family, packet)),
        None => Err(NotIp::Truncated),
    }
}

/// AF_INET is 2 everywhere; AF_INET6 is 24 (NetBSD, OpenBSD), 28 (FreeBSD) or 30 (macOS).
fn family_version(family: u32) -> Option<u8> {
    match family {
        2 => Some(4),
        24 | 28 | 30 => Some(6),
        _ => None,
    }
}

/// Checks the version nibble against what the link layer announced (`None`: either).
fn ip(packet: &[u8], expected: Option<u8>) -> Result<&[u8], NotIp> {
    let version = packet.first().ok_or(NotIp::Truncated)? >> 4;
    match (version, expected) {
        (4, None | Some(4)) => Ok(trim_ipv4(packet)),
        (6, None | Some(6)) => Ok(trim_ipv6(packet)),
        _ => Err(NotIp::BadVersion(version)),
    }
}

/// Ends the datagram at the IPv4 total length (RFC 791) when that lies inside the frame.
fn trim_ipv4(packet: &[u8]) -> &[u8] {
    let Some(&[high, low]) = packet.get(2..4) else {
        return packet;
    };
    let total = usize::from(u16::from_be_bytes([high, low]));
    if total < IPV4_MIN_HEADER {
        return packet;
    }
    packet.get(..total).unwrap_or(packet)
}

/// Ends the datagram after the IPv6 payload length (RFC 8200) when that lies inside the frame;
/// a zero payload length (jumbogram, or TSO on the capturing host) keeps the whole frame.
fn trim_ipv6(packet: &[u8]) -> &[u8] {
    let Some(&[high, low]) = packet.get(4..6) else {
        return packet;
    };
    let payload = usize::from(u16::from_be_bytes([high, low]));
    if payload == 0 {
        return packet;
    }
    packet.get(..IPV6_HEADER + payload).unwrap_or(packet)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [LinkType; 8] = [
        LinkType::Ethernet,
        LinkType::LinuxSll,
        LinkType::LinuxSll2,
        LinkType::Raw,
        LinkType::RawIpv4,
        LinkType::RawIpv6,
        LinkType::Null,
        LinkType::Loop,
    ];

    /// A 24-byte IPv4 datagram (header + 4 payload bytes) and a 44-byte IPv6 one.
    fn ipv4() -> Vec<u8> {
        let mut packet = vec![0x45, 0, 0, 24, 0, 0, 0x40, 0, 64, 17, 0, 0];
        packet.extend([10, 0, 0, 1, 10, 0, 0, 2, 1, 2, 3, 4]);
        packet
    }

    fn ipv6() -> Vec<u8> {
        let mut packet = vec![0x60, 0, 0, 0, 0, 4, 17, 64];
        packet.extend([0xfe; 32]);
        packet.extend([1, 2, 3, 4]);
        packet
    }

    fn ethernet_frame(ether_type: u16, payload: &[u8]) -> Vec<u8> {
        let mut frame = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
        frame.extend(ether_type.to_be_bytes());
        frame.extend(payload);
        frame
    }

    #[test]
    fn link_type_numbers_round_trip() {
        for link in ALL {
            assert_eq!(LinkType::from_number(u32::from(link.number())), Some(link));
        }
        assert_eq!(LinkType::from_number(12), Some(LinkType::Raw));
        assert_eq!(LinkType::from_number(14), Some(LinkType::Raw));
        assert_eq!(LinkType::from_number(147), None);
    }

    #[test]
    fn arp_and_other_ethertypes_are_not_ip() {
        let arp = ethernet_frame(0x0806, &[0; 28]);
        assert_eq!(
            ip_datagram(LinkType::Ethernet, &arp),
            Err(NotIp::OtherProtocol(0x0806))
        );
        let mut tagged_arp = ethernet_frame(0x8100, &[0x00, 0x05, 0x08, 0x06]);
        tagged_arp.extend([0; 28]);
        assert_eq!(
            ip_datagram(LinkType::Ethernet, &tagged_arp),
            Err(NotIp::OtherProtocol(0x0806))
        );
    }

    #[test]
    fn ethernet_padding_and_fcs_are_trimmed() {
        let mut frame = ethernet_frame(0x0800, &ipv4());
        frame.resize(60, 0);
        frame.extend([0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(ip_datagram(LinkType::Ethernet, &frame), Ok(&ipv4()[..]));
        let mut frame = ethernet_frame(0x86dd, &ipv6());
        frame.extend([0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(ip_datagram(LinkType::Ethernet, &frame), Ok(&ipv6()[..]));
    }

    #[test]
    fn snapped_or_bogus_lengths_keep_the_whole_frame() {
        let mut long_claim = ipv4();
        long_claim[3] = 200;
        assert_eq!(ip_datagram(LinkType::Raw, &long_claim), Ok(&long_claim[..]));
        let mut short_claim = ipv4();
        short_claim[3] = 8;
        assert_eq!(
            ip_datagram(LinkType::Raw, &short_claim),
            Ok(&short_claim[..])
        );
        let mut jumbo = ipv6();
        jumbo[5] = 0;
        assert_eq!(ip_datagram(LinkType::Raw, &jumbo), Ok(&jumbo[..]));
    }

    #[test]
    fn version_must_match_the_link_layer() {
        let v6_as_v4 = ethernet_frame(0x0800, &ipv6());
        assert_eq!(
            ip_datagram(LinkType::Ethernet, &v6_as_v4),
            Err(NotIp::BadVersion(6))
        );
        assert_eq!(
            ip_datagram(LinkType::RawIpv6, &ipv4()),
            Err(NotIp::BadVersion(4))
        );
        assert_eq!(
            ip_datagram(LinkType::Raw, &[0x50, 0, 0, 0]),
            Err(NotIp::BadVersion(5))
        );
        assert_eq!(ip_datagram(LinkType::Raw, &ipv6()), Ok(&ipv6()[..]));
    }

    #[test]
    fn null_family_in_either_byte_order() {
        for (header, packet) in [
            ([2, 0, 0, 0], ipv4()),
            ([0, 0, 0, 2], ipv4()),
            ([24, 0, 0, 0], ipv6()),
            ([0, 0, 0, 28], ipv6()),
            ([30, 0, 0, 0], ipv6()),
        ] {
            let frame = [&header[..], &packet].concat();
            assert_eq!(
                ip_datagram(LinkType::Null, &frame),
                Ok(&packet[..]),
                "{header:?}"
            );
        }
        let frame = [&[23, 0, 0, 0][..], &ipv4()].concat();
        assert_eq!(
            ip_datagram(LinkType::Null, &frame),
            Err(NotIp::OtherFamily(23))
        );
    }

    #[test]
    fn loop_family_is_big_endian_only() {
        let frame = [&[0, 0, 0, 24][..], &ipv6()].concat();
        assert_eq!(ip_datagram(LinkType::Loop, &frame), Ok(&ipv6()[..]));
        let little = [&[2, 0, 0, 0][..], &ipv4()].concat();
        assert_eq!(
            ip_datagram(LinkType::Loop, &little),
            Err(NotIp::OtherFamily(0x0200_0000))
        );
    }

    #[test]
    fn cooked_headers_accept_any_arphrd_type() {
        // ARPHRD_LOOPBACK (772) as `tcpdump -i any` records for lo.
        let mut sll = vec![0, 0, 0x03, 0x04, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x00];
        sll.extend(ipv4());
        assert_eq!(ip_datagram(LinkType::LinuxSll, &sll), Ok(&ipv4()[..]));
        let mut sll2 = vec![0x86, 0xdd, 0, 0, 0, 0, 0, 9, 0xff, 0xfe, 4, 0];
        sll2.extend([0; 8]);
        sll2.extend(ipv6());
        assert_eq!(ip_datagram(LinkType::LinuxSll2, &sll2), Ok(&ipv6()[..]));
    }

    #[test]
    fn short_frames_are_truncated_not_panics() {
        let headers = [14, 16, 20, 1, 1, 1, 4, 4];
        for (link, header) in ALL.into_iter().zip(headers) {
            for len in 0..header {
                let frame = vec![0x45; len];
                assert_eq!(
                    ip_datagram(link, &frame),
                    Err(NotIp::Truncated),
                    "{link} {len}"
                );
            }
        }
        let cut_tag = ethernet_frame(0x88a8, &[0, 1]);
        assert_eq!(
            ip_datagram(LinkType::Ethernet, &cut_tag),
            Err(NotIp::Truncated)
        );
    }

    /// One well-formed frame per link type, to be cut and corrupted.
    fn valid_frame(link: LinkType) -> Vec<u8> {
        let (header, packet): (Vec<u8>, Vec<u8>) = match link {
            LinkType::Ethernet => (
                ethernet_frame(0x88a8, &[0, 1, 0x81, 0, 0, 2, 0x08, 0]),
                ipv4(),
            ),
            LinkType::LinuxSll => ([&[0; 14][..], &[0x86, 0xdd]].concat(), ipv6()),
            LinkType::LinuxSll2 => ([&[0x08, 0][..], &[0; 18]].concat(), ipv4()),
            LinkType::Raw | LinkType::RawIpv4 => (vec![], ipv4()),
            LinkType::RawIpv6 => (vec![], ipv6()),
            LinkType::Null => (vec![2, 0, 0, 0], ipv4()),
            LinkType::Loop => (vec![0, 0, 0, 30], ipv6()),
        };
        [header, packet].concat()
    }

    #[test]
    fn valid_frames_yield_ip() {
        for link in ALL {
            let datagram = ip_datagram(link, &valid_frame(link)).map(<[u8]>::len);
            assert!(
                datagram == Ok(24) || datagram == Ok(44),
                "{link}: {datagram:?}"
            );
        }
    }

    #[test]
    fn garbage_never_panics() {
        let mut state = 0x2545_f491_u32;
        for link in ALL {
            for n in 0..=u16::MAX {
                check_inside(link, &n.to_le_bytes()[..1]);
                check_inside(link, &n.to_le_bytes());
            }
            let valid = valid_frame(link);
            for len in 0..=valid.len() {
                for at in 0..len {
                    for value in [0, 0x45, 0x60, 0x81, 0xff, xorshift(&mut state)] {
                        let mut frame = valid[..len].to_vec();
                        frame[at] = value;
                        check_inside(link, &frame);
                    }
                }
            }
        }
    }

    /// Any datagram found lies inside the frame and starts with an IP version nibble.
    fn check_inside(link: LinkType, frame: &[u8]) {
        if let Ok(ip) = ip_datagram(link, frame) {
            let (outer, inner) = (frame.as_ptr_range(), ip.as_ptr_range());
            assert!(
                outer.start <= inner.start && inner.end <= outer.end,
                "{link} {frame:?}"
            );
            assert!(matches!(ip[0] >> 4, 4 | 6), "{link} {frame:?}");
        }
    }

    fn xorshift(state: &mut u32) -> u8 {
        *state ^= *state << 13;
        *state ^= *state >> 17;
        *state ^= *state << 5;
        (*state >> 24) as u8
    }
}
