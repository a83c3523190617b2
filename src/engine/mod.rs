//! [`Engine`]: the sans-IO façade, and the only entry point of the core.
//!
//! Owns: turning each datagram into a [`Verdict`] plus queued [`Action`]s: finding or creating
//! the control connection and driving it (`flows`), judging its announcements through
//! `policy` and turning them into expectations (`expectations`; the invariants live in
//! [`ExpectationTable`]), retrying installs the shell could not carry out (`retry`), flow
//! idle expiry, and the global buffer budget (`budget`). Glue only: parsing lives in `wire`,
//! `stream` and `ftp`, the eviction order in `flow::table`.
//!
//! The engine never reads a clock: `now` comes with every call. Time never runs backwards
//! inside the engine (an earlier `now` is treated as the latest one seen).

mod budget;
mod expectations;
mod flows;
mod nat;
mod retry;
pub mod snapshot;

use std::collections::VecDeque;

use crate::action::Action;
use crate::action::Note;
use crate::action::Verdict;
use crate::config::Config;
use crate::config::Unjudged;
use crate::expect::DataKey;
use crate::expect::Revocation;
use crate::expect::table::ExpectationTable;
use crate::flow::Control;
use crate::flow::FlowId;
use crate::flow::FlowKey;
use crate::flow::Tracked;
use crate::flow::table::FlowTable;
use crate::stats::Stats;
use crate::time::Instant;
use crate::wire;
use crate::wire::Datagram;
use crate::wire::Segment;

/// The FTP ALG engine.
#[derive(Debug)]
pub struct Engine {
    config: Config,
    flows: FlowTable<Tracked>,
    expectations: ExpectationTable,
    retries: retry::Retries,
    /// The installs queued by the packet being handled: key, origin, end of the line.
    installed_now: Vec<(DataKey, expectations::Origin, u64)>,
    actions: VecDeque<Action>,
    stats: Stats,
    now: Instant,
    next_flow: u64,
    budget: budget::Budget,
    /// Proven flows evicted since the last warning about it.
    proven_evictions: flows::Occasional,
    /// Budget overruns since the last warning about them.
    budget_warnings: flows::Occasional,
    /// Scratch for what one segment did (its buffers are reused). Boxed, so that taking it
    /// out for a segment and putting it back moves a pointer, not the whole struct.
    outcome: Option<Box<crate::flow::control::Outcome>>,
    /// Translated control connections (NAT).
    nat: nat::NatTable,
}

impl Engine {
    /// An engine with `config`.
    pub fn new(config: Config) -> Self {
        Self {
            flows: FlowTable::new(config.flow_limits()),
            expectations: ExpectationTable::new(config.expectation_limits()),
            retries: retry::Retries::default(),
            installed_now: Vec::new(),
            config,
            actions: VecDeque::new(),
            stats: Stats::default(),
            now: Instant::default(),
            next_flow: 0,
            budget: budget::Budget::default(),
            proven_evictions: flows::Occasional::default(),
            budget_warnings: flows::Occasional::default(),
            outcome: None,
            nat: nat::NatTable::default(),
        }
    }

    /// Handle one IP datagram seen at `now`, and say what to do with it. Actions it caused
    /// are queued for [`Engine::poll_action`]; install them before releasing the datagram.
    pub fn handle_packet(&mut self, now: Instant, datagram: &[u8]) -> Verdict {
        self.now = self.now.max(now);
        self.stats.packets += 1;
        self.installed_now.clear();
        self.expire_expectations();
        match wire::peek(datagram) {
            wire::Peek::Other => return self.ignore(),
            wire::Peek::Tcp(src, dst)
                if !self.config.is_control_port(dst) && !self.config.is_control_port(src) =>
            {
                return self.ignore();
            }
            wire::Peek::Tcp(..) | wire::Peek::Unsure => {}
        }
        let segment = match wire::parse(datagram) {
            Ok(Datagram::Tcp(segment)) => segment,
            Ok(Datagram::Other(_)) => return self.ignore(),
            Err(error) => return self.unjudged(error),
        };
        let Some(control) = self.control_of(&segment) else {
            return self.ignore();
        };
        self.stats.control_packets += 1;
        if self.config.verify_checksums && segment.checksum_ok() == Some(false) {
            self.stats.bad_checksums += 1;
            return Verdict::Accept;
        }
        let key = FlowKey::new(segment.src(), segment.dst());
        if !self.track(key, control, &segment) {
            self.stats.untracked += 1;
            return Verdict::Accept;
        }
        if self.config.nat.is_on() {
            return self.drive_nat(key, control, &segment, datagram);
        }
        self.drive(key, control, &segment)
    }

