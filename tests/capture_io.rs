//! Capture reading end to end: files built by the testkit writer (or by hand, for big-endian
//! and odd variants) are read back through `CaptureReader` and `ip_datagram`; corrupt files
//! must fail with the right offset and message; real captures in `shared/pcaps` must read
//! cleanly when present.

use std::collections::HashMap;
use std::fs;
use std::io::Cursor;
use std::path::Path;
use std::path::PathBuf;

use etherparse::PacketBuilder;
use ftp_alg::io::capture::CaptureError;
use ftp_alg::io::capture::CaptureErrorKind;
use ftp_alg::io::capture::CaptureReader;
use ftp_alg::io::capture::LinkType;
use ftp_alg::io::capture::MAX_PACKET;
use ftp_alg::io::capture::PacketMeta;
use ftp_alg::io::capture::Record;
use ftp_alg::io::capture::ip_datagram;
use ftp_alg::testkit::pcap::Format;
use ftp_alg::testkit::pcap::Interface;
use ftp_alg::testkit::pcap::Link;
use ftp_alg::testkit::pcap::Writer;
use ftp_alg::testkit::pcap::frame;
use ftp_alg::time::Instant;
use proptest::prelude::*;

const NAME: &str = "mem.pcap";
/// 2020-09-13T12:26:40.123456Z
const T0: u64 = 1_600_000_000_123_456;

fn ipv4_datagram(payload: &[u8]) -> Vec<u8> {
    let builder =
        PacketBuilder::ipv4([192, 0, 2, 1], [198, 51, 100, 2], 64).tcp(40000, 21, 7, 65535);
    let mut datagram = Vec::with_capacity(builder.size(payload.len()));
    builder
        .write(&mut datagram, payload)
        .expect("write to a Vec");
    datagram
}

