//! The engine's side of expectations: turning session events into installs, refusals and
//! revocations through the [`ExpectationTable`](crate::expect::table::ExpectationTable).
//!
//! Every change to the table is mirrored by exactly the actions that make the kernel set
//! follow it: an `Install` for a key added or refreshed, a `Remove` for a key dropped while
//! its lifetime lasts (one the kernel already timed out needs none). Applying the actions in
//! order (or their net effect, `expect::delta::SetDelta`) therefore leaves the kernel set
//! equal to the table after every packet; `tests/exact_set.rs` checks it.

use std::net::SocketAddr;

use crate::action::Action;
use crate::action::Note;
use crate::action::Refusal;
use crate::action::Removal;
use crate::expect::DataKey;
use crate::expect::Expectation;
use crate::expect::Revocation;
use crate::expect::table::Full;
use crate::flow::Control;
use crate::flow::Direction;
use crate::flow::FlowId;
use crate::flow::FlowKey;
use crate::flow::Tracked;
use crate::ftp::Event;
use crate::ftp::Trigger;
use crate::ftp::session::Announced;
use crate::ftp::session::AnnouncementId;
use crate::policy;
use crate::policy::Reason;

use super::Engine;
use super::retry::Retry;

/// Where an announcement came from, so that a failed install can be retried when the
/// segment that carried it is retransmitted.
#[derive(Debug, Clone, Copy)]
pub(super) struct Origin {
    pub(super) flow: FlowKey,
    pub(super) id: FlowId,
    pub(super) direction: Direction,
}

impl Engine {
    /// Act on a flow's session events, in order.
    pub(super) fn apply(
        &mut self,
        key: FlowKey,
        direction: Direction,
        events: impl Iterator<Item = Event>,
        first_conflict: bool,
    ) {
        let Some((control, id)) = self.reading(key) else {
            return;
        };
        if first_conflict {
            log::debug!("{control}: overlapping bytes differ ({direction:?}); first copy kept");
            self.note(Note::Conflict {
                time: self.now,
                control,
                direction,
            });
        }
        let origin = Origin {
            flow: key,
            id,
            direction,
        };
        for event in events {
            self.apply_event(origin, event);
        }
    }

    fn apply_event(&mut self, origin: Origin, event: Event) {
        let key = origin.flow;
        match event {
            Event::Announce {
                id,
                trigger,
                announced,
                line,
            } => self.announce(origin, (id, line), trigger, announced),
            Event::Cancel(announcement) => {
                if let Some(e) = self.expectations.remove_announcement(key, announcement) {
                    self.revoke(e, Revocation::Cancelled);
                }
            }
            Event::Encrypt => self.encrypted(key),
            Event::Malformed(trigger, error) => {
                self.stats.announcements += 1;
                self.refuse(key, trigger, None, Reason::Malformed(error));
            }
            Event::Poison(reason) => self.poisoned(key, reason),
            Event::Refuse(trigger, refusal) => {
                self.stats.announcements += 1;
                self.refuse(key, trigger, None, refusal.into());
            }
            Event::Reset => self.revoke_all(key, Revocation::Reset),
            Event::Transferred(transfer) => {
                for spent in self.expectations.remove_before(key, transfer) {
                    self.revoke(spent, Revocation::TransferDone);
                }
            }
        }
    }

    /// Who is client and server of the flow under `key`, and its serial number, if it is read.
    fn reading(&self, key: FlowKey) -> Option<(Control, FlowId)> {
        match self.flows.get(&key)? {
            Tracked::Reading(flow) => Some((*flow.control(), flow.id())),
            Tracked::Silent(_) => None,
        }
    }

    /// Revoke every expectation of a flow.
    pub(super) fn revoke_all(&mut self, key: FlowKey, reason: Revocation) {
        for expectation in self.expectations.remove_owner(key) {
            self.revoke(expectation, reason);
        }
        self.retries.forget_flow(key);
    }

    /// Forget expectations whose lifetime is over (the kernel has dropped them).
    #[inline]
    pub(super) fn expire_expectations(&mut self) {
        let gone = self.expectations.expire(self.now);
        self.stats.expectations_expired += gone.len() as u64;
        self.retries.expire(self.now);
    }

