//! Measures what a tracked, idle, logged-in control connection costs in resident memory.
//!
//! `cargo run --release --example flow_memory -- [SESSIONS] [--capture FILE] [--snapshot]
//! [--curve]`
//!
//! Builds SESSIONS (default 100,000) FTP sessions that log in and then go idle (handshake,
//! `220`, `USER`, `331`, `PASS`, `230`, ACKs), feeds them to one engine whose table holds them
//! all, and reports the growth of the process's resident set size (VmRSS) divided by the
//! number of sessions tracked. With `--capture FILE` the sessions are first written to a pcap
//! file and read back from it (the measurement then covers exactly what `ftp-alg replay`
//! would feed the engine). With `--snapshot` it also times writing the engine's state (what a
//! stopping daemon writes) and reading it back, and reports its size. With `--curve` it also
//! prints, after each tenth of the sessions, the cost per packet of that tenth and the
//! resident set so far (`make bench`: no cliff as the table grows). Numbers are in
//! docs/policy.md, docs/deploy.md and docs/benchmarks.md.

use std::net::Ipv4Addr;
use std::net::SocketAddr;
use std::net::SocketAddrV4;

use ftp_alg::config::Config;
use ftp_alg::engine::Engine;
use ftp_alg::testkit::conversation::Conversation;
use ftp_alg::testkit::conversation::Packet;
use ftp_alg::testkit::conversation::Side;
use ftp_alg::time::Duration;
use ftp_alg::time::Instant;

fn main() {
    let mut sessions: usize = 100_000;
    let mut capture: Option<std::path::PathBuf> = None;
    let mut snapshot = false;
    let mut curve = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--capture" => capture = args.next().map(Into::into),
            "--snapshot" => snapshot = true,
            "--curve" => curve = true,
            n => sessions = n.replace('_', "").parse().expect("SESSIONS is a number"),
        }
    }
    let config = Config {
        max_flows: sessions,
        ..Config::default()
    };
    let before = rss_bytes();
    let mut engine = Engine::new(config.clone());
    let start = std::time::Instant::now();
    match capture {
        None => {
            let step = (sessions / 10).max(1);
            let (mut packets, mut busy) = (0u64, std::time::Duration::ZERO);
            for i in 0..sessions {
                let packets_of_session = session(i);
                let started = std::time::Instant::now();
                for packet in &packets_of_session {
                    let _ = engine.handle_packet(packet.time, &packet.bytes);
                    while engine.poll_action().is_some() {}
                }
                busy += started.elapsed();
                packets += packets_of_session.len() as u64;
                if curve && (i + 1) % step == 0 {
                    println!(
                        "curve tracked={} ns_per_packet={:.0} rss={}",
                        engine.flow_count(),
                        busy.as_nanos() as f64 / packets as f64,
                        rss_bytes()
                    );
                    (packets, busy) = (0, std::time::Duration::ZERO);
                }
            }
        }
        Some(path) => replay_from_capture(&mut engine, sessions, &path),
    }
    let after = rss_bytes();
    let tracked = engine.flow_count();
    assert_eq!(tracked, sessions, "every session is tracked");
    let per_flow = (after.saturating_sub(before)) as f64 / tracked as f64;
    println!(
        "sessions={sessions} tracked={tracked} rss_before={} rss_after={} bytes_per_flow={per_flow:.0} elapsed={:.2}s",
        before,
        after,
        start.elapsed().as_secs_f64()
    );
    if snapshot {
        time_snapshot(&engine, config);
    }
}

/// Write the engine's state to memory and read it back, timed.
fn time_snapshot(engine: &Engine, config: Config) {
    let mut bytes = Vec::new();
    let started = std::time::Instant::now();
    engine.save(&mut bytes).expect("write to memory");
    let saved = started.elapsed();
    let started = std::time::Instant::now();
    let now = Instant::from_micros(10_000_000_000);
    let (restored, report) =
        Engine::restore(config, &mut bytes.as_slice(), now).expect("a snapshot just written");
    let loaded = started.elapsed();
    assert_eq!(report.flows, engine.flow_count());
    println!(
        "snapshot_bytes={} bytes_per_session={} save={:.2}s restore={:.2}s restored_flows={}",
        bytes.len(),
        bytes.len() / engine.flow_count().max(1),
        saved.as_secs_f64(),
        loaded.as_secs_f64(),
        restored.flow_count()
    );
}

/// Session `i`: a distinct client address and port, logged in, then idle.
fn session(i: usize) -> Vec<Packet> {
    let host = u8::try_from(2 + i % 250).expect("below 252");
    let port = u16::try_from(1024 + i / 250).expect("at most 16M sessions");
    let client = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, host), port));
    let server: SocketAddr = "203.0.113.2:21".parse().expect("literal");
    let start = Instant::from_micros(1_000_000 + i as u64 * 10);
    let mut c = Conversation::new(client, server).starting_at(start);
    c.login().ack(Side::Client).wait(Duration::from_secs(1));
    c.take_packets()
}

fn replay_from_capture(engine: &mut Engine, sessions: usize, path: &std::path::Path) {
    use ftp_alg::io::capture::CaptureReader;
    use ftp_alg::io::capture::LinkType;
    use ftp_alg::io::capture::ip_datagram;
    use ftp_alg::testkit::pcap::Format;
    use ftp_alg::testkit::pcap::Writer;
    let mut writer = Writer::new(Format::Pcap, LinkType::Raw);
    for i in 0..sessions {
        for packet in session(i) {
            writer.packet(packet.time, &packet.bytes);
        }
    }
    std::fs::write(path, writer.finish()).expect("write the capture");
    let mut reader = CaptureReader::open(path).expect("open the capture");
    let mut buf = Vec::new();
    while let Some(meta) = reader.next_packet(&mut buf).expect("read the capture") {
        if let Ok(ip) = ip_datagram(meta.link, &buf) {
            let _ = engine.handle_packet(meta.timestamp, ip);
            while engine.poll_action().is_some() {}
        }
    }
}

/// The process's resident set size, from /proc/self/statm.
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("read /proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|f| f.parse().ok())
        .expect("statm has a resident field");
    pages * 4096
}
