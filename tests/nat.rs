//! NAT through the engine: a masqueraded client's PORT/EPRT and a published server's 227/229
//! rewritten, with two TCP endpoints that see only what the gateway releases. Each end keeps
//! its own sequence space; the test checks that each receives exactly the rewritten text and
//! that every acknowledgement the gateway releases speaks of bytes the sender really sent.

use std::net::SocketAddr;

use ftp_alg::action::Action;
use ftp_alg::action::Verdict;
use ftp_alg::config::Config;
use ftp_alg::config::Nat;
use ftp_alg::config::NatMode;
use ftp_alg::engine::Engine;
use ftp_alg::expect::Expectation;
use ftp_alg::nat::NatMap;
use ftp_alg::nat::NatPair;
use ftp_alg::testkit::conversation::Flags;
use ftp_alg::testkit::conversation::tcp;
use ftp_alg::time::Duration;
use ftp_alg::time::Instant;
use ftp_alg::wire;
use ftp_alg::wire::Datagram;

/// One TCP end as the gateway's peers see it.
#[derive(Debug, Default)]
struct End {
    addr: Option<SocketAddr>,
    /// Next sequence number to send (own space).
    snd_nxt: u32,
    /// Next sequence number expected (the space the peer's bytes arrive in).
    rcv_nxt: u32,
    /// The highest acknowledgement received.
    acked: u32,
    /// Bytes received in order.
    received: Vec<u8>,
}

/// A client, a server and the engine between them.
struct Net {
    engine: Engine,
    ends: [End; 2],
    now: Instant,
    installs: Vec<Expectation>,
    refusals: Vec<String>,
}

const CLIENT: usize = 0;
const SERVER: usize = 1;

impl Net {
    fn new(client: &str, server: &str, pairs: &[&str]) -> Self {
        Self::with_nat(client, server, pairs, Nat::default())
    }

    fn with_nat(client: &str, server: &str, pairs: &[&str], nat: Nat) -> Self {
        let map = NatMap::new(pairs.iter().map(|p| p.parse::<NatPair>().unwrap()));
        let config = Config {
            nat: Nat {
                mode: NatMode::Static(map),
                ..nat
            },
            ..Config::default()
        };
        let mut net = Self {
            engine: Engine::new(config),
            ends: [End::default(), End::default()],
            now: Instant::from_micros(1_000_000),
            installs: Vec::new(),
            refusals: Vec::new(),
        };
        net.ends[CLIENT].addr = Some(client.parse().unwrap());
        net.ends[SERVER].addr = Some(server.parse().unwrap());
        net.ends[CLIENT].snd_nxt = 1000;
        net.ends[SERVER].snd_nxt = 5000;
        net.handshake();
        net
    }

    fn addr(&self, side: usize) -> SocketAddr {
        self.ends[side].addr.unwrap()
    }

    fn handshake(&mut self) {
        let (c, s) = (self.addr(CLIENT), self.addr(SERVER));
        let syn = Flags {
            syn: true,
            ..Flags::default()
        };
        let out = self.pass(tcp(c, s, 1000, None, syn, b""));
        assert_eq!(out.len(), 1);
        self.ends[CLIENT].snd_nxt = 1001;
        self.ends[SERVER].rcv_nxt = 1001;
        self.pass(tcp(s, c, 5000, Some(1001), syn, b""));
        self.ends[SERVER].snd_nxt = 5001;
        self.ends[CLIENT].rcv_nxt = 5001;
        self.send(CLIENT, b"");
    }

    /// A segment from `side` at its own `seq` with its current ACK.
    fn segment(&self, side: usize, seq: u32, data: &[u8]) -> Vec<u8> {
        let other = 1 - side;
        let flags = Flags {
            psh: !data.is_empty(),
            ..Flags::default()
        };
        tcp(
            self.addr(side),
            self.addr(other),
            seq,
            Some(self.ends[side].rcv_nxt),
            flags,
            data,
        )
    }

    /// `side` sends `data` (cut at `cuts`), each piece through the gateway.
    fn send_split(&mut self, side: usize, data: &[u8], cuts: &[usize]) {
        let mut start = 0;
        for &end in cuts.iter().chain(std::iter::once(&data.len())) {
            let seq = self.ends[side].snd_nxt;
            let bytes = self.segment(side, seq, &data[start..end]);
            self.ends[side].snd_nxt = seq.wrapping_add((end - start) as u32);
            self.pass(bytes);
            start = end;
        }
    }

