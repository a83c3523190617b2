//! How replay tells people and programs what happened: one [`Record`] per event, rendered as
//! readable text or as JSON Lines (field names are a stable interface; see `docs/replay.md`).

use std::io;
use std::io::Write;
use std::net::SocketAddr;

use serde_json::Value;
use serde_json::json;

use crate::action::Action;
use crate::action::Note;
use crate::expect::DataKey;
use crate::expect::Expectation;
use crate::flow::Control;
use crate::flow::Direction;
use crate::oracle::Denial;
use crate::oracle::Unused;
use crate::stats::Stats;
use crate::time::Instant;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// For people: one line per event and a readable summary.
    Text,
    /// JSON Lines: one object per event and a final summary object.
    Json,
}

/// One thing worth reporting.
#[derive(Debug)]
pub enum Record<'a> {
    /// An engine action (expect, refuse, revoke, notes).
    Action(&'a Action),
    /// A data connection admitted by an expectation.
    Admit {
        /// When its SYN was seen.
        time: Instant,
        /// Its source.
        src: SocketAddr,
        /// Its destination.
        dst: SocketAddr,
        /// The expectation it consumed.
        expectation: &'a Expectation,
    },
    /// A connection to an announced endpoint that was not admitted.
    Deny {
        /// When its SYN was seen.
        time: Instant,
        /// Its source.
        src: SocketAddr,
        /// Its destination.
        dst: SocketAddr,
        /// Why.
        denial: Denial,
    },
    /// An expectation that admitted nothing.
    Unused(&'a Unused),
    /// A capture file could not be read to its end.
    Error {
        /// The message (names the file and the offset).
        message: String,
    },
    /// The totals.
    Summary(&'a Summary),
}

/// Totals over every file replayed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Files given.
    pub files: u64,
    /// Files that could not be read to their end.
    pub file_errors: u64,
    /// Capture records read.
    pub packets: u64,
    /// Records that held no IP datagram.
    pub non_ip: u64,
    /// Data connections admitted.
    pub admitted: u64,
    /// Connections to announced endpoints that were not admitted.
    pub denied: u64,
    /// Expectations that admitted nothing.
    pub unused: u64,
    /// The engines' counters, summed.
    pub engine: Stats,
}

/// Writes records in one format.
pub struct Reporter<W: Write> {
    out: W,
    format: Format,
    file: String,
}

impl<W: Write> Reporter<W> {
    /// A reporter writing `format` to `out`.
    pub fn new(out: W, format: Format) -> Self {
        Self {
            out,
            format,
            file: String::new(),
        }
    }

    /// Records from now on concern `file`.
    pub fn start_file(&mut self, file: &str) -> io::Result<()> {
        self.file = file.to_owned();
        match self.format {
            Format::Text => writeln!(self.out, "== {file}"),
            Format::Json => Ok(()),
        }
    }

    /// Write one record.
    pub fn record(&mut self, record: &Record<'_>) -> io::Result<()> {
        match self.format {
            Format::Text => {
                let line = text(record);
                writeln!(self.out, "{line}")
            }
            Format::Json => {
                let mut value = json(record);
                if let (Some(object), false) =
                    (value.as_object_mut(), matches!(record, Record::Summary(_)))
                {
                    object.insert("file".into(), Value::String(self.file.clone()));
                }
                writeln!(self.out, "{value}")
            }
        }
    }

    /// Flush and return the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

fn json(record: &Record<'_>) -> Value {
    match record {
        Record::Action(action) => json_action(action),
        Record::Admit {
            time,
            src,
            dst,
            expectation,
        } => json!({
            "type": "admit", "time": secs(*time), "conn": conn(*src, *dst),
            "control": control(&expectation.control), "trigger": expectation.trigger.as_str(),
            "data": data(&expectation.key),
        }),
        Record::Deny {
            time,
            src,
            dst,
            denial,
        } => json!({
            "type": "deny", "time": secs(*time), "conn": conn(*src, *dst), "reason": denial.as_str(),
        }),
        Record::Unused(unused) => json!({
            "type": "unused", "time": secs(unused.time), "control": control(&unused.expectation.control),
            "trigger": unused.expectation.trigger.as_str(), "mode": unused.expectation.mode.as_str(),
            "data": data(&unused.expectation.key),
        }),
        Record::Error { message } => json!({ "type": "error", "message": message }),
        Record::Summary(summary) => json_summary(summary),
    }
}

fn json_action(action: &Action) -> Value {
    match action {
        Action::Install(e) => json!({
            "type": "expect", "time": secs(e.created), "control": control(&e.control),
            "trigger": e.trigger.as_str(), "mode": e.mode.as_str(), "data": data(&e.key),
            "lifetime": e.lifetime.as_secs_f64(),
        }),
        Action::Refuse(r) => json!({
            "type": "refuse", "time": secs(r.time), "control": control(&r.control),
            "trigger": r.trigger.as_str(), "reason": r.reason.as_str(),
            "detail": r.reason.to_string(), "endpoint": r.endpoint.map(|e| e.to_string()),
        }),
        Action::Release(r) => json!({
            "type": "release", "held": r.id.0, "rewritten": r.rewritten,
        }),
        Action::Remove(r) => json!({
            "type": "revoke", "time": secs(r.time), "control": control(&r.expectation.control),
            "trigger": r.expectation.trigger.as_str(), "data": data(&r.expectation.key),
            "reason": r.reason.as_str(),
        }),
        Action::Note(Note::Conflict {
            time,
            control: c,
            direction,
        }) => json!({
            "type": "conflict", "time": secs(*time), "control": control(c), "direction": direction_name(*direction),
        }),
        Action::Note(Note::Encrypted { time, control: c }) => json!({
            "type": "tls", "time": secs(*time), "control": control(c),
        }),
        Action::Note(Note::Poisoned {
            time,
            control: c,
            reason,
        }) => json!({
            "type": "poisoned", "time": secs(*time), "control": control(c), "reason": reason.as_str(),
        }),
    }
}

fn json_summary(summary: &Summary) -> Value {
    let mut value = json!({
        "type": "summary", "files": summary.files, "file_errors": summary.file_errors,
        "packets": summary.packets, "non_ip": summary.non_ip,
        "control_connections": summary.engine.control_connections,
        "expectations": summary.engine.expectations, "refused": summary.engine.refused,
        "admitted": summary.admitted, "denied": summary.denied, "unused": summary.unused,
        "tls_control": summary.engine.tls_control, "poisoned": summary.engine.poisoned,
    });
    let counters: serde_json::Map<String, Value> = summary
        .engine
        .fields()
        .into_iter()
        .map(|(name, n)| (name.to_owned(), Value::from(n)))
        .collect();
    if let Some(object) = value.as_object_mut() {
        object.insert("counters".into(), Value::Object(counters));
    }
    value
}

fn text(record: &Record<'_>) -> String {
    match record {
        Record::Action(action) => text_action(action),
        Record::Admit {
            time,
            src,
            dst,
            expectation: e,
        } => {
            format!(
                "{} admit    {src} -> {dst}  ({} on {})",
                clock(*time),
                e.trigger,
                e.control
            )
        }
        Record::Deny {
            time,
            src,
            dst,
            denial,
        } => {
            format!(
                "{} deny     {src} -> {dst}: {}",
                clock(*time),
                denial.as_str()
            )
        }
        Record::Unused(u) => {
            let e = &u.expectation;
            format!(
                "{} unused   {}  ({} on {})",
                clock(u.time),
                e.key,
                e.trigger,
                e.control
            )
        }
        Record::Error { message } => format!("error: {message}"),
        Record::Summary(summary) => text_summary(summary),
    }
}

fn text_action(action: &Action) -> String {
    match action {
        Action::Install(e) => format!(
            "{} expect   {} for {}s  ({} {} on {})",
            clock(e.created),
            e.key,
            e.lifetime.as_secs_f64(),
            e.trigger,
            e.mode,
            e.control
        ),
        Action::Refuse(r) => {
            let endpoint = r
                .endpoint
                .map(|e| format!(" naming {e}"))
                .unwrap_or_default();
            format!(
                "{} refuse   {}{endpoint} on {}: {}",
                clock(r.time),
                r.trigger,
                r.control,
                r.reason
            )
        }
        Action::Remove(r) => {
            let e = &r.expectation;
            format!(
                "{} revoke   {}  ({} on {}): {}",
                clock(r.time),
                e.key,
                e.trigger,
                e.control,
                r.reason.as_str()
            )
        }
        Action::Note(note) => text_note(note),
        Action::Release(r) => format!(
            "release  held datagram {} (rewritten: {})",
            r.id.0, r.rewritten
        ),
    }
}

fn text_note(note: &Note) -> String {
    match note {
        Note::Conflict {
            time,
            control,
            direction,
        } => format!(
            "{} conflict {control}: retransmitted bytes differ ({}); first copy kept",
            clock(*time),
            direction_name(*direction)
        ),
        Note::Encrypted { time, control } => {
            format!(
                "{} tls      {control}: control channel encrypted; not parsed further",
                clock(*time)
            )
        }
        Note::Poisoned {
            time,
            control,
            reason,
        } => {
            format!(
                "{} poisoned {control}: {}; not parsed further",
                clock(*time),
                reason.as_str()
            )
        }
    }
}

fn text_summary(s: &Summary) -> String {
    let e = &s.engine;
    let mut out = format!(
        "summary: {} file(s) ({} unreadable), {} packets ({} not IP)\n\
         \x20 {} control connection(s): {} expectation(s), {} admitted, {} unused; {} refused; {} denied\n\
         \x20 {} encrypted (AUTH TLS), {} not FTP (poisoned)\n  counters:",
        s.files,
        s.file_errors,
        s.packets,
        s.non_ip,
        e.control_connections,
        e.expectations,
        s.admitted,
        s.unused,
        e.refused,
        s.denied,
        e.tls_control,
        e.poisoned
    );
    for (name, value) in e.fields() {
        out.push_str(&format!(" {name}={value}"));
    }
    out
}

fn secs(time: Instant) -> Value {
    serde_json::Number::from_f64(time.as_secs_f64()).map_or(Value::Null, Value::Number)
}

/// Wall-clock time of day (UTC) with microseconds, from seconds since the Unix epoch.
fn clock(time: Instant) -> String {
    let micros = time.as_micros();
    let day = micros / 1_000_000 % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:06}",
        day / 3600,
        day / 60 % 60,
        day % 60,
        micros % 1_000_000
    )
}

