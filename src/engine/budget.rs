//! The global buffer budget: every byte buffered over all connections is counted (partial
//! lines, lines held for the greeting or an AUTH answer, lines of multi-line replies,
//! out-of-order bytes, the history kept to spot conflicting retransmissions), and capped.
//!
//! Unproven connections may hold at most half of the budget between them, so however many a
//! flood opens, proven sessions always have the other half. Past a bound, the connection whose
//! packet crossed it sheds, cheapest loss first:
//! 1. its out-of-order bytes and history (TCP retransmits; nothing is lost), then
//! 2. its unfinished lines, multi-line reply lines and held lines (each direction resumes at
//!    its next LF; an announcement among them gets no pinhole, the safe side).
//!
//! Both are counted (`shed_bytes`, `shed_lines`) and logged.

use crate::flow::Tracked;
use crate::flow::table::At;
use crate::flow::table::Tier;

use super::Engine;

/// Bytes buffered, in all and by unproven connections.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Budget {
    total: usize,
    unproven: usize,
}

impl Budget {
    /// A connection went from `before` bytes in one tier to `after` bytes in another.
    pub(super) fn account(&mut self, before: (usize, Tier), after: (usize, Tier)) {
        self.release(before.0, before.1);
        self.total += after.0;
        if after.1 == Tier::Unproven {
            self.unproven += after.0;
        }
    }

    /// A connection that held `bytes` in `tier` let them go.
    pub(super) fn release(&mut self, bytes: usize, tier: Tier) {
        self.total = self.total.saturating_sub(bytes);
        if tier == Tier::Unproven {
            self.unproven = self.unproven.saturating_sub(bytes);
        }
    }

    /// Bytes buffered in all.
    pub(super) fn total(&self) -> usize {
        self.total
    }

    /// Whether a connection in `tier` that just grew must shed.
    fn over(&self, max: usize, tier: Tier) -> bool {
        self.total > max || (tier == Tier::Unproven && self.unproven > max / 2)
    }
}

impl Engine {
    /// Past the budget, the connection that just grew sheds (see the module doc).
    pub(super) fn enforce_budget(&mut self, at: At) {
        let max = self.config.max_buffered_bytes;
        let Some(Tracked::Reading(flow)) = self.flows.get_mut_at(at) else {
            return;
        };
        let tier = flow.tier();
        if !self.budget.over(max, tier) {
            return;
        }
        let before = flow.buffered();
        let shed = flow.shed_reassembly();
        self.budget.account((before, tier), (flow.buffered(), tier));
        self.stats.shed_bytes += shed as u64;
        let mut lines = 0;
        if self.budget.over(max, tier) {
            let before = flow.buffered();
            lines = flow.shed_lines();
            let after = flow.buffered();
            self.stats.shed_bytes += before.saturating_sub(after) as u64;
            self.stats.shed_lines += lines as u64;
            self.budget.account((before, tier), (after, tier));
        }
        let control = *flow.control();
        if let Some(n) = self.budget_warnings.count(self.now) {
            log::warn!(
                "buffer budget exceeded {n} time(s) since the last warning; last: {control} \
                 shed {shed} reassembly byte(s) and {lines} line(s)"
            );
        }
    }
}
