use std::num::NonZeroU16;
use std::time::Duration;

use super::*;
use crate::expect::DataKey;
use crate::expect::NatMapping;
use crate::io::netlink::wire_oracle::nest;
use crate::io::netlink::wire_oracle::nla;

fn element(src: &str, dst: &str, port: u16, timeout: Duration) -> Element {
    Element {
        nat: None,
        key: DataKey {
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            dport: NonZeroU16::new(port).unwrap(),
        },
        timeout,
    }
}

#[test]
fn add_is_byte_exact() {
    let e = element(
        "198.51.100.2",
        "203.0.113.2",
        40123,
        Duration::from_millis(1500),
    );
    let mut w = Writer::new();
    element_message(&mut w, IPSET_CMD_ADD, 3, "ftpalg-expect4", &e).unwrap();
    let attrs = [
        nla(1, &[6]),
        nla(2, b"ftpalg-expect4\0"),
        nest(
            7,
            &[
                nest(1, &[nla(0x4001, &[198, 51, 100, 2])]),
                nla(0x4004, &40123u16.to_be_bytes()),
                nla(7, &[6]),
                nest(20, &[nla(0x4001, &[203, 0, 113, 2])]),
                nla(0x4006, &2u32.to_be_bytes()),
            ],
        ),
    ]
    .concat();
    let mut expected = u32::try_from(20 + attrs.len())
        .unwrap()
        .to_ne_bytes()
        .to_vec();
    expected.extend_from_slice(&0x0609u16.to_ne_bytes());
    expected.extend_from_slice(&0x0005u16.to_ne_bytes()); // REQUEST | ACK, no EXCL
    expected.extend_from_slice(&3u32.to_ne_bytes());
    expected.extend_from_slice(&0u32.to_ne_bytes());
    expected.extend_from_slice(&[2, 0, 0, 0]);
    expected.extend_from_slice(&attrs);
    assert_eq!(w.as_bytes(), expected);
}

#[test]
fn delete_has_no_timeout_and_ipv6_uses_ipaddr_ipv6() {
    let e = element("2001:db8::2", "2001:db8::3", 2121, Duration::from_secs(9));
    let mut w = Writer::new();
    element_message(&mut w, IPSET_CMD_DEL, 4, "s6", &e).unwrap();
    let bytes = w.as_bytes();
    assert_eq!(u16::from_ne_bytes([bytes[4], bytes[5]]), 0x060a);
    assert_eq!(bytes[16], 10, "NFPROTO_IPV6");
    let data = [
        nest(
            1,
            &[nla(
                0x4002,
                &e.key
                    .src
                    .to_string()
                    .parse::<std::net::Ipv6Addr>()
                    .unwrap()
                    .octets(),
            )],
        ),
        nla(0x4004, &2121u16.to_be_bytes()),
        nla(7, &[6]),
        nest(
            20,
            &[nla(
                0x4002,
                &"2001:db8::3"
                    .parse::<std::net::Ipv6Addr>()
                    .unwrap()
                    .octets(),
            )],
        ),
    ];
    assert!(bytes.ends_with(&nest(7, &data)));
}

#[test]
fn timeouts_round_up_to_whole_seconds() {
    let at = |d| seconds(&element("192.0.2.1", "192.0.2.2", 1, d));
    assert_eq!(at(Duration::ZERO), 1);
    assert_eq!(at(Duration::from_millis(1)), 1);
    assert_eq!(at(Duration::from_millis(1500)), 2);
    assert_eq!(at(Duration::from_secs(30)), 30);
    assert_eq!(at(Duration::from_secs(u64::MAX)), 2_147_483);
}

#[test]
fn header_replies_are_judged() {
    let sets = ["ftpalg-expect4".to_owned(), "ftpalg-expect6".to_owned()];
    let payload = [
        vec![2, 0, 0, 0],
        nla(1, &[7]),
        nla(2, b"ftpalg-expect4\0"),
        nla(3, b"hash:ip,port,ip\0"),
        nla(4, &[1]),
        nla(5, &[2]),
    ]
    .concat();
    let (type_name, family) = parse_header(&payload).unwrap();
    assert_eq!((type_name.as_str(), family), ("hash:ip,port,ip", 2));
    assert!(judge_header(&sets, 0, &type_name, family).is_ok());
    let wrong = judge_header(&sets, 1, &type_name, family).unwrap_err();
    assert_eq!(
        wrong.to_string(),
        "ipset ftpalg-expect6 has the wrong family (want inet6): recreate it: `ipset create \
         ftpalg-expect6 hash:ip,port,ip family inet6 timeout 30`"
    );
    let other = judge_header(&sets, 0, "hash:ip", 2)
        .unwrap_err()
        .to_string();
    assert!(
        other.contains("has type hash:ip, not hash:ip,port,ip"),
        "{other}"
    );
    assert!(parse_header(&payload[..payload.len() - 4]).is_err());
}

#[test]
fn refusals_say_what_to_do() {
    let sets = ["a4".to_owned(), "a6".to_owned()];
    let missing = refused(&sets, 0, IPSET_CMD_ADD, KernelError::new(libc::ENOENT));
    assert_eq!(
        missing.to_string(),
        "ipset a4 does not exist: create it: `ipset create a4 hash:ip,port,ip family inet \
         timeout 30`"
    );
    let no_timeout = refused(&sets, 1, IPSET_CMD_ADD, KernelError::new(IPSET_ERR_TIMEOUT));
    assert!(no_timeout.to_string().contains("without `timeout`"));
    let full = refused(
        &sets,
        1,
        IPSET_CMD_ADD,
        KernelError::new(IPSET_ERR_HASH_FULL),
    );
    assert!(full.to_string().starts_with("ipset a6 is full"));
    let odd = refused(&sets, 1, IPSET_CMD_DEL, KernelError::new(4111));
    assert_eq!(
        odd.to_string(),
        "the kernel refused to remove elements of ipset a6: ipset error 4111 (see \
         ipset/ip_set.h)"
    );
}

#[test]
fn the_answer_timeout_reaches_the_socket() {
    let mut ipset = IpsetBackend::new("a", "b").with_answer_timeout(Duration::from_millis(30));
    let Ok(socket) = ipset.link.socket() else {
        eprintln!("skipped: cannot open a netfilter netlink socket here");
        return;
    };
    assert_eq!(socket.answer_timeout(), Duration::from_millis(30));
}

#[test]
fn nat_mappings_are_refused_before_anything_is_sent() {
    let mut ipset = IpsetBackend::new("ftpalg-expect4", "ftpalg-expect6");
    let plain = element("198.51.100.2", "192.0.2.1", 2121, Duration::from_secs(5));
    let natted = Element {
        nat: Some(NatMapping {
            public: "203.0.113.1".parse().unwrap(),
            port: NonZeroU16::new(40000).unwrap(),
        }),
        ..plain
    };
    for result in [ipset.install(&[plain, natted]), ipset.remove(&[natted])] {
        let error = result.unwrap_err();
        assert!(
            matches!(error, BackendError::NatUnsupported { .. }),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            "ipset sets ftpalg-expect4/ftpalg-expect6 (hash:ip,port,ip) cannot hold the NAT \
             mapping of expectation tcp 198.51.100.2 -> 192.0.2.1:2121: nothing was sent; an \
             ipset cannot hold a DNAT map: use the nftables backend for NAT"
        );
    }
    assert!(!ipset.link.is_open(), "nothing was opened");
}