fn ipv6_datagram(payload: &[u8]) -> Vec<u8> {
    let (source, destination) = (
        [0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        [0xfe; 16],
    );
    let builder = PacketBuilder::ipv6(source, destination, 64).tcp(21, 50000, 9, 1024);
    let mut datagram = Vec::with_capacity(builder.size(payload.len()));
    builder
        .write(&mut datagram, payload)
        .expect("write to a Vec");
    datagram
}

fn reader(bytes: Vec<u8>) -> Result<CaptureReader, CaptureError> {
    CaptureReader::from_reader(NAME, Box::new(Cursor::new(bytes)))
}

/// A packet read back: its metadata and bytes.
type Packet = (PacketMeta, Vec<u8>);

/// Every packet up to the end or the first error.
fn read_all(bytes: Vec<u8>) -> (Vec<Packet>, Result<(), CaptureError>) {
    let mut packets = Vec::new();
    let mut capture = match reader(bytes) {
        Ok(capture) => capture,
        Err(error) => return (packets, Err(error)),
    };
    let mut buf = Vec::new();
    loop {
        match capture.next_packet(&mut buf) {
            Ok(Some(meta)) => packets.push((meta, buf.clone())),
            Ok(None) => return (packets, Ok(())),
            Err(error) => return (packets, Err(error)),
        }
    }
}

fn read_ok(bytes: Vec<u8>) -> Vec<Packet> {
    let (packets, end) = read_all(bytes);
    end.expect("the file reads to its end");
    packets
}

fn all_links() -> Vec<Link> {
    vec![
        Link::Ethernet { vlans: vec![] },
        Link::Ethernet { vlans: vec![42] },
        Link::Ethernet {
            vlans: vec![100, 200],
        },
        Link::LinuxSll,
        Link::LinuxSll2,
        Link::Raw,
        Link::RawIpv4,
        Link::RawIpv6,
        Link::Null,
        Link::Loop,
    ]
}

/// The datagrams a link can carry: both versions, except on the version-specific raw types.
fn datagrams_for(link: &Link) -> Vec<Vec<u8>> {
    let v4 = ipv4_datagram(b"PORT 192,0,2,1,4,1\r\n");
    let v6 = ipv6_datagram(b"229 Entering Extended Passive Mode (|||50001|)\r\n");
    match link {
        Link::RawIpv4 => vec![v4, ipv4_datagram(b"x")],
        Link::RawIpv6 => vec![v6, ipv6_datagram(b"")],
        _ => vec![v4, v6],
    }
}

#[test]
fn round_trip_every_format_and_link() {
    for format in [Format::Pcap, Format::PcapNanos, Format::PcapNg] {
        for link in all_links() {
            let datagrams = datagrams_for(&link);
            let mut writer = Writer::new(format, link.link_type());
            for (i, datagram) in datagrams.iter().enumerate() {
                writer.packet(
                    Instant::from_micros(T0 + 1_000_001 * i as u64),
                    &frame(&link, datagram),
                );
            }
            let packets = read_ok(writer.finish());
            assert_eq!(packets.len(), datagrams.len(), "{format:?} {link:?}");
            for (i, ((meta, data), datagram)) in packets.iter().zip(&datagrams).enumerate() {
                let context = format!("{format:?} {link:?} packet {i}");
                assert_eq!(
                    meta.timestamp.as_micros(),
                    T0 + 1_000_001 * i as u64,
                    "{context}"
                );
                assert_eq!(meta.link, link.link_type(), "{context}");
                assert_eq!(data, &frame(&link, datagram), "{context}");
                assert_eq!(meta.captured_len as usize, data.len(), "{context}");
                assert_eq!(meta.original_len, meta.captured_len, "{context}");
                assert_eq!(ip_datagram(meta.link, data), Ok(&datagram[..]), "{context}");
            }
        }
    }
}

#[test]
fn reader_counts_packets_and_stays_at_end() {
    let mut writer = Writer::new(Format::Pcap, LinkType::Raw);
    for i in 0..5 {
        writer.packet(Instant::from_micros(T0 + i), &ipv4_datagram(&[i as u8]));
    }
    let mut capture = reader(writer.finish()).expect("opens");
    let mut buf = vec![0xaa; 3];
    let mut timestamps = Vec::new();
    while let Some(meta) = capture.next_packet(&mut buf).expect("reads") {
        timestamps.push(meta.timestamp.as_micros());
        assert_eq!(capture.packets_read(), timestamps.len() as u64);
    }
    assert_eq!(timestamps, (0..5).map(|i| T0 + i).collect::<Vec<_>>());
    assert!(buf.is_empty(), "the buffer is cleared at the end");
    assert_eq!(capture.next_packet(&mut buf), Ok(None));
    assert_eq!(capture.packets_read(), 5);
}

#[test]
fn snapped_packets_keep_their_original_length() {
    let datagram = ipv4_datagram(&[7; 300]);
    let link = Link::Ethernet { vlans: vec![] };
    let full = frame(&link, &datagram);
    for format in [Format::Pcap, Format::PcapNg] {
        let mut writer = Writer::new(format, LinkType::Ethernet);
        writer.snapped_packet(Instant::from_micros(T0), &full, 96);
        let packets = read_ok(writer.finish());
        let (meta, data) = &packets[0];
        assert_eq!(
            (meta.captured_len, meta.original_len),
            (96, full.len() as u32),
            "{format:?}"
        );
        assert_eq!(data[..], full[..96]);
        assert_eq!(
            ip_datagram(meta.link, data),
            Ok(&full[14..96]),
            "a snapped datagram runs to the end"
        );
    }
}

#[test]
fn pcapng_interfaces_with_different_links_and_resolutions() {
    let interfaces = [
        Interface {
            link: LinkType::Ethernet,
            tsresol: None,
        },
        Interface {
            link: LinkType::LinuxSll2,
            tsresol: Some(9),
        },
        Interface {
            link: LinkType::Null,
            tsresol: Some(0x80 | 6),
        },
    ];
    let links = [
        Link::Ethernet { vlans: vec![7] },
        Link::LinuxSll2,
        Link::Null,
    ];
    // Multiples of 15625 µs are exact in 2^-6 s units.
    let times = [T0, T0 + 1, 1_600_000_000_015_625];
    let mut writer = Writer::pcapng(&interfaces);
    let datagrams = [
        ipv4_datagram(b"a"),
        ipv6_datagram(b"bb"),
        ipv4_datagram(b"ccc"),
    ];
    for (i, datagram) in datagrams.iter().enumerate() {
        writer.packet_on(
            i as u32,
            Instant::from_micros(times[i]),
            &frame(&links[i], datagram),
        );
    }
    writer.packet_on(
        1,
        Instant::from_micros(T0 + 2),
        &frame(&links[1], &datagrams[0]),
    );
    let packets = read_ok(writer.finish());
    assert_eq!(packets.len(), 4);
    for (i, (meta, data)) in packets.iter().take(3).enumerate() {
        assert_eq!(meta.link, interfaces[i].link, "packet {i}");
        assert_eq!(meta.timestamp.as_micros(), times[i], "packet {i}");
        assert_eq!(
            ip_datagram(meta.link, data),
            Ok(&datagrams[i][..]),
            "packet {i}"
        );
    }
    assert_eq!(
        (packets[3].0.link, packets[3].0.timestamp.as_micros()),
        (LinkType::LinuxSll2, T0 + 2)
    );
}

#[test]
fn pcapng_skips_other_blocks_and_reads_simple_packets() {
    let datagram = ipv4_datagram(b"RETR f\r\n"); // 48 bytes + 1: padding follows in the SPB
    let odd = [&datagram[..], b"!"].concat();
    let mut writer = Writer::new(Format::PcapNg, LinkType::Raw);
    writer.block(5, &[0; 20]); // interface statistics
    writer.packet(Instant::from_micros(T0), &datagram);
    writer.block(4, &[0; 4]); // name resolution, just opt_endofopt
    writer.block(0x0bad, b"custom, copyable"); // custom block
    writer.block(0x4000_0bad, &[]); // custom block, not to be copied
    writer.simple_packet(&odd);
    writer.block(0x8000_0001, &[1, 2, 3]); // process information
    let packets = read_ok(writer.finish());
    assert_eq!(packets.len(), 2);
    assert_eq!(packets[0].1, datagram);
    let (meta, data) = &packets[1];
    assert_eq!(data, &odd, "the SPB's padding is not data");
    assert_eq!(
        (meta.captured_len, meta.original_len),
        (odd.len() as u32, odd.len() as u32)
    );
    assert_eq!(
        meta.timestamp.as_micros(),
        T0,
        "an SPB has the previous packet's timestamp"
    );
}

/// A big-endian legacy header with the given magic and link type.
fn big_endian_header(magic: u32, link: u32) -> Vec<u8> {
    let mut bytes = magic.to_be_bytes().to_vec();
    bytes.extend(2u16.to_be_bytes().into_iter().chain(4u16.to_be_bytes()));
    bytes.extend([0; 8]);
    bytes.extend(65535u32.to_be_bytes().into_iter().chain(link.to_be_bytes()));
    bytes
}

fn big_endian_record(seconds: u32, fraction: u32, data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u32).to_be_bytes();
    let mut bytes = seconds
        .to_be_bytes()
        .into_iter()
        .chain(fraction.to_be_bytes())
        .collect::<Vec<_>>();
    bytes.extend(len.into_iter().chain(len));
    bytes.extend(data);
    bytes
}

