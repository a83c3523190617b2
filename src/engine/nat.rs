//! The engine's side of NAT: which control connections are translated, holding back the
//! segments of unfinished lines, rewriting announcements, and the datagram each verdict
//! releases.
//!
//! Owns: the [`NatFlow`] of every translated control connection (created when its
//! translation is known, forgotten with the flow), the held datagrams' deadlines and the
//! bytes they take (bounded per connection and in all), the public port given to each
//! rewritten announcement (the announced one when its map element is free, as the kernel's
//! `nf_nat_ftp` does, else the next free one), and the scratch buffer of the current verdict.
//!
//! Order for one segment: its ACK and SACK numbers are translated back first (they speak of
//! the other direction's edited bytes) and the flow reads that form; then, if its own
//! direction is rewritten, it is either held (it ends inside a line not complete yet) or
//! released with its sequence number shifted and its lines edited, after the held segments
//! its bytes completed. A line partly released before it was complete cannot be rewritten:
//! its announcement is refused (`docs/nat.md`).

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::collections::HashSet;
use std::net::IpAddr;
use std::num::NonZeroU16;

use crate::action::Action;
use crate::action::Release;
use crate::action::Verdict;
use crate::config::NatMode;
use crate::expect::DataKey;
use crate::expect::NatMapping;
use crate::flow::Control;
use crate::flow::Direction;
use crate::flow::FlowKey;
use crate::flow::Tracked;
use crate::ftp::Trigger;
use crate::nat::Translation;
use crate::nat::flow::Held;
use crate::nat::flow::HeldId;
use crate::nat::flow::NatFlow;
use crate::nat::text;
use crate::policy::Reason;
use crate::time::Instant;
use crate::wire;
use crate::wire::Datagram;
use crate::wire::Segment;

use super::Engine;

/// How many ports after the announced one are tried for a free public face.
const PORT_TRIES: u16 = 256;

/// Every translated control connection, and the scratch of the current verdict.
#[derive(Debug, Default)]
pub(super) struct NatTable {
    flows: HashMap<FlowKey, NatFlow>,
    /// Connections conntrack said are not translated (a key each, so that an untranslated
    /// connection costs little and is looked up once).
    untranslated: HashSet<FlowKey>,
    /// Held datagrams by deadline.
    deadlines: BTreeMap<(Instant, HeldId), FlowKey>,
    held_bytes: usize,
    next_held: u64,
    /// The datagram the current `Verdict::Rewritten` releases.
    pub(super) rewritten: Vec<u8>,
    /// The ACK-translated form of the current datagram.
    acked: Vec<u8>,
    /// The current segment's direction, sequence number and payload (announcements may
    /// need its bytes).
    current: Option<(FlowKey, Direction, wire::SeqNumber, Vec<u8>)>,
}

impl NatTable {
    /// Control connections with a known translation.
    pub(super) fn len(&self) -> usize {
        self.flows.len()
    }

    /// Every translated connection (for a snapshot).
    pub(super) fn iter(&self) -> impl Iterator<Item = (&FlowKey, &NatFlow)> {
        self.flows.iter()
    }

    /// Take over a restored connection's NAT state.
    pub(super) fn adopt(&mut self, key: FlowKey, nat: NatFlow) {
        self.flows.insert(key, nat);
    }

    /// The earliest deadline of a held datagram.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.keys().next().map(|(at, _)| *at)
    }
}

impl Engine {
    /// With NAT on: the control connection `datagram` belongs to, if its translation is not
    /// known yet and the shell should look it up (conntrack) before handing the datagram
    /// over. Only segments with payload ask: by then the connection's conntrack entry exists.
    pub fn wants_translation(&self, datagram: &[u8]) -> Option<Control> {
        if !matches!(self.config.nat.mode, NatMode::Conntrack(_)) {
            return None;
        }
        let Ok(Datagram::Tcp(segment)) = wire::parse(datagram) else {
            return None;
        };
        if segment.payload().is_empty() {
            return None;
        }
        let control = self.control_of(&segment)?;
        let key = FlowKey::new(segment.src(), segment.dst());
        let reading = matches!(self.flows.get(&key), Some(Tracked::Reading(_)));
        let known = self.nat.flows.contains_key(&key) || self.nat.untranslated.contains(&key);
        (reading && !known).then_some(control)
    }

