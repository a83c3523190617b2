//! The snapshot codec: how the engine's state is written out and read back, so that a
//! restarted daemon carries on with every control connection exactly where it was.
//!
//! Owns: the byte-level format (little-endian integers, `u32`-length-prefixed byte strings,
//! one-byte tags for enums), the running FNV-1a checksum over everything written, and the
//! typed refusal of anything that does not decode ([`SnapshotError`]). A snapshot is
//! untrusted input (a file on disk): every count and length is checked against a bound
//! before anything is allocated, every tag against its range, and a wrong checksum rejects
//! the whole snapshot; decoding never panics. Each type writes and reads its own fields next
//! to its definition (`save`/`load`); `engine::snapshot` lays out the whole.
//!
//! Works on `std::io` readers and writers, so a million connections stream to and from a
//! file without a second copy in memory; the shell owns the file.

use std::fmt;
use std::io;
use std::io::Read;
use std::io::Write;
use std::net::IpAddr;
use std::net::Ipv4Addr;
use std::net::Ipv6Addr;
use std::net::SocketAddr;

use crate::time::Duration;
use crate::time::Instant;

/// Why a snapshot was not read.
#[derive(Debug)]
pub enum SnapshotError {
    /// Reading failed (the file ended early, or an I/O error).
    Io(io::Error),
    /// It does not start with the engine snapshot's magic bytes.
    BadMagic,
    /// It was written by an incompatible version of the format.
    Version(u16),
    /// A field is out of range or inconsistent; names which.
    Invalid(&'static str),
    /// The checksum at the end does not match the contents.
    Checksum,
}

/// Writes fields and keeps the checksum.
pub struct Encoder<'a> {
    out: &'a mut dyn Write,
    hash: Fnv,
}

/// Reads fields, checks bounds and keeps the checksum.
pub struct Decoder<'a> {
    input: &'a mut dyn Read,
    hash: Fnv,
}

/// FNV-1a, 64 bits: enough to catch a torn or corrupted file (not an authenticator).
#[derive(Debug, Clone, Copy)]
struct Fnv(u64);

impl<'a> Encoder<'a> {
    /// Write to `out`.
    pub fn new(out: &'a mut dyn Write) -> Self {
        Self {
            out,
            hash: Fnv::new(),
        }
    }

    /// Raw bytes, counted in the checksum.
    pub fn raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.hash.update(bytes);
        self.out.write_all(bytes)
    }

    /// One byte.
    pub fn u8(&mut self, value: u8) -> io::Result<()> {
        self.raw(&[value])
    }

    /// A boolean as one byte (0 or 1).
    pub fn bool(&mut self, value: bool) -> io::Result<()> {
        self.u8(u8::from(value))
    }

    /// A `u16`.
    pub fn u16(&mut self, value: u16) -> io::Result<()> {
        self.raw(&value.to_le_bytes())
    }

    /// A `u32`.
    pub fn u32(&mut self, value: u32) -> io::Result<()> {
        self.raw(&value.to_le_bytes())
    }

    /// A `u64`.
    pub fn u64(&mut self, value: u64) -> io::Result<()> {
        self.raw(&value.to_le_bytes())
    }

    /// A count or length (written as `u32`; larger values are refused).
    pub fn len(&mut self, value: usize) -> io::Result<()> {
        let value = u32::try_from(value)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "count over u32"))?;
        self.u32(value)
    }

    /// A byte string, length first.
    pub fn bytes(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.len(bytes.len())?;
        self.raw(bytes)
    }

    /// An optional `u64`.
    pub fn opt_u64(&mut self, value: Option<u64>) -> io::Result<()> {
        self.bool(value.is_some())?;
        self.u64(value.unwrap_or(0))
    }

    /// An instant.
    pub fn instant(&mut self, value: Instant) -> io::Result<()> {
        self.u64(value.as_micros())
    }

    /// A duration.
    pub fn duration(&mut self, value: Duration) -> io::Result<()> {
        self.u64(value.as_micros())
    }

    /// An address: a family byte (4 or 6), then its octets.
    pub fn ip(&mut self, value: IpAddr) -> io::Result<()> {
        match value {
            IpAddr::V4(a) => {
                self.u8(4)?;
                self.raw(&a.octets())
            }
            IpAddr::V6(a) => {
                self.u8(6)?;
                self.raw(&a.octets())
            }
        }
    }

    /// An address and port.
    pub fn socket(&mut self, value: SocketAddr) -> io::Result<()> {
        self.ip(value.ip())?;
        self.u16(value.port())
    }

    /// End: the checksum of everything written, then flush.
    pub fn finish(self) -> io::Result<()> {
        let sum = self.hash.0;
        self.out.write_all(&sum.to_le_bytes())?;
        self.out.flush()
    }
}

