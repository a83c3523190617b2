//! Scripted conversations through [`Session`].

use super::*;

/// Feeds lines to a session, tracking stream offsets per direction, and collects events.
struct Script {
    session: Session,
    offsets: [u64; 2],
    events: Vec<Event>,
}

impl Script {
    fn new() -> Self {
        Self::with(Session::new(Limits::default()))
    }

    fn with(session: Session) -> Self {
        Self {
            session,
            offsets: [0, 0],
            events: Vec::new(),
        }
    }

    fn greeted() -> Self {
        let mut s = Self::new();
        s.server("220 ready")
            .client("USER anonymous")
            .server("331 pw")
            .client("PASS x")
            .server("230 ok");
        s.take();
        s
    }

    fn line(&mut self, dir: usize, text: &str, overlong: bool) -> &mut Self {
        let start = self.offsets[dir];
        self.offsets[dir] += text.len() as u64 + 2;
        let line = Line {
            text: text.as_bytes(),
            raw: (start, self.offsets[dir]),
            overlong,
        };
        if dir == 0 {
            self.session.handle_client_line(line, &mut self.events);
        } else {
            self.session.handle_server_line(line, &mut self.events);
        }
        self
    }

    fn client(&mut self, text: &str) -> &mut Self {
        self.line(0, text, false)
    }

    fn server(&mut self, text: &str) -> &mut Self {
        self.line(1, text, false)
    }

    fn take(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// The announcements only, as `trigger endpoint`.
    fn announced(&mut self) -> Vec<String> {
        self.take()
            .into_iter()
            .filter_map(|e| match e {
                Event::Announce {
                    trigger,
                    announced: Announced::Endpoint(ep),
                    ..
                } => Some(format!("{trigger} {ep}")),
                Event::Announce {
                    trigger,
                    announced: Announced::Port(p),
                    ..
                } => Some(format!("{trigger} :{p}")),
                _ => None,
            })
            .collect()
    }
}

#[test]
fn passive_227_is_announced_with_its_line() {
    let mut s = Script::greeted();
    let reply = "227 Entering Passive Mode (203,0,113,2,195,80).";
    s.client("PASV").server(reply);
    let events = s.take();
    let [
        Event::Announce {
            trigger,
            announced,
            line,
            ..
        },
    ] = events.as_slice()
    else {
        panic!("{events:?}")
    };
    assert_eq!(*trigger, Trigger::Reply227);
    let Announced::Endpoint(endpoint) = announced else {
        panic!("{announced:?}")
    };
    assert_eq!(endpoint.to_string(), "203.0.113.2:50000");
    let start = ["220 ready", "331 pw", "230 ok"]
        .iter()
        .map(|l| l.len() as u64 + 2)
        .sum::<u64>();
    assert_eq!(*line, (start, start + reply.len() as u64 + 2));
}

#[test]
fn active_port_is_announced_at_once_and_cancelled_by_an_error() {
    let mut s = Script::greeted();
    s.client("PORT 198,51,100,2,195,80");
    assert_eq!(s.announced(), vec!["PORT 198.51.100.2:50000"]);
    s.server("200 PORT command successful");
    assert!(s.take().is_empty());
    s.client("EPRT |1|198.51.100.2|50001|");
    let id = match s.take().as_slice() {
        [Event::Announce { id, .. }] => *id,
        other => panic!("{other:?}"),
    };
    s.server("500 Illegal EPRT command");
    assert_eq!(s.take(), vec![Event::Cancel(id)]);
}

#[test]
fn pipelined_commands_are_matched_in_order() {
    let mut s = Script::greeted();
    s.client("TYPE I")
        .client("PASV")
        .client("PORT 198,51,100,2,4,1")
        .client("PASV");
    let port = match s.take().as_slice() {
        [
            Event::Announce {
                id,
                trigger: Trigger::Port,
                ..
            },
        ] => *id,
        other => panic!("{other:?}"),
    };
    s.server("200 Type set to I")
        .server("227 Entering Passive Mode (203,0,113,2,195,80)")
        .server("500 no")
        .server("227 Entering Passive Mode (203,0,113,2,195,81)");
    let events = s.take();
    let ids: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            Event::Announce { id, .. } => Some(id.0),
            _ => None,
        })
        .collect();
    assert_eq!(
        ids,
        vec![port.0 - 1, port.0 + 1],
        "each 227 carries the index of the PASV it answers"
    );
    assert_eq!(events[1], Event::Cancel(port), "{events:?}");
    s.events = events;
    assert_eq!(
        s.announced(),
        vec!["227 203.0.113.2:50000", "227 203.0.113.2:50001"]
    );
}

