//! Flows: control connections, identified the same way from both directions.
//!
//! Owns: [`FlowKey`] (the canonical 4-tuple: both directions map to one key), [`Direction`]
//! (conntrack's `Original` = client to server, `Reply` = server to client), [`Control`] (who is
//! the client and who the server), [`FlowId`], the bounded [`table::FlowTable`] with
//! `now`-driven expiry, and the per-connection state in [`control::ControlFlow`].

pub mod control;
pub mod table;

use std::fmt;
use std::net::SocketAddr;

/// A control connection's 4-tuple, the same for both directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    low: SocketAddr,
    high: SocketAddr,
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

/// A control connection's serial number, unique within one engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowId(pub u64);

impl FlowKey {
    /// The key of the connection between `a` and `b`, in either order.
    pub fn new(a: SocketAddr, b: SocketAddr) -> Self {
        if a <= b {
            Self { low: a, high: b }
        } else {
            Self { low: b, high: a }
        }
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
    }
}
