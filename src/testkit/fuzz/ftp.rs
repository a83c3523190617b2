//! The `ftp_parsers` target: the command parser, the reply parser and the number parser
//! (`src/ftp/command.rs`, `reply.rs`, `numbers.rs`) on one arbitrary line.
//!
//! Invariants: whatever parses as an endpoint (its port non-zero by type) parses again to the
//! same endpoint once written in the canonical form of its line; a PORT or 227 names an IPv4
//! address; a line cut short never yields an endpoint; reply codes are three digits 1xx–6xx;
//! every "rest" a parser returns is a suffix of its input; number lists hold 1–21 values.

use std::net::IpAddr;

use crate::ftp::DataEndpoint;
use crate::ftp::Trigger;
use crate::ftp::command;
use crate::ftp::command::Command;
use crate::ftp::numbers;
use crate::ftp::reply;

/// The harness (see the module doc).
pub fn ftp_parsers(line: &[u8]) {
    check_command(line);
    check_reply(line);
    check_numbers(line);
}

fn check_command(line: &[u8]) {
    let parsed = command::parse(line);
    match parsed {
        Command::Active(trigger, endpoint) => {
            if trigger == Trigger::Port {
                assert!(endpoint.addr.is_ipv4(), "PORT named {endpoint}");
            }
            let canonical = active_line(trigger, endpoint);
            assert_eq!(
                command::parse(canonical.as_bytes()),
                Command::Active(trigger, endpoint),
                "{canonical}"
            );
        }
        Command::ActiveMalformed(trigger, _) => {
            assert!(matches!(
                trigger,
                Trigger::Port | Trigger::Eprt | Trigger::Lprt
            ));
        }
        _ => {}
    }
    let overlong = command::parse_overlong(line);
    assert!(!matches!(overlong, Command::Active(..)), "{overlong:?}");
    if parsed == Command::Unknown {
        assert_eq!(overlong, Command::Unknown);
    }
    if let Command::Other(verb) | Command::Passive(verb) | Command::Transfer(verb) = parsed {
        assert!((3..=4).contains(&verb.as_str().len()), "{verb:?}");
    }
}

/// The endpoint written back as the line that announces it.
fn active_line(trigger: Trigger, endpoint: DataEndpoint) -> String {
    let port = endpoint.port.get();
    let (p1, p2) = (port >> 8, port & 0xff);
    match (trigger, endpoint.addr) {
        (Trigger::Port, IpAddr::V4(a)) => {
            let [a, b, c, d] = a.octets();
            format!("PORT {a},{b},{c},{d},{p1},{p2}")
        }
        (Trigger::Eprt, IpAddr::V4(a)) => format!("EPRT |1|{a}|{port}|"),
        (Trigger::Eprt, IpAddr::V6(a)) => format!("EPRT |2|{a}|{port}|"),
        (_, addr) => format!("LPRT {}", long_numbers(addr, port)),
    }
}

/// `af,hal,h1,...,pal,p1,p2` (RFC 1639).
fn long_numbers(addr: IpAddr, port: u16) -> String {
    let (af, octets) = match addr {
        IpAddr::V4(a) => (4, a.octets().to_vec()),
        IpAddr::V6(a) => (6, a.octets().to_vec()),
    };
    let mut fields = vec![af, octets.len() as u16];
    fields.extend(octets.iter().map(|&o| u16::from(o)));
    fields.extend([2, port >> 8, port & 0xff]);
    let text: Vec<String> = fields.iter().map(u16::to_string).collect();
    text.join(",")
}

fn check_reply(line: &[u8]) {
    if let Some(parsed) = reply::parse_line(line) {
        assert!((100..700).contains(&parsed.code.0), "{:?}", parsed.code);
        assert!(line.ends_with(parsed.text));
    }
    let text = reply::parse_line(line).map_or(line, |l| l.text);
    if let Ok(endpoint) = reply::passive_227(text) {
        let IpAddr::V4(addr) = endpoint.addr else {
            panic!("227 named {endpoint}");
        };
        let [a, b, c, d] = addr.octets();
        let port = endpoint.port.get();
        let canonical = format!(
            "Entering Passive Mode ({a},{b},{c},{d},{},{}).",
            port >> 8,
            port & 0xff
        );
        assert_eq!(reply::passive_227(canonical.as_bytes()), Ok(endpoint));
    }
    if let Ok(endpoint) = reply::long_passive_228(text) {
        let canonical = format!(
            "Entering Long Passive Mode ({})",
            long_numbers(endpoint.addr, endpoint.port.get())
        );
        assert_eq!(reply::long_passive_228(canonical.as_bytes()), Ok(endpoint));
    }
    if let Ok(port) = reply::extended_passive_229(text) {
        let canonical = format!("Entering Extended Passive Mode (|||{port}|)");
        assert_eq!(reply::extended_passive_229(canonical.as_bytes()), Ok(port));
    }
}

fn check_numbers(text: &[u8]) {
    if let Ok(found) = numbers::list(text) {
        assert!((1..=21).contains(&found.values.len()));
        assert!(text.ends_with(found.rest));
        if let Ok(endpoint) = numbers::ipv4_endpoint(&found.values) {
            assert_eq!(found.values.len(), 6);
            assert!(endpoint.addr.is_ipv4());
        }
        if let Ok(endpoint) = numbers::long_endpoint(&found.values) {
            let expected = if endpoint.addr.is_ipv4() { 9 } else { 21 };
            assert_eq!(found.values.len(), expected);
        }
    }
    if let Ok(values) = numbers::scan(text, |_| true) {
        assert!((1..=21).contains(&values.len()));
    }
    if let Ok((port, rest)) = numbers::decimal_port(text) {
        assert!(text.ends_with(rest));
        let digits = &text[..text.len() - rest.len()];
        let value = digits.iter().try_fold(0u32, |acc, &d| {
            assert!(d.is_ascii_digit());
            acc.checked_mul(10)?.checked_add(u32::from(d - b'0'))
        });
        assert_eq!(value, Some(u32::from(port.get())));
        assert!(!rest.first().is_some_and(u8::is_ascii_digit));
    }
    let skipped = numbers::skip_blanks(text);
    assert!(text.ends_with(skipped));
    assert!(!matches!(skipped.first(), Some(b' ' | b'\t')));
}
