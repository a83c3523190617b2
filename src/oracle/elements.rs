//! [`Elements`]: the modelled set's elements, by key, in expiry order, and counted per
//! announced endpoint.
//!
//! Owns: the invariant that the per-endpoint counts agree with the elements held (every
//! change goes through this type), so that "is another source's element live at this
//! endpoint?" is one lookup instead of a scan of the set. Does not own: what an element's
//! use or loss means (`SetModel` judges), nor a bound on their number (the engine bounds
//! expectations per control connection and control connections; elements leave at their
//! expiry).

use crate::hashing::HashMap;
use std::net::IpAddr;

use super::expiring::Expiring;
use crate::expect::DataKey;
use crate::expect::Expectation;
use crate::time::Instant;

/// An announced endpoint: address and port, whatever the source.
pub(super) type Endpoint = (IpAddr, u16);

/// The elements of the modelled set.
#[derive(Debug, Default)]
pub(super) struct Elements {
    /// Each element until its expectation's expiry.
    by_key: Expiring<DataKey, Expectation>,
    /// How many elements each endpoint has (never zero: an endpoint without is absent).
    per_endpoint: HashMap<Endpoint, usize>,
}

/// The endpoint `key` admits connections to.
pub(super) fn endpoint(key: &DataKey) -> Endpoint {
    (key.dst, key.dport.get())
}

impl Elements {
    /// Add `expectation`'s element, or refresh the one with its key; returns the replaced.
    pub(super) fn insert(&mut self, expectation: Expectation) -> Option<Expectation> {
        let (key, expires) = (expectation.key, expectation.expires());
        let replaced = self.by_key.insert(key, expectation, expires);
        if replaced.is_none() {
            *self.per_endpoint.entry(endpoint(&key)).or_default() += 1;
        }
        replaced
    }

    /// Remove `key`'s element.
    pub(super) fn remove(&mut self, key: &DataKey) -> Option<Expectation> {
        let expectation = self.by_key.remove(key)?;
        self.uncount(key);
        Some(expectation)
    }

    /// Remove `key`'s element if its lifetime is not over at `now`.
    pub(super) fn take_live(&mut self, key: &DataKey, now: Instant) -> Option<Expectation> {
        let (_, expires) = self.by_key.get(key)?;
        if expires <= now {
            return None;
        }
        self.remove(key)
    }

    /// Remove the element that expired first, if it expired by `now`.
    #[inline]
    pub(super) fn pop_expired(&mut self, now: Instant) -> Option<Expectation> {
        let due = self.by_key.pop_expired(now)?;
        self.uncount(&due.key);
        Some(due.value)
    }

    /// Remove every element, in no particular order.
    pub(super) fn drain(&mut self) -> Vec<Expectation> {
        self.per_endpoint.clear();
        self.by_key.drain().map(|due| due.value).collect()
    }

    /// True if `key` has an element (alive, or past its lifetime but not yet popped).
    pub(super) fn contains(&self, key: &DataKey) -> bool {
        self.by_key.get(key).is_some()
    }

    /// True if some element admits connections to `endpoint`.
    pub(super) fn holds_endpoint(&self, endpoint: &Endpoint) -> bool {
        self.per_endpoint.contains_key(endpoint)
    }

    /// How many elements there are.
    pub(super) fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Internal sizes: heap entries (stale ones included) and endpoints counted.
    #[cfg(test)]
    pub(super) fn sizes(&self) -> (usize, usize) {
        (self.by_key.heap_len(), self.per_endpoint.len())
    }

    fn uncount(&mut self, key: &DataKey) {
        let endpoint = endpoint(key);
        if let Some(count) = self.per_endpoint.get_mut(&endpoint) {
            *count -= 1;
            if *count == 0 {
                self.per_endpoint.remove(&endpoint);
            }
        }
    }
}
