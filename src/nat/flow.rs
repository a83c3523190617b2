//! [`NatFlow`]: what one translated control connection needs to be rewritten consistently.
//!
//! Owns: the connection's [`Translation`], one [`Side`] per direction (the sequence base, the
//! [`Ledger`] of its edits, how far its bytes have been released), and the segments held back
//! because they carry part of a line that is not complete yet ([`Held`]). Turning one segment
//! into its rewritten form ([`NatFlow::outgoing`] for the direction whose lines are edited,
//! [`NatFlow::acknowledging`] for the other, whose ACK and SACK numbers speak of edited
//! bytes) is here; parsing lines and deciding what to announce is not.

use std::io;

use crate::flow::Direction;
use crate::nat::Translation;
use crate::nat::ledger::Ledger;
use crate::snapshot::Decoder;
use crate::snapshot::Encoder;
use crate::snapshot::SnapshotError;
use crate::time::Instant;
use crate::wire::Segment;
use crate::wire::SegmentEdit;
use crate::wire::SeqNumber;
use crate::wire::rewrite_segment;

/// A datagram the engine holds until the line it carries part of is complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HeldId(pub u64);

/// One held datagram.
#[derive(Debug, Clone)]
pub struct Held {
    /// Its identity for the shell.
    pub id: HeldId,
    /// The datagram as it arrived.
    pub datagram: Vec<u8>,
    /// Its direction.
    pub direction: Direction,
    /// The sender's stream offsets its payload covers.
    pub range: (u64, u64),
    /// When it is released whatever happens.
    pub deadline: Instant,
}

/// One direction of a translated connection.
#[derive(Debug, Clone, Default)]
pub struct Side {
    /// The sequence number of offset 0 (the first segment seen after translation began).
    base: Option<SeqNumber>,
    /// The highest sender offset seen: sequence numbers are unwrapped near it.
    high: u64,
    /// The edits of this direction.
    pub ledger: Ledger,
    /// Sender bytes before this offset have left the gateway (edits must start at or after).
    pub released: u64,
}

impl Side {
    fn save(&self, e: &mut Encoder<'_>) -> io::Result<()> {
        e.opt_u64(self.base.map(|b| u64::from(b.0)))?;
        e.u64(self.high)?;
        e.u64(self.released)?;
        self.ledger.save(e)
    }

    fn load(d: &mut Decoder<'_>) -> Result<Self, SnapshotError> {
        let base = d
            .opt_u64("NAT base")?
            .map(|b| u32::try_from(b).map(SeqNumber))
            .transpose()
            .map_err(|_| SnapshotError::Invalid("NAT base"))?;
        Ok(Self {
            base,
            high: d.u64()?,
            released: d.u64()?,
            ledger: Ledger::load(d)?,
        })
    }

    /// The sender offset of `seq` (a sequence number of the sender's own space).
    pub fn offset(&mut self, seq: SeqNumber) -> u64 {
        let base = *self.base.get_or_insert(seq);
        let anchor = base.add(self.high as u32);
        let x = self
            .high
            .saturating_add_signed(i64::from(seq.offset_from(anchor)));
        self.high = self.high.max(x);
        x
    }

    /// The rewritten-stream offset of `seq` (a number the receiver uses, e.g. in an ACK).
    fn output_offset(&self, seq: SeqNumber) -> Option<u64> {
        let base = self.base?;
        let high = self.ledger.map(self.high);
        let anchor = base.add(high as u32);
        Some(high.saturating_add_signed(i64::from(seq.offset_from(anchor))))
    }

    /// The sequence number of offset `x` (the same base serves both spaces).
    fn seq_at(&self, x: u64) -> SeqNumber {
        self.base.unwrap_or_default().add(x as u32)
    }

    /// The receiver's acknowledgement (or SACK edge) `seq`, translated back to the sender's
    /// space.
    fn unmap(&self, seq: SeqNumber) -> SeqNumber {
        match self.output_offset(seq) {
            Some(y) => self.seq_at(self.ledger.unmap(y)),
            None => seq,
        }
    }
}

/// One translated control connection.
#[derive(Debug, Clone, Default)]
pub struct NatFlow {
    /// How its ends look from the other side.
    pub translation: Translation,
    /// Per direction ([`Direction::index`]).
    pub sides: [Side; 2],
    /// Held datagrams, oldest first.
    pub held: Vec<Held>,
}

