//! Reading capture files down to IP datagrams: legacy pcap and pcapng, with the link layers a
//! Linux firewall or a test suite is likely to record.
//!
//! Owns: opening a file (format told by its magic number), walking its records with bounded
//! memory, per-packet metadata (timestamp in microseconds since the Unix epoch, link type,
//! lengths), stripping link layers ([`ip_datagram`]), and errors that name the file and the
//! byte offset of the bad record. Does not own: IP, TCP or FTP (the core parses those), nor
//! writing captures, except [`PcapWriter`] for what `replay --write` releases.
//!
//! Formats: legacy pcap per the tcpdump `pcap-savefile(5)` man page and draft-ietf-opsawg-pcap;
//! pcapng per draft-ietf-opsawg-pcapng; link types per <https://www.tcpdump.org/linktypes.html>.

mod error;
mod link;
mod pcap;
mod pcapng;
mod source;
mod writer;

use std::fs::File;
use std::io::Cursor;
use std::io::Read;
use std::path::Path;

pub use self::error::CaptureError;
pub use self::error::CaptureErrorKind;
pub use self::error::Record;
pub use self::link::LinkType;
pub use self::link::NotIp;
pub use self::link::ip_datagram;
use self::pcap::PcapFile;
use self::pcapng::PcapNgFile;
use self::source::Source;
pub use self::writer::PcapWriter;
use crate::time::Instant;

/// The largest packet a record may carry: libpcap's `MAXIMUM_SNAPLEN`. A record claiming more
/// is an error, so a corrupt length never turns into a huge allocation.
pub const MAX_PACKET: u32 = 256 * 1024;

/// A pcap or pcapng file, read one packet at a time.
pub struct CaptureReader {
    source: Source,
    format: Format,
    packets_read: u64,
    /// The error that stopped the reader; returned again by every later call.
    failed: Option<CaptureError>,
    /// The packet of a pcapng block (pcap records are lent from the read buffer).
    scratch: Vec<u8>,
}

/// What the reader reports with each packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketMeta {
    /// When the packet was captured, in microseconds since the Unix epoch (finer resolutions
    /// truncated). A pcapng Simple Packet Block has no timestamp and gets the previous packet's.
    pub timestamp: Instant,
    /// The link layer the packet's bytes start with.
    pub link: LinkType,
    /// How many bytes of the packet the file holds (the length of the buffer filled).
    pub captured_len: u32,
    /// How long the packet was on the wire.
    pub original_len: u32,
}

/// The two container formats.
enum Format {
    Pcap(PcapFile),
    PcapNg(PcapNgFile),
}

impl CaptureReader {
    /// Open a pcap or pcapng file (format detected from the magic number).
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        let name = path.display().to_string();
        let file = File::open(path).map_err(|e| CaptureError::io(&name, 0, &e))?;
        Self::from_reader(&name, Box::new(file))
    }

    /// Same, from any reader (so tests can use in-memory bytes); `name` is used in error
    /// messages.
    pub fn from_reader(name: &str, mut reader: Box<dyn Read + Send>) -> Result<Self, CaptureError> {
        let mut magic = [0; 4];
        let got =
            source::fill(&mut reader, &mut magic).map_err(|e| CaptureError::io(name, 0, &e))?;
        let prefix = Cursor::new(magic.get(..got).unwrap_or_default().to_vec());
        let mut source = Source::new(name, Box::new(prefix.chain(reader)));
        let format = Format::open(&mut source, magic, got)?;
        Ok(Self {
            source,
            format,
            packets_read: 0,
            failed: None,
            scratch: Vec::new(),
        })
    }

    /// Read the next packet record into `buf` (cleared first; reuse it to avoid allocation).
    /// `Ok(None)` at a clean end of file. After an error, every later call returns it again.
    pub fn next_packet(&mut self, buf: &mut Vec<u8>) -> Result<Option<PacketMeta>, CaptureError> {
        buf.clear();
        let Some((meta, data)) = self.next_record()? else {
            return Ok(None);
        };
        buf.extend_from_slice(data);
        Ok(Some(meta))
    }

    /// [`CaptureReader::next_packet`] without the copy: the packet's bytes are lent until the
    /// next call (a pcap record straight from the read buffer).
    pub fn next_record(&mut self) -> Result<Option<(PacketMeta, &[u8])>, CaptureError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        let result = match &mut self.format {
            Format::Pcap(file) => file.next(&mut self.source),
            Format::PcapNg(file) => {
                let scratch = &mut self.scratch;
                scratch.clear();
                file.next(&mut self.source, scratch)
                    .map(|meta| meta.map(|meta| (meta, &scratch[..])))
            }
        };
        match result {
            Ok(Some(record)) => {
                self.packets_read += 1;
                Ok(Some(record))
            }
            Ok(None) => Ok(None),
            Err(error) => {
                self.failed = Some(error.clone());
                Err(error)
            }
        }
    }

    /// How many bytes of the file were read so far (for progress).
    pub fn bytes_read(&self) -> u64 {
        self.source.offset()
    }

    /// How many packet records were returned so far.
    pub fn packets_read(&self) -> u64 {
        self.packets_read
    }
}

impl Format {
    /// Tells the format from the first `got` (at most 4) bytes and reads its header.
    fn open(source: &mut Source, magic: [u8; 4], got: usize) -> Result<Self, CaptureError> {
        if got == 0 {
            return Err(source.error(0, CaptureErrorKind::Empty));
        }
        if got < magic.len() {
            let (needed, available) = (magic.len() as u64, got as u64);
            let kind = CaptureErrorKind::Truncated {
                record: Record::FileHeader,
                needed,
                available,
            };
            return Err(source.error(0, kind));
        }
        if pcapng::is_magic(magic) {
            return PcapNgFile::open(source).map(Self::PcapNg);
        }
        if pcap::is_magic(magic) {
            return PcapFile::open(source).map(Self::Pcap);
        }
        Err(source.error(0, CaptureErrorKind::BadMagic(u32::from_be_bytes(magic))))
    }
}
