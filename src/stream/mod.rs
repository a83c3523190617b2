//! [`Stream`]: one direction of a TCP control connection, turned back into a byte stream.
//!
//! Owns: the mapping from sequence numbers to absolute stream offsets (wrap-around safe),
//! in-order delivery to a [`Sink`], out-of-order segments (held in an [`Assembler`]),
//! retransmissions and overlaps (first copy wins; a conflicting overlap is reported), and
//! gaps that will never fill (the peer acknowledged bytes we never saw, a hole outlived its
//! timeout, or the capture cut a segment short): the sink is told, and resynchronises at the
//! next line boundary. Every buffer is bounded by [`Limits`].
//! Does not own: TCP connection state (see `flow`) or line framing (see [`lines`]).

pub mod assembler;
pub mod lines;

use std::collections::VecDeque;
use std::io;

use crate::snapshot::Decoder;
use crate::snapshot::Encoder;
use crate::snapshot::SnapshotError;
use crate::stream::assembler::Assembler;
use crate::time::Duration;
use crate::time::Instant;
use crate::wire::SeqNumber;

/// Segments further ahead than this many bytes from the next expected byte are not held.
const MAX_WINDOW: u64 = 1 << 20;
/// The largest stream offset a snapshot may name (offsets grow by at most 2^32 per sequence
/// wrap; this leaves every sum of an offset and a window far from overflow).
const MAX_OFFSET: u64 = 1 << 62;
/// Segments further behind than this are stale (older than any retransmission we care about).
const MAX_BEHIND: i64 = 1 << 30;

/// Where in-order bytes go.
pub trait Sink {
    /// Bytes starting at stream offset `offset`, contiguous with the previous call.
    fn data(&mut self, offset: u64, bytes: &[u8]);
    /// Bytes from `from` up to `to` will never be seen; the next `data` starts at `to`.
    fn gap(&mut self, from: u64, to: u64);
    /// Spare buffers for the stream's history, if the sink keeps some (see [`Spares`]).
    fn spares(&mut self) -> Option<&mut Spares> {
        None
    }
}

/// Spare history buffers: lent to a stream when it delivers bytes with an empty history, given
/// back when the peer has acknowledged all of them. One set per engine (scratch, beside the line
/// arena), so that a history costs no allocation per segment while an idle connection still
/// holds none. Bounded: at most [`MAX_SPARES`] buffers of at most [`MAX_SPARE_CAPACITY`] bytes.
#[derive(Debug, Clone, Default)]
pub struct Spares {
    buffers: Vec<VecDeque<u8>>,
}

/// Spare history buffers kept at most.
const MAX_SPARES: usize = 64;
/// A larger buffer is freed, not kept.
const MAX_SPARE_CAPACITY: usize = 4096;

impl Spares {
    /// An empty buffer (a spare one if there is one).
    pub fn lend(&mut self) -> VecDeque<u8> {
        self.buffers.pop().unwrap_or_default()
    }

    /// Keep `buffer` for the next [`Spares::lend`], within the bounds.
    pub fn give_back(&mut self, mut buffer: VecDeque<u8>) {
        let capacity = buffer.capacity();
        if capacity > 0 && capacity <= MAX_SPARE_CAPACITY && self.buffers.len() < MAX_SPARES {
            buffer.clear();
            self.buffers.push(buffer);
        }
    }

    /// How many buffers are kept.
    pub fn len(&self) -> usize {
        self.buffers.len()
    }

    /// True when none is kept.
    pub fn is_empty(&self) -> bool {
        self.buffers.is_empty()
    }
}

/// Bounds of one stream direction.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Out-of-order bytes held at most.
    pub max_out_of_order: usize,
    /// Separate out-of-order chunks (holes) held at most.
    pub max_chunks: usize,
    /// Delivered bytes remembered to check retransmissions for conflicts.
    pub history: usize,
    /// How long a hole may stay open while later data waits before it is skipped.
    pub hole_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_out_of_order: 16 * 1024,
            max_chunks: 16,
            history: 512,
            hole_timeout: Duration::from_secs(10),
        }
    }
}

