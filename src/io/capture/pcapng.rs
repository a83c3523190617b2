//! pcapng files: blocks, sections, interfaces and their packets.
//!
//! Owns: block framing (lengths checked at both ends), section byte order, the interface
//! table with each interface's link type, snap length and `if_tsresol` / `if_tsoffset`, and
//! turning Enhanced and Simple Packet Blocks into packets. Every other block type (statistics,
//! name resolution, custom, ...) is skipped without being held in memory.
//! Does not own: link layers (see `link`) or the byte stream (see `source`).
//!
//! Layout per draft-ietf-opsawg-pcapng (section numbers below are that draft's); block bodies
//! are parsed with pcap-parser once the whole block is in memory.

use pcap_parser::BOM_MAGIC;
use pcap_parser::EPB_MAGIC;
use pcap_parser::EnhancedPacketBlock;
use pcap_parser::IDB_MAGIC;
use pcap_parser::InterfaceDescriptionBlock;
use pcap_parser::OptionCode;
use pcap_parser::SHB_MAGIC;
use pcap_parser::SPB_MAGIC;
use pcap_parser::SimplePacketBlock;
use pcap_parser::parse_enhancedpacketblock_be;
use pcap_parser::parse_enhancedpacketblock_le;
use pcap_parser::parse_interfacedescriptionblock_be;
use pcap_parser::parse_interfacedescriptionblock_le;
use pcap_parser::parse_sectionheaderblock;
use pcap_parser::parse_simplepacketblock_be;
use pcap_parser::parse_simplepacketblock_le;

use super::CaptureError;
use super::LinkType;
use super::MAX_PACKET;
use super::PacketMeta;
use super::error::CaptureErrorKind;
use super::error::Record;
use super::source::Endian;
use super::source::Source;
use crate::time::Instant;

/// The largest block read into memory: a maximal packet plus room for headers and options.
const MAX_BLOCK: u32 = MAX_PACKET + 64 * 1024;
/// Block type and total length (§3.1).
const BLOCK_HEADER_LEN: usize = 8;
/// Block type, total length and byte-order magic of a Section Header Block (§4.1).
const SECTION_HEAD_LEN: usize = 12;
/// The trailing copy of the total length.
const TRAILER_LEN: u32 = 4;
/// The major version of the format (§4.1).
const MAJOR_VERSION: u16 = 1;

/// An open pcapng file, positioned at a block boundary.
pub(super) struct PcapNgFile {
    endian: Endian,
    interfaces: Vec<Interface>,
    /// The timestamp given to Simple Packet Blocks, which have none: the previous packet's.
    last_timestamp: Instant,
    /// The current block, reused from block to block.
    block: Vec<u8>,
}

/// What an Interface Description Block says about its packets (§4.2).
struct Interface {
    link: LinkType,
    snaplen: u32,
    units_per_second: u64,
    offset_seconds: i64,
}

/// Where a block starts and what its first bytes say.
struct BlockHead {
    start: u64,
    block_type: u32,
    length: u32,
    prefix: [u8; SECTION_HEAD_LEN],
    prefix_len: usize,
}

/// What reading one block produced.
enum Step {
    End,
    Packet(PacketMeta),
    Other,
}

/// True if the file's first four bytes are a Section Header Block's type.
pub(super) fn is_magic(magic: [u8; 4]) -> bool {
    u32::from_le_bytes(magic) == SHB_MAGIC
}

impl PcapNgFile {
    /// Reads the first Section Header Block; `source` must be at offset 0.
    pub(super) fn open(source: &mut Source) -> Result<Self, CaptureError> {
        let mut file = Self {
            endian: Endian::Little,
            interfaces: Vec::new(),
            last_timestamp: Instant::default(),
            block: Vec::new(),
        };
        file.step(source, &mut Vec::new())?;
        Ok(file)
    }

    /// The next packet, its data in `buf`; `Ok(None)` at a clean end of file.
    pub(super) fn next(
        &mut self,
        source: &mut Source,
        buf: &mut Vec<u8>,
    ) -> Result<Option<PacketMeta>, CaptureError> {
        loop {
            match self.step(source, buf)? {
                Step::End => return Ok(None),
                Step::Packet(meta) => return Ok(Some(meta)),
                Step::Other => {}
            }
        }
    }

