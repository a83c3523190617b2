//! [`ControlFlow`]: one FTP control connection, from TCP segments to FTP session events.
//!
//! Owns: the TCP lifecycle as a middlebox sees it (SYN, SYN-ACK, FIN in each direction, RST
//! accepted only near the expected sequence number, after RFC 5961 §3), the two reassembled
//! directions with their line framers, mid-stream pickup (a direction first seen without its
//! SYN starts unsynchronised and is framed only after an LF), and feeding lines to the
//! [`Session`] in causal order: a segment's acknowledgement is processed before its payload,
//! since it speaks of bytes the other side sent earlier. Does not own: policy, expectations
//! (`expect::table`), or what happens to the kernel (see `engine`).

pub(crate) mod snapshot;

use crate::config::Config;
use crate::flow::Control;
use crate::flow::Direction;
use crate::flow::FlowId;
use crate::flow::silent::Quiet;
use crate::flow::silent::Silent;
use crate::flow::table::Tier;
use crate::ftp::Event;
use crate::ftp::Session;
use crate::stream::Receipt;
use crate::stream::Stream;
use crate::stream::lines::Framer;
use crate::stream::lines::Framing;
use crate::stream::lines::Lines;
use crate::time::Duration;
use crate::time::Instant;
use crate::wire::Control as Flags;
use crate::wire::Segment;
use crate::wire::SeqNumber;

/// A RST is believed only if its sequence number is this close to the expected one.
const RST_WINDOW: u32 = 1 << 16;

/// One control connection.
#[derive(Debug)]
pub struct ControlFlow {
    id: FlowId,
    control: Control,
    state: TcpState,
    halves: [Half; 2],
    session: Session,
    conflict_seen: bool,
}

/// The TCP state of a control connection, as far as a middlebox can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpState {
    /// The client's SYN was seen, the server has not answered.
    SynSent,
    /// Data may flow.
    Established,
    /// One side has sent its FIN.
    Closing,
    /// Both FINs, or a RST: the connection is over.
    Closed,
}

/// What one segment did, for the engine's counters and actions. The engine reuses one
/// (see [`Outcome::reset`]) so that its buffers are not allocated per packet.
#[derive(Debug, Default)]
pub struct Outcome {
    /// FTP events, in order.
    pub events: Vec<Event>,
    /// How the payload was received.
    pub receipt: Receipt,
    /// Gaps declared in either direction.
    pub gaps: u32,
    /// Lines framed.
    pub lines: u32,
    /// Lines longer than the cap.
    pub overlong: u32,
    /// The connection closed with this segment.
    pub closed: bool,
    /// A conflicting overlap was seen for the first time on this connection.
    pub first_conflict: bool,
    /// Payload that could not be tracked (no stream, and pickup is off).
    pub untracked: bool,
    /// The stream offsets `[from, to)` the segment's payload covered in its direction.
    pub range: Option<(u64, u64)>,
    /// Scratch: lines framed and not yet handed to the session (reused across segments).
    framed: Lines,
}

#[derive(Debug)]
struct Half {
    stream: Option<Stream>,
    framer: Framer,
    syn: Option<SeqNumber>,
    fin: bool,
}

impl Outcome {
    /// Ready for the next segment: everything zero and empty, buffers kept.
    pub fn reset(&mut self) {
        // In place, field by field (moving the whole struct cost two `memcpy` calls per
        // segment); destructured without `..`, so a new field cannot be forgotten here.
        let Self {
            events,
            receipt,
            gaps,
            lines,
            overlong,
            closed,
            first_conflict,
            untracked,
            range,
            framed,
        } = self;
        events.clear();
        framed.clear();
        *receipt = Receipt::default();
        (*gaps, *lines, *overlong) = (0, 0, 0);
        (*closed, *first_conflict, *untracked) = (false, false, false);
        *range = None;
    }
}

impl ControlFlow {
    /// A connection opened by the client's SYN with initial sequence number `isn`.
    pub fn from_syn(id: FlowId, control: Control, isn: SeqNumber, config: &Config) -> Self {
        let mut flow = Self::new(
            id,
            control,
            Session::new(config.session),
            TcpState::SynSent,
            config,
        );
        let client = &mut flow.halves[Direction::Original.index()];
        client.syn = Some(isn);
        client.stream = Some(Stream::new(isn.add(1), config.stream));
        client.framer = Framer::new(config.max_line, true);
        flow
    }

    /// A connection first seen after its handshake (mid-stream pickup).
    pub fn picked_up(id: FlowId, control: Control, config: &Config) -> Self {
        let session = Session::picked_up(config.session);
        Self::new(id, control, session, TcpState::Established, config)
    }

