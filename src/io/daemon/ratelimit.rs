//! [`LogBudget`]: how many log lines peers may cause, so that no peer can flood the log.
//!
//! Owns: a token bucket per kind of line (refusals and notes, which any peer can provoke at
//! will; pinhole installs and revocations, which a peer provokes by announcing), and the count
//! of lines it suppressed, reported in one line once lines are allowed again; [`Every`], one
//! line per period about an ongoing fault (a failing set, a full queue). The counters stay
//! exact: only the lines are limited.

use crate::time::Duration;
use crate::time::Instant;

/// A token bucket: `burst` lines at once, then `per_second`.
#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    tokens: f64,
    burst: f64,
    per_second: f64,
    last: Instant,
    suppressed: u64,
}

/// The answer for one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Allow {
    /// Log it.
    Yes,
    /// Log it, after a line saying this many were suppressed before it.
    AfterSuppressed(u64),
    /// Do not log it (counted).
    No,
}

impl Bucket {
    /// A full bucket at `now`.
    pub(crate) fn new(burst: u32, per_second: u32, now: Instant) -> Self {
        Self {
            tokens: f64::from(burst),
            burst: f64::from(burst),
            per_second: f64::from(per_second),
            last: now,
            suppressed: 0,
        }
    }

    /// May one more line be logged at `now`?
    pub(crate) fn allow(&mut self, now: Instant) -> Allow {
        let elapsed: Duration = now.saturating_since(self.last);
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed.as_secs_f64() * self.per_second).min(self.burst);
        if self.tokens < 1.0 {
            self.suppressed += 1;
            return Allow::No;
        }
        self.tokens -= 1.0;
        match std::mem::take(&mut self.suppressed) {
            0 => Allow::Yes,
            n => Allow::AfterSuppressed(n),
        }
    }

    /// Lines suppressed and not yet reported.
    #[cfg(test)]
    pub(crate) fn suppressed(&self) -> u64 {
        self.suppressed
    }
}

/// At most one line per `period` about one ongoing condition (a failing set, a full queue),
/// the first at once; each later line says how many occurrences it stood for.
#[derive(Debug, Clone)]
pub(crate) struct Every {
    period: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl Every {
    /// Nothing logged yet.
    pub(crate) fn new(period: Duration) -> Self {
        Self {
            period,
            last: None,
            suppressed: 0,
        }
    }

    /// May a line about one more occurrence be logged at `now`? `AfterSuppressed(n)`: yes,
    /// and `n` occurrences since the last line were not logged.
    pub(crate) fn allow(&mut self, now: Instant) -> Allow {
        if self
            .last
            .is_some_and(|last| now.saturating_since(last) < self.period)
        {
            self.suppressed += 1;
            return Allow::No;
        }
        self.last = Some(now);
        match std::mem::take(&mut self.suppressed) {
            0 => Allow::Yes,
            n => Allow::AfterSuppressed(n),
        }
    }

    /// The condition ended: the next occurrence is logged at once. Returns the number of
    /// occurrences not logged since the last line.
    pub(crate) fn reset(&mut self) -> u64 {
        self.last = None;
        std::mem::take(&mut self.suppressed)
    }
}

/// The worker's buckets.
#[derive(Debug, Clone)]
pub(crate) struct LogBudget {
    /// Refusals and notes: 50 at once, then 10 per second.
    pub(crate) refusals: Bucket,
    /// Installs and revocations: 2000 at once, then 500 per second.
    pub(crate) pinholes: Bucket,
}

impl LogBudget {
    /// Full buckets at `now`.
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            refusals: Bucket::new(50, 10, now),
            pinholes: Bucket::new(2000, 500, now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Instant {
        Instant::from_micros(ms * 1000)
    }

    #[test]
    fn a_burst_then_the_rate_and_the_suppressed_count_once() {
        let mut b = Bucket::new(3, 10, at(0));
        let answers: Vec<Allow> = (0..5).map(|_| b.allow(at(0))).collect();
        assert_eq!(
            answers,
            vec![Allow::Yes, Allow::Yes, Allow::Yes, Allow::No, Allow::No]
        );
        assert_eq!(b.suppressed(), 2);
        assert_eq!(b.allow(at(50)), Allow::No, "half a token");
        assert_eq!(b.allow(at(100)), Allow::AfterSuppressed(3));
        assert_eq!(b.allow(at(100)), Allow::No);
        assert_eq!(b.allow(at(10_000)), Allow::AfterSuppressed(1));
        assert_eq!(b.allow(at(10_000)), Allow::Yes, "refilled up to the burst");
    }

    #[test]
    fn every_logs_the_first_then_one_per_period_with_the_count() {
        let mut e = Every::new(Duration::from_secs(10));
        assert_eq!(e.allow(at(0)), Allow::Yes);
        assert_eq!(e.allow(at(1)), Allow::No);
        assert_eq!(e.allow(at(9_999)), Allow::No);
        assert_eq!(e.allow(at(10_000)), Allow::AfterSuppressed(2));
        assert_eq!(e.allow(at(10_001)), Allow::No);
        assert_eq!(e.reset(), 1);
        assert_eq!(
            e.allow(at(10_002)),
            Allow::Yes,
            "a new episode starts at once"
        );
    }

    #[test]
    fn a_flood_of_ten_thousand_lines_logs_a_bounded_number() {
        let mut b = Bucket::new(50, 10, at(0));
        // 10,000 refusals over one second.
        let logged = (0..10_000u64)
            .filter(|i| b.allow(at(i / 10)) != Allow::No)
            .count();
        assert!(logged <= 50 + 10 + 1, "{logged} lines logged");
        assert!(logged >= 50);
    }
}
