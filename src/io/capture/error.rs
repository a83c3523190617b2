//! Capture-file errors: which file, where in it, and what is wrong.
//!
//! Owns: [`CaptureError`], its [`CaptureErrorKind`]s and their one-line `Display`.
//! Does not own: detecting the problems (the pcap and pcapng readers do that), nor deciding
//! what a caller does about them.

use std::error::Error;
use std::fmt;
use std::io;

use pcap_parser::EPB_MAGIC;
use pcap_parser::IDB_MAGIC;
use pcap_parser::SHB_MAGIC;
use pcap_parser::SPB_MAGIC;

/// A capture file cannot be read any further.
///
/// Displays as one line: `capture.pcap: offset 4242: truncated packet record (needed 1530
/// bytes, file ends after 300)`. The offset is that of the first byte of the header, record or
/// block that is bad; every packet before it has already been returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureError {
    file: String,
    offset: u64,
    kind: CaptureErrorKind,
}

/// What is wrong with a capture file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaptureErrorKind {
    /// The file has no bytes at all.
    Empty,
    /// The first four bytes (read big endian here) are neither a pcap nor a pcapng magic number.
    BadMagic(u32),
    /// A pcapng section header's byte-order magic is neither 0x1A2B3C4D nor its byte swap.
    BadByteOrder(u32),
    /// The file ends inside a header, record or block.
    Truncated {
        /// What was being read.
        record: Record,
        /// Bytes the record needs, counted from its start.
        needed: u64,
        /// Bytes the file still had from the record's start.
        available: u64,
    },
    /// A record or block claims more bytes than the reader holds in memory.
    TooLong {
        /// What claims the length.
        record: Record,
        /// The length it claims, in bytes.
        length: u64,
        /// The most the reader accepts, in bytes.
        limit: u64,
    },
    /// A pcapng block's total length is not a multiple of 4 or is below its type's minimum.
    BadBlockLength {
        /// The block type.
        block_type: u32,
        /// The total length its header gives.
        length: u32,
    },
    /// A pcapng block's leading and trailing total lengths differ.
    BlockLengthMismatch {
        /// The length at the start of the block.
        header: u32,
        /// The length at its end.
        trailer: u32,
    },
    /// The body of a pcapng block does not parse (for example a captured length that runs
    /// past the block's end).
    MalformedBlock(u32),
    /// The format's major version is not one this reader knows (pcap 2.x, pcapng 1.x).
    UnsupportedVersion {
        /// The major version in the file.
        major: u16,
        /// The minor version in the file.
        minor: u16,
    },
    /// The link type (a tcpdump.org `LINKTYPE_` number) has no IP extraction here.
    UnsupportedLinkType(u32),
    /// A pcapng packet names an interface that no interface description block declared.
    UnknownInterface(u32),
    /// A pcapng interface's `if_tsresol` does not fit in 64 bits.
    BadTimeResolution(u8),
    /// Reading the file failed.
    Io {
        /// The I/O error's kind.
        kind: io::ErrorKind,
        /// The I/O error's message.
        message: String,
    },
}

/// The part of a capture file a problem is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
    /// The legacy pcap file header or the first bytes of any file.
    FileHeader,
    /// A legacy pcap packet record.
    Packet,
    /// The first 8 bytes of a pcapng block (type and length), before its type is known.
    BlockHeader,
    /// A pcapng block of this type.
    Block(u32),
}

impl CaptureError {
    /// The file name the reader was given.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The byte offset, from the start of the file, of the bad header, record or block.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// What is wrong.
    pub fn kind(&self) -> &CaptureErrorKind {
        &self.kind
    }

    pub(super) fn new(file: &str, offset: u64, kind: CaptureErrorKind) -> Self {
        Self {
            file: file.to_owned(),
            offset,
            kind,
        }
    }

    pub(super) fn io(file: &str, offset: u64, error: &io::Error) -> Self {
        let kind = CaptureErrorKind::Io {
            kind: error.kind(),
            message: error.to_string(),
        };
        Self::new(file, offset, kind)
    }
}

impl CaptureErrorKind {
    pub(super) fn too_long(record: Record, length: u32, limit: u32) -> Self {
        let (length, limit) = (u64::from(length), u64::from(limit));
        Self::TooLong {
            record,
            length,
            limit,
        }
    }
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: offset {}: {}", self.file, self.offset, self.kind)
    }
}

impl Error for CaptureError {}

impl fmt::Display for CaptureErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(f, "empty file, not a pcap or pcapng capture"),
            Self::BadMagic(magic) => {
                write!(f, "not a pcap or pcapng file (magic number {magic:#010x})")
            }
            Self::BadByteOrder(bom) => write!(f, "bad pcapng byte-order magic {bom:#010x}"),
            Self::Truncated {
                record,
                needed,
                available,
            } => write!(
                f,
                "truncated {record} (needed {needed} bytes, file ends after {available})"
            ),
            Self::TooLong {
                record,
                length,
                limit,
            } => {
                write!(
                    f,
                    "{record} of {length} bytes exceeds the {limit}-byte limit"
                )
            }
            Self::BadBlockLength { block_type, length } => {
                write!(
                    f,
                    "{} has invalid total length {length}",
                    Record::Block(*block_type)
                )
            }
            Self::BlockLengthMismatch { header, trailer } => write!(
                f,
                "block length inconsistent (header says {header}, trailer says {trailer})"
            ),
            Self::MalformedBlock(block_type) => {
                write!(f, "malformed {}", Record::Block(*block_type))
            }
            Self::UnsupportedVersion { major, minor } => {
                write!(f, "unsupported format version {major}.{minor}")
            }
            Self::UnsupportedLinkType(link) => write!(f, "unsupported link type {link}"),
            Self::UnknownInterface(id) => {
                write!(
                    f,
                    "packet on interface {id}, which no interface description declared"
                )
            }
            Self::BadTimeResolution(tsresol) => {
                write!(
                    f,
                    "unsupported timestamp resolution (if_tsresol {tsresol:#04x})"
                )
            }
            Self::Io { message, .. } => write!(f, "I/O error: {message}"),
        }
    }
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::FileHeader => write!(f, "file header"),
            Self::Packet => write!(f, "packet record"),
            Self::BlockHeader => write!(f, "block header"),
            Self::Block(SHB_MAGIC) => write!(f, "section header block"),
            Self::Block(IDB_MAGIC) => write!(f, "interface description block"),
            Self::Block(EPB_MAGIC) => write!(f, "enhanced packet block"),
            Self::Block(SPB_MAGIC) => write!(f, "simple packet block"),
            Self::Block(other) => write!(f, "block of type {other:#010x}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_one_line_with_file_offset_and_cause() {
        let kind = CaptureErrorKind::Truncated {
            record: Record::Packet,
            needed: 1530,
            available: 300,
        };
        let error = CaptureError::new("capture.pcap", 4242, kind);
        assert_eq!(
            error.to_string(),
            "capture.pcap: offset 4242: truncated packet record (needed 1530 bytes, file ends after 300)"
        );
    }

    #[test]
    fn blocks_are_named_by_type() {
        assert_eq!(Record::Block(6).to_string(), "enhanced packet block");
        assert_eq!(
            Record::Block(0x0BAD).to_string(),
            "block of type 0x00000bad"
        );
        let kind = CaptureErrorKind::BadMagic(0x4865_6c6c);
        assert_eq!(
            kind.to_string(),
            "not a pcap or pcapng file (magic number 0x48656c6c)"
        );
    }
}
