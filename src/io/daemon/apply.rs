//! [`Applier`]: the engine's actions carried out on a backend, so that the kernel set holds
//! exactly the engine's expectations after every packet.
//!
//! Owns: draining the actions (one log line each, within the log budget of `ratelimit`),
//! reducing them to their net effect per key ([`SetDelta`]; the engine may emit
//! `Install(k5)` then `Remove(k1)`, or `Install(k)` then `Remove(k)`, and the net effect is
//! what the kernel must end up with), carrying that out in one backend call (one nf_tables transaction), and
//! telling the engine which installs the kernel refused ([`Engine::handle_install_error`]):
//! it withdraws them and queues their removal, which is carried out at once. The counters of
//! what reached the kernel, how long the kernel took to acknowledge each change that
//! installs ([`Latency`]), and the log lines of a failing backend (one when it starts, at most
//! one per 10 s while it lasts, one when updates work again). Also the refusals and
//! revocations per reason, for the metrics endpoint, and each line's format (text, or the JSON
//! event of `--log-format json`, `eventlog`). Used by the daemon's worker for every packet and
//! timer, and by the root tests that compare the real sets with the engine.

use crate::action::Action;
use crate::action::Release;
use crate::engine::Engine;
use crate::expect::DataKey;
use crate::expect::NatMapping;
use crate::expect::delta::SetDelta;
use crate::io::backend::Applied;
use crate::io::backend::Backend;
use crate::io::backend::Element;
use crate::io::daemon::eventlog;
use crate::io::daemon::latency::Latency;
use crate::io::daemon::logline;
use crate::io::daemon::logsink;
use crate::io::daemon::ratelimit::Allow;
use crate::io::daemon::ratelimit::Every;
use crate::io::daemon::ratelimit::LogBudget;
use crate::io::metrics::ReasonCounts;
use crate::io::report;
use crate::time::Duration;
use crate::time::Instant;

/// Carries out an engine's actions on a backend.
#[derive(Debug)]
pub struct Applier {
    name: String,
    delta: SetDelta,
    log_budget: LogBudget,
    counters: ApplyCounters,
    /// Backend call to kernel ACK, for changes that install.
    latency: Latency,
    /// Held datagrams the engine let go, in order, for the worker to release after the set
    /// changes are carried out.
    releases: Vec<Release>,
    /// The backend's failures since the last success (a missing or full set fails every
    /// update until the operator acts): one error line when they start, then at most one
    /// per [`FAULT_LINE_PERIOD`], and one line when updates work again.
    fault: Fault,
    /// The actions applied whose log lines are not written yet ([`Applier::write_log`]), with
    /// when they were applied.
    unlogged: Vec<(Instant, Action)>,
    /// The queue number, for JSON events.
    queue: Option<u16>,
    /// Announcements refused and expectations revoked, per reason.
    refused: ReasonCounts,
    revoked: ReasonCounts,
}

/// How often an ongoing backend failure is logged again.
const FAULT_LINE_PERIOD: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct Fault {
    lines: Every,
    failed_installs: u64,
    failed_removals: u64,
}

impl Fault {
    fn ongoing(&self) -> bool {
        self.failed_installs + self.failed_removals > 0
    }
}

/// What reached the kernel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyCounters {
    /// Expectations written to the kernel.
    pub installed: u64,
    /// Expectations the kernel did not take.
    pub install_errors: u64,
    /// Removals sent to the kernel. Some name an element it no longer holds (a data
    /// connection used it), or never held (a key installed and revoked by the same packet's
    /// actions, whose net effect is "absent"); the kernel skips those.
    pub removed: u64,
    /// Removals that failed.
    pub remove_errors: u64,
    /// Backend calls the kernel did not answer in time (`--netlink-timeout`).
    pub netlink_timeouts: u64,
    /// Log lines not written because peers caused too many (rate limit).
    pub log_suppressed: u64,
}

impl Applier {
    /// An applier whose log lines start with `name` (e.g. "queue 0").
    pub fn new(name: String, now: Instant) -> Self {
        Self {
            name,
            delta: SetDelta::default(),
            log_budget: LogBudget::new(now),
            counters: ApplyCounters::default(),
            latency: Latency::new(),
            releases: Vec::new(),
            fault: Fault {
                lines: Every::new(FAULT_LINE_PERIOD),
                failed_installs: 0,
                failed_removals: 0,
            },
            unlogged: Vec::new(),
            queue: None,
            refused: ReasonCounts::default(),
            revoked: ReasonCounts::default(),
        }
    }

