//! [`FlowTable`]: a bounded map of flows in three tiers, with `now`-driven expiry and an
//! eviction order a flood cannot turn against real sessions.
//!
//! Owns: insertion, lookup, removal, idle expiry, and who goes when room is needed.
//! - Every flow is in one [`Tier`]: `Spent` (closed, lingering to absorb retransmissions),
//!   `Unproven` (embryonic, picked up, not yet shown to be FTP, or a not-FTP tombstone) or
//!   `Proven` (a real FTP session). Within a tier, flows are kept in least-recently-active
//!   order (an intrusive list in the slab: O(1) per packet).
//! - A full table evicts the least recently active `Spent` flow, else `Unproven`, and a
//!   `Proven` flow only when nothing else is left (the caller counts and logs that).
//! - Unproven flows are capped per source address (the host whose packet created the flow):
//!   past the cap, that source's own least recently active unproven flow makes room, so a
//!   host flooding the table only churns its own flows. An optional cap per /24 (IPv4) or
//!   /64 (IPv6) refuses new unproven flows from a crowded prefix.
//! - Each flow has a deadline (set by the caller from its last activity and state). A
//!   min-heap of deadlines gives the next expiry; entries are refreshed lazily (a deadline that
//!   moves later is re-queued when its old entry surfaces), and the heap's top is kept exact
//!   after every change, so [`FlowTable::next_deadline`] never lies.
//!
//! The index is a `HashMap` keyed by a random foldhash seed (`crate::hashing`), so a peer
//! cannot choose flow keys that collide. A
//! one-entry cache of the last slot found saves the repeated lookups of one packet (the engine
//! looks its flow up three or four times); it is checked against the slot's own key, so it
//! never needs invalidating.

use crate::hashing::HashMap;
use std::cell::Cell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::IpAddr;

use super::FlowKey;
use crate::time::Instant;

/// How much a flow has shown; decides who is evicted first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tier {
    /// Closed: kept a little while to absorb retransmissions. Evicted first.
    Spent,
    /// Not (yet) shown to be FTP. Evicted before any proven flow; capped per source.
    Unproven,
    /// A proven FTP session. Evicted only when nothing else is left.
    Proven,
}

/// The table's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Flows tracked at most (at least one).
    pub max_flows: usize,
    /// Unproven flows per source address (0: no cap).
    pub max_unproven_per_source: usize,
    /// Unproven flows per /24 (IPv4) or /64 (IPv6) source prefix (0: no cap).
    pub max_unproven_per_prefix: usize,
}

/// Why a flow left the table when another was inserted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Displaced {
    /// The new flow has the same key (a reopened connection).
    Replaced,
    /// Its source reached its cap of unproven flows; this was that source's least recently
    /// active one.
    SourceCap,
    /// The table was full; this was the least recently active flow of the lowest tier.
    Evicted(Tier),
}

/// Where a flow sits in the table ([`FlowTable::locate`]): lets the caller look its flow up
/// once per packet. It stays valid until a flow is inserted or removed (any flow: a slot may
/// be reused); the `*_at` methods return `None` for a slot that was freed since.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct At(u32);

/// A new unproven flow refused: its source prefix holds its cap. Nothing changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrefixFull;

/// A bounded, tiered table of flows.
#[derive(Debug)]
pub struct FlowTable<T> {
    index: HashMap<FlowKey, u32>,
    /// The slot of the last key found (a hint: valid only if that slot holds that key).
    last: Cell<u32>,
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    tiers: [List; 3],
    sources: HashMap<IpAddr, List>,
    prefixes: HashMap<IpAddr, usize>,
    timers: BinaryHeap<Reverse<(Instant, u32)>>,
    limits: Limits,
}

/// One flow and its bookkeeping. `value` is `None` for a free slot.
#[derive(Debug)]
struct Slot<T> {
    value: Option<T>,
    key: FlowKey,
    source: IpAddr,
    tier: Tier,
    deadline: Instant,
    /// The deadline of this slot's live heap entry.
    queued: Instant,
    by_tier: Links,
    by_source: Links,
}

#[derive(Debug, Clone, Copy)]
struct Links {
    prev: u32,
    next: u32,
}

/// An intrusive doubly linked list of slots, oldest first.
#[derive(Debug, Clone, Copy)]
struct List {
    head: u32,
    tail: u32,
    len: usize,
}

/// Which of a slot's links a list uses.
#[derive(Debug, Clone, Copy)]
enum Chain {
    Tier,
    Source,
}

const NIL: u32 = u32::MAX;

