//! Writes a large, realistic and deterministic FTP capture for the benchmarks
//! (docs/benchmarks.md): many interleaved control sessions with their data connections, plus
//! traffic that is not FTP.
//!
//! ```text
//! cargo run --release --example gen_capture -- --sessions N --out FILE
//!     [--seed S] [--concurrency C] [--snaplen BYTES]
//! ```
//!
//! Owns: the session script (handshake, greeting, login, 1-5 transfers in PASV, EPSV, PORT or
//! EPRT mode with RETR, LIST or STOR, QUIT, FINs), the data connections each transfer opens
//! (handshake, 1-8 full-size segments, ACKs, FINs), realistic segmentation (a line cut into 2
//! or 3 segments, sometimes delivered out of order), retransmitted segments, and noise (DNS
//! over UDP, HTTPS-like TCP flows, ICMP echo). 10% of sessions are IPv6 (EPSV/EPRT only).
//! Sessions run `--concurrency` at a time (default 200 per second of capture time), so their
//! packets interleave as on a busy gateway. The output is an Ethernet pcap; the same seed
//! always writes the same bytes. Memory is bounded by one window of concurrent sessions, so
//! any number of sessions can be written.
//!
//! It prints one line of counts (`sessions= transfers= packets= ...`); every transfer's data
//! connection is announced in a form the strict policy accepts, so `ftp-alg replay` must admit
//! exactly `transfers` data connections (`make bench` checks this).

use std::io::BufWriter;
use std::io::Write;
use std::net::IpAddr;
use std::net::Ipv4Addr;
use std::net::Ipv6Addr;
use std::net::SocketAddr;
use std::path::PathBuf;

use etherparse::PacketBuilder;
use ftp_alg::testkit::conversation::Conversation;
use ftp_alg::testkit::conversation::Flags;
use ftp_alg::testkit::conversation::Packet;
use ftp_alg::testkit::conversation::Side;
use ftp_alg::testkit::conversation::tcp;
use ftp_alg::time::Duration;
use ftp_alg::time::Instant;

fn main() -> std::io::Result<()> {
    let options = Options::parse();
    let file = std::fs::File::create(&options.out)?;
    let mut out = PcapOut::new(BufWriter::with_capacity(1 << 20, file), options.snaplen)?;
    let mut rng = Rng(options.seed);
    let mut counts = Counts::default();
    let mut window_start = Instant::from_micros(1_700_000_000_000_000);
    let mut next = 0;
    while next < options.sessions {
        let end = (next + options.concurrency).min(options.sessions);
        let mut packets = Vec::new();
        for index in next..end {
            let start = window_start + Duration::from_micros(rng.below(1_000_000));
            packets.extend(session(&mut rng, index, start, &mut counts));
            packets.extend(noise(&mut rng, index, start, &mut counts));
        }
        packets.sort_by_key(|p| p.time);
        let last = packets.last().map_or(window_start, |p| p.time);
        for packet in &packets {
            out.packet(packet)?;
        }
        counts.packets += packets.len() as u64;
        window_start = last + Duration::from_millis(1);
        next = end;
    }
    out.finish()?;
    println!(
        "sessions={} transfers={} pasv={} epsv={} port={} eprt={} packets={} control_packets={} noise_packets={} bytes={} seed={}",
        options.sessions,
        counts.transfers,
        counts.modes[0],
        counts.modes[1],
        counts.modes[2],
        counts.modes[3],
        counts.packets,
        counts.control_packets,
        counts.noise_packets,
        out.bytes,
        options.seed
    );
    Ok(())
}

/// Command-line options.
struct Options {
    sessions: usize,
    out: PathBuf,
    seed: u64,
    concurrency: usize,
    snaplen: usize,
}

impl Options {
    fn parse() -> Self {
        let mut options = Self {
            sessions: 1000,
            out: PathBuf::from("capture.pcap"),
            seed: 1,
            concurrency: 200,
            snaplen: 0,
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value = || {
                args.next()
                    .unwrap_or_else(|| usage(&format!("{arg} needs a value")))
            };
            match arg.as_str() {
                "--sessions" => options.sessions = number(&value()),
                "--out" => options.out = PathBuf::from(value()),
                "--seed" => options.seed = number(&value()) as u64,
                "--concurrency" => options.concurrency = number(&value()).max(1),
                "--snaplen" => options.snaplen = number(&value()),
                _ => usage(&format!("unknown argument {arg}")),
            }
        }
        options
    }
}

