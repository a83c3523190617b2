//! The engine written out and read back, so that a restarted daemon carries on as if it had
//! never stopped (the codec is `crate::snapshot`).
//!
//! Layout: magic `FTPALGSN`, format version (`u16`), the engine's clock, the next flow serial
//! number, every tracked connection (its key, the source that created it, its deadline, and
//! either its whole state or its tombstone) in eviction order, every live expectation in
//! supersession order, then the checksum. Keeping both orders makes the restored engine
//! evict and supersede exactly as the old one would have.
//!
//! Restoring rebuilds each structure through its normal entry points, so every bound of the
//! new configuration holds: the flow table evicts past its size, the expectation table
//! refuses past its bounds. Expectations already in the kernel are adopted, not installed
//! again: the kernel still holds them (with their own timeouts), and one a data connection
//! has already used must stay used. One the new engine cannot own (its connection is gone, or
//! a bound refuses it) gets a `Remove`, so the kernel set and the engine agree from the first
//! packet. Connections and expectations whose time ran out while the daemon was down expire
//! at once.

use std::io;
use std::io::Read;
use std::io::Write;
use std::num::NonZeroU16;

use crate::config::Config;
use crate::expect::DataKey;
use crate::expect::Expectation;
use crate::expect::NatMapping;
use crate::expect::Revocation;
use crate::flow::FlowId;
use crate::flow::FlowKey;
use crate::flow::Tracked;
use crate::flow::control::ControlFlow;
use crate::flow::silent::Silent;
use crate::ftp::Trigger;
use crate::ftp::session::AnnouncementId;
use crate::snapshot::Decoder;
use crate::snapshot::Encoder;
use crate::snapshot::SnapshotError;
use crate::time::Duration;
use crate::time::Instant;

use super::Engine;

/// The first bytes of an engine snapshot.
pub const MAGIC: &[u8; 8] = b"FTPALGSN";
/// The format version this build writes and reads.
pub const VERSION: u16 = 2;
/// Connections or expectations a snapshot may list at most.
const MAX_ITEMS: usize = 1 << 24;
/// The longest expectation lifetime a snapshot may carry (the command line allows a day).
const MAX_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// What a restore brought back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Restored {
    /// Connections now tracked.
    pub flows: usize,
    /// Expectations adopted.
    pub expectations: usize,
    /// Expectations the new engine could not own (their removal is queued).
    pub disowned: usize,
}

impl Engine {
    /// Write the engine's state to `out` (streamed: nothing is copied in memory).
    pub fn save(&self, out: &mut dyn Write) -> io::Result<()> {
        let mut e = Encoder::new(out);
        e.raw(MAGIC)?;
        e.u16(VERSION)?;
        e.instant(self.now)?;
        e.u64(self.next_flow)?;
        e.len(self.flows.len())?;
        for (key, tracked, _, source, deadline) in self.flows.iter_by_activity() {
            let (low, high) = key.ends();
            e.socket(low)?;
            e.socket(high)?;
            e.ip(source)?;
            e.instant(deadline)?;
            match tracked {
                Tracked::Reading(flow) => {
                    e.u8(0)?;
                    flow.save(&mut e)?;
                }
                Tracked::Silent(silent) => {
                    e.u8(1)?;
                    silent.save(&mut e)?;
                }
            }
        }
        e.len(self.expectations.len())?;
        for expectation in self.expectations.iter_by_owner() {
            save_expectation(&mut e, expectation)?;
        }
        e.len(self.nat.len())?;
        for (key, nat) in self.nat.iter() {
            let (low, high) = key.ends();
            e.socket(low)?;
            e.socket(high)?;
            nat.save(&mut e)?;
        }
        e.finish()
    }

    /// An engine with `config` that carries on from the snapshot in `input`, at `now`. The
    /// removals it queues (see the module doc) must be carried out before the first packet.
    pub fn restore(
        config: Config,
        input: &mut dyn Read,
        now: Instant,
    ) -> Result<(Self, Restored), SnapshotError> {
        let mut d = Decoder::new(input);
        if d.raw::<8>()? != *MAGIC {
            return Err(SnapshotError::BadMagic);
        }
        let version = d.u16()?;
        if version != VERSION {
            return Err(SnapshotError::Version(version));
        }
        let mut engine = Self::new(config);
        engine.now = d.instant()?.max(now);
        engine.next_flow = d.u64()?;
        for _ in 0..d.len(MAX_ITEMS, "connection count")? {
            let (key, tracked, source, deadline) = load_flow(&mut d, &engine.config)?;
            engine.adopt_flow(key, tracked, source, deadline);
        }
        let count = d.len(MAX_ITEMS, "expectation count")?;
        let expectations = (0..count)
            .map(|_| load_expectation(&mut d))
            .collect::<Result<Vec<_>, _>>()?;
        for _ in 0..d.len(MAX_ITEMS, "NAT connection count")? {
            let key = FlowKey::new(d.socket()?, d.socket()?);
            let nat = crate::nat::flow::NatFlow::load(&mut d)?;
            if engine.flows.get(&key).is_some() {
                engine.nat.adopt(key, nat);
            }
        }
        d.finish()?;
        let mut restored = Restored::default();
        for expectation in expectations {
            engine.adopt_expectation(expectation, &mut restored);
        }
        engine.handle_timeout(engine.now);
        restored.flows = engine.flows.len();
        engine.stats.flows_restored = restored.flows as u64;
        engine.stats.expectations_restored = restored.expectations as u64;
        Ok((engine, restored))
    }