    /// Name queue `number` in JSON events.
    pub fn with_queue(mut self, number: u16) -> Self {
        self.queue = Some(number);
        self
    }

    /// Drain `engine`'s actions into `backend`, as one net change, and keep their log lines
    /// for [`Applier::write_log`] (the worker writes them after the packet's verdict, so the
    /// packet does not wait for them; lines still unwritten from an earlier call are written
    /// first). False if an installation failed: the engine has then withdrawn it, and the
    /// removal that makes sure the kernel does not hold it either has been carried out too.
    pub fn apply(&mut self, engine: &mut Engine, backend: &mut dyn Backend, now: Instant) -> bool {
        self.write_log();
        let mut ok = true;
        // At most twice: after a failed install the engine queues only removals.
        for _ in 0..2 {
            self.delta.clear();
            while let Some(action) = engine.poll_action() {
                self.delta.push(&action);
                self.count_reason(&action);
                let logged = log::log_enabled!(logline::level(&action));
                match action {
                    Action::Release(release) => {
                        if logged {
                            self.unlogged.push((now, Action::Release(release.clone())));
                        }
                        self.releases.push(release);
                    }
                    action if logged => self.unlogged.push((now, action)),
                    _ => {}
                }
            }
            if self.delta.is_empty() {
                break;
            }
            let failed = self.apply_delta(backend, now);
            if failed.is_empty() {
                break;
            }
            ok = false;
            engine.handle_install_error(now, &failed);
        }
        ok
    }

    /// Write the log lines of the actions applied so far (one per action, within the log
    /// budget), in the order they were applied.
    pub fn write_log(&mut self) {
        if self.unlogged.is_empty() {
            return;
        }
        // One `write` for the lines of the round (logsink).
        let _group = logsink::group();
        let mut lines = std::mem::take(&mut self.unlogged);
        for (now, action) in lines.drain(..) {
            self.log_action(now, &action);
        }
        self.unlogged = lines;
    }

