//! The `engine` target: the whole [`Engine`] fed the packets of a scripted FTP conversation
//! (see [`script`]), built with [`Conversation`], through a network that delivers, reorders,
//! duplicates, drops and damages them, with and without NAT (static `--nat-map` pairs for the
//! client, the server or both), with time passing, failed installs and restarts.
//!
//! Invariants, after every call into the engine: never a panic; the expectations stay within
//! the per-connection, per-client and total bounds; every `Install` of the batch not revoked in
//! it is what the engine holds for that key, and the engine holds nothing it did not announce
//! (the kernel set modelled from the actions, less what timed out, equals the engine's table);
//! `Drop` only when unjudged packets are dropped, `Hold`/`Rewritten` only with NAT; every
//! released datagram that differs from its input parses as TCP and keeps a right checksum
//! right; every held datagram is released exactly once (at the latest when the engine stops).

mod script;
mod setup;

use std::collections::HashMap;
use std::net::IpAddr;

use arbitrary::Arbitrary;
use arbitrary::Unstructured;

use self::script::Conn;
use self::script::End;
use self::script::Setup;
use self::script::Step;
use self::setup::Addresses;
use self::setup::config;
use self::setup::replay_config;
use crate::action::Action;
use crate::action::Verdict;
use crate::config::Config;
use crate::config::Unjudged;
use crate::engine::Engine;
use crate::expect::DataKey;
use crate::expect::Expectation;
use crate::testkit::conversation::Conversation;
use crate::testkit::conversation::Side;
use crate::time::Duration;
use crate::time::Instant;
use crate::wire;
use crate::wire::Datagram;

/// Steps of one script at most (a run stays fast).
const MAX_STEPS: usize = 256;
/// Packets in flight at most (older ones are delivered first).
const MAX_IN_FLIGHT: usize = 32;

/// The harness (see the module doc). The first byte's low bit picks the input's form: a
/// script decoded with `arbitrary` (0), or datagrams as they were captured (1, see
/// [`replay`]), which is how the project's captures seed the corpus.
pub fn engine(data: &[u8]) {
    let Some((first, rest)) = data.split_first() else {
        return;
    };
    if first & 1 == 1 {
        replay(rest);
        return;
    }
    let mut u = Unstructured::new(rest);
    let Ok(setup) = Setup::arbitrary(&mut u) else {
        return;
    };
    let addresses = Addresses::of(&setup);
    let config = config(&setup, &addresses);
    let mut world = World::new(config, addresses, setup.isns);
    for _ in 0..MAX_STEPS {
        if u.is_empty() {
            break;
        }
        let Ok(step) = Step::arbitrary(&mut u) else {
            break;
        };
        world.step(step);
    }
    world.finish();
}

/// Datagrams as captured: a flags byte (bit 0: the client 198.51.100.2 is behind NAT, bit 1:
/// the server 203.0.113.2 is, bit 2: loose policy, bit 3: small bounds), then records of a
/// time step in milliseconds (one byte), a length (two bytes, little-endian) and a datagram.
fn replay(data: &[u8]) {
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let config = replay_config(flags);
    let addresses = Addresses {
        client: IpAddr::from([198, 51, 100, 2]),
        server: IpAddr::from([203, 0, 113, 2]),
    };
    let mut world = World::new(config, addresses, (1000, 5000));
    for _ in 0..MAX_STEPS {
        let [step, a, b, tail @ ..] = rest else {
            break;
        };
        let len = usize::from(u16::from_le_bytes([*a, *b])).min(tail.len());
        let (datagram, after) = tail.split_at(len);
        world.wait(Duration::from_millis(u64::from(*step)));
        world.handle(datagram);
        rest = after;
    }
    world.finish();
}

/// The engine, the two conversations, the network between them, and the model of the set.
struct World {
    engine: Engine,
    config: Config,
    conversations: [Option<Talk>; 2],
    addresses: Addresses,
    isns: (u32, u32),
    in_flight: Vec<Vec<u8>>,
    now: Instant,
    /// The kernel set as the actions describe it.
    model: HashMap<DataKey, Expectation>,
    /// Held datagrams: whether each input's checksum was right.
    held: HashMap<u64, Option<bool>>,
    /// Keys installed by the last packet, while the next call may report them failed.
    last_installs: Vec<DataKey>,
}

/// One conversation and every byte each end sent (for retransmissions).
struct Talk {
    conversation: Conversation,
    sent: [Vec<u8>; 2],
}

impl World {
    fn new(config: Config, addresses: Addresses, isns: (u32, u32)) -> Self {
        Self {
            engine: Engine::new(config.clone()),
            config,
            conversations: [None, None],
            addresses,
            isns,
            in_flight: Vec::new(),
            now: Instant::from_micros(1_000_000),
            model: HashMap::new(),
            held: HashMap::new(),
            last_installs: Vec::new(),
        }
    }

