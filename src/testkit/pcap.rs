//! Capture files built in memory, for tests and the sample-capture generator.
//!
//! Owns: [`Writer`] (legacy pcap in micro- or nanoseconds, or pcapng with any number of
//! interfaces, all little endian) and [`frame`], which wraps an IP datagram in a link-layer
//! header. Pure and deterministic: fixed MAC addresses, interface index and options, so the
//! same calls give the same bytes. Does not own: reading captures (`io::capture`) or building
//! IP datagrams (use `etherparse::PacketBuilder`).
//!
//! Layouts per the tcpdump `pcap-savefile(5)` man page / draft-ietf-opsawg-pcap,
//! draft-ietf-opsawg-pcapng, and <https://www.tcpdump.org/linktypes.html>.

use crate::io::capture::LinkType;
use crate::time::Instant;

/// Which container to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Legacy pcap, microsecond timestamps (magic 0xa1b2c3d4).
    Pcap,
    /// Legacy pcap, nanosecond timestamps (magic 0xa1b23c4d).
    PcapNanos,
    /// pcapng: one section; interfaces as given.
    PcapNg,
}

/// One pcapng interface: its link type and `if_tsresol` (`None`: no option, microseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interface {
    /// The link layer of its packets.
    pub link: LinkType,
    /// The `if_tsresol` option byte, if written: 6 is microseconds, 9 nanoseconds, 0x80 | n
    /// is 2^-n seconds.
    pub tsresol: Option<u8>,
}

/// A capture file under construction.
#[derive(Debug, Clone)]
pub struct Writer {
    format: Format,
    bytes: Vec<u8>,
    /// Per interface, timestamp units per second (legacy files have one interface).
    units_per_second: Vec<u64>,
    last_timestamp: Instant,
}

/// A link-layer header to put in front of an IP datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// Ethernet II; `vlans` are VLAN IDs, outermost first: every tag but the innermost is an
    /// 802.1ad S-tag (0x88a8), the innermost an 802.1Q C-tag (0x8100).
    Ethernet {
        /// VLAN IDs (12 bits each), outermost first.
        vlans: Vec<u16>,
    },
    /// Linux cooked v1, as received by this host on an Ethernet interface.
    LinuxSll,
    /// Linux cooked v2, likewise, on interface index 1.
    LinuxSll2,
    /// Raw IP (`LINKTYPE_RAW`).
    Raw,
    /// Raw IPv4 (`LINKTYPE_IPV4`).
    RawIpv4,
    /// Raw IPv6 (`LINKTYPE_IPV6`).
    RawIpv6,
    /// BSD null: family little endian (2, or 24 for IPv6).
    Null,
    /// OpenBSD loop: family big endian (2, or 24 for IPv6).
    Loop,
}

/// The destination MAC address of every Ethernet frame (locally administered).
pub const DST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
/// The source MAC address of every Ethernet frame, and the address in cooked headers.
pub const SRC_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// The snap length written in headers: libpcap's maximum.
pub const SNAPLEN: u32 = 262_144;

impl Writer {
    /// Writes the file header, or for pcapng a section header and one interface with
    /// microsecond timestamps.
    pub fn new(format: Format, link: LinkType) -> Self {
        match format {
            Format::PcapNg => Self::pcapng(&[Interface {
                link,
                tsresol: None,
            }]),
            Format::Pcap | Format::PcapNanos => Self::legacy(format, link),
        }
    }

    /// A pcapng file with these interfaces, numbered from 0 in order.
    pub fn pcapng(interfaces: &[Interface]) -> Self {
        let mut writer = Self {
            format: Format::PcapNg,
            bytes: Vec::new(),
            units_per_second: Vec::new(),
            last_timestamp: Instant::default(),
        };
        writer.block(SHB, &section_header_body());
        for interface in interfaces {
            writer.block(IDB, &interface_body(interface));
            writer
                .units_per_second
                .push(units_per_second(interface.tsresol));
        }
        writer
    }

    /// One packet on interface 0.
    pub fn packet(&mut self, timestamp: Instant, frame: &[u8]) -> &mut Self {
        self.packet_on(0, timestamp, frame)
    }

