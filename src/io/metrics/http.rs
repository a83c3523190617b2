//! The metrics endpoint's HTTP/1.x server: `GET /metrics` (or `HEAD`) answers the exposition,
//! any other path 404, any other method 405; every answer closes the connection.
//!
//! Owns: the bounds that keep untrusted clients harmless. A request is at most
//! [`Limits::max_request`] bytes up to its blank line (431 past it), must come within
//! [`Limits::deadline`] however slowly it trickles in (408 then), and each read or write
//! waits at most [`Limits::io_timeout`]. At most [`Limits::max_connections`] are served at
//! once, each on a short-lived thread of its own; past that a connection gets a 503 and is
//! closed at once, so a client holding connections open delays other scrapes by at most the
//! deadline and never the workers (they only hand snapshots over, see `io::metrics`).
//! Parsing ([`answer`]) is a pure function of the bytes; no request can panic it.

use std::io;
use std::io::Read;
use std::io::Write;
use std::net::SocketAddr;
use std::net::TcpListener;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::Duration;
use std::time::Instant;

use super::Board;
use super::exposition::CONTENT_TYPE;
use crate::io::sys;

/// What one client may cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of request head read at most.
    pub max_request: usize,
    /// Each read or write waits at most this long.
    pub io_timeout: Duration,
    /// The whole request must have arrived within this.
    pub deadline: Duration,
    /// Connections served at once.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_request: 8 * 1024,
            io_timeout: Duration::from_secs(2),
            deadline: Duration::from_secs(5),
            max_connections: 8,
        }
    }
}

/// An answer: status line, and a body (empty for `HEAD`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The body.
    pub body: String,
    /// False for `HEAD`: the headers announce the body, which is not sent.
    pub send_body: bool,
}

/// The answer to the request head `head` (the bytes up to the blank line; `complete`:
/// the blank line was seen), with `metrics` called for the exposition when it is asked for.
pub fn answer(head: &[u8], complete: bool, metrics: impl FnOnce() -> String) -> Answer {
    let error = |status: u16, text: &str| Answer {
        status,
        body: format!("{text}\n"),
        send_body: true,
    };
    if !complete {
        return error(431, "request header too large");
    }
    let Some(line) = head.split(|&b| b == b'\n').next() else {
        return error(400, "bad request");
    };
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let Ok(line) = std::str::from_utf8(line) else {
        return error(400, "bad request");
    };
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return error(400, "bad request");
    };
    if !version.starts_with("HTTP/1.") {
        return error(400, "bad request");
    }
    let send_body = match method {
        "GET" => true,
        "HEAD" => false,
        _ => return error(405, "only GET and HEAD"),
    };
    let path = target.split_once('?').map_or(target, |(path, _)| path);
    if path != "/metrics" {
        return error(404, "not found; try /metrics");
    }
    Answer {
        status: 200,
        body: metrics(),
        send_body,
    }
}

/// Listen on `addr` and serve `board` on a thread of its own until the process ends.
pub fn serve(addr: SocketAddr, board: Arc<Board>, limits: Limits) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let bound = listener.local_addr()?;
    thread::Builder::new()
        .name("metrics".into())
        .spawn(move || accept_loop(&listener, &board, limits))?;
    Ok(bound)
}

fn accept_loop(listener: &TcpListener, board: &Arc<Board>, limits: Limits) {
    let active = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let Ok(stream) = stream else {
            // Out of descriptors, or the peer gave up before accept: wait a little, go on.
            thread::sleep(Duration::from_millis(10));
            continue;
        };
        if active.fetch_add(1, Ordering::AcqRel) >= limits.max_connections {
            active.fetch_sub(1, Ordering::AcqRel);
            refuse_busy(stream);
            continue;
        }
        let (board, done) = (Arc::clone(board), Arc::clone(&active));
        let spawned = thread::Builder::new()
            .name("metrics-client".into())
            .spawn(move || {
                let mut stream = stream;
                let _ = handle(&mut stream, &board, limits);
                // The place is free before the client sees the connection close.
                done.fetch_sub(1, Ordering::AcqRel);
                drop(stream);
            });
        if spawned.is_err() {
            active.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Past the connection cap: a 503 if the socket takes it at once, then close.
fn refuse_busy(mut stream: TcpStream) {
    let _ = stream.set_nonblocking(true);
    let _ = stream.write_all(
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
}

fn handle(stream: &mut TcpStream, board: &Board, limits: Limits) -> io::Result<()> {
    stream.set_read_timeout(Some(limits.io_timeout))?;
    stream.set_write_timeout(Some(limits.io_timeout))?;
    let answer = match read_head(stream, limits) {
        Ok((head, complete)) => answer(&head, complete, || board.render(sys::monotonic_micros())),
        Err(error) if is_timeout(&error) => Answer {
            status: 408,
            body: "request timeout\n".into(),
            send_body: true,
        },
        Err(error) => return Err(error),
    };
    write_answer(stream, &answer)
}

/// Read up to the blank line that ends the head, at most `max_request` bytes, before the
/// deadline. `(bytes, true)` when the blank line came; `(bytes, false)` when the cap did.
fn read_head(stream: &mut TcpStream, limits: Limits) -> io::Result<(Vec<u8>, bool)> {
    let started = Instant::now();
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    // Where the search for the blank line resumes: only new bytes (and the three before
    // them) are looked at, so a head sent a byte at a time costs linear time.
    let mut searched = 0usize;
    loop {
        if ends_head(&head[searched.saturating_sub(3)..]) {
            return Ok((head, true));
        }
        searched = head.len();
        if head.len() >= limits.max_request {
            return Ok((head, false));
        }
        if started.elapsed() >= limits.deadline {
            return Err(io::ErrorKind::TimedOut.into());
        }
        let room = (limits.max_request - head.len()).min(chunk.len());
        match stream.read(&mut chunk[..room]) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => head.extend_from_slice(&chunk[..n]),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
}

fn ends_head(head: &[u8]) -> bool {
    head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n")
}

fn is_timeout(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}

fn write_answer(stream: &mut TcpStream, answer: &Answer) -> io::Result<()> {
    let reason = match answer.status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    };
    let content_type = if answer.status == 200 {
        CONTENT_TYPE
    } else {
        "text/plain; charset=utf-8"
    };
    let mut head = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n",
        answer.status,
        answer.body.len()
    );
    if answer.status == 405 {
        head.push_str("Allow: GET, HEAD\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    if answer.send_body {
        stream.write_all(answer.body.as_bytes())?;
    }
    stream.flush()
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;
