//! The server side of a [`Session`]: reply lines assembled into replies (multi-line ones
//! included, RFC 959 §4.2), the greeting, and what each reply answers.

use std::collections::VecDeque;
use std::io;

use super::Announced;
use super::AnnouncementId;
use super::Error;
use super::Event;
use super::Pending;
use super::Poison;
use super::Refusal;
use super::ReplyCode;
use super::Session;
use super::State;
use super::Trigger;
use super::reply;
use crate::snapshot::Decoder;
use crate::snapshot::Encoder;
use crate::snapshot::SnapshotError;
use crate::stream::lines::Line;

/// A multi-line reply in progress: its code, and the lines kept if it may carry an endpoint.
#[derive(Debug, Clone)]
pub(super) struct Multi {
    code: ReplyCode,
    lines: Vec<(Vec<u8>, (u64, u64))>,
}

/// A complete reply: its code and the text of its lines (the final line, then the lines kept
/// before it, in order; borrowed, so a reply costs no allocation).
struct Reply<'a> {
    code: ReplyCode,
    last: &'a [u8],
    earlier: &'a [(Vec<u8>, (u64, u64))],
    raw: (u64, u64),
    overlong: bool,
}

impl Session {
    /// One server line, outside the encrypted and poisoned states.
    pub(super) fn server_line(&mut self, line: Line<'_>, events: &mut Vec<Event>) {
        let parsed = reply::parse_line(line.text);
        if self.multi.is_some() {
            self.continue_multi(parsed, line, events);
            return;
        }
        match parsed {
            None if self.state == State::AwaitGreeting => self.poison(Poison::ServerNotFtp, events),
            None => {}
            Some(first) if first.continues => {
                let mut multi = Multi {
                    code: first.code,
                    lines: Vec::new(),
                };
                multi.keep(
                    Line {
                        text: first.text,
                        ..line
                    },
                    self.limits.max_reply_lines,
                );
                self.multi = Some(multi);
            }
            Some(last) => {
                let reply = Reply {
                    code: last.code,
                    last: last.text,
                    earlier: &[],
                    raw: line.raw,
                    overlong: line.overlong,
                };
                self.reply(reply, events);
            }
        }
    }

    /// A line inside a multi-line reply: only the same code followed by a space ends it.
    fn continue_multi(
        &mut self,
        parsed: Option<reply::Line<'_>>,
        line: Line<'_>,
        events: &mut Vec<Event>,
    ) {
        let Some(multi) = &mut self.multi else { return };
        let last = match parsed {
            Some(last) if last.code == multi.code && !last.continues => last,
            _ => return multi.keep(line, self.limits.max_reply_lines),
        };
        let kept = std::mem::take(&mut multi.lines);
        self.multi = None;
        let raw = kept
            .first()
            .map_or(line.raw, |(_, raw)| (raw.0, line.raw.1));
        self.reply(
            Reply {
                code: last.code,
                last: last.text,
                earlier: &kept,
                raw,
                overlong: line.overlong,
            },
            events,
        );
    }

    fn reply(&mut self, reply: Reply<'_>, events: &mut Vec<Event>) {
        match self.state {
            State::AwaitGreeting => self.greeting(reply.code, events),
            State::Open => self.answer(reply, events),
            State::Closed | State::Encrypted | State::Poisoned => {}
        }
    }

    fn greeting(&mut self, code: ReplyCode, events: &mut Vec<Event>) {
        match code {
            ReplyCode::SERVICE_READY_SOON => {}
            ReplyCode::SERVICE_READY => {
                self.state = State::Open;
                self.answered = true;
                self.release_held(events);
            }
            ReplyCode::NOT_AVAILABLE => self.state = State::Closed,
            _ => self.poison(Poison::ServerNotFtp, events),
        }
    }

    /// A final reply after the greeting. Replies that revoke or restrict (a 4yz/5yz to
    /// PORT, a 2yz to a transfer or to EPSV ALL) are acted on only while the queue is known
    /// to line up with the server's replies: after commands were lost, such a reply could
    /// belong to a command we never saw. Codes that answer one command only (234, 220, 221)
    /// need no queue.
    fn answer(&mut self, reply: Reply<'_>, events: &mut Vec<Event>) {
        if reply.code.is_preliminary() {
            return;
        }
        if let Some(trigger) = passive_trigger(reply.code) {
            self.passive_reply(trigger, reply, events);
            return;
        }
        let aligned = self.lost == 0;
        let command = self.pending.pop_front();
        if self.pending.is_empty() {
            // An idle session holds no queue (memory per tracked connection).
            self.pending = VecDeque::new();
        }
        if command.is_none() {
            self.lost = self.lost.saturating_sub(1);
        } else {
            self.answered = true;
        }
        if self.unique_answer(reply.code, events) {
            return;
        }
        match command {
            Some(Pending::Auth) => self.release_held(events),
            Some(Pending::Active(id)) if aligned && reply.code.is_negative() => {
                events.push(Event::Cancel(id))
            }
            Some(Pending::EpsvAll) if aligned && reply.code.is_completion() => self.epsv_all = true,
            Some(Pending::Transfer(id)) if aligned && reply.code.is_completion() => {
                events.push(Event::Transferred(id));
            }
            _ => {}
        }
    }