    /// One packet on `interface` (pcapng: an Enhanced Packet Block, whose interface need not
    /// be declared, to test readers; legacy pcap: a record, the interface ignored).
    pub fn packet_on(&mut self, interface: u32, timestamp: Instant, frame: &[u8]) -> &mut Self {
        self.record(interface, timestamp, frame, frame.len())
    }

    /// One packet cut to its first `keep` bytes, as a snap length would, on interface 0; the
    /// original length recorded is `frame.len()`.
    pub fn snapped_packet(&mut self, timestamp: Instant, frame: &[u8], keep: usize) -> &mut Self {
        let kept = frame.get(..keep).unwrap_or(frame);
        self.record(0, timestamp, kept, frame.len())
    }

    /// pcapng: a Simple Packet Block (no timestamp; readers give it the previous packet's).
    /// Legacy pcap: a record with the previous packet's timestamp, which reads back the same.
    pub fn simple_packet(&mut self, frame: &[u8]) -> &mut Self {
        if self.format != Format::PcapNg {
            return self.record(0, self.last_timestamp, frame, frame.len());
        }
        let mut body = u32_le(len_u32(frame.len())).to_vec();
        body.extend_from_slice(frame);
        self.block(SPB, &body)
    }

    /// pcapng: a block of any type around `body` (padded to 32 bits), for example a custom
    /// or statistics block that readers must skip. Legacy pcap has no blocks: this appends
    /// nothing there.
    pub fn block(&mut self, block_type: u32, body: &[u8]) -> &mut Self {
        if self.format == Format::PcapNg {
            let padded = body.len().next_multiple_of(4);
            let length = len_u32(12 + padded);
            self.bytes.extend(u32_pair(block_type, length));
            self.bytes.extend_from_slice(body);
            self.bytes.resize(self.bytes.len() + padded - body.len(), 0);
            self.bytes.extend(u32_le(length));
        }
        self
    }

    /// The file's bytes.
    pub fn finish(self) -> Vec<u8> {
        self.bytes
    }

    fn legacy(format: Format, link: LinkType) -> Self {
        let magic: u32 = if format == Format::PcapNanos {
            0xa1b2_3c4d
        } else {
            0xa1b2_c3d4
        };
        let mut bytes = u32_le(magic).to_vec();
        bytes.extend([2, 0, 4, 0]); // version 2.4
        bytes.extend([0; 8]); // thiszone, sigfigs
        bytes.extend(u32_le(SNAPLEN));
        bytes.extend(u32_le(u32::from(link.number())));
        let units = if format == Format::PcapNanos {
            1_000_000_000
        } else {
            1_000_000
        };
        Self {
            format,
            bytes,
            units_per_second: vec![units],
            last_timestamp: Instant::default(),
        }
    }

    fn record(&mut self, interface: u32, at: Instant, data: &[u8], original: usize) -> &mut Self {
        self.last_timestamp = at;
        let lengths = u32_pair(len_u32(data.len()), len_u32(original));
        if self.format == Format::PcapNg {
            let ticks = self.ticks(interface as usize, at);
            let mut body = u32_le(interface).to_vec();
            body.extend(u32_pair((ticks >> 32) as u32, ticks as u32));
            body.extend(lengths);
            body.extend_from_slice(data);
            return self.block(EPB, &body);
        }
        let units = self.units_per_second.first().copied().unwrap_or(1_000_000);
        let ticks = self.ticks(0, at);
        self.bytes
            .extend(u32_pair((ticks / units) as u32, (ticks % units) as u32));
        self.bytes.extend(lengths);
        self.bytes.extend_from_slice(data);
        self
    }

    /// `at` in the interface's timestamp units (microseconds for an undeclared interface).
    fn ticks(&self, interface: usize, at: Instant) -> u64 {
        let units = self
            .units_per_second
            .get(interface)
            .copied()
            .unwrap_or(1_000_000);
        let ticks = u128::from(at.as_micros()) * u128::from(units) / 1_000_000;
        u64::try_from(ticks).unwrap_or(u64::MAX)
    }
}

