//! [`SetModel`]: what the firewall's expectation set does with the engine's actions, so that
//! offline replay can tell, for every data connection in a capture, whether it would have
//! been admitted.
//!
//! Owns: the kernel semantics we deploy (an element per [`DataKey`] with a timeout; adding an
//! existing key refreshes it; the first matching SYN deletes it, `... @set delete @set ...
//! accept`, so one expectation admits one connection), the judgement of each SYN (admitted, a
//! retransmission of an admitted one, or denied with the reason when it aimed at an announced
//! endpoint), and the list of expectations that were never used. Pure: used by `replay` and
//! by tests.

mod elements;
mod expiring;

use crate::hashing::HashMap;
use std::collections::VecDeque;
use std::hash::BuildHasher;
use std::hash::RandomState;
use std::net::SocketAddr;

use self::elements::Elements;
use self::elements::Endpoint;
use self::elements::endpoint;
use self::expiring::Expiring;
use crate::action::Action;
use crate::expect::DataKey;
use crate::expect::Expectation;
use crate::policy::Reason;
use crate::time::Duration;
use crate::time::Instant;
use crate::wire::SeqNumber;

/// Announced endpoints remembered to explain denials (oldest forgotten first). A denial
/// follows its endpoint's fate within seconds; 16,384 keep a replay's memory small (about
/// 1 MB at the bound) while covering minutes at a busy gateway's rate.
const MAX_REMEMBERED: usize = 16_384;
/// Admitted connections remembered to recognise their retransmitted SYNs (oldest forgotten
/// first). At up to 136 admissions per second this covers all of [`ADMITTED_MEMORY`]; at
/// 1,000 per second, 16 s, still past a SYN's fourth retransmission (1 + 2 + 4 + 8 s).
const MAX_ADMITTED: usize = 16_384;
/// How long an admitted connection's SYN is recognised: conntrack keeps an entry that saw no
/// reply for 2 minutes (`nf_conntrack_tcp_timeout_syn_sent`), and Linux gives up retrying a
/// SYN after about 127 s (`tcp_syn_retries` = 6, last retransmission at 63 s).
const ADMITTED_MEMORY: Duration = Duration::from_secs(120);

/// A model of the firewall's expectation set.
///
/// Time passes through [`SetModel::poll_expired`]: call it until it returns `None` before
/// [`SetModel::apply`] or [`SetModel::handle_syn`] at a later `now` (replay does, before each
/// packet). Elements then leave the model at their expiry, each reported once, and memory
/// follows the live elements, not the length of the capture. Without it, admission is still
/// exact, but an element past its lifetime is reported later (by `apply` or `finish`) and can
/// still explain a denial as `wrong-source`.
#[derive(Debug, Default)]
pub struct SetModel {
    elements: Elements,
    /// What became of each announced endpoint, to explain denials (bounded, oldest first).
    remembered: HashMap<Endpoint, Fate>,
    remembered_order: VecDeque<Endpoint>,
    /// Admitted connections, by a keyed 64-bit fingerprint of their 4-tuple: the initial
    /// sequence number of their SYN, until [`ADMITTED_MEMORY`] after it. A fingerprint (24
    /// bytes per heap entry, not 80) keeps a replay's memory small at the bound: two
    /// connections would have to share a fingerprint (odds 2^-64 per pair, the key random
    /// per model) and an ISN to be confused.
    admitted: Expiring<u64, SeqNumber>,
    /// The key of the fingerprints.
    fingerprints: RandomState,
}

/// What the model decided about one SYN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    /// The SYN matched a live element, which it consumed.
    Admit(Expectation),
    /// The SYN aimed at an announced endpoint but was not admitted.
    Deny(Denial),
    /// A retransmission of a SYN already admitted (same 4-tuple, same initial sequence
    /// number): the connection is the same.
    Repeat,
    /// The SYN has nothing to do with any announcement.
    Unrelated,
}

/// Why a SYN to an announced endpoint was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// The expectation's lifetime was over.
    Expired,
    /// It came from another address than the expected one.
    WrongSource,
    /// The expectation had already admitted a connection.
    AlreadyUsed,
    /// The announcement was refused.
    Refused(Reason),
    /// The expectation was revoked before the SYN came.
    Revoked,
}

/// An expectation that admitted nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unused {
    /// When it stopped being usable (expiry or revocation).
    pub time: Instant,
    /// The expectation.
    pub expectation: Expectation,
}

