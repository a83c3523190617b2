//! The project's own sample captures: scripted FTP conversations with their data connections,
//! written as pcap/pcapng with a variety of link layers. `cargo run --example gen_samples`
//! writes them to `pcaps/`; `tests/samples.rs` checks that the committed files are exactly
//! what this module builds, and replays each against its hand-written `pcaps/<name>.expected`.
//!
//! Addresses are documentation ranges only: client 198.51.100.2 / 2001:db8:100::2, server
//! 203.0.113.2 / 2001:db8:113::2, third hosts in 192.0.2.0/24.

use std::net::SocketAddr;

use crate::testkit::conversation::Conversation;
use crate::testkit::conversation::Packet;
use crate::testkit::conversation::Side::Client;
use crate::testkit::conversation::Side::Server;
use crate::testkit::conversation::syn;
use crate::testkit::pcap::Format;
use crate::testkit::pcap::Link;
use crate::testkit::pcap::Writer;
use crate::testkit::pcap::frame;
use crate::time::Duration;
use crate::time::Instant;

/// One sample capture.
#[derive(Debug, Clone)]
pub struct Sample {
    /// File name without extension.
    pub name: &'static str,
    /// What it exercises.
    pub about: &'static str,
    /// Link layer.
    pub link: Link,
    /// File format.
    pub format: Format,
    /// The datagrams.
    pub packets: Vec<Packet>,
}

impl Sample {
    /// The file name, with the extension its format calls for.
    pub fn file_name(&self) -> String {
        match self.format {
            Format::PcapNg => format!("{}.pcapng", self.name),
            Format::Pcap | Format::PcapNanos => format!("{}.pcap", self.name),
        }
    }

    /// The capture file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut writer = Writer::new(self.format, self.link.link_type());
        for packet in &self.packets {
            writer.packet(packet.time, &frame(&self.link, &packet.bytes));
        }
        writer.finish()
    }
}

/// Every sample, in a fixed order.
pub fn all() -> Vec<Sample> {
    vec![
        passive(),
        active(),
        ipv6_extended(),
        port_split_two(),
        port_split_three(),
        reply_split_in_numbers(),
        pipelined(),
        multiline_227(),
        reordered_and_retransmitted(),
        bounce(),
        third_host_227(),
        privileged_port(),
        auth_tls(),
        no_greeting(),
        slipstream_http(),
        port_theft_and_expiry(),
        epsv_all(),
        midstream_pickup(),
    ]
}

const CLIENT: &str = "198.51.100.2:40000";
const SERVER: &str = "203.0.113.2:21";
/// 2026-01-01T00:00:00Z.
const START: u64 = 1_767_225_600;

fn addr(text: &str) -> SocketAddr {
    // NOTE(unwrap): only called with the literals of this module.
    text.parse().expect("literal socket address")
}

fn sample(name: &'static str, about: &'static str, link: Link, c: &Conversation) -> Sample {
    Sample {
        name,
        about,
        link,
        format: Format::Pcap,
        packets: c.packets().to_vec(),
    }
}

fn ethernet() -> Link {
    Link::Ethernet { vlans: Vec::new() }
}

/// Handshake, greeting and anonymous login between `client` and `server`.
fn logged_in(client: &str, server: &str) -> Conversation {
    let mut c = Conversation::new(addr(client), addr(server))
        .starting_at(Instant::from_micros(START * 1_000_000));
    c.handshake()
        .send(Server, b"220 (vsFTPd 3.0.3)\r\n")
        .send(Client, b"USER anonymous\r\n")
        .send(Server, b"331 Please specify the password.\r\n")
        .send(Client, b"PASS guest@\r\n")
        .send(Server, b"230 Login successful.\r\n")
        .send(Client, b"TYPE I\r\n")
        .send(Server, b"200 Switching to Binary mode.\r\n");
    c
}

/// QUIT, 221 and both FINs.
fn quit(c: &mut Conversation) {
    c.send(Client, b"QUIT\r\n")
        .send(Server, b"221 Goodbye.\r\n")
        .fin(Server)
        .fin(Client);
}