#[test]
fn big_endian_pcap_micro_and_nanoseconds() {
    let datagram = ipv6_datagram(b"EPSV\r\n");
    let framed = frame(&Link::Loop, &datagram);
    for (magic, fraction, micros) in [
        (0xa1b2_c3d4, 123_456, 123_456),
        (0xa1b2_3c4d, 123_456_789, 123_456),
    ] {
        let mut bytes = big_endian_header(magic, 108);
        bytes.extend(big_endian_record(1_600_000_000, fraction, &framed));
        let packets = read_ok(bytes);
        let (meta, data) = &packets[0];
        assert_eq!(
            meta.timestamp.as_micros(),
            1_600_000_000_000_000 + micros,
            "{magic:#x}"
        );
        assert_eq!(meta.link, LinkType::Loop);
        assert_eq!(ip_datagram(meta.link, data), Ok(&datagram[..]));
    }
}

#[test]
fn nanosecond_pcap_truncates_to_microseconds() {
    let mut bytes = Writer::new(Format::PcapNanos, LinkType::RawIpv4).finish();
    let datagram = ipv4_datagram(b"");
    bytes.extend(
        7u32.to_le_bytes()
            .into_iter()
            .chain(999_999_999u32.to_le_bytes()),
    );
    bytes.extend(
        (datagram.len() as u32)
            .to_le_bytes()
            .into_iter()
            .chain(1500u32.to_le_bytes()),
    );
    bytes.extend(&datagram);
    let packets = read_ok(bytes);
    assert_eq!(packets[0].0.timestamp.as_micros(), 7_999_999);
    assert_eq!(packets[0].0.original_len, 1500);
}

#[test]
fn modified_pcap_records_have_24_byte_headers() {
    let datagram = ipv4_datagram(b"QUIT\r\n");
    let mut bytes = Writer::new(Format::Pcap, LinkType::Raw).finish();
    bytes[..4].copy_from_slice(&0xa1b2_cd34u32.to_le_bytes());
    let len = (datagram.len() as u32).to_le_bytes();
    bytes.extend(
        9u32.to_le_bytes()
            .into_iter()
            .chain(5u32.to_le_bytes())
            .chain(len)
            .chain(len),
    );
    bytes.extend([0xee; 8]); // ifindex, protocol, packet type, padding
    bytes.extend(&datagram);
    let packets = read_ok(bytes);
    assert_eq!(packets[0].0.timestamp.as_micros(), 9_000_005);
    assert_eq!(packets[0].1, datagram);
}

/// A big-endian pcapng block.
fn be_block(block_type: u32, body: &[u8]) -> Vec<u8> {
    let length = (12 + body.len().next_multiple_of(4)) as u32;
    let mut block = block_type
        .to_be_bytes()
        .into_iter()
        .chain(length.to_be_bytes())
        .collect::<Vec<_>>();
    block.extend(body);
    block.resize(length as usize - 4, 0);
    block.extend(length.to_be_bytes());
    block
}