fn number(text: &str) -> usize {
    text.replace('_', "")
        .parse()
        .unwrap_or_else(|_| usage(&format!("not a number: {text}")))
}

fn usage(message: &str) -> ! {
    eprintln!("gen_capture: {message}");
    eprintln!(
        "usage: gen_capture --sessions N --out FILE [--seed S] [--concurrency C] [--snaplen BYTES]"
    );
    std::process::exit(2)
}

/// What was written.
#[derive(Default)]
struct Counts {
    transfers: u64,
    /// PASV, EPSV, PORT, EPRT.
    modes: [u64; 4],
    packets: u64,
    control_packets: u64,
    noise_packets: u64,
}

/// splitmix64: small, fast, and the same sequence everywhere for a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True with probability `percent` / 100.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn u32(&mut self) -> u32 {
        self.next() as u32
    }
}

/// The four ways to announce a data connection.
#[derive(Clone, Copy)]
enum Mode {
    Pasv,
    Epsv,
    Port,
    Eprt,
}

/// One control session (and its data connections), starting at `start`.
fn session(rng: &mut Rng, index: usize, start: Instant, counts: &mut Counts) -> Vec<Packet> {
    let v6 = rng.chance(10);
    let (client, server) = endpoints(rng, index, v6);
    let mut c = Conversation::new(client, server)
        .with_isns(rng.u32(), rng.u32())
        .starting_at(start);
    let mut data = Vec::new();
    c.handshake();
    say(rng, &mut c, Side::Server, b"220 (vsFTPd 3.0.3)\r\n");
    say(rng, &mut c, Side::Client, b"USER ftpalglab\r\n");
    say(
        rng,
        &mut c,
        Side::Server,
        b"331 Please specify the password.\r\n",
    );
    say(rng, &mut c, Side::Client, b"PASS labpass\r\n");
    if rng.chance(30) {
        let banner =
            b"230-Welcome to the benchmark server.\r\n230-Be nice.\r\n230 Login successful.\r\n";
        say(rng, &mut c, Side::Server, banner);
    } else {
        say(rng, &mut c, Side::Server, b"230 Login successful.\r\n");
    }
    say(rng, &mut c, Side::Client, b"SYST\r\n");
    say(rng, &mut c, Side::Server, b"215 UNIX Type: L8\r\n");
    say(rng, &mut c, Side::Client, b"TYPE I\r\n");
    say(
        rng,
        &mut c,
        Side::Server,
        b"200 Switching to Binary mode.\r\n",
    );
    for n in 0..1 + rng.below(5) {
        transfer(rng, &mut c, v6, n, &mut data, counts);
    }
    say(rng, &mut c, Side::Client, b"QUIT\r\n");
    say(rng, &mut c, Side::Server, b"221 Goodbye.\r\n");
    c.fin(Side::Server)
        .ack(Side::Client)
        .fin(Side::Client)
        .ack(Side::Server);
    let mut packets = c.take_packets();
    counts.control_packets += packets.len() as u64;
    packets.append(&mut data);
    packets
}

/// Client and server of session `index`: distinct client address and port per session.
fn endpoints(rng: &mut Rng, index: usize, v6: bool) -> (SocketAddr, SocketAddr) {
    let host = (2 + index % 250) as u8;
    let port = 1024 + ((index / 250) % 64_000) as u16;
    let server = 2 + rng.below(8) as u8;
    if v6 {
        let client = Ipv6Addr::new(0x2001, 0xdb8, 0x100, 0, 0, 0, 0, u16::from(host));
        let server = Ipv6Addr::new(0x2001, 0xdb8, 0x113, 0, 0, 0, 0, u16::from(server));
        (
            SocketAddr::new(client.into(), port),
            SocketAddr::new(server.into(), 21),
        )
    } else {
        let net = if index % 2 == 0 {
            [198, 51, 100]
        } else {
            [192, 0, 2]
        };
        let client = Ipv4Addr::new(net[0], net[1], net[2], host);
        (
            SocketAddr::new(client.into(), port),
            SocketAddr::new(Ipv4Addr::new(203, 0, 113, server).into(), 21),
        )
    }
}

