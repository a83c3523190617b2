//! In-house netfilter netlink (`NETLINK_NETFILTER`), shared by the queue, the set backends
//! and the conntrack lookup.
//!
//! Owns: the wire format of requests ([`Writer`]: `nlmsghdr`, `nfgenmsg`, attributes,
//! nesting; include/uapi/linux/netlink.h and netfilter/nfnetlink.h), bounds-checked parsing
//! of what the kernel sends ([`messages`], [`attributes`]), the socket with its sequence
//! numbers and the wait for ACKs ([`Socket::exchange`]), when a user's socket is (re)opened
//! (`Link`), and the errors ([`Error`], [`KernelError`], [`Malformed`]). The numbers are in
//! [`consts`], each with its header.
//!
//! It does not own what any message means: that is [`crate::io::nfqueue`],
//! [`crate::io::backend`] and [`crate::io::conntrack`]. Why we do not use the `nfq`,
//! `nftnl` or `ipset` crates is in `docs/netlink.md`.

pub mod consts;

mod build;
mod error;
mod link;
mod parse;
mod socket;
#[cfg(test)]
pub(crate) mod wire_oracle;

pub use build::Header;
pub use build::MessageStart;
pub use build::NFNL_HDRLEN;
pub use build::Nest;
pub use build::Writer;
pub use error::Error;
pub use error::KernelError;
pub use error::Malformed;
pub(crate) use link::Link;
pub use parse::Attribute;
pub use parse::Attributes;
pub use parse::Message;
pub use parse::Messages;
pub use parse::NfGen;
pub use parse::attributes;
pub use parse::find;
pub use parse::messages;
pub use socket::ANSWER_TIMEOUT;
pub use socket::Exchange;
pub use socket::Expect;
pub use socket::Reply;
pub use socket::SMALL_RECEIVE;
pub use socket::Socket;
