//! The `capture` target: [`CaptureReader`] (pcap and pcapng) over arbitrary bytes, each packet
//! stripped of its link layer ([`ip_datagram`]) and parsed ([`crate::wire::parse`]).
//!
//! Invariants: reading ends (a clean end or an error) within one record per input byte; each
//! packet fits in the input and in [`MAX_PACKET`], and its metadata agrees with the buffer;
//! after an error every later call returns the same error; the link layer's datagram is a
//! part of the frame.

use std::io::Cursor;

use crate::io::capture::CaptureReader;
use crate::io::capture::MAX_PACKET;
use crate::io::capture::ip_datagram;
use crate::wire;

/// The harness (see the module doc).
pub fn capture(data: &[u8]) {
    let Ok(mut reader) = CaptureReader::from_reader("fuzz", Box::new(Cursor::new(data.to_vec())))
    else {
        return;
    };
    let mut buf = Vec::new();
    let mut packets = 0u64;
    for _ in 0..=data.len() {
        match reader.next_packet(&mut buf) {
            Ok(Some(meta)) => {
                packets += 1;
                assert_eq!(meta.captured_len as usize, buf.len());
                assert!(buf.len() <= data.len() && buf.len() <= MAX_PACKET as usize);
                if let Ok(datagram) = ip_datagram(meta.link, &buf) {
                    let inside = buf.as_ptr_range();
                    assert!(inside.contains(&datagram.as_ptr()) || datagram.is_empty());
                    assert!(datagram.len() <= buf.len());
                    let _ = wire::parse(datagram);
                }
            }
            Ok(None) => {
                assert_eq!(reader.packets_read(), packets);
                assert_eq!(reader.next_packet(&mut buf).ok(), Some(None));
                return;
            }
            Err(error) => {
                assert!(buf.is_empty());
                let again = reader.next_packet(&mut buf).expect_err("errors are sticky");
                assert_eq!(again, error);
                assert!(error.offset() <= data.len() as u64, "{error}");
                return;
            }
        }
    }
    panic!("{packets} packets from {} bytes and no end", data.len());
}
