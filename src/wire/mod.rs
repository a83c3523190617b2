//! Packet views: from an IP datagram to a checked [`Segment`] the rest of the core can trust.
//!
//! Owns: the trust boundary for packet bytes (parsing is done once, here, with etherparse's
//! zero-copy slices), TCP sequence-number arithmetic ([`SeqNumber`]) and TCP control flags
//! ([`Control`]), and rewriting a segment for NAT ([`rewrite_segment`], over the mutable view
//! [`TcpPacket`] and the incremental [`checksum`]). Does not own: link layers (the capture shell
//! strips them) or any decision about what a segment means or how NAT shifts its numbers.

pub mod checksum;
mod rewrite;
mod segment;
mod seq;
mod tcp;

pub use rewrite::SegmentEdit;
pub use rewrite::rewrite_segment;
pub use segment::Control;
pub use segment::Datagram;
pub use segment::Peek;
pub use segment::Segment;
pub use segment::parse;
pub use segment::peek;
pub use seq::SeqNumber;
pub use tcp::TcpPacket;

use std::fmt;

/// Why a datagram could not be turned into something the core can judge.
///
/// Every variant is peer-caused and never fatal: the engine counts it and releases the
/// packet per the configured fail-open/fail-closed policy. [`rewrite_segment`] refuses with
/// the same vocabulary (its documentation lists which field it names when).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// A fragment of a larger datagram: its TCP header or payload is incomplete.
    Fragment,
    /// The IP header is missing, cut short or inconsistent (the field is named).
    MalformedIp(&'static str),
    /// The TCP header is cut short or inconsistent (the field is named).
    MalformedTcp(&'static str),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fragment => f.write_str("IP fragment"),
            Self::MalformedIp(field) => write!(f, "malformed IP header ({field})"),
            Self::MalformedTcp(field) => write!(f, "malformed TCP header ({field})"),
        }
    }
}

impl std::error::Error for Error {}
