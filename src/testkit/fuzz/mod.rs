//! Fuzz harnesses: one function per `cargo fuzz` target in `fuzz/`, each taking the fuzzer's
//! bytes and asserting the invariants of the code it drives (`docs/security.md`, Fuzzing).
//!
//! Owns: decoding arbitrary bytes into inputs (raw, or structured with `arbitrary`) and the
//! invariants checked on what comes out. Does not own: the fuzzing itself (libFuzzer, nightly,
//! in `fuzz/`), nor the corpora (`fuzz/corpus/<target>/`), which `tests/fuzz_corpora.rs` replays
//! through these same functions on the stable toolchain.
//!
//! Contract: a harness returns normally for every input; a panic (an `assert!` included) is a
//! finding. Inputs are bounded here so that one run stays fast.

mod capture;
mod engine;
mod ftp;
mod nat;
mod reassembly;
mod wire;

pub use capture::capture;
pub use engine::engine;
pub use ftp::ftp_parsers;
pub use nat::nat_rewrite;
pub use nat::rewrite_line;
pub use reassembly::reassembly;
pub use wire::wire_decode;

/// A harness: the fuzzer's bytes in, a panic for a finding.
pub type Harness = fn(&[u8]);

/// Every target, by the name of its `fuzz/fuzz_targets/<name>.rs` and corpus directory.
pub const TARGETS: &[(&str, Harness)] = &[
    ("capture", capture),
    ("engine", engine),
    ("ftp_parsers", ftp_parsers),
    ("nat_rewrite", nat_rewrite),
    ("reassembly", reassembly),
    ("wire_decode", wire_decode),
];

/// The harness named `name`.
pub fn target(name: &str) -> Option<Harness> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}