/// A big-endian section: RawIpv4 in nanoseconds with `if_tsoffset` 1000 s, one packet at
/// `nanos`, then an ISB.
fn big_endian_section(nanos: u64, datagram: &[u8]) -> Vec<u8> {
    let mut shb = 0x1a2b_3c4du32.to_be_bytes().to_vec();
    shb.extend([0, 1, 0, 0]);
    shb.extend((-1i64).to_be_bytes());
    let mut idb = 228u16
        .to_be_bytes()
        .into_iter()
        .chain([0, 0])
        .collect::<Vec<_>>();
    idb.extend(0u32.to_be_bytes());
    idb.extend(
        9u16.to_be_bytes()
            .into_iter()
            .chain(1u16.to_be_bytes())
            .chain([9, 0, 0, 0]),
    );
    idb.extend(
        14u16
            .to_be_bytes()
            .into_iter()
            .chain(8u16.to_be_bytes())
            .chain(1000i64.to_be_bytes()),
    );
    idb.extend([0; 4]);
    let len = (datagram.len() as u32).to_be_bytes();
    let mut epb = 0u32
        .to_be_bytes()
        .into_iter()
        .chain(((nanos >> 32) as u32).to_be_bytes())
        .collect::<Vec<_>>();
    epb.extend(
        (nanos as u32)
            .to_be_bytes()
            .into_iter()
            .chain(len)
            .chain(len),
    );
    epb.extend(datagram);
    [
        be_block(0x0a0d_0d0a, &shb),
        be_block(1, &idb),
        be_block(6, &epb),
        be_block(5, &[0; 12]),
    ]
    .concat()
}

#[test]
fn big_endian_pcapng_then_a_little_endian_section() {
    let datagram = ipv4_datagram(b"USER anonymous\r\n");
    let mut bytes = big_endian_section(1_600_000_000_123_456_789, &datagram);
    let mut little = Writer::new(Format::PcapNg, LinkType::Ethernet);
    let framed = frame(&Link::Ethernet { vlans: vec![] }, &datagram);
    little.packet(Instant::from_micros(T0), &framed);
    bytes.extend(little.finish());
    let packets = read_ok(bytes);
    assert_eq!(packets.len(), 2);
    assert_eq!(packets[0].0.link, LinkType::RawIpv4);
    assert_eq!(
        packets[0].0.timestamp.as_micros(),
        1_600_001_000_123_456,
        "ns truncated, offset added"
    );
    assert_eq!(packets[0].1, datagram);
    assert_eq!(
        packets[1].0.link,
        LinkType::Ethernet,
        "the new section has its own interface 0"
    );
    assert_eq!(packets[1].0.timestamp.as_micros(), T0);
    assert_eq!(packets[1].1, framed);
}

fn expect_error(bytes: Vec<u8>) -> CaptureError {
    let (_, end) = read_all(bytes);
    end.expect_err("the file is bad")
}

#[test]
fn empty_and_text_files_are_rejected_at_offset_zero() {
    let empty = expect_error(Vec::new());
    assert_eq!(
        (empty.offset(), empty.kind()),
        (0, &CaptureErrorKind::Empty)
    );
    assert_eq!(
        empty.to_string(),
        "mem.pcap: offset 0: empty file, not a pcap or pcapng capture"
    );
    let text = expect_error(b"Hello, world! This is not a capture.\n".to_vec());
    assert_eq!(
        text.kind(),
        &CaptureErrorKind::BadMagic(u32::from_be_bytes(*b"Hell"))
    );
    assert_eq!(
        text.to_string(),
        "mem.pcap: offset 0: not a pcap or pcapng file (magic number 0x48656c6c)"
    );
    let short = expect_error(vec![0xd4, 0xc3]);
    let kind = CaptureErrorKind::Truncated {
        record: Record::FileHeader,
        needed: 4,
        available: 2,
    };
    assert_eq!(short.kind(), &kind);
}

#[test]
fn a_missing_file_is_an_io_error_naming_it() {
    let error = CaptureReader::open(Path::new("/nonexistent/capture.pcap"))
        .err()
        .expect("no such file");
    assert!(matches!(
        error.kind(),
        CaptureErrorKind::Io {
            kind: std::io::ErrorKind::NotFound,
            ..
        }
    ));
    assert_eq!(error.file(), "/nonexistent/capture.pcap");
    assert!(
        error
            .to_string()
            .starts_with("/nonexistent/capture.pcap: offset 0: I/O error: ")
    );
}

