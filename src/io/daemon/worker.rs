//! One worker: one queue, one engine, one connection to the backend, one thread.
//!
//! Owns: the order of work for each packet, which is the daemon's main promise. The engine
//! judges the packet; every expectation it asks for is written to the kernel and
//! acknowledged; only then is the verdict that releases the packet given. The peer cannot
//! learn the announced endpoint before its pinhole exists, so the data connection's SYN can
//! never beat it. The actions are carried out by the [`Applier`], so that after every verdict
//! the kernel set holds exactly the engine's expectations ([`Engine::expectations`]). Also:
//! timers (the engine's `poll_timeout`), commands from the signal thread, the worker's
//! counters (with the packets the kernel dropped before we saw them), and, at a clean stop,
//! the state file for the next start.
//!
//! Two things wait until after the verdicts: the log lines of the packets' actions (written
//! once the packets are on their way), and, for a backlog (the packets found waiting behind
//! the first of a receive round, which is released at once), the plain accepts, given
//! together by one batch verdict ("every packet up to this id") when the round ends, when a
//! packet needs another verdict, before any backend call, or after [`MAX_BATCH`] packets. A
//! batch releases every packet still queued up to its id, so there is none while a held
//! packet waits in the kernel; the installs of a batched packet were acknowledged before it
//! joined the batch, as for any verdict.
//!
//! Each verdict's latency (from the packet's receipt, when `judge` reads the clock, to the
//! verdict; a batch's packets to the batch verdict) goes into a histogram: one more clock
//! read per verdict given alone, one per batch. With `--metrics`, about once a second the
//! worker offers a snapshot of everything it counts to its slot (`io::metrics`), never
//! waiting for the serving thread.

use std::io;
use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::mpsc::Receiver;

use crate::action::Verdict;
use crate::engine::Engine;
use crate::flow::Control;
use crate::io::backend::Backend;
use crate::io::daemon::apply::Applier;
use crate::io::daemon::latency::Latency;
use crate::io::daemon::ratelimit::Allow;
use crate::io::daemon::ratelimit::Every;
use crate::io::daemon::source::PacketSource;
use crate::io::daemon::source::QueuedPacket;
use crate::io::daemon::state::StateFile;
use crate::io::metrics::Slot;
use crate::io::nfqueue;
use crate::io::sys;
use crate::nat::Translation;
use crate::time::Duration;
use crate::time::Instant;

mod observe;

/// The most plain accepts one batch verdict gives.
const MAX_BATCH: u32 = 64;

/// What the signal thread asks a worker to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Command {
    /// Shut down (SIGTERM, SIGINT).
    Stop,
    /// Check the backend's sets again (SIGHUP).
    Recheck,
    /// Log the counters (SIGUSR1).
    Stats,
}

/// The worker's own choices.
#[derive(Debug, Clone)]
pub(crate) struct WorkerSettings {
    /// The verdict for a packet whose expectations could not be installed.
    pub(crate) on_install_error: Verdict,
    /// The verdict for a packet cut short by the copy range.
    pub(crate) unjudged: Verdict,
    /// Remove live expectations at shutdown.
    pub(crate) cleanup: bool,
    /// Log the counters this often.
    pub(crate) stats_interval: Option<Duration>,
    /// Where the engine is left at a clean stop.
    pub(crate) state: Option<StateFile>,
}

