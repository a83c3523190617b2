//! Root-only integration tests: a private network namespace, and the check that says
//! "skipped" (never silently) when the test cannot run.

use std::io::Write;
use std::process::Command;
use std::process::Output;
use std::process::Stdio;

/// A network namespace `ftpalg-<tag>-<pid>`, deleted on drop, even when the test fails.
pub struct Netns(String);

impl Netns {
    pub fn new(tag: &str) -> Self {
        let name = format!("ftpalg-{tag}-{}", std::process::id());
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap();
        assert!(ok.success(), "ip netns add {name}");
        Self(name)
    }

    /// Its name, for `ip ... netns NAME`.
    pub fn name(&self) -> &str {
        &self.0
    }

    /// `program` to run inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.0, program]);
        command
    }

    /// Run `program args` inside the namespace.
    pub fn run(&self, program: &str, args: &[&str]) -> Output {
        self.command(program).args(args).output().unwrap()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// True when running as root with every one of `tools`; otherwise prints
/// "skipped: `what` needs root and …" and returns false.
pub fn root_with(tools: &[&str], what: &str) -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout == b"0\n");
    let found = tools.iter().all(|tool| {
        Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if !(root && found) {
        // Straight to stderr, past the test harness's capture, so the skip is seen.
        let _ = writeln!(
            std::io::stderr(),
            "skipped: {what} needs root and {}",
            tools.join(", ")
        );
    }
    root && found
}

/// Set by [`run_inner`] in the environment of the re-run test binary: the namespace name.
pub const INNER_MARKER: &str = "FTPALG_INNER_NETNS";

/// Re-run this test binary's `#[ignore]`d test `inner` inside a fresh private network
/// namespace (loopback up), and fail if it fails there. Skips (loudly) without root or one
/// of `tools`.
pub fn run_inner(inner: &str, tools: &[&str]) {
    if !root_with(tools, inner) {
        return;
    }
    let netns = Netns::new(&short_tag(inner));
    let up = netns.run("ip", &["link", "set", "lo", "up"]);
    assert!(up.status.success(), "lo up in {}", netns.0);
    let exe = std::env::current_exe().unwrap();
    let output = netns
        .command(exe.to_str().unwrap())
        .args(["--exact", inner, "--include-ignored", "--nocapture"])
        .env(INNER_MARKER, &netns.0)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "{inner} failed inside netns {}:\n{stdout}\n{}",
        netns.0,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// True inside the namespace [`run_inner`] made; otherwise says why the test does nothing.
pub fn inside(inner: &str) -> bool {
    if std::env::var_os(INNER_MARKER).is_some() {
        return true;
    }
    let _ = writeln!(
        std::io::stderr(),
        "skipped {inner}: it runs only inside the private network namespace its outer test creates"
    );
    false
}

/// A short, distinct namespace tag for a test name (namespace names are short-lived files).
fn short_tag(test: &str) -> String {
    let hash = test
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    format!("in-{hash:08x}")
}

/// Run `program args`, which must succeed; its standard output.
pub fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Run `program args` with `input` on its standard input; it must succeed.
pub fn run_stdin(program: &str, args: &[&str], input: &str) {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
