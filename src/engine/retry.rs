//! [`Retries`]: installs the shell could not carry out, waiting for the segment that
//! announced them to come again.
//!
//! Owns: remembering, per control connection and direction, each failed expectation with the
//! stream offset where its announcing line ended, until the segment carrying that offset is
//! retransmitted (then it is handed back, to be installed again) or its lifetime is over. A
//! shell that drops a packet whose install failed (`--on-install-error drop`) relies on this:
//! the stream has already consumed the line, so without it the retransmission would be
//! released with no pinhole behind it. Bounded per connection (the expectation bound) and in
//! all ([`MAX_RETRIES`], the oldest forgotten first).

use crate::hashing::HashMap;
use std::collections::VecDeque;

use crate::expect::Expectation;
use crate::flow::Direction;
use crate::flow::FlowKey;
use crate::time::Instant;

/// Failed installs remembered over all connections.
pub(super) const MAX_RETRIES: usize = 4096;

/// One failed install.
#[derive(Debug, Clone)]
pub(super) struct Retry {
    /// The expectation to install again.
    pub(super) expectation: Expectation,
    /// The direction of the line that announced it.
    pub(super) direction: Direction,
    /// The stream offset just past that line.
    pub(super) line_end: u64,
}

/// Failed installs by control connection.
#[derive(Debug, Default)]
pub(super) struct Retries {
    by_flow: HashMap<FlowKey, Vec<Retry>>,
    /// Connections in the order retries were remembered (for dropping the oldest).
    order: VecDeque<FlowKey>,
    count: usize,
    /// No retry expires before this.
    earliest: Option<Instant>,
}

impl Retries {
    /// Remember `retry` for `flow` (at most `per_flow` per connection, oldest dropped).
    pub(super) fn remember(&mut self, flow: FlowKey, retry: Retry, per_flow: usize) {
        let expires = retry.expectation.expires();
        self.earliest = Some(self.earliest.map_or(expires, |e| e.min(expires)));
        let list = self.by_flow.entry(flow).or_default();
        let before = list.len();
        list.retain(|r| r.expectation.key != retry.expectation.key);
        list.push(retry);
        if list.len() > per_flow.max(1) {
            list.remove(0);
        }
        self.count = self.count + list.len() - before;
        self.order.push_back(flow);
        while self.count > MAX_RETRIES {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            self.drop_first(oldest);
        }
        self.compact_order();
    }

    /// Take `flow`'s retries whose line ended inside `range` (offsets `[from, to)`) of
    /// `direction`.
    pub(super) fn take_covered(
        &mut self,
        flow: FlowKey,
        direction: Direction,
        (from, to): (u64, u64),
    ) -> Vec<Retry> {
        let Some(list) = self.by_flow.get_mut(&flow) else {
            return Vec::new();
        };
        let covered = |r: &Retry| r.direction == direction && from < r.line_end && r.line_end <= to;
        let (taken, kept): (Vec<Retry>, Vec<Retry>) = list.drain(..).partition(covered);
        *list = kept;
        if list.is_empty() {
            self.by_flow.remove(&flow);
        }
        self.count -= taken.len();
        taken
    }

    /// Forget `flow`'s retries (it closed or was reset).
    pub(super) fn forget_flow(&mut self, flow: FlowKey) {
        if let Some(list) = self.by_flow.remove(&flow) {
            self.count -= list.len();
        }
    }

    /// Forget retries whose expectation's lifetime is over at `now`.
    #[inline]
    pub(super) fn expire(&mut self, now: Instant) {
        if self.earliest.is_none_or(|earliest| earliest > now) {
            return;
        }
        self.expire_due(now);
    }

    /// [`Retries::expire`] when the earliest retry is due.
    fn expire_due(&mut self, now: Instant) {
        let mut earliest: Option<Instant> = None;
        self.by_flow.retain(|_, list| {
            list.retain(|r| r.expectation.expires() > now);
            for r in list.iter() {
                let at = r.expectation.expires();
                earliest = Some(earliest.map_or(at, |e| e.min(at)));
            }
            !list.is_empty()
        });
        self.earliest = earliest;
        self.count = self.by_flow.values().map(Vec::len).sum();
        self.compact_order();
    }

    fn drop_first(&mut self, flow: FlowKey) {
        let Some(list) = self.by_flow.get_mut(&flow) else {
            return;
        };
        if !list.is_empty() {
            list.remove(0);
            self.count -= 1;
        }
        if list.is_empty() {
            self.by_flow.remove(&flow);
        }
    }

    /// Keep the order queue proportional to what is remembered.
    fn compact_order(&mut self) {
        if self.order.len() > 2 * self.count + 64 {
            let live = &self.by_flow;
            self.order.retain(|flow| live.contains_key(flow));
        }
    }
}
