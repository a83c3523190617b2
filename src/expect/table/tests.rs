//! The table's rules one by one, then a randomized check of its invariants against a
//! plain list model.

use std::net::IpAddr;
use std::net::SocketAddr;
use std::num::NonZeroU16;

use proptest::prelude::*;

use super::*;
use crate::flow::Control;
use crate::flow::FlowId;
use crate::ftp::Mode;
use crate::ftp::Trigger;
use crate::time::Duration;

const LIFETIME: u64 = 100;

fn limits(per_control: usize, per_client: usize, total: usize) -> Limits {
    Limits {
        per_control,
        per_client,
        total,
    }
}

/// A passive expectation of client `client` (198.51.100.`client`), control port `cport`, for
/// data port `dport`, announced by command `id` at `created`.
fn exp(client: u8, cport: u16, dport: u16, id: u64, created: u64) -> Expectation {
    let control = Control {
        client: SocketAddr::from(([198, 51, 100, client], cport)),
        server: SocketAddr::from(([203, 0, 113, 2], 21)),
    };
    Expectation {
        nat: None,
        key: DataKey {
            src: control.client.ip(),
            dst: control.server.ip(),
            dport: NonZeroU16::new(dport).unwrap(),
        },
        control,
        trigger: Trigger::Reply227,
        mode: Mode::Passive,
        created: Instant::from_micros(created),
        lifetime: Duration::from_micros(LIFETIME),
        origin: (FlowId(u64::from(cport)), AnnouncementId(id)),
    }
}

fn ports(list: &[Expectation]) -> Vec<u16> {
    let mut ports: Vec<u16> = list.iter().map(|e| e.key.dport.get()).collect();
    ports.sort_unstable();
    ports
}

fn held(table: &ExpectationTable) -> Vec<u16> {
    ports(&table.iter().cloned().collect::<Vec<_>>())
}

#[test]
fn the_same_key_from_the_same_connection_refreshes() {
    let mut t = ExpectationTable::new(limits(4, 10, 10));
    t.install(exp(2, 40000, 5000, 1, 0)).unwrap();
    let again = t.install(exp(2, 40000, 5000, 2, 50)).unwrap();
    assert!(again.refreshed);
    assert_eq!(t.len(), 1);
    assert_eq!(
        t.get(&exp(2, 40000, 5000, 2, 50).key).unwrap().origin.1,
        AnnouncementId(2)
    );
    assert!(
        t.expire(Instant::from_micros(100)).is_empty(),
        "the refresh moved the expiry"
    );
    assert_eq!(t.expire(Instant::from_micros(150)).len(), 1);
    assert!(t.is_empty());
}

#[test]
fn the_oldest_is_superseded_past_the_bound_per_connection() {
    let mut t = ExpectationTable::new(limits(2, 10, 10));
    t.install(exp(2, 40000, 5000, 1, 0)).unwrap();
    t.install(exp(2, 40000, 5001, 2, 0)).unwrap();
    let third = t.install(exp(2, 40000, 5002, 3, 0)).unwrap();
    assert_eq!(third.superseded.map(|e| e.key.dport.get()), Some(5000));
    assert_eq!(held(&t), vec![5001, 5002]);
}

#[test]
fn a_key_announced_by_another_connection_moves_to_it() {
    let mut t = ExpectationTable::new(limits(4, 10, 10));
    let first = exp(2, 40000, 5000, 1, 0);
    t.install(first.clone()).unwrap();
    let mut other = exp(2, 40001, 5000, 1, 10);
    other.key = first.key;
    let moved = t.install(other.clone()).unwrap();
    assert_eq!(moved.moved_from, Some(first.owner()));
    assert_eq!(t.owned_by(first.owner()), 0);
    assert_eq!(t.owned_by(other.owner()), 1);
    assert!(
        t.remove_owner(first.owner()).is_empty(),
        "the old owner cannot revoke it"
    );
    assert_eq!(t.len(), 1);
}

