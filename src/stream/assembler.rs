//! [`Assembler`]: out-of-order bytes of one stream direction, held until the gap before them fills.
//!
//! Owns: a bounded set of non-overlapping, non-adjacent chunks keyed by absolute stream offset,
//! with the "first copy wins" rule for overlaps and detection of overlaps whose bytes differ
//! (an evasion pattern: the firewall and the receiver could otherwise see different data).
//! Knows nothing of TCP sequence numbers; [`super::Stream`] maps those to offsets.
//! Modelled on smoltcp's `storage::Assembler`, but it stores the bytes too.

use std::collections::BTreeMap;

/// Out-of-order bytes, bounded in bytes and in number of chunks (holes).
#[derive(Debug, Clone)]
pub struct Assembler {
    chunks: BTreeMap<u64, Vec<u8>>,
    bytes: usize,
    max_bytes: usize,
    max_chunks: usize,
}

/// What [`Assembler::insert`] did with a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inserted {
    /// Some of the segment's bytes were new and are now held.
    pub stored: bool,
    /// Some of the segment's bytes overlapped held bytes with different values; the held
    /// (first) copy was kept.
    pub conflict: bool,
}

/// The segment could not be held without exceeding a bound; nothing was changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

impl Assembler {
    /// An empty assembler that holds at most `max_bytes` bytes in at most `max_chunks` chunks.
    pub fn new(max_bytes: usize, max_chunks: usize) -> Self {
        Self {
            chunks: BTreeMap::new(),
            bytes: 0,
            max_bytes,
            max_chunks: max_chunks.max(1),
        }
    }

    /// Hold `data`, which starts at stream offset `offset`. Bytes already held win over
    /// `data` where they overlap.
    pub fn insert(&mut self, offset: u64, data: &[u8]) -> Result<Inserted, Full> {
        let end = offset + data.len() as u64;
        if data.is_empty() {
            return Ok(Inserted {
                stored: false,
                conflict: false,
            });
        }
        let touching = self.touching(offset, end);
        let merged_start = touching.first().map_or(offset, |&(s, _)| s.min(offset));
        let merged_end = touching.last().map_or(end, |&(_, e)| e.max(end));
        let held: usize = touching.iter().map(|&(s, e)| (e - s) as usize).sum();
        let grown = (merged_end - merged_start) as usize - held;
        let chunks_after = self.chunks.len() + 1 - touching.len();
        if self.bytes + grown > self.max_bytes || chunks_after > self.max_chunks {
            return Err(Full);
        }
        let mut merged = vec![0; (merged_end - merged_start) as usize];
        let at = (offset - merged_start) as usize;
        merged[at..at + data.len()].copy_from_slice(data);
        let mut conflict = false;
        for (start, _) in &touching {
            // NOTE(unwrap): `touching` lists keys present in `chunks`.
            let chunk = self.chunks.remove(start).expect("key listed by touching()");
            let at = (start - merged_start) as usize;
            let slot = &mut merged[at..at + chunk.len()];
            conflict |= overlap_differs(slot, &chunk, *start, offset, end);
            slot.copy_from_slice(&chunk);
        }
        self.chunks.insert(merged_start, merged);
        self.bytes += grown;
        Ok(Inserted {
            stored: grown > 0,
            conflict,
        })
    }

    /// Remove and return the bytes held at `offset` onwards, if a chunk covers `offset`.
    /// Bytes of that chunk before `offset` are dropped.
    pub fn pop_at(&mut self, offset: u64) -> Option<Vec<u8>> {
        // Asked for every in-order segment; nearly always nothing is held.
        if self.chunks.is_empty() {
            return None;
        }
        let (&start, chunk) = self.chunks.range(..=offset).next_back()?;
        if start + chunk.len() as u64 <= offset {
            return None;
        }
        let mut chunk = self.chunks.remove(&start)?;
        self.bytes -= chunk.len();
        chunk.drain(..(offset - start) as usize);
        Some(chunk)
    }

    /// Drop every byte held before `offset`.
    pub fn discard_before(&mut self, offset: u64) {
        while let Some((&start, chunk)) = self.chunks.first_key_value() {
            if start >= offset {
                return;
            }
            if start + chunk.len() as u64 > offset {
                if let Some(rest) = self.pop_at(offset) {
                    self.bytes += rest.len();
                    self.chunks.insert(offset, rest);
                }
                return;
            }
            self.bytes -= chunk.len();
            self.chunks.remove(&start);
        }
    }

    /// Drop everything.
    pub fn clear(&mut self) {
        self.chunks.clear();
        self.bytes = 0;
    }

    /// The offset of the first byte held, if any.
    pub fn first_offset(&self) -> Option<u64> {
        self.chunks.keys().next().copied()
    }

    /// How many bytes are held.
    pub fn len(&self) -> usize {
        self.bytes
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.bytes == 0
    }

    /// The compare-against for a byte held at `offset`, if any (used to check retransmissions).
    #[cfg(test)]
    fn byte_at(&self, offset: u64) -> Option<u8> {
        let (&start, chunk) = self.chunks.range(..=offset).next_back()?;
        chunk.get((offset - start) as usize).copied()
    }

    /// Chunks `(start, end)` that overlap or touch `[start, end)`, in order.
    fn touching(&self, start: u64, end: u64) -> Vec<(u64, u64)> {
        let before = self
            .chunks
            .range(..start)
            .next_back()
            .map(|(&s, c)| (s, s + c.len() as u64))
            .filter(|&(_, e)| e >= start);
        let within = self
            .chunks
            .range(start..=end)
            .map(|(&s, c)| (s, s + c.len() as u64));
        before.into_iter().chain(within).collect()
    }
}

