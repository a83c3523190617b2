//! The JSON Lines rendering of every record but the summary, written straight into a byte
//! buffer: no `serde_json::Value` tree, no map of owned keys, no `to_string` per address.
//!
//! Owns: the byte-exact output `serde_json` gives for the same objects (keys in sorted
//! order, compact, strings escaped and numbers formatted by `serde_json` itself), which the
//! tests check against the `Value` rendering for every record type. Building a `Value` per
//! record took a third of a replay's time (docs/benchmarks.md).

use std::io::Write;
use std::net::IpAddr;
use std::net::SocketAddr;

use super::Record;
use super::direction_name;
use crate::action::Action;
use crate::action::FTPS_ADVICE;
use crate::action::FTPS_DOC;
use crate::action::Note;
use crate::expect::DataKey;
use crate::flow::Control;
use crate::time::Instant;

/// Append `record` (not a summary) as one JSON object, with `"file": file`, to `out`.
pub(super) fn write(out: &mut Vec<u8>, record: &Record<'_>, file: &str) {
    let mut o = Object::open(out);
    match record {
        Record::Action(action) => action_fields(&mut o, action, file),
        Record::Admit {
            time,
            src,
            dst,
            expectation,
        } => {
            o.conn(*src, *dst);
            o.control(&expectation.control);
            o.data(&expectation.key);
            o.str("file", file);
            o.time(*time);
            o.str("trigger", expectation.trigger.as_str());
            o.str("type", "admit");
        }
        Record::Deny {
            time,
            src,
            dst,
            denial,
        } => {
            o.conn(*src, *dst);
            o.str("file", file);
            o.str("reason", denial.as_str());
            o.time(*time);
            o.str("type", "deny");
        }
        Record::Unused(unused) => {
            let e = &unused.expectation;
            o.control(&e.control);
            o.data(&e.key);
            o.str("file", file);
            o.str("mode", e.mode.as_str());
            o.time(unused.time);
            o.str("trigger", e.trigger.as_str());
            o.str("type", "unused");
        }
        Record::Error { message } => {
            o.str("file", file);
            o.str("message", message);
            o.str("type", "error");
        }
        // Rendered by `Value` (once per run); never passed here.
        Record::Summary(_) => {}
    }
    o.close();
}

fn action_fields(o: &mut Object<'_>, action: &Action, file: &str) {
    match action {
        Action::Install(e) => {
            o.control(&e.control);
            o.data(&e.key);
            o.str("file", file);
            o.key("lifetime");
            o.f64(e.lifetime.as_secs_f64());
            o.str("mode", e.mode.as_str());
            o.time(e.created);
            o.str("trigger", e.trigger.as_str());
            o.str("type", "expect");
        }
        Action::Refuse(r) => {
            o.control(&r.control);
            o.str("detail", &r.reason.to_string());
            o.key("endpoint");
            match r.endpoint {
                Some(endpoint) => o.display(endpoint),
                None => o.out.extend_from_slice(b"null"),
            }
            o.str("file", file);
            o.str("reason", r.reason.as_str());
            o.time(r.time);
            o.str("trigger", r.trigger.as_str());
            o.str("type", "refuse");
        }
        Action::Release(r) => {
            o.str("file", file);
            o.key("held");
            o.u64(r.id.0);
            o.key("rewritten");
            o.out
                .extend_from_slice(if r.rewritten { b"true" } else { b"false" });
            o.str("type", "release");
        }
        Action::Remove(r) => {
            o.control(&r.expectation.control);
            o.data(&r.expectation.key);
            o.str("file", file);
            o.str("reason", r.reason.as_str());
            o.time(r.time);
            o.str("trigger", r.expectation.trigger.as_str());
            o.str("type", "revoke");
        }
        Action::Note(Note::Conflict {
            time,
            control,
            direction,
        }) => {
            o.control(control);
            o.str("direction", direction_name(*direction));
            o.str("file", file);
            o.time(*time);
            o.str("type", "conflict");
        }
        Action::Note(Note::Encrypted { time, control }) => {
            o.control(control);
            o.str("detail", FTPS_ADVICE);
            o.str("file", file);
            o.str("see", FTPS_DOC);
            o.time(*time);
            o.str("type", "tls");
        }
        Action::Note(Note::Poisoned {
            time,
            control,
            reason,
        }) => {
            o.control(control);
            o.str("file", file);
            o.str("reason", reason.as_str());
            o.time(*time);
            o.str("type", "poisoned");
        }
    }
}