/// Wrap an IP datagram in a link-layer header of the given type, choosing the ethertype or
/// address family from the IP version nibble (anything but 6 is framed as IPv4).
pub fn frame(link: &Link, ip: &[u8]) -> Vec<u8> {
    let v6 = ip.first().is_some_and(|byte| byte >> 4 == 6);
    let ether_type: u16 = if v6 { 0x86dd } else { 0x0800 };
    let family: u32 = if v6 { 24 } else { 2 };
    let mut frame = match link {
        Link::Ethernet { vlans } => ethernet_header(vlans, ether_type),
        Link::LinuxSll => sll_header(ether_type),
        Link::LinuxSll2 => sll2_header(ether_type),
        Link::Raw | Link::RawIpv4 | Link::RawIpv6 => Vec::new(),
        Link::Null => family.to_le_bytes().to_vec(),
        Link::Loop => family.to_be_bytes().to_vec(),
    };
    frame.extend_from_slice(ip);
    frame
}

impl Link {
    /// The link type a capture of these frames declares.
    pub fn link_type(&self) -> LinkType {
        match self {
            Self::Ethernet { .. } => LinkType::Ethernet,
            Self::LinuxSll => LinkType::LinuxSll,
            Self::LinuxSll2 => LinkType::LinuxSll2,
            Self::Raw => LinkType::Raw,
            Self::RawIpv4 => LinkType::RawIpv4,
            Self::RawIpv6 => LinkType::RawIpv6,
            Self::Null => LinkType::Null,
            Self::Loop => LinkType::Loop,
        }
    }
}

/// pcapng block types (draft-ietf-opsawg-pcapng §4).
const SHB: u32 = 0x0a0d_0d0a;
const IDB: u32 = 1;
const SPB: u32 = 3;
const EPB: u32 = 6;
/// The `if_tsresol` option code (§4.2).
const IF_TSRESOL: u16 = 9;
/// 802.1ad S-tag and 802.1Q C-tag protocol identifiers.
const S_TAG: u16 = 0x88a8;
const C_TAG: u16 = 0x8100;
/// ARPHRD_ETHER, the ARP hardware type of an Ethernet interface.
const ARPHRD_ETHER: u16 = 1;

/// Byte-order magic, version 1.0, section length unknown (-1), no options.
fn section_header_body() -> Vec<u8> {
    let mut body = u32_le(0x1a2b_3c4d).to_vec();
    body.extend([1, 0, 0, 0]);
    body.extend((-1i64).to_le_bytes());
    body
}

/// Link type, reserved, snap length, then `if_tsresol` and `opt_endofopt` if a resolution
/// is given.
fn interface_body(interface: &Interface) -> Vec<u8> {
    let mut body = interface.link.number().to_le_bytes().to_vec();
    body.extend([0, 0]);
    body.extend(u32_le(SNAPLEN));
    if let Some(tsresol) = interface.tsresol {
        body.extend(
            IF_TSRESOL
                .to_le_bytes()
                .into_iter()
                .chain(1u16.to_le_bytes()),
        );
        body.extend([tsresol, 0, 0, 0]);
        body.extend([0; 4]); // opt_endofopt
    }
    body
}

/// Units per second for an `if_tsresol` byte (microseconds when absent; saturating).
fn units_per_second(tsresol: Option<u8>) -> u64 {
    let Some(tsresol) = tsresol else {
        return 1_000_000;
    };
    let exponent = u32::from(tsresol & 0x7f);
    let base: u64 = if tsresol & 0x80 == 0 { 10 } else { 2 };
    base.checked_pow(exponent).unwrap_or(u64::MAX)
}

fn ethernet_header(vlans: &[u16], ether_type: u16) -> Vec<u8> {
    let mut header = [DST_MAC, SRC_MAC].concat();
    for (index, vlan) in vlans.iter().enumerate() {
        let tpid = if index + 1 < vlans.len() {
            S_TAG
        } else {
            C_TAG
        };
        header.extend(
            tpid.to_be_bytes()
                .into_iter()
                .chain((vlan & 0x0fff).to_be_bytes()),
        );
    }
    header.extend(ether_type.to_be_bytes());
    header
}

