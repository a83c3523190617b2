//! Flows: control connections, identified the same way from both directions.
//!
//! Owns: [`FlowKey`] (the canonical 4-tuple: both directions map to one key), [`Direction`]
//! (conntrack's `Original` = client to server, `Reply` = server to client), [`Control`] (who is
//! the client and who the server), [`FlowId`], the bounded, tiered [`table::FlowTable`] with
//! `now`-driven expiry, and what it holds per connection ([`Tracked`]): the state of a
//! connection that is read ([`control::ControlFlow`]), or a tombstone ([`silent::Silent`]).

pub mod control;
pub mod silent;
pub mod table;

use std::fmt;
use std::hash::Hash;
use std::hash::Hasher;
use std::net::IpAddr;
use std::net::SocketAddr;

use crate::addr_text;

/// A control connection's 4-tuple, the same for both directions. 40 bytes (a `SocketAddr`
/// pair is 64): the key is stored twice per tracked connection, and a gateway tracks up to a
/// million of them. Hashed as two integer writes for IPv4 (see the `Hash` impl).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct FlowKey {
    low: Endpoint,
    high: Endpoint,
}

/// One end of a connection: address and port, without IPv6 flow label or scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Endpoint {
    ip: IpAddr,
    port: u16,
}

/// Which way a packet travels on its control connection (conntrack's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the client (who sent the SYN, or who does not use the control port) to the server.
    Original,
    /// From the server to the client.
    Reply,
}

/// The two ends of a control connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Control {
    /// The FTP client's address and port.
    pub client: SocketAddr,
    /// The FTP server's address and port (normally port 21).
    pub server: SocketAddr,
}

/// What the flow table holds for one control connection.
#[derive(Debug)]
pub enum Tracked {
    /// A connection whose lines are read.
    Reading(Box<control::ControlFlow>),
    /// A connection no longer read (not FTP, or encrypted): a small tombstone.
    Silent(silent::Silent),
}

/// A control connection's serial number, unique within one engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowId(pub u64);

impl Tracked {
    /// The TCP state.
    pub fn state(&self) -> control::TcpState {
        match self {
            Self::Reading(flow) => flow.state(),
            Self::Silent(silent) => silent.state(),
        }
    }

    /// Its eviction tier.
    pub fn tier(&self) -> table::Tier {
        match self {
            Self::Reading(flow) => flow.tier(),
            Self::Silent(silent) => silent.tier(),
        }
    }

    /// How long it may stay idle.
    pub fn idle_timeout(&self, config: &crate::config::Config) -> crate::time::Duration {
        match self {
            Self::Reading(flow) => flow.idle_timeout(config),
            Self::Silent(silent) => silent.idle_timeout(config),
        }
    }

    /// Bytes buffered for it.
    pub fn buffered(&self) -> usize {
        match self {
            Self::Reading(flow) => flow.buffered(),
            Self::Silent(_) => 0,
        }
    }
}

impl FlowKey {
    /// The key of the connection between `a` and `b`, in either order.
    pub fn new(a: SocketAddr, b: SocketAddr) -> Self {
        let (a, b) = (Endpoint::from(a), Endpoint::from(b));
        if a.precedes(&b) {
            Self { low: a, high: b }
        } else {
            Self { low: b, high: a }
        }
    }

    /// Its two ends, lower first.
    pub fn ends(&self) -> (SocketAddr, SocketAddr) {
        (self.low.into(), self.high.into())
    }
}

/// A few integer writes, not the derived impl's dozen small writes per key (enum tags,
/// lengths, octets, ports: SipHash's cost per write dominated a replay's profile), nor one
/// 38-byte write (foldhash's slower path for long inputs, on every lookup). Equal keys write
/// equally.
impl Hash for FlowKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let low = hash_ip(&self.low.ip, state) << 16 | u64::from(self.low.port);
        state.write_u64(low);
        let high = hash_ip(&self.high.ip, state) << 16 | u64::from(self.high.port);
        state.write_u64(high);
    }
}

