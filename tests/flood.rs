//! Floods cannot evict real sessions, and every byte and pinhole stays bounded: the engine
//! under the flow-table and buffer floods of the "exact pinholes" issue, with a logged-in
//! session whose pinhole must survive.

use std::net::IpAddr;
use std::net::SocketAddr;

use ftp_alg::action::Action;
use ftp_alg::config::Config;
use ftp_alg::engine::Engine;
use ftp_alg::flow::table::Tier;
use ftp_alg::testkit::conversation::Conversation;
use ftp_alg::testkit::conversation::Flags;
use ftp_alg::testkit::conversation::Side::Client;
use ftp_alg::testkit::conversation::Side::Server;
use ftp_alg::testkit::conversation::tcp;
use ftp_alg::time::Duration;

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

fn actions(engine: &mut Engine) -> Vec<Action> {
    std::iter::from_fn(|| engine.poll_action()).collect()
}

/// A logged-in session of `client` that asked PASV and got its pinhole (its data port is
/// 50000 plus the client's port minus 40000); idle since.
fn idle_session_with_a_pinhole(engine: &mut Engine, client: &str) -> Conversation {
    let data = addr(client).port() - 40_000 + 50_000;
    let reply = format!(
        "227 Entering Passive Mode (203,0,113,2,{},{}).\r\n",
        data >> 8,
        data & 255
    );
    let mut c = Conversation::new(addr(client), addr("203.0.113.2:21"));
    c.login()
        .send(Client, b"PASV\r\n")
        .send(Server, reply.as_bytes());
    for p in c.take_packets() {
        engine.handle_packet(p.time, &p.bytes);
    }
    c
}

/// The same, where the pinhole must be the only thing that happened.
fn session(engine: &mut Engine, client: &str) -> Conversation {
    let c = idle_session_with_a_pinhole(engine, client);
    let installed = actions(engine);
    assert!(
        matches!(installed.as_slice(), [Action::Install(_)]),
        "{installed:?}"
    );
    c
}

/// One segment `NOOP\r\n` with ACK and PSH from `src` to 203.0.113.99:21, no handshake.
fn noop_from(src: SocketAddr) -> Vec<u8> {
    let flags = Flags {
        psh: true,
        ..Flags::default()
    };
    tcp(
        src,
        addr("203.0.113.99:21"),
        1000,
        Some(5000),
        flags,
        b"NOOP\r\n",
    )
}

#[test]
fn twenty_thousand_one_segment_connections_from_one_host_evict_no_real_session() {
    let mut engine = Engine::new(Config::default());
    let real = session(&mut engine, "198.51.100.2:40000");
    let start = real.now();
    for i in 0..20_000u32 {
        let src = SocketAddr::new(addr("192.0.2.66:0").ip(), 1024 + (i % 60_000) as u16);
        let at = start + Duration::from_micros(u64::from(i) * 50);
        engine.handle_packet(at, &noop_from(src));
    }
    let after = actions(&mut engine);
    assert!(
        !after.iter().any(|a| matches!(a, Action::Remove(_))),
        "the real session's pinhole was not revoked: {after:?}"
    );
    assert_eq!(engine.expectations().len(), 1);
    let stats = engine.stats();
    assert_eq!(stats.picked_up, 20_000);
    assert_eq!(
        stats.flows_source_capped,
        20_000 - 64,
        "one host churns its own 64"
    );
    assert_eq!(stats.flows_evicted, 0, "the table never filled");
    assert_eq!(engine.flow_count_of(Tier::Proven), 1);
    assert_eq!(engine.flow_count_of(Tier::Unproven), 64);
}

#[test]
fn a_flood_from_many_hosts_fills_the_table_but_evicts_unproven_flows_first() {
    let config = Config {
        max_flows: 1000,
        ..Config::default()
    };
    let mut engine = Engine::new(config);
    let mut sessions = Vec::new();
    for port in 0..10u16 {
        let client = format!("198.51.100.2:{}", 40000 + port);
        sessions.push(session(&mut engine, &client));
    }
    let start = sessions[9].now();
    for i in 0..20_000u32 {
        // 10,000 hosts (2 each): every source stays under its cap.
        let host = IpAddr::from([10, 0, (i / 2 / 256) as u8, (i / 2 % 256) as u8]);
        let src = SocketAddr::new(host, 1024 + (i % 2) as u16);
        engine.handle_packet(start + Duration::from_micros(u64::from(i)), &noop_from(src));
    }
    assert!(actions(&mut engine).is_empty(), "no pinhole revoked");
    assert_eq!(engine.flow_count(), 1000);
    assert_eq!(engine.flow_count_of(Tier::Proven), 10);
    assert_eq!(engine.stats().flows_evicted, 20_000 + 10 - 1000);
    assert_eq!(engine.stats().flows_evicted_proven, 0);
    assert_eq!(engine.expectations().len(), 10);
}

