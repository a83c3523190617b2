//! A configuration file's text turned into command-line arguments, each checked by clap.
//!
//! Owns the mapping from TOML to the options of one clap [`Command`] (the keys' command):
//! each top-level key is the long name of one of its options, and its value is written as
//! that option would be on the command line:
//!
//! - a flag (`--cleanup`) takes `true` or `false`;
//! - an option that may be repeated (`--control-port`) takes an array, one argument per
//!   element;
//! - a counted flag (`-vv`) takes the count;
//! - any other option takes one string, number or boolean (`timeout = 30` is `--timeout=30`).
//!
//! Each setting is parsed on its own by the option's own clap definition (value parser,
//! range, possible values), so the file accepts exactly what the flags accept and says so in
//! the same words, with the line it is on. Does not read files, nor decide which settings
//! the command line overrides ([`super`] does both).

use std::fmt;

use clap::Arg;
use clap::ArgAction;
use clap::Command;
use toml::Spanned;
use toml::de::DeTable;
use toml::de::DeValue;

/// Every setting of one file, in the order of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings(Vec<Setting>);

/// One key of the file as command-line arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The clap id of the option the key names.
    pub id: String,
    /// The key (the option's long name).
    pub key: String,
    /// The line of the file the key is on (from 1).
    pub line: usize,
    /// The arguments it stands for (`--timeout=30`; nothing for a flag set to `false`).
    pub arguments: Vec<String>,
}

/// What is wrong with a file, and on which line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// The line (from 1).
    pub line: usize,
    /// What is wrong.
    pub kind: ErrorKind,
}

/// The ways a file can be wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// The key names no option; the closest one, if any is close.
    UnknownKey {
        /// The key as written.
        key: String,
        /// The option it probably meant.
        suggestion: Option<String>,
    },
    /// A key that exists on the command line but not in a file (`config` itself).
    NotInFile(String),
    /// The text is not TOML (the parser's message).
    Syntax(String),
    /// A `[table]` or dotted key: every key goes at the top level.
    Table(String),
    /// The value has the wrong TOML type for the option.
    Type {
        /// The key.
        key: String,
        /// What the option takes.
        expected: &'static str,
        /// The TOML type written.
        found: &'static str,
    },
    /// The option cannot be set from a file (a kind of option this mapping does not know).
    Unsupported(String),
    /// clap refused the value (its message, naming the option).
    Value {
        /// The key.
        key: String,
        /// clap's message, without "error:" and usage.
        message: String,
    },
}

impl Settings {
    /// Read `text` as settings of `command`'s options. `excluded` ids may not be set in a file.
    pub fn parse(text: &str, command: &Command, excluded: &[&str]) -> Result<Self, Error> {
        let table = DeTable::parse(text).map_err(|error| Error {
            line: line_of(text, error.span().map_or(0, |span| span.start)),
            kind: ErrorKind::Syntax(error.message().trim().to_owned()),
        })?;
        let mut entries: Vec<_> = table.get_ref().iter().collect();
        entries.sort_by_key(|(key, _)| key.span().start);
        let settings = entries
            .into_iter()
            .map(|(key, value)| setting(text, command, excluded, key, value))
            .collect::<Result<_, _>>()?;
        Ok(Self(settings))
    }

    /// The settings, in the order of the file.
    pub fn iter(&self) -> impl Iterator<Item = &Setting> {
        self.0.iter()
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownKey {
                key,
                suggestion: Some(suggestion),
            } => write!(f, "unknown key \"{key}\" (did you mean \"{suggestion}\"?)"),
            Self::UnknownKey { key, .. } => write!(
                f,
                "unknown key \"{key}\" (the keys are the long options of `ftp-alg run`)"
            ),
            Self::NotInFile(key) => write!(f, "\"{key}\" cannot be set in a configuration file"),
            Self::Syntax(message) => write!(f, "not TOML: {message}"),
            Self::Table(key) => write!(
                f,
                "\"{key}\" is a table; every key goes at the top level, without [sections]"
            ),
            Self::Type {
                key,
                expected,
                found,
            } => write!(f, "\"{key}\" takes {expected}, not a TOML {found}"),
            Self::Unsupported(key) => {
                write!(f, "\"{key}\" is a kind of option a file cannot set")
            }
            Self::Value { key, message } => write!(f, "\"{key}\": {message}"),
        }
    }
}

/// One entry as a [`Setting`], checked by clap.
fn setting(
    text: &str,
    command: &Command,
    excluded: &[&str],
    key: &Spanned<std::borrow::Cow<'_, str>>,
    value: &Spanned<DeValue<'_>>,
) -> Result<Setting, Error> {
    let line = line_of(text, key.span().start);
    let name = key.get_ref().as_ref();
    let error = |kind| Error { line, kind };
    let Some(arg) = find_option(command, name) else {
        return Err(error(unknown(command, excluded, name, value)));
    };
    if excluded.contains(&arg.get_id().as_str()) {
        return Err(error(ErrorKind::NotInFile(name.to_owned())));
    }
    let arguments = arguments(arg, name, value.get_ref()).map_err(error)?;
    check(command, &arguments).map_err(|message| {
        error(ErrorKind::Value {
            key: name.to_owned(),
            message,
        })
    })?;
    Ok(Setting {
        id: arg.get_id().as_str().to_owned(),
        key: name.to_owned(),
        line,
        arguments,
    })
}