    fn step(&mut self, step: Step) {
        match step {
            Step::Handshake(conn) => self.talk(conn, |t| {
                t.conversation.handshake();
            }),
            Step::Send {
                conn,
                end,
                line,
                cuts,
            } => {
                let own = self.addresses.of_end(end);
                let bytes = line.render(own);
                let cuts: Vec<usize> = cuts.iter().map(|&c| usize::from(c)).collect();
                self.talk(conn, |t| t.send(end, &bytes, &cuts));
            }
            Step::Raw { conn, end, bytes } => {
                let bytes = &bytes[..bytes.len().min(1400)];
                self.talk(conn, |t| t.send(end, bytes, &[]));
            }
            Step::Retransmit {
                conn,
                end,
                back,
                len,
            } => self.talk(conn, |t| t.retransmit(end, back, len)),
            Step::Ahead {
                conn,
                end,
                skip,
                bytes,
            } => self.talk(conn, |t| {
                let bytes = &bytes[..bytes.len().min(1400)];
                let segment = t.conversation.segment_at(side(end), i64::from(skip), bytes);
                t.conversation.emit(segment);
            }),
            Step::Lose { conn, end, n } => self.talk(conn, |t| {
                t.conversation.advance(side(end), usize::from(n));
                t.sent[end as usize].extend(std::iter::repeat_n(0, usize::from(n)));
            }),
            Step::Ack(conn, end) => self.talk(conn, |t| {
                t.conversation.ack(side(end));
            }),
            Step::Fin(conn, end) => self.talk(conn, |t| {
                t.conversation.fin(side(end));
            }),
            Step::Rst(conn, end) => self.talk(conn, |t| {
                t.conversation.rst(side(end));
            }),
            Step::Deliver(i) => self.deliver(usize::from(i)),
            Step::Duplicate(i) => {
                if let Some(packet) = self.pick(usize::from(i)).cloned() {
                    self.handle(&packet);
                }
            }
            Step::Drop(i) => {
                if !self.in_flight.is_empty() {
                    let i = usize::from(i) % self.in_flight.len();
                    self.in_flight.remove(i);
                }
            }
            Step::Damage { packet, at, xor } => {
                let len = self.in_flight.len();
                if let Some(bytes) = self.in_flight.get_mut(usize::from(packet) % len.max(1)) {
                    if let Some(byte) = bytes.get_mut(usize::from(at)) {
                        *byte ^= xor;
                    }
                }
            }
            Step::Flush => self.flush(),
            Step::Wait(ms) => self.wait(Duration::from_millis(u64::from(ms))),
            Step::WaitLong(s) => self.wait(Duration::from_secs(u64::from(s))),
            Step::InstallError => {
                let keys = std::mem::take(&mut self.last_installs);
                if !keys.is_empty() {
                    self.engine.handle_install_error(self.now, &keys);
                    self.drain(None);
                }
            }
            Step::Restart => self.restart(),
        }
    }

    /// Run `f` on a conversation (started on first use), then put its packets in flight.
    fn talk(&mut self, conn: Conn, f: impl FnOnce(&mut Talk)) {
        let index = conn as usize;
        let (client, server) = self.addresses.ends(conn);
        let isns = self.isns;
        let talk = self.conversations[index].get_or_insert_with(|| Talk {
            conversation: Conversation::new(client, server).with_isns(isns.0, isns.1),
            sent: [Vec::new(), Vec::new()],
        });
        f(talk);
        let packets = talk.conversation.take_packets();
        for packet in packets {
            if self.in_flight.len() >= MAX_IN_FLIGHT {
                self.deliver(0);
            }
            self.in_flight.push(packet.bytes);
        }
    }

    fn pick(&self, i: usize) -> Option<&Vec<u8>> {
        self.in_flight.get(i % self.in_flight.len().max(1))
    }

    fn deliver(&mut self, i: usize) {
        if self.in_flight.is_empty() {
            return;
        }
        let packet = self.in_flight.remove(i % self.in_flight.len());
        self.handle(&packet);
    }

    fn flush(&mut self) {
        for packet in std::mem::take(&mut self.in_flight) {
            self.handle(&packet);
        }
    }

    fn wait(&mut self, by: Duration) {
        self.now = self.now + by;
        if self.engine.poll_timeout().is_some_and(|at| at <= self.now) {
            self.engine.handle_timeout(self.now);
            self.drain(None);
        }
    }