/// One JSON object being written; the caller gives keys in sorted order.
struct Object<'a> {
    out: &'a mut Vec<u8>,
    fields: usize,
}

impl<'a> Object<'a> {
    fn open(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Self { out, fields: 0 }
    }

    fn close(self) {
        self.out.push(b'}');
    }

    /// `"name":`, after a comma unless it is the first field. Names need no escaping.
    fn key(&mut self, name: &str) {
        if self.fields > 0 {
            self.out.push(b',');
        }
        self.fields += 1;
        self.out.push(b'"');
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    fn str(&mut self, name: &str, value: &str) {
        self.key(name);
        // NOTE(unwrap): serializing a string into a Vec cannot fail.
        serde_json::to_writer(&mut *self.out, value).expect("a string into a Vec");
    }

    fn u64(&mut self, value: u64) {
        // NOTE(unwrap): serializing a number into a Vec cannot fail.
        serde_json::to_writer(&mut *self.out, &value).expect("a number into a Vec");
    }

    /// A float as `serde_json` writes it (`null` if not finite, as `Number::from_f64`).
    fn f64(&mut self, value: f64) {
        // NOTE(unwrap): serializing a number into a Vec cannot fail.
        serde_json::to_writer(&mut *self.out, &value).expect("a number into a Vec");
    }

    fn time(&mut self, time: Instant) {
        self.key("time");
        self.f64(time.as_secs_f64());
    }

    /// A quoted `Display` value that needs no escaping (addresses).
    fn display(&mut self, value: impl std::fmt::Display) {
        // NOTE(unwrap): writing into a Vec cannot fail.
        write!(self.out, "\"{value}\"").expect("into a Vec");
    }

    fn addr(&mut self, name: &str, value: SocketAddr) {
        self.key(name);
        match value {
            SocketAddr::V4(v4) => {
                self.out.push(b'"');
                dotted(self.out, v4.ip().octets());
                self.out.push(b':');
                decimal(self.out, v4.port());
                self.out.push(b'"');
            }
            SocketAddr::V6(_) => self.display(value),
        }
    }

    fn ip(&mut self, name: &str, value: IpAddr) {
        self.key(name);
        match value {
            IpAddr::V4(v4) => {
                self.out.push(b'"');
                dotted(self.out, v4.octets());
                self.out.push(b'"');
            }
            IpAddr::V6(_) => self.display(value),
        }
    }

    fn control(&mut self, c: &Control) {
        self.key("control");
        let mut inner = Object::open(self.out);
        inner.addr("client", c.client);
        inner.addr("server", c.server);
        inner.close();
    }

    fn conn(&mut self, src: SocketAddr, dst: SocketAddr) {
        self.key("conn");
        let mut inner = Object::open(self.out);
        inner.addr("dst", dst);
        inner.addr("src", src);
        inner.close();
    }

    fn data(&mut self, key: &DataKey) {
        self.key("data");
        let mut inner = Object::open(self.out);
        inner.key("dport");
        inner.u64(u64::from(key.dport.get()));
        inner.ip("dst", key.dst);
        inner.str("proto", "tcp");
        inner.ip("src", key.src);
        inner.close();
    }
}

/// An IPv4 address as `Ipv4Addr`'s `Display` writes it, without the formatting machinery
/// (addresses were a tenth of a replay's instructions).
fn dotted(out: &mut Vec<u8>, octets: [u8; 4]) {
    for (i, octet) in octets.into_iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        decimal(out, u16::from(octet));
    }
}

/// `n` in decimal, as `Display` writes it.
fn decimal(out: &mut Vec<u8>, n: u16) {
    let mut digits = [0u8; 5];
    let mut at = digits.len();
    let mut n = n;
    loop {
        at -= 1;
        // NOTE: `n % 10` is below 10, so the digit is ASCII.
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_as_display_writes_them() {
        for text in [
            "0.0.0.0:0",
            "198.51.100.2:21",
            "255.255.255.255:65535",
            "10.0.0.1:1024",
        ] {
            let addr: SocketAddr = text.parse().unwrap();
            let mut out = Vec::new();
            Object::open(&mut out).addr("a", addr);
            assert_eq!(out, format!("{{\"a\":\"{addr}\"").into_bytes());
            let mut out = Vec::new();
            Object::open(&mut out).ip("a", addr.ip());
            assert_eq!(out, format!("{{\"a\":\"{}\"", addr.ip()).into_bytes());
        }
        for port in 0..=u16::MAX {
            let mut out = Vec::new();
            decimal(&mut out, port);
            assert_eq!(out, port.to_string().into_bytes());
        }
    }
}