/// `side` sends one or more lines: usually one segment; sometimes cut in two or three (and
/// the pieces sometimes out of order); sometimes retransmitted. The peer acknowledges.
fn say(rng: &mut Rng, c: &mut Conversation, side: Side, text: &[u8]) {
    let roll = rng.below(100);
    if roll < 8 && text.len() > 4 {
        let first = 1 + rng.below(text.len() as u64 - 2) as usize;
        if roll < 2 {
            // The second piece overtakes the first.
            let later = c.segment_at(side, first as i64, &text[first..]);
            let earlier = c.segment_at(side, 0, &text[..first]);
            c.emit(later).emit(earlier).advance(side, text.len());
        } else if roll < 5 && first + 2 < text.len() {
            let second = first + 1 + rng.below((text.len() - first - 1) as u64) as usize;
            c.send_split(side, text, &[first, second]);
        } else {
            c.send_split(side, text, &[first]);
        }
    } else {
        c.send(side, text);
        if roll >= 97 {
            let again = c.segment_at(side, -(text.len() as i64), text);
            c.emit(again);
        }
    }
    if rng.chance(60) {
        c.ack(other(side));
    }
}

fn other(side: Side) -> Side {
    match side {
        Side::Client => Side::Server,
        Side::Server => Side::Client,
    }
}

/// One announced data connection and the transfer over it.
fn transfer(
    rng: &mut Rng,
    c: &mut Conversation,
    v6: bool,
    n: u64,
    data: &mut Vec<Packet>,
    counts: &mut Counts,
) {
    let mode = match (v6, rng.below(100)) {
        (true, r) if r < 60 => Mode::Epsv,
        (true, _) => Mode::Eprt,
        (false, r) if r < 40 => Mode::Pasv,
        (false, r) if r < 60 => Mode::Epsv,
        (false, r) if r < 85 => Mode::Port,
        (false, _) => Mode::Eprt,
    };
    counts.transfers += 1;
    counts.modes[mode as usize] += 1;
    let (client, server) = c.ends();
    let port = 1024 + rng.below(64_000) as u16;
    let (opener, acceptor) = match mode {
        Mode::Pasv | Mode::Epsv => (
            SocketAddr::new(client.ip(), 1024 + rng.below(64_000) as u16),
            SocketAddr::new(server.ip(), port),
        ),
        Mode::Port | Mode::Eprt => (
            SocketAddr::new(server.ip(), 20),
            SocketAddr::new(client.ip(), port),
        ),
    };
    let (command, reply) = announcement(mode, client.ip(), server.ip(), port);
    say(rng, c, Side::Client, command.as_bytes());
    say(rng, c, Side::Server, reply.as_bytes());
    let verb = match rng.below(10) {
        0..=5 => format!("RETR file{n}.bin\r\n"),
        6..=8 => "LIST\r\n".to_string(),
        _ => format!("STOR upload{n}.bin\r\n"),
    };
    let passive = matches!(mode, Mode::Pasv | Mode::Epsv);
    let download = !verb.starts_with("STOR");
    let segments = if verb.starts_with("LIST") {
        1 + rng.below(2)
    } else {
        1 + rng.below(8)
    };
    if passive {
        // Clients connect as soon as the 227/229 arrives, before the command.
        let packets = data_connection(
            rng,
            c.now(),
            opener,
            acceptor,
            passive == download,
            segments,
        );
        say(rng, c, Side::Client, verb.as_bytes());
        say(
            rng,
            c,
            Side::Server,
            b"150 Opening BINARY mode data connection.\r\n",
        );
        finish_data(c, packets, data);
    } else {
        say(rng, c, Side::Client, verb.as_bytes());
        let packets = data_connection(
            rng,
            c.now(),
            opener,
            acceptor,
            passive == download,
            segments,
        );
        say(
            rng,
            c,
            Side::Server,
            b"150 Opening BINARY mode data connection.\r\n",
        );
        finish_data(c, packets, data);
    }
    say(rng, c, Side::Server, b"226 Transfer complete.\r\n");
}