    /// The shell learned how `control` is translated (`Translation::NONE`: not at all).
    pub fn set_translation(&mut self, control: Control, translation: Translation) {
        let key = FlowKey::new(control.client, control.server);
        if self.flows.get(&key).is_none() {
            return;
        }
        if translation.is_none() && !self.nat.flows.contains_key(&key) {
            self.nat.untranslated.insert(key);
            return;
        }
        self.nat.untranslated.remove(&key);
        let nat = self.nat.flows.entry(key).or_default();
        if nat.translation != translation {
            log::debug!("{control}: translated {translation:?}");
            self.stats.nat_translated += u64::from(!translation.is_none());
            nat.translation = translation;
        }
    }

    /// The datagram a `Verdict::Rewritten` releases.
    pub fn rewritten(&self) -> &[u8] {
        &self.nat.rewritten
    }

    /// Control connections whose translation is known.
    pub fn nat_flow_count(&self) -> usize {
        self.nat.len()
    }

    /// The NAT state of a connection, known from the static pairs if it is not yet.
    fn nat_flow(&mut self, key: FlowKey, control: &Control) -> Option<&mut NatFlow> {
        if !self.nat.flows.contains_key(&key) {
            let translation = self.config.nat.map()?.translation(control);
            if translation.is_none() {
                return None;
            }
            self.stats.nat_translated += 1;
            self.nat.flows.insert(key, NatFlow::new(translation));
        }
        self.nat
            .flows
            .get_mut(&key)
            .filter(|nat| !nat.translation.is_none())
    }

    /// Drive a segment of a tracked flow with NAT on.
    pub(super) fn drive_nat(
        &mut self,
        key: FlowKey,
        control: Control,
        segment: &Segment<'_>,
        datagram: &[u8],
    ) -> Verdict {
        let direction = control.direction_from(segment.src());
        let mut acked = std::mem::take(&mut self.nat.acked);
        acked.clear();
        let Some(nat) = self.nat_flow(key, &control) else {
            self.nat.acked = acked;
            return self.drive(key, control, segment);
        };
        let ack_changed = nat.acknowledging(direction, segment, datagram, &mut acked);
        let rewrites = nat.rewrites(direction);
        let verdict = if ack_changed {
            self.stats.nat_acks_shifted += 1;
            match wire::parse(&acked) {
                Ok(Datagram::Tcp(shifted)) => self.drive_rewritable(key, control, &shifted, &acked),
                _ => self.drive(key, control, segment),
            }
        } else if rewrites {
            self.drive_rewritable(key, control, segment, datagram)
        } else {
            self.drive(key, control, segment)
        };
        if ack_changed && verdict == Verdict::Accept {
            self.nat.rewritten.clear();
            self.nat.rewritten.extend_from_slice(&acked);
            self.nat.acked = acked;
            return Verdict::Rewritten;
        }
        self.nat.acked = acked;
        verdict
    }

    /// Drive `segment` (whose ACK is already in its receiver's terms); if its direction is
    /// rewritten, hold it or release it edited.
    fn drive_rewritable(
        &mut self,
        key: FlowKey,
        control: Control,
        segment: &Segment<'_>,
        datagram: &[u8],
    ) -> Verdict {
        let direction = control.direction_from(segment.src());
        let rewrites = self
            .nat
            .flows
            .get(&key)
            .is_some_and(|nat| nat.rewrites(direction));
        if rewrites {
            self.nat.current = Some((key, direction, segment.seq(), segment.payload().to_vec()));
        }
        let verdict = self.drive(key, control, segment);
        self.nat.current = None;
        if !rewrites || verdict != Verdict::Accept {
            return verdict;
        }
        self.hold_or_release(key, direction, segment, datagram)
    }