    /// Reads one block: parses the four kinds that matter and skips the rest.
    fn step(&mut self, source: &mut Source, buf: &mut Vec<u8>) -> Result<Step, CaptureError> {
        let Some(head) = self.read_head(source)? else {
            return Ok(Step::End);
        };
        if !is_parsed(head.block_type) {
            self.skip(source, &head)?;
            return Ok(Step::Other);
        }
        self.read_block(source, &head)?;
        let error = |kind| source.error(head.start, kind);
        match head.block_type {
            SHB_MAGIC => self.section().map(|()| Step::Other).map_err(error),
            IDB_MAGIC => self.interface().map(|()| Step::Other).map_err(error),
            EPB_MAGIC => self.enhanced_packet(buf).map(Step::Packet).map_err(error),
            _ => self.simple_packet(buf).map(Step::Packet).map_err(error),
        }
    }

    /// Reads a block's type and length (and, for a section header, its byte order).
    fn read_head(&mut self, source: &mut Source) -> Result<Option<BlockHead>, CaptureError> {
        let start = source.offset();
        let mut prefix = [0; SECTION_HEAD_LEN];
        if !source.read_head(&mut prefix[..BLOCK_HEADER_LEN], Record::BlockHeader)? {
            return Ok(None);
        }
        let mut prefix_len = BLOCK_HEADER_LEN;
        if is_magic([prefix[0], prefix[1], prefix[2], prefix[3]]) {
            let total = SECTION_HEAD_LEN as u64;
            source.read_rest(
                &mut prefix[BLOCK_HEADER_LEN..],
                start,
                Record::BlockHeader,
                total,
            )?;
            prefix_len = SECTION_HEAD_LEN;
            self.endian = byte_order(&prefix).map_err(|kind| source.error(start, kind))?;
        }
        let block_type = self.endian.u32_at(&prefix, 0);
        let length = self.endian.u32_at(&prefix, 4);
        check_length(block_type, length).map_err(|kind| source.error(start, kind))?;
        Ok(Some(BlockHead {
            start,
            block_type,
            length,
            prefix,
            prefix_len,
        }))
    }

    /// Passes over a block without keeping it, checking only its trailing length.
    fn skip(&self, source: &mut Source, head: &BlockHead) -> Result<(), CaptureError> {
        let (record, total) = (Record::Block(head.block_type), u64::from(head.length));
        let body = head.length - head.prefix_len as u32 - TRAILER_LEN;
        source.skip_rest(u64::from(body), head.start, record, total)?;
        let mut trailer = [0; TRAILER_LEN as usize];
        source.read_rest(&mut trailer, head.start, record, total)?;
        self.check_trailer(source, head, &trailer)
    }

    /// Reads a whole block into `self.block` (its length is already checked against the cap).
    fn read_block(&mut self, source: &mut Source, head: &BlockHead) -> Result<(), CaptureError> {
        self.block.clear();
        // `check_length` guarantees `length` >= 16 > `prefix_len` for the blocks read here.
        self.block
            .extend_from_slice(&head.prefix[..head.prefix_len]);
        self.block.resize(head.length as usize, 0);
        let (record, total) = (Record::Block(head.block_type), u64::from(head.length));
        source.read_rest(
            &mut self.block[head.prefix_len..],
            head.start,
            record,
            total,
        )?;
        let trailer_at = self.block.len() - TRAILER_LEN as usize;
        self.check_trailer(source, head, &self.block[trailer_at..])
    }

    fn check_trailer(
        &self,
        source: &Source,
        head: &BlockHead,
        trailer: &[u8],
    ) -> Result<(), CaptureError> {
        let trailer = self.endian.u32_at(trailer, 0);
        if trailer != head.length {
            let kind = CaptureErrorKind::BlockLengthMismatch {
                header: head.length,
                trailer,
            };
            return Err(source.error(head.start, kind));
        }
        Ok(())
    }

    /// A Section Header Block (§4.1) starts a new section: interfaces are numbered afresh.
    fn section(&mut self) -> Result<(), CaptureErrorKind> {
        let Ok((_, section)) = parse_sectionheaderblock(&self.block) else {
            return Err(CaptureErrorKind::MalformedBlock(SHB_MAGIC));
        };
        if section.major_version != MAJOR_VERSION {
            let (major, minor) = (section.major_version, section.minor_version);
            return Err(CaptureErrorKind::UnsupportedVersion { major, minor });
        }
        self.interfaces.clear();
        Ok(())
    }

    /// An Interface Description Block (§4.2) declares the next interface number.
    fn interface(&mut self) -> Result<(), CaptureErrorKind> {
        let idb = parse_idb(&self.block, self.endian)?;
        let number = u32::from(idb.linktype.0 as u16);
        let link =
            LinkType::from_number(number).ok_or(CaptureErrorKind::UnsupportedLinkType(number))?;
        let tsresol = idb.if_tsresol;
        let units_per_second =
            units_per_second(tsresol).ok_or(CaptureErrorKind::BadTimeResolution(tsresol))?;
        let offset_seconds = tsoffset(&idb, self.endian);
        self.interfaces.push(Interface {
            link,
            snaplen: idb.snaplen,
            units_per_second,
            offset_seconds,
        });
        Ok(())
    }