/// Three Ethernet frames of different sizes.
fn three_frames() -> Vec<Vec<u8>> {
    let link = Link::Ethernet { vlans: vec![] };
    [
        ipv4_datagram(b"1"),
        ipv6_datagram(&[2; 100]),
        ipv4_datagram(&[3; 1400]),
    ]
    .iter()
    .map(|datagram| frame(&link, datagram))
    .collect()
}

fn legacy_file(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut writer = Writer::new(Format::Pcap, LinkType::Ethernet);
    for (i, data) in frames.iter().enumerate() {
        writer.packet(Instant::from_micros(T0 + i as u64), data);
    }
    writer.finish()
}

/// Where each legacy record starts, and where the file ends.
fn legacy_boundaries(frames: &[Vec<u8>]) -> Vec<u64> {
    let mut boundaries = vec![24u64];
    for data in frames {
        boundaries.push(boundaries.last().copied().unwrap_or_default() + 16 + data.len() as u64);
    }
    boundaries
}

#[test]
fn truncated_record_names_its_offset_after_returning_earlier_packets() {
    let frames = three_frames();
    let bytes = legacy_file(&frames);
    let starts = legacy_boundaries(&frames);
    let cut = starts[2] + 16 + 300;
    let (packets, end) = read_all(bytes[..cut as usize].to_vec());
    assert_eq!(
        packets.iter().map(|(_, data)| data).collect::<Vec<_>>(),
        vec![&frames[0], &frames[1]]
    );
    let error = end.expect_err("cut in the third record");
    assert_eq!(error.offset(), starts[2]);
    let needed = 16 + frames[2].len() as u64;
    let kind = CaptureErrorKind::Truncated {
        record: Record::Packet,
        needed,
        available: 316,
    };
    assert_eq!(error.kind(), &kind);
    let expected = format!(
        "mem.pcap: offset {}: truncated packet record (needed {needed} bytes, file ends after 316)",
        starts[2]
    );
    assert_eq!(error.to_string(), expected);
}

#[test]
fn every_truncation_point_returns_a_prefix_then_names_the_cut_record() {
    let frames = three_frames();
    let bytes = legacy_file(&frames);
    let boundaries = legacy_boundaries(&frames);
    for cut in 0..=bytes.len() as u64 {
        let (packets, end) = read_all(bytes[..cut as usize].to_vec());
        let complete = boundaries.iter().skip(1).filter(|&&end| end <= cut).count();
        assert_eq!(packets.len(), complete, "cut at {cut}");
        for ((_, data), original) in packets.iter().zip(&frames) {
            assert_eq!(data, original, "cut at {cut}");
        }
        match end {
            Ok(()) => assert!(boundaries.contains(&cut), "clean end at {cut}"),
            Err(error) if cut < 24 => assert_eq!(error.offset(), 0, "cut at {cut}"),
            Err(error) => assert_eq!(error.offset(), boundaries[complete], "cut at {cut}"),
        }
    }
}

#[test]
fn truncated_pcapng_block_names_its_offset() {
    let frames = three_frames();
    let mut writer = Writer::new(Format::PcapNg, LinkType::Ethernet);
    for data in &frames {
        writer.packet(Instant::from_micros(T0), data);
    }
    let bytes = writer.finish();
    let epb_len = |data: &Vec<u8>| 32 + data.len().next_multiple_of(4) as u64;
    let third = 28 + 20 + epb_len(&frames[0]) + epb_len(&frames[1]);
    let (packets, end) = read_all(bytes[..third as usize + 40].to_vec());
    assert_eq!(packets.len(), 2);
    let error = end.expect_err("cut in the third block");
    assert_eq!(error.offset(), third);
    let kind = CaptureErrorKind::Truncated {
        record: Record::Block(6),
        needed: epb_len(&frames[2]),
        available: 40,
    };
    assert_eq!(error.kind(), &kind);
    assert!(
        error
            .to_string()
            .contains(": truncated enhanced packet block (needed ")
    );
}

#[test]
fn absurd_lengths_are_errors_not_allocations() {
    let frames = three_frames();
    let mut bytes = legacy_file(&frames[..1]);
    let at = bytes.len() as u64;
    bytes.extend([
        0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    ]);
    let (packets, end) = read_all(bytes);
    assert_eq!(packets.len(), 1);
    let error = end.expect_err("caplen 4 GiB");
    assert_eq!(error.offset(), at);
    let limit = u64::from(MAX_PACKET);
    let kind = CaptureErrorKind::TooLong {
        record: Record::Packet,
        length: u64::from(u32::MAX),
        limit,
    };
    assert_eq!(error.kind(), &kind);
    assert_eq!(
        error.to_string(),
        format!(
            "mem.pcap: offset {at}: packet record of 4294967295 bytes exceeds the {limit}-byte limit"
        )
    );

    let mut bytes = Writer::new(Format::PcapNg, LinkType::Raw).finish();
    bytes.extend(
        6u32.to_le_bytes()
            .into_iter()
            .chain(0xffff_fff0u32.to_le_bytes()),
    );
    let error = expect_error(bytes);
    assert_eq!(error.offset(), 48);
    assert!(matches!(
        error.kind(),
        CaptureErrorKind::TooLong {
            record: Record::Block(6),
            ..
        }
    ));
}