/// What happened to one segment's payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Receipt {
    /// Some bytes were already seen (a retransmission or an overlap).
    pub retransmitted: bool,
    /// Some already-seen bytes differed from the first copy, which was kept.
    pub conflict: bool,
    /// The segment arrived ahead of a hole and was held.
    pub out_of_order: bool,
    /// The segment could not be held (bounds reached, or it lies outside the window).
    pub unbuffered: bool,
    /// Bytes were declared lost: a gap was delivered to the sink.
    pub gap: bool,
}

/// One direction of a TCP byte stream.
#[derive(Debug, Clone)]
pub struct Stream {
    base: SeqNumber,
    delivered: u64,
    out_of_order: Assembler,
    history: VecDeque<u8>,
    hole_since: Option<Instant>,
    fin_at: Option<u64>,
    /// `Limits::history` (the assembler keeps its own bounds).
    max_history: usize,
    /// `Limits::hole_timeout`.
    hole_timeout: Duration,
}

impl Stream {
    /// A stream whose first byte has sequence number `first` (ISN + 1 after a SYN, or the
    /// first sequence number seen when picking up mid-stream).
    pub fn new(first: SeqNumber, limits: Limits) -> Self {
        Self {
            base: first,
            delivered: 0,
            out_of_order: Assembler::new(limits.max_out_of_order, limits.max_chunks),
            history: VecDeque::new(),
            hole_since: None,
            fin_at: None,
            max_history: limits.history,
            hole_timeout: limits.hole_timeout,
        }
    }

    /// Write what a restarted engine needs to go on: where the stream starts, how far it is
    /// delivered, and its FIN. Out-of-order bytes and history are not kept: TCP retransmits
    /// the former, and the latter only serves to spot conflicting retransmissions.
    pub fn save(&self, e: &mut Encoder<'_>) -> io::Result<()> {
        e.u32(self.base.0)?;
        e.u64(self.delivered)?;
        e.opt_u64(self.fin_at)
    }

    /// Read what [`Stream::save`] wrote.
    pub fn load(d: &mut Decoder<'_>, limits: Limits) -> Result<Self, SnapshotError> {
        let mut stream = Self::new(SeqNumber(d.u32()?), limits);
        stream.delivered = d.u64()?;
        stream.fin_at = d.opt_u64("stream FIN")?;
        let too_far = |offset: u64| offset > MAX_OFFSET;
        if too_far(stream.delivered) || stream.fin_at.is_some_and(too_far) {
            return Err(SnapshotError::Invalid("stream offset"));
        }
        Ok(stream)
    }

    /// Take in a segment's payload. `wire_len` is the payload length on the wire, larger than
    /// `payload.len()` when a capture cut the segment short.
    pub fn handle_segment(
        &mut self,
        now: Instant,
        seq: SeqNumber,
        payload: &[u8],
        wire_len: u32,
        sink: &mut impl Sink,
    ) -> Receipt {
        let mut receipt = Receipt::default();
        let Some(offset) = self.offset_of(seq) else {
            receipt.retransmitted = !payload.is_empty();
            return receipt;
        };
        let end = offset + payload.len() as u64;
        let wire_end = offset + u64::from(wire_len);
        if offset < self.delivered {
            receipt.retransmitted = true;
            receipt.conflict = self.history_differs(offset, payload);
        }
        if end > self.delivered && offset <= self.delivered {
            let fresh = &payload[(self.delivered - offset) as usize..];
            self.accept_in_order(fresh, &mut receipt, sink);
        } else if offset > self.delivered && !payload.is_empty() {
            self.hold(offset, payload, &mut receipt);
        }
        if wire_end > end && end >= self.delivered && offset <= self.delivered {
            self.skip_to(wire_end, sink);
            receipt.gap = true;
        }
        self.drain(sink);
        self.track_hole(now);
        receipt
    }

