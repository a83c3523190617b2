//! Measures what one expectation costs in the kernel, side by side in one run: our nft
//! and ipset netlink backends (1 element per transaction, and 100 per batch) against the
//! `nft add element` / `nft delete element` and `ipset add` command lines.
//!
//! `cargo run --release --example netlink_costs` as root. It runs itself again inside a
//! private network namespace (`ip netns exec`), so the host's ruleset is untouched.
//! Numbers are in docs/netlink.md.

use std::io::Write;
use std::net::Ipv4Addr;
use std::num::NonZeroU16;
use std::process::Command;
use std::process::Stdio;
use std::time::Duration;
use std::time::Instant;

use ftp_alg::expect::DataKey;
use ftp_alg::io::backend::Backend;
use ftp_alg::io::backend::Element;
use ftp_alg::io::backend::IpsetBackend;
use ftp_alg::io::backend::NftBackend;
use ftp_alg::io::sys;

const MARKER: &str = "FTPALG_NETLINK_COSTS_NETNS";
const ROUNDS: u16 = 2000;
const CLI_ROUNDS: u16 = 40;

fn main() {
    if sys::effective_uid() != 0 {
        eprintln!("skipped: needs root (and nft, ipset, ip)");
        return;
    }
    if std::env::var_os(MARKER).is_none() {
        return in_private_netns();
    }
    setup();
    let mut rows = Vec::new();
    let mut nft = NftBackend::new("ftpalg", "expect4", "expect6");
    rows.extend(measure_backend("nft netlink", &mut nft));
    let mut ipset = IpsetBackend::new("ftpalg-expect4", "ftpalg-expect6");
    rows.extend(measure_backend("ipset netlink", &mut ipset));
    rows.extend(measure_cli());
    report(&rows);
}

/// One line of the report: what, and microseconds per element.
struct Row {
    what: String,
    micros: f64,
}

fn measure_backend(name: &str, backend: &mut dyn Backend) -> Vec<Row> {
    let elements: Vec<Element> = (1..=ROUNDS).map(element).collect();
    let add_one = time_per(elements.len(), || {
        for e in &elements {
            backend.install(std::slice::from_ref(e)).unwrap();
        }
    });
    let remove_one = time_per(elements.len(), || {
        for e in &elements {
            backend.remove(std::slice::from_ref(e)).unwrap();
        }
    });
    let add_batch = time_per(elements.len(), || {
        for chunk in elements.chunks(100) {
            backend.install(chunk).unwrap();
        }
    });
    let remove_batch = time_per(elements.len(), || {
        for chunk in elements.chunks(100) {
            backend.remove(chunk).unwrap();
        }
    });
    vec![
        row(name, "add, 1 per transaction", add_one),
        row(name, "remove, 1 per transaction", remove_one),
        row(name, "add, 100 per batch", add_batch),
        row(name, "remove, 100 per batch", remove_batch),
    ]
}

fn measure_cli() -> Vec<Row> {
    let keys: Vec<DataKey> = (1..=CLI_ROUNDS).map(|p| element(p).key).collect();
    let nft_add = time_per(keys.len(), || {
        for k in &keys {
            let spec = format!("{{ {} . {} . {} timeout 30s }}", k.src, k.dst, k.dport);
            run(
                "nft",
                &["add", "element", "inet", "ftpalg", "expect4", &spec],
            );
        }
    });
    let nft_delete = time_per(keys.len(), || {
        for k in &keys {
            let spec = format!("{{ {} . {} . {} }}", k.src, k.dst, k.dport);
            run(
                "nft",
                &["delete", "element", "inet", "ftpalg", "expect4", &spec],
            );
        }
    });
    let ipset_add = time_per(keys.len(), || {
        for k in &keys {
            let spec = format!("{},tcp:{},{}", k.src, k.dport, k.dst);
            run("ipset", &["add", "ftpalg-expect4", &spec, "timeout", "30"]);
        }
    });
    vec![
        row("nft CLI", "add element (fork/exec)", nft_add),
        row("nft CLI", "delete element (fork/exec)", nft_delete),
        row("ipset CLI", "add (fork/exec)", ipset_add),
    ]
}

fn report(rows: &[Row]) {
    let base = rows[0].micros;
    println!(
        "{:<14} {:<28} {:>12} {:>10}",
        "backend", "operation", "µs/element", "× nft 1/tx"
    );
    for r in rows {
        let (backend, operation) = r.what.split_once('|').unwrap_or((&r.what, ""));
        println!(
            "{backend:<14} {operation:<28} {:>12.2} {:>10.2}",
            r.micros,
            r.micros / base
        );
    }
}

fn row(backend: &str, operation: &str, per: Duration) -> Row {
    Row {
        what: format!("{backend}|{operation}"),
        micros: per.as_secs_f64() * 1e6,
    }
}

fn time_per(count: usize, work: impl FnOnce()) -> Duration {
    let start = Instant::now();
    work();
    start.elapsed() / u32::try_from(count).unwrap_or(u32::MAX)
}

fn element(port: u16) -> Element {
    Element {
        nat: None,
        key: DataKey {
            src: Ipv4Addr::new(198, 51, 100, 2).into(),
            dst: Ipv4Addr::new(203, 0, 113, 2).into(),
            dport: NonZeroU16::new(port).unwrap_or(NonZeroU16::MIN),
        },
        timeout: Duration::from_secs(30),
    }
}

fn setup() {
    let ruleset = "table inet ftpalg {
      set expect4 { type ipv4_addr . ipv4_addr . inet_service; flags timeout; timeout 30s; }
      set expect6 { type ipv6_addr . ipv6_addr . inet_service; flags timeout; timeout 30s; }
    }";
    let mut nft = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    nft.stdin
        .take()
        .unwrap()
        .write_all(ruleset.as_bytes())
        .unwrap();
    assert!(nft.wait().unwrap().success());
    for (name, family) in [("ftpalg-expect4", "inet"), ("ftpalg-expect6", "inet6")] {
        run(
            "ipset",
            &[
                "create",
                name,
                "hash:ip,port,ip",
                "family",
                family,
                "timeout",
                "30",
            ],
        );
    }
}

fn in_private_netns() {
    let name = format!("ftpalg-nl-costs-{}", std::process::id());
    run("ip", &["netns", "add", &name]);
    let exe = std::env::current_exe().unwrap();
    let status = Command::new("ip")
        .args(["netns", "exec", &name])
        .arg(exe)
        .env(MARKER, &name)
        .status();
    run("ip", &["netns", "del", &name]);
    assert!(status.unwrap().success(), "the measurement failed");
}

fn run(program: &str, args: &[&str]) {
    let status = Command::new(program).args(args).status().unwrap();
    assert!(status.success(), "{program} {args:?} failed");
}
