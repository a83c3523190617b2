//! The HTTP side against bad, oversized, slow and too many clients: pure answers first, then
//! a real listener on the loopback with short limits.

use std::io::Read;
use std::io::Write;
use std::net::TcpStream;
use std::thread::sleep;
use std::time::Duration;

use super::*;

fn body() -> String {
    "ftpalg_up 1\n".into()
}

#[test]
fn answers_to_every_kind_of_request() {
    let ok = answer(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", true, body);
    assert_eq!(
        (ok.status, ok.body.as_str(), ok.send_body),
        (200, "ftpalg_up 1\n", true)
    );
    let head = answer(b"HEAD /metrics HTTP/1.0\r\n\r\n", true, body);
    assert_eq!((head.status, head.send_body), (200, false));
    let query = answer(b"GET /metrics?name[]=x HTTP/1.1\n\n", true, body);
    assert_eq!(query.status, 200);
    for (request, status) in [
        (&b"GET / HTTP/1.1\r\n\r\n"[..], 404),
        (b"GET /metricsx HTTP/1.1\r\n\r\n", 404),
        (b"GET ../metrics HTTP/1.1\r\n\r\n", 404),
        (b"POST /metrics HTTP/1.1\r\n\r\n", 405),
        (b"DELETE /metrics HTTP/1.1\r\n\r\n", 405),
        (b"GET /metrics\r\n\r\n", 400),
        (b"GET /metrics HTTP/2\r\n\r\n", 400),
        (b"GET  /metrics HTTP/1.1\r\n\r\n", 400),
        (b"GET /metrics HTTP/1.1 x\r\n\r\n", 400),
        (b"\r\n\r\n", 400),
        (b"\xff\xfe /metrics HTTP/1.1\r\n\r\n", 400),
        (b"\x00\x00\x00\x00", 400),
    ] {
        let got = answer(request, true, || {
            unreachable!("no exposition for {request:?}")
        });
        assert_eq!(got.status, status, "{:?}", String::from_utf8_lossy(request));
    }
    assert_eq!(
        answer(b"GET /metrics HTTP/1.1\r\nX: y", false, body).status,
        431
    );
}

/// A server on the loopback with short limits and a fixed board.
fn server(limits: Limits) -> SocketAddr {
    let board = Arc::new(Board::new(1));
    let slot = board.slot(0).unwrap();
    assert!(slot.offer(super::super::QueueSnapshot::empty(0, 0)));
    serve("127.0.0.1:0".parse().unwrap(), board, limits).unwrap()
}

fn short() -> Limits {
    Limits {
        max_request: 1024,
        io_timeout: Duration::from_millis(300),
        deadline: Duration::from_millis(800),
        max_connections: 2,
    }
}

/// Send `request`, read the whole answer (the server closes).
fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

fn scrape(addr: SocketAddr) -> String {
    exchange(addr, b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n")
}

#[test]
fn a_scrape_gets_the_exposition_and_an_oversized_request_a_431() {
    let addr = server(short());
    let answer = scrape(addr);
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(
        answer.contains(&format!("Content-Type: {CONTENT_TYPE}\r\n")),
        "{answer}"
    );
    assert!(answer.contains("ftpalg_packets_total"), "{answer}");
    let huge = format!("GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(4096));
    let answer = exchange(addr, huge.as_bytes());
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
    let answer = exchange(addr, b"GET /nope HTTP/1.1\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 404 "), "{answer}");
}

#[test]
fn a_silent_client_does_not_stop_a_scrape_and_a_trickling_one_gets_a_408() {
    let addr = server(short());
    // Holds a connection open without a byte.
    let _silent = TcpStream::connect(addr).unwrap();
    assert!(scrape(addr).starts_with("HTTP/1.1 200 OK"));
    // One byte every 100 ms: each read succeeds, the deadline ends it.
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let started = Instant::now();
    let mut answer = String::new();
    for byte in b"GET /metrics HTTP/1.1\r\nX-Slow: yes"
        .iter()
        .cycle()
        .take(60)
    {
        if slow.write_all(&[*byte]).is_err() {
            break;
        }
        sleep(Duration::from_millis(100));
        if started.elapsed() > Duration::from_millis(1500) {
            break;
        }
    }
    let _ = slow.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer:?}");
}

#[test]
fn past_the_connection_cap_a_503_and_scraping_resumes_after() {
    let addr = server(short());
    let held: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(addr).unwrap()).collect();
    // Let the server accept both before the third comes.
    sleep(Duration::from_millis(100));
    let answer = scrape(addr);
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    // The held ones time out (io_timeout), freeing their places.
    sleep(Duration::from_millis(600));
    assert!(scrape(addr).starts_with("HTTP/1.1 200 OK"));
    drop(held);
}

#[test]
fn a_request_sent_a_byte_at_a_time_is_still_read_whole() {
    let addr = server(short());
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    for byte in b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n" {
        stream.write_all(&[*byte]).unwrap();
        sleep(Duration::from_millis(2));
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
}
