//! [`ExpectationTable`]: every live expectation, and the one answer to "what must the
//! kernel's expectation set hold now".
//!
//! Owns: the key-to-expectation map (one element per key, as in the kernel set), the order of
//! each control connection's expectations (oldest first, for supersession), the count held per
//! client address and in all, and expiry. Every change goes through a method that keeps the
//! four consistent, so the invariants hold by construction:
//! - a key belongs to exactly one control connection (the last to announce it: the kernel set
//!   holds one element per key, and a re-announcement refreshes it);
//! - a control connection holds at most `per_control` (its oldest is superseded past it);
//! - a client address holds at most `per_client`, and the table at most `total` (past those a
//!   new key is refused, so one host cannot fill the kernel set and make everyone's installs
//!   fail);
//! - an expectation whose lifetime is over is gone (the kernel timed it out).
//!
//! Does not own: which announcements become expectations (`policy`), nor the actions that tell
//! the shell (the engine turns this table's answers into `Install` and `Remove`).

use crate::hashing::HashMap;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::IpAddr;

use super::DataKey;
use super::Expectation;
use crate::flow::FlowKey;
use crate::ftp::session::AnnouncementId;
use crate::time::Instant;

/// The bounds of an [`ExpectationTable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Expectations per control connection; the oldest is superseded past it.
    pub per_control: usize,
    /// Expectations per client address, over all its control connections.
    pub per_client: usize,
    /// Expectations in all (keep it below the kernel set's size).
    pub total: usize,
}

/// Every live expectation, indexed by key, by owner and by client.
#[derive(Debug)]
pub struct ExpectationTable {
    entries: HashMap<DataKey, Expectation>,
    owners: HashMap<FlowKey, Vec<DataKey>>,
    clients: HashMap<IpAddr, usize>,
    expiry: BinaryHeap<Reverse<(Instant, DataKey)>>,
    /// The NAT map elements (`src . public . port`) and the key each belongs to: a public
    /// face is never given to two expectations.
    faces: HashMap<Face, DataKey>,
    limits: Limits,
}

/// An element of the kernel's NAT map: who connects, to which public address and port.
type Face = (IpAddr, IpAddr, u16);

fn face_of(expectation: &Expectation) -> Option<Face> {
    expectation
        .nat
        .map(|nat| (expectation.key.src, nat.public, nat.port.get()))
}

/// What [`ExpectationTable::install`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// The owner's oldest expectation, pushed out by the bound per control connection.
    pub superseded: Option<Expectation>,
    /// The key was already held by the same control connection: its lifetime restarted.
    pub refreshed: bool,
    /// The key was held by another control connection, which no longer owns it.
    pub moved_from: Option<FlowKey>,
}

/// Why [`ExpectationTable::install`] refused a new key; nothing was changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// The client address already holds `per_client` expectations.
    Client,
    /// The table already holds `total` expectations.
    Total,
}

impl ExpectationTable {
    /// An empty table with these bounds (each at least 1).
    pub fn new(limits: Limits) -> Self {
        Self {
            entries: HashMap::default(),
            owners: HashMap::default(),
            clients: HashMap::default(),
            expiry: BinaryHeap::new(),
            faces: HashMap::default(),
            limits: Limits {
                per_control: limits.per_control.max(1),
                per_client: limits.per_client.max(1),
                total: limits.total.max(1),
            },
        }
    }

    /// Hold `expectation`: refresh it if its owner already holds the key, take the key over
    /// from another owner, or add it (superseding the owner's oldest past `per_control`).
    /// A key that would exceed `per_client` or `total` is refused and nothing changes.
    pub fn install(&mut self, expectation: Expectation) -> Result<Installed, Full> {
        let (key, owner) = (expectation.key, expectation.owner());
        let current = self.entries.get(&key).map(|e| (e.owner(), client_of(e)));
        if current.is_some_and(|(held_by, _)| held_by == owner) {
            self.expiry.push(Reverse((expectation.expires(), key)));
            if let Some(old) = self.entries.get(&key).and_then(face_of) {
                self.faces.remove(&old);
            }
            if let Some(face) = face_of(&expectation) {
                self.faces.insert(face, key);
            }
            self.entries.insert(key, expectation);
            self.compact();
            self.settle();
            return Ok(Installed {
                superseded: None,
                refreshed: true,
                moved_from: None,
            });
        }
        let oldest = self.oldest_if_full(owner);
        self.check_room(&expectation, current, oldest)?;
        let moved_from = current.map(|(held_by, _)| held_by);
        if moved_from.is_some() {
            self.detach(&key);
        }
        let superseded = oldest.and_then(|old| self.detach(&old));
        self.attach(expectation);
        self.compact();
        Ok(Installed {
            superseded,
            refreshed: false,
            moved_from,
        })
    }