    /// The next queued action, oldest first.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// True when actions are queued for [`Engine::poll_action`].
    #[must_use]
    pub fn has_actions(&self) -> bool {
        !self.actions.is_empty()
    }

    /// When [`Engine::handle_timeout`] should next be called, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        // Called before every packet by replay: plain comparisons, no iterator chain.
        let earliest = |a: Option<Instant>, b: Option<Instant>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, None) => a,
            (None, b) => b,
        };
        let flows = earliest(self.flows.next_deadline(), self.expectations.next_expiry());
        earliest(flows, self.nat.next_deadline())
    }

    /// Let time pass: control connections idle past their timeout are forgotten (and their
    /// expectations revoked), and expectations past their lifetime are forgotten.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        self.installed_now.clear();
        self.expire_expectations();
        self.expire_held();
        while let Some((key, flow)) = self.flows.pop_expired(self.now) {
            self.stats.flows_expired += 1;
            self.forget(key, &flow);
        }
    }

    /// The shell could not install `keys` (queued by the last [`Engine::handle_packet`]).
    /// They leave the engine's expectations, a `Remove` is queued for each so that the kernel
    /// surely does not hold them either, and a retransmission of the segment that announced
    /// them installs them again.
    pub fn handle_install_error(&mut self, now: Instant, keys: &[DataKey]) {
        self.now = self.now.max(now);
        self.withdraw_failed(keys);
    }

    /// Revoke every expectation (the daemon stops with `--cleanup`): a `Remove` is queued for
    /// each one still alive, and the engine holds none afterwards.
    pub fn revoke_everything(&mut self, now: Instant) {
        self.now = self.now.max(now);
        for expectation in self.expectations.remove_all() {
            self.revoke(expectation, Revocation::Shutdown);
        }
    }

    /// The expectations held now: exactly what the kernel set must hold once the queued
    /// actions are carried out.
    pub fn expectations(&self) -> &ExpectationTable {
        &self.expectations
    }

    /// The counters so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Control connections tracked now.
    pub fn flow_count(&self) -> usize {
        self.flows.len()
    }

    /// Bytes buffered now, over all connections.
    pub fn buffered(&self) -> usize {
        self.budget.total()
    }

    /// Control connections tracked now in `tier`.
    pub fn flow_count_of(&self, tier: crate::flow::table::Tier) -> usize {
        self.flows.len_of(tier)
    }

    fn ignore(&mut self) -> Verdict {
        self.stats.ignored += 1;
        Verdict::Accept
    }

    fn unjudged(&mut self, error: wire::Error) -> Verdict {
        match error {
            wire::Error::Fragment => self.stats.fragments += 1,
            wire::Error::MalformedIp(_) | wire::Error::MalformedTcp(_) => {
                self.stats.malformed_packets += 1
            }
        }
        log::debug!("unjudged datagram: {error}");
        self.unjudged_verdict()
    }

    fn unjudged_verdict(&self) -> Verdict {
        match self.config.unjudged {
            Unjudged::Accept => Verdict::Accept,
            Unjudged::Drop => Verdict::Drop,
        }
    }

    /// Who is client and server, if the segment belongs to a control port (the destination's
    /// port is preferred when both are control ports).
    fn control_of(&self, segment: &Segment<'_>) -> Option<Control> {
        if self.config.is_control_port(segment.dst().port()) {
            Some(Control {
                client: segment.src(),
                server: segment.dst(),
            })
        } else if self.config.is_control_port(segment.src().port()) {
            Some(Control {
                client: segment.dst(),
                server: segment.src(),
            })
        } else {
            None
        }
    }

    fn note(&mut self, note: Note) {
        self.actions.push_back(Action::Note(note));
    }

    fn flow_id(&mut self) -> FlowId {
        self.next_flow += 1;
        FlowId(self.next_flow)
    }
}

#[cfg(test)]
mod tests;
