//! `ftp_load`: an FTP load generator for the live benchmarks (`make bench`) and the
//! hostile-traffic suite: many concurrent sessions, each logging in and making transfers
//! in PASV, EPSV, PORT or EPRT mode through whatever firewall is in the path.
//!
//! ```text
//! ftp_load --server ADDR[:PORT] [--user U] [--pass P] [--sessions N] [--concurrency C]
//!          [--transfers K] [--modes pasv,epsv,port,eprt] [--file PATH] [--no-data]
//!          [--timeout-ms MS] [--ramp-ms MS] [--hold-ms MS] [--json]
//! ```
//!
//! Owns: the client side only (blocking sockets, one thread per concurrent session; the
//! servers are the lab's). Each session connects, logs in (`USER`/`PASS`, `TYPE I`), then
//! makes K transfers, cycling through `--modes` (session i starts at mode i): the
//! announcement (`PASV`/`EPSV` answered by 227/229, or `PORT`/`EPRT` on a listener of its
//! own answered by 200), then, unless `--no-data`, `RETR FILE` over the data connection,
//! read to its end, and the 226. Then `QUIT`. With `--no-data` a session only announces
//! (the control path alone: what the daemon reads, without data connections). With
//! `--hold-ms MS` a logged-in session waits until MS milliseconds after the start of the run
//! before its first transfer, so that sessions started over a long `--ramp-ms` (as a server
//! with a short listen backlog needs) are all open at once when the transfers begin; the
//! peak of sessions open at once is reported (`peak_open`).
//!
//! It measures the time from sending each announcing command to reading its reply (the
//! control path's round trip through the gateway, p50/p99 overall and per mode), sessions
//! and transfers completed per second, failures of each kind, bytes received, and the data
//! rate while reading data connections (`data_mb_per_s`). Output:
//! one line of `name=value` fields, or a JSON object with `--json`. Exit status 0 when every
//! session and transfer succeeded, 1 when some failed (the counts say which), 2 for bad
//! arguments. The first few errors go to stderr.

use std::io::BufRead;
use std::io::BufReader;
use std::io::Read;
use std::io::Write;
use std::net::IpAddr;
use std::net::SocketAddr;
use std::net::TcpListener;
use std::net::TcpStream;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering;
use std::time::Duration;
use std::time::Instant;

fn main() {
    let options = Arc::new(Options::parse());
    let next = Arc::new(AtomicUsize::new(0));
    let results = Arc::new(Mutex::new(Totals::default()));
    let started = Instant::now();
    let mut threads = Vec::new();
    for t in 0..options.concurrency {
        let (options, next, results) = (options.clone(), next.clone(), results.clone());
        let delay = options.ramp * t as u32 / options.concurrency.max(1) as u32;
        let spawned = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || {
                std::thread::sleep(delay);
                let mut mine = Totals::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= options.sessions {
                        break;
                    }
                    session(&options, i, &mut mine);
                }
                results.lock().expect("no thread panics").absorb(mine);
            });
        match spawned {
            Ok(handle) => threads.push(handle),
            Err(e) => {
                eprintln!("ftp_load: cannot start thread {t}: {e}");
                break;
            }
        }
    }
    for thread in threads {
        let _ = thread.join();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let totals = results.lock().expect("threads joined").clone();
    let failed = totals.sessions_failed + totals.transfers_failed + totals.announce_failed;
    println!("{}", totals.render(elapsed, options.json));
    std::process::exit(i32::from(failed > 0));
}

/// Command-line options.
struct Options {
    server: SocketAddr,
    user: String,
    pass: String,
    sessions: usize,
    concurrency: usize,
    transfers: usize,
    modes: Vec<Mode>,
    file: String,
    data: bool,
    timeout: Duration,
    ramp: Duration,
    hold: Option<Duration>,
    started: Instant,
    json: bool,
}

