//! Tests of [`rewrite_segment`]: testkit segments (IPv4 with options, IPv6 with extension
//! headers, TCP options with SACK and timestamps) rewritten and checked against checksums
//! recomputed from scratch; wrong checksums stay as wrong; random and damaged input never panics.

use std::net::IpAddr;
use std::net::SocketAddr;
use std::ops::Range;

use etherparse::PacketBuilder;
use proptest::prelude::*;

use super::*;
use crate::testkit::conversation::Flags;
use crate::testkit::conversation::syn;
use crate::testkit::conversation::tcp;
use crate::wire::Segment;
use crate::wire::tcp::sack_edge_offsets;

const CLIENT4: &str = "198.51.100.2:40000";
const SERVER4: &str = "203.0.113.2:21";
const CLIENT6: &str = "[2001:db8:100::2]:40000";
const SERVER6: &str = "[2001:db8:113::2]:21";

/// An FTP control segment from the testkit (right checksums, ACK and PSH set).
fn segment(v6: bool, payload: &[u8]) -> Vec<u8> {
    let (client, server) = if v6 {
        (CLIENT6, SERVER6)
    } else {
        (CLIENT4, SERVER4)
    };
    let psh = Flags {
        psh: true,
        ..Flags::default()
    };
    let mut bytes = tcp(addr(client), addr(server), 1000, Some(5000), psh, payload);
    if !v6 {
        // A distinctive IP id, TTL and DSCP, which the rewrite must keep.
        bytes[1] = 0xb8;
        bytes[4..6].copy_from_slice(&[0xbe, 0xef]);
        bytes[8] = 37;
        fix_ipv4_header_checksum(&mut bytes);
    }
    bytes
}

/// The same segment with 8 bytes of IPv4 options (router alert, then NOPs and an EOL).
fn with_ipv4_options(plain: &[u8]) -> Vec<u8> {
    let mut bytes = plain[..20].to_vec();
    bytes.extend_from_slice(&[0x94, 0x04, 0x00, 0x00, 0x01, 0x01, 0x01, 0x00]);
    bytes.extend_from_slice(&plain[20..]);
    bytes[0] = 0x47;
    let total = u16::try_from(bytes.len()).expect("small test datagram");
    bytes[2..4].copy_from_slice(&total.to_be_bytes());
    fix_ipv4_header_checksum(&mut bytes);
    bytes
}

/// The same segment with hop-by-hop, routing and destination options headers (the TCP
/// pseudo-header does not cover them, so the checksum stays right).
fn with_ipv6_extensions(plain: &[u8]) -> Vec<u8> {
    let mut bytes = plain[..40].to_vec();
    bytes[6] = 0; // next header: hop-by-hop options
    bytes.extend_from_slice(&[43, 0, 1, 4, 0, 0, 0, 0]); // PadN; next: routing
    bytes.extend_from_slice(&[60, 0, 253, 0, 0, 0, 0, 0]); // experimental type, 0 left; next: dest opts
    bytes.extend_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0]); // PadN; next: TCP
    bytes.extend_from_slice(&plain[40..]);
    let payload_len = u16::try_from(bytes.len() - 40).expect("small test datagram");
    bytes[4..6].copy_from_slice(&payload_len.to_be_bytes());
    bytes
}

/// A segment carrying the raw TCP `options` (etherparse computes the checksum).
fn segment_with_options(v6: bool, options: &[u8], payload: &[u8]) -> Vec<u8> {
    let ip = if v6 {
        PacketBuilder::ipv6(v6_octets(CLIENT6), v6_octets(SERVER6), 64)
    } else {
        PacketBuilder::ipv4([198, 51, 100, 2], [203, 0, 113, 2], 64)
    };
    let builder = ip
        .tcp(40000, 21, 1000, 64240)
        .ack(5000)
        .options_raw(options)
        .expect("whole option words");
    let mut out = Vec::new();
    builder.write(&mut out, payload).expect("in-memory write");
    out
}

