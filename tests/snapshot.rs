//! Engine snapshots: a restart in the middle of any conversation loses nothing (the engine
//! restored from a snapshot acts exactly as the one that never stopped), and a corrupt,
//! truncated or hostile snapshot is refused with an error, never a panic.

use std::net::SocketAddr;

use ftp_alg::action::Action;
use ftp_alg::config::Config;
use ftp_alg::engine::Engine;
use ftp_alg::snapshot::SnapshotError;
use ftp_alg::testkit::conversation::Conversation;
use ftp_alg::testkit::conversation::Packet;
use ftp_alg::testkit::conversation::Side;
use ftp_alg::time::Duration;
use ftp_alg::time::Instant;
use proptest::prelude::*;

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

/// One exchange of a conversation.
fn turn() -> impl Strategy<Value = (Vec<u8>, Vec<u8>)> {
    let port = 1024u16..=65535;
    prop_oneof![
        port.clone().prop_map(|p| (
            b"PASV\r\n".to_vec(),
            format!(
                "227 Entering Passive Mode (203,0,113,2,{},{}).\r\n",
                p >> 8,
                p & 255
            )
            .into_bytes()
        )),
        port.clone().prop_map(|p| (
            b"EPSV\r\n".to_vec(),
            format!("229 Extended Passive Mode (|||{p}|)\r\n").into_bytes()
        )),
        port.clone().prop_map(|p| (
            format!("PORT 198,51,100,2,{},{}\r\n", p >> 8, p & 255).into_bytes(),
            b"200 ok\r\n".to_vec()
        )),
        port.clone().prop_map(|p| (
            format!("PORT 198,51,100,2,{},{}\r\nRETR f\r\n", p >> 8, p & 255).into_bytes(),
            b"500 Illegal PORT command.\r\n550 no\r\n".to_vec()
        )),
        port.prop_map(|p| (
            b"PASV\r\nLIST\r\n".to_vec(),
            format!(
                "227-Entering Passive Mode (203,0,113,2,{},{})\r\n227 ok\r\n150 go\r\n226 done\r\n",
                p >> 8,
                p & 255
            )
            .into_bytes()
        )),
        Just((b"NOOP\r\n".to_vec(), b"200 ok\r\n".to_vec())),
        Just((b"EPSV ALL\r\n".to_vec(), b"200 ok\r\n".to_vec())),
    ]
}

/// A logged-in session followed by `turns`, each flight cut in two at `cut` (so a line may
/// span the restart).
fn conversation(client: &str, turns: &[(Vec<u8>, Vec<u8>)], cut: usize) -> Vec<Packet> {
    let mut c = Conversation::new(addr(client), addr("203.0.113.2:21"));
    c.login();
    for (request, reply) in turns {
        c.send_split(Side::Client, request, &[cut % request.len()]);
        c.send_split(Side::Server, reply, &[cut % reply.len()]);
    }
    c.fin(Side::Client).fin(Side::Server);
    c.take_packets()
}

/// Two sessions interleaved packet by packet, in time order.
fn interleaved(a: Vec<Packet>, b: Vec<Packet>) -> Vec<Packet> {
    let mut all: Vec<Packet> = a.into_iter().chain(b).collect();
    all.sort_by_key(|p| p.time);
    all
}

fn drain(engine: &mut Engine) -> Vec<Action> {
    std::iter::from_fn(|| engine.poll_action()).collect()
}

fn feed(engine: &mut Engine, packets: &[Packet]) -> Vec<Action> {
    let mut actions = Vec::new();
    for p in packets {
        engine.handle_packet(p.time, &p.bytes);
        actions.extend(drain(engine));
    }
    actions
}

fn snapshot(engine: &Engine) -> Vec<u8> {
    let mut bytes = Vec::new();
    engine.save(&mut bytes).unwrap();
    bytes
}

fn keys(engine: &Engine) -> Vec<String> {
    let mut keys: Vec<String> = engine
        .expectations()
        .iter()
        .map(|e| e.key.to_string())
        .collect();
    keys.sort();
    keys
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Stop anywhere, restore, go on: the same actions as an engine that never stopped.
    #[test]
    fn a_restart_anywhere_changes_nothing(
        turns_a in prop::collection::vec(turn(), 1..8),
        turns_b in prop::collection::vec(turn(), 1..8),
        cut in 1usize..40,
        split in any::<prop::sample::Index>(),
    ) {
        let mut packets = interleaved(
            conversation("198.51.100.2:40000", &turns_a, cut),
            conversation("198.51.100.3:40001", &turns_b, cut + 3),
        );
        for (i, p) in packets.iter_mut().enumerate() {
            p.time = Instant::from_micros(1_000_000 + i as u64 * 1000);
        }
        let split = split.index(packets.len());
        let (before, after) = packets.split_at(split);

        let mut steady = Engine::new(Config::default());
        feed(&mut steady, before);
        let expected = feed(&mut steady, after);

        let mut first = Engine::new(Config::default());
        feed(&mut first, before);
        let bytes = snapshot(&first);
        let now = before.last().map_or(Instant::from_micros(0), |p| p.time);
        let (mut restarted, restored) =
            Engine::restore(Config::default(), &mut bytes.as_slice(), now).unwrap();
        prop_assert_eq!(restored.flows, first.flow_count());
        prop_assert_eq!(restored.expectations, first.expectations().len());
        prop_assert_eq!(keys(&restarted), keys(&first));
        prop_assert!(drain(&mut restarted).is_empty(), "nothing to remove after a clean stop");
        prop_assert_eq!(feed(&mut restarted, after), expected);
        prop_assert_eq!(keys(&restarted), keys(&steady));
        prop_assert_eq!(restarted.flow_count(), steady.flow_count());
    }

    /// Any flipped byte or cut is refused (the checksum, a bound, or a tag), never a panic.
    #[test]
    fn corrupt_snapshots_are_refused(flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4)) {
        let bytes = snapshot(&engine_with_sessions(3));
        let mut bad = bytes;
        for (at, xor) in flips {
            let at = at.index(bad.len());
            bad[at] ^= xor;
        }
        let result = Engine::restore(Config::default(), &mut bad.as_slice(), Instant::from_micros(0));
        prop_assert!(result.is_err());
    }

    /// Arbitrary bytes behind a valid header are refused, never a panic.
    #[test]
    fn arbitrary_bytes_are_refused(tail in prop::collection::vec(any::<u8>(), 0..300)) {
        let mut bytes = b"FTPALGSN\x01\x00".to_vec();
        bytes.extend(tail);
        let result = Engine::restore(Config::default(), &mut bytes.as_slice(), Instant::from_micros(0));
        prop_assert!(result.is_err());
    }
}

