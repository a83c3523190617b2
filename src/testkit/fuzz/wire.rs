//! The `wire_decode` target: [`wire::parse`] and every accessor of what it returns, and
//! [`wire::rewrite_segment`] with an arbitrary edit.
//!
//! Input: two bytes (little-endian) giving the datagram's length, the datagram, then the edit
//! (decoded with `arbitrary`; empty means "change nothing"). Invariants: the accessors agree
//! with each other and with the buffer; a rewrite either fails and leaves its output empty, or
//! produces a datagram that parses with the new fields, keeps a right TCP checksum and a right
//! IPv4 header checksum right, and changes nothing when asked to change nothing.

use arbitrary::Arbitrary;
use arbitrary::Unstructured;

use crate::wire;
use crate::wire::Datagram;
use crate::wire::Segment;
use crate::wire::SegmentEdit;
use crate::wire::SeqNumber;
use crate::wire::TcpPacket;
use crate::wire::checksum;

/// What to change; `None` fields are kept.
#[derive(Debug, Arbitrary)]
struct Edit {
    seq: Option<u32>,
    ack: Option<u32>,
    sack_shift: Option<u32>,
    payload: Option<Vec<u8>>,
}

/// The harness (see the module doc).
pub fn wire_decode(data: &[u8]) {
    let (datagram, rest) = split(data);
    let Ok(Datagram::Tcp(segment)) = wire::parse(datagram) else {
        return;
    };
    check_accessors(datagram, &segment);
    let edit = Edit::arbitrary(&mut Unstructured::new(rest)).unwrap_or(Edit {
        seq: None,
        ack: None,
        sack_shift: None,
        payload: None,
    });
    check_rewrite(datagram, &segment, &edit);
}

/// The datagram and the bytes after it.
fn split(data: &[u8]) -> (&[u8], &[u8]) {
    let [a, b, rest @ ..] = data else {
        return (&[], &[]);
    };
    let len = usize::from(u16::from_le_bytes([*a, *b])).min(rest.len());
    rest.split_at(len)
}

fn check_accessors(datagram: &[u8], segment: &Segment<'_>) {
    let payload = segment.payload();
    let start = segment.payload_offset();
    assert_eq!(&datagram[start..start + payload.len()], payload);
    assert!(
        segment.header_offset() + 20 <= start,
        "TCP header too short"
    );
    assert!(payload.len() as u64 <= u64::from(segment.wire_len()));
    assert_eq!(
        segment.is_truncated(),
        (payload.len() as u64) < u64::from(segment.wire_len())
    );
    assert_eq!(segment.src().is_ipv4(), segment.dst().is_ipv4());
    if segment.is_truncated() {
        assert_eq!(segment.checksum_ok(), None);
    }
    let tcp = TcpPacket::new_checked(&datagram[segment.header_offset()..])
        .expect("parse checked the TCP header");
    assert_eq!(tcp.seq(), segment.seq());
    assert_eq!(tcp.ack(), segment.ack());
    assert_eq!(segment.header_offset() + tcp.header_len(), start);
    assert!(tcp.payload().starts_with(payload));
    let _ = (segment.control(), tcp.checksum(), tcp.sack_edges().count());
}

fn check_rewrite(datagram: &[u8], before: &Segment<'_>, edit: &Edit) {
    let shift = edit.sack_shift.unwrap_or(0);
    let map = move |edge: SeqNumber| SeqNumber(edge.0.wrapping_add(shift));
    let wire_edit = SegmentEdit {
        seq: edit.seq.map(SeqNumber),
        ack: edit.ack.map(SeqNumber),
        sack: edit
            .sack_shift
            .map(|_| &map as &dyn Fn(SeqNumber) -> SeqNumber),
        payload: edit.payload.as_deref(),
    };
    let mut out = vec![0xa5; 3];
    if wire::rewrite_segment(datagram, &wire_edit, &mut out).is_err() {
        assert!(out.is_empty(), "a refused rewrite leaves its output empty");
        return;
    }
    let Ok(Datagram::Tcp(after)) = wire::parse(&out) else {
        panic!("a rewritten datagram does not parse: {out:02x?}");
    };
    assert_eq!((after.src(), after.dst()), (before.src(), before.dst()));
    assert_eq!(after.control(), before.control());
    assert_eq!(after.seq(), wire_edit.seq.unwrap_or(before.seq()));
    let ack = before.ack().map(|old| wire_edit.ack.unwrap_or(old));
    assert_eq!(after.ack(), ack);
    assert_eq!(
        after.payload(),
        wire_edit.payload.unwrap_or(before.payload())
    );
    assert!(!after.is_truncated());
    let edges = |d: &[u8], s: &Segment<'_>| -> Vec<SeqNumber> {
        TcpPacket::new_checked(&d[s.header_offset()..s.payload_offset()])
            .map(|t| t.sack_edges().collect())
            .unwrap_or_default()
    };
    let old_edges: Vec<SeqNumber> = edges(datagram, before).into_iter().map(map).collect();
    assert_eq!(edges(&out, &after), old_edges, "SACK edges");
    if before.checksum_ok() == Some(true) {
        assert_eq!(
            after.checksum_ok(),
            Some(true),
            "a right checksum went wrong"
        );
    }
    if ipv4_header_ok(datagram) == Some(true) {
        assert_eq!(ipv4_header_ok(&out), Some(true), "IPv4 header checksum");
    }
    let unchanged = edit.seq.is_none() && edit.ack.is_none() && edit.payload.is_none();
    if unchanged && edit.sack_shift.is_none_or(|s| s == 0) {
        assert_eq!(
            &out[..],
            &datagram[..out.len()],
            "an empty edit changed bytes"
        );
    }
}

/// Whether an IPv4 datagram's header checksum is right (`None` for anything else).
fn ipv4_header_ok(datagram: &[u8]) -> Option<bool> {
    let first = *datagram.first()?;
    if first >> 4 != 4 {
        return None;
    }
    let header = datagram.get(..usize::from(first & 0x0f) * 4)?;
    Some(checksum::sum(header) == 0xffff)
}
