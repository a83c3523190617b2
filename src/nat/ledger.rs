//! [`Ledger`]: the sequence-number ledger of one direction of a rewritten control connection.
//!
//! Owns: every edit made to one direction's byte stream (a whole line replaced by a line of
//! another length) and the two mappings they define: from the sender's stream offsets to the
//! receiver's ([`Ledger::map`], for sequence numbers and payload) and back
//! ([`Ledger::unmap`], for the receiver's acknowledgement numbers and SACK edges, RFC 2018).
//! The mapping is a pure function of the offset, so any segmentation, retransmission or
//! reordering of the sender's bytes comes out as the same rewritten stream
//! ([`Ledger::output`]), which is what the far side reassembles. The kernel's `nf_ct_seqadj`
//! keeps one correction position per direction and so misplaces a retransmission from before
//! the last-but-one rewrite; this ledger keeps every edit until the receiver acknowledged it.
//!
//! Offsets are `u64` positions in the sender's stream; the caller converts sequence numbers
//! (see `nat::flow`).

use std::collections::VecDeque;
use std::io;

use crate::snapshot::Decoder;
use crate::snapshot::Encoder;
use crate::snapshot::SnapshotError;

/// The longest replacement line a snapshot may carry.
const MAX_LINE: usize = 1024;

/// At most this many edits per direction are kept unacknowledged; past it, more rewrites are
/// refused (an announcement per few hundred bytes that the receiver never acknowledges is not
/// FTP).
pub const MAX_EDITS: usize = 64;

/// One line replaced: `old_len` bytes at `at` became `new`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Edit {
    at: u64,
    old_len: u64,
    new: Box<[u8]>,
}

impl Edit {
    fn end(&self) -> u64 {
        self.at + self.old_len
    }

    fn new_len(&self) -> u64 {
        self.new.len() as u64
    }

    fn delta(&self) -> i64 {
        self.new.len() as i64 - self.old_len as i64
    }
}

/// Why an edit was not recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditError {
    /// It starts before the end of the previous edit (edits are made in stream order).
    OutOfOrder,
    /// It replaces nothing (edits replace whole lines).
    Empty,
    /// [`MAX_EDITS`] edits are waiting for their acknowledgement.
    Full,
}

/// The edits of one direction, oldest first, and the shift of those already acknowledged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ledger {
    edits: VecDeque<Edit>,
    /// The total length change of the edits acknowledged and forgotten.
    settled: i64,
    /// Where the last forgotten edit ended (new edits start at or after it).
    settled_to: u64,
    /// The receiver has acknowledged the sender's bytes before this offset.
    acked: u64,
}

fn shifted(x: u64, shift: i64) -> u64 {
    x.saturating_add_signed(shift)
}

impl Ledger {
    /// Record that the `old_len` bytes at `at` are replaced by `new`.
    pub fn push(&mut self, at: u64, old_len: u64, new: &[u8]) -> Result<(), EditError> {
        if old_len == 0 {
            return Err(EditError::Empty);
        }
        let last_end = self.edits.back().map_or(self.settled_to, Edit::end);
        if at < last_end {
            return Err(EditError::OutOfOrder);
        }
        if self.edits.len() >= MAX_EDITS {
            self.fold(self.acked);
        }
        if self.edits.len() >= MAX_EDITS {
            return Err(EditError::Full);
        }
        self.edits.push_back(Edit {
            at,
            old_len,
            new: new.into(),
        });
        Ok(())
    }

    /// True when no edit changes any offset (no edit, or only same-length ones).
    pub fn is_identity(&self) -> bool {
        self.settled == 0 && self.edits.iter().all(|e| e.delta() == 0)
    }

    /// True when no edit is recorded or remembered at all.
    pub fn is_empty(&self) -> bool {
        self.edits.is_empty() && self.settled == 0
    }

    /// Edits waiting for their acknowledgement.
    pub fn pending(&self) -> usize {
        self.edits.len()
    }

    /// The total length change so far.
    pub fn delta(&self) -> i64 {
        self.settled + self.edits.iter().map(Edit::delta).sum::<i64>()
    }

    /// Where the sender's byte at offset `x` lands in the rewritten stream. A byte inside a
    /// replaced line lands on the replacement's byte at the same distance (clamped to its
    /// end); the byte after a replaced line lands right after the replacement.
    pub fn map(&self, x: u64) -> u64 {
        let mut shift = self.settled;
        for edit in &self.edits {
            if x <= edit.at {
                break;
            }
            if x >= edit.end() {
                shift += edit.delta();
                continue;
            }
            return shifted(edit.at, shift) + (x - edit.at).min(edit.new_len());
        }
        shifted(x, shift)
    }

