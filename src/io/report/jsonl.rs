//! The JSON Lines rendering of every record but the summary, written straight into a byte
//! buffer: no `serde_json::Value` tree, no map of owned keys, no `to_string` per address.
//!
//! Owns: the byte-exact output `serde_json` gives for the same objects (keys in sorted
//! order, compact; a string that needs escaping and every float go through `serde_json`
//! itself, addresses and integers are written digit by digit as `Display` writes them), which
//! the tests check against the `Value` rendering for every record type, and against
//! `Display` and `serde_json` for every address and string shape. Building a `Value` per
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
use crate::addr_text;
use crate::expect::DataKey;
use crate::flow::Control;
use crate::time::Instant;

/// Where a record comes from: a capture (replay's `"file"`) or one of the daemon's queues
/// (`"queue"`, placed where `"file"` would be: the daemon's lines are not byte-compared with
/// `serde_json`'s, and a reader does not care about the order of keys).
#[derive(Debug, Clone, Copy)]
enum Origin<'a> {
    File(&'a str),
    Queue(Option<u16>),
}

/// Append `record` (not a summary) as one JSON object, with `"file": file`, to `out`.
pub(super) fn write(out: &mut Vec<u8>, record: &Record<'_>, file: &str) {
    let mut o = Object::open(out);
    match record {
        Record::Action(action) => action_fields(&mut o, action, Origin::File(file)),
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
            o.word("trigger", expectation.trigger.as_str());
            o.word("type", "admit");
        }
        Record::Deny {
            time,
            src,
            dst,
            denial,
        } => {
            o.conn(*src, *dst);
            o.str("file", file);
            o.word("reason", denial.as_str());
            o.time(*time);
            o.word("type", "deny");
        }
        Record::Unused(unused) => {
            let e = &unused.expectation;
            o.control(&e.control);
            o.data(&e.key);
            o.str("file", file);
            o.word("mode", e.mode.as_str());
            o.time(unused.time);
            o.word("trigger", e.trigger.as_str());
            o.word("type", "unused");
        }
        Record::Error { message } => {
            o.str("file", file);
            o.str("message", message);
            o.word("type", "error");
        }
        // Rendered by `Value` (once per run); never passed here.
        Record::Summary(_) => {}
    }
    o.close();
}

/// Append the daemon's event for `action` to `out`: the object replay writes for it, with
/// `"queue": queue` (when known) in place of `"file"`, and its time moved by `shift_micros`
/// (the daemon's clock is monotonic since boot; shifted, it is seconds since the Unix epoch,
/// as a capture's timestamps are).
pub(super) fn write_event(
    out: &mut Vec<u8>,
    action: &Action,
    queue: Option<u16>,
    shift_micros: u64,
) {
    let mut o = Object::open(out);
    o.shift = shift_micros;
    action_fields(&mut o, action, Origin::Queue(queue));
    o.close();
}

fn action_fields(o: &mut Object<'_>, action: &Action, origin: Origin<'_>) {
    match action {
        Action::Install(e) => {
            o.control(&e.control);
            o.data(&e.key);
            o.origin(origin);
            o.key("lifetime");
            o.f64(e.lifetime.as_secs_f64());
            o.word("mode", e.mode.as_str());
            o.time(e.created);
            o.word("trigger", e.trigger.as_str());
            o.word("type", "expect");
        }
        Action::Refuse(r) => {
            o.control(&r.control);
            o.str("detail", &r.reason.to_string());
            o.key("endpoint");
            match r.endpoint {
                Some(endpoint) => o.display(endpoint),
                None => o.out.extend_from_slice(b"null"),
            }
            o.origin(origin);
            o.word("reason", r.reason.as_str());
            o.time(r.time);
            o.word("trigger", r.trigger.as_str());
            o.word("type", "refuse");
        }
        Action::Release(r) => {
            o.origin(origin);
            o.key("held");
            o.u64(r.id.0);
            o.key("rewritten");
            o.out
                .extend_from_slice(if r.rewritten { b"true" } else { b"false" });
            o.word("type", "release");
        }
        Action::Remove(r) => {
            o.control(&r.expectation.control);
            o.data(&r.expectation.key);
            o.origin(origin);
            o.word("reason", r.reason.as_str());
            o.time(r.time);
            o.word("trigger", r.expectation.trigger.as_str());
            o.word("type", "revoke");
        }
        Action::Note(Note::Conflict {
            time,
            control,
            direction,
        }) => {
            o.control(control);
            o.word("direction", direction_name(*direction));
            o.origin(origin);
            o.time(*time);
            o.word("type", "conflict");
        }
        Action::Note(Note::Encrypted { time, control }) => {
            o.control(control);
            o.str("detail", FTPS_ADVICE);
            o.origin(origin);
            o.str("see", FTPS_DOC);
            o.time(*time);
            o.word("type", "tls");
        }
        Action::Note(Note::Poisoned {
            time,
            control,
            reason,
        }) => {
            o.control(control);
            o.origin(origin);
            o.word("reason", reason.as_str());
            o.time(*time);
            o.word("type", "poisoned");
        }
    }
}