/// The client's data connection to `dst`, its SYN only, from `sport`.
fn client_connects(c: &mut Conversation, sport: u16, dst: &str) {
    let (client, _) = c.ends();
    c.emit(syn(SocketAddr::new(client.ip(), sport), addr(dst)));
}

/// The server's data connection from port 20 to `dst`, its SYN only.
fn server_connects(c: &mut Conversation, dst: &str) {
    let (_, server) = c.ends();
    c.emit(syn(SocketAddr::new(server.ip(), 20), addr(dst)));
}

/// A transfer command and its replies, after the data connection was announced.
fn transfer(c: &mut Conversation, command: &[u8]) {
    c.send(Client, command);
    transfer_replies(c);
}

/// The replies to a transfer command.
fn transfer_replies(c: &mut Conversation) {
    c.send(Server, b"150 Opening BINARY mode data connection.\r\n")
        .send(Server, b"226 Transfer complete.\r\n");
}

fn passive() -> Sample {
    let mut c = logged_in(CLIENT, SERVER);
    c.send(Client, b"PASV\r\n").send(
        Server,
        b"227 Entering Passive Mode (203,0,113,2,195,80).\r\n",
    );
    client_connects(&mut c, 51000, "203.0.113.2:50000");
    transfer(&mut c, b"RETR file.bin\r\n");
    quit(&mut c);
    sample(
        "gen-passive-pasv-v4",
        "PASV/227, one admitted data connection",
        ethernet(),
        &c,
    )
}

fn active() -> Sample {
    let mut c = logged_in(CLIENT, SERVER);
    c.send(Client, b"PORT 198,51,100,2,195,81\r\n")
        .send(Server, b"200 PORT command successful.\r\n");
    c.send(Client, b"RETR file.bin\r\n");
    server_connects(&mut c, "198.51.100.2:50001");
    transfer_replies(&mut c);
    quit(&mut c);
    let link = Link::Ethernet {
        vlans: vec![100, 200],
    };
    sample(
        "gen-active-port-v4",
        "PORT/200, server connects from port 20; Ethernet with QinQ VLAN tags",
        link,
        &c,
    )
}

fn ipv6_extended() -> Sample {
    let mut c = logged_in("[2001:db8:100::2]:40000", "[2001:db8:113::2]:21");
    c.send(Client, b"EPSV\r\n").send(
        Server,
        b"229 Entering Extended Passive Mode (|||50002|)\r\n",
    );
    client_connects(&mut c, 51002, "[2001:db8:113::2]:50002");
    transfer(&mut c, b"LIST\r\n");
    c.send(Client, b"EPRT |2|2001:db8:100::2|50003|\r\n")
        .send(Server, b"200 EPRT command successful.\r\n");
    c.send(Client, b"RETR file.bin\r\n");
    server_connects(&mut c, "[2001:db8:100::2]:50003");
    transfer_replies(&mut c);
    quit(&mut c);
    let mut s = sample(
        "gen-epsv-eprt-v6",
        "EPSV/229 and EPRT |2| over IPv6; Linux SLL2, pcapng",
        Link::LinuxSll2,
        &c,
    );
    s.format = Format::PcapNg;
    s
}

fn port_split_two() -> Sample {
    let mut c = logged_in(CLIENT, SERVER);
    c.send_split(Client, b"PORT 198,51,100,2,195,82\r\n", &[2]);
    c.send(Server, b"200 PORT command successful.\r\n")
        .send(Client, b"RETR file.bin\r\n");
    server_connects(&mut c, "198.51.100.2:50002");
    transfer_replies(&mut c);
    quit(&mut c);
    sample(
        "gen-port-split-2",
        "PORT split after 'PO' (two segments); Linux SLL",
        Link::LinuxSll,
        &c,
    )
}

fn port_split_three() -> Sample {
    let mut c = logged_in(CLIENT, SERVER);
    c.send_split(Client, b"PORT 198,51,100,2,195,83\r\n", &[11, 20]);
    c.send(Server, b"200 PORT command successful.\r\n")
        .send(Client, b"RETR file.bin\r\n");
    server_connects(&mut c, "198.51.100.2:50003");
    transfer_replies(&mut c);
    quit(&mut c);
    sample(
        "gen-port-split-3",
        "PORT split in three, inside the numbers; raw IP",
        Link::Raw,
        &c,
    )
}

