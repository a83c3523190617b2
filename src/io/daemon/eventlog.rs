//! The daemon's log format (`run --log-format text|json`), chosen once at start for the whole
//! process.
//!
//! Owns: [`LogFormat`]; the `env_logger` formats; the clock shift that turns the daemon's
//! monotonic instants into Unix time in JSON events. Formats:
//!
//! - **text, on a terminal or in a file:** `env_logger`'s default header
//!   (`[2026-12-02T04:36:18Z INFO  ftp_alg::io::daemon::apply] ...`), written by our own
//!   format: `env_logger`'s passes every fragment of a message through its indenting writer
//!   (continuation lines indented), which cost more than the message itself. A message here
//!   is one line. (The event lines' wording is `logline`'s, which the lab tests read.)
//! - **text, under systemd** (stderr is the journal: `JOURNAL_STREAM` names its device and
//!   inode): no timestamp (the journal has its own), and the line's priority as a `<N>`
//!   prefix (sd-daemon(3)), which journald strips and files as `PRIORITY`;
//! - **json:** JSON Lines. An event (install, refuse, revoke, ...) is the object
//!   `replay --format json` writes for the same action (`report::daemon_event`: the same
//!   `type` and field names, `"queue"` instead of `"file"`, `time` in seconds since the Unix
//!   epoch), so one tool reads both; every other line is
//!   `{"level":…,"message":…,"time":…,"type":"log"}`. Under systemd the `<N>` prefix is
//!   added too.
//!
//! Does not own the wording of the text event lines (`logline`) or the JSON encoder
//! (`io::report`).

use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::sync::OnceLock;
use std::time::SystemTime;

use crate::io::sys;

/// The target of event records in JSON mode: under `apply`'s, so `RUST_LOG` directives for
/// that module filter events as they filter the text event lines.
pub(crate) const EVENT_TARGET: &str = "ftp_alg::io::daemon::apply::event";

/// `run --log-format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Readable lines (journald-friendly under systemd).
    #[default]
    Text,
    /// JSON Lines.
    Json,
}

/// The choice made at start.
#[derive(Debug, Clone, Copy)]
struct Chosen {
    format: LogFormat,
    /// Unix time minus the monotonic clock, in microseconds.
    shift_micros: u64,
}

static CHOSEN: OnceLock<Chosen> = OnceLock::new();

/// Set the process's log format (the first call wins) and install its line format in
/// `builder`. `to_stderr`: the lines go to stderr (not `--log-file`), which may be the
/// journal.
pub fn configure(builder: &mut env_logger::Builder, format: LogFormat, to_stderr: bool) {
    let chosen = *CHOSEN.get_or_init(|| Chosen {
        format,
        shift_micros: unix_micros().saturating_sub(sys::monotonic_micros()),
    });
    let journal = to_stderr && stderr_is_journal();
    match (chosen.format, journal) {
        (LogFormat::Text, false) => {
            builder.format(text_line);
        }
        (LogFormat::Text, true) => {
            builder.format(|buf, record| {
                writeln!(buf, "<{}>{}", priority(record.level()), record.args())
            });
        }
        (LogFormat::Json, journal) => {
            builder.format(move |buf, record| {
                if journal {
                    write!(buf, "<{}>", priority(record.level()))?;
                }
                writeln!(buf, "{}", json_line(record))
            });
        }
    }
}

/// A text line with `env_logger`'s default header, the message written straight after it.
fn text_line(
    buf: &mut env_logger::fmt::Formatter,
    record: &log::Record<'_>,
) -> std::io::Result<()> {
    let time = buf.timestamp_seconds();
    writeln!(
        buf,
        "[{time} {:<5} {}] {}",
        record.level(),
        module(record),
        record.args()
    )
}

/// The record's module path, as `env_logger`'s own header names it.
fn module<'a>(record: &log::Record<'a>) -> &'a str {
    record.module_path().unwrap_or_else(|| record.target())
}

/// True when the daemon's events are written as JSON.
pub(crate) fn is_json() -> bool {
    CHOSEN.get().is_some_and(|c| c.format == LogFormat::Json)
}

/// What to add to an engine instant (monotonic µs) to get Unix time (µs).
pub(crate) fn shift_micros() -> u64 {
    CHOSEN.get().map_or(0, |c| c.shift_micros)
}

/// A record as one JSON line: events as they are, anything else as a `"log"` object.
fn json_line(record: &log::Record<'_>) -> String {
    if record.target() == EVENT_TARGET {
        return record.args().to_string();
    }
    let time = unix_micros() as f64 / 1e6;
    serde_json::json!({
        "level": record.level().as_str().to_ascii_lowercase(),
        "message": record.args().to_string(),
        "time": time,
        "type": "log",
    })
    .to_string()
}

/// The syslog priority of a level (sd-daemon(3): `<3>` error ... `<7>` debug).
fn priority(level: log::Level) -> u8 {
    match level {
        log::Level::Error => 3,
        log::Level::Warn => 4,
        log::Level::Info => 6,
        log::Level::Debug | log::Level::Trace => 7,
    }
}

/// True when stderr is the stream systemd connected to the journal: `JOURNAL_STREAM` is
/// `DEVICE:INODE` of that stream, and a redirected stderr no longer matches it
/// (systemd.exec(5)).
fn stderr_is_journal() -> bool {
    let Some(wanted) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = wanted.to_str().and_then(|w| w.split_once(':')) else {
        return false;
    };
    let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() else {
        return false;
    };
    let Ok(meta) = std::fs::File::from(fd).metadata() else {
        return false;
    };
    dev.parse() == Ok(meta.dev()) && ino.parse() == Ok(meta.ino())
}

fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a logger with `format` writes for one info record of `module`.
    fn written(
        format: Option<
            fn(&mut env_logger::fmt::Formatter, &log::Record<'_>) -> std::io::Result<()>,
        >,
        module: &'static str,
    ) -> String {
        let out = crate::testkit::writer::SharedWriter::default();
        let mut builder = env_logger::Builder::new();
        builder
            .filter_level(log::LevelFilter::Info)
            .target(env_logger::Target::Pipe(Box::new(out.clone())));
        if let Some(format) = format {
            builder.format(format);
        }
        let logger = builder.build();
        log::Log::log(
            &logger,
            &log::Record::builder()
                .level(log::Level::Info)
                .module_path_static(Some(module))
                .target(module)
                .args(format_args!(
                    "queue 0: install tcp 198.51.100.2 -> 203.0.113.2:50000"
                ))
                .build(),
        );
        out.text()
    }

    #[test]
    fn text_lines_have_env_loggers_default_header() {
        let ours = written(Some(text_line), "ftp_alg::io::daemon::apply");
        let default = written(None, "ftp_alg::io::daemon::apply");
        // The same but for the second the clock may have turned between the two.
        let strip = |line: &str| line.split_once('Z').map(|(_, rest)| rest.to_owned());
        assert_eq!(strip(&ours), strip(&default), "{ours:?} {default:?}");
        assert!(
            ours.ends_with(" INFO  ftp_alg::io::daemon::apply] queue 0: install tcp 198.51.100.2 -> 203.0.113.2:50000\n"),
            "{ours:?}"
        );
        assert_eq!(ours.len(), default.len(), "{ours:?} {default:?}");
    }

    #[test]
    fn priorities_follow_sd_daemon() {
        assert_eq!(priority(log::Level::Error), 3);
        assert_eq!(priority(log::Level::Warn), 4);
        assert_eq!(priority(log::Level::Info), 6);
        assert_eq!(priority(log::Level::Debug), 7);
    }

    #[test]
    fn other_lines_are_log_objects_and_events_pass_as_they_are() {
        let line = json_line(
            &log::Record::builder()
                .level(log::Level::Warn)
                .target("ftp_alg::io::daemon")
                .args(format_args!("queue 0: \"odd\"\nline"))
                .build(),
        );
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["type"], "log");
        assert_eq!(value["level"], "warn");
        assert_eq!(value["message"], "queue 0: \"odd\"\nline");
        assert!(value["time"].as_f64().unwrap() > 1.6e9);
        assert!(!line.contains('\n'));
        let event = json_line(
            &log::Record::builder()
                .target(EVENT_TARGET)
                .args(format_args!("{{\"type\":\"expect\"}}"))
                .build(),
        );
        assert_eq!(event, "{\"type\":\"expect\"}");
    }

    /// The actions of a session with a refusal, a pinhole, a revocation and TLS.
    fn actions() -> Vec<crate::action::Action> {
        use crate::testkit::conversation::Side;
        use crate::testkit::conversation::logged_in;
        let mut c = logged_in("198.51.100.2:40000");
        c.send(Side::Client, b"PORT 192,0,2,99,31,144\r\n")
            .send(Side::Client, b"PASV\r\n")
            .send(
                Side::Server,
                b"227 Entering Passive Mode (203,0,113,2,195,80)\r\n",
            )
            .send(Side::Client, b"REIN\r\n")
            .send(Side::Server, b"220 again\r\n")
            .send(Side::Client, b"AUTH TLS\r\n")
            .send(Side::Server, b"234 go\r\n");
        let mut engine = crate::engine::Engine::new(crate::config::Config::default());
        let mut actions = Vec::new();
        for packet in c.take_packets() {
            engine.handle_packet(packet.time, &packet.bytes);
            while let Some(action) = engine.poll_action() {
                actions.push(action);
            }
        }
        actions
    }

    #[test]
    fn json_events_have_the_fields_replay_writes_for_the_same_action() {
        use crate::io::report::Format;
        use crate::io::report::Record;
        use crate::io::report::Reporter;
        let actions = actions();
        let mut types = Vec::new();
        for action in &actions {
            let mut replay = Reporter::new(Vec::new(), Format::Json);
            replay.record(&Record::Action(action)).unwrap();
            let replay = String::from_utf8(replay.finish().unwrap()).unwrap();
            let mut replay: serde_json::Value = serde_json::from_str(&replay).unwrap();
            let shift = 1_700_000_000_000_000;
            let line = crate::io::report::daemon_event(action, Some(3), shift);
            assert!(!line.contains('\n'), "{line}");
            let mut event: serde_json::Value = serde_json::from_str(&line).unwrap();
            assert_eq!(event["queue"], 3, "{line}");
            assert!(replay.get("queue").is_none());
            // The same object but for the origin and the clock.
            let replay = replay.as_object_mut().unwrap();
            let event = event.as_object_mut().unwrap();
            replay.remove("file");
            event.remove("queue");
            if let Some(time) = replay.remove("time") {
                let shifted = event.remove("time").unwrap().as_f64().unwrap();
                assert!(
                    (shifted - time.as_f64().unwrap() - 1.7e9).abs() < 1e-3,
                    "{line}"
                );
            }
            assert_eq!(event, replay, "{line}");
            types.push(event["type"].as_str().unwrap().to_owned());
        }
        for wanted in ["refuse", "expect", "revoke", "tls"] {
            assert!(
                types.iter().any(|t| t == wanted),
                "no {wanted} in {types:?}"
            );
        }
    }
}
