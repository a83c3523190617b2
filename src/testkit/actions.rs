//! Test support: the engine's actions as short, time-free lines (`install KEY TRIGGER`,
//! `remove KEY REASON`, `refuse TRIGGER REASON`, `note …`, `release ID`), so a test states
//! the outcome it expects as a list of strings; and the loop that feeds a conversation's
//! packets to an engine and collects them.

use crate::action::Action;
use crate::action::Note;
use crate::action::Verdict;
use crate::engine::Engine;
use crate::testkit::conversation::Packet;

/// One line for `action`, without times.
pub fn describe(action: &Action) -> String {
    match action {
        Action::Install(e) => format!("install {} {}", e.key, e.trigger),
        Action::Remove(r) => format!("remove {} {}", r.expectation.key, r.reason.as_str()),
        Action::Refuse(r) => format!("refuse {} {}", r.trigger, r.reason.as_str()),
        Action::Note(Note::Conflict { .. }) => "note conflict".into(),
        Action::Note(Note::Encrypted { .. }) => "note encrypted".into(),
        Action::Note(Note::Poisoned { reason, .. }) => format!("note poisoned {}", reason.as_str()),
        Action::Release(r) => format!("release {}", r.id.0),
    }
}

/// Every action `engine` has queued, described.
pub fn drain(engine: &mut Engine) -> Vec<String> {
    std::iter::from_fn(|| engine.poll_action())
        .map(|a| describe(&a))
        .collect()
}

/// Feeds `packets` to `engine`, each of which must be released as it is
/// ([`Verdict::Accept`]), and returns every action it queued, described.
pub fn feed(engine: &mut Engine, packets: &[Packet]) -> Vec<String> {
    for p in packets {
        assert_eq!(engine.handle_packet(p.time, &p.bytes), Verdict::Accept);
    }
    drain(engine)
}
