//! Root tests of the kernel interfaces (`ftp_alg::io::{nfqueue, backend}`) against the
//! real kernel, each in a private network namespace so the host is untouched.
//!
//! Each outer test (`socket_*`, `nft_*`, `ipset_*`, `nfqueue_*`) creates a namespace,
//! re-runs this binary inside it with `ip netns exec NS <exe> --exact inner_… \
//! --include-ignored`, and deletes the namespace afterwards, even on failure (a Drop
//! guard; `common::netns::run_inner`). The `inner_*` tests are `#[ignore]`d and refuse to run outside their namespace.
//! Without root or the tools (nft, ipset, iptables, ip) every outer test says "skipped"
//! on stderr. Only documentation addresses are used (RFC 5737, RFC 3849).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::net::TcpStream;
use std::net::UdpSocket;
use std::num::NonZeroU16;
use std::os::fd::AsFd;
use std::thread;
use std::time::Duration;
use std::time::Instant;

use ftp_alg::expect::DataKey;
use ftp_alg::io::backend::Backend;
use ftp_alg::io::backend::BackendError;
use ftp_alg::io::backend::Element;
use ftp_alg::io::backend::IpsetBackend;
use ftp_alg::io::backend::NftBackend;
use ftp_alg::io::netlink;
use ftp_alg::io::netlink::Expect;
use ftp_alg::io::netlink::Header;
use ftp_alg::io::netlink::SMALL_RECEIVE;
use ftp_alg::io::netlink::Socket;
use ftp_alg::io::netlink::Writer;
use ftp_alg::io::netlink::consts::NFPROTO_UNSPEC;
use ftp_alg::io::netlink::consts::NLM_F_ACK;
use ftp_alg::io::netlink::consts::NLM_F_REQUEST;
use ftp_alg::io::netlink::consts::NLMSG_NOOP;
use ftp_alg::io::nfqueue;
use ftp_alg::io::nfqueue::OpenError;
use ftp_alg::io::nfqueue::Packet;
use ftp_alg::io::nfqueue::Queue;
use ftp_alg::io::nfqueue::QueueOptions;
use ftp_alg::io::nfqueue::QueueVerdict;
use ftp_alg::io::sys;

mod common;

use common::netns::inside;
use common::netns::run;
use common::netns::run_inner;
use common::netns::run_stdin;

/// What the outer tests need to run.
const TOOLS: [&str; 4] = ["nft", "ipset", "iptables", "ip"];

const NFT_RULESET: &str = "
table inet ftpalg {
  set expect4 { type ipv4_addr . ipv4_addr . inet_service; flags timeout; timeout 30s; }
  set expect6 { type ipv6_addr . ipv6_addr . inet_service; flags timeout; timeout 30s; }
}
";

// ---- outer tests: one namespace each ----------------------------------------------------

#[test]
fn socket_unanswered_request_times_out_at_its_bound() {
    run_inner(
        "inner_socket_unanswered_request_times_out_at_its_bound",
        &TOOLS,
    );
}

#[test]
fn socket_late_answer_is_not_taken_for_a_later_request() {
    run_inner(
        "inner_socket_late_answer_is_not_taken_for_a_later_request",
        &TOOLS,
    );
}

#[test]
fn nft_install_list_refresh_remove() {
    run_inner("inner_nft_install_list_refresh_remove", &TOOLS);
}

#[test]
fn nft_short_timeout_expires() {
    run_inner("inner_nft_short_timeout_expires", &TOOLS);
}

#[test]
fn nft_check_reports_missing_and_wrong_sets() {
    run_inner("inner_nft_check_reports_missing_and_wrong_sets", &TOOLS);
}

#[test]
fn nft_consume_rule_deletes_on_first_syn() {
    run_inner("inner_nft_consume_rule_deletes_on_first_syn", &TOOLS);
}

#[test]
fn ipset_install_list_refresh_remove() {
    run_inner("inner_ipset_install_list_refresh_remove", &TOOLS);
}

#[test]
fn ipset_expiry_check_and_match() {
    run_inner("inner_ipset_expiry_check_and_match", &TOOLS);
}