/// NOP, NOP, timestamps (TSval 0x01020304, TSecr 0x05060708), NOP, NOP, SACK with two
/// blocks: [7000, 7100) and [7300, 7400). Edges at even offsets.
const SACK_WITH_TIMESTAMPS: [u8; 32] = [
    1, 1, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8, // timestamps
    1, 1, 5, 18, 0, 0, 0x1b, 0x58, 0, 0, 0x1b, 0xbc, 0, 0, 0x1c, 0x84, 0, 0, 0x1c, 0xe8,
];

/// NOP, SACK with one block [7000, 7100) whose edges sit at odd offsets, NOP, NOP,
/// timestamps, EOL.
const SACK_AT_ODD_OFFSET: [u8; 24] = [
    1, 5, 10, 0, 0, 0x1b, 0x58, 0, 0, 0x1b, 0xbc, // SACK
    1, 1, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8, 0,
];

fn addr(literal: &str) -> SocketAddr {
    literal.parse().expect("a socket address literal")
}

fn v6_octets(literal: &str) -> [u8; 16] {
    match addr(literal).ip() {
        IpAddr::V6(ip) => ip.octets(),
        IpAddr::V4(_) => unreachable!("an IPv6 literal"),
    }
}

fn parsed(datagram: &[u8]) -> Segment<'_> {
    match parse(datagram) {
        Ok(Datagram::Tcp(segment)) => segment,
        other => panic!("expected TCP, got {other:?}"),
    }
}

fn rewrite(datagram: &[u8], edit: &SegmentEdit<'_>) -> Result<Vec<u8>, Error> {
    let mut out = vec![0xaa; 3];
    rewrite_segment(datagram, edit, &mut out).map(|()| out)
}

fn fix_ipv4_header_checksum(bytes: &mut [u8]) {
    let sum = ipv4_header_checksum_from_scratch(bytes);
    bytes[10..12].copy_from_slice(&sum.to_be_bytes());
}

fn ipv4_header_checksum_from_scratch(bytes: &[u8]) -> u16 {
    let mut header = bytes[..usize::from(bytes[0] & 0x0f) * 4].to_vec();
    header[10..12].fill(0);
    !checksum::sum(&header)
}

/// The TCP checksum recomputed from scratch (pseudo-header, header, payload).
fn tcp_checksum_from_scratch(datagram: &[u8]) -> u16 {
    let segment = parsed(datagram);
    let mut tcp = datagram[segment.header_offset()..].to_vec();
    tcp[16..18].fill(0);
    let mut pseudo = Vec::new();
    for ip in [segment.src().ip(), segment.dst().ip()] {
        match ip {
            IpAddr::V4(ip) => pseudo.extend_from_slice(&ip.octets()),
            IpAddr::V6(ip) => pseudo.extend_from_slice(&ip.octets()),
        }
    }
    let len = u32::try_from(tcp.len()).expect("small test datagram");
    if segment.src().is_ipv4() {
        pseudo.extend_from_slice(&[0, 6]);
        pseudo.extend_from_slice(&len.to_be_bytes()[2..]);
    } else {
        pseudo.extend_from_slice(&len.to_be_bytes());
        pseudo.extend_from_slice(&[0, 0, 0, 6]);
    }
    !checksum::sum(&[pseudo, tcp].concat())
}

/// How far the stored checksum is from the right one, in one's-complement arithmetic (both
/// zeros count as one).
fn checksum_error(stored: u16, right: u16) -> u16 {
    match checksum::sum(&[stored.to_be_bytes(), (!right).to_be_bytes()].concat()) {
        0xffff => 0,
        difference => difference,
    }
}

fn stored_tcp_checksum(datagram: &[u8]) -> u16 {
    let at = parsed(datagram).header_offset() + 16;
    u16::from_be_bytes([datagram[at], datagram[at + 1]])
}

/// Both checksums verify from scratch (IPv4 header checksum, TCP checksum with etherparse's
/// full recomputation and with ours).
fn assert_checksums_right(datagram: &[u8]) {
    if datagram[0] >> 4 == 4 {
        assert_eq!(
            datagram[10..12],
            ipv4_header_checksum_from_scratch(datagram).to_be_bytes(),
            "IPv4 header checksum"
        );
    }
    assert_eq!(parsed(datagram).checksum_ok(), Some(true), "TCP checksum");
    assert_eq!(
        stored_tcp_checksum(datagram),
        tcp_checksum_from_scratch(datagram)
    );
}

