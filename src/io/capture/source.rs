//! The byte stream under a capture reader: buffered reads that keep count of the file offset.
//!
//! Owns: reading whole headers, records and blocks or reporting exactly how much of them the
//! file still had; skipping; byte-order decoding; handing out a whole record as a slice of its
//! own buffer ([`Source::record`]), so the packets of a pcap file are neither zero-filled nor
//! copied. Does not own: what the bytes mean (the pcap and pcapng modules decide that).

use std::io;
use std::io::Read;

use super::error::CaptureError;
use super::error::CaptureErrorKind;
use super::error::Record;

/// How much the reader asks of the OS at a time (the buffer grows past it only to hold a
/// record longer than that, up to the record cap).
const READ_BUFFER: usize = 64 * 1024;

/// A capture file being read front to back.
pub(super) struct Source {
    name: String,
    reader: Box<dyn Read + Send>,
    /// Bytes read from the file and not yet consumed: `buf[pos..end]`.
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    /// True once the reader returned end of file.
    eof: bool,
    offset: u64,
}

/// The byte order of a file or pcapng section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Endian {
    Little,
    Big,
}

impl Source {
    pub(super) fn new(name: &str, reader: Box<dyn Read + Send>) -> Self {
        Self {
            name: name.to_owned(),
            reader,
            buf: vec![0; READ_BUFFER],
            pos: 0,
            end: 0,
            eof: false,
            offset: 0,
        }
    }

    /// The offset of the next byte to be read.
    pub(super) fn offset(&self) -> u64 {
        self.offset
    }

    /// An error about the record that starts at `offset`.
    pub(super) fn error(&self, offset: u64, kind: CaptureErrorKind) -> CaptureError {
        CaptureError::new(&self.name, offset, kind)
    }

    /// Reads the opening bytes of a record at the current offset. `Ok(false)` when the file
    /// ends cleanly before it; an error when it ends inside it.
    pub(super) fn read_head(
        &mut self,
        head: &mut [u8],
        record: Record,
    ) -> Result<bool, CaptureError> {
        let start = self.offset;
        match self.fill(head, start)? {
            0 => Ok(false),
            got if got == head.len() => Ok(true),
            got => Err(self.truncated(start, record, head.len() as u64, got as u64)),
        }
    }

    /// Reads the next `part.len()` bytes of the record of `total` bytes that began at `start`.
    pub(super) fn read_rest(
        &mut self,
        part: &mut [u8],
        start: u64,
        record: Record,
        total: u64,
    ) -> Result<(), CaptureError> {
        let got = self.fill(part, start)?;
        if got < part.len() {
            return Err(self.truncated(start, record, total, self.offset - start));
        }
        Ok(())
    }

    /// Discards the next `count` bytes of the record of `total` bytes that began at `start`,
    /// without holding them in memory.
    pub(super) fn skip_rest(
        &mut self,
        count: u64,
        start: u64,
        record: Record,
        total: u64,
    ) -> Result<(), CaptureError> {
        let buffered = (self.end - self.pos) as u64;
        let from_buffer = buffered.min(count);
        // `from_buffer` is at most `end - pos`, a usize.
        self.consume(from_buffer as usize);
        let mut skipped = from_buffer;
        if skipped < count && !self.eof {
            let mut limited = (&mut self.reader).take(count - skipped);
            let more = io::copy(&mut limited, &mut io::sink());
            let more = more.map_err(|e| CaptureError::io(&self.name, start, &e))?;
            self.offset += more;
            skipped += more;
        }
        if skipped < count {
            return Err(self.truncated(start, record, total, self.offset - start));
        }
        Ok(())
    }

    /// The next `len` bytes of the record of `total` bytes that began at `start`, as a slice
    /// of the buffer (consumed: neither zero-filled nor copied). `Ok(None)` when the file ends
    /// cleanly where the record would begin; an error when it ends inside it.
    pub(super) fn record(
        &mut self,
        len: usize,
        start: u64,
        record: Record,
        total: u64,
    ) -> Result<Option<&[u8]>, CaptureError> {
        let available = self.ensure(len, start)?;
        if available < len {
            if available == 0 && self.offset == start {
                return Ok(None);
            }
            self.consume(available);
            return Err(self.truncated(start, record, total, self.offset - start));
        }
        let at = self.pos;
        self.consume(len);
        Ok(Some(&self.buf[at..at + len]))
    }

    /// The bytes read from the file and not consumed yet (possibly none: see
    /// [`Source::record`] to read more).
    pub(super) fn buffered(&self) -> &[u8] {
        &self.buf[self.pos..self.end]
    }

    /// Consume the next `len` buffered bytes and return them; `len` must be at most
    /// `buffered().len()` (fewer are returned otherwise).
    pub(super) fn take_buffered(&mut self, len: usize) -> &[u8] {
        let len = len.min(self.end - self.pos);
        let at = self.pos;
        self.consume(len);
        &self.buf[at..at + len]
    }

    fn consume(&mut self, count: usize) {
        self.pos += count;
        self.offset += count as u64;
    }