#[test]
fn nfqueue_accept_and_drop() {
    run_inner("inner_nfqueue_accept_and_drop", &TOOLS);
}

#[test]
fn nfqueue_overrun_is_reported_and_survived() {
    run_inner("inner_nfqueue_overrun_is_reported_and_survived", &TOOLS);
}

#[test]
fn nfqueue_second_bind_is_busy() {
    run_inner("inner_nfqueue_second_bind_is_busy", &TOOLS);
}

#[test]
fn nfqueue_truncation_is_reported() {
    run_inner("inner_nfqueue_truncation_is_reported", &TOOLS);
}

#[test]
fn nfqueue_replaced_payload_is_delivered() {
    run_inner("inner_nfqueue_replaced_payload_is_delivered", &TOOLS);
}

// ---- inner tests: the socket -------------------------------------------------------------

#[test]
#[ignore = "runs inside a private netns, started by its outer test"]
fn inner_socket_unanswered_request_times_out_at_its_bound() {
    if !inside("inner_socket_unanswered_request_times_out_at_its_bound") {
        return;
    }
    let mut socket = Socket::open(SMALL_RECEIVE).unwrap();
    let bound = Duration::from_millis(150);
    socket.set_answer_timeout(bound);
    // The same NOOP with NLM_F_ACK is answered at once: the kernel is there and reads it.
    let seq = socket.next_seq();
    let answered = socket.exchange(&noop(seq, NLM_F_ACK), acked(&[seq]), &mut |_| {});
    assert_eq!(answered.unwrap().outcomes, vec![(seq, Ok(()))]);

    // Without NLM_F_ACK the kernel says nothing, while we wait for an ACK of `seq`.
    let seq = socket.next_seq();
    let started = Instant::now();
    let silent = socket.exchange(&noop(seq, 0), acked(&[seq]), &mut |_| {});
    let took = started.elapsed();
    match silent {
        Err(netlink::Error::Timeout(after)) => assert_eq!(after, bound),
        other => panic!("expected a timeout after {bound:?}, got {other:?}"),
    }
    assert!(took >= bound, "gave up after {took:?}, before {bound:?}");
    assert!(took < Duration::from_secs(2), "took {took:?} for {bound:?}");
}

#[test]
#[ignore = "runs inside a private netns, started by its outer test"]
fn inner_socket_late_answer_is_not_taken_for_a_later_request() {
    if !inside("inner_socket_late_answer_is_not_taken_for_a_later_request") {
        return;
    }
    let mut socket = Socket::open(SMALL_RECEIVE).unwrap();
    socket.set_answer_timeout(Duration::from_millis(50));
    let first = socket.next_seq();
    let silent = socket.exchange(&noop(first, 0), acked(&[first]), &mut |_| {});
    assert!(
        matches!(silent, Err(netlink::Error::Timeout(_))),
        "{silent:?}"
    );
    // The answer to `first` arrives late: the kernel ACKs a copy that asks for one.
    socket.send(&noop(first, NLM_F_ACK)).unwrap();

    let second = socket.next_seq();
    let mut others = Vec::new();
    let exchange = socket
        .exchange(&noop(second, NLM_F_ACK), acked(&[second]), &mut |m| {
            others.push(m.seq)
        })
        .unwrap();
    assert_eq!(exchange.outcomes, vec![(second, Ok(()))]);
    assert_eq!(others, vec![first], "the late answer went to `other`");
}

// ---- inner tests: nftables ---------------------------------------------------------------