    /// Take one segment travelling in `direction`.
    pub fn handle_segment(
        &mut self,
        now: Instant,
        direction: Direction,
        segment: &Segment<'_>,
        config: &Config,
        out: &mut Outcome,
    ) {
        match segment.control() {
            Flags::Syn => self.handle_syn(direction, segment, config),
            Flags::Rst => return self.handle_rst(direction, segment, out),
            Flags::Fin | Flags::None => {}
        }
        if self.state == TcpState::Closed {
            return;
        }
        if let Some(ack) = segment.ack() {
            self.handle_ack(direction.reverse(), ack, out);
        }
        self.handle_payload(now, direction, segment, config, out);
        if segment.control() == Flags::Fin {
            self.handle_fin(direction, segment, out);
        }
    }

    /// The sequence number of stream offset `offset` in `direction`, once that direction
    /// has a stream.
    pub fn seq_at(&self, direction: Direction, offset: u64) -> Option<SeqNumber> {
        let stream = self.halves[direction.index()].stream.as_ref()?;
        Some(stream.seq_at(offset))
    }

    /// The sequence number up to which `direction`'s bytes form complete lines: the start of
    /// its unfinished line, or of the first byte not yet received in order. `None` while the
    /// direction has no stream.
    pub fn line_boundary(&self, direction: Direction) -> Option<SeqNumber> {
        let half = &self.halves[direction.index()];
        let stream = half.stream.as_ref()?;
        Some(stream.seq_at(half.framer.line_start().min(stream.delivered())))
    }

    /// The connection's serial number.
    pub fn id(&self) -> FlowId {
        self.id
    }

    /// Who is client and who is server.
    pub fn control(&self) -> &Control {
        &self.control
    }

    /// The TCP state.
    pub fn state(&self) -> TcpState {
        self.state
    }

    /// How long the connection may stay idle in its current state.
    pub fn idle_timeout(&self, config: &Config) -> Duration {
        match self.state {
            TcpState::SynSent => config.timeouts.syn_sent,
            TcpState::Established if self.session.is_proven() => config.timeouts.established,
            TcpState::Established => config.timeouts.unproven,
            TcpState::Closing => config.timeouts.closing,
            TcpState::Closed => config.timeouts.closed,
        }
    }

    /// Its eviction tier: closed, proven FTP, or not yet.
    pub fn tier(&self) -> Tier {
        if self.state == TcpState::Closed {
            Tier::Spent
        } else if self.session.is_proven() {
            Tier::Proven
        } else {
            Tier::Unproven
        }
    }

    /// The tombstone it becomes once its lines are no longer read (not FTP, or encrypted).
    pub fn silenced(&self) -> Option<Silent> {
        if self.session.is_parsing() {
            return None;
        }
        let why = if self.session.is_poisoned() {
            Quiet::Poisoned
        } else {
            Quiet::Encrypted
        };
        let fins = [self.halves[0].fin, self.halves[1].fin];
        Some(Silent::new(why, self.state, fins))
    }

    /// Bytes held for this connection (reassembly, partial lines, lines held by the session).
    pub fn buffered(&self) -> usize {
        let halves: usize = self
            .halves
            .iter()
            .map(|h| h.framer.buffered() + h.stream.as_ref().map_or(0, Stream::buffered))
            .sum();
        halves + self.session.buffered()
    }

    /// Under memory pressure, drop the bytes that cost nothing to lose: out-of-order bytes
    /// (TCP retransmits them) and the history kept to spot conflicting retransmissions.
    /// Returns how many.
    pub fn shed_reassembly(&mut self) -> usize {
        self.halves
            .iter_mut()
            .filter_map(|h| h.stream.as_mut())
            .map(Stream::shed)
            .sum()
    }

    /// Under more pressure, drop unfinished lines (each direction then resynchronises at its
    /// next LF, as after a gap), the lines of a multi-line reply in progress, and client lines
    /// held for the greeting. Returns the lines dropped; an announcement among them is lost
    /// (no pinhole: the safe side).
    pub fn shed_lines(&mut self) -> usize {
        let mut lines = 0;
        for direction in [Direction::Original, Direction::Reply] {
            if self.halves[direction.index()].framer.drop_partial() > 0 {
                lines += 1;
                self.gap(direction);
            }
        }
        lines + self.session.shed()
    }

    fn new(
        id: FlowId,
        control: Control,
        session: Session,
        state: TcpState,
        config: &Config,
    ) -> Self {
        let half = || Half {
            stream: None,
            framer: Framer::new(config.max_line, false),
            syn: None,
            fin: false,
        };
        Self {
            id,
            control,
            state,
            halves: [half(), half()],
            session,
            conflict_seen: false,
        }
    }

    fn handle_syn(&mut self, direction: Direction, segment: &Segment<'_>, config: &Config) {
        let is_syn_ack = segment.ack().is_some();
        let half = &mut self.halves[direction.index()];
        if direction == Direction::Reply && is_syn_ack && half.syn.is_none() {
            half.syn = Some(segment.seq());
            half.stream = Some(Stream::new(segment.seq().add(1), config.stream));
            half.framer = Framer::new(config.max_line, true);
            if self.state == TcpState::SynSent {
                self.state = TcpState::Established;
            }
        }
    }