    /// The held datagrams let go by the actions applied so far (oldest first).
    pub fn take_releases(&mut self) -> std::vec::Drain<'_, Release> {
        self.releases.drain(..)
    }

    /// What reached the kernel so far.
    pub fn counters(&self) -> &ApplyCounters {
        &self.counters
    }

    /// How long the kernel took to acknowledge the changes that installed pinholes.
    pub fn latency(&self) -> &Latency {
        &self.latency
    }

    /// Announcements refused so far, per reason.
    pub(crate) fn refused(&self) -> &ReasonCounts {
        &self.refused
    }

    /// Expectations revoked so far, per reason.
    pub(crate) fn revoked(&self) -> &ReasonCounts {
        &self.revoked
    }

    fn count_reason(&mut self, action: &Action) {
        match action {
            Action::Refuse(refusal) => self.refused.add(refusal.reason.as_str()),
            Action::Remove(removal) => self.revoked.add(removal.reason.as_str()),
            Action::Install(_) | Action::Note(_) | Action::Release(_) => {}
        }
    }

    /// True while the backend has failed since its last success.
    #[cfg(test)]
    pub(crate) fn fault_ongoing(&self) -> bool {
        self.fault.ongoing()
    }

    /// Carry out `self.delta`; returns the keys whose install failed.
    fn apply_delta(&mut self, backend: &mut dyn Backend, now: Instant) -> Vec<DataKey> {
        let removals: Vec<Element> = self
            .delta
            .removals()
            .map(|(key, nat)| element(key, nat, Duration::from_micros(0)))
            .collect();
        let installs: Vec<Element> = self
            .delta
            .installs()
            .map(|e| element(e.key, e.nat, e.expires().saturating_since(now)))
            .collect();
        let started = (!installs.is_empty()).then(std::time::Instant::now);
        let Applied {
            install_error,
            remove_error,
        } = backend.apply(&removals, &installs);
        if let Some(started) = started {
            let micros = started.elapsed().as_micros();
            self.latency
                .record(u64::try_from(micros).unwrap_or(u64::MAX));
        }
        self.counters.removed += count(removals.len());
        let removals_ok = remove_error.is_none();
        if remove_error.is_some() || install_error.is_some() {
            // The lines of the actions that failed come before the error's.
            self.write_log();
        }
        if let Some(error) = remove_error {
            self.counters.remove_errors += count(removals.len());
            self.counters.netlink_timeouts += u64::from(error.is_timeout());
            self.fault.failed_removals += count(removals.len());
            let line = format!("removing {} expectation(s) failed: {error}", removals.len());
            self.fault_line(now, &line);
        }
        let Some((failed, error)) = install_error else {
            self.counters.installed += count(installs.len());
            // The set takes updates again: an install went in, or (when only removals had
            // failed) a removal did.
            let recovered = if installs.is_empty() {
                removals_ok && !removals.is_empty() && self.fault.failed_installs == 0
            } else {
                true
            };
            if recovered && self.fault.ongoing() {
                self.write_log();
                self.fault_ended();
            }
            return Vec::new();
        };
        self.counters.netlink_timeouts += u64::from(error.is_timeout());
        let took = installs.len().saturating_sub(failed.len());
        self.counters.installed += count(took);
        self.counters.install_errors += count(failed.len());
        self.fault.failed_installs += count(failed.len());
        let line = format!("installing {} expectation(s) failed: {error}", failed.len());
        self.fault_line(now, &line);
        failed
    }

    /// One error line about a failing backend, within [`FAULT_LINE_PERIOD`].
    fn fault_line(&mut self, now: Instant, line: &str) {
        match self.fault.lines.allow(now) {
            Allow::No => {}
            Allow::Yes => log::error!("{}: {line}", self.name),
            Allow::AfterSuppressed(n) => log::error!(
                "{}: {line} (and {n} more failed update(s) since the last line)",
                self.name
            ),
        }
    }

    /// The backend took an update after failures: say so once, start afresh.
    fn fault_ended(&mut self) {
        self.fault.lines.reset();
        // Taken outside the macro: its arguments are not evaluated when the level is off.
        let installs = std::mem::take(&mut self.fault.failed_installs);
        let removals = std::mem::take(&mut self.fault.failed_removals);
        log::info!(
            "{}: set updates work again after {installs} failed install(s) and {removals} \
             failed removal(s)",
            self.name
        );
    }

    /// One line per action, within the log budget (peers must not flood the log). A line is
    /// formatted only when its level is enabled (checked again: `apply` kept only those).
    fn log_action(&mut self, now: Instant, action: &Action) {
        let level = logline::level(action);
        if !log::log_enabled!(level) {
            return;
        }
        let bucket = match action {
            Action::Install(_) | Action::Remove(_) => &mut self.log_budget.pinholes,
            Action::Note(_) | Action::Refuse(_) | Action::Release(_) => {
                &mut self.log_budget.refusals
            }
        };
        match bucket.allow(now) {
            Allow::No => self.counters.log_suppressed += 1,
            Allow::Yes => self.write_line(level, action),
            Allow::AfterSuppressed(n) => {
                log::warn!(
                    "{}: {n} similar log line(s) suppressed (rate limit)",
                    self.name
                );
                self.write_line(level, action);
            }
        }
    }

    /// The line of `action`: text (`logline`), or its JSON event.
    fn write_line(&self, level: log::Level, action: &Action) {
        if eventlog::is_json() {
            let event = report::daemon_event(action, self.queue, eventlog::shift_micros());
            log::log!(target: eventlog::EVENT_TARGET, level, "{event}");
        } else {
            log::log!(level, "{}: {}", self.name, logline::describe(action));
        }
    }
}

impl ApplyCounters {
    /// Every counter with its name, for the stats line.
    pub fn fields(&self) -> [(&'static str, u64); 6] {
        [
            ("installed", self.installed),
            ("install_errors", self.install_errors),
            ("removed", self.removed),
            ("remove_errors", self.remove_errors),
            ("netlink_timeouts", self.netlink_timeouts),
            ("log_suppressed", self.log_suppressed),
        ]
    }
}

/// A key as a backend element with `timeout` left.
pub(crate) fn element(key: DataKey, nat: Option<NatMapping>, timeout: Duration) -> Element {
    Element {
        key,
        nat,
        timeout: std::time::Duration::from_micros(timeout.as_micros()),
    }
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}
