//! Tests of [`Stream`]: ordering, retransmission, overlaps, gaps, wrap-around and bounds.

use proptest::prelude::*;

use super::*;

/// A sink that records bytes and gaps as text: gaps become `<gap n>`.
#[derive(Default)]
struct Record {
    text: Vec<u8>,
    next: u64,
}

impl Sink for Record {
    fn data(&mut self, offset: u64, bytes: &[u8]) {
        assert_eq!(offset, self.next, "data must be contiguous");
        self.text.extend_from_slice(bytes);
        self.next += bytes.len() as u64;
    }
    fn gap(&mut self, from: u64, to: u64) {
        assert_eq!(from, self.next, "gap must start where data ended");
        self.text
            .extend_from_slice(format!("<gap {}>", to - from).as_bytes());
        self.next = to;
    }
}

const T0: Instant = Instant::from_micros(0);

fn stream(first: u32) -> Stream {
    Stream::new(SeqNumber(first), Limits::default())
}

fn feed(s: &mut Stream, sink: &mut Record, seq: u32, data: &[u8]) -> Receipt {
    s.handle_segment(T0, SeqNumber(seq), data, data.len() as u32, sink)
}

#[test]
fn in_order_bytes_flow_through() {
    let (mut s, mut r) = (stream(100), Record::default());
    assert_eq!(feed(&mut s, &mut r, 100, b"USER a\r\n"), Receipt::default());
    feed(&mut s, &mut r, 108, b"PASV\r\n");
    assert_eq!(r.text, b"USER a\r\nPASV\r\n");
    assert_eq!(s.delivered(), 14);
}

#[test]
fn out_of_order_segment_waits_for_the_hole() {
    let (mut s, mut r) = (stream(0), Record::default());
    let late = feed(&mut s, &mut r, 4, b",2,3\r\n");
    assert!(late.out_of_order);
    assert!(r.text.is_empty());
    feed(&mut s, &mut r, 0, b"PORT");
    assert_eq!(r.text, b"PORT,2,3\r\n");
    assert_eq!(s.buffered(), 10, "only history remains");
}

#[test]
fn retransmission_is_ignored_and_conflict_detected() {
    let (mut s, mut r) = (stream(0), Record::default());
    feed(&mut s, &mut r, 0, b"PORT 1,2,3,4,5,6\r\n");
    let same = feed(&mut s, &mut r, 0, b"PORT 1,2,3,4,5,6\r\n");
    assert!(same.retransmitted && !same.conflict);
    let evil = feed(&mut s, &mut r, 5, b"9,9");
    assert!(evil.retransmitted && evil.conflict);
    assert_eq!(r.text, b"PORT 1,2,3,4,5,6\r\n");
}

#[test]
fn partial_overlap_delivers_only_new_bytes() {
    let (mut s, mut r) = (stream(0), Record::default());
    feed(&mut s, &mut r, 0, b"PAS");
    let receipt = feed(&mut s, &mut r, 1, b"ASV\r\n");
    assert!(receipt.retransmitted && !receipt.conflict);
    assert_eq!(r.text, b"PASV\r\n");
}

#[test]
fn conflicting_overlap_in_out_of_order_data() {
    let (mut s, mut r) = (stream(0), Record::default());
    feed(&mut s, &mut r, 5, b"1,2,3");
    let evil = feed(&mut s, &mut r, 5, b"6,6,6");
    assert!(evil.conflict);
    feed(&mut s, &mut r, 0, b"PORT ");
    assert_eq!(r.text, b"PORT 1,2,3");
}

#[test]
fn in_order_bytes_over_held_ones_keep_the_held_copy() {
    let (mut s, mut r) = (stream(0), Record::default());
    feed(&mut s, &mut r, 3, b"XYZ");
    let receipt = feed(&mut s, &mut r, 0, b"abcDEFgh");
    assert!(receipt.conflict && receipt.retransmitted);
    assert_eq!(r.text, b"abcXYZgh");
    let same = feed(&mut s, &mut r, 10, b"kl");
    assert!(same.out_of_order);
    let agreeing = feed(&mut s, &mut r, 8, b"ijkl");
    assert!(!agreeing.conflict && agreeing.retransmitted);
    assert_eq!(r.text, b"abcXYZghijkl");
}

#[test]
fn sequence_wrap_around() {
    let (mut s, mut r) = (stream(u32::MAX - 3), Record::default());
    feed(&mut s, &mut r, u32::MAX - 3, b"PA");
    feed(&mut s, &mut r, 0, b"V\r\n"); // after the wrap, out of order
    feed(&mut s, &mut r, u32::MAX - 1, b"SS");
    assert_eq!(r.text, b"PASSV\r\n");
    assert_eq!(s.seq_at(s.delivered()), SeqNumber(3));
}

