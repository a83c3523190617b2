//! The table's rules one by one, then random operations checked against its invariants.

use std::collections::HashSet;
use std::net::SocketAddr;

use proptest::prelude::*;

use super::*;

fn key(host: u8, port: u16) -> FlowKey {
    FlowKey::new(
        SocketAddr::from(([198, 51, 100, host], port)),
        SocketAddr::from(([203, 0, 113, 2], 21)),
    )
}

fn src(host: u8) -> IpAddr {
    IpAddr::from([198, 51, 100, host])
}

fn at(micros: u64) -> Instant {
    Instant::from_micros(micros)
}

fn limits(max_flows: usize, per_source: usize, per_prefix: usize) -> Limits {
    Limits {
        max_flows,
        max_unproven_per_source: per_source,
        max_unproven_per_prefix: per_prefix,
    }
}

fn keys_of(displaced: &[(FlowKey, u32, Displaced)]) -> Vec<(FlowKey, Displaced)> {
    displaced.iter().map(|(k, _, why)| (*k, *why)).collect()
}

#[test]
fn expiry_follows_deadlines_even_when_they_move() {
    let mut t = FlowTable::new(limits(10, 0, 0));
    t.insert(key(2, 1), 1, Tier::Proven, src(2), at(30))
        .unwrap();
    t.insert(key(2, 2), 2, Tier::Proven, src(2), at(10))
        .unwrap();
    assert_eq!(t.next_deadline(), Some(at(10)));
    t.touch(&key(2, 2), Tier::Proven, at(50));
    assert_eq!(
        t.next_deadline(),
        Some(at(30)),
        "a later deadline is exact at once"
    );
    t.touch(&key(2, 1), Tier::Spent, at(5));
    assert_eq!(t.next_deadline(), Some(at(5)), "an earlier one too");
    assert_eq!(t.pop_expired(at(4)), None);
    assert_eq!(t.pop_expired(at(5)), Some((key(2, 1), 1)));
    assert_eq!(t.pop_expired(at(49)), None);
    assert_eq!(t.pop_expired(at(50)), Some((key(2, 2), 2)));
    assert!(t.is_empty());
    assert_eq!(t.next_deadline(), None);
}

#[test]
fn a_full_table_evicts_spent_then_unproven_then_proven_least_recent_first() {
    let mut t = FlowTable::new(limits(3, 0, 0));
    t.insert(key(2, 1), 1, Tier::Proven, src(2), at(100))
        .unwrap();
    t.insert(key(3, 1), 2, Tier::Unproven, src(3), at(100))
        .unwrap();
    t.insert(key(4, 1), 3, Tier::Unproven, src(4), at(100))
        .unwrap();
    t.touch(&key(3, 1), Tier::Unproven, at(100));
    let out = t
        .insert(key(5, 1), 4, Tier::Unproven, src(5), at(100))
        .unwrap();
    assert_eq!(
        keys_of(&out),
        vec![(key(4, 1), Displaced::Evicted(Tier::Unproven))],
        "the least recently active unproven flow"
    );
    t.touch(&key(3, 1), Tier::Spent, at(100));
    let out = t
        .insert(key(6, 1), 5, Tier::Unproven, src(6), at(100))
        .unwrap();
    assert_eq!(
        keys_of(&out),
        vec![(key(3, 1), Displaced::Evicted(Tier::Spent))]
    );
    t.touch(&key(5, 1), Tier::Proven, at(100));
    t.touch(&key(6, 1), Tier::Proven, at(100));
    let out = t
        .insert(key(7, 1), 6, Tier::Unproven, src(7), at(100))
        .unwrap();
    assert_eq!(
        keys_of(&out),
        vec![(key(2, 1), Displaced::Evicted(Tier::Proven))],
        "a proven flow only when nothing else is left"
    );
    assert_eq!(t.len(), 3);
}