#[test]
fn the_largest_legitimate_packet_is_read_and_one_more_byte_is_refused() {
    let biggest = vec![0x45; MAX_PACKET as usize];
    for format in [Format::Pcap, Format::PcapNg] {
        let mut writer = Writer::new(format, LinkType::Raw);
        writer.packet(Instant::from_micros(T0), &biggest);
        let packets = read_ok(writer.finish());
        assert_eq!(packets[0].1.len(), biggest.len(), "{format:?}");
    }
    let mut writer = Writer::new(Format::Pcap, LinkType::Raw);
    writer.packet(Instant::from_micros(T0), &[biggest, vec![0]].concat());
    let error = expect_error(writer.finish());
    let kind = CaptureErrorKind::TooLong {
        record: Record::Packet,
        length: u64::from(MAX_PACKET) + 1,
        limit: u64::from(MAX_PACKET),
    };
    assert_eq!((error.offset(), error.kind()), (24, &kind));
}

#[test]
fn a_huge_skipped_block_is_truncated_not_held() {
    let mut bytes = Writer::new(Format::PcapNg, LinkType::Raw).finish();
    bytes.extend(
        0x0badu32
            .to_le_bytes()
            .into_iter()
            .chain(0xffff_fff0u32.to_le_bytes()),
    );
    bytes.extend([0; 100]);
    let error = expect_error(bytes);
    let kind = CaptureErrorKind::Truncated {
        record: Record::Block(0x0bad),
        needed: 0xffff_fff0,
        available: 108,
    };
    assert_eq!((error.offset(), error.kind()), (48, &kind));
}

#[test]
fn unknown_link_types_are_named() {
    let mut pcap = Writer::new(Format::Pcap, LinkType::Ethernet).finish();
    pcap[20..24].copy_from_slice(&147u32.to_le_bytes());
    let error = reader(pcap).err().expect("refused at open");
    assert_eq!(
        (error.offset(), error.kind()),
        (0, &CaptureErrorKind::UnsupportedLinkType(147))
    );
    assert_eq!(
        error.to_string(),
        "mem.pcap: offset 0: unsupported link type 147"
    );

    let mut pcapng = Writer::new(Format::PcapNg, LinkType::Ethernet).finish();
    pcapng[28 + 8..28 + 10].copy_from_slice(&147u16.to_le_bytes());
    let error = expect_error(pcapng);
    assert_eq!(
        (error.offset(), error.kind()),
        (28, &CaptureErrorKind::UnsupportedLinkType(147))
    );
}

#[test]
fn fcs_bits_in_the_link_type_field_are_ignored() {
    let mut pcap = Writer::new(Format::Pcap, LinkType::Ethernet).finish();
    pcap[20..24].copy_from_slice(&(1u32 | 0x1400_0000).to_le_bytes()); // F bit, FCS length 1 (16 bits)
    assert!(reader(pcap).is_ok());
}

#[test]
fn inconsistent_pcapng_block_lengths() {
    let datagram = ipv4_datagram(b"x");
    let mut writer = Writer::new(Format::PcapNg, LinkType::Raw);
    writer.packet(Instant::from_micros(T0), &datagram);
    let good = writer.finish();
    let epb_len = 32 + datagram.len().next_multiple_of(4);

    let mut bad_trailer = good.clone();
    let trailer_at = bad_trailer.len() - 4;
    bad_trailer[trailer_at..].copy_from_slice(&((epb_len + 4) as u32).to_le_bytes());
    let error = expect_error(bad_trailer);
    let kind = CaptureErrorKind::BlockLengthMismatch {
        header: epb_len as u32,
        trailer: epb_len as u32 + 4,
    };
    assert_eq!((error.offset(), error.kind()), (48, &kind));
    assert!(
        error
            .to_string()
            .ends_with("block length inconsistent (header says 76, trailer says 80)")
    );

    let mut odd = good.clone();
    odd[48 + 4..48 + 8].copy_from_slice(&((epb_len - 2) as u32).to_le_bytes());
    let error = expect_error(odd);
    let kind = CaptureErrorKind::BadBlockLength {
        block_type: 6,
        length: epb_len as u32 - 2,
    };
    assert_eq!((error.offset(), error.kind()), (48, &kind));

    let mut caplen_past_end = good;
    caplen_past_end[48 + 20..48 + 24].copy_from_slice(&500u32.to_le_bytes());
    let error = expect_error(caplen_past_end);
    assert_eq!(
        (error.offset(), error.kind()),
        (48, &CaptureErrorKind::MalformedBlock(6))
    );
}

