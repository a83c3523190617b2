//! `ftp-alg replay`: the engine over capture files, with the firewall modelled by
//! [`SetModel`], so that every data connection in a capture is judged.
//!
//! Owns: the offline loop (capture records to IP datagrams to the engine, capture timestamps as
//! `now`, so a replay is deterministic), checking every TCP SYN against the modelled set, and
//! reporting. Each file gets a fresh engine; totals are summed over files. A file that cannot
//! be read to its end is reported with its offset, after everything read before the error.

use std::io::Write;
use std::path::Path;
use std::path::PathBuf;

use crate::action::Action;
use crate::action::Verdict;
use crate::config::Config;
use crate::engine::Engine;
use crate::io::capture::CaptureReader;
use crate::io::capture::PcapWriter;
use crate::io::capture::ip_datagram;
use crate::io::progress::Progress;
use crate::io::report::Format;
use crate::io::report::Record;
use crate::io::report::Reporter;
use crate::io::report::Summary;
use crate::oracle::Judgement;
use crate::oracle::SetModel;
use crate::oracle::Unused;
use crate::time::Instant;
use crate::wire;
use crate::wire::Datagram;

/// Replay `files` with `config`, reporting to `out` in `format`. Returns the totals; a file
/// that could not be read is counted in `file_errors`.
pub fn run(
    files: &[PathBuf],
    config: &Config,
    format: Format,
    out: impl Write,
) -> std::io::Result<Summary> {
    run_writing(files, config, format, out, None, None)
}

/// [`run`], also writing every datagram the engine releases (rewritten where NAT rewrote it;
/// held ones when they are released) to `write`, as raw IP in a pcap file, and telling
/// `progress` how far it got.
pub fn run_writing(
    files: &[PathBuf],
    config: &Config,
    format: Format,
    out: impl Write,
    mut write: Option<&mut PcapWriter<Box<dyn Write>>>,
    mut progress: Option<&mut Progress>,
) -> std::io::Result<Summary> {
    let mut reporter = Reporter::new(out, format);
    let mut summary = Summary::default();
    let mut done_bytes = 0;
    for file in files {
        done_bytes += replay_file(
            file,
            config,
            &mut reporter,
            &mut summary,
            write.as_deref_mut(),
            progress.as_deref_mut().map(|p| (p, done_bytes)),
        )?;
    }
    if let Some(progress) = progress {
        progress.clear();
    }
    reporter.record(&Record::Summary(&summary))?;
    reporter.finish()?;
    Ok(summary)
}

/// One file through a fresh engine. Returns the bytes read from it. `progress` comes with the
/// bytes of the files read before this one.
fn replay_file<W: Write>(
    path: &Path,
    config: &Config,
    reporter: &mut Reporter<W>,
    summary: &mut Summary,
    write: Option<&mut PcapWriter<Box<dyn Write>>>,
    mut progress: Option<(&mut Progress, u64)>,
) -> std::io::Result<u64> {
    summary.files += 1;
    reporter.start_file(&path.display().to_string())?;
    let mut reader = match CaptureReader::open(path) {
        Ok(reader) => reader,
        Err(error) => {
            summary.file_errors += 1;
            reporter.record(&Record::Error {
                message: error.to_string(),
            })?;
            return Ok(0);
        }
    };
    let mut replay = Replay::new(config, reporter, summary, write);
    loop {
        match reader.next_record() {
            Ok(Some((meta, frame))) => {
                replay.record(meta.timestamp, ip_datagram(meta.link, frame).ok())?;
                if let Some((progress, done)) = progress.as_mut() {
                    progress.update(replay.summary.packets, *done + reader.bytes_read());
                }
            }
            Ok(None) => break,
            Err(error) => {
                replay.summary.file_errors += 1;
                replay.reporter.record(&Record::Error {
                    message: error.to_string(),
                })?;
                break;
            }
        }
    }
    replay.finish()?;
    Ok(reader.bytes_read())
}

/// The state of one file's replay (or of one `watch` run), and where it reports.
pub(crate) struct Replay<'a, W: Write> {
    engine: Engine,
    model: SetModel,
    last: Option<Instant>,
    reporter: &'a mut Reporter<W>,
    summary: &'a mut Summary,
    /// Where released datagrams go (`--write`).
    write: Option<&'a mut PcapWriter<Box<dyn Write>>>,
}