    fn hold_or_release(
        &mut self,
        key: FlowKey,
        direction: Direction,
        segment: &Segment<'_>,
        datagram: &[u8],
    ) -> Verdict {
        let boundary = match self.flows.get(&key) {
            Some(Tracked::Reading(flow)) => flow.line_boundary(direction),
            _ => None,
        };
        let (hold_bytes, hold_total, hold_time) = (
            self.config.nat.hold_bytes,
            self.config.nat.hold_bytes_total,
            self.config.nat.hold_time,
        );
        let now = self.now;
        let total_held = self.nat.held_bytes;
        let Some(nat) = self.nat.flows.get_mut(&key) else {
            return Verdict::Accept;
        };
        let side = &mut nat.sides[direction.index()];
        let from = side.offset(segment.seq());
        let to = from + segment.payload().len() as u64;
        let complete_to = boundary.map(|seq| side.offset(seq));
        let incomplete = to > from && complete_to.is_some_and(|c| to > c);
        if incomplete {
            let fits = nat.held_bytes() + datagram.len() <= hold_bytes
                && total_held + datagram.len() <= hold_total;
            if fits {
                self.nat.next_held += 1;
                let id = HeldId(self.nat.next_held);
                let deadline = now + hold_time;
                nat.held.push(Held {
                    id,
                    datagram: datagram.to_vec(),
                    direction,
                    range: (from, to),
                    deadline,
                });
                self.nat.held_bytes += datagram.len();
                self.nat.deadlines.insert((deadline, id), key);
                self.stats.nat_held += 1;
                return Verdict::Hold(id);
            }
            self.stats.nat_hold_overflow += 1;
            log::debug!("hold bound reached; releasing an unfinished line as it is");
            self.release_held(key, None);
        } else {
            self.release_held(key, complete_to);
        }
        let Some(nat) = self.nat.flows.get_mut(&key) else {
            return Verdict::Accept;
        };
        let mut out = std::mem::take(&mut self.nat.rewritten);
        out.clear();
        let changed = nat.outgoing(direction, segment, datagram, &mut out);
        self.nat.rewritten = out;
        if changed {
            self.stats.nat_segments_rewritten += 1;
            Verdict::Rewritten
        } else {
            Verdict::Accept
        }
    }

    /// Release the held datagrams of `key` that end by `complete_to` (all of them if
    /// `None`), oldest first, each rewritten as far as the ledger says.
    fn release_held(&mut self, key: FlowKey, complete_to: Option<u64>) {
        let Some(nat) = self.nat.flows.get_mut(&key) else {
            return;
        };
        let (ready, kept): (Vec<Held>, Vec<Held>) = std::mem::take(&mut nat.held)
            .into_iter()
            .partition(|h| complete_to.is_none_or(|c| h.range.1 <= c));
        nat.held = kept;
        for held in ready {
            self.nat.held_bytes -= held.datagram.len();
            self.nat.deadlines.remove(&(held.deadline, held.id));
            let Some(nat) = self.nat.flows.get_mut(&key) else {
                return;
            };
            let mut out = Vec::new();
            let rewritten = match wire::parse(&held.datagram) {
                Ok(Datagram::Tcp(segment)) => {
                    nat.outgoing(held.direction, &segment, &held.datagram, &mut out)
                }
                _ => false,
            };
            let datagram = if rewritten { out } else { held.datagram };
            self.stats.nat_released += 1;
            self.actions.push_back(Action::Release(Release {
                id: held.id,
                datagram,
                rewritten,
            }));
        }
    }

    /// Let go of held datagrams whose time is up (their lines stay unrewritable).
    pub(super) fn expire_held(&mut self) {
        while let Some((&(at, id), &key)) = self.nat.deadlines.iter().next() {
            if at > self.now {
                break;
            }
            self.nat.deadlines.remove(&(at, id));
            self.stats.nat_hold_expired += 1;
            self.release_held(key, None);
        }
    }

    /// Release every held datagram (the daemon stops; a replay ends), queued as `Release`
    /// actions in arrival order per connection.
    pub fn release_all_held(&mut self) {
        let keys: Vec<FlowKey> = self
            .nat
            .flows
            .iter()
            .filter(|(_, nat)| !nat.held.is_empty())
            .map(|(key, _)| *key)
            .collect();
        for key in keys {
            self.release_held(key, None);
        }
    }

    /// A flow is forgotten: release what it holds, then forget its NAT state.
    pub(super) fn forget_nat(&mut self, key: FlowKey) {
        self.nat.untranslated.remove(&key);
        if self.nat.flows.contains_key(&key) {
            self.release_held(key, None);
            self.nat.flows.remove(&key);
        }
    }

