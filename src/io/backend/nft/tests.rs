use std::num::NonZeroU16;
use std::time::Duration;

use super::*;
use crate::expect::DataKey;
use crate::expect::NatMapping;
use crate::io::backend::nft::wire::SetShape;
use crate::io::backend::nft::wire::concat;
use crate::io::netlink::wire_oracle::nest;
use crate::io::netlink::wire_oracle::nla;

fn key(src: &str, dst: &str, port: u16) -> DataKey {
    DataKey {
        src: src.parse().unwrap(),
        dst: dst.parse().unwrap(),
        dport: NonZeroU16::new(port).unwrap(),
    }
}

/// The set key of `key`, as the set holds it.
fn key_bytes(key: &DataKey) -> Vec<u8> {
    Entry::set(&Element {
        key: *key,
        timeout: Duration::ZERO,
        nat: None,
    })
    .key
}

#[test]
fn concatenated_keys_pad_every_field_to_four_bytes() {
    let v4 = key_bytes(&key("198.51.100.2", "203.0.113.2", 40123));
    assert_eq!(v4, [198, 51, 100, 2, 203, 0, 113, 2, 0x9c, 0xbb, 0, 0]);
    let v6 = key_bytes(&key("2001:db8::2", "2001:db8:1::5", 2121));
    assert_eq!(v6.len(), 36);
    assert_eq!(&v6[32..], [0x08, 0x49, 0, 0]);
    assert_eq!(v6[..2], [0x20, 0x01]);
}

#[test]
fn newsetelem_is_byte_exact() {
    let element = Element {
        nat: None,
        key: key("198.51.100.2", "203.0.113.2", 40123),
        timeout: Duration::from_millis(7500),
    };
    let mut w = Writer::new();
    elements_message(
        &mut w,
        NFT_MSG_NEWSETELEM,
        5,
        ("ftpalg", "expect4"),
        &[Entry::set(&element)],
    )
    .unwrap();
    let attrs = [
        nla(1, b"ftpalg\0"),
        nla(2, b"expect4\0"),
        nest(
            3,
            &[nest(
                1,
                &[
                    nest(1, &[nla(1, &key_bytes(&element.key))]),
                    nla(4, &7500u64.to_be_bytes()),
                ],
            )],
        ),
    ]
    .concat();
    let mut expected = u32::try_from(20 + attrs.len())
        .unwrap()
        .to_ne_bytes()
        .to_vec();
    expected.extend_from_slice(&0x0a0cu16.to_ne_bytes());
    expected.extend_from_slice(&0x0401u16.to_ne_bytes()); // REQUEST | CREATE: no ACK, no EXCL
    expected.extend_from_slice(&5u32.to_ne_bytes());
    expected.extend_from_slice(&0u32.to_ne_bytes());
    expected.extend_from_slice(&[1, 0, 0, 0]); // NFPROTO_INET
    expected.extend_from_slice(&attrs);
    assert_eq!(w.as_bytes(), expected);
}

#[test]
fn delsetelem_has_no_timeout_and_no_create() {
    let element = Element {
        nat: None,
        key: key("2001:db8::2", "2001:db8::3", 50000),
        timeout: Duration::from_secs(1),
    };
    let mut w = Writer::new();
    elements_message(
        &mut w,
        NFT_MSG_DELSETELEM,
        6,
        ("t", "s"),
        &[Entry::set(&element)],
    )
    .unwrap();
    let bytes = w.as_bytes();
    assert_eq!(u16::from_ne_bytes([bytes[4], bytes[5]]), 0x0a0e);
    assert_eq!(
        u16::from_ne_bytes([bytes[6], bytes[7]]),
        0x0001,
        "REQUEST only: no ACK, no CREATE"
    );
    // header 20 + table 8 + set 8 + list 4 + elem 4 + key 4 + value 4+36
    assert_eq!(bytes.len(), 20 + 8 + 8 + 4 + 4 + 4 + 40);
}

#[test]
fn batch_markers_name_the_subsystem() {
    let mut w = Writer::new();
    batch_marker(&mut w, NFNL_MSG_BATCH_BEGIN, 1);
    let mut expected = 20u32.to_ne_bytes().to_vec();
    expected.extend_from_slice(&16u16.to_ne_bytes());
    expected.extend_from_slice(&1u16.to_ne_bytes());
    expected.extend_from_slice(&1u32.to_ne_bytes());
    expected.extend_from_slice(&0u32.to_ne_bytes());
    expected.extend_from_slice(&[0, 0, 0, 10]);
    assert_eq!(w.as_bytes(), expected);
}

