//! The kernel holds exactly the engine's expectations: real conversations driven through the
//! engine and the daemon's [`Applier`] into a real nftables set and a real ipset, each in a
//! private network namespace, and after every packet the set as `nft -j list set` / `ipset
//! save` prints it must equal `Engine::expectations()`.
//!
//! Root only (the outer tests say "skipped" otherwise); `make test` runs them as root.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;

use common::netns::inside;
use common::netns::run;
use common::netns::run_inner;
use common::netns::run_stdin;
use ftp_alg::config::Config;
use ftp_alg::engine::Engine;
use ftp_alg::io::backend::Backend;
use ftp_alg::io::backend::IpsetBackend;
use ftp_alg::io::backend::NftBackend;
use ftp_alg::io::daemon::apply::Applier;
use ftp_alg::testkit::conversation::Conversation;
use ftp_alg::testkit::conversation::Side::Client;
use ftp_alg::testkit::conversation::Side::Server;
use ftp_alg::testkit::conversation::logged_in;
use ftp_alg::time::Instant;

const NFT_RULESET: &str = "
table inet ftpalg {
  set expect4 { type ipv4_addr . ipv4_addr . inet_service; flags timeout; timeout 30s; size 6; }
  set expect6 { type ipv6_addr . ipv6_addr . inet_service; flags timeout; timeout 30s; }
}
";

// ---- outer tests --------------------------------------------------------------------------

#[test]
fn nft_set_equals_the_engine_after_every_packet() {
    run_inner("inner_nft_set_equals_the_engine", &["ip", "nft"]);
}

#[test]
fn ipset_equals_the_engine_after_every_packet() {
    run_inner("inner_ipset_equals_the_engine", &["ip", "ipset"]);
}

// ---- inner tests --------------------------------------------------------------------------

#[test]
#[ignore = "runs inside a private netns, started by its outer test"]
fn inner_nft_set_equals_the_engine() {
    if !inside("inner_nft_set_equals_the_engine") {
        return;
    }
    run_stdin("nft", &["-f", "-"], NFT_RULESET);
    let backend = NftBackend::new("ftpalg", "expect4", "expect6");
    let mut rig = Rig::new(Box::new(backend), nft_keys);
    every_scenario(&mut rig);
    // The set holds 6 (`size 6`): a second connection's burst of 4 does not fit; the kernel
    // refuses the whole transaction and the engine withdraws exactly those 4.
    let mut a = logged_in("198.51.100.7:40000");
    a.send(Client, ports(7, 4, 51000).as_bytes());
    rig.feed(&mut a);
    let mut b = logged_in("198.51.100.8:40000");
    b.send(Client, ports(8, 4, 52000).as_bytes());
    rig.feed(&mut b);
    assert_eq!(rig.refused, 4, "the kernel refused the second burst");
    assert_eq!(rig.held().len(), 4);
    // Supersession inside the first connection still works at the size limit.
    a.send(Client, ports(7, 2, 51100).as_bytes());
    rig.feed(&mut a);
    assert_eq!(rig.held().len(), 4);
    close(&mut a);
    rig.feed(&mut a);
    close(&mut b);
    rig.feed(&mut b);
    assert!(rig.held().is_empty());
}

#[test]
#[ignore = "runs inside a private netns, started by its outer test"]
fn inner_ipset_equals_the_engine() {
    if !inside("inner_ipset_equals_the_engine") {
        return;
    }
    for family in ["inet", "inet6"] {
        let name = if family == "inet" {
            "ftpalg-expect4"
        } else {
            "ftpalg-expect6"
        };
        let args = [
            "create",
            name,
            "hash:ip,port,ip",
            "family",
            family,
            "timeout",
            "30",
        ];
        run("ipset", &args);
    }
    let backend = IpsetBackend::new("ftpalg-expect4", "ftpalg-expect6");
    let mut rig = Rig::new(Box::new(backend), ipset_keys);
    every_scenario(&mut rig);
}

// ---- the scenarios --------------------------------------------------------------------------