/// The data connection's packets join the output; the control connection waits until it
/// is done.
fn finish_data(c: &mut Conversation, mut packets: Vec<Packet>, data: &mut Vec<Packet>) {
    if let Some(last) = packets.last() {
        let done = last.time.saturating_since(c.now());
        c.wait(done);
    }
    data.append(&mut packets);
}

/// The command and reply that announce `port` in `mode`.
fn announcement(mode: Mode, client: IpAddr, server: IpAddr, port: u16) -> (String, String) {
    let (hi, lo) = (port >> 8, port & 0xff);
    let dotted = |ip: IpAddr| match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{},{},{},{}", o[0], o[1], o[2], o[3])
        }
        IpAddr::V6(_) => unreachable!("PASV and PORT are IPv4 only here"),
    };
    let family = |ip: IpAddr| if ip.is_ipv4() { 1 } else { 2 };
    match mode {
        Mode::Pasv => (
            "PASV\r\n".into(),
            format!(
                "227 Entering Passive Mode ({},{hi},{lo}).\r\n",
                dotted(server)
            ),
        ),
        Mode::Epsv => (
            "EPSV\r\n".into(),
            format!("229 Entering Extended Passive Mode (|||{port}|)\r\n"),
        ),
        Mode::Port => (
            format!("PORT {},{hi},{lo}\r\n", dotted(client)),
            "200 PORT command successful. Consider using PASV.\r\n".into(),
        ),
        Mode::Eprt => (
            format!("EPRT |{}|{client}|{port}|\r\n", family(client)),
            "200 EPRT command successful. Consider using EPSV.\r\n".into(),
        ),
    }
}

/// A data connection from `opener` to `acceptor`: handshake, `segments` full-size segments
/// (the last one shorter) from the acceptor if `acceptor_sends`, else from the opener, an ACK
/// every second segment, FINs.
fn data_connection(
    rng: &mut Rng,
    start: Instant,
    opener: SocketAddr,
    acceptor: SocketAddr,
    acceptor_sends: bool,
    segments: u64,
) -> Vec<Packet> {
    const PAYLOAD: [u8; 1448] = [0x5a; 1448];
    let mut d = Conversation::new(opener, acceptor)
        .with_isns(rng.u32(), rng.u32())
        .starting_at(start);
    let (sender, receiver) = if acceptor_sends {
        (Side::Server, Side::Client)
    } else {
        (Side::Client, Side::Server)
    };
    d.handshake();
    for i in 0..segments {
        let len = if i + 1 == segments {
            1 + rng.below(1448) as usize
        } else {
            1448
        };
        d.send(sender, &PAYLOAD[..len]);
        if i % 2 == 1 {
            d.ack(receiver);
        }
    }
    d.fin(sender).ack(receiver).fin(receiver).ack(sender);
    d.take_packets()
}

/// Traffic that is not FTP around session `index`: a DNS lookup, sometimes an HTTPS-like
/// TCP flow, sometimes a ping.
fn noise(rng: &mut Rng, index: usize, start: Instant, counts: &mut Counts) -> Vec<Packet> {
    let host = (2 + index % 250) as u8;
    let client = Ipv4Addr::new(198, 51, 100, host);
    let resolver = Ipv4Addr::new(192, 0, 2, 53);
    let sport = 30_000 + (index % 30_000) as u16;
    let mut packets = Vec::new();
    let at = |ms: u64| start + Duration::from_millis(ms);
    let query = udp(client, resolver, sport, 53, &[0x11; 40]);
    let answer = udp(resolver, client, 53, sport, &[0x22; 90]);
    packets.push(Packet {
        time: at(0),
        bytes: query,
    });
    packets.push(Packet {
        time: at(1),
        bytes: answer,
    });
    if rng.chance(50) {
        let web = SocketAddr::new(Ipv4Addr::new(203, 0, 113, 80).into(), 443);
        let me = SocketAddr::new(client.into(), sport.wrapping_add(1));
        let mut t = Conversation::new(me, web)
            .with_isns(rng.u32(), rng.u32())
            .starting_at(at(2));
        t.handshake();
        for _ in 0..1 + rng.below(6) {
            t.send(Side::Client, &[0x17; 300])
                .send(Side::Server, &[0x17; 1200]);
        }
        t.fin(Side::Client).fin(Side::Server).ack(Side::Client);
        packets.append(&mut t.take_packets());
    }
    if rng.chance(20) {
        let peer = Ipv4Addr::new(192, 0, 2, 7);
        packets.push(Packet {
            time: at(3),
            bytes: ping(client, peer, index as u16),
        });
        packets.push(Packet {
            time: at(4),
            bytes: ping(peer, client, index as u16),
        });
    }
    if rng.chance(5) {
        // A stray reset to the control port from a host with no session: not FTP.
        let stray = SocketAddr::new(client.into(), sport.wrapping_add(2));
        let server = SocketAddr::new(Ipv4Addr::new(203, 0, 113, 2).into(), 21);
        let flags = Flags {
            rst: true,
            ..Flags::default()
        };
        packets.push(Packet {
            time: at(5),
            bytes: tcp(stray, server, rng.u32(), None, flags, b""),
        });
    }
    counts.noise_packets += packets.len() as u64;
    packets
}

