//! The watch loop over in-memory frames: the same report as replay, idle ticks, limits,
//! frames that hold no IP datagram, a stop request.

use std::io::Cursor;
use std::sync::atomic::AtomicBool;

use serde_json::Value;

use super::*;
use crate::io::capture::CaptureReader;
use crate::testkit::conversation::Side::Client;
use crate::testkit::conversation::Side::Server;
use crate::testkit::conversation::logged_in;
use crate::testkit::conversation::syn;

/// Frames (or idle ticks) from a list.
struct List {
    link: LinkType,
    items: Vec<(Instant, Option<Vec<u8>>)>,
    at: usize,
}

impl Frames for List {
    fn name(&self) -> &str {
        "test0"
    }

    fn link(&self) -> LinkType {
        self.link
    }

    fn next(&mut self) -> std::io::Result<Next<'_>> {
        let Some((time, frame)) = self.items.get(self.at) else {
            return Ok(Next::End);
        };
        self.at += 1;
        Ok(match frame {
            Some(frame) => Next::Frame(*time, frame),
            None => Next::Idle(*time),
        })
    }
}

/// An IP datagram in an Ethernet frame.
fn ethernet(ip: &[u8]) -> Vec<u8> {
    let ether_type: [u8; 2] = if ip[0] >> 4 == 6 {
        [0x86, 0xdd]
    } else {
        [0x08, 0x00]
    };
    let mut frame = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
    frame.extend_from_slice(&ether_type);
    frame.extend_from_slice(ip);
    frame
}

fn watch(list: List, limits: Limits, stop: bool) -> (Summary, Vec<Value>) {
    let mut list = list;
    let mut out = Vec::new();
    let stop = AtomicBool::new(stop);
    let config = Config::default();
    let summary = run(&mut list, &config, Format::Json, &mut out, limits, &stop).unwrap();
    (summary, json_lines(&out))
}

fn json_lines(out: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(out).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A logged-in session's PASV, then its data connection: frames at 1 ms steps.
fn passive_session() -> List {
    let mut c = logged_in("198.51.100.2:40000");
    c.send(Client, b"PASV\r\n").send(
        Server,
        b"227 Entering Passive Mode (203,0,113,2,195,80).\r\n",
    );
    let mut items: Vec<_> = c
        .packets()
        .iter()
        .map(|p| (p.time, Some(ethernet(&p.bytes))))
        .collect();
    let last = items.last().unwrap().0;
    let data = syn(
        "198.51.100.2:51000".parse().unwrap(),
        "203.0.113.2:50000".parse().unwrap(),
    );
    items.push((last + Duration::from_millis(1), Some(ethernet(&data))));
    List {
        link: LinkType::Ethernet,
        items,
        at: 0,
    }
}

/// For every sample capture, watching its frames reports exactly what replaying the file
/// reports, but for the name in `file`.
#[test]
fn watch_reports_what_replay_reports() {
    for sample in crate::testkit::samples::all() {
        let bytes = sample.to_bytes();
        let mut reader = CaptureReader::from_reader("x", Box::new(Cursor::new(bytes))).unwrap();
        let (mut items, mut buf, mut link) = (Vec::new(), Vec::new(), LinkType::Ethernet);
        while let Some(meta) = reader.next_packet(&mut buf).unwrap() {
            link = meta.link;
            items.push((meta.timestamp, Some(buf.clone())));
        }
        let (_, watched) = watch(List { link, items, at: 0 }, Limits::default(), false);
        let dir = std::env::temp_dir().join(format!("ftp-alg-watch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(sample.file_name());
        std::fs::write(&path, sample.to_bytes()).unwrap();
        let mut out = Vec::new();
        crate::io::replay::run(&[path], &Config::default(), Format::Json, &mut out).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let replayed = json_lines(&out);
        assert!(watched.len() > 1, "{}: no events", sample.name);
        assert_eq!(watched.len(), replayed.len(), "{}", sample.name);
        for (mut w, mut r) in watched.into_iter().zip(replayed) {
            if let (Some(w), Some(r)) = (w.as_object_mut(), r.as_object_mut()) {
                assert_eq!(
                    w.remove("file").map(|f| f == "test0"),
                    r.remove("file").map(|_| true)
                );
            }
            assert_eq!(w, r, "{}", sample.name);
        }
    }
}

#[test]
fn an_idle_tick_ends_an_expectation_on_time() {
    let mut list = passive_session();
    list.items.pop();
    let last = list.items.last().unwrap().0;
    list.items.push((last + Duration::from_secs(40), None));
    let (summary, lines) = watch(list, Limits::default(), false);
    let expect = lines.iter().find(|l| l["type"] == "expect").unwrap();
    let unused = lines.iter().find(|l| l["type"] == "unused").unwrap();
    let lived = unused["time"].as_f64().unwrap() - expect["time"].as_f64().unwrap();
    assert!(
        (lived - 30.0).abs() < 1e-6,
        "reported at its expiry: {lived}"
    );
    assert_eq!(summary.unused, 1);
    assert_eq!(
        summary.packets, summary.engine.packets,
        "ticks are not packets"
    );
}

#[test]
fn the_data_connection_is_admitted_and_the_summary_comes_last() {
    let (summary, lines) = watch(passive_session(), Limits::default(), false);
    let types: Vec<&str> = lines.iter().map(|l| l["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["expect", "admit", "summary"]);
    assert_eq!(lines[0]["data"]["dport"], 50000);
    assert_eq!(lines[0]["file"], "test0");
    assert_eq!(summary.admitted, 1);
    assert_eq!(summary.files, 1);
}

#[test]
fn count_and_duration_stop_it() {
    let (summary, lines) = watch(
        passive_session(),
        Limits {
            count: Some(3),
            duration: None,
        },
        false,
    );
    assert_eq!(summary.packets, 3);
    assert_eq!(lines.last().unwrap()["type"], "summary");
    let all = passive_session().items.len() as u64;
    let (summary, _) = watch(
        passive_session(),
        Limits {
            count: None,
            duration: Some(Duration::from_millis(4)),
        },
        false,
    );
    assert!(summary.packets < all, "{} of {all}", summary.packets);
    assert!(summary.packets >= 4, "{}", summary.packets);
}

#[test]
fn frames_without_ip_are_counted_not_fatal() {
    let mut list = passive_session();
    let time = list.items[0].0;
    let arp = vec![0xff; 12]
        .into_iter()
        .chain([0x08, 0x06, 0, 1])
        .collect();
    list.items.insert(0, (time, Some(arp)));
    list.items.insert(1, (time, Some(vec![1, 2, 3])));
    let (summary, lines) = watch(list, Limits::default(), false);
    assert_eq!(summary.non_ip, 2);
    assert_eq!(summary.admitted, 1, "the session is still read");
    assert_eq!(lines.last().unwrap()["non_ip"], 2);
}

#[test]
fn a_stop_request_still_writes_the_summary() {
    let (summary, lines) = watch(passive_session(), Limits::default(), true);
    assert_eq!(summary.packets, 0);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["type"], "summary");
}