#[test]
#[ignore = "runs inside a private netns, started by its outer test"]
fn inner_nft_install_list_refresh_remove() {
    if !inside("inner_nft_install_list_refresh_remove") {
        return;
    }
    run_stdin("nft", &["-f", "-"], NFT_RULESET);
    let mut nft = NftBackend::new("ftpalg", "expect4", "expect6");
    nft.check().unwrap();
    let v4 = element("198.51.100.2", "203.0.113.2", 40123, 10_000);
    let v6 = element("2001:db8::2", "2001:db8:1::5", 50000, 10_000);
    nft.install(&[v4, v6]).unwrap();
    let listed = nft_elements("expect4");
    assert_eq!(
        listed.keys().collect::<Vec<_>>(),
        ["198.51.100.2 . 203.0.113.2 . 40123"]
    );
    let expires = listed["198.51.100.2 . 203.0.113.2 . 40123"];
    assert!((8..=10).contains(&expires), "expires {expires}");
    assert!(nft_elements("expect6").contains_key("2001:db8::2 . 2001:db8:1::5 . 50000"));

    // Re-adding refreshes (no NLM_F_EXCL).
    nft.install(&[element("198.51.100.2", "203.0.113.2", 40123, 60_000)])
        .unwrap();
    let expires = nft_elements("expect4")["198.51.100.2 . 203.0.113.2 . 40123"];
    assert!((58..=60).contains(&expires), "refreshed expires {expires}");

    // 300 elements in one batch (three NEWSETELEM messages).
    let many: Vec<_> = (1..=300)
        .map(|p| element("198.51.100.9", "203.0.113.9", p, 30_000))
        .collect();
    nft.install(&many).unwrap();
    assert_eq!(nft_elements("expect4").len(), 301);
    nft.remove(&many).unwrap();

    nft.remove(&[v4, v6]).unwrap();
    assert!(nft_elements("expect4").is_empty());
    assert!(nft_elements("expect6").is_empty());
    // Already gone: not an error, alone or mixed with present ones (the batch is redone
    // one by one after ENOENT).
    nft.remove(&[v4]).unwrap();
    let present = element("198.51.100.3", "203.0.113.3", 2121, 30_000);
    nft.install(&[present]).unwrap();
    nft.remove(&[v4, present, v6]).unwrap();
    assert!(nft_elements("expect4").is_empty());
}

#[test]
#[ignore = "runs inside a private netns, started by its outer test"]
fn inner_nft_short_timeout_expires() {
    if !inside("inner_nft_short_timeout_expires") {
        return;
    }
    run_stdin("nft", &["-f", "-"], NFT_RULESET);
    let mut nft = NftBackend::new("ftpalg", "expect4", "expect6");
    let short = element("198.51.100.2", "203.0.113.2", 40123, 1500);
    let short6 = element("2001:db8::2", "2001:db8::3", 40123, 1500);
    nft.install(&[short, short6]).unwrap();
    assert_eq!(nft_elements("expect4").len(), 1);
    assert!(wait_until(Duration::from_secs(4), || nft_elements(
        "expect4"
    )
    .is_empty()));
    assert!(nft_elements("expect6").is_empty());
    nft.remove(&[short, short6]).unwrap();
}

#[test]
#[ignore = "runs inside a private netns, started by its outer test"]
fn inner_nft_check_reports_missing_and_wrong_sets() {
    if !inside("inner_nft_check_reports_missing_and_wrong_sets") {
        return;
    }
    let mut nft = NftBackend::new("ftpalg", "expect4", "expect6");
    let error = nft.check().unwrap_err();
    assert!(
        matches!(error, BackendError::MissingSet { .. }),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "nftables set inet ftpalg expect4 does not exist: load the ruleset with `ftp-alg \
         rules --backend nft | nft -f -` (on kernels without the nft queue statement: \
         `ftp-alg rules --backend nft --queue-via iptables | sh`)"
    );
    let v4 = element("198.51.100.2", "203.0.113.2", 40123, 1000);
    let error = nft.install(&[v4]).unwrap_err();
    assert!(matches!(error, BackendError::MissingSet { .. }), "{error}");
    let error = nft.remove(&[v4]).unwrap_err();
    assert!(matches!(error, BackendError::MissingSet { .. }), "{error}");

    run_stdin(
        "nft",
        &["-f", "-"],
        "table inet ftpalg {
           set expect4 { type ipv4_addr . ipv4_addr . inet_service; }
           set expect6 { type ipv4_addr . ipv4_addr . inet_service; flags timeout; }
         }",
    );
    let error = nft.check().unwrap_err().to_string();
    assert!(error.contains("expect4 lacks `flags timeout`"), "{error}");
    let error = nft.install(&[v4]).unwrap_err().to_string();
    assert!(error.contains("refused to add elements"), "{error}");
    let mut nft = NftBackend::new("ftpalg", "expect6", "expect6");
    let error = nft.check().unwrap_err().to_string();
    assert!(error.contains("expect6 has the wrong key type"), "{error}");
}

