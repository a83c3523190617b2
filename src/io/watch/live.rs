//! The live frame source of `watch`: an AF_PACKET socket on one interface, through
//! `pnet_datalink`.
//!
//! Owns: finding the interface, telling its link layer from the kernel's ARPHRD type
//! (`/sys/class/net/IF/type`), opening the socket (promiscuous, like tcpdump; it sees both
//! directions), the wall clock that stamps each frame, and the read timeout that gives the
//! loop its idle ticks. Nothing is sent and no firewall state is touched. Does not own what a
//! frame means (the capture code strips the link layer; the engine reads the rest).

use std::fmt;
use std::time::SystemTime;

use pnet_datalink::Channel;
use pnet_datalink::DataLinkReceiver;

use super::Frames;
use super::Next;
use crate::io::capture::LinkType;
use crate::io::capture::MAX_PACKET;
use crate::time::Instant;

/// How long a read waits before the loop gets an idle tick (expiry, signals, `--duration`).
pub const TICK: std::time::Duration = std::time::Duration::from_millis(200);

/// An interface being watched.
pub struct Interface {
    name: String,
    link: LinkType,
    rx: Box<dyn DataLinkReceiver>,
}

/// Why an interface cannot be watched.
#[derive(Debug)]
pub enum Error {
    /// No interface has this name (the names that exist follow).
    NoSuchInterface(String, Vec<String>),
    /// Its link layer is not one we can strip (the ARPHRD number).
    UnsupportedLink(String, u32),
    /// The socket could not be opened (usually: not root and no CAP_NET_RAW).
    Open(String, std::io::Error),
}

impl Interface {
    /// Open an AF_PACKET socket on the interface called `name`.
    pub fn open(name: &str) -> Result<Self, Error> {
        let all = pnet_datalink::interfaces();
        let Some(interface) = all.iter().find(|i| i.name == name) else {
            let names = all.into_iter().map(|i| i.name).collect();
            return Err(Error::NoSuchInterface(name.to_owned(), names));
        };
        let arphrd = std::fs::read_to_string(format!("/sys/class/net/{name}/type"))
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(u32::MAX);
        let link = link_type(arphrd).ok_or_else(|| Error::UnsupportedLink(name.into(), arphrd))?;
        let config = pnet_datalink::Config {
            // Whole frames: a GRO super-segment is up to 64 KiB; the capture code's bound.
            read_buffer_size: MAX_PACKET as usize,
            write_buffer_size: 0,
            read_timeout: Some(TICK),
            ..pnet_datalink::Config::default()
        };
        match pnet_datalink::channel(interface, config) {
            Ok(Channel::Ethernet(_tx, rx)) => Ok(Self {
                name: name.to_owned(),
                link,
                rx,
            }),
            Ok(_) => Err(Error::Open(
                name.to_owned(),
                std::io::Error::other("not a datalink channel"),
            )),
            Err(error) => Err(Error::Open(name.to_owned(), error)),
        }
    }
}

impl Frames for Interface {
    fn name(&self) -> &str {
        &self.name
    }

    fn link(&self) -> LinkType {
        self.link
    }

    fn next(&mut self) -> std::io::Result<Next<'_>> {
        use std::io::ErrorKind;
        match self.rx.next() {
            Ok(frame) => Ok(Next::Frame(now(), frame)),
            Err(error)
                if matches!(
                    error.kind(),
                    ErrorKind::TimedOut | ErrorKind::Interrupted | ErrorKind::WouldBlock
                ) =>
            {
                Ok(Next::Idle(now()))
            }
            Err(error) => Err(error),
        }
    }
}

/// The link layer AF_PACKET gives for an ARPHRD type: Ethernet headers on Ethernet, veth,
/// bridges and loopback (an all-zero Ethernet header); no header at all on IP tunnels, tun
/// and WireGuard (`ARPHRD_NONE`). `None` for anything else.
pub const fn link_type(arphrd: u32) -> Option<LinkType> {
    const ETHER: u32 = 1;
    const TUNNEL: u32 = 768;
    const TUNNEL6: u32 = 769;
    const LOOPBACK: u32 = 772;
    const SIT: u32 = 776;
    const IPGRE: u32 = 778;
    const NONE: u32 = 0xfffe;
    match arphrd {
        ETHER | LOOPBACK => Some(LinkType::Ethernet),
        TUNNEL | TUNNEL6 | SIT | IPGRE | NONE => Some(LinkType::Raw),
        _ => None,
    }
}

/// The wall clock in microseconds since the Unix epoch, as capture timestamps are (a clock
/// set backwards reads as the last time seen: replay never goes back).
fn now() -> Instant {
    let since = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    Instant::from_micros(u64::try_from(since.as_micros()).unwrap_or(u64::MAX))
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSuchInterface(name, names) => write!(
                f,
                "no interface called {name:?} (there are: {})",
                names.join(", ")
            ),
            Self::UnsupportedLink(name, arphrd) => write!(
                f,
                "{name}: link type (ARPHRD {arphrd}) not supported; watch reads Ethernet, \
                 loopback and IP-tunnel (no link header) interfaces"
            ),
            Self::Open(name, error) => write!(
                f,
                "cannot capture on {name}: {error} (watch needs root or CAP_NET_RAW)"
            ),
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_types_by_arphrd() {
        assert_eq!(link_type(1), Some(LinkType::Ethernet));
        assert_eq!(link_type(772), Some(LinkType::Ethernet));
        assert_eq!(link_type(65534), Some(LinkType::Raw));
        assert_eq!(link_type(778), Some(LinkType::Raw));
        assert_eq!(link_type(801), None, "802.11 radiotap is not supported");
        assert_eq!(link_type(u32::MAX), None);
    }

    #[test]
    fn a_missing_interface_is_named() {
        let Err(error) = Interface::open("no-such-if0") else {
            panic!("opened a missing interface");
        };
        let text = error.to_string();
        assert!(
            text.starts_with("no interface called \"no-such-if0\""),
            "{text}"
        );
        assert!(text.contains("lo"), "{text}");
    }
}
