//! How replay tells people and programs what happened: one [`Record`] per event, rendered as
//! readable text or as JSON Lines (field names are a stable interface; see `docs/replay.md`).

use std::io;
use std::io::Write;
use std::net::SocketAddr;

use serde_json::Value;
use serde_json::json;

use crate::action::Action;
use crate::action::FTPS_ADVICE;
use crate::action::FTPS_DOC;
use crate::action::Note;
use crate::expect::Expectation;
use crate::flow::Direction;
use crate::oracle::Denial;
use crate::oracle::Unused;
use crate::stats::Stats;
use crate::time::Instant;

mod jsonl;

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
    /// The JSON line being written (reused: no allocation per record).
    line: Vec<u8>,
}

impl<W: Write> Reporter<W> {
    /// A reporter writing `format` to `out`.
    pub fn new(out: W, format: Format) -> Self {
        Self {
            out,
            format,
            file: String::new(),
            line: Vec::new(),
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
                if let Record::Summary(summary) = record {
                    return writeln!(self.out, "{}", json_summary(summary));
                }
                self.line.clear();
                jsonl::write(&mut self.line, record, &self.file);
                self.line.push(b'\n');
                self.out.write_all(&self.line)
            }
        }
    }

    /// Flush and return the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
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
                "{} tls      {control}: control channel encrypted, not parsed further; \
                 {FTPS_ADVICE} ({FTPS_DOC})",
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

    /// Every line but the summary is written without `serde_json::Value`: it must be exactly
    /// what `serde_json` writes for the same object (sorted keys, compact, its escaping and
    /// float format). Parsing a line and writing it again gives that rendering.
    #[test]
    fn json_lines_are_what_serde_json_writes() {
        let dir = std::env::temp_dir().join(format!("ftp-alg-jsonl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut files = Vec::new();
        for sample in crate::testkit::samples::all() {
            let path = dir.join(sample.file_name());
            std::fs::write(&path, sample.to_bytes()).unwrap();
            files.push(path);
        }
        files.push(dir.join("missing \"quoted\".pcap"));
        let mut out = Vec::new();
        let config = crate::config::Config::default();
        crate::io::replay::run(&files, &config, Format::Json, &mut out).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let mut types = std::collections::BTreeSet::new();
        for line in String::from_utf8(out).unwrap().lines() {
            let value: Value = serde_json::from_str(line).unwrap();
            assert_eq!(value.to_string(), line);
            types.insert(value["type"].as_str().unwrap().to_owned());
        }
        for seen in [
            "admit", "deny", "error", "expect", "refuse", "revoke", "tls", "unused",
        ] {
            assert!(types.contains(seen), "no {seen} record in {types:?}");
        }
    }

    /// An encrypted session's event points to the FTPS fallback, in both formats.
    #[test]
    fn tls_events_point_to_the_ftps_fallback() {
        let control = crate::flow::Control {
            client: "198.51.100.2:40000".parse().unwrap(),
            server: "203.0.113.2:21".parse().unwrap(),
        };
        let action = Action::Note(Note::Encrypted {
            time: Instant::from_micros(1_000_000),
            control,
        });
        let mut text = Reporter::new(Vec::new(), Format::Text);
        text.record(&Record::Action(&action)).unwrap();
        let out = String::from_utf8(text.finish().unwrap()).unwrap();
        assert_eq!(
            out,
            "00:00:01.000000 tls      198.51.100.2:40000 -> 203.0.113.2:21: control channel \
             encrypted, not parsed further; this session's data connections cannot be opened \
             by ftp-alg; see the FTPS fallback (docs/deploy.md#ftps)\n"
        );
        let mut json = Reporter::new(Vec::new(), Format::Json);
        json.record(&Record::Action(&action)).unwrap();
        let out = String::from_utf8(json.finish().unwrap()).unwrap();
        let value: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(value["type"], "tls");
        assert_eq!(value["see"], "docs/deploy.md#ftps");
        assert_eq!(value["detail"], FTPS_ADVICE);
        assert_eq!(value["control"]["client"], "198.51.100.2:40000");
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
