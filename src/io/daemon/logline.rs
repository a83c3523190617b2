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

/// The log line for `action` and whether it is worth a warning rather than information.
pub(crate) fn describe(action: &Action) -> (log::Level, String) {
    match action {
        Action::Install(expectation) => (log::Level::Info, install(expectation)),
        Action::Remove(removal) => (log::Level::Info, revoke(removal)),
        Action::Refuse(refusal) => (log::Level::Warn, refuse(refusal)),
        Action::Note(note @ Note::Poisoned { .. }) => (log::Level::Warn, self::note(note)),
        Action::Note(note) => (log::Level::Info, self::note(note)),
    }
}

fn install(e: &Expectation) -> String {
    format!(
        "install {} lifetime={} mode={} trigger={} control={}",
        e.key, e.lifetime, e.mode, e.trigger, e.control
    )
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
        let (level, line) = describe(&Action::Install(e.clone()));
        assert_eq!(level, log::Level::Info);
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
        let (_, line) = describe(&Action::Remove(Removal {
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