#[test]
fn proven_sessions_go_only_when_nothing_else_is_left_and_that_is_counted() {
    let config = Config {
        max_flows: 3,
        ..Config::default()
    };
    let mut engine = Engine::new(config);
    for port in 0..3u16 {
        session(&mut engine, &format!("198.51.100.2:{}", 40000 + port));
    }
    // The fourth session's SYN finds three proven sessions: the least recently active goes,
    // and its pinhole with it.
    idle_session_with_a_pinhole(&mut engine, "198.51.100.2:40003");
    let seen = actions(&mut engine);
    assert!(
        matches!(&seen[..], [Action::Remove(r), Action::Install(_)] if r.expectation.key.dport.get() == 50000),
        "{seen:?}"
    );
    assert_eq!(engine.stats().flows_evicted_proven, 1);
    assert_eq!(engine.flow_count_of(Tier::Proven), 3);
    assert_eq!(engine.expectations().len(), 3, "its pinhole went with it");
}

#[test]
fn a_connection_that_is_not_ftp_becomes_a_tombstone_and_stays_unread() {
    let mut engine = Engine::new(Config::default());
    let mut c = Conversation::new(addr("198.51.100.2:40000"), addr("203.0.113.2:21"));
    c.handshake()
        .send(Server, b"220 ready\r\n")
        .send(Client, b"GET / HTTP/1.1\r\n")
        .send(Client, b"PORT 198,51,100,2,195,80\r\n");
    for p in c.take_packets() {
        engine.handle_packet(p.time, &p.bytes);
    }
    let seen = actions(&mut engine);
    assert!(
        !seen.iter().any(|a| matches!(a, Action::Install(_))),
        "{seen:?}"
    );
    assert_eq!(
        engine.flow_count_of(Tier::Unproven),
        1,
        "a tombstone, unproven"
    );
    assert_eq!(engine.buffered(), 0, "a tombstone holds no buffers");
    assert_eq!(engine.stats().poisoned, 1);
    assert_eq!(
        engine.stats().picked_up,
        0,
        "not picked up again as a new flow"
    );
    c.fin(Client).fin(Server);
    for p in c.take_packets() {
        engine.handle_packet(p.time, &p.bytes);
    }
    assert_eq!(
        engine.flow_count_of(Tier::Spent),
        1,
        "closed: spent, evicted first"
    );
}

#[test]
fn partial_lines_of_a_flood_are_bounded_by_the_budget_and_proven_sessions_keep_theirs() {
    let config = Config {
        max_buffered_bytes: 1 << 20,
        ..Config::default()
    };
    let mut engine = Engine::new(config);
    let mut real = session(&mut engine, "198.51.100.2:40000");
    // 2,000 unproven connections each hold an unfinished 4000-byte line (8 MB asked for).
    for i in 0..2_000u32 {
        let host = IpAddr::from([10, 1, (i / 250) as u8, (i % 250) as u8]);
        let mut c = Conversation::new(SocketAddr::new(host, 2000), addr("203.0.113.2:21"))
            .starting_at(real.now() + Duration::from_micros(u64::from(i)));
        c.handshake()
            .send(Server, b"220 ready\r\n")
            .send(Client, &[b'A'; 4000]);
        for p in c.take_packets() {
            engine.handle_packet(p.time, &p.bytes);
        }
        assert!(engine.buffered() <= 1 << 20);
    }
    assert!(engine.stats().shed_lines > 0, "the flood's lines were shed");
    // The real session's split PORT line still works: its half of the budget is intact.
    real.send_split(Client, b"PORT 198,51,100,2,195,81\r\n", &[10]);
    let packets = real.take_packets();
    let mut got = Vec::new();
    for p in &packets {
        engine.handle_packet(p.time, &p.bytes);
        got.extend(actions(&mut engine));
    }
    assert!(
        got.iter()
            .any(|a| matches!(a, Action::Install(e) if e.key.dport.get() == 50001)),
        "{got:?}"
    );
}

#[test]
fn one_client_cannot_take_every_pinhole() {
    let config = Config {
        max_expectations_per_client: 8,
        max_expectations_total: 12,
        ..Config::default()
    };
    let mut engine = Engine::new(config);
    for port in 0..5u16 {
        let mut c =
            idle_session_with_a_pinhole(&mut engine, &format!("198.51.100.2:{}", 40000 + port));
        // Three more per session: past 8 the client is refused.
        for n in 1..4u8 {
            c.send(Client, b"PASV\r\n").send(
                Server,
                format!("227 (203,0,113,2,197,{})\r\n", u16::from(n) + port * 4).as_bytes(),
            );
        }
        for p in c.take_packets() {
            engine.handle_packet(p.time, &p.bytes);
        }
        actions(&mut engine);
    }
    assert_eq!(engine.expectations().len(), 8);
    assert!(engine.stats().refused_client_limit > 0);
    // Another client still gets its pinholes, up to the total.
    let mut other = session(&mut engine, "198.51.100.3:40000");
    other
        .send(Client, b"PASV\r\n")
        .send(Server, b"227 (203,0,113,2,198,1)\r\n");
    for p in other.take_packets() {
        engine.handle_packet(p.time, &p.bytes);
    }
    assert_eq!(engine.expectations().len(), 10);
}