#[test]
fn packets_on_undeclared_interfaces_and_bad_versions() {
    let mut writer = Writer::new(Format::PcapNg, LinkType::Raw);
    writer.packet_on(1, Instant::from_micros(T0), &ipv4_datagram(b""));
    let error = expect_error(writer.finish());
    assert_eq!(
        (error.offset(), error.kind()),
        (48, &CaptureErrorKind::UnknownInterface(1))
    );

    let mut pcap = Writer::new(Format::Pcap, LinkType::Raw).finish();
    pcap[4..6].copy_from_slice(&3u16.to_le_bytes());
    let error = expect_error(pcap);
    assert_eq!(
        error.kind(),
        &CaptureErrorKind::UnsupportedVersion { major: 3, minor: 4 }
    );

    let mut pcapng = Writer::new(Format::PcapNg, LinkType::Raw).finish();
    pcapng[12..14].copy_from_slice(&2u16.to_le_bytes());
    let error = expect_error(pcapng);
    assert_eq!(
        error.kind(),
        &CaptureErrorKind::UnsupportedVersion { major: 2, minor: 0 }
    );
}

#[test]
fn bad_byte_order_magic_and_bad_resolution() {
    let mut pcapng = Writer::new(Format::PcapNg, LinkType::Raw).finish();
    pcapng[8..12].copy_from_slice(&[1, 2, 3, 4]);
    assert_eq!(
        expect_error(pcapng).kind(),
        &CaptureErrorKind::BadByteOrder(0x0102_0304)
    );

    let interface = Interface {
        link: LinkType::Raw,
        tsresol: Some(20),
    };
    let error = expect_error(Writer::pcapng(&[interface]).finish());
    assert_eq!(
        (error.offset(), error.kind()),
        (28, &CaptureErrorKind::BadTimeResolution(20))
    );
}

#[test]
fn the_same_error_is_returned_again() {
    let frames = three_frames();
    let bytes = legacy_file(&frames);
    let mut capture = reader(bytes[..bytes.len() - 1].to_vec()).expect("opens");
    let mut buf = Vec::new();
    let first = loop {
        match capture.next_packet(&mut buf) {
            Ok(Some(_)) => {}
            Ok(None) => panic!("the file is cut"),
            Err(error) => break error,
        }
    };
    assert!(buf.is_empty(), "no partial record is left in the buffer");
    assert_eq!(capture.next_packet(&mut buf), Err(first));
    assert_eq!(capture.packets_read(), 2);
}

/// Flips every byte of small valid files to a few values: reading must end in packets or an
/// error whose offset lies inside the file, never a panic.
#[test]
fn corrupt_bytes_never_panic() {
    let datagrams = [ipv4_datagram(b"PASV\r\n"), ipv6_datagram(b"EPSV\r\n")];
    let link = Link::Ethernet { vlans: vec![5, 6] };
    let mut files = Vec::new();
    for format in [Format::Pcap, Format::PcapNg] {
        let mut writer = Writer::new(format, link.link_type());
        for datagram in &datagrams {
            writer.packet(Instant::from_micros(T0), &frame(&link, datagram));
        }
        writer.simple_packet(&frame(&link, &datagrams[0]));
        files.push(writer.finish());
    }
    let mut pcapng = Writer::pcapng(&[Interface {
        link: LinkType::Null,
        tsresol: Some(9),
    }]);
    pcapng.packet(Instant::from_micros(T0), &frame(&Link::Null, &datagrams[1]));
    files.push(pcapng.finish());
    for file in files {
        for at in 0..file.len() {
            for value in [0x00, 0x01, 0x7f, 0x80, 0xff, file[at] ^ 0x04] {
                let mut corrupt = file.clone();
                corrupt[at] = value;
                let (packets, end) = read_all(corrupt);
                for (meta, data) in &packets {
                    assert_eq!(meta.captured_len as usize, data.len());
                    let _ = ip_datagram(meta.link, data);
                }
                if let Err(error) = end {
                    assert!(
                        error.offset() < file.len() as u64,
                        "byte {at} = {value}: {error}"
                    );
                }
            }
        }
    }
}

