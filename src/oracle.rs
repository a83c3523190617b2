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

mod expiring;

use std::collections::HashMap;
use std::collections::VecDeque;
use std::net::IpAddr;
use std::net::SocketAddr;

use self::expiring::Expiring;
use crate::action::Action;
use crate::expect::DataKey;
use crate::expect::Expectation;
use crate::policy::Reason;
use crate::time::Duration;
use crate::time::Instant;
use crate::wire::SeqNumber;

/// Announced endpoints remembered to explain denials (oldest forgotten first).
const MAX_REMEMBERED: usize = 65_536;
/// Admitted connections remembered to recognise their retransmitted SYNs (oldest forgotten
/// first).
const MAX_ADMITTED: usize = 65_536;
/// How long an admitted connection's SYN is recognised: conntrack keeps an entry that saw no
/// reply for 2 minutes (`nf_conntrack_tcp_timeout_syn_sent`), and Linux gives up retrying a
/// SYN after about 127 s (`tcp_syn_retries` = 6, last retransmission at 63 s).
const ADMITTED_MEMORY: Duration = Duration::from_secs(120);

/// A model of the firewall's expectation set.
#[derive(Debug, Default)]
pub struct SetModel {
    elements: HashMap<DataKey, Element>,
    remembered: HashMap<(IpAddr, u16), Fate>,
    remembered_order: VecDeque<(IpAddr, u16)>,
    /// Admitted connections, by 4-tuple: the initial sequence number of their SYN, until
    /// [`ADMITTED_MEMORY`] after it.
    admitted: Expiring<(SocketAddr, SocketAddr), SeqNumber>,
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

#[derive(Debug, Clone)]
struct Element {
    expectation: Expectation,
    expires: Instant,
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
                let element = Element {
                    expectation: e.clone(),
                    expires: e.expires(),
                };
                self.remember((e.key.dst, e.key.dport.get()), Fate::Live);
                self.elements
                    .insert(e.key, element)
                    .and_then(|old| self.unused_if_expired(old, now))
            }
            Action::Remove(removal) => {
                let key = removal.expectation.key;
                let element = self.elements.remove(&key)?;
                self.remember((key.dst, key.dport.get()), Fate::Revoked);
                let time = element.expires.min(removal.time);
                Some(Unused {
                    time,
                    expectation: element.expectation,
                })
            }
            Action::Refuse(refusal) => {
                let endpoint = refusal.endpoint.map(|e| (e.ip(), e.port()))?;
                if !matches!(self.remembered.get(&endpoint), Some(Fate::Live)) {
                    self.remember(endpoint, Fate::Refused(refusal.reason));
                }
                None
            }
            Action::Note(_) => None,
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
        if self.is_retransmission(now, (src, dst), isn) {
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
        match self.elements.get(&key) {
            Some(element) if element.expires > now => {
                let expectation = element.expectation.clone();
                self.elements.remove(&key);
                self.admit(now, (src, dst), isn);
                self.remember((key.dst, port.get()), Fate::Used);
                return Judgement::Admit(expectation);
            }
            // An expired element stays until it is reported unused (as the kernel's lingers
            // until its garbage collection; it can no longer match).
            Some(_) => return Judgement::Deny(Denial::Expired),
            None => {}
        }
        self.explain(now, dst)
    }

    /// Every element still held: those whose lifetime ended by `now`, and those still alive.
    /// Clears the model.
    pub fn finish(&mut self, now: Instant) -> Vec<Unused> {
        let mut left: Vec<Unused> = self
            .elements
            .drain()
            .map(|(_, e)| Unused {
                time: e.expires.min(now),
                expectation: e.expectation,
            })
            .collect();
        left.sort_by_key(|u| (u.expectation.created, u.expectation.key));
        left
    }

    fn explain(&self, now: Instant, dst: SocketAddr) -> Judgement {
        let endpoint = (dst.ip(), dst.port());
        let live_elsewhere = self
            .elements
            .iter()
            .any(|(k, e)| (k.dst, k.dport.get()) == endpoint && e.expires > now);
        match self.remembered.get(&endpoint) {
            _ if live_elsewhere => Judgement::Deny(Denial::WrongSource),
            Some(Fate::Used) => Judgement::Deny(Denial::AlreadyUsed),
            // Announced and installed, but gone without use: its lifetime ended.
            Some(Fate::Live) => Judgement::Deny(Denial::Expired),
            Some(Fate::Refused(reason)) => Judgement::Deny(Denial::Refused(*reason)),
            Some(Fate::Revoked) => Judgement::Deny(Denial::Revoked),
            None => Judgement::Unrelated,
        }
    }

    fn unused_if_expired(&self, old: Element, now: Instant) -> Option<Unused> {
        (old.expires <= now).then_some(Unused {
            time: old.expires,
            expectation: old.expectation,
        })
    }

    fn remember(&mut self, endpoint: (IpAddr, u16), fate: Fate) {
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
    fn is_retransmission(
        &mut self,
        now: Instant,
        connection: (SocketAddr, SocketAddr),
        isn: SeqNumber,
    ) -> bool {
        while self.admitted.pop_expired(now).is_some() {}
        match self.admitted.get(&connection) {
            Some((&first, _)) if first == isn => true,
            Some(_) => {
                self.admitted.remove(&connection);
                false
            }
            None => false,
        }
    }

    fn admit(&mut self, now: Instant, connection: (SocketAddr, SocketAddr), isn: SeqNumber) {
        self.admitted.insert(connection, isn, now + ADMITTED_MEMORY);
        if self.admitted.len() > MAX_ADMITTED {
            self.admitted.pop_earliest();
        }
    }
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