#[test]
fn set_shape_is_read_and_judged() {
    let payload = [
        vec![1, 0, 0, 0],
        nla(1, b"ftpalg\0"),
        nla(3, &0x94u32.to_be_bytes()),
        nla(4, &29133u32.to_be_bytes()),
        nla(5, &12u32.to_be_bytes()),
    ]
    .concat();
    let shape = parse_set(&payload).unwrap();
    assert_eq!(
        shape,
        SetShape {
            flags: 0x94,
            key_type: Some(29133),
            key_len: Some(12),
            data_type: None,
            data_len: None,
        }
    );
    let backend = NftBackend::new("ftpalg", "expect4", "expect6");
    assert!(backend.names.judge_shape(Target::Set4, shape).is_ok());
    let wrong = backend
        .names
        .judge_shape(Target::Set6, shape)
        .unwrap_err()
        .to_string();
    assert_eq!(
        wrong,
        "nftables set inet ftpalg expect6 has the wrong key type (want `ipv6_addr . \
         ipv6_addr . inet_service`): load the ruleset with `ftp-alg rules --backend nft | \
         nft -f -` (on kernels without the nft queue statement: `ftp-alg rules --backend nft \
         --queue-via iptables | sh`)"
    );
    let no_timeout = SetShape { flags: 0, ..shape };
    let message = backend
        .names
        .judge_shape(Target::Set4, no_timeout)
        .unwrap_err()
        .to_string();
    assert!(message.contains("lacks `flags timeout`"), "{message}");
    assert!(parse_set(&[1, 0]).is_err());
    assert!(parse_set(&payload[..payload.len() - 2]).is_err());
}

#[test]
fn refusals_say_what_to_do() {
    let backend = NftBackend::new("ftpalg", "expect4", "expect6");
    let missing = backend
        .names
        .refused(Target::Set4, "add", KernelError::new(libc::ENOENT));
    assert_eq!(
        missing.to_string(),
        "nftables set inet ftpalg expect4 does not exist: load the ruleset with `ftp-alg \
         rules --backend nft | nft -f -` (on kernels without the nft queue statement: \
         `ftp-alg rules --backend nft --queue-via iptables | sh`)"
    );
    let full = backend
        .names
        .refused(Target::Set6, "add", KernelError::new(libc::ENFILE));
    assert!(full.to_string().contains("expect6 is full"));
    assert_eq!(
        backend.describe(),
        "nft table inet ftpalg, sets expect4/expect6"
    );
}

#[test]
fn mixed_families_are_refused_before_sending() {
    let mut backend = NftBackend::new("ftpalg", "expect4", "expect6");
    let element = Element {
        nat: None,
        key: key("198.51.100.2", "2001:db8::1", 21),
        timeout: Duration::from_secs(1),
    };
    let error = backend.install(&[element]).unwrap_err();
    assert!(matches!(error, BackendError::MixedFamily(_)));
    assert!(!backend.link.is_open(), "nothing was opened");
    assert!(backend.install(&[]).is_ok());
}

#[test]
fn the_answer_timeout_reaches_the_socket() {
    let mut nft = NftBackend::new("ftpalg", "expect4", "expect6");
    let Ok(socket) = nft.link.socket() else {
        eprintln!("skipped: cannot open a netfilter netlink socket here");
        return;
    };
    assert_eq!(socket.answer_timeout(), DEFAULT_ANSWER_TIMEOUT);
    let mut nft = nft.with_answer_timeout(Duration::from_millis(30));
    let socket = nft.link.socket().unwrap();
    assert_eq!(socket.answer_timeout(), Duration::from_millis(30));
}

/// An element `src -> dst:dport` announced to the peer as `public:port`.
fn natted(src: &str, dst: &str, dport: u16, public: &str, port: u16) -> Element {
    Element {
        key: key(src, dst, dport),
        timeout: Duration::from_millis(7500),
        nat: Some(NatMapping {
            public: public.parse().unwrap(),
            port: NonZeroU16::new(port).unwrap(),
        }),
    }
}

