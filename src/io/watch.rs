//! `ftp-alg watch`: the engine over frames captured live from an interface, reported exactly
//! as `replay` reports a capture, without touching the firewall.
//!
//! Owns: the live loop over a [`Frames`] source: each frame stripped to its IP datagram by the
//! capture code's [`ip_datagram`] (a frame without one is counted as `non_ip`, never fatal),
//! the wall clock as `now`, the idle ticks that let expectations end on time when no packet
//! comes, and the stop conditions (a signal, `--count`, `--duration`). Everything after the
//! datagram is replay's ([`Replay`]): the same engine, the same modelled set, the same events,
//! fields and summary; so memory is bounded by the engine's and the model's limits, not by how
//! long it runs. Nothing is installed anywhere: what would be is reported. The AF_PACKET
//! source is [`live::Interface`].

pub mod live;

use std::io::Write;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering;

use crate::config::Config;
use crate::io::capture::LinkType;
use crate::io::capture::ip_datagram;
use crate::io::replay::Replay;
use crate::io::report::Format;
use crate::io::report::Record;
use crate::io::report::Reporter;
use crate::io::report::Summary;
use crate::time::Duration;
use crate::time::Instant;

/// What a frame source has next.
#[derive(Debug)]
pub enum Next<'a> {
    /// A frame, received at this time.
    Frame(Instant, &'a [u8]),
    /// No frame came for a while (or a signal interrupted the wait); it is this time now.
    Idle(Instant),
    /// The source has no more frames.
    End,
}

/// Where frames come from: a live interface, or a test's list.
pub trait Frames {
    /// The interface's name (reported where replay names the file).
    fn name(&self) -> &str;
    /// The link layer its frames start with.
    fn link(&self) -> LinkType;
    /// The next frame, or an idle tick; an error ends the watch.
    fn next(&mut self) -> std::io::Result<Next<'_>>;
}

/// When to stop, besides a signal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// After this many frames.
    pub count: Option<u64>,
    /// After this long (from the first frame or tick).
    pub duration: Option<Duration>,
}

/// Watch `source` with `config`, reporting to `out` in `format` as events happen (give a
/// line-buffered writer such as stdout, so each event is flushed as it is written), until
/// `stop` is set, `limits` are reached or the source ends. Then report what the modelled set
/// still holds and the summary, and return the summary.
pub fn run(
    source: &mut dyn Frames,
    config: &Config,
    format: Format,
    out: impl Write,
    limits: Limits,
    stop: &AtomicBool,
) -> std::io::Result<Summary> {
    let mut reporter = Reporter::new(out, format);
    let mut summary = Summary {
        files: 1,
        ..Summary::default()
    };
    reporter.start_file(source.name())?;
    let link = source.link();
    let mut replay = Replay::new(config, &mut reporter, &mut summary, None);
    let mut frames = 0u64;
    let mut deadline = None;
    while !stop.load(Ordering::Relaxed) && limits.count.is_none_or(|count| frames < count) {
        let now = match source.next()? {
            Next::Frame(now, frame) => {
                frames += 1;
                replay.record(now, ip_datagram(link, frame).ok())?;
                now
            }
            Next::Idle(now) => replay.advance(now)?,
            Next::End => break,
        };
        let end = *deadline.get_or_insert_with(|| limits.duration.map(|d| now + d));
        if end.is_some_and(|end| now >= end) {
            break;
        }
    }
    replay.finish()?;
    reporter.record(&Record::Summary(&summary))?;
    reporter.finish()?;
    Ok(summary)
}

#[cfg(test)]
mod tests;