impl<'a, W: Write> Replay<'a, W> {
    /// A fresh engine and set model, reporting to `reporter` and adding to `summary`.
    pub(crate) fn new(
        config: &Config,
        reporter: &'a mut Reporter<W>,
        summary: &'a mut Summary,
        write: Option<&'a mut PcapWriter<Box<dyn Write>>>,
    ) -> Self {
        Self {
            engine: Engine::new(config.clone()),
            model: SetModel::default(),
            last: None,
            reporter,
            summary,
            write,
        }
    }

    /// One capture record: an IP datagram, or `None` for a frame that holds none.
    pub(crate) fn record(&mut self, now: Instant, ip: Option<&[u8]>) -> std::io::Result<()> {
        self.summary.packets += 1;
        let Some(ip) = ip else {
            self.summary.non_ip += 1;
            return Ok(());
        };
        let now = self.advance(now)?;
        let verdict = self.engine.handle_packet(now, ip);
        self.drain(now)?;
        if let Some(write) = self.write.as_deref_mut() {
            match verdict {
                Verdict::Accept => write.packet(now, ip)?,
                Verdict::Rewritten => write.packet(now, self.engine.rewritten())?,
                Verdict::Hold(_) | Verdict::Drop => {}
            }
        }
        self.judge_syn(now, ip)
    }

    /// Move time on to `now` (never backwards: the later of `now` and the last time seen):
    /// expire the modelled set's elements and the engine's deadlines up to it, reporting
    /// what that ends. Returns the time used. `watch` calls it when no packet came for a
    /// while, so an expectation's end is reported on time.
    pub(crate) fn advance(&mut self, now: Instant) -> std::io::Result<Instant> {
        let now = self.last.map_or(now, |last| last.max(now));
        self.last = Some(now);
        self.expire(now)?;
        while self
            .engine
            .poll_timeout()
            .is_some_and(|deadline| deadline <= now)
        {
            self.engine.handle_timeout(now);
            self.drain(now)?;
        }
        Ok(now)
    }

    /// Let the modelled set's elements expire by `now`, reporting each (at its expiry time).
    fn expire(&mut self, now: Instant) -> std::io::Result<()> {
        while let Some(unused) = self.model.poll_expired(now) {
            self.report_unused(&unused)?;
        }
        Ok(())
    }

    /// Carry out the engine's actions on the modelled set and report them.
    fn drain(&mut self, now: Instant) -> std::io::Result<()> {
        while let Some(action) = self.engine.poll_action() {
            if let Action::Release(release) = &action {
                if let Some(write) = self.write.as_deref_mut() {
                    write.packet(now, &release.datagram)?;
                }
                continue;
            }
            self.reporter.record(&Record::Action(&action))?;
            if let Some(unused) = self.model.apply(now, &action) {
                self.report_unused(&unused)?;
            }
        }
        Ok(())
    }

    /// A connection's first SYN (not to a control port): would the firewall admit it?
    fn judge_syn(&mut self, now: Instant, ip: &[u8]) -> std::io::Result<()> {
        if !may_open(ip) {
            return Ok(());
        }
        let Ok(Datagram::Tcp(segment)) = wire::parse(ip) else {
            return Ok(());
        };
        let opening = segment.control() == wire::Control::Syn && segment.ack().is_none();
        if !opening || self.engine.config().is_control_port(segment.dst().port()) {
            return Ok(());
        }
        let (src, dst) = (segment.src(), segment.dst());
        match self.model.handle_syn(now, src, dst, segment.seq()) {
            Judgement::Admit(expectation) => {
                self.summary.admitted += 1;
                self.reporter.record(&Record::Admit {
                    time: now,
                    src,
                    dst,
                    expectation: &expectation,
                })
            }
            Judgement::Deny(denial) => {
                self.summary.denied += 1;
                self.reporter.record(&Record::Deny {
                    time: now,
                    src,
                    dst,
                    denial,
                })
            }
            Judgement::Repeat | Judgement::Unrelated => Ok(()),
        }
    }

    /// Report what the set still holds, and add the engine's counters to the totals.
    pub(crate) fn finish(mut self) -> std::io::Result<()> {
        let end = self.last.unwrap_or_default();
        self.engine.release_all_held();
        self.drain(end)?;
        for unused in self.model.finish(end) {
            self.report_unused(&unused)?;
        }
        self.summary.engine.absorb(self.engine.stats());
        Ok(())
    }

    fn report_unused(&mut self, unused: &Unused) -> std::io::Result<()> {
        self.summary.unused += 1;
        self.reporter.record(&Record::Unused(unused))
    }
}

