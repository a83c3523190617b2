//! Server-to-client lines: reply codes, multi-line markers, and the endpoints in 227/228/229.
//!
//! Owns: the reply-line shape (RFC 959 §4.2: three digits, then a space for the last line of a
//! reply or a hyphen for the first line of a multi-line one), and the endpoint formats servers
//! really send: `227` with or without parentheses, `=h1,...`, trailing text or dot (found by the
//! RFC 1123 §4.1.2.6 scan, with every number range-checked), `228` (RFC 1639 §3) and `229`
//! with any delimiter (RFC 2428 §3).
//! Does not own: which command a reply answers (see [`super::session`]).

use std::num::NonZeroU16;

use super::DataEndpoint;
use super::Error;
use super::ReplyCode;
use super::numbers;

/// One line of a reply, when it starts with a reply code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    /// The three-digit code.
    pub code: ReplyCode,
    /// True for `ddd-` (the first line of a multi-line reply), false for `ddd ` or `ddd`.
    pub continues: bool,
    /// The text after the code and its separator.
    pub text: &'a [u8],
}

/// Read a reply code at the start of a line: three digits, the first 1–6 (RFC 959 §4.2 uses
/// 1–5; RFC 2228 adds 6yz), then a space, a hyphen or the end of the line.
pub fn parse_line(line: &[u8]) -> Option<Line<'_>> {
    let (digits, rest) = line.split_at_checked(3)?;
    if !digits.iter().all(u8::is_ascii_digit) || !(b'1'..=b'6').contains(&digits[0]) {
        return None;
    }
    let code = digits
        .iter()
        .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    let (continues, text) = match rest.split_first() {
        None => (false, rest),
        Some((b' ', text)) => (false, text),
        Some((b'-', text)) => (true, text),
        Some(_) => return None,
    };
    Some(Line {
        code: ReplyCode(code),
        continues,
        text,
    })
}

/// The endpoint in a 227 reply's text: the first list of exactly six numbers.
pub fn passive_227(text: &[u8]) -> Result<DataEndpoint, Error> {
    let values = numbers::scan(text, |n| n == 6)?;
    numbers::ipv4_endpoint(&values)
}

/// The endpoint in a 228 reply's text: `af,hal,h1,...,pal,p1,p2` with 9 (IPv4) or 21 (IPv6)
/// numbers.
pub fn long_passive_228(text: &[u8]) -> Result<DataEndpoint, Error> {
    let values = numbers::scan(text, |n| n == 9 || n == 21)?;
    numbers::long_endpoint(&values)
}

/// The port in a 229 reply's text: `(<d><d><d>port<d>)`, where `d` is one character in 33–126
/// that is not a digit. The network address must be empty (RFC 2428 §3). Servers that drop
/// the parentheses are tolerated: the first `<d><d><d>port<d>` is used.
pub fn extended_passive_229(text: &[u8]) -> Result<NonZeroU16, Error> {
    let start = match text.iter().position(|&b| b == b'(') {
        Some(open) => open + 1,
        None => bare_229_start(text).ok_or(Error::Malformed("delimiter"))?,
    };
    let body = &text[start..];
    let [d, d2, d3, ..] = *body else {
        return Err(Error::Malformed("delimiter"));
    };
    if !is_delimiter(d) || d2 != d || d3 != d {
        return Err(Error::Malformed("delimiter"));
    }
    let (port, rest) = numbers::decimal_port(&body[3..])?;
    match rest.first() {
        Some(&close) if close == d => Ok(port),
        _ => Err(Error::Malformed("delimiter")),
    }
}

fn bare_229_start(text: &[u8]) -> Option<usize> {
    text.windows(4)
        .position(|w| is_delimiter(w[0]) && w[1] == w[0] && w[2] == w[0] && w[3].is_ascii_digit())
}

