//! [`Engine`]: the sans-IO façade, and the only entry point of the core.
//!
//! Owns: turning each datagram into a [`Verdict`] plus queued [`Action`]s: finding or creating
//! the control connection, driving it, judging its announcements through `policy`, and
//! keeping the expectations consistent (an expectation belongs to exactly one control
//! connection, is bounded per connection, and dies with it). Also flow idle expiry and the
//! global buffer budget. Glue only: parsing lives in `wire`, `stream` and `ftp`.
//!
//! The engine never reads a clock: `now` comes with every call. Time never runs backwards
//! inside the engine (an earlier `now` is treated as the latest one seen).

mod expectations;
mod retry;

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
use crate::flow::control::ControlFlow;
use crate::flow::control::Outcome;
use crate::flow::control::TcpState;
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
    flows: FlowTable<ControlFlow>,
    expectations: ExpectationTable,
    retries: retry::Retries,
    /// The installs queued by the packet being handled: key, origin, end of the line.
    installed_now: Vec<(DataKey, expectations::Origin, u64)>,
    actions: VecDeque<Action>,
    stats: Stats,
    now: Instant,
    next_flow: u64,
    buffered: usize,
}

impl Engine {
    /// An engine with `config`.
    pub fn new(config: Config) -> Self {
        Self {
            flows: FlowTable::new(config.max_flows),
            expectations: ExpectationTable::new(config.expectation_limits()),
            retries: retry::Retries::default(),
            installed_now: Vec::new(),
            config,
            actions: VecDeque::new(),
            stats: Stats::default(),
            now: Instant::default(),
            next_flow: 0,
            buffered: 0,
        }
    }

    /// Handle one IP datagram seen at `now`, and say what to do with it. Actions it caused
    /// are queued for [`Engine::poll_action`]; install them before releasing the datagram.
    pub fn handle_packet(&mut self, now: Instant, datagram: &[u8]) -> Verdict {
        self.now = self.now.max(now);
        self.stats.packets += 1;
        self.installed_now.clear();
        self.expire_expectations();
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
        self.drive(key, &segment)
    }

    /// The next queued action, oldest first.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`Engine::handle_timeout`] should next be called, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.flows.next_deadline(), self.expectations.next_expiry()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Let time pass: control connections idle past their timeout are forgotten (and their
    /// expectations revoked), and expectations past their lifetime are forgotten.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        self.installed_now.clear();
        self.expire_expectations();
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
        self.buffered
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

    /// Make sure a flow exists for `key` if the segment deserves one; false if not tracked.
    fn track(&mut self, key: FlowKey, control: Control, segment: &Segment<'_>) -> bool {
        let opens = segment.control() == wire::Control::Syn
            && segment.ack().is_none()
            && segment.src() == control.client;
        if let Some(flow) = self.flows.get_mut(&key) {
            let reopened = opens && flow.state() == TcpState::Closed;
            if !reopened {
                return true;
            }
        }
        let flow = if opens {
            ControlFlow::from_syn(self.flow_id(), control, segment.seq(), &self.config)
        } else if self.config.midstream_pickup && segment.wire_len() > 0 {
            self.stats.picked_up += 1;
            ControlFlow::picked_up(self.flow_id(), control, &self.config)
        } else {
            return false;
        };
        self.stats.control_connections += 1;
        let deadline = self.now + flow.idle_timeout(&self.config);
        if let Some((old_key, old)) = self.flows.insert(key, flow, deadline) {
            if old_key != key {
                self.stats.flows_evicted += 1;
            }
            self.forget(old_key, &old);
        }
        true
    }

    fn drive(&mut self, key: FlowKey, segment: &Segment<'_>) -> Verdict {
        let (now, config) = (self.now, &self.config);
        // NOTE(unwrap): `track` returned true, so the flow exists.
        let flow = self.flows.get_mut(&key).expect("tracked flow");
        let before = flow.buffered();
        let direction = flow.control().direction_from(segment.src());
        let mut outcome = Outcome::default();
        flow.handle_segment(now, direction, segment, config, &mut outcome);
        let covered = outcome.range;
        let after = flow.buffered();
        let deadline = now + flow.idle_timeout(config);
        self.flows.set_deadline(&key, deadline);
        self.buffered = (self.buffered + after).saturating_sub(before);
        self.count(&outcome);
        self.apply(
            key,
            direction,
            outcome.events.drain(..),
            outcome.first_conflict,
        );
        if let Some(range) = covered.filter(|_| outcome.receipt.retransmitted) {
            self.retry_installs(key, direction, range);
        }
        if outcome.closed {
            self.revoke_all(key, Revocation::ControlClosed);
        }
        self.enforce_budget(key);
        if outcome.receipt.unbuffered {
            self.unjudged_verdict()
        } else {
            Verdict::Accept
        }
    }

    fn count(&mut self, outcome: &Outcome) {
        let receipt = &outcome.receipt;
        self.stats.retransmissions += u64::from(receipt.retransmitted);
        self.stats.out_of_order += u64::from(receipt.out_of_order);
        self.stats.conflicts += u64::from(receipt.conflict);
        self.stats.unbuffered += u64::from(receipt.unbuffered);
        self.stats.untracked += u64::from(outcome.untracked);
        self.stats.gaps += u64::from(outcome.gaps);
        self.stats.lines += u64::from(outcome.lines);
        self.stats.overlong_lines += u64::from(outcome.overlong);
    }

    /// Past the global budget, the connection that just grew drops its out-of-order bytes.
    fn enforce_budget(&mut self, key: FlowKey) {
        if self.buffered <= self.config.max_buffered_bytes {
            return;
        }
        if let Some(flow) = self.flows.get_mut(&key) {
            let shed = flow.shed();
            self.buffered -= shed.min(self.buffered);
            self.stats.shed_bytes += shed as u64;
            log::warn!(
                "buffer budget exceeded: dropped {shed} out-of-order bytes of {}",
                flow.control()
            );
        }
    }

    /// Forget a flow that left the table: revoke what it still owns.
    fn forget(&mut self, key: FlowKey, flow: &ControlFlow) {
        self.buffered = self.buffered.saturating_sub(flow.buffered());
        self.revoke_all(key, Revocation::ControlClosed);
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
