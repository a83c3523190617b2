//! Addresses and ports as text, byte for byte as std's `Display` writes them, without the
//! formatting machinery.
//!
//! Owns: that text, for replay's JSON records (`io::report::jsonl`) and for the `Display` of
//! a control connection ([`crate::flow::Control`]) and of a data key
//! ([`crate::expect::DataKey`]), which the daemon's event lines are made of. Through
//! `fmt`, an IPv4 address cost about a thousand instructions, and a daemon's two log lines
//! per announcement took more of its instructions than judging the packets
//! (docs/benchmarks.md). Each octet's digits and dot come from a table; an IPv6 address is
//! written per RFC 5952 as std does (lower-case hex groups without leading zeros, the first
//! longest run of two or more zero groups as `::`). Shapes std writes otherwise (an
//! IPv4-mapped IPv6 address, a scoped socket address) are left to `Display`: the functions
//! say `false`.

use std::fmt;
use std::net::IpAddr;
use std::net::SocketAddr;

/// Where the text goes: a `Vec` (JSON records) or a [`Text`] on the stack (`Display`).
pub(crate) trait Bytes {
    /// Append the first `len` bytes of `text`.
    fn put<const N: usize>(&mut self, text: &[u8; N], len: usize);
    /// Append one byte.
    fn byte(&mut self, byte: u8);
}

impl Bytes for Vec<u8> {
    /// All of `text` is copied (a copy of a length known at compile time, no `memcpy`
    /// call), then the excess is cut off.
    #[inline]
    fn put<const N: usize>(&mut self, text: &[u8; N], len: usize) {
        let end = self.len() + len.min(N);
        self.extend_from_slice(text);
        self.truncate(end);
    }

    #[inline]
    fn byte(&mut self, byte: u8) {
        self.push(byte);
    }
}

/// Text on the stack: room for two socket addresses and a separator.
pub(crate) struct Text {
    buf: [u8; 128],
    len: usize,
}

impl Text {
    pub(crate) fn new() -> Self {
        Self {
            buf: [0; 128],
            len: 0,
        }
    }

    /// Append `text` (a short constant).
    pub(crate) fn str(&mut self, text: &str) {
        let end = self.len + text.len();
        self.buf[self.len..end].copy_from_slice(text.as_bytes());
        self.len = end;
    }

    pub(crate) fn as_str(&self) -> &str {
        // NOTE(unwrap): only ASCII digits, dots, colons, brackets, hex and the constants
        // given to `str` are written.
        std::str::from_utf8(&self.buf[..self.len]).expect("ASCII")
    }
}

impl Bytes for Text {
    #[inline]
    fn put<const N: usize>(&mut self, text: &[u8; N], len: usize) {
        let len = len.min(N);
        self.buf[self.len..self.len + len].copy_from_slice(&text[..len]);
        self.len += len;
    }

    #[inline]
    fn byte(&mut self, byte: u8) {
        self.buf[self.len] = byte;
        self.len += 1;
    }
}

/// `ip` as `Display` writes it; false (nothing written) for an IPv4-mapped IPv6 address.
#[inline]
pub(crate) fn ip(out: &mut impl Bytes, ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => dotted(out, v4.octets()),
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => hex_groups(out, v6.segments()),
        IpAddr::V6(_) => return false,
    }
    true
}

/// `addr` as `Display` writes it; false (nothing written) for a scoped or IPv4-mapped IPv6
/// address.
#[inline]
pub(crate) fn socket(out: &mut impl Bytes, addr: SocketAddr) -> bool {
    match addr {
        SocketAddr::V4(v4) => dotted(out, v4.ip().octets()),
        SocketAddr::V6(v6) if v6.scope_id() == 0 && v6.ip().to_ipv4_mapped().is_none() => {
            out.byte(b'[');
            hex_groups(out, v6.ip().segments());
            out.byte(b']');
        }
        SocketAddr::V6(_) => return false,
    }
    out.byte(b':');
    decimal(out, addr.port());
    true
}

