//! FTP: the vocabulary, the parsers for the lines that matter, and the per-connection session.
//!
//! Owns: [`DataEndpoint`], [`Trigger`], [`Mode`], [`ReplyCode`], the parse [`Error`], and the
//! submodules [`command`] (client lines), [`reply`] (server lines), [`session`] (matching
//! replies to commands and deciding what the conversation announced). Does not own: whether an
//! announcement is allowed (see `policy`) or what happens to the firewall (see `engine`).

pub mod command;
pub(crate) mod numbers;
pub mod reply;
pub mod session;

use std::fmt;
use std::net::IpAddr;
use std::num::NonZeroU16;

pub use session::Event;
pub use session::Session;

/// An address and port announced for a data connection. Port 0 cannot be represented:
/// it is refused when parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DataEndpoint {
    /// The announced address.
    pub addr: IpAddr,
    /// The announced port.
    pub port: NonZeroU16,
}

/// The line that announced a data endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Trigger {
    /// `PORT h1,h2,h3,h4,p1,p2` (RFC 959 §4.1.2).
    Port,
    /// `EPRT |af|addr|port|` (RFC 2428 §2).
    Eprt,
    /// `LPRT af,hal,h1,...,pal,p1,p2` (RFC 1639 §2).
    Lprt,
    /// `227 Entering Passive Mode (h1,h2,h3,h4,p1,p2)` (RFC 959 §4.1.2, RFC 1123 §4.1.2.6).
    Reply227,
    /// `228 Entering Long Passive Mode (af,hal,h1,...,pal,p1,p2)` (RFC 1639 §3).
    Reply228,
    /// `229 Entering Extended Passive Mode (|||port|)` (RFC 2428 §3).
    Reply229,
}

/// Who connects for the data connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// The server connects to the client (PORT, EPRT, LPRT).
    Active,
    /// The client connects to the server (PASV, EPSV, LPSV).
    Passive,
}

/// A three-digit FTP reply code (RFC 959 §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReplyCode(pub u16);

/// Why a line that should carry an endpoint does not. Peer-caused, never fatal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The named field is missing, out of range or badly formed.
    Malformed(&'static str),
    /// The line was longer than the framing cap, so its arguments were not kept.
    Overlong,
}

impl Trigger {
    /// Who connects when this line is honoured.
    pub const fn mode(self) -> Mode {
        match self {
            Self::Port | Self::Eprt | Self::Lprt => Mode::Active,
            Self::Reply227 | Self::Reply228 | Self::Reply229 => Mode::Passive,
        }
    }

    /// The name used in logs and JSON: the command verb or the reply code.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Port => "PORT",
            Self::Eprt => "EPRT",
            Self::Lprt => "LPRT",
            Self::Reply227 => "227",
            Self::Reply228 => "228",
            Self::Reply229 => "229",
        }
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Mode {
    /// `active` or `passive`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Passive => "passive",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ReplyCode {
    /// 120: service ready in nnn minutes (a preliminary greeting).
    pub const SERVICE_READY_SOON: Self = Self(120);
    /// 220: service ready for new user (the greeting, also the answer to REIN).
    pub const SERVICE_READY: Self = Self(220);
    /// 221: closing control connection (the answer to QUIT).
    pub const CLOSING: Self = Self(221);
    /// 227: entering passive mode.
    pub const PASSIVE: Self = Self(227);
    /// 228: entering long passive mode (RFC 1639).
    pub const LONG_PASSIVE: Self = Self(228);
    /// 229: entering extended passive mode (RFC 2428).
    pub const EXTENDED_PASSIVE: Self = Self(229);
    /// 234: security data exchange complete; after AUTH TLS the channel is TLS (RFC 4217 §4).
    pub const AUTH_OK: Self = Self(234);
    /// 421: service not available, closing control connection.
    pub const NOT_AVAILABLE: Self = Self(421);

    /// A 1yz positive preliminary reply: another reply to the same command follows.
    pub const fn is_preliminary(self) -> bool {
        self.0 / 100 == 1
    }

    /// A 2yz positive completion reply.
    pub const fn is_completion(self) -> bool {
        self.0 / 100 == 2
    }

    /// A 4yz or 5yz negative reply.
    pub const fn is_negative(self) -> bool {
        matches!(self.0 / 100, 4 | 5)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(field) => write!(f, "malformed {field}"),
            Self::Overlong => f.write_str("line too long"),
        }
    }
}

impl std::error::Error for Error {}

impl fmt::Display for DataEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addr {
            IpAddr::V4(a) => write!(f, "{a}:{}", self.port),
            IpAddr::V6(a) => write!(f, "[{a}]:{}", self.port),
        }
    }
}