fn reply_split_in_numbers() -> Sample {
    let mut c = logged_in(CLIENT, SERVER);
    c.send(Client, b"PASV\r\n");
    c.send_split(
        Server,
        b"227 Entering Passive Mode (203,0,113,2,195,84).\r\n",
        &[40],
    );
    client_connects(&mut c, 51004, "203.0.113.2:50004");
    transfer(&mut c, b"RETR file.bin\r\n");
    quit(&mut c);
    sample(
        "gen-227-split-numbers",
        "227 split between '19' and '5,84'; BSD null/loopback",
        Link::Null,
        &c,
    )
}

fn pipelined() -> Sample {
    let mut c = logged_in(CLIENT, SERVER);
    c.send(Client, b"TYPE A\r\nPASV\r\nLIST\r\n");
    c.send(
        Server,
        b"200 Switching to ASCII mode.\r\n227 Entering Passive Mode (203,0,113,2,195,85).\r\n",
    );
    client_connects(&mut c, 51005, "203.0.113.2:50005");
    c.send(
        Server,
        b"150 Here comes the directory listing.\r\n226 Directory send OK.\r\n",
    );
    c.send(
        Client,
        b"TYPE I\r\nPORT 198,51,100,2,195,86\r\nRETR file.bin\r\n",
    );
    c.send(
        Server,
        b"200 Switching to Binary mode.\r\n200 PORT command successful.\r\n",
    );
    server_connects(&mut c, "198.51.100.2:50006");
    c.send(
        Server,
        b"150 Opening BINARY mode data connection.\r\n226 Transfer complete.\r\n",
    );
    quit(&mut c);
    sample(
        "gen-pipelined",
        "several commands and replies per segment, PASV and PORT not first",
        ethernet(),
        &c,
    )
}

fn multiline_227() -> Sample {
    let mut c = logged_in(CLIENT, SERVER);
    c.send(Client, b"PASV\r\n");
    c.send(
        Server,
        b"227-Entering Passive Mode (203,0,113,2,195,87)\r\n227 OK\r\n",
    );
    client_connects(&mut c, 51007, "203.0.113.2:50007");
    transfer(&mut c, b"RETR a\r\n");
    c.send(Client, b"PASV\r\n");
    c.send(Server, b"227-Here it comes\r\n227-200 not the end\r\n227 Entering Passive Mode (203,0,113,2,195,88)\r\n");
    client_connects(&mut c, 51008, "203.0.113.2:50008");
    transfer(&mut c, b"RETR b\r\n");
    quit(&mut c);
    sample(
        "gen-multiline-227",
        "multi-line 227 with the address in the first and in the last line",
        ethernet(),
        &c,
    )
}

fn reordered_and_retransmitted() -> Sample {
    let mut c = logged_in(CLIENT, SERVER);
    c.send(Client, b"PASV\r\n");
    let reply = b"227 Entering Passive Mode (203,0,113,2,195,89).\r\n";
    let tail = c.segment_at(Server, 30, &reply[30..]);
    let head = c.segment_at(Server, 0, &reply[..30]);
    c.emit(tail.clone())
        .emit(head)
        .emit(tail)
        .advance(Server, reply.len());
    client_connects(&mut c, 51009, "203.0.113.2:50009");
    transfer(&mut c, b"RETR file.bin\r\n");
    let port = b"PORT 198,51,100,2,195,90\r\n";
    let honest = c.segment_at(Client, 0, port);
    let forged = c.segment_at(Client, 0, b"PORT 198,51,100,2,195,99\r\n");
    c.emit(honest.clone())
        .emit(honest)
        .emit(forged)
        .advance(Client, port.len());
    c.send(Server, b"200 PORT command successful.\r\n")
        .send(Client, b"RETR file.bin\r\n");
    server_connects(&mut c, "198.51.100.2:50010");
    transfer_replies(&mut c);
    quit(&mut c);
    sample(
        "gen-reordered-retransmitted",
        "227 halves out of order and retransmitted; PORT retransmitted, then resent with other bytes",
        ethernet(),
        &c,
    )
}

