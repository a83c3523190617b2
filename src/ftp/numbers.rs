//! Comma-separated decimal byte lists, as in `h1,h2,h3,h4,p1,p2` (RFC 959 §4.1.2) and the
//! longer lists of LPRT/228 (RFC 1639), and the endpoints they encode.
//!
//! Every number is range-checked (0–255): a larger one makes the list malformed, never wraps
//! (the kernel helper's pre-2026 overflow). Leading zeros are decimal. Blanks (SP, HT) are
//! allowed around numbers, as servers using `sscanf("%d,")` accept them.

use std::net::IpAddr;
use std::net::Ipv4Addr;
use std::net::Ipv6Addr;
use std::num::NonZeroU16;
use std::ops::Range;

use super::DataEndpoint;
use super::Error;

/// At most this many numbers in a list (LPRT for IPv6 has 21).
const MAX_LIST: usize = 21;

/// A parsed list and the bytes after it.
pub(crate) struct List<'a> {
    pub(crate) values: Vec<u8>,
    pub(crate) rest: &'a [u8],
}

/// Parse a list of 1..=21 byte values at the very start of `text` (after optional blanks).
pub(crate) fn list(text: &[u8]) -> Result<List<'_>, Error> {
    let mut values = Vec::new();
    let mut rest = skip_blanks(text);
    loop {
        let (value, after) = byte(rest)?;
        values.push(value);
        if values.len() > MAX_LIST {
            return Err(Error::Malformed("list length"));
        }
        let after = skip_blanks(after);
        match after.split_first() {
            Some((b',', tail)) => rest = skip_blanks(tail),
            _ => {
                return Ok(List {
                    values,
                    rest: after,
                });
            }
        }
    }
}

/// Find the first complete list in free text whose length `fits` (the RFC 1123 §4.1.2.6 scan
/// for the first digit, made safe: a list must not start in the middle of another list, so
/// `(1,2,3,4,5,6,7)` is not read as `2,...,7`).
pub(crate) fn scan(text: &[u8], fits: impl Fn(usize) -> bool) -> Result<Vec<u8>, Error> {
    find(text, fits).map(|(_, values)| values)
}

/// The list [`scan`] reads, and where it lies in `text`: from its first digit to the end of
/// its last number (NAT rewrites exactly those bytes, `nat::text`).
pub(crate) fn find(
    text: &[u8],
    fits: impl Fn(usize) -> bool,
) -> Result<(Range<usize>, Vec<u8>), Error> {
    let mut at = 0;
    let mut error = Error::Malformed("address");
    while let Some(start) = next_list_start(text, at) {
        match list(&text[start..]) {
            Ok(found) if fits(found.values.len()) => {
                // `rest` starts after the blanks that follow the last number.
                let end = text.len() - found.rest.len();
                let blanks = text[start..end]
                    .iter()
                    .rev()
                    .take_while(|&&b| b == b' ' || b == b'\t')
                    .count();
                return Ok((start..end - blanks, found.values));
            }
            Ok(_) => error = Error::Malformed("number of fields"),
            Err(e) => error = e,
        }
        at = start + 1;
    }
    Err(error)
}

/// `h1,h2,h3,h4,p1,p2` as an IPv4 endpoint; `values` must have exactly six entries.
pub(crate) fn ipv4_endpoint(values: &[u8]) -> Result<DataEndpoint, Error> {
    let [h1, h2, h3, h4, p1, p2] = values else {
        return Err(Error::Malformed("number of fields"));
    };
    let addr = IpAddr::V4(Ipv4Addr::new(*h1, *h2, *h3, *h4));
    Ok(DataEndpoint {
        addr,
        port: port(*p1, *p2)?,
    })
}

/// `af,hal,h1,...,pal,p1,p2` (RFC 1639 §2) as an endpoint: af 4 with 4 address bytes, or
/// af 6 with 16, and a 2-byte port.
pub(crate) fn long_endpoint(values: &[u8]) -> Result<DataEndpoint, Error> {
    let (&af, rest) = values.split_first().ok_or(Error::Malformed("af"))?;
    let (&hal, rest) = rest.split_first().ok_or(Error::Malformed("hal"))?;
    let addr_len = match (af, hal) {
        (4, 4) => 4,
        (6, 16) => 16,
        (4 | 6, _) => return Err(Error::Malformed("hal")),
        _ => return Err(Error::Malformed("af")),
    };
    let (addr, rest) = rest
        .split_at_checked(addr_len)
        .ok_or(Error::Malformed("address"))?;
    let [2, p1, p2] = rest else {
        return Err(Error::Malformed("port"));
    };
    let addr = match (<[u8; 4]>::try_from(addr), <[u8; 16]>::try_from(addr)) {
        (Ok(v4), _) => IpAddr::V4(Ipv4Addr::from(v4)),
        (_, Ok(v6)) => IpAddr::V6(Ipv6Addr::from(v6)),
        _ => return Err(Error::Malformed("address")),
    };
    Ok(DataEndpoint {
        addr,
        port: port(*p1, *p2)?,
    })
}

/// A port from its two bytes; port 0 is malformed.
pub(crate) fn port(p1: u8, p2: u8) -> Result<NonZeroU16, Error> {
    NonZeroU16::new(u16::from(p1) << 8 | u16::from(p2)).ok_or(Error::Malformed("port"))
}

/// A decimal number of at most 5 digits, 1..=65535, at the start of `text`.
pub(crate) fn decimal_port(text: &[u8]) -> Result<(NonZeroU16, &[u8]), Error> {
    let digits = text.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return Err(Error::Malformed("port"));
    }
    let value = text[..digits]
        .iter()
        .try_fold(0u32, |acc, &d| {
            let next = acc * 10 + u32::from(d - b'0');
            (next <= u32::from(u16::MAX)).then_some(next)
        })
        .and_then(|v| NonZeroU16::new(u16::try_from(v).ok()?))
        .ok_or(Error::Malformed("port"))?;
    Ok((value, &text[digits..]))
}

