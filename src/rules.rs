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
//!
//! The NAT form of the nft ruleset ([`Nat`], `ftp-alg rules --nat --outside IFACE`) differs in
//! where control packets are queued: by the interface they arrive on, those from the inside
//! before conntrack (so conntrack tracks what the daemon rewrote) and before the filter, which
//! still decides on them. It also adds the DNAT maps that send a rewritten announcement's data
//! connection to the private host. The operator's own NAT rules are never part of it.

mod ftps;

use std::fmt::Write;

pub use self::ftps::Ftps;

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

/// The NAT form (nft variant only): the gateway translates addresses and the daemon rewrites
/// the private ones that inside hosts announce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nat {
    /// The gateway's interface toward the peers that see public addresses.
    pub outside: String,
    /// nftables IPv4 DNAT map (`peer . public . public port : private . private port`).
    pub map4: String,
    /// nftables IPv6 DNAT map.
    pub map6: String,
}

impl Nat {
    /// The NAT form for the outside interface `outside`, with the default map names.
    pub fn new(outside: &str) -> Self {
        Self {
            outside: outside.to_owned(),
            map4: "dnat4".into(),
            map6: "dnat6".into(),
        }
    }
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
    /// The NAT form ([`Variant::Nft`] only; see [`Options::check`]).
    pub nat: Option<Nat>,
    /// The FTPS fallback: passive data connections to named servers' fixed port range.
    pub ftps: Option<Ftps>,
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
            nat: None,
            ftps: None,
        }
    }
}

