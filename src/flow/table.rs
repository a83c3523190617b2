//! [`FlowTable`]: a bounded map of flows with `now`-driven expiry.
//!
//! Owns: insertion, lookup, removal, idle expiry and eviction. Each flow has a deadline (set
//! by the caller from its last activity and TCP state); an ordered index of deadlines gives
//! the next expiry in O(log n) and, when the table is full, the flow to evict: the one closest
//! to its deadline (so embryonic and closing connections go before established ones).
//! The map is std's `HashMap`, whose random SipHash keys resist collision flooding.

use std::collections::BTreeSet;
use std::collections::HashMap;

use super::FlowKey;
use crate::time::Instant;

/// A bounded table of flows.
#[derive(Debug)]
pub struct FlowTable<T> {
    map: HashMap<FlowKey, Slot<T>>,
    deadlines: BTreeSet<(Instant, FlowKey)>,
    max: usize,
}

#[derive(Debug)]
struct Slot<T> {
    value: T,
    deadline: Instant,
}

impl<T> FlowTable<T> {
    /// An empty table holding at most `max` flows (at least one).
    pub fn new(max: usize) -> Self {
        Self {
            map: HashMap::new(),
            deadlines: BTreeSet::new(),
            max: max.max(1),
        }
    }

    /// Insert `value` under `key` with `deadline`. Returns what had to go: the flow previously
    /// under `key`, or else the flow evicted to make room.
    pub fn insert(&mut self, key: FlowKey, value: T, deadline: Instant) -> Option<(FlowKey, T)> {
        let displaced = match self.remove(&key) {
            Some(old) => Some((key, old)),
            None if self.map.len() >= self.max => self.evict(),
            None => None,
        };
        self.deadlines.insert((deadline, key));
        self.map.insert(key, Slot { value, deadline });
        displaced
    }

    /// Remove the flow under `key`.
    pub fn remove(&mut self, key: &FlowKey) -> Option<T> {
        let slot = self.map.remove(key)?;
        self.deadlines.remove(&(slot.deadline, *key));
        Some(slot.value)
    }

    /// Move the deadline of the flow under `key`.
    pub fn set_deadline(&mut self, key: &FlowKey, deadline: Instant) {
        if let Some(slot) = self.map.get_mut(key) {
            self.deadlines.remove(&(slot.deadline, *key));
            slot.deadline = deadline;
            self.deadlines.insert((deadline, *key));
        }
    }

    /// Remove and return one flow whose deadline is at or before `now`.
    pub fn pop_expired(&mut self, now: Instant) -> Option<(FlowKey, T)> {
        let &(deadline, key) = self.deadlines.first()?;
        if deadline > now {
            return None;
        }
        self.remove(&key).map(|value| (key, value))
    }

    /// The flow under `key`.
    pub fn get_mut(&mut self, key: &FlowKey) -> Option<&mut T> {
        self.map.get_mut(key).map(|slot| &mut slot.value)
    }

    /// The earliest deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|&(deadline, _)| deadline)
    }

    /// How many flows are held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when no flow is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Every flow, in no particular order.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.map.values_mut().map(|slot| &mut slot.value)
    }

    fn evict(&mut self) -> Option<(FlowKey, T)> {
        let &(_, key) = self.deadlines.first()?;
        self.remove(&key).map(|value| (key, value))
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;

    fn key(port: u16) -> FlowKey {
        let server: SocketAddr = "203.0.113.2:21".parse().unwrap();
        FlowKey::new(
            SocketAddr::new("198.51.100.2".parse().unwrap(), port),
            server,
        )
    }

    fn at(micros: u64) -> Instant {
        Instant::from_micros(micros)
    }

    #[test]
    fn expiry_follows_deadlines() {
        let mut t = FlowTable::new(10);
        t.insert(key(1), "a", at(30));
        t.insert(key(2), "b", at(10));
        assert_eq!(t.next_deadline(), Some(at(10)));
        assert_eq!(t.pop_expired(at(9)), None);
        assert_eq!(t.pop_expired(at(10)), Some((key(2), "b")));
        t.set_deadline(&key(1), at(50));
        assert_eq!(t.pop_expired(at(40)), None);
        assert_eq!(t.pop_expired(at(50)), Some((key(1), "a")));
        assert!(t.is_empty());
    }

    #[test]
    fn full_table_evicts_the_flow_closest_to_expiry() {
        let mut t = FlowTable::new(2);
        t.insert(key(1), 1, at(100));
        t.insert(key(2), 2, at(50));
        assert_eq!(t.insert(key(3), 3, at(200)), Some((key(2), 2)));
        assert_eq!(t.len(), 2);
        assert_eq!(t.get_mut(&key(2)), None);
        assert_eq!(t.get_mut(&key(3)), Some(&mut 3));
    }

    #[test]
    fn reinsert_replaces_without_evicting() {
        let mut t = FlowTable::new(2);
        t.insert(key(1), 1, at(100));
        t.insert(key(2), 2, at(50));
        assert_eq!(t.insert(key(1), 10, at(70)), Some((key(1), 1)));
        assert_eq!(t.len(), 2);
        assert_eq!(t.remove(&key(1)), Some(10));
        assert_eq!(t.next_deadline(), Some(at(50)));
        assert_eq!(t.values_mut().count(), 1);
    }
}