#[test]
fn map_entries_key_the_public_face_and_carry_the_private_endpoint() {
    let element = natted("198.51.100.2", "192.0.2.1", 2121, "203.0.113.1", 40000);
    let entry = Entry::map(&element, element.nat.unwrap());
    assert_eq!(
        entry.key,
        [198, 51, 100, 2, 203, 0, 113, 1, 0x9c, 0x40, 0, 0]
    );
    assert_eq!(entry.data, Some(vec![192, 0, 2, 1, 0x08, 0x49, 0, 0]));
    assert_eq!(entry.timeout, element.timeout);
    assert_eq!(Entry::set(&element).data, None);

    let v6 = natted("2001:db8::2", "2001:db8:1::5", 2121, "2001:db8:2::1", 40000);
    let entry = Entry::map(&v6, v6.nat.unwrap());
    assert_eq!(entry.key.len(), 36);
    assert_eq!(&entry.key[16..18], [0x20, 0x01]);
    assert_eq!(&entry.key[32..], [0x9c, 0x40, 0, 0]);
    let data = entry.data.unwrap();
    assert_eq!(data.len(), 20);
    assert_eq!(&data[16..], [0x08, 0x49, 0, 0]);
    assert_eq!(
        concat(&["192.0.2.1".parse().unwrap()], NonZeroU16::MIN),
        [192, 0, 2, 1, 0, 1, 0, 0]
    );
}

#[test]
fn newsetelem_of_a_map_is_byte_exact() {
    let element = natted("198.51.100.2", "192.0.2.1", 2121, "203.0.113.1", 40000);
    let entry = Entry::map(&element, element.nat.unwrap());
    let mut w = Writer::new();
    elements_message(
        &mut w,
        NFT_MSG_NEWSETELEM,
        8,
        ("ftpalg", "dnat4"),
        std::slice::from_ref(&entry),
    )
    .unwrap();
    let attrs = [
        nla(1, b"ftpalg\0"),
        nla(2, b"dnat4\0"),
        nest(
            3,
            &[nest(
                1,
                &[
                    nest(
                        1,
                        &[nla(1, &[198, 51, 100, 2, 203, 0, 113, 1, 0x9c, 0x40, 0, 0])],
                    ),
                    nest(2, &[nla(1, &[192, 0, 2, 1, 0x08, 0x49, 0, 0])]),
                    nla(4, &7500u64.to_be_bytes()),
                ],
            )],
        ),
    ]
    .concat();
    let mut expected = u32::try_from(20 + attrs.len())
        .unwrap()
        .to_ne_bytes()
        .to_vec();
    expected.extend_from_slice(&0x0a0cu16.to_ne_bytes());
    expected.extend_from_slice(&0x0401u16.to_ne_bytes());
    expected.extend_from_slice(&8u32.to_ne_bytes());
    expected.extend_from_slice(&0u32.to_ne_bytes());
    expected.extend_from_slice(&[1, 0, 0, 0]);
    expected.extend_from_slice(&attrs);
    assert_eq!(w.as_bytes(), expected);

    // Removal names the key only: no data, no timeout.
    let mut w = Writer::new();
    elements_message(
        &mut w,
        NFT_MSG_DESTROYSETELEM,
        9,
        ("ftpalg", "dnat4"),
        &[entry],
    )
    .unwrap();
    let bytes = w.as_bytes();
    assert_eq!(u16::from_ne_bytes([bytes[4], bytes[5]]), 0x0a1e);
    // header 20 + table 12 + map 12 + list 4 + elem 4 + key 4 + value 4+12
    assert_eq!(bytes.len(), 20 + 12 + 12 + 4 + 4 + 4 + 16);
}

