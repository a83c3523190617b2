//! Root tests of the NAT shell pieces against the real kernel, each in a private network
//! namespace: conntrack lookups over ctnetlink (`ftp_alg::io::conntrack`) of connections
//! the namespace's own nft NAT rules translated, and the nftables backend's NAT map elements
//! (`NftBackend::with_nat_maps`): listed by `nft`, removed, and DNATing a real SYN from a
//! second namespace.
//!
//! Each outer test re-runs this binary's `inner_*` test inside a fresh namespace
//! (`common::netns::run_inner`); without root or the tools it says "skipped" on stderr.
//! Only documentation addresses are used (RFC 5737, RFC 3849).

mod common;

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::net::IpAddr;
use std::net::SocketAddr;
use std::net::TcpListener;
use std::net::TcpStream;
use std::num::NonZeroU16;
use std::thread;
use std::time::Duration;
use std::time::Instant;

use common::netns::Netns;
use common::netns::inside;
use common::netns::run;
use common::netns::run_inner;
use common::netns::run_stdin;
use ftp_alg::expect::DataKey;
use ftp_alg::expect::NatMapping;
use ftp_alg::flow::Control;
use ftp_alg::io::backend::Backend;
use ftp_alg::io::backend::BackendError;
use ftp_alg::io::backend::DEFAULT_NAT_MAPS;
use ftp_alg::io::backend::Element;
use ftp_alg::io::backend::NftBackend;
use ftp_alg::io::conntrack::Conntrack;
use ftp_alg::io::conntrack::CtTuples;
use ftp_alg::nat::Translation;

/// What the outer tests need to run.
const TOOLS: [&str; 4] = ["nft", "ip", "bash", "timeout"];

/// Source and destination NAT for connections within the namespace: locally generated
/// packets pass the output (DNAT) and postrouting (SNAT) hooks, and conntrack records them
/// exactly as it records forwarded ones.
const NAT_RULES: &str = "
table inet nat {
  chain output { type nat hook output priority -100; policy accept;
    ip daddr 198.51.100.1 tcp dport 2122 dnat ip to 192.0.2.1
    ip6 daddr 2001:db8:2::1 tcp dport 2122 dnat ip6 to 2001:db8::1
  }
  chain postrouting { type nat hook postrouting priority 100; policy accept;
    ip daddr 192.0.2.1 tcp dport 2121 snat ip to 203.0.113.1
    ip6 daddr 2001:db8::1 tcp dport 2121 snat ip6 to 2001:db8:1::1
  }
}
";

/// The expectation sets, the NAT maps, and the prerouting chain that uses the maps.
const MAP_RULESET: &str = "
table inet ftpalg {
  set expect4 { type ipv4_addr . ipv4_addr . inet_service; flags timeout; timeout 30s; }
  set expect6 { type ipv6_addr . ipv6_addr . inet_service; flags timeout; timeout 30s; }
  map dnat4 { type ipv4_addr . ipv4_addr . inet_service : ipv4_addr . inet_service; flags timeout; timeout 30s; size 65536; }
  map dnat6 { type ipv6_addr . ipv6_addr . inet_service : ipv6_addr . inet_service; flags timeout; timeout 30s; size 65536; }
  chain nat_prerouting { type nat hook prerouting priority dstnat - 10; policy accept;
    ct state new meta l4proto tcp dnat ip to ip saddr . ip daddr . tcp dport map @dnat4
    ct state new meta l4proto tcp dnat ip6 to ip6 saddr . ip6 daddr . tcp dport map @dnat6
  }
}
";

/// Only what the expectation set admits reaches the private port (after DNAT).
const ADMIT_RULES: &str = "
table inet ftpalg {
  chain admit { type filter hook input priority filter; policy accept;
    tcp dport 2121 ct state new ip saddr . ip daddr . tcp dport @expect4 counter accept
    tcp dport 2121 ct state new ip6 saddr . ip6 daddr . tcp dport @expect6 counter accept
    tcp dport 2121 ct state new counter drop
  }
}
";

// ---- outer tests: one namespace each ----------------------------------------------------

#[test]
fn conntrack_lookup_finds_translated_plain_and_missing_connections() {
    run_inner(
        "inner_conntrack_lookup_finds_translated_plain_and_missing_connections",
        &TOOLS,
    );
}

#[test]
fn nft_nat_map_install_list_remove_and_check() {
    run_inner("inner_nft_nat_map_install_list_remove_and_check", &TOOLS);
}

