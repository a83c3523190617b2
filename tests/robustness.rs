//! Untrusted input never panics and never grows memory without bound.

use std::net::SocketAddr;

use ftp_alg::config::Config;
use ftp_alg::engine::Engine;
use ftp_alg::io::capture::CaptureReader;
use ftp_alg::testkit::conversation::Conversation;
use ftp_alg::testkit::conversation::Side::Client;
use ftp_alg::testkit::conversation::Side::Server;
use ftp_alg::testkit::conversation::syn;
use ftp_alg::time::Duration;
use proptest::prelude::*;

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

fn logged_in() -> Conversation {
    let mut c = Conversation::new(addr("198.51.100.2:40000"), addr("203.0.113.2:21"));
    c.handshake()
        .send(Server, b"220 ready\r\n")
        .send(Client, b"USER a\r\n")
        .send(Server, b"230 ok\r\n");
    c
}

fn drain(engine: &mut Engine) -> usize {
    std::iter::from_fn(|| engine.poll_action()).count()
}

proptest! {
    #[test]
    fn arbitrary_datagrams(datagrams in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..120), 1..50)) {
        let mut engine = Engine::new(Config::default());
        for (i, d) in datagrams.iter().enumerate() {
            engine.handle_packet(ftp_alg::time::Instant::from_micros(i as u64), d);
            drain(&mut engine);
        }
    }

    #[test]
    fn corrupted_conversations(flips in prop::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>(), any::<u8>()), 1..40)) {
        let mut c = logged_in();
        c.send(Client, b"PASV\r\n").send(Server, b"227 Entering Passive Mode (203,0,113,2,195,80)\r\n");
        c.send(Client, b"EPRT |1|198.51.100.2|50001|\r\n").send(Server, b"200 ok\r\n");
        let mut packets = c.take_packets();
        for (which, at, value) in flips {
            let p = which.get_mut(&mut packets);
            let i = at.index(p.bytes.len());
            p.bytes[i] = value;
        }
        let mut engine = Engine::new(Config { verify_checksums: false, ..Config::default() });
        for p in &packets {
            engine.handle_packet(p.time, &p.bytes);
            drain(&mut engine);
        }
    }

    #[test]
    fn arbitrary_lines_in_both_directions(lines in prop::collection::vec((any::<bool>(), prop::collection::vec(any::<u8>(), 0..80)), 1..40)) {
        let mut c = logged_in();
        for (client, mut line) in lines {
            line.extend_from_slice(b"\r\n");
            c.send(if client { Client } else { Server }, &line);
        }
        let mut engine = Engine::new(Config::default());
        for p in c.packets() {
            engine.handle_packet(p.time, &p.bytes);
            drain(&mut engine);
        }
        prop_assert!(engine.buffered() <= 64 * 1024);
    }

    #[test]
    fn arbitrary_capture_files(bytes in prop::collection::vec(any::<u8>(), 0..400), magic in 0usize..4) {
        let magics: [&[u8]; 4] = [b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x0a\x0d\x0d\x0a", b""];
        let mut file = magics[magic].to_vec();
        file.extend_from_slice(&bytes);
        if let Ok(mut reader) = CaptureReader::from_reader("fuzz", Box::new(std::io::Cursor::new(file))) {
            let mut buf = Vec::new();
            for _ in 0..1000 {
                match reader.next_packet(&mut buf) {
                    Ok(Some(meta)) => { let _ = ftp_alg::io::capture::ip_datagram(meta.link, &buf); }
                    Ok(None) | Err(_) => break,
                }
            }
        }
    }
}

#[test]
fn endless_line_stays_within_the_line_cap() {
    let mut c = logged_in();
    let chunk = vec![b'A'; 1400];
    for _ in 0..800 {
        c.send(Client, &chunk);
    }
    c.send(Client, b"\r\nPORT 198,51,100,2,195,80\r\n");
    let config = Config::default();
    let cap = config.max_line;
    let mut engine = Engine::new(config);
    let mut peak = 0;
    let mut installs = 0;
    for p in c.packets() {
        engine.handle_packet(p.time, &p.bytes);
        peak = peak.max(engine.buffered());
        installs += std::iter::from_fn(|| engine.poll_action())
            .filter(|a| matches!(a, ftp_alg::action::Action::Install(_)))
            .count();
    }
    assert!(peak <= cap + 2048, "peak {peak} for a 1.1 MB line");
    assert_eq!(engine.stats().overlong_lines, 1);
    assert_eq!(installs, 1, "the line after the overlong one is still read");
}

#[test]
fn thousands_of_pasv_keep_a_bounded_set() {
    let mut c = logged_in();
    for i in 0..2000u32 {
        c.send(Client, b"PASV\r\n");
        let port = 1024 + i;
        c.send(
            Server,
            format!(
                "227 Entering Passive Mode (203,0,113,2,{},{})\r\n",
                port >> 8,
                port & 255
            )
            .as_bytes(),
        );
    }
    let config = Config::default();
    let max = config.max_expectations_per_control;
    let mut engine = Engine::new(config);
    let mut live: i64 = 0;
    let mut peak = 0;
    for p in c.packets() {
        engine.handle_packet(p.time, &p.bytes);
        while let Some(action) = engine.poll_action() {
            match action {
                ftp_alg::action::Action::Install(_) => live += 1,
                ftp_alg::action::Action::Remove(_) => live -= 1,
                _ => {}
            }
        }
        peak = peak.max(live);
    }
    assert_eq!(engine.stats().expectations, 2000);
    assert_eq!(
        peak, max as i64,
        "never more than the per-connection bound in the set"
    );
}

#[test]
fn syn_flood_on_port_21_keeps_a_bounded_table() {
    let config = Config {
        max_flows: 1000,
        ..Config::default()
    };
    let mut engine = Engine::new(config);
    for i in 0..20_000u32 {
        let src = SocketAddr::new(
            format!("198.51.100.{}", i % 250 + 1).parse().unwrap(),
            (1024 + i / 250) as u16,
        );
        let packet = syn(src, addr("203.0.113.2:21"));
        engine.handle_packet(ftp_alg::time::Instant::from_micros(u64::from(i)), &packet);
    }
    assert_eq!(engine.flow_count(), 1000);
    assert_eq!(engine.stats().flows_evicted, 19_000);
    engine.handle_timeout(ftp_alg::time::Instant::from_micros(20_000) + Duration::from_secs(121));
    assert_eq!(
        engine.flow_count(),
        0,
        "embryonic connections expire after the SYN timeout"
    );
}

#[test]
fn out_of_order_flood_respects_the_global_budget() {
    let config = Config {
        max_buffered_bytes: 256 * 1024,
        ..Config::default()
    };
    let budget = config.max_buffered_bytes;
    let mut engine = Engine::new(config);
    for n in 0..200u16 {
        let mut c = Conversation::new(
            SocketAddr::new(addr("198.51.100.2:0").ip(), 2000 + n),
            addr("203.0.113.2:21"),
        );
        c.handshake().send(Server, b"220 ready\r\n");
        let ahead = c.segment_at(Client, 10, &[b'x'; 8000]);
        c.emit(ahead);
        for p in c.packets() {
            engine.handle_packet(p.time, &p.bytes);
            drain(&mut engine);
        }
        assert!(
            engine.buffered() <= budget,
            "{} > {budget}",
            engine.buffered()
        );
    }
    assert!(engine.stats().shed_bytes > 0);
}
