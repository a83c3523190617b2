//! Every fuzz target's committed corpus (`fuzz/corpus/<target>/*`) replayed through its harness
//! (`ftp_alg::testkit::fuzz`) on the stable toolchain: no fuzzing, no nightly. A harness that
//! panics on any input fails the test, naming the file. `make fuzz` runs the campaigns that
//! grow these corpora (docs/security.md).

use std::panic;
use std::path::Path;
use std::path::PathBuf;
use std::time::Instant;

use ftp_alg::testkit::fuzz;

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a corpus entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

fn replay(target: &str) {
    let harness = fuzz::target(target).expect("a known target");
    let files = corpus(target);
    assert!(!files.is_empty(), "fuzz/corpus/{target} is empty");
    let started = Instant::now();
    let mut failed = Vec::new();
    for path in &files {
        let data = std::fs::read(path).expect("a readable corpus file");
        if panic::catch_unwind(|| harness(&data)).is_err() {
            failed.push(path.display().to_string());
        }
    }
    println!(
        "{target}: {} inputs in {:.2} s",
        files.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(failed.is_empty(), "{target} panicked on {failed:#?}");
}

#[test]
fn every_target_has_a_corpus_and_a_harness() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/fuzz_targets");
    for (name, _) in fuzz::TARGETS {
        assert!(
            dir.join(format!("{name}.rs")).is_file(),
            "no fuzz target {name}"
        );
        assert!(!corpus(name).is_empty(), "no corpus for {name}");
    }
}

#[test]
fn capture_corpus() {
    replay("capture");
}

#[test]
fn engine_corpus() {
    replay("engine");
}

#[test]
fn ftp_parsers_corpus() {
    replay("ftp_parsers");
}

#[test]
fn nat_rewrite_corpus() {
    replay("nat_rewrite");
}

#[test]
fn reassembly_corpus() {
    replay("reassembly");
}

#[test]
fn wire_decode_corpus() {
    replay("wire_decode");
}