/// The headers of `before` and `after` agree byte for byte outside the fields `edited` may
/// change: the IP length, the IPv4 header checksum, the TCP checksum, and the seq, ack and
/// SACK edges when the edit sets them.
fn assert_headers_kept(before: &[u8], after: &[u8], edited: &SegmentEdit<'_>) {
    let tcp = parsed(before).header_offset();
    let header_end = parsed(before).payload_offset();
    assert_eq!(header_end, parsed(after).payload_offset());
    let mut changed: Vec<Range<usize>> = Vec::new();
    if before[0] >> 4 == 4 {
        changed.extend([2..4, 10..12]);
    } else {
        changed.push(4..6);
    }
    changed.push(tcp + 16..tcp + 18);
    if edited.seq.is_some() {
        changed.push(tcp + 4..tcp + 8);
    }
    if edited.ack.is_some() {
        changed.push(tcp + 8..tcp + 12);
    }
    if edited.sack.is_some() {
        let options = &before[tcp + 20..header_end];
        changed.extend(sack_edge_offsets(options).map(|at| tcp + at..tcp + at + 4));
    }
    for at in 0..header_end {
        if !changed.iter().any(|range| range.contains(&at)) {
            assert_eq!(before[at], after[at], "header byte {at}");
        }
    }
}

/// Rewrites `original` with a new seq, ack and `payload`, and checks the result.
fn check_rewrite(original: &[u8], payload: &[u8]) {
    let edit = SegmentEdit {
        seq: Some(SeqNumber(0xfff0_0000)),
        ack: Some(SeqNumber(77)),
        payload: Some(payload),
        ..SegmentEdit::default()
    };
    let out = rewrite(original, &edit).expect("a rewritable segment");
    let segment = parsed(&out);
    assert_eq!(segment.seq(), SeqNumber(0xfff0_0000));
    assert_eq!(segment.ack(), Some(SeqNumber(77)));
    assert_eq!(segment.payload(), payload);
    assert_eq!(segment.wire_len() as usize, payload.len());
    assert!(!segment.is_truncated());
    assert_eq!(
        (segment.src(), segment.dst()),
        (parsed(original).src(), parsed(original).dst())
    );
    assert_eq!(out.len(), segment.payload_offset() + payload.len());
    assert_checksums_right(&out);
    assert_headers_kept(original, &out, &edit);
}

/// Old and new payloads: longer, shorter, odd and even lengths, empty.
const PAYLOADS: [(&[u8], &[u8]); 9] = [
    (b"PORT 10,0,0,2,4,1\r\n", b"PORT 198,51,100,200,4,1\r\n"),
    (b"PORT 198,51,100,200,4,1\r\n", b"PORT 10,0,0,2,4,1\r\n"),
    (b"odd\r\n", b"even\r\n"),
    (b"even\r\n", b"odd\r\n"),
    (b"odd\r\n", b"ODD\r\n"),
    (b"PASV\r\n", b""),
    (b"", b"x"),
    (b"", b""),
    (b"x", b"yz"),
];

#[test]
fn ipv4_seq_ack_and_payload_are_rewritten() {
    for (old, new) in PAYLOADS {
        check_rewrite(&segment(false, old), new);
    }
}

#[test]
fn ipv6_seq_ack_and_payload_are_rewritten() {
    for (old, new) in PAYLOADS {
        check_rewrite(&segment(true, old), new);
    }
}

#[test]
fn ipv4_options_are_kept() {
    for (old, new) in PAYLOADS {
        let original = with_ipv4_options(&segment(false, old));
        assert_eq!(parsed(&original).header_offset(), 28);
        assert_checksums_right(&original);
        check_rewrite(&original, new);
    }
}

#[test]
fn ipv6_extension_headers_are_kept() {
    for (old, new) in PAYLOADS {
        let original = with_ipv6_extensions(&segment(true, old));
        assert_eq!(parsed(&original).header_offset(), 64);
        assert_checksums_right(&original);
        check_rewrite(&original, new);
    }
}

