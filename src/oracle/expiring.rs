//! [`Expiring`]: a map whose entries each carry a deadline, taken out in deadline order.
//!
//! Owns: the map, and a min-heap of `(deadline, serial, key)` with lazy deletion. Replacing or
//! removing an entry leaves its heap entry behind; the serial number tells it is stale, and it
//! is skipped when it surfaces. Bounded: the heap is rebuilt from the map whenever it holds
//! more than `2 * len + SLACK` entries, so stale entries never dominate, at an amortised O(1)
//! cost per operation (a rebuild of `n` entries follows at least `n / 2 + SLACK / 2`
//! operations since the last). Does not own: what a deadline means, nor a bound on the number
//! of entries (callers evict with [`Expiring::pop_earliest`]). Pure: time is a parameter.

use crate::hashing::HashMap;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hash::Hash;

use crate::time::Instant;

/// A map of `K` to `V` in which each entry has a deadline.
#[derive(Debug, Clone)]
pub(super) struct Expiring<K, V> {
    map: HashMap<K, Slot<V>>,
    /// Every live entry once, plus stale ones; ordered by deadline, then insertion.
    heap: BinaryHeap<Reverse<(Instant, Serial, K)>>,
    next: Serial,
}

/// One entry taken out by deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Due<K, V> {
    pub(super) key: K,
    pub(super) value: V,
    pub(super) deadline: Instant,
}

#[derive(Debug, Clone)]
struct Slot<V> {
    value: V,
    deadline: Instant,
    serial: Serial,
}

/// Which insertion a heap entry came from: stale when its key's slot has another serial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
struct Serial(u64);

impl<K: Copy + Eq + Hash + Ord, V> Expiring<K, V> {
    /// Insert or replace `key`'s entry; returns the replaced value.
    pub(super) fn insert(&mut self, key: K, value: V, deadline: Instant) -> Option<V> {
        let serial = self.next;
        // One serial per insertion: a u64 does not wrap in practice.
        self.next = Serial(serial.0.wrapping_add(1));
        let slot = Slot {
            value,
            deadline,
            serial,
        };
        let old = self.map.insert(key, slot);
        self.heap.push(Reverse((deadline, serial, key)));
        self.keep_bounded();
        old.map(|slot| slot.value)
    }

    /// Remove `key`'s entry.
    pub(super) fn remove(&mut self, key: &K) -> Option<V> {
        let slot = self.map.remove(key)?;
        self.keep_bounded();
        Some(slot.value)
    }

    /// Take out the entry with the earliest deadline if that deadline is at or before `now`.
    #[inline]
    pub(super) fn pop_expired(&mut self, now: Instant) -> Option<Due<K, V>> {
        // Fast path, taken for almost every packet of a replay: the heap's earliest deadline,
        // stale or not, is later than `now`, so no live entry is due (no hashing needed).
        let Reverse((earliest, _, _)) = self.heap.peek()?;
        if *earliest > now {
            return None;
        }
        self.pop_due(now)
    }

    /// [`Expiring::pop_expired`] once the heap's top is due (it may be stale).
    fn pop_due(&mut self, now: Instant) -> Option<Due<K, V>> {
        self.drop_stale_top();
        let Reverse((deadline, _, _)) = self.heap.peek()?;
        if *deadline > now {
            return None;
        }
        self.pop_earliest()
    }

    /// Take out the entry with the earliest deadline.
    pub(super) fn pop_earliest(&mut self) -> Option<Due<K, V>> {
        self.drop_stale_top();
        let Reverse((deadline, _, key)) = self.heap.pop()?;
        // `drop_stale_top` left a current entry on top: its key is mapped, `?` never returns.
        let slot = self.map.remove(&key)?;
        self.keep_bounded();
        Some(Due {
            key,
            value: slot.value,
            deadline,
        })
    }

    /// Take out every entry, in no particular order.
    pub(super) fn drain(&mut self) -> impl Iterator<Item = Due<K, V>> + '_ {
        self.heap.clear();
        self.map.drain().map(|(key, slot)| Due {
            key,
            value: slot.value,
            deadline: slot.deadline,
        })
    }

    /// `key`'s value and deadline.
    pub(super) fn get(&self, key: &K) -> Option<(&V, Instant)> {
        self.map.get(key).map(|slot| (&slot.value, slot.deadline))
    }

    /// How many entries there are.
    pub(super) fn len(&self) -> usize {
        self.map.len()
    }

    /// How many heap entries there are, stale ones included.
    #[cfg(test)]
    pub(super) fn heap_len(&self) -> usize {
        self.heap.len()
    }

    /// Pop stale entries until the top is current (or the heap is empty).
    fn drop_stale_top(&mut self) {
        while let Some(Reverse((_, serial, key))) = self.heap.peek() {
            if self.map.get(key).is_some_and(|slot| slot.serial == *serial) {
                return;
            }
            self.heap.pop();
        }
    }

    /// Rebuild the heap from the map when stale entries dominate.
    fn keep_bounded(&mut self) {
        if self.heap.len() > 2 * self.map.len() + SLACK {
            self.heap = self
                .map
                .iter()
                .map(|(key, slot)| Reverse((slot.deadline, slot.serial, *key)))
                .collect();
        }
    }
}

