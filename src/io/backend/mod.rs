//! Where expectations live in the kernel: elements of an nftables set ([`NftBackend`]) or
//! an ipset ([`IpsetBackend`]) that the firewall's rules match a data connection's first
//! packet against; or nowhere ([`NoBackend`], a dry run).
//!
//! Owns: turning a [`DataKey`] plus a lifetime ([`Element`]) into set elements (and, for an
//! element with a NAT mapping, an element of the nftables NAT map beside the set), adding and
//! removing them over netfilter netlink and waiting (at most the answer timeout, through a
//! `netlink::Link`) for the kernel's ACK, checking that the sets exist, and saying what to do
//! when they do not ([`BackendError`]). It does not own the rules that use the sets
//! (`ftp-alg rules`), nor when to add or remove (the engine).
//!
//! Element meaning, from [`DataKey`]: `src` is the host that will connect (the data SYN's
//! source), `dst` the announced address (the SYN's destination), `dport` the announced
//! port. IPv4 keys go to the IPv4 set, IPv6 keys to the IPv6 set. With a NAT mapping
//! ([`Element::nat`]) the data SYN arrives from `src` for the mapping's public address and
//! port; the NAT map element (`src . public . port : dst . dport`) translates it in
//! prerouting, and the set element then matches it in forward, after DNAT.

mod error;
mod ipset;
mod nft;

use std::time::Duration;

use crate::expect::DataKey;
use crate::expect::NatMapping;

pub use error::BackendError;
pub use ipset::IpsetBackend;
pub use nft::DEFAULT_NAT_MAPS;
pub use nft::NftBackend;

/// How long a set backend waits for the kernel's answers unless told otherwise
/// (`with_answer_timeout`; `ftp-alg run --netlink-timeout`). The announcing packet is held
/// in the queue meanwhile; the kernel answers within microseconds when it answers at all.
pub const DEFAULT_ANSWER_TIMEOUT: Duration = Duration::from_millis(250);

/// One expectation as a set element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Element {
    /// What the data connection's first packet must match.
    pub key: DataKey,
    /// How long the kernel keeps the element.
    pub timeout: Duration,
    /// The data connection's public face behind NAT: an element of the NAT map too.
    pub nat: Option<NatMapping>,
}

/// A place in the kernel that holds expectations.
pub trait Backend: Send {
    /// What it writes to, for logs: e.g. "nft table inet ftpalg, sets expect4/expect6".
    fn describe(&self) -> String;

    /// Check that the sets exist (and, where cheap, that their key type and timeout
    /// support fit).
    fn check(&mut self) -> Result<(), BackendError>;

    /// Add `elements`, or refresh their timeouts if present; returns once the kernel has
    /// acknowledged them. One transaction where the backend has them.
    fn install(&mut self, elements: &[Element]) -> Result<(), BackendError>;

    /// Remove `elements`. Elements already gone (used by a data connection, or expired)
    /// are not an error.
    fn remove(&mut self, elements: &[Element]) -> Result<(), BackendError>;

    /// Carry out one packet's net change (`removals` and `installs` name distinct keys):
    /// afterwards the set holds every install and none of the removals, except for what the
    /// report names. Removals are carried out even when an install fails. The default makes
    /// two calls; a backend with transactions does it in one.
    fn apply(&mut self, removals: &[Element], installs: &[Element]) -> Applied {
        let mut applied = Applied::default();
        if !removals.is_empty() {
            if let Err(error) = self.remove(removals) {
                applied.remove_error = Some(error);
            }
        }
        if !installs.is_empty() {
            if let Err(error) = self.install(installs) {
                let keys = installs.iter().map(|e| e.key).collect();
                applied.install_error = Some((keys, error));
            }
        }
        applied
    }
}

/// What became of a [`Backend::apply`].
#[derive(Debug, Default)]
pub struct Applied {
    /// The installs the set may not hold, and why.
    pub install_error: Option<(Vec<DataKey>, BackendError)>,
    /// Why the removals may not all have happened.
    pub remove_error: Option<BackendError>,
}

/// The dry run: accepts everything, touches nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoBackend;

impl Backend for NoBackend {
    fn describe(&self) -> String {
        "no backend (dry run: nothing is installed in the kernel)".to_owned()
    }

    fn check(&mut self) -> Result<(), BackendError> {
        Ok(())
    }

    fn install(&mut self, _elements: &[Element]) -> Result<(), BackendError> {
        Ok(())
    }

    fn remove(&mut self, _elements: &[Element]) -> Result<(), BackendError> {
        Ok(())
    }
}

/// The IPv4 and the IPv6 elements of `elements`; a key that mixes families is refused
/// before anything is sent.
fn split_families(elements: &[Element]) -> Result<(Vec<Element>, Vec<Element>), BackendError> {
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    for element in elements {
        match (element.key.src.is_ipv4(), element.key.dst.is_ipv4()) {
            (true, true) => v4.push(*element),
            (false, false) => v6.push(*element),
            _ => return Err(BackendError::MixedFamily(element.key)),
        }
    }
    Ok((v4, v6))
}