/// The option whose long name is `name`.
fn find_option<'c>(command: &'c Command, name: &str) -> Option<&'c Arg> {
    command
        .get_arguments()
        .find(|arg| arg.get_long() == Some(name) && is_setting(arg))
}

/// Whether a file may name `arg` at all: help and version are actions, not settings.
fn is_setting(arg: &Arg) -> bool {
    !matches!(
        arg.get_action(),
        ArgAction::Help | ArgAction::HelpShort | ArgAction::HelpLong | ArgAction::Version
    )
}

/// Why a key that names no option is wrong, with the closest key if one is close.
fn unknown(
    command: &Command,
    excluded: &[&str],
    name: &str,
    value: &Spanned<DeValue<'_>>,
) -> ErrorKind {
    if value.get_ref().is_table() {
        return ErrorKind::Table(name.to_owned());
    }
    // clap's own threshold for "did you mean" on the command line.
    let suggestion = keys(command, excluded)
        .map(|key| (strsim::jaro(name, key), key))
        .filter(|(score, _)| *score > 0.7)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, key)| key.to_owned());
    ErrorKind::UnknownKey {
        key: name.to_owned(),
        suggestion,
    }
}

/// Every key a file may set for `command`: the long names of its options but `excluded` ids.
pub fn keys<'c>(command: &'c Command, excluded: &[&str]) -> impl Iterator<Item = &'c str> {
    command
        .get_arguments()
        .filter(|arg| is_setting(arg) && !excluded.contains(&arg.get_id().as_str()))
        .filter_map(Arg::get_long)
}

/// The command-line arguments a value stands for, by the kind of option.
fn arguments(arg: &Arg, key: &str, value: &DeValue<'_>) -> Result<Vec<String>, ErrorKind> {
    let wrong = |expected| ErrorKind::Type {
        key: key.to_owned(),
        expected,
        found: value.type_str(),
    };
    match arg.get_action() {
        ArgAction::SetTrue => match value {
            DeValue::Boolean(true) => Ok(vec![format!("--{key}")]),
            DeValue::Boolean(false) => Ok(Vec::new()),
            _ => Err(wrong("true or false")),
        },
        ArgAction::Append => match value {
            DeValue::Array(items) => items
                .iter()
                .map(|item| scalar(item.get_ref()).map(|text| format!("--{key}={text}")))
                .collect::<Option<_>>()
                .ok_or_else(|| wrong("an array of strings or numbers")),
            _ => Err(wrong(
                "an array (a repeatable option: `key = [value, ...]`)",
            )),
        },
        ArgAction::Count => match value {
            DeValue::Integer(n) => match u8::from_str_radix(n.as_str(), n.radix()) {
                Ok(n) => Ok(vec![format!("--{key}"); usize::from(n)]),
                Err(_) => Err(wrong("a count from 0 to 255")),
            },
            _ => Err(wrong("a count (the times the flag is given)")),
        },
        ArgAction::Set => match scalar(value) {
            Some(text) => Ok(vec![format!("--{key}={text}")]),
            None => Err(wrong("a string, a number or a boolean")),
        },
        _ => Err(ErrorKind::Unsupported(key.to_owned())),
    }
}

/// A single TOML value as the text clap would read on the command line.
fn scalar(value: &DeValue<'_>) -> Option<String> {
    match value {
        DeValue::String(text) => Some(text.to_string()),
        DeValue::Integer(integer) => i128::from_str_radix(integer.as_str(), integer.radix())
            .ok()
            .map(|n| n.to_string()),
        DeValue::Float(float) => Some(float.as_str().to_owned()),
        DeValue::Boolean(flag) => Some(flag.to_string()),
        DeValue::Datetime(datetime) => Some(datetime.to_string()),
        DeValue::Array(_) | DeValue::Table(_) => None,
    }
}

/// Let clap parse `arguments` alone, as `command`'s command line: its message if it refuses.
fn check(command: &Command, arguments: &[String]) -> Result<(), String> {
    let argv = std::iter::once(command.get_name().to_owned()).chain(arguments.iter().cloned());
    match command.clone().try_get_matches_from(argv) {
        Ok(_) => Ok(()),
        // Another option this one needs may come from elsewhere; the value itself was read.
        Err(error) if error.kind() == clap::error::ErrorKind::MissingRequiredArgument => Ok(()),
        Err(error) => Err(message(&error)),
    }
}

/// clap's message without "error: ", usage and the pointer to `--help`.
fn message(error: &clap::Error) -> String {
    let rendered = error.render().to_string();
    let lines: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .filter(|line| {
            !line.is_empty() && !line.starts_with("Usage:") && !line.starts_with("For more")
        })
        .collect();
    let text = lines.join(" ");
    text.strip_prefix("error: ").unwrap_or(&text).to_owned()
}

/// The line (from 1) of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests;