#[test]
fn nft_nat_map_check_reports_missing_and_wrong_maps() {
    run_inner(
        "inner_nft_nat_map_check_reports_missing_and_wrong_maps",
        &TOOLS,
    );
}

#[test]
fn nft_nat_map_dnats_a_real_syn() {
    run_inner("inner_nft_nat_map_dnats_a_real_syn", &TOOLS);
}

// ---- inner tests: conntrack ---------------------------------------------------------------

#[test]
#[ignore = "runs inside a private netns, started by its outer test"]
fn inner_conntrack_lookup_finds_translated_plain_and_missing_connections() {
    if !inside("inner_conntrack_lookup_finds_translated_plain_and_missing_connections") {
        return;
    }
    local_addresses();
    run_stdin("nft", &["-f", "-"], NAT_RULES);
    let mut conntrack = Conntrack::open().unwrap();

    // A client behind SNAT: the server sees it as 203.0.113.1.
    let snat = Connection::open("192.0.2.1:2121", "192.0.2.1:2121");
    let (client, server) = snat.queue_view();
    assert_eq!(snat.peer.ip(), ip("203.0.113.1"), "the rule applied");
    assert_eq!(
        conntrack.lookup(client, server).unwrap(),
        Some(CtTuples {
            original: (client.ip(), server.ip()),
            reply: (server.ip(), ip("203.0.113.1")),
        })
    );
    assert_eq!(
        conntrack.translation(&control(client, server)).unwrap(),
        Translation {
            client_public: Some(ip("203.0.113.1")),
            server_public: None,
        }
    );

    // A server behind DNAT: the client dials 198.51.100.1, the queue sees 192.0.2.1.
    let dnat = Connection::open("192.0.2.1:2122", "198.51.100.1:2122");
    let (client, server) = dnat.queue_view();
    assert_eq!(server, sock("192.0.2.1:2122"));
    assert_eq!(
        conntrack.lookup(client, server).unwrap(),
        Some(CtTuples {
            original: (client.ip(), ip("198.51.100.1")),
            reply: (server.ip(), client.ip()),
        })
    );
    assert_eq!(
        conntrack.translation(&control(client, server)).unwrap(),
        Translation {
            client_public: None,
            server_public: Some(ip("198.51.100.1")),
        }
    );

    // Untranslated.
    let plain = Connection::open("192.0.2.1:2123", "192.0.2.1:2123");
    let (client, server) = plain.queue_view();
    let tuples = conntrack.lookup(client, server).unwrap().unwrap();
    assert_eq!(tuples.original, (client.ip(), server.ip()));
    assert_eq!(tuples.reply, (server.ip(), client.ip()));
    let translation = conntrack.translation(&control(client, server)).unwrap();
    assert_eq!(translation, Translation::NONE);

    // Nothing there.
    let (client, server) = (sock("192.0.2.2:9"), sock("192.0.2.1:2124"));
    assert_eq!(conntrack.lookup(client, server).unwrap(), None);
    let translation = conntrack.translation(&control(client, server)).unwrap();
    assert_eq!(translation, Translation::NONE);

    // The same over IPv6.
    let snat6 = Connection::open("[2001:db8::1]:2121", "[2001:db8::1]:2121");
    let (client, server) = snat6.queue_view();
    assert_eq!(snat6.peer.ip(), ip("2001:db8:1::1"), "the rule applied");
    assert_eq!(
        conntrack.translation(&control(client, server)).unwrap(),
        Translation {
            client_public: Some(ip("2001:db8:1::1")),
            server_public: None,
        }
    );
    let dnat6 = Connection::open("[2001:db8::1]:2122", "[2001:db8:2::1]:2122");
    let (client, server) = dnat6.queue_view();
    assert_eq!(server, sock("[2001:db8::1]:2122"));
    assert_eq!(
        conntrack.lookup(client, server).unwrap(),
        Some(CtTuples {
            original: (client.ip(), ip("2001:db8:2::1")),
            reply: (server.ip(), client.ip()),
        })
    );
    assert_eq!(
        conntrack.translation(&control(client, server)).unwrap(),
        Translation {
            client_public: None,
            server_public: Some(ip("2001:db8:2::1")),
        }
    );
    let missing = conntrack.lookup(sock("[2001:db8::2]:9"), sock("[2001:db8::1]:2124"));
    assert_eq!(missing.unwrap(), None);
}

// ---- inner tests: NAT maps ----------------------------------------------------------------