#[test]
#[ignore = "runs inside a private netns, started by its outer test"]
fn inner_nft_consume_rule_deletes_on_first_syn() {
    if !inside("inner_nft_consume_rule_deletes_on_first_syn") {
        return;
    }
    two_addresses_on_lo();
    run_stdin("nft", &["-f", "-"], NFT_RULESET);
    run_stdin(
        "nft",
        &["-f", "-"],
        "table inet ftpalg {
           chain out { type filter hook output priority filter; policy accept;
             ip saddr . ip daddr . tcp dport @expect4 counter delete @expect4 { ip saddr . ip daddr . tcp dport } accept
           }
         }",
    );
    let mut nft = NftBackend::new("ftpalg", "expect4", "expect6");
    nft.install(&[element("192.0.2.2", "192.0.2.1", 40999, 30_000)])
        .unwrap();
    assert_eq!(nft_elements("expect4").len(), 1);
    // Nothing listens: the SYN goes out (and matches), the RST comes back.
    let _ = TcpStream::connect_timeout(&"192.0.2.1:40999".parse().unwrap(), Duration::from_secs(1));
    assert!(
        nft_elements("expect4").is_empty(),
        "the first SYN consumed the element"
    );
    let rules = run("nft", &["list", "chain", "inet", "ftpalg", "out"]);
    assert!(rules.contains("counter packets 1 "), "{rules}");
}

// ---- inner tests: ipset ------------------------------------------------------------------

#[test]
#[ignore = "runs inside a private netns, started by its outer test"]
fn inner_ipset_install_list_refresh_remove() {
    if !inside("inner_ipset_install_list_refresh_remove") {
        return;
    }
    create_ipsets();
    let mut ipset = IpsetBackend::new("ftpalg-expect4", "ftpalg-expect6");
    ipset.check().unwrap();
    let v4 = element("198.51.100.2", "203.0.113.2", 40123, 9_500);
    let v6 = element("2001:db8::2", "2001:db8:1::5", 50000, 10_000);
    ipset.install(&[v4, v6]).unwrap();
    let listed = ipset_elements("ftpalg-expect4");
    assert_eq!(
        listed.keys().collect::<Vec<_>>(),
        ["198.51.100.2,tcp:40123,203.0.113.2"]
    );
    assert!((9..=10).contains(&listed["198.51.100.2,tcp:40123,203.0.113.2"]));
    let listed6 = ipset_elements("ftpalg-expect6");
    assert!(
        listed6.contains_key("2001:db8::2,tcp:50000,2001:db8:1::5"),
        "{listed6:?}"
    );

    ipset
        .install(&[element("198.51.100.2", "203.0.113.2", 40123, 60_000)])
        .unwrap();
    let timeout = ipset_elements("ftpalg-expect4")["198.51.100.2,tcp:40123,203.0.113.2"];
    assert!((59..=60).contains(&timeout), "refreshed timeout {timeout}");

    ipset.remove(&[v4, v6]).unwrap();
    assert!(ipset_elements("ftpalg-expect4").is_empty());
    assert!(ipset_elements("ftpalg-expect6").is_empty());
    ipset.remove(&[v4, v6]).unwrap();
}