/// Packet type 0 (to us), ARPHRD_ETHER, 6-byte address padded to 8, protocol.
fn sll_header(ether_type: u16) -> Vec<u8> {
    let mut header = vec![0, 0];
    header.extend(ARPHRD_ETHER.to_be_bytes());
    header.extend(6u16.to_be_bytes());
    header.extend(SRC_MAC.into_iter().chain([0, 0]));
    header.extend(ether_type.to_be_bytes());
    header
}

/// Protocol, reserved, interface index 1, ARPHRD_ETHER, packet type 0, address length 6,
/// 6-byte address padded to 8.
fn sll2_header(ether_type: u16) -> Vec<u8> {
    let mut header = ether_type.to_be_bytes().to_vec();
    header.extend([0, 0, 0, 0, 0, 1]);
    header.extend(ARPHRD_ETHER.to_be_bytes());
    header.extend([0, 6]);
    header.extend(SRC_MAC.into_iter().chain([0, 0]));
    header
}

fn u32_le(value: u32) -> [u8; 4] {
    value.to_le_bytes()
}

fn u32_pair(first: u32, second: u32) -> [u8; 8] {
    let mut pair = [0; 8];
    pair[..4].copy_from_slice(&first.to_le_bytes());
    pair[4..].copy_from_slice(&second.to_le_bytes());
    pair
}

/// Lengths in captures are 32-bit; test frames are far smaller (saturates otherwise).
fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_header_layout() {
        let bytes = Writer::new(Format::PcapNanos, LinkType::LinuxSll).finish();
        assert_eq!(bytes.len(), 24);
        assert_eq!(bytes[..4], [0x4d, 0x3c, 0xb2, 0xa1]);
        assert_eq!(bytes[16..20], SNAPLEN.to_le_bytes());
        assert_eq!(bytes[20..], [113, 0, 0, 0]);
    }

    #[test]
    fn legacy_record_layout() {
        let mut writer = Writer::new(Format::Pcap, LinkType::Raw);
        writer.packet(Instant::from_micros(3_000_042), &[0x45, 1, 2]);
        let bytes = writer.finish();
        let record = &bytes[24..];
        assert_eq!(record[..8], [3, 0, 0, 0, 42, 0, 0, 0]);
        assert_eq!(record[8..16], [3, 0, 0, 0, 3, 0, 0, 0]);
        assert_eq!(record[16..], [0x45, 1, 2]);
    }

    #[test]
    fn blocks_are_padded_and_framed() {
        let mut writer = Writer::new(Format::PcapNg, LinkType::Ethernet);
        let before = writer.clone().finish().len();
        assert_eq!(before, 28 + 20, "SHB without options, IDB without options");
        writer.block(0x0bad, &[1, 2, 3, 4, 5]);
        let bytes = writer.finish();
        let block = &bytes[before..];
        assert_eq!(block.len(), 20);
        assert_eq!(block[4..8], [20, 0, 0, 0]);
        assert_eq!(block[8..16], [1, 2, 3, 4, 5, 0, 0, 0]);
        assert_eq!(block[16..], [20, 0, 0, 0]);
    }

    #[test]
    fn qinq_tags_outer_first() {
        let bytes = frame(
            &Link::Ethernet {
                vlans: vec![100, 0x1234],
            },
            &[0x60],
        );
        assert_eq!(
            bytes[12..],
            [0x88, 0xa8, 0, 100, 0x81, 0x00, 0x02, 0x34, 0x86, 0xdd, 0x60]
        );
    }

    #[test]
    fn output_is_reproducible() {
        let build = || {
            let mut writer = Writer::new(Format::PcapNg, LinkType::LinuxSll2);
            writer.packet(
                Instant::from_micros(1),
                &frame(&Link::LinuxSll2, &[0x45; 20]),
            );
            writer.finish()
        };
        assert_eq!(build(), build());
    }
}
