//! Scripted two-party conversations through the [`Engine`], with a controlled clock.

use std::net::SocketAddr;

use super::*;
use crate::config::Policy;
use crate::testkit::actions::drain;
use crate::testkit::actions::feed;
use crate::testkit::conversation::Conversation;
use crate::testkit::conversation::Packet;
use crate::testkit::conversation::Side::Client;
use crate::testkit::conversation::Side::Server;
use crate::time::Duration;

const CLIENT: &str = "198.51.100.2:40000";
const SERVER: &str = "203.0.113.2:21";

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

/// A conversation that is past the handshake, the greeting and the login.
fn logged_in() -> Conversation {
    let mut c = Conversation::new(addr(CLIENT), addr(SERVER));
    c.handshake()
        .send(Server, b"220 ready\r\n")
        .send(Client, b"USER anonymous\r\n")
        .send(Server, b"331 pw\r\n")
        .send(Client, b"PASS x\r\n")
        .send(Server, b"230 ok\r\n");
    c
}

fn run(packets: &[Packet]) -> Vec<String> {
    feed(&mut Engine::new(Config::default()), packets)
}

#[test]
fn passive_and_active_expectations() {
    let mut c = logged_in();
    c.send(Client, b"PASV\r\n").send(
        Server,
        b"227 Entering Passive Mode (203,0,113,2,195,80).\r\n",
    );
    c.send(Client, b"PORT 198,51,100,2,195,81\r\n");
    assert_eq!(
        run(c.packets()),
        vec![
            "install tcp 198.51.100.2 -> 203.0.113.2:50000 227",
            "install tcp 203.0.113.2 -> 198.51.100.2:50001 PORT",
        ]
    );
}

#[test]
fn install_is_queued_by_the_packet_that_completes_the_line() {
    let mut c = logged_in();
    c.send_split(Client, b"PORT 198,51,100,2,195,80\r\n", &[2, 23]);
    let mut engine = Engine::new(Config::default());
    let packets = c.packets();
    let (last, before) = packets.split_last().unwrap();
    assert!(
        feed(&mut engine, before).is_empty(),
        "nothing before the line is complete"
    );
    engine.handle_packet(last.time, &last.bytes);
    assert_eq!(
        drain(&mut engine),
        vec!["install tcp 203.0.113.2 -> 198.51.100.2:50000 PORT"]
    );
}

#[test]
fn reply_split_inside_the_numbers_and_out_of_order() {
    let mut c = logged_in();
    c.send(Client, b"PASV\r\n");
    let reply = b"227 Entering Passive Mode (203,0,113,2,19";
    let second = c.segment_at(Server, reply.len() as i64, b"5,80)\r\n");
    let first = c.segment_at(Server, 0, reply);
    c.emit(second).emit(first.clone()).emit(first);
    let mut engine = Engine::new(Config::default());
    assert_eq!(
        feed(&mut engine, c.packets()),
        vec!["install tcp 198.51.100.2 -> 203.0.113.2:50000 227"]
    );
    assert_eq!(engine.stats().out_of_order, 1);
    assert_eq!(engine.stats().retransmissions, 1);
}

#[test]
fn strict_policy_refuses_bounce_hijack_and_privileged_ports() {
    let mut c = logged_in();
    c.send(Client, b"PORT 192,0,2,99,0,80\r\n")
        .send(Server, b"200 ok\r\n");
    c.send(Client, b"PASV\r\n")
        .send(Server, b"227 Entering Passive Mode (192,0,2,99,195,80)\r\n");
    c.send(Client, b"EPRT |1|198.51.100.2|22|\r\n");
    assert_eq!(
        run(c.packets()),
        vec![
            "refuse PORT bounce",
            "refuse 227 hijack",
            "refuse EPRT privileged-port"
        ]
    );
}

#[test]
fn loose_policy_trusts_the_announced_address() {
    let mut c = logged_in();
    c.send(Client, b"PASV\r\n")
        .send(Server, b"227 Entering Passive Mode (192,0,2,99,195,80)\r\n");
    let mut engine = Engine::new(Config {
        policy: Policy::Loose,
        ..Config::default()
    });
    assert_eq!(
        feed(&mut engine, c.packets()),
        vec!["install tcp 198.51.100.2 -> 192.0.2.99:50000 227"]
    );
}

