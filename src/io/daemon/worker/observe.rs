//! What a worker tells about itself beyond the packets: the latency of each verdict, and the
//! snapshots it offers to the metrics endpoint (`io::metrics`).
//!
//! Owns: building a [`QueueSnapshot`] from the worker's, the applier's and the engine's
//! counters, and offering it without waiting.

use super::Worker;
use crate::flow::table::Tier;
use crate::io::metrics::HistogramSnapshot;
use crate::io::metrics::QueueSnapshot;
use crate::time::Instant;

impl Worker {
    /// Count the latency of a verdict just given for a packet received at `received`.
    pub(super) fn verdict_given(&mut self, received: Instant) {
        let micros = self.clock.now().saturating_since(received).as_micros();
        self.verdict_latency.record(micros);
    }

    /// Offer a snapshot of every counter to the metrics endpoint (skipped, not waited for,
    /// if a scrape holds the slot).
    pub(super) fn publish(&self, now: Instant) {
        let Some((queue, slot)) = &self.metrics else {
            return;
        };
        slot.offer(self.snapshot(*queue, now));
    }

    /// Everything this worker counts, at `now`.
    pub(crate) fn snapshot(&self, queue: u16, now: Instant) -> QueueSnapshot {
        let tier = |t| self.engine.flow_count_of(t) as u64;
        QueueSnapshot {
            queue,
            taken_micros: now.as_micros(),
            worker: self.counters.fields().to_vec(),
            apply: self.applier.counters().fields().to_vec(),
            engine: self.engine.stats().fields(),
            flows: [
                ("spent", tier(Tier::Spent)),
                ("unproven", tier(Tier::Unproven)),
                ("proven", tier(Tier::Proven)),
            ],
            expectations: self.engine.expectations().len() as u64,
            refused: self.applier.refused().clone(),
            revoked: self.applier.revoked().clone(),
            backend_latency: HistogramSnapshot::of(self.applier.latency()),
            verdict_latency: HistogramSnapshot::of(&self.verdict_latency),
        }
    }
}