    /// Replies whose code answers one command only: 234 to AUTH (RFC 2228 §4; the channel is
    /// TLS from here, RFC 4217 §4), 220 to REIN and 221 to QUIT (RFC 959 §5.4). Returns true
    /// if the reply was one of those and was acted on completely.
    fn unique_answer(&mut self, code: ReplyCode, events: &mut Vec<Event>) -> bool {
        match code {
            ReplyCode::AUTH_OK => {
                self.state = State::Encrypted;
                self.held.clear();
                events.push(Event::Encrypt);
                true
            }
            ReplyCode::SERVICE_READY => {
                self.epsv_all = false;
                events.push(Event::Reset);
                true
            }
            ReplyCode::CLOSING => {
                events.push(Event::Reset);
                true
            }
            _ => false,
        }
    }

    fn passive_reply(&mut self, trigger: Trigger, reply: Reply<'_>, events: &mut Vec<Event>) {
        let (id, forbidden) = match self
            .pending
            .iter()
            .position(|p| matches!(p, Pending::Passive { .. }))
        {
            Some(index) => match self.pending.drain(..=index).next_back() {
                Some(Pending::Passive { id, forbidden }) => {
                    self.answered = true;
                    (id, forbidden)
                }
                _ => return,
            },
            // The command was missed (gap or pickup): it was sent before anything seen since.
            None if self.lost > 0 => {
                self.lost -= 1;
                (
                    AnnouncementId(self.next_id),
                    self.epsv_all && trigger != Trigger::Reply229,
                )
            }
            None => {
                events.push(Event::Refuse(trigger, Refusal::Unsolicited));
                return;
            }
        };
        if forbidden {
            events.push(Event::Refuse(trigger, Refusal::EpsvAll));
            return;
        }
        match parse_passive(trigger, &reply) {
            Ok(announced) => {
                events.push(Event::Announce {
                    id,
                    trigger,
                    announced,
                    line: reply.raw,
                });
            }
            Err(error) => events.push(Event::Malformed(trigger, error)),
        }
    }
}

impl Multi {
    /// Write the reply's code and the lines kept.
    pub(super) fn save(&self, e: &mut Encoder<'_>) -> io::Result<()> {
        e.u16(self.code.0)?;
        e.len(self.lines.len())?;
        for (text, raw) in &self.lines {
            e.bytes(text)?;
            e.u64(raw.0)?;
            e.u64(raw.1)?;
        }
        Ok(())
    }

    /// Read what [`Multi::save`] wrote: at most `max_lines` lines of at most `max_line` bytes.
    pub(super) fn load(
        d: &mut Decoder<'_>,
        max_lines: usize,
        max_line: usize,
    ) -> Result<Self, SnapshotError> {
        let code = ReplyCode(d.u16()?);
        if !(100..=599).contains(&code.0) {
            return Err(SnapshotError::Invalid("reply code"));
        }
        let count = d.len(max_lines, "multi-line reply")?;
        let mut lines = Vec::with_capacity(count);
        for _ in 0..count {
            let text = d.bytes(max_line, "reply line")?;
            lines.push((text, (d.u64()?, d.u64()?)));
        }
        Ok(Self { code, lines })
    }

    /// Bytes kept.
    pub(super) fn buffered(&self) -> usize {
        self.lines.iter().map(|(text, _)| text.len()).sum()
    }

    /// Lines kept.
    pub(super) fn len(&self) -> usize {
        self.lines.len()
    }

    /// Keep a line's text if this reply may carry an endpoint, up to `max` lines.
    fn keep(&mut self, line: Line<'_>, max: usize) {
        if passive_trigger(self.code).is_some() && self.lines.len() < max {
            self.lines.push((line.text.to_vec(), line.raw));
        }
    }
}

fn passive_trigger(code: ReplyCode) -> Option<Trigger> {
    match code {
        ReplyCode::PASSIVE => Some(Trigger::Reply227),
        ReplyCode::LONG_PASSIVE => Some(Trigger::Reply228),
        ReplyCode::EXTENDED_PASSIVE => Some(Trigger::Reply229),
        _ => None,
    }
}

/// The endpoint of a passive reply: the final line is searched first, then the earlier lines
/// of a multi-line reply in order.
fn parse_passive(trigger: Trigger, reply: &Reply<'_>) -> Result<Announced, Error> {
    if reply.overlong && reply.earlier.is_empty() {
        return Err(Error::Overlong);
    }
    let mut first_error = None;
    let earlier = reply.earlier.iter().map(|(text, _)| text.as_slice());
    for text in std::iter::once(reply.last).chain(earlier) {
        let parsed = match trigger {
            Trigger::Reply229 => reply::extended_passive_229(text).map(Announced::Port),
            Trigger::Reply228 => reply::long_passive_228(text).map(Announced::Endpoint),
            _ => reply::passive_227(text).map(Announced::Endpoint),
        };
        match parsed {
            Ok(announced) => return Ok(announced),
            Err(e) => first_error = first_error.or(Some(e)),
        }
    }
    Err(first_error.unwrap_or(Error::Malformed("address")))
}
