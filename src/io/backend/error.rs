//! Backend errors: each says what is wrong and what to do about it.

use std::fmt;
use std::time::Duration;

use crate::expect::DataKey;
use crate::io::netlink;

/// Why a backend operation failed. `set` fields name the set as a person would, e.g.
/// "nftables set inet ftpalg expect4" or "ipset ftpalg-expect4".
#[derive(Debug)]
pub enum BackendError {
    /// The set (or its table) is missing; `fix` says how to create it.
    MissingSet {
        /// The set.
        set: String,
        /// How to create it.
        fix: String,
    },
    /// A key, or a key and its NAT mapping, had an IPv4 and an IPv6 address (caller misuse);
    /// nothing was sent.
    MixedFamily(DataKey),
    /// An element carries a NAT mapping (`Element::nat`) that the backend has nowhere to put:
    /// ipset cannot hold a DNAT map, and the nftables backend writes one only when its NAT
    /// maps are enabled (`NftBackend::with_nat_maps`). Nothing was sent.
    NatUnsupported {
        /// The backend, as [`Backend::describe`](super::Backend::describe) names it.
        backend: String,
        /// The expectation whose mapping could not be written.
        key: DataKey,
        /// What to do.
        fix: String,
    },
    /// The kernel did not answer properly (malformed answer, I/O error). A timeout is
    /// [`Timeout`](Self::Timeout) instead.
    Netlink {
        /// The set.
        set: String,
        /// What failed.
        error: netlink::Error,
    },
    /// The kernel said EPERM: the daemon lacks `CAP_NET_ADMIN`.
    PermissionDenied {
        /// The set.
        set: String,
    },
    /// The kernel refused for another reason.
    Refused {
        /// The set.
        set: String,
        /// "add" or "remove".
        action: &'static str,
        /// The kernel's reason, spelled out.
        reason: String,
    },
    /// The netlink socket could not be opened.
    Socket(netlink::Error),
    /// The set is full (nft `size`, ipset `maxelem`).
    SetFull {
        /// The set.
        set: String,
    },
    /// The kernel did not answer within the backend's answer timeout (`--netlink-timeout`).
    /// The request may or may not have taken effect: an element added meanwhile expires on
    /// its own timeout.
    Timeout {
        /// The set.
        set: String,
        /// The bound that passed.
        after: Duration,
    },
    /// The set exists but cannot hold our elements; `fix` says how to recreate it.
    WrongSet {
        /// The set.
        set: String,
        /// What is wrong with it.
        problem: String,
        /// How to fix it.
        fix: String,
    },
}

impl BackendError {
    /// A failed netlink exchange with `set`: [`Timeout`](Self::Timeout) when the kernel
    /// stayed silent, [`Netlink`](Self::Netlink) otherwise.
    pub fn netlink(set: String, error: netlink::Error) -> Self {
        match error {
            netlink::Error::Timeout(after) => Self::Timeout { set, after },
            error => Self::Netlink { set, error },
        }
    }

    /// True when the kernel did not answer in time (for counting; the request may still
    /// have taken effect).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout { .. })
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingSet { set, fix } => write!(f, "{set} does not exist: {fix}"),
            Self::MixedFamily(key) => write!(
                f,
                "expectation {key} (or its NAT mapping) mixes IPv4 and IPv6 addresses: not \
                 installed (a bug in the caller)"
            ),
            Self::NatUnsupported { backend, key, fix } => write!(
                f,
                "{backend} cannot hold the NAT mapping of expectation {key}: nothing was sent; \
                 {fix}"
            ),
            Self::Netlink { set, error } => write!(f, "{set}: {error}"),
            Self::PermissionDenied { set } => write!(
                f,
                "{set}: permission denied by the kernel: run as root or with CAP_NET_ADMIN \
                 in the firewall's network namespace"
            ),
            Self::Refused {
                set,
                action,
                reason,
            } => write!(
                f,
                "the kernel refused to {action} elements of {set}: {reason}"
            ),
            Self::Socket(error) => write!(
                f,
                "cannot open a netfilter netlink socket ({error}): is this Linux with \
                 nfnetlink, and are we root?"
            ),
            Self::SetFull { set } => write!(
                f,
                "{set} is full: raise its size (nft `size`, ipset `maxelem`) or shorten the \
                 expectation lifetime"
            ),
            Self::Timeout { set, after } => write!(
                f,
                "{set}: the kernel did not answer within {after:?} (--netlink-timeout); the \
                 request may or may not have taken effect"
            ),
            Self::WrongSet { set, problem, fix } => write!(f, "{set} {problem}: {fix}"),
        }
    }
}

impl std::error::Error for BackendError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_silent_kernel_is_a_timeout_and_says_so() {
        let after = Duration::from_millis(250);
        let error = BackendError::netlink("ipset a".into(), netlink::Error::Timeout(after));
        assert!(error.is_timeout());
        assert!(matches!(&error, BackendError::Timeout { after: a, .. } if *a == after));
        assert_eq!(
            error.to_string(),
            "ipset a: the kernel did not answer within 250ms (--netlink-timeout); the request \
             may or may not have taken effect"
        );
    }

    #[test]
    fn other_netlink_failures_are_not_timeouts() {
        let malformed = netlink::Error::Malformed(netlink::Malformed("nlmsg_len"));
        let error = BackendError::netlink("ipset a".into(), malformed);
        assert!(!error.is_timeout());
        assert!(matches!(error, BackendError::Netlink { .. }));
        let refused = BackendError::SetFull { set: "s".into() };
        assert!(!refused.is_timeout());
    }
}