fn udp(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let builder = PacketBuilder::ipv4(src.octets(), dst.octets(), 64).udp(sport, dport);
    let mut out = Vec::with_capacity(builder.size(payload.len()));
    // NOTE(unwrap): writing to a Vec cannot fail; the payload is tiny.
    builder.write(&mut out, payload).expect("in-memory packet");
    out
}

fn ping(src: Ipv4Addr, dst: Ipv4Addr, id: u16) -> Vec<u8> {
    let builder = PacketBuilder::ipv4(src.octets(), dst.octets(), 64).icmpv4_echo_request(id, 1);
    let mut out = Vec::with_capacity(builder.size(56));
    // NOTE(unwrap): writing to a Vec cannot fail; the payload is tiny.
    builder.write(&mut out, &[0; 56]).expect("in-memory packet");
    out
}

/// A legacy pcap file of Ethernet frames (tcpdump's `pcap-savefile(5)`, LINKTYPE_ETHERNET).
struct PcapOut<W: Write> {
    out: W,
    snaplen: usize,
    bytes: u64,
}

impl<W: Write> PcapOut<W> {
    fn new(mut out: W, snaplen: usize) -> std::io::Result<Self> {
        let snap = if snaplen == 0 {
            262_144
        } else {
            snaplen as u32
        };
        let mut header = Vec::with_capacity(24);
        header.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        header.extend_from_slice(&2u16.to_le_bytes());
        header.extend_from_slice(&4u16.to_le_bytes());
        header.extend_from_slice(&[0; 8]);
        header.extend_from_slice(&snap.to_le_bytes());
        header.extend_from_slice(&1u32.to_le_bytes());
        out.write_all(&header)?;
        Ok(Self {
            out,
            snaplen,
            bytes: 24,
        })
    }

    fn packet(&mut self, packet: &Packet) -> std::io::Result<()> {
        let ethertype: [u8; 2] = if packet.bytes.first().is_some_and(|b| b >> 4 == 6) {
            [0x86, 0xdd]
        } else {
            [0x08, 0x00]
        };
        let mut frame = Vec::with_capacity(14 + packet.bytes.len());
        frame.extend_from_slice(&[
            0x02, 0, 0xcb, 0, 0x71, 0x01, 0x02, 0, 0xc6, 0x33, 0x64, 0x01,
        ]);
        frame.extend_from_slice(&ethertype);
        frame.extend_from_slice(&packet.bytes);
        let kept = if self.snaplen == 0 {
            frame.len()
        } else {
            frame.len().min(self.snaplen)
        };
        let micros = packet.time.as_micros();
        let mut record = [0u8; 16];
        record[0..4].copy_from_slice(&((micros / 1_000_000) as u32).to_le_bytes());
        record[4..8].copy_from_slice(&((micros % 1_000_000) as u32).to_le_bytes());
        record[8..12].copy_from_slice(&(kept as u32).to_le_bytes());
        record[12..16].copy_from_slice(&(frame.len() as u32).to_le_bytes());
        self.out.write_all(&record)?;
        self.out.write_all(&frame[..kept])?;
        self.bytes += 16 + kept as u64;
        Ok(())
    }

    fn finish(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}