impl Options {
    fn parse() -> Self {
        let mut o = Self {
            server: "203.0.113.2:21".parse().expect("literal"),
            user: "ftpalglab".into(),
            pass: "labpass".into(),
            sessions: 100,
            concurrency: 10,
            transfers: 1,
            modes: vec![Mode::Pasv],
            file: "/pub/file20k.bin".into(),
            data: true,
            timeout: Duration::from_secs(10),
            ramp: Duration::ZERO,
            hold: None,
            started: Instant::now(),
            json: false,
        };
        let mut ramp = None;
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value = || {
                args.next()
                    .unwrap_or_else(|| usage(&format!("{arg} needs a value")))
            };
            match arg.as_str() {
                "--server" => o.server = server(&value()),
                "--user" => o.user = value(),
                "--pass" => o.pass = value(),
                "--sessions" => o.sessions = number(&value()),
                "--concurrency" => o.concurrency = number(&value()).max(1),
                "--transfers" => o.transfers = number(&value()),
                "--modes" => o.modes = value().split(',').map(Mode::parse).collect(),
                "--file" => o.file = value(),
                "--no-data" => o.data = false,
                "--timeout-ms" => o.timeout = Duration::from_millis(number(&value()) as u64),
                "--ramp-ms" => ramp = Some(Duration::from_millis(number(&value()) as u64)),
                "--hold-ms" => o.hold = Some(Duration::from_millis(number(&value()) as u64)),
                "--json" => o.json = true,
                "--help" | "-h" => usage(""),
                _ => usage(&format!("unknown argument {arg}")),
            }
        }
        // vsftpd's listen backlog is 32: spread the first connections of a large crowd.
        o.ramp = ramp.unwrap_or(Duration::from_millis(if o.concurrency > 32 {
            o.concurrency as u64
        } else {
            0
        }));
        o.concurrency = o.concurrency.min(o.sessions.max(1));
        o
    }
}

fn server(text: &str) -> SocketAddr {
    text.parse()
        .or_else(|_| text.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 21)))
        .unwrap_or_else(|_| usage(&format!("not an address: {text}")))
}

fn number(text: &str) -> usize {
    text.replace('_', "")
        .parse()
        .unwrap_or_else(|_| usage(&format!("not a number: {text}")))
}

fn usage(message: &str) -> ! {
    if !message.is_empty() {
        eprintln!("ftp_load: {message}");
    }
    eprintln!(
        "usage: ftp_load --server ADDR[:PORT] [--user U] [--pass P] [--sessions N] \
         [--concurrency C] [--transfers K] [--modes pasv,epsv,port,eprt] [--file PATH] \
         [--no-data] [--timeout-ms MS] [--ramp-ms MS] [--hold-ms MS] [--json]"
    );
    std::process::exit(2)
}

/// How a data connection is announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Pasv,
    Epsv,
    Port,
    Eprt,
}

const MODES: [Mode; 4] = [Mode::Pasv, Mode::Epsv, Mode::Port, Mode::Eprt];

impl Mode {
    fn parse(text: &str) -> Self {
        match text.trim().to_ascii_lowercase().as_str() {
            "pasv" => Self::Pasv,
            "epsv" => Self::Epsv,
            "port" => Self::Port,
            "eprt" => Self::Eprt,
            other => usage(&format!("unknown mode {other} (pasv, epsv, port, eprt)")),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Pasv => "pasv",
            Self::Epsv => "epsv",
            Self::Port => "port",
            Self::Eprt => "eprt",
        }
    }
}

/// What the sessions of one thread (then of all) achieved.
#[derive(Debug, Clone, Default)]
struct Totals {
    sessions_ok: u64,
    sessions_failed: u64,
    transfers_ok: u64,
    transfers_failed: u64,
    announce_failed: u64,
    bytes: u64,
    /// Time spent reading data connections (from the first byte read to their end).
    data_secs: f64,
    /// Announcement round trips in microseconds, per mode.
    latency: [Vec<u32>; 4],
    errors_shown: u64,
}

