//! The engine's side of control connections: creating one for a segment that deserves it,
//! driving it, turning it into a tombstone once it is no longer read, moving it between the
//! flow table's tiers as it proves itself, and forgetting it (with its expectations) when it
//! ends, expires or is evicted. The eviction order itself belongs to `flow::table`.

use crate::action::Verdict;
use crate::expect::Revocation;
use crate::flow::Control;
use crate::flow::FlowKey;
use crate::flow::Tracked;
use crate::flow::control::ControlFlow;
use crate::flow::control::Outcome;
use crate::flow::control::TcpState;
use crate::flow::silent::Quiet;
use crate::flow::table::At;
use crate::flow::table::Displaced;
use crate::flow::table::Tier;
use crate::time::Duration;
use crate::time::Instant;
use crate::wire;
use crate::wire::Segment;

use super::Engine;

/// How often a warning about evicted proven sessions may be logged.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Something worth a warning that may happen very often: counted always, logged at most once
/// per [`WARN_EVERY`] with the count since the last line.
#[derive(Debug, Default)]
pub(super) struct Occasional {
    since_logged: u64,
    last: Option<Instant>,
}

impl Occasional {
    /// Count one; returns how many to report if a line is due at `now`.
    pub(super) fn count(&mut self, now: Instant) -> Option<u64> {
        self.since_logged += 1;
        let due = self
            .last
            .is_none_or(|last| now.saturating_since(last) >= WARN_EVERY);
        if !due {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.since_logged))
    }
}

impl Engine {
    /// Make sure a flow exists for `key` if the segment deserves one; false if not tracked.
    pub(super) fn track(&mut self, key: FlowKey, control: Control, segment: &Segment<'_>) -> bool {
        let opens = segment.control() == wire::Control::Syn
            && segment.ack().is_none()
            && segment.src() == control.client;
        if let Some(tracked) = self.flows.get(&key) {
            let reopened = opens && tracked.state() == TcpState::Closed;
            if !reopened {
                return true;
            }
        }
        let picked_up = !opens;
        let flow = if opens {
            ControlFlow::from_syn(self.flow_id(), control, segment.seq(), &self.config)
        } else if self.config.midstream_pickup && segment.wire_len() > 0 {
            ControlFlow::picked_up(self.flow_id(), control, &self.config)
        } else {
            return false;
        };
        let deadline = self.now + flow.idle_timeout(&self.config);
        let tracked = Tracked::Reading(Box::new(flow));
        let source = segment.src().ip();
        match self
            .flows
            .insert(key, tracked, Tier::Unproven, source, deadline)
        {
            Ok(displaced) => {
                for (old_key, old, why) in displaced {
                    self.displaced(old_key, &old, why);
                }
            }
            Err(_) => {
                self.stats.flows_prefix_refused += 1;
                log::debug!(
                    "{control}: not tracked, its source prefix holds its cap of unproven flows"
                );
                return false;
            }
        }
        self.stats.control_connections += 1;
        self.stats.picked_up += u64::from(picked_up);
        true
    }

    /// Hand the segment to its (tracked) flow, and act on what it did.
    pub(super) fn drive(
        &mut self,
        key: FlowKey,
        control: Control,
        segment: &Segment<'_>,
    ) -> Verdict {
        let (now, config) = (self.now, &self.config);
        // Looked up once: nothing below inserts or removes this flow (a touch may displace
        // others, never the flow touched), so `at` stays valid to the end.
        let Some(at) = self.flows.locate(&key) else {
            return Verdict::Accept;
        };
        let Some(tracked) = self.flows.get_mut_at(at) else {
            return Verdict::Accept;
        };
        let tier_before = tracked.tier();
        let flow = match tracked {
            Tracked::Reading(flow) => flow,
            Tracked::Silent(silent) => {
                let direction = control.direction_from(segment.src());
                let closed = silent.handle_segment(direction, segment);
                let (tier, deadline) = (silent.tier(), now + silent.idle_timeout(config));
                if let Some((old_key, old, why)) = self.flows.touch_at(at, tier, deadline) {
                    self.displaced(old_key, &old, why);
                }
                if closed {
                    self.revoke_all(key, Revocation::ControlClosed);
                }
                return Verdict::Accept;
            }
        };
        let before = flow.buffered();
        let direction = flow.control().direction_from(segment.src());
        let mut outcome = self.outcome.take().unwrap_or_default();
        outcome.reset();
        flow.handle_segment(now, direction, segment, config, &mut outcome);
        let after = flow.buffered();
        self.budget
            .account((before, tier_before), (after, flow.tier()));
        self.count(&outcome);
        // Most segments carry no event: no need to look the flow up again.
        if !outcome.events.is_empty() || outcome.first_conflict {
            self.apply(
                key,
                direction,
                outcome.events.drain(..),
                outcome.first_conflict,
            );
        }
        if let Some(range) = outcome.range.filter(|_| outcome.receipt.retransmitted) {
            self.retry_installs(key, direction, range);
        }
        if outcome.closed {
            self.revoke_all(key, Revocation::ControlClosed);
        }
        self.enforce_budget(at);
        self.settle(key, at, tier_before);
        let unbuffered = outcome.receipt.unbuffered;
        self.outcome = Some(outcome);
        if unbuffered {
            self.unjudged_verdict()
        } else {
            Verdict::Accept
        }
    }

    /// Forget a flow that left the table: revoke what it still owns.
    pub(super) fn forget(&mut self, key: FlowKey, tracked: &Tracked) {
        self.budget.release(tracked.buffered(), tracked.tier());
        self.revoke_all(key, Revocation::ControlClosed);
        self.forget_nat(key);
    }

    /// After a segment: a flow no longer read becomes a tombstone; the flow moves to the tier
    /// it has earned, with the deadline of its new state.
    fn settle(&mut self, key: FlowKey, at: At, tier_before: Tier) {
        let Some(tracked) = self.flows.get_mut_at(at) else {
            return;
        };
        let mut poisoned = false;
        if let Tracked::Reading(flow) = tracked {
            if let Some(silent) = flow.silenced() {
                self.budget.release(flow.buffered(), flow.tier());
                *tracked = Tracked::Silent(silent);
                poisoned = silent.why() == Quiet::Poisoned;
            }
        }
        let (tier, deadline) = (
            tracked.tier(),
            self.now + tracked.idle_timeout(&self.config),
        );
        if poisoned {
            self.revoke_all(key, Revocation::NotFtp);
        }
        if tier_before != Tier::Proven && tier == Tier::Proven {
            self.stats.flows_proven += 1;
        }
        if let Some((old_key, old, why)) = self.flows.touch_at(at, tier, deadline) {
            self.displaced(old_key, &old, why);
        }
    }

    /// A flow the table pushed out to make room, or replaced.
    fn displaced(&mut self, key: FlowKey, old: &Tracked, why: Displaced) {
        match why {
            Displaced::Replaced => {}
            Displaced::SourceCap => self.stats.flows_source_capped += 1,
            Displaced::Evicted(tier) => {
                self.stats.flows_evicted += 1;
                if tier == Tier::Proven {
                    self.stats.flows_evicted_proven += 1;
                    if let Some(n) = self.proven_evictions.count(self.now) {
                        log::warn!(
                            "flow table full ({} flows, all proven): evicted {n} proven FTP \
                             session(s) since the last warning; raise --max-flows",
                            self.flows.len()
                        );
                    }
                }
            }
        }
        self.forget(key, old);
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
}