#[test]
fn tcp_options_are_kept() {
    for v6 in [false, true] {
        let original = segment_with_options(v6, &SACK_WITH_TIMESTAMPS, b"227 x\r\n");
        check_rewrite(
            &original,
            b"227 Entering Passive Mode (203,0,113,2,4,1)\r\n",
        );
    }
}

#[test]
fn sack_edges_are_mapped() {
    let shift = |edge: SeqNumber| edge.add(0x8000_0010);
    for v6 in [false, true] {
        for options in [&SACK_WITH_TIMESTAMPS[..], &SACK_AT_ODD_OFFSET[..]] {
            let original = segment_with_options(v6, options, b"data");
            let edit = SegmentEdit {
                sack: Some(&shift),
                ..SegmentEdit::default()
            };
            let out = rewrite(&original, &edit).expect("a rewritable segment");
            let at = parsed(&out).header_offset();
            let before = TcpPacket::new_checked(&original[at..]).expect("a TCP header");
            let after = TcpPacket::new_checked(&out[at..]).expect("a TCP header");
            let edges: Vec<_> = before.sack_edges().map(shift).collect();
            assert!(edges.len() >= 2);
            assert_eq!(after.sack_edges().collect::<Vec<_>>(), edges);
            assert_checksums_right(&out);
            // Only the SACK edges and the checksum changed; the timestamps are kept.
            let differing: Vec<_> = (0..out.len()).filter(|&i| out[i] != original[i]).collect();
            assert!(
                differing
                    .iter()
                    .all(|&i| i == at + 16 || i == at + 17 || i >= at + 20)
            );
            let timestamps = options.windows(2).position(|w| w == [8, 10]).expect("TS");
            let ts = at + 20 + timestamps;
            assert_eq!(out[ts..ts + 10], original[ts..ts + 10]);
        }
    }
}

#[test]
fn malformed_sack_options_are_left_alone() {
    let shift = |edge: SeqNumber| edge.add(1);
    let edit = SegmentEdit {
        sack: Some(&shift),
        ..SegmentEdit::default()
    };
    let bad_sack_len = [5, 12, 0, 0, 0x1b, 0x58, 0, 0, 0x1b, 0xbc, 0, 0];
    // An option with length 1 stops the walk, as in Linux: the SACK after it is not read.
    let silly_then_sack = [1, 1, 99, 1, 5, 10, 0, 0, 0x1b, 0x58, 0, 0, 0x1b, 0xbc, 0, 0];
    let after_eol = [0, 1, 5, 10, 0, 0, 0x1b, 0x58, 0, 0, 0x1b, 0xbc];
    for options in [&bad_sack_len[..], &silly_then_sack, &after_eol] {
        let original = segment_with_options(false, options, b"");
        let tcp = TcpPacket::new_checked(&original[20..]).expect("a TCP header");
        assert_eq!(tcp.sack_edges().count(), 0);
        assert_eq!(rewrite(&original, &edit), Ok(original.clone()));
    }
}

#[test]
fn a_wrong_tcp_checksum_stays_as_wrong() {
    for v6 in [false, true] {
        for (old, new) in PAYLOADS {
            let mut original = segment(v6, old);
            let at = parsed(&original).header_offset() + 16;
            original[at] ^= 0x5a;
            let error = checksum_error(
                stored_tcp_checksum(&original),
                tcp_checksum_from_scratch(&original),
            );
            assert_ne!(error, 0);
            let edit = SegmentEdit {
                seq: Some(SeqNumber(9)),
                ack: Some(SeqNumber(10)),
                payload: Some(new),
                ..SegmentEdit::default()
            };
            let out = rewrite(&original, &edit).expect("a rewritable segment");
            assert_eq!(parsed(&out).checksum_ok(), Some(false));
            let after = checksum_error(stored_tcp_checksum(&out), tcp_checksum_from_scratch(&out));
            assert_eq!(after, error, "{old:?} -> {new:?}");
        }
    }
}

