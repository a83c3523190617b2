//! Property: any segmentation, reordering and duplication of a control conversation (each
//! direction's flight delivered completely before the other side answers, as TCP causality
//! requires) yields the same expectations as the unsegmented conversation.

use std::net::SocketAddr;

use ftp_alg::action::Action;
use ftp_alg::config::Config;
use ftp_alg::engine::Engine;
use ftp_alg::testkit::conversation::Conversation;
use ftp_alg::testkit::conversation::Side;
use proptest::prelude::*;

/// One exchange: what the client sends, then what the server answers (each a flight of one
/// or more lines).
#[derive(Debug, Clone)]
struct Turn {
    client: Vec<u8>,
    server: Vec<u8>,
}

/// How one flight is delivered: cut points, a permutation key, and duplicated byte ranges.
#[derive(Debug, Clone)]
struct Delivery {
    /// Cut points (taken modulo the flight's length).
    cuts: Vec<u16>,
    /// Sort keys for the pieces: the arrival order.
    order: Vec<u32>,
    /// Extra copies: byte range ends (modulo the length) and where they arrive.
    duplicates: Vec<(u16, u16, u16)>,
}

fn turn() -> impl Strategy<Value = Turn> {
    let port = 1024u16..=65535;
    prop_oneof![
        port.clone().prop_map(|p| Turn {
            client: b"PASV\r\n".to_vec(),
            server: format!("227 Entering Passive Mode (203,0,113,2,{},{}).\r\n", p >> 8, p & 255).into_bytes(),
        }),
        port.clone().prop_map(|p| Turn {
            client: b"EPSV\r\n".to_vec(),
            server: format!("229 Entering Extended Passive Mode (|||{p}|)\r\n").into_bytes(),
        }),
        port.clone().prop_map(|p| Turn {
            client: format!("PORT 198,51,100,2,{},{}\r\n", p >> 8, p & 255).into_bytes(),
            server: b"200 PORT command successful.\r\n".to_vec(),
        }),
        port.clone().prop_map(|p| Turn {
            client: format!("EPRT |1|198.51.100.2|{p}|\r\n").into_bytes(),
            server: b"200 EPRT command successful.\r\n".to_vec(),
        }),
        port.clone().prop_map(|p| Turn {
            client: b"TYPE I\r\nPASV\r\nLIST\r\n".to_vec(),
            server: format!(
                "200 Switching to Binary mode.\r\n227-Entering Passive Mode (203,0,113,2,{},{})\r\n227 OK\r\n150 Here.\r\n",
                p >> 8,
                p & 255
            )
            .into_bytes(),
        }),
        port.prop_map(|p| Turn {
            client: format!("PORT 198,51,100,2,{},{}\r\nRETR f\r\n", p >> 8, p & 255).into_bytes(),
            server: b"500 Illegal PORT command.\r\n550 No.\r\n".to_vec(),
        }),
        Just(Turn { client: b"NOOP\r\n".to_vec(), server: b"200 NOOP ok.\r\n".to_vec() }),
        Just(Turn { client: b"\xff\xf4\xff\xf2ABOR\r\n".to_vec(), server: b"226 ABOR ok.\r\n".to_vec() }),
    ]
}

fn delivery() -> impl Strategy<Value = Delivery> {
    (
        prop::collection::vec(any::<u16>(), 0..6),
        prop::collection::vec(any::<u32>(), 12),
        prop::collection::vec(any::<(u16, u16, u16)>(), 0..4),
    )
        .prop_map(|(cuts, order, duplicates)| Delivery {
            cuts,
            order,
            duplicates,
        })
}

/// The segments `(offset, end)` of a flight of `len` bytes, in arrival order.
fn arrivals(len: usize, how: &Delivery) -> Vec<(usize, usize)> {
    let mut points: Vec<usize> = how
        .cuts
        .iter()
        .map(|&c| usize::from(c) % len.max(1))
        .filter(|&p| p > 0)
        .collect();
    points.extend([0, len]);
    points.sort_unstable();
    points.dedup();
    let mut pieces: Vec<(usize, usize)> = points.windows(2).map(|w| (w[0], w[1])).collect();
    let keys = &how.order;
    let mut keyed: Vec<(u32, (usize, usize))> = pieces
        .drain(..)
        .enumerate()
        .map(|(i, p)| (keys[i % keys.len()], p))
        .collect();
    keyed.sort_by_key(|&(k, _)| k);
    let mut out: Vec<(usize, usize)> = keyed.into_iter().map(|(_, p)| p).collect();
    for &(a, b, at) in &how.duplicates {
        let (x, y) = (usize::from(a) % (len + 1), usize::from(b) % (len + 1));
        let (start, end) = (x.min(y), x.max(y));
        if end > start {
            out.insert(usize::from(at) % (out.len() + 1), (start, end));
        }
    }
    out
}

