//! Policy: whether an announced endpoint becomes an expectation, and exactly which one.
//!
//! Owns: the mapping from an announcement and its control connection to a [`DataKey`]
//! (active: the server connects to the announced endpoint; passive: the client connects to
//! it, or to the control server for a 229, RFC 2428 §3), and the refusals, checked in this
//! order: an address of the other family than the control connection (RFC 2428 §2 makes the
//! family explicit; the kernel drops such lines), an unusable address (unspecified,
//! multicast, broadcast), under [`Policy::Strict`] an address other than the control peer's
//! (FTP bounce for PORT, RFC 2577 §3; PASV hijack for 227/228), and a port below 1024 unless
//! allowed (RFC 2577 §3 recommends refusing them). Port 0 never gets here: it does not parse.

use std::fmt;
use std::net::IpAddr;

use crate::config::Config;
use crate::config::Policy;
use crate::expect::DataKey;
use crate::flow::Control;
use crate::ftp::Error;
use crate::ftp::Mode;
use crate::ftp::Trigger;
use crate::ftp::session;
use crate::ftp::session::Announced;

/// Why an announcement did not become an expectation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// PORT/EPRT/LPRT naming a host other than the control client.
    Bounce,
    /// `EPSV ALL` was in force (RFC 2428 §4).
    EpsvAll,
    /// The address family differs from the control connection's.
    FamilyMismatch,
    /// 227/228 naming a host other than the control server.
    Hijack,
    /// The line did not parse.
    Malformed(Error),
    /// A data port below 1024.
    PrivilegedPort,
    /// The control connection's client already holds its share of expectations.
    ClientLimit,
    /// The expectation table is full.
    TotalLimit,
    /// A passive reply that answered no passive command.
    Unsolicited,
    /// An unspecified, multicast or broadcast address.
    UnusableAddress,
    /// Behind NAT, the line could not be rewritten (part of it had left unrewritten, it did
    /// not have the expected shape, or its connection holds too many unacknowledged edits):
    /// the peer was told a private address, so no pinhole is opened for it.
    NatUnrewritable,
}

/// Judge an announcement from control connection `control`.
pub fn judge(
    config: &Config,
    control: &Control,
    trigger: Trigger,
    announced: Announced,
) -> Result<DataKey, Reason> {
    let (addr, port) = match announced {
        Announced::Endpoint(endpoint) => (endpoint.addr, endpoint.port),
        Announced::Port(port) => (control.server.ip(), port),
    };
    if addr.is_ipv4() != control.server.is_ipv4() {
        return Err(Reason::FamilyMismatch);
    }
    if !is_usable(addr) {
        return Err(Reason::UnusableAddress);
    }
    let (src, peer, refusal) = match trigger.mode() {
        Mode::Active => (control.server.ip(), control.client.ip(), Reason::Bounce),
        Mode::Passive => (control.client.ip(), control.server.ip(), Reason::Hijack),
    };
    if config.policy == Policy::Strict && addr != peer {
        return Err(refusal);
    }
    if port.get() < 1024 && !config.allow_privileged_ports {
        return Err(Reason::PrivilegedPort);
    }
    Ok(DataKey {
        src,
        dst: addr,
        dport: port,
    })
}

impl Reason {
    /// The name used in logs and JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Bounce => "bounce",
            Self::EpsvAll => "epsv-all",
            Self::FamilyMismatch => "family-mismatch",
            Self::Hijack => "hijack",
            Self::Malformed(Error::Overlong) => "overlong",
            Self::Malformed(Error::Malformed(_)) => "malformed",
            Self::PrivilegedPort => "privileged-port",
            Self::ClientLimit => "client-limit",
            Self::TotalLimit => "total-limit",
            Self::Unsolicited => "unsolicited",
            Self::UnusableAddress => "unusable-address",
            Self::NatUnrewritable => "nat-unrewritable",
        }
    }
}

impl From<session::Refusal> for Reason {
    fn from(refusal: session::Refusal) -> Self {
        match refusal {
            session::Refusal::EpsvAll => Self::EpsvAll,
            session::Refusal::Unsolicited => Self::Unsolicited,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(error) => write!(f, "{} ({error})", self.as_str()),
            _ => f.write_str(self.as_str()),
        }
    }
}