/// False when `ip` is certainly not a TCP SYN without ACK, read from two header bytes, so the
/// datagram the engine just parsed is not parsed a second time (nine packets in ten are not
/// opening SYNs). An IPv6 datagram is read the same way when its first header is TCP, UDP or
/// ICMPv6; with extension headers `wire::parse` decides. A fragment reads as anything here;
/// `wire::parse` refuses it either way.
fn may_open(ip: &[u8]) -> bool {
    const PROTOCOL_TCP: u8 = 6;
    const PROTOCOL_UDP: u8 = 17;
    const PROTOCOL_ICMPV6: u8 = 58;
    const IPV6_LEN: usize = 40;
    const SYN: u8 = 0x02;
    const ACK: u8 = 0x10;
    let opening = |flags: Option<&u8>| flags.is_none_or(|flags| flags & (SYN | ACK) == SYN);
    match ip.first() {
        Some(first) if first >> 4 == 4 => {
            let header = usize::from(first & 0x0f) * 4;
            ip.get(9) == Some(&PROTOCOL_TCP) && opening(ip.get(header + 13))
        }
        Some(first) if first >> 4 == 6 => match ip.get(6) {
            Some(&PROTOCOL_TCP) => opening(ip.get(IPV6_LEN + 13)),
            Some(&PROTOCOL_UDP | &PROTOCOL_ICMPV6) => false,
            _ => true,
        },
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::conversation::Conversation;
    use crate::testkit::conversation::Side::Client;
    use crate::testkit::conversation::Side::Server;
    use crate::time::Duration;

    const ANNOUNCEMENTS: u64 = 20_000;

    /// One control connection announcing 20,000 passive ports, 11 s apart, none ever used:
    /// each expectation expires (30 s) before a fourth could supersede it.
    fn announcements() -> Conversation {
        let mut c = Conversation::new(
            "198.51.100.2:40000".parse().unwrap(),
            "203.0.113.2:21".parse().unwrap(),
        );
        c.handshake()
            .send(Server, b"220 ready\r\n")
            .send(Client, b"USER anonymous\r\n")
            .send(Server, b"230 Login successful.\r\n");
        for i in 0..ANNOUNCEMENTS {
            let port = 20_000 + i;
            let reply = format!(
                "227 Entering Passive Mode (203,0,113,2,{},{}).\r\n",
                port >> 8,
                port & 0xff
            );
            c.send(Client, b"PASV\r\n").send(Server, reply.as_bytes());
            c.wait(Duration::from_secs(11));
        }
        c
    }

    #[test]
    fn only_opening_syns_may_open() {
        use crate::testkit::conversation::Flags;
        use crate::testkit::conversation::syn;
        use crate::testkit::conversation::tcp;
        let (a, b) = (
            "198.51.100.2:40000".parse().unwrap(),
            "203.0.113.2:50000".parse().unwrap(),
        );
        assert!(may_open(&syn(a, b)));
        let ack = tcp(a, b, 1, Some(2), Flags::default(), b"x");
        assert!(!may_open(&ack));
        let syn_ack = tcp(
            a,
            b,
            1,
            Some(2),
            Flags {
                syn: true,
                ..Flags::default()
            },
            b"",
        );
        assert!(!may_open(&syn_ack));
        let (c, d) = (
            "[2001:db8::2]:40000".parse().unwrap(),
            "[2001:db8::3]:50000".parse().unwrap(),
        );
        let v6 = tcp(c, d, 1, Some(2), Flags::default(), b"");
        assert!(!may_open(&v6), "an IPv6 ACK");
        assert!(may_open(&syn(c, d)), "an IPv6 SYN");
        let mut extension = syn(c, d);
        extension[6] = 0; // hop-by-hop options first: left to wire::parse
        assert!(may_open(&extension));
        assert!(may_open(&[]), "not IP: left to wire::parse");
    }

    #[test]
    fn expired_expectations_leave_the_model_while_replaying() {
        let (mut out, mut summary) = (
            Reporter::new(std::io::sink(), Format::Json),
            Summary::default(),
        );
        let mut replay = Replay::new(&Config::default(), &mut out, &mut summary, None);
        let mut most = 0;
        for packet in announcements().packets() {
            replay.record(packet.time, Some(&packet.bytes)).unwrap();
            most = most.max(replay.model.len());
        }
        assert!(most <= 3, "at most three alive at once, held {most}");
        let footprint = replay.model.footprint();
        assert!(
            footprint.heap <= 2 * footprint.elements + 64,
            "{footprint:?}"
        );
        replay.finish().unwrap();
        assert_eq!(summary.engine.expectations, ANNOUNCEMENTS);
        assert_eq!(summary.unused, ANNOUNCEMENTS, "each reported once");
    }
}
