//! The man pages and shell completions (`make man`): a page for the command and for every
//! visible subcommand, each rendered by groff without a warning, and a completion script
//! per shell that knows every subcommand (bash's checked for syntax; zsh's and fish's too
//! when those shells are installed).

#[path = "tools/man_pages.rs"]
mod man_pages;

use std::path::Path;
use std::path::PathBuf;
use std::process::Command;

use clap::CommandFactory;
use ftp_alg::cli::Cli;

/// Everything generated afresh into a directory of its own (the tests run in parallel).
fn generated(test: &str) -> (PathBuf, PathBuf, Vec<PathBuf>) {
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("man-{test}"));
    let _ = std::fs::remove_dir_all(&root);
    let (man, completions) = (root.join("man"), root.join("completions"));
    let written = man_pages::write(&man, &completions).expect("generate");
    (man, completions, written)
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|out| out.status.success())
}

fn subcommands() -> Vec<String> {
    Cli::command()
        .get_subcommands()
        .filter(|sub| !sub.is_hide_set())
        .map(|sub| sub.get_name().to_owned())
        .collect()
}

#[test]
fn a_page_for_the_command_and_every_subcommand() {
    let (man, _, written) = generated("pages");
    let subcommands = subcommands();
    assert!(subcommands.iter().any(|s| s == "run"), "{subcommands:?}");
    let mut expected = vec!["ftp-alg.1".to_owned()];
    expected.extend(subcommands.iter().map(|s| format!("ftp-alg-{s}.1")));
    assert_eq!(man_pages::page_names(), expected);
    let mut present: Vec<String> = std::fs::read_dir(&man)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    present.sort();
    expected.sort();
    assert_eq!(present, expected, "exactly these pages");
    for name in &expected {
        assert!(written.contains(&man.join(name)), "{name} reported");
        let page = std::fs::read_to_string(man.join(name)).unwrap();
        assert!(page.contains(".SH NAME"), "{name}");
    }
    let main = std::fs::read_to_string(man.join("ftp-alg.1")).unwrap();
    for sub in &subcommands {
        assert!(
            main.contains(&format!("ftp\\-alg\\-{sub}(1)")),
            "ftp-alg.1 names {sub}"
        );
    }
    let run = std::fs::read_to_string(man.join("ftp-alg-run.1")).unwrap();
    assert!(
        run.contains("/etc/ftp\\-alg/ftp\\-alg.toml"),
        "run's page names its config"
    );
}

#[test]
fn every_page_renders_without_warnings() {
    if !have("groff") {
        eprintln!("SKIPPED: groff is not installed (make deps installs groff-base)");
        return;
    }
    let (man, _, _) = generated("render");
    for name in man_pages::page_names() {
        let out = Command::new("groff")
            .args(["-man", "-ww", "-z"])
            .arg(man.join(&name))
            .output()
            .expect("run groff");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.is_empty(),
            "{name}: {stderr}"
        );
    }
}

#[test]
fn completions_for_bash_zsh_and_fish_know_every_subcommand() {
    let (_, completions, _) = generated("completions");
    let scripts = [
        ("ftp-alg.bash", "bash", "-n"),
        ("_ftp-alg", "zsh", "-n"),
        ("ftp-alg.fish", "fish", "--no-execute"),
    ];
    for (name, shell, check) in scripts {
        let path = completions.join(name);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        for sub in subcommands() {
            assert!(text.contains(&sub), "{name} lacks {sub}");
        }
        assert!(text.contains("control-port"), "{name} lacks run's options");
        syntax_check(shell, check, &path);
    }
}

fn syntax_check(shell: &str, flag: &str, path: &Path) {
    if !have(shell) {
        eprintln!(
            "{shell} is not installed: {} not syntax-checked",
            path.display()
        );
        return;
    }
    let out = Command::new(shell).arg(flag).arg(path).output().unwrap();
    assert!(
        out.status.success(),
        "{shell} {flag} {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}
