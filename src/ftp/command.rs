//! Client-to-server lines: which FTP command each is, and the arguments of those that matter.
//!
//! Owns: recognising the verb (case-insensitive, RFC 959 §5.3.1; leading blanks and several
//! blanks or a tab before the argument are tolerated), the table of known FTP verbs (used to
//! tell an FTP client from anything else), and the arguments of `PORT` (RFC 959 §4.1.2),
//! `EPRT` (RFC 2428 §2), `LPRT` (RFC 1639 §2) and `EPSV ALL` (RFC 2428 §4).
//! Does not own: what a command means for the session (see [`super::session`]).

use std::net::IpAddr;

use super::DataEndpoint;
use super::Error;
use super::Trigger;
use super::numbers;

/// A client line, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// PORT, EPRT or LPRT with a well-formed endpoint.
    Active(Trigger, DataEndpoint),
    /// PORT, EPRT or LPRT whose argument does not parse.
    ActiveMalformed(Trigger, Error),
    /// AUTH (RFC 2228 §3): a 234 answer means the channel is protected from then on.
    Auth,
    /// CCC (RFC 2228 §3): clear command channel.
    Ccc,
    /// EPSV ALL (RFC 2428 §4): from its acceptance on, only EPSV may set up data connections.
    EpsvAll,
    /// Any other known FTP command.
    Other(Verb),
    /// PASV, EPSV (with or without a protocol number) or LPSV.
    Passive(Verb),
    /// QUIT (RFC 959 §4.1.1).
    Quit,
    /// REIN (RFC 959 §4.1.1): the session returns to its just-greeted state.
    Rein,
    /// A command that transfers over a data connection: RETR, STOR, STOU, APPE (RFC 959
    /// §4.1.3), LIST, NLST (RFC 959) and MLSD (RFC 3659 §7).
    Transfer(Verb),
    /// A line whose verb is not an FTP command at all (or with no verb).
    Unknown,
}

/// A known FTP verb, upper-cased (3 or 4 ASCII letters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Verb([u8; 4]);

/// Every command verb of RFC 959, 775, 1639, 2228, 2389, 2428, 2640, 3659, 4217 and 7151,
/// plus widely deployed extensions. Sorted, for binary search.
const KNOWN_VERBS: &[&str] = &[
    "ABOR", "ACCT", "ADAT", "ALLO", "APPE", "AUTH", "AVBL", "CCC", "CDUP", "CLNT", "CONF", "CSID",
    "CWD", "DELE", "DSIZ", "ENC", "EPRT", "EPSV", "FEAT", "HASH", "HELP", "HOST", "LANG", "LIST",
    "LPRT", "LPSV", "MDTM", "MFCT", "MFF", "MFMT", "MIC", "MKD", "MLSD", "MLST", "MODE", "NLST",
    "NOOP", "OPTS", "PASS", "PASV", "PBSZ", "PORT", "PROT", "PWD", "QUIT", "REIN", "REST", "RETR",
    "RMD", "RMDA", "RNFR", "RNTO", "SITE", "SIZE", "SMNT", "SPSV", "STAT", "STOR", "STOU", "STRU",
    "SYST", "THMB", "TYPE", "USER", "XCRC", "XCUP", "XCWD", "XMD5", "XMKD", "XPWD", "XRCP", "XRMD",
    "XRSQ", "XSEM", "XSEN",
];

/// [`KNOWN_VERBS`] as big-endian `u32`s (a three-letter verb ends in a zero byte), in the same
/// order (a zero byte sorts before any letter), for a binary search of integers.
const KNOWN_CODES: [u32; KNOWN_VERBS.len()] = {
    let mut codes = [0u32; KNOWN_VERBS.len()];
    let mut i = 0;
    while i < codes.len() {
        let name = KNOWN_VERBS[i].as_bytes();
        let mut code = [0u8; 4];
        let mut j = 0;
        while j < name.len() {
            code[j] = name[j];
            j += 1;
        }
        codes[i] = u32::from_be_bytes(code);
        i += 1;
    }
    codes
};

