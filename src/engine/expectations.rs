//! The engine's side of expectations: turning session events into installs, refusals and
//! revocations, and keeping ownership consistent.
//!
//! Invariant: a key in `owners` is in the pending list of exactly the flow it names. A key
//! announced again by another control connection moves to that connection (the kernel set
//! holds one element per key; the new install refreshes it), so a connection that closes
//! never removes an element another connection still relies on.

use std::net::SocketAddr;

use crate::action::Action;
use crate::action::Note;
use crate::action::Refusal;
use crate::action::Removal;
use crate::expect::Added;
use crate::expect::Expectation;
use crate::expect::Revocation;
use crate::flow::Direction;
use crate::flow::FlowId;
use crate::flow::FlowKey;
use crate::ftp::Event;
use crate::ftp::Trigger;
use crate::ftp::session::Announced;
use crate::ftp::session::AnnouncementId;
use crate::policy;
use crate::policy::Reason;

use super::Engine;

impl Engine {
    /// Act on a flow's session events, in order.
    pub(super) fn apply(
        &mut self,
        key: FlowKey,
        direction: Direction,
        events: impl Iterator<Item = Event>,
        first_conflict: bool,
    ) {
        let Some(flow) = self.flows.get_mut(&key) else {
            return;
        };
        let (control, id) = (*flow.control(), flow.id());
        let now = self.now;
        if first_conflict {
            log::debug!("{control}: overlapping bytes differ ({direction:?}); first copy kept");
            self.note(Note::Conflict {
                time: now,
                control,
                direction,
            });
        }
        for event in events {
            self.apply_event(key, id, event);
        }
    }

    fn apply_event(&mut self, key: FlowKey, id: FlowId, event: Event) {
        let Some(flow) = self.flows.get_mut(&key) else {
            return;
        };
        let (control, now) = (*flow.control(), self.now);
        match event {
            Event::Announce {
                id: announcement,
                trigger,
                announced,
                ..
            } => {
                self.announce(key, (id, announcement), trigger, announced);
            }
            Event::Cancel(announcement) => self.cancel(key, announcement),
            Event::Encrypt => {
                self.stats.tls_control += 1;
                log::debug!(
                    "{control}: control channel encrypted (AUTH accepted); not parsed further"
                );
                self.note(Note::Encrypted { time: now, control });
            }
            Event::Malformed(trigger, error) => {
                self.stats.announcements += 1;
                self.refuse(key, trigger, None, Reason::Malformed(error));
            }
            Event::Poison(reason) => {
                self.stats.poisoned += 1;
                log::debug!(
                    "{control}: not FTP ({}); not parsed further",
                    reason.as_str()
                );
                self.note(Note::Poisoned {
                    time: now,
                    control,
                    reason,
                });
            }
            Event::Refuse(trigger, refusal) => {
                self.stats.announcements += 1;
                self.refuse(key, trigger, None, refusal.into());
            }
            Event::Reset => self.revoke_all(key, Revocation::Reset),
            Event::Transferred(transfer) => {
                for spent in flow.expectations.remove_before(transfer) {
                    self.revoke(key, spent, Revocation::TransferDone);
                }
            }
        }
    }

    /// Revoke every expectation of a flow.
    pub(super) fn revoke_all(&mut self, key: FlowKey, reason: Revocation) {
        let Some(flow) = self.flows.get_mut(&key) else {
            return;
        };
        for expectation in flow.expectations.drain() {
            self.revoke(key, expectation, reason);
        }
    }

    /// Forget a flow's expectations whose lifetime is over (the kernel has dropped them).
    pub(super) fn expire_expectations(&mut self, key: FlowKey) {
        let Some(flow) = self.flows.get_mut(&key) else {
            return;
        };
        for gone in flow.expectations.expire(self.now) {
            if self.owners.get(&gone) == Some(&key) {
                self.owners.remove(&gone);
            }
        }
    }

    /// Queue the removal of `expectation` if `key`'s flow still owns it and it is still alive.
    pub(super) fn revoke(&mut self, key: FlowKey, expectation: Expectation, reason: Revocation) {
        if self.owners.get(&expectation.key) != Some(&key) {
            return;
        }
        self.owners.remove(&expectation.key);
        if expectation.expires() <= self.now {
            return;
        }
        self.stats.revoked += 1;
        log::debug!(
            "revoke {} ({}): {}",
            expectation.key,
            expectation.control,
            reason.as_str()
        );
        let removal = Removal {
            time: self.now,
            expectation,
            reason,
        };
        self.actions.push_back(Action::Remove(removal));
    }

    fn announce(
        &mut self,
        key: FlowKey,
        origin: (FlowId, AnnouncementId),
        trigger: Trigger,
        announced: Announced,
    ) {
        self.stats.announcements += 1;
        let Some(flow) = self.flows.get_mut(&key) else {
            return;
        };
        let control = *flow.control();
        match policy::judge(&self.config, &control, trigger, announced) {
            Ok(data) => {
                let expectation = Expectation {
                    key: data,
                    control,
                    trigger,
                    mode: trigger.mode(),
                    created: self.now,
                    lifetime: self.config.expectation_lifetime,
                    origin,
                };
                self.install(key, expectation);
            }
            Err(reason) => {
                let endpoint = match announced {
                    Announced::Endpoint(e) => SocketAddr::new(e.addr, e.port.get()),
                    Announced::Port(port) => SocketAddr::new(control.server.ip(), port.get()),
                };
                self.refuse(key, trigger, Some(endpoint), reason);
            }
        }
    }

    fn install(&mut self, key: FlowKey, expectation: Expectation) {
        if let Some(previous) = self.owners.insert(expectation.key, key) {
            if previous != key {
                if let Some(other) = self.flows.get_mut(&previous) {
                    other.expectations.remove_key(&expectation.key);
                }
            }
        }
        let max = self.config.max_expectations_per_control;
        let Some(flow) = self.flows.get_mut(&key) else {
            return;
        };
        let added = flow.expectations.add(expectation.clone(), max);
        self.stats.expectations += 1;
        log::debug!(
            "expect {} for {} s ({} {}, {})",
            expectation.key,
            expectation.lifetime.as_secs_f64(),
            expectation.trigger,
            expectation.mode,
            expectation.control
        );
        self.actions.push_back(Action::Install(expectation));
        if let Added::New(Some(evicted)) = added {
            self.revoke(key, evicted, Revocation::Superseded);
        }
    }

    fn cancel(&mut self, key: FlowKey, announcement: AnnouncementId) {
        let Some(flow) = self.flows.get_mut(&key) else {
            return;
        };
        if let Some(expectation) = flow.expectations.remove_announcement(announcement) {
            self.revoke(key, expectation, Revocation::Cancelled);
        }
    }

    fn refuse(
        &mut self,
        key: FlowKey,
        trigger: Trigger,
        endpoint: Option<SocketAddr>,
        reason: Reason,
    ) {
        let Some(flow) = self.flows.get_mut(&key) else {
            return;
        };
        let control = *flow.control();
        self.stats.refused += 1;
        log::debug!("refuse {trigger} on {control}: {reason}");
        let refusal = Refusal {
            time: self.now,
            control,
            trigger,
            endpoint,
            reason,
        };
        self.actions.push_back(Action::Refuse(refusal));
    }
}
