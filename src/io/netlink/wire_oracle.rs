//! Test-only: netlink attributes spelled out by hand, independently of `netlink::Writer`,
//! so the byte-exact tests of the backends and the conntrack lookup compare the writer against a second implementation.

/// One attribute: length, type, payload, padded to 4 bytes.
pub(crate) fn nla(kind: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = u16::try_from(4 + payload.len())
        .unwrap()
        .to_ne_bytes()
        .to_vec();
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(payload);
    out.resize(out.len().next_multiple_of(4), 0);
    out
}

/// A nested attribute (NLA_F_NESTED) around `children`.
pub(crate) fn nest(kind: u16, children: &[Vec<u8>]) -> Vec<u8> {
    let body = children.concat();
    let mut out = u16::try_from(4 + body.len())
        .unwrap()
        .to_ne_bytes()
        .to_vec();
    out.extend_from_slice(&(kind | 0x8000).to_ne_bytes());
    out.extend_from_slice(&body);
    out
}