    fn send(&mut self, side: usize, data: &[u8]) {
        self.send_split(side, data, &[]);
    }

    /// `side` sends a bare ACK of what it has received.
    fn ack(&mut self, side: usize) {
        self.send(side, b"");
    }

    /// Feed one datagram to the engine and deliver what it releases; returns the released
    /// datagrams in order.
    fn pass(&mut self, datagram: Vec<u8>) -> Vec<Vec<u8>> {
        self.now = self.now + Duration::from_millis(1);
        let verdict = self.engine.handle_packet(self.now, &datagram);
        let mut out = Vec::new();
        while let Some(action) = self.engine.poll_action() {
            match action {
                Action::Install(e) => self.installs.push(e),
                Action::Release(release) => out.push(release.datagram),
                Action::Refuse(r) => self.refusals.push(r.reason.as_str().to_owned()),
                _ => {}
            }
        }
        match verdict {
            Verdict::Accept => out.push(datagram),
            Verdict::Rewritten => out.push(self.engine.rewritten().to_vec()),
            Verdict::Hold(_) | Verdict::Drop => {}
        }
        for bytes in &out {
            self.deliver(bytes);
        }
        out
    }

    /// A released datagram reaches its destination.
    fn deliver(&mut self, bytes: &[u8]) {
        let Ok(Datagram::Tcp(segment)) = wire::parse(bytes) else {
            panic!("the gateway released something that is not TCP");
        };
        assert_eq!(
            segment.checksum_ok(),
            Some(true),
            "checksum of a released segment"
        );
        let to = if Some(segment.dst()) == self.ends[SERVER].addr {
            SERVER
        } else {
            CLIENT
        };
        let end = &mut self.ends[to];
        if let Some(ack) = segment.ack() {
            // An acknowledgement never speaks of bytes its receiver did not send.
            let ahead = ack.0.wrapping_sub(end.snd_nxt);
            assert!(
                ahead == 0 || ahead > 1 << 31,
                "ACK {} beyond {}",
                ack.0,
                end.snd_nxt
            );
            end.acked = ack.0;
        }
        let seq = segment.seq().0;
        let payload = segment.payload();
        if payload.is_empty() {
            return;
        }
        // In-order delivery only; a retransmission of bytes already held must match.
        let behind = end.rcv_nxt.wrapping_sub(seq) as usize;
        if behind <= payload.len() && (behind as u32) < (1 << 30) {
            let have = end.received.len();
            let overlap = &payload[..behind];
            let tail = &end.received[have - behind.min(have)..];
            assert_eq!(
                overlap,
                &tail[tail.len() - overlap.len()..],
                "retransmission differs"
            );
            end.received.extend_from_slice(&payload[behind..]);
            end.rcv_nxt = seq.wrapping_add(payload.len() as u32);
        }
    }

    fn text(&self, side: usize) -> String {
        String::from_utf8_lossy(&self.ends[side].received).into_owned()
    }

    fn login(&mut self) {
        self.send(SERVER, b"220 (vsFTPd 3.0.3)\r\n");
        self.send(CLIENT, b"USER ftpalglab\r\n");
        self.send(SERVER, b"331 Please specify the password.\r\n");
        self.send(CLIENT, b"PASS labpass\r\n");
        self.send(SERVER, b"230 Login successful.\r\n");
    }

    /// Both ends acknowledge everything; each must then see its own bytes acknowledged.
    fn settle(&mut self) {
        self.ack(CLIENT);
        self.ack(SERVER);
        for side in [CLIENT, SERVER] {
            assert_eq!(
                self.ends[side].acked, self.ends[side].snd_nxt,
                "side {side}: its bytes acknowledged exactly, in its own space"
            );
        }
    }
}

/// A logged-in session of client 192.0.2.2, masqueraded as 198.51.100.177.
fn masqueraded() -> Net {
    let mut net = Net::new(
        "192.0.2.2:40000",
        "203.0.113.2:21",
        &["192.0.2.2=198.51.100.177"],
    );
    net.login();
    net
}