fn conversation(isns: (u32, u32)) -> Conversation {
    let client: SocketAddr = "198.51.100.2:40000".parse().unwrap();
    let server: SocketAddr = "203.0.113.2:21".parse().unwrap();
    let mut c = Conversation::new(client, server).with_isns(isns.0, isns.1);
    c.handshake()
        .send(Side::Server, b"220 ready\r\n")
        .send(Side::Client, b"USER a\r\n")
        .send(Side::Server, b"230 ok\r\n");
    c
}

fn flight(c: &mut Conversation, side: Side, bytes: &[u8], how: Option<&Delivery>) {
    match how {
        None => {
            c.send(side, bytes);
        }
        Some(how) => {
            for (start, end) in arrivals(bytes.len(), how) {
                let segment = c.segment_at(side, start as i64, &bytes[start..end]);
                c.emit(segment);
            }
            c.advance(side, bytes.len());
        }
    }
}

/// The expectations (trigger, key) and revocations an engine produces for the conversation.
fn outcome(
    turns: &[Turn],
    isns: (u32, u32),
    deliveries: Option<&[(Delivery, Delivery)]>,
) -> Vec<String> {
    let mut c = conversation(isns);
    for (i, t) in turns.iter().enumerate() {
        let how = deliveries.map(|d| &d[i % d.len()]);
        flight(&mut c, Side::Client, &t.client, how.map(|h| &h.0));
        flight(&mut c, Side::Server, &t.server, how.map(|h| &h.1));
    }
    let mut engine = Engine::new(Config::default());
    let mut seen = Vec::new();
    for p in c.packets() {
        engine.handle_packet(p.time, &p.bytes);
        while let Some(action) = engine.poll_action() {
            match action {
                Action::Install(e) => seen.push(format!("install {} {}", e.trigger, e.key)),
                Action::Remove(r) => seen.push(format!(
                    "remove {} {}",
                    r.expectation.key,
                    r.reason.as_str()
                )),
                Action::Refuse(r) => {
                    seen.push(format!("refuse {} {}", r.trigger, r.reason.as_str()))
                }
                Action::Note(n) => seen.push(format!("note {n:?}")),
                Action::Release(r) => seen.push(format!("release {}", r.id.0)),
            }
        }
    }
    assert_eq!(
        engine.stats().unbuffered,
        0,
        "the bounds were not the point of this test"
    );
    seen
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn segmentation_reordering_and_duplication_change_nothing(
        turns in prop::collection::vec(turn(), 1..8),
        deliveries in prop::collection::vec((delivery(), delivery()), 1..8),
        isns in (any::<u32>(), any::<u32>()),
    ) {
        let plain = outcome(&turns, isns, None);
        let mangled = outcome(&turns, isns, Some(&deliveries));
        prop_assert!(!plain.is_empty() || turns.iter().all(|t| t.client.starts_with(b"NOOP") || t.client.starts_with(b"\xff")));
        prop_assert_eq!(plain, mangled);
    }
}

#[test]
fn the_mangler_really_reorders_and_duplicates() {
    let how = Delivery {
        cuts: vec![3, 7],
        order: vec![9, 5, 1],
        duplicates: vec![(2, 5, 0)],
    };
    assert_eq!(arrivals(10, &how), vec![(2, 5), (7, 10), (3, 7), (0, 3)]);
    let whole = Delivery {
        cuts: vec![],
        order: vec![0],
        duplicates: vec![],
    };
    assert_eq!(arrivals(10, &whole), vec![(0, 10)]);
}

#[test]
fn a_mangled_conversation_differs_in_packets_not_in_outcome() {
    let turns = vec![
        Turn {
            client: b"PASV\r\n".to_vec(),
            server: b"227 Entering Passive Mode (203,0,113,2,195,80)\r\n".to_vec(),
        },
        Turn {
            client: b"PORT 198,51,100,2,195,81\r\n".to_vec(),
            server: b"200 ok\r\n".to_vec(),
        },
    ];
    let how = Delivery {
        cuts: vec![5, 12, 30],
        order: vec![4, 3, 2, 1],
        duplicates: vec![(0, 9, 1), (6, 40, 3)],
    };
    let deliveries = [(how.clone(), how)];
    let plain = outcome(&turns, (1, u32::MAX - 20), None);
    assert_eq!(plain.len(), 2, "{plain:?}");
    assert_eq!(
        plain,
        outcome(&turns, (1, u32::MAX - 20), Some(&deliveries))
    );
}
