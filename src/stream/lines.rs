//! [`Framer`]: bytes of one stream direction cut into lines, Telnet commands removed.
//!
//! Owns: line framing on LF with an optional preceding CR (RFC 959 §4.1 asks for CRLF; bare LF
//! is accepted because real clients send it, and the kernel helper's refusal of it breaks
//! them), removal of Telnet IAC sequences (RFC 959 §4.1.2 and RFC 854: the control connection
//! is a Telnet NVT; `IAC IAC` is a literal 0xFF, `IAC WILL/WONT/DO/DONT x` and `IAC <cmd>` are
//! dropped, as ProFTPD does), a hard cap on line length (a longer line keeps only its first
//! bytes and is flagged, the rest is discarded up to its end), and resynchronisation after a
//! gap or at mid-stream pickup: nothing is framed until an LF confirms a line boundary.
//! Each line keeps its raw stream offsets so that a rewrite can find its bytes.

use std::io;
use std::ops::Range;

use super::Sink;
use super::Spares;
use crate::snapshot::Decoder;
use crate::snapshot::Encoder;
use crate::snapshot::SnapshotError;

const LF: u8 = b'\n';
const CR: u8 = b'\r';
/// Telnet "interpret as command" (RFC 854).
const IAC: u8 = 255;
/// Telnet WILL, WONT, DO and DONT take one option byte (RFC 854).
const OPTION_VERBS: std::ops::RangeInclusive<u8> = 251..=254;
/// Telnet commands from SE (240) to SB (250) take no argument here.
const COMMANDS: std::ops::RangeInclusive<u8> = 240..=250;

/// Cuts one direction's bytes into lines. Holds only the unfinished line (freed between
/// lines, so an idle connection holds nothing); finished lines go to a [`Lines`] arena the
/// caller owns and reuses for every connection.
#[derive(Debug, Clone)]
pub struct Framer {
    current: Vec<u8>,
    start: u64,
    overlong: bool,
    telnet: Telnet,
    synced: bool,
    max_line: usize,
}

/// A framer writing its lines into an arena: the [`Sink`] a stream delivers to.
#[derive(Debug)]
pub struct Framing<'a> {
    /// The direction's framer.
    pub framer: &'a mut Framer,
    /// Where its finished lines go.
    pub lines: &'a mut Lines,
}

/// Lines framed and not yet handled (an arena: one buffer for all their text).
#[derive(Debug, Clone, Default)]
pub struct Lines {
    text: Vec<u8>,
    entries: Vec<Entry>,
    /// Spare history buffers for the streams that deliver here (scratch, like the arena).
    spares: Spares,
}

/// One framed line, terminator and Telnet commands removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    /// The line's text (at most the framer's cap; see `overlong`).
    pub text: &'a [u8],
    /// Stream offsets of the raw line, terminator included.
    pub raw: (u64, u64),
    /// The line was longer than the cap: `text` holds only its first bytes.
    pub overlong: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Telnet {
    Data,
    Command,
    Option,
}

#[derive(Debug, Clone)]
struct Entry {
    text: Range<usize>,
    raw: (u64, u64),
    overlong: bool,
}

impl Framer {
    /// A framer whose lines hold at most `max_line` bytes. `synced` says whether the stream is
    /// known to start at a line boundary (false when picking up mid-stream).
    pub fn new(max_line: usize, synced: bool) -> Self {
        Self {
            current: Vec::new(),
            start: 0,
            overlong: false,
            telnet: Telnet::Data,
            synced,
            max_line,
        }
    }

    /// Write the unfinished line and the framing state.
    pub fn save(&self, e: &mut Encoder<'_>) -> io::Result<()> {
        e.bytes(&self.current)?;
        e.u64(self.start)?;
        e.bool(self.overlong)?;
        e.u8(match self.telnet {
            Telnet::Data => 0,
            Telnet::Command => 1,
            Telnet::Option => 2,
        })?;
        e.bool(self.synced)
    }

    /// Read what [`Framer::save`] wrote, for lines of at most `max_line` bytes.
    pub fn load(d: &mut Decoder<'_>, max_line: usize) -> Result<Self, SnapshotError> {
        let current = d.bytes(max_line, "unfinished line")?;
        let start = d.u64()?;
        let overlong = d.bool("overlong flag")?;
        let telnet = match d.u8()? {
            0 => Telnet::Data,
            1 => Telnet::Command,
            2 => Telnet::Option,
            _ => return Err(SnapshotError::Invalid("telnet state")),
        };
        let synced = d.bool("synced flag")?;
        Ok(Self {
            current,
            start,
            overlong,
            telnet,
            synced,
            max_line,
        })
    }

