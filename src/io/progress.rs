//! A progress line for long replays: packets, bytes, rate and time left, redrawn in place on
//! stderr at most [`INTERVAL`] apart and cleared at the end.
//!
//! Owns: when to redraw ([`Throttle`]), what the line says ([`line`]), and writing it
//! ([`Progress`]). Silent unless stderr is a terminal ([`Progress::stderr`] asks `IsTerminal`;
//! and stdout is not, where the events themselves show the progress), so a replay whose stderr
//! goes to a file or a pipe never carries it. Does not own
//! counting: the replay loop reports the packets and bytes it has read.

use std::io::IsTerminal;
use std::io::Write;
use std::time::Duration;

/// The shortest time between two redraws (five a second at most).
pub const INTERVAL: Duration = Duration::from_millis(200);

/// How many updates pass between two looks at the clock (a replay reads about a million
/// packets a second; the clock is not free).
const CLOCK_EVERY: u64 = 256;

/// Where a replay is at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    /// Capture records read.
    pub packets: u64,
    /// Capture bytes read.
    pub bytes: u64,
    /// The capture bytes in all (the files' sizes), when known.
    pub total: Option<u64>,
    /// Time since the replay started.
    pub elapsed: Duration,
}

/// Decides when a redraw is due: the first update, then no sooner than `interval` after the
/// last redraw.
#[derive(Debug, Clone, Copy)]
pub struct Throttle {
    interval: Duration,
    last: Option<Duration>,
}

/// The progress line of a replay, on a terminal; does nothing when off.
pub struct Progress {
    out: Option<Box<dyn Write>>,
    started: std::time::Instant,
    throttle: Throttle,
    total: Option<u64>,
    /// Updates since the clock was last read.
    skipped: u64,
    /// A line is on the screen (to be cleared).
    drawn: bool,
}

impl Throttle {
    /// Redraw at most once per `interval`.
    pub const fn new(interval: Duration) -> Self {
        Self {
            interval,
            last: None,
        }
    }

    /// Whether to redraw at `elapsed`; if so, it counts as drawn.
    pub fn due(&mut self, elapsed: Duration) -> bool {
        let due = self
            .last
            .is_none_or(|last| elapsed.saturating_sub(last) >= self.interval);
        if due {
            self.last = Some(elapsed);
        }
        due
    }
}

impl Progress {
    /// Progress on stderr, when stderr is a terminal and stdout is not (silent otherwise:
    /// when the events go to the same terminal, they show the progress, and a line redrawn
    /// between them would garble them). `total` is the capture bytes in all, if known (it
    /// gives the percentage and the time left).
    pub fn stderr(total: Option<u64>) -> Self {
        let stderr = std::io::stderr();
        let on = stderr.is_terminal() && !std::io::stdout().is_terminal();
        Self::new(on.then(|| Box::new(stderr) as Box<dyn Write>), total)
    }

    /// Progress written to `out`, or none.
    pub fn new(out: Option<Box<dyn Write>>, total: Option<u64>) -> Self {
        Self {
            out,
            started: std::time::Instant::now(),
            throttle: Throttle::new(INTERVAL),
            total,
            skipped: 0,
            drawn: false,
        }
    }

    /// `packets` records and `bytes` bytes are read so far; redraws if it is time.
    pub fn update(&mut self, packets: u64, bytes: u64) {
        if self.out.is_none() {
            return;
        }
        if self.drawn && self.skipped < CLOCK_EVERY {
            self.skipped += 1;
            return;
        }
        self.skipped = 0;
        let elapsed = self.started.elapsed();
        self.update_at(Snapshot {
            packets,
            bytes,
            total: self.total,
            elapsed,
        });
    }

    /// [`Progress::update`] at a given moment (the clock is the caller's).
    pub fn update_at(&mut self, snapshot: Snapshot) {
        let Some(out) = self.out.as_mut() else {
            return;
        };
        if !self.throttle.due(snapshot.elapsed) {
            return;
        }
        // A failed write to stderr loses a progress line, nothing else.
        let _ = write!(out, "\r{}\x1b[K", line(&snapshot)).and_then(|()| out.flush());
        self.drawn = true;
    }

    /// Clear the line (before the summary is written, and at the end).
    pub fn clear(&mut self) {
        if let (Some(out), true) = (self.out.as_mut(), self.drawn) {
            let _ = out.write_all(b"\r\x1b[K").and_then(|()| out.flush());
        }
        self.drawn = false;
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.clear();
    }
}

