use std::path::PathBuf;

use clap::Arg;
use clap::ArgAction;
use clap::CommandFactory;

use super::*;
use crate::cli::Cli;
use crate::cli::Command as Subcommand;
use crate::cli::RunArgs;

/// A file in the temporary directory, unique to this process and test.
fn file(name: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("ftp-alg-{}-{name}.toml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

fn os(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

/// A toy `run` subcommand with a `--config PATH` option, for the tests' own options.
fn run_with_config() -> Command {
    Command::new("run").arg(
        Arg::new("config")
            .long("config")
            .value_parser(clap::value_parser!(PathBuf)),
    )
}

fn run(args: &[&str]) -> Result<RunArgs, Error> {
    match parse::<Cli>(os(args))?.command {
        Subcommand::Run(run) => Ok(run),
        other => panic!("not run: {other:?}"),
    }
}

#[test]
fn the_file_sets_run_and_each_flag_replaces_its_setting() {
    let path = file(
        "replace",
        "timeout = 5\ncontrol-port = [21, 2121]\ncleanup = true\nqueue = \"0-1\"\n",
    );
    let config = path.to_str().unwrap();
    let args = run(&["ftp-alg", "run", "--config", config, "--timeout", "7"]).unwrap();
    assert_eq!(args.engine.timeout, 7, "the flag wins");
    assert_eq!(args.engine.control_ports, [21, 2121]);
    assert!(args.cleanup);
    assert_eq!(args.queues.0, [0, 1]);
    let args = run(&[
        "ftp-alg",
        "run",
        "--control-port",
        "990",
        "--config",
        config,
    ])
    .unwrap();
    assert_eq!(args.engine.control_ports, [990], "replaced, not appended");
    assert_eq!(args.engine.timeout, 5);
    std::fs::remove_file(path).unwrap();
}

#[test]
fn the_default_path_may_be_missing_an_explicit_one_may_not() {
    let missing = std::env::temp_dir().join(format!("ftp-alg-{}-none.toml", std::process::id()));
    let command = Command::new("tool").subcommand(
        run_with_config().arg(
            Arg::new("cleanup")
                .long("cleanup")
                .action(ArgAction::SetTrue),
        ),
    );
    let default = command.clone().mut_subcommand("run", |run| {
        // A 'static default, as derive gives one; leaked once per test run.
        let path: &'static str = missing.display().to_string().leak();
        run.mut_arg("config", |arg| arg.default_value(path))
    });
    let args = os(&["tool", "run", "--cleanup"]);
    assert_eq!(command_line(&default, args.clone()).unwrap(), args);
    let explicit = os(&["tool", "run", "--config", missing.to_str().unwrap()]);
    let error = command_line(&command, explicit).unwrap_err();
    assert!(matches!(error, Error::Read { .. }), "{error:?}");
    assert!(
        error
            .to_string()
            .starts_with("cannot read the configuration /"),
        "{error}"
    );
}

#[test]
fn errors_name_the_file_and_the_line() {
    let path = file("unknown", "timeout = 5\n\nqueu = \"1\"\n");
    let error = run(&["ftp-alg", "run", "--config", path.to_str().unwrap()]).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "{}:3: unknown key \"queu\" (did you mean \"queue\"?)",
            path.display()
        )
    );
    std::fs::remove_file(path).unwrap();
}

#[test]
fn the_default_of_every_option_of_run_is_accepted_from_a_file() {
    let mut command = Cli::command();
    command.build();
    let run = command.find_subcommand(KEYS_FROM).unwrap();
    let mut text = String::new();
    for arg in run.get_arguments() {
        let (Some(key), [first, ..]) = (arg.get_long(), arg.get_default_values()) else {
            continue;
        };
        if arg.get_id() == CONFIG_ID || !settings::keys(run, &[CONFIG_ID]).any(|k| k == key) {
            continue;
        }
        let quoted = |value: &std::ffi::OsStr| format!("{:?}", value.to_str().unwrap());
        let value = match arg.get_action() {
            ArgAction::SetTrue => first.to_str().unwrap().to_owned(),
            ArgAction::Append => {
                let items: Vec<String> =
                    arg.get_default_values().iter().map(|v| quoted(v)).collect();
                format!("[{}]", items.join(", "))
            }
            _ => quoted(first),
        };
        text.push_str(&format!("{key} = {value}\n"));
    }
    let settings = Settings::parse(&text, run, &[CONFIG_ID]).unwrap();
    assert!(settings.iter().count() > 20, "{text}");
    assert!(text.contains("timeout = \"30\"\n"), "{text}");
    assert!(text.contains("cleanup = false\n"), "{text}");
}

#[test]
fn other_subcommands_help_and_bad_flags_are_left_to_clap() {
    let command = Cli::command();
    for args in [
        vec!["ftp-alg", "replay", "a.pcap"],
        vec!["ftp-alg", "rules", "--queue", "0-3"],
        vec!["ftp-alg", "run", "--help"],
        vec!["ftp-alg", "--version"],
        vec!["ftp-alg"],
    ] {
        assert_eq!(command_line(&command, os(&args)).unwrap(), os(&args));
    }
}

#[test]
fn a_conflicting_flag_replaces_the_setting() {
    let path = file("conflict", "fast = true\nlimit = 3\n");
    let command = Command::new("tool").subcommand(
        run_with_config()
            .arg(Arg::new("fast").long("fast").action(ArgAction::SetTrue))
            .arg(Arg::new("limit").long("limit"))
            .arg(
                Arg::new("slow")
                    .long("slow")
                    .action(ArgAction::SetTrue)
                    .conflicts_with("fast"),
            ),
    );
    let config = path.to_str().unwrap();
    let args = command_line(&command, os(&["tool", "run", "--config", config, "--slow"])).unwrap();
    assert_eq!(
        args,
        os(&["tool", "run", "--limit=3", "--config", config, "--slow"])
    );
    std::fs::remove_file(path).unwrap();
}

#[test]
fn check_takes_runs_options_so_it_reads_the_same_file() {
    let path = file("check", "table = \"gw\"\nqueue = \"2-3\"\n");
    let config = path.to_str().unwrap();
    let cli = parse::<Cli>(os(&[
        "ftp-alg", "check", "--config", config, "--queue", "5",
    ]))
    .unwrap();
    let Subcommand::Check(check) = cli.command else {
        panic!("not check")
    };
    assert_eq!(check.run.names.table, "gw");
    assert_eq!(check.run.queues.0, [5], "the flag wins");
    std::fs::remove_file(path).unwrap();
}
