//! [`Session`]: one FTP control conversation, line by line, in both directions.
//!
//! Owns:
//! - deciding whether the conversation is FTP at all: the server's first reply must be a
//!   `220` greeting (after an optional `120`; RFC 959 §5.4) and the client's first line a known
//!   FTP command. Anything else poisons the session: nothing is parsed from it again (this is
//!   what stops a `PORT` line hidden inside an HTTP request, NAT-slipstreaming style);
//! - matching replies to the commands they answer, in order (pipelining, RFC 959 §4.2), with
//!   multi-line replies (`ddd-` ... `ddd `) read as one reply;
//! - what each answer means: a `227`/`228`/`229` announces a passive endpoint only if a
//!   passive command is waiting for it (a 229 may answer PASV and a 227 EPSV: servers do that);
//!   a 4yz/5yz answer to PORT/EPRT/LPRT cancels its announcement; `234` to AUTH means the
//!   channel is encrypted from then on (RFC 4217 §4); `220` to REIN and `221` to QUIT reset the
//!   session; an accepted `EPSV ALL` forbids every other way to set up a data connection
//!   (RFC 2428 §4);
//! - client lines that arrive before the greeting or while an AUTH answer is awaited are held
//!   (bounded) and judged once the answer is known.
//!
//! The state is a plain enum rather than one type per state: most of the session's data (the
//! queue of unanswered commands) is shared by every state, and the transitions are few.
//! Does not own: whether an announced endpoint is acceptable (see `policy`).

use std::collections::VecDeque;
use std::num::NonZeroU16;

use super::DataEndpoint;
use super::Error;
use super::ReplyCode;
use super::Trigger;
use super::command;
use super::command::Command;
use super::reply;
use crate::stream::lines::Line;
use replies::Multi;

/// Identifies an announcement within one session: the index of the command that set up the
/// data connection (the PORT/EPRT/LPRT itself, or the PASV/EPSV/LPSV a reply answers).
/// Command indexes grow in the order the client sent them, pipelined or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AnnouncementId(pub u64);

/// What an announcement names: a full endpoint, or only a port (229 names no address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Announced {
    /// Address and port.
    Endpoint(DataEndpoint),
    /// Only a port; the address is the control connection's server (RFC 2428 §3).
    Port(NonZeroU16),
}

/// What the conversation did, for the engine to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A data endpoint was announced.
    Announce {
        /// Identifies this announcement (to cancel it later).
        id: AnnouncementId,
        /// The command or reply that announced it.
        trigger: Trigger,
        /// What was announced.
        announced: Announced,
        /// Stream offsets of the announcing line in its direction.
        line: (u64, u64),
    },
    /// The server refused the command that made announcement `id`.
    Cancel(AnnouncementId),
    /// The control channel is encrypted from here on; nothing more can be read.
    Encrypt,
    /// A line that should carry an endpoint does not.
    Malformed(Trigger, Error),
    /// The conversation is not FTP; nothing more is parsed.
    Poison(Poison),
    /// An announcement the session itself refuses.
    Refuse(Trigger, Refusal),
    /// The session was reinitialised (REIN) or is closing (QUIT): announcements are void.
    Reset,
    /// The transfer command with this index completed (2yz): its data connection came and
    /// went, so every announcement set up by an earlier command is spent.
    Transferred(AnnouncementId),
}

/// Why a session was poisoned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Poison {
    /// The client's first line is not an FTP command.
    ClientNotFtp,
    /// Too many client lines were sent before the greeting or an AUTH answer.
    HeldOverflow,
    /// The server's first reply is not an FTP greeting.
    ServerNotFtp,
}

impl Poison {
    /// The name used in logs and JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ClientNotFtp => "client-not-ftp",
            Self::HeldOverflow => "held-overflow",
            Self::ServerNotFtp => "server-not-ftp",
        }
    }
}

/// Why the session refused an announcement on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `EPSV ALL` was accepted earlier (RFC 2428 §4).
    EpsvAll,
    /// A passive reply that answers no passive command.
    Unsolicited,
}