/// Classify one client line (terminator and Telnet commands already removed).
pub fn parse(line: &[u8]) -> Command {
    let Some((verb, argument)) = split_verb(line) else {
        return Command::Unknown;
    };
    match &verb.0 {
        b"PORT" => active(Trigger::Port, port(argument)),
        b"EPRT" => active(Trigger::Eprt, eprt(argument)),
        b"LPRT" => active(Trigger::Lprt, lprt(argument)),
        b"PASV" | b"LPSV" => Command::Passive(verb),
        b"EPSV" if argument.eq_ignore_ascii_case(b"ALL") => Command::EpsvAll,
        b"EPSV" => Command::Passive(verb),
        b"AUTH" => Command::Auth,
        b"CCC\0" => Command::Ccc,
        b"REIN" => Command::Rein,
        b"QUIT" => Command::Quit,
        b"RETR" | b"STOR" | b"STOU" | b"APPE" | b"LIST" | b"NLST" | b"MLSD" => {
            Command::Transfer(verb)
        }
        _ => Command::Other(verb),
    }
}

/// The verb of a line that may have been cut short by the framing cap: `Unknown` unless the
/// verb itself was complete.
pub fn parse_overlong(prefix: &[u8]) -> Command {
    match split_verb(prefix) {
        Some((verb, _)) => match parse(prefix) {
            Command::Active(trigger, _) | Command::ActiveMalformed(trigger, _) => {
                Command::ActiveMalformed(trigger, Error::Overlong)
            }
            Command::Unknown => Command::Unknown,
            _ => Command::Other(verb),
        },
        None => Command::Unknown,
    }
}

impl Verb {
    /// The verb as text.
    pub fn as_str(&self) -> &str {
        let len = if self.0[3] == 0 { 3 } else { 4 };
        std::str::from_utf8(&self.0[..len]).unwrap_or("?")
    }
}

/// Split off a known verb: leading blanks skipped, verb of 3–4 letters ended by a blank or the
/// end of the line; returns the argument with its surrounding blanks removed.
fn split_verb(line: &[u8]) -> Option<(Verb, &[u8])> {
    let line = numbers::skip_blanks(line);
    let len = line.iter().take_while(|b| b.is_ascii_alphabetic()).count();
    let rest = &line[len..];
    if !(3..=4).contains(&len) || !(rest.is_empty() || rest[0] == b' ' || rest[0] == b'\t') {
        return None;
    }
    let mut verb = [0u8; 4];
    verb[..len].copy_from_slice(&line[..len]);
    verb[..len].make_ascii_uppercase();
    KNOWN_CODES.binary_search(&u32::from_be_bytes(verb)).ok()?;
    Some((Verb(verb), trim_end(numbers::skip_blanks(rest))))
}

fn active(trigger: Trigger, parsed: Result<DataEndpoint, Error>) -> Command {
    match parsed {
        Ok(endpoint) => Command::Active(trigger, endpoint),
        Err(error) => Command::ActiveMalformed(trigger, error),
    }
}

/// `PORT h1,h2,h3,h4,p1,p2`: exactly six numbers and nothing after them.
fn port(argument: &[u8]) -> Result<DataEndpoint, Error> {
    let found = numbers::list(argument)?;
    if !found.rest.is_empty() {
        return Err(Error::Malformed("trailing text"));
    }
    numbers::ipv4_endpoint(&found.values)
}

/// `LPRT af,hal,h1,...,pal,p1,p2` and nothing after it.
fn lprt(argument: &[u8]) -> Result<DataEndpoint, Error> {
    let found = numbers::list(argument)?;
    if !found.rest.is_empty() {
        return Err(Error::Malformed("trailing text"));
    }
    numbers::long_endpoint(&found.values)
}