#[test]
fn expectations_die_with_the_control_connection() {
    let mut c = logged_in();
    c.send(Client, b"PASV\r\n")
        .send(Server, b"227 (203,0,113,2,195,80)\r\n");
    c.rst(Client);
    assert_eq!(
        run(c.packets()),
        vec![
            "install tcp 198.51.100.2 -> 203.0.113.2:50000 227",
            "remove tcp 198.51.100.2 -> 203.0.113.2:50000 control-closed",
        ]
    );
    let mut fins = logged_in();
    fins.send(Client, b"PASV\r\n")
        .send(Server, b"227 (203,0,113,2,195,80)\r\n");
    fins.fin(Client);
    assert_eq!(run(fins.packets()).len(), 1, "one FIN is not the end");
    fins.fin(Server);
    assert_eq!(
        run(fins.packets()).last().unwrap(),
        "remove tcp 198.51.100.2 -> 203.0.113.2:50000 control-closed"
    );
}

/// A RST far from the expected sequence number is ignored, half the sequence space away
/// included (found by the `engine` fuzz target: `offset_from(..).abs()` overflowed there; a
/// panic with overflow checks, and without them it wrapped negative and the RST was believed).
#[test]
fn out_of_window_rst_is_ignored() {
    for distance in [1 << 20, 1 << 31] {
        let mut c = logged_in();
        c.send(Client, b"PASV\r\n")
            .send(Server, b"227 (203,0,113,2,195,80)\r\n");
        c.advance(Client, distance).rst(Client);
        assert_eq!(
            run(c.packets()),
            vec!["install tcp 198.51.100.2 -> 203.0.113.2:50000 227"],
            "RST {distance} bytes away"
        );
    }
}

#[test]
fn server_error_cancels_an_active_expectation() {
    let mut c = logged_in();
    c.send(Client, b"PORT 198,51,100,2,195,80\r\n")
        .send(Server, b"500 Illegal PORT command.\r\n");
    assert_eq!(
        run(c.packets()),
        vec![
            "install tcp 203.0.113.2 -> 198.51.100.2:50000 PORT",
            "remove tcp 203.0.113.2 -> 198.51.100.2:50000 cancelled",
        ]
    );
}

#[test]
fn newer_announcements_supersede_the_oldest() {
    let mut c = logged_in();
    for port in 0..3u8 {
        c.send(Client, b"PASV\r\n");
        c.send(
            Server,
            format!("227 (203,0,113,2,195,{port})\r\n").as_bytes(),
        );
    }
    c.send(Client, b"PASV\r\n")
        .send(Server, b"227 (203,0,113,2,195,1)\r\n");
    let config = Config {
        max_expectations_per_control: 2,
        ..Config::default()
    };
    let mut engine = Engine::new(config);
    assert_eq!(
        feed(&mut engine, c.packets()),
        vec![
            "install tcp 198.51.100.2 -> 203.0.113.2:49920 227",
            "install tcp 198.51.100.2 -> 203.0.113.2:49921 227",
            "remove tcp 198.51.100.2 -> 203.0.113.2:49920 superseded",
            "install tcp 198.51.100.2 -> 203.0.113.2:49922 227",
            "install tcp 198.51.100.2 -> 203.0.113.2:49921 227",
        ],
        "the oldest goes before the newest comes (the set never holds more than the bound); \
         the same key again refreshes, it is not added twice"
    );
}

#[test]
fn rein_and_quit_revoke() {
    let mut c = logged_in();
    c.send(Client, b"PASV\r\n")
        .send(Server, b"227 (203,0,113,2,195,80)\r\n");
    c.send(Client, b"REIN\r\n").send(Server, b"220 again\r\n");
    c.send(Client, b"PORT 198,51,100,2,195,81\r\n")
        .send(Server, b"200 ok\r\n");
    c.send(Client, b"QUIT\r\n").send(Server, b"221 bye\r\n");
    let actions = run(c.packets());
    assert_eq!(
        actions[1],
        "remove tcp 198.51.100.2 -> 203.0.113.2:50000 reset"
    );
    assert_eq!(
        actions[3],
        "remove tcp 203.0.113.2 -> 198.51.100.2:50001 reset"
    );
}

#[test]
fn expired_expectations_are_not_revoked() {
    let mut c = logged_in();
    c.send(Client, b"PASV\r\n")
        .send(Server, b"227 (203,0,113,2,195,80)\r\n");
    c.wait(Duration::from_secs(31)).rst(Server);
    assert_eq!(
        run(c.packets()),
        vec!["install tcp 198.51.100.2 -> 203.0.113.2:50000 227"]
    );
}