/// Sizes of the model's internal collections, for tests of its bounds.
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Footprint {
    pub(crate) elements: usize,
    pub(crate) heap: usize,
    pub(crate) endpoints: usize,
    pub(crate) remembered: usize,
    pub(crate) admitted: usize,
    pub(crate) admitted_heap: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Live,
    Used,
    Refused(Reason),
    Revoked,
}

impl SetModel {
    /// Apply one engine action; returns the expectation it made unusable without use, if any.
    pub fn apply(&mut self, now: Instant, action: &Action) -> Option<Unused> {
        match action {
            Action::Install(e) => {
                self.remember(endpoint(&e.key), Fate::Live);
                let replaced = self.elements.insert(e.clone())?;
                unused_if_expired(replaced, now)
            }
            Action::Remove(removal) => {
                let key = removal.expectation.key;
                let expectation = self.elements.remove(&key)?;
                self.remember(endpoint(&key), Fate::Revoked);
                Some(Unused {
                    time: expectation.expires().min(removal.time),
                    expectation,
                })
            }
            Action::Refuse(refusal) => {
                let endpoint = refusal.endpoint.map(|e| (e.ip(), e.port()))?;
                if !matches!(self.remembered.get(&endpoint), Some(Fate::Live)) {
                    self.remember(endpoint, Fate::Refused(refusal.reason));
                }
                None
            }
            Action::Note(_) | Action::Release(_) => None,
        }
    }

    /// Judge a connection's first SYN from `src` to `dst` at `now`, whose sequence number
    /// (the connection's initial sequence number) is `isn`.
    pub fn handle_syn(
        &mut self,
        now: Instant,
        src: SocketAddr,
        dst: SocketAddr,
        isn: SeqNumber,
    ) -> Judgement {
        let connection = self.fingerprints.hash_one((src, dst));
        if self.is_retransmission(now, connection, isn) {
            return Judgement::Repeat;
        }
        let Some(port) = std::num::NonZeroU16::new(dst.port()) else {
            return Judgement::Unrelated;
        };
        let key = DataKey {
            src: src.ip(),
            dst: dst.ip(),
            dport: port,
        };
        if let Some(expectation) = self.elements.take_live(&key, now) {
            self.admit(now, connection, isn);
            self.remember(endpoint(&key), Fate::Used);
            return Judgement::Admit(expectation);
        }
        if self.elements.contains(&key) {
            // Past its lifetime, not yet polled (as the kernel's lingers until its garbage
            // collection): it can no longer match.
            return Judgement::Deny(Denial::Expired);
        }
        self.explain(&endpoint(&key))
    }

    /// The element whose lifetime ended first, if it ended by `now`: it leaves the model and
    /// is reported unused at its expiry. Call until `None`.
    #[inline]
    pub fn poll_expired(&mut self, now: Instant) -> Option<Unused> {
        self.forget_admissions(now);
        let expectation = self.elements.pop_expired(now)?;
        Some(Unused {
            time: expectation.expires(),
            expectation,
        })
    }

    /// Every element still held: those whose lifetime ended by `now`, and those still alive.
    /// Clears the model.
    pub fn finish(&mut self, now: Instant) -> Vec<Unused> {
        let mut left: Vec<Unused> = self
            .elements
            .drain()
            .into_iter()
            .map(|expectation| Unused {
                time: expectation.expires().min(now),
                expectation,
            })
            .collect();
        left.sort_by_key(|u| (u.expectation.created, u.expectation.key));
        left
    }

    /// How many elements the set holds (alive, or past their lifetime and not yet polled).
    pub fn len(&self) -> usize {
        self.elements.len()
    }

    /// True when the set holds no element.
    pub fn is_empty(&self) -> bool {
        self.elements.len() == 0
    }

    /// The sizes of the internal collections.
    #[cfg(test)]
    pub(crate) fn footprint(&self) -> Footprint {
        let (heap, endpoints) = self.elements.sizes();
        Footprint {
            elements: self.elements.len(),
            heap,
            endpoints,
            remembered: self.remembered.len(),
            admitted: self.admitted.len(),
            admitted_heap: self.admitted.heap_len(),
        }
    }

