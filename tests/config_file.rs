//! The configuration file end to end: the shipped example `dist/ftp-alg.toml` lists every
//! option of `ftp-alg run` with its default (so it cannot drift from the flags), and the
//! binary refuses a bad file with its line, exit status 2.

use std::collections::BTreeSet;
use std::path::Path;
use std::path::PathBuf;
use std::process::Command;

use clap::ArgAction;
use clap::CommandFactory;
use ftp_alg::cli::Cli;
use ftp_alg::io::config_file::CONFIG_ID;
use ftp_alg::io::config_file::KEYS_FROM;
use ftp_alg::io::config_file::settings;
use ftp_alg::io::config_file::settings::Settings;

fn example() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("dist/ftp-alg.toml");
    std::fs::read_to_string(path).expect("dist/ftp-alg.toml")
}

/// The example with its settings uncommented: `#key = value` lines (prose has `# `).
fn uncommented(text: &str) -> String {
    text.lines()
        .map(|line| match line.strip_prefix('#') {
            Some(rest) if rest.starts_with(|c: char| c.is_ascii_lowercase()) => rest,
            _ => line,
        })
        .map(|line| format!("{line}\n"))
        .collect()
}

fn run_command() -> clap::Command {
    let mut command = Cli::command();
    command.build();
    command.find_subcommand(KEYS_FROM).unwrap().clone()
}

#[test]
fn the_example_lists_every_option_of_run_with_its_default() {
    if let Err(error) = check_example(&example()) {
        panic!("{error}");
    }
}

#[test]
fn the_example_check_fails_on_a_missing_key_a_wrong_default_or_a_typo() {
    let text = example();
    let without = text.replace("#max-flows = 16384\n", "");
    let error = check_example(&without).unwrap_err();
    // Only the key taken out is named (others may be missing while a new option is added).
    assert!(
        error.contains("lacks these options of `ftp-alg run`: ["),
        "{error}"
    );
    assert!(error.contains("\"max-flows\""), "{error}");
    let untouched = check_example(&text).err().unwrap_or_default();
    assert!(!untouched.contains("\"max-flows\""), "{untouched}");
    let wrong = text.replace("#timeout = 30\n", "#timeout = 60\n");
    assert!(
        check_example(&wrong)
            .unwrap_err()
            .contains("\"timeout\" is not the default")
    );
    let flag = text.replace("#cleanup = false\n", "#cleanup = true\n");
    assert!(
        check_example(&flag)
            .unwrap_err()
            .contains("\"cleanup\" is not the default")
    );
    let typo = text.replace("#queue = ", "#queu = ");
    assert!(
        check_example(&typo)
            .unwrap_err()
            .contains("unknown key \"queu\"")
    );
    let set = text.replace("#timeout = 30\n", "timeout = 30\n");
    assert!(check_example(&set).unwrap_err().contains("changes nothing"));
}

/// Whether `text` lists every key of `run`, each (but those without a default) with its
/// default, all commented out; what is wrong otherwise.
fn check_example(text: &str) -> Result<(), String> {
    let run = run_command();
    let commented = Settings::parse(text, &run, &[CONFIG_ID]).map_err(|e| e.kind.to_string())?;
    if let Some(setting) = commented.iter().next() {
        let line = setting.line;
        return Err(format!(
            "dist/ftp-alg.toml:{line}: the example changes nothing; comment it out"
        ));
    }
    let settings = Settings::parse(&uncommented(text), &run, &[CONFIG_ID])
        .map_err(|e| format!("dist/ftp-alg.toml:{}: {}", e.line, e.kind))?;
    settings
        .iter()
        .try_for_each(|setting| check_default(&run, setting))?;
    let listed: BTreeSet<&str> = settings.iter().map(|s| s.key.as_str()).collect();
    // Hidden options (test knobs) may be set but need not be listed.
    let hidden: Vec<&str> = run
        .get_arguments()
        .filter(|arg| arg.is_hide_set())
        .filter_map(|arg| arg.get_long())
        .collect();
    let missing: Vec<&str> = settings::keys(&run, &[CONFIG_ID])
        .filter(|key| !listed.contains(key) && !hidden.contains(key))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "dist/ftp-alg.toml lacks these options of `ftp-alg run`: {missing:?}; \
             add a commented `#key = default` line for each"
        ))
    }
}

/// Whether an example setting is its option's default (any value for an option without one).
fn check_default(run: &clap::Command, setting: &settings::Setting) -> Result<(), String> {
    let arg = run
        .get_arguments()
        .find(|arg| arg.get_id() == setting.id.as_str())
        .expect("a setting names an option");
    let defaults: Vec<String> = arg
        .get_default_values()
        .iter()
        .map(|v| format!("--{}={}", setting.key, v.to_str().unwrap_or("?")))
        .collect();
    let expected = match arg.get_action() {
        ArgAction::SetTrue => Vec::new(),
        _ if defaults.is_empty() => return Ok(()),
        _ => defaults,
    };
    if setting.arguments == expected {
        Ok(())
    } else {
        Err(format!(
            "dist/ftp-alg.toml:{}: \"{}\" is not the default ({expected:?})",
            setting.line, setting.key
        ))
    }
}

fn scratch(name: &str, text: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn ftp_alg_run(config: &Path) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ftp-alg"))
        .args(["run", "--backend", "none", "--config"])
        .arg(config)
        .output()
        .expect("run ftp-alg");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_binary_refuses_a_bad_file_naming_the_line() {
    let path = scratch("bad-config.toml", "backend = \"none\"\n\nmax-flows = 0\n");
    let (status, stderr) = ftp_alg_run(&path);
    assert_eq!(status, Some(2), "{stderr}");
    let expected = format!(
        "ftp-alg: {}:3: \"max-flows\": invalid value '0' for '--max-flows <N>'",
        path.display()
    );
    assert!(stderr.starts_with(&expected), "{stderr}");
    let (status, stderr) = ftp_alg_run(Path::new("/nonexistent/ftp-alg.toml"));
    assert_eq!(status, Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot read the configuration /nonexistent"),
        "{stderr}"
    );
}