#[test]
fn idle_flows_expire_and_revoke() {
    let mut c = logged_in();
    c.send(Client, b"PASV\r\n")
        .send(Server, b"227 (203,0,113,2,195,80)\r\n");
    let config = Config {
        expectation_lifetime: Duration::from_secs(3600),
        timeouts: crate::config::Timeouts {
            established: Duration::from_secs(60),
            ..Default::default()
        },
        ..Config::default()
    };
    let mut engine = Engine::new(config);
    feed(&mut engine, c.packets());
    let deadline = engine.poll_timeout().unwrap();
    assert_eq!(
        deadline,
        c.packets().last().unwrap().time + Duration::from_secs(60)
    );
    engine.handle_timeout(deadline - Duration::from_micros(1));
    assert_eq!(engine.flow_count(), 1);
    engine.handle_timeout(deadline);
    assert_eq!(engine.flow_count(), 0);
    assert_eq!(
        drain(&mut engine),
        vec!["remove tcp 198.51.100.2 -> 203.0.113.2:50000 control-closed"]
    );
    assert_eq!(engine.poll_timeout(), None);
}

#[test]
fn full_table_evicts_and_revokes() {
    let mut first = logged_in();
    first
        .send(Client, b"PASV\r\n")
        .send(Server, b"227 (203,0,113,2,195,80)\r\n");
    let mut second =
        Conversation::new(addr("198.51.100.3:40000"), addr(SERVER)).starting_at(first.now());
    second.handshake();
    let mut engine = Engine::new(Config {
        max_flows: 1,
        ..Config::default()
    });
    feed(&mut engine, first.packets());
    assert_eq!(
        feed(&mut engine, second.packets()),
        vec!["remove tcp 198.51.100.2 -> 203.0.113.2:50000 control-closed"]
    );
    assert_eq!(engine.stats().flows_evicted, 1);
    assert_eq!(engine.flow_count(), 1);
}

#[test]
fn closing_a_connection_keeps_keys_another_one_took_over() {
    let mut first = logged_in();
    first
        .send(Client, b"PASV\r\n")
        .send(Server, b"227 (203,0,113,2,195,80)\r\n");
    let mut second =
        Conversation::new(addr("198.51.100.2:40001"), addr(SERVER)).starting_at(first.now());
    second
        .handshake()
        .send(Server, b"220 hi\r\n")
        .send(Client, b"PASV\r\n");
    second.send(Server, b"227 (203,0,113,2,195,80)\r\n");
    let mut engine = Engine::new(Config::default());
    feed(&mut engine, first.packets());
    feed(&mut engine, second.packets());
    first.wait(Duration::from_secs(1)).rst(Client);
    let last = first.packets().last().unwrap().clone();
    engine.handle_packet(second.now(), &last.bytes);
    assert!(
        drain(&mut engine).is_empty(),
        "the key now belongs to the second connection"
    );
}

#[test]
fn slipstreamed_port_inside_http_is_never_parsed() {
    let mut c = Conversation::new(addr(CLIENT), addr(SERVER));
    c.handshake().send(Server, b"220 ready\r\n");
    c.send_split(
        Client,
        b"POST /x HTTP/1.1\r\nHost: a\r\n\r\nPORT 198,51,100,2,0,25\r\n",
        &[30],
    );
    let mut engine = Engine::new(Config {
        allow_privileged_ports: true,
        ..Config::default()
    });
    assert_eq!(
        feed(&mut engine, c.packets()),
        vec!["note poisoned client-not-ftp"]
    );
    assert_eq!(engine.stats().poisoned, 1);
}

#[test]
fn port_line_without_a_greeting_is_never_parsed() {
    let mut c = Conversation::new(addr(CLIENT), addr(SERVER));
    c.handshake()
        .send(Client, b"PORT 198,51,100,2,195,80\r\n")
        .send(Server, b"HTTP/1.0 400 Bad\r\n");
    assert_eq!(run(c.packets()), vec!["note poisoned server-not-ftp"]);
}