/// Bounds on what a session holds.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Commands awaiting a reply (pipelining depth); the oldest is forgotten past it.
    pub max_pending: usize,
    /// Client lines held before the greeting or an AUTH answer; the session is poisoned past it.
    pub max_held_lines: usize,
    /// Bytes of held client lines.
    pub max_held_bytes: usize,
    /// Lines of a multi-line 227/228/229 reply kept to search for the endpoint.
    pub max_reply_lines: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_pending: 64,
            max_held_lines: 32,
            max_held_bytes: 8192,
            max_reply_lines: 8,
        }
    }
}

/// One FTP control conversation.
#[derive(Debug, Clone)]
pub struct Session {
    state: State,
    vetted: bool,
    /// A well-formed server reply answered something we saw (the greeting, or a command).
    answered: bool,
    pending: VecDeque<Pending>,
    lost: u32,
    held: Vec<HeldLine>,
    multi: Option<Multi>,
    epsv_all: bool,
    next_id: u64,
    limits: Limits,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitGreeting,
    Open,
    Closed,
    Encrypted,
    Poisoned,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    Active(AnnouncementId),
    Auth,
    EpsvAll,
    Other,
    Passive {
        id: AnnouncementId,
        forbidden: bool,
    },
    Quit,
    Rein,
    /// A transfer command, with its own index.
    Transfer(AnnouncementId),
}

#[derive(Debug, Clone)]
struct HeldLine {
    text: Vec<u8>,
    raw: (u64, u64),
    overlong: bool,
}

impl Session {
    /// A session seen from its first byte: it must prove to be FTP before anything is parsed.
    pub fn new(limits: Limits) -> Self {
        Self {
            state: State::AwaitGreeting,
            vetted: false,
            answered: false,
            pending: VecDeque::new(),
            lost: 0,
            held: Vec::new(),
            multi: None,
            epsv_all: false,
            next_id: 0,
            limits,
        }
    }

    /// A session picked up in the middle: the greeting is not required, and unanswered
    /// commands may have been missed. The first client line must still be an FTP command.
    pub fn picked_up(limits: Limits) -> Self {
        Self {
            state: State::Open,
            lost: 1,
            ..Self::new(limits)
        }
    }

    /// Take one client-to-server line.
    pub fn handle_client_line(&mut self, line: Line<'_>, events: &mut Vec<Event>) {
        if !self.is_parsing() || self.state == State::Closed {
            return;
        }
        if !self.vetted {
            self.vetted = true;
            if classify(line) == Command::Unknown {
                self.poison(Poison::ClientNotFtp, events);
                return;
            }
        }
        if self.state == State::AwaitGreeting || self.awaits_auth() {
            self.hold(line, events);
        } else {
            self.command(line, events);
        }
    }

    /// Take one server-to-client line.
    pub fn handle_server_line(&mut self, line: Line<'_>, events: &mut Vec<Event>) {
        if self.is_parsing() {
            self.server_line(line, events);
        }
    }

    /// Client bytes were lost: commands may be missing, so replies may come unannounced.
    pub fn handle_client_gap(&mut self) {
        self.lost = self.lost.saturating_add(1);
    }

    /// Server bytes were lost: replies may be missing, so the command queue is unreliable.
    pub fn handle_server_gap(&mut self) {
        let unanswered = u32::try_from(self.pending.len()).unwrap_or(u32::MAX);
        self.lost = self.lost.saturating_add(unanswered);
        self.pending.clear();
        self.multi = None;
    }

    /// True once the conversation has shown itself to be FTP: the client's first line was a
    /// known command, and the server answered something we saw (its `220` greeting for a
    /// session seen from its start; a reply to a command seen since a mid-stream pickup), and
    /// it has not been poisoned since. A proven session is protected from eviction.
    pub fn is_proven(&self) -> bool {
        self.vetted && self.answered && matches!(self.state, State::Open | State::Encrypted)
    }

    /// True once the session is poisoned (not FTP).
    pub fn is_poisoned(&self) -> bool {
        self.state == State::Poisoned
    }

    /// False once the session is encrypted or poisoned: its lines need not be framed any more.
    pub fn is_parsing(&self) -> bool {
        !matches!(self.state, State::Encrypted | State::Poisoned)
    }