    /// True when the NAT map element `src . public . port` belongs to an expectation other
    /// than `key`'s.
    pub fn face_taken(&self, src: IpAddr, public: IpAddr, port: u16, key: &DataKey) -> bool {
        self.faces
            .get(&(src, public, port))
            .is_some_and(|holder| holder != key)
    }

    /// The NAT mapping the expectation for `key` has now, if any.
    pub fn nat_of(&self, key: &DataKey) -> Option<super::NatMapping> {
        self.entries.get(key).and_then(|e| e.nat)
    }

    /// Remove the expectation for `key`, whoever owns it.
    pub fn remove(&mut self, key: &DataKey) -> Option<Expectation> {
        self.detach(key)
    }

    /// Remove `owner`'s expectation made by announcement `id`, if it still holds it.
    pub fn remove_announcement(
        &mut self,
        owner: FlowKey,
        id: AnnouncementId,
    ) -> Option<Expectation> {
        let key = *self
            .owned(owner)
            .iter()
            .find(|key| self.entries.get(key).is_some_and(|e| e.origin.1 == id))?;
        self.detach(&key)
    }

    /// Remove every expectation of `owner` set up by a command sent before command `id`.
    pub fn remove_before(&mut self, owner: FlowKey, id: AnnouncementId) -> Vec<Expectation> {
        let spent: Vec<DataKey> = self
            .owned(owner)
            .iter()
            .filter(|key| self.entries.get(key).is_some_and(|e| e.origin.1 < id))
            .copied()
            .collect();
        spent.iter().filter_map(|key| self.detach(key)).collect()
    }

    /// Remove every expectation of `owner`, oldest first.
    pub fn remove_owner(&mut self, owner: FlowKey) -> Vec<Expectation> {
        let keys = self.owners.get(&owner).cloned().unwrap_or_default();
        keys.iter().filter_map(|key| self.detach(key)).collect()
    }

    /// Remove every expectation.
    pub fn remove_all(&mut self) -> Vec<Expectation> {
        self.owners.clear();
        self.faces.clear();
        self.clients.clear();
        self.expiry.clear();
        self.entries.drain().map(|(_, e)| e).collect()
    }

    /// Forget the expectations whose lifetime is over at `now` (the kernel timed them out);
    /// returns them.
    #[inline]
    pub fn expire(&mut self, now: Instant) -> Vec<Expectation> {
        // Fast path, taken for almost every packet: nothing is due. Every change settles the
        // heap, so its top is live and there is nothing to settle (and no key to hash).
        if self.expiry.peek().is_none_or(|&Reverse((at, _))| at > now) {
            return Vec::new();
        }
        self.expire_due(now)
    }

    /// [`ExpectationTable::expire`] when the earliest expiry is due.
    fn expire_due(&mut self, now: Instant) -> Vec<Expectation> {
        let mut gone = Vec::new();
        while let Some(&Reverse((at, key))) = self.expiry.peek() {
            if at > now {
                break;
            }
            self.expiry.pop();
            if self.entries.get(&key).is_some_and(|e| e.expires() == at) {
                gone.extend(self.detach(&key));
            }
        }
        self.settle();
        gone
    }

    /// The expectation for `key`.
    pub fn get(&self, key: &DataKey) -> Option<&Expectation> {
        self.entries.get(key)
    }

    /// Every expectation held, in no particular order: what the kernel set must hold.
    pub fn iter(&self) -> impl Iterator<Item = &Expectation> {
        self.entries.values()
    }