#[test]
fn completed_transfers_spend_what_earlier_commands_announced() {
    let mut s = Script::greeted();
    s.client("PASV")
        .client("LIST")
        .client("PASV")
        .client("RETR f");
    s.server("227 (203,0,113,2,195,80)")
        .server("150 here")
        .server("226 done");
    let events = s.take();
    let [Event::Announce { id: first, .. }, Event::Transferred(list)] = events.as_slice() else {
        panic!("{events:?}")
    };
    assert!(first < list);
    s.server("227 (203,0,113,2,195,81)")
        .server("550 no such file");
    let events = s.take();
    let [Event::Announce { id: second, .. }] = events.as_slice() else {
        panic!("{events:?}")
    };
    assert!(
        second > list,
        "the second PASV came after LIST: not spent by it"
    );
    s.client("STOR g").server("150 ok").server("226 stored");
    assert!(matches!(s.take().as_slice(), [Event::Transferred(stor)] if stor > second));
}

#[test]
fn multi_line_227_with_the_address_in_either_line() {
    let mut s = Script::greeted();
    s.client("PASV")
        .server("227-Entering Passive Mode (203,0,113,2,195,80)")
        .server("227 OK");
    assert_eq!(s.announced(), vec!["227 203.0.113.2:50000"]);
    s.client("PASV")
        .server("227-Here it comes")
        .server("200 this is not the end")
        .server("227 Entering Passive Mode (203,0,113,2,195,81)");
    assert_eq!(s.announced(), vec!["227 203.0.113.2:50001"]);
}

#[test]
fn cross_answers_229_to_pasv_and_227_to_epsv() {
    let mut s = Script::greeted();
    s.client("PASV")
        .server("229 Entering Extended Passive Mode (|||6446|)");
    s.client("EPSV")
        .server("227 Entering Passive Mode (203,0,113,2,25,46)");
    s.client("LPSV")
        .server("228 Entering Long Passive Mode (4,4,203,0,113,2,2,25,47)");
    assert_eq!(
        s.announced(),
        vec!["229 :6446", "227 203.0.113.2:6446", "228 203.0.113.2:6447"]
    );
}

#[test]
fn unsolicited_and_refused_passive_replies_announce_nothing() {
    let mut s = Script::greeted();
    s.server("227 Entering Passive Mode (203,0,113,2,195,80)");
    assert_eq!(
        s.take(),
        vec![Event::Refuse(Trigger::Reply227, Refusal::Unsolicited)]
    );
    s.client("PASV").server("500 PASV not understood");
    s.server("227 Entering Passive Mode (203,0,113,2,195,80)");
    assert_eq!(
        s.take(),
        vec![Event::Refuse(Trigger::Reply227, Refusal::Unsolicited)]
    );
}

#[test]
fn malformed_lines_are_reported() {
    let mut s = Script::greeted();
    s.client("PORT 1,2,3,4,256,22").server("500 no");
    s.client("PASV").server("227 Logout.");
    assert_eq!(
        s.take(),
        vec![
            Event::Malformed(Trigger::Port, Error::Malformed("number over 255")),
            Event::Malformed(Trigger::Reply227, Error::Malformed("address")),
        ]
    );
}

#[test]
fn epsv_all_forbids_other_modes_until_rein() {
    let mut s = Script::greeted();
    s.client("EPSV ALL").server("200 EPSV ALL ok");
    s.client("PORT 198,51,100,2,4,1").server("500 no");
    s.client("PASV")
        .server("227 Entering Passive Mode (203,0,113,2,195,80)");
    s.client("EPSV")
        .server("229 Entering Extended Passive Mode (|||6446|)");
    let events = s.take();
    assert_eq!(events[0], Event::Refuse(Trigger::Port, Refusal::EpsvAll));
    assert_eq!(
        events[1],
        Event::Refuse(Trigger::Reply227, Refusal::EpsvAll)
    );
    assert!(matches!(
        events[2],
        Event::Announce {
            trigger: Trigger::Reply229,
            ..
        }
    ));
    s.client("REIN").server("220 again");
    assert_eq!(s.take(), vec![Event::Reset]);
    s.client("PORT 198,51,100,2,4,1");
    assert_eq!(s.announced(), vec!["PORT 198.51.100.2:1025"]);
}