    /// Why a SYN to `endpoint` that no element of its own source admits is denied, if the
    /// endpoint was announced. One lookup per map: no scan of the set.
    fn explain(&self, endpoint: &Endpoint) -> Judgement {
        match self.remembered.get(endpoint) {
            // Its source has no element here (looked up before), so this one is another's.
            _ if self.elements.holds_endpoint(endpoint) => Judgement::Deny(Denial::WrongSource),
            Some(Fate::Used) => Judgement::Deny(Denial::AlreadyUsed),
            // Announced and installed, but gone without use: its lifetime ended.
            Some(Fate::Live) => Judgement::Deny(Denial::Expired),
            Some(Fate::Refused(reason)) => Judgement::Deny(Denial::Refused(*reason)),
            Some(Fate::Revoked) => Judgement::Deny(Denial::Revoked),
            None => Judgement::Unrelated,
        }
    }

    fn remember(&mut self, endpoint: Endpoint, fate: Fate) {
        if self.remembered.insert(endpoint, fate).is_none() {
            self.remembered_order.push_back(endpoint);
            if self.remembered_order.len() > MAX_REMEMBERED {
                if let Some(oldest) = self.remembered_order.pop_front() {
                    self.remembered.remove(&oldest);
                }
            }
        }
    }

    /// True if `connection` was admitted with this `isn` less than [`ADMITTED_MEMORY`] ago.
    /// A SYN with another ISN starts a new connection on the same 4-tuple (RFC 9293 §3.4.1:
    /// each incarnation chooses a new ISN; conntrack replaces a closed entry on a new SYN), so
    /// the old one is forgotten and the SYN is judged like any other.
    fn is_retransmission(&mut self, now: Instant, connection: u64, isn: SeqNumber) -> bool {
        self.forget_admissions(now);
        match self.admitted.get(&connection) {
            Some((&first, _)) if first == isn => true,
            Some(_) => {
                self.admitted.remove(&connection);
                false
            }
            None => false,
        }
    }

    /// Forget connections admitted [`ADMITTED_MEMORY`] or more before `now`.
    #[inline]
    fn forget_admissions(&mut self, now: Instant) {
        while self.admitted.pop_expired(now).is_some() {}
    }

    fn admit(&mut self, now: Instant, connection: u64, isn: SeqNumber) {
        self.admitted.insert(connection, isn, now + ADMITTED_MEMORY);
        if self.admitted.len() > MAX_ADMITTED {
            self.admitted.pop_earliest();
        }
    }
}

/// An element replaced after its lifetime ended was never used (a live one is refreshed).
fn unused_if_expired(replaced: Expectation, now: Instant) -> Option<Unused> {
    let time = replaced.expires();
    (time <= now).then_some(Unused {
        time,
        expectation: replaced,
    })
}

impl Denial {
    /// The name used in logs and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Expired => "expired",
            Self::WrongSource => "wrong-source",
            Self::AlreadyUsed => "already-used",
            Self::Refused(_) => "refused",
            Self::Revoked => "revoked",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::Refusal;
    use crate::action::Removal;
    use crate::expect::Revocation;
    use crate::ftp::Trigger;
    use crate::testkit::fixtures::passive_expectation;
    use crate::time::Duration;

    const CLIENT: &str = "198.51.100.2:51000";
    const DATA: &str = "203.0.113.2:50000";
    const ISN: u32 = 77;

    fn at(secs: u64) -> Instant {
        Instant::from_micros(secs * 1_000_000)
    }

    fn expectation(created: u64) -> Expectation {
        passive_expectation(50000, 1, at(created), Duration::from_secs(30))
    }

    /// A SYN from `src` to [`DATA`] with the initial sequence number [`ISN`].
    fn syn(model: &mut SetModel, secs: u64, src: &str) -> Judgement {
        syn_with_isn(model, secs, src, ISN)
    }

    fn syn_with_isn(model: &mut SetModel, secs: u64, src: &str, isn: u32) -> Judgement {
        let (src, dst) = (src.parse().unwrap(), DATA.parse().unwrap());
        model.handle_syn(at(secs), src, dst, SeqNumber(isn))
    }

    #[test]
    fn one_expectation_admits_one_connection() {
        let mut m = SetModel::default();
        assert_eq!(m.apply(at(10), &Action::Install(expectation(10))), None);
        assert_eq!(syn(&mut m, 11, CLIENT), Judgement::Admit(expectation(10)));
        assert_eq!(
            syn(&mut m, 11, CLIENT),
            Judgement::Repeat,
            "retransmitted SYN"
        );
        assert_eq!(
            syn(&mut m, 12, "198.51.100.2:51001"),
            Judgement::Deny(Denial::AlreadyUsed)
        );
        assert!(m.finish(at(20)).is_empty());
    }