impl Totals {
    fn absorb(&mut self, other: Self) {
        self.sessions_ok += other.sessions_ok;
        self.sessions_failed += other.sessions_failed;
        self.transfers_ok += other.transfers_ok;
        self.transfers_failed += other.transfers_failed;
        self.announce_failed += other.announce_failed;
        self.bytes += other.bytes;
        self.data_secs += other.data_secs;
        for (mine, theirs) in self.latency.iter_mut().zip(other.latency) {
            mine.extend(theirs);
        }
    }

    fn error(&mut self, session: usize, what: &str) {
        if self.errors_shown < 5 {
            eprintln!("ftp_load: session {session}: {what}");
        }
        self.errors_shown += 1;
    }

    fn render(&self, elapsed: f64, json: bool) -> String {
        let mut all: Vec<u32> = self.latency.iter().flatten().copied().collect();
        all.sort_unstable();
        let mut fields: Vec<(String, String)> = vec![
            ("sessions_ok".into(), self.sessions_ok.to_string()),
            ("sessions_failed".into(), self.sessions_failed.to_string()),
            ("transfers_ok".into(), self.transfers_ok.to_string()),
            ("transfers_failed".into(), self.transfers_failed.to_string()),
            ("announce_failed".into(), self.announce_failed.to_string()),
            ("elapsed_s".into(), format!("{elapsed:.3}")),
            (
                "peak_open".into(),
                PEAK_OPEN.load(Ordering::SeqCst).to_string(),
            ),
            (
                "sessions_per_s".into(),
                format!("{:.1}", self.sessions_ok as f64 / elapsed),
            ),
            (
                "transfers_per_s".into(),
                format!("{:.1}", self.transfers_ok as f64 / elapsed),
            ),
            ("announces".into(), all.len().to_string()),
            ("announce_p50_us".into(), percentile(&all, 500).to_string()),
            ("announce_p99_us".into(), percentile(&all, 990).to_string()),
            ("bytes".into(), self.bytes.to_string()),
            (
                "mb_per_s".into(),
                format!("{:.1}", self.bytes as f64 / 1e6 / elapsed),
            ),
            (
                "data_mb_per_s".into(),
                format!("{:.1}", self.bytes as f64 / 1e6 / self.data_secs.max(1e-9)),
            ),
        ];
        for (mode, samples) in MODES.iter().zip(&self.latency) {
            if samples.is_empty() {
                continue;
            }
            let mut sorted = samples.clone();
            sorted.sort_unstable();
            fields.push((
                format!("{}_p50_us", mode.name()),
                percentile(&sorted, 500).to_string(),
            ));
        }
        if json {
            let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
            format!("{{{}}}", body.join(","))
        } else {
            let body: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
            body.join(" ")
        }
    }
}

/// The value at or below which `permille` / 1000 of the sorted samples lie (0 if none).
fn percentile(sorted: &[u32], permille: usize) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (sorted.len() * permille).div_ceil(1000).max(1);
    sorted[rank - 1]
}

/// Sessions logged in and not yet ended, and the most there were at once.
static OPEN: AtomicUsize = AtomicUsize::new(0);
static PEAK_OPEN: AtomicUsize = AtomicUsize::new(0);

/// Counts a logged-in session as open while it lives.
struct Open;