/// The daemon's counters for one worker (the engine keeps its own).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    /// Packets received from the queue.
    pub(crate) packets: u64,
    /// Verdicts that released a packet.
    pub(crate) accepted: u64,
    /// Verdicts that dropped a packet.
    pub(crate) dropped: u64,
    /// Packets cut short by the copy range (not judged).
    pub(crate) truncated: u64,
    /// Times the kernel reported lost queue messages (ENOBUFS).
    pub(crate) overruns: u64,
    /// Packets the kernel dropped because the queue was full (`--queue-maxlen`), read from
    /// its own counter once a second.
    pub(crate) queue_full_drops: u64,
    /// Packets the kernel dropped because the socket buffer was full (`--rcvbuf`; the
    /// packets behind `overruns`).
    pub(crate) socket_full_drops: u64,
    /// Verdicts the kernel did not take.
    pub(crate) verdict_errors: u64,
    /// Packets released rewritten (NAT).
    pub(crate) rewritten: u64,
    /// Packets held back until their line was complete (NAT).
    pub(crate) held: u64,
    /// Translations looked up in conntrack.
    pub(crate) ct_lookups: u64,
    /// Conntrack lookups that failed.
    pub(crate) ct_lookup_errors: u64,
    /// Batch verdicts given (each accepting two or more packets).
    pub(crate) batches: u64,
    /// Packets accepted by batch verdicts.
    pub(crate) batched: u64,
}

impl Counters {
    pub(crate) fn fields(&self) -> [(&'static str, u64); 14] {
        [
            ("packets", self.packets),
            ("accepted", self.accepted),
            ("dropped", self.dropped),
            ("truncated", self.truncated),
            ("overruns", self.overruns),
            ("queue_full_drops", self.queue_full_drops),
            ("socket_full_drops", self.socket_full_drops),
            ("verdict_errors", self.verdict_errors),
            ("rewritten", self.rewritten),
            ("held", self.held),
            ("ct_lookups", self.ct_lookups),
            ("ct_lookup_errors", self.ct_lookup_errors),
            ("batches", self.batches),
            ("batched", self.batched),
        ]
    }
}

/// The system's monotonic clock as the core's [`Instant`]: microseconds since boot, so that
/// the instants in a state file mean the same to the next daemon on the same boot.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock;

impl Clock {
    pub(crate) fn start() -> Self {
        Self
    }

    pub(crate) fn now(self) -> Instant {
        Instant::from_micros(sys::monotonic_micros())
    }
}

/// One queue's engine, backend and counters.
pub(crate) struct Worker {
    name: String,
    engine: Engine,
    backend: Box<dyn Backend>,
    settings: WorkerSettings,
    applier: Applier,
    counters: Counters,
    clock: Clock,
    next_stats: Option<Instant>,
    /// Held packets: the engine's id to the kernel's, and when it was received.
    held: std::collections::HashMap<crate::nat::flow::HeldId, (u32, Instant)>,
    /// Where translations are learned (`--nat`: conntrack).
    translations: Option<Box<dyn Translations>>,
    /// The kernel's loss counters at the last look, and when to look again.
    kernel: Option<nfqueue::KernelCounters>,
    next_kernel_look: Instant,
    /// Log lines about packets the kernel dropped: at most one per period per cause.
    queue_full_lines: Every,
    overrun_lines: Every,
    /// Plain accepts not given yet: how many, and the last packet's id (see the module doc).
    deferred: (u32, Option<u32>),
    /// When each of the deferred packets was received.
    deferred_since: Vec<Instant>,
    /// Packet received to verdict given.
    verdict_latency: Latency,
    /// With `--metrics`: the queue number, where snapshots go, and when the next is due.
    metrics: Option<(u16, Arc<Slot>)>,
    next_publish: Instant,
}

/// How often a worker offers a snapshot to the metrics endpoint.
const PUBLISH_PERIOD: Duration = Duration::from_secs(1);

/// How often the kernel's loss counters are read, and an ongoing loss is logged again.
const KERNEL_LOOK_PERIOD: Duration = Duration::from_secs(1);
const LOSS_LINE_PERIOD: Duration = Duration::from_secs(10);

/// Where a worker learns how a control connection is translated (conntrack, or a fake in
/// tests).
pub(crate) trait Translations: Send {
    /// The translation of `control` (`Translation::NONE` if it has none or is unknown).
    fn translation(&mut self, control: &Control) -> Result<Translation, String>;
}

impl Worker {
    pub(crate) fn new(
        name: String,
        engine: Engine,
        backend: Box<dyn Backend>,
        settings: WorkerSettings,
        clock: Clock,
    ) -> Self {
        let now = clock.now();
        let next_stats = settings.stats_interval.map(|every| now + every);
        Self {
            applier: Applier::new(name.clone(), now),
            name,
            engine,
            backend,
            settings,
            counters: Counters::default(),
            clock,
            next_stats,
            held: std::collections::HashMap::new(),
            translations: None,
            kernel: None,
            next_kernel_look: now,
            queue_full_lines: Every::new(LOSS_LINE_PERIOD),
            overrun_lines: Every::new(LOSS_LINE_PERIOD),
            deferred: (0, None),
            deferred_since: Vec::with_capacity(MAX_BATCH as usize),
            verdict_latency: Latency::new(),
            metrics: None,
            next_publish: now,
        }
    }

