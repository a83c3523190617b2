//! [`Latency`]: how long the kernel took to acknowledge each pinhole change, as a histogram
//! cheap enough to keep on in production (two clock reads per backend call that installs,
//! one counter increment; no allocation after start).
//!
//! Owns: the buckets (1 µs wide up to 4 ms, then one overflow bucket), percentiles read from
//! them, and their fields in the stats line (`pinhole_us_p50`, `pinhole_us_p99`,
//! `pinhole_us_max`, `pinholes_timed`). Measured from the moment the worker hands the net
//! change to the backend to the kernel's ACK, which is when the packet that announced it may
//! be released (docs/benchmarks.md).

/// Buckets of 1 µs: 0..BUCKETS µs, the last one also holds everything slower.
const BUCKETS: usize = 4096;

/// A histogram of microseconds.
#[derive(Debug, Clone)]
pub struct Latency {
    counts: Box<[u32]>,
    total: u64,
    max: u64,
}

impl Latency {
    /// An empty histogram.
    pub fn new() -> Self {
        Self {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            total: 0,
            max: 0,
        }
    }

    /// Count one sample of `micros`.
    pub fn record(&mut self, micros: u64) {
        let bucket = usize::try_from(micros).map_or(BUCKETS - 1, |m| m.min(BUCKETS - 1));
        self.counts[bucket] = self.counts[bucket].saturating_add(1);
        self.total += 1;
        self.max = self.max.max(micros);
    }

    /// The smallest value at or below which `permille` / 1000 of the samples lie (0 when
    /// there are none; the overflow bucket reads as its lower bound).
    pub fn percentile(&self, permille: u64) -> u64 {
        let wanted = (self.total * permille).div_ceil(1000).max(1);
        let mut seen = 0;
        for (micros, &count) in self.counts.iter().enumerate() {
            seen += u64::from(count);
            if seen >= wanted {
                return micros as u64;
            }
        }
        0
    }

    /// The fields for the stats line.
    pub fn fields(&self) -> [(&'static str, u64); 4] {
        [
            ("pinholes_timed", self.total),
            ("pinhole_us_p50", self.percentile(500)),
            ("pinhole_us_p99", self.percentile(990)),
            ("pinhole_us_max", self.max),
        ]
    }
}

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_spread() {
        let mut l = Latency::new();
        assert_eq!(l.fields()[1], ("pinhole_us_p50", 0));
        for micros in 1..=100 {
            l.record(micros);
        }
        assert_eq!(l.percentile(500), 50);
        assert_eq!(l.percentile(990), 99);
        assert_eq!(l.percentile(1000), 100);
        l.record(1_000_000);
        assert_eq!(l.percentile(1000), BUCKETS as u64 - 1);
        assert_eq!(l.fields()[3], ("pinhole_us_max", 1_000_000));
        assert_eq!(l.fields()[0], ("pinholes_timed", 101));
    }
}
