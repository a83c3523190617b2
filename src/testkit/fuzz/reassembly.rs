//! The `reassembly` target: a [`Stream`] and its line [`Framer`] fed an arbitrary sequence of
//! segments, acknowledgements, FINs, timeouts and memory-pressure sheds (decoded with
//! `arbitrary`), with arbitrary bounds.
//!
//! Invariants: buffered bytes stay within the configured bounds; the sink sees one contiguous
//! stream of data and gaps, never beyond what was sent or acknowledged, and every delivered byte
//! is one that some segment carried at that offset; lines are framed in stream order, each
//! ends with a delivered LF, contains no gap, keeps at most the line cap, and (without Telnet
//! bytes, not overlong) is exactly its raw bytes less the terminator.

use std::collections::BTreeMap;
use std::collections::HashSet;

use arbitrary::Arbitrary;
use arbitrary::Unstructured;

use crate::stream::Limits;
use crate::stream::Sink;
use crate::stream::Spares;
use crate::stream::Stream;
use crate::stream::lines::Framer;
use crate::stream::lines::Framing;
use crate::stream::lines::Lines;
use crate::time::Duration;
use crate::time::Instant;
use crate::wire::SeqNumber;

/// Offsets at or past this are treated as before the stream's start (as [`Stream`] does for
/// sequence numbers half the space away).
const HALF: u32 = 1 << 31;
/// Operations of one input at most (decoding an exhausted input yields defaults forever).
const MAX_OPS: usize = 512;

#[derive(Debug, Arbitrary)]
struct Setup {
    isn: u32,
    max_out_of_order: u16,
    max_chunks: u8,
    history: u16,
    hole_timeout_ms: u16,
    max_line: u8,
    synced: bool,
}

/// Where a sequence number lies: near the start (likely to matter) or anywhere.
#[derive(Debug, Arbitrary)]
enum Position {
    Near(u16),
    Anywhere(u32),
}

#[derive(Debug, Arbitrary)]
enum Op {
    Segment {
        at: Position,
        payload: Vec<u8>,
        cut_short: u8,
    },
    Ack(Position),
    Fin(Position),
    Wait(u16),
    Shed,
}

/// What the stream delivered, checked as it arrives.
#[derive(Default)]
struct Record {
    next: u64,
    bytes: BTreeMap<u64, u8>,
}

/// The sink between the stream and the framer: checks, records, forwards.
struct Checked<'a> {
    inner: Framing<'a>,
    record: &'a mut Record,
}

/// The harness (see the module doc).
pub fn reassembly(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(setup) = Setup::arbitrary(&mut u) else {
        return;
    };
    let mut run = Run::new(&setup);
    for _ in 0..MAX_OPS {
        if u.is_empty() {
            break;
        }
        let Ok(op) = Op::arbitrary(&mut u) else {
            break;
        };
        run.apply(op);
        run.check();
    }
}

/// One stream and everything the harness knows about it.
struct Run {
    stream: Stream,
    framer: Framer,
    lines: Lines,
    limits: Limits,
    max_line: usize,
    isn: u32,
    now: Instant,
    record: Record,
    offered: HashSet<(u64, u8)>,
    /// The furthest offset a segment reached (on the wire) or an acknowledgement named.
    frontier: u64,
    last_line_end: u64,
    /// Delivered bytes before this offset were checked against what was offered.
    checked: u64,
}

impl Run {
    fn new(setup: &Setup) -> Self {
        let limits = Limits {
            max_out_of_order: usize::from(setup.max_out_of_order % 4096),
            max_chunks: usize::from(setup.max_chunks % 9),
            history: usize::from(setup.history % 1024),
            hole_timeout: Duration::from_millis(u64::from(setup.hole_timeout_ms)),
        };
        let first = SeqNumber(setup.isn);
        Self {
            stream: Stream::new(first, limits),
            framer: Framer::new(usize::from(setup.max_line).max(1), setup.synced),
            lines: Lines::default(),
            limits,
            max_line: usize::from(setup.max_line).max(1),
            isn: setup.isn,
            now: Instant::from_micros(1_000_000),
            record: Record::default(),
            offered: HashSet::new(),
            frontier: 0,
            last_line_end: 0,
            checked: 0,
        }
    }