fn every_scenario(rig: &mut Rig) {
    // Eight PORT lines in one segment: at most the bound (4), and nothing after the close.
    let mut c = logged_in("198.51.100.2:40000");
    c.send(Client, ports(2, 8, 50000).as_bytes());
    rig.feed(&mut c);
    assert_eq!(rig.held().len(), 4);
    c.send(Server, "200 ok\r\n".repeat(8).as_bytes());
    close(&mut c);
    rig.feed(&mut c);
    assert!(rig.held().is_empty());

    // A pipelined PASV and QUIT answered by 227 and 221 in one segment.
    let mut c = logged_in("198.51.100.2:40001");
    c.send(Client, b"PASV\r\nQUIT\r\n").send(
        Server,
        b"227 Entering Passive Mode (203,0,113,2,195,80).\r\n221 Goodbye.\r\n",
    );
    rig.feed(&mut c);
    assert!(rig.held().is_empty());

    // Supersession, failed and completed transfers, cancel, EPSV, REIN, an RST.
    let mut c = logged_in("198.51.100.2:40002");
    for p in 0..6u8 {
        c.send(Client, b"PASV\r\n")
            .send(Server, format!("227 (203,0,113,2,196,{p})\r\n").as_bytes());
        rig.feed(&mut c);
    }
    c.send(Client, b"RETR a\r\n").send(Server, b"550 no\r\n");
    c.send(Client, b"PORT 198,51,100,2,197,1\r\n")
        .send(Server, b"500 Illegal PORT command.\r\n");
    c.send(Client, b"PASV\r\nRETR b\r\n").send(
        Server,
        b"227 (203,0,113,2,196,99)\r\n150 go\r\n226 done\r\n",
    );
    c.send(Client, b"EPSV\r\n")
        .send(Server, b"229 (|||50100|)\r\n");
    rig.feed(&mut c);
    c.send(Client, b"REIN\r\n").send(Server, b"220 again\r\n");
    c.send(Client, b"PORT 198,51,100,2,197,2\r\n")
        .send(Server, b"200 ok\r\n");
    rig.feed(&mut c);
    assert_eq!(rig.held().len(), 1);
    c.rst(Client);
    rig.feed(&mut c);
    assert!(rig.held().is_empty());

    // IPv6: EPRT and EPSV, then a close.
    let mut c = Conversation::new(
        addr("[2001:db8:100::2]:40000"),
        addr("[2001:db8:113::2]:21"),
    );
    c.handshake()
        .send(Server, b"220 hi\r\n")
        .send(Client, b"USER u\r\n")
        .send(Server, b"331 pw\r\n")
        .send(Client, b"EPRT |2|2001:db8:100::2|50001|\r\nEPSV\r\n")
        .send(Server, b"200 ok\r\n229 (|||50002|)\r\n");
    rig.feed(&mut c);
    assert_eq!(rig.held().len(), 2);
    close(&mut c);
    rig.feed(&mut c);
    assert!(rig.held().is_empty());
}

// ---- the rig ------------------------------------------------------------------------------

/// An engine and the daemon's applier in front of a real set.
struct Rig {
    engine: Engine,
    applier: Applier,
    backend: Box<dyn Backend>,
    list: fn() -> BTreeSet<String>,
    start: std::time::Instant,
    refused: u64,
}

impl Rig {
    fn new(backend: Box<dyn Backend>, list: fn() -> BTreeSet<String>) -> Self {
        Self {
            engine: Engine::new(Config::default()),
            applier: Applier::new("test".into(), Instant::from_micros(0)),
            backend,
            list,
            start: std::time::Instant::now(),
            refused: 0,
        }
    }

    /// Every packet of `c` (taken), each followed by the set-equals-engine check.
    fn feed(&mut self, c: &mut Conversation) {
        for packet in c.take_packets() {
            let now = self.now();
            let _ = self.engine.handle_packet(now, &packet.bytes);
            if !self
                .applier
                .apply(&mut self.engine, self.backend.as_mut(), now)
            {
                self.refused = self.engine.stats().install_errors;
            }
            assert_eq!(self.held(), self.expected(), "after a packet at {now}");
        }
    }

    fn now(&self) -> Instant {
        Instant::from_micros(u64::try_from(self.start.elapsed().as_micros()).unwrap())
    }

    fn held(&self) -> BTreeSet<String> {
        (self.list)()
    }

    fn expected(&self) -> BTreeSet<String> {
        self.engine
            .expectations()
            .iter()
            .map(|e| format!("{} {} {}", e.key.src, e.key.dst, e.key.dport))
            .collect()
    }
}

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

fn close(c: &mut Conversation) {
    c.fin(Client).fin(Server).ack(Client);
}

/// `count` PORT lines of client 198.51.100.`host`, ports from `first`.
fn ports(host: u8, count: u16, first: u16) -> String {
    (first..first + count)
        .map(|p| format!("PORT 198,51,100,{host},{},{}\r\n", p >> 8, p & 255))
        .collect()
}

/// Both nft sets as "src dst dport" lines.
fn nft_keys() -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for set in ["expect4", "expect6"] {
        let json = run("nft", &["-j", "list", "set", "inet", "ftpalg", set]);
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        let listed = value["nftables"].as_array().unwrap();
        let set = listed.iter().find_map(|v| v.get("set")).unwrap();
        for e in set
            .get("elem")
            .and_then(|e| e.as_array())
            .into_iter()
            .flatten()
        {
            let fields = e["elem"]["val"]["concat"].as_array().unwrap();
            let text: Vec<String> = fields
                .iter()
                .map(|f| f.to_string().replace('"', ""))
                .collect();
            keys.insert(text.join(" "));
        }
    }
    keys
}

/// Both ipsets as "src dst dport" lines (`add SET src,tcp:port,dst timeout N`).
fn ipset_keys() -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for set in ["ftpalg-expect4", "ftpalg-expect6"] {
        for line in run("ipset", &["save", set]).lines() {
            let Some(rest) = line.strip_prefix("add ") else {
                continue;
            };
            let member = rest.split_whitespace().nth(1).unwrap();
            let mut parts = member.split(',');
            let (src, port, dst) = (parts.next(), parts.next(), parts.next());
            let port = port.and_then(|p| p.strip_prefix("tcp:")).unwrap();
            keys.insert(format!("{} {} {port}", src.unwrap(), dst.unwrap()));
        }
    }
    keys
}
