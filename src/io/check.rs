//! The shell of `ftp-alg check`: reads what the kernel and the firewall of the current
//! network namespace offer into [`Observations`], which `check::judge` turns into findings.
//!
//! Owns every OS access of the check, and nothing of what a finding means:
//! - `/proc/self/status` (CapEff), `/proc/net/netfilter/nfnetlink_queue` (bound queues),
//!   `/proc/net/netlink` and `/proc/PID/fd` (which process holds a queue's netlink port),
//!   `/lib/modules/RELEASE/modules.{dep,builtin}`, `/proc/sys/net/netfilter/nf_conntrack_helper`;
//! - the sets through the backends' own netlink `check` (the one `ftp-alg run` makes at
//!   start, so the two cannot disagree), and ctnetlink through `io::conntrack` (a lookup of
//!   a tuple that does not exist: ENOENT proves conntrack answers);
//! - the rules through the tools, because reading a whole ruleset over netlink means
//!   decoding every expression type, which nft already does: `nft -j list ruleset` (JSON),
//!   `iptables-save`/`ip6tables-save` (iptables-nft's rules show in nft's JSON only as bare
//!   `xt` expressions), `ipset list -t NAME` (a set's `timeout` and `maxelem`), and
//!   `nft --check` on a throwaway table (the kernel validates it, nothing is committed) to
//!   learn whether the `queue` statement and set element timeouts exist.
//!
//! A tool that is missing or fails is recorded as an `Err` with its message: a finding, not
//! a failure of the check.

use std::io::Write;
use std::net::SocketAddr;
use std::process::Command;
use std::process::Stdio;
use std::time::Duration;

use crate::check::Backend as SetupBackend;
use crate::check::Observations;
use crate::check::Setup;
use crate::io::backend::Backend;
use crate::io::backend::DEFAULT_NAT_MAPS;
use crate::io::backend::IpsetBackend;
use crate::io::backend::NftBackend;
use crate::io::conntrack::Conntrack;

/// Read everything the checks of `setup` need; `timeout` bounds each netlink answer.
pub fn observe(setup: &Setup, timeout: Duration) -> Observations {
    let queue_proc = read_optional(QUEUE_PROC);
    let queue_owners = match &queue_proc {
        Some(Ok(text)) => queue_owners(text),
        _ => Vec::new(),
    };
    let is_nft = matches!(setup.backend, SetupBackend::Nft { .. });
    Observations {
        cap_net_admin: cap_net_admin(),
        queue_module: queue_module(),
        queue_proc,
        queue_owners,
        queue_statement: is_nft.then(|| nft_check(&queue_probe(setup.queues[0]))),
        element_timeouts: is_nft.then(|| nft_check(TIMEOUT_PROBE)),
        nft_ruleset: Some(run("nft", &["-j", "list", "ruleset"])),
        iptables_save: [
            Some(run("iptables-save", &[])),
            Some(run("ip6tables-save", &[])),
        ],
        set_check: set_check(&setup.backend, timeout),
        ipset_headers: ipset_headers(&setup.backend),
        ctnetlink: setup.conntrack.then(|| ctnetlink(timeout)),
        helper_autoassign: std::fs::read_to_string(HELPER_SYSCTL).ok(),
    }
}

/// CAP_NET_ADMIN (bit 12) in `CapEff` of `/proc/self/status`.
fn cap_net_admin() -> Option<bool> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    let mask = u64::from_str_radix(hex.trim(), 16).ok()?;
    Some(mask & (1 << CAP_NET_ADMIN) != 0)
}

/// A file's text; `None` when it does not exist.
fn read_optional(path: &str) -> Option<Result<String, String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Some(Ok(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => Some(Err(e.to_string())),
    }
}

/// Whether the running kernel has nfnetlink_queue as a module or built in (`None`: cannot
/// tell).
fn queue_module() -> Option<bool> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    let dir = format!("/lib/modules/{}", release.trim());
    let mut readable = false;
    for list in ["modules.dep", "modules.builtin"] {
        if let Ok(text) = std::fs::read_to_string(format!("{dir}/{list}")) {
            readable = true;
            if text.contains("/nfnetlink_queue.ko") {
                return Some(true);
            }
        }
    }
    readable.then_some(false)
}

/// For each queue's netlink port id, the process holding the socket (name, pid), if found:
/// `/proc/net/netlink` gives the socket's inode, `/proc/PID/fd` the process.
fn queue_owners(table: &str) -> Vec<(u32, Option<(String, u32)>)> {
    let sockets = std::fs::read_to_string("/proc/net/netlink").unwrap_or_default();
    let ports: Vec<u32> = table
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
        .collect();
    ports
        .into_iter()
        .map(|port| (port, inode_of(&sockets, port).and_then(process_of)))
        .collect()
}