    /// The peer acknowledged everything before `ack`: bytes we never saw there are lost, and
    /// delivered bytes there need no history any more (the receiver drops a retransmission
    /// of bytes it acknowledged, RFC 9293 §3.10.7.4, so it cannot conflict with what we read).
    /// Returns true if a gap was delivered.
    pub fn handle_ack(&mut self, ack: SeqNumber, sink: &mut impl Sink) -> bool {
        let Some(acked) = self.offset_of(ack) else {
            return false;
        };
        self.forget_acknowledged(acked, sink);
        // An ACK of something not yet sent is ignored (RFC 9293 §3.10.7.4); one beyond the
        // window is judged before the FIN clamps it, or it would declare lost every byte up to
        // the FIN.
        if acked.saturating_sub(self.delivered) > MAX_WINDOW {
            return false;
        }
        let target = self.fin_at.map_or(acked, |fin| acked.min(fin));
        if target <= self.delivered {
            return false;
        }
        self.skip_to(target, sink);
        self.drain(sink);
        true
    }

    /// Skip a hole that has been open longer than the hole timeout. Returns true if it did.
    pub fn handle_timeout(&mut self, now: Instant, sink: &mut impl Sink) -> bool {
        let expired = self
            .hole_since
            .is_some_and(|since| now.saturating_since(since) >= self.hole_timeout);
        let Some(next) = self.out_of_order.first_offset().filter(|_| expired) else {
            return false;
        };
        self.skip_to(next, sink);
        self.drain(sink);
        self.track_hole(now);
        true
    }

    /// Record the FIN at `seq`: acknowledgements of it are not acknowledgements of data.
    pub fn handle_fin(&mut self, seq: SeqNumber) {
        self.fin_at = self.offset_of(seq).or(self.fin_at);
    }

    /// Drop held out-of-order bytes and the history of delivered bytes (memory pressure).
    /// Returns how many were dropped.
    pub fn shed(&mut self) -> usize {
        let dropped = self.out_of_order.len() + self.history.len();
        self.out_of_order.clear();
        self.history = VecDeque::new();
        self.hole_since = None;
        dropped
    }

    /// Bytes currently held (out-of-order plus history).
    pub fn buffered(&self) -> usize {
        self.out_of_order.len() + self.history.len()
    }

    /// The offset of the next byte expected in order.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// The sequence number of the byte at stream offset `offset`.
    pub fn seq_at(&self, offset: u64) -> SeqNumber {
        // Truncation is the point: sequence numbers are offsets modulo 2^32.
        self.base.add(offset as u32)
    }

    /// The stream offsets `[from, to)` that `len` bytes starting at `seq` would occupy, if
    /// `seq` lies within reach of the stream.
    pub fn range_of(&self, seq: SeqNumber, len: usize) -> Option<(u64, u64)> {
        let from = self.offset_of(seq)?;
        Some((from, from + len as u64))
    }

    /// The absolute offset of `seq`, judged relative to the next expected byte; `None` when it
    /// lies before the stream's start or too far behind to matter.
    fn offset_of(&self, seq: SeqNumber) -> Option<u64> {
        let relative = i64::from(seq.offset_from(self.seq_at(self.delivered)));
        if relative < -MAX_BEHIND {
            return None;
        }
        u64::try_from(self.delivered as i64 + relative).ok()
    }

    fn deliver(&mut self, bytes: &[u8], sink: &mut impl Sink) {
        if bytes.is_empty() {
            return;
        }
        sink.data(self.delivered, bytes);
        self.delivered += bytes.len() as u64;
        self.remember(bytes, sink);
        self.out_of_order.discard_before(self.delivered);
    }