#[test]
fn a_wrong_ipv4_header_checksum_stays_as_wrong() {
    let mut original = segment(false, b"PORT 10,0,0,2,4,1\r\n");
    original[11] = original[11].wrapping_add(1);
    let error = checksum_error(
        u16::from_be_bytes([original[10], original[11]]),
        ipv4_header_checksum_from_scratch(&original),
    );
    let edit = SegmentEdit {
        payload: Some(b"PORT 198,51,100,200,4,1\r\n"),
        ..SegmentEdit::default()
    };
    let out = rewrite(&original, &edit).expect("a rewritable segment");
    let after = checksum_error(
        u16::from_be_bytes([out[10], out[11]]),
        ipv4_header_checksum_from_scratch(&out),
    );
    assert_eq!((after, error), (error, error));
    assert_ne!(error, 0);
}

#[test]
fn an_edit_that_changes_nothing_keeps_every_byte() {
    let same = |edge: SeqNumber| edge;
    for v6 in [false, true] {
        let original = segment_with_options(v6, &SACK_AT_ODD_OFFSET, b"PASV\r\n");
        let this = parsed(&original);
        let edit = SegmentEdit {
            seq: Some(this.seq()),
            ack: this.ack(),
            sack: Some(&same),
            payload: Some(b"PASV\r\n"),
        };
        assert_eq!(rewrite(&original, &edit), Ok(original.clone()));
        assert_eq!(
            rewrite(&original, &SegmentEdit::default()),
            Ok(original.clone())
        );
    }
}

#[test]
fn link_padding_is_not_copied() {
    let original = segment(false, b"PASV\r\n");
    let padded = [&original[..], &[0; 6]].concat();
    assert_eq!(rewrite(&padded, &SegmentEdit::default()), Ok(original));
}

#[test]
fn ack_is_left_alone_without_the_ack_flag() {
    let original = syn(addr(CLIENT4), addr(SERVER4));
    let edit = SegmentEdit {
        seq: Some(SeqNumber(500)),
        ack: Some(SeqNumber(600)),
        ..SegmentEdit::default()
    };
    let out = rewrite(&original, &edit).expect("a rewritable segment");
    assert_eq!(parsed(&out).seq(), SeqNumber(500));
    assert_eq!(parsed(&out).ack(), None);
    assert_eq!(out[28..32], original[28..32]);
    assert_checksums_right(&out);
}

#[test]
fn refusals_name_the_reason_and_leave_out_empty() {
    let original = segment(false, b"PASV\r\n");
    let edit = SegmentEdit::default();
    let mut fragment = original.clone();
    fragment[6] |= 0x20; // more fragments
    let mut zero_length = original.clone();
    zero_length[2..4].fill(0);
    let udp = {
        let mut out = Vec::new();
        let builder = PacketBuilder::ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64).udp(1, 2);
        builder.write(&mut out, b"x").expect("in-memory write");
        out
    };
    let cases: [(&[u8], Error); 6] = [
        (&fragment, Error::Fragment),
        (&udp, Error::MalformedIp("protocol")),
        (
            &original[..original.len() - 1],
            Error::MalformedIp("length"),
        ),
        (&zero_length, Error::MalformedIp("length")),
        (&[], Error::MalformedIp("header")),
        (&original[..30], Error::MalformedTcp("header")),
    ];
    for (datagram, error) in cases {
        let mut out = vec![1, 2, 3];
        assert_eq!(rewrite_segment(datagram, &edit, &mut out), Err(error));
        assert!(out.is_empty());
    }
}

#[test]
fn lengths_past_65535_are_refused() {
    let huge = vec![b'x'; 65_536];
    let v4 = segment(false, b"PASV\r\n");
    let v6 = segment(true, b"PASV\r\n");
    for (datagram, fits, field) in [
        (&v4, 65_535 - 40, "total length"),
        (&v6, 65_535 - 20, "payload length"),
    ] {
        let too_long = SegmentEdit {
            payload: Some(&huge[..=fits]),
            ..SegmentEdit::default()
        };
        assert_eq!(rewrite(datagram, &too_long), Err(Error::MalformedIp(field)));
        let longest = SegmentEdit {
            payload: Some(&huge[..fits]),
            ..SegmentEdit::default()
        };
        let out = rewrite(datagram, &longest).expect("the longest datagram");
        assert_checksums_right(&out);
    }
}