    /// Every expectation, each control connection's oldest first (the order that decides
    /// supersession; a snapshot keeps it).
    pub fn iter_by_owner(&self) -> impl Iterator<Item = &Expectation> {
        self.owners
            .values()
            .flatten()
            .filter_map(|key| self.entries.get(key))
    }

    /// How many are held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when none is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many `owner` holds.
    pub fn owned_by(&self, owner: FlowKey) -> usize {
        self.owned(owner).len()
    }

    /// How many the client address `client` holds, over all its control connections.
    pub fn held_by_client(&self, client: IpAddr) -> usize {
        self.clients.get(&client).copied().unwrap_or(0)
    }

    /// The moment the next expectation expires.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.expiry.peek().map(|Reverse((at, _))| *at)
    }

    /// The bounds.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    fn owned(&self, owner: FlowKey) -> &[DataKey] {
        self.owners.get(&owner).map_or(&[], Vec::as_slice)
    }

    /// The owner's oldest key, if one more would exceed `per_control`.
    fn oldest_if_full(&self, owner: FlowKey) -> Option<DataKey> {
        let owned = self.owned(owner);
        (owned.len() >= self.limits.per_control)
            .then(|| owned.first().copied())
            .flatten()
    }

    /// Whether a new key fits under `per_client` and `total`, counting what it displaces: the
    /// key's current holder (`current`) and the owner's superseded oldest key.
    fn check_room(
        &self,
        expectation: &Expectation,
        current: Option<(FlowKey, IpAddr)>,
        oldest: Option<DataKey>,
    ) -> Result<(), Full> {
        let client = client_of(expectation);
        let freed_total = usize::from(current.is_some()) + usize::from(oldest.is_some());
        // The superseded key belongs to the same control connection, so to the same client.
        let freed_client =
            usize::from(current.is_some_and(|(_, c)| c == client)) + usize::from(oldest.is_some());
        if self.held_by_client(client) + 1 - freed_client > self.limits.per_client {
            return Err(Full::Client);
        }
        if self.len() + 1 - freed_total > self.limits.total {
            return Err(Full::Total);
        }
        Ok(())
    }

    fn attach(&mut self, expectation: Expectation) {
        let key = expectation.key;
        self.owners
            .entry(expectation.owner())
            .or_default()
            .push(key);
        *self.clients.entry(client_of(&expectation)).or_default() += 1;
        self.expiry.push(Reverse((expectation.expires(), key)));
        if let Some(face) = face_of(&expectation) {
            self.faces.insert(face, key);
        }
        self.entries.insert(key, expectation);
    }

    fn detach(&mut self, key: &DataKey) -> Option<Expectation> {
        let expectation = self.entries.remove(key)?;
        if let Some(face) = face_of(&expectation) {
            self.faces.remove(&face);
        }
        let owner = expectation.owner();
        if let Some(keys) = self.owners.get_mut(&owner) {
            keys.retain(|k| k != key);
            if keys.is_empty() {
                self.owners.remove(&owner);
            }
        }
        let client = client_of(&expectation);
        if let Some(count) = self.clients.get_mut(&client) {
            *count -= 1;
            if *count == 0 {
                self.clients.remove(&client);
            }
        }
        self.settle();
        Some(expectation)
    }

    /// Pop stale entries (of refreshed or removed keys) off the top of the expiry heap, so
    /// that its top is always a live expectation's expiry.
    fn settle(&mut self) {
        while let Some(&Reverse((at, key))) = self.expiry.peek() {
            if self.entries.get(&key).is_some_and(|e| e.expires() == at) {
                break;
            }
            self.expiry.pop();
        }
    }

    /// Drop stale expiry entries (of refreshed or removed keys) once they outnumber the live
    /// ones, so the heap stays proportional to the table.
    fn compact(&mut self) {
        if self.expiry.len() <= 2 * self.entries.len() + 64 {
            return;
        }
        self.expiry = self
            .entries
            .iter()
            .map(|(key, e)| Reverse((e.expires(), *key)))
            .collect();
    }
}

fn client_of(expectation: &Expectation) -> IpAddr {
    expectation.control.client.ip()
}

#[cfg(test)]
mod tests;
