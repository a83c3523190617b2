//! Rulesets to pair with the daemon: the text `ftp-alg rules` prints and `rules/` ships.
//!
//! Owns: rendering one firewall ruleset for a stateful gateway whose forward policy drops
//! everything not allowed, from the same names and numbers the daemon is started with (so
//! the two cannot disagree). Pure string building; nothing is loaded here.
//!
//! The order of the pieces is deliberate and the same in every variant:
//! 1. the filter runs first (invalid dropped, established accepted, new control connections
//!    accepted), so the daemon never reads a segment the firewall then drops;
//! 2. the accepted control packets are queued to `ftp-alg run` (nft `queue`, or iptables
//!    `NFQUEUE` on kernels without `CONFIG_NFT_QUEUE`);
//! 3. a data connection's SYN is admitted only when it matches an expectation, which the
//!    rule deletes on first use (one expectation, one connection); the set's timeout bounds
//!    the rest, even if the daemon dies.

use std::fmt::Write;

/// Which ruleset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// nftables sets for `--backend nft`.
    Nft,
    /// iptables/ip6tables with ipset sets for `--backend ipset`.
    Ipset,
    /// The kernel's own FTP helper (`nf_conntrack_ftp`), for comparison; no daemon.
    Kernel,
}

/// Which facility queues the control packets (nft variant only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueVia {
    /// The nft `queue` statement (needs `CONFIG_NFT_QUEUE`).
    Nft,
    /// `iptables -j NFQUEUE` (iptables-nft `xt` compatibility), for kernels without it.
    Iptables,
}

/// A contiguous range of queue numbers; several queues are balanced by a flow hash that is
/// the same in both directions, so each control connection stays on one worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueRange {
    /// First queue number.
    pub first: u16,
    /// Last queue number (inclusive).
    pub last: u16,
}

/// Everything a ruleset depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Which ruleset.
    pub variant: Variant,
    /// How control packets are queued (nft variant).
    pub queue_via: QueueVia,
    /// The queues the daemon listens on.
    pub queues: QueueRange,
    /// When no daemon is bound: pass control packets unexamined (`true`) or drop them.
    pub bypass: bool,
    /// nftables table (family `inet`).
    pub table: String,
    /// nftables IPv4 expectation set.
    pub set4: String,
    /// nftables IPv6 expectation set.
    pub set6: String,
    /// ipset IPv4 expectation set.
    pub ipset4: String,
    /// ipset IPv6 expectation set.
    pub ipset6: String,
    /// FTP control ports.
    pub control_ports: Vec<u16>,
    /// The sets' default element timeout, in seconds (each element carries its own).
    pub timeout_secs: u64,
    /// The sets' maximum number of elements.
    pub set_size: u32,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            variant: Variant::Nft,
            queue_via: QueueVia::Nft,
            queues: QueueRange { first: 0, last: 0 },
            bypass: true,
            table: "ftpalg".into(),
            set4: "expect4".into(),
            set6: "expect6".into(),
            ipset4: "ftpalg-expect4".into(),
            ipset6: "ftpalg-expect6".into(),
            control_ports: vec![21],
            timeout_secs: 30,
            set_size: 65_536,
        }
    }
}

/// The ruleset text.
pub fn render(options: &Options) -> String {
    match (options.variant, options.queue_via) {
        (Variant::Nft, QueueVia::Nft) => nft_file(options),
        (Variant::Nft, QueueVia::Iptables) => nft_with_iptables_queue(options),
        (Variant::Ipset, _) => ipset_script(options),
        (Variant::Kernel, _) => kernel_file(options),
    }
}

/// The command line that prints this ruleset.
fn command(options: &Options) -> String {
    let defaults = Options::default();
    let mut line = String::from("ftp-alg rules --backend ");
    line += match options.variant {
        Variant::Nft => "nft",
        Variant::Ipset => "ipset",
        Variant::Kernel => "kernel",
    };
    if options.variant == Variant::Nft && options.queue_via == QueueVia::Iptables {
        line += " --queue-via iptables";
    }
    if options.variant != Variant::Kernel && options.queues != defaults.queues {
        let _ = write!(line, " --queue {}", queue_arg(options.queues));
    }
    line
}