fn bounce() -> Sample {
    let mut c = logged_in(CLIENT, SERVER);
    c.send(Client, b"PORT 192,0,2,99,31,144\r\n")
        .send(Server, b"200 PORT command successful.\r\n");
    c.send(Client, b"RETR file.bin\r\n");
    server_connects(&mut c, "192.0.2.99:8080");
    c.send(Server, b"150 Opening BINARY mode data connection.\r\n");
    c.send(Client, b"EPRT |1|192.0.2.99|8081|\r\n")
        .send(Server, b"200 EPRT command successful.\r\n");
    quit(&mut c);
    sample(
        "gen-bounce",
        "PORT and EPRT naming a third host (FTP bounce)",
        ethernet(),
        &c,
    )
}

fn third_host_227() -> Sample {
    let mut c = logged_in(CLIENT, SERVER);
    c.send(Client, b"PASV\r\n").send(
        Server,
        b"227 Entering Passive Mode (192,0,2,50,195,91).\r\n",
    );
    client_connects(&mut c, 51011, "192.0.2.50:50011");
    transfer(&mut c, b"RETR file.bin\r\n");
    quit(&mut c);
    sample(
        "gen-227-third-host",
        "227 naming a host other than the server",
        ethernet(),
        &c,
    )
}

fn privileged_port() -> Sample {
    let mut c = logged_in(CLIENT, SERVER);
    c.send(Client, b"PORT 198,51,100,2,0,25\r\n")
        .send(Server, b"200 PORT command successful.\r\n");
    c.send(Client, b"RETR file.bin\r\n");
    server_connects(&mut c, "198.51.100.2:25");
    c.send(Server, b"150 Opening BINARY mode data connection.\r\n");
    c.send(Client, b"PASV\r\n")
        .send(Server, b"227 Entering Passive Mode (203,0,113,2,0,22).\r\n");
    quit(&mut c);
    sample(
        "gen-privileged-port",
        "PORT to port 25 and 227 to port 22",
        ethernet(),
        &c,
    )
}

fn auth_tls() -> Sample {
    let mut c = Conversation::new(addr(CLIENT), addr(SERVER))
        .starting_at(Instant::from_micros(START * 1_000_000));
    c.handshake().send(Server, b"220 (vsFTPd 3.0.3)\r\n");
    c.send(Client, b"AUTH TLS\r\n")
        .send(Server, b"234 Proceed with negotiation.\r\n");
    c.send(
        Client,
        b"\x16\x03\x01\x00\xf4\x01\x00\x00\xf0\x03\x03\r\nPORT 198,51,100,2,195,92\r\n\x00\x01",
    );
    c.send(Server, b"\x16\x03\x03\x00\x7a\x02\x00\x00\x76\r\n227 Entering Passive Mode (203,0,113,2,195,93)\r\n");
    server_connects(&mut c, "198.51.100.2:50012");
    c.fin(Client).fin(Server);
    sample(
        "gen-auth-tls",
        "AUTH TLS answered 234: the rest is ciphertext, even if it looks like FTP",
        ethernet(),
        &c,
    )
}

fn no_greeting() -> Sample {
    let mut c = Conversation::new(addr(CLIENT), addr(SERVER))
        .starting_at(Instant::from_micros(START * 1_000_000));
    c.handshake().send(Client, b"PORT 198,51,100,2,195,94\r\n");
    c.send(Server, b"HTTP/1.1 400 Bad Request\r\n\r\n");
    server_connects(&mut c, "198.51.100.2:50014");
    c.fin(Server).fin(Client);
    sample(
        "gen-no-greeting-port",
        "a PORT line on a port-21 stream whose server never greets",
        ethernet(),
        &c,
    )
}

fn slipstream_http() -> Sample {
    let mut c = Conversation::new(addr(CLIENT), addr(SERVER))
        .starting_at(Instant::from_micros(START * 1_000_000));
    c.handshake().send(Server, b"220 ready\r\n");
    let body = b"POST /upload HTTP/1.1\r\nHost: 203.0.113.2:21\r\nContent-Length: 29\r\n\r\nPORT 198,51,100,2,195,95\r\n";
    c.send_split(Client, body, &[70]);
    server_connects(&mut c, "198.51.100.2:50015");
    c.fin(Client).fin(Server);
    sample(
        "gen-slipstream-http",
        "HTTP request to port 21 with a PORT line at a segment start (NAT slipstreaming)",
        ethernet(),
        &c,
    )
}