    /// Makes at least `len` bytes buffered (fewer only at the end of the file); returns how
    /// many are.
    fn ensure(&mut self, len: usize, start: u64) -> Result<usize, CaptureError> {
        if self.end - self.pos >= len || self.eof {
            return Ok(self.end - self.pos);
        }
        if self.buf.len() - self.pos < len {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
            if self.buf.len() < len {
                self.buf.resize(len, 0);
            }
        }
        while self.end - self.pos < len {
            match self.reader.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(CaptureError::io(&self.name, start, &e)),
            }
        }
        Ok(self.end - self.pos)
    }

    fn truncated(&self, start: u64, record: Record, needed: u64, available: u64) -> CaptureError {
        self.error(
            start,
            CaptureErrorKind::Truncated {
                record,
                needed,
                available,
            },
        )
    }

    /// Fills `buf` as far as the file allows; fewer bytes only at the end of the file.
    fn fill(&mut self, buf: &mut [u8], start: u64) -> Result<usize, CaptureError> {
        let mut got = 0;
        while got < buf.len() {
            let want = (buf.len() - got).min(READ_BUFFER);
            let available = self.ensure(want, start)?.min(want);
            if available == 0 {
                break;
            }
            buf[got..got + available].copy_from_slice(&self.buf[self.pos..self.pos + available]);
            self.consume(available);
            got += available;
        }
        Ok(got)
    }
}

/// Reads into `buf` until it is full or the reader ends; returns the number of bytes read.
pub(super) fn fill(reader: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        let Some(rest) = buf.get_mut(got..) else {
            break;
        };
        match reader.read(rest) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

impl Endian {
    /// The `u32` at `at` in `bytes` (0 past the end: callers pass fixed-size headers).
    pub(super) fn u32_at(self, bytes: &[u8], at: usize) -> u32 {
        let word = array_at(bytes, at);
        match self {
            Self::Little => u32::from_le_bytes(word),
            Self::Big => u32::from_be_bytes(word),
        }
    }

    /// The `i64` at `at` in `bytes` (0 past the end).
    pub(super) fn i64_at(self, bytes: &[u8], at: usize) -> i64 {
        let word = array_at(bytes, at);
        match self {
            Self::Little => i64::from_le_bytes(word),
            Self::Big => i64::from_be_bytes(word),
        }
    }
}

/// The `N` bytes at `at`, or zeros if `bytes` is too short.
fn array_at<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    let word = bytes.get(at..).and_then(|rest| rest.get(..N));
    word.and_then(|word| word.try_into().ok()).unwrap_or([0; N])
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    /// Hands out at most three bytes per `read`, like a slow pipe.
    struct Trickle(Cursor<Vec<u8>>);

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let end = buf.len().min(3);
            self.0.read(&mut buf[..end])
        }
    }

    #[test]
    fn short_reads_are_joined_and_offsets_counted() {
        let mut source = Source::new("t", Box::new(Trickle(Cursor::new((0..20).collect()))));
        let mut head = [0; 8];
        assert_eq!(source.read_head(&mut head, Record::Packet), Ok(true));
        assert_eq!(head, [0, 1, 2, 3, 4, 5, 6, 7]);
        source
            .skip_rest(4, 0, Record::Packet, 12)
            .expect("12 bytes are there");
        assert_eq!(source.offset(), 12);
        let mut rest = [0; 10];
        let error = source
            .read_rest(&mut rest, 12, Record::Packet, 10)
            .expect_err("only 8 left");
        assert_eq!(error.offset(), 12);
        let expected = CaptureErrorKind::Truncated {
            record: Record::Packet,
            needed: 10,
            available: 8,
        };
        assert_eq!(error.kind(), &expected);
        assert_eq!(source.read_head(&mut head, Record::Packet), Ok(false));
    }

    #[test]
    fn records_are_lent_whole_even_past_the_buffer_size() {
        let big = READ_BUFFER + 1000;
        let bytes: Vec<u8> = (0..2 * big + 10).map(|i| (i % 251) as u8).collect();
        let mut source = Source::new("t", Box::new(Trickle(Cursor::new(bytes.clone()))));
        let first = source.record(10, 0, Record::Packet, 10).unwrap().unwrap();
        assert_eq!(first, &bytes[..10]);
        let second = source.record(big, 10, Record::Packet, big as u64);
        assert_eq!(second.unwrap().unwrap(), &bytes[10..10 + big]);
        assert!(source.buffered().len() <= bytes.len() - 10 - big);
        let start = source.offset();
        let error = source
            .record(big + 1, start, Record::Packet, big as u64 + 1)
            .expect_err("one byte short");
        let expected = CaptureErrorKind::Truncated {
            record: Record::Packet,
            needed: big as u64 + 1,
            available: big as u64,
        };
        assert_eq!(error.kind(), &expected);
        assert_eq!(error.offset(), start);
        let end = source.offset();
        assert_eq!(
            source.record(4, end, Record::Packet, 4),
            Ok(None),
            "a clean end"
        );
    }

    #[test]
    fn byte_orders() {
        let bytes = [1, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(Endian::Little.u32_at(&bytes, 0), 0x0403_0201);
        assert_eq!(Endian::Big.u32_at(&bytes, 2), 0x0304_0506);
        assert_eq!(Endian::Big.i64_at(&bytes, 0), 0x0102_0304_0506_0708);
        assert_eq!(
            Endian::Big.u32_at(&bytes, 6),
            0,
            "past the end reads as zero"
        );
    }
}
