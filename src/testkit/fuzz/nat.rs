//! The `nat_rewrite` target: the sequence ledger ([`Ledger`]) under arbitrary edits,
//! segmentations, retransmissions and acknowledgements, and the line rewriter
//! ([`text::rewrite`]) on arbitrary lines.
//!
//! Ledger invariants (as in `src/nat/ledger/tests.rs`, with edits pushed while the stream is
//! under way, as the engine does): a segment's rewritten bytes exactly fill its mapped range;
//! the far side reassembles exactly the rewritten stream, every retransmission carrying the
//! bytes of the first copy (the far side ignores what it has acknowledged); `unmap(map(x)) == x`
//! at every segment end not strictly inside an edit; acknowledgements map back monotonically
//! and never past what was sent. Rewriter invariants: never a panic; a rewritten line keeps its
//! terminator, stays one line, and announces the public endpoint when the original announced
//! an endpoint of that kind.

use std::net::IpAddr;
use std::net::Ipv4Addr;
use std::net::Ipv6Addr;
use std::num::NonZeroU16;

use arbitrary::Arbitrary;
use arbitrary::Unstructured;

use crate::ftp::DataEndpoint;
use crate::ftp::Trigger;
use crate::ftp::command;
use crate::ftp::command::Command;
use crate::ftp::reply;
use crate::nat::ledger::EditError;
use crate::nat::ledger::Ledger;
use crate::nat::text;

/// The harness (see the module doc): the first byte picks the half.
pub fn nat_rewrite(data: &[u8]) {
    let Some((first, rest)) = data.split_first() else {
        return;
    };
    let mut u = Unstructured::new(rest);
    if first % 2 == 0 {
        if let Ok(plan) = Plan::arbitrary(&mut u) {
            ledger(&plan);
        }
    } else if let Ok(case) = TextCase::arbitrary(&mut u) {
        rewrite(&case);
    }
}

/// A stream of lines, some replaced, and what happens to it.
#[derive(Debug, Arbitrary)]
struct Plan {
    lines: Vec<(u8, Option<u8>)>,
    ops: Vec<LedgerOp>,
}

#[derive(Debug, Arbitrary)]
enum LedgerOp {
    /// The next planned edit is made (its line is complete).
    Push,
    /// The sender sends (or resends) bytes.
    Send { from: u16, len: u16 },
    /// The far side acknowledges what it holds contiguously.
    Ack,
}

/// One planned edit: old bytes `at..at + old_len` become `new`.
struct Planned {
    at: u64,
    old_len: u64,
    new: Vec<u8>,
}

/// The far side and the harness's bookkeeping.
struct Far {
    bytes: Vec<Option<u8>>,
    /// The far side acknowledged (and so discards) everything before this.
    acked: u64,
}

fn ledger(plan: &Plan) {
    let (stream, planned) = build(plan);
    let total = stream.len() as u64;
    let mut ledger = Ledger::default();
    let mut applied: Vec<&Planned> = Vec::new();
    let mut next = 0;
    let mut far = Far {
        bytes: Vec::new(),
        acked: 0,
    };
    let mut ends = Vec::new();
    for op in &plan.ops {
        match op {
            LedgerOp::Push => push(&mut ledger, &planned, &mut next, &mut applied),
            LedgerOp::Send { from, len } => {
                // Bytes of a line whose edit is not made yet are held back, as the engine does.
                let limit = planned.get(next).map_or(total, |p| p.at);
                let a = u64::from(*from) % (total + 1);
                let b = (a + u64::from(*len)).min(limit);
                if a < b {
                    send(&ledger, &stream, a, b, &mut far);
                    ends.push(b);
                }
            }
            LedgerOp::Ack => {
                let y = far.bytes.iter().take_while(|b| b.is_some()).count() as u64;
                far.acked = far.acked.max(y);
                ledger.settle(ledger.unmap(y));
            }
        }
    }
    while next < planned.len() {
        push(&mut ledger, &planned, &mut next, &mut applied);
    }
    send(&ledger, &stream, 0, total, &mut far);
    ends.push(total);
    let expected = rewritten(&stream, &applied);
    assert_eq!(ledger.map(total), expected.len() as u64);
    let got: Option<Vec<u8>> = far.bytes.iter().copied().collect();
    assert_eq!(got.as_deref(), Some(&expected[..]), "the far side's stream");
    for end in ends {
        let inside = applied.iter().any(|e| e.at < end && end < e.at + e.old_len);
        if !inside {
            assert_eq!(ledger.unmap(ledger.map(end)), end, "unmap(map({end}))");
        }
    }
    let mut last = 0;
    for y in 0..=expected.len() as u64 {
        let x = ledger.unmap(y);
        assert!(x >= last && x <= total, "unmap({y}) = {x}");
        last = x;
    }
}

