//! The rewritten announcement line: the same line with the public endpoint in place of the
//! private one.
//!
//! Owns: finding the endpoint's bytes in a raw announcement line and writing the replacement,
//! keeping everything else byte for byte (the verb's case, the terminator, the text). A
//! command's argument has no slack (`PORT h1,h2,h3,h4,p1,p2`, RFC 959 §4.1.2; `EPRT
//! |af|addr|port|`, RFC 2428 §2), so its length follows the numbers. A reply's text is free
//! (RFC 959 §4.2: only the code is for the machine; RFC 1123 §4.1.2.6 tells clients to scan
//! a `227` for the first digit), so a `227` or `229` keeps its length where the text allows:
//! letters are dropped from, or spaces added to, the text before the numbers.

use std::net::IpAddr;

use crate::ftp::Trigger;
use crate::ftp::numbers;

/// The announcement line `raw` (terminator included) rewritten to name `public`:`port`, or
/// `None` if it does not have the shape of `trigger` (or names another address family).
pub fn rewrite(raw: &[u8], trigger: Trigger, public: IpAddr, port: u16) -> Option<Vec<u8>> {
    if raw.contains(&0xff) {
        // Telnet commands inside the line: the raw bytes are not the text that was parsed.
        return None;
    }
    match trigger {
        Trigger::Port => command(raw, &port_numbers(public, port)?),
        Trigger::Eprt => command(raw, &eprt_argument(raw, public, port)?),
        Trigger::Reply227 => reply_227(raw, &port_numbers(public, port)?),
        Trigger::Reply229 => reply_229(raw, port),
        Trigger::Lprt | Trigger::Reply228 => None,
    }
}

fn port_numbers(public: IpAddr, port: u16) -> Option<String> {
    let IpAddr::V4(v4) = public else {
        return None;
    };
    let [a, b, c, d] = v4.octets();
    Some(format!("{a},{b},{c},{d},{},{}", port >> 8, port & 0xff))
}

fn eprt_argument(raw: &[u8], public: IpAddr, port: u16) -> Option<String> {
    let (start, end) = argument(raw)?;
    let delimiter = char::from(*raw.get(start)?);
    if !(33..=126).contains(&(delimiter as u32)) || raw[start..end].contains(&b' ') {
        return None;
    }
    let family = if public.is_ipv4() { 1 } else { 2 };
    Some(format!(
        "{delimiter}{family}{delimiter}{public}{delimiter}{port}{delimiter}"
    ))
}

/// Where a command's argument lies, as the parser reads it (`ftp::command`): after leading
/// blanks, the verb and the blanks after it (SP or HT), before trailing blanks and the
/// terminator.
fn argument(raw: &[u8]) -> Option<(usize, usize)> {
    let blank = |b: &&u8| matches!(b, b' ' | b'\t');
    let lead = raw.iter().take_while(blank).count();
    let verb_end = lead
        + raw[lead..]
            .iter()
            .take_while(|b| b.is_ascii_alphabetic())
            .count();
    let start = verb_end + raw[verb_end..].iter().take_while(blank).count();
    let end = raw.len()
        - raw
            .iter()
            .rev()
            .take_while(|b| matches!(b, b'\r' | b'\n' | b' ' | b'\t'))
            .count();
    (verb_end > lead && start > verb_end && start < end).then_some((start, end))
}

fn command(raw: &[u8], new_argument: &str) -> Option<Vec<u8>> {
    let (start, end) = argument(raw)?;
    Some(splice(raw, start, end, new_argument.as_bytes()))
}

fn splice(raw: &[u8], start: usize, end: usize, middle: &[u8]) -> Vec<u8> {
    let mut line = Vec::with_capacity(raw.len() + middle.len());
    line.extend_from_slice(&raw[..start]);
    line.extend_from_slice(middle);
    line.extend_from_slice(&raw[end..]);
    line
}