    /// Name queue `number` in JSON events, and, with `slot`, offer snapshots of the counters
    /// there (`--metrics`).
    pub(crate) fn observed(mut self, number: u16, slot: Option<Arc<Slot>>) -> Self {
        self.applier = self.applier.with_queue(number);
        self.metrics = slot.map(|slot| (number, slot));
        self
    }

    /// Learn translations from `translations` (conntrack) when the engine asks.
    pub(crate) fn with_translations(mut self, translations: Box<dyn Translations>) -> Self {
        self.translations = Some(translations);
        self
    }

    /// Judge one packet, carry out its actions, then give its verdict, then write its log
    /// lines (the loop uses [`Worker::receive_all`], which may batch verdicts).
    #[cfg(test)]
    pub(crate) fn handle(&mut self, source: &mut dyn PacketSource, packet: &QueuedPacket) {
        self.judge(source, packet, false);
        self.applier.write_log();
    }

    /// Judge one packet, carry out its actions, then give its verdict; with `batch`, a plain
    /// accept may wait for [`Worker::flush_accepts`] (see the module doc).
    fn judge(&mut self, source: &mut dyn PacketSource, packet: &QueuedPacket, batch: bool) {
        self.counters.packets += 1;
        let now = self.clock.now();
        let mut verdict = if packet.truncated {
            // Reading a cut datagram would invent a gap in the stream; let TCP's view stand.
            self.counters.truncated += 1;
            log::warn!(
                "{}: packet {} cut by the copy range; not judged (raise --copy-range)",
                self.name,
                packet.id
            );
            self.settings.unjudged
        } else {
            self.learn_translation(&packet.payload);
            self.engine.handle_packet(now, &packet.payload)
        };
        if self.engine.has_actions() {
            // A backend call takes a while: the packets judged before do not wait for it.
            self.flush_accepts(source);
        }
        if !self.apply_actions(now) && self.settings.on_install_error == Verdict::Drop {
            verdict = Verdict::Drop;
        }
        self.release_held(source);
        match verdict {
            Verdict::Accept if batch && self.held.is_empty() => {
                self.counters.accepted += 1;
                let count = self.deferred.0 + 1;
                self.deferred = (count, Some(packet.id));
                self.deferred_since.push(now);
                if count >= MAX_BATCH {
                    self.flush_accepts(source);
                }
            }
            Verdict::Accept => {
                self.flush_accepts(source);
                self.give(source, packet.id, None, now);
            }
            Verdict::Hold(held) => {
                self.flush_accepts(source);
                self.counters.held += 1;
                self.held.insert(held, (packet.id, now));
            }
            Verdict::Rewritten => {
                self.flush_accepts(source);
                let rewritten = self.engine.rewritten().to_vec();
                self.give(source, packet.id, Some(&rewritten), now);
            }
            Verdict::Drop => {
                self.flush_accepts(source);
                self.counters.dropped += 1;
                self.report(packet.id, source.verdict(packet.id, Verdict::Drop));
                self.verdict_given(now);
            }
        }
    }