/// `EPRT <d><af><d><addr><d><port><d>` (RFC 2428 §2): `d` is any character in 33–126 that is
/// not a digit, `af` is 1 (IPv4) or 2 (IPv6), and the address must be of that family.
fn eprt(argument: &[u8]) -> Result<DataEndpoint, Error> {
    let (&delimiter, rest) = argument
        .split_first()
        .ok_or(Error::Malformed("delimiter"))?;
    if !(33..=126).contains(&delimiter) || delimiter.is_ascii_digit() {
        return Err(Error::Malformed("delimiter"));
    }
    let mut fields = rest.split(|&b| b == delimiter);
    let (Some(af), Some(addr), Some(port), Some(tail), None) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return Err(Error::Malformed("delimiter"));
    };
    if !tail.is_empty() {
        return Err(Error::Malformed("trailing text"));
    }
    let addr = std::str::from_utf8(addr).map_err(|_| Error::Malformed("address"))?;
    let addr: IpAddr = match af {
        b"1" => addr.parse::<std::net::Ipv4Addr>().map(IpAddr::V4),
        b"2" => addr.parse::<std::net::Ipv6Addr>().map(IpAddr::V6),
        _ => return Err(Error::Malformed("af")),
    }
    .map_err(|_| Error::Malformed("address"))?;
    let (port, after) = numbers::decimal_port(port)?;
    if !after.is_empty() {
        return Err(Error::Malformed("port"));
    }
    Ok(DataEndpoint { addr, port })
}