    #[test]
    fn the_same_four_tuple_with_a_new_isn_is_a_new_connection() {
        let mut m = SetModel::default();
        m.apply(at(10), &Action::Install(expectation(10)));
        assert_eq!(
            syn_with_isn(&mut m, 11, CLIENT, 1000),
            Judgement::Admit(expectation(10))
        );
        m.apply(at(20), &Action::Install(expectation(20)));
        assert_eq!(
            syn_with_isn(&mut m, 21, CLIENT, 2000),
            Judgement::Admit(expectation(20)),
            "a later connection on the same 4-tuple consumes the new element"
        );
        assert_eq!(syn_with_isn(&mut m, 22, CLIENT, 2000), Judgement::Repeat);
        assert_eq!(
            syn_with_isn(&mut m, 23, CLIENT, 3000),
            Judgement::Deny(Denial::AlreadyUsed),
            "a third connection finds nothing left"
        );
        assert!(m.finish(at(60)).is_empty(), "both elements were used");
    }

    #[test]
    fn the_same_isn_is_a_retransmission_for_two_minutes() {
        let mut m = SetModel::default();
        m.apply(at(10), &Action::Install(expectation(10)));
        assert!(matches!(syn(&mut m, 11, CLIENT), Judgement::Admit(_)));
        m.apply(at(12), &Action::Install(expectation(12)));
        assert_eq!(
            syn(&mut m, 130, CLIENT),
            Judgement::Repeat,
            "119 s after the first SYN"
        );
        assert_eq!(
            syn(&mut m, 131, CLIENT),
            Judgement::Deny(Denial::Expired),
            "120 s after it the connection is forgotten, and its SYN judged afresh"
        );
    }

    #[test]
    fn expired_elements_are_pruned_and_reported_once() {
        let mut m = SetModel::default();
        m.apply(at(10), &Action::Install(expectation(10)));
        m.apply(at(20), &Action::Install(expectation(20)));
        assert_eq!(
            m.poll_expired(at(49)),
            None,
            "the refresh moved the deadline"
        );
        assert_eq!(
            m.poll_expired(at(60)),
            Some(Unused {
                time: at(50),
                expectation: expectation(20)
            }),
            "reported at its expiry"
        );
        assert_eq!(m.poll_expired(at(60)), None, "reported once");
        assert!(m.is_empty());
        assert_eq!(syn(&mut m, 61, CLIENT), Judgement::Deny(Denial::Expired));
        assert!(m.finish(at(100)).is_empty(), "and not again at the end");
    }

    #[test]
    fn another_sources_element_is_explained_until_it_expires() {
        let mut m = SetModel::default();
        let mut other = expectation(10);
        other.key.src = "192.0.2.66".parse().unwrap();
        m.apply(at(10), &Action::Install(expectation(10)));
        m.apply(at(20), &Action::Install(other));
        assert!(matches!(syn(&mut m, 21, CLIENT), Judgement::Admit(_)));
        assert_eq!(
            syn(&mut m, 22, "198.51.100.2:51001"),
            Judgement::Deny(Denial::WrongSource),
            "the other source's element is still live"
        );
        assert_eq!(m.poll_expired(at(50)).map(|u| u.time), Some(at(40)));
        assert_eq!(
            syn(&mut m, 51, "198.51.100.2:51002"),
            Judgement::Deny(Denial::AlreadyUsed),
            "no element left at the endpoint: its last fate explains the denial"
        );
    }