fn control(c: &Control) -> Value {
    json!({ "client": c.client.to_string(), "server": c.server.to_string() })
}

fn conn(src: SocketAddr, dst: SocketAddr) -> Value {
    json!({ "src": src.to_string(), "dst": dst.to_string() })
}

fn data(key: &DataKey) -> Value {
    json!({ "proto": "tcp", "src": key.src.to_string(), "dst": key.dst.to_string(), "dport": key.dport.get() })
}

fn direction_name(direction: Direction) -> &'static str {
    match direction {
        Direction::Original => "original",
        Direction::Reply => "reply",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_is_time_of_day() {
        assert_eq!(
            clock(Instant::from_micros(86_400_000_000 + 3_723_000_042)),
            "01:02:03.000042"
        );
    }

    #[test]
    fn summary_lines() {
        let summary = Summary {
            files: 2,
            packets: 10,
            admitted: 1,
            ..Summary::default()
        };
        let mut reporter = Reporter::new(Vec::new(), Format::Json);
        reporter.record(&Record::Summary(&summary)).unwrap();
        let out = String::from_utf8(reporter.finish().unwrap()).unwrap();
        let value: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(value["type"], "summary");
        assert_eq!(value["files"], 2);
        assert_eq!(value["admitted"], 1);
        assert_eq!(value["counters"]["packets"], 0);
        assert!(value.get("file").is_none());
        let mut text = Reporter::new(Vec::new(), Format::Text);
        text.record(&Record::Summary(&summary)).unwrap();
        let out = String::from_utf8(text.finish().unwrap()).unwrap();
        assert!(
            out.starts_with("summary: 2 file(s) (0 unreadable), 10 packets"),
            "{out}"
        );
    }
}