fn queue_arg(queues: QueueRange) -> String {
    if queues.first == queues.last {
        queues.first.to_string()
    } else {
        format!("{}-{}", queues.first, queues.last)
    }
}

fn ports_nft(ports: &[u16]) -> String {
    match ports {
        [one] => one.to_string(),
        many => {
            let list: Vec<String> = many.iter().map(u16::to_string).collect();
            format!("{{ {} }}", list.join(", "))
        }
    }
}

/// `--dport 21` or `-m multiport --dports 21,2121` (`side` is `d` or `s`).
fn ports_ipt(ports: &[u16], side: char) -> String {
    match ports {
        [one] => format!("--{side}port {one}"),
        many => {
            let list: Vec<String> = many.iter().map(u16::to_string).collect();
            format!("-m multiport --{side}ports {}", list.join(","))
        }
    }
}

fn header(out: &mut String, options: &Options, title: &str, shebang: &str) {
    let _ = writeln!(out, "{shebang}");
    let _ = writeln!(out, "# ftp-alg: {title}");
    let _ = writeln!(out, "# Generated by `{}`.", command(options));
    out.push_str(
        "#\n\
         # A stateful gateway whose forward policy drops everything not allowed. FTP control\n\
         # connections are allowed; an FTP data connection is allowed only when announced on a\n\
         # control connection (PORT/EPRT from the client, 227/229 from the server).\n",
    );
}

fn bypass_note(out: &mut String, options: &Options) {
    if options.bypass {
        out.push_str(
            "# Queue bypass is on: while no ftp-alg is bound to the queue, control packets pass\n\
             # unexamined. FTP logins and commands keep working; data connections are refused\n\
             # (nothing announces them). Remove the bypass to drop control traffic instead\n\
             # until the daemon is back (TCP retransmits; sessions then resume).\n",
        );
    } else {
        out.push_str(
            "# Queue bypass is off: while no ftp-alg is bound to the queue, control packets are\n\
             # dropped (TCP retransmits them; sessions resume when the daemon is back).\n",
        );
    }
}

fn nft_set(out: &mut String, name: &str, addr: &str, options: &Options) {
    let _ = write!(
        out,
        "\tset {name} {{\n\
         \t\ttype {addr} . {addr} . inet_service\n\
         \t\tflags timeout\n\
         \t\ttimeout {}s\n\
         \t\tsize {}\n\
         \t}}\n\n",
        options.timeout_secs, options.set_size
    );
}

fn nft_sets(out: &mut String, options: &Options) {
    out.push_str(
        "\t# Expectations written by `ftp-alg run --backend nft`, keyed\n\
         \t# data source . data destination . data port; each element carries its own timeout.\n",
    );
    nft_set(out, &options.set4, "ipv4_addr", options);
    nft_set(out, &options.set6, "ipv6_addr", options);
}

fn nft_filter_chain(out: &mut String, options: &Options) {
    let ports = ports_nft(&options.control_ports);
    let (s4, s6) = (&options.set4, &options.set6);
    let _ = write!(
        out,
        "\tchain forward {{\n\
         \t\t# Runs before the queue, so ftp-alg only reads what the firewall forwards.\n\
         \t\ttype filter hook forward priority filter - 10; policy drop;\n\
         \t\tct state invalid drop\n\
         \t\tct state established,related accept\n\
         \t\t# FTP control connections (narrow this to your clients and servers).\n\
         \t\ttcp dport {ports} ct state new accept\n\
         \t\t# An announced data connection: its SYN consumes the expectation and is accepted.\n\
         \t\t# A retransmitted SYN of a connection admitted before (its conntrack entry is\n\
         \t\t# confirmed: the first SYN passed every chain, then was lost) needs no new one.\n\
         \t\tct state new ct status confirmed tcp flags & (fin|syn|rst|ack) == syn accept\n\
         \t\tct state new tcp flags & (fin|syn|rst|ack) == syn ip saddr . ip daddr . tcp dport @{s4} delete @{s4} {{ ip saddr . ip daddr . tcp dport }} accept\n\
         \t\tct state new tcp flags & (fin|syn|rst|ack) == syn ip6 saddr . ip6 daddr . tcp dport @{s6} delete @{s6} {{ ip6 saddr . ip6 daddr . tcp dport }} accept\n\
         \t\ticmp type echo-request accept\n\
         \t\ticmpv6 type echo-request accept\n\
         \t}}\n"
    );
}