#[test]
fn ack_beyond_a_hole_skips_it() {
    let (mut s, mut r) = (stream(0), Record::default());
    feed(&mut s, &mut r, 0, b"NOOP\r\n");
    feed(&mut s, &mut r, 10, b"PASV\r\n");
    assert!(s.handle_ack(SeqNumber(16), &mut r));
    assert_eq!(r.text, b"NOOP\r\n<gap 4>PASV\r\n");
    assert!(!s.handle_ack(SeqNumber(16), &mut r), "nothing left to skip");
}

#[test]
fn ack_of_fin_is_not_data() {
    let (mut s, mut r) = (stream(0), Record::default());
    feed(&mut s, &mut r, 0, b"QUIT\r\n");
    s.handle_fin(SeqNumber(6));
    assert!(!s.handle_ack(SeqNumber(7), &mut r));
    assert_eq!(r.text, b"QUIT\r\n");
}

#[test]
fn absurd_ack_is_ignored() {
    let (mut s, mut r) = (stream(0), Record::default());
    assert!(!s.handle_ack(SeqNumber(1 << 24), &mut r));
    assert!(!s.handle_ack(SeqNumber(u32::MAX), &mut r));
    assert_eq!(s.delivered(), 0);
}

/// Found by the `reassembly` fuzz target: an absurd ACK used to be clamped to a FIN announced
/// ahead of the data first, and so declared every byte up to the FIN lost.
#[test]
fn absurd_ack_is_ignored_after_a_fin() {
    let (mut s, mut r) = (stream(0), Record::default());
    feed(&mut s, &mut r, 0, b"QUIT\r\n");
    s.handle_fin(SeqNumber(100));
    assert!(!s.handle_ack(SeqNumber(1 << 31), &mut r));
    assert_eq!(s.delivered(), 6);
    assert_eq!(r.text, b"QUIT\r\n");
    assert!(
        s.handle_ack(SeqNumber(101), &mut r),
        "the FIN's own ACK still counts"
    );
    assert_eq!(s.delivered(), 100);
}

#[test]
fn old_hole_times_out() {
    let (mut s, mut r) = (stream(0), Record::default());
    s.handle_segment(T0, SeqNumber(3), b"x\r\n", 3, &mut r);
    let later = T0 + Duration::from_secs(5);
    assert!(!s.handle_timeout(later, &mut r));
    assert!(s.handle_timeout(T0 + Duration::from_secs(10), &mut r));
    assert_eq!(r.text, b"<gap 3>x\r\n");
}

#[test]
fn truncated_segment_becomes_a_gap() {
    let (mut s, mut r) = (stream(0), Record::default());
    let receipt = s.handle_segment(T0, SeqNumber(0), b"227 Ent", 20, &mut r);
    assert!(receipt.gap);
    feed(&mut s, &mut r, 20, b"PASV\r\n");
    assert_eq!(r.text, b"227 Ent<gap 13>PASV\r\n");
}

#[test]
fn bounds_refuse_without_growing() {
    let limits = Limits {
        max_out_of_order: 8,
        max_chunks: 2,
        ..Limits::default()
    };
    let (mut s, mut r) = (Stream::new(SeqNumber(0), limits), Record::default());
    assert!(feed(&mut s, &mut r, 10, b"12345678").out_of_order);
    assert!(feed(&mut s, &mut r, 30, b"9").unbuffered);
    assert!(feed(&mut s, &mut r, (1 << 21) as u32, b"far").unbuffered);
    let roomy = Limits {
        max_out_of_order: 1 << 30,
        max_chunks: 1 << 10,
        ..Limits::default()
    };
    let mut wide = Stream::new(SeqNumber(0), roomy);
    assert!(
        feed(&mut wide, &mut r, (1 << 21) as u32, b"far").unbuffered,
        "outside the window"
    );
    assert_eq!(wide.buffered(), 0);
    assert_eq!(s.buffered(), 8);
    assert_eq!(s.shed(), 8);
    assert_eq!(s.buffered(), 0);
}

#[test]
fn stale_segments_are_ignored() {
    let (mut s, mut r) = (stream(1 << 31), Record::default());
    let receipt = feed(&mut s, &mut r, 0, b"old");
    assert!(receipt.retransmitted);
    assert!(r.text.is_empty());
}