    /// An Enhanced Packet Block (§4.3): interface, timestamp, lengths and data.
    fn enhanced_packet(&mut self, buf: &mut Vec<u8>) -> Result<PacketMeta, CaptureErrorKind> {
        let epb = parse_epb(&self.block, self.endian)?;
        let interface = self.interface_by_id(epb.if_id)?;
        let data = epb
            .data
            .get(..epb.caplen as usize)
            .ok_or(CaptureErrorKind::MalformedBlock(EPB_MAGIC))?;
        buf.extend_from_slice(data);
        let timestamp = interface.timestamp(epb.ts_high, epb.ts_low);
        let meta = PacketMeta {
            timestamp,
            link: interface.link,
            captured_len: epb.caplen,
            original_len: epb.origlen,
        };
        self.last_timestamp = timestamp;
        Ok(meta)
    }

    /// A Simple Packet Block (§4.4): interface 0, no timestamp; the captured length is the
    /// smallest of the original length, the interface's snap length and the data present.
    fn simple_packet(&self, buf: &mut Vec<u8>) -> Result<PacketMeta, CaptureErrorKind> {
        let spb = parse_spb(&self.block, self.endian)?;
        let interface = self.interface_by_id(0)?;
        let mut len = spb.data.len().min(spb.origlen as usize);
        if interface.snaplen != 0 {
            len = len.min(interface.snaplen as usize);
        }
        buf.extend_from_slice(spb.data.get(..len).unwrap_or_default());
        let (captured_len, original_len) = (len as u32, spb.origlen);
        Ok(PacketMeta {
            timestamp: self.last_timestamp,
            link: interface.link,
            captured_len,
            original_len,
        })
    }

    fn interface_by_id(&self, id: u32) -> Result<&Interface, CaptureErrorKind> {
        self.interfaces
            .get(id as usize)
            .ok_or(CaptureErrorKind::UnknownInterface(id))
    }
}

impl Interface {
    /// A 64-bit count of `1 / units_per_second` since the epoch, plus `if_tsoffset` seconds
    /// (§4.2, §4.3), in whole microseconds (finer resolutions are truncated).
    fn timestamp(&self, high: u32, low: u32) -> Instant {
        let units = (u128::from(high) << 32) | u128::from(low);
        let micros = units * 1_000_000 / u128::from(self.units_per_second);
        let micros = i128::try_from(micros).unwrap_or(i128::MAX);
        let micros = micros.saturating_add(i128::from(self.offset_seconds) * 1_000_000);
        Instant::from_micros(u64::try_from(micros.max(0)).unwrap_or(u64::MAX))
    }
}

/// The blocks read into memory and interpreted; all others are skipped.
fn is_parsed(block_type: u32) -> bool {
    matches!(block_type, SHB_MAGIC | IDB_MAGIC | EPB_MAGIC | SPB_MAGIC)
}

/// The section's byte order from its byte-order magic (§4.1).
fn byte_order(prefix: &[u8; SECTION_HEAD_LEN]) -> Result<Endian, CaptureErrorKind> {
    match Endian::Little.u32_at(prefix, BLOCK_HEADER_LEN) {
        BOM_MAGIC => Ok(Endian::Little),
        bom if bom == BOM_MAGIC.swap_bytes() => Ok(Endian::Big),
        _ => Err(CaptureErrorKind::BadByteOrder(
            Endian::Big.u32_at(prefix, BLOCK_HEADER_LEN),
        )),
    }
}

/// A total length must be a multiple of 4 (§3.1), hold its type's fixed fields, and, for a
/// block read into memory, stay under the cap.
fn check_length(block_type: u32, length: u32) -> Result<(), CaptureErrorKind> {
    if length % 4 != 0 || length < min_length(block_type) {
        return Err(CaptureErrorKind::BadBlockLength { block_type, length });
    }
    if is_parsed(block_type) && length > MAX_BLOCK {
        let record = Record::Block(block_type);
        return Err(CaptureErrorKind::too_long(record, length, MAX_BLOCK));
    }
    Ok(())
}

/// The fixed part of each block type: 12 bytes of framing plus its own fields.
fn min_length(block_type: u32) -> u32 {
    match block_type {
        SHB_MAGIC => 28,
        IDB_MAGIC => 20,
        EPB_MAGIC => 32,
        SPB_MAGIC => 16,
        _ => 12,
    }
}