#[test]
#[ignore = "runs inside a private netns, started by its outer test"]
fn inner_ipset_expiry_check_and_match() {
    if !inside("inner_ipset_expiry_check_and_match") {
        return;
    }
    let mut ipset = IpsetBackend::new("ftpalg-expect4", "ftpalg-expect6");
    let error = ipset.check().unwrap_err();
    assert_eq!(
        error.to_string(),
        "ipset ftpalg-expect4 does not exist: create it: `ipset create ftpalg-expect4 \
         hash:ip,port,ip family inet timeout 30`"
    );
    let short = element("198.51.100.2", "203.0.113.2", 40123, 1500);
    assert!(matches!(
        ipset.install(&[short]),
        Err(BackendError::MissingSet { .. })
    ));

    create_ipsets();
    run("ipset", &["create", "plain", "hash:ip"]);
    let error = IpsetBackend::new("plain", "ftpalg-expect6")
        .check()
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("has type hash:ip, not hash:ip,port,ip"),
        "{error}"
    );

    ipset.install(&[short]).unwrap();
    assert_eq!(ipset_elements("ftpalg-expect4").len(), 1);
    assert!(wait_until(Duration::from_secs(4), || ipset_elements(
        "ftpalg-expect4"
    )
    .is_empty()));

    // The element matches the data SYN with `src,dst,dst`.
    two_addresses_on_lo();
    run(
        "iptables",
        &[
            "-A",
            "OUTPUT",
            "-p",
            "tcp",
            "--syn",
            "-m",
            "set",
            "--match-set",
            "ftpalg-expect4",
            "src,dst,dst",
            "-j",
            "ACCEPT",
        ],
    );
    ipset
        .install(&[element("192.0.2.2", "192.0.2.1", 40999, 30_000)])
        .unwrap();
    let _ = TcpStream::connect_timeout(&"192.0.2.1:40999".parse().unwrap(), Duration::from_secs(1));
    let counters = run("iptables", &["-L", "OUTPUT", "-v", "-x", "-n"]);
    let matched = counters
        .lines()
        .find(|l| l.contains("match-set"))
        .unwrap_or_default();
    assert_eq!(matched.split_whitespace().next(), Some("1"), "{counters}");
}

// ---- inner tests: NFQUEUE ---------------------------------------------------------------

#[test]
#[ignore = "runs inside a private netns, started by its outer test"]
fn inner_nfqueue_accept_and_drop() {
    if !inside("inner_nfqueue_accept_and_drop") {
        return;
    }
    let (sender, receiver) = udp_through_queue_7();
    let mut queue = Queue::open(7, &QueueOptions::default()).unwrap();
    assert_eq!(queue.number(), 7);
    assert_eq!(queue.try_recv().unwrap(), None, "nothing queued yet");

    sender.send_to(b"first datagram", "192.0.2.1:9999").unwrap();
    let packet = next_packet(&mut queue);
    assert_eq!(packet.hw_protocol, 0x0800);
    assert!(packet.payload.ends_with(b"first datagram"));
    assert!(!packet.truncated());
    assert_eq!(packet.payload.len(), 20 + 8 + 14);
    queue.verdict(packet.id, QueueVerdict::Accept).unwrap();
    let mut buf = [0; 64];
    let (n, _) = receiver.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"first datagram");

    sender
        .send_to(b"second datagram", "192.0.2.1:9999")
        .unwrap();
    let packet = next_packet(&mut queue);
    queue.verdict(packet.id, QueueVerdict::Drop).unwrap();
    receiver
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert!(receiver.recv_from(&mut buf).is_err(), "dropped");

    // Several packets waiting at once are all delivered, in order.
    for i in 0..5u8 {
        sender.send_to(&[b'a' + i], "192.0.2.1:9999").unwrap();
    }
    for i in 0..5u8 {
        let packet = next_packet(&mut queue);
        assert_eq!(packet.payload.last(), Some(&(b'a' + i)));
        queue.verdict(packet.id, QueueVerdict::Accept).unwrap();
    }
}

