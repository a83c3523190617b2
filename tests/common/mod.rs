//! Shared helpers for integration tests: replay a capture to JSON events, and compare events
//! with an `.expected` file.

#![allow(dead_code, unreachable_pub)]

pub mod netns;

use std::path::Path;
use std::path::PathBuf;

use ftp_alg::config::Config;
use ftp_alg::io::replay;
use ftp_alg::io::report::Format;
use serde_json::Value;

/// The project's `pcaps/` folder.
pub fn pcaps() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps")
}

/// The shared captures (`../shared/pcaps` beside the repository), if present.
pub fn shared_pcaps() -> Option<PathBuf> {
    let beside = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/pcaps");
    beside.join("TRUTH.tsv").is_file().then_some(beside)
}

/// Replay `files` with `config` and return every JSON event (the summary last).
pub fn replay_json(files: &[PathBuf], config: &Config) -> Vec<Value> {
    let mut out = Vec::new();
    replay::run(files, config, Format::Json, &mut out).expect("writing to memory");
    String::from_utf8(out)
        .expect("JSON output is UTF-8")
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("bad JSON line {line:?}: {e}"))
        })
        .collect()
}

/// The summary event (the last one).
pub fn summary(events: &[Value]) -> &Value {
    let last = events.last().expect("at least a summary");
    assert_eq!(last["type"], "summary");
    last
}

/// True if every field of `expected` is in `actual` with the same value (recursively for
/// objects; other values must be equal).
pub fn is_subset(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Object(want), Value::Object(have)) => want
            .iter()
            .all(|(k, v)| have.get(k).is_some_and(|h| is_subset(v, h))),
        _ => expected == actual,
    }
}

/// Compare replay events with an expected file's lines: the events whose type appears in the
/// file (and always `expect` and `admit`) must match the file's lines one to one, in order,
/// each expected line being a subset of its event. A `summary` line is matched against the
/// summary. Returns a description of the first difference.
pub fn compare(expected: &[Value], events: &[Value]) -> Result<(), String> {
    let mut types: Vec<&str> = vec!["expect", "admit"];
    types.extend(
        expected
            .iter()
            .filter_map(|e| e["type"].as_str())
            .filter(|t| *t != "summary"),
    );
    let chosen: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"].as_str().is_some_and(|t| types.contains(&t)))
        .collect();
    let wanted: Vec<&Value> = expected.iter().filter(|e| e["type"] != "summary").collect();
    for (index, want) in wanted.iter().enumerate() {
        let Some(have) = chosen.get(index) else {
            return Err(format!("missing event #{index}: {want}"));
        };
        if !is_subset(want, have) {
            return Err(format!(
                "event #{index} differs:\n  expected {want}\n  actual   {have}"
            ));
        }
    }
    if chosen.len() > wanted.len() {
        return Err(format!(
            "unexpected event #{}: {}",
            wanted.len(),
            chosen[wanted.len()]
        ));
    }
    if let Some(want) = expected.iter().find(|e| e["type"] == "summary") {
        let have = summary(events);
        if !is_subset(want, have) {
            return Err(format!(
                "summary differs:\n  expected {want}\n  actual   {have}"
            ));
        }
    }
    Ok(())
}

/// Read an `.expected` file (JSON Lines).
pub fn read_expected(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{}: bad line {l:?}: {e}", path.display()))
        })
        .collect()
}