fn trim_end(text: &[u8]) -> &[u8] {
    let n = text
        .iter()
        .rev()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    &text[..text.len() - n]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(text: &str) -> DataEndpoint {
        let (addr, port) = text.rsplit_once(':').unwrap();
        let addr = addr.trim_matches(|c| c == '[' || c == ']').parse().unwrap();
        DataEndpoint {
            addr,
            port: port.parse().unwrap(),
        }
    }

    fn active_ok(line: &str, trigger: Trigger, expected: &str) {
        assert_eq!(
            parse(line.as_bytes()),
            Command::Active(trigger, endpoint(expected)),
            "{line:?}"
        );
    }

    fn active_bad(line: &str, trigger: Trigger, field: &'static str) {
        let got = parse(line.as_bytes());
        assert_eq!(
            got,
            Command::ActiveMalformed(trigger, Error::Malformed(field)),
            "{line:?}"
        );
    }

    #[test]
    fn known_verbs_table_is_sorted() {
        assert!(KNOWN_VERBS.windows(2).all(|w| w[0] < w[1]));
        assert!(KNOWN_CODES.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn port_variants() {
        active_ok("PORT 192,168,1,2,4,1", Trigger::Port, "192.168.1.2:1025");
        active_ok("port 192,168,1,2,4,1", Trigger::Port, "192.168.1.2:1025");
        active_ok("  PoRt\t10, 0, 0, 5, 4, 1 ", Trigger::Port, "10.0.0.5:1025");
        active_ok(
            "PORT 010,000,000,005,004,001",
            Trigger::Port,
            "10.0.0.5:1025",
        );
        active_ok("PORT 192,168,1,2,0,21", Trigger::Port, "192.168.1.2:21");
    }

    #[test]
    fn port_malformed() {
        active_bad("PORT 192,168,1,2,256,22", Trigger::Port, "number over 255");
        active_bad("PORT 1,2,3,4,5", Trigger::Port, "number of fields");
        active_bad("PORT 1,2,3,4,5,6,7", Trigger::Port, "number of fields");
        active_bad("PORT 1,2,3,4,5,6,", Trigger::Port, "number");
        active_bad("PORT 1,2,3,4,5,6 please", Trigger::Port, "trailing text");
        active_bad("PORT 1,2,3,4,0,0", Trigger::Port, "port");
        active_bad("PORT 1234", Trigger::Port, "number over 255");
        active_bad("PORT", Trigger::Port, "number");
        active_bad("PORT 114,115", Trigger::Port, "number of fields");
    }

    #[test]
    fn eprt_variants() {
        active_ok(
            "EPRT |1|198.51.100.2|5282|",
            Trigger::Eprt,
            "198.51.100.2:5282",
        );
        active_ok(
            "EPRT |2|2001:db8::1|5282|",
            Trigger::Eprt,
            "[2001:db8::1]:5282",
        );
        active_ok(
            "eprt |2|::ffff:10.0.0.5|1025|",
            Trigger::Eprt,
            "[::ffff:10.0.0.5]:1025",
        );
        active_ok(
            "EPRT !1!198.51.100.2!5282!",
            Trigger::Eprt,
            "198.51.100.2:5282",
        );
        active_ok(
            "EPRT #2#2001:db8::1#65535#",
            Trigger::Eprt,
            "[2001:db8::1]:65535",
        );
    }

    #[test]
    fn eprt_malformed() {
        active_bad("EPRT |1|2001:db8::1|5282|", Trigger::Eprt, "address");
        active_bad("EPRT |2|198.51.100.2|5282|", Trigger::Eprt, "address");
        active_bad("EPRT |3|198.51.100.2|5282|", Trigger::Eprt, "af");
        active_bad("EPRT |1|198.51.100.2|70000|", Trigger::Eprt, "port");
        active_bad("EPRT |1|198.51.100.2|0|", Trigger::Eprt, "port");
        active_bad("EPRT |1|198.51.100.2|5282", Trigger::Eprt, "delimiter");
        active_bad(
            "EPRT |1|198.51.100.2|5282|x",
            Trigger::Eprt,
            "trailing text",
        );
        active_bad("EPRT 1|1|198.51.100.2|5282|", Trigger::Eprt, "delimiter");
        active_bad("EPRT |1|010.0.0.1|5282|", Trigger::Eprt, "address");
        active_bad("EPRT |1|198.51.100.2|+52|", Trigger::Eprt, "port");
        active_bad("EPRT", Trigger::Eprt, "delimiter");
    }

    #[test]
    fn lprt_variants() {
        active_ok(
            "LPRT 4,4,198,51,100,2,2,4,1",
            Trigger::Lprt,
            "198.51.100.2:1025",
        );
        let v6 = "LPRT 6,16,32,1,13,184,0,0,0,0,0,0,0,0,0,0,0,1,2,4,1";
        active_ok(v6, Trigger::Lprt, "[2001:db8::1]:1025");
        active_bad("LPRT 4,4,198,51,100,2,2,4,1,9", Trigger::Lprt, "port");
        active_bad("LPRT 6,4,1,2,3,4,2,4,1", Trigger::Lprt, "hal");
    }

    #[test]
    fn state_commands() {
        assert_eq!(parse(b"EPSV ALL"), Command::EpsvAll);
        assert_eq!(parse(b"epsv all "), Command::EpsvAll);
        assert!(matches!(parse(b"EPSV"), Command::Passive(v) if v.as_str() == "EPSV"));
        assert!(matches!(parse(b"EPSV 2"), Command::Passive(_)));
        assert!(matches!(parse(b"Pasv"), Command::Passive(v) if v.as_str() == "PASV"));
        assert!(matches!(parse(b"LPSV"), Command::Passive(_)));
        assert_eq!(parse(b"AUTH TLS"), Command::Auth);
        assert_eq!(parse(b"ccc"), Command::Ccc);
        assert_eq!(parse(b"REIN"), Command::Rein);
        assert_eq!(parse(b"QUIT"), Command::Quit);
        for transfer in [
            "RETR file.txt",
            "stor x",
            "STOU",
            "APPE y",
            "LIST",
            "NLST -l",
            "MLSD /",
        ] {
            assert!(
                matches!(parse(transfer.as_bytes()), Command::Transfer(_)),
                "{transfer}"
            );
        }
        assert!(matches!(parse(b"MLST x"), Command::Other(_)));
        assert!(matches!(parse(b"CWD /"), Command::Other(v) if v.as_str() == "CWD"));
    }

    #[test]
    fn non_ftp_lines_are_unknown() {
        for line in [
            "GET / HTTP/1.1",
            "POST /x HTTP/1.1",
            "SSH-2.0-OpenSSH_9.2",
            "",
            "   ",
            "PORTX 1,2,3,4,5,6",
            "PORT:1,2,3,4,5,6",
            "RETRIEVE x",
            "227 Entering Passive Mode (1,2,3,4,5,6)",
            "\u{16}\u{3}\u{1}",
        ] {
            assert_eq!(parse(line.as_bytes()), Command::Unknown, "{line:?}");
        }
    }

    #[test]
    fn overlong_lines_keep_their_verb() {
        assert_eq!(
            parse_overlong(b"PORT 1,2,3"),
            Command::ActiveMalformed(Trigger::Port, Error::Overlong)
        );
        assert!(matches!(
            parse_overlong(b"RETR aaaaaaaa"),
            Command::Other(_)
        ));
        assert_eq!(parse_overlong(b"GET /aaaaaaaaaa"), Command::Unknown);
        assert_eq!(
            parse_overlong(b"RET"),
            Command::Unknown,
            "verb cut short is not a verb"
        );
    }
}