/// The inode of the NETLINK_NETFILTER socket bound to `port` (columns: sk Eth Pid Groups
/// Rmem Wmem Dump Locks Drops Inode).
fn inode_of(sockets: &str, port: u32) -> Option<u64> {
    sockets.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let netfilter = fields.get(1)?.parse::<i32>().ok()? == libc::NETLINK_NETFILTER;
        let matches = fields.get(2)?.parse::<u32>().ok()? == port;
        (netfilter && matches).then(|| fields.get(9)?.parse().ok())?
    })
}

/// The process (name, pid) with a descriptor on socket `inode`.
fn process_of(inode: u64) -> Option<(String, u32)> {
    let wanted = format!("socket:[{inode}]");
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let holds = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == wanted.as_str())
        });
        if holds {
            let name = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
            return Some((name.trim().to_owned(), pid));
        }
    }
    None
}

/// A throwaway table whose chain queues to `queue` (never committed: `nft --check`).
fn queue_probe(queue: u16) -> String {
    format!(
        "table inet {PROBE_TABLE} {{\n chain c {{\n  type filter hook forward priority 0; \
         policy accept;\n  tcp dport 21 queue num {queue} bypass\n }}\n}}\n"
    )
}

/// `nft --check -f -` of `ruleset`: the kernel validates the transaction, then it is aborted.
fn nft_check(ruleset: &str) -> Result<(), String> {
    let child = Command::new("nft")
        .args(["--check", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = child.map_err(|e| format!("nft: {}", spawn_error(&e)))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(ruleset.as_bytes())
            .map_err(|e| format!("nft: {e}"))?;
    }
    let output = child.wait_with_output().map_err(|e| format!("nft: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(first_line(&output.stderr))
    }
}

/// Run `program args`: its standard output, or why it failed.
fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{program}: {}", spawn_error(&e)))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!("{program}: {}", first_line(&output.stderr)))
    }
}

fn spawn_error(error: &std::io::Error) -> String {
    if error.kind() == std::io::ErrorKind::NotFound {
        "not found (is it installed and in PATH?)".to_owned()
    } else {
        error.to_string()
    }
}

/// The first non-empty line of a tool's error output, without nft's `/dev/stdin:1:2-3:`.
fn first_line(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let line = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("failed");
    let line = match line.find("Error:") {
        Some(at) => &line[at..],
        None => line,
    };
    line.trim().to_owned()
}

/// The backend's own check of its sets (and NAT maps).
fn set_check(backend: &SetupBackend, timeout: Duration) -> Option<Result<(), String>> {
    let result = match backend {
        SetupBackend::Nft { table, sets, maps } => {
            let mut nft = NftBackend::new(table, &sets[0], &sets[1]).with_answer_timeout(timeout);
            if let Some(maps) = maps {
                nft = nft.with_nat_maps(&maps[0], &maps[1]);
            }
            nft.check()
        }
        SetupBackend::Ipset { sets } => IpsetBackend::new(&sets[0], &sets[1])
            .with_answer_timeout(timeout)
            .check(),
        SetupBackend::None => return None,
    };
    Some(result.map_err(|e| e.to_string()))
}

fn ipset_headers(backend: &SetupBackend) -> [Option<Result<String, String>>; 2] {
    match backend {
        SetupBackend::Ipset { sets } => {
            [0, 1].map(|i| Some(run("ipset", &["list", "-t", &sets[i]])))
        }
        _ => [None, None],
    }
}

/// A lookup of a connection that cannot exist (documentation addresses, port 1 to 2).
fn ctnetlink(timeout: Duration) -> Result<(), String> {
    let mut conntrack = Conntrack::open()
        .map_err(|e| e.to_string())?
        .with_answer_timeout(timeout);
    let client = SocketAddr::from(([192, 0, 2, 1], 1));
    let server = SocketAddr::from(([192, 0, 2, 2], 2));
    conntrack
        .lookup(client, server)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The default NAT map names, for a set-up with NAT.
pub fn default_nat_maps() -> [String; 2] {
    DEFAULT_NAT_MAPS.map(str::to_owned)
}

const QUEUE_PROC: &str = "/proc/net/netfilter/nfnetlink_queue";
const HELPER_SYSCTL: &str = "/proc/sys/net/netfilter/nf_conntrack_helper";
const PROBE_TABLE: &str = "ftpalg_check_probe";
const TIMEOUT_PROBE: &str = "table inet ftpalg_check_probe {\n set s {\n  type ipv4_addr . \
                             ipv4_addr . inet_service\n  flags timeout\n }\n}\n";
/// linux/capability.h `CAP_NET_ADMIN`.
const CAP_NET_ADMIN: u32 = 12;
