//! The expectations this daemon believes are in the kernel, so that `--cleanup` can remove
//! them at shutdown.
//!
//! Owns: a map from key to expiry, bounded by what the engine bounds (expectations per
//! control connection × tracked connections), pruned as entries expire.

use std::collections::HashMap;

use crate::expect::DataKey;
use crate::time::Instant;

/// Installed, not yet removed or expired.
#[derive(Debug, Default)]
pub(crate) struct Live {
    expires: HashMap<DataKey, Instant>,
}

impl Live {
    /// `key` was installed (or refreshed) until `expires`.
    pub(crate) fn installed(&mut self, key: DataKey, expires: Instant) {
        self.expires.insert(key, expires);
    }

    /// `key` was removed.
    pub(crate) fn removed(&mut self, key: &DataKey) {
        self.expires.remove(key);
    }

    /// Forget what the kernel has timed out by `now`.
    pub(crate) fn prune(&mut self, now: Instant) {
        self.expires.retain(|_, expires| *expires > now);
    }

    /// Take every entry still live at `now`, with its remaining lifetime's expiry.
    pub(crate) fn drain(&mut self, now: Instant) -> Vec<DataKey> {
        self.prune(now);
        let mut keys: Vec<DataKey> = self.expires.drain().map(|(key, _)| key).collect();
        keys.sort_unstable();
        keys
    }

    /// How many are live.
    pub(crate) fn len(&self) -> usize {
        self.expires.len()
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU16;

    use super::*;

    fn key(port: u16) -> DataKey {
        DataKey {
            src: [198, 51, 100, 2].into(),
            dst: [203, 0, 113, 2].into(),
            dport: NonZeroU16::new(port).unwrap(),
        }
    }

    #[test]
    fn expired_and_removed_entries_are_not_cleaned_up() {
        let mut live = Live::default();
        live.installed(key(1), Instant::from_micros(10));
        live.installed(key(2), Instant::from_micros(30));
        live.installed(key(3), Instant::from_micros(30));
        live.removed(&key(3));
        assert_eq!(live.len(), 2);
        assert_eq!(live.drain(Instant::from_micros(20)), vec![key(2)]);
        assert_eq!(live.len(), 0);
    }
}