#[test]
fn nat_mappings_go_to_the_maps_only_when_enabled() {
    let plain = natted("198.51.100.2", "192.0.2.1", 2121, "203.0.113.1", 40000);
    let mut backend = NftBackend::new("ftpalg", "expect4", "expect6");
    let error = backend.install(&[plain]).unwrap_err();
    assert!(
        matches!(error, BackendError::NatUnsupported { .. }),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "nft table inet ftpalg, sets expect4/expect6 cannot hold the NAT mapping of \
         expectation tcp 198.51.100.2 -> 192.0.2.1:2121: nothing was sent; its NAT maps are not \
         enabled (a bug in the caller: NAT needs `NftBackend::with_nat_maps`)"
    );
    assert!(backend.remove(&[plain]).is_err());
    assert!(!backend.link.is_open(), "nothing was opened");

    let backend = backend.with_nat_maps("dnat4", "dnat6");
    assert_eq!(
        backend.describe(),
        "nft table inet ftpalg, sets expect4/expect6, NAT maps dnat4/dnat6"
    );
    let v6 = natted("2001:db8::2", "2001:db8:1::5", 2121, "2001:db8:2::1", 40000);
    let without = Element { nat: None, ..v6 };
    let groups = backend.group(&[plain, v6, without]).unwrap();
    let counts: Vec<usize> = groups.iter().map(Vec::len).collect();
    assert_eq!(counts, [1, 2, 1, 1], "set4, set6, map4, map6");
    assert_eq!(
        groups[Target::Map6.index()][0].data.as_ref().unwrap().len(),
        20
    );

    let mixed = natted("198.51.100.2", "192.0.2.1", 2121, "2001:db8:2::1", 40000);
    let error = backend.group(&[mixed]).unwrap_err();
    assert!(matches!(error, BackendError::MixedFamily(_)), "{error:?}");
    assert!(
        error
            .to_string()
            .contains("(or its NAT mapping) mixes IPv4 and IPv6")
    );
}

#[test]
fn map_shapes_are_judged() {
    let backend = NftBackend::new("ftpalg", "expect4", "expect6").with_nat_maps("dnat4", "dnat6");
    let targets: Vec<Target> = backend.names.targets().collect();
    assert_eq!(targets, Target::ALL);
    let map4 = SetShape {
        flags: 0x10 | 0x08 | 0x04,
        key_type: Some(29133),
        key_len: Some(12),
        data_type: Some((7 << 6) | 13),
        data_len: Some(8),
    };
    assert!(backend.names.judge_shape(Target::Map4, map4).is_ok());
    let judge = |target, shape| {
        backend
            .names
            .judge_shape(target, shape)
            .unwrap_err()
            .to_string()
    };
    let wrong_data = judge(
        Target::Map4,
        SetShape {
            data_len: Some(4),
            ..map4
        },
    );
    assert!(
        wrong_data.starts_with(
            "nftables map inet ftpalg dnat4 has the wrong data type (want `ipv4_addr . \
             ipv4_addr . inet_service : ipv4_addr . inet_service`): add it to table inet \
             ftpalg: `map dnat4 { type ipv4_addr . ipv4_addr . inet_service : ipv4_addr . \
             inet_service; flags timeout; }`, with a prerouting nat rule `dnat ip to ip saddr \
             . ip daddr . tcp dport map @dnat4`"
        ),
        "{wrong_data}"
    );
    let a_set = SetShape {
        flags: 0x10,
        data_type: None,
        data_len: None,
        ..map4
    };
    assert!(judge(Target::Map4, a_set).contains("dnat4 is a set, not a map"));
    assert!(judge(Target::Set4, map4).contains("expect4 is a map, not a set"));
    assert!(judge(Target::Map6, map4).contains("dnat6 has the wrong key type"));
    let no_timeout = SetShape {
        flags: 0x08,
        ..map4
    };
    assert!(judge(Target::Map4, no_timeout).contains("lacks `flags timeout`"));
}

#[test]
fn map_refusals_name_the_map() {
    let backend = NftBackend::new("t", "s4", "s6").with_nat_maps("m4", "m6");
    let missing = backend
        .names
        .refused(Target::Map6, "add", KernelError::new(libc::ENOENT));
    assert!(matches!(missing, BackendError::MissingSet { .. }));
    assert!(
        missing
            .to_string()
            .starts_with("nftables map inet t m6 does not exist: add it to table inet t: `map m6 { type ipv6_addr"),
        "{missing}"
    );
    let clash = backend
        .names
        .refused(Target::Map4, "add", KernelError::new(libc::EEXIST));
    assert!(
        clash
            .to_string()
            .ends_with("the map already sends that public endpoint to another private one"),
        "{clash}"
    );
    let invalid = backend
        .names
        .refused(Target::Map4, "add", KernelError::new(libc::EINVAL));
    assert!(
        invalid
            .to_string()
            .contains("does the map have `flags timeout` and the type"),
        "{invalid}"
    );
}