fn is_usable(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => !(a.is_unspecified() || a.is_multicast() || a.is_broadcast()),
        IpAddr::V6(a) => !(a.is_unspecified() || a.is_multicast()),
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU16;

    use super::*;
    use crate::ftp::DataEndpoint;

    fn control_v4() -> Control {
        Control {
            client: "198.51.100.2:40000".parse().unwrap(),
            server: "203.0.113.2:21".parse().unwrap(),
        }
    }

    fn control_v6() -> Control {
        Control {
            client: "[2001:db8:100::2]:40000".parse().unwrap(),
            server: "[2001:db8:113::2]:21".parse().unwrap(),
        }
    }

    fn at(addr: &str, port: u16) -> Announced {
        Announced::Endpoint(DataEndpoint {
            addr: addr.parse().unwrap(),
            port: NonZeroU16::new(port).unwrap(),
        })
    }

    fn strict(control: &Control, trigger: Trigger, announced: Announced) -> Result<String, Reason> {
        judge(&Config::default(), control, trigger, announced).map(|k| k.to_string())
    }

    fn loose(control: &Control, trigger: Trigger, announced: Announced) -> Result<String, Reason> {
        let config = Config {
            policy: Policy::Loose,
            ..Config::default()
        };
        judge(&config, control, trigger, announced).map(|k| k.to_string())
    }

    #[test]
    fn active_expects_the_server_to_connect_to_the_client() {
        let got = strict(&control_v4(), Trigger::Port, at("198.51.100.2", 50000));
        assert_eq!(got, Ok("tcp 203.0.113.2 -> 198.51.100.2:50000".into()));
        let v6 = strict(&control_v6(), Trigger::Eprt, at("2001:db8:100::2", 50000));
        assert_eq!(
            v6,
            Ok("tcp 2001:db8:113::2 -> [2001:db8:100::2]:50000".into())
        );
    }

    #[test]
    fn passive_expects_the_client_to_connect_to_the_server() {
        let got = strict(&control_v4(), Trigger::Reply227, at("203.0.113.2", 50000));
        assert_eq!(got, Ok("tcp 198.51.100.2 -> 203.0.113.2:50000".into()));
        let epsv = strict(
            &control_v6(),
            Trigger::Reply229,
            Announced::Port(NonZeroU16::new(6446).unwrap()),
        );
        assert_eq!(
            epsv,
            Ok("tcp 2001:db8:100::2 -> [2001:db8:113::2]:6446".into())
        );
    }

    #[test]
    fn strict_refuses_third_parties_and_loose_trusts_them() {
        let bounce = at("192.0.2.99", 50000);
        assert_eq!(
            strict(&control_v4(), Trigger::Port, bounce),
            Err(Reason::Bounce)
        );
        assert_eq!(
            strict(&control_v4(), Trigger::Reply227, bounce),
            Err(Reason::Hijack)
        );
        assert_eq!(
            strict(&control_v4(), Trigger::Reply228, bounce),
            Err(Reason::Hijack)
        );
        let trusted = loose(&control_v4(), Trigger::Reply227, bounce);
        assert_eq!(trusted, Ok("tcp 198.51.100.2 -> 192.0.2.99:50000".into()));
    }

    #[test]
    fn family_must_match_the_control_connection() {
        let v6_on_v4 = strict(&control_v4(), Trigger::Eprt, at("2001:db8:100::2", 50000));
        assert_eq!(v6_on_v4, Err(Reason::FamilyMismatch));
        let v4_on_v6 = loose(&control_v6(), Trigger::Port, at("198.51.100.2", 50000));
        assert_eq!(v4_on_v6, Err(Reason::FamilyMismatch));
        let mapped = strict(
            &control_v6(),
            Trigger::Eprt,
            at("::ffff:198.51.100.2", 50000),
        );
        assert_eq!(
            mapped,
            Err(Reason::Bounce),
            "an IPv4-mapped address is not the client"
        );
    }

    #[test]
    fn privileged_ports_unless_allowed() {
        let port_25 = at("198.51.100.2", 25);
        assert_eq!(
            strict(&control_v4(), Trigger::Port, port_25),
            Err(Reason::PrivilegedPort)
        );
        assert!(strict(&control_v4(), Trigger::Port, at("198.51.100.2", 1024)).is_ok());
        let config = Config {
            allow_privileged_ports: true,
            ..Config::default()
        };
        assert!(judge(&config, &control_v4(), Trigger::Port, port_25).is_ok());
    }

    #[test]
    fn unusable_addresses_even_when_loose() {
        for addr in ["0.0.0.0", "224.0.0.1", "255.255.255.255"] {
            assert_eq!(
                loose(&control_v4(), Trigger::Reply227, at(addr, 50000)),
                Err(Reason::UnusableAddress)
            );
        }
        assert_eq!(
            loose(&control_v6(), Trigger::Eprt, at("ff02::1", 50000)),
            Err(Reason::UnusableAddress)
        );
    }

    #[test]
    fn reason_names() {
        assert_eq!(
            Reason::Malformed(Error::Malformed("port")).to_string(),
            "malformed (malformed port)"
        );
        assert_eq!(Reason::Malformed(Error::Overlong).as_str(), "overlong");
        assert_eq!(Reason::from(session::Refusal::EpsvAll), Reason::EpsvAll);
    }
}
