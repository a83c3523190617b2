//! Expectations: the narrow pinholes the firewall opens for announced data connections.
//!
//! Owns: [`DataKey`] (exactly what the kernel set matches: TCP, data source address, data
//! destination address and port, any source port), [`Expectation`] (a key plus its lifetime,
//! trigger and owning control connection), and [`Pending`], the bounded list one control
//! connection keeps. The kernel helper's rules apply (nf_conntrack_expect.c): an announcement
//! of a key already expected refreshes it; past the per-connection maximum the oldest is
//! evicted (the kernel's `max_expected`, 1 for FTP; ours is configurable, default 4, so that
//! pipelined `PASV;PASV` and clients that retry still work). One use and the lifetime are
//! enforced by the kernel (the element is deleted on first match and times out).

use std::collections::VecDeque;
use std::fmt;
use std::net::IpAddr;
use std::num::NonZeroU16;

use crate::flow::Control;
use crate::flow::FlowId;
use crate::ftp::Mode;
use crate::ftp::Trigger;
use crate::ftp::session::AnnouncementId;
use crate::time::Duration;
use crate::time::Instant;

/// What a data connection's first packet must match: TCP from `src` (any source port) to
/// `dst`:`dport`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DataKey {
    /// The peer that will connect: the server in active mode, the client in passive mode.
    pub src: IpAddr,
    /// The announced address.
    pub dst: IpAddr,
    /// The announced port.
    pub dport: NonZeroU16,
}

/// One expected data connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    /// What the data connection must match.
    pub key: DataKey,
    /// The control connection that announced it.
    pub control: Control,
    /// The line that announced it.
    pub trigger: Trigger,
    /// Active or passive.
    pub mode: Mode,
    /// When it was announced.
    pub created: Instant,
    /// How long it lasts.
    pub lifetime: Duration,
    /// Which control connection and announcement it came from.
    pub origin: (FlowId, AnnouncementId),
}

/// Why an expectation is revoked before its lifetime ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    /// The server refused the command that announced it.
    Cancelled,
    /// Its control connection ended (FIN, RST, idle expiry or eviction).
    ControlClosed,
    /// The session was reinitialised (REIN) or quit (QUIT).
    Reset,
    /// Newer expectations of the same control connection pushed it out.
    Superseded,
    /// A transfer announced after it completed: its data connection has come and gone.
    TransferDone,
}

/// The expectations of one control connection, oldest first, bounded.
#[derive(Debug, Clone, Default)]
pub struct Pending {
    list: VecDeque<Expectation>,
}

/// What [`Pending::add`] did.
#[derive(Debug)]
pub enum Added {
    /// A new key was added; the oldest expectation was evicted if the bound was reached.
    New(Option<Expectation>),
    /// The key was already expected: the entry was refreshed.
    Refreshed,
}

impl Expectation {
    /// When the kernel forgets it.
    pub fn expires(&self) -> Instant {
        self.created + self.lifetime
    }
}

impl Pending {
    /// Add `expectation`, keeping at most `max` entries.
    pub fn add(&mut self, expectation: Expectation, max: usize) -> Added {
        if let Some(same) = self.list.iter_mut().find(|e| e.key == expectation.key) {
            *same = expectation;
            return Added::Refreshed;
        }
        self.list.push_back(expectation);
        let evicted = (self.list.len() > max.max(1))
            .then(|| self.list.pop_front())
            .flatten();
        Added::New(evicted)
    }

    /// Remove the expectation made by announcement `id`, if still pending.
    pub fn remove_announcement(&mut self, id: AnnouncementId) -> Option<Expectation> {
        let index = self.list.iter().position(|e| e.origin.1 == id)?;
        self.list.remove(index)
    }

    /// Remove every expectation set up by a command sent before command `id`.
    pub fn remove_before(&mut self, id: AnnouncementId) -> Vec<Expectation> {
        let (spent, kept): (Vec<_>, Vec<_>) = self.list.drain(..).partition(|e| e.origin.1 < id);
        self.list = kept.into();
        spent
    }

