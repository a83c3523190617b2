//! Legacy pcap files: the 24-byte file header and the packet records after it.
//!
//! Owns: magic-number variants (micro- and nanosecond, both byte orders, and the little-endian
//! "modified" format some old Linux tcpdumps wrote), record framing, timestamp conversion.
//! Does not own: link layers (see `link`) or the byte stream (see `source`).
//!
//! Layout per the tcpdump `pcap-savefile(5)` man page and draft-ietf-opsawg-pcap. The header's
//! `thiszone` and `sigfigs` are ignored, as the draft says readers should; so is the snap
//! length (records are checked against `MAX_PACKET` instead).

use pcap_parser::PcapHeader;
use pcap_parser::parse_pcap_header;

use super::CaptureError;
use super::LinkType;
use super::MAX_PACKET;
use super::PacketMeta;
use super::error::CaptureErrorKind;
use super::error::Record;
use super::source::Endian;
use super::source::Source;
use crate::time::Instant;

/// The file header's size (draft-ietf-opsawg-pcap §4).
const FILE_HEADER_LEN: usize = 24;
/// A record header: seconds, sub-second fraction, captured length, original length (§5).
const RECORD_HEADER_LEN: usize = 16;
/// The "modified" format (magic 0xa1b2cd34) adds interface index, protocol, packet type and
/// padding to each record header.
const MODIFIED_RECORD_HEADER_LEN: usize = 24;
/// The only major version there is.
const MAJOR_VERSION: u16 = 2;
/// The low 16 bits of the link-type field are the link type; the high bits may carry FCS
/// information (draft-ietf-opsawg-pcap §4, libpcap's `LT_LINKTYPE`).
const LINK_TYPE_MASK: u32 = 0xffff;

/// An open legacy pcap file, positioned at a record boundary.
pub(super) struct PcapFile {
    endian: Endian,
    nanos: bool,
    record_header_len: usize,
    link: LinkType,
}

/// True if the file's first four bytes are a legacy pcap magic number, in either byte order.
pub(super) fn is_magic(magic: [u8; 4]) -> bool {
    matches!(
        u32::from_le_bytes(magic),
        0xa1b2_c3d4 | 0xa1b2_3c4d | 0xa1b2_cd34 | 0xd4c3_b2a1 | 0x4d3c_b2a1
    )
}

impl PcapFile {
    /// Reads and checks the file header; `source` must be at offset 0.
    pub(super) fn open(source: &mut Source) -> Result<Self, CaptureError> {
        let mut bytes = [0; FILE_HEADER_LEN];
        let header = read_file_header(source, &mut bytes)?;
        if header.version_major != MAJOR_VERSION {
            let (major, minor) = (header.version_major, header.version_minor);
            return Err(source.error(0, CaptureErrorKind::UnsupportedVersion { major, minor }));
        }
        let number = header.network.0 as u32 & LINK_TYPE_MASK;
        let link = LinkType::from_number(number)
            .ok_or_else(|| source.error(0, CaptureErrorKind::UnsupportedLinkType(number)))?;
        let endian = if header.is_bigendian() {
            Endian::Big
        } else {
            Endian::Little
        };
        let record_header_len = if header.is_modified_format() {
            MODIFIED_RECORD_HEADER_LEN
        } else {
            RECORD_HEADER_LEN
        };
        Ok(Self {
            endian,
            nanos: header.is_nanosecond_precision(),
            record_header_len,
            link,
        })
    }

    /// The next packet record, its data a slice of `source`'s buffer (neither zero-filled nor
    /// copied); `Ok(None)` at a clean end of file.
    pub(super) fn next<'s>(
        &self,
        source: &'s mut Source,
    ) -> Result<Option<(PacketMeta, &'s [u8])>, CaptureError> {
        if let Some((meta, len)) = self.buffered_record(source.buffered()) {
            let record = source.take_buffered(len);
            return Ok(Some((
                meta,
                record.get(self.record_header_len..).unwrap_or_default(),
            )));
        }
        let start = source.offset();
        let mut head = [0; MODIFIED_RECORD_HEADER_LEN];
        let head_len = self.record_header_len;
        let record = Record::Packet;
        match source.record(head_len, start, record, head_len as u64)? {
            Some(bytes) => head[..head_len].copy_from_slice(bytes),
            None => return Ok(None),
        }
        let captured_len = self.endian.u32_at(&head, 8);
        if captured_len > MAX_PACKET {
            let kind = CaptureErrorKind::too_long(Record::Packet, captured_len, MAX_PACKET);
            return Err(source.error(start, kind));
        }
        let timestamp = self.timestamp(self.endian.u32_at(&head, 0), self.endian.u32_at(&head, 4));
        let original_len = self.endian.u32_at(&head, 12);
        let meta = PacketMeta {
            timestamp,
            link: self.link,
            captured_len,
            original_len,
        };
        let total = head_len as u64 + u64::from(captured_len);
        let data = source.record(captured_len as usize, start, record, total)?;
        // Not the record's start: a file that ends here is an error, never `None`.
        let data = data.unwrap_or_default();
        Ok(Some((meta, data)))
    }

    /// The fast path of [`PcapFile::next`]: a whole, valid record at the front of `buffered`,
    /// its metadata and its length with the header. `None` for anything else (too short, or
    /// too long a record: the slow path reads more or reports the error).
    fn buffered_record(&self, buffered: &[u8]) -> Option<(PacketMeta, usize)> {
        let head = buffered.get(..RECORD_HEADER_LEN)?;
        let captured_len = self.endian.u32_at(head, 8);
        if captured_len > MAX_PACKET {
            return None;
        }
        let len = self.record_header_len + captured_len as usize;
        if buffered.len() < len {
            return None;
        }
        let meta = PacketMeta {
            timestamp: self.timestamp(self.endian.u32_at(head, 0), self.endian.u32_at(head, 4)),
            link: self.link,
            captured_len,
            original_len: self.endian.u32_at(head, 12),
        };
        Some((meta, len))
    }

    /// Seconds plus a micro- or nanosecond fraction (truncated to microseconds).
    fn timestamp(&self, seconds: u32, fraction: u32) -> Instant {
        let micros = if self.nanos {
            fraction / 1_000
        } else {
            fraction
        };
        Instant::from_micros(u64::from(seconds) * 1_000_000 + u64::from(micros))
    }
}

/// Reads the 24-byte header into `bytes` and parses it with pcap-parser.
fn read_file_header(
    source: &mut Source,
    bytes: &mut [u8; FILE_HEADER_LEN],
) -> Result<PcapHeader, CaptureError> {
    let total = FILE_HEADER_LEN as u64;
    source.read_rest(bytes, 0, Record::FileHeader, total)?;
    match parse_pcap_header(&bytes[..]) {
        Ok((_, header)) => Ok(header),
        Err(_) => {
            let magic = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
            Err(source.error(0, CaptureErrorKind::BadMagic(magic)))
        }
    }
}