    /// An announcement passed the policy as `data`: if its sender is translated, rewrite its
    /// line (`line` in stream offsets) to name the public face, and say which face. `Ok(None)`
    /// when nothing is translated.
    pub(super) fn rewrite_announcement(
        &mut self,
        key: FlowKey,
        direction: Direction,
        trigger: Trigger,
        data: &DataKey,
        line: (u64, u64),
    ) -> Result<Option<NatMapping>, Reason> {
        let Some(nat) = self.nat.flows.get(&key) else {
            return Ok(None);
        };
        if !nat.rewrites(direction) {
            return Ok(None);
        }
        let translation = nat.translation;
        let public = match direction {
            Direction::Original => translation.client_public,
            Direction::Reply => translation.server_public,
        };
        let Some(public) = public.filter(|p| p.is_ipv4() == data.dst.is_ipv4()) else {
            return Ok(None);
        };
        let start = match self.flows.get(&key) {
            Some(Tracked::Reading(flow)) => flow.seq_at(direction, line.0),
            _ => None,
        };
        let Some(start) = start else {
            return Err(Reason::NatUnrewritable);
        };
        let port = self.public_port(data, public);
        let current = self.nat.current.take();
        let result = self.edit_line(
            key,
            direction,
            trigger,
            (start, line.1 - line.0),
            public,
            port,
            current.as_ref(),
        );
        self.nat.current = current;
        result.map(|()| {
            self.stats.nat_rewrites += 1;
            Some(NatMapping { public, port })
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn edit_line(
        &mut self,
        key: FlowKey,
        direction: Direction,
        trigger: Trigger,
        (start, len): (wire::SeqNumber, u64),
        public: IpAddr,
        port: NonZeroU16,
        current: Option<&(FlowKey, Direction, wire::SeqNumber, Vec<u8>)>,
    ) -> Result<(), Reason> {
        let Some(nat) = self.nat.flows.get_mut(&key) else {
            return Err(Reason::NatUnrewritable);
        };
        let at = nat.sides[direction.index()].offset(start);
        if at < nat.sides[direction.index()].released {
            self.stats.nat_too_late += 1;
            return Err(Reason::NatUnrewritable);
        }
        let raw = gather(nat, direction, current, at, len).ok_or(Reason::NatUnrewritable)?;
        let new =
            text::rewrite(&raw, trigger, public, port.get()).ok_or(Reason::NatUnrewritable)?;
        nat.sides[direction.index()]
            .ledger
            .push(at, len, &new)
            .map_err(|_| Reason::NatUnrewritable)
    }

    /// The public port for `data` behind `public`: its own port if that face is free, else
    /// the next free one.
    fn public_port(&self, data: &DataKey, public: IpAddr) -> NonZeroU16 {
        if let Some(nat) = self
            .expectations
            .nat_of(data)
            .filter(|n| n.public == public)
        {
            return nat.port;
        }
        let first = data.dport.get();
        for step in 0..PORT_TRIES {
            let port = first.wrapping_add(step).max(1024);
            if !self.expectations.face_taken(data.src, public, port, data) {
                return NonZeroU16::new(port).unwrap_or(data.dport);
            }
        }
        data.dport
    }
}

/// The raw bytes of the line at sender offset `at`, `len` long, from the held datagrams and
/// the current segment; `None` if some byte is missing.
fn gather(
    nat: &mut NatFlow,
    direction: Direction,
    current: Option<&(FlowKey, Direction, wire::SeqNumber, Vec<u8>)>,
    at: u64,
    len: u64,
) -> Option<Vec<u8>> {
    let mut line = vec![None; usize::try_from(len).ok()?];
    // The held datagrams are read while their direction's side unwraps sequence numbers.
    let NatFlow { sides, held, .. } = nat;
    let side = &mut sides[direction.index()];
    let mut place = |seq: wire::SeqNumber, payload: &[u8]| {
        let from = side.offset(seq);
        for (i, byte) in payload.iter().enumerate() {
            let x = from + i as u64;
            if x >= at && x < at + len {
                line[(x - at) as usize].get_or_insert(*byte);
            }
        }
    };
    for held in held.iter().filter(|h| h.direction == direction) {
        if let Ok(Datagram::Tcp(segment)) = wire::parse(&held.datagram) {
            place(segment.seq(), segment.payload());
        }
    }
    if let Some((_, d, seq, payload)) = current {
        if *d == direction {
            place(*seq, payload);
        }
    }
    line.into_iter().collect()
}
