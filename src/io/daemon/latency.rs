//! [`Latency`]: a histogram of microseconds cheap enough to keep on in production (one
//! index, three additions per sample; no allocation after start). The daemon keeps two per
//! worker: how long the kernel took to acknowledge each pinhole change, and how long each
//! packet waited for its verdict.
//!
//! Owns: the buckets (1 µs wide up to 4 ms, then a few coarse ones up to 1 s, then one
//! overflow bucket), the sum, percentiles read from them, the cumulative counts the metrics
//! endpoint exports ([`Latency::count_at_most`]), and the fields of the pinhole histogram in
//! the stats line (`pinhole_us_p50`, `pinhole_us_p99`, `pinhole_us_max`, `pinholes_timed`).
//! The pinhole time runs from the moment the worker hands the net change to the backend to
//! the kernel's ACK, which is when the packet that announced it may be released
//! (docs/benchmarks.md).

/// Fine buckets of 1 µs: 0..FINE µs.
const FINE: usize = 4096;

/// Upper bounds (µs, inclusive) of the coarse buckets past the fine ones; anything slower
/// goes to the overflow bucket.
pub const COARSE_BOUNDS: [u64; 8] = [
    5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
];

/// A histogram of microseconds.
#[derive(Debug, Clone)]
pub struct Latency {
    fine: Box<[u32]>,
    /// One per [`COARSE_BOUNDS`] entry, then the overflow bucket.
    coarse: [u64; COARSE_BOUNDS.len() + 1],
    total: u64,
    sum: u64,
    max: u64,
}

impl Latency {
    /// An empty histogram.
    pub fn new() -> Self {
        Self {
            fine: vec![0; FINE].into_boxed_slice(),
            coarse: [0; COARSE_BOUNDS.len() + 1],
            total: 0,
            sum: 0,
            max: 0,
        }
    }

    /// Count one sample of `micros`.
    pub fn record(&mut self, micros: u64) {
        match usize::try_from(micros) {
            Ok(m) if m < FINE => self.fine[m] = self.fine[m].saturating_add(1),
            _ => {
                let at = COARSE_BOUNDS.partition_point(|&bound| bound < micros);
                self.coarse[at] += 1;
            }
        }
        self.total += 1;
        self.sum = self.sum.saturating_add(micros);
        self.max = self.max.max(micros);
    }

    /// How many samples there are.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The sum of all samples, in microseconds.
    pub fn sum_micros(&self) -> u64 {
        self.sum
    }

    /// How many samples were at most `micros`: exact below 4096 µs and at each of
    /// [`COARSE_BOUNDS`]; between two coarse bounds, the count at the lower one.
    pub fn count_at_most(&self, micros: u64) -> u64 {
        if let Ok(m) = usize::try_from(micros) {
            if m < FINE {
                return self.fine[..=m].iter().map(|&c| u64::from(c)).sum();
            }
        }
        let fine: u64 = self.fine.iter().map(|&c| u64::from(c)).sum();
        let coarse: u64 = COARSE_BOUNDS
            .iter()
            .zip(self.coarse)
            .take_while(|&(&bound, _)| bound <= micros)
            .map(|(_, count)| count)
            .sum();
        fine + coarse
    }

    /// The smallest value at or below which `permille` / 1000 of the samples lie (0 when
    /// there are none; anything past the fine buckets reads as 4095 µs).
    pub fn percentile(&self, permille: u64) -> u64 {
        let wanted = (self.total * permille).div_ceil(1000).max(1);
        let mut seen = 0;
        for (micros, &count) in self.fine.iter().enumerate() {
            seen += u64::from(count);
            if seen >= wanted {
                return micros as u64;
            }
        }
        if self.total >= wanted {
            return FINE as u64 - 1;
        }
        0
    }

    /// The fields of the pinhole histogram for the stats line.
    pub fn fields(&self) -> [(&'static str, u64); 4] {
        [
            ("pinholes_timed", self.total),
            ("pinhole_us_p50", self.percentile(500)),
            ("pinhole_us_p99", self.percentile(990)),
            ("pinhole_us_max", self.max),
        ]
    }

    /// The same four fields for the verdict histogram (`verdicts_timed`, `verdict_us_p50`,
    /// ...).
    pub fn verdict_fields(&self) -> [(&'static str, u64); 4] {
        [
            ("verdicts_timed", self.total),
            ("verdict_us_p50", self.percentile(500)),
            ("verdict_us_p99", self.percentile(990)),
            ("verdict_us_max", self.max),
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
        assert_eq!(l.percentile(1000), FINE as u64 - 1);
        assert_eq!(l.fields()[3], ("pinhole_us_max", 1_000_000));
        assert_eq!(l.fields()[0], ("pinholes_timed", 101));
    }

    #[test]
    fn cumulative_counts_and_sum() {
        let mut l = Latency::new();
        let samples = [0, 7, 7, 4095, 4096, 5_000, 5_001, 999_999, 2_000_000];
        for s in samples {
            l.record(s);
        }
        assert_eq!(l.count(), samples.len() as u64);
        assert_eq!(l.sum_micros(), samples.iter().sum::<u64>());
        for bound in [0, 6, 7, 4094, 4095, 5_000, 10_000, 1_000_000] {
            let want = samples.iter().filter(|&&s| s <= bound).count() as u64;
            assert_eq!(l.count_at_most(bound), want, "at most {bound}");
        }
    }
}
