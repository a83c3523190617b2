//! A worker's snapshot and its exposition against the worker's own counters, after real
//! conversations: what the endpoint says is what the daemon counted.

use super::tests::feed;
use super::tests::passive_session;
use super::tests::rig;
use crate::io::metrics::exposition;
use crate::io::metrics::exposition::tests::get;
use crate::io::metrics::exposition::tests::parse;
use crate::testkit::conversation::Conversation;
use crate::testkit::conversation::Side;
use crate::time::Instant;

/// A session whose server names another host in its 227 (refused: hijack), then QUITs.
fn hijack_session() -> Vec<Vec<u8>> {
    let mut c = Conversation::new(
        "198.51.100.2:40001".parse().unwrap(),
        "203.0.113.2:21".parse().unwrap(),
    );
    c.login()
        .send(Side::Client, b"PASV\r\n")
        .send(
            Side::Server,
            b"227 Entering Passive Mode (192,0,2,9,195,81)\r\n",
        )
        .send(Side::Client, b"PASV\r\n")
        .send(
            Side::Server,
            b"227 Entering Passive Mode (203,0,113,2,195,82)\r\n",
        )
        .send(Side::Client, b"QUIT\r\n")
        .send(Side::Server, b"221 bye\r\n");
    c.take_packets().into_iter().map(|p| p.bytes).collect()
}

#[test]
fn the_exposition_equals_the_counters_it_comes_from() {
    let (mut worker, mut queue, _) = rig(false);
    let mut packets = passive_session();
    packets.extend(hijack_session());
    feed(&mut worker, &mut queue, &packets);
    let now = Instant::from_micros(5_000_000);
    let snapshot = worker.snapshot(4, now);
    let (samples, _) = parse(&exposition::render(&[snapshot], now.as_micros()));
    let q = [("queue", "4")];
    let value = |name: &str| get(&samples, name, &q).unwrap_or_else(|| panic!("no {name}"));
    let counters = worker.counters();
    let apply = worker.apply_counters();
    let stats = worker.engine().stats().clone();
    assert_eq!(value("ftpalg_packets_total"), packets.len() as f64);
    assert_eq!(value("ftpalg_packets_total"), counters.packets as f64);
    let accepted = get(
        &samples,
        "ftpalg_verdicts_total",
        &[("queue", "4"), ("verdict", "accept")],
    );
    assert_eq!(accepted, Some(counters.accepted as f64));
    assert_eq!(
        value("ftpalg_expectations_installed_total"),
        apply.installed as f64
    );
    assert_eq!(apply.installed, 2, "one pinhole per honest 227");
    assert_eq!(value("ftpalg_engine_packets_total"), stats.packets as f64);
    assert_eq!(
        value("ftpalg_control_connections_total"),
        stats.control_connections as f64
    );
    assert_eq!(
        value("ftpalg_control_connections_proven_total"),
        stats.flows_proven as f64
    );
    assert_eq!(
        value("ftpalg_expectations"),
        worker.engine().expectations().len() as f64
    );
    let refused = |reason| {
        get(
            &samples,
            "ftpalg_expectations_refused_total",
            &[("queue", "4"), ("reason", reason)],
        )
    };
    assert_eq!(refused("hijack"), Some(1.0));
    assert_eq!(stats.refused, 1);
    let revoked: f64 = samples
        .iter()
        .filter(|((name, _), _)| name == "ftpalg_expectations_revoked_total")
        .map(|(_, v)| v)
        .sum();
    assert_eq!(revoked, stats.revoked as f64);
    assert!(stats.revoked >= 1, "the QUIT revoked the second pinhole");
    // Every packet got one verdict, and each verdict was timed.
    assert_eq!(
        value("ftpalg_verdict_latency_seconds_count"),
        packets.len() as f64
    );
    let inf = get(
        &samples,
        "ftpalg_verdict_latency_seconds_bucket",
        &[("queue", "4"), ("le", "+Inf")],
    );
    assert_eq!(inf, Some(packets.len() as f64));
    assert_eq!(
        value("ftpalg_backend_latency_seconds_count"),
        2.0,
        "two installs"
    );
}

/// What the metrics cost a worker, printed, never asserted (docs/operations.md quotes it):
/// `cargo test --release --lib publishing_costs -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement: run by hand in release mode"]
fn publishing_costs() {
    use std::time::Instant as Wall;

    use crate::io::daemon::latency::Latency;
    use crate::io::metrics::Board;
    use crate::io::sys;

    let (mut worker, mut queue, _) = rig(false);
    let mut packets = passive_session();
    packets.extend(hijack_session());
    feed(&mut worker, &mut queue, &packets);
    let per = |started: Wall, n: u32| started.elapsed().as_nanos() as f64 / f64::from(n);

    // Per packet: the clock read at the verdict and the histogram sample.
    let mut latency = Latency::new();
    let received = sys::monotonic_micros();
    let n = 10_000_000;
    let started = Wall::now();
    for _ in 0..n {
        latency.record(sys::monotonic_micros().saturating_sub(received));
    }
    println!(
        "per verdict: clock read + sample: {:.1} ns",
        per(started, n)
    );
    let started = Wall::now();
    let mut sink = 0u64;
    for _ in 0..n {
        sink = sink.wrapping_add(sys::monotonic_micros());
    }
    println!(
        "  of which the clock read: {:.1} ns ({sink})",
        per(started, n)
    );

    // Per second and worker: the snapshot and its offer.
    let board = Board::new(64);
    let slot = board.slot(0).unwrap();
    let n = 10_000;
    let started = Wall::now();
    for i in 0..n {
        slot.offer(worker.snapshot(0, Instant::from_micros(u64::from(i))));
    }
    println!(
        "per publish: snapshot + offer: {:.1} µs",
        per(started, n) / 1e3
    );

    // Per scrape: copying and rendering 64 queues.
    for index in 0..64 {
        let q = u16::try_from(index).unwrap();
        board
            .slot(index)
            .unwrap()
            .offer(worker.snapshot(q, Instant::from_micros(0)));
    }
    let n = 200;
    let started = Wall::now();
    let mut bytes = 0;
    for _ in 0..n {
        bytes = board.render(1).len();
    }
    println!(
        "per scrape of 64 queues: {:.2} ms, {bytes} bytes",
        per(started, n) / 1e6
    );
}