fn port_theft_and_expiry() -> Sample {
    let mut c = logged_in(CLIENT, SERVER);
    c.send(Client, b"PASV\r\n").send(
        Server,
        b"227 Entering Passive Mode (203,0,113,2,195,96).\r\n",
    );
    c.emit(syn(addr("192.0.2.66:4444"), addr("203.0.113.2:50016")));
    client_connects(&mut c, 51016, "203.0.113.2:50016");
    client_connects(&mut c, 51016, "203.0.113.2:50016");
    client_connects(&mut c, 51017, "203.0.113.2:50016");
    transfer(&mut c, b"RETR file.bin\r\n");
    c.send(Client, b"PASV\r\n").send(
        Server,
        b"227 Entering Passive Mode (203,0,113,2,195,97).\r\n",
    );
    c.wait(Duration::from_secs(31));
    client_connects(&mut c, 51018, "203.0.113.2:50017");
    quit(&mut c);
    sample(
        "gen-port-theft-expiry",
        "a third host races for the announced port; a retransmitted SYN; a second use; a late SYN",
        ethernet(),
        &c,
    )
}

fn epsv_all() -> Sample {
    let mut c = logged_in(CLIENT, SERVER);
    c.send(Client, b"EPSV ALL\r\n")
        .send(Server, b"200 EPSV ALL ok.\r\n");
    c.send(Client, b"PORT 198,51,100,2,195,98\r\n")
        .send(Server, b"500 Illegal PORT command.\r\n");
    c.send(Client, b"PASV\r\n").send(
        Server,
        b"227 Entering Passive Mode (203,0,113,2,195,99).\r\n",
    );
    c.send(Client, b"EPSV\r\n").send(
        Server,
        b"229 Entering Extended Passive Mode (|||50020|)\r\n",
    );
    client_connects(&mut c, 51020, "203.0.113.2:50020");
    transfer(&mut c, b"LIST\r\n");
    quit(&mut c);
    sample(
        "gen-epsv-all",
        "after EPSV ALL only EPSV may open a data connection",
        ethernet(),
        &c,
    )
}

fn midstream_pickup() -> Sample {
    let mut c = logged_in(CLIENT, SERVER);
    c.take_packets();
    c.send(Client, b"PASV\r\n").send(
        Server,
        b"227 Entering Passive Mode (203,0,113,2,195,100).\r\n",
    );
    client_connects(&mut c, 51021, "203.0.113.2:50020");
    transfer(&mut c, b"RETR a\r\n");
    c.send(Client, b"PASV\r\n").send(
        Server,
        b"227 Entering Passive Mode (203,0,113,2,195,101).\r\n",
    );
    client_connects(&mut c, 51022, "203.0.113.2:50021");
    transfer(&mut c, b"RETR b\r\n");
    quit(&mut c);
    let mut s = sample(
        "gen-midstream-pickup",
        "capture starts mid-session: resync at the first LF",
        Link::RawIpv4,
        &c,
    );
    s.format = Format::PcapNanos;
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::capture::LinkType;

    #[test]
    fn names_are_unique_and_files_are_deterministic() {
        let samples = all();
        let mut names: Vec<_> = samples.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), samples.len());
        let again = all();
        for (a, b) in samples.iter().zip(&again) {
            assert_eq!(a.to_bytes(), b.to_bytes(), "{}", a.name);
        }
    }

    #[test]
    fn link_types_cover_the_reader() {
        let links: Vec<LinkType> = all().iter().map(|s| s.link.link_type()).collect();
        let wanted_all = [
            LinkType::Ethernet,
            LinkType::LinuxSll,
            LinkType::LinuxSll2,
            LinkType::Raw,
            LinkType::Null,
            LinkType::RawIpv4,
        ];
        for wanted in wanted_all {
            assert!(links.contains(&wanted), "{wanted:?}");
        }
    }
}
