//! The configuration file (`/etc/ftp-alg/ftp-alg.toml`, or `--config PATH`) spliced into the
//! command line.
//!
//! Owns where the file is, reading it, and which of its settings the command line leaves
//! standing. The file is TOML; its keys are the long options of `ftp-alg run`
//! ([`settings`] maps and checks them). Any subcommand with a `--config` option reads it,
//! taking the keys it shares with `run`. The settings become arguments placed right after
//! the subcommand's name, before the user's own, and clap then parses the whole line once:
//! one parser, one set of rules, whether an option came from the file or a flag. An option
//! given on the command line (or one that conflicts with it) replaces the file's setting,
//! repeatable ones included: `--control-port 990` replaces the file's list, it does not add
//! to it. Nothing here knows any particular option, so options added to `run` later are
//! covered without changes.
//!
//! The default path may be missing (no file, no settings); a path given with `--config` must
//! exist. Errors name the file and line (`ftp-alg.toml:12: unknown key "queu" (did you mean
//! "queue"?)`).

pub mod settings;

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::path::Path;
use std::path::PathBuf;

use clap::Arg;
use clap::ArgMatches;
use clap::Command;
use clap::parser::ValueSource;

use self::settings::Settings;

/// Where the daemon's configuration is read from unless `--config` says otherwise.
pub const DEFAULT_PATH: &str = "/etc/ftp-alg/ftp-alg.toml";

/// The id of the option naming the file; a subcommand that has it reads the file.
pub const CONFIG_ID: &str = "config";

/// The subcommand whose long options are the file's keys.
pub const KEYS_FROM: &str = "run";

/// The largest file read (a configuration is a few KiB; this only bounds a mistake).
const MAX_BYTES: u64 = 1 << 20;

/// Why the configuration could not be used.
#[derive(Debug)]
pub enum Error {
    /// The file could not be read (an explicit path that is missing, permissions, not UTF-8).
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: io::Error,
    },
    /// A setting is wrong (see [`settings::ErrorKind`]).
    Invalid {
        /// The file.
        path: PathBuf,
        /// The line and what is wrong.
        error: settings::Error,
    },
}

/// `P` parsed from `args` with the configuration file spliced in; clap's own errors (and
/// `--help`) exit as [`clap::Parser::parse_from`] does.
pub fn parse<P: clap::Parser>(args: impl IntoIterator<Item = OsString>) -> Result<P, Error> {
    let args = command_line(&P::command(), args.into_iter().collect())?;
    Ok(P::parse_from(args))
}

/// `args` with the file's settings inserted after the subcommand's name, for a subcommand
/// that has a `--config` option; unchanged otherwise, or when clap will refuse `args` anyway.
pub fn command_line(command: &Command, args: Vec<OsString>) -> Result<Vec<OsString>, Error> {
    let mut command = command.clone();
    command.build();
    let Ok(matches) = command
        .clone()
        .ignore_errors(true)
        .try_get_matches_from(&args)
    else {
        return Ok(args);
    };
    let Some((name, given)) = matches.subcommand() else {
        return Ok(args);
    };
    let (Some(target), Some(keys)) = (
        command.find_subcommand(name),
        command.find_subcommand(KEYS_FROM),
    ) else {
        return Ok(args);
    };
    let Some(path) = path(given) else {
        return Ok(args);
    };
    let Some(text) = read(&path, given.value_source(CONFIG_ID))? else {
        return Ok(args);
    };
    let settings = Settings::parse(&text, keys, &[CONFIG_ID])
        .map_err(|error| Error::Invalid { path, error })?;
    let extra = standing(&settings, target, given);
    Ok(splice(args, target, extra))
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read { path, error } => {
                write!(
                    f,
                    "cannot read the configuration {}: {error}",
                    path.display()
                )
            }
            Self::Invalid { path, error } => {
                write!(f, "{}:{}: {}", path.display(), error.line, error.kind)
            }
        }
    }
}

impl std::error::Error for Error {}

/// The file a subcommand's matches name, if it takes `--config`.
fn path(given: &ArgMatches) -> Option<PathBuf> {
    given
        .try_get_one::<PathBuf>(CONFIG_ID)
        .ok()
        .flatten()
        .cloned()
}

/// The file's text; `None` when the default file is absent.
fn read(path: &Path, source: Option<ValueSource>) -> Result<Option<String>, Error> {
    let failed = |error| Error::Read {
        path: path.to_owned(),
        error,
    };
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(error)
            if error.kind() == io::ErrorKind::NotFound
                && source != Some(ValueSource::CommandLine) =>
        {
            return Ok(None);
        }
        Err(error) => return Err(failed(error)),
    };
    let mut text = String::new();
    io::Read::read_to_string(&mut io::Read::take(file, MAX_BYTES + 1), &mut text)
        .map_err(failed)?;
    if text.len() as u64 > MAX_BYTES {
        let message = format!("larger than {MAX_BYTES} bytes");
        return Err(failed(io::Error::new(io::ErrorKind::InvalidData, message)));
    }
    Ok(Some(text))
}

/// The file's arguments the command line leaves standing: those of options `target` has and
/// the user did not override.
fn standing(settings: &Settings, target: &Command, given: &ArgMatches) -> Vec<OsString> {
    settings
        .iter()
        .filter(|setting| !overridden(target, given, &setting.id))
        .flat_map(|setting| setting.arguments.iter().map(OsString::from))
        .collect()
}

/// Whether the file's setting of `id` gives way: `target` has no such option, or the command
/// line gives it or an option that conflicts with it (either way round: clap's conflicts are
/// declared on one side and hold both ways).
fn overridden(target: &Command, given: &ArgMatches, id: &str) -> bool {
    let Some(arg) = target.get_arguments().find(|arg| arg.get_id() == id) else {
        return true;
    };
    let conflict = |a: &Arg, b: &Arg| {
        target
            .get_arg_conflicts_with(a)
            .iter()
            .any(|other| other.get_id() == b.get_id())
    };
    target
        .get_arguments()
        .filter(|other| {
            given.value_source(other.get_id().as_str()) == Some(ValueSource::CommandLine)
        })
        .any(|other| other.get_id() == id || conflict(arg, other) || conflict(other, arg))
}

/// `args` with `extra` right after the subcommand's name (at the end if it is not found,
/// which clap's match makes impossible).
fn splice(mut args: Vec<OsString>, target: &Command, extra: Vec<OsString>) -> Vec<OsString> {
    let names: Vec<&str> = std::iter::once(target.get_name())
        .chain(target.get_all_aliases())
        .collect();
    let at = args
        .iter()
        .skip(1)
        .position(|arg| names.iter().any(|name| arg == name))
        .map_or(args.len(), |index| index + 2);
    args.splice(at..at, extra);
    args
}

#[cfg(test)]
mod tests;
