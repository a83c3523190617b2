use std::num::NonZeroU16;
use std::time::Duration;

use super::*;
use crate::io::netlink::wire_oracle::nest;
use crate::io::netlink::wire_oracle::nla;

fn key(src: &str, dst: &str, port: u16) -> DataKey {
    DataKey {
        src: src.parse().unwrap(),
        dst: dst.parse().unwrap(),
        dport: NonZeroU16::new(port).unwrap(),
    }
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
        &[element],
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
    expected.extend_from_slice(&0x0405u16.to_ne_bytes()); // REQUEST | ACK | CREATE, no EXCL
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
    elements_message(&mut w, NFT_MSG_DELSETELEM, 6, ("t", "s"), &[element]).unwrap();
    let bytes = w.as_bytes();
    assert_eq!(u16::from_ne_bytes([bytes[4], bytes[5]]), 0x0a0e);
    assert_eq!(u16::from_ne_bytes([bytes[6], bytes[7]]), 0x0005);
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
        nla(4, &EXPECTED_KEYS[0].0.to_be_bytes()),
        nla(5, &12u32.to_be_bytes()),
    ]
    .concat();
    let shape = parse_set(&payload).unwrap();
    assert_eq!(
        shape,
        SetShape {
            flags: 0x94,
            key_type: Some(29133),
            key_len: Some(12)
        }
    );
    let backend = NftBackend::new("ftpalg", "expect4", "expect6");
    assert!(backend.names.judge_shape(0, shape).is_ok());
    let wrong = backend.names.judge_shape(1, shape).unwrap_err().to_string();
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
        .judge_shape(0, no_timeout)
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
        .refused(0, "add", KernelError::new(libc::ENOENT));
    assert_eq!(
        missing.to_string(),
        "nftables set inet ftpalg expect4 does not exist: load the ruleset with `ftp-alg \
         rules --backend nft | nft -f -` (on kernels without the nft queue statement: \
         `ftp-alg rules --backend nft --queue-via iptables | sh`)"
    );
    let full = backend
        .names
        .refused(1, "add", KernelError::new(libc::ENFILE));
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