    /// Give the plain accepts that wait: one verdict for a single packet, else one batch
    /// verdict through the last one's id (every packet before it in the kernel's queue is
    /// one of them: the others got their verdicts, and none is held).
    fn flush_accepts(&mut self, source: &mut dyn PacketSource) {
        let (count, last) = std::mem::take(&mut self.deferred);
        let Some(id) = last else {
            return;
        };
        let result = if count == 1 {
            source.verdict(id, Verdict::Accept)
        } else {
            self.counters.batches += 1;
            self.counters.batched += u64::from(count);
            source.accept_through(id)
        };
        self.report(id, result);
        let given = self.clock.now();
        for received in self.deferred_since.drain(..) {
            let micros = given.saturating_since(received).as_micros();
            self.verdict_latency.record(micros);
        }
    }

    /// Release packet `id` (received at `received`), as it came or as `datagram`.
    fn give(
        &mut self,
        source: &mut dyn PacketSource,
        id: u32,
        datagram: Option<&[u8]>,
        received: Instant,
    ) {
        self.counters.accepted += 1;
        let result = match datagram {
            Some(bytes) => {
                self.counters.rewritten += 1;
                source.release_rewritten(id, bytes)
            }
            None => source.verdict(id, Verdict::Accept),
        };
        self.report(id, result);
        self.verdict_given(received);
    }

    fn report(&mut self, id: u32, result: io::Result<()>) {
        if let Err(error) = result {
            self.counters.verdict_errors += 1;
            log::error!("{}: verdict for packet {id} failed: {error}", self.name);
        }
    }

    /// Give the verdicts of the held packets the engine let go (after the set changes).
    fn release_held(&mut self, source: &mut dyn PacketSource) {
        let releases: Vec<_> = self.applier.take_releases().collect();
        if !releases.is_empty() {
            self.flush_accepts(source);
        }
        for release in releases {
            let Some((id, received)) = self.held.remove(&release.id) else {
                continue;
            };
            let datagram = release.rewritten.then_some(release.datagram.as_slice());
            self.give(source, id, datagram, received);
        }
    }

    /// With `--nat` and conntrack: learn the packet's connection's translation if the engine
    /// asks (once per connection).
    fn learn_translation(&mut self, datagram: &[u8]) {
        let Some(translations) = self.translations.as_mut() else {
            return;
        };
        let Some(control) = self.engine.wants_translation(datagram) else {
            return;
        };
        self.counters.ct_lookups += 1;
        match translations.translation(&control) {
            Ok(translation) => self.engine.set_translation(control, translation),
            Err(error) => {
                self.counters.ct_lookup_errors += 1;
                log::warn!(
                    "{}: conntrack lookup for {control} failed: {error}",
                    self.name
                );
                // Not known: treated as untranslated rather than asked again per packet.
                self.engine.set_translation(control, Translation::NONE);
            }
        }
    }

    /// Drain the engine's actions into the log and the backend. False if an installation
    /// failed (see [`Applier::apply`]).
    fn apply_actions(&mut self, now: Instant) -> bool {
        self.applier
            .apply(&mut self.engine, self.backend.as_mut(), now)
    }

    /// Run the engine's timers and the periodic stats line if due.
    pub(crate) fn tick(&mut self, source: &mut dyn PacketSource) {
        let now = self.clock.now();
        if self.engine.poll_timeout().is_some_and(|due| due <= now) {
            self.engine.handle_timeout(now);
            self.apply_actions(now);
            self.release_held(source);
            self.applier.write_log();
        }
        if now >= self.next_kernel_look {
            self.next_kernel_look = now + KERNEL_LOOK_PERIOD;
            self.look_at_kernel_counters(source, now);
        }
        if let (Some(due), Some(every)) = (self.next_stats, self.settings.stats_interval) {
            if due <= now {
                self.log_stats();
                self.next_stats = Some(now + every);
            }
        }
        if self.metrics.is_some() && now >= self.next_publish {
            self.next_publish = now + PUBLISH_PERIOD;
            self.publish(now);
        }
    }

