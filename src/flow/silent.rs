//! [`Silent`]: a control connection that is no longer read, kept as a small tombstone.
//!
//! Owns: what must be remembered about a connection once its lines are no longer parsed,
//! because it is not FTP (poisoned: an HTTP request to port 21, say) or because its control
//! channel is encrypted (AUTH TLS accepted): why, and its TCP lifecycle (a FIN each way, or
//! an RST, ends it). Remembering it matters: forgetting a poisoned connection would let its
//! next segment be picked up mid-stream and read as FTP again. A tombstone is a few bytes
//! instead of a whole [`ControlFlow`](super::control::ControlFlow) with its streams.

use std::io;

use super::Direction;
use super::control::TcpState;
use super::control::snapshot::state_of;
use super::control::snapshot::state_tag;
use super::table::Tier;
use crate::config::Config;
use crate::snapshot::Decoder;
use crate::snapshot::Encoder;
use crate::snapshot::SnapshotError;
use crate::time::Duration;
use crate::wire::Control as Flags;
use crate::wire::Segment;

/// A connection no longer read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Silent {
    why: Quiet,
    state: TcpState,
    fin: [bool; 2],
}

/// Why a connection is no longer read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quiet {
    /// It is not FTP.
    Poisoned,
    /// Its control channel is TLS (it was a proven FTP session).
    Encrypted,
}

impl Silent {
    /// A tombstone for a connection in `state` with the FINs `fin` seen.
    pub fn new(why: Quiet, state: TcpState, fin: [bool; 2]) -> Self {
        Self { why, state, fin }
    }

    /// Follow one segment's TCP flags; returns true when it closed the connection. Any RST
    /// closes it: with no stream left there is no expected sequence number to check against,
    /// and a spoofed RST can only end the tracking of a connection that is not read anyway.
    pub fn handle_segment(&mut self, direction: Direction, segment: &Segment<'_>) -> bool {
        if self.state == TcpState::Closed {
            return false;
        }
        match segment.control() {
            Flags::Rst => self.state = TcpState::Closed,
            Flags::Fin => {
                self.fin[direction.index()] = true;
                self.state = if self.fin.iter().all(|f| *f) {
                    TcpState::Closed
                } else {
                    TcpState::Closing
                };
            }
            Flags::Syn | Flags::None => {}
        }
        self.state == TcpState::Closed
    }

    /// Write the tombstone.
    pub fn save(&self, e: &mut Encoder<'_>) -> io::Result<()> {
        e.u8(match self.why {
            Quiet::Poisoned => 0,
            Quiet::Encrypted => 1,
        })?;
        e.u8(state_tag(self.state))?;
        e.bool(self.fin[0])?;
        e.bool(self.fin[1])
    }

    /// Read what [`Silent::save`] wrote.
    pub fn load(d: &mut Decoder<'_>) -> Result<Self, SnapshotError> {
        let why = match d.u8()? {
            0 => Quiet::Poisoned,
            1 => Quiet::Encrypted,
            _ => return Err(SnapshotError::Invalid("tombstone")),
        };
        let state = state_of(d.u8()?)?;
        let fin = [d.bool("FIN flag")?, d.bool("FIN flag")?];
        Ok(Self { why, state, fin })
    }

    /// Why it is not read.
    pub fn why(&self) -> Quiet {
        self.why
    }

    /// The TCP state.
    pub fn state(&self) -> TcpState {
        self.state
    }

    /// The FINs seen, by direction.
    pub fn fins(&self) -> [bool; 2] {
        self.fin
    }

    /// Its eviction tier: an encrypted session was proven FTP; a poisoned one is not.
    pub fn tier(&self) -> Tier {
        match (self.state, self.why) {
            (TcpState::Closed, _) => Tier::Spent,
            (_, Quiet::Encrypted) => Tier::Proven,
            (_, Quiet::Poisoned) => Tier::Unproven,
        }
    }

    /// How long it may stay idle.
    pub fn idle_timeout(&self, config: &Config) -> Duration {
        match (self.state, self.why) {
            (TcpState::Closed, _) => config.timeouts.closed,
            (TcpState::Closing, _) => config.timeouts.closing,
            (_, Quiet::Encrypted) => config.timeouts.established,
            (_, Quiet::Poisoned) => config.timeouts.poisoned,
        }
    }
}