    /// Bytes held for the current, unfinished line.
    pub fn buffered(&self) -> usize {
        self.current.len()
    }

    /// Give back the unfinished line's buffer if there is no unfinished line.
    pub fn release(&mut self) {
        if self.current.is_empty() && self.current.capacity() > 0 {
            self.current = Vec::new();
        }
    }

    /// Drop the unfinished line under memory pressure, as after a gap: nothing more is framed
    /// until an LF confirms a line boundary. Returns the bytes dropped.
    pub fn drop_partial(&mut self) -> usize {
        let dropped = self.current.len();
        if dropped > 0 {
            self.current = Vec::new();
            self.overlong = false;
            self.telnet = Telnet::Data;
            self.synced = false;
        }
        dropped
    }

    /// Where the current line started (the end of the last complete line).
    pub fn line_start(&self) -> u64 {
        self.start
    }

    /// True while waiting for an LF to resynchronise.
    pub fn is_synced(&self) -> bool {
        self.synced
    }

    fn push_byte(&mut self, byte: u8) {
        if self.current.len() < self.max_line {
            self.current.push(byte);
        } else {
            self.overlong = true;
        }
    }

    fn push_run(&mut self, run: &[u8]) {
        let room = self.max_line - self.current.len().min(self.max_line);
        self.current.extend_from_slice(&run[..run.len().min(room)]);
        self.overlong |= run.len() > room;
    }

    fn end_line(&mut self, end: u64, out: &mut Lines) {
        let text = self.current.strip_suffix(&[CR]).unwrap_or(&self.current);
        push_line(out, self.synced, (self.start, end), text, self.overlong);
        self.synced = true;
        self.current.clear();
        self.overlong = false;
        self.start = end;
    }

    /// A whole line (`run`, its LF excluded) found in one piece with nothing of it held yet:
    /// framed straight from the segment's bytes, as [`Self::push_run`] then
    /// [`Self::end_line`] would, without copying it into `current` (whose buffer is given
    /// back between segments, so that copy would cost an allocation per line).
    fn whole_line(&mut self, run: &[u8], end: u64, out: &mut Lines) {
        let kept = &run[..run.len().min(self.max_line)];
        let text = kept.strip_suffix(&[CR]).unwrap_or(kept);
        push_line(
            out,
            self.synced,
            (self.start, end),
            text,
            run.len() > self.max_line,
        );
        self.synced = true;
        self.start = end;
    }

    fn handle_telnet(&mut self, byte: u8) {
        self.telnet = match (self.telnet, byte) {
            (Telnet::Data, IAC) => Telnet::Command,
            (Telnet::Data, _) => {
                self.push_byte(byte);
                Telnet::Data
            }
            (Telnet::Command, IAC) => {
                self.push_byte(IAC);
                Telnet::Data
            }
            (Telnet::Command, b) if OPTION_VERBS.contains(&b) => Telnet::Option,
            (Telnet::Command, b) if COMMANDS.contains(&b) => Telnet::Data,
            (Telnet::Command, b) => {
                self.push_byte(b);
                Telnet::Data
            }
            (Telnet::Option, _) => Telnet::Data,
        };
    }
}

impl Framer {
    /// Bytes starting at stream offset `offset`; finished lines go to `out`.
    pub fn data(&mut self, offset: u64, bytes: &[u8], out: &mut Lines) {
        let mut at = 0;
        while at < bytes.len() {
            if self.telnet == Telnet::Data {
                let run_end = find_stop(&bytes[at..]).map_or(bytes.len(), |p| at + p);
                if bytes.get(run_end) == Some(&LF) && self.current.is_empty() && !self.overlong {
                    let run = &bytes[at..run_end];
                    at = run_end + 1;
                    self.whole_line(run, offset + at as u64, out);
                    continue;
                }
                self.push_run(&bytes[at..run_end]);
                at = run_end;
                if at == bytes.len() {
                    break;
                }
            }
            let byte = bytes[at];
            at += 1;
            // After a bare IAC an LF still ends the line; after WILL/WONT/DO/DONT it is the
            // option byte, as a Telnet receiver (and ProFTPD) reads it.
            if byte == LF && self.telnet != Telnet::Option {
                self.telnet = Telnet::Data;
                self.end_line(offset + at as u64, out);
            } else {
                self.handle_telnet(byte);
            }
        }
    }

    /// Bytes up to `to` will never be seen: drop the unfinished line and resynchronise.
    pub fn gap(&mut self, to: u64) {
        self.current.clear();
        self.overlong = false;
        self.telnet = Telnet::Data;
        self.synced = false;
        self.start = to;
    }
}

