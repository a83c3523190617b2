//! [`SetDelta`]: the net effect of a run of actions on the kernel's expectation set.
//!
//! Owns: reducing the `Install` and `Remove` actions the engine queued, in their order, to one
//! final word per key (the last one wins): present with this expectation's lifetime, or
//! absent. The keys of a delta are distinct, so carrying out its removals and its installs in
//! either order leaves the set exactly as carrying out every action in order would. A shell can
//! therefore apply a whole packet's changes in one netlink transaction, and an engine that
//! emits `Install(k5)` then `Remove(k1)`, or `Install(k)` then `Remove(k)`, is never
//! misapplied.

use crate::hashing::HashMap;

use super::DataKey;
use super::Expectation;
use super::NatMapping;
use crate::action::Action;

/// The net change to the expectation set, per key, in first-touched order.
#[derive(Debug, Default, Clone)]
pub struct SetDelta {
    order: Vec<DataKey>,
    last: HashMap<DataKey, Final>,
}

/// The last word on one key.
#[derive(Debug, Clone)]
enum Final {
    /// Present with this expectation.
    Present(Expectation),
    /// Absent; the NAT mapping the removed expectation had, if any (its map element goes too).
    Absent(Option<NatMapping>),
}

impl SetDelta {
    /// Take one action into account (notes and refusals change nothing).
    pub fn push(&mut self, action: &Action) {
        match action {
            Action::Install(expectation) => {
                self.set(expectation.key, Final::Present(expectation.clone()))
            }
            Action::Remove(removal) => {
                let nat = removal.expectation.nat;
                self.set(removal.expectation.key, Final::Absent(nat))
            }
            Action::Note(_) | Action::Refuse(_) | Action::Release(_) => {}
        }
    }

    /// Forget everything.
    pub fn clear(&mut self) {
        self.order.clear();
        self.last.clear();
    }

    /// Keys that must end up absent, with the NAT mapping whose map element goes with them.
    pub fn removals(&self) -> impl Iterator<Item = (DataKey, Option<NatMapping>)> + '_ {
        self.order
            .iter()
            .filter_map(|key| match self.last.get(key) {
                Some(Final::Absent(nat)) => Some((*key, *nat)),
                _ => None,
            })
    }

    /// Expectations that must end up present, with their lifetimes.
    pub fn installs(&self) -> impl Iterator<Item = &Expectation> + '_ {
        self.order
            .iter()
            .filter_map(|key| match self.last.get(key) {
                Some(Final::Present(expectation)) => Some(expectation),
                _ => None,
            })
    }

    /// True when nothing changes.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    fn set(&mut self, key: DataKey, state: Final) {
        if self.last.insert(key, state).is_none() {
            self.order.push(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::Removal;
    use crate::expect::Revocation;
    use crate::testkit::fixtures::passive_expectation;
    use crate::time::Duration;
    use crate::time::Instant;

    fn exp(port: u16) -> Expectation {
        passive_expectation(port, 1, Instant::from_micros(0), Duration::from_secs(30))
    }

    fn remove(port: u16) -> Action {
        Action::Remove(Removal {
            time: Instant::from_micros(0),
            expectation: exp(port),
            reason: Revocation::Superseded,
        })
    }

    fn ports(keys: impl Iterator<Item = DataKey>) -> Vec<u16> {
        keys.map(|k| k.dport.get()).collect()
    }

    #[test]
    fn the_last_word_per_key_wins() {
        let mut d = SetDelta::default();
        // Install(k5) then Remove(k1): both stand.
        d.push(&Action::Install(exp(5005)));
        d.push(&remove(5001));
        // Install(k) then Remove(k): absent.
        d.push(&Action::Install(exp(5002)));
        d.push(&remove(5002));
        // Remove(k) then Install(k): present.
        d.push(&remove(5003));
        d.push(&Action::Install(exp(5003)));
        assert_eq!(ports(d.removals().map(|(key, _)| key)), vec![5001, 5002]);
        assert_eq!(ports(d.installs().map(|e| e.key)), vec![5005, 5003]);
        d.clear();
        assert!(d.is_empty());
        assert_eq!(d.removals().count() + d.installs().count(), 0);
    }
}