#[test]
fn a_source_past_its_cap_churns_only_its_own_unproven_flows() {
    let mut t = FlowTable::new(limits(100, 2, 0));
    t.insert(key(9, 1), 0, Tier::Proven, src(9), at(100))
        .unwrap();
    t.insert(key(2, 1), 1, Tier::Unproven, src(2), at(100))
        .unwrap();
    t.insert(key(2, 2), 2, Tier::Unproven, src(2), at(100))
        .unwrap();
    t.insert(key(3, 1), 3, Tier::Unproven, src(3), at(100))
        .unwrap();
    for port in 3..1000 {
        let out = t
            .insert(key(2, port), 4, Tier::Unproven, src(2), at(100))
            .unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].2, Displaced::SourceCap);
    }
    assert_eq!(t.len(), 4);
    assert!(t.get(&key(3, 1)).is_some(), "another source is untouched");
    assert!(t.get(&key(9, 1)).is_some());
    // A proven flow does not count against its source's cap.
    t.touch(&key(2, 999), Tier::Proven, at(100));
    assert!(
        t.insert(key(2, 5000), 5, Tier::Unproven, src(2), at(100))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_touch_within_its_tier_makes_a_flow_the_most_recent_of_its_tier_and_source() {
    // Source cap 2: the source's least recently active unproven flow makes room.
    let mut t = FlowTable::new(limits(100, 2, 0));
    t.insert(key(2, 1), 1, Tier::Unproven, src(2), at(100))
        .unwrap();
    t.insert(key(2, 2), 2, Tier::Unproven, src(2), at(100))
        .unwrap();
    let at1 = t.locate(&key(2, 1)).unwrap();
    assert!(t.touch_at(at1, Tier::Unproven, at(200)).is_none());
    assert_eq!(t.get_at(at1), Some(&1));
    let out = t
        .insert(key(2, 3), 3, Tier::Unproven, src(2), at(100))
        .unwrap();
    assert_eq!(keys_of(&out), [(key(2, 2), Displaced::SourceCap)]);
    check(&t);
    // Full table: the least recently active of the lowest tier goes.
    let mut t = FlowTable::new(limits(2, 0, 0));
    t.insert(key(2, 1), 1, Tier::Proven, src(2), at(100))
        .unwrap();
    t.insert(key(3, 1), 2, Tier::Proven, src(3), at(100))
        .unwrap();
    t.touch(&key(2, 1), Tier::Proven, at(200));
    let out = t
        .insert(key(4, 1), 3, Tier::Proven, src(4), at(100))
        .unwrap();
    assert_eq!(
        keys_of(&out),
        [(key(3, 1), Displaced::Evicted(Tier::Proven))]
    );
    check(&t);
    // A slot freed since it was located reads as gone.
    let gone = t.locate(&key(4, 1)).unwrap();
    t.remove(&key(4, 1));
    assert_eq!(t.get_at(gone), None);
    assert!(t.touch_at(gone, Tier::Proven, at(300)).is_none());
    check(&t);
}

#[test]
fn a_crowded_prefix_is_refused() {
    let mut t = FlowTable::new(limits(100, 0, 2));
    t.insert(key(2, 1), 1, Tier::Unproven, src(2), at(100))
        .unwrap();
    t.insert(key(3, 1), 2, Tier::Unproven, src(3), at(100))
        .unwrap();
    assert_eq!(
        t.insert(key(4, 1), 3, Tier::Unproven, src(4), at(100)),
        Err(PrefixFull)
    );
    assert!(
        t.insert(key(4, 1), 3, Tier::Proven, src(4), at(100))
            .is_ok()
    );
    // Replacing a flow of the prefix under the same key is not a new one.
    assert!(
        t.insert(key(2, 1), 4, Tier::Unproven, src(2), at(100))
            .is_ok()
    );
    let v6 = IpAddr::from([0x2001, 0xdb8, 0, 1, 0, 0, 0, 9]);
    assert_eq!(
        prefix_of(v6),
        IpAddr::from([0x2001, 0xdb8, 0, 1, 0, 0, 0, 0])
    );
}

#[test]
fn reinsert_replaces_without_evicting() {
    let mut t = FlowTable::new(limits(2, 0, 0));
    t.insert(key(2, 1), 1, Tier::Proven, src(2), at(100))
        .unwrap();
    t.insert(key(2, 2), 2, Tier::Proven, src(2), at(50))
        .unwrap();
    let out = t
        .insert(key(2, 1), 10, Tier::Unproven, src(2), at(70))
        .unwrap();
    assert_eq!(keys_of(&out), vec![(key(2, 1), Displaced::Replaced)]);
    assert_eq!(t.len(), 2);
    assert_eq!(t.remove(&key(2, 1)), Some(10));
    assert_eq!(t.next_deadline(), Some(at(50)));
    assert_eq!(t.len(), 1);
}

#[test]
fn busy_flows_keep_the_heap_bounded() {
    let mut t = FlowTable::new(limits(10, 0, 0));
    t.insert(key(2, 1), 1, Tier::Proven, src(2), at(100))
        .unwrap();
    for i in 0..10_000 {
        // Alternating earlier and later deadlines push stale entries.
        let deadline = if i % 2 == 0 { at(50) } else { at(200 + i) };
        t.touch(&key(2, 1), Tier::Proven, deadline);
    }
    assert!(
        t.timers.len() <= 2 * t.len() + 65,
        "heap has {}",
        t.timers.len()
    );
}

#[derive(Debug, Clone)]
enum Op {
    Insert {
        host: u8,
        port: u16,
        tier: u8,
        deadline: u64,
    },
    Touch {
        host: u8,
        port: u16,
        tier: u8,
        deadline: u64,
    },
    Remove {
        host: u8,
        port: u16,
    },
    Expire {
        now: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let host = 2u8..6;
    let port = 1u16..6;
    prop_oneof![
        4 => (host.clone(), port.clone(), 0u8..3, 0u64..200)
            .prop_map(|(host, port, tier, deadline)| Op::Insert { host, port, tier, deadline }),
        4 => (host.clone(), port.clone(), 0u8..3, 0u64..200)
            .prop_map(|(host, port, tier, deadline)| Op::Touch { host, port, tier, deadline }),
        1 => (host, port).prop_map(|(host, port)| Op::Remove { host, port }),
        1 => (0u64..200).prop_map(|now| Op::Expire { now }),
    ]
}

fn tier(n: u8) -> Tier {
    [Tier::Spent, Tier::Unproven, Tier::Proven][usize::from(n)]
}

/// The invariants, checked from the table's internals.
fn check(t: &FlowTable<u32>) {
    let live: Vec<(u32, &Slot<u32>)> = t
        .slots
        .iter()
        .enumerate()
        .filter(|(_, s)| s.value.is_some())
        .map(|(i, s)| (i as u32, s))
        .collect();
    assert_eq!(live.len(), t.index.len());
    assert!(t.len() <= t.limits.max_flows);
    for (i, slot) in &live {
        assert_eq!(t.index.get(&slot.key), Some(i));
    }
    // Each tier's list holds exactly its slots.
    for tier in [Tier::Spent, Tier::Unproven, Tier::Proven] {
        let mut seen = HashSet::new();
        let mut at = t.tiers[tier as usize].head;
        while at != NIL {
            assert!(seen.insert(at), "cycle");
            assert_eq!(t.slots[at as usize].tier, tier);
            at = t.slots[at as usize].by_tier.next;
        }
        let expected = live.iter().filter(|(_, s)| s.tier == tier).count();
        assert_eq!(seen.len(), expected);
        assert_eq!(t.tiers[tier as usize].len, expected);
    }
    // Unproven counts per source and per prefix, and the source cap.
    let mut per_source: HashMap<IpAddr, usize> = HashMap::default();
    for (_, slot) in live.iter().filter(|(_, s)| s.tier == Tier::Unproven) {
        *per_source.entry(slot.source).or_default() += 1;
    }
    for (source, n) in &per_source {
        assert_eq!(t.sources[source].len, *n);
        if t.limits.max_unproven_per_source > 0 {
            assert!(*n <= t.limits.max_unproven_per_source);
        }
    }
    assert_eq!(t.sources.len(), per_source.len());
    assert_eq!(
        t.prefixes.values().sum::<usize>(),
        per_source.values().sum::<usize>()
    );
    // The next deadline is exactly the earliest.
    let earliest = live.iter().map(|(_, s)| s.deadline).min();
    assert_eq!(t.next_deadline(), earliest);
}

proptest! {
    #[test]
    fn random_operations_keep_every_invariant(ops in prop::collection::vec(op(), 1..150)) {
        let mut t: FlowTable<u32> = FlowTable::new(limits(6, 2, 0));
        for (n, op) in ops.into_iter().enumerate() {
            match op {
                Op::Insert { host, port, tier: k, deadline } => {
                    let _ = t.insert(key(host, port), n as u32, tier(k), src(host), at(deadline));
                }
                Op::Touch { host, port, tier: k, deadline } => {
                    if let Some((gone, _, why)) = t.touch(&key(host, port), tier(k), at(deadline)) {
                        prop_assert_eq!(why, Displaced::SourceCap);
                        prop_assert!(gone != key(host, port));
                    }
                }
                Op::Remove { host, port } => {
                    t.remove(&key(host, port));
                }
                Op::Expire { now } => {
                    while let Some((k, _)) = t.pop_expired(at(now)) {
                        prop_assert!(t.get(&k).is_none());
                    }
                    prop_assert!(t.next_deadline().is_none_or(|d| d > at(now)));
                }
            }
            check(&t);
        }
    }
}