/// Add a framed line to `out`, unless the framer is not yet in sync (the first line after a
/// gap or a pickup may be a tail).
fn push_line(out: &mut Lines, synced: bool, raw: (u64, u64), text: &[u8], overlong: bool) {
    if synced {
        let from = out.text.len();
        out.text.extend_from_slice(text);
        out.entries.push(Entry {
            text: from..out.text.len(),
            raw,
            overlong,
        });
    }
}

/// The position of the first LF or IAC in `bytes`: eight bytes at a time (the "has a zero
/// byte" word trick on `word ^ LF` and `word ^ IAC`; its lowest flagged byte is always a true
/// match), the tail byte by byte.
fn find_stop(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    let zero_bytes = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let mut chunks = bytes.chunks_exact(8);
    let mut at = 0;
    for chunk in chunks.by_ref() {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        let found =
            zero_bytes(word ^ (ONES * u64::from(LF))) | zero_bytes(word ^ (ONES * u64::from(IAC)));
        if found != 0 {
            return Some(at + found.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    let tail = chunks.remainder();
    tail.iter()
        .position(|&b| b == LF || b == IAC)
        .map(|p| at + p)
}

impl Sink for Framing<'_> {
    fn data(&mut self, offset: u64, bytes: &[u8]) {
        self.framer.data(offset, bytes, self.lines);
    }

    fn gap(&mut self, _from: u64, to: u64) {
        self.framer.gap(to);
    }

    fn spares(&mut self) -> Option<&mut Spares> {
        Some(&mut self.lines.spares)
    }
}

impl Lines {
    /// Forget every line, keeping the buffers for reuse.
    pub fn clear(&mut self) {
        self.text.clear();
        self.entries.clear();
    }

    /// The lines, in stream order.
    pub fn iter(&self) -> impl Iterator<Item = Line<'_>> {
        self.entries.iter().map(|e| Line {
            text: &self.text[e.text.clone()],
            raw: e.raw,
            overlong: e.overlong,
        })
    }

    /// True when there is no line.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(chunks: &[&[u8]], synced: bool, max: usize) -> Vec<(Vec<u8>, (u64, u64), bool)> {
        let mut f = Framer::new(max, synced);
        let mut lines = Lines::default();
        let mut offset = 0;
        for chunk in chunks {
            f.data(offset, chunk, &mut lines);
            offset += chunk.len() as u64;
        }
        lines
            .iter()
            .map(|l| (l.text.to_vec(), l.raw, l.overlong))
            .collect()
    }

    /// The word-at-a-time search finds what a byte-by-byte one finds, wherever the stop bytes
    /// are and whatever surrounds them (bytes one off LF and IAC, high bytes, zeros).
    #[test]
    fn find_stop_is_position() {
        let fill = [b'a', 0x00, 0x09, 0x0b, 0x80, 0xfe, 0x7f, 0x01];
        for len in 0..40 {
            for stop_at in 0..=len {
                for stop in [LF, IAC] {
                    for &background in &fill {
                        let mut bytes = vec![background; len];
                        if stop_at < len {
                            bytes[stop_at] = stop;
                        }
                        if stop_at + 3 < len {
                            bytes[stop_at + 3] = LF;
                        }
                        let expected = bytes.iter().position(|&b| b == LF || b == IAC);
                        assert_eq!(find_stop(&bytes), expected, "{bytes:?}");
                    }
                }
            }
        }
    }

    fn texts(chunks: &[&[u8]]) -> Vec<Vec<u8>> {
        frame(chunks, true, 64).into_iter().map(|l| l.0).collect()
    }

    /// Lines found whole in one segment take a shortcut past `current`: whatever the cut into
    /// segments (one, byte by byte, every split in two), the same lines come out.
    #[test]
    fn framing_does_not_depend_on_the_segments() {
        let stream: &[u8] = b"USER a\r\nPA\xffSS\xff\xf4 b\r\nSYST\n\r\nA LINE LONGER THAN TEN\r\n\
            \xff\xfb\x01X\r\nLAST\r";
        for (synced, max) in [(true, 64), (false, 64), (true, 10), (true, 0)] {
            let whole = frame(&[stream], synced, max);
            let bytes: Vec<&[u8]> = stream.chunks(1).collect();
            assert_eq!(frame(&bytes, synced, max), whole, "byte by byte, max {max}");
            for cut in 0..stream.len() {
                let (a, b) = stream.split_at(cut);
                assert_eq!(
                    frame(&[a, b], synced, max),
                    whole,
                    "cut at {cut}, max {max}"
                );
            }
        }
    }

    #[test]
    fn crlf_and_bare_lf() {
        let lines = frame(&[b"PASV\r\nLIST\nRETR a\r\n"], true, 64);
        assert_eq!(lines[0], (b"PASV".to_vec(), (0, 6), false));
        assert_eq!(lines[1], (b"LIST".to_vec(), (6, 11), false));
        assert_eq!(lines[2], (b"RETR a".to_vec(), (11, 19), false));
    }

    #[test]
    fn line_split_across_chunks() {
        assert_eq!(
            texts(&[b"PO", b"RT 1,2", b",3\r", b"\n"]),
            vec![b"PORT 1,2,3".to_vec()]
        );
    }

    #[test]
    fn incomplete_line_is_held_and_released_once_finished() {
        let mut f = Framer::new(64, true);
        let mut lines = Lines::default();
        f.data(0, b"PORT 1,2,3", &mut lines);
        assert!(lines.is_empty());
        assert_eq!(f.buffered(), 10);
        f.release();
        assert_eq!(f.buffered(), 10, "an unfinished line is kept");
        f.data(10, b"\r\n", &mut lines);
        f.release();
        assert_eq!(f.current.capacity(), 0, "nothing held between lines");
        assert_eq!(lines.iter().count(), 1);
    }

    #[test]
    fn bare_cr_and_cr_nul_stay_in_the_line() {
        assert_eq!(texts(&[b"A\rB\r\0C\r\n"]), vec![b"A\rB\r\0C".to_vec()]);
    }

    #[test]
    fn telnet_commands_are_removed() {
        // IAC IP IAC DM before ABOR (RFC 959 §4.1.3), an option negotiation, and IAC IAC.
        let input: &[u8] = b"\xff\xf4\xff\xf2ABOR\r\nRETR a\xff\xffb\r\nPO\xff\xfb\x01RT 1\r\n";
        assert_eq!(
            texts(&[input]),
            vec![
                b"ABOR".to_vec(),
                b"RETR a\xffb".to_vec(),
                b"PORT 1".to_vec()
            ]
        );
    }

    #[test]
    fn telnet_sequence_split_across_chunks() {
        assert_eq!(
            texts(&[b"PO\xff", b"\xfd", b"\x18RT\r\n"]),
            vec![b"PORT".to_vec()]
        );
    }

    #[test]
    fn iac_before_lf_does_not_swallow_the_terminator() {
        assert_eq!(
            texts(&[b"NOOP\xff\nPASV\r\n"]),
            vec![b"NOOP".to_vec(), b"PASV".to_vec()]
        );
    }

    #[test]
    fn overlong_line_keeps_its_prefix_and_the_next_line_survives() {
        let mut long = b"227 ".to_vec();
        long.extend(std::iter::repeat_n(b'A', 100));
        long.extend_from_slice(b"\r\nPASV\r\n");
        let lines = frame(&[&long[..50], &long[50..]], true, 16);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].0, b"227 AAAAAAAAAAAA");
        assert!(lines[0].2);
        assert_eq!(lines[0].1, (0, 106));
        assert_eq!(lines[1], (b"PASV".to_vec(), (106, 112), false));
    }

    #[test]
    fn unsynced_start_discards_up_to_the_first_lf() {
        let lines = frame(&[b"1,2,3,4,5,6\r\nPASV\r\n"], false, 64);
        assert_eq!(lines, vec![(b"PASV".to_vec(), (13, 19), false)]);
    }

    #[test]
    fn gap_drops_the_partial_line_and_resyncs() {
        let mut f = Framer::new(64, true);
        let mut lines = Lines::default();
        f.data(0, b"PORT 1,2", &mut lines);
        f.gap(20);
        f.data(20, b",3,4\r\nEPSV\r\n", &mut lines);
        let got: Vec<_> = lines.iter().map(|l| (l.text.to_vec(), l.raw)).collect();
        assert_eq!(got, vec![(b"EPSV".to_vec(), (26, 32))]);
        assert!(f.is_synced());
    }

    #[test]
    fn a_cleared_arena_is_empty_and_reused() {
        let mut f = Framer::new(64, true);
        let mut lines = Lines::default();
        f.data(0, b"A\r\n", &mut lines);
        assert_eq!(lines.iter().count(), 1);
        lines.clear();
        f.data(3, b"B\r\n", &mut lines);
        let got: Vec<_> = lines.iter().map(|l| l.text.to_vec()).collect();
        assert_eq!(got, vec![b"B".to_vec()]);
    }
}