#[test]
fn a_client_past_its_bound_is_refused_and_nothing_changes() {
    let mut t = ExpectationTable::new(limits(2, 3, 10));
    t.install(exp(2, 40000, 5000, 1, 0)).unwrap();
    t.install(exp(2, 40000, 5001, 2, 0)).unwrap();
    t.install(exp(2, 40001, 5002, 1, 0)).unwrap();
    assert_eq!(t.install(exp(2, 40001, 5003, 2, 0)), Err(Full::Client));
    assert_eq!(t.install(exp(2, 40002, 5004, 1, 0)), Err(Full::Client));
    assert_eq!(held(&t), vec![5000, 5001, 5002]);
    // Supersession within a connection at its own bound needs no room.
    let sup = t.install(exp(2, 40000, 5005, 3, 0)).unwrap();
    assert_eq!(sup.superseded.map(|e| e.key.dport.get()), Some(5000));
    // Another client is not affected.
    t.install(exp(3, 40000, 5006, 1, 0)).unwrap();
    assert_eq!(t.held_by_client(IpAddr::from([198, 51, 100, 2])), 3);
    assert_eq!(t.held_by_client(IpAddr::from([198, 51, 100, 3])), 1);
}

#[test]
fn the_table_past_its_total_is_refused() {
    let mut t = ExpectationTable::new(limits(4, 10, 2));
    t.install(exp(2, 40000, 5000, 1, 0)).unwrap();
    t.install(exp(3, 40000, 5001, 1, 0)).unwrap();
    assert_eq!(t.install(exp(4, 40000, 5002, 1, 0)), Err(Full::Total));
    assert_eq!(held(&t), vec![5000, 5001]);
    assert!(t.install(exp(3, 40000, 5001, 2, 5)).unwrap().refreshed);
}

#[test]
fn removal_by_announcement_by_command_order_and_by_owner() {
    let mut t = ExpectationTable::new(limits(8, 10, 10));
    for (port, id) in [(5000, 1), (5001, 3), (5002, 4), (5003, 6)] {
        t.install(exp(2, 40000, port, id, 0)).unwrap();
    }
    let owner = exp(2, 40000, 5000, 1, 0).owner();
    assert_eq!(
        t.remove_announcement(owner, AnnouncementId(3))
            .map(|e| e.key.dport.get()),
        Some(5001)
    );
    assert_eq!(t.remove_announcement(owner, AnnouncementId(3)), None);
    assert_eq!(
        ports(&t.remove_before(owner, AnnouncementId(5))),
        vec![5000, 5002]
    );
    assert_eq!(ports(&t.remove_owner(owner)), vec![5003]);
    assert!(t.is_empty());
    t.install(exp(2, 40000, 5004, 7, 0)).unwrap();
    t.install(exp(3, 40001, 5005, 1, 0)).unwrap();
    assert_eq!(ports(&t.remove_all()), vec![5004, 5005]);
    assert!(t.is_empty() && t.next_expiry().is_none());
    assert_eq!(t.held_by_client(IpAddr::from([198, 51, 100, 2])), 0);
}

#[test]
fn refresh_floods_keep_the_expiry_heap_bounded() {
    let mut t = ExpectationTable::new(limits(4, 10, 10));
    for i in 0..10_000 {
        t.install(exp(2, 40000, 5000, i, i)).unwrap();
    }
    assert_eq!(t.len(), 1);
    assert!(
        t.expiry.len() <= 2 * t.len() + 65,
        "heap has {}",
        t.expiry.len()
    );
    assert_eq!(t.next_expiry().map(|_| ()), Some(()));
}

/// One operation of the randomized check.
#[derive(Debug, Clone)]
enum Op {
    Install { client: u8, cport: u16, dport: u16 },
    Remove { dport: u16 },
    RemoveOwner { client: u8, cport: u16 },
    RemoveBefore { client: u8, cport: u16 },
    Expire,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (2u8..5, 40000u16..40003, 5000u16..5012)
            .prop_map(|(client, cport, dport)| Op::Install { client, cport, dport }),
        1 => (5000u16..5012).prop_map(|dport| Op::Remove { dport }),
        1 => (2u8..5, 40000u16..40003).prop_map(|(client, cport)| Op::RemoveOwner { client, cport }),
        1 => (2u8..5, 40000u16..40003).prop_map(|(client, cport)| Op::RemoveBefore { client, cport }),
        1 => Just(Op::Expire),
    ]
}