/// The table replaced atomically, opened, with its sets and filter chain (left open for the
/// caller to add to and close).
fn nft_table_head(out: &mut String, options: &Options) {
    nft_table_reset(out, &options.table);
    let _ = writeln!(out, "table inet {} {{", options.table);
    nft_sets(out, options);
    nft_filter_chain(out, options);
}

fn nft_queue_target(options: &Options) -> String {
    let bypass = if options.bypass { " bypass" } else { "" };
    format!("queue num {}{bypass}", queue_arg(options.queues))
}

fn nft_table_reset(out: &mut String, table: &str) {
    let _ = write!(
        out,
        "# Replace the table atomically: declare it (so the delete cannot fail), delete, recreate.\n\
         table inet {table}\n\
         delete table inet {table}\n\n"
    );
}

fn nft_file(options: &Options) -> String {
    let mut out = String::new();
    header(
        &mut out,
        options,
        "nftables ruleset (queue statement)",
        "#!/usr/sbin/nft -f",
    );
    out.push_str(
        "# Needs a kernel with CONFIG_NFT_QUEUE; otherwise use\n\
         # `ftp-alg rules --backend nft --queue-via iptables`. Load with `nft -f FILE`.\n",
    );
    bypass_note(&mut out, options);
    out.push('\n');
    nft_table_head(&mut out, options);
    let ports = ports_nft(&options.control_ports);
    let target = nft_queue_target(options);
    let _ = write!(
        out,
        "\n\
         \tchain ftp_queue {{\n\
         \t\t# Control packets the filter accepted go to ftp-alg, in both directions.\n\
         \t\ttype filter hook forward priority filter; policy accept;\n\
         \t\ttcp dport {ports} {target}\n\
         \t\ttcp sport {ports} {target}\n\
         \t}}\n\
         }}\n"
    );
    out
}

fn nft_with_iptables_queue(options: &Options) -> String {
    let mut out = String::new();
    header(
        &mut out,
        options,
        "nftables sets and filter, control packets queued by iptables",
        "#!/bin/sh",
    );
    out.push_str(
        "# For kernels without CONFIG_NFT_QUEUE: the queue rule comes from iptables-nft's\n\
         # NFQUEUE target (FORWARD, priority filter), which runs after the nft filter chain\n\
         # (priority filter - 10). Run with `sh FILE` as root.\n",
    );
    bypass_note(&mut out, options);
    out.push_str("set -eu\n\nnft -f - <<'EOF'\n");
    nft_table_head(&mut out, options);
    out.push_str("}\nEOF\n\n");
    let target = ipt_queue_target(options);
    let (dports, sports) = (
        ports_ipt(&options.control_ports, 'd'),
        ports_ipt(&options.control_ports, 's'),
    );
    let _ = write!(
        out,
        "for ipt in iptables ip6tables; do\n\
         \t\"$ipt\" -w -N FTPALG_QUEUE 2>/dev/null || \"$ipt\" -w -F FTPALG_QUEUE\n\
         \t\"$ipt\" -w -A FTPALG_QUEUE -p tcp {dports} {target}\n\
         \t\"$ipt\" -w -A FTPALG_QUEUE -p tcp {sports} {target}\n\
         \t\"$ipt\" -w -C FORWARD -j FTPALG_QUEUE 2>/dev/null || \"$ipt\" -w -A FORWARD -j FTPALG_QUEUE\n\
         done\n"
    );
    out
}