    fn adopt_flow(
        &mut self,
        key: FlowKey,
        tracked: Tracked,
        source: std::net::IpAddr,
        deadline: Instant,
    ) {
        if let Tracked::Reading(flow) = &tracked {
            self.next_flow = self.next_flow.max(flow.id().0);
        }
        let (tier, bytes) = (tracked.tier(), tracked.buffered());
        match self.flows.insert(key, tracked, tier, source, deadline) {
            Ok(displaced) => {
                self.budget.account((0, tier), (bytes, tier));
                for (old_key, old, _) in displaced {
                    self.forget(old_key, &old);
                }
            }
            Err(_) => self.stats.flows_prefix_refused += 1,
        }
    }

    fn adopt_expectation(&mut self, expectation: Expectation, restored: &mut Restored) {
        if expectation.expires() <= self.now {
            return;
        }
        if self.flows.get(&expectation.owner()).is_none() {
            restored.disowned += 1;
            return self.revoke(expectation, Revocation::ControlClosed);
        }
        match self.expectations.install(expectation.clone()) {
            Ok(installed) => {
                restored.expectations += 1;
                if let Some(superseded) = installed.superseded {
                    restored.expectations -= 1;
                    restored.disowned += 1;
                    self.revoke(superseded, Revocation::Superseded);
                }
            }
            Err(_) => {
                restored.disowned += 1;
                self.revoke(expectation, Revocation::Superseded);
            }
        }
    }
}

fn load_flow(
    d: &mut Decoder<'_>,
    config: &Config,
) -> Result<(FlowKey, Tracked, std::net::IpAddr, Instant), SnapshotError> {
    let key = FlowKey::new(d.socket()?, d.socket()?);
    let source = d.ip()?;
    let deadline = d.instant()?;
    let tracked = match d.u8()? {
        0 => {
            let flow = ControlFlow::load(d, config)?;
            let control = flow.control();
            if FlowKey::new(control.client, control.server) != key {
                return Err(SnapshotError::Invalid("connection key"));
            }
            Tracked::Reading(Box::new(flow))
        }
        1 => Tracked::Silent(Silent::load(d)?),
        _ => return Err(SnapshotError::Invalid("connection kind")),
    };
    Ok((key, tracked, source, deadline))
}

fn save_expectation(e: &mut Encoder<'_>, x: &Expectation) -> io::Result<()> {
    e.ip(x.key.src)?;
    e.ip(x.key.dst)?;
    e.u16(x.key.dport.get())?;
    e.socket(x.control.client)?;
    e.socket(x.control.server)?;
    e.u8(trigger_tag(x.trigger))?;
    e.instant(x.created)?;
    e.duration(x.lifetime)?;
    e.u64(x.origin.0.0)?;
    e.u64(x.origin.1.0)?;
    match x.nat {
        None => e.u8(0),
        Some(nat) => {
            e.u8(1)?;
            e.ip(nat.public)?;
            e.u16(nat.port.get())
        }
    }
}

fn load_expectation(d: &mut Decoder<'_>) -> Result<Expectation, SnapshotError> {
    let (src, dst) = (d.ip()?, d.ip()?);
    let dport = NonZeroU16::new(d.u16()?).ok_or(SnapshotError::Invalid("data port"))?;
    let control = crate::flow::Control {
        client: d.socket()?,
        server: d.socket()?,
    };
    let trigger = trigger_of(d.u8()?)?;
    let created = d.instant()?;
    let lifetime = d.duration()?;
    let origin = (FlowId(d.u64()?), AnnouncementId(d.u64()?));
    let nat = match d.u8()? {
        0 => None,
        1 => {
            let public = d.ip()?;
            let port = NonZeroU16::new(d.u16()?).ok_or(SnapshotError::Invalid("nat port"))?;
            if public.is_ipv4() != dst.is_ipv4() {
                return Err(SnapshotError::Invalid("nat address"));
            }
            Some(NatMapping { public, port })
        }
        _ => return Err(SnapshotError::Invalid("nat tag")),
    };
    let same_family = [dst, control.client.ip(), control.server.ip()]
        .iter()
        .all(|a| a.is_ipv4() == src.is_ipv4());
    if !same_family || lifetime > MAX_LIFETIME || lifetime.as_micros() == 0 {
        return Err(SnapshotError::Invalid("expectation"));
    }
    Ok(Expectation {
        key: DataKey { src, dst, dport },
        control,
        trigger,
        mode: trigger.mode(),
        created,
        lifetime,
        origin,
        nat,
    })
}

fn trigger_tag(trigger: Trigger) -> u8 {
    match trigger {
        Trigger::Port => 0,
        Trigger::Eprt => 1,
        Trigger::Lprt => 2,
        Trigger::Reply227 => 3,
        Trigger::Reply228 => 4,
        Trigger::Reply229 => 5,
    }
}

fn trigger_of(tag: u8) -> Result<Trigger, SnapshotError> {
    Ok(match tag {
        0 => Trigger::Port,
        1 => Trigger::Eprt,
        2 => Trigger::Lprt,
        3 => Trigger::Reply227,
        4 => Trigger::Reply228,
        5 => Trigger::Reply229,
        _ => return Err(SnapshotError::Invalid("trigger")),
    })
}