impl<'a> Decoder<'a> {
    /// Read from `input`.
    pub fn new(input: &'a mut dyn Read) -> Self {
        Self {
            input,
            hash: Fnv::new(),
        }
    }

    /// Exactly `N` raw bytes, counted in the checksum.
    pub fn raw<const N: usize>(&mut self) -> Result<[u8; N], SnapshotError> {
        let mut bytes = [0; N];
        self.input
            .read_exact(&mut bytes)
            .map_err(SnapshotError::Io)?;
        self.hash.update(&bytes);
        Ok(bytes)
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, SnapshotError> {
        Ok(self.raw::<1>()?[0])
    }

    /// A boolean (only 0 and 1 are valid).
    pub fn bool(&mut self, what: &'static str) -> Result<bool, SnapshotError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(SnapshotError::Invalid(what)),
        }
    }

    /// A `u16`.
    pub fn u16(&mut self) -> Result<u16, SnapshotError> {
        Ok(u16::from_le_bytes(self.raw()?))
    }

    /// A `u32`.
    pub fn u32(&mut self) -> Result<u32, SnapshotError> {
        Ok(u32::from_le_bytes(self.raw()?))
    }

    /// A `u64`.
    pub fn u64(&mut self) -> Result<u64, SnapshotError> {
        Ok(u64::from_le_bytes(self.raw()?))
    }

    /// A count or length of at most `max`.
    pub fn len(&mut self, max: usize, what: &'static str) -> Result<usize, SnapshotError> {
        let value = usize::try_from(self.u32()?).map_err(|_| SnapshotError::Invalid(what))?;
        if value > max {
            return Err(SnapshotError::Invalid(what));
        }
        Ok(value)
    }

    /// A byte string of at most `max` bytes.
    pub fn bytes(&mut self, max: usize, what: &'static str) -> Result<Vec<u8>, SnapshotError> {
        let len = self.len(max, what)?;
        let mut bytes = vec![0; len];
        self.input
            .read_exact(&mut bytes)
            .map_err(SnapshotError::Io)?;
        self.hash.update(&bytes);
        Ok(bytes)
    }

    /// An optional `u64`.
    pub fn opt_u64(&mut self, what: &'static str) -> Result<Option<u64>, SnapshotError> {
        let present = self.bool(what)?;
        let value = self.u64()?;
        Ok(present.then_some(value))
    }

    /// An instant.
    pub fn instant(&mut self) -> Result<Instant, SnapshotError> {
        Ok(Instant::from_micros(self.u64()?))
    }

    /// A duration.
    pub fn duration(&mut self) -> Result<Duration, SnapshotError> {
        Ok(Duration::from_micros(self.u64()?))
    }

    /// An address.
    pub fn ip(&mut self) -> Result<IpAddr, SnapshotError> {
        match self.u8()? {
            4 => Ok(IpAddr::V4(Ipv4Addr::from(self.raw::<4>()?))),
            6 => Ok(IpAddr::V6(Ipv6Addr::from(self.raw::<16>()?))),
            _ => Err(SnapshotError::Invalid("address family")),
        }
    }

