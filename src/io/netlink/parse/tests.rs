use proptest::prelude::*;

use super::*;
use crate::io::netlink::Header;
use crate::io::netlink::Writer;
use crate::io::netlink::consts::NLA_F_NET_BYTEORDER;

/// An `NLMSG_ERROR` answering seq 9 with `error`, capped, with an optional message TLV.
fn error_message(error: i32, text: Option<&str>) -> Vec<u8> {
    let mut tlv = Writer::new();
    if let Some(text) = text {
        tlv.attr_str(NLMSGERR_ATTR_MSG, text).unwrap();
    }
    let mut flags = NLM_F_CAPPED;
    if text.is_some() {
        flags |= NLM_F_ACK_TLVS;
    }
    let mut payload = error.to_ne_bytes().to_vec();
    payload.extend_from_slice(&64u32.to_ne_bytes()); // the request was 64 bytes
    payload.extend_from_slice(&[0; 12]);
    payload.extend_from_slice(tlv.as_bytes());
    let mut out = u32::try_from(16 + payload.len())
        .unwrap()
        .to_ne_bytes()
        .to_vec();
    out.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
    out.extend_from_slice(&flags.to_ne_bytes());
    out.extend_from_slice(&9u32.to_ne_bytes());
    out.extend_from_slice(&1234u32.to_ne_bytes());
    out.extend_from_slice(&payload);
    out
}

#[test]
fn ack_and_refusal() {
    let ack = error_message(0, None);
    let message = messages(&ack).next().unwrap().unwrap();
    assert_eq!((message.kind, message.seq, message.port_id), (2, 9, 1234));
    assert_eq!(message.outcome(), Ok(Some(Ok(()))));

    let refusal = error_message(-2, Some("Set element not found"));
    let message = messages(&refusal).next().unwrap().unwrap();
    let expected = KernelError {
        errno: 2,
        message: Some("Set element not found".into()),
    };
    assert_eq!(message.outcome(), Ok(Some(Err(expected))));
}

#[test]
fn a_positive_error_is_malformed() {
    let bytes = error_message(5, None);
    let message = messages(&bytes).next().unwrap().unwrap();
    assert_eq!(message.outcome(), Err(Malformed("nlmsgerr error")));
}

#[test]
fn several_messages_in_one_datagram() {
    let mut w = Writer::new();
    for seq in 1..=3 {
        let m = w.begin(Header {
            kind: 0x0300,
            flags: 0,
            seq,
            family: 0,
            res_id: 7,
        });
        w.attr_be32(NFQA_TEST | NLA_F_NET_BYTEORDER, seq * 100)
            .unwrap();
        w.finish(m).unwrap();
    }
    let parsed: Vec<_> = messages(w.as_bytes()).map(Result::unwrap).collect();
    assert_eq!(parsed.len(), 3);
    for (i, message) in parsed.iter().enumerate() {
        let (nfgen, attrs) = message.netfilter().unwrap();
        assert_eq!(nfgen.res_id, 7);
        let attr = find(attrs, NFQA_TEST).unwrap().unwrap();
        assert_eq!(attr.be32("test").unwrap(), (i as u32 + 1) * 100);
        assert_eq!(message.outcome(), Ok(None));
    }
}

const NFQA_TEST: u16 = 3;

#[test]
fn nested_attributes_round_trip() {
    let mut w = Writer::new();
    let n = w.nest(7);
    w.attr_u8(7, 6).unwrap();
    w.attr_str(3, "hash:ip,port,ip").unwrap();
    w.end_nest(n).unwrap();
    let outer = find(w.as_bytes(), 7).unwrap().unwrap();
    assert!(outer.nested);
    let children: Vec<_> = outer.children().map(Result::unwrap).collect();
    assert_eq!(children[0].u8("proto"), Ok(6));
    assert_eq!(children[1].string(), "hash:ip,port,ip");
    assert_eq!(children[1].be32("x"), Err(Malformed("x")));
}

#[test]
fn truncated_and_hostile_lengths_are_malformed() {
    let ack = error_message(-1, Some("x"));
    for cut in 1..ack.len() {
        // Never panics; either an error or a shorter message.
        for message in messages(&ack[..cut]).flatten() {
            let _ = message.outcome();
        }
    }
    assert_eq!(
        messages(&[0; 8]).next(),
        Some(Err(Malformed("message header")))
    );
    let mut too_long = ack.clone();
    too_long[..4].copy_from_slice(&1000u32.to_ne_bytes());
    assert_eq!(
        messages(&too_long).next(),
        Some(Err(Malformed("message length")))
    );
    let mut too_short = ack;
    too_short[..4].copy_from_slice(&3u32.to_ne_bytes());
    let mut iter = messages(&too_short);
    assert_eq!(iter.next(), Some(Err(Malformed("message length"))));
    assert_eq!(iter.next(), None, "iteration stops after an error");
    assert_eq!(
        attributes(&[2, 0, 1, 0]).next(),
        Some(Err(Malformed("attribute length")))
    );
    assert_eq!(
        attributes(&[8, 0, 1, 0, 0]).next(),
        Some(Err(Malformed("attribute length")))
    );
}

/// Walk everything reachable, as a consumer would.
fn walk(buf: &[u8]) {
    for message in messages(buf).flatten() {
        let _ = message.outcome();
        if let Ok((_, attrs)) = message.netfilter() {
            walk_attributes(attrs, 0);
        }
    }
}

fn walk_attributes(buf: &[u8], depth: u8) {
    for attribute in attributes(buf).flatten() {
        let _ = (attribute.be16("a"), attribute.be64("b"), attribute.string());
        if depth < 4 {
            walk_attributes(attribute.payload, depth + 1);
        }
    }
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        walk(&bytes);
    }

    #[test]
    fn corrupted_valid_messages_never_panic(
        index in 0usize..200,
        value in any::<u8>(),
        cut in 0usize..200,
    ) {
        let mut bytes = error_message(-2, Some("Set element not found"));
        let index = index % bytes.len();
        bytes[index] = value;
        bytes.truncate(cut.max(1));
        walk(&bytes);
    }
}
