//! [`QueueSnapshot`]: one worker's counters at one instant, as the metrics endpoint exports
//! them.
//!
//! Owns: the copy handed from a worker to the serving thread (plain values, no references
//! into the worker), the reduction of a [`Latency`] histogram to the exported buckets
//! ([`HistogramSnapshot`], cumulative), and [`ReasonCounts`], the refusals and revocations
//! counted per reason.

use crate::io::daemon::latency::Latency;

/// Upper bounds of the exported histogram buckets, in microseconds (`le` in seconds); each is
/// exact in [`Latency`] (below 4096 µs, or one of its coarse bounds).
pub(crate) const BOUNDS_MICROS: [u64; 17] = [
    5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 4_000, 5_000, 10_000, 25_000, 50_000, 100_000,
    250_000, 1_000_000,
];

/// One worker's counters, gauges and histograms.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct QueueSnapshot {
    /// The queue number.
    pub(crate) queue: u16,
    /// When it was taken (monotonic clock, µs).
    pub(crate) taken_micros: u64,
    /// The worker's counters (`Counters::fields`).
    pub(crate) worker: Vec<(&'static str, u64)>,
    /// What reached the kernel (`ApplyCounters::fields`).
    pub(crate) apply: Vec<(&'static str, u64)>,
    /// The engine's counters (`Stats::fields`).
    pub(crate) engine: Vec<(&'static str, u64)>,
    /// Control connections tracked now, per tier (`spent`, `unproven`, `proven`).
    pub(crate) flows: [(&'static str, u64); 3],
    /// Expectations live now (what the kernel set holds for this queue).
    pub(crate) expectations: u64,
    /// Announcements refused, per reason.
    pub(crate) refused: ReasonCounts,
    /// Expectations revoked, per reason.
    pub(crate) revoked: ReasonCounts,
    /// Backend call to kernel ACK, for changes that install.
    pub(crate) backend_latency: HistogramSnapshot,
    /// Packet received to verdict sent.
    pub(crate) verdict_latency: HistogramSnapshot,
}

/// A histogram reduced to the exported buckets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct HistogramSnapshot {
    /// Samples at most each of [`BOUNDS_MICROS`] (cumulative, so never decreasing).
    pub(crate) cumulative: Vec<u64>,
    /// All samples (the `+Inf` bucket).
    pub(crate) count: u64,
    /// Their sum, in microseconds.
    pub(crate) sum_micros: u64,
}

/// Counts per reason (`Reason::as_str`, `Revocation::as_str`): a handful of static names, so
/// a short list searched in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ReasonCounts(Vec<(&'static str, u64)>);

impl QueueSnapshot {
    /// A snapshot of queue `queue` with nothing counted.
    #[cfg(test)]
    pub(crate) fn empty(queue: u16, taken_micros: u64) -> Self {
        Self {
            queue,
            taken_micros,
            worker: Vec::new(),
            apply: Vec::new(),
            engine: Vec::new(),
            flows: [("spent", 0), ("unproven", 0), ("proven", 0)],
            expectations: 0,
            refused: ReasonCounts::default(),
            revoked: ReasonCounts::default(),
            backend_latency: HistogramSnapshot::of(&Latency::new()),
            verdict_latency: HistogramSnapshot::of(&Latency::new()),
        }
    }
}

impl HistogramSnapshot {
    /// `latency` at the exported bounds.
    pub(crate) fn of(latency: &Latency) -> Self {
        Self {
            cumulative: BOUNDS_MICROS
                .iter()
                .map(|&bound| latency.count_at_most(bound))
                .collect(),
            count: latency.count(),
            sum_micros: latency.sum_micros(),
        }
    }
}

impl ReasonCounts {
    /// Count one more of `reason`.
    pub(crate) fn add(&mut self, reason: &'static str) {
        match self.0.iter_mut().find(|(name, _)| *name == reason) {
            Some((_, count)) => *count += 1,
            None => self.0.push((reason, 1)),
        }
    }

    /// Every reason seen, with its count, sorted by name.
    pub(crate) fn sorted(&self) -> Vec<(&'static str, u64)> {
        let mut all = self.0.clone();
        all.sort_unstable();
        all
    }

    /// The sum over every reason.
    #[cfg(test)]
    pub(crate) fn total(&self) -> u64 {
        self.0.iter().map(|(_, count)| count).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_end_at_the_count() {
        let mut latency = Latency::new();
        for micros in [3, 9, 40, 40, 700, 4_500, 70_000, 3_000_000] {
            latency.record(micros);
        }
        let h = HistogramSnapshot::of(&latency);
        assert_eq!(h.cumulative.len(), BOUNDS_MICROS.len());
        assert!(h.cumulative.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(h.cumulative[0], 1, "at most 5 µs");
        assert_eq!(h.cumulative[3], 4, "at most 50 µs");
        assert_eq!(*h.cumulative.last().unwrap(), 7, "at most 1 s");
        assert_eq!(h.count, 8);
        assert_eq!(h.sum_micros, 3_075_292);
    }

    #[test]
    fn reasons_add_up() {
        let mut r = ReasonCounts::default();
        for reason in ["hijack", "bounce", "hijack"] {
            r.add(reason);
        }
        assert_eq!(r.sorted(), vec![("bounce", 1), ("hijack", 2)]);
        assert_eq!(r.total(), 3);
    }
}