#[test]
#[ignore = "runs inside a private netns, started by its outer test"]
fn inner_nft_nat_map_install_list_remove_and_check() {
    if !inside("inner_nft_nat_map_install_list_remove_and_check") {
        return;
    }
    run_stdin("nft", &["-f", "-"], MAP_RULESET);
    let [map4, map6] = DEFAULT_NAT_MAPS;
    let mut nft = NftBackend::new("ftpalg", "expect4", "expect6").with_nat_maps(map4, map6);
    nft.check().unwrap();

    let v4 = natted(
        "198.51.100.2",
        "192.0.2.1",
        2121,
        ("203.0.113.1", 40000),
        10_000,
    );
    let v6 = natted(
        "2001:db8::2",
        "2001:db8:5::1",
        2121,
        ("2001:db8:1::1", 40000),
        10_000,
    );
    let plain = Element {
        nat: None,
        ..natted(
            "198.51.100.3",
            "192.0.2.1",
            2121,
            ("203.0.113.1", 1),
            10_000,
        )
    };
    nft.install(&[v4, v6, plain]).unwrap();

    let listed = run("nft", &["list", "map", "inet", "ftpalg", "dnat4"]);
    let line = listed
        .lines()
        .find(|l| l.contains("elements = "))
        .unwrap_or_else(|| panic!("no elements:\n{listed}"));
    assert!(
        line.contains("198.51.100.2 . 203.0.113.1 . 40000 timeout 10s expires ")
            && line.contains(" : 192.0.2.1 . 2121 }"),
        "{listed}"
    );
    let map = map_elements("dnat4");
    assert_eq!(map.len(), 1, "{map:?}");
    let (data, expires) = &map["198.51.100.2 . 203.0.113.1 . 40000"];
    assert_eq!(data, "192.0.2.1 . 2121");
    assert!((8..=10).contains(expires), "expires {expires}");
    let map6 = map_elements("dnat6");
    assert_eq!(
        map6["2001:db8::2 . 2001:db8:1::1 . 40000"].0,
        "2001:db8:5::1 . 2121"
    );
    let set = run("nft", &["list", "set", "inet", "ftpalg", "expect4"]);
    assert!(set.contains("198.51.100.2 . 192.0.2.1 . 2121"), "{set}");
    assert!(set.contains("198.51.100.3 . 192.0.2.1 . 2121"), "{set}");

    // Re-adding refreshes the map element's timeout as well as the set element's.
    let longer = Element {
        timeout: Duration::from_secs(60),
        ..v4
    };
    nft.install(&[longer]).unwrap();
    let expires = map_elements("dnat4")["198.51.100.2 . 203.0.113.1 . 40000"].1;
    assert!((58..=60).contains(&expires), "refreshed expires {expires}");

    // Removal takes the map elements too; gone already is not an error.
    nft.remove(&[v4, v6]).unwrap();
    assert!(map_elements("dnat4").is_empty());
    assert!(map_elements("dnat6").is_empty());
    let set = run("nft", &["list", "set", "inet", "ftpalg", "expect4"]);
    assert!(!set.contains("198.51.100.2 . "), "{set}");
    assert!(set.contains("198.51.100.3 . 192.0.2.1 . 2121"), "{set}");
    nft.remove(&[v4, v6]).unwrap();

    // One transaction for a packet's removals and installs, maps included.
    let next = natted(
        "198.51.100.2",
        "192.0.2.1",
        2122,
        ("203.0.113.1", 40001),
        10_000,
    );
    let applied = nft.apply(&[plain], &[next]);
    assert!(
        applied.install_error.is_none() && applied.remove_error.is_none(),
        "{applied:?}"
    );
    assert_eq!(
        map_elements("dnat4").keys().collect::<Vec<_>>(),
        ["198.51.100.2 . 203.0.113.1 . 40001"]
    );
    let set = run("nft", &["list", "set", "inet", "ftpalg", "expect4"]);
    assert!(!set.contains("198.51.100.3"), "{set}");

    // A clash: the same public face for another private endpoint.
    let clash = natted(
        "198.51.100.2",
        "192.0.2.9",
        2122,
        ("203.0.113.1", 40001),
        10_000,
    );
    let error = nft.install(&[clash]).unwrap_err().to_string();
    assert_eq!(
        error,
        "the kernel refused to add elements of nftables map inet ftpalg dnat4: File exists (os \
         error 17): the map already sends that public endpoint to another private one"
    );
    let set = run("nft", &["list", "set", "inet", "ftpalg", "expect4"]);
    assert!(!set.contains("192.0.2.9"), "the batch was atomic: {set}");
}

