//! NAT: rewriting the addresses FTP announces, for control connections the gateway translates.
//!
//! Owns: [`Translation`] (how one control connection's endpoints look from the other side of
//! the gateway, learned from conntrack by the daemon or given as a static [`NatMap`]), and the
//! vocabulary shared with the expectation table ([`crate::expect::NatMapping`] is the data
//! connection's public face). Behind NAT the address inside `PORT`/`EPRT`/`227` is the private
//! one, which the peer cannot reach (RFC 959 §4.1.2, RFC 2428 §2-3); the kernel's `nf_nat_ftp`
//! rewrites it, and so does this module.

pub mod flow;
pub mod ledger;
pub mod text;

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::flow::Control;

/// How a control connection's endpoints appear on the far side of the gateway. Addresses are
/// the ones a peer sees; `None` means "not translated".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Translation {
    /// The client's address as the server sees it (the client is behind SNAT/masquerade).
    pub client_public: Option<IpAddr>,
    /// The server's address as the client sees it (the server is behind DNAT).
    pub server_public: Option<IpAddr>,
}

impl Translation {
    /// No translation at all.
    pub const NONE: Self = Self {
        client_public: None,
        server_public: None,
    };

    /// True when neither side is translated.
    pub fn is_none(&self) -> bool {
        self.client_public.is_none() && self.server_public.is_none()
    }

    /// The translation conntrack's two tuples describe for `control` as the queue sees it
    /// (the private side's addresses): `original` is the connection's first packet as it
    /// entered the gateway, `reply` the answer as it leaves the answering host. A translated
    /// side is one whose address differs between the queue's view and the peer's view.
    pub fn from_tuples(
        control: &Control,
        original: (IpAddr, IpAddr),
        reply: (IpAddr, IpAddr),
    ) -> Self {
        let (client, server) = (control.client.ip(), control.server.ip());
        // The server sees the client as the reply's destination; the client sees the server
        // as the original's destination.
        let seen_client = reply.1;
        let seen_server = original.1;
        Self {
            client_public: (seen_client != client && same_family(seen_client, client))
                .then_some(seen_client),
            server_public: (seen_server != server && same_family(seen_server, server))
                .then_some(seen_server),
        }
    }
}

fn same_family(a: IpAddr, b: IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}

/// Static mappings `PRIVATE=PUBLIC` (`--nat-map`): a host at a private address appears to
/// the other side of the gateway at its public address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NatMap {
    pairs: Vec<(IpAddr, IpAddr)>,
}

/// One `PRIVATE=PUBLIC` mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NatPair {
    /// The address the host has on its side of the gateway.
    pub private: IpAddr,
    /// The address the other side sees.
    pub public: IpAddr,
}

/// Why a `--nat-map` argument is not a mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatPairError(String);

impl fmt::Display for NatPairError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NatPairError {}

impl FromStr for NatPair {
    type Err = NatPairError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (private, public) = text.split_once('=').ok_or_else(|| {
            NatPairError(format!("`{text}` is not PRIVATE=PUBLIC (two addresses)"))
        })?;
        let parse = |what: &str, addr: &str| {
            addr.trim()
                .parse::<IpAddr>()
                .map_err(|_| NatPairError(format!("`{addr}` is not an IP address ({what})")))
        };
        let pair = Self {
            private: parse("private", private)?,
            public: parse("public", public)?,
        };
        if !same_family(pair.private, pair.public) {
            return Err(NatPairError(format!(
                "`{text}` maps between IPv4 and IPv6 (NAT64 is not supported)"
            )));
        }
        Ok(pair)
    }
}

impl NatMap {
    /// A map of `pairs` (a later pair for the same private address wins).
    pub fn new(pairs: impl IntoIterator<Item = NatPair>) -> Self {
        let mut map = Self::default();
        for pair in pairs {
            map.pairs.retain(|(private, _)| *private != pair.private);
            map.pairs.push((pair.private, pair.public));
        }
        map
    }

    /// True when the map holds no mapping.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The public address of `private`, if mapped.
    pub fn public_of(&self, private: IpAddr) -> Option<IpAddr> {
        self.pairs
            .iter()
            .find(|(from, _)| *from == private)
            .map(|(_, to)| *to)
    }

    /// The translation of `control` under this map.
    pub fn translation(&self, control: &Control) -> Translation {
        Translation {
            client_public: self.public_of(control.client.ip()),
            server_public: self.public_of(control.server.ip()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn control(client: &str, server: &str) -> Control {
        Control {
            client: client.parse().unwrap(),
            server: server.parse().unwrap(),
        }
    }

    #[test]
    fn tuples_of_a_masqueraded_client() {
        // 192.0.2.2 masqueraded as 203.0.113.1 towards 198.51.100.2.
        let c = control("192.0.2.2:40000", "198.51.100.2:21");
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let t = Translation::from_tuples(
            &c,
            (ip("192.0.2.2"), ip("198.51.100.2")),
            (ip("198.51.100.2"), ip("203.0.113.1")),
        );
        assert_eq!(t.client_public, Some(ip("203.0.113.1")));
        assert_eq!(t.server_public, None);
    }

    #[test]
    fn tuples_of_a_published_server() {
        // The client dials 203.0.113.1, DNATed to 192.0.2.5.
        let c = control("198.51.100.2:40000", "192.0.2.5:21");
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let t = Translation::from_tuples(
            &c,
            (ip("198.51.100.2"), ip("203.0.113.1")),
            (ip("192.0.2.5"), ip("198.51.100.2")),
        );
        assert_eq!(t.server_public, Some(ip("203.0.113.1")));
        assert_eq!(t.client_public, None);
        assert!(
            Translation::from_tuples(
                &c,
                (ip("198.51.100.2"), ip("192.0.2.5")),
                (ip("192.0.2.5"), ip("198.51.100.2"))
            )
            .is_none()
        );
    }

    #[test]
    fn nat_map_parses_and_refuses() {
        let pair: NatPair = "192.0.2.2=203.0.113.1".parse().unwrap();
        let map = NatMap::new([pair]);
        let t = map.translation(&control("192.0.2.2:1", "198.51.100.2:21"));
        assert_eq!(t.client_public, Some("203.0.113.1".parse().unwrap()));
        assert!("192.0.2.2".parse::<NatPair>().is_err());
        assert!("192.0.2.2=2001:db8::1".parse::<NatPair>().is_err());
        assert!("x=203.0.113.1".parse::<NatPair>().is_err());
    }
}
