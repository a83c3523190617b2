//! The adversarial suite at the engine level (docs/security.md): hostile clients, hostile
//! servers, TCP evasion, floods, malformed datagrams and AUTH TLS, each a scripted
//! conversation fed to one engine with the outcome it must have (refused and counted, or
//! handled correctly). Cases where the kernel's behaviour is the point are in
//! `tests/lab/hostile-tests.sh`.

use std::net::SocketAddr;
use std::time::Instant as WallClock;

use ftp_alg::action::Verdict;
use ftp_alg::config::Config;
use ftp_alg::config::Unjudged;
use ftp_alg::engine::Engine;
use ftp_alg::testkit::actions::drain;
use ftp_alg::testkit::actions::feed;
use ftp_alg::testkit::conversation;
use ftp_alg::testkit::conversation::Conversation;
use ftp_alg::testkit::conversation::Flags;
use ftp_alg::testkit::conversation::Side::Client;
use ftp_alg::testkit::conversation::Side::Server;
use ftp_alg::testkit::conversation::tcp;
use ftp_alg::time::Duration;
use ftp_alg::time::Instant;

const CLIENT: &str = "198.51.100.2:40000";
const SERVER: &str = "203.0.113.2:21";

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

fn logged_in() -> Conversation {
    conversation::logged_in(CLIENT)
}

fn run(c: &Conversation) -> (Vec<String>, Engine) {
    let mut engine = Engine::new(Config::default());
    let actions = feed(&mut engine, c.packets());
    (actions, engine)
}

fn installs(actions: &[String]) -> usize {
    actions.iter().filter(|a| a.starts_with("install")).count()
}

/// A 227 reply naming 203.0.113.2:`port`.
fn reply_227(port: u32) -> Vec<u8> {
    format!(
        "227 Entering Passive Mode (203,0,113,2,{},{}).\r\n",
        port >> 8,
        port & 255
    )
    .into_bytes()
}

// ------------------------------------------------------------ bounce and spoofing

#[test]
fn bounce_to_a_privileged_port_of_the_client_itself_is_refused() {
    // The third-host bounce is gen-bounce.pcap and strict_policy_refuses_bounce_hijack_and_
    // privileged_ports (src/engine/tests.rs); this is the other half: the client's own
    // address, a port below 1024 (a PORT to its own SMTP or SSH).
    let mut c = logged_in();
    c.send(Client, b"PORT 198,51,100,2,0,25\r\n")
        .send(Server, b"200 PORT command successful.\r\n");
    c.send(Client, b"EPRT |1|198.51.100.2|22|\r\n")
        .send(Server, b"200 EPRT command successful.\r\n");
    c.send(Client, b"EPRT |1|198.51.100.2|1023|\r\n")
        .send(Server, b"200 EPRT command successful.\r\n");
    c.send(Client, b"PORT 198,51,100,2,4,0\r\n")
        .send(Server, b"200 PORT command successful.\r\n");
    let (actions, engine) = run(&c);
    assert_eq!(
        actions,
        vec![
            "refuse PORT privileged-port",
            "refuse EPRT privileged-port",
            "refuse EPRT privileged-port",
            "install tcp 203.0.113.2 -> 198.51.100.2:1024 PORT",
        ]
    );
    assert_eq!(engine.stats().refused, 3);
}

#[test]
fn a_227_sent_by_the_client_is_not_a_reply() {
    // Reply spoofing: the client writes a reply line into its own stream, hoping the gateway
    // opens client -> third host (or itself -> server) as if the server had said it.
    let mut c = logged_in();
    c.send(Client, b"227 Entering Passive Mode (192,0,2,99,195,80)\r\n")
        .send(Server, b"500 Unknown command.\r\n");
    c.send(
        Client,
        b"229 Entering Extended Passive Mode (|||50001|)\r\n",
    )
    .send(Server, b"500 Unknown command.\r\n");
    // Pipelined with a real PASV, in one segment: only the server's answer counts.
    c.send(
        Client,
        b"PASV\r\n227 Entering Passive Mode (203,0,113,2,195,81)\r\n",
    )
    .send(Server, &reply_227(50002))
    .send(Server, b"500 Unknown command.\r\n");
    let (actions, engine) = run(&c);
    assert_eq!(
        actions,
        vec!["install tcp 198.51.100.2 -> 203.0.113.2:50002 227"]
    );
    assert_eq!(engine.stats().announcements, 1, "client lines are commands");
}