impl<T> FlowTable<T> {
    /// An empty table with `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            index: HashMap::default(),
            last: Cell::new(NIL),
            slots: Vec::new(),
            free: Vec::new(),
            tiers: [List::EMPTY; 3],
            sources: HashMap::default(),
            prefixes: HashMap::default(),
            timers: BinaryHeap::new(),
            limits: Limits {
                max_flows: limits.max_flows.clamp(1, NIL as usize - 1),
                ..limits
            },
        }
    }

    /// Insert `value` under `key`, created by a packet from `source`. Returns the flows that
    /// had to go, with why: the flow previously under `key`, the source's oldest unproven
    /// flow past its cap, the flow evicted from a full table.
    pub fn insert(
        &mut self,
        key: FlowKey,
        value: T,
        tier: Tier,
        source: IpAddr,
        deadline: Instant,
    ) -> Result<Vec<(FlowKey, T, Displaced)>, PrefixFull> {
        if tier == Tier::Unproven && self.prefix_full(key, source) {
            return Err(PrefixFull);
        }
        let mut displaced = Vec::new();
        if let Some(old) = self.remove(&key) {
            displaced.push((key, old, Displaced::Replaced));
        }
        if tier == Tier::Unproven && self.source_full(source) {
            if let Some(head) = self.sources.get(&source).map(|list| list.head) {
                displaced.extend(self.take(head, Displaced::SourceCap));
            }
        }
        if self.index.len() >= self.limits.max_flows {
            displaced.extend(self.evict());
        }
        self.allocate(key, value, tier, source, deadline);
        self.settle();
        Ok(displaced)
    }

    /// The flow under `key`.
    pub fn get_mut(&mut self, key: &FlowKey) -> Option<&mut T> {
        let index = self.find(key)?;
        self.slots[index as usize].value.as_mut()
    }

    /// The flow under `key`.
    pub fn get(&self, key: &FlowKey) -> Option<&T> {
        let index = self.find(key)?;
        self.slots[index as usize].value.as_ref()
    }

    /// Where the flow under `key` sits, for the `*_at` methods.
    pub fn locate(&self, key: &FlowKey) -> Option<At> {
        self.find(key).map(At)
    }

    /// The flow at `at` (see [`At`] for how long it stays valid).
    pub fn get_at(&self, at: At) -> Option<&T> {
        self.slots.get(at.0 as usize)?.value.as_ref()
    }

    /// The flow at `at` (see [`At`] for how long it stays valid).
    pub fn get_mut_at(&mut self, at: At) -> Option<&mut T> {
        self.slots.get_mut(at.0 as usize)?.value.as_mut()
    }

    /// The flow under `key` was active: it becomes the most recently active of `tier` (which
    /// may differ from its old tier), and its deadline moves to `deadline`. A flow that falls
    /// back to `Unproven` counts against its source's cap again: past it, the source's least
    /// recently active other unproven flow goes (returned).
    pub fn touch(
        &mut self,
        key: &FlowKey,
        tier: Tier,
        deadline: Instant,
    ) -> Option<(FlowKey, T, Displaced)> {
        let index = self.find(key)?;
        self.touch_index(index, tier, deadline)
    }

    /// [`FlowTable::touch`] for the flow at `at`; nothing if that slot was freed since.
    pub fn touch_at(
        &mut self,
        at: At,
        tier: Tier,
        deadline: Instant,
    ) -> Option<(FlowKey, T, Displaced)> {
        let live = self
            .slots
            .get(at.0 as usize)
            .is_some_and(|slot| slot.value.is_some());
        if !live {
            return None;
        }
        self.touch_index(at.0, tier, deadline)
    }

    fn touch_index(
        &mut self,
        index: u32,
        tier: Tier,
        deadline: Instant,
    ) -> Option<(FlowKey, T, Displaced)> {
        let (old_tier, source) = {
            let slot = &self.slots[index as usize];
            (slot.tier, slot.source)
        };
        let displaced = if tier == Tier::Unproven && old_tier != Tier::Unproven {
            self.source_full(source)
                .then(|| self.sources.get(&source).map(|list| list.head))
                .flatten()
                .and_then(|head| self.take(head, Displaced::SourceCap))
        } else {
            None
        };
        if tier == old_tier {
            self.move_to_back(index, tier, source);
        } else {
            self.unlink_all(index);
            self.slots[index as usize].tier = tier;
            self.link_all(index);
        }
        let slot = &mut self.slots[index as usize];
        slot.deadline = deadline;
        if deadline < slot.queued {
            slot.queued = deadline;
            self.timers.push(Reverse((deadline, index)));
        }
        self.settle();
        displaced
    }

    /// Remove the flow under `key`.
    pub fn remove(&mut self, key: &FlowKey) -> Option<T> {
        let index = self.find(key)?;
        let value = self.release(index);
        self.settle();
        value
    }

    /// Remove and return one flow whose deadline is at or before `now`.
    pub fn pop_expired(&mut self, now: Instant) -> Option<(FlowKey, T)> {
        let &Reverse((at, index)) = self.timers.peek()?;
        if at > now {
            return None;
        }
        let key = self.slots[index as usize].key;
        let value = self.release(index);
        self.settle();
        value.map(|value| (key, value))
    }

    /// The earliest deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    /// How many flows are held.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True when no flow is held.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// How many flows are in `tier`.
    pub fn len_of(&self, tier: Tier) -> usize {
        self.tiers[tier as usize].len
    }

    /// Every flow, tier by tier (spent, unproven, proven), least recently active first: the
    /// order that decides eviction (a snapshot keeps it).
    pub fn iter_by_activity(&self) -> impl Iterator<Item = (FlowKey, &T, Tier, IpAddr, Instant)> {
        self.tiers.iter().flat_map(move |list| {
            let mut at = list.head;
            std::iter::from_fn(move || {
                let slot = self.slots.get(at as usize)?;
                at = slot.by_tier.next;
                let value = slot.value.as_ref()?;
                Some((slot.key, value, slot.tier, slot.source, slot.deadline))
            })
        })
    }

    /// The bounds.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    fn source_full(&self, source: IpAddr) -> bool {
        let cap = self.limits.max_unproven_per_source;
        cap > 0
            && self
                .sources
                .get(&source)
                .is_some_and(|list| list.len >= cap)
    }

    /// Whether a new unproven flow from `source` would exceed its prefix's cap (a flow
    /// already under `key` is about to be replaced and does not count).
    fn prefix_full(&self, key: FlowKey, source: IpAddr) -> bool {
        let cap = self.limits.max_unproven_per_prefix;
        if cap == 0 {
            return false;
        }
        let prefix = prefix_of(source);
        let held = self.prefixes.get(&prefix).copied().unwrap_or(0);
        let replaced = self.index.get(&key).is_some_and(|&i| {
            let slot = &self.slots[i as usize];
            slot.tier == Tier::Unproven && prefix_of(slot.source) == prefix
        });
        held - usize::from(replaced) >= cap
    }

    /// The least recently active flow of the lowest tier that has one.
    fn evict(&mut self) -> Option<(FlowKey, T, Displaced)> {
        let tier = [Tier::Spent, Tier::Unproven, Tier::Proven]
            .into_iter()
            .find(|tier| self.tiers[*tier as usize].len > 0)?;
        let head = self.tiers[tier as usize].head;
        self.take(head, Displaced::Evicted(tier))
    }

    /// The slot holding `key`: the cached one if it still holds it, else from the index.
    fn find(&self, key: &FlowKey) -> Option<u32> {
        let last = self.last.get();
        if let Some(slot) = self.slots.get(last as usize) {
            if slot.value.is_some() && slot.key == *key {
                return Some(last);
            }
        }
        let index = *self.index.get(key)?;
        self.last.set(index);
        Some(index)
    }

    fn take(&mut self, index: u32, why: Displaced) -> Option<(FlowKey, T, Displaced)> {
        let key = self.slots[index as usize].key;
        self.release(index).map(|value| (key, value, why))
    }

    fn allocate(&mut self, key: FlowKey, value: T, tier: Tier, source: IpAddr, deadline: Instant) {
        let slot = Slot {
            value: Some(value),
            key,
            source,
            tier,
            deadline,
            queued: deadline,
            by_tier: Links::NONE,
            by_source: Links::NONE,
        };
        let index = match self.free.pop() {
            Some(index) => {
                self.slots[index as usize] = slot;
                index
            }
            None => {
                self.slots.push(slot);
                // NOTE(unwrap): `max_flows` is below `NIL`, so the slab never outgrows u32.
                u32::try_from(self.slots.len() - 1).expect("slab index fits u32")
            }
        };
        self.link_all(index);
        self.index.insert(key, index);
        self.timers.push(Reverse((deadline, index)));
    }

    /// Free a slot: out of the index, its lists and its counts; its heap entry goes stale.
    fn release(&mut self, index: u32) -> Option<T> {
        self.unlink_all(index);
        let slot = &mut self.slots[index as usize];
        let value = slot.value.take()?;
        slot.queued = Instant::from_micros(u64::MAX);
        self.index.remove(&slot.key);
        self.free.push(index);
        Some(value)
    }

    /// Put a slot at the tail of its tier's list, and of its source's list if unproven.
    fn link_all(&mut self, index: u32) {
        let (tier, source) = {
            let slot = &self.slots[index as usize];
            (slot.tier, slot.source)
        };
        let mut list = self.tiers[tier as usize];
        self.push_back(&mut list, index, Chain::Tier);
        self.tiers[tier as usize] = list;
        if tier == Tier::Unproven {
            let mut list = self.sources.get(&source).copied().unwrap_or(List::EMPTY);
            self.push_back(&mut list, index, Chain::Source);
            self.sources.insert(source, list);
            *self.prefixes.entry(prefix_of(source)).or_default() += 1;
        }
    }

    /// Take a slot out of its tier's list, and out of its source's list if unproven.
    fn unlink_all(&mut self, index: u32) {
        let (tier, source) = {
            let slot = &self.slots[index as usize];
            (slot.tier, slot.source)
        };
        let mut list = self.tiers[tier as usize];
        self.unlink(&mut list, index, Chain::Tier);
        self.tiers[tier as usize] = list;
        if tier == Tier::Unproven {
            if let Some(mut list) = self.sources.get(&source).copied() {
                self.unlink(&mut list, index, Chain::Source);
                if list.len == 0 {
                    self.sources.remove(&source);
                } else {
                    self.sources.insert(source, list);
                }
            }
            let prefix = prefix_of(source);
            if let Some(count) = self.prefixes.get_mut(&prefix) {
                *count -= 1;
                if *count == 0 {
                    self.prefixes.remove(&prefix);
                }
            }
        }
    }

    /// Move a slot that stays in `tier` to the tail of its lists (the per-prefix counts do
    /// not change): what [`Self::unlink_all`] then [`Self::link_all`] would do, with one
    /// lookup of its source's list instead of eight of the maps.
    fn move_to_back(&mut self, index: u32, tier: Tier, source: IpAddr) {
        let mut list = self.tiers[tier as usize];
        if list.tail != index {
            self.unlink(&mut list, index, Chain::Tier);
            self.push_back(&mut list, index, Chain::Tier);
            self.tiers[tier as usize] = list;
        }
        if tier == Tier::Unproven {
            let Some(mut list) = self.sources.get(&source).copied() else {
                return;
            };
            if list.tail != index {
                self.unlink(&mut list, index, Chain::Source);
                self.push_back(&mut list, index, Chain::Source);
                self.sources.insert(source, list);
            }
        }
    }

    fn links(&mut self, index: u32, chain: Chain) -> &mut Links {
        let slot = &mut self.slots[index as usize];
        match chain {
            Chain::Tier => &mut slot.by_tier,
            Chain::Source => &mut slot.by_source,
        }
    }

    fn push_back(&mut self, list: &mut List, index: u32, chain: Chain) {
        let tail = list.tail;
        *self.links(index, chain) = Links {
            prev: tail,
            next: NIL,
        };
        if tail == NIL {
            list.head = index;
        } else {
            self.links(tail, chain).next = index;
        }
        list.tail = index;
        list.len += 1;
    }

    fn unlink(&mut self, list: &mut List, index: u32, chain: Chain) {
        let Links { prev, next } = *self.links(index, chain);
        if prev == NIL {
            list.head = next;
        } else {
            self.links(prev, chain).next = next;
        }
        if next == NIL {
            list.tail = prev;
        } else {
            self.links(next, chain).prev = prev;
        }
        *self.links(index, chain) = Links::NONE;
        list.len -= 1;
    }

    /// Make the heap's top exact: drop stale entries (freed slots, deadlines that moved
    /// earlier and were queued again), and queue again a top whose deadline moved later.
    fn settle(&mut self) {
        while let Some(&Reverse((at, index))) = self.timers.peek() {
            let slot = &mut self.slots[index as usize];
            if slot.value.is_none() || slot.queued != at {
                self.timers.pop();
            } else if slot.deadline > at {
                slot.queued = slot.deadline;
                let deadline = slot.deadline;
                self.timers.pop();
                self.timers.push(Reverse((deadline, index)));
            } else {
                break;
            }
        }
        if self.timers.len() > 2 * self.index.len() + 64 {
            self.rebuild_timers();
        }
    }

    fn rebuild_timers(&mut self) {
        let mut timers = Vec::with_capacity(self.index.len());
        for (index, slot) in self.slots.iter_mut().enumerate() {
            if slot.value.is_some() {
                slot.queued = slot.deadline;
                // NOTE(unwrap): the slab never outgrows u32 (see `allocate`).
                let index = u32::try_from(index).expect("slab index fits u32");
                timers.push(Reverse((slot.deadline, index)));
            }
        }
        self.timers = BinaryHeap::from(timers);
    }
}

impl List {
    const EMPTY: Self = Self {
        head: NIL,
        tail: NIL,
        len: 0,
    };
}

impl Links {
    const NONE: Self = Self {
        prev: NIL,
        next: NIL,
    };
}

/// The /24 (IPv4) or /64 (IPv6) prefix of `address`.
pub fn prefix_of(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(a) => IpAddr::V4((u32::from(a) & 0xffff_ff00).into()),
        IpAddr::V6(a) => IpAddr::V6((u128::from(a) & !((1u128 << 64) - 1)).into()),
    }
}

#[cfg(test)]
mod tests;