    /// Queue the removal of an expectation just taken out of the table, unless the kernel has
    /// already timed it out.
    pub(super) fn revoke(&mut self, expectation: Expectation, reason: Revocation) {
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

    /// The shell could not install these keys: take them out of the table (and tell the shell
    /// to make sure the kernel does not hold them either), and remember them so that a
    /// retransmission of the segment that announced them retries.
    pub(super) fn withdraw_failed(&mut self, keys: &[DataKey]) {
        for key in keys {
            let Some(expectation) = self.expectations.remove(key) else {
                continue;
            };
            self.stats.install_errors += 1;
            if let Some(&(_, origin, line_end)) =
                self.installed_now.iter().find(|(k, _, _)| k == key)
            {
                self.retries.remember(
                    origin.flow,
                    Retry {
                        expectation: expectation.clone(),
                        direction: origin.direction,
                        line_end,
                    },
                    self.config.max_expectations_per_control,
                );
            }
            self.revoke(expectation, Revocation::InstallFailed);
        }
    }

    /// Retry the installs that failed for announcements whose line ended inside `range` of
    /// `direction` (the segment that carried them came again).
    pub(super) fn retry_installs(&mut self, key: FlowKey, direction: Direction, range: (u64, u64)) {
        for retry in self.retries.take_covered(key, direction, range) {
            self.stats.install_retries += 1;
            let mut expectation = retry.expectation;
            expectation.created = self.now;
            let origin = Origin {
                flow: key,
                id: expectation.origin.0,
                direction,
            };
            self.install(origin, expectation, retry.line_end);
        }
    }

    fn announce(
        &mut self,
        origin: Origin,
        (announcement, line): (AnnouncementId, (u64, u64)),
        trigger: Trigger,
        announced: Announced,
    ) {
        self.stats.announcements += 1;
        let Some((control, _)) = self.reading(origin.flow) else {
            return;
        };
        match policy::judge(&self.config, &control, trigger, announced) {
            Ok(data) => {
                let nat = match self.rewrite_announcement(
                    origin.flow,
                    origin.direction,
                    trigger,
                    &data,
                    line,
                ) {
                    Ok(nat) => nat,
                    Err(reason) => {
                        let endpoint = SocketAddr::new(data.dst, data.dport.get());
                        self.refuse(origin.flow, trigger, Some(endpoint), reason);
                        return;
                    }
                };
                let expectation = Expectation {
                    nat,
                    key: data,
                    control,
                    trigger,
                    mode: trigger.mode(),
                    created: self.now,
                    lifetime: self.config.expectation_lifetime,
                    origin: (origin.id, announcement),
                };
                self.install(origin, expectation, line.1);
            }
            Err(reason) => {
                let endpoint = match announced {
                    Announced::Endpoint(e) => SocketAddr::new(e.addr, e.port.get()),
                    Announced::Port(port) => SocketAddr::new(control.server.ip(), port.get()),
                };
                self.refuse(origin.flow, trigger, Some(endpoint), reason);
            }
        }
    }

    fn install(&mut self, origin: Origin, expectation: Expectation, line_end: u64) {
        let installed = match self.expectations.install(expectation.clone()) {
            Ok(installed) => installed,
            Err(full) => {
                let reason = match full {
                    Full::Client => {
                        self.stats.refused_client_limit += 1;
                        Reason::ClientLimit
                    }
                    Full::Total => {
                        self.stats.refused_total_limit += 1;
                        Reason::TotalLimit
                    }
                };
                let endpoint = SocketAddr::new(expectation.key.dst, expectation.key.dport.get());
                self.refuse(origin.flow, expectation.trigger, Some(endpoint), reason);
                return;
            }
        };
        if let Some(superseded) = installed.superseded {
            self.revoke(superseded, Revocation::Superseded);
        }
        self.stats.expectations += 1;
        log::debug!(
            "expect {} for {} s ({} {}, {})",
            expectation.key,
            expectation.lifetime.as_secs_f64(),
            expectation.trigger,
            expectation.mode,
            expectation.control
        );
        self.installed_now.push((expectation.key, origin, line_end));
        self.actions.push_back(Action::Install(expectation));
    }

    fn encrypted(&mut self, key: FlowKey) {
        self.stats.tls_control += 1;
        if let Some((control, _)) = self.reading(key) {
            log::debug!("{control}: control channel encrypted (AUTH accepted); not parsed further");
            self.note(Note::Encrypted {
                time: self.now,
                control,
            });
        }
    }

    fn poisoned(&mut self, key: FlowKey, reason: crate::ftp::session::Poison) {
        self.stats.poisoned += 1;
        if let Some((control, _)) = self.reading(key) {
            log::debug!(
                "{control}: not FTP ({}); not parsed further",
                reason.as_str()
            );
            self.note(Note::Poisoned {
                time: self.now,
                control,
                reason,
            });
        }
    }

    fn refuse(
        &mut self,
        key: FlowKey,
        trigger: Trigger,
        endpoint: Option<SocketAddr>,
        reason: Reason,
    ) {
        let Some((control, _)) = self.reading(key) else {
            return;
        };
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