/// A logged-in session with server 192.0.2.5, published as 203.0.113.100.
fn published() -> Net {
    let mut net = Net::new(
        "198.51.100.2:40000",
        "192.0.2.5:21",
        &["192.0.2.5=203.0.113.100"],
    );
    net.login();
    net
}

#[test]
fn masqueraded_port_grows_and_later_segments_follow() {
    let mut net = masqueraded();
    net.send(CLIENT, b"PORT 192,0,2,2,19,136\r\n");
    net.send(SERVER, b"200 PORT command successful.\r\n");
    net.send(CLIENT, b"RETR one\r\n");
    net.send(SERVER, b"150 Opening.\r\n226 Done.\r\n");
    net.send(CLIENT, b"PORT 192,0,2,2,19,137\r\n");
    net.send(SERVER, b"200 PORT command successful.\r\n");
    net.send(CLIENT, b"RETR two\r\n");
    net.settle();
    assert_eq!(
        net.text(SERVER),
        "USER ftpalglab\r\nPASS labpass\r\nPORT 198,51,100,177,19,136\r\nRETR one\r\n\
         PORT 198,51,100,177,19,137\r\nRETR two\r\n"
    );
    let e = &net.installs[0];
    assert_eq!(e.key.src.to_string(), "203.0.113.2");
    assert_eq!(e.key.dst.to_string(), "192.0.2.2");
    assert_eq!(e.key.dport.get(), 5000);
    let nat = e.nat.expect("a NAT mapping");
    assert_eq!(nat.public.to_string(), "198.51.100.177");
    assert_eq!(nat.port.get(), 5000);
    assert_eq!(net.installs.len(), 2);
    assert_eq!(net.engine.stats().nat_rewrites, 2);
}

#[test]
fn split_port_line_is_held_then_rewritten() {
    let mut net = masqueraded();
    let line = b"PORT 192,0,2,2,19,136\r\n";
    let seq = net.ends[CLIENT].snd_nxt;
    let first = net.segment(CLIENT, seq, &line[..9]);
    let second = net.segment(CLIENT, seq.wrapping_add(9), &line[9..]);
    net.ends[CLIENT].snd_nxt = seq.wrapping_add(line.len() as u32);
    assert!(net.pass(first.clone()).is_empty(), "the first part is held");
    // A retransmission of the first part while it is held is held too.
    assert!(net.pass(first).is_empty());
    let released = net.pass(second);
    assert_eq!(released.len(), 3);
    net.send(SERVER, b"200 PORT command successful.\r\n");
    net.send(CLIENT, b"RETR one\r\n");
    net.settle();
    assert!(
        net.text(SERVER)
            .ends_with("PORT 198,51,100,177,19,136\r\nRETR one\r\n")
    );
    assert_eq!(net.installs.len(), 1);
    assert_eq!(net.engine.stats().nat_held, 2);
}

#[test]
fn published_server_227_keeps_its_length() {
    let mut net = published();
    net.send(CLIENT, b"PASV\r\n");
    net.send(SERVER, b"227 Entering Passive Mode (192,0,2,5,195,80).\r\n");
    net.send(CLIENT, b"RETR one\r\n");
    net.send(SERVER, b"150 Opening.\r\n");
    net.settle();
    assert!(
        net.text(CLIENT)
            .contains("227 Entering Passive  (203,0,113,100,195,80).\r\n150 Opening.\r\n")
    );
    let e = &net.installs[0];
    assert_eq!(e.key.src.to_string(), "198.51.100.2");
    assert_eq!(e.key.dst.to_string(), "192.0.2.5");
    assert_eq!(e.nat.unwrap().public.to_string(), "203.0.113.100");
    // Same length: no sequence shift, so only the announcing segment changed.
    assert_eq!(net.engine.stats().nat_segments_rewritten, 1);
    assert_eq!(net.engine.stats().nat_acks_shifted, 0);
}

#[test]
fn retransmission_of_a_rewritten_segment_comes_out_the_same() {
    let mut net = masqueraded();
    let seq = net.ends[CLIENT].snd_nxt;
    net.send(CLIENT, b"PORT 192,0,2,2,19,136\r\n");
    let again = net.segment(CLIENT, seq, b"PORT 192,0,2,2,19,136\r\n");
    let out = net.pass(again);
    assert_eq!(out.len(), 1);
    let Ok(Datagram::Tcp(segment)) = wire::parse(&out[0]) else {
        panic!()
    };
    assert_eq!(segment.payload(), b"PORT 198,51,100,177,19,136\r\n");
    assert_eq!(segment.seq().0, seq);
    net.send(CLIENT, b"NOOP\r\n");
    net.settle();
}