    /// Remove the expectation for `key`, if pending.
    pub fn remove_key(&mut self, key: &DataKey) -> Option<Expectation> {
        let index = self.list.iter().position(|e| e.key == *key)?;
        self.list.remove(index)
    }

    /// Remove and return every expectation.
    pub fn drain(&mut self) -> Vec<Expectation> {
        self.list.drain(..).collect()
    }

    /// Forget expectations whose lifetime is over at `now` (the kernel already did); returns
    /// their keys.
    pub fn expire(&mut self, now: Instant) -> Vec<DataKey> {
        let (gone, kept): (Vec<_>, Vec<_>) = self.list.drain(..).partition(|e| e.expires() <= now);
        self.list = kept.into();
        gone.into_iter().map(|e| e.key).collect()
    }

    /// How many are pending.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// True when none is pending.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

impl Revocation {
    /// The name used in logs and JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Cancelled => "cancelled",
            Self::ControlClosed => "control-closed",
            Self::Reset => "reset",
            Self::Superseded => "superseded",
            Self::TransferDone => "transfer-done",
        }
    }
}

impl fmt::Display for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.dst {
            IpAddr::V4(dst) => write!(f, "tcp {} -> {}:{}", self.src, dst, self.dport),
            IpAddr::V6(dst) => write!(f, "tcp {} -> [{}]:{}", self.src, dst, self.dport),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::fixtures::passive_expectation;

    fn expectation(port: u16, id: u64, created: u64) -> Expectation {
        let created = Instant::from_micros(created);
        passive_expectation(port, id, created, Duration::from_micros(100))
    }

    #[test]
    fn oldest_is_evicted_past_the_bound() {
        let mut p = Pending::default();
        assert!(matches!(
            p.add(expectation(5000, 1, 0), 2),
            Added::New(None)
        ));
        assert!(matches!(
            p.add(expectation(5001, 2, 0), 2),
            Added::New(None)
        ));
        let Added::New(Some(evicted)) = p.add(expectation(5002, 3, 0), 2) else {
            panic!()
        };
        assert_eq!(evicted.key.dport.get(), 5000);
        assert_eq!(p.len(), 2);
    }

    #[test]
    fn same_key_refreshes() {
        let mut p = Pending::default();
        p.add(expectation(5000, 1, 0), 1);
        assert!(matches!(
            p.add(expectation(5000, 2, 50), 1),
            Added::Refreshed
        ));
        assert_eq!(p.len(), 1);
        assert_eq!(
            p.remove_announcement(AnnouncementId(1)),
            None,
            "refreshed entry has the new origin"
        );
        assert!(p.remove_announcement(AnnouncementId(2)).is_some());
        assert!(p.is_empty());
    }

    #[test]
    fn a_completed_transfer_spends_what_was_announced_before_it() {
        let mut p = Pending::default();
        p.add(expectation(5000, 1, 0), 4);
        p.add(expectation(5001, 3, 0), 4);
        p.add(expectation(5002, 4, 0), 4);
        let spent = p.remove_before(AnnouncementId(4));
        assert_eq!(
            spent.iter().map(|e| e.key.dport.get()).collect::<Vec<_>>(),
            vec![5000, 5001]
        );
        assert_eq!(p.len(), 1);
    }

    #[test]
    fn expiry_and_drain() {
        let mut p = Pending::default();
        p.add(expectation(5000, 1, 0), 4);
        p.add(expectation(5001, 2, 60), 4);
        assert!(p.expire(Instant::from_micros(99)).is_empty());
        let gone = p.expire(Instant::from_micros(100));
        assert_eq!(
            gone.iter().map(|k| k.dport.get()).collect::<Vec<_>>(),
            vec![5000]
        );
        assert_eq!(p.drain().len(), 1);
        assert!(p.is_empty());
    }

    #[test]
    fn key_display() {
        let e = expectation(5000, 1, 0);
        assert_eq!(e.key.to_string(), "tcp 198.51.100.2 -> 203.0.113.2:5000");
        assert_eq!(e.expires(), Instant::from_micros(100));
    }
}
