//! An NFQUEUE accept-all loop: the floor against which `make bench` measures the daemon's
//! CPU per queued packet (docs/benchmarks.md).
//!
//! `nfq_accept QUEUE [QUEUE...]` (root, in the namespace whose rules queue to QUEUE).
//!
//! Owns nothing of the daemon: it binds each queue with the daemon's own defaults
//! (`io::nfqueue::Queue`, so the receive path and its copy are the same), waits with
//! `poll`, and accepts every packet at once, one verdict each. It prints `ready` when bound
//! and, at SIGTERM/SIGINT, `packets=N`. Whatever the daemon costs above this loop is the
//! engine, the backend and the logging.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering;

use ftp_alg::io::nfqueue::Queue;
use ftp_alg::io::nfqueue::QueueOptions;
use ftp_alg::io::nfqueue::QueueVerdict;
use ftp_alg::io::sys;

fn main() {
    let numbers: Vec<u16> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("QUEUE is a number"))
        .collect();
    assert!(!numbers.is_empty(), "usage: nfq_accept QUEUE [QUEUE...]");
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&stop)).expect("signal handler");
    }
    let mut queues: Vec<Queue> = numbers
        .iter()
        .map(|&n| Queue::open(n, &QueueOptions::default()).expect("bind the queue"))
        .collect();
    println!("ready");
    let mut packets: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        let fds: Vec<_> = queues.iter().map(std::os::fd::AsFd::as_fd).collect();
        let ready = match sys::wait_readable(&fds, Some(std::time::Duration::from_millis(200))) {
            Ok(ready) => ready,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => panic!("poll: {e}"),
        };
        for (queue, ready) in queues.iter_mut().zip(ready) {
            if !ready {
                continue;
            }
            loop {
                match queue.try_recv() {
                    Ok(Some(packet)) => {
                        packets += 1;
                        if let Err(e) = queue.verdict(packet.id, QueueVerdict::Accept) {
                            eprintln!("verdict: {e}");
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        eprintln!("recv: {e}");
                        break;
                    }
                }
            }
        }
    }
    println!("packets={packets}");
}
