use clap::Arg;
use clap::ArgAction;
use clap::Command;

use super::*;

/// A small command with one option of each kind the mapping knows.
fn command() -> Command {
    Command::new("run")
        .arg(
            Arg::new("timeout")
                .long("timeout")
                .value_parser(clap::value_parser!(u64).range(1..=86_400))
                .default_value("30"),
        )
        .arg(
            Arg::new("policy")
                .long("policy")
                .value_parser(["strict", "loose"])
                .default_value("strict"),
        )
        .arg(
            Arg::new("control_ports")
                .long("control-port")
                .action(ArgAction::Append)
                .value_parser(clap::value_parser!(u16).range(1..)),
        )
        .arg(
            Arg::new("cleanup")
                .long("cleanup")
                .action(ArgAction::SetTrue),
        )
        .arg(Arg::new("queue").long("queue"))
        .arg(Arg::new("config").long("config"))
        .arg(Arg::new("verbose").long("verbose").action(ArgAction::Count))
}

fn parse(text: &str) -> Result<Vec<(String, usize, Vec<String>)>, Error> {
    let settings = Settings::parse(text, &command(), &["config"])?;
    Ok(settings
        .iter()
        .map(|s| (s.id.clone(), s.line, s.arguments.clone()))
        .collect())
}

fn error(text: &str) -> (usize, String) {
    let error = parse(text).expect_err(text);
    (error.line, error.kind.to_string())
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|&s| s.to_owned()).collect()
}

#[test]
fn each_kind_of_option_becomes_its_arguments_in_file_order() {
    let text = "# comment\nqueue = \"0-3\"\ncleanup = true\ntimeout = 0x1e\n\
                control-port = [21, 2_121]\npolicy = \"loose\"\n";
    assert_eq!(
        parse(text).unwrap(),
        vec![
            ("queue".into(), 2, strings(&["--queue=0-3"])),
            ("cleanup".into(), 3, strings(&["--cleanup"])),
            ("timeout".into(), 4, strings(&["--timeout=30"])),
            (
                "control_ports".into(),
                5,
                strings(&["--control-port=21", "--control-port=2121"])
            ),
            ("policy".into(), 6, strings(&["--policy=loose"])),
        ]
    );
    assert_eq!(
        parse("cleanup = false\ncontrol-port = []").unwrap(),
        vec![
            ("cleanup".into(), 1, vec![]),
            ("control_ports".into(), 2, vec![]),
        ]
    );
    assert_eq!(parse("").unwrap(), vec![]);
    assert_eq!(
        parse("verbose = 2").unwrap(),
        vec![("verbose".into(), 1, strings(&["--verbose", "--verbose"]))]
    );
    assert!(error("verbose = 256").1.contains("a count from 0 to 255"));
}

#[test]
fn an_unknown_key_is_named_with_its_line_and_the_closest_key() {
    assert_eq!(
        error("timeout = 5\n\nqueu = \"1\"\n"),
        (3, "unknown key \"queu\" (did you mean \"queue\"?)".into())
    );
    assert_eq!(
        error("control_port = [21]").1,
        "unknown key \"control_port\" (did you mean \"control-port\"?)"
    );
    let (line, message) = error("timeout = 5\nfrobnicate = 1");
    assert_eq!(line, 2);
    assert!(
        message.starts_with("unknown key \"frobnicate\" (the keys are"),
        "{message}"
    );
    assert!(error("help = true").1.starts_with("unknown key \"help\""));
}

#[test]
fn values_are_checked_by_the_options_own_clap_parser() {
    let (line, message) = error("policy = \"strict\"\ntimeout = 0\n");
    assert_eq!(line, 2);
    assert!(
        message.starts_with("\"timeout\": invalid value '0' for '--timeout"),
        "{message}"
    );
    assert!(message.contains("0 is not in 1..=86400"), "{message}");
    let message = error("policy = \"lax\"").1;
    assert!(message.contains("invalid value 'lax'"), "{message}");
    assert!(message.contains("strict, loose"), "{message}");
    assert!(
        error("control-port = [21, 0]")
            .1
            .contains("'--control-port")
    );
    assert!(error("timeout = \"soon\"").1.contains("invalid digit"));
    assert!(error("timeout = 1.5").1.contains("'1.5'"));
}

#[test]
fn wrong_toml_types_say_what_the_option_takes() {
    assert_eq!(
        error("\ncleanup = \"yes\""),
        (
            2,
            "\"cleanup\" takes true or false, not a TOML string".into()
        )
    );
    assert!(
        error("control-port = 21")
            .1
            .starts_with("\"control-port\" takes an array")
    );
    assert!(
        error("control-port = [[21]]")
            .1
            .contains("an array of strings or numbers")
    );
    assert!(error("timeout = [30]").1.contains("not a TOML array"));
}

#[test]
fn tables_syntax_and_forbidden_keys_are_errors_with_lines() {
    let (line, message) = error("timeout = 5\n[run]\nqueue = \"1\"");
    assert_eq!(line, 2);
    assert!(message.contains("\"run\" is a table"), "{message}");
    assert!(error("run.queue = \"1\"").1.contains("\"run\" is a table"));
    let (line, message) = error("timeout = 5\nqueue = \n");
    assert_eq!(line, 2);
    assert!(message.starts_with("not TOML: "), "{message}");
    assert_eq!(error("timeout = 5\ntimeout = 6").0, 2, "a duplicate key");
    assert_eq!(
        error("config = \"/etc/x\""),
        (1, "\"config\" cannot be set in a configuration file".into())
    );
    let command = command().arg(Arg::new("quiet").long("quiet").action(ArgAction::SetFalse));
    let error = Settings::parse("quiet = true", &command, &[]).unwrap_err();
    assert!(
        error
            .kind
            .to_string()
            .contains("a kind of option a file cannot set")
    );
}

#[test]
fn keys_are_the_long_options_but_help_and_the_excluded() {
    let mut command = command();
    command.build();
    let keys: Vec<&str> = keys(&command, &["config"]).collect();
    assert_eq!(
        keys,
        [
            "timeout",
            "policy",
            "control-port",
            "cleanup",
            "queue",
            "verbose"
        ]
    );
}