    /// Deliver bytes that start at the next expected offset. Where they overlap bytes held
    /// out of order, the held bytes are the first copy: they are delivered instead, and a
    /// difference is a conflict.
    fn accept_in_order(&mut self, mut fresh: &[u8], receipt: &mut Receipt, sink: &mut impl Sink) {
        while !fresh.is_empty() {
            if let Some(held) = self.out_of_order.pop_at(self.delivered) {
                let overlap = held.len().min(fresh.len());
                receipt.retransmitted = true;
                receipt.conflict |= held[..overlap] != fresh[..overlap];
                self.deliver(&held, sink);
                fresh = &fresh[overlap..];
                continue;
            }
            let before_held = self
                .out_of_order
                .first_offset()
                .map_or(fresh.len(), |start| (start - self.delivered) as usize)
                .min(fresh.len());
            self.deliver(&fresh[..before_held], sink);
            fresh = &fresh[before_held..];
        }
    }

    fn hold(&mut self, offset: u64, payload: &[u8], receipt: &mut Receipt) {
        if offset + payload.len() as u64 - self.delivered > MAX_WINDOW {
            receipt.unbuffered = true;
            return;
        }
        match self.out_of_order.insert(offset, payload) {
            Ok(inserted) => {
                receipt.out_of_order = true;
                receipt.retransmitted |= !inserted.stored;
                receipt.conflict |= inserted.conflict;
            }
            Err(_) => receipt.unbuffered = true,
        }
    }

    /// Deliver held chunks that have become contiguous.
    fn drain(&mut self, sink: &mut impl Sink) {
        while let Some(chunk) = self.out_of_order.pop_at(self.delivered) {
            self.deliver(&chunk, sink);
        }
    }

    /// Declare everything up to `target` lost, delivering held chunks on the way.
    fn skip_to(&mut self, target: u64, sink: &mut impl Sink) {
        while self.delivered < target {
            if let Some(chunk) = self.out_of_order.pop_at(self.delivered) {
                self.deliver(&chunk, sink);
                continue;
            }
            let next = self
                .out_of_order
                .first_offset()
                .unwrap_or(target)
                .min(target);
            sink.gap(self.delivered, next);
            self.delivered = next;
            self.history.clear();
            self.out_of_order.discard_before(next);
        }
    }

    fn track_hole(&mut self, now: Instant) {
        if self.out_of_order.is_empty() {
            self.hole_since = None;
        } else if self.hole_since.is_none() {
            self.hole_since = Some(now);
        }
    }

    /// Drop history before stream offset `acked`; give its buffer back when empty (idle
    /// connections then hold none).
    fn forget_acknowledged(&mut self, acked: u64, sink: &mut impl Sink) {
        let history_start = self.delivered - self.history.len() as u64;
        let drop = acked
            .saturating_sub(history_start)
            .min(self.history.len() as u64);
        self.history.drain(..drop as usize);
        if self.history.is_empty() && self.history.capacity() > 0 {
            let buffer = std::mem::take(&mut self.history);
            if let Some(spares) = sink.spares() {
                spares.give_back(buffer);
            }
        }
    }

    fn remember(&mut self, bytes: &[u8], sink: &mut impl Sink) {
        if self.history.capacity() == 0 {
            if let Some(spares) = sink.spares() {
                self.history = spares.lend();
            }
        }
        let keep = self.max_history;
        let take = bytes.len().min(keep);
        self.history.extend(&bytes[bytes.len() - take..]);
        let excess = self.history.len().saturating_sub(keep);
        self.history.drain(..excess);
    }

    /// Whether `payload` at `offset` differs from remembered delivered bytes where they overlap.
    fn history_differs(&self, offset: u64, payload: &[u8]) -> bool {
        let history_start = self.delivered - self.history.len() as u64;
        let from = offset.max(history_start);
        let to = (offset + payload.len() as u64).min(self.delivered);
        (from..to).any(|at| {
            self.history[(at - history_start) as usize] != payload[(at - offset) as usize]
        })
    }
}

#[cfg(test)]
mod tests;
