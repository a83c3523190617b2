//! The structured input of the `engine` target: a [`Setup`] and a script of [`Step`]s, decoded
//! from the fuzzer's bytes with `arbitrary`, and the plausible FTP lines they send.
//!
//! Owns: the vocabulary of the script and rendering a [`Line`] as bytes. Lines are the ones
//! that move an FTP session (login, PASV/EPSV/PORT/EPRT and their answers, transfers, AUTH TLS,
//! REIN, QUIT) with arbitrary numbers, and raw bytes; an announcement can name the sender's own
//! address (so that the policy accepts it and a pinhole opens) or any other.

use std::net::IpAddr;
use std::net::Ipv4Addr;
use std::net::Ipv6Addr;

use arbitrary::Arbitrary;

/// How the engine is configured.
#[derive(Debug, Arbitrary)]
pub(super) struct Setup {
    pub(super) nat: NatChoice,
    pub(super) v6: bool,
    pub(super) loose: bool,
    pub(super) no_pickup: bool,
    pub(super) verify_checksums: bool,
    pub(super) drop_unjudged: bool,
    pub(super) per_control: u8,
    pub(super) per_client: u8,
    pub(super) total: u8,
    pub(super) max_flows: u8,
    pub(super) small_lines: bool,
    pub(super) hold_bytes: u16,
    pub(super) isns: (u32, u32),
}

/// Which end of the control connection is behind the gateway's NAT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Arbitrary)]
pub(super) enum NatChoice {
    Off,
    Client,
    Server,
    Both,
}

/// One of two control connections (the second from another client port).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Arbitrary)]
pub(super) enum Conn {
    First,
    Second,
}

/// Which end acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Arbitrary)]
pub(super) enum End {
    Client,
    Server,
}

/// One step of the script.
#[derive(Debug, Arbitrary)]
pub(super) enum Step {
    /// SYN, SYN-ACK, ACK.
    Handshake(Conn),
    /// A line, cut into segments at the given points.
    Send {
        conn: Conn,
        end: End,
        line: Line,
        cuts: Vec<u8>,
    },
    /// Raw bytes in one segment.
    Raw {
        conn: Conn,
        end: End,
        bytes: Vec<u8>,
    },
    /// The last `back` bytes sent (at most `len` of them) again.
    Retransmit {
        conn: Conn,
        end: End,
        back: u16,
        len: u16,
    },
    /// Bytes sent `skip` bytes ahead of the next sequence number (a hole before them).
    Ahead {
        conn: Conn,
        end: End,
        skip: u16,
        bytes: Vec<u8>,
    },
    /// Bytes lost before the gateway saw them: the sequence number moves on.
    Lose {
        conn: Conn,
        end: End,
        n: u16,
    },
    /// A bare ACK, a FIN or a RST.
    Ack(Conn, End),
    Fin(Conn, End),
    Rst(Conn, End),
    /// The network: deliver, duplicate, drop or damage a packet in flight, or deliver all.
    Deliver(u8),
    Duplicate(u8),
    Drop(u8),
    Damage {
        packet: u8,
        at: u16,
        xor: u8,
    },
    Flush,
    /// Time passes, then the engine's timers run.
    Wait(u16),
    WaitLong(u8),
    /// The shell could not install what the last packet announced.
    InstallError,
    /// The daemon stops (held packets released, state saved) and starts again.
    Restart,
}

/// A plausible FTP line.
#[derive(Debug, Arbitrary)]
pub(super) enum Line {
    User,
    Pass,
    Pasv,
    Epsv,
    EpsvAll,
    Port { addr: Addr, port: u16 },
    Eprt { addr: Addr, port: u16, upper: bool },
    Retr,
    List,
    Stor,
    AuthTls,
    Ccc,
    Rein,
    Quit,
    Noop,
    Reply(Code),
    Reply227 { addr: Addr, port: u16, bare: bool },
    Reply229 { port: u16 },
    Multiline227 { addr: Addr, port: u16 },
    Custom(Vec<u8>),
}

