//! The hasher of the tables indexed by what peers send (flows, expectations, their sources and
//! endpoints): foldhash, keyed at random (a random global seed, and a per-table one), so a peer
//! cannot choose keys that collide (docs/decisions.md, D24). Far cheaper than std's SipHash
//! per lookup; a fingerprint that must not collide (the replay oracle's) keeps SipHash.

/// A randomly keyed foldhash builder.
pub type RandomState = foldhash::fast::RandomState;

/// A `HashMap` with [`RandomState`] (build it with `HashMap::default()`).
pub type HashMap<K, V> = std::collections::HashMap<K, V, RandomState>;