    /// An address and port.
    pub fn socket(&mut self) -> Result<SocketAddr, SnapshotError> {
        let ip = self.ip()?;
        Ok(SocketAddr::new(ip, self.u16()?))
    }

    /// End: the checksum must match everything read.
    pub fn finish(self) -> Result<(), SnapshotError> {
        let expected = self.hash.0;
        let mut sum = [0; 8];
        self.input.read_exact(&mut sum).map_err(SnapshotError::Io)?;
        if u64::from_le_bytes(sum) != expected {
            return Err(SnapshotError::Checksum);
        }
        Ok(())
    }
}

/// The FNV-1a hash of `bytes` (the snapshot checksum's function; also good for a
/// fingerprint of options).
pub fn checksum(bytes: &[u8]) -> u64 {
    let mut hash = Fnv::new();
    hash.update(bytes);
    hash.0
}

impl Fnv {
    const fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(error) if error.kind() == io::ErrorKind::UnexpectedEof => {
                f.write_str("it ends early (truncated)")
            }
            Self::Io(error) => write!(f, "cannot read it: {error}"),
            Self::BadMagic => f.write_str("it is not an ftp-alg engine snapshot"),
            Self::Version(v) => write!(
                f,
                "it has format version {v}, this build reads only {}",
                crate::engine::snapshot::VERSION
            ),
            Self::Invalid(what) => write!(f, "its {what} is invalid"),
            Self::Checksum => f.write_str("its checksum does not match (corrupted)"),
        }
    }
}

impl std::error::Error for SnapshotError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_and_the_checksum_catches_a_flip() {
        let mut buf = Vec::new();
        let mut e = Encoder::new(&mut buf);
        e.u8(7).unwrap();
        e.bool(true).unwrap();
        e.u16(0xbeef).unwrap();
        e.u64(u64::MAX).unwrap();
        e.bytes(b"PASV").unwrap();
        e.opt_u64(None).unwrap();
        e.socket("[2001:db8::1]:21".parse().unwrap()).unwrap();
        e.socket("198.51.100.2:40000".parse().unwrap()).unwrap();
        e.finish().unwrap();
        let read = |bytes: &[u8]| -> Result<_, SnapshotError> {
            let mut input = bytes;
            let mut d = Decoder::new(&mut input);
            let fields = (
                d.u8()?,
                d.bool("flag")?,
                d.u16()?,
                d.u64()?,
                d.bytes(16, "text")?,
                d.opt_u64("option")?,
                d.socket()?,
                d.socket()?,
            );
            d.finish()?;
            Ok(fields)
        };
        let fields = read(&buf).unwrap();
        assert_eq!(
            fields,
            (
                7,
                true,
                0xbeef,
                u64::MAX,
                b"PASV".to_vec(),
                None,
                "[2001:db8::1]:21".parse().unwrap(),
                "198.51.100.2:40000".parse().unwrap()
            )
        );
        let mut flipped = buf.clone();
        flipped[5] ^= 0x10;
        assert!(matches!(read(&flipped), Err(SnapshotError::Checksum)));
        assert!(matches!(
            read(&buf[..buf.len() - 1]),
            Err(SnapshotError::Io(_))
        ));
    }

    #[test]
    fn lengths_past_their_bound_are_refused_before_allocating() {
        let mut buf = Vec::new();
        let mut e = Encoder::new(&mut buf);
        e.u32(u32::MAX).unwrap();
        let mut input = buf.as_slice();
        let mut d = Decoder::new(&mut input);
        assert!(matches!(
            d.bytes(4096, "line"),
            Err(SnapshotError::Invalid("line"))
        ));
        let mut bad_bool: &[u8] = &[2];
        assert!(matches!(
            Decoder::new(&mut bad_bool).bool("flag"),
            Err(SnapshotError::Invalid("flag"))
        ));
    }
}