proptest! {
    /// Any segmentation, reordering and duplication of a byte stream delivers the same bytes.
    #[test]
    fn any_arrival_order_delivers_the_stream(
        data in prop::collection::vec(any::<u8>(), 1..300),
        cuts in prop::collection::vec(1usize..40, 1..20),
        order in prop::collection::vec(any::<prop::sample::Index>(), 0..40),
        isn in any::<u32>(),
    ) {
        let mut segments = Vec::new();
        let mut at = 0;
        for cut in cuts.iter().cycle() {
            if at >= data.len() { break; }
            let end = (at + cut).min(data.len());
            segments.push((at, end));
            at = end;
        }
        let mut arrivals = segments.clone();
        for index in &order {
            let pick = segments[index.index(segments.len())];
            let slot = index.index(arrivals.len() + 1);
            arrivals.insert(slot, pick);
        }
        let limits = Limits { max_out_of_order: 1 << 16, max_chunks: 1 << 10, ..Limits::default() };
        let (mut s, mut r) = (Stream::new(SeqNumber(isn), limits), Record::default());
        for (start, end) in arrivals {
            let seq = SeqNumber(isn).add(start as u32);
            let receipt = s.handle_segment(T0, seq, &data[start..end], (end - start) as u32, &mut r);
            prop_assert!(!receipt.conflict && !receipt.unbuffered && !receipt.gap);
        }
        prop_assert_eq!(r.text, data);
    }
}

proptest! {
    /// Differential test against a model of "first copy wins": segments with arbitrary (even
    /// contradictory) contents, in any order. The stream delivers the first copy of every byte
    /// in order, and reports a conflict exactly when a segment disagrees with an earlier copy.
    #[test]
    fn first_copy_wins_against_a_model(
        segments in prop::collection::vec((0usize..200, prop::collection::vec(0u8..2, 0..40)), 1..60),
    ) {
        let limits = Limits { max_out_of_order: 1 << 16, max_chunks: 1 << 10, ..Limits::default() };
        let (mut s, mut r) = (Stream::new(SeqNumber(7), limits), Record::default());
        let mut first: Vec<Option<u8>> = vec![None; 256];
        for (offset, data) in &segments {
            let mut conflict = false;
            for (i, &b) in data.iter().enumerate() {
                match first[offset + i] {
                    Some(held) => conflict |= held != b,
                    None => first[offset + i] = Some(b),
                }
            }
            let seq = SeqNumber(7).add(*offset as u32);
            let receipt = s.handle_segment(T0, seq, data, data.len() as u32, &mut r);
            prop_assert_eq!(receipt.conflict, conflict, "segment at {} {:?}", offset, data);
        }
        let prefix: Vec<u8> = first.iter().map_while(|b| *b).collect();
        prop_assert_eq!(r.text, prefix);
    }
}

/// A sink with spare history buffers, as the engine's line arena has.
#[derive(Default)]
struct Pooled {
    record: Record,
    spares: Spares,
}

impl Sink for Pooled {
    fn data(&mut self, offset: u64, bytes: &[u8]) {
        self.record.data(offset, bytes);
    }
    fn gap(&mut self, from: u64, to: u64) {
        self.record.gap(from, to);
    }
    fn spares(&mut self) -> Option<&mut Spares> {
        Some(&mut self.spares)
    }
}

#[test]
fn history_buffers_are_lent_and_given_back() {
    let mut sink = Pooled::default();
    let mut s = stream(0);
    s.handle_segment(T0, SeqNumber(0), b"PASV\r\n", 6, &mut sink);
    assert_eq!(s.buffered(), 6, "the history holds the delivered bytes");
    assert!(sink.spares.is_empty());
    s.handle_ack(SeqNumber(6), &mut sink);
    assert_eq!(
        s.buffered(),
        0,
        "acknowledged: an idle stream holds nothing"
    );
    assert_eq!(sink.spares.len(), 1, "its buffer went back to the spares");
    s.handle_segment(T0, SeqNumber(6), b"EPSV\r\n", 6, &mut sink);
    assert!(sink.spares.is_empty(), "and was lent again");
    assert_eq!(sink.record.text, b"PASV\r\nEPSV\r\n");
}

#[test]
fn spares_are_bounded() {
    let mut spares = Spares::default();
    for _ in 0..2 * MAX_SPARES {
        spares.give_back(VecDeque::with_capacity(16));
    }
    assert_eq!(spares.len(), MAX_SPARES);
    let mut spares = Spares::default();
    spares.give_back(VecDeque::with_capacity(MAX_SPARE_CAPACITY + 1));
    spares.give_back(VecDeque::new());
    assert!(spares.is_empty(), "too large, or nothing to keep");
    let mut kept = VecDeque::with_capacity(8);
    kept.extend(b"stale");
    spares.give_back(kept);
    assert!(spares.lend().is_empty(), "a lent buffer is empty");
}