/// An address for a `Hash` impl: an IPv4 address is returned as its 32 bits; an IPv6 one is
/// written to `state` (as one `u128`) and returned as a tag above any IPv4 address, so the two
/// families never write the same.
#[inline]
pub(crate) fn hash_ip<H: Hasher>(ip: &IpAddr, state: &mut H) -> u64 {
    match ip {
        IpAddr::V4(v4) => u64::from(v4.to_bits()),
        IpAddr::V6(v6) => {
            state.write_u128(v6.to_bits());
            1 << 32
        }
    }
}

impl Endpoint {
    /// `self <= other` in the derived order (IPv4 before IPv6, then the address, then the
    /// port), with two IPv4 ends compared as integers.
    #[inline]
    fn precedes(&self, other: &Self) -> bool {
        match (self.ip, other.ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => (a.to_bits(), self.port) <= (b.to_bits(), other.port),
            _ => self <= other,
        }
    }
}

impl From<SocketAddr> for Endpoint {
    fn from(addr: SocketAddr) -> Self {
        Self {
            ip: addr.ip(),
            port: addr.port(),
        }
    }
}

impl From<Endpoint> for SocketAddr {
    fn from(end: Endpoint) -> Self {
        Self::new(end.ip, end.port)
    }
}

impl Direction {
    /// The other direction.
    pub const fn reverse(self) -> Self {
        match self {
            Self::Original => Self::Reply,
            Self::Reply => Self::Original,
        }
    }

    /// 0 for `Original`, 1 for `Reply` (for per-direction arrays).
    pub const fn index(self) -> usize {
        match self {
            Self::Original => 0,
            Self::Reply => 1,
        }
    }
}

impl Control {
    /// The direction of a packet sent from `src` on this connection.
    pub fn direction_from(&self, src: SocketAddr) -> Direction {
        if src == self.client {
            Direction::Original
        } else {
            Direction::Reply
        }
    }
}

impl fmt::Display for Control {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Without `fmt` per address (the daemon's event lines carry one each: addr_text).
        let mut text = addr_text::Text::new();
        if addr_text::socket(&mut text, self.client) {
            text.str(" -> ");
            if addr_text::socket(&mut text, self.server) {
                return f.write_str(text.as_str());
            }
        }
        write!(f, "{} -> {}", self.client, self.server)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_directions_share_a_key() {
        let c: SocketAddr = "198.51.100.2:40000".parse().unwrap();
        let s: SocketAddr = "203.0.113.2:21".parse().unwrap();
        assert_eq!(FlowKey::new(c, s), FlowKey::new(s, c));
        assert_ne!(
            FlowKey::new(c, s),
            FlowKey::new("198.51.100.2:40001".parse().unwrap(), s)
        );
        let control = Control {
            client: c,
            server: s,
        };
        assert_eq!(control.direction_from(c), Direction::Original);
        assert_eq!(control.direction_from(s), Direction::Reply);
        assert_eq!(Direction::Reply.reverse().index(), 0);
        assert_eq!(control.to_string(), "198.51.100.2:40000 -> 203.0.113.2:21");
        assert_eq!(FlowKey::new(s, c).ends(), (c, s));
        assert_eq!(size_of::<FlowKey>(), 40);
    }

    /// The IPv4 shortcut orders ends as the derived order does.
    #[test]
    fn ends_are_ordered_as_derived() {
        let ends: Vec<Endpoint> = [
            "0.0.0.0:0",
            "10.0.0.1:21",
            "10.0.0.1:20",
            "10.0.0.2:20",
            "9.255.255.255:65535",
            "255.0.0.0:1",
            "[::1]:21",
            "[2001:db8::1]:0",
        ]
        .iter()
        .map(|text| Endpoint::from(text.parse::<SocketAddr>().unwrap()))
        .collect();
        for a in &ends {
            for b in &ends {
                assert_eq!(a.precedes(b), a <= b, "{a:?} {b:?}");
            }
        }
    }
}