/// Write `addr` into `f` (through [`socket`] when it can).
pub(crate) fn fmt_socket(f: &mut fmt::Formatter<'_>, addr: SocketAddr) -> fmt::Result {
    let mut text = Text::new();
    if socket(&mut text, addr) {
        f.write_str(text.as_str())
    } else {
        fmt::Display::fmt(&addr, f)
    }
}

/// An IPv4 address from its octets.
fn dotted(out: &mut impl Bytes, octets: [u8; 4]) {
    let mut text = [0u8; 16];
    let mut len = 0;
    for octet in octets {
        let (digits, count) = OCTETS[usize::from(octet)];
        text[len..len + 4].copy_from_slice(&digits);
        len += count;
    }
    // The last octet's dot is dropped.
    out.put(&text, len - 1);
}

/// Every octet's decimal digits followed by a dot (padded to 4 bytes), and how many of those
/// bytes count (digits and dot).
const OCTETS: [([u8; 4], usize); 256] = {
    let mut table = [([0u8; 4], 0usize); 256];
    let mut n = 0;
    while n < 256 {
        // Truncation is exact: each digit is below 10.
        let (hundreds, tens, ones) = ((n / 100) as u8, (n / 10 % 10) as u8, (n % 10) as u8);
        table[n] = if n >= 100 {
            ([b'0' + hundreds, b'0' + tens, b'0' + ones, b'.'], 4)
        } else if n >= 10 {
            ([b'0' + tens, b'0' + ones, b'.', 0], 3)
        } else {
            ([b'0' + ones, b'.', 0, 0], 2)
        };
        n += 1;
    }
    table
};

