//! [`Conversation`]: a scripted TCP conversation between an FTP client and server, as IP
//! datagrams with consistent sequence and acknowledgement numbers and a controlled clock.
//!
//! Pure: builds bytes with etherparse's `PacketBuilder`. Lets tests split, reorder, duplicate
//! and lose segments on purpose.

use std::net::IpAddr;
use std::net::SocketAddr;

use etherparse::PacketBuilder;

use crate::time::Duration;
use crate::time::Instant;

/// Which end sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The FTP client (sends the SYN).
    Client,
    /// The FTP server.
    Server,
}

/// TCP flags for [`tcp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flags {
    /// SYN.
    pub syn: bool,
    /// FIN.
    pub fin: bool,
    /// RST.
    pub rst: bool,
    /// PSH.
    pub psh: bool,
}

/// One datagram with its time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// When it is seen.
    pub time: Instant,
    /// The IP datagram.
    pub bytes: Vec<u8>,
}

/// A scripted conversation.
#[derive(Debug, Clone)]
pub struct Conversation {
    ends: [SocketAddr; 2],
    next: [u32; 2],
    time: Instant,
    step: Duration,
    packets: Vec<Packet>,
}

impl Conversation {
    /// A conversation between `client` and `server`, with fixed initial sequence numbers
    /// (client 1000, server 5000), starting at time 1 s and advancing 1 ms per packet.
    pub fn new(client: SocketAddr, server: SocketAddr) -> Self {
        Self {
            ends: [client, server],
            next: [1000, 5000],
            time: Instant::from_micros(1_000_000),
            step: Duration::from_millis(1),
            packets: Vec::new(),
        }
    }

    /// Use other initial sequence numbers (to test wrap-around).
    pub fn with_isns(mut self, client: u32, server: u32) -> Self {
        self.next = [client, server];
        self
    }

    /// Start at another time.
    pub fn starting_at(mut self, time: Instant) -> Self {
        self.time = time;
        self
    }

    /// SYN, SYN-ACK, ACK.
    pub fn handshake(&mut self) -> &mut Self {
        let syn = Flags {
            syn: true,
            ..Flags::default()
        };
        let (c, s) = (self.ends[0], self.ends[1]);
        self.emit(tcp(c, s, self.next[0], None, syn, b""));
        self.next[0] = self.next[0].wrapping_add(1);
        self.emit(tcp(s, c, self.next[1], Some(self.next[0]), syn, b""));
        self.next[1] = self.next[1].wrapping_add(1);
        self.emit(tcp(
            c,
            s,
            self.next[0],
            Some(self.next[1]),
            Flags::default(),
            b"",
        ));
        self
    }

    /// Handshake, the server's greeting, and a login (`USER`/`331`/`PASS`/`230`): a session
    /// that has proven to be FTP and is ready for commands.
    pub fn login(&mut self) -> &mut Self {
        self.handshake()
            .send(Side::Server, b"220 (vsFTPd 3.0.3)\r\n")
            .send(Side::Client, b"USER ftpalglab\r\n")
            .send(Side::Server, b"331 Please specify the password.\r\n")
            .send(Side::Client, b"PASS labpass\r\n")
            .send(Side::Server, b"230 Login successful.\r\n")
    }

    /// `side` sends `data` in one segment.
    pub fn send(&mut self, side: Side, data: &[u8]) -> &mut Self {
        self.send_split(side, data, &[])
    }

    /// `side` sends `data` cut at the given offsets (one segment per piece).
    pub fn send_split(&mut self, side: Side, data: &[u8], cuts: &[usize]) -> &mut Self {
        let mut start = 0;
        for &end in cuts.iter().chain([data.len()].iter()) {
            let end = end.clamp(start, data.len());
            if end > start {
                let bytes = self.segment_at(side, 0, &data[start..end]);
                self.emit(bytes);
                self.advance(side, end - start);
            }
            start = end;
        }
        self
    }

    /// A segment from `side` carrying `data` at `offset` bytes past the next sequence number
    /// (negative offsets retransmit), without recording or advancing anything.
    pub fn segment_at(&self, side: Side, offset: i64, data: &[u8]) -> Vec<u8> {
        let (from, to) = self.pair(side);
        let seq = (i64::from(self.next[from]) + offset).rem_euclid(1 << 32) as u32;
        let flags = Flags {
            psh: true,
            ..Flags::default()
        };
        tcp(
            self.ends[from],
            self.ends[to],
            seq,
            Some(self.next[to]),
            flags,
            data,
        )
    }