    /// The sender's offset a receiver's acknowledgement of rewritten offset `y` stands for:
    /// the inverse of [`Ledger::map`] at segment boundaries. A receiver that holds only part
    /// of a replacement has not received the whole original line: its acknowledgement stops
    /// before the line's last byte.
    pub fn unmap(&self, y: u64) -> u64 {
        let mut shift = self.settled;
        for edit in &self.edits {
            let out_at = shifted(edit.at, shift);
            if y <= out_at {
                break;
            }
            let out_end = out_at + edit.new_len();
            if y >= out_end {
                shift += edit.delta();
                continue;
            }
            return edit.at + (y - out_at).min(edit.old_len - 1);
        }
        shifted(y, -shift)
    }

    /// Append to `out` the rewritten bytes of the sender's `bytes` at offset `from`: exactly
    /// the rewritten stream between `map(from)` and `map(from + bytes.len())`.
    pub fn output(&self, from: u64, bytes: &[u8], out: &mut Vec<u8>) {
        let to = from + bytes.len() as u64;
        let plain = |out: &mut Vec<u8>, a: u64, b: u64| {
            if a < b {
                out.extend_from_slice(&bytes[(a - from) as usize..(b - from) as usize]);
            }
        };
        let mut x = from;
        for edit in &self.edits {
            if edit.end() <= x {
                continue;
            }
            if edit.at >= to {
                break;
            }
            plain(out, x, edit.at.max(x));
            x = x.max(edit.at);
            let upto = to.min(edit.end());
            let lo = (x - edit.at).min(edit.new_len());
            let hi = if upto == edit.end() {
                edit.new_len()
            } else {
                (upto - edit.at).min(edit.new_len())
            };
            out.extend_from_slice(&edit.new[lo as usize..hi as usize]);
            x = upto;
        }
        plain(out, x, to);
    }

    /// True when some edit touches the sender's bytes `[from, to)`.
    pub fn touches(&self, from: u64, to: u64) -> bool {
        self.edits.iter().any(|e| e.at < to && e.end() > from)
    }

    /// The receiver acknowledged the sender's bytes before `acked`. Edits wholly before it
    /// are kept (a late duplicate of their segments still comes out rewritten, the same
    /// bytes as the first copy) until room is needed: then they are folded into one shift,
    /// and a retransmission of bytes that old (which the receiver discards) is only shifted.
    pub fn settle(&mut self, acked: u64) {
        self.acked = self.acked.max(acked);
    }

    /// Fold the edits that end by `acked` into the settled shift.
    fn fold(&mut self, acked: u64) {
        while let Some(edit) = self.edits.front() {
            if edit.end() > acked {
                break;
            }
            self.settled += edit.delta();
            self.settled_to = edit.end();
            self.edits.pop_front();
        }
    }

    /// Write the ledger (for a restart).
    pub fn save(&self, e: &mut Encoder<'_>) -> io::Result<()> {
        e.u64(self.settled as u64)?;
        e.u64(self.settled_to)?;
        e.len(self.edits.len())?;
        for edit in &self.edits {
            e.u64(edit.at)?;
            e.u64(edit.old_len)?;
            e.bytes(&edit.new)?;
        }
        Ok(())
    }

    /// Read a ledger written by [`Ledger::save`], checking what [`Ledger::push`] checks.
    pub fn load(d: &mut Decoder<'_>) -> Result<Self, SnapshotError> {
        let settled = d.u64()? as i64;
        let settled_to = d.u64()?;
        let mut ledger = Self {
            settled,
            settled_to,
            acked: settled_to,
            edits: VecDeque::new(),
        };
        for _ in 0..d.len(MAX_EDITS, "NAT edit count")? {
            let (at, old_len) = (d.u64()?, d.u64()?);
            let new = d.bytes(MAX_LINE, "NAT edit")?;
            ledger
                .push(at, old_len, &new)
                .map_err(|_| SnapshotError::Invalid("NAT edit"))?;
        }
        Ok(ledger)
    }

    /// The edits' bytes held, for the buffer budget.
    pub fn buffered(&self) -> usize {
        self.edits.iter().map(|e| e.new.len()).sum()
    }
}

#[cfg(test)]
mod tests;