#[test]
fn a_port_sent_by_the_server_is_not_a_command() {
    // The server writes a command into its reply stream, hoping for server -> client:port
    // (or a third host) as if the client had announced it.
    let mut c = logged_in();
    c.send(Client, b"NOOP\r\n")
        .send(Server, b"PORT 198,51,100,2,195,80\r\n200 NOOP ok.\r\n");
    c.send(Client, b"NOOP\r\n").send(
        Server,
        b"200-PORT 198,51,100,2,195,81\r\n200 EPRT |1|192.0.2.99|50000|\r\n",
    );
    // A 227 nobody asked for.
    c.send(Server, &reply_227(50003));
    let (actions, engine) = run(&c);
    assert_eq!(actions, vec!["refuse 227 unsolicited"]);
    assert_eq!(engine.expectations().len(), 0);
}

// ------------------------------------------------------------ NAT slipstreaming

/// The request a malicious web page makes a browser send to port 21: the body is sized so
/// that `PORT` starts a TCP segment (the attacker controls the MSS it is cut at).
fn slipstream_request() -> (Vec<u8>, usize) {
    let body = b"PORT 198,51,100,2,12,234\r\nEPRT |1|198.51.100.2|3306|\r\n";
    let head = format!(
        "POST /upload HTTP/1.1\r\nHost: 203.0.113.2:21\r\nContent-Type: text/plain\r\n\
         Content-Length: {}\r\n\r\n",
        body.len() + 64
    );
    let mut req = head.into_bytes();
    let at = req.len();
    req.extend_from_slice(body);
    req.extend_from_slice(&[b'x'; 64]);
    (req, at)
}

#[test]
fn slipstreamed_port_at_every_segment_start_opens_nothing() {
    let (req, at) = slipstream_request();
    for greet in [false, true] {
        // Every cut point in the request, the attacker's chosen one included.
        for cut in (1..req.len()).step_by(7).chain([at]) {
            let mut c = Conversation::new(addr(CLIENT), addr(SERVER));
            c.handshake();
            if greet {
                c.send(Server, b"220 ProFTPD Server ready.\r\n");
            }
            c.send_split(Client, &req, &[cut]);
            c.send(Server, b"500 POST not understood\r\n");
            let mut engine = Engine::new(Config {
                allow_privileged_ports: true,
                ..Config::default()
            });
            let actions = feed(&mut engine, c.packets());
            assert_eq!(installs(&actions), 0, "cut {cut}: {actions:?}");
            assert_eq!(engine.stats().announcements, 0, "cut {cut}");
            if greet {
                assert_eq!(actions, vec!["note poisoned client-not-ftp"], "cut {cut}");
            }
        }
    }
}