#[test]
#[ignore = "runs inside a private netns, started by its outer test"]
fn inner_nfqueue_overrun_is_reported_and_survived() {
    if !inside("inner_nfqueue_overrun_is_reported_and_survived") {
        return;
    }
    let (sender, receiver) = udp_through_queue_7();
    let options = QueueOptions {
        rcvbuf: 1, // the kernel's minimum: a few packets fill it
        ..QueueOptions::default()
    };
    let mut queue = Queue::open(7, &options).unwrap();
    for _ in 0..200 {
        sender.send_to(&[0x42; 1000], "192.0.2.1:9999").unwrap();
    }
    let mut overruns = 0;
    let mut packets = Vec::new();
    loop {
        match queue.try_recv() {
            Ok(Some(packet)) => packets.push(packet),
            Ok(None) => break,
            Err(error) if nfqueue::is_overrun(&error) => overruns += 1,
            Err(error) => panic!("{error}"),
        }
    }
    assert!(overruns >= 1, "ENOBUFS reported");
    assert!(
        !packets.is_empty() && packets.len() < 200,
        "{} packets",
        packets.len()
    );
    for packet in packets {
        queue.verdict(packet.id, QueueVerdict::Accept).unwrap();
    }
    // Still usable afterwards.
    let mut buf = [0; 1000];
    while receiver.recv_from(&mut buf).is_ok() {
        receiver
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
    }
    sender.send_to(b"after", "192.0.2.1:9999").unwrap();
    let packet = next_packet(&mut queue);
    assert!(packet.payload.ends_with(b"after"));
}

#[test]
#[ignore = "runs inside a private netns, started by its outer test"]
fn inner_nfqueue_second_bind_is_busy() {
    if !inside("inner_nfqueue_second_bind_is_busy") {
        return;
    }
    let first = Queue::open(7, &QueueOptions::default()).unwrap();
    let error = Queue::open(7, &QueueOptions::default()).unwrap_err();
    assert!(matches!(error, OpenError::Busy { queue: 7 }), "{error:?}");
    assert!(
        error
            .to_string()
            .starts_with("NFQUEUE 7 is busy: another process"),
        "{error}"
    );
    drop(first);
    // Unbound on drop: it can be bound again.
    Queue::open(7, &QueueOptions::default()).unwrap();
}

#[test]
#[ignore = "runs inside a private netns, started by its outer test"]
fn inner_nfqueue_truncation_is_reported() {
    if !inside("inner_nfqueue_truncation_is_reported") {
        return;
    }
    let (sender, receiver) = udp_through_queue_7();
    let options = QueueOptions {
        copy_range: 24,
        ..QueueOptions::default()
    };
    let mut queue = Queue::open(7, &options).unwrap();
    sender.send_to(&[0x55; 100], "192.0.2.1:9999").unwrap();
    let packet = next_packet(&mut queue);
    assert_eq!(packet.payload.len(), 24);
    assert_eq!(packet.original_len, Some(128));
    assert!(packet.truncated());
    queue.verdict(packet.id, QueueVerdict::Accept).unwrap();
    let mut buf = [0; 128];
    assert_eq!(
        receiver.recv_from(&mut buf).unwrap().0,
        100,
        "delivered whole"
    );
}

#[test]
#[ignore = "runs inside a private netns, started by its outer test"]
fn inner_nfqueue_replaced_payload_is_delivered() {
    if !inside("inner_nfqueue_replaced_payload_is_delivered") {
        return;
    }
    let (sender, receiver) = udp_through_queue_7();
    let mut queue = Queue::open(7, &QueueOptions::default()).unwrap();
    sender.send_to(b"short", "192.0.2.1:9999").unwrap();
    let packet = next_packet(&mut queue);
    let header_len = usize::from(packet.payload[0] & 0x0f) * 4;
    let source_port =
        u16::from_be_bytes([packet.payload[header_len], packet.payload[header_len + 1]]);
    let mut rewritten = Vec::new();
    etherparse::PacketBuilder::ipv4([192, 0, 2, 1], [192, 0, 2, 1], 64)
        .udp(source_port, 9999)
        .write(&mut rewritten, b"a longer, rewritten datagram")
        .unwrap();
    queue.accept_with_payload(packet.id, &rewritten).unwrap();
    let mut buf = [0; 64];
    let (n, _) = receiver.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"a longer, rewritten datagram");
}

// ---- helpers -----------------------------------------------------------------------------

/// An `NLMSG_NOOP` request: the kernel skips it, and answers only if `flags` has
/// `NLM_F_ACK` (netlink_rcv_skb in net/netlink/af_netlink.c).
fn noop(seq: u32, flags: u16) -> Vec<u8> {
    let mut writer = Writer::new();
    let message = writer.begin(Header {
        kind: NLMSG_NOOP,
        flags: NLM_F_REQUEST | flags,
        seq,
        family: NFPROTO_UNSPEC,
        res_id: 0,
    });
    writer.finish(message).unwrap();
    writer.as_bytes().to_vec()
}

