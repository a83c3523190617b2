//! The project's own captures in `pcaps/`, each replayed and checked against its
//! `.expected` file; and the synthetic ones checked to be exactly what the generator builds.

mod common;

use std::path::PathBuf;

use ftp_alg::config::Config;
use ftp_alg::testkit::samples;

/// Every capture in `pcaps/` that has an `.expected` file beside it.
fn expected_captures() -> Vec<(PathBuf, PathBuf)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(common::pcaps()).expect("pcaps/ exists") {
        let path = entry.expect("directory entry").path();
        if path.extension().is_some_and(|e| e == "expected") {
            let capture = ["pcap", "pcapng"]
                .iter()
                .map(|ext| path.with_extension(ext))
                .find(|p| p.is_file())
                .unwrap_or_else(|| panic!("{} has no capture beside it", path.display()));
            found.push((capture, path));
        }
    }
    found.sort();
    found
}

#[test]
fn committed_synthetic_captures_are_what_the_generator_builds() {
    for sample in samples::all() {
        let path = common::pcaps().join(sample.file_name());
        let committed = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            committed == sample.to_bytes(),
            "{} differs: run `cargo run --example gen_samples`",
            path.display()
        );
        let expected = path.with_extension("expected");
        assert!(
            expected.is_file(),
            "{} has no .expected file",
            path.display()
        );
    }
}

#[test]
fn every_capture_matches_its_expected_events() {
    let captures = expected_captures();
    assert!(
        captures.len() >= samples::all().len(),
        "found {}",
        captures.len()
    );
    let mut failures = Vec::new();
    for (capture, expected) in &captures {
        let events = common::replay_json(std::slice::from_ref(capture), &Config::default());
        assert_eq!(
            common::summary(&events)["file_errors"],
            0,
            "{}",
            capture.display()
        );
        if let Err(difference) = common::compare(&common::read_expected(expected), &events) {
            failures.push(format!("{}: {difference}", capture.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    println!("{} captures matched their expected events", captures.len());
}

#[test]
fn comparison_catches_differences() {
    let events: Vec<serde_json::Value> = vec![
        serde_json::json!({"type": "expect", "data": {"dport": 1}}),
        serde_json::json!({"type": "revoke"}),
        serde_json::json!({"type": "summary", "admitted": 0}),
    ];
    let ok = vec![serde_json::json!({"type": "expect", "data": {"dport": 1}})];
    assert_eq!(common::compare(&ok, &events), Ok(()));
    let wrong_port = vec![serde_json::json!({"type": "expect", "data": {"dport": 2}})];
    assert!(common::compare(&wrong_port, &events).is_err());
    let missing = vec![ok[0].clone(), serde_json::json!({"type": "admit"})];
    assert!(common::compare(&missing, &events).is_err());
    let extra_revoke = vec![serde_json::json!({"type": "revoke", "x": 1})];
    assert!(
        common::compare(&extra_revoke, &events).is_err(),
        "the expect is unexpected"
    );
    let summary = vec![
        ok[0].clone(),
        serde_json::json!({"type": "summary", "admitted": 1}),
    ];
    assert!(common::compare(&summary, &events).is_err());
}