impl Open {
    fn new() -> Self {
        let now = OPEN.fetch_add(1, Ordering::SeqCst) + 1;
        PEAK_OPEN.fetch_max(now, Ordering::SeqCst);
        Self
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        OPEN.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Session `i`: log in, transfer, quit; counts go to `totals`.
fn session(o: &Options, i: usize, totals: &mut Totals) {
    let mut control = match Control::connect(o) {
        Ok(control) => control,
        Err(e) => {
            totals.sessions_failed += 1;
            totals.transfers_failed += o.transfers as u64;
            totals.error(i, &format!("connect/login: {e}"));
            return;
        }
    };
    let _open = Open::new();
    if let Some(hold) = o.hold {
        std::thread::sleep(hold.saturating_sub(o.started.elapsed()));
    }
    for k in 0..o.transfers {
        let mode = o.modes[(i + k) % o.modes.len()];
        match transfer(o, &mut control, mode, totals) {
            Ok(()) => totals.transfers_ok += u64::from(o.data),
            Err(e) => {
                totals.transfers_failed += 1;
                totals.sessions_failed += 1;
                totals.transfers_failed += (o.transfers - k - 1) as u64;
                totals.error(i, &format!("{} transfer {k}: {e}", mode.name()));
                return;
            }
        }
    }
    match control.command("QUIT", 221) {
        Ok(_) => totals.sessions_ok += 1,
        Err(e) => {
            totals.sessions_failed += 1;
            totals.error(i, &format!("QUIT: {e}"));
        }
    }
}

/// One announcement and, with data, one `RETR` over the announced connection.
fn transfer(o: &Options, c: &mut Control, mode: Mode, totals: &mut Totals) -> Result<(), String> {
    let passive = matches!(mode, Mode::Pasv | Mode::Epsv);
    let listener = if passive {
        None
    } else {
        let local = SocketAddr::new(c.local.ip(), 0);
        Some(TcpListener::bind(local).map_err(|e| format!("listen: {e}"))?)
    };
    let command = match (mode, &listener) {
        (Mode::Pasv, _) => "PASV".to_string(),
        (Mode::Epsv, _) => "EPSV".to_string(),
        (Mode::Port, Some(l)) => port_command(l.local_addr().map_err(|e| e.to_string())?)?,
        (Mode::Eprt, Some(l)) => {
            let a = l.local_addr().map_err(|e| e.to_string())?;
            let family = if a.is_ipv4() { 1 } else { 2 };
            format!("EPRT |{family}|{}|{}|", a.ip(), a.port())
        }
        _ => unreachable!("active modes have a listener"),
    };
    let expected = if passive {
        if mode == Mode::Pasv { 227 } else { 229 }
    } else {
        200
    };
    let sent = Instant::now();
    let reply = match c.command(&command, expected) {
        Ok(reply) => reply,
        Err(e) => {
            totals.announce_failed += 1;
            return Err(e);
        }
    };
    let micros = u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX);
    totals.latency[MODES.iter().position(|m| *m == mode).unwrap_or(0)].push(micros);
    if !o.data {
        return Ok(());
    }
    let data = if passive {
        let target = passive_target(mode, &reply, c.peer)?;
        let stream = TcpStream::connect_timeout(&target, o.timeout)
            .map_err(|e| format!("data connect to {target}: {e}"))?;
        c.send(&format!("RETR {}", o.file))?;
        stream
    } else {
        c.send(&format!("RETR {}", o.file))?;
        let listener = listener.expect("active modes have a listener");
        let ready = ftp_alg::io::sys::wait_readable(&[listener.as_fd()], Some(o.timeout))
            .map_err(|e| format!("poll: {e}"))?;
        if !ready.first().copied().unwrap_or(false) {
            return Err("the server's data connection did not arrive".into());
        }
        listener.accept().map_err(|e| format!("accept: {e}"))?.0
    };
    let (code, text) = c.reply()?;
    if code != 150 && code != 125 {
        return Err(format!("RETR answered {code} {text}"));
    }
    let reading = Instant::now();
    totals.bytes += read_all(data, o.timeout)?;
    totals.data_secs += reading.elapsed().as_secs_f64();
    let (code, text) = c.reply()?;
    if code != 226 {
        return Err(format!("transfer ended with {code} {text}"));
    }
    Ok(())
}

fn port_command(addr: SocketAddr) -> Result<String, String> {
    let IpAddr::V4(ip) = addr.ip() else {
        return Err("PORT needs IPv4 (use EPRT)".into());
    };
    let o = ip.octets();
    let p = addr.port();
    Ok(format!(
        "PORT {},{},{},{},{},{}",
        o[0],
        o[1],
        o[2],
        o[3],
        p >> 8,
        p & 0xff
    ))
}

/// Where a 227 or 229 says to connect.
fn passive_target(mode: Mode, reply: &str, peer: SocketAddr) -> Result<SocketAddr, String> {
    let inside = |open: char, close: char| {
        let start = reply.find(open)? + 1;
        let end = start + reply[start..].find(close)?;
        Some(&reply[start..end])
    };
    if mode == Mode::Epsv {
        let port = inside('(', ')')
            .and_then(|s| s.trim_matches('|').parse::<u16>().ok())
            .ok_or_else(|| format!("cannot read 229: {reply}"))?;
        return Ok(SocketAddr::new(peer.ip(), port));
    }
    let numbers: Vec<u16> = inside('(', ')')
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_default();
    if numbers.len() != 6 || numbers.iter().take(4).any(|&n| n > 255) {
        return Err(format!("cannot read 227: {reply}"));
    }
    let ip = std::net::Ipv4Addr::new(
        numbers[0] as u8,
        numbers[1] as u8,
        numbers[2] as u8,
        numbers[3] as u8,
    );
    Ok(SocketAddr::new(ip.into(), numbers[4] * 256 + numbers[5]))
}

fn read_all(mut data: TcpStream, timeout: Duration) -> Result<u64, String> {
    data.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0;
    loop {
        match data.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => total += n as u64,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("data read: {e}")),
        }
    }
}