/// `n` in decimal, as `Display` writes it.
pub(crate) fn decimal(out: &mut impl Bytes, n: u16) {
    let count = match n {
        0..=9 => 1,
        10..=99 => 2,
        100..=999 => 3,
        1000..=9999 => 4,
        _ => 5,
    };
    let mut digits = [0u8; 5];
    let mut n = n;
    for digit in digits[..count].iter_mut().rev() {
        // NOTE: `n % 10` is below 10, so the digit is ASCII.
        *digit = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.put(&digits, count);
}

/// An IPv6 address (not IPv4-mapped) from its groups (RFC 5952).
fn hex_groups(out: &mut impl Bytes, segments: [u16; 8]) {
    let (mut best, mut best_len, mut run, mut run_len) = (0, 0, 0, 0);
    for (i, &segment) in segments.iter().enumerate() {
        if segment != 0 {
            run_len = 0;
            continue;
        }
        if run_len == 0 {
            run = i;
        }
        run_len += 1;
        if run_len > best_len {
            (best, best_len) = (run, run_len);
        }
    }
    let mut text = [0u8; 39];
    let mut len = 0;
    if best_len > 1 {
        len = hex_list(&segments[..best], &mut text, len);
        text[len..len + 2].copy_from_slice(b"::");
        len = hex_list(&segments[best + best_len..], &mut text, len + 2);
    } else {
        len = hex_list(&segments, &mut text, len);
    }
    out.put(&text, len);
}

/// Colon-separated hex groups into `text` from `len`; returns the new length.
fn hex_list(segments: &[u16], text: &mut [u8; 39], mut len: usize) -> usize {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, &segment) in segments.iter().enumerate() {
        if i > 0 {
            text[len] = b':';
            len += 1;
        }
        let digits = (4 - segment.leading_zeros() as usize / 4).max(1);
        for d in (0..digits).rev() {
            text[len] = HEX[usize::from(segment >> (4 * d) & 0xf)];
            len += 1;
        }
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Through a `Vec` and through a `Text`: exactly `Display`'s text, or `false` and
    /// nothing written.
    fn assert_as_display(addr: SocketAddr) {
        let mut out = Vec::new();
        let mut text = Text::new();
        if socket(&mut out, addr) {
            assert!(socket(&mut text, addr));
            assert_eq!(String::from_utf8(out).unwrap(), addr.to_string());
            assert_eq!(text.as_str(), addr.to_string());
        } else {
            assert!(out.is_empty());
            assert!(
                matches!(addr, SocketAddr::V6(v6) if v6.scope_id() != 0 || v6.ip().to_ipv4_mapped().is_some())
            );
        }
        let mut out = Vec::new();
        if ip(&mut out, addr.ip()) {
            assert_eq!(String::from_utf8(out).unwrap(), addr.ip().to_string());
        } else {
            assert!(out.is_empty());
        }
        let shown = format!("{}", Shown(addr));
        assert_eq!(shown, addr.to_string());
    }

    struct Shown(SocketAddr);

    impl fmt::Display for Shown {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            fmt_socket(f, self.0)
        }
    }

    #[test]
    fn ipv4_and_ports_as_display_writes_them() {
        for text in [
            "0.0.0.0:0",
            "198.51.100.2:21",
            "255.255.255.255:65535",
            "10.0.0.1:1024",
        ] {
            assert_as_display(text.parse().unwrap());
        }
        for octet in 0..=u8::MAX {
            let mut out = Vec::new();
            dotted(&mut out, [octet, 0, 9, octet]);
            let expected = std::net::Ipv4Addr::from([octet, 0, 9, octet]).to_string();
            assert_eq!(out, expected.into_bytes());
        }
        for port in 0..=u16::MAX {
            let mut out = Vec::new();
            decimal(&mut out, port);
            assert_eq!(out, port.to_string().into_bytes());
        }
    }

    /// Every pattern of zero and non-zero groups (where `::` goes), with values of every digit
    /// count, mapped and scoped addresses, and ports.
    #[test]
    fn ipv6_as_display_writes_it() {
        let values = [0x1u16, 0xab, 0xf00, 0xbeef, 0x10, 0x2001];
        for pattern in 0u32..256 {
            for (v, &value) in values.iter().enumerate() {
                let segments: [u16; 8] = std::array::from_fn(|i| {
                    if pattern >> i & 1 == 1 {
                        values[(v + i) % values.len()].max(value >> (i % 3))
                    } else {
                        0
                    }
                });
                let ip = std::net::Ipv6Addr::from(segments);
                assert_as_display(SocketAddr::V6(std::net::SocketAddrV6::new(ip, 21, 0, 0)));
                assert_as_display(SocketAddr::V6(std::net::SocketAddrV6::new(ip, 65535, 7, 3)));
            }
        }
        assert_as_display("[::ffff:192.0.2.1]:21".parse().unwrap());
    }

    /// A control connection's and a data key's text, for every address shape: what `fmt`
    /// wrote before they were written through this module.
    #[test]
    fn control_and_data_key_read_as_before() {
        let addrs: Vec<SocketAddr> = [
            "198.51.100.2:40000",
            "203.0.113.2:21",
            "[2001:db8::2]:21",
            "[2001:db8:0:1::]:65535",
            "[::ffff:192.0.2.1]:21",
            "[fe80::1%7]:21",
        ]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
        for &client in &addrs {
            for &server in &addrs {
                let control = crate::flow::Control { client, server };
                assert_eq!(control.to_string(), format!("{client} -> {server}"));
                let Some(dport) = std::num::NonZeroU16::new(server.port()) else {
                    continue;
                };
                let key = crate::expect::DataKey {
                    src: client.ip(),
                    dst: server.ip(),
                    dport,
                };
                let before = match server.ip() {
                    IpAddr::V4(dst) => format!("tcp {} -> {dst}:{dport}", client.ip()),
                    IpAddr::V6(dst) => format!("tcp {} -> [{dst}]:{dport}", client.ip()),
                };
                assert_eq!(key.to_string(), before);
            }
        }
    }
}