#[test]
fn auth_tls_stops_parsing_and_frees_buffers() {
    let mut c = logged_in();
    c.send(Client, b"AUTH TLS\r\n").send(Server, b"234 go\r\n");
    c.send(
        Client,
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\nPORT 198,51,100,2,195,80\r\n",
    );
    c.send(Client, b"\x17\x03\x03 no line end");
    let mut engine = Engine::new(Config::default());
    assert_eq!(feed(&mut engine, c.packets()), vec!["note encrypted"]);
    assert_eq!(engine.stats().tls_control, 1);
    assert_eq!(engine.buffered(), 0);
}

/// Each TLS-upgraded session is noted exactly once: not again for a retransmitted `234`, for
/// encrypted records in either direction (even ones that look like lines), after a restart
/// from a snapshot, or at its close; a second session is noted on its own.
#[test]
fn an_encrypted_session_is_noted_exactly_once() {
    let mut c = logged_in();
    c.send(Client, b"AUTH TLS\r\n").send(Server, b"234 go\r\n");
    let again = c.segment_at(Server, -8, b"234 go\r\n");
    c.emit(again);
    c.send(Client, b"\x16\x03\x01 hello\r\n")
        .send(Server, b"\x16\x03\x03 hello\r\n234 again\r\n");
    let mut engine = Engine::new(Config::default());
    assert_eq!(feed(&mut engine, c.packets()), vec!["note encrypted"]);
    let mut saved = Vec::new();
    engine.save(&mut saved).unwrap();
    let (mut engine, _) =
        Engine::restore(Config::default(), &mut saved.as_slice(), c.now()).unwrap();
    assert_eq!(drain(&mut engine), Vec::<String>::new());
    c.take_packets();
    c.send(Client, b"\x17\x03\x03 PASV\r\n")
        .send(Server, b"\x17\x03\x03 227 (203,0,113,2,195,80)\r\n")
        .fin(Client)
        .fin(Server);
    let mut other =
        Conversation::new(addr("198.51.100.3:40001"), addr(SERVER)).starting_at(c.now());
    other
        .handshake()
        .send(Server, b"220 ready\r\n")
        .send(Client, b"AUTH SSL\r\n")
        .send(Server, b"234 go\r\n");
    let mut packets = c.take_packets();
    packets.extend(other.take_packets());
    assert_eq!(
        feed(&mut engine, &packets),
        vec!["note encrypted"],
        "the other session"
    );
    assert_eq!(engine.stats().tls_control, 1, "restored engines count anew");
}

#[test]
fn midstream_pickup_waits_for_a_line_boundary() {
    let mut c = logged_in();
    c.take_packets();
    c.send(Client, b"PASV\r\n")
        .send(Server, b"227 (203,0,113,2,195,80)\r\n");
    c.send(Client, b"PASV\r\n")
        .send(Server, b"227 (203,0,113,2,195,81)\r\n");
    let mut engine = Engine::new(Config::default());
    assert_eq!(
        feed(&mut engine, c.packets()),
        vec!["install tcp 198.51.100.2 -> 203.0.113.2:50001 227"]
    );
    assert_eq!(engine.stats().picked_up, 1);
    let mut off = Engine::new(Config {
        midstream_pickup: false,
        ..Config::default()
    });
    assert!(feed(&mut off, c.packets()).is_empty());
    assert_eq!(off.stats().untracked, 4);
}

#[test]
fn conflicting_retransmission_keeps_the_first_copy_and_is_noted() {
    let mut c = logged_in();
    let honest = c.segment_at(Client, 0, b"PORT 198,51,100,2,195,80\r\n");
    let evil = c.segment_at(Client, 0, b"PORT 198,51,100,2,195,99\r\n");
    c.emit(honest).emit(evil);
    let mut engine = Engine::new(Config::default());
    let actions = feed(&mut engine, c.packets());
    assert_eq!(
        actions,
        vec![
            "install tcp 203.0.113.2 -> 198.51.100.2:50000 PORT",
            "note conflict"
        ]
    );
    assert_eq!(engine.stats().conflicts, 1);
}

