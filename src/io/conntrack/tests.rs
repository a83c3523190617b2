use proptest::prelude::*;

use super::*;
use crate::io::netlink::wire_oracle::nest;
use crate::io::netlink::wire_oracle::nla;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn socket(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

/// The netlink header and nfgenmsg of a GET with `seq` and `family`, then `attributes`.
fn get_bytes(seq: u32, family: u8, attributes: &[u8]) -> Vec<u8> {
    let mut bytes = u32::try_from(20 + attributes.len())
        .unwrap()
        .to_ne_bytes()
        .to_vec();
    bytes.extend_from_slice(&0x0101u16.to_ne_bytes()); // CTNETLINK << 8 | CT_GET
    bytes.extend_from_slice(&0x0005u16.to_ne_bytes()); // REQUEST | ACK
    bytes.extend_from_slice(&seq.to_ne_bytes());
    bytes.extend_from_slice(&0u32.to_ne_bytes());
    bytes.extend_from_slice(&[family, 0, 0, 0]);
    bytes.extend_from_slice(attributes);
    bytes
}

/// A tuple attribute of kind `kind`: addresses (as attribute kinds and bytes) and TCP ports.
fn tuple(kind: u16, addresses: &[(u16, &[u8])], ports: (u16, u16)) -> Vec<u8> {
    let addresses: Vec<Vec<u8>> = addresses.iter().map(|(k, a)| nla(*k, a)).collect();
    nest(
        kind,
        &[
            nest(1, &addresses),
            nest(
                2,
                &[
                    nla(1, &[6]),
                    nla(2, &ports.0.to_be_bytes()),
                    nla(3, &ports.1.to_be_bytes()),
                ],
            ),
        ],
    )
}

/// A conntrack entry as the kernel sends it: nfgenmsg, both tuples, and some of the other
/// attributes the kernel adds (status, timeout, TCP protocol info, id).
fn entry(original: Vec<u8>, reply: Vec<u8>) -> Vec<u8> {
    [
        vec![2, 0, 0, 0],
        original,
        reply,
        nla(3, &0x18eu32.to_be_bytes()),
        nla(7, &431_999u32.to_be_bytes()),
        nest(4, &[nest(1, &[nla(1, &[3]), nla(2, &[7]), nla(3, &[7])])]),
        nla(12, &0xdead_beefu32.to_be_bytes()),
    ]
    .concat()
}

/// A masqueraded client's entry: 192.0.2.2:40000 -> 198.51.100.2:21, seen by the server
/// as 203.0.113.1:40000.
fn masqueraded() -> Vec<u8> {
    entry(
        tuple(
            1,
            &[(1, &[192, 0, 2, 2]), (2, &[198, 51, 100, 2])],
            (40000, 21),
        ),
        tuple(
            2,
            &[(1, &[198, 51, 100, 2]), (2, &[203, 0, 113, 1])],
            (21, 40000),
        ),
    )
}

#[test]
fn get_by_original_tuple_is_byte_exact() {
    let mut w = Writer::new();
    let (client, server) = (socket("192.0.2.2:40000"), socket("198.51.100.2:21"));
    get_message(&mut w, 9, CTA_TUPLE_ORIG, client, server).unwrap();
    let attributes = tuple(
        1,
        &[(1, &[192, 0, 2, 2]), (2, &[198, 51, 100, 2])],
        (40000, 21),
    );
    assert_eq!(w.as_bytes(), get_bytes(9, 2, &attributes));
}

#[test]
fn get_by_reply_tuple_is_byte_exact_for_ipv6() {
    let mut w = Writer::new();
    let (server, client) = (socket("[2001:db8::5]:21"), socket("[2001:db8:1::2]:50000"));
    get_message(&mut w, 10, CTA_TUPLE_REPLY, server, client).unwrap();
    let (src, dst) = (
        "2001:db8::5".parse::<Ipv6Addr>().unwrap().octets(),
        "2001:db8:1::2".parse::<Ipv6Addr>().unwrap().octets(),
    );
    let attributes = tuple(2, &[(3, &src), (4, &dst)], (21, 50000));
    let expected = get_bytes(10, 10, &attributes);
    assert_eq!(w.as_bytes(), expected);
    // header 20 + tuple 4 + ip 4 + 2 * (4 + 16) + proto 4 + num 8 + ports 2 * 8
    assert_eq!(expected.len(), 20 + 4 + 4 + 40 + 4 + 8 + 16);
}

#[test]
fn an_entry_is_read_past_the_attributes_it_does_not_need() {
    let tuples = parse_entry(&masqueraded()).unwrap();
    assert_eq!(
        tuples,
        CtTuples {
            original: (ip("192.0.2.2"), ip("198.51.100.2")),
            reply: (ip("198.51.100.2"), ip("203.0.113.1")),
        }
    );
    let answer = Reply {
        kind: 0x0100,
        seq: 1,
        payload: masqueraded(),
    };
    assert_eq!(parse_answer(&answer), Ok(tuples));
    let wrong = Reply {
        kind: 0x0102,
        ..answer
    };
    assert_eq!(
        parse_answer(&wrong),
        Err(Malformed("ctnetlink answer type"))
    );
}

#[test]
fn an_ipv6_entry_is_read() {
    let (a, b) = (
        "2001:db8::2".parse::<Ipv6Addr>().unwrap().octets(),
        "2001:db8:1::1".parse::<Ipv6Addr>().unwrap().octets(),
    );
    let payload = entry(
        tuple(1, &[(3, &a), (4, &b)], (1, 2)),
        tuple(2, &[(3, &b), (4, &a)], (2, 1)),
    );
    let tuples = parse_entry(&payload).unwrap();
    assert_eq!(tuples.original, (ip("2001:db8::2"), ip("2001:db8:1::1")));
    assert_eq!(tuples.reply, (ip("2001:db8:1::1"), ip("2001:db8::2")));
}

#[test]
fn incomplete_entries_are_malformed() {
    let original = tuple(1, &[(1, &[192, 0, 2, 2]), (2, &[198, 51, 100, 2])], (1, 2));
    let no_reply = [vec![2, 0, 0, 0], original.clone()].concat();
    assert_eq!(
        parse_entry(&no_reply),
        Err(Malformed("CTA_TUPLE_REPLY (missing)"))
    );
    let half = tuple(2, &[(1, &[198, 51, 100, 2])], (2, 1));
    assert_eq!(
        parse_entry(&entry(original.clone(), half)),
        Err(Malformed("CTA_TUPLE_IP addresses"))
    );
    let mixed = tuple(2, &[(1, &[198, 51, 100, 2]), (4, &[0; 16])], (2, 1));
    assert_eq!(
        parse_entry(&entry(original.clone(), mixed)),
        Err(Malformed("CTA_TUPLE_IP addresses"))
    );
    let short = tuple(2, &[(1, &[198, 51, 100]), (2, &[192, 0, 2, 2])], (2, 1));
    assert_eq!(
        parse_entry(&entry(original, short)),
        Err(Malformed("CTA_IP_V4_SRC"))
    );
    assert_eq!(parse_entry(&[2, 0]), Err(Malformed("nfgenmsg")));
}

#[test]
fn every_truncation_of_an_entry_reads_or_fails_without_panic() {
    let whole = masqueraded();
    // nfgenmsg and the two tuples (each 4 + 20 + 28 bytes) come first; the other
    // attributes are never looked at.
    let tuples_end = 4 + 2 * 52;
    for end in 0..whole.len() {
        let parsed = parse_entry(&whole[..end]);
        assert_eq!(
            parsed.is_ok(),
            end >= tuples_end,
            "cut at {end}: {parsed:?}"
        );
    }
}

#[test]
fn tuples_are_oriented_from_the_client() {
    let forward = parse_entry(&masqueraded()).unwrap();
    assert_eq!(forward.oriented(ip("192.0.2.2")), forward);
    // Picked up from the server's side: the entry's original tuple starts at the server.
    let picked_up = CtTuples {
        original: (ip("198.51.100.2"), ip("192.0.2.2")),
        reply: (ip("192.0.2.2"), ip("198.51.100.2")),
    };
    let oriented = picked_up.oriented(ip("192.0.2.2"));
    assert_eq!(oriented.original, (ip("192.0.2.2"), ip("198.51.100.2")));
    let control = Control {
        client: socket("192.0.2.2:40000"),
        server: socket("198.51.100.2:21"),
    };
    let translation = Translation::from_tuples(&control, oriented.original, oriented.reply);
    assert_eq!(translation, Translation::NONE);
}

#[test]
fn mixed_families_are_refused_before_anything_is_opened() {
    let mut conntrack = Conntrack::unopened();
    let error = conntrack
        .lookup(socket("192.0.2.2:1"), socket("[2001:db8::1]:21"))
        .unwrap_err();
    assert!(matches!(error, ConntrackError::MixedFamily { .. }));
    assert_eq!(
        error.to_string(),
        "conntrack lookup of 192.0.2.2:1 -> [2001:db8::1]:21 mixes IPv4 and IPv6: nothing was \
         asked (a bug in the caller)"
    );
    assert!(!conntrack.link.is_open());
}

#[test]
fn errors_say_what_to_do() {
    let timeout = ConntrackError::Netlink(netlink::Error::Timeout(Duration::from_millis(250)));
    assert!(timeout.is_timeout());
    assert_eq!(
        timeout.to_string(),
        "conntrack lookup: the kernel did not answer a netlink request within 250ms"
    );
    let eperm = ConntrackError::refused(KernelError::new(libc::EPERM));
    assert!(matches!(eperm, ConntrackError::PermissionDenied));
    assert!(!eperm.is_timeout());
    let einval = ConntrackError::refused(KernelError::new(libc::EINVAL));
    assert!(
        einval
            .to_string()
            .ends_with("is ctnetlink (nf_conntrack_netlink) available?"),
        "{einval}"
    );
}

#[test]
fn the_answer_timeout_reaches_the_socket() {
    let Ok(conntrack) = Conntrack::open() else {
        eprintln!("skipped: cannot open a netfilter netlink socket here");
        return;
    };
    let mut conntrack = conntrack.with_answer_timeout(Duration::from_millis(30));
    let socket = conntrack.link.socket().unwrap();
    assert_eq!(socket.answer_timeout(), Duration::from_millis(30));
}

proptest! {
    /// Whatever the kernel sends, reading it ends in a value or an error.
    #[test]
    fn any_bytes_parse_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse_entry(&bytes);
    }

    /// A valid entry with one byte changed anywhere still parses or fails cleanly.
    #[test]
    fn a_flipped_byte_parses_without_panic(at in 0usize..200, value in any::<u8>()) {
        let mut bytes = masqueraded();
        let at = at % bytes.len();
        bytes[at] = value;
        let _ = parse_entry(&bytes);
    }
}
