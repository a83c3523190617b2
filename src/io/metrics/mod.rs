//! `ftp-alg run --metrics ADDR:PORT`: the daemon's counters, gauges and latency histograms in
//! the Prometheus text exposition format (0.0.4), served on `GET /metrics`.
//!
//! Owns: the hand-over between the workers and the serving thread. A worker never waits for
//! the serving thread: about once a second it builds a [`QueueSnapshot`] of its counters (a
//! few hundred bytes; the per-packet work is only the verdict-latency sample, see
//! `io::daemon::worker`) and offers it to its [`Slot`] with `try_lock`. If a scrape happens
//! to be copying the previous snapshot at that instant, the offer is skipped and the next
//! one, a second later, goes in. The serving thread ([`http`]) copies the latest snapshot of
//! every queue and renders them ([`exposition`]); a slow or hostile HTTP client can delay
//! only other scrapes, never a packet.
//!
//! Does not own: the counters themselves (the worker's, the applier's, the engine's
//! `Stats`), the names and help texts (`exposition`), HTTP (`http`).

pub mod exposition;
pub mod http;
mod names;
mod snapshot;

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::PoisonError;
use std::sync::TryLockError;

pub(crate) use snapshot::HistogramSnapshot;
pub(crate) use snapshot::QueueSnapshot;
pub(crate) use snapshot::ReasonCounts;

/// Every queue's latest snapshot: the only state the workers and the serving thread share.
#[derive(Debug)]
pub struct Board {
    slots: Vec<Arc<Slot>>,
}

/// One worker's latest snapshot.
#[derive(Debug, Default)]
pub struct Slot {
    latest: Mutex<Option<QueueSnapshot>>,
}

impl Board {
    /// A board with one empty slot per queue, in this order.
    pub fn new(queues: usize) -> Self {
        Self {
            slots: (0..queues).map(|_| Arc::new(Slot::default())).collect(),
        }
    }

    /// The `index`th queue's slot, for its worker (`None` past the end).
    pub fn slot(&self, index: usize) -> Option<Arc<Slot>> {
        self.slots.get(index).cloned()
    }

    /// A copy of every published snapshot (queues that have not published yet are left out).
    pub(crate) fn read(&self) -> Vec<QueueSnapshot> {
        self.slots.iter().filter_map(|slot| slot.read()).collect()
    }

    /// The exposition of every queue, at monotonic time `now_micros`.
    pub fn render(&self, now_micros: u64) -> String {
        exposition::render(&self.read(), now_micros)
    }
}

impl Slot {
    /// Offer `snapshot` without waiting: false (and nothing changes) when the serving thread
    /// holds the slot at this instant.
    pub(crate) fn offer(&self, snapshot: QueueSnapshot) -> bool {
        match self.latest.try_lock() {
            Ok(mut latest) => *latest = Some(snapshot),
            // A panic while the slot was held left a whole snapshot or none: still usable.
            Err(TryLockError::Poisoned(poisoned)) => *poisoned.into_inner() = Some(snapshot),
            Err(TryLockError::WouldBlock) => return false,
        }
        true
    }

    fn read(&self) -> Option<QueueSnapshot> {
        self.latest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offer_while_the_slot_is_held_is_skipped_not_waited_for() {
        let board = Board::new(2);
        let slot = board.slot(1).unwrap();
        assert!(board.slot(2).is_none());
        assert!(board.read().is_empty());
        let guard = slot.latest.lock().unwrap();
        assert!(!slot.offer(QueueSnapshot::empty(7, 0)));
        drop(guard);
        assert!(slot.offer(QueueSnapshot::empty(7, 0)));
        let read = board.read();
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].queue, 7);
    }
}
