//! The systemd units in `dist/`: `systemd-analyze verify` accepts them without a single
//! complaint (it exits 0 even on an unknown directive, so any output fails the test, and a
//! misspelled copy proves that it would), and they agree with the binary: the runtime
//! directory is `run --state-dir`'s default, and the daemon keeps only CAP_NET_ADMIN.
//! Without systemd-analyze the verification says "skipped".

use std::path::Path;
use std::path::PathBuf;
use std::process::Command;

const UNITS: [&str; 2] = ["ftp-alg.service", "ftp-alg-rules.service"];

fn dist(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("dist")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The units in a scratch directory, with the installed binary's path replaced by the built
/// one (verify checks that every Exec line's program exists), each text passed through
/// `edit`.
fn scratch_units(tag: &str, edit: impl Fn(String) -> String) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("units-{tag}"));
    std::fs::create_dir_all(&dir).unwrap();
    for unit in UNITS {
        let text = dist(unit).replace("/usr/local/bin/ftp-alg", env!("CARGO_BIN_EXE_ftp-alg"));
        std::fs::write(dir.join(unit), edit(text)).unwrap();
    }
    dir
}

/// `systemd-analyze verify` on the units in `dir`: its exit status and all it printed, or
/// `None` when it is not installed.
fn verify(dir: &Path) -> Option<(bool, String)> {
    let paths: Vec<PathBuf> = UNITS.iter().map(|u| dir.join(u)).collect();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .args(&paths)
        .output()
        .ok()?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status.success(), said))
}

#[test]
fn systemd_analyze_verify_accepts_the_units_and_would_catch_a_typo() {
    let Some((ok, said)) = verify(&scratch_units("as-shipped", |t| t)) else {
        eprintln!("skipped: systemd-analyze is not installed (make deps installs systemd)");
        return;
    };
    assert!(
        ok && said.trim().is_empty(),
        "systemd-analyze verify:\n{said}"
    );
    let typo = scratch_units("typo", |t| {
        t.replace("NoNewPrivileges=yes", "NoNewPrivilege=yes")
    });
    let (_, said) = verify(&typo).unwrap();
    assert!(
        said.contains("NoNewPrivilege"),
        "the typo went unnoticed: {said}"
    );
}

#[test]
fn the_units_agree_with_the_binary() {
    let service = dist("ftp-alg.service");
    let help = Command::new(env!("CARGO_BIN_EXE_ftp-alg"))
        .args(["run", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("[default: /run/ftp-alg]")
            && service.contains("\nRuntimeDirectory=ftp-alg\n"),
        "RuntimeDirectory= must be run --state-dir's default"
    );
    for line in [
        "CapabilityBoundingSet=CAP_NET_ADMIN\n",
        "AmbientCapabilities=CAP_NET_ADMIN\n",
        "RestrictAddressFamilies=AF_NETLINK AF_UNIX\n",
        "ExecStart=/usr/local/bin/ftp-alg run $FTP_ALG_OPTIONS\n",
        "ExecStartPre=-/usr/local/bin/ftp-alg check $FTP_ALG_OPTIONS\n",
        "Requires=ftp-alg-rules.service\n",
    ] {
        assert!(service.contains(line), "ftp-alg.service lacks {line}");
    }
    let rules = dist("ftp-alg-rules.service");
    assert!(rules.contains("Type=oneshot\n") && rules.contains("RemainAfterExit=yes\n"));
    assert!(rules.contains("Before=network-pre.target ftp-alg.service"));
}