    /// Bytes held: client lines held until the greeting or an AUTH answer, and the lines of a
    /// multi-line reply in progress.
    pub fn buffered(&self) -> usize {
        let held: usize = self.held.iter().map(|h| h.text.len()).sum();
        held + self.multi.as_ref().map_or(0, Multi::buffered)
    }

    /// Drop what is held under memory pressure: client lines held for the greeting or an
    /// AUTH answer (they count as lost commands) and the lines of a multi-line reply in
    /// progress (as if server bytes were lost). Returns the lines dropped.
    pub fn shed(&mut self) -> usize {
        let held = std::mem::take(&mut self.held).len();
        self.lost = self
            .lost
            .saturating_add(u32::try_from(held).unwrap_or(u32::MAX));
        let multi = self.multi.as_ref().map_or(0, Multi::len);
        if self.multi.is_some() {
            self.handle_server_gap();
        }
        held + multi
    }

    /// True once the server's greeting has been seen (or the session was picked up).
    pub fn is_greeted(&self) -> bool {
        !matches!(self.state, State::AwaitGreeting)
    }

    fn awaits_auth(&self) -> bool {
        self.pending.contains(&Pending::Auth)
    }

    fn hold(&mut self, line: Line<'_>, events: &mut Vec<Event>) {
        if self.held.len() >= self.limits.max_held_lines
            || self.buffered() + line.text.len() > self.limits.max_held_bytes
        {
            self.poison(Poison::HeldOverflow, events);
            return;
        }
        let text = line.text.to_vec();
        self.held.push(HeldLine {
            text,
            raw: line.raw,
            overlong: line.overlong,
        });
    }

    fn release_held(&mut self, events: &mut Vec<Event>) {
        let held = std::mem::take(&mut self.held);
        for (index, line) in held.iter().enumerate() {
            if self.awaits_auth() {
                self.held.extend(held[index..].iter().cloned());
                return;
            }
            let view = Line {
                text: &line.text,
                raw: line.raw,
                overlong: line.overlong,
            };
            self.command(view, events);
        }
    }

    fn command(&mut self, line: Line<'_>, events: &mut Vec<Event>) {
        self.next_id += 1;
        let id = AnnouncementId(self.next_id);
        let pending = match classify(line) {
            Command::Active(trigger, _) if self.epsv_all => {
                events.push(Event::Refuse(trigger, Refusal::EpsvAll));
                Pending::Other
            }
            Command::Active(trigger, endpoint) => {
                let announced = Announced::Endpoint(endpoint);
                events.push(Event::Announce {
                    id,
                    trigger,
                    announced,
                    line: line.raw,
                });
                Pending::Active(id)
            }
            Command::ActiveMalformed(trigger, error) => {
                events.push(Event::Malformed(trigger, error));
                Pending::Other
            }
            Command::Passive(verb) => Pending::Passive {
                id,
                forbidden: self.epsv_all && verb.as_str() != "EPSV",
            },
            Command::Auth => Pending::Auth,
            Command::EpsvAll => Pending::EpsvAll,
            Command::Quit => Pending::Quit,
            Command::Rein => Pending::Rein,
            Command::Transfer(_) => Pending::Transfer(id),
            Command::Ccc | Command::Other(_) | Command::Unknown => Pending::Other,
        };
        if self.pending.len() >= self.limits.max_pending {
            self.pending.pop_front();
            self.lost = self.lost.saturating_add(1);
        }
        self.pending.push_back(pending);
    }

    fn poison(&mut self, reason: Poison, events: &mut Vec<Event>) {
        self.state = State::Poisoned;
        self.held.clear();
        self.pending.clear();
        self.multi = None;
        events.push(Event::Poison(reason));
    }
}

/// The command a client line is (an over-long line keeps only its verb).
fn classify(line: Line<'_>) -> Command {
    if line.overlong {
        command::parse_overlong(line.text)
    } else {
        command::parse(line.text)
    }
}

mod replies;
mod snapshot;

#[cfg(test)]
mod tests;