    /// Count the packets the kernel dropped since the last look, before we could see them
    /// (the queue was full, or our socket buffer), and log a full queue (the overruns are
    /// logged as they are reported).
    fn look_at_kernel_counters(&mut self, source: &dyn PacketSource, now: Instant) {
        let Some(seen) = source.kernel_counters() else {
            return;
        };
        // The first look (or a rebound queue, whose counters start again) is the baseline.
        let before = self
            .kernel
            .replace(seen)
            .filter(|b| b.queue_full <= seen.queue_full && b.socket_full <= seen.socket_full)
            .unwrap_or(seen);
        self.counters.socket_full_drops += seen.socket_full - before.socket_full;
        let lost = seen.queue_full - before.queue_full;
        if lost == 0 {
            return;
        }
        self.counters.queue_full_drops += lost;
        match self.queue_full_lines.allow(now) {
            Allow::No => {}
            Allow::Yes | Allow::AfterSuppressed(_) => log::warn!(
                "{}: the kernel dropped {lost} packet(s) in the last second: the queue was full \
                 (raise --queue-maxlen, or add queues); {} in all",
                self.name,
                self.counters.queue_full_drops
            ),
        }
    }

    /// How long the loop may sleep.
    fn sleep(&self) -> std::time::Duration {
        let now = self.clock.now();
        let publish = self.metrics.is_some().then_some(self.next_publish);
        let next = [self.engine.poll_timeout(), self.next_stats, publish]
            .into_iter()
            .flatten()
            .min();
        let micros = next.map_or(1_000_000, |due| due.saturating_since(now).as_micros());
        // Never sleep for longer than a second: cheap, and bounds how late a stats line is.
        std::time::Duration::from_micros(micros.min(1_000_000))
    }

    /// Check the backend (at start and on SIGHUP).
    pub(crate) fn recheck(&mut self) {
        match self.backend.check() {
            Ok(()) => log::info!("{}: backend ok: {}", self.name, self.backend.describe()),
            Err(error) => log::error!("{}: backend check failed: {error}", self.name),
        }
    }

    /// Log one line with every counter.
    pub(crate) fn log_stats(&self) {
        let mut line = format!(
            "{}: stats flows={} live={}",
            self.name,
            self.engine.flow_count(),
            self.engine.expectations().len()
        );
        for (name, value) in self.counters.fields() {
            line += &format!(" {name}={value}");
        }
        for (name, value) in self.applier.counters().fields() {
            line += &format!(" {name}={value}");
        }
        for (name, value) in self.applier.latency().fields() {
            line += &format!(" {name}={value}");
        }
        for (name, value) in self.verdict_latency.verdict_fields() {
            line += &format!(" {name}={value}");
        }
        for (name, value) in self.engine.stats().fields() {
            line += &format!(" engine.{name}={value}");
        }
        log::info!("{line}");
    }

    /// Stop: remove live expectations if asked, leave the state for the next start, log the
    /// counters.
    pub(crate) fn shutdown(&mut self, source: &mut dyn PacketSource) {
        let now = self.clock.now();
        // Held packets go out now (as far as they can be rewritten); the state file keeps
        // the sequence ledgers, not packets.
        self.engine.release_all_held();
        self.apply_actions(now);
        self.release_held(source);
        if self.settings.cleanup {
            let live = self.engine.expectations().len();
            self.engine.revoke_everything(now);
            self.apply_actions(now);
            log::info!("{}: cleanup removed {live} live expectation(s)", self.name);
        }
        self.applier.write_log();
        if let Some(state) = &self.settings.state {
            match state.save(&self.engine, now) {
                Ok(bytes) => log::info!(
                    "{}: state saved to {} ({} connection(s), {} expectation(s), {bytes} bytes)",
                    self.name,
                    state.path().display(),
                    self.engine.flow_count(),
                    self.engine.expectations().len()
                ),
                Err(error) => log::error!(
                    "{}: cannot save the state to {}: {error}; the next start picks \
                     connections up mid-stream",
                    self.name,
                    state.path().display()
                ),
            }
        }
        self.log_stats();
    }

