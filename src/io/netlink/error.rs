//! What can go wrong talking netlink, split as the style guide asks: the OS failed
//! ([`Error::Io`]), the kernel sent something we cannot read ([`Malformed`]), the kernel
//! stayed silent ([`Error::Timeout`]), we were asked to build something the wire cannot
//! carry ([`Error::TooLong`]), and the kernel refused one message ([`KernelError`], an
//! outcome per message rather than an `Error`, because a batch has one per message).

use std::fmt;
use std::io;
use std::time::Duration;

/// A netlink exchange failed as a whole.
#[derive(Debug)]
pub enum Error {
    /// A syscall failed; `op` names it.
    Io {
        /// The operation, e.g. "sendto".
        op: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// The kernel's reply could not be parsed.
    Malformed(Malformed),
    /// No answer from the kernel in time.
    Timeout(Duration),
    /// A message or attribute is longer than its length field can say.
    TooLong(&'static str),
}

/// A kernel message failed a bounds or format check; the field says which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

/// The kernel refused one request message (an `NLMSG_ERROR` with a negative error,
/// netlink(7)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelError {
    /// The positive errno (ipset uses private numbers from 4096, see `IPSET_ERR_*`).
    pub errno: i32,
    /// The kernel's extended-ACK message, when it gave one.
    pub message: Option<String>,
}

impl Error {
    /// Wrap an OS error from `op`.
    pub fn io(op: &'static str, source: io::Error) -> Self {
        Self::Io { op, source }
    }
}

impl KernelError {
    /// A refusal without a message.
    pub fn new(errno: i32) -> Self {
        Self {
            errno,
            message: None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { op, source } => write!(f, "netlink {op} failed: {source}"),
            Self::Malformed(malformed) => malformed.fmt(f),
            Self::Timeout(after) => write!(
                f,
                "the kernel did not answer a netlink request within {after:?}"
            ),
            Self::TooLong(what) => write!(f, "netlink {what} too long for its length field"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<Malformed> for Error {
    fn from(malformed: Malformed) -> Self {
        Self::Malformed(malformed)
    }
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "malformed netlink message from the kernel: bad {}",
            self.0
        )
    }
}

impl std::error::Error for Malformed {}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let os = io::Error::from_raw_os_error(self.errno);
        write!(f, "{os}")?;
        if let Some(message) = &self.message {
            write!(f, " ({message})")?;
        }
        Ok(())
    }
}

impl std::error::Error for KernelError {}
