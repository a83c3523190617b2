//! Expectations: the narrow pinholes the firewall opens for announced data connections.
//!
//! Owns: [`DataKey`] (exactly what the kernel set matches: TCP, data source address, data
//! destination address and port, any source port), [`Expectation`] (a key plus its lifetime,
//! trigger and owning control connection), [`Revocation`], the [`table::ExpectationTable`]
//! that holds every live expectation (the one owner of "what the kernel set must hold"), and
//! [`delta::SetDelta`], the net effect of a run of actions on that set. The kernel helper's
//! rules apply (nf_conntrack_expect.c): an announcement of a key already expected refreshes
//! it; past the per-connection maximum the oldest is evicted (the kernel's `max_expected`, 1
//! for FTP; ours is configurable, default 4, so that pipelined `PASV;PASV` and clients that
//! retry still work). One use and the lifetime are enforced by the kernel (the element is
//! deleted on first match and times out).

pub mod delta;
pub mod table;

use std::fmt;
use std::hash::Hash;
use std::hash::Hasher;
use std::net::IpAddr;
use std::num::NonZeroU16;

use crate::addr_text;
use crate::flow::Control;
use crate::flow::FlowId;
use crate::flow::FlowKey;
use crate::ftp::Mode;
use crate::ftp::Trigger;
use crate::ftp::session::AnnouncementId;
use crate::time::Duration;
use crate::time::Instant;

/// What a data connection's first packet must match: TCP from `src` (any source port) to
/// `dst`:`dport`. Hashed as a few integer writes (see `FlowKey`'s `Hash`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DataKey {
    /// The peer that will connect: the server in active mode, the client in passive mode.
    pub src: IpAddr,
    /// The announced address.
    pub dst: IpAddr,
    /// The announced port.
    pub dport: NonZeroU16,
}

/// The public face of an expected data connection behind NAT: its first packet arrives for
/// `public`:`port` and the gateway translates it to the key's `dst`:`dport` (the private
/// endpoint the announcement named before it was rewritten). The kernel holds it as an
/// element of the NAT map, keyed `src . public . port`, beside the set element.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NatMapping {
    /// The address the peer was told (the rewritten announcement's).
    pub public: IpAddr,
    /// The port the peer was told.
    pub port: NonZeroU16,
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
    /// Its public face when the announcement was rewritten for NAT.
    pub nat: Option<NatMapping>,
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
    /// Its control connection turned out not to be FTP.
    NotFtp,
    /// The daemon stopped and was asked to clean up (`--cleanup`).
    Shutdown,
    /// Newer expectations of the same control connection pushed it out.
    Superseded,
    /// The kernel did not take it (the set is full, or netlink failed); it is withdrawn so
    /// that the engine's view matches the set.
    InstallFailed,
    /// A transfer announced after it completed: its data connection has come and gone.
    TransferDone,
}

impl Expectation {
    /// When the kernel forgets it.
    pub fn expires(&self) -> Instant {
        self.created + self.lifetime
    }

    /// The control connection that owns it.
    pub fn owner(&self) -> FlowKey {
        FlowKey::new(self.control.client, self.control.server)
    }
}

impl Revocation {
    /// The name used in logs and JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Cancelled => "cancelled",
            Self::ControlClosed => "control-closed",
            Self::Reset => "reset",
            Self::InstallFailed => "install-failed",
            Self::NotFtp => "not-ftp",
            Self::Shutdown => "shutdown",
            Self::Superseded => "superseded",
            Self::TransferDone => "transfer-done",
        }
    }
}

impl Hash for DataKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let src = crate::flow::hash_ip(&self.src, state);
        let dst = crate::flow::hash_ip(&self.dst, state);
        state.write_u64(src << 16 | u64::from(self.dport.get()));
        state.write_u64(dst);
    }
}

impl fmt::Display for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Without `fmt` per address (the daemon's event lines carry one each: addr_text).
        let mut text = addr_text::Text::new();
        text.str("tcp ");
        if addr_text::ip(&mut text, self.src) {
            text.str(" -> ");
            let dst = std::net::SocketAddr::new(self.dst, self.dport.get());
            if addr_text::socket(&mut text, dst) {
                return f.write_str(text.as_str());
            }
        }
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

    #[test]
    fn key_display_and_expiry() {
        let e = passive_expectation(5000, 1, Instant::from_micros(0), Duration::from_micros(100));
        assert_eq!(e.key.to_string(), "tcp 198.51.100.2 -> 203.0.113.2:5000");
        assert_eq!(e.expires(), Instant::from_micros(100));
        assert_eq!(e.owner(), FlowKey::new(e.control.client, e.control.server));
    }
}