impl NatFlow {
    /// A flow translated as `translation`.
    pub fn new(translation: Translation) -> Self {
        Self {
            translation,
            ..Self::default()
        }
    }

    /// Write what a restart needs (held datagrams are released before a save).
    pub fn save(&self, e: &mut Encoder<'_>) -> io::Result<()> {
        for public in [
            self.translation.client_public,
            self.translation.server_public,
        ] {
            match public {
                None => e.u8(0)?,
                Some(ip) => {
                    e.u8(1)?;
                    e.ip(ip)?;
                }
            }
        }
        self.sides[0].save(e)?;
        self.sides[1].save(e)
    }

    /// Read what [`NatFlow::save`] wrote.
    pub fn load(d: &mut Decoder<'_>) -> Result<Self, SnapshotError> {
        let mut public = || -> Result<Option<std::net::IpAddr>, SnapshotError> {
            match d.u8()? {
                0 => Ok(None),
                1 => Ok(Some(d.ip()?)),
                _ => Err(SnapshotError::Invalid("NAT address tag")),
            }
        };
        let translation = Translation {
            client_public: public()?,
            server_public: public()?,
        };
        Ok(Self {
            translation,
            sides: [Side::load(d)?, Side::load(d)?],
            held: Vec::new(),
        })
    }

    /// True when lines travelling in `direction` may be rewritten (their sender is the
    /// translated end).
    pub fn rewrites(&self, direction: Direction) -> bool {
        match direction {
            Direction::Original => self.translation.client_public.is_some(),
            Direction::Reply => self.translation.server_public.is_some(),
        }
    }

    /// Bytes held, for the buffer budget.
    pub fn held_bytes(&self) -> usize {
        self.held.iter().map(|h| h.datagram.len()).sum()
    }

    /// The rewritten form of a segment travelling in `direction` whose lines may carry
    /// edits, written to `out`; false when it leaves unchanged. Its bytes count as released.
    pub fn outgoing(
        &mut self,
        direction: Direction,
        segment: &Segment<'_>,
        datagram: &[u8],
        out: &mut Vec<u8>,
    ) -> bool {
        let side = &mut self.sides[direction.index()];
        let payload = segment.payload();
        let from = side.offset(segment.seq());
        let to = from + payload.len() as u64;
        side.released = side.released.max(to);
        if side.ledger.is_empty() {
            return false;
        }
        let seq = side.seq_at(side.ledger.map(from));
        let mut edited = Vec::new();
        let touched = side.ledger.touches(from, to);
        if touched {
            side.ledger.output(from, payload, &mut edited);
        }
        if seq == segment.seq() && !touched {
            return false;
        }
        let edit = SegmentEdit {
            seq: Some(seq),
            ack: None,
            sack: None,
            payload: touched.then_some(edited.as_slice()),
        };
        rewrite_segment(datagram, &edit, out).is_ok()
    }

    /// The rewritten form of a segment travelling in `direction` whose ACK and SACK numbers
    /// speak of the other direction's (possibly edited) bytes, written to `out`; false when
    /// it leaves unchanged. The edits it acknowledges are settled.
    pub fn acknowledging(
        &mut self,
        direction: Direction,
        segment: &Segment<'_>,
        datagram: &[u8],
        out: &mut Vec<u8>,
    ) -> bool {
        let other = &mut self.sides[direction.reverse().index()];
        let Some(ack) = segment.ack() else {
            return false;
        };
        if other.ledger.is_empty() {
            return false;
        }
        let new_ack = other.unmap(ack);
        if let Some(y) = other.output_offset(ack) {
            let acked = other.ledger.unmap(y);
            other.ledger.settle(acked);
        }
        if other.ledger.is_identity() && new_ack == ack {
            // Same-length edits only: every number means the same on both sides.
            return false;
        }
        let other = &self.sides[direction.reverse().index()];
        let sack = |edge: SeqNumber| other.unmap(edge);
        let edit = SegmentEdit {
            seq: None,
            ack: Some(new_ack),
            sack: Some(&sack),
            payload: None,
        };
        rewrite_segment(datagram, &edit, out).is_ok()
    }
}