#[test]
#[ignore = "runs inside a private netns, started by its outer test"]
fn inner_nft_nat_map_check_reports_missing_and_wrong_maps() {
    if !inside("inner_nft_nat_map_check_reports_missing_and_wrong_maps") {
        return;
    }
    run_stdin(
        "nft",
        &["-f", "-"],
        "table inet ftpalg {
           set expect4 { type ipv4_addr . ipv4_addr . inet_service; flags timeout; }
           set expect6 { type ipv6_addr . ipv6_addr . inet_service; flags timeout; }
         }",
    );
    // The sets alone are enough while NAT maps are off.
    NftBackend::new("ftpalg", "expect4", "expect6")
        .check()
        .unwrap();
    let mut nft = NftBackend::new("ftpalg", "expect4", "expect6").with_nat_maps("dnat4", "dnat6");
    let error = nft.check().unwrap_err();
    assert!(
        matches!(error, BackendError::MissingSet { .. }),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "nftables map inet ftpalg dnat4 does not exist: add it to table inet ftpalg: `map \
         dnat4 { type ipv4_addr . ipv4_addr . inet_service : ipv4_addr . inet_service; flags \
         timeout; }`, with a prerouting nat rule `dnat ip to ip saddr . ip daddr . tcp dport \
         map @dnat4` (docs/netlink.md)"
    );
    // Adding and removing name the missing map too, and nothing is half done.
    let v4 = natted(
        "198.51.100.2",
        "192.0.2.1",
        2121,
        ("203.0.113.1", 40000),
        10_000,
    );
    let error = nft.install(&[v4]).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("nftables map inet ftpalg dnat4 does not exist"),
        "{error}"
    );
    let set = run("nft", &["list", "set", "inet", "ftpalg", "expect4"]);
    assert!(!set.contains("198.51.100.2"), "the batch was atomic: {set}");
    let error = nft.remove(&[v4]).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("nftables map inet ftpalg dnat4 does not exist"),
        "{error}"
    );

    run_stdin(
        "nft",
        &["-f", "-"],
        "table inet ftpalg {
           map dnat4 { type ipv4_addr . ipv4_addr . inet_service : ipv4_addr . inet_service; flags timeout; }
           map dnat6 { type ipv6_addr . ipv6_addr . inet_service : ipv6_addr . inet_service; flags timeout; }
           map wrongdata { type ipv4_addr . ipv4_addr . inet_service : ipv4_addr; flags timeout; }
           map notimeout { type ipv4_addr . ipv4_addr . inet_service : ipv4_addr . inet_service; }
         }",
    );
    nft.check().unwrap();
    let problem = |map4: &str, map6: &str| {
        let mut nft = NftBackend::new("ftpalg", "expect4", "expect6").with_nat_maps(map4, map6);
        nft.check().unwrap_err().to_string()
    };
    let error = problem("expect4", "dnat6");
    assert!(
        error.starts_with("nftables map inet ftpalg expect4 is a set, not a map"),
        "{error}"
    );
    let error = problem("wrongdata", "dnat6");
    assert!(
        error.starts_with("nftables map inet ftpalg wrongdata has the wrong data type"),
        "{error}"
    );
    let error = problem("notimeout", "dnat6");
    assert!(error.contains("notimeout lacks `flags timeout`"), "{error}");
    let error = problem("dnat4", "dnat4");
    assert!(
        error.starts_with("nftables map inet ftpalg dnat4 has the wrong key type (want `ipv6_addr"),
        "{error}"
    );
    let mut swapped = NftBackend::new("ftpalg", "dnat4", "expect6");
    let error = swapped.check().unwrap_err().to_string();
    assert!(
        error.starts_with("nftables set inet ftpalg dnat4 is a map, not a set"),
        "{error}"
    );
}