    /// The counters so far.
    #[cfg(test)]
    pub(crate) fn counters(&self) -> Counters {
        self.counters
    }

    /// True while the backend has failed since its last success.
    #[cfg(test)]
    pub(crate) fn backend_fault_ongoing(&self) -> bool {
        self.applier.fault_ongoing()
    }

    /// The counters of the set changes so far.
    #[cfg(test)]
    pub(crate) fn apply_counters(&self) -> crate::io::daemon::apply::ApplyCounters {
        *self.applier.counters()
    }

    /// The engine.
    #[cfg(test)]
    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Serve `source` until told to stop; returns an error only when the queue fails.
    pub(crate) fn run(
        &mut self,
        source: &mut dyn PacketSource,
        commands: &Receiver<Command>,
        mut wake: UnixStream,
    ) -> io::Result<()> {
        wake.set_nonblocking(true)?;
        // A restored engine may have removals queued: the kernel must agree before any packet.
        self.apply_actions(self.clock.now());
        self.applier.write_log();
        loop {
            self.tick(source);
            let ready = sys::wait_readable(&[source.fd(), wake.as_fd()], Some(self.sleep()))?;
            if ready.get(1).copied().unwrap_or(false) {
                drain(&mut wake);
                while let Ok(command) = commands.try_recv() {
                    match command {
                        Command::Stop => {
                            self.shutdown(source);
                            return Ok(());
                        }
                        Command::Recheck => self.recheck(),
                        Command::Stats => self.log_stats(),
                    }
                }
            }
            self.receive_all(source)?;
        }
    }

    /// Handle every waiting packet (at most a bounded burst, so commands are not starved),
    /// then give the plain accepts that wait and write the log lines.
    pub(crate) fn receive_all(&mut self, source: &mut dyn PacketSource) -> io::Result<()> {
        let result = self.receive_burst(source);
        self.flush_accepts(source);
        self.applier.write_log();
        result
    }

    fn receive_burst(&mut self, source: &mut dyn PacketSource) -> io::Result<()> {
        // The first packet after a wait gets its verdict at once: had it waited for the
        // round's end, every packet of an idle gateway would pay one more `recv` (the one
        // that finds the queue empty) before its release. A packet found waiting behind it
        // is a backlog, and may wait for a batch.
        let mut backlog = false;
        for _ in 0..1024 {
            match source.try_recv() {
                Ok(Some(packet)) => {
                    self.judge(source, &packet, backlog);
                    backlog = true;
                }
                // The round ends; `receive_all` gives the waiting accepts. A packet they
                // cause (a local peer may answer inside the verdict's own syscall) wakes the
                // next `poll` at once.
                Ok(None) => return Ok(()),
                Err(error) if nfqueue::is_overrun(&error) => {
                    self.counters.overruns += 1;
                    match self.overrun_lines.allow(self.clock.now()) {
                        Allow::No => {}
                        Allow::Yes => log::warn!(
                            "{}: the kernel dropped queued packets (socket buffer full; raise \
                             --rcvbuf)",
                            self.name
                        ),
                        Allow::AfterSuppressed(n) => log::warn!(
                            "{}: the kernel dropped queued packets (socket buffer full; raise \
                             --rcvbuf), {n} more time(s) since the last line; {} packet(s) in all",
                            self.name,
                            self.counters.socket_full_drops
                        ),
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }
}

fn drain(wake: &mut UnixStream) {
    let mut buf = [0u8; 64];
    while matches!(wake.read(&mut buf), Ok(n) if n > 0) {}
}
