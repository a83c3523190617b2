//! The configurations and addresses of the `engine` target: from a script's [`Setup`], or
//! from the flags of the replay form.
//!
//! Owns: which addresses the two ends have (private ones where NAT applies), the static
//! `--nat-map` pairs that translate them, and the bounds under test (small, so that the
//! fuzzer reaches them).

use std::net::IpAddr;
use std::net::SocketAddr;

use super::script::Conn;
use super::script::End;
use super::script::NatChoice;
use super::script::Setup;
use crate::config::Config;
use crate::config::Nat;
use crate::config::NatMode;
use crate::config::Policy;
use crate::config::Unjudged;
use crate::nat::NatMap;
use crate::nat::NatPair;

/// The private addresses the packets carry.
pub(super) struct Addresses {
    pub(super) client: IpAddr,
    pub(super) server: IpAddr,
}

impl Addresses {
    /// Private addresses where NAT applies, documentation ones elsewhere.
    pub(super) fn of(setup: &Setup) -> Self {
        let nat_client = matches!(setup.nat, NatChoice::Client | NatChoice::Both);
        let nat_server = matches!(setup.nat, NatChoice::Server | NatChoice::Both);
        let pick = |v4: &str, v6: &str| -> IpAddr {
            let text = if setup.v6 { v6 } else { v4 };
            // NOTE(unwrap): literals.
            text.parse().expect("an address literal")
        };
        Self {
            client: if nat_client {
                pick("10.0.0.2", "fd00::2")
            } else {
                pick("198.51.100.2", "2001:db8:100::2")
            },
            server: if nat_server {
                pick("10.1.1.5", "fd01::5")
            } else {
                pick("203.0.113.2", "2001:db8:113::2")
            },
        }
    }

    pub(super) fn of_end(&self, end: End) -> IpAddr {
        match end {
            End::Client => self.client,
            End::Server => self.server,
        }
    }

    pub(super) fn ends(&self, conn: Conn) -> (SocketAddr, SocketAddr) {
        let port = match conn {
            Conn::First => 40000,
            Conn::Second => 40001,
        };
        (
            SocketAddr::new(self.client, port),
            SocketAddr::new(self.server, 21),
        )
    }
}

/// The configuration a script's setup asks for.
pub(super) fn config(setup: &Setup, addresses: &Addresses) -> Config {
    let defaults = Config::default();
    let mut pairs = Vec::new();
    let public = |v4: &str, v6: &str| -> IpAddr {
        let text = if setup.v6 { v6 } else { v4 };
        text.parse().expect("an address literal")
    };
    if matches!(setup.nat, NatChoice::Client | NatChoice::Both) {
        pairs.push(NatPair {
            private: addresses.client,
            public: public("198.51.100.9", "2001:db8:100::9"),
        });
    }
    if matches!(setup.nat, NatChoice::Server | NatChoice::Both) {
        pairs.push(NatPair {
            private: addresses.server,
            public: public("203.0.113.2", "2001:db8:113::2"),
        });
    }
    let nat = if setup.nat == NatChoice::Off {
        Nat::default()
    } else {
        Nat {
            mode: NatMode::Static(NatMap::new(pairs)),
            hold_bytes: usize::from(setup.hold_bytes % 512) + 16,
            ..Nat::default()
        }
    };
    Config {
        policy: if setup.loose {
            Policy::Loose
        } else {
            Policy::Strict
        },
        midstream_pickup: !setup.no_pickup,
        verify_checksums: setup.verify_checksums,
        unjudged: if setup.drop_unjudged {
            Unjudged::Drop
        } else {
            Unjudged::Accept
        },
        max_expectations_per_control: usize::from(setup.per_control % 4) + 1,
        max_expectations_per_client: usize::from(setup.per_client % 6) + 1,
        max_expectations_total: usize::from(setup.total % 6) + 1,
        max_flows: usize::from(setup.max_flows % 3) + 1,
        max_line: if setup.small_lines {
            64
        } else {
            defaults.max_line
        },
        nat,
        ..defaults
    }
}

/// The configuration of the replay form (`super::replay`) for `flags`.
pub(super) fn replay_config(flags: u8) -> Config {
    let mut pairs = Vec::new();
    if flags & 1 != 0 {
        pairs.push(NatPair {
            private: IpAddr::from([198, 51, 100, 2]),
            public: IpAddr::from([192, 0, 2, 200]),
        });
    }
    if flags & 2 != 0 {
        pairs.push(NatPair {
            private: IpAddr::from([203, 0, 113, 2]),
            public: IpAddr::from([192, 0, 2, 201]),
        });
    }
    let mut config = Config::default();
    if !pairs.is_empty() {
        config.nat.mode = NatMode::Static(NatMap::new(pairs));
    }
    if flags & 4 != 0 {
        config.policy = Policy::Loose;
    }
    if flags & 8 != 0 {
        config.max_expectations_per_control = 1;
        config.max_expectations_total = 2;
        config.max_flows = 2;
        config.max_line = 64;
        config.nat.hold_bytes = 64;
    }
    config
}