#[test]
#[ignore = "runs inside a private netns, started by its outer test"]
fn inner_nft_nat_map_dnats_a_real_syn() {
    if !inside("inner_nft_nat_map_dnats_a_real_syn") {
        return;
    }
    let client = two_namespaces();
    run_stdin("nft", &["-f", "-"], MAP_RULESET);
    run_stdin("nft", &["-f", "-"], ADMIT_RULES);
    let private4 = listen("192.0.2.1:2121");
    let private6 = listen("[2001:db8::1]:2121");
    let mut nft = NftBackend::new("ftpalg", "expect4", "expect6").with_nat_maps("dnat4", "dnat6");
    nft.check().unwrap();

    // Without an element nothing reaches the private endpoint through the public one.
    assert!(
        !dial(&client, "203.0.113.1", 40000),
        "connected without a map element"
    );

    let v4 = natted(
        "198.51.100.2",
        "192.0.2.1",
        2121,
        ("203.0.113.1", 40000),
        10_000,
    );
    let v6 = natted(
        "2001:db8:100::2",
        "2001:db8::1",
        2121,
        ("2001:db8:1::1", 40000),
        10_000,
    );
    nft.install(&[v4, v6]).unwrap();
    assert!(
        dial(&client, "203.0.113.1", 40000),
        "the SYN was not DNATed"
    );
    assert_eq!(accepted(&private4), Some(ip("198.51.100.2")));
    assert!(
        dial(&client, "2001:db8:1::1", 40000),
        "the IPv6 SYN was not DNATed"
    );
    assert_eq!(accepted(&private6), Some(ip("2001:db8:100::2")));
    // Another public port of the same address is not mapped.
    assert!(!dial(&client, "203.0.113.1", 40001));
    let counters = run("nft", &["list", "chain", "inet", "ftpalg", "admit"]);
    assert_eq!(
        counters.matches("counter packets 1 ").count(),
        2,
        "{counters}"
    );

    nft.remove(&[v4, v6]).unwrap();
    assert!(
        !dial(&client, "203.0.113.1", 40000),
        "connected after the removal"
    );
    assert_eq!(accepted(&private4), None);
}

// ---- helpers -----------------------------------------------------------------------------

/// A connection within the namespace, and the listener that took it.
struct Connection {
    client: TcpStream,
    accepted: TcpStream,
    /// The client as the server sees it.
    peer: SocketAddr,
    _listener: TcpListener,
}

impl Connection {
    /// Listen at `listen`, connect to `dial`.
    fn open(listen: &str, dial: &str) -> Self {
        let listener = TcpListener::bind(listen).unwrap();
        let client = TcpStream::connect_timeout(&sock(dial), Duration::from_secs(2)).unwrap();
        let (accepted, peer) = listener.accept().unwrap();
        Self {
            client,
            accepted,
            peer,
            _listener: listener,
        }
    }

    /// The endpoints as a FORWARD queue would see them: the client before SNAT, the server
    /// after DNAT.
    fn queue_view(&self) -> (SocketAddr, SocketAddr) {
        (
            self.client.local_addr().unwrap(),
            self.accepted.local_addr().unwrap(),
        )
    }
}

