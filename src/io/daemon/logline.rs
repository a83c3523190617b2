//! One structured log line per action: what the daemon installed, refused or revoked, and
//! why.
//!
//! Owns: the wording of the daemon's event lines (`key=value` fields after a verb, stable so
//! that scripts and the lab tests can read them).

use std::fmt;

use crate::action::Action;
use crate::action::FTPS_ADVICE;
use crate::action::FTPS_DOC;
use crate::action::Note;
use crate::action::Refusal;
use crate::action::Removal;
use crate::addr_text;
use crate::expect::Expectation;
use crate::flow::Direction;

/// Whether `action` is worth a warning rather than information.
pub(crate) fn level(action: &Action) -> log::Level {
    match action {
        Action::Refuse(_) | Action::Note(Note::Encrypted { .. } | Note::Poisoned { .. }) => {
            log::Level::Warn
        }
        Action::Install(_) | Action::Remove(_) | Action::Note(_) => log::Level::Info,
        Action::Release(_) => log::Level::Debug,
    }
}

/// The log line for `action`, written straight into the logger's buffer (formatted only
/// when displayed: check the level first).
pub(crate) fn describe(action: &Action) -> Line<'_> {
    Line(action)
}

/// [`describe`]'s line: formats itself, with no intermediate `String`.
pub(crate) struct Line<'a>(&'a Action);

impl fmt::Display for Line<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Action::Install(expectation) => install(f, expectation),
            Action::Remove(removal) => revoke(f, removal),
            Action::Refuse(refusal) => refuse(f, refusal),
            Action::Note(note) => self::note(f, note),
            Action::Release(release) => write!(
                f,
                "release held={} rewritten={}",
                release.id.0, release.rewritten
            ),
        }
    }
}

fn install(f: &mut fmt::Formatter<'_>, e: &Expectation) -> fmt::Result {
    write!(
        f,
        "install {} lifetime={} mode={} trigger={} control={}",
        e.key, e.lifetime, e.mode, e.trigger, e.control
    )?;
    match e.nat {
        Some(nat) => {
            f.write_str(" public=")?;
            addr_text::fmt_socket(f, std::net::SocketAddr::new(nat.public, nat.port.get()))
        }
        None => Ok(()),
    }
}

fn revoke(f: &mut fmt::Formatter<'_>, r: &Removal) -> fmt::Result {
    let e = &r.expectation;
    write!(
        f,
        "revoke {} reason={} trigger={} control={}",
        e.key,
        r.reason.as_str(),
        e.trigger,
        e.control
    )
}

fn refuse(f: &mut fmt::Formatter<'_>, r: &Refusal) -> fmt::Result {
    f.write_str("refuse endpoint=")?;
    match r.endpoint {
        Some(endpoint) => write!(f, "{endpoint}")?,
        None => f.write_str("unparsed")?,
    }
    write!(
        f,
        " reason={} trigger={} control={}",
        r.reason, r.trigger, r.control
    )
}

fn note(f: &mut fmt::Formatter<'_>, note: &Note) -> fmt::Result {
    match note {
        Note::Conflict {
            control, direction, ..
        } => {
            let from = match direction {
                Direction::Original => "client",
                Direction::Reply => "server",
            };
            write!(
                f,
                "conflict overlapping bytes differ from={from} control={control}"
            )
        }
        Note::Encrypted { control, .. } => write!(
            f,
            "encrypted control={control} see={FTPS_DOC}: {FTPS_ADVICE}"
        ),
        Note::Poisoned {
            control, reason, ..
        } => write!(f, "not-ftp reason={} control={control}", reason.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expect::Revocation;
    use crate::testkit::fixtures::passive_expectation;
    use crate::time::Duration;
    use crate::time::Instant;

    #[test]
    fn install_and_revoke_lines_carry_key_and_reason() {
        let e = passive_expectation(50000, 1, Instant::from_micros(0), Duration::from_secs(30));
        let action = Action::Install(e.clone());
        let line = describe(&action).to_string();
        assert_eq!(level(&action), log::Level::Info);
        assert!(
            line.starts_with(&format!("install {} lifetime=", e.key)),
            "{line}"
        );
        assert!(
            line.contains(&format!(
                "mode=passive trigger={} control={}",
                e.trigger, e.control
            )),
            "{line}"
        );
        let line = describe(&Action::Remove(Removal {
            time: e.created,
            expectation: e.clone(),
            reason: Revocation::TransferDone,
        }))
        .to_string();
        assert!(
            line.starts_with(&format!("revoke {} reason=transfer-done", e.key)),
            "{line}"
        );
    }

    #[test]
    fn an_encrypted_session_is_a_warning_pointing_to_the_ftps_fallback() {
        let action = Action::Note(Note::Encrypted {
            time: Instant::from_micros(0),
            control: crate::flow::Control {
                client: "198.51.100.2:40000".parse().unwrap(),
                server: "203.0.113.2:21".parse().unwrap(),
            },
        });
        assert_eq!(level(&action), log::Level::Warn);
        assert_eq!(
            describe(&action).to_string(),
            "encrypted control=198.51.100.2:40000 -> 203.0.113.2:21 see=docs/deploy.md#ftps: \
             this session's data connections cannot be opened by ftp-alg; see the FTPS fallback"
        );
    }
}