/// `if_tsresol` (§4.2): high bit clear, a negative power of 10; set, a negative power of 2.
fn units_per_second(tsresol: u8) -> Option<u64> {
    let exponent = u32::from(tsresol & 0x7f);
    match tsresol & 0x80 {
        0 => 10u64.checked_pow(exponent),
        _ => 2u64.checked_pow(exponent),
    }
}

/// `if_tsoffset` (§4.2), in the section's byte order (pcap-parser assumes little endian).
fn tsoffset(idb: &InterfaceDescriptionBlock<'_>, endian: Endian) -> i64 {
    let option = idb
        .options
        .iter()
        .find(|option| option.code == OptionCode::IfTsoffset);
    option.map_or(0, |option| endian.i64_at(option.value(), 0))
}

fn parse_idb(
    block: &[u8],
    endian: Endian,
) -> Result<InterfaceDescriptionBlock<'_>, CaptureErrorKind> {
    let parsed = match endian {
        Endian::Little => parse_interfacedescriptionblock_le(block),
        Endian::Big => parse_interfacedescriptionblock_be(block),
    };
    parsed
        .map(|(_, idb)| idb)
        .map_err(|_| CaptureErrorKind::MalformedBlock(IDB_MAGIC))
}

fn parse_epb(block: &[u8], endian: Endian) -> Result<EnhancedPacketBlock<'_>, CaptureErrorKind> {
    let parsed = match endian {
        Endian::Little => parse_enhancedpacketblock_le(block),
        Endian::Big => parse_enhancedpacketblock_be(block),
    };
    parsed
        .map(|(_, epb)| epb)
        .map_err(|_| CaptureErrorKind::MalformedBlock(EPB_MAGIC))
}

fn parse_spb(block: &[u8], endian: Endian) -> Result<SimplePacketBlock<'_>, CaptureErrorKind> {
    let parsed = match endian {
        Endian::Little => parse_simplepacketblock_le(block),
        Endian::Big => parse_simplepacketblock_be(block),
    };
    parsed
        .map(|(_, spb)| spb)
        .map_err(|_| CaptureErrorKind::MalformedBlock(SPB_MAGIC))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interface(tsresol: u8, offset_seconds: i64) -> Interface {
        let units_per_second = units_per_second(tsresol).expect("valid resolution");
        Interface {
            link: LinkType::Raw,
            snaplen: 0,
            units_per_second,
            offset_seconds,
        }
    }

    #[test]
    fn resolutions() {
        assert_eq!(units_per_second(6), Some(1_000_000));
        assert_eq!(units_per_second(9), Some(1_000_000_000));
        assert_eq!(units_per_second(0x80 | 10), Some(1024));
        assert_eq!(units_per_second(19), Some(10_000_000_000_000_000_000));
        assert_eq!(units_per_second(20), None);
        assert_eq!(units_per_second(0x80 | 64), None);
    }

    #[test]
    fn timestamps_in_any_resolution_become_truncated_microseconds() {
        let nanos: u64 = 1_600_000_000_123_456_789;
        let (high, low) = ((nanos >> 32) as u32, nanos as u32);
        assert_eq!(
            interface(9, 0).timestamp(high, low).as_micros(),
            1_600_000_000_123_456
        );
        // 2^-10 s units: 1536 units are 1.5 s.
        assert_eq!(
            interface(0x80 | 10, 0).timestamp(0, 1536).as_micros(),
            1_500_000
        );
        // Milliseconds, with an offset of 100 s, and an offset that would go below the epoch.
        assert_eq!(
            interface(3, 100).timestamp(0, 2_500).as_micros(),
            102_500_000
        );
        assert_eq!(interface(6, -5).timestamp(0, 1).as_micros(), 0);
        assert_eq!(
            interface(0, i64::MAX)
                .timestamp(u32::MAX, u32::MAX)
                .as_micros(),
            u64::MAX
        );
    }

    #[test]
    fn lengths() {
        assert!(check_length(EPB_MAGIC, 32).is_ok());
        let bad = |length| CaptureErrorKind::BadBlockLength {
            block_type: EPB_MAGIC,
            length,
        };
        assert_eq!(check_length(EPB_MAGIC, 28), Err(bad(28)));
        assert_eq!(check_length(EPB_MAGIC, 34), Err(bad(34)));
        let huge = check_length(EPB_MAGIC, 0xffff_fffc);
        assert!(matches!(
            huge,
            Err(CaptureErrorKind::TooLong {
                length: 0xffff_fffc,
                ..
            })
        ));
        assert!(
            check_length(0x0bad, 0xffff_fffc).is_ok(),
            "skipped blocks are never held"
        );
    }
}