fn control(client: SocketAddr, server: SocketAddr) -> Control {
    Control { client, server }
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn sock(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

/// An expectation `src -> dst:dport` announced to the peer as `public`.
fn natted(src: &str, dst: &str, dport: u16, public: (&str, u16), timeout_ms: u64) -> Element {
    Element {
        key: DataKey {
            src: ip(src),
            dst: ip(dst),
            dport: NonZeroU16::new(dport).unwrap(),
        },
        timeout: Duration::from_millis(timeout_ms),
        nat: Some(NatMapping {
            public: ip(public.0),
            port: NonZeroU16::new(public.1).unwrap(),
        }),
    }
}

/// `nft -j list map`: element "src . public . port" → ("dst . port", seconds to expiry).
fn map_elements(map: &str) -> BTreeMap<String, (String, u64)> {
    let json = run("nft", &["-j", "list", "map", "inet", "ftpalg", map]);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let map = value["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|v| v.get("map"))
        .unwrap();
    let Some(elements) = map.get("elem").and_then(|e| e.as_array()) else {
        return BTreeMap::new();
    };
    let joined = |concat: &serde_json::Value| {
        let fields = concat["concat"].as_array().unwrap();
        let fields: Vec<String> = fields
            .iter()
            .map(|f| f.to_string().trim_matches('"').to_owned())
            .collect();
        fields.join(" . ")
    };
    elements
        .iter()
        .map(|pair| {
            let (element, data) = (&pair[0]["elem"], &pair[1]);
            let expires = element["expires"].as_u64().unwrap_or(0);
            (joined(&element["val"]), (joined(data), expires))
        })
        .collect()
}

/// On lo: 192.0.2.1 (server), 192.0.2.2 (client), 198.51.100.1 (the server's public
/// address) and 203.0.113.1 (the client's); connections to 192.0.2.1 and 198.51.100.1 leave
/// from 192.0.2.2. IPv6: 2001:db8::1 (server; also the client's source when it dials it),
/// 2001:db8::2 (client), 2001:db8:1::1 (the client's public address), and 2001:db8:2::1 (the
/// server's public address, routed to lo, dialled from 2001:db8::2).
fn local_addresses() {
    for address in ["192.0.2.1", "192.0.2.2", "198.51.100.1", "203.0.113.1"] {
        run(
            "ip",
            &["addr", "add", &format!("{address}/32"), "dev", "lo"],
        );
    }
    for to in ["192.0.2.1", "198.51.100.1"] {
        run(
            "ip",
            &[
                "route",
                "replace",
                "local",
                to,
                "dev",
                "lo",
                "table",
                "local",
                "src",
                "192.0.2.2",
            ],
        );
    }
    for address in ["2001:db8::1", "2001:db8::2", "2001:db8:1::1"] {
        let address = format!("{address}/128");
        run("ip", &["-6", "addr", "add", &address, "dev", "lo", "nodad"]);
    }
    run(
        "ip",
        &[
            "-6",
            "route",
            "add",
            "2001:db8:2::1/128",
            "dev",
            "lo",
            "src",
            "2001:db8::2",
        ],
    );
}

/// A client namespace joined to this one by a veth: here 198.51.100.1/24 and
/// 2001:db8:100::1/64 (the gateway), with the private endpoints 192.0.2.1 and 2001:db8::1
/// and the public addresses 203.0.113.1 and 2001:db8:1::1 on lo (so that a SYN nothing
/// DNATs is answered at once by a reset: no listener there); there 198.51.100.2/24 and
/// 2001:db8:100::2/64, routed through here.
fn two_namespaces() -> Netns {
    let client = Netns::new("natcl");
    run(
        "ip",
        &[
            "link",
            "add",
            "veth-gw",
            "type",
            "veth",
            "peer",
            "name",
            "veth-cl",
            "netns",
            client.name(),
        ],
    );
    for args in [
        &["addr", "add", "198.51.100.1/24", "dev", "veth-gw"][..],
        &[
            "-6",
            "addr",
            "add",
            "2001:db8:100::1/64",
            "dev",
            "veth-gw",
            "nodad",
        ],
        &["link", "set", "veth-gw", "up"],
        &["addr", "add", "192.0.2.1/32", "dev", "lo"],
        &["-6", "addr", "add", "2001:db8::1/128", "dev", "lo", "nodad"],
        &["addr", "add", "203.0.113.1/32", "dev", "lo"],
        &[
            "-6",
            "addr",
            "add",
            "2001:db8:1::1/128",
            "dev",
            "lo",
            "nodad",
        ],
    ] {
        run("ip", args);
    }
    for args in [
        &["link", "set", "lo", "up"][..],
        &["addr", "add", "198.51.100.2/24", "dev", "veth-cl"],
        &[
            "-6",
            "addr",
            "add",
            "2001:db8:100::2/64",
            "dev",
            "veth-cl",
            "nodad",
        ],
        &["link", "set", "veth-cl", "up"],
        &["route", "add", "default", "via", "198.51.100.1"],
        &["-6", "route", "add", "default", "via", "2001:db8:100::1"],
    ] {
        let output = client.run("ip", args);
        assert!(
            output.status.success(),
            "ip {args:?} in the client namespace"
        );
    }
    client
}

/// A non-blocking listener.
fn listen(at: &str) -> TcpListener {
    let listener = TcpListener::bind(at).unwrap();
    listener.set_nonblocking(true).unwrap();
    listener
}

/// Whether a TCP connection from the client namespace to `address`:`port` is established
/// within 3 s (bash's `/dev/tcp`).
fn dial(client: &Netns, address: &str, port: u16) -> bool {
    let script = format!("exec 3<>/dev/tcp/{address}/{port}");
    let output = client.run("timeout", &["3", "bash", "-c", &script]);
    output.status.success()
}

/// The peer of a connection waiting on `listener` (within 1 s), if any.
fn accepted(listener: &TcpListener) -> Option<IpAddr> {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        match listener.accept() {
            Ok((_, peer)) => return Some(peer.ip()),
            Err(error) if error.kind() == ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return None;
                }
                thread::sleep(Duration::from_millis(20));
            }
            Err(error) => panic!("accept: {error}"),
        }
    }
}
