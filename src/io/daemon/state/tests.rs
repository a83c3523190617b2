//! State files: a round trip, and every reason a file is ignored (each also removes it).

use std::net::SocketAddr;

use super::*;
use crate::testkit::conversation::Conversation;
use crate::testkit::conversation::Side;

/// A fresh directory for one test.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ftpalg-state-{}-{test}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    dir
}

/// An engine with one logged-in session and a pending PASV pinhole.
fn engine() -> Engine {
    let mut engine = Engine::new(Config::default());
    let client: SocketAddr = "198.51.100.2:40000".parse().unwrap();
    let mut c = Conversation::new(client, "203.0.113.2:21".parse().unwrap());
    c.handshake()
        .send(Side::Server, b"220 ready\r\n")
        .send(Side::Client, b"USER u\r\n")
        .send(Side::Server, b"331 pw\r\n")
        .send(Side::Client, b"PASV\r\n")
        .send(Side::Server, b"227 (203,0,113,2,195,80)\r\n");
    for p in c.packets() {
        engine.handle_packet(p.time, &p.bytes);
    }
    while engine.poll_action().is_some() {}
    engine
}

fn file(dir: &Path, options: &str) -> StateFile {
    StateFile::new(dir, 0, Duration::from_secs(60), options)
}

fn at(secs: u64) -> Instant {
    Instant::from_micros(secs * 1_000_000)
}

#[test]
fn a_saved_state_comes_back_once() {
    let dir = scratch("round-trip");
    let state = file(&dir, "a");
    let written = state.save(&engine(), at(2)).unwrap();
    assert!(written > 0);
    let loaded = state.load(&Config::default(), at(3)).unwrap().unwrap();
    assert_eq!(loaded.restored.flows, 1);
    assert_eq!(loaded.restored.expectations, 1);
    assert_eq!(loaded.age, Duration::from_secs(1));
    assert_eq!(loaded.engine.flow_count(), 1);
    assert!(!state.path().exists(), "consumed");
    assert!(state.load(&Config::default(), at(4)).unwrap().is_none());
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn other_options_an_old_file_or_a_clock_from_another_boot_are_refused() {
    let dir = scratch("refused");
    type Case = (&'static str, Instant, fn(&StateError) -> bool);
    let cases: [Case; 3] = [
        ("b", at(3), |e| matches!(e, StateError::OtherOptions)),
        ("a", at(100), |e| matches!(e, StateError::TooOld(_))),
        ("a", at(1), |e| matches!(e, StateError::OtherBoot)),
    ];
    for (options, now, expected) in cases {
        file(&dir, "a").save(&engine(), at(2)).unwrap();
        let error = file(&dir, options)
            .load(&Config::default(), now)
            .unwrap_err();
        assert!(expected(&error), "{error}");
        assert!(!file(&dir, "a").path().exists(), "removed after: {error}");
    }
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn damaged_files_are_refused_never_a_panic() {
    let dir = scratch("damaged");
    let state = file(&dir, "a");
    state.save(&engine(), at(2)).unwrap();
    let good = fs::read(state.path()).unwrap();
    let mut other_boot = good.clone();
    other_boot[11] ^= 1;
    let mut flipped = good.clone();
    let last = flipped.len() - 20;
    flipped[last] ^= 0x40;
    let damaged: [(&[u8], &str); 5] = [
        (b"", "truncated"),
        (b"GIF89a....", "not an ftp-alg state file"),
        (&good[..good.len() / 2], "truncated"),
        (&other_boot, "before the last reboot"),
        (&flipped, "engine snapshot is unusable"),
    ];
    for (bytes, message) in damaged {
        fs::write(state.path(), bytes).unwrap();
        let error = state.load(&Config::default(), at(3)).unwrap_err();
        assert!(
            error.to_string().contains(message),
            "{error} (want {message})"
        );
        assert!(!state.path().exists());
    }
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn the_fingerprint_names_the_options_that_shape_the_state() {
    let base = options_fingerprint(&Config::default(), "nft ftpalg expect4 expect6");
    let other_lifetime = Config {
        expectation_lifetime: Duration::from_secs(10),
        ..Config::default()
    };
    assert_ne!(
        base,
        options_fingerprint(&other_lifetime, "nft ftpalg expect4 expect6")
    );
    assert_ne!(base, options_fingerprint(&Config::default(), "ipset a b"));
    let other_verdict = Config {
        unjudged: crate::config::Unjudged::Drop,
        ..Config::default()
    };
    assert_eq!(
        base,
        options_fingerprint(&other_verdict, "nft ftpalg expect4 expect6"),
        "what to do with unjudged packets leaves the state alone"
    );
}