/// One JSON object being written; the caller gives keys in sorted order.
struct Object<'a> {
    out: &'a mut Vec<u8>,
    fields: usize,
    /// Added to every `"time"` (microseconds).
    shift: u64,
}

/// Room reserved when an object opens: every record this module writes fits, so the pushes
/// below do not grow the buffer one by one.
const RECORD_ROOM: usize = 512;

impl<'a> Object<'a> {
    fn open(out: &'a mut Vec<u8>) -> Self {
        out.reserve(RECORD_ROOM);
        out.push(b'{');
        Self {
            out,
            fields: 0,
            shift: 0,
        }
    }

    fn close(self) {
        self.out.push(b'}');
    }

    /// `"name":`, after a comma unless it is the first field. Names need no escaping.
    // Always: the names are constants, which then copy without a `memcpy` call.
    #[inline(always)]
    fn key(&mut self, name: &str) {
        if self.fields > 0 {
            self.out.push(b',');
        }
        self.fields += 1;
        self.out.push(b'"');
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    #[inline]
    fn str(&mut self, name: &str, value: &str) {
        self.key(name);
        string(self.out, value);
    }

    /// A string of the output's vocabulary (record types, triggers, modes, reasons): plain
    /// ASCII that needs no escaping, so it is not scanned for escapes.
    // Always: the names are constants, which then copy without a `memcpy` call.
    #[inline(always)]
    fn word(&mut self, name: &str, value: &'static str) {
        debug_assert!(
            value
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
        );
        self.key(name);
        self.out.push(b'"');
        self.out.extend_from_slice(value.as_bytes());
        self.out.push(b'"');
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
        let time = Instant::from_micros(time.as_micros().saturating_add(self.shift));
        self.f64(time.as_secs_f64());
    }

    fn origin(&mut self, origin: Origin<'_>) {
        match origin {
            Origin::File(file) => self.str("file", file),
            Origin::Queue(Some(queue)) => {
                self.key("queue");
                self.u64(u64::from(queue));
            }
            Origin::Queue(None) => {}
        }
    }

    /// A quoted `Display` value that needs no escaping (addresses).
    fn display(&mut self, value: impl std::fmt::Display) {
        // NOTE(unwrap): writing into a Vec cannot fail.
        write!(self.out, "\"{value}\"").expect("into a Vec");
    }

    #[inline]
    fn addr(&mut self, name: &str, value: SocketAddr) {
        self.key(name);
        self.out.push(b'"');
        if !addr_text::socket(self.out, value) {
            // NOTE(unwrap): writing into a Vec cannot fail.
            write!(self.out, "{value}").expect("into a Vec");
        }
        self.out.push(b'"');
    }

    #[inline]
    fn ip(&mut self, name: &str, value: IpAddr) {
        self.key(name);
        self.out.push(b'"');
        if !addr_text::ip(self.out, value) {
            // NOTE(unwrap): writing into a Vec cannot fail.
            write!(self.out, "{value}").expect("into a Vec");
        }
        self.out.push(b'"');
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
        addr_text::decimal(inner.out, key.dport.get());
        inner.ip("dst", key.dst);
        inner.word("proto", "tcp");
        inner.ip("src", key.src);
        inner.close();
    }
}

/// A JSON string as `serde_json` writes it: as is between quotes when nothing in it needs
/// escaping (every string of a record but a file name or a message, which are checked the same
/// way), else through `serde_json`.
fn string(out: &mut Vec<u8>, value: &str) {
    // serde_json escapes the control characters, the quote and the backslash; nothing else.
    if value.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(value.as_bytes());
        out.push(b'"');
    } else {
        // NOTE(unwrap): serializing a string into a Vec cannot fail.
        serde_json::to_writer(&mut *out, value).expect("a string into a Vec");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `addr`, and its address alone, are written as `Display` writes them (every shape is
    /// checked in `addr_text`; here, the quoting and the fallback).
    fn assert_written_as_display(addr: SocketAddr) {
        let mut out = Vec::new();
        Object::open(&mut out).addr("a", addr);
        assert_eq!(out, format!("{{\"a\":\"{addr}\"").into_bytes());
        let mut out = Vec::new();
        Object::open(&mut out).ip("a", addr.ip());
        assert_eq!(out, format!("{{\"a\":\"{}\"", addr.ip()).into_bytes());
    }

    #[test]
    fn addresses_as_display_writes_them() {
        for text in [
            "198.51.100.2:21",
            "[2001:db8::2]:21",
            "[::ffff:192.0.2.1]:21",
            "[fe80::1%7]:21",
        ] {
            assert_written_as_display(text.parse().unwrap());
        }
    }

    #[test]
    fn strings_as_serde_json_writes_them() {
        for text in [
            "",
            "tcp",
            "/tmp/a b/\u{e9}.pcap",
            "q\"uote",
            "back\\slash",
            "tab\t",
            "\u{7f}del",
        ] {
            let mut out = Vec::new();
            string(&mut out, text);
            assert_eq!(out, serde_json::to_vec(text).unwrap(), "{text:?}");
        }
    }
}