fn ipt_queue_target(options: &Options) -> String {
    let queues = options.queues;
    let mut target = if queues.first == queues.last {
        format!("-j NFQUEUE --queue-num {}", queues.first)
    } else {
        format!(
            "-j NFQUEUE --queue-balance {}:{}",
            queues.first, queues.last
        )
    };
    if options.bypass {
        target += " --queue-bypass";
    }
    target
}

fn ipset_script(options: &Options) -> String {
    let mut out = String::new();
    header(
        &mut out,
        options,
        "iptables/ip6tables with ipset sets",
        "#!/bin/sh",
    );
    out.push_str(
        "# Expectations are ipset hash:ip,port,ip elements (data source, tcp:data port, data\n\
         # destination) written by `ftp-alg run --backend ipset`. Run with `sh FILE` as root.\n\
         # It sets the FORWARD policy to DROP.\n",
    );
    bypass_note(&mut out, options);
    let _ = write!(
        out,
        "set -eu\n\n\
         ipset -exist create {s4} hash:ip,port,ip family inet timeout {t} maxelem {n}\n\
         ipset -exist create {s6} hash:ip,port,ip family inet6 timeout {t} maxelem {n}\n\n",
        s4 = options.ipset4,
        s6 = options.ipset6,
        t = options.timeout_secs,
        n = options.set_size,
    );
    let target = ipt_queue_target(options);
    let (dports, sports) = (
        ports_ipt(&options.control_ports, 'd'),
        ports_ipt(&options.control_ports, 's'),
    );
    let _ = write!(
        out,
        "for family in 4 6; do\n\
         \tif [ \"$family\" = 4 ]; then ipt=iptables; set={s4}; ping=icmp; ping_type=--icmp-type\n\
         \telse ipt=ip6tables; set={s6}; ping=ipv6-icmp; ping_type=--icmpv6-type; fi\n\
         \tfor chain in FTPALG_FORWARD FTPALG_DATA; do\n\
         \t\t\"$ipt\" -w -N \"$chain\" 2>/dev/null || \"$ipt\" -w -F \"$chain\"\n\
         \tdone\n\
         \t# An announced data connection: consume the expectation, accept.\n\
         \t\"$ipt\" -w -A FTPALG_DATA -j SET --del-set \"$set\" src,dst,dst\n\
         \t\"$ipt\" -w -A FTPALG_DATA -j ACCEPT\n\
         \t\"$ipt\" -w -A FTPALG_FORWARD -m conntrack --ctstate INVALID -j DROP\n\
         \t# FTP control connections (narrow this to your clients and servers), read by ftp-alg.\n\
         \t# NFQUEUE is a final verdict here: the daemon's accept is the packet's accept.\n\
         \t\"$ipt\" -w -A FTPALG_FORWARD -p tcp {dports} -m conntrack --ctstate NEW,ESTABLISHED {target}\n\
         \t\"$ipt\" -w -A FTPALG_FORWARD -p tcp {sports} -m conntrack --ctstate ESTABLISHED {target}\n\
         \t\"$ipt\" -w -A FTPALG_FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n\
         \t# A retransmitted SYN of a connection admitted before (its first SYN passed, then was lost).\n\
         \t\"$ipt\" -w -A FTPALG_FORWARD -p tcp --syn -m conntrack --ctstate NEW --ctstatus CONFIRMED -j ACCEPT\n\
         \t\"$ipt\" -w -A FTPALG_FORWARD -p tcp --syn -m conntrack --ctstate NEW -m set --match-set \"$set\" src,dst,dst -j FTPALG_DATA\n\
         \t\"$ipt\" -w -A FTPALG_FORWARD -p \"$ping\" \"$ping_type\" echo-request -j ACCEPT\n\
         \t\"$ipt\" -w -C FORWARD -j FTPALG_FORWARD 2>/dev/null || \"$ipt\" -w -I FORWARD 1 -j FTPALG_FORWARD\n\
         \t\"$ipt\" -w -P FORWARD DROP\n\
         done\n",
        s4 = options.ipset4,
        s6 = options.ipset6,
    );
    out
}