fn acked(seqs: &[u32]) -> Expect<'_> {
    Expect {
        acked: seqs,
        fatal: &[],
    }
}

fn element(src: &str, dst: &str, port: u16, timeout_ms: u64) -> Element {
    Element {
        nat: None,
        key: DataKey {
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            dport: NonZeroU16::new(port).unwrap(),
        },
        timeout: Duration::from_millis(timeout_ms),
    }
}

/// `nft -j list set`: element "a . b . port" → seconds until it expires.
fn nft_elements(set: &str) -> BTreeMap<String, u64> {
    let json = run("nft", &["-j", "list", "set", "inet", "ftpalg", set]);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let set = value["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|v| v.get("set"))
        .unwrap();
    let Some(elements) = set.get("elem").and_then(|e| e.as_array()) else {
        return BTreeMap::new();
    };
    elements
        .iter()
        .map(|e| {
            let fields = e["elem"]["val"]["concat"].as_array().unwrap();
            let key: Vec<String> = fields
                .iter()
                .map(|f| f.to_string().trim_matches('"').to_owned())
                .collect();
            (key.join(" . "), e["elem"]["expires"].as_u64().unwrap_or(0))
        })
        .collect()
}

/// `ipset save`: element → timeout left in seconds.
fn ipset_elements(set: &str) -> BTreeMap<String, u64> {
    run("ipset", &["save", set])
        .lines()
        .filter_map(|line| line.strip_prefix("add "))
        .map(|line| {
            let fields: Vec<_> = line.split_whitespace().collect();
            let timeout = fields
                .iter()
                .position(|f| *f == "timeout")
                .map_or(0, |i| fields[i + 1].parse().unwrap());
            (fields[1].to_owned(), timeout)
        })
        .collect()
}

fn create_ipsets() {
    run(
        "ipset",
        &[
            "create",
            "ftpalg-expect4",
            "hash:ip,port,ip",
            "family",
            "inet",
            "timeout",
            "30",
        ],
    );
    run(
        "ipset",
        &[
            "create",
            "ftpalg-expect6",
            "hash:ip,port,ip",
            "family",
            "inet6",
            "timeout",
            "30",
        ],
    );
}

/// 192.0.2.1 and .2 on lo; connections to .1 leave from .2.
fn two_addresses_on_lo() {
    run("ip", &["addr", "add", "192.0.2.1/32", "dev", "lo"]);
    run("ip", &["addr", "add", "192.0.2.2/32", "dev", "lo"]);
    run(
        "ip",
        &[
            "route",
            "replace",
            "local",
            "192.0.2.1",
            "dev",
            "lo",
            "table",
            "local",
            "src",
            "192.0.2.2",
        ],
    );
}

/// 192.0.2.1 on lo, UDP to port 9999 queued to 7; a sender and a receiver socket.
fn udp_through_queue_7() -> (UdpSocket, UdpSocket) {
    run("ip", &["addr", "add", "192.0.2.1/32", "dev", "lo"]);
    run(
        "iptables",
        &[
            "-A",
            "OUTPUT",
            "-p",
            "udp",
            "--dport",
            "9999",
            "-j",
            "NFQUEUE",
            "--queue-num",
            "7",
        ],
    );
    let receiver = UdpSocket::bind("192.0.2.1:9999").unwrap();
    receiver
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let sender = UdpSocket::bind(SocketAddr::from(([192, 0, 2, 1], 0))).unwrap();
    (sender, receiver)
}

/// Wait (poll) for the next packet, at most 2 s.
fn next_packet(queue: &mut Queue) -> Packet {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        if let Some(packet) = queue.try_recv().unwrap() {
            return packet;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no packet queued within 2 s");
        sys::wait_readable(&[queue.as_fd()], Some(left)).unwrap();
    }
}

fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        thread::sleep(Duration::from_millis(100));
    }
    done()
}
