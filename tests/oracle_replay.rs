//! The replay oracle over captures built in memory: a data connection's 4-tuple used again by
//! a later session is a new connection (a new initial sequence number), not a retransmission.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;

use ftp_alg::config::Config;
use ftp_alg::io::capture::LinkType;
use ftp_alg::testkit::conversation::Conversation;
use ftp_alg::testkit::conversation::Packet;
use ftp_alg::testkit::conversation::Side::Client;
use ftp_alg::testkit::conversation::Side::Server;
use ftp_alg::testkit::pcap::Format;
use ftp_alg::testkit::pcap::Link;
use ftp_alg::testkit::pcap::Writer;
use ftp_alg::testkit::pcap::frame;
use ftp_alg::time::Duration;
use ftp_alg::time::Instant;
use serde_json::Value;

const SERVER: &str = "203.0.113.2:21";
/// The client's data port, used by both sessions.
const DATA_CLIENT: &str = "198.51.100.2:51000";
/// The server's passive port, announced by both sessions (203,0,113,2,195,80).
const DATA_SERVER: &str = "203.0.113.2:50000";
/// 2026-01-01T00:00:00Z.
const START: u64 = 1_767_225_600;

fn addr(text: &str) -> SocketAddr {
    text.parse().expect("literal socket address")
}

/// One passive session from `client`, starting at `start`, whose data connection opens from
/// [`DATA_CLIENT`] to [`DATA_SERVER`] with initial sequence number `isn`, its SYN sent
/// `syns` times (retransmissions carry the same ISN), then closes.
fn passive_session(client: &str, start: Instant, isn: u32, syns: usize) -> Conversation {
    let mut c = Conversation::new(addr(client), addr(SERVER)).starting_at(start);
    c.login().send(Client, b"PASV\r\n").send(
        Server,
        b"227 Entering Passive Mode (203,0,113,2,195,80).\r\n",
    );
    let mut data = Conversation::new(addr(DATA_CLIENT), addr(DATA_SERVER)).with_isns(isn, 9000);
    data.handshake().fin(Client).fin(Server);
    let data = data.take_packets();
    for _ in 1..syns {
        c.emit(data[0].bytes.clone());
    }
    for packet in data {
        c.emit(packet.bytes);
    }
    c.send(Client, b"RETR file.bin\r\n")
        .send(Server, b"150 Opening BINARY mode data connection.\r\n")
        .send(Server, b"226 Transfer complete.\r\n")
        .send(Client, b"QUIT\r\n")
        .send(Server, b"221 Goodbye.\r\n")
        .fin(Server)
        .fin(Client);
    c
}

/// Write `packets` as a raw-IP pcap named `name` in the scratch directory.
fn write_capture(name: &str, packets: &[Packet]) -> PathBuf {
    let mut writer = Writer::new(Format::Pcap, LinkType::Raw);
    for packet in packets {
        writer.packet(packet.time, &frame(&Link::Raw, &packet.bytes));
    }
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, writer.finish()).expect("write the capture");
    path
}

fn count(events: &[Value], kind: &str) -> usize {
    events.iter().filter(|e| e["type"] == kind).count()
}

#[test]
fn a_later_session_reusing_the_data_four_tuple_is_admitted_again() {
    let start = Instant::from_micros(START * 1_000_000);
    let first = passive_session("198.51.100.2:40000", start, 1_000_000, 2);
    // 70 s later: past the client's TIME_WAIT, inside two minutes of the first SYN.
    let later = first.now() + Duration::from_secs(70);
    let second = passive_session("198.51.100.2:40001", later, 2_000_000, 1);
    let packets = [first.packets(), second.packets()].concat();
    let path = write_capture("reused-data-four-tuple.pcap", &packets);
    let events = common::replay_json(&[path], &Config::default());
    let admitted: Vec<&Value> = events.iter().filter(|e| e["type"] == "admit").collect();
    assert_eq!(admitted.len(), 2, "{events:#?}");
    for admit in admitted {
        assert_eq!(admit["conn"]["src"], DATA_CLIENT);
        assert_eq!(admit["conn"]["dst"], DATA_SERVER);
    }
    assert_eq!(count(&events, "unused"), 0, "{events:#?}");
    assert_eq!(
        count(&events, "deny"),
        0,
        "the retransmitted SYN is no second connection"
    );
    let summary = common::summary(&events);
    assert_eq!(summary["admitted"], 2);
    assert_eq!(summary["unused"], 0);
}
