//! One structured log line per action: what the daemon installed, refused or revoked, and
//! why.
//!
//! Owns: the wording of the daemon's event lines (`key=value` fields after a verb, stable so
//! that scripts and the lab tests can read them).

use crate::action::Action;
use crate::action::Note;
use crate::action::Refusal;
use crate::action::Removal;
use crate::expect::Expectation;
use crate::flow::Direction;

/// Whether `action` is worth a warning rather than information.
pub(crate) fn level(action: &Action) -> log::Level {
    match action {
        Action::Refuse(_) | Action::Note(Note::Poisoned { .. }) => log::Level::Warn,
        Action::Install(_) | Action::Remove(_) | Action::Note(_) => log::Level::Info,
        Action::Release(_) => log::Level::Debug,
    }
}

/// The log line for `action` (formatted only when called: check the level first).
pub(crate) fn describe(action: &Action) -> String {
    match action {
        Action::Install(expectation) => install(expectation),
        Action::Remove(removal) => revoke(removal),
        Action::Refuse(refusal) => refuse(refusal),
        Action::Note(note) => self::note(note),
        Action::Release(release) => format!(
            "release held={} rewritten={}",
            release.id.0, release.rewritten
        ),
    }
}

fn install(e: &Expectation) -> String {
    let mut line = format!(
        "install {} lifetime={} mode={} trigger={} control={}",
        e.key, e.lifetime, e.mode, e.trigger, e.control
    );
    if let Some(nat) = e.nat {
        line += &match nat.public {
            std::net::IpAddr::V4(ip) => format!(" public={ip}:{}", nat.port),
            std::net::IpAddr::V6(ip) => format!(" public=[{ip}]:{}", nat.port),
        };
    }
    line
}

fn revoke(r: &Removal) -> String {
    let e = &r.expectation;
    format!(
        "revoke {} reason={} trigger={} control={}",
        e.key,
        r.reason.as_str(),
        e.trigger,
        e.control
    )
}

fn refuse(r: &Refusal) -> String {
    let endpoint = r
        .endpoint
        .map_or_else(|| "unparsed".to_owned(), |endpoint| endpoint.to_string());
    format!(
        "refuse endpoint={endpoint} reason={} trigger={} control={}",
        r.reason, r.trigger, r.control
    )
}

fn note(note: &Note) -> String {
    match note {
        Note::Conflict {
            control, direction, ..
        } => {
            let from = match direction {
                Direction::Original => "client",
                Direction::Reply => "server",
            };
            format!("conflict overlapping bytes differ from={from} control={control}")
        }
        Note::Encrypted { control, .. } => format!("encrypted control={control}"),
        Note::Poisoned {
            control, reason, ..
        } => format!("not-ftp reason={} control={control}", reason.as_str()),
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
        let line = describe(&action);
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
        }));
        assert!(
            line.starts_with(&format!("revoke {} reason=transfer-done", e.key)),
            "{line}"
        );
    }
}