/// A logged-in control connection.
struct Control {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    local: SocketAddr,
    peer: SocketAddr,
}

impl Control {
    fn connect(o: &Options) -> Result<Self, String> {
        let stream = TcpStream::connect_timeout(&o.server, o.timeout).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(o.timeout))
            .map_err(|e| e.to_string())?;
        let _ = stream.set_nodelay(true);
        let local = stream.local_addr().map_err(|e| e.to_string())?;
        let writer = stream.try_clone().map_err(|e| e.to_string())?;
        let mut c = Self {
            reader: BufReader::new(stream),
            writer,
            local,
            peer: o.server,
        };
        let (code, text) = c.reply()?;
        if code != 220 {
            return Err(format!("greeting {code} {text}"));
        }
        c.command(&format!("USER {}", o.user), 331)?;
        c.command(&format!("PASS {}", o.pass), 230)?;
        c.command("TYPE I", 200)?;
        Ok(c)
    }

    fn send(&mut self, line: &str) -> Result<(), String> {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .map_err(|e| format!("send {line}: {e}"))
    }

    /// Send `line` and read its reply, which must have code `expected`; returns its text.
    fn command(&mut self, line: &str, expected: u16) -> Result<String, String> {
        self.send(line)?;
        let (code, text) = self.reply()?;
        if code != expected {
            return Err(format!("{line} answered {code} {text}"));
        }
        Ok(text)
    }

    /// One reply (multi-line replies read to their last line): code and last line.
    fn reply(&mut self) -> Result<(u16, String), String> {
        let mut line = String::new();
        let mut first: Option<String> = None;
        loop {
            line.clear();
            match self.reader.read_line(&mut line) {
                Ok(0) => return Err("control connection closed".into()),
                Ok(_) => {}
                Err(e) => return Err(format!("control read: {e}")),
            }
            let code = line.get(..3).and_then(|c| c.parse::<u16>().ok());
            let prefix = first.get_or_insert_with(|| line.get(..3).unwrap_or("").to_string());
            let last = line.as_bytes().get(3) == Some(&b' ') && line.get(..3) == Some(prefix);
            if let (Some(code), true) = (code, last) {
                return Ok((code, line.trim_end().to_string()));
            }
        }
    }
}
