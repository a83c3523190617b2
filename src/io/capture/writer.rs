//! [`PcapWriter`]: a legacy pcap file of raw IP datagrams (`LINKTYPE_RAW`, 101), written as
//! the replay releases them (`ftp-alg replay --write`), so a NAT rewrite can be checked
//! offline (e.g. by tshark's TCP analysis). Format: tcpdump's `pcap-savefile(5)`.

use std::io;
use std::io::Write;

use crate::time::Instant;

/// `LINKTYPE_RAW`: each record is one IPv4 or IPv6 datagram.
const LINKTYPE_RAW: u32 = 101;
const SNAPLEN: u32 = 262_144;

/// Writes raw IP datagrams to a pcap stream.
pub struct PcapWriter<W: Write> {
    out: W,
}

impl<W: Write> PcapWriter<W> {
    /// Write the file header to `out`.
    pub fn new(mut out: W) -> io::Result<Self> {
        let mut header = Vec::with_capacity(24);
        header.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        header.extend_from_slice(&2u16.to_le_bytes());
        header.extend_from_slice(&4u16.to_le_bytes());
        header.extend_from_slice(&0i32.to_le_bytes());
        header.extend_from_slice(&0u32.to_le_bytes());
        header.extend_from_slice(&SNAPLEN.to_le_bytes());
        header.extend_from_slice(&LINKTYPE_RAW.to_le_bytes());
        out.write_all(&header)?;
        Ok(Self { out })
    }

    /// One datagram seen at `time` (microseconds since the Unix epoch).
    pub fn packet(&mut self, time: Instant, datagram: &[u8]) -> io::Result<()> {
        let micros = time.as_micros();
        let len = u32::try_from(datagram.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "datagram too long"))?;
        let mut record = Vec::with_capacity(16);
        record.extend_from_slice(&((micros / 1_000_000) as u32).to_le_bytes());
        record.extend_from_slice(&((micros % 1_000_000) as u32).to_le_bytes());
        record.extend_from_slice(&len.to_le_bytes());
        record.extend_from_slice(&len.to_le_bytes());
        self.out.write_all(&record)?;
        self.out.write_all(datagram)
    }

    /// Flush and give back the stream.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::capture::CaptureReader;

    #[test]
    fn what_is_written_reads_back() {
        let mut writer = PcapWriter::new(Vec::new()).unwrap();
        writer
            .packet(Instant::from_micros(1_500_000), &[0x45, 1, 2])
            .unwrap();
        writer
            .packet(Instant::from_micros(2_000_001), &[0x60; 5])
            .unwrap();
        let bytes = writer.finish().unwrap();
        let mut reader = CaptureReader::from_reader("w", Box::new(io::Cursor::new(bytes))).unwrap();
        let mut buf = Vec::new();
        let first = reader.next_packet(&mut buf).unwrap().unwrap();
        assert_eq!(first.timestamp, Instant::from_micros(1_500_000));
        assert_eq!(buf, [0x45, 1, 2]);
        let second = reader.next_packet(&mut buf).unwrap().unwrap();
        assert_eq!(second.timestamp, Instant::from_micros(2_000_001));
        assert_eq!(buf.len(), 5);
        assert!(reader.next_packet(&mut buf).unwrap().is_none());
    }
}