/// The stream (line `i` is `len` copies of a letter and an LF) and the planned edits.
fn build(plan: &Plan) -> (Vec<u8>, Vec<Planned>) {
    let mut stream = Vec::new();
    let mut planned = Vec::new();
    for (i, (len, replaced)) in plan.lines.iter().take(200).enumerate() {
        let at = stream.len() as u64;
        stream.extend(std::iter::repeat_n(
            b'a' + (i % 26) as u8,
            usize::from(*len),
        ));
        stream.push(b'\n');
        if let Some(new_len) = replaced {
            let mut new = vec![b'A' + (i % 26) as u8; usize::from(*new_len)];
            new.push(b'\n');
            planned.push(Planned {
                at,
                old_len: u64::from(*len) + 1,
                new,
            });
        }
    }
    (stream, planned)
}

fn push<'a>(
    ledger: &mut Ledger,
    planned: &'a [Planned],
    next: &mut usize,
    applied: &mut Vec<&'a Planned>,
) {
    let Some(edit) = planned.get(*next) else {
        return;
    };
    *next += 1;
    match ledger.push(edit.at, edit.old_len, &edit.new) {
        Ok(()) => applied.push(edit),
        // Too many edits unacknowledged: the line goes out as it was.
        Err(EditError::Full) => {}
        Err(error) => panic!("an edit in stream order refused: {error:?}"),
    }
}

/// The sender's bytes `a..b` reach the far side through the ledger.
fn send(ledger: &Ledger, stream: &[u8], a: u64, b: u64, far: &mut Far) {
    let mut out = Vec::new();
    ledger.output(a, &stream[a as usize..b as usize], &mut out);
    let start = ledger.map(a);
    assert_eq!(
        start + out.len() as u64,
        ledger.map(b),
        "segment {a}..{b} length"
    );
    for (i, byte) in out.iter().enumerate() {
        let at = start + i as u64;
        if at < far.acked {
            continue;
        }
        let at = at as usize;
        if far.bytes.len() <= at {
            far.bytes.resize(at + 1, None);
        }
        let slot = &mut far.bytes[at];
        assert!(
            slot.is_none_or(|had| had == *byte),
            "retransmission {a}..{b} differs at {at}"
        );
        *slot = Some(*byte);
    }
}

/// The stream with every applied edit made: what the far side must reassemble.
fn rewritten(stream: &[u8], edits: &[&Planned]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut x = 0;
    for edit in edits {
        out.extend_from_slice(&stream[x..edit.at as usize]);
        out.extend_from_slice(&edit.new);
        x = (edit.at + edit.old_len) as usize;
    }
    out.extend_from_slice(&stream[x..]);
    out
}

/// One line to rewrite.
#[derive(Debug, Arbitrary)]
struct TextCase {
    start: Start,
    body: Vec<u8>,
    terminator: Terminator,
    trigger: Kind,
    public: Public,
    port: u16,
}

#[derive(Debug, Clone, Copy, Arbitrary)]
enum Start {
    Raw,
    Port,
    Eprt,
    Reply227,
    Reply229,
}

#[derive(Debug, Clone, Copy, Arbitrary)]
enum Terminator {
    None,
    Lf,
    CrLf,
}

#[derive(Debug, Clone, Copy, Arbitrary)]
enum Kind {
    Port,
    Eprt,
    Lprt,
    Reply227,
    Reply228,
    Reply229,
}