    fn handle_rst(&mut self, direction: Direction, segment: &Segment<'_>, out: &mut Outcome) {
        let believable = self.halves[direction.index()]
            .stream
            .as_ref()
            .is_none_or(|stream| {
                let expected = stream.seq_at(stream.delivered());
                // unsigned_abs: a RST exactly 2^31 away is the farthest, not (wrapped) the nearest.
                segment.seq().offset_from(expected).unsigned_abs() <= RST_WINDOW
            });
        if believable && self.state != TcpState::Closed {
            self.state = TcpState::Closed;
            out.closed = true;
        }
    }

    fn handle_ack(&mut self, direction: Direction, ack: SeqNumber, out: &mut Outcome) {
        self.stream_step(direction, out, |stream, framing| {
            stream.handle_ack(ack, framing)
        });
    }

    fn handle_payload(
        &mut self,
        now: Instant,
        direction: Direction,
        segment: &Segment<'_>,
        config: &Config,
        out: &mut Outcome,
    ) {
        if !self.session.is_parsing() {
            self.halves.iter_mut().for_each(Half::stop);
            return;
        }
        if segment.wire_len() == 0 {
            return;
        }
        let seq = match segment.control() {
            Flags::Syn => segment.seq().add(1),
            _ => segment.seq(),
        };
        if self.halves[direction.index()].stream.is_none()
            && !self.start_unsynced(direction, seq, config)
        {
            out.untracked = true;
            return;
        }
        let half = &mut self.halves[direction.index()];
        let Some(stream) = &mut half.stream else {
            return;
        };
        out.range = stream.range_of(seq, segment.payload().len());
        let mut framing = Framing {
            framer: &mut half.framer,
            lines: &mut out.framed,
        };
        let receipt = stream.handle_segment(
            now,
            seq,
            segment.payload(),
            segment.wire_len(),
            &mut framing,
        );
        out.receipt = receipt;
        if receipt.conflict && !self.conflict_seen {
            self.conflict_seen = true;
            out.first_conflict = true;
        }
        if receipt.gap {
            out.gaps += 1;
            self.gap(direction);
        }
        self.feed(direction, out);
        self.skip_old_hole(now, direction, out);
        self.halves[direction.index()].framer.release();
    }

    /// Start a direction whose first byte was not announced by a SYN: it is framed only after
    /// an LF. Returns false when pickup is off.
    fn start_unsynced(&mut self, direction: Direction, seq: SeqNumber, config: &Config) -> bool {
        if !config.midstream_pickup {
            return false;
        }
        let half = &mut self.halves[direction.index()];
        half.stream = Some(Stream::new(seq, config.stream));
        half.framer = Framer::new(config.max_line, false);
        if direction == Direction::Reply && !self.session.is_greeted() {
            // The greeting may have been in the bytes we missed.
            self.session = Session::picked_up(config.session);
        }
        true
    }

    fn handle_fin(&mut self, direction: Direction, segment: &Segment<'_>, out: &mut Outcome) {
        let half = &mut self.halves[direction.index()];
        if let Some(stream) = &mut half.stream {
            stream.handle_fin(segment.seq().add(segment.wire_len()));
        }
        half.fin = true;
        self.state = if self.halves.iter().all(|h| h.fin) {
            TcpState::Closed
        } else {
            TcpState::Closing
        };
        out.closed = self.state == TcpState::Closed;
    }

    /// Skip a hole in `direction` that later data has waited behind for too long.
    fn skip_old_hole(&mut self, now: Instant, direction: Direction, out: &mut Outcome) {
        self.stream_step(direction, out, |stream, framing| {
            stream.handle_timeout(now, framing)
        });
    }

    /// Run `step` on `direction`'s stream; if it declared a gap, tell the session and hand
    /// it the lines that followed.
    fn stream_step(
        &mut self,
        direction: Direction,
        out: &mut Outcome,
        step: impl FnOnce(&mut Stream, &mut Framing<'_>) -> bool,
    ) {
        let half = &mut self.halves[direction.index()];
        let Some(stream) = &mut half.stream else {
            return;
        };
        let mut framing = Framing {
            framer: &mut half.framer,
            lines: &mut out.framed,
        };
        if step(stream, &mut framing) {
            out.gaps += 1;
            self.gap(direction);
            self.feed(direction, out);
        }
    }

    fn gap(&mut self, direction: Direction) {
        match direction {
            Direction::Original => self.session.handle_client_gap(),
            Direction::Reply => self.session.handle_server_gap(),
        }
    }

    /// Hand the lines framed in `direction` to the session.
    fn feed(&mut self, direction: Direction, out: &mut Outcome) {
        let session = &mut self.session;
        for line in out.framed.iter() {
            out.lines += 1;
            out.overlong += u32::from(line.overlong);
            match direction {
                Direction::Original => session.handle_client_line(line, &mut out.events),
                Direction::Reply => session.handle_server_line(line, &mut out.events),
            }
        }
        out.framed.clear();
    }
}

impl Half {
    /// Stop reading this direction (the session is encrypted or poisoned): free its buffers.
    fn stop(&mut self) {
        self.stream = None;
        self.framer = Framer::new(0, false);
    }
}
