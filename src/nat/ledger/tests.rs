use proptest::prelude::*;

use super::*;

/// The stream with every edit applied: what the far side must reassemble.
fn rewritten(stream: &[u8], edits: &[(u64, u64, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut x = 0usize;
    for (at, old_len, new) in edits {
        out.extend_from_slice(&stream[x..*at as usize]);
        out.extend_from_slice(new);
        x = (*at + *old_len) as usize;
    }
    out.extend_from_slice(&stream[x..]);
    out
}

/// Deliver `[from, from+len)` through the ledger into a receiver buffer.
fn deliver(ledger: &Ledger, stream: &[u8], from: u64, to: u64, far: &mut [Option<u8>]) {
    let mut out = Vec::new();
    ledger.output(from, &stream[from as usize..to as usize], &mut out);
    let start = ledger.map(from) as usize;
    assert_eq!(start + out.len(), ledger.map(to) as usize, "segment length");
    for (i, byte) in out.iter().enumerate() {
        let slot = &mut far[start + i];
        // A retransmission must carry the same rewritten bytes as the first copy.
        assert!(
            slot.is_none_or(|b| b == *byte),
            "conflicting retransmission"
        );
        *slot = Some(*byte);
    }
}

#[test]
fn longer_port_line_shifts_what_follows() {
    let stream = b"USER a\r\nPORT 192,0,2,2,19,136\r\nRETR f\r\n";
    let at = 8u64;
    let old = b"PORT 192,0,2,2,19,136\r\n";
    let new = b"PORT 203,0,113,100,19,136\r\n";
    let mut ledger = Ledger::default();
    ledger.push(at, old.len() as u64, new).unwrap();
    assert_eq!(ledger.delta(), 4);
    assert!(!ledger.is_identity());
    assert_eq!(ledger.map(0), 0);
    assert_eq!(ledger.map(at), at);
    let end = at + old.len() as u64;
    assert_eq!(ledger.map(end), end + 4);
    assert_eq!(ledger.unmap(end + 4), end);
    // A receiver holding all but the end of the replacement has not got the whole line.
    assert_eq!(ledger.unmap(end + 2), end - 1);
    let mut out = Vec::new();
    ledger.output(0, stream, &mut out);
    assert_eq!(out, b"USER a\r\nPORT 203,0,113,100,19,136\r\nRETR f\r\n");
}

#[test]
fn split_line_comes_out_whole_on_the_far_side() {
    let stream = b"PORT 192,0,2,2,19,136\r\n";
    let mut ledger = Ledger::default();
    ledger
        .push(0, stream.len() as u64, b"PORT 9,9,9,9,19,136\r\n")
        .unwrap();
    let mut first = Vec::new();
    ledger.output(0, &stream[..7], &mut first);
    let mut second = Vec::new();
    ledger.output(7, &stream[7..], &mut second);
    first.extend_from_slice(&second);
    assert_eq!(first, b"PORT 9,9,9,9,19,136\r\n");
    // Shorter: the tail segment past the replacement's end carries nothing.
    let mut tail = Vec::new();
    ledger.output(21, &stream[21..], &mut tail);
    assert!(tail.is_empty());
    assert_eq!(ledger.map(21), ledger.map(23));
}

#[test]
fn edits_are_ordered_bounded_and_settle() {
    let mut ledger = Ledger::default();
    assert_eq!(ledger.push(5, 0, b"x"), Err(EditError::Empty));
    ledger.push(10, 5, b"abcdefg").unwrap();
    assert_eq!(ledger.push(12, 5, b"x"), Err(EditError::OutOfOrder));
    ledger.push(20, 5, b"abc").unwrap();
    assert_eq!(ledger.delta(), 0);
    assert!(!ledger.is_identity());
    assert_eq!(ledger.map(30), 30);
    ledger.settle(15);
    // Acknowledged edits stay until room is needed.
    assert_eq!(ledger.pending(), 2);
    assert_eq!(ledger.map(17), 19);
    assert_eq!(ledger.unmap(19), 17);
    assert_eq!(ledger.push(12, 1, b"x"), Err(EditError::OutOfOrder));
    for i in 0..MAX_EDITS as u64 - 2 {
        ledger.push(100 + i * 10, 2, b"y").unwrap();
    }
    // Full: the acknowledged first edit is folded to make room, and the mapping holds.
    ledger.push(10_000, 2, b"y").unwrap();
    assert_eq!(ledger.pending(), MAX_EDITS);
    assert_eq!(ledger.map(17), 19);
    assert_eq!(ledger.unmap(19), 17);
    // Nothing more is acknowledged: no more room.
    assert_eq!(ledger.push(20_000, 2, b"y"), Err(EditError::Full));
}

#[test]
fn same_length_edits_are_identity() {
    let mut ledger = Ledger::default();
    ledger.push(0, 3, b"abc").unwrap();
    assert!(ledger.is_identity());
    assert!(ledger.touches(2, 4));
    assert!(!ledger.touches(3, 4));
}

/// A conversation: lines, some of them replaced by lines of another length.
/// A stream, and edits to it: (offset, old length, new bytes).
type Edited = (Vec<u8>, Vec<(u64, u64, Vec<u8>)>);

fn conversation() -> impl Strategy<Value = Edited> {
    prop::collection::vec((1usize..40, prop::option::of(1usize..60)), 1..12).prop_map(|lines| {
        let mut stream = Vec::new();
        let mut edits = Vec::new();
        for (i, (len, replaced)) in lines.into_iter().enumerate() {
            let at = stream.len() as u64;
            let mut line = vec![b'a' + (i % 26) as u8; len];
            line.push(b'\n');
            stream.extend_from_slice(&line);
            if let Some(new_len) = replaced {
                let mut new = vec![b'A' + (i % 26) as u8; new_len];
                new.push(b'\n');
                edits.push((at, line.len() as u64, new));
            }
        }
        (stream, edits)
    })
}

proptest! {
    /// Random segmentations, retransmissions and reorderings of a rewritten conversation
    /// reassemble on the far side to exactly the rewritten text, and the far side's
    /// acknowledgement of each segment's end maps back to that end.
    #[test]
    fn any_segmentation_reassembles_the_rewritten_stream(
        (stream, edits) in conversation(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..20),
        resend in prop::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>()), 0..10),
        order in any::<u64>(),
    ) {
        let mut ledger = Ledger::default();
        for (at, old_len, new) in &edits {
            ledger.push(*at, *old_len, new).unwrap();
        }
        let total = stream.len() as u64;
        let mut bounds: Vec<u64> = cuts.iter().map(|c| c.index(stream.len()) as u64).collect();
        bounds.push(0);
        bounds.push(total);
        bounds.sort_unstable();
        bounds.dedup();
        let mut segments: Vec<(u64, u64)> = bounds.windows(2).map(|w| (w[0], w[1])).collect();
        for (a, b) in &resend {
            let (a, b) = (a.index(stream.len()) as u64, b.index(stream.len() + 1) as u64);
            if a < b {
                segments.push((a, b));
            }
        }
        // A deterministic shuffle.
        let n = segments.len();
        for i in 0..n {
            let j = (order.wrapping_mul(6364136223846793005).wrapping_add(i as u64) % n as u64) as usize;
            segments.swap(i, j);
        }
        let expected = rewritten(&stream, &edits);
        prop_assert_eq!(ledger.map(total) as usize, expected.len());
        let mut far = vec![None; expected.len()];
        for (from, to) in &segments {
            deliver(&ledger, &stream, *from, *to, &mut far);
        }
        let got: Vec<u8> = far.into_iter().map(|b| b.expect("a hole on the far side")).collect();
        prop_assert_eq!(&got, &expected);
        for (_, to) in &segments {
            let inside = edits.iter().any(|(at, old, _)| *at < *to && *to < at + old);
            if !inside {
                prop_assert_eq!(ledger.unmap(ledger.map(*to)), *to);
            }
        }
        // Acknowledgements never run backwards and never pass what was sent.
        let mut last = 0;
        for y in 0..=expected.len() as u64 {
            let x = ledger.unmap(y);
            prop_assert!(x >= last && x <= total);
            last = x;
        }
    }
}