fn any_segment() -> impl Strategy<Value = Vec<u8>> {
    let payload = prop::collection::vec(any::<u8>(), 0..80);
    (any::<bool>(), 0..4u8, payload).prop_map(|(v6, shape, payload)| match shape {
        0 => segment(v6, &payload),
        1 if v6 => with_ipv6_extensions(&segment(v6, &payload)),
        1 => with_ipv4_options(&segment(v6, &payload)),
        2 => segment_with_options(v6, &SACK_WITH_TIMESTAMPS, &payload),
        _ => segment_with_options(v6, &SACK_AT_ODD_OFFSET, &payload),
    })
}

proptest! {
    #[test]
    fn rewritten_segments_verify(
        original in any_segment(),
        seq in any::<u32>(),
        ack in any::<u32>(),
        shift in any::<u32>(),
        payload in prop::collection::vec(any::<u8>(), 0..120),
        corrupt in any::<u16>(),
    ) {
        let map = move |edge: SeqNumber| edge.add(shift);
        let edit = SegmentEdit {
            seq: Some(SeqNumber(seq)),
            ack: Some(SeqNumber(ack)),
            sack: Some(&map),
            payload: Some(&payload),
        };
        let out = rewrite(&original, &edit).expect("a rewritable segment");
        prop_assert_eq!(parsed(&out).payload(), &payload[..]);
        prop_assert_eq!(parsed(&out).seq(), SeqNumber(seq));
        prop_assert_eq!(parsed(&out).ack(), Some(SeqNumber(ack)));
        assert_checksums_right(&out);
        assert_headers_kept(&original, &out, &edit);

        // The same edit on a segment whose checksum is off by `corrupt` leaves it off by as much.
        let mut wrong = original;
        let at = parsed(&wrong).header_offset() + 16;
        let sum = checksum::sum(&[&wrong[at..at + 2], &corrupt.to_be_bytes()[..]].concat());
        wrong[at..at + 2].copy_from_slice(&sum.to_be_bytes());
        let error = checksum_error(stored_tcp_checksum(&wrong), tcp_checksum_from_scratch(&wrong));
        let out = rewrite(&wrong, &edit).expect("a rewritable segment");
        let after = checksum_error(stored_tcp_checksum(&out), tcp_checksum_from_scratch(&out));
        prop_assert_eq!(after, error);
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..160),
        payload in prop::collection::vec(any::<u8>(), 0..40),
    ) {
        let map = |edge: SeqNumber| edge.add(7);
        let edit = SegmentEdit {
            seq: Some(SeqNumber(1)),
            ack: Some(SeqNumber(2)),
            sack: Some(&map),
            payload: Some(&payload),
        };
        let mut out = Vec::new();
        if rewrite_segment(&bytes, &edit, &mut out).is_err() {
            prop_assert!(out.is_empty());
        }
    }

    #[test]
    fn damaged_segments_never_panic(
        original in any_segment(),
        damage in prop::collection::vec((any::<u16>(), any::<u8>()), 1..6),
        cut in any::<u16>(),
        payload in prop::collection::vec(any::<u8>(), 0..40),
    ) {
        let mut bytes = original;
        for (at, value) in damage {
            let at = usize::from(at) % bytes.len();
            bytes[at] = value;
        }
        bytes.truncate(usize::from(cut) % (bytes.len() + 1));
        let map = |edge: SeqNumber| edge.add(7);
        let edit = SegmentEdit {
            seq: Some(SeqNumber(1)),
            ack: Some(SeqNumber(2)),
            sack: Some(&map),
            payload: Some(&payload),
        };
        let mut out = Vec::new();
        match rewrite_segment(&bytes, &edit, &mut out) {
            Ok(()) => prop_assert_eq!(parsed(&out).payload(), &payload[..]),
            Err(_) => prop_assert!(out.is_empty()),
        }
    }
}