/// `text` without leading SP and HT.
pub(crate) fn skip_blanks(text: &[u8]) -> &[u8] {
    let n = text
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    &text[n..]
}

/// One decimal number 0..=255 (any number of leading zeros) and what follows it.
fn byte(text: &[u8]) -> Result<(u8, &[u8]), Error> {
    let digits = text.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return Err(Error::Malformed("number"));
    }
    let value = text[..digits].iter().try_fold(0u16, |acc, &d| {
        let next = acc * 10 + u16::from(d - b'0');
        (next <= 255).then_some(next)
    });
    match value.map(u8::try_from) {
        Some(Ok(v)) => Ok((v, &text[digits..])),
        _ => Err(Error::Malformed("number over 255")),
    }
}

/// The next index at or after `from` where a digit starts a list: not preceded by a digit,
/// nor by a comma (blanks skipped).
fn next_list_start(text: &[u8], from: usize) -> Option<usize> {
    (from..text.len()).find(|&i| {
        if !text[i].is_ascii_digit() {
            return false;
        }
        let before = text[..i].iter().rev().find(|&&b| b != b' ' && b != b'\t');
        !matches!(before, Some(b) if b.is_ascii_digit() || *b == b',')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(text: &str) -> Result<(Vec<u8>, String), Error> {
        list(text.as_bytes()).map(|l| (l.values, String::from_utf8_lossy(l.rest).into_owned()))
    }

    #[test]
    fn lists_parse_with_blanks_and_zeros() {
        assert_eq!(values("1,2,3").unwrap(), (vec![1, 2, 3], String::new()));
        assert_eq!(
            values(" 10, 0 ,0,5").unwrap(),
            (vec![10, 0, 0, 5], String::new())
        );
        assert_eq!(
            values("010,000,255)").unwrap(),
            (vec![10, 0, 255], ")".into())
        );
        assert_eq!(values("00000000000001").unwrap().0, vec![1]);
    }

    #[test]
    fn lists_refuse_overflow_and_junk() {
        assert_eq!(values("256,1"), Err(Error::Malformed("number over 255")));
        assert_eq!(values("1,2,"), Err(Error::Malformed("number")));
        assert_eq!(values(",1"), Err(Error::Malformed("number")));
        let long = "1234".repeat(16);
        assert_eq!(values(&long), Err(Error::Malformed("number over 255")));
        let many = vec!["1"; 22].join(",");
        assert_eq!(values(&many), Err(Error::Malformed("list length")));
    }

    #[test]
    fn scan_finds_the_first_whole_list() {
        let six = |n| n == 6;
        let found = scan(b"Entering Passive Mode (192,168,1,5,195,80).", six).unwrap();
        assert_eq!(found, vec![192, 168, 1, 5, 195, 80]);
        assert_eq!(
            scan(b"mode 2 (9,9,9,9,1,1)", six).unwrap(),
            vec![9, 9, 9, 9, 1, 1]
        );
        let seven = scan(b"(1,2,3,4,5,6,7)", six);
        assert_eq!(
            seven,
            Err(Error::Malformed("number of fields")),
            "not re-read from the 2nd number"
        );
        assert_eq!(
            scan(b"(1,2,3,4,256,1)", six),
            Err(Error::Malformed("number over 255"))
        );
        assert_eq!(scan(b"Logout.", six), Err(Error::Malformed("address")));
    }

    #[test]
    fn endpoints_and_ports() {
        let v4 = ipv4_endpoint(&[198, 51, 100, 2, 4, 1]).unwrap();
        assert_eq!(v4.to_string(), "198.51.100.2:1025");
        assert_eq!(
            ipv4_endpoint(&[1, 2, 3, 4, 0, 0]),
            Err(Error::Malformed("port"))
        );
        assert_eq!(
            ipv4_endpoint(&[1, 2, 3, 4, 5]),
            Err(Error::Malformed("number of fields"))
        );
        let long = long_endpoint(&[4, 4, 203, 0, 113, 2, 2, 195, 80]).unwrap();
        assert_eq!(long.to_string(), "203.0.113.2:50000");
        let mut v6 = vec![6, 16, 0x20, 0x01, 0x0d, 0xb8];
        v6.extend([0; 11]);
        v6.extend([1, 2, 0, 21]);
        assert_eq!(long_endpoint(&v6).unwrap().to_string(), "[2001:db8::1]:21");
        assert_eq!(long_endpoint(&[4, 16, 1]), Err(Error::Malformed("hal")));
        assert_eq!(long_endpoint(&[5, 4]), Err(Error::Malformed("af")));
        assert_eq!(
            long_endpoint(&[4, 4, 1, 2, 3, 4, 3, 0, 1, 1]),
            Err(Error::Malformed("port"))
        );
    }

    #[test]
    fn decimal_ports() {
        assert_eq!(decimal_port(b"6446|)").unwrap().0.get(), 6446);
        assert_eq!(decimal_port(b"65535|").unwrap().0.get(), 65535);
        assert_eq!(decimal_port(b"65536|"), Err(Error::Malformed("port")));
        assert_eq!(decimal_port(b"0|"), Err(Error::Malformed("port")));
        assert_eq!(decimal_port(b"|"), Err(Error::Malformed("port")));
        assert_eq!(
            decimal_port(b"99999999999999999999"),
            Err(Error::Malformed("port"))
        );
    }
}