#[test]
fn untranslated_connections_pass_untouched() {
    let mut net = Net::new(
        "198.51.100.2:40000",
        "203.0.113.2:21",
        &["192.0.2.2=198.51.100.177"],
    );
    net.login();
    net.send(CLIENT, b"PORT 198,51,100,2,19,136\r\n");
    net.settle();
    assert_eq!(net.installs.len(), 1);
    assert!(net.installs[0].nat.is_none());
    assert_eq!(net.engine.stats().nat_segments_rewritten, 0);
}

#[test]
fn a_restart_keeps_the_sequence_shift() {
    let mut net = masqueraded();
    net.send(CLIENT, b"PORT 192,0,2,2,19,136\r\n");
    let mut state = Vec::new();
    net.engine.save(&mut state).unwrap();
    let config = net.engine.config().clone();
    let (engine, restored) = Engine::restore(config, &mut state.as_slice(), net.now).unwrap();
    assert_eq!(restored.flows, 1);
    net.engine = engine;
    net.send(SERVER, b"200 PORT command successful.\r\n");
    net.send(CLIENT, b"RETR one\r\n");
    net.settle();
    assert!(
        net.text(SERVER)
            .ends_with("PORT 198,51,100,177,19,136\r\nRETR one\r\n")
    );
}

#[test]
fn shrinking_eprt_and_a_second_rewrite_on_one_connection() {
    // A longer private address than the public one: the stream shrinks.
    let mut net = Net::new(
        "192.0.2.222:40000",
        "203.0.113.2:21",
        &["192.0.2.222=9.9.9.9"],
    );
    net.login();
    net.send(CLIENT, b"EPRT |1|192.0.2.222|5000|\r\n");
    net.send(SERVER, b"200 EPRT command successful.\r\n");
    net.send_split(CLIENT, b"EPRT |1|192.0.2.222|5001|\r\nLIST\r\n", &[3, 20]);
    net.send(SERVER, b"200 EPRT command successful.\r\n");
    net.send(CLIENT, b"QUIT\r\n");
    net.settle();
    assert!(
        net.text(SERVER)
            .ends_with("EPRT |1|9.9.9.9|5000|\r\nEPRT |1|9.9.9.9|5001|\r\nLIST\r\nQUIT\r\n")
    );
    assert_eq!(net.installs.len(), 2);
}

#[test]
fn past_the_hold_bound_a_split_port_is_refused_not_half_rewritten() {
    let nat = Nat {
        hold_bytes: 10,
        ..Nat::default()
    };
    let mut net = Net::with_nat(
        "192.0.2.2:40000",
        "203.0.113.2:21",
        &["192.0.2.2=198.51.100.177"],
        nat,
    );
    net.login();
    net.send_split(CLIENT, b"PORT 192,0,2,2,19,136\r\n", &[9]);
    net.send(CLIENT, b"NOOP\r\n");
    net.settle();
    // The server got the line as the client sent it, and no pinhole opened for it.
    assert!(
        net.text(SERVER)
            .ends_with("PORT 192,0,2,2,19,136\r\nNOOP\r\n")
    );
    assert!(net.installs.is_empty());
    assert_eq!(net.refusals, ["nat-unrewritable"]);
    assert_eq!(net.engine.stats().nat_hold_overflow, 1);
    assert_eq!(net.engine.stats().nat_too_late, 1);
}

#[test]
fn a_held_segment_is_released_when_its_time_is_up() {
    let mut net = masqueraded();
    let seq = net.ends[CLIENT].snd_nxt;
    let first = net.segment(CLIENT, seq, b"PORT 192,0,");
    assert!(net.pass(first).is_empty());
    let due = net
        .engine
        .poll_timeout()
        .expect("a deadline for the held segment");
    assert!(due <= net.now + Duration::from_secs(2));
    net.engine.handle_timeout(due);
    let mut released = 0;
    while let Some(action) = net.engine.poll_action() {
        if let Action::Release(r) = action {
            assert!(!r.rewritten);
            released += 1;
        }
    }
    assert_eq!(released, 1);
    assert_eq!(net.engine.stats().nat_hold_expired, 1);
}