/// `n` logged-in sessions, each with a pending PASV pinhole and an unfinished line.
fn engine_with_sessions(n: u16) -> Engine {
    let mut engine = Engine::new(Config::default());
    for i in 0..n {
        let mut c = Conversation::new(
            addr(&format!("198.51.100.2:{}", 40000 + i)),
            addr("203.0.113.2:21"),
        );
        c.handshake()
            .send(Side::Server, b"220 ready\r\n")
            .send(Side::Client, b"USER u\r\n")
            .send(Side::Server, b"331 pw\r\n")
            .send(Side::Client, b"PASV\r\n")
            .send(
                Side::Server,
                format!("227 (203,0,113,2,195,{i})\r\n").as_bytes(),
            )
            .send(Side::Client, b"RETR unfini");
        feed(&mut engine, c.packets());
    }
    engine
}

#[test]
fn every_truncation_is_refused() {
    let bytes = snapshot(&engine_with_sessions(2));
    for len in 0..bytes.len() {
        let result = Engine::restore(
            Config::default(),
            &mut &bytes[..len],
            Instant::from_micros(0),
        );
        assert!(
            result.is_err(),
            "a snapshot cut at {len} of {}",
            bytes.len()
        );
    }
    assert!(
        Engine::restore(
            Config::default(),
            &mut bytes.as_slice(),
            Instant::from_micros(0)
        )
        .is_ok()
    );
}

#[test]
fn a_wrong_magic_or_version_says_so() {
    let bytes = snapshot(&engine_with_sessions(1));
    let mut other = bytes.clone();
    other[0] = b'X';
    let error = Engine::restore(
        Config::default(),
        &mut other.as_slice(),
        Instant::from_micros(0),
    )
    .unwrap_err();
    assert!(matches!(error, SnapshotError::BadMagic), "{error}");
    let mut newer = bytes;
    newer[8] = 3;
    let error = Engine::restore(
        Config::default(),
        &mut newer.as_slice(),
        Instant::from_micros(0),
    )
    .unwrap_err();
    assert!(matches!(error, SnapshotError::Version(3)), "{error}");
    assert_eq!(
        error.to_string(),
        "it has format version 3, this build reads only 2"
    );
}

#[test]
fn smaller_bounds_after_the_restart_hold_and_the_kernel_is_told() {
    let bytes = snapshot(&engine_with_sessions(10));
    let config = Config {
        max_flows: 4,
        ..Config::default()
    };
    let (mut engine, restored) =
        Engine::restore(config, &mut bytes.as_slice(), Instant::from_micros(0)).unwrap();
    assert_eq!(engine.flow_count(), 4);
    assert_eq!(restored.expectations, 4);
    assert_eq!(restored.disowned, 6);
    let removals = drain(&mut engine)
        .into_iter()
        .filter(|a| matches!(a, Action::Remove(_)))
        .count();
    assert_eq!(
        removals, 6,
        "the pinholes of connections not restored are removed"
    );
}

#[test]
fn what_expired_while_down_is_gone_without_removals() {
    let engine = engine_with_sessions(3);
    assert_eq!(engine.expectations().len(), 3);
    let bytes = snapshot(&engine);
    let later = Instant::from_micros(1_000_000) + Duration::from_secs(3600);
    let (mut restarted, restored) =
        Engine::restore(Config::default(), &mut bytes.as_slice(), later).unwrap();
    assert_eq!(restored.expectations, 0, "30 s lifetimes are over");
    assert!(
        drain(&mut restarted).is_empty(),
        "the kernel timed them out itself"
    );
    assert_eq!(
        restarted.flow_count(),
        3,
        "proven sessions idle for an hour are kept"
    );
}

#[test]
fn the_format_stays_compact() {
    // Not a benchmark: a size check that the format stays compact (bytes per idle session).
    let engine = engine_with_sessions(200);
    let bytes = snapshot(&engine);
    let per_session = bytes.len() / 200;
    assert!(per_session < 400, "{per_session} bytes per session");
}