    fn seq(&self, at: &Position) -> SeqNumber {
        match at {
            Position::Near(n) => SeqNumber(self.isn.wrapping_add(u32::from(*n))),
            Position::Anywhere(n) => SeqNumber(*n),
        }
    }

    /// The stream offset of `seq` if it is ahead of the start.
    fn offset(&self, seq: SeqNumber) -> Option<u64> {
        let relative = seq.0.wrapping_sub(self.isn);
        (relative < HALF).then_some(u64::from(relative))
    }

    fn apply(&mut self, op: Op) {
        let now = self.now;
        match op {
            Op::Segment {
                at,
                payload,
                cut_short,
            } => {
                let seq = self.seq(&at);
                let wire_len = payload.len() as u32 + u32::from(cut_short % 4);
                if let Some(offset) = self.offset(seq) {
                    for (i, byte) in payload.iter().enumerate() {
                        self.offered.insert((offset + i as u64, *byte));
                    }
                    self.frontier = self.frontier.max(offset + u64::from(wire_len));
                }
                let (stream, mut sink) = self.parts();
                stream.handle_segment(now, seq, &payload, wire_len, &mut sink);
            }
            Op::Ack(at) => {
                let seq = self.seq(&at);
                if let Some(offset) = self.offset(seq) {
                    self.frontier = self.frontier.max(offset);
                }
                let (stream, mut sink) = self.parts();
                stream.handle_ack(seq, &mut sink);
            }
            Op::Fin(at) => {
                let seq = self.seq(&at);
                self.stream.handle_fin(seq);
            }
            Op::Wait(ms) => {
                self.now = now + Duration::from_millis(u64::from(ms));
                let now = self.now;
                let (stream, mut sink) = self.parts();
                stream.handle_timeout(now, &mut sink);
            }
            Op::Shed => {
                self.stream.shed();
                self.framer.drop_partial();
            }
        }
    }

    /// The stream and the checking sink in front of its framer.
    fn parts(&mut self) -> (&mut Stream, Checked<'_>) {
        let sink = Checked {
            inner: Framing {
                framer: &mut self.framer,
                lines: &mut self.lines,
            },
            record: &mut self.record,
        };
        (&mut self.stream, sink)
    }

    fn check(&mut self) {
        let bound = self.limits.max_out_of_order + self.limits.history;
        assert!(
            self.stream.buffered() <= bound,
            "{} buffered",
            self.stream.buffered()
        );
        assert!(self.framer.buffered() <= self.max_line);
        assert_eq!(self.stream.delivered(), self.record.next);
        assert!(
            self.record.next <= self.frontier,
            "delivered past what was sent"
        );
        for (at, byte) in self.record.bytes.range(self.checked..) {
            assert!(
                self.offered.contains(&(*at, *byte)),
                "invented byte at {at}"
            );
        }
        self.checked = self.record.next;
        for line in self.lines.iter() {
            let (from, to) = line.raw;
            assert!(
                from < to && from >= self.last_line_end,
                "line order {from}..{to}"
            );
            self.last_line_end = to;
            assert!(line.text.len() <= self.max_line);
            let raw: Option<Vec<u8>> = (from..to)
                .map(|o| self.record.bytes.get(&o).copied())
                .collect();
            let raw = raw.expect("a gap inside a framed line");
            assert_eq!(raw.last(), Some(&b'\n'));
            if !line.overlong && !raw.contains(&0xff) {
                let text = raw.strip_suffix(b"\n").unwrap_or(&raw);
                let text = text.strip_suffix(b"\r").unwrap_or(text);
                assert_eq!(line.text, text);
            }
        }
        self.lines.clear();
        self.framer.release();
    }
}

impl Sink for Checked<'_> {
    fn data(&mut self, offset: u64, bytes: &[u8]) {
        assert_eq!(offset, self.record.next, "data not contiguous");
        for (i, byte) in bytes.iter().enumerate() {
            self.record.bytes.insert(offset + i as u64, *byte);
        }
        self.record.next += bytes.len() as u64;
        self.inner.data(offset, bytes);
    }

    fn gap(&mut self, from: u64, to: u64) {
        assert_eq!(from, self.record.next, "gap not contiguous");
        assert!(to > from, "empty gap {from}..{to}");
        self.record.next = to;
        self.inner.gap(from, to);
    }

    fn spares(&mut self) -> Option<&mut Spares> {
        self.inner.spares()
    }
}