#[derive(Debug, Clone, Copy, Arbitrary)]
enum Public {
    V4([u8; 4]),
    V6([u8; 16]),
}

fn rewrite(case: &TextCase) {
    let mut raw: Vec<u8> = match case.start {
        Start::Raw => Vec::new(),
        Start::Port => b"PORT ".to_vec(),
        Start::Eprt => b"EPRT ".to_vec(),
        Start::Reply227 => b"227 ".to_vec(),
        Start::Reply229 => b"229 ".to_vec(),
    };
    raw.extend(case.body.iter().filter(|&&b| b != b'\n'));
    let terminator: &[u8] = match case.terminator {
        Terminator::None => b"",
        Terminator::Lf => b"\n",
        Terminator::CrLf => b"\r\n",
    };
    raw.extend_from_slice(terminator);
    let trigger = match case.trigger {
        Kind::Port => Trigger::Port,
        Kind::Eprt => Trigger::Eprt,
        Kind::Lprt => Trigger::Lprt,
        Kind::Reply227 => Trigger::Reply227,
        Kind::Reply228 => Trigger::Reply228,
        Kind::Reply229 => Trigger::Reply229,
    };
    let public = match case.public {
        Public::V4(a) => IpAddr::V4(Ipv4Addr::from(a)),
        Public::V6(a) => IpAddr::V6(Ipv6Addr::from(a)),
    };
    let port = NonZeroU16::new(case.port).unwrap_or(NonZeroU16::MIN);
    // Arbitrary bytes, terminators inside included: never a panic.
    let _ = text::rewrite(&case.body, trigger, public, port.get());
    rewrite_line(&raw, trigger, public, port);
}

/// The rewriter's invariants on one raw line (terminator included): a rewritten line keeps the
/// terminator, stays one line, and announces `public`:`port` if the original line announced an
/// endpoint the way `trigger` does. Public for the regression tests.
pub fn rewrite_line(raw: &[u8], trigger: Trigger, public: IpAddr, port: NonZeroU16) {
    let Some(out) = text::rewrite(raw, trigger, public, port.get()) else {
        return;
    };
    let out_text = line_text(&out);
    assert!(
        out.ends_with(line_terminator(raw)),
        "terminator lost: {out:?}"
    );
    assert!(
        !out_text.contains(&b'\n') && !out.contains(&0xff),
        "{out:?}"
    );
    let endpoint = DataEndpoint { addr: public, port };
    let text = line_text(raw);
    match trigger {
        Trigger::Port | Trigger::Eprt => {
            if let Command::Active(t, _) = command::parse(text) {
                if t == trigger {
                    assert_eq!(command::parse(out_text), Command::Active(trigger, endpoint));
                }
            }
        }
        Trigger::Reply227 => {
            if reply_text(text, 227).is_some_and(|t| reply::passive_227(t).is_ok()) {
                let out = reply_text(out_text, 227).expect("still a 227");
                assert_eq!(
                    reply::passive_227(out),
                    Ok(endpoint),
                    "{:?}",
                    String::from_utf8_lossy(out_text)
                );
            }
        }
        Trigger::Reply229 => {
            if reply_text(text, 229).is_some_and(|t| reply::extended_passive_229(t).is_ok()) {
                let out = reply_text(out_text, 229).expect("still a 229");
                assert_eq!(reply::extended_passive_229(out), Ok(port));
            }
        }
        Trigger::Lprt | Trigger::Reply228 => {}
    }
}

/// The text the framer hands on: the line without its LF and one CR before it.
fn line_text(raw: &[u8]) -> &[u8] {
    let text = raw.strip_suffix(b"\n").unwrap_or(raw);
    if raw.len() != text.len() {
        text.strip_suffix(b"\r").unwrap_or(text)
    } else {
        text
    }
}

fn line_terminator(raw: &[u8]) -> &[u8] {
    &raw[line_text(raw).len()..]
}

/// The text of a reply line with this code.
fn reply_text(line: &[u8], code: u16) -> Option<&[u8]> {
    reply::parse_line(line)
        .filter(|l| l.code.0 == code)
        .map(|l| l.text)
}