fn is_delimiter(byte: u8) -> bool {
    (33..=126).contains(&byte) && !byte.is_ascii_digit()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> Option<(u16, bool, String)> {
        parse_line(text.as_bytes()).map(|l| {
            (
                l.code.0,
                l.continues,
                String::from_utf8_lossy(l.text).into_owned(),
            )
        })
    }

    fn pasv(text: &str) -> Result<String, Error> {
        passive_227(text.as_bytes()).map(|e| e.to_string())
    }

    fn epsv(text: &str) -> Result<u16, Error> {
        extended_passive_229(text.as_bytes()).map(NonZeroU16::get)
    }

    #[test]
    fn reply_lines() {
        assert_eq!(line("220 ready"), Some((220, false, "ready".into())));
        assert_eq!(line("220-Welcome"), Some((220, true, "Welcome".into())));
        assert_eq!(line("221"), Some((221, false, String::new())));
        assert_eq!(
            line("631 protected"),
            Some((631, false, "protected".into()))
        );
        assert_eq!(line("22 short"), None);
        assert_eq!(line("2200 x"), None);
        assert_eq!(line("720 x"), None);
        assert_eq!(line("  220 x"), None);
        assert_eq!(line("SSH-2.0-mod_sftp"), None);
        assert_eq!(line("PORT 1,2,3,4,5,6"), None);
    }

    #[test]
    fn pasv_227_formats() {
        let want = Ok("192.168.1.5:50000".to_string());
        assert_eq!(pasv("Entering Passive Mode (192,168,1,5,195,80)"), want);
        assert_eq!(pasv("Entering Passive Mode (192,168,1,5,195,80)."), want);
        assert_eq!(pasv("Entering Passive Mode 192,168,1,5,195,80"), want);
        assert_eq!(pasv("=192,168,1,5,195,80"), want);
        assert_eq!(pasv("192,168,1,5,195,80"), want);
        assert_eq!(
            pasv("Entering passive mode (192,168,1,5,195,80) ok, go"),
            want
        );
        assert_eq!(pasv("Fake PORT 192,168,1,5,195,80"), want);
        assert_eq!(
            pasv("Entering Passive Mode (192, 168, 1, 5, 195, 80)"),
            want
        );
    }

    #[test]
    fn pasv_227_malformed() {
        assert_eq!(pasv("Logout."), Err(Error::Malformed("address")));
        assert_eq!(
            pasv("Entering Passive Mode ("),
            Err(Error::Malformed("address"))
        );
        assert_eq!(pasv("Fake response PASV"), Err(Error::Malformed("address")));
        assert_eq!(
            pasv("(192,168,1,5,256,22)"),
            Err(Error::Malformed("number over 255"))
        );
        assert_eq!(
            pasv("(192,168,1,5,195)"),
            Err(Error::Malformed("number of fields"))
        );
        assert_eq!(
            pasv("(192,168,1,5,195,80,1)"),
            Err(Error::Malformed("number of fields"))
        );
        assert_eq!(pasv("(192,168,1,5,0,0)"), Err(Error::Malformed("port")));
    }

    #[test]
    fn lpsv_228_formats() {
        let v4 = long_passive_228(b"Entering Long Passive Mode (4,4,203,0,113,2,2,195,80)");
        assert_eq!(v4.unwrap().to_string(), "203.0.113.2:50000");
        let v6 = long_passive_228(b"(6,16,32,1,13,184,1,19,0,0,0,0,0,0,0,0,0,2,2,195,80)");
        assert_eq!(v6.unwrap().to_string(), "[2001:db8:113::2]:50000");
        assert_eq!(
            long_passive_228(b"(4,4,1,2,3,4,2,0,0)"),
            Err(Error::Malformed("port"))
        );
        assert_eq!(
            long_passive_228(b"(4,4,1,2,3,4)"),
            Err(Error::Malformed("number of fields"))
        );
    }

    #[test]
    fn epsv_229_formats() {
        assert_eq!(epsv("Entering Extended Passive Mode (|||6446|)"), Ok(6446));
        assert_eq!(epsv("Entering Extended Passive Mode (|||6446|)."), Ok(6446));
        assert_eq!(epsv("Extended Passive mode OK (!!!6446!)"), Ok(6446));
        assert_eq!(epsv("Extended Passive Mode OK |||6446|"), Ok(6446));
        assert_eq!(epsv("(|||65535|)"), Ok(65535));
    }

    #[test]
    fn epsv_229_malformed() {
        assert_eq!(epsv("(||6446|)"), Err(Error::Malformed("delimiter")));
        assert_eq!(epsv("(|2|::1|6446|)"), Err(Error::Malformed("delimiter")));
        assert_eq!(epsv("(|||0|)"), Err(Error::Malformed("port")));
        assert_eq!(epsv("(|||70000|)"), Err(Error::Malformed("port")));
        assert_eq!(epsv("(|||6446)"), Err(Error::Malformed("delimiter")));
        assert_eq!(epsv("(|!|6446|)"), Err(Error::Malformed("delimiter")));
        assert_eq!(epsv("(111222|)"), Err(Error::Malformed("delimiter")));
        assert_eq!(
            epsv("Entering Extended Passive Mode"),
            Err(Error::Malformed("delimiter"))
        );
        assert_eq!(epsv("("), Err(Error::Malformed("delimiter")));
    }
}
