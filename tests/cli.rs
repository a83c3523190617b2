//! The `ftp-alg` binary end to end: output formats, exit status, and a truncated capture
//! reported with its offset after what was read before it.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::process::Output;

fn ftp_alg(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ftp-alg"))
        .args(args)
        .output()
        .expect("run ftp-alg")
}

fn sample(name: &str) -> String {
    common::pcaps().join(name).display().to_string()
}

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    dir.join(name)
}

#[test]
fn json_lines_with_the_documented_fields() {
    let out = ftp_alg(&[
        "replay",
        "--format",
        "json",
        &sample("gen-passive-pasv-v4.pcap"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let events: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let expect = events
        .iter()
        .find(|e| e["type"] == "expect")
        .expect("an expect event");
    assert!(expect["time"].as_f64().unwrap() > 1.7e9);
    assert_eq!(expect["control"]["client"], "198.51.100.2:40000");
    assert_eq!(expect["control"]["server"], "203.0.113.2:21");
    assert_eq!(expect["trigger"], "227");
    assert_eq!(expect["mode"], "passive");
    assert_eq!(expect["data"]["src"], "198.51.100.2");
    assert_eq!(expect["data"]["dst"], "203.0.113.2");
    assert_eq!(expect["data"]["dport"], 50000);
    let admit = events
        .iter()
        .find(|e| e["type"] == "admit")
        .expect("an admit event");
    assert_eq!(admit["conn"]["src"], "198.51.100.2:51000");
    assert_eq!(admit["conn"]["dst"], "203.0.113.2:50000");
    let summary = events.last().unwrap();
    for field in [
        "files",
        "packets",
        "control_connections",
        "expectations",
        "refused",
        "admitted",
        "tls_control",
    ] {
        assert!(summary[field].is_u64(), "summary lacks {field}");
    }
    assert_eq!(summary["files"], 1);
    assert_eq!(summary["admitted"], 1);
}

#[test]
fn text_is_one_line_per_event_and_a_summary() {
    let out = ftp_alg(&[
        "replay",
        &sample("gen-bounce.pcap"),
        &sample("gen-active-port-v4.pcap"),
    ]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(
            " refuse   PORT naming 192.0.2.99:8080 on 198.51.100.2:40000 -> 203.0.113.2:21: bounce"
        ),
        "{text}"
    );
    assert!(
        text.contains(" deny     203.0.113.2:20 -> 192.0.2.99:8080: refused"),
        "{text}"
    );
    assert!(
        text.contains(" admit    203.0.113.2:20 -> 198.51.100.2:50001  (PORT on"),
        "{text}"
    );
    assert!(text.contains("summary: 2 file(s) (0 unreadable)"), "{text}");
}

#[test]
fn policy_and_timeout_flags_change_the_outcome() {
    let file = sample("gen-227-third-host.pcap");
    let strict = ftp_alg(&["replay", "--format", "json", &file]);
    let loose = ftp_alg(&["replay", "--format", "json", "--policy", "loose", &file]);
    let last = |o: &Output| -> serde_json::Value {
        serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().last().unwrap()).unwrap()
    };
    assert_eq!(last(&strict)["admitted"], 0);
    assert_eq!(last(&loose)["admitted"], 1);
    let theft = sample("gen-port-theft-expiry.pcap");
    let long = ftp_alg(&["replay", "--format", "json", "--timeout", "60", &theft]);
    assert_eq!(
        last(&long)["admitted"],
        2,
        "the late SYN is inside a 60 s lifetime"
    );
}

#[test]
fn truncated_capture_reports_what_was_read_then_the_offset() {
    let bytes = std::fs::read(sample("gen-passive-pasv-v4.pcap")).unwrap();
    let cut = bytes.len() - 30;
    let path = scratch("truncated.pcap");
    std::fs::write(&path, &bytes[..cut]).unwrap();
    let out = ftp_alg(&["replay", "--format", "json", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("\"type\":\"expect\""),
        "events before the error are reported: {text}"
    );
    let error = text
        .lines()
        .find(|l| l.contains("\"type\":\"error\""))
        .expect("an error event");
    assert!(
        error.contains("truncated.pcap") && error.contains("offset"),
        "{error}"
    );
    assert!(text.lines().last().unwrap().contains("\"file_errors\":1"));
}

#[test]
fn unreadable_files_and_bad_arguments_exit_2() {
    let missing = ftp_alg(&["replay", "/nonexistent/capture.pcap"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stdout).contains("/nonexistent/capture.pcap"));
    let text_file = scratch("not-a-capture.pcap");
    std::fs::write(&text_file, "hello, this is not a capture\n").unwrap();
    let garbage = ftp_alg(&["replay", text_file.to_str().unwrap()]);
    assert_eq!(garbage.status.code(), Some(2));
    for args in [
        vec!["replay"],
        vec!["replay", "--timeout", "0", "x"],
        vec!["replay", "--policy", "lax", "x"],
        vec![],
    ] {
        let out = ftp_alg(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?} explains itself");
    }
}

/// `replay --nat-map … --write OUT.pcap`: the written capture carries the rewritten PORT
/// (here split over three segments, so held then released), and tshark's TCP analysis finds
/// nothing the rewrite introduced (no ACK of unseen bytes, no missing segment).
#[test]
fn replay_writes_the_rewritten_capture() {
    let out = scratch("nat-rewritten.pcap");
    let run = ftp_alg(&[
        "replay",
        "--nat-map",
        "198.51.100.2=203.0.113.199",
        "--write",
        out.to_str().unwrap(),
        &sample("gen-port-split-3.pcap"),
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let mut reader = ftp_alg::io::capture::CaptureReader::open(&out).unwrap();
    let (mut buf, mut to_server, mut packets) = (Vec::new(), Vec::new(), 0);
    while reader.next_packet(&mut buf).unwrap().is_some() {
        packets += 1;
        if let Ok(ftp_alg::wire::Datagram::Tcp(segment)) = ftp_alg::wire::parse(&buf) {
            assert_ne!(
                segment.checksum_ok(),
                Some(false),
                "a released checksum is wrong"
            );
            if segment.dst().port() == 21 {
                to_server.extend_from_slice(segment.payload());
            }
        }
    }
    let text = String::from_utf8_lossy(&to_server);
    assert!(text.contains("PORT 203,0,113,199,"), "{text}");
    assert!(!text.contains("198,51,100,2,"), "{text}");
    assert_eq!(
        packets, 22,
        "every datagram of the capture is released once"
    );
    let Ok(tshark) = Command::new("tshark")
        .args(["-r", out.to_str().unwrap(), "-Y"])
        .arg("tcp.analysis.ack_lost_segment || tcp.analysis.lost_segment")
        .output()
    else {
        eprintln!("tshark not installed: its TCP analysis SKIPPED");
        return;
    };
    assert!(tshark.status.success());
    assert!(
        tshark.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&tshark.stdout)
    );
}

/// Replay's progress line appears on stderr when it is a terminal (a pty from `script`) and
/// stdout is not, and is cleared at the end; with stderr a pipe, stderr stays empty.
#[test]
fn progress_shows_on_a_terminal_only() {
    let capture = sample("lab-proftpd-lftp-pasv-upload-v4.pcap");
    let piped = ftp_alg(&["replay", &capture]);
    assert!(piped.status.success());
    assert!(
        piped.stderr.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&piped.stderr)
    );
    let has_script = Command::new("script").arg("--version").output().is_ok();
    if !has_script {
        eprintln!("skipped: progress on a terminal needs script(1) (util-linux) for a pty");
        return;
    }
    let line = format!(
        "{} replay {capture} > /dev/null",
        env!("CARGO_BIN_EXE_ftp-alg")
    );
    let out = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run script");
    assert!(out.status.success());
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.starts_with("\rreplay: 1 packets, "), "{shown:?}");
    assert!(
        shown.contains(" kB ("),
        "the file's size is known: {shown:?}"
    );
    assert!(shown.ends_with("\r\x1b[K"), "cleared at the end: {shown:?}");
    let line = format!("{} replay {capture}", env!("CARGO_BIN_EXE_ftp-alg"));
    let out = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run script");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        !shown.contains("\rreplay: "),
        "stdout on the terminal too: {shown:?}"
    );
    assert!(shown.contains("summary: 1 file(s)"), "{shown:?}");
}

#[test]
fn check_has_help_and_takes_the_options_of_run() {
    let out = ftp_alg(&["check", "--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in ["--queue", "--backend", "--table", "--nat", "--control-port"] {
        assert!(help.contains(flag), "check --help lacks {flag}");
    }
    let out = ftp_alg(&["check", "--backend", "pf"]);
    assert_eq!(out.status.code(), Some(2), "a bad flag is a usage error");
}

/// Without CAP_NET_ADMIN (root dropping to nobody with setpriv), check reports that the
/// daemon could not run, exits 1, and neither panics nor hides the other lines.
#[test]
fn check_without_privileges_reports_and_exits_1() {
    if !common::netns::root_with(&["setpriv"], "check_without_privileges") {
        return;
    }
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(env!("CARGO_BIN_EXE_ftp-alg"))
        .args(["check", "--backend", "nft"])
        .output()
        .expect("run setpriv");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stdout.contains("missing  privileges: CAP_NET_ADMIN is not effective"),
        "{stdout}"
    );
    assert!(stdout.contains("the set-up cannot work"), "{stdout}");
}