    /// A long run of elements that come and go, some used, some expired, some refreshed:
    /// every internal collection stays near the number of live elements.
    #[test]
    fn memory_stays_bounded_over_many_cycles() {
        let mut m = SetModel::default();
        let (mut admitted, mut unused) = (0, 0);
        for i in 0..50_000u64 {
            let now = at(i);
            unused += std::iter::from_fn(|| m.poll_expired(now)).count();
            let port = 1024 + (i % 60_000) as u16;
            let e = passive_expectation(port, i, now, Duration::from_secs(30));
            m.apply(now, &Action::Install(e.clone()));
            m.apply(now, &Action::Install(e));
            if i % 3 == 0 {
                let dst = SocketAddr::new(DATA.parse::<SocketAddr>().unwrap().ip(), port);
                let src = SocketAddr::new(CLIENT.parse::<SocketAddr>().unwrap().ip(), 1024);
                let judgement = m.handle_syn(now, src, dst, SeqNumber(i as u32));
                admitted += usize::from(matches!(judgement, Judgement::Admit(_)));
            }
            let f = m.footprint();
            assert!(f.elements <= 31, "{i}: {f:?}");
            assert!(f.heap <= 2 * f.elements + 64, "{i}: {f:?}");
            assert!(f.endpoints <= f.elements, "{i}: {f:?}");
            assert!(f.admitted <= 41, "one per 3 s for 120 s: {i}: {f:?}");
            assert!(f.admitted_heap <= 2 * f.admitted + 64, "{i}: {f:?}");
            assert!(f.remembered <= MAX_REMEMBERED, "{i}: {f:?}");
        }
        assert_eq!(admitted, 16_667);
        assert_eq!(unused + admitted + m.finish(at(50_000)).len(), 50_000);
    }

    #[test]
    fn source_and_lifetime_are_enforced() {
        let mut m = SetModel::default();
        m.apply(at(10), &Action::Install(expectation(10)));
        assert_eq!(
            syn(&mut m, 11, "192.0.2.66:4444"),
            Judgement::Deny(Denial::WrongSource)
        );
        assert_eq!(
            syn(&mut m, 40, CLIENT),
            Judgement::Deny(Denial::Expired),
            "exactly at the boundary"
        );
        assert_eq!(
            m.finish(at(50)).len(),
            1,
            "an expired element a SYN hit is still unused"
        );
        let mut fresh = SetModel::default();
        fresh.apply(at(10), &Action::Install(expectation(10)));
        assert!(
            matches!(syn(&mut fresh, 39, CLIENT), Judgement::Admit(_)),
            "just inside"
        );
    }

    #[test]
    fn revoked_and_refused_endpoints_are_explained() {
        let mut m = SetModel::default();
        m.apply(at(10), &Action::Install(expectation(10)));
        let removal = Removal {
            time: at(12),
            expectation: expectation(10),
            reason: Revocation::ControlClosed,
        };
        let unused = m.apply(at(12), &Action::Remove(removal)).unwrap();
        assert_eq!(unused.time, at(12));
        assert_eq!(syn(&mut m, 13, CLIENT), Judgement::Deny(Denial::Revoked));
        let refusal = Refusal {
            time: at(13),
            control: expectation(10).control,
            trigger: Trigger::Reply227,
            endpoint: Some("203.0.113.9:50000".parse().unwrap()),
            reason: Reason::Hijack,
        };
        assert_eq!(m.apply(at(13), &Action::Refuse(refusal)), None);
        let far = m.handle_syn(
            at(14),
            CLIENT.parse().unwrap(),
            "203.0.113.9:50000".parse().unwrap(),
            SeqNumber(ISN),
        );
        assert_eq!(far, Judgement::Deny(Denial::Refused(Reason::Hijack)));
        let other = m.handle_syn(
            at(14),
            CLIENT.parse().unwrap(),
            "203.0.113.2:443".parse().unwrap(),
            SeqNumber(ISN),
        );
        assert_eq!(other, Judgement::Unrelated);
    }

    #[test]
    fn leftovers_are_unused() {
        let mut m = SetModel::default();
        m.apply(at(10), &Action::Install(expectation(10)));
        let left = m.finish(at(100));
        assert_eq!(
            left,
            vec![Unused {
                time: at(40),
                expectation: expectation(10)
            }]
        );
        assert!(m.finish(at(100)).is_empty());
    }

    #[test]
    fn refresh_keeps_one_element() {
        let mut m = SetModel::default();
        m.apply(at(10), &Action::Install(expectation(10)));
        assert_eq!(
            m.apply(at(20), &Action::Install(expectation(20))),
            None,
            "refreshed while alive"
        );
        assert!(
            matches!(syn(&mut m, 45, CLIENT), Judgement::Admit(_)),
            "the refresh extended it"
        );
        m.apply(at(100), &Action::Install(expectation(50)));
        let late = m.apply(at(200), &Action::Install(expectation(200)));
        assert_eq!(
            late.map(|u| u.time),
            Some(at(80)),
            "an expired element replaced counts as unused"
        );
    }
}