#[test]
fn slipstream_after_the_tombstone_is_still_ignored() {
    // The browser keeps the connection alive and sends a second request later: the
    // connection is a tombstone and is never read again, not even after a pause.
    let (req, at) = slipstream_request();
    let mut c = Conversation::new(addr(CLIENT), addr(SERVER));
    c.handshake().send(Server, b"220 ready\r\n");
    c.send(Client, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    c.wait(Duration::from_secs(100));
    c.send_split(Client, &req, &[at]);
    c.send(Client, b"PORT 198,51,100,2,195,80\r\n");
    let (actions, engine) = run(&c);
    assert_eq!(actions, vec!["note poisoned client-not-ftp"]);
    assert_eq!(engine.stats().poisoned, 1);
    assert_eq!(engine.stats().announcements, 0);
}

// ------------------------------------------------------------ hostile servers

#[test]
fn a_hostile_server_announcing_third_hosts_and_privileged_ports_gets_nothing() {
    let mut c = logged_in();
    let lies: [&[u8]; 5] = [
        b"227 Entering Passive Mode (192,0,2,99,195,80).\r\n",
        b"227 Entering Passive Mode (198,51,100,2,195,80).\r\n",
        b"227 Entering Passive Mode (203,0,113,2,0,22).\r\n",
        b"227 Entering Passive Mode (255,255,255,255,195,80).\r\n",
        b"229 Entering Extended Passive Mode (|||22|)\r\n",
    ];
    for lie in lies {
        let verb: &[u8] = if lie.starts_with(b"229") {
            b"EPSV\r\n"
        } else {
            b"PASV\r\n"
        };
        c.send(Client, verb).send(Server, lie);
    }
    let (actions, engine) = run(&c);
    assert_eq!(
        actions,
        vec![
            "refuse 227 hijack",
            "refuse 227 hijack",
            "refuse 227 privileged-port",
            "refuse 227 unusable-address",
            "refuse 229 privileged-port",
        ]
    );
    assert_eq!(engine.stats().refused, 5);
}

#[test]
fn a_server_flooding_227s_gets_one_pinhole_per_pasv_and_the_bound() {
    // 10,000 227 replies, all in a few segments, to 3 PASV commands: 3 are solicited, the
    // rest are refused as unsolicited (counted; the log is rate-limited in the daemon).
    let mut c = logged_in();
    c.send(Client, b"PASV\r\nPASV\r\nPASV\r\n");
    let mut flood = Vec::new();
    for i in 0..10_000u32 {
        flood.extend_from_slice(&reply_227(50_000 + i % 10_000));
        if flood.len() > 1400 {
            c.send(Server, &flood);
            flood.clear();
        }
    }
    c.send(Server, &flood);
    let (actions, engine) = run(&c);
    assert_eq!(installs(&actions), 3);
    assert_eq!(engine.expectations().len(), 3);
    assert_eq!(engine.stats().refused, 9_997);
    assert_eq!(engine.stats().announcements, 10_000);
}

#[test]
fn a_server_sending_endless_lines_stays_within_the_line_cap() {
    // 64 KiB and 1 MiB without a newline, then a multi-line reply that never ends: memory
    // stays bounded, and the next real 227 is still read.
    let cap = Config::default().max_line;
    let mut c = logged_in();
    c.send(Client, b"PASV\r\n");
    for _ in 0..(64 * 1024 / 1400 + 1) {
        c.send(Server, &[b'A'; 1400]);
    }
    c.send(Server, b"\r\n");
    for _ in 0..(1 << 20) / 1400 {
        c.send(Server, &[b'9'; 1400]);
    }
    c.send(Server, b"\r\n");
    let mut continuation = b"227-".to_vec();
    continuation.extend_from_slice(&[b'z'; 1000]);
    continuation.extend_from_slice(b"\r\n");
    for _ in 0..2000 {
        c.send(Server, &continuation);
    }
    c.send(Server, &reply_227(50_000));
    c.send(Client, b"PASV\r\n").send(Server, &reply_227(50_001));
    let mut engine = Engine::new(Config::default());
    let mut peak = 0;
    let mut actions = Vec::new();
    for p in c.packets() {
        engine.handle_packet(p.time, &p.bytes);
        peak = peak.max(engine.buffered());
        actions.extend(drain(&mut engine));
    }
    assert!(peak <= 2 * cap + 4096, "peak {peak} bytes buffered");
    assert!(engine.stats().overlong_lines >= 2);
    assert!(
        actions.contains(&"install tcp 198.51.100.2 -> 203.0.113.2:50001 227".to_string()),
        "{actions:?}"
    );
}

// ------------------------------------------------------------ TCP evasion

#[test]
fn overlapping_retransmissions_with_other_bytes_keep_the_first_copy() {
    // The first copy covers the start of the line; a later, longer copy of the same range
    // says something else and adds the rest. The receiver keeps the first copy of each
    // byte (Linux's out-of-order queue and in-order receive do), and so does the gateway.
    let mut c = logged_in();
    let first = c.segment_at(Client, 0, b"PORT 198,51,100,2,19");
    let second = c.segment_at(Client, 0, b"PORT 192,000,002,99,5,80\r\n");
    c.emit(first).emit(second);
    c.advance(Client, 26);
    c.send(Server, b"200 ok\r\n");
    // Out of order: the tail first, then the true head, then a longer head that disagrees
    // with both (its bytes are all old by then).
    c.send(Client, b"NOOP\r\n").send(Server, b"200 ok\r\n");
    let line = b"PORT 198,51,100,2,195,81\r\n";
    let tail = c.segment_at(Client, 10, &line[10..]);
    let head_true = c.segment_at(Client, 0, &line[..11]);
    let head = c.segment_at(Client, 0, b"PORT 192,0,2,99,195,");
    c.emit(tail).emit(head_true).emit(head);
    c.advance(Client, line.len());
    let (actions, engine) = run(&c);
    // First: "PORT 198,51,100,2,19" + "5,80\r\n" from the second copy (which alone would
    // have been a bounce to 192.0.2.99).
    assert_eq!(
        actions,
        vec![
            "note conflict",
            "install tcp 203.0.113.2 -> 198.51.100.2:50000 PORT",
            "install tcp 203.0.113.2 -> 198.51.100.2:50001 PORT",
        ]
    );
    assert_eq!(engine.stats().conflicts, 2);
}

#[test]
fn one_byte_segments_make_exactly_one_pinhole() {
    let mut c = logged_in();
    let line = b"PORT 198,51,100,2,195,80\r\n";
    let cuts: Vec<usize> = (1..line.len()).collect();
    c.send_split(Client, line, &cuts);
    c.send(Server, b"200 ok\r\n").send(Client, b"PASV\r\n");
    let reply = reply_227(50_001);
    let cuts: Vec<usize> = (1..reply.len()).collect();
    c.send_split(Server, &reply, &cuts);
    let (actions, _) = run(&c);
    assert_eq!(
        actions,
        vec![
            "install tcp 203.0.113.2 -> 198.51.100.2:50000 PORT",
            "install tcp 198.51.100.2 -> 203.0.113.2:50001 227",
        ]
    );
}

#[test]
fn out_of_window_and_old_segments_are_not_read() {
    let mut c = logged_in();
    // Far beyond the window (2 MiB ahead): never held, never read.
    let far = c.segment_at(Client, 2 << 20, b"PORT 198,51,100,2,195,80\r\n");
    // Before the stream's start (an old segment from "before" the login): a retransmission
    // of bytes already read, which must not be read again.
    let old = c.segment_at(Client, -14, b"PORT 198,51,100,2,195,81\r\n");
    // Wrapped around: 2^31 behind.
    let wrapped = c.segment_at(Client, -(1 << 31), b"PORT 198,51,100,2,195,82\r\n");
    c.emit(far).emit(old).emit(wrapped);
    c.send(Client, b"NOOP\r\n").send(Server, b"200 ok\r\n");
    let (actions, engine) = run(&c);
    assert_eq!(installs(&actions), 0, "{actions:?}");
    assert!(engine.stats().unbuffered >= 1);
}

#[test]
fn rst_injected_mid_line() {
    // An RST at the right sequence number ends the connection: the rest of the line is not
    // read (the server's socket is gone too). An RST far from it is ignored, and the line
    // completes normally.
    let mut c = logged_in();
    c.send(Client, b"PORT 198,51,100,2,");
    c.rst(Server);
    c.send(Client, b"195,80\r\n");
    let (actions, engine) = run(&c);
    assert_eq!(installs(&actions), 0, "{actions:?}");
    assert_eq!(engine.flow_count_of(ftp_alg::flow::table::Tier::Proven), 0);

    let mut c = logged_in();
    c.send(Client, b"PORT 198,51,100,2,");
    let (client, server) = c.ends();
    let blind = tcp(
        server,
        client,
        0x7fff_0000,
        None,
        Flags {
            rst: true,
            ..Flags::default()
        },
        b"",
    );
    c.emit(blind);
    c.send(Client, b"195,80\r\n");
    let (actions, _) = run(&c);
    assert_eq!(
        actions,
        vec!["install tcp 203.0.113.2 -> 198.51.100.2:50000 PORT"]
    );
}

/// `datagram` (IPv4, TCP, no options) with URG set and the urgent pointer at `pointer`.
fn with_urgent(mut datagram: Vec<u8>, pointer: u16) -> Vec<u8> {
    datagram[20 + 13] |= 0x20;
    datagram[20 + 18..20 + 20].copy_from_slice(&pointer.to_be_bytes());
    datagram
}

#[test]
fn urgent_data_is_read_in_band_and_judged_as_read() {
    // Telnet Synch before ABOR (RFC 959 §4.1.3): IAC IP, IAC DM with the urgent pointer at
    // the DM. The line is read as ABOR, and a pending PORT is answered by its 426/226.
    let mut c = logged_in();
    c.send(Client, b"PORT 198,51,100,2,195,80\r\n")
        .send(Server, b"200 ok\r\n");
    let synch = with_urgent(c.segment_at(Client, 0, b"\xff\xf4\xff\xf2ABOR\r\n"), 4);
    c.emit(synch).advance(Client, 10);
    c.send(Server, b"225 ABOR ok\r\n");
    // An urgent byte inside an announcement: a Linux receiver without SO_OOBINLINE takes
    // one byte out of the stream ("195,80" becomes "15,80"), the gateway reads it in band.
    // Either way the pinhole is judged on what the gateway read and can only differ from
    // what the server dials (which the firewall then drops): it never widens.
    let urgent = with_urgent(c.segment_at(Client, 0, b"PORT 198,51,100,2,195,81\r\n"), 20);
    c.emit(urgent).advance(Client, 26);
    let bounce = with_urgent(c.segment_at(Client, 0, b"PORT 192,0,2,99,195,82\r\n"), 10);
    c.emit(bounce).advance(Client, 24);
    let (actions, _) = run(&c);
    assert_eq!(
        actions,
        vec![
            "install tcp 203.0.113.2 -> 198.51.100.2:50000 PORT",
            "install tcp 203.0.113.2 -> 198.51.100.2:50001 PORT",
            "refuse PORT bounce",
        ]
    );
}

#[test]
fn telnet_iac_inside_commands_and_replies() {
    let mut c = logged_in();
    // IAC NOP inside the verb, IAC IAC (a literal 0xFF) inside the numbers, an option
    // negotiation (IAC WILL x) that swallows a digit: the gateway reads what a Telnet
    // receiver reads, and the policy judges that.
    c.send(Client, b"PO\xff\xf1RT 198,51,100,2,195,80\r\n")
        .send(Server, b"200 ok\r\n");
    c.send(Client, b"PORT 198,51,100,2,195,\xff\xff80\r\n")
        .send(Server, b"500 Illegal PORT command.\r\n");
    c.send(Client, b"PORT 192,0,2,\xff\xfb999,195,81\r\n")
        .send(Server, b"500 Illegal PORT command.\r\n");
    c.send(Client, b"PASV\r\n").send(
        Server,
        b"227 Entering Passive Mode (203,0,113,2,\xff\xf1195,82).\r\n",
    );
    c.send(Client, b"PASV\r\n").send(
        Server,
        b"227 Entering Passive Mode (203,0,113,2,195,8\xff\xfd3).\r\n",
    );
    let (actions, _) = run(&c);
    assert_eq!(
        actions,
        vec![
            "install tcp 203.0.113.2 -> 198.51.100.2:50000 PORT",
            "refuse PORT malformed",
            "refuse PORT bounce",
            "install tcp 198.51.100.2 -> 203.0.113.2:50002 227",
            "install tcp 198.51.100.2 -> 203.0.113.2:49928 227",
        ]
    );
}

#[test]
fn a_syn_without_a_handshake_expires_and_opens_nothing() {
    let mut c = Conversation::new(addr(CLIENT), addr(SERVER));
    let (client, server) = c.ends();
    c.emit(conversation::syn(client, server));
    // Data "after" a SYN that was never answered: not a session, never read as FTP.
    let data = tcp(
        client,
        server,
        78,
        Some(1),
        Flags {
            psh: true,
            ..Flags::default()
        },
        b"PORT 198,51,100,2,195,80\r\n",
    );
    c.emit(data);
    let (actions, mut engine) = run(&c);
    assert_eq!(installs(&actions), 0, "{actions:?}");
    engine.handle_timeout(c.now() + Duration::from_secs(61));
    assert_eq!(engine.flow_count(), 0, "the embryonic connection expired");
}

// ------------------------------------------------------------ floods

/// Feed `n` PASV/227 exchanges of one logged-in session; returns the wall time per
/// announcement in nanoseconds, and the engine.
fn pasv_flood(n: u32) -> (f64, Engine) {
    let mut c = logged_in();
    for i in 0..n {
        c.send(Client, b"PASV\r\n")
            .send(Server, &reply_227(1024 + i % 60_000));
    }
    let mut engine = Engine::new(Config::default());
    let packets = c.take_packets();
    let started = WallClock::now();
    for p in &packets {
        engine.handle_packet(p.time, &p.bytes);
        while engine.poll_action().is_some() {}
    }
    let nanos = started.elapsed().as_nanos() as f64 / f64::from(n);
    (nanos, engine)
}

#[test]
fn tens_of_thousands_of_pasv_cost_linear_time_and_bounded_state() {
    let mut per = Vec::new();
    for n in [1_000u32, 10_000, 50_000] {
        // The best of three runs (the machine is shared).
        let best = (0..3)
            .map(|_| {
                let (nanos, engine) = pasv_flood(n);
                assert_eq!(engine.stats().expectations, u64::from(n));
                assert_eq!(engine.expectations().len(), 4, "the per-connection bound");
                assert!(engine.buffered() < 4096);
                nanos
            })
            .fold(f64::INFINITY, f64::min);
        per.push(best);
    }
    let ratio_10k = per[1] / per[0];
    let ratio_50k = per[2] / per[0];
    eprintln!(
        "hostile: PASV flood, time per announcement: 1k {:.0} ns, 10k {:.0} ns, 50k {:.0} ns; \
         ratio 10k/1k {ratio_10k:.2}, 50k/1k {ratio_50k:.2}",
        per[0], per[1], per[2]
    );
    // Quadratic cost would make the 50k ratio about 50; linear is about 1.
    assert!(ratio_50k < 10.0, "50k/1k ratio {ratio_50k:.2}");
}

#[test]
fn pasv_floods_across_sessions_hit_the_per_client_and_total_bounds() {
    // 400 sessions of one client, 100 PASVs each: 4 per session would be 1,600; the
    // client's share is 256. Then 200 other clients (4 each, the per-connection bound) fill
    // the total bound of 1,000.
    let config = Config {
        max_expectations_total: 1_000,
        expectation_lifetime: Duration::from_secs(3600),
        ..Config::default()
    };
    let mut engine = Engine::new(config);
    let mut t = Instant::from_micros(1_000_000);
    let mut session = |engine: &mut Engine, client: SocketAddr, pasvs: u32| {
        let mut c = Conversation::new(client, addr(SERVER)).starting_at(t);
        c.login();
        for i in 0..pasvs {
            c.send(Client, b"PASV\r\n").send(
                Server,
                &reply_227(1024 + (u32::from(client.port()) % 500 * 100 + i) % 60_000),
            );
        }
        for p in c.take_packets() {
            engine.handle_packet(p.time, &p.bytes);
            while engine.poll_action().is_some() {}
        }
        t = c.now();
    };
    for s in 0..400u16 {
        session(
            &mut engine,
            SocketAddr::new(addr(CLIENT).ip(), 20_000 + s),
            100,
        );
        assert!(engine.expectations().len() <= 256);
    }
    assert_eq!(engine.expectations().len(), 256);
    assert!(engine.stats().refused_client_limit > 0);
    for h in 0..200u16 {
        let client = SocketAddr::from(([198, 51, 100, 10 + (h % 200) as u8], 30_000 + h));
        session(&mut engine, client, 20);
        assert!(engine.expectations().len() <= 1_000);
    }
    assert_eq!(engine.expectations().len(), 1_000);
    assert!(engine.stats().refused_total_limit > 0);
}

#[test]
fn client_lines_of_64_kib_and_more_without_a_newline() {
    let cap = Config::default().max_line;
    let mut c = logged_in();
    for size in [64 * 1024, 65 * 1024, 4 << 20] {
        let mut left = size;
        while left > 0 {
            let n = left.min(1400);
            c.send(Client, &vec![b'P'; n]);
            left -= n;
        }
        c.send(Client, b"\r\n")
            .send(Server, b"500 Line too long.\r\n");
    }
    c.send(Client, b"PORT 198,51,100,2,195,80\r\n")
        .send(Server, b"200 ok\r\n");
    let mut engine = Engine::new(Config::default());
    let mut peak = 0;
    let mut actions = Vec::new();
    for p in c.packets() {
        engine.handle_packet(p.time, &p.bytes);
        peak = peak.max(engine.buffered());
        actions.extend(drain(&mut engine));
    }
    assert!(peak <= cap + 4096, "peak {peak}");
    assert_eq!(engine.stats().overlong_lines, 3);
    assert_eq!(
        actions,
        vec!["install tcp 203.0.113.2 -> 198.51.100.2:50000 PORT"]
    );
}

// ------------------------------------------------------------ malformed datagrams

#[test]
fn truncated_datagrams_never_open_anything_and_the_real_one_still_does() {
    let c = logged_in();
    let port = c.segment_at(Client, 0, b"PORT 198,51,100,2,195,80\r\n");
    let (actions, mut engine) = run(&c);
    assert_eq!(installs(&actions), 0);
    let now = c.now();
    for cut in 0..port.len() {
        let mut short = port[..cut].to_vec();
        if cut >= 4 {
            // The IP total length says what is really there, as the kernel would insist.
            short[2..4].copy_from_slice(&(cut as u16).to_be_bytes());
        }
        engine.handle_packet(now, &short);
        assert!(
            drain(&mut engine).iter().all(|a| !a.starts_with("install")),
            "cut at {cut}"
        );
    }
    assert!(
        engine.stats().malformed_packets >= 40,
        "{:?}",
        engine.stats()
    );
    engine.handle_packet(now, &port);
    assert_eq!(
        drain(&mut engine),
        vec!["install tcp 203.0.113.2 -> 198.51.100.2:50000 PORT"]
    );
}

/// Insert 4 bytes of IPv4 options (NOP NOP NOP EOL) after the fixed header.
fn with_ipv4_options(datagram: &[u8]) -> Vec<u8> {
    let mut out = datagram[..20].to_vec();
    out.extend_from_slice(&[1, 1, 1, 0]);
    out.extend_from_slice(&datagram[20..]);
    out[0] = 0x46;
    let total = out.len() as u16;
    out[2..4].copy_from_slice(&total.to_be_bytes());
    out[10..12].copy_from_slice(&[0, 0]);
    let sum = ftp_alg::wire::checksum::sum(&out[..24]);
    out[10..12].copy_from_slice(&(!sum).to_be_bytes());
    out
}

/// Insert an IPv6 extension header `kind` (8 bytes, PadN) after the fixed header.
fn with_ipv6_extension(datagram: &[u8], kind: u8) -> Vec<u8> {
    let mut out = datagram[..40].to_vec();
    let next = out[6];
    out[6] = kind;
    out.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
    out.extend_from_slice(&datagram[40..]);
    let len = u16::from_be_bytes([out[4], out[5]]) + 8;
    out[4..6].copy_from_slice(&len.to_be_bytes());
    out
}

#[test]
fn ip_options_and_ipv6_extension_headers_are_read_through() {
    let mut c = logged_in();
    let pasv = with_ipv4_options(&c.segment_at(Client, 0, b"PASV\r\n"));
    c.emit(pasv).advance(Client, 6);
    let reply = with_ipv4_options(&c.segment_at(Server, 0, &reply_227(50_000)));
    c.emit(reply).advance(Server, reply_227(50_000).len());
    let (actions, _) = run(&c);
    assert_eq!(
        actions,
        vec!["install tcp 198.51.100.2 -> 203.0.113.2:50000 227"]
    );

    let mut c = Conversation::new(
        addr("[2001:db8:100::2]:40000"),
        addr("[2001:db8:113::2]:21"),
    );
    c.login();
    // Hop-by-hop options (0), destination options (60).
    let epsv = with_ipv6_extension(&c.segment_at(Client, 0, b"EPSV\r\n"), 0);
    c.emit(epsv).advance(Client, 6);
    let reply = b"229 Entering Extended Passive Mode (|||50001|)\r\n";
    let r = with_ipv6_extension(&c.segment_at(Server, 0, reply), 60);
    c.emit(r).advance(Server, reply.len());
    let eprt = b"EPRT |2|2001:db8:100::2|50002|\r\n";
    let e = with_ipv6_extension(&c.segment_at(Client, 0, eprt), 60);
    c.emit(e).advance(Client, eprt.len());
    let (actions, _) = run(&c);
    assert_eq!(
        actions,
        vec![
            "install tcp 2001:db8:100::2 -> [2001:db8:113::2]:50001 229",
            "install tcp 2001:db8:113::2 -> [2001:db8:100::2]:50002 EPRT",
        ]
    );
}

#[test]
fn fragments_are_not_judged_and_follow_the_unjudged_policy() {
    let c = logged_in();
    let (_, mut open) = run(&c);
    let mut closed = Engine::new(Config {
        unjudged: Unjudged::Drop,
        ..Config::default()
    });
    feed(&mut closed, c.packets());
    let port = c.segment_at(Client, 0, b"PORT 198,51,100,2,195,80\r\n");
    // IPv4: the first fragment (MF) and a later one (offset 8).
    let mut first = port.clone();
    first[6] = 0x20;
    let mut later = port.clone();
    later[6..8].copy_from_slice(&1u16.to_be_bytes());
    // IPv6: a fragment header (44) with M set.
    let mut c6 = Conversation::new(
        addr("[2001:db8:100::2]:40000"),
        addr("[2001:db8:113::2]:21"),
    );
    c6.login();
    let (_, mut open6) = run(&c6);
    let eprt = c6.segment_at(Client, 0, b"EPRT |2|2001:db8:100::2|50002|\r\n");
    let mut frag6 = with_ipv6_extension(&eprt, 44);
    frag6[40 + 2..40 + 4].copy_from_slice(&1u16.to_be_bytes());
    let now = c.now();
    for datagram in [&first, &later] {
        assert_eq!(open.handle_packet(now, datagram), Verdict::Accept);
        assert!(drain(&mut open).is_empty());
    }
    assert_eq!(open6.handle_packet(now, &frag6), Verdict::Accept);
    assert!(drain(&mut open6).is_empty());
    assert_eq!(closed.handle_packet(now, &first), Verdict::Drop);
    assert_eq!(open.stats().fragments, 2);
    assert_eq!(open6.stats().fragments, 1);
    // The sender's retransmission, unfragmented, is read.
    open.handle_packet(now, &port);
    assert_eq!(
        drain(&mut open),
        vec!["install tcp 203.0.113.2 -> 198.51.100.2:50000 PORT"]
    );
}

#[test]
fn bad_checksums_with_and_without_verification() {
    // With --verify-checksums a segment the receiver would drop is not read, and the
    // sender's good copy is. Without it (the default) the first copy wins, as for any
    // conflicting retransmission: an insertion can spoil a line (no pinhole: fail closed)
    // but a pinhole is only ever opened for what the policy accepts. On the live gateway the
    // ruleset's `ct state invalid drop` drops such a segment before it is queued
    // (hostile-tests.sh, malformed part).
    let mut c = logged_in();
    let mut bad = c.segment_at(Client, 0, b"PORT 198,51,100,2,195,99\r\n");
    let last = bad.len() - 5;
    bad[last] ^= 0x01;
    let good = c.segment_at(Client, 0, b"PORT 198,51,100,2,195,80\r\n");
    c.emit(bad).emit(good).advance(Client, 26);
    let mut verifying = Engine::new(Config {
        verify_checksums: true,
        ..Config::default()
    });
    assert_eq!(
        feed(&mut verifying, c.packets()),
        vec!["install tcp 203.0.113.2 -> 198.51.100.2:50000 PORT"]
    );
    assert_eq!(verifying.stats().bad_checksums, 1);
    let (actions, _) = run(&c);
    assert_eq!(actions, vec!["refuse PORT malformed", "note conflict"]);
}

// ------------------------------------------------------------ AUTH TLS

#[test]
fn a_cleartext_port_injected_into_the_tls_stream_is_not_trusted() {
    let mut c = logged_in();
    c.send(Client, b"AUTH TLS\r\n")
        .send(Server, b"234 Proceed.\r\n");
    // ClientHello, then a cleartext PORT in a segment of its own, at a segment start.
    c.send(Client, b"\x16\x03\x01\x00\x05hello");
    c.send(Client, b"PORT 198,51,100,2,195,80\r\n");
    c.send(Server, b"\x16\x03\x03\x00\x05hello");
    c.send(Server, &reply_227(50_000));
    c.send(Client, b"PASV\r\n");
    c.send(Server, b"200 PORT command successful.\r\n");
    let (actions, engine) = run(&c);
    assert_eq!(actions, vec!["note encrypted"]);
    assert_eq!(engine.stats().tls_control, 1);
    assert_eq!(engine.stats().announcements, 0);
    assert_eq!(engine.buffered(), 0);
}

#[test]
fn a_port_pipelined_behind_auth_tls_waits_for_the_answer() {
    // Sent in the same segment as AUTH TLS: held until the answer. After 234 it is part of
    // what the server reads as TLS: discarded. After a refusal (534) it is a command.
    let mut c = logged_in();
    c.send(Client, b"AUTH TLS\r\nPORT 198,51,100,2,195,80\r\n")
        .send(Server, b"234 Proceed.\r\n");
    let (actions, _) = run(&c);
    assert_eq!(actions, vec!["note encrypted"]);
    let mut c = logged_in();
    c.send(Client, b"AUTH TLS\r\nPORT 198,51,100,2,195,80\r\n")
        .send(Server, b"534 TLS not available.\r\n200 ok\r\n");
    let (actions, _) = run(&c);
    assert_eq!(
        actions,
        vec!["install tcp 203.0.113.2 -> 198.51.100.2:50000 PORT"]
    );
}