proptest! {
    #[test]
    fn any_timestamp_and_frame_round_trip(
        seconds in 0..=u64::from(u32::MAX),
        micros in 0..1_000_000u64,
        data in proptest::collection::vec(any::<u8>(), 0..600),
        format in prop_oneof![Just(Format::Pcap), Just(Format::PcapNanos), Just(Format::PcapNg)],
    ) {
        let at = seconds * 1_000_000 + micros;
        let mut writer = Writer::new(format, LinkType::Raw);
        writer.packet(Instant::from_micros(at), &data);
        let packets = read_ok(writer.finish());
        prop_assert_eq!(packets.len(), 1);
        prop_assert_eq!(packets[0].0.timestamp.as_micros(), at);
        prop_assert_eq!(&packets[0].1, &data);
    }

    #[test]
    fn ip_datagram_is_total(link in 0..8usize, data in proptest::collection::vec(any::<u8>(), 0..120)) {
        let links = [
            LinkType::Ethernet, LinkType::LinuxSll, LinkType::LinuxSll2, LinkType::Raw,
            LinkType::RawIpv4, LinkType::RawIpv6, LinkType::Null, LinkType::Loop,
        ];
        if let Ok(datagram) = ip_datagram(links[link], &data) {
            let (outer, inner) = (data.as_ptr_range(), datagram.as_ptr_range());
            prop_assert!(outer.start <= inner.start && inner.end <= outer.end);
            prop_assert!(matches!(datagram[0] >> 4, 4 | 6));
        }
    }
}

#[test]
fn reader_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<CaptureReader>();
}

/// `shared/pcaps` beside the repository (as CI lays it out), else `/work/shared/pcaps`.
fn shared_pcaps() -> Option<PathBuf> {
    let beside = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/pcaps");
    [beside, PathBuf::from("/work/shared/pcaps")]
        .into_iter()
        .find(|dir| dir.is_dir())
}

/// `TRUTH.tsv`: file name to (link type name, packet count), from tshark.
fn truth(dir: &Path) -> HashMap<String, (String, u64)> {
    let text = fs::read_to_string(dir.join("TRUTH.tsv")).unwrap_or_default();
    let rows = text
        .lines()
        .skip(1)
        .map(|line| line.split('\t').collect::<Vec<_>>());
    let rows = rows.filter(|fields| fields.len() >= 3);
    rows.filter_map(|f| Some((f[0].to_owned(), (f[1].to_owned(), f[2].parse().ok()?))))
        .collect()
}

/// What one shared capture held.
struct Summary {
    packets: u64,
    ip: u64,
    links: Vec<LinkType>,
}

/// Reads a capture to its end, panicking on any error, checking `ip_datagram` on every packet.
fn summarize(path: &Path) -> Summary {
    let mut capture = CaptureReader::open(path).unwrap_or_else(|e| panic!("{e}"));
    let (mut buf, mut ip, mut links) = (Vec::new(), 0, Vec::new());
    while let Some(meta) = capture
        .next_packet(&mut buf)
        .unwrap_or_else(|e| panic!("{e}"))
    {
        assert_eq!(meta.captured_len as usize, buf.len());
        if let Ok(datagram) = ip_datagram(meta.link, &buf) {
            assert!(matches!(datagram[0] >> 4, 4 | 6), "{}", path.display());
            ip += 1;
        }
        links.push(meta.link);
    }
    Summary {
        packets: capture.packets_read(),
        ip,
        links,
    }
}

fn pcaps_in(dir: &Path) -> Vec<PathBuf> {
    let entries = fs::read_dir(dir).expect("list shared/pcaps");
    let mut paths: Vec<PathBuf> = entries.map(|entry| entry.expect("entry").path()).collect();
    paths.retain(|path| path.extension().is_some_and(|ext| ext == "pcap"));
    paths.sort();
    paths
}

#[test]
fn shared_captures_read_to_the_end() {
    let Some(dir) = shared_pcaps() else {
        println!("skipping: no shared/pcaps directory");
        return;
    };
    let (truth, paths) = (truth(&dir), pcaps_in(&dir));
    assert!(!paths.is_empty(), "{} has no .pcap files", dir.display());
    for path in &paths {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let summary = summarize(path);
        assert!(summary.ip > 0, "{name}: no IP datagram at all");
        let Some((link_name, packets)) = truth.get(name) else {
            continue;
        };
        assert_eq!(
            summary.packets, *packets,
            "{name}: packet count per TRUTH.tsv"
        );
        let expected = if link_name == "NULL/Loopback" {
            LinkType::Null
        } else {
            LinkType::Ethernet
        };
        assert!(
            summary.links.iter().all(|&link| link == expected),
            "{name}: {link_name}"
        );
        if expected == LinkType::Null {
            assert_eq!(
                summary.ip, summary.packets,
                "{name}: every loopback packet is IP"
            );
        }
    }
    println!("read {} shared captures", paths.len());
}