#[test]
fn refused_epsv_all_changes_nothing() {
    let mut s = Script::greeted();
    s.client("EPSV ALL").server("502 not implemented");
    s.client("PORT 198,51,100,2,4,1");
    assert_eq!(s.announced(), vec!["PORT 198.51.100.2:1025"]);
}

#[test]
fn auth_tls_accepted_stops_parsing() {
    let mut s = Script::greeted();
    s.client("AUTH TLS").client("PORT 198,51,100,2,4,1");
    assert!(s.take().is_empty(), "lines after AUTH wait for its answer");
    s.server("234 AUTH TLS successful");
    assert_eq!(s.take(), vec![Event::Encrypt]);
    assert!(!s.session.is_parsing());
    s.client("PORT 198,51,100,2,4,2")
        .client("PASV")
        .server("227 (203,0,113,2,1,1)");
    assert!(s.take().is_empty());
}

#[test]
fn auth_refused_releases_held_lines() {
    let mut s = Script::greeted();
    s.client("AUTH TLS").client("PORT 198,51,100,2,4,1");
    s.server("534 not available");
    assert_eq!(s.announced(), vec!["PORT 198.51.100.2:1025"]);
    assert!(s.session.is_parsing());
}

#[test]
fn non_ftp_client_poisons_the_session() {
    let mut s = Script::new();
    s.server("220 ready")
        .client("POST /x HTTP/1.1")
        .client("PORT 198,51,100,2,0,25");
    assert_eq!(s.take(), vec![Event::Poison(Poison::ClientNotFtp)]);
    s.client("PASV")
        .server("227 Entering Passive Mode (203,0,113,2,195,80)");
    assert!(s.take().is_empty());
}

#[test]
fn no_greeting_means_no_parsing() {
    let mut s = Script::new();
    s.client("USER a").client("PORT 198,51,100,2,4,1");
    assert!(s.take().is_empty(), "held until a greeting");
    s.server("HTTP/1.1 400 Bad Request");
    assert_eq!(s.take(), vec![Event::Poison(Poison::ServerNotFtp)]);
    let mut ssh = Script::new();
    ssh.server("SSH-2.0-mod_sftp");
    assert_eq!(ssh.take(), vec![Event::Poison(Poison::ServerNotFtp)]);
    let mut wrong_code = Script::new();
    wrong_code.server("230 logged in");
    assert_eq!(wrong_code.take(), vec![Event::Poison(Poison::ServerNotFtp)]);
}

#[test]
fn commands_before_the_greeting_are_judged_after_it() {
    let mut s = Script::new();
    s.client("PASV")
        .client("RETR x")
        .client("PORT 114,115")
        .client("QUIT");
    assert!(s.take().is_empty());
    s.server("120 wait").server("220-multi").server("220 ready");
    assert_eq!(
        s.take(),
        vec![Event::Malformed(
            Trigger::Port,
            Error::Malformed("number of fields")
        )]
    );
    s.server("227 Fake response PASV")
        .server("550 no")
        .server("500 no")
        .server("221 bye");
    assert_eq!(
        s.take(),
        vec![
            Event::Malformed(Trigger::Reply227, Error::Malformed("address")),
            Event::Reset
        ]
    );
}

#[test]
fn greeting_421_closes() {
    let mut s = Script::new();
    s.server("421 too many users")
        .client("PORT 198,51,100,2,4,1");
    assert!(s.take().is_empty());
}

#[test]
fn too_many_held_lines_poison() {
    let mut s = Script::new();
    for _ in 0..Limits::default().max_held_lines {
        s.client("NOOP");
    }
    assert!(s.take().is_empty());
    s.client("NOOP");
    assert_eq!(s.take(), vec![Event::Poison(Poison::HeldOverflow)]);
}