/// The invariants the table promises, checked from its public answers and its indexes.
fn check(t: &ExpectationTable, now: u64) {
    let limits = t.limits();
    assert!(t.len() <= limits.total);
    let mut per_client: HashMap<IpAddr, usize> = HashMap::default();
    for e in t.iter() {
        *per_client.entry(e.control.client.ip()).or_default() += 1;
        assert!(
            t.owned(e.owner()).contains(&e.key),
            "{} not in its owner's list",
            e.key
        );
        assert!(
            e.expires().as_micros() > now,
            "expired entry {} still held",
            e.key
        );
    }
    for (client, n) in &per_client {
        assert_eq!(t.held_by_client(*client), *n);
        assert!(*n <= limits.per_client);
    }
    assert_eq!(t.clients.len(), per_client.len(), "no zero counts kept");
    let listed: usize = t.owners.values().map(Vec::len).sum();
    assert_eq!(listed, t.len(), "every key listed once");
    assert!(
        t.owners
            .values()
            .all(|keys| !keys.is_empty() && keys.len() <= limits.per_control)
    );
}

proptest! {
    #[test]
    fn random_operations_keep_every_invariant(ops in prop::collection::vec(op(), 1..120)) {
        let mut t = ExpectationTable::new(limits(3, 5, 7));
        let mut now = 0u64;
        for (i, op) in ops.into_iter().enumerate() {
            now += 7;
            t.expire(Instant::from_micros(now));
            let id = i as u64 + 1;
            match op {
                Op::Install { client, cport, dport } => {
                    let before = t.len();
                    match t.install(exp(client, cport, dport, id, now)) {
                        Ok(installed) => {
                            let grew = t.len() as isize - before as isize;
                            let new = !installed.refreshed && installed.moved_from.is_none();
                            let expected = isize::from(new) - isize::from(installed.superseded.is_some());
                            prop_assert_eq!(grew, expected);
                        }
                        Err(_) => prop_assert_eq!(t.len(), before),
                    }
                }
                Op::Remove { dport } => {
                    let key = exp(2, 40000, dport, 0, 0).key;
                    t.remove(&key);
                    prop_assert!(t.get(&key).is_none());
                }
                Op::RemoveOwner { client, cport } => {
                    let owner = exp(client, cport, 5000, 0, 0).owner();
                    t.remove_owner(owner);
                    prop_assert_eq!(t.owned_by(owner), 0);
                }
                Op::RemoveBefore { client, cport } => {
                    let owner = exp(client, cport, 5000, 0, 0).owner();
                    t.remove_before(owner, AnnouncementId(id));
                    prop_assert_eq!(t.owned_by(owner), 0);
                }
                Op::Expire => {}
            }
            check(&t, now);
        }
    }
}

#[test]
fn a_public_face_belongs_to_one_expectation_and_goes_with_it() {
    let mut table = ExpectationTable::new(limits(4, 10, 10));
    let public: std::net::IpAddr = "192.0.2.100".parse().unwrap();
    let mut first = exp(1, 40000, 5000, 1, 0);
    first.nat = Some(crate::expect::NatMapping {
        public,
        port: NonZeroU16::new(5000).unwrap(),
    });
    let key = first.key;
    table.install(first).unwrap();
    let other = exp(1, 40001, 5001, 1, 0).key;
    assert!(table.face_taken(key.src, public, 5000, &other));
    assert!(
        !table.face_taken(key.src, public, 5000, &key),
        "its own face is not taken"
    );
    assert!(!table.face_taken(key.src, public, 5001, &other));
    assert_eq!(table.nat_of(&key).unwrap().port.get(), 5000);
    table.remove(&key);
    assert!(!table.face_taken(key.src, public, 5000, &other));
}