/// An address in an announcement: the sender's own, or another.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub(super) enum Addr {
    Own,
    V4([u8; 4]),
    V6([u8; 16]),
}

/// Reply codes without an endpoint.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub(super) enum Code {
    Ready220,
    Opening150,
    Done226,
    Ok200,
    Tls234,
    Password331,
    LoggedIn230,
    Bye221,
    Closing421,
    CantOpen425,
    Unknown500,
}

impl Line {
    /// The line's bytes, terminated by CRLF; `own` is the sender's address.
    pub(super) fn render(&self, own: IpAddr) -> Vec<u8> {
        let text = match self {
            Self::User => "USER ftp".to_owned(),
            Self::Pass => "PASS secret".to_owned(),
            Self::Pasv => "PASV".to_owned(),
            Self::Epsv => "EPSV".to_owned(),
            Self::EpsvAll => "EPSV ALL".to_owned(),
            Self::Port { addr, port } => format!("PORT {}", numbers(addr.resolve(own), *port)),
            Self::Eprt { addr, port, upper } => {
                let addr = addr.resolve(own);
                let family = if addr.is_ipv4() { 1 } else { 2 };
                let verb = if *upper { "EPRT" } else { "eprt" };
                format!("{verb} |{family}|{addr}|{port}|")
            }
            Self::Retr => "RETR file".to_owned(),
            Self::List => "LIST".to_owned(),
            Self::Stor => "STOR file".to_owned(),
            Self::AuthTls => "AUTH TLS".to_owned(),
            Self::Ccc => "CCC".to_owned(),
            Self::Rein => "REIN".to_owned(),
            Self::Quit => "QUIT".to_owned(),
            Self::Noop => "NOOP".to_owned(),
            Self::Reply(code) => code.text().to_owned(),
            Self::Reply227 { addr, port, bare } => {
                let numbers = numbers(addr.resolve(own), *port);
                if *bare {
                    format!("227 ={numbers}")
                } else {
                    format!("227 Entering Passive Mode ({numbers}).")
                }
            }
            Self::Reply229 { port } => format!("229 Entering Extended Passive Mode (|||{port}|)"),
            Self::Multiline227 { addr, port } => format!(
                "227-Entering Passive Mode\r\n227-({})\r\n227 Done.",
                numbers(addr.resolve(own), *port)
            ),
            Self::Custom(bytes) => {
                let mut out = bytes.clone();
                out.truncate(1400);
                return out;
            }
        };
        let mut out = text.into_bytes();
        out.extend_from_slice(b"\r\n");
        out
    }
}

impl Addr {
    fn resolve(self, own: IpAddr) -> IpAddr {
        match self {
            Self::Own => own,
            Self::V4(a) => IpAddr::V4(Ipv4Addr::from(a)),
            Self::V6(a) => IpAddr::V6(Ipv6Addr::from(a)),
        }
    }
}

impl Code {
    fn text(self) -> &'static str {
        match self {
            Self::Ready220 => "220 (vsFTPd 3.0.3)",
            Self::Opening150 => "150 Opening BINARY mode data connection.",
            Self::Done226 => "226 Transfer complete.",
            Self::Ok200 => "200 PORT command successful.",
            Self::Tls234 => "234 Proceed with negotiation.",
            Self::Password331 => "331 Please specify the password.",
            Self::LoggedIn230 => "230 Login successful.",
            Self::Bye221 => "221 Goodbye.",
            Self::Closing421 => "421 Timeout.",
            Self::CantOpen425 => "425 Can't open data connection.",
            Self::Unknown500 => "500 Unknown command.",
        }
    }
}

/// `h1,h2,h3,h4,p1,p2` for an IPv4 address (an IPv6 one gives its last four bytes).
fn numbers(addr: IpAddr, port: u16) -> String {
    let [a, b, c, d] = match addr {
        IpAddr::V4(v4) => v4.octets(),
        IpAddr::V6(v6) => {
            let o = v6.octets();
            [o[12], o[13], o[14], o[15]]
        }
    };
    format!("{a},{b},{c},{d},{},{}", port >> 8, port & 0xff)
}