impl Options {
    /// Why these options cannot be written as one ruleset, if they cannot.
    pub fn check(&self) -> Result<(), String> {
        match (&self.nat, self.variant) {
            (Some(_), Variant::Ipset) => Err("--nat needs --backend nft: ipset sets cannot hold \
                 the DNAT maps that send a rewritten announcement's data connection to the \
                 private host"
                .into()),
            (Some(_), Variant::Kernel) => Err("--nat needs --backend nft: the kernel helper \
                 rewrites on its own next to your NAT rules (use --backend kernel without --nat)"
                .into()),
            _ => Ok(()),
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
    if let Some(nat) = &options.nat {
        let _ = write!(line, " --nat --outside {}", nat.outside);
    }
    if let Some(ftps) = &options.ftps {
        line += &ftps.flags();
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

/// A set or map with per-element timeouts: `keyword` is `set` or `map`.
fn nft_timeout_set(out: &mut String, keyword: &str, name: &str, typ: &str, options: &Options) {
    let _ = write!(
        out,
        "\t{keyword} {name} {{\n\
         \t\ttype {typ}\n\
         \t\tflags timeout\n\
         \t\ttimeout {}s\n\
         \t\tsize {}\n\
         \t}}\n\n",
        options.timeout_secs, options.set_size
    );
}

fn nft_set(out: &mut String, name: &str, addr: &str, options: &Options) {
    let typ = format!("{addr} . {addr} . inet_service");
    nft_timeout_set(out, "set", name, &typ, options);
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
    let order = match options.nat {
        None => "Runs before the queue, so ftp-alg only reads what the firewall forwards.",
        Some(_) => "Runs before the queue of the packets from the outside.",
    };
    let _ = write!(
        out,
        "\tchain forward {{\n\
         \t\t# {order}\n\
         \t\ttype filter hook forward priority filter - 10; policy drop;\n\
         \t\tct state invalid drop\n\
         \t\tct state established,related accept\n\
         \t\t# FTP control connections (narrow this to your clients and servers).\n\
         \t\ttcp dport {ports} ct state new accept\n\
         \t\t# An announced data connection: its SYN consumes the expectation and is accepted.\n\
         \t\t# A retransmitted SYN of a connection admitted before (its conntrack entry is\n\
         \t\t# confirmed: the first SYN passed every chain, then was lost) needs no new one.\n\
         \t\tct state new ct status confirmed tcp flags & (fin|syn|rst|ack) == syn accept\n"
    );
    nft_data_rules(out, options);
    if let Some(ftps) = &options.ftps {
        ftps.nft(out);
    }
    out.push_str(
        "\t\ticmp type echo-request accept\n\
         \t\ticmpv6 type echo-request accept\n\
         \t}\n",
    );
}

/// The two rules that admit an announced data connection once.
fn nft_data_rules(out: &mut String, options: &Options) {
    const SYN: &str = "ct state new tcp flags & (fin|syn|rst|ack) == syn";
    let (s4, s6) = (&options.set4, &options.set6);
    let key4 = "ip saddr . ip daddr . tcp dport";
    let key6 = "ip6 saddr . ip6 daddr . tcp dport";
    let Some(nat) = &options.nat else {
        let _ = write!(
            out,
            "\t\t{SYN} {key4} @{s4} delete @{s4} {{ {key4} }} accept\n\
             \t\t{SYN} {key6} @{s6} delete @{s6} {{ {key6} }} accept\n"
        );
        return;
    };
    let m4 = &nat.map4;
    let _ = write!(
        out,
        "\t\t# Behind NAT the same SYN also consumes its DNAT mapping, keyed by the address\n\
         \t\t# and port the peer dialled (conntrack's original direction). nft wants a value\n\
         \t\t# beside a map key; the kernel deletes by key alone. A connection that was not\n\
         \t\t# translated has no mapping: deleting an absent element does not stop the rule.\n\
         \t\t{SYN} {key4} @{s4} delete @{s4} {{ {key4} }} delete @{m4} {{ ip saddr . ct original ip daddr . ct original proto-dst : ip daddr . tcp dport }} accept\n\
         \t\t# IPv6: no `delete @{m6}` here. nft 1.0.6 cannot compile it (an assertion in\n\
         \t\t# netlink_linearize.c: a 36-byte key with a 20-byte value in one statement); the\n\
         \t\t# daemon removes the mapping with the expectation, and its timeout bounds it.\n\
         \t\t{SYN} {key6} @{s6} delete @{s6} {{ {key6} }} accept\n",
        m6 = nat.map6,
    );
}

/// The table replaced atomically, opened, with its sets and filter chain (left open for the
/// caller to add to and close).
fn nft_table_head(out: &mut String, options: &Options) {
    nft_table_reset(out, &options.table);
    let _ = writeln!(out, "table inet {} {{", options.table);
    nft_sets(out, options);
    if let Some(nat) = &options.nat {
        nft_nat_maps(out, nat, options);
    }
    nft_filter_chain(out, options);
    if let Some(nat) = &options.nat {
        nft_nat_chain(out, nat);
    }
}

fn nft_nat_map(out: &mut String, name: &str, addr: &str, options: &Options) {
    let typ = format!("{addr} . {addr} . inet_service : {addr} . inet_service");
    nft_timeout_set(out, "map", name, &typ, options);
}

fn nft_nat_maps(out: &mut String, nat: &Nat, options: &Options) {
    out.push_str(
        "\t# DNAT mappings written by `ftp-alg run --nat` beside each expectation whose\n\
         \t# announcement it rewrote: peer . public address . public port :\n\
         \t# private address . private port.\n",
    );
    nft_nat_map(out, &nat.map4, "ipv4_addr", options);
    nft_nat_map(out, &nat.map6, "ipv6_addr", options);
}

/// The data connection's first packet goes to the private host its announcement named.
fn nft_nat_chain(out: &mut String, nat: &Nat) {
    let _ = write!(
        out,
        "\n\
         \tchain nat_prerouting {{\n\
         \t\t# Before your own DNAT rules (priority dstnat); the forward chain then sees the\n\
         \t\t# private address, which the expectation names.\n\
         \t\ttype nat hook prerouting priority dstnat - 10; policy accept;\n\
         \t\tct state new meta l4proto tcp dnat ip to ip saddr . ip daddr . tcp dport map @{m4}\n\
         \t\tct state new meta l4proto tcp dnat ip6 to ip6 saddr . ip6 daddr . tcp dport map @{m6}\n\
         \t}}\n",
        m4 = nat.map4,
        m6 = nat.map6,
    );
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
    let title = match options.nat {
        None => "nftables ruleset (queue statement)",
        Some(_) => "nftables ruleset with NAT (queue statement)",
    };
    header(&mut out, options, title, "#!/usr/sbin/nft -f");
    let fallback = command(&Options {
        queue_via: QueueVia::Iptables,
        ..options.clone()
    });
    let _ = write!(
        out,
        "# Needs a kernel with CONFIG_NFT_QUEUE; otherwise use\n\
         # `{fallback}`. Load with `nft -f FILE`.\n"
    );
    if let Some(nat) = &options.nat {
        nat_note(&mut out, nat);
    }
    bypass_note(&mut out, options);
    out.push('\n');
    nft_table_head(&mut out, options);
    match &options.nat {
        None => nft_queue_chain(&mut out, options),
        Some(nat) => nft_nat_queue_chains(&mut out, nat, options),
    }
    out.push_str("}\n");
    out
}

fn nft_queue_chain(out: &mut String, options: &Options) {
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
         \t}}\n"
    );
}

/// NAT: control packets are queued where they arrive, inside ones before conntrack.
fn nft_nat_queue_chains(out: &mut String, nat: &Nat, options: &Options) {
    let ports = ports_nft(&options.control_ports);
    let target = nft_queue_target(options);
    let wan = &nat.outside;
    let _ = write!(
        out,
        "\n\
         \tchain ftp_queue_inside {{\n\
         \t\t# Control packets from the inside go to ftp-alg before conntrack.\n\
         \t\ttype filter hook prerouting priority raw; policy accept;\n\
         \t\tiifname != \"{wan}\" tcp dport {ports} {target}\n\
         \t\tiifname != \"{wan}\" tcp sport {ports} {target}\n\
         \t}}\n\n\
         \tchain ftp_queue_outside {{\n\
         \t\t# Control packets from the outside that the filter accepted go to ftp-alg.\n\
         \t\ttype filter hook forward priority filter; policy accept;\n\
         \t\tiifname \"{wan}\" tcp dport {ports} {target}\n\
         \t\tiifname \"{wan}\" tcp sport {ports} {target}\n\
         \t}}\n"
    );
}

/// What the NAT form does differently, and an example of the operator's own NAT rules.
fn nat_note(out: &mut String, nat: &Nat) {
    let wan = &nat.outside;
    let _ = write!(
        out,
        "# NAT: ftp-alg rewrites the private address a host behind this gateway announces\n\
         # (PORT/EPRT from a client, 227/229 from a server) and shifts the TCP sequence\n\
         # numbers after it. Control packets are queued by the interface they arrive on:\n\
         # - from the inside (any interface but {wan}): in prerouting at priority raw, before\n\
         #   conntrack, so conntrack tracks the rewritten segments and accepts the outside\n\
         #   peer's acknowledgements of them (with nf_conntrack_tcp_be_liberal=0 and\n\
         #   `ct state invalid drop`). They are read before the filter, which still decides;\n\
         # - from the outside ({wan}): in forward, after conntrack, the filter and your DNAT or\n\
         #   de-masquerading, where ftp-alg shifts their acknowledgements back.\n\
         # Both places see the private side's addresses (source NAT comes later, in\n\
         # postrouting), so each control connection has one address tuple. Run the daemon with\n\
         # `ftp-alg run --backend nft --nat`. Your own NAT rules stay yours and are not in this\n\
         # file; for example, a published server and masqueraded clients:\n\
         #   table ip nat {{\n\
         #   \tchain prerouting {{\n\
         #   \t\ttype nat hook prerouting priority dstnat; policy accept;\n\
         #   \t\tiifname \"{wan}\" tcp dport 21 dnat to 192.0.2.2\n\
         #   \t}}\n\
         #   \tchain postrouting {{\n\
         #   \t\ttype nat hook postrouting priority srcnat; policy accept;\n\
         #   \t\toifname \"{wan}\" masquerade\n\
         #   \t}}\n\
         #   }}\n"
    );
}

fn nft_with_iptables_queue(options: &Options) -> String {
    let mut out = String::new();
    let title = match options.nat {
        None => "nftables sets and filter, control packets queued by iptables",
        Some(_) => "nftables sets, NAT maps and filter, control packets queued by iptables",
    };
    header(&mut out, options, title, "#!/bin/sh");
    match &options.nat {
        None => out.push_str(
            "# For kernels without CONFIG_NFT_QUEUE: the queue rule comes from iptables-nft's\n\
             # NFQUEUE target (FORWARD, priority filter), which runs after the nft filter chain\n\
             # (priority filter - 10). Run with `sh FILE` as root.\n",
        ),
        Some(nat) => {
            out.push_str(
                "# For kernels without CONFIG_NFT_QUEUE: the queue rules come from iptables-nft's\n\
                 # NFQUEUE target, in the raw table's PREROUTING (priority raw) for control\n\
                 # packets from the inside and in FORWARD (priority filter, after the nft filter\n\
                 # chain at filter - 10) for those from the outside. Run with `sh FILE` as root.\n",
            );
            nat_note(&mut out, nat);
        }
    }
    bypass_note(&mut out, options);
    out.push_str("set -eu\n\nnft -f - <<'EOF'\n");
    nft_table_head(&mut out, options);
    out.push_str("}\nEOF\n\n");
    match &options.nat {
        None => ipt_queue_rules(&mut out, options),
        Some(nat) => ipt_nat_queue_rules(&mut out, nat, options),
    }
    out
}

fn ipt_queue_rules(out: &mut String, options: &Options) {
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
}

/// NAT: the raw table's PREROUTING queues what arrives from the inside (before conntrack),
/// FORWARD what arrives on the outside interface.
fn ipt_nat_queue_rules(out: &mut String, nat: &Nat, options: &Options) {
    let target = ipt_queue_target(options);
    let (dports, sports) = (
        ports_ipt(&options.control_ports, 'd'),
        ports_ipt(&options.control_ports, 's'),
    );
    let wan = &nat.outside;
    let _ = write!(
        out,
        "for ipt in iptables ip6tables; do\n\
         \t# From the inside: before conntrack.\n\
         \t\"$ipt\" -w -t raw -N FTPALG_INSIDE 2>/dev/null || \"$ipt\" -w -t raw -F FTPALG_INSIDE\n\
         \t\"$ipt\" -w -t raw -A FTPALG_INSIDE ! -i {wan} -p tcp {dports} {target}\n\
         \t\"$ipt\" -w -t raw -A FTPALG_INSIDE ! -i {wan} -p tcp {sports} {target}\n\
         \t\"$ipt\" -w -t raw -C PREROUTING -j FTPALG_INSIDE 2>/dev/null || \"$ipt\" -w -t raw -A PREROUTING -j FTPALG_INSIDE\n\
         \t# From the outside: after conntrack, the nft filter and the DNAT.\n\
         \t\"$ipt\" -w -N FTPALG_QUEUE 2>/dev/null || \"$ipt\" -w -F FTPALG_QUEUE\n\
         \t\"$ipt\" -w -A FTPALG_QUEUE -i {wan} -p tcp {dports} {target}\n\
         \t\"$ipt\" -w -A FTPALG_QUEUE -i {wan} -p tcp {sports} {target}\n\
         \t\"$ipt\" -w -C FORWARD -j FTPALG_QUEUE 2>/dev/null || \"$ipt\" -w -A FORWARD -j FTPALG_QUEUE\n\
         done\n"
    );
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
    if let Some(ftps) = &options.ftps {
        ftps.iptables(&mut out, "FTPALG_FORWARD");
    }
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
         \t\ttcp dport {ports} ct state new accept\n"
    );
    if let Some(ftps) = &options.ftps {
        ftps.nft(&mut out);
    }
    out.push_str(
        "\t\ticmp type echo-request accept\n\
         \t\ticmpv6 type echo-request accept\n\
         \t}\n\
         }\n",
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

    fn nat(queue_via: QueueVia) -> Options {
        Options {
            nat: Some(Nat::new("wan")),
            ..with(Variant::Nft, queue_via)
        }
    }

    /// The lines that are not comments.
    fn rules_only(text: &str) -> String {
        let lines = text.lines().filter(|l| !l.trim_start().starts_with('#'));
        lines.collect::<Vec<_>>().join("\n")
    }

    /// The files in `rules/` are exactly what `ftp-alg rules` prints with default options
    /// (the NAT forms with `--nat --outside wan`).
    #[test]
    fn shipped_rulesets_are_the_defaults() {
        let shipped = [
            (
                nat(QueueVia::Nft),
                include_str!("../rules/nftables-nat.nft"),
            ),
            (
                nat(QueueVia::Iptables),
                include_str!("../rules/nftables-nat-iptables-queue.sh"),
            ),
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
            assert_eq!(render(&options), file, "{options:?}");
        }
    }

    #[test]
    fn nat_queues_inside_packets_before_conntrack_and_outside_ones_in_forward() {
        let nft = render(&nat(QueueVia::Nft));
        let inside = "\t\ttype filter hook prerouting priority raw; policy accept;\n\
                      \t\tiifname != \"wan\" tcp dport 21 queue num 0 bypass\n\
                      \t\tiifname != \"wan\" tcp sport 21 queue num 0 bypass\n";
        let outside = "\t\ttype filter hook forward priority filter; policy accept;\n\
                       \t\tiifname \"wan\" tcp dport 21 queue num 0 bypass\n\
                       \t\tiifname \"wan\" tcp sport 21 queue num 0 bypass\n";
        assert!(nft.contains(inside), "{nft}");
        assert!(nft.contains(outside), "{nft}");
        assert_eq!(nft.matches(" queue num ").count(), 4);
        let ipt = render(&nat(QueueVia::Iptables));
        let raw = "-t raw -A FTPALG_INSIDE ! -i wan -p tcp --dport 21 -j NFQUEUE --queue-num 0 \
                   --queue-bypass\n";
        assert!(ipt.contains(raw), "{ipt}");
        assert!(ipt.contains("-t raw -A FTPALG_INSIDE ! -i wan -p tcp --sport 21 "));
        assert!(ipt.contains("-t raw -A PREROUTING -j FTPALG_INSIDE\n"));
        assert!(ipt.contains("-A FTPALG_QUEUE -i wan -p tcp --dport 21 -j NFQUEUE"));
        assert!(ipt.contains("-A FTPALG_QUEUE -i wan -p tcp --sport 21 -j NFQUEUE"));
        assert_eq!(ipt.matches("-j NFQUEUE").count(), 4);
        assert!(!ipt.contains("queue num"));
    }

    #[test]
    fn nat_maps_send_the_data_connection_to_the_private_host() {
        for queue_via in [QueueVia::Nft, QueueVia::Iptables] {
            let text = render(&Options {
                timeout_secs: 7,
                set_size: 99,
                ..nat(queue_via)
            });
            for (map, addr) in [("dnat4", "ipv4_addr"), ("dnat6", "ipv6_addr")] {
                let decl = format!(
                    "\tmap {map} {{\n\t\ttype {addr} . {addr} . inet_service : {addr} . \
                     inet_service\n\t\tflags timeout\n\t\ttimeout 7s\n\t\tsize 99\n"
                );
                assert!(text.contains(&decl), "{text}");
            }
            assert!(text.contains(
                "\t\ttype nat hook prerouting priority dstnat - 10; policy accept;\n\
                 \t\tct state new meta l4proto tcp dnat ip to ip saddr . ip daddr . tcp dport \
                 map @dnat4\n\
                 \t\tct state new meta l4proto tcp dnat ip6 to ip6 saddr . ip6 daddr . tcp \
                 dport map @dnat6\n"
            ));
            // The pinhole rule consumes the IPv4 mapping with the expectation.
            assert!(text.contains(
                "@expect4 delete @expect4 { ip saddr . ip daddr . tcp dport } delete @dnat4 \
                 { ip saddr . ct original ip daddr . ct original proto-dst : ip daddr . tcp \
                 dport } accept\n"
            ));
            assert!(text.contains("ct state invalid drop\n"));
        }
    }

    /// The operator's NAT rules are shown in the header, never generated.
    #[test]
    fn nat_rulesets_hold_no_operator_nat() {
        for queue_via in [QueueVia::Nft, QueueVia::Iptables] {
            let text = render(&nat(queue_via));
            assert!(text.contains("#   \t\toifname \"wan\" masquerade\n"));
            assert!(text.contains("#   \t\tiifname \"wan\" tcp dport 21 dnat to 192.0.2.2\n"));
            let rules = rules_only(&text);
            assert!(!rules.contains("masquerade"), "{rules}");
            assert!(!rules.contains("snat"), "{rules}");
            assert!(!rules.contains("dnat to"), "{rules}");
            assert!(!rules.contains("table ip nat"), "{rules}");
        }
    }

    #[test]
    fn nat_forms_follow_the_names_queues_and_ports() {
        let options = Options {
            queues: QueueRange { first: 1, last: 2 },
            control_ports: vec![21, 2121],
            nat: Some(Nat::new("ppp0")),
            ..nat(QueueVia::Iptables)
        };
        let ipt = render(&options);
        assert!(ipt.contains(
            "! -i ppp0 -p tcp -m multiport --dports 21,2121 -j NFQUEUE --queue-balance 1:2 \
             --queue-bypass\n"
        ));
        assert!(ipt.contains("-i ppp0 -p tcp -m multiport --sports 21,2121 -j NFQUEUE"));
        assert!(ipt.contains(
            "# Generated by `ftp-alg rules --backend nft --queue-via iptables --queue 1-2 --nat \
             --outside ppp0`.\n"
        ));
        let nft = render(&Options {
            queue_via: QueueVia::Nft,
            ..options
        });
        assert!(nft.contains("iifname != \"ppp0\" tcp sport { 21, 2121 } queue num 1-2 bypass\n"));
        assert!(
            nft.contains("`ftp-alg rules --backend nft --queue-via iptables --queue 1-2 --nat")
        );
    }

    #[test]
    fn nat_needs_the_nft_variant() {
        assert_eq!(nat(QueueVia::Nft).check(), Ok(()));
        assert_eq!(Options::default().check(), Ok(()));
        for variant in [Variant::Ipset, Variant::Kernel] {
            let options = Options {
                variant,
                ..nat(QueueVia::Nft)
            };
            let error = options.check().unwrap_err();
            assert!(error.starts_with("--nat needs --backend nft"), "{error}");
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