    /// Move `side`'s sequence number forward by `n` without sending (bytes lost before us).
    pub fn advance(&mut self, side: Side, n: usize) -> &mut Self {
        let index = self.pair(side).0;
        self.next[index] = self.next[index].wrapping_add(n as u32);
        self
    }

    /// `side` sends a bare ACK.
    pub fn ack(&mut self, side: Side) -> &mut Self {
        self.bare(side, Flags::default(), 0)
    }

    /// `side` sends a FIN.
    pub fn fin(&mut self, side: Side) -> &mut Self {
        self.bare(
            side,
            Flags {
                fin: true,
                ..Flags::default()
            },
            1,
        )
    }

    /// `side` sends a RST at its next sequence number.
    pub fn rst(&mut self, side: Side) -> &mut Self {
        self.bare(
            side,
            Flags {
                rst: true,
                ..Flags::default()
            },
            0,
        )
    }

    /// Record an arbitrary datagram at the current time.
    pub fn emit(&mut self, bytes: Vec<u8>) -> &mut Self {
        self.packets.push(Packet {
            time: self.time,
            bytes,
        });
        self.time = self.time + self.step;
        self
    }

    /// Let `duration` pass.
    pub fn wait(&mut self, duration: Duration) -> &mut Self {
        self.time = self.time + duration;
        self
    }

    /// The time the next packet will carry.
    pub fn now(&self) -> Instant {
        self.time
    }

    /// The client's and server's addresses.
    pub fn ends(&self) -> (SocketAddr, SocketAddr) {
        (self.ends[0], self.ends[1])
    }

    /// The packets recorded so far.
    pub fn packets(&self) -> &[Packet] {
        &self.packets
    }

    /// Take the packets recorded so far.
    pub fn take_packets(&mut self) -> Vec<Packet> {
        std::mem::take(&mut self.packets)
    }

    /// A segment without payload from `side`, which consumes `seq_used` sequence numbers.
    fn bare(&mut self, side: Side, flags: Flags, seq_used: u32) -> &mut Self {
        let (from, to) = self.pair(side);
        let bytes = tcp(
            self.ends[from],
            self.ends[to],
            self.next[from],
            Some(self.next[to]),
            flags,
            b"",
        );
        self.next[from] = self.next[from].wrapping_add(seq_used);
        self.emit(bytes)
    }

    fn pair(&self, side: Side) -> (usize, usize) {
        match side {
            Side::Client => (0, 1),
            Side::Server => (1, 0),
        }
    }
}

/// A session of `client` (an `address:port` literal) with the FTP server 203.0.113.2:21,
/// past its handshake, greeting and login ([`Conversation::login`]).
pub fn logged_in(client: &str) -> Conversation {
    // NOTE(unwrap): a test helper; callers pass literal addresses.
    let client: SocketAddr = client.parse().expect("a socket address literal");
    let server = SocketAddr::from(([203, 0, 113, 2], 21));
    let mut c = Conversation::new(client, server);
    c.login();
    c
}

/// A data connection's opening SYN from `src` to `dst`.
pub fn syn(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    tcp(
        src,
        dst,
        77,
        None,
        Flags {
            syn: true,
            ..Flags::default()
        },
        b"",
    )
}

/// One TCP segment in an IPv4 or IPv6 datagram (both addresses must be of one family).
pub fn tcp(
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    ack: Option<u32>,
    flags: Flags,
    payload: &[u8],
) -> Vec<u8> {
    let ip = match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => PacketBuilder::ipv4(s.octets(), d.octets(), 64),
        (IpAddr::V6(s), IpAddr::V6(d)) => PacketBuilder::ipv6(s.octets(), d.octets(), 64),
        _ => panic!("testkit::tcp: mixed address families {src} {dst}"),
    };
    let mut builder = ip.tcp(src.port(), dst.port(), seq, 64240);
    if let Some(ack) = ack {
        builder = builder.ack(ack);
    }
    if flags.syn {
        builder = builder.syn();
    }
    if flags.fin {
        builder = builder.fin();
    }
    if flags.rst {
        builder = builder.rst();
    }
    if flags.psh {
        builder = builder.psh();
    }
    let mut out = Vec::with_capacity(builder.size(payload.len()));
    // NOTE(unwrap): writing to a Vec cannot fail, and test payloads are far below 64 KiB.
    builder.write(&mut out, payload).expect("in-memory packet");
    out
}