/// `227 <text>(h1,h2,h3,h4,p1,p2)<text>`: the six numbers a client reads, found as the parser
/// finds them (the first list of exactly six, RFC 1123 §4.1.2.6, [`numbers::find`]). The
/// length is kept only if the client still reads the new numbers from the result: the plain
/// replacement always reads right, dropping or padding free text might not (digits or commas
/// in it could make another list the first one).
fn reply_227(raw: &[u8], new: &str) -> Option<Vec<u8>> {
    let six = |n| n == 6;
    let (span, _) = numbers::find(raw.get(4..)?, six).ok()?;
    let (start, end) = (4 + span.start, 4 + span.end);
    let reads = |line: &[u8]| numbers::find(line.get(4..)?, six).ok().map(|(_, v)| v);
    let plain = splice(raw, start, end, new.as_bytes());
    let kept = keep_length(raw, start, end, new.as_bytes());
    if reads(&kept) == reads(&plain) {
        Some(kept)
    } else {
        Some(plain)
    }
}

/// `229 <text>(<d><d><d>port<d>)`: only the port changes.
fn reply_229(raw: &[u8], port: u16) -> Option<Vec<u8>> {
    let open = 4 + raw.get(4..)?.iter().position(|&b| b == b'(')?;
    let delimiter = *raw.get(open + 1)?;
    if raw.get(open + 2) != Some(&delimiter) || raw.get(open + 3) != Some(&delimiter) {
        return None;
    }
    let start = open + 4;
    let digits = raw[start..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    if digits == 0 || raw.get(start + digits) != Some(&delimiter) {
        return None;
    }
    Some(keep_length(
        raw,
        start,
        start + digits,
        port.to_string().as_bytes(),
    ))
}

/// Replace `raw[start..end]` by `middle` in a reply, taking the length difference out of (or
/// adding it to) the free text between the code and the numbers where it can.
fn keep_length(raw: &[u8], start: usize, end: usize, middle: &[u8]) -> Vec<u8> {
    let line = splice(raw, start, end, middle);
    let grow = middle.len() as i64 - (end - start) as i64;
    // The free text: after "227 " up to the punctuation just before the numbers.
    let text_end = start
        - raw[..start]
            .iter()
            .rev()
            .take_while(|b| !is_text(**b))
            .count();
    let text_start = 4.min(text_end);
    if grow > 0 {
        let cut = grow as usize;
        // Words lose their last letters; the spaces before the numbers stay.
        let spaces = raw[text_start..text_end]
            .iter()
            .rev()
            .take_while(|&&b| b == b' ')
            .count();
        let words_end = text_end - spaces;
        // Keep at least one character of text.
        if cut >= words_end - text_start {
            return line;
        }
        let mut out = Vec::with_capacity(raw.len());
        out.extend_from_slice(&line[..words_end - cut]);
        out.extend_from_slice(&line[words_end..]);
        out
    } else if grow < 0 {
        let pad = (-grow) as usize;
        let mut out = Vec::with_capacity(raw.len());
        out.extend_from_slice(&line[..text_end]);
        out.extend(std::iter::repeat_n(b' ', pad));
        out.extend_from_slice(&line[text_end..]);
        out
    } else {
        line
    }
}

fn is_text(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b' ' || b == b'.'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn text(raw: &[u8], trigger: Trigger, public: &str, port: u16) -> String {
        String::from_utf8(rewrite(raw, trigger, ip(public), port).unwrap()).unwrap()
    }

    #[test]
    fn port_keeps_verb_and_terminator() {
        assert_eq!(
            text(
                b"port 192,0,2,2,19,136\r\n",
                Trigger::Port,
                "203.0.113.100",
                5000
            ),
            "port 203,0,113,100,19,136\r\n"
        );
        assert_eq!(
            text(b"PORT 192,0,2,2,19,136\n", Trigger::Port, "9.9.9.9", 5001),
            "PORT 9,9,9,9,19,137\n"
        );
    }

    #[test]
    fn eprt_keeps_its_delimiter() {
        assert_eq!(
            text(
                b"EPRT !1!192.0.2.2!5000!\r\n",
                Trigger::Eprt,
                "203.0.113.1",
                5000
            ),
            "EPRT !1!203.0.113.1!5000!\r\n"
        );
        assert_eq!(
            text(
                b"EPRT |2|2001:db8::2|5000|\r\n",
                Trigger::Eprt,
                "2001:db8:1::1",
                6000
            ),
            "EPRT |2|2001:db8:1::1|6000|\r\n"
        );
    }

    #[test]
    fn reply_227_keeps_its_length() {
        let raw = b"227 Entering Passive Mode (192,0,2,5,195,80).\r\n";
        let out = text(raw, Trigger::Reply227, "203.0.113.100", 50000);
        assert_eq!(out, "227 Entering Passive  (203,0,113,100,195,80).\r\n");
        assert_eq!(out.len(), raw.len());
        let out = text(raw, Trigger::Reply227, "9.9.9.9", 50000);
        assert_eq!(out, "227 Entering Passive Mode   (9,9,9,9,195,80).\r\n");
        assert_eq!(out.len(), raw.len());
        // No parentheses (allowed by RFC 1123): the digits are found all the same.
        let raw = b"227 =192,0,2,5,195,80\r\n";
        let out = text(raw, Trigger::Reply227, "203.0.113.100", 50000);
        assert_eq!(out, "227 =203,0,113,100,195,80\r\n");
    }

    #[test]
    fn reply_229_changes_only_the_port() {
        let raw = b"229 Entering Extended Passive Mode (|||50000|)\r\n";
        assert_eq!(
            text(raw, Trigger::Reply229, "203.0.113.1", 50001),
            "229 Entering Extended Passive Mode (|||50001|)\r\n"
        );
        let out = text(raw, Trigger::Reply229, "203.0.113.1", 80);
        assert_eq!(out.len(), raw.len());
        assert!(out.contains("(|||80|)"));
    }

    /// Found by the `nat_rewrite` harness: the list a client reads is the first of exactly six
    /// numbers, not the first digits after the code; and keeping the length must not make an
    /// earlier list the first of six.
    #[test]
    fn reply_227_rewrites_the_list_the_client_reads() {
        let raw = b"227 (1,2,3,4,5,6,7) (192,0,2,5,195,80)\r\n";
        let out = text(raw, Trigger::Reply227, "203.0.113.100", 50000);
        assert_eq!(out, "227 (1,2,3,4,5, (203,0,113,100,195,80)\r\n");
        let raw = b"227 Entering 1,2,3,4,5,6,7 (192,0,2,5,195,80)\r\n";
        let out = text(raw, Trigger::Reply227, "10.10.0.100", 50000);
        assert_eq!(out, "227 Entering 1,2,3,4,5,6,7 (10,10,0,100,195,80)\r\n");
    }

    /// Found by the `nat_rewrite` harness: the argument is found the way the parser finds it.
    #[test]
    fn port_keeps_its_verb_after_blanks() {
        assert_eq!(
            text(
                b" PORT 192,0,2,2,19,136\r\n",
                Trigger::Port,
                "9.9.9.9",
                5000
            ),
            " PORT 9,9,9,9,19,136\r\n"
        );
        assert_eq!(
            text(
                b"PORT\t192,0,2,2,19,136\r\n",
                Trigger::Port,
                "9.9.9.9",
                5000
            ),
            "PORT\t9,9,9,9,19,136\r\n"
        );
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        assert!(rewrite(b"PORT\r\n", Trigger::Port, ip("9.9.9.9"), 1).is_none());
        assert!(rewrite(b"227 no numbers\r\n", Trigger::Reply227, ip("9.9.9.9"), 1).is_none());
        assert!(rewrite(b"229 (|x|1|)\r\n", Trigger::Reply229, ip("9.9.9.9"), 1).is_none());
        assert!(rewrite(b"PORT 1,2\xff,3\r\n", Trigger::Port, ip("9.9.9.9"), 1).is_none());
        assert!(rewrite(b"PORT 1,2,3,4,5,6\r\n", Trigger::Port, ip("2001:db8::1"), 1).is_none());
    }
}