#[test]
fn unjudged_packets_follow_the_configured_policy() {
    let mut c = logged_in();
    let mut fragment = c.segment_at(Client, 0, b"PASV\r\n");
    fragment[6] |= 0x20;
    let mut open = Engine::new(Config::default());
    assert_eq!(open.handle_packet(c.now(), &fragment), Verdict::Accept);
    let closed_config = Config {
        unjudged: Unjudged::Drop,
        ..Config::default()
    };
    let mut closed = Engine::new(closed_config);
    assert_eq!(closed.handle_packet(c.now(), &fragment), Verdict::Drop);
    assert_eq!(
        closed.handle_packet(c.now(), &[0x45, 0, 0, 4]),
        Verdict::Drop
    );
    assert_eq!(closed.stats().fragments, 1);
    assert_eq!(closed.stats().malformed_packets, 1);
    c.take_packets();
    let ooo = c.segment_at(Client, 1 << 21, b"far ahead\r\n");
    let mut closed = Engine::new(Config {
        unjudged: Unjudged::Drop,
        ..Config::default()
    });
    feed(&mut closed, logged_in().packets());
    assert_eq!(
        closed.handle_packet(c.now(), &ooo),
        Verdict::Drop,
        "a segment it cannot hold"
    );
}

#[test]
fn global_budget_sheds_out_of_order_bytes() {
    let mut c = logged_in();
    let ahead = c.segment_at(Client, 100, &[b'x'; 2000]);
    c.emit(ahead);
    let mut engine = Engine::new(Config {
        max_buffered_bytes: 1000,
        ..Config::default()
    });
    feed(&mut engine, c.packets());
    assert_eq!(
        engine.stats().shed_bytes,
        2000,
        "out-of-order bytes (history of acknowledged bytes is not kept)"
    );
    assert!(engine.buffered() <= 1000);
}

#[test]
fn bad_checksums_are_ignored_when_checked() {
    let mut c = logged_in();
    let mut bad = c.segment_at(Client, 0, b"PORT 198,51,100,2,195,80\r\n");
    let last = bad.len() - 3;
    bad[last] ^= 1;
    c.emit(bad);
    let mut checking = Engine::new(Config {
        verify_checksums: true,
        ..Config::default()
    });
    assert!(feed(&mut checking, c.packets()).is_empty());
    assert_eq!(checking.stats().bad_checksums, 1);
}

#[test]
fn time_running_backwards_is_tolerated() {
    let mut c = logged_in();
    c.send(Client, b"PASV\r\n")
        .send(Server, b"227 (203,0,113,2,195,80)\r\n");
    let mut engine = Engine::new(Config::default());
    for p in c.packets() {
        engine.handle_packet(
            Instant::from_micros(5_000_000 - p.time.as_micros()),
            &p.bytes,
        );
    }
    assert_eq!(
        drain(&mut engine),
        vec!["install tcp 198.51.100.2 -> 203.0.113.2:50000 227"]
    );
}

#[test]
fn ipv6_epsv_and_eprt() {
    let mut c = Conversation::new(
        addr("[2001:db8:100::2]:40000"),
        addr("[2001:db8:113::2]:21"),
    );
    c.handshake()
        .send(Server, b"220 ready\r\n")
        .send(Client, b"EPSV\r\n");
    c.send(
        Server,
        b"229 Entering Extended Passive Mode (|||50000|)\r\n",
    );
    c.send(Client, b"EPRT |2|2001:db8:100::2|50001|\r\n")
        .send(Server, b"200 ok\r\n");
    c.send(Client, b"PORT 198,51,100,2,195,82\r\n");
    assert_eq!(
        run(c.packets()),
        vec![
            "install tcp 2001:db8:100::2 -> [2001:db8:113::2]:50000 229",
            "install tcp 2001:db8:113::2 -> [2001:db8:100::2]:50001 EPRT",
            "refuse PORT family-mismatch",
        ]
    );
}

#[test]
fn a_completed_transfer_revokes_what_it_used_and_a_failed_one_does_not() {
    let mut c = logged_in();
    c.send(Client, b"PASV\r\n")
        .send(Server, b"227 (203,0,113,2,195,80)\r\n");
    c.send(Client, b"RETR f\r\n")
        .send(Server, b"150 ok\r\n")
        .send(Server, b"226 done\r\n");
    c.send(Client, b"PASV\r\n")
        .send(Server, b"227 (203,0,113,2,195,81)\r\n");
    c.send(Client, b"RETR missing\r\n")
        .send(Server, b"550 no such file\r\n");
    assert_eq!(
        run(c.packets()),
        vec![
            "install tcp 198.51.100.2 -> 203.0.113.2:50000 227",
            "remove tcp 198.51.100.2 -> 203.0.113.2:50000 transfer-done",
            "install tcp 198.51.100.2 -> 203.0.113.2:50001 227",
        ]
    );
}