    /// One datagram through the engine, and every check on what comes out.
    fn handle(&mut self, datagram: &[u8]) {
        self.now = self.now + Duration::from_micros(100);
        let verdict = self.engine.handle_packet(self.now, datagram);
        let input_ok = checksum_ok(datagram);
        match verdict {
            Verdict::Accept => {}
            Verdict::Drop => assert_eq!(self.config.unjudged, Unjudged::Drop, "dropped"),
            Verdict::Rewritten => {
                assert!(self.config.nat.is_on(), "rewritten without NAT");
                check_released(self.engine.rewritten(), input_ok);
            }
            Verdict::Hold(id) => {
                assert!(self.config.nat.is_on(), "held without NAT");
                assert!(self.held.insert(id.0, input_ok).is_none(), "held twice");
            }
        }
        self.drain(Some(datagram));
    }

    /// Drain the actions queued by the last call, apply them to the model, and check.
    fn drain(&mut self, packet: Option<&[u8]>) {
        let mut batch: Vec<Expectation> = Vec::new();
        while let Some(action) = self.engine.poll_action() {
            match action {
                Action::Install(expectation) => {
                    self.model.insert(expectation.key, expectation.clone());
                    batch.retain(|e| e.key != expectation.key);
                    batch.push(expectation);
                }
                Action::Remove(removal) => {
                    let key = removal.expectation.key;
                    self.model.remove(&key);
                    batch.retain(|e| e.key != key);
                }
                Action::Release(release) => {
                    let input_ok = self.held.remove(&release.id.0).expect("released unheld");
                    check_released(&release.datagram, input_ok);
                }
                Action::Note(_) | Action::Refuse(_) => {}
            }
        }
        self.last_installs = match packet {
            Some(_) => batch.iter().map(|e| e.key).collect(),
            None => Vec::new(),
        };
        self.check(&batch);
    }

    fn check(&mut self, batch: &[Expectation]) {
        let table = self.engine.expectations();
        let limits = self.config.expectation_limits();
        assert!(table.len() <= limits.total, "{} expectations", table.len());
        for e in table.iter() {
            assert!(table.owned_by(e.owner()) <= limits.per_control);
            assert!(table.held_by_client(e.control.client.ip()) <= limits.per_client);
            assert_eq!(self.model.get(&e.key), Some(e), "held but not as installed");
        }
        for e in batch {
            assert_eq!(
                table.get(&e.key),
                Some(e),
                "an install the engine does not hold"
            );
        }
        let now = self.now;
        for (key, e) in &self.model {
            assert!(
                table.get(key).is_some() || e.expires() <= now,
                "revoked without a Remove: {e:?}"
            );
        }
        // The kernel forgets what timed out; the engine may see it later.
        self.model
            .retain(|key, e| e.expires() > now || table.get(key).is_some());
    }

    /// The daemon stops (releasing what it holds) and a new one carries on from its state.
    fn restart(&mut self) {
        self.engine.release_all_held();
        self.drain(None);
        let mut state = Vec::new();
        self.engine.save(&mut state).expect("saving to memory");
        let restored = Engine::restore(self.config.clone(), &mut &state[..], self.now);
        let (engine, _) = restored.expect("a snapshot the engine wrote restores");
        self.engine = engine;
        self.drain(None);
    }

    /// Deliver what is in flight, let every timer run out, stop: nothing stays held.
    fn finish(&mut self) {
        self.flush();
        self.wait(Duration::from_secs(3600));
        self.engine.release_all_held();
        self.drain(None);
        assert!(
            self.held.is_empty(),
            "never released: {:?}",
            self.held.keys()
        );
    }
}

impl Talk {
    fn send(&mut self, end: End, bytes: &[u8], cuts: &[usize]) {
        let mut cuts = cuts.to_vec();
        cuts.sort_unstable();
        self.conversation.send_split(side(end), bytes, &cuts);
        self.sent[end as usize].extend_from_slice(bytes);
    }

    fn retransmit(&mut self, end: End, back: u16, len: u16) {
        let sent = &self.sent[end as usize];
        let back = usize::from(back).min(sent.len());
        if back == 0 {
            return;
        }
        let from = sent.len() - back;
        let bytes = &sent[from..from + usize::from(len).clamp(1, back.min(1400))];
        let offset = -(back as i64);
        let segment = self.conversation.segment_at(side(end), offset, bytes);
        self.conversation.emit(segment);
    }
}

fn side(end: End) -> Side {
    match end {
        End::Client => Side::Client,
        End::Server => Side::Server,
    }
}

fn checksum_ok(datagram: &[u8]) -> Option<bool> {
    match wire::parse(datagram) {
        Ok(Datagram::Tcp(segment)) => segment.checksum_ok(),
        _ => None,
    }
}

/// A datagram the engine released in place of one whose checksum was `input_ok`.
fn check_released(datagram: &[u8], input_ok: Option<bool>) {
    let Ok(Datagram::Tcp(segment)) = wire::parse(datagram) else {
        panic!("released a datagram that does not parse: {datagram:02x?}");
    };
    if input_ok == Some(true) {
        assert_eq!(
            segment.checksum_ok(),
            Some(true),
            "a right checksum went wrong"
        );
    }
}