#[test]
fn ipv6_eprt_behind_nat66() {
    let mut net = Net::new(
        "[2001:db8:2::2]:40000",
        "[2001:db8:3::2]:21",
        &["2001:db8:2::2=2001:db8:1::77"],
    );
    net.login();
    net.send(CLIENT, b"EPRT |2|2001:db8:2::2|5000|\r\n");
    net.send(SERVER, b"200 EPRT command successful.\r\n");
    net.send(CLIENT, b"LIST\r\n");
    net.settle();
    assert!(
        net.text(SERVER)
            .ends_with("EPRT |2|2001:db8:1::77|5000|\r\nLIST\r\n")
    );
    assert_eq!(
        net.installs[0].nat.unwrap().public.to_string(),
        "2001:db8:1::77"
    );
}

#[test]
fn published_server_229_and_a_taken_public_port() {
    let mut net = published();
    net.send(CLIENT, b"EPSV\r\n");
    net.send(
        SERVER,
        b"229 Entering Extended Passive Mode (|||50000|)\r\n",
    );
    net.send(CLIENT, b"EPSV\r\n");
    // The same port again for the same client: the key is the same, so is the face.
    net.send(
        SERVER,
        b"229 Entering Extended Passive Mode (|||50000|)\r\n",
    );
    net.settle();
    assert!(net.text(CLIENT).contains("(|||50000|)"));
    let faces: Vec<u16> = net
        .installs
        .iter()
        .map(|e| e.nat.unwrap().port.get())
        .collect();
    assert_eq!(faces, [50000, 50000]);
}

mod property {
    use proptest::prelude::*;

    use super::*;

    pub(super) const SCRIPT: &[u8] =
        b"PORT 192,0,2,2,19,136\r\nRETR one\r\nTYPE I\r\nPORT 192,0,2,2,19,137\r\nNOOP\r\n";
    const EXPECTED: &str = "PORT 198,51,100,177,19,136\r\nRETR one\r\nTYPE I\r\nPORT 198,51,100,177,19,137\r\nNOOP\r\n";

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// Random segmentations, duplicates and reorderings of a client's commands reach the
        /// server as exactly the rewritten text (after the client retransmits what the server
        /// did not acknowledge), and each side's bytes are acknowledged exactly.
        #[test]
        fn any_segmentation_arrives_rewritten(
            cuts in prop::collection::btree_set(1usize..SCRIPT.len(), 0..12),
            extra in prop::collection::vec((0usize..SCRIPT.len(), 1usize..30), 0..6),
            swaps in prop::collection::vec((0usize..20, 0usize..20), 0..6),
        ) {
            let mut net = masqueraded();
            let base = net.ends[CLIENT].snd_nxt;
            let mut bounds: Vec<usize> = cuts.into_iter().collect();
            bounds.insert(0, 0);
            bounds.push(SCRIPT.len());
            let mut pieces: Vec<(usize, usize)> = bounds.windows(2).map(|w| (w[0], w[1])).collect();
            for (from, len) in extra {
                pieces.push((from, (from + len).min(SCRIPT.len())));
            }
            let n = pieces.len();
            for (a, b) in swaps {
                pieces.swap(a % n, b % n);
            }
            net.ends[CLIENT].snd_nxt = base.wrapping_add(SCRIPT.len() as u32);
            for (from, to) in pieces {
                let bytes = net.segment(CLIENT, base.wrapping_add(from as u32), &SCRIPT[from..to]);
                net.pass(bytes);
                net.ack(SERVER);
            }
            // The client retransmits everything the server has not acknowledged.
            let acked = net.ends[CLIENT].acked.wrapping_sub(base) as usize;
            if acked < SCRIPT.len() {
                let bytes = net.segment(CLIENT, base.wrapping_add(acked as u32), &SCRIPT[acked..]);
                net.pass(bytes);
            }
            net.settle();
            let text = net.text(SERVER);
            prop_assert!(text.ends_with(EXPECTED), "{text:?}");
            prop_assert_eq!(net.installs.len(), 2);
        }
    }
}
