//! The core-to-shell vocabulary: the [`Verdict`] for each packet and the queued [`Action`]s.
//!
//! A shell must carry out every `Install` drained after a packet before it releases that
//! packet: the expectation then exists before the peer can learn of the endpoint, so the data
//! connection's SYN can never beat its pinhole.

use std::net::SocketAddr;

use crate::expect::Expectation;
use crate::expect::Revocation;
use crate::flow::Control;
use crate::flow::Direction;
use crate::ftp::Trigger;
use crate::ftp::session::Poison;
use crate::nat::flow::HeldId;
use crate::policy::Reason;
use crate::time::Instant;

/// What to do with the packet just handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Release it.
    Accept,
    /// Drop it (only for packets that cannot be judged, under `Unjudged::Drop`).
    Drop,
    /// Release it rewritten for NAT: the new datagram is `Engine::rewritten`.
    Rewritten,
    /// Keep it: it carries part of a line that may need rewriting and is not complete yet. A
    /// later [`Action::Release`] with this id gives the datagram to release.
    Hold(HeldId),
}

impl Verdict {
    /// True for verdicts that let the packet (or its rewritten form) through now.
    pub fn releases(self) -> bool {
        matches!(self, Self::Accept | Self::Rewritten)
    }
}

/// A held datagram let go: release `datagram` (rewritten or as it came) for the packet the
/// engine answered with `Verdict::Hold(id)`. Releases come in the order the datagrams arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// The held packet.
    pub id: HeldId,
    /// The bytes to release in its place.
    pub datagram: Vec<u8>,
    /// True when `datagram` differs from what arrived.
    pub rewritten: bool,
}

/// A side effect for the shell, drained with `Engine::poll_action`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Open a pinhole: add the expectation to the firewall's set, with its lifetime.
    Install(Expectation),
    /// Something worth a log line that changes nothing in the firewall.
    Note(Note),
    /// An announcement was not honoured (log it).
    Refuse(Refusal),
    /// Close a pinhole before its lifetime ends.
    Remove(Removal),
    /// Give the verdict of a held datagram (after the installs queued before it).
    Release(Release),
}

/// An announcement that did not become an expectation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// When.
    pub time: Instant,
    /// On which control connection.
    pub control: Control,
    /// Which line.
    pub trigger: Trigger,
    /// The endpoint it announced, when it parsed.
    pub endpoint: Option<SocketAddr>,
    /// Why.
    pub reason: Reason,
}

/// An expectation revoked before its lifetime ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    /// When.
    pub time: Instant,
    /// The expectation.
    pub expectation: Expectation,
    /// Why.
    pub reason: Revocation,
}

/// Events reported once per control connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// Bytes that overlapped earlier bytes differed (the first copy was kept). Reported once
    /// per connection; every occurrence is counted.
    Conflict {
        /// When.
        time: Instant,
        /// Where.
        control: Control,
        /// In which direction.
        direction: Direction,
    },
    /// The control channel is encrypted (AUTH TLS accepted): nothing more can be read, so
    /// none of the session's data connections will be announced. Noted once per session;
    /// every report of it carries [`FTPS_ADVICE`] and [`FTPS_DOC`].
    Encrypted {
        /// When.
        time: Instant,
        /// Where.
        control: Control,
    },
    /// The connection is not FTP: nothing is parsed from it.
    Poisoned {
        /// When.
        time: Instant,
        /// Where.
        control: Control,
        /// Why.
        reason: Poison,
    },
}

/// What an encrypted control connection means for its data connections, in every report of
/// a [`Note::Encrypted`] (replay, watch, the daemon's log).
pub const FTPS_ADVICE: &str =
    "this session's data connections cannot be opened by ftp-alg; see the FTPS fallback";

/// Where the FTPS fallback (a fixed passive port range for named servers) is documented.
pub const FTPS_DOC: &str = "docs/deploy.md#ftps";