/// Whether `new` (the segment's bytes, already copied into `slot`) differs from the held
/// `chunk` on the part where the segment `[seg_start, seg_end)` really overlaps the chunk.
fn overlap_differs(
    slot: &[u8],
    chunk: &[u8],
    chunk_start: u64,
    seg_start: u64,
    seg_end: u64,
) -> bool {
    let chunk_end = chunk_start + chunk.len() as u64;
    let from = seg_start.max(chunk_start);
    let to = seg_end.min(chunk_end);
    if from >= to {
        return false;
    }
    let range = (from - chunk_start) as usize..(to - chunk_start) as usize;
    slot[range.clone()] != chunk[range]
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn in_order_chunks_merge() {
        let mut a = Assembler::new(100, 4);
        assert_eq!(
            a.insert(10, b"abc").unwrap(),
            Inserted {
                stored: true,
                conflict: false
            }
        );
        assert!(a.insert(13, b"def").unwrap().stored);
        assert_eq!(a.first_offset(), Some(10));
        assert_eq!(a.len(), 6);
        assert_eq!(a.pop_at(10).unwrap(), b"abcdef");
        assert!(a.is_empty());
    }

    #[test]
    fn first_copy_wins_and_conflict_is_reported() {
        let mut a = Assembler::new(100, 4);
        a.insert(0, b"PORT 1,2").unwrap();
        let again = a.insert(0, b"PORT 9,9,9").unwrap();
        assert_eq!(
            again,
            Inserted {
                stored: true,
                conflict: true
            }
        );
        assert_eq!(a.pop_at(0).unwrap(), b"PORT 1,2,9");
    }

    #[test]
    fn identical_retransmission_is_not_a_conflict() {
        let mut a = Assembler::new(100, 4);
        a.insert(5, b"hello").unwrap();
        assert_eq!(
            a.insert(5, b"hello").unwrap(),
            Inserted {
                stored: false,
                conflict: false
            }
        );
        assert_eq!(
            a.insert(7, b"ll").unwrap(),
            Inserted {
                stored: false,
                conflict: false
            }
        );
    }

    #[test]
    fn segment_bridging_two_chunks() {
        let mut a = Assembler::new(100, 4);
        a.insert(0, b"ab").unwrap();
        a.insert(6, b"gh").unwrap();
        assert_eq!(
            a.insert(1, b"XcdefY").unwrap(),
            Inserted {
                stored: true,
                conflict: true
            }
        );
        assert_eq!(a.pop_at(0).unwrap(), b"abcdefgh");
    }

    #[test]
    fn bounds_are_enforced_without_change() {
        let mut a = Assembler::new(8, 2);
        a.insert(0, b"1234").unwrap();
        a.insert(10, b"56").unwrap();
        assert_eq!(a.insert(20, b"7"), Err(Full), "third chunk");
        assert_eq!(a.insert(4, b"56789"), Err(Full), "over the byte bound");
        assert_eq!(a.len(), 6);
        assert!(
            a.insert(4, b"56").unwrap().stored,
            "filling a hole merges chunks"
        );
        assert_eq!(a.len(), 8);
    }

    #[test]
    fn pop_at_inside_a_chunk_and_discard() {
        let mut a = Assembler::new(100, 4);
        a.insert(0, b"abcdef").unwrap();
        a.insert(10, b"xyz").unwrap();
        assert_eq!(a.pop_at(8), None);
        a.discard_before(2);
        assert_eq!(a.first_offset(), Some(2));
        assert_eq!(a.len(), 7);
        a.discard_before(11);
        assert_eq!(a.first_offset(), Some(11));
        assert_eq!(a.pop_at(11).unwrap(), b"yz");
        assert!(a.is_empty());
    }

    /// The trivial model: one optional byte per offset.
    struct Model(Vec<Option<u8>>);

    impl Model {
        fn insert(&mut self, offset: usize, data: &[u8]) -> Inserted {
            let mut outcome = Inserted {
                stored: false,
                conflict: false,
            };
            for (i, &b) in data.iter().enumerate() {
                match self.0[offset + i] {
                    None => {
                        self.0[offset + i] = Some(b);
                        outcome.stored = true;
                    }
                    Some(held) => outcome.conflict |= held != b,
                }
            }
            outcome
        }
    }

    proptest! {
        /// Differential test against the bitmap model (smoltcp `test_random` style).
        #[test]
        fn matches_bitmap_model(ops in prop::collection::vec((0usize..200, prop::collection::vec(0u8..3, 0..40)), 1..60)) {
            let mut a = Assembler::new(usize::MAX, usize::MAX);
            let mut m = Model(vec![None; 256]);
            for (offset, data) in ops {
                let got = a.insert(offset as u64, &data).unwrap();
                prop_assert_eq!(got, m.insert(offset, &data));
                for (i, &b) in m.0.iter().enumerate() {
                    prop_assert_eq!(a.byte_at(i as u64), b);
                }
                prop_assert_eq!(a.len(), m.0.iter().filter(|b| b.is_some()).count());
            }
            let mut chunks = Vec::new();
            while let Some(start) = a.first_offset() {
                let chunk = a.pop_at(start).unwrap();
                chunks.push((start, chunk));
            }
            for pair in chunks.windows(2) {
                prop_assert!(pair[0].0 + (pair[0].1.len() as u64) < pair[1].0, "chunks never touch");
            }
        }
    }
}