/// The progress line: `replay: 1,234,567 packets, 45.0 MB of 120.0 MB (37%), 22.5 MB/s, 0:03
/// left`. Without a total: no percentage and no time left.
pub fn line(s: &Snapshot) -> String {
    let seconds = s.elapsed.as_secs_f64();
    let rate = if seconds > 0.0 {
        s.bytes as f64 / seconds
    } else {
        0.0
    };
    let mut text = format!("replay: {} packets, {}", grouped(s.packets), size(s.bytes));
    if let Some(total) = s.total.filter(|&total| total > 0) {
        let percent = (s.bytes.min(total) * 100) / total;
        text += &format!(" of {} ({percent}%)", size(total));
        text += &format!(", {}/s", size(rate as u64));
        if rate > 0.0 {
            let left = total.saturating_sub(s.bytes) as f64 / rate;
            text += &format!(", {} left", clock(left));
        }
    } else {
        text += &format!(", {}/s", size(rate as u64));
    }
    text
}

/// `1234567` as `1,234,567`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Bytes in decimal units with one decimal: `512 B`, `45.1 kB`, `120.0 MB`, `3.2 GB`.
fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 999.95 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Seconds as `m:ss`, or `h:mm:ss` from an hour on.
fn clock(seconds: f64) -> String {
    let s = seconds.round().min(f64::from(u32::MAX)) as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::writer::SharedWriter;

    fn at(packets: u64, bytes: u64, total: Option<u64>, millis: u64) -> Snapshot {
        Snapshot {
            packets,
            bytes,
            total,
            elapsed: Duration::from_millis(millis),
        }
    }

    #[test]
    fn the_line_says_packets_bytes_rate_and_time_left() {
        assert_eq!(
            line(&at(1_234_567, 45_000_000, Some(120_000_000), 2_000)),
            "replay: 1,234,567 packets, 45.0 MB of 120.0 MB (37%), 22.5 MB/s, 0:03 left"
        );
        assert_eq!(
            line(&at(12, 999, None, 1_000)),
            "replay: 12 packets, 999 B, 999 B/s"
        );
        assert_eq!(
            line(&at(0, 0, Some(5_000_000_000), 0)),
            "replay: 0 packets, 0 B of 5.0 GB (0%), 0 B/s",
            "no rate yet: no time left"
        );
        let slow = line(&at(1, 1_000, Some(10_000_000), 1_000));
        assert!(slow.ends_with(", 2:46:39 left"), "{slow}");
        let over = line(&at(1, 200, Some(100), 1_000));
        assert!(
            over.contains("(100%)") && over.ends_with("0:00 left"),
            "{over}"
        );
    }

    #[test]
    fn units_and_grouping() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(12_345_678), "12,345,678");
        assert_eq!(size(1_000), "1.0 kB");
        assert_eq!(size(999_999), "1.0 MB");
        assert_eq!(size(u64::MAX), "18446744.1 TB");
        assert_eq!(clock(59.6), "1:00");
        assert_eq!(clock(3_600.0), "1:00:00");
    }

    #[test]
    fn the_throttle_lets_through_at_most_one_redraw_per_interval() {
        let mut throttle = Throttle::new(INTERVAL);
        let draws = (0..=1_000)
            .step_by(10)
            .filter(|&ms| throttle.due(Duration::from_millis(ms)))
            .count();
        assert_eq!(draws, 6, "at 0, 200, 400, 600, 800 and 1000 ms");
        let mut throttle = Throttle::new(INTERVAL);
        assert!(throttle.due(Duration::from_millis(5)), "the first is drawn");
        assert!(!throttle.due(Duration::from_millis(204)));
        assert!(throttle.due(Duration::from_millis(205)));
    }

    #[test]
    fn redraws_in_place_and_clears_at_the_end() {
        let shared = SharedWriter::default();
        let mut progress = Progress::new(Some(Box::new(shared.clone())), Some(1_000));
        for ms in (0..=400).step_by(50) {
            progress.update_at(at(ms, ms, Some(1_000), ms));
        }
        progress.clear();
        progress.clear();
        let out = shared.text();
        assert_eq!(
            out.matches("\r").count(),
            4,
            "three lines and one clear: {out:?}"
        );
        assert!(out.starts_with("\rreplay: 0 packets"), "{out:?}");
        assert!(out.contains("\rreplay: 200 packets, 200 B of 1.0 kB (20%)"));
        assert!(out.ends_with("\x1b[K\r\x1b[K"), "{out:?}");
    }

    #[test]
    fn silent_without_a_terminal() {
        let mut progress = Progress::new(None, Some(1_000));
        progress.update(1, 1);
        progress.update_at(at(1, 1, None, 0));
        progress.clear();
        assert!(!progress.drawn);
    }
}
