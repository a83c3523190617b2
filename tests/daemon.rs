//! `ftp-alg run` as a process (root only, in a private network namespace): it refuses to
//! start without its sets and says what to load, says `ready` once bound, refuses a queue
//! another daemon holds, answers SIGHUP and SIGUSR1, and stops cleanly on SIGTERM; a worker
//! that panics (injected with `FTP_ALG_FAULT`, see `docs/testing.md`) ends it with status 1.

mod common;

use std::io::BufRead;
use std::io::BufReader;
use std::path::Path;
use std::process::Child;
use std::process::Command;
use std::process::Output;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;
use std::time::Instant;

use common::netns::Netns;
use common::netns::root_with;

fn can_run() -> bool {
    root_with(&["ip", "nft", "iptables"], "running the daemon")
}

/// `ftp-alg ARGS` in `ns`; a `run` without its own state options leaves no state behind.
fn ftp_alg(ns: &Netns, args: &[&str]) -> Command {
    let mut command = ns.command(env!("CARGO_BIN_EXE_ftp-alg"));
    command.args(args).env("RUST_LOG", "info");
    let runs = args.first() == Some(&"run");
    if runs && !args.iter().any(|a| a.starts_with("--state")) {
        command.arg("--no-state");
    }
    command
}

/// A running daemon whose stderr lines arrive on a channel; killed on drop.
struct Daemon {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Daemon {
    fn start(mut command: Command) -> Self {
        let mut child = command.stderr(Stdio::piped()).spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Self { child, lines }
    }

    /// Wait (bounded) for a line containing `text`; every line read is returned on failure.
    fn expect(&self, text: &str) -> String {
        let mut seen = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(10)) {
            if line.contains(text) {
                return line;
            }
            seen.push(line);
        }
        panic!("no line with {text:?}; saw {seen:#?}");
    }

    fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn load_rules(ns: &Netns) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/nftables-iptables-queue.sh");
    let out = ns.command("sh").arg(script).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn without_its_sets_the_daemon_says_what_to_load() {
    if !can_run() {
        return;
    }
    let ns = Netns::new("daemon-nosets");
    let out = ftp_alg(&ns, &["run", "--queue", "3"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("ftp-alg rules --backend nft"),
        "{}",
        stderr(&out)
    );
    let out = ftp_alg(&ns, &["run", "--backend", "ipset"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("ftpalg-expect4"), "{}", stderr(&out));
}

#[test]
fn ready_busy_signals_and_a_clean_stop() {
    if !can_run() {
        return;
    }
    let ns = Netns::new("daemon-life");
    load_rules(&ns);
    let daemon = Daemon::start(ftp_alg(&ns, &["run", "--queue", "0"]));
    let ready = daemon.expect("ready");
    assert!(
        ready.contains("table inet ftpalg, sets expect4/expect6"),
        "{ready}"
    );

    let second = ftp_alg(&ns, &["run", "--queue", "0"]).output().unwrap();
    assert_eq!(second.status.code(), Some(1));
    assert!(stderr(&second).contains("busy"), "{}", stderr(&second));

    daemon.signal("USR1");
    daemon.expect("queue 0: stats flows=0");
    daemon.signal("HUP");
    daemon.expect("queue 0: backend ok");
    // A ruleset reload that lost the sets is reported on the next SIGHUP.
    let out = ns
        .command("nft")
        .args(["delete", "table", "inet", "ftpalg"])
        .output()
        .unwrap();
    assert!(out.status.success());
    daemon.signal("HUP");
    daemon.expect("backend check failed");

    daemon.signal("TERM");
    daemon.expect("stopping (signal 15)");
    daemon.expect("queue 0: stats");
    let mut daemon = daemon;
    let status = daemon.child.wait().unwrap();
    assert!(status.success(), "{status}");
}

#[test]
fn a_queue_range_gets_one_worker_per_queue() {
    if !can_run() {
        return;
    }
    let ns = Netns::new("daemon-range");
    load_rules(&ns);
    let daemon = Daemon::start(ftp_alg(&ns, &["run", "--queue", "4-5"]));
    daemon.expect("ready: queue(s) [4, 5] bound");
    // Both queues are taken: a second daemon cannot bind either.
    for queue in ["4", "5"] {
        // Bounded: if the queue were free, this daemon would run (timeout exits 124).
        let out = ns
            .command("timeout")
            .args(["5", env!("CARGO_BIN_EXE_ftp-alg"), "run", "--queue", queue])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "queue {queue}");
    }
    daemon.signal("TERM");
    let mut stopped: Vec<String> = [daemon.expect(": stats"), daemon.expect(": stats")]
        .iter()
        .map(|line| {
            line.split(": stats")
                .next()
                .unwrap()
                .rsplit(' ')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    stopped.sort();
    assert_eq!(stopped, ["4", "5"]);
    let mut daemon = daemon;
    assert!(daemon.child.wait().unwrap().success());
}

#[test]
fn a_panicking_worker_ends_the_process_with_status_1() {
    if !can_run() {
        return;
    }
    let ns = Netns::new("daemon-panic");
    let mut command = ftp_alg(&ns, &["run", "--queue", "6-7", "--backend", "none"]);
    // The first queue's worker panics on its first read, within a second of `ready`.
    command.env("FTP_ALG_FAULT", "panic-after-packets:0");
    let mut daemon = Daemon::start(command);
    daemon.expect("fault injection for tests is on");
    daemon.expect("ready: queue(s) [6, 7] bound");
    daemon.expect("queue 6: worker panicked: injected fault");
    // The other worker is stopped as on SIGTERM: it logs its counters.
    daemon.expect("queue 7: stats");
    daemon.expect("queue 6 failed: worker panicked: injected fault");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = daemon.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the daemon is still running");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(1), "{status}");
}

#[test]
fn a_clean_stop_leaves_its_state_and_the_next_start_takes_it_once() {
    if !can_run() {
        return;
    }
    let ns = Netns::new("daemon-state");
    load_rules(&ns);
    let dir = std::env::temp_dir().join(format!("ftpalg-daemon-state-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let dir_arg = dir.to_str().unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["run", "--queue", "9", "--state-dir", dir_arg];
        args.extend_from_slice(extra);
        Daemon::start(ftp_alg(&ns, &args))
    };
    let stop = |daemon: Daemon| {
        daemon.signal("TERM");
        let mut daemon = daemon;
        assert!(daemon.child.wait().unwrap().success());
    };
    let first = run(&[]);
    first.expect("no state in");
    first.expect("ready");
    first.signal("TERM");
    first.expect("state saved to");
    stop(first);
    let file = dir.join("queue-9.state");
    assert!(file.exists(), "{} written", file.display());

    let second = run(&[]);
    let restored = second.expect("restored");
    assert!(restored.contains("0 connection(s)"), "{restored}");
    assert!(!file.exists(), "consumed at start");
    second.expect("ready");
    stop(second);

    // Other options: the state is reported, not used, and removed.
    let third = run(&["--timeout", "5"]);
    let ignored = third.expect("ignored");
    assert!(ignored.contains("other options"), "{ignored}");
    assert!(!file.exists());
    stop(third);

    std::fs::write(&file, b"garbage, not a state file").unwrap();
    let fourth = run(&["--timeout", "5"]);
    let ignored = fourth.expect("ignored");
    assert!(ignored.contains("not an ftp-alg state file"), "{ignored}");
    stop(fourth);
    let _ = std::fs::remove_dir_all(&dir);
}
