//! A [`Session`] written out and read back (see `crate::snapshot`): its state, the queue of
//! unanswered commands, held lines, a multi-line reply in progress, and its counters. What
//! is read is checked against the session's [`Limits`] and the line cap.

use std::collections::VecDeque;
use std::io;

use super::AnnouncementId;
use super::HeldLine;
use super::Limits;
use super::Pending;
use super::Session;
use super::State;
use super::replies::Multi;
use crate::snapshot::Decoder;
use crate::snapshot::Encoder;
use crate::snapshot::SnapshotError;

impl Session {
    /// Write the whole session.
    pub fn save(&self, e: &mut Encoder<'_>) -> io::Result<()> {
        e.u8(state_tag(self.state))?;
        e.bool(self.vetted)?;
        e.bool(self.answered)?;
        e.len(self.pending.len())?;
        for pending in &self.pending {
            save_pending(e, *pending)?;
        }
        e.u32(self.lost)?;
        e.len(self.held.len())?;
        for line in &self.held {
            e.bytes(&line.text)?;
            e.u64(line.raw.0)?;
            e.u64(line.raw.1)?;
            e.bool(line.overlong)?;
        }
        e.bool(self.multi.is_some())?;
        if let Some(multi) = &self.multi {
            multi.save(e)?;
        }
        e.bool(self.epsv_all)?;
        e.u64(self.next_id)
    }

    /// Read what [`Session::save`] wrote, within `limits` and lines of at most `max_line`.
    pub fn load(
        d: &mut Decoder<'_>,
        limits: Limits,
        max_line: usize,
    ) -> Result<Self, SnapshotError> {
        let state = state_of(d.u8()?)?;
        let vetted = d.bool("session flag")?;
        let answered = d.bool("session flag")?;
        let count = d.len(limits.max_pending, "command queue")?;
        let pending = (0..count)
            .map(|_| load_pending(d))
            .collect::<Result<VecDeque<_>, _>>()?;
        let lost = d.u32()?;
        let held = load_held(d, limits, max_line)?;
        let multi = if d.bool("multi-line flag")? {
            Some(Multi::load(d, limits.max_reply_lines, max_line)?)
        } else {
            None
        };
        let epsv_all = d.bool("EPSV ALL flag")?;
        let next_id = d.u64()?;
        Ok(Self {
            state,
            vetted,
            answered,
            pending,
            lost,
            held,
            multi,
            epsv_all,
            next_id,
            limits,
        })
    }
}

fn load_held(
    d: &mut Decoder<'_>,
    limits: Limits,
    max_line: usize,
) -> Result<Vec<HeldLine>, SnapshotError> {
    let count = d.len(limits.max_held_lines, "held lines")?;
    let mut held = Vec::with_capacity(count);
    let mut bytes = 0;
    for _ in 0..count {
        let text = d.bytes(max_line, "held line")?;
        bytes += text.len();
        let raw = (d.u64()?, d.u64()?);
        let overlong = d.bool("overlong flag")?;
        held.push(HeldLine {
            text,
            raw,
            overlong,
        });
    }
    if bytes > limits.max_held_bytes {
        return Err(SnapshotError::Invalid("held lines"));
    }
    Ok(held)
}

fn state_tag(state: State) -> u8 {
    match state {
        State::AwaitGreeting => 0,
        State::Open => 1,
        State::Closed => 2,
        State::Encrypted => 3,
        State::Poisoned => 4,
    }
}

fn state_of(tag: u8) -> Result<State, SnapshotError> {
    Ok(match tag {
        0 => State::AwaitGreeting,
        1 => State::Open,
        2 => State::Closed,
        3 => State::Encrypted,
        4 => State::Poisoned,
        _ => return Err(SnapshotError::Invalid("session state")),
    })
}

fn save_pending(e: &mut Encoder<'_>, pending: Pending) -> io::Result<()> {
    let (tag, id, forbidden) = match pending {
        Pending::Active(id) => (0, id.0, false),
        Pending::Auth => (1, 0, false),
        Pending::EpsvAll => (2, 0, false),
        Pending::Other => (3, 0, false),
        Pending::Passive { id, forbidden } => (4, id.0, forbidden),
        Pending::Quit => (5, 0, false),
        Pending::Rein => (6, 0, false),
        Pending::Transfer(id) => (7, id.0, false),
    };
    e.u8(tag)?;
    e.u64(id)?;
    e.bool(forbidden)
}

fn load_pending(d: &mut Decoder<'_>) -> Result<Pending, SnapshotError> {
    let tag = d.u8()?;
    let id = AnnouncementId(d.u64()?);
    let forbidden = d.bool("passive flag")?;
    Ok(match tag {
        0 => Pending::Active(id),
        1 => Pending::Auth,
        2 => Pending::EpsvAll,
        3 => Pending::Other,
        4 => Pending::Passive { id, forbidden },
        5 => Pending::Quit,
        6 => Pending::Rein,
        7 => Pending::Transfer(id),
        _ => return Err(SnapshotError::Invalid("pending command")),
    })
}