impl<K, V> Default for Expiring<K, V> {
    fn default() -> Self {
        Self {
            map: HashMap::default(),
            heap: BinaryHeap::new(),
            next: Serial::default(),
        }
    }
}

/// Stale heap entries tolerated beyond one per live entry, so small maps are not rebuilt on
/// every change.
pub(super) const SLACK: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> Instant {
        Instant::from_micros(secs * 1_000_000)
    }

    #[test]
    fn entries_come_out_by_deadline_and_replaced_ones_once() {
        let mut e = Expiring::default();
        assert_eq!(e.insert(1u8, "a", at(30)), None);
        e.insert(2, "b", at(10));
        assert_eq!(e.insert(1, "a2", at(5)), Some("a"), "replaced");
        assert_eq!(e.pop_expired(at(4)), None);
        let first = e.pop_expired(at(20)).unwrap();
        assert_eq!((first.key, first.value, first.deadline), (1, "a2", at(5)));
        assert_eq!(e.pop_expired(at(20)).map(|d| d.key), Some(2));
        assert_eq!(
            e.pop_expired(at(100)),
            None,
            "the stale entry at 30 s is skipped"
        );
        assert_eq!(e.len(), 0);
    }

    #[test]
    fn removed_entries_never_come_out() {
        let mut e = Expiring::default();
        e.insert(1u8, (), at(1));
        e.insert(2, (), at(2));
        assert_eq!(e.remove(&1), Some(()));
        assert_eq!(e.remove(&1), None);
        assert_eq!(e.pop_earliest().map(|d| d.key), Some(2));
        assert_eq!(e.pop_earliest(), None);
    }

    #[test]
    fn refreshing_one_entry_forever_keeps_the_heap_small() {
        let mut e = Expiring::default();
        for second in 0..10_000 {
            e.insert(7u8, second, at(second + 30));
            assert!(e.heap_len() <= 2 * e.len() + SLACK, "at {second}");
        }
        assert_eq!(e.len(), 1);
        assert_eq!(e.pop_earliest().map(|d| d.value), Some(9_999));
    }

    /// Random operations against a plain list scanned in full: the same answers, and the
    /// heap bound after every step.
    #[test]
    fn differential_against_a_scanned_list() {
        let mut state = 0x2545_f491_u32;
        let mut e = Expiring::default();
        let mut model: Vec<(u8, u32, Instant, u64)> = Vec::new();
        let (mut now, mut serial) = (0u64, 0u64);
        for step in 0..20_000u32 {
            let (choice, key) = (xorshift(&mut state) % 8, (xorshift(&mut state) % 24) as u8);
            match choice {
                0..=3 => {
                    let deadline = at(now + u64::from(xorshift(&mut state) % 40));
                    let old = model
                        .iter()
                        .position(|m| m.0 == key)
                        .map(|i| model.remove(i));
                    assert_eq!(e.insert(key, step, deadline), old.map(|m| m.1));
                    model.push((key, step, deadline, serial));
                    serial += 1;
                }
                4 => {
                    let old = model
                        .iter()
                        .position(|m| m.0 == key)
                        .map(|i| model.remove(i));
                    assert_eq!(e.remove(&key), old.map(|m| m.1));
                }
                5 => assert_eq!(e.pop_earliest(), model_pop(&mut model, None)),
                _ => {
                    now += u64::from(xorshift(&mut state) % 5);
                    assert_eq!(e.pop_expired(at(now)), model_pop(&mut model, Some(at(now))));
                }
            }
            assert_eq!(e.len(), model.len());
            assert!(e.heap_len() <= 2 * e.len() + SLACK, "step {step}");
        }
    }

    /// The model's earliest entry (by deadline, then insertion), if due by `now`.
    fn model_pop(
        model: &mut Vec<(u8, u32, Instant, u64)>,
        now: Option<Instant>,
    ) -> Option<Due<u8, u32>> {
        let index = (0..model.len()).min_by_key(|&i| (model[i].2, model[i].3))?;
        if now.is_some_and(|now| model[index].2 > now) {
            return None;
        }
        let (key, value, deadline, _) = model.remove(index);
        Some(Due {
            key,
            value,
            deadline,
        })
    }

    fn xorshift(state: &mut u32) -> u32 {
        *state ^= *state << 13;
        *state ^= *state >> 17;
        *state ^= *state << 5;
        *state
    }
}