fn kernel_file(options: &Options) -> String {
    let mut out = String::new();
    header(
        &mut out,
        options,
        "the kernel's own FTP helper (nf_conntrack_ftp), the baseline; no daemon",
        "#!/usr/sbin/nft -f",
    );
    out.push_str(
        "# The helper is assigned explicitly (automatic assignment is off since Linux 4.7); the\n\
         # data connections it expects are `related`. Load with `nft -f FILE`.\n\n",
    );
    let table = format!("{}_kernel", options.table);
    nft_table_reset(&mut out, &table);
    let ports = ports_nft(&options.control_ports);
    let _ = write!(
        out,
        "table inet {table} {{\n\
         \tct helper ftp-standard {{\n\
         \t\ttype \"ftp\" protocol tcp\n\
         \t\tl3proto inet\n\
         \t}}\n\n\
         \tchain prerouting {{\n\
         \t\ttype filter hook prerouting priority filter; policy accept;\n\
         \t\ttcp dport {ports} ct helper set \"ftp-standard\"\n\
         \t}}\n\n\
         \tchain forward {{\n\
         \t\ttype filter hook forward priority filter - 10; policy drop;\n\
         \t\tct state invalid drop\n\
         \t\tct state established,related accept\n\
         \t\t# FTP control connections (narrow this to your clients and servers).\n\
         \t\ttcp dport {ports} ct state new accept\n\
         \t\ticmp type echo-request accept\n\
         \t\ticmpv6 type echo-request accept\n\
         \t}}\n\
         }}\n"
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(variant: Variant, queue_via: QueueVia) -> Options {
        Options {
            variant,
            queue_via,
            ..Options::default()
        }
    }

    /// The files in `rules/` are exactly what `ftp-alg rules` prints with default options.
    #[test]
    fn shipped_rulesets_are_the_defaults() {
        let shipped = [
            (
                with(Variant::Nft, QueueVia::Nft),
                include_str!("../rules/nftables.nft"),
            ),
            (
                with(Variant::Nft, QueueVia::Iptables),
                include_str!("../rules/nftables-iptables-queue.sh"),
            ),
            (
                with(Variant::Ipset, QueueVia::Nft),
                include_str!("../rules/iptables-ipset.sh"),
            ),
            (
                with(Variant::Kernel, QueueVia::Nft),
                include_str!("../rules/kernel-helper.nft"),
            ),
        ];
        for (options, file) in shipped {
            assert_eq!(render(&options), file, "{:?}", options.variant);
        }
    }

    #[test]
    fn names_and_queues_follow_the_options() {
        let options = Options {
            queues: QueueRange { first: 2, last: 5 },
            table: "gw".into(),
            set4: "e4".into(),
            control_ports: vec![21, 2121],
            bypass: false,
            ..Options::default()
        };
        let nft = render(&options);
        assert!(nft.contains("table inet gw {"));
        assert!(nft.contains("@e4 delete @e4"));
        assert!(nft.contains("tcp dport { 21, 2121 } queue num 2-5\n"));
        assert!(nft.contains("--queue 2-5"));
        let ipt = render(&Options {
            queue_via: QueueVia::Iptables,
            ..options.clone()
        });
        assert!(ipt.contains("--dports 21,2121 -j NFQUEUE --queue-balance 2:5\n"));
        assert!(!ipt.contains("queue num"));
        let ipset = render(&Options {
            variant: Variant::Ipset,
            ..options
        });
        assert!(ipset.contains("--queue-balance 2:5"));
        assert!(!ipset.contains("--queue-bypass"));
    }

    #[test]
    fn bypass_is_stated() {
        let on = render(&Options::default());
        assert!(on.contains("queue num 0 bypass"));
        assert!(on.contains("Queue bypass is on"));
        let off = render(&Options {
            bypass: false,
            ..Options::default()
        });
        assert!(off.contains("queue num 0\n"));
        assert!(off.contains("Queue bypass is off"));
    }
}