#[test]
fn overlong_lines_are_malformed_but_keep_the_queue_aligned() {
    let mut s = Script::greeted();
    s.line(0, "RETR aaaaaaaaaa", true).client("PASV");
    s.line(1, "550 aaaaaaaaaa", true);
    s.server("227 (203,0,113,2,195,80)");
    assert_eq!(s.announced(), vec!["227 203.0.113.2:50000"]);
    s.client("PASV");
    s.line(1, "227 AAAAAAAAAAAAAAAA", true);
    assert_eq!(
        s.take(),
        vec![Event::Malformed(Trigger::Reply227, Error::Overlong)]
    );
    s.line(0, "PORT 198,51,100,2,4", true);
    assert_eq!(
        s.take(),
        vec![Event::Malformed(Trigger::Port, Error::Overlong)]
    );
}

#[test]
fn quit_resets() {
    let mut s = Script::greeted();
    s.client("QUIT").server("221 Goodbye.");
    assert_eq!(s.take(), vec![Event::Reset]);
}

#[test]
fn picked_up_session_accepts_one_reply_to_a_missed_command() {
    let mut s = Script::with(Session::picked_up(Limits::default()));
    s.server("227 Entering Passive Mode (203,0,113,2,195,80)");
    s.server("227 Entering Passive Mode (203,0,113,2,195,81)");
    let events = s.take();
    assert!(matches!(events[0], Event::Announce { .. }));
    assert_eq!(
        events[1],
        Event::Refuse(Trigger::Reply227, Refusal::Unsolicited)
    );
    s.client("GET / HTTP/1.0");
    assert_eq!(
        s.take(),
        vec![Event::Poison(Poison::ClientNotFtp)],
        "first client line still vetted"
    );
}

#[test]
fn server_gap_forgets_the_queue() {
    let mut s = Script::greeted();
    s.client("PORT 198,51,100,2,4,1").client("PASV");
    s.take();
    s.session.handle_server_gap();
    s.server("500 late error for something");
    assert!(s.take().is_empty(), "no cancel attributed after a gap");
    s.server("227 (203,0,113,2,195,80)");
    assert_eq!(s.announced(), vec!["227 203.0.113.2:50000"]);
}

#[test]
fn pipelining_depth_is_bounded() {
    let limits = Limits {
        max_pending: 2,
        ..Limits::default()
    };
    let mut s = Script::with(Session::new(limits));
    s.server("220 ready")
        .client("PASV")
        .client("NOOP")
        .client("NOOP");
    s.server("227 (203,0,113,2,195,80)");
    assert_eq!(
        s.announced(),
        vec!["227 203.0.113.2:50000"],
        "forgotten PASV counted as lost"
    );
}

#[test]
fn after_lost_commands_revoking_replies_are_not_trusted() {
    let mut s = Script::greeted();
    s.client("PASV").server("227 (203,0,113,2,195,80)");
    s.take();
    s.session.handle_client_gap(); // say "TYPE I" was lost here
    s.client("RETR f").client("PORT 198,51,100,2,195,81");
    s.take();
    // "200" answers the lost TYPE, but would pop RETR; "500" answers RETR, but would pop PORT.
    s.server("200 Type set")
        .server("500 no")
        .server("200 PORT ok");
    assert!(
        s.take().is_empty(),
        "no Transferred, no Cancel while misaligned"
    );
    s.server("226 late").server("221 bye");
    assert_eq!(
        s.take(),
        vec![Event::Reset],
        "221 needs no queue; the queue realigned meanwhile"
    );
    s.client("NOOP")
        .server("200 ok")
        .client("RETR g")
        .server("226 done");
    assert!(
        matches!(s.take().as_slice(), [Event::Transferred(_)]),
        "aligned again"
    );
}

#[test]
fn auth_answered_234_even_when_the_command_was_missed() {
    let mut s = Script::greeted();
    s.session.handle_client_gap();
    s.server("234 AUTH TLS ok");
    assert_eq!(s.take(), vec![Event::Encrypt]);
    assert!(!s.session.is_parsing());
}

#[test]
fn held_lines_are_counted_and_freed() {
    let mut s = Script::new();
    s.client("USER a").client("PASS b");
    assert_eq!(s.session.buffered(), 12);
    s.server("220 hi");
    assert_eq!(s.session.buffered(), 0, "released at the greeting");
    s.client("AUTH TLS").client("PBSZ 0");
    assert_eq!(s.session.buffered(), 6);
    s.server("234 go");
    assert_eq!(
        s.session.buffered(),
        0,
        "dropped when the channel turns to TLS"
    );
}
