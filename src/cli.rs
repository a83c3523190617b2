//! The command line: clap definitions turned into typed configuration, no logic.
//!
//! Every flag is validated here (ranges, formats); clap exits with status 2 and a clear
//! message on a bad one.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::Args;
use clap::Parser;
use clap::Subcommand;
use clap::ValueEnum;

use crate::action::Verdict;
use crate::check;
use crate::config::Config;
use crate::config::Nat;
use crate::config::NatMode;
use crate::config::Policy;
use crate::config::Unjudged;
use crate::io::config_file;
use crate::io::daemon;
use crate::io::daemon::eventlog::LogFormat;
use crate::io::nfqueue;
use crate::io::report::Format;
use crate::io::watch;
use crate::nat::NatMap;
use crate::nat::NatPair;
use crate::rules;
use crate::time::Duration;

/// ftp-alg: an FTP application-layer gateway for Linux firewalls.
#[derive(Debug, Parser)]
#[command(name = "ftp-alg", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Replay pcap/pcapng captures through the engine and report every expectation and
    /// whether each data connection would have been admitted.
    Replay(ReplayArgs),
    /// Run the gateway daemon: read FTP control packets from NFQUEUE, install an expectation
    /// for each announced data connection before releasing the packet that announced it.
    #[command(after_long_help = RUN_AFTER_HELP)]
    Run(RunArgs),
    /// Print the firewall ruleset that pairs with `ftp-alg run` (or the kernel helper's).
    Rules(RulesArgs),
    /// Capture live from an interface and report, as replay does, what ftp-alg would open
    /// and refuse; touches no firewall (for evaluation before deployment).
    Watch(WatchArgs),
    /// Say what this network namespace's kernel and firewall lack for `run` with the same
    /// options.
    ///
    /// One line per check (ok, warn, missing, conflict) with what to do. Exit status 1 when
    /// the set-up cannot work, 0 otherwise (warnings allowed).
    Check(CheckArgs),
}

/// `ftp-alg check` options: exactly those of `ftp-alg run`, so a unit can check with the
/// options it runs with. Those that matter: `--queue`, `--backend`, the table and set names,
/// `--control-port`, `--nat`/`--nat-map`, `--max-expectations-total`, `--netlink-timeout`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The daemon's options.
    #[command(flatten)]
    pub run: RunArgs,
}

/// Engine options shared by `replay` and `run`.
#[derive(Debug, Args)]
pub struct EngineArgs {
    /// Address policy: strict refuses PORT/EPRT naming another host than the client and
    /// 227/228 naming another host than the server; loose trusts the announced address.
    #[arg(long, value_enum, default_value_t = PolicyArg::Strict)]
    pub policy: PolicyArg,
    /// Expectation lifetime in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub timeout: u64,
    /// TCP port of FTP control connections (repeat for several).
    #[arg(long = "control-port", value_name = "PORT", default_values_t = [21u16],
          value_parser = clap::value_parser!(u16).range(1..))]
    pub control_ports: Vec<u16>,
    /// Expectations kept per control connection (the oldest is revoked past it).
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub max_expectations: u64,
    /// Expectations per client address over all its control connections (a new one is
    /// refused past it, counted as `refused_client_limit`).
    #[arg(long, value_name = "N", default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=16_777_216))]
    pub max_expectations_per_client: u64,
    /// Expectations in all; keep it below the kernel set's size (`rules --set-size`, default
    /// 65536). With several queues it is split evenly between them.
    #[arg(long, value_name = "N", default_value_t = 49_152, value_parser = clap::value_parser!(u64).range(1..=16_777_216))]
    pub max_expectations_total: u64,
    /// Control connections tracked at once (closed ones go first, then unproven ones, and a
    /// proven FTP session only when nothing else is left). With several queues it is split
    /// evenly between them.
    #[arg(long, value_name = "N", default_value_t = 16_384, value_parser = clap::value_parser!(u64).range(1..=16_777_216))]
    pub max_flows: u64,
    /// Unproven control connections per source address; past it that source's least
    /// recently active unproven one goes (0: no cap).
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u64).range(0..=16_777_216))]
    pub max_unproven_per_source: u64,
    /// Unproven control connections per /24 (IPv4) or /64 (IPv6) source prefix; past it new
    /// ones are not tracked (0: no cap).
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=16_777_216))]
    pub max_unproven_per_prefix: u64,
    /// Bytes buffered over all connections (partial, held and multi-line reply lines,
    /// out-of-order bytes); unproven connections may hold half of it.
    #[arg(long, value_name = "BYTES", default_value_t = 32 << 20, value_parser = clap::value_parser!(u64).range(65_536..=(1 << 36)))]
    pub max_buffered: u64,
    /// Allow data ports below 1024.
    #[arg(long)]
    pub allow_privileged_ports: bool,
    /// Do not track control connections whose SYN was not seen (no mid-stream pickup).
    #[arg(long)]
    pub no_pickup: bool,
    /// Ignore segments with a wrong TCP checksum (off by default: captures taken on a host
    /// with checksum offload carry wrong checksums on outgoing packets).
    #[arg(long)]
    pub verify_checksums: bool,
    /// A static NAT mapping PRIVATE=PUBLIC (repeat for several): announcements of a host at
    /// PRIVATE are rewritten to name PUBLIC (docs/nat.md); this turns rewriting on. On
    /// `run`, `--nat` learns the other connections' translations from conntrack.
    #[arg(long = "nat-map", value_name = "PRIVATE=PUBLIC")]
    pub nat_map: Vec<NatPair>,
}

/// `ftp-alg replay` options.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = FormatArg::Text)]
    pub format: FormatArg,
    /// Engine options.
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Also write every datagram the engine releases (rewritten where `--nat-map` rewrote
    /// it) to this pcap file (raw IP), to check a rewrite offline.
    #[arg(long, value_name = "OUT.pcap")]
    pub write: Option<PathBuf>,
    /// Capture files (pcap or pcapng).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// `ftp-alg watch` options.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The interface to capture from (AF_PACKET; Ethernet, loopback or an IP tunnel).
    #[arg(long, value_name = "IF", value_parser = parse_interface)]
    pub iface: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = FormatArg::Text)]
    pub format: FormatArg,
    /// Stop after N frames.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// Stop after SECS seconds.
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
    pub duration: Option<u64>,
    /// Engine options.
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// `ftp-alg run` options.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Read settings from this TOML file first: each key is a long option of `run` (`queue =
    /// "0-3"`, `cleanup = true`, `control-port = [21, 2121]`); options given here replace
    /// the file's. The default path may be missing; another one must exist (docs/operations.md).
    #[arg(long, value_name = "PATH", default_value = config_file::DEFAULT_PATH)]
    pub config: PathBuf,
    /// NFQUEUE numbers to serve, one worker each: `0`, `0-3` or `0,2,5`.
    #[arg(long = "queue", value_name = "QUEUES", default_value = "0", value_parser = parse_queues)]
    pub queues: Queues,
    /// Where expectations go: nftables sets, ipset sets, or nowhere (decide and log only).
    #[arg(long, value_enum, default_value_t = BackendArg::Nft)]
    pub backend: BackendArg,
    /// Table and set names.
    #[command(flatten)]
    pub names: NameArgs,
    /// Packets the kernel holds for a queue before it drops (or, with --fail-open, passes) them.
    #[arg(long, value_name = "PACKETS", default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..=1_048_576))]
    pub queue_maxlen: u32,
    /// Bytes of each packet copied to the daemon (control packets must fit whole).
    #[arg(long, value_name = "BYTES", default_value_t = 65535, value_parser = clap::value_parser!(u16).range(128..))]
    pub copy_range: u16,
    /// Socket receive buffer in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 4 << 20, value_parser = clap::value_parser!(u64).range(65_536..=(1 << 30)))]
    pub rcvbuf: u64,
    /// Let the kernel pass packets unexamined when the queue is full (they are then not read:
    /// their announcements get no pinhole). Off: the kernel drops them and TCP retransmits.
    #[arg(long)]
    pub fail_open: bool,
    /// The verdict for a packet whose expectation could not be installed.
    #[arg(long, value_enum, value_name = "VERDICT", default_value_t = VerdictArg::Accept)]
    pub on_install_error: VerdictArg,
    /// The verdict for a packet that cannot be judged (not TCP, a fragment, truncated, or
    /// beyond the buffer budget).
    #[arg(long, value_enum, value_name = "VERDICT", default_value_t = VerdictArg::Accept)]
    pub unjudged: VerdictArg,
    /// Remove the expectations still open when the daemon stops (otherwise they time out).
    #[arg(long)]
    pub cleanup: bool,
    /// Log the counters every SECS seconds (0: only on SIGUSR1 and at exit).
    #[arg(long, value_name = "SECS", default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub stats_interval: u64,
    /// How long to wait for the kernel to acknowledge a set update, in milliseconds, while the
    /// packet that announced it is held; past it the update counts as failed
    /// (--on-install-error decides the packet).
    #[arg(long, value_name = "MS", default_value_t = 250, value_parser = clap::value_parser!(u64).range(10..=10_000))]
    pub netlink_timeout: u64,
    /// Append logs to this file instead of stderr; SIGHUP reopens it (for logrotate).
    #[arg(long, value_name = "PATH")]
    pub log_file: Option<PathBuf>,
    /// Log format: text (under systemd: no timestamps, `<N>` priority prefixes for the
    /// journal), or json (JSON Lines; events carry the fields of `replay --format json`).
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = FormatArg::Text)]
    pub log_format: FormatArg,
    /// Serve Prometheus metrics on `GET http://ADDR:PORT/metrics` (e.g. 127.0.0.1:9721;
    /// off by default). The endpoint has no authentication: bind it to loopback or a
    /// management address.
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics: Option<std::net::SocketAddr>,
    /// Where each queue's state (connections, sequence positions, sessions, live
    /// expectations) is left at a clean stop and picked up at the next start.
    #[arg(long, value_name = "DIR", default_value = "/run/ftp-alg")]
    pub state_dir: PathBuf,
    /// A state file older than this is ignored (connections are then picked up mid-stream).
    #[arg(long, value_name = "SECS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub state_max_age: u64,
    /// Neither save nor load state: a restart picks connections up mid-stream.
    #[arg(long)]
    pub no_state: bool,
    /// Rewrite the addresses announced on translated control connections (NAT), learning
    /// each connection's translation from conntrack (`--nat-map` pairs take precedence);
    /// needs the nft backend and a ruleset from `ftp-alg rules --nat` (docs/nat.md).
    #[arg(long)]
    pub nat: bool,
    /// Engine options.
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// The names of the expectation sets, shared by `run` and `rules` so the two agree.
#[derive(Debug, Args)]
pub struct NameArgs {
    /// nftables table (family inet) holding the expectation sets.
    #[arg(long, value_name = "NAME", default_value = "ftpalg", value_parser = parse_name)]
    pub table: String,
    /// nftables IPv4 expectation set.
    #[arg(long, value_name = "NAME", default_value = "expect4", value_parser = parse_name)]
    pub set4: String,
    /// nftables IPv6 expectation set.
    #[arg(long, value_name = "NAME", default_value = "expect6", value_parser = parse_name)]
    pub set6: String,
    /// ipset IPv4 expectation set (hash:ip,port,ip).
    #[arg(long, value_name = "NAME", default_value = "ftpalg-expect4", value_parser = parse_name)]
    pub ipset4: String,
    /// ipset IPv6 expectation set (hash:ip,port,ip, family inet6).
    #[arg(long, value_name = "NAME", default_value = "ftpalg-expect6", value_parser = parse_name)]
    pub ipset6: String,
}

/// `ftp-alg rules` options.
#[derive(Debug, Args)]
pub struct RulesArgs {
    /// Which ruleset: for `run --backend nft`, for `run --backend ipset`, or the kernel's own
    /// FTP helper (the baseline, no daemon).
    #[arg(long, value_enum, default_value_t = RulesBackendArg::Nft)]
    pub backend: RulesBackendArg,
    /// How control packets reach the queue with the nft backend: the nft `queue` statement,
    /// or iptables `NFQUEUE` for kernels without CONFIG_NFT_QUEUE.
    #[arg(long, value_enum, default_value_t = QueueViaArg::Nft)]
    pub queue_via: QueueViaArg,
    /// The daemon's queues: `0` or a contiguous range `0-3` (balanced per connection).
    #[arg(long = "queue", value_name = "QUEUES", default_value = "0", value_parser = parse_queues)]
    pub queues: Queues,
    /// Drop control packets while no daemon is bound, instead of passing them unexamined.
    #[arg(long)]
    pub no_bypass: bool,
    /// Table and set names.
    #[command(flatten)]
    pub names: NameArgs,
    /// The sets' default element timeout in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub timeout: u64,
    /// The sets' maximum number of elements.
    #[arg(long, value_name = "N", default_value_t = 65_536, value_parser = clap::value_parser!(u32).range(1..))]
    pub set_size: u32,
    /// TCP port of FTP control connections (repeat for several).
    #[arg(long = "control-port", value_name = "PORT", default_values_t = [21u16],
          value_parser = clap::value_parser!(u16).range(1..))]
    pub control_ports: Vec<u16>,
    /// The NAT form, for `run --nat` (nft backend only): control packets from the inside are
    /// queued before conntrack, those from the outside in forward, and the DNAT maps send a
    /// rewritten announcement's data connection to the private host. Needs --outside.
    #[arg(long, requires = "outside")]
    pub nat: bool,
    /// With --nat: the gateway's interface toward the peers that see public addresses.
    #[arg(long, value_name = "IFACE", requires = "nat", value_parser = parse_interface)]
    pub outside: Option<String>,
    /// The FTPS fallback (docs/deploy.md#ftps): an FTPS server whose passive data
    /// connections to --ftps-passive-ports are accepted from any client (repeat for several;
    /// the address the forward chain sees, so the private one behind DNAT).
    #[arg(
        long = "ftps-server",
        value_name = "ADDR",
        requires = "ftps_passive_ports"
    )]
    pub ftps_servers: Vec<IpAddr>,
    /// The passive port range the --ftps-server servers are configured with, LOW-HIGH (vsftpd
    /// pasv_min_port/pasv_max_port).
    #[arg(long, value_name = "LOW-HIGH", requires = "ftps_servers", value_parser = parse_port_range)]
    pub ftps_passive_ports: Option<(u16, u16)>,
}

/// The end of `run --help` and of its man page: files, signals, exit status.
const RUN_AFTER_HELP: &str = "\
Files: /etc/ftp-alg/ftp-alg.toml holds settings read before the command line (--config names
another file). Each key is a long option of run (queue = \"0-3\", cleanup = true,
control-port = [21, 2121]); a flag replaces the file's setting. Each queue's state is left in
--state-dir (/run/ftp-alg) at a clean stop and picked up at the next start.

Signals: SIGTERM or SIGINT stops; SIGHUP reopens --log-file and checks the sets again; SIGUSR1
logs the counters.

Exit status: 0 after SIGTERM or SIGINT; 1 when it cannot start or a worker fails; 2 for bad
arguments or a configuration file it cannot use.";

/// A sorted, duplicate-free, non-empty list of queue numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queues(pub Vec<u16>);

/// The most queues (and so worker threads) one daemon serves.
pub const MAX_QUEUES: usize = 64;

/// `--format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// One readable line per event.
    Text,
    /// JSON Lines.
    Json,
}

/// `--policy` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PolicyArg {
    /// The announced address must be the control peer's.
    Strict,
    /// Trust the announced address.
    Loose,
}

/// `run --backend` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendArg {
    /// nftables sets with per-element timeouts, over netlink.
    Nft,
    /// ipset hash:ip,port,ip sets with timeouts, over netlink.
    Ipset,
    /// Decide and log only (a dry run on a live gateway).
    None,
}

/// `rules --backend` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RulesBackendArg {
    /// nftables sets.
    Nft,
    /// iptables with ipset sets.
    Ipset,
    /// The kernel's FTP conntrack helper (comparison baseline).
    Kernel,
}

/// `rules --queue-via` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum QueueViaArg {
    /// The nft `queue` statement.
    Nft,
    /// iptables `-j NFQUEUE`.
    Iptables,
}

/// A verdict chosen on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VerdictArg {
    /// Release the packet.
    Accept,
    /// Drop the packet.
    Drop,
}

/// A count from the command line as a `usize` (the parsers bound it well below `usize::MAX`).
fn size(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// Parse a port range `LOW-HIGH` (or one port); the ruleset checks what it may be.
fn parse_port_range(text: &str) -> Result<(u16, u16), String> {
    let (low, high) = text.split_once('-').unwrap_or((text, text));
    let port = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| format!("{text:?} is not a port range LOW-HIGH"))
    };
    Ok((port(low)?, port(high)?))
}

/// Parse `0`, `0-3`, `0,2,5` or a mix (`0-1,4`).
fn parse_queues(text: &str) -> Result<Queues, String> {
    let mut queues = Vec::new();
    for item in text.split(',') {
        let (first, last) = match item.split_once('-') {
            Some((a, b)) => (parse_queue(a)?, parse_queue(b)?),
            None => (parse_queue(item)?, parse_queue(item)?),
        };
        if first > last {
            return Err(format!("queue range {item} is reversed"));
        }
        if usize::from(last - first) >= MAX_QUEUES {
            return Err(format!("at most {MAX_QUEUES} queues"));
        }
        queues.extend(first..=last);
    }
    queues.sort_unstable();
    queues.dedup();
    if queues.len() > MAX_QUEUES {
        return Err(format!("at most {MAX_QUEUES} queues"));
    }
    Ok(Queues(queues))
}

fn parse_queue(text: &str) -> Result<u16, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a queue number (0-65535)"))
}

/// nftables and ipset names: 1-31 characters of `[A-Za-z0-9_.-]`, starting with a letter
/// (they are also printed into rulesets and shell scripts, so nothing else is allowed).
fn parse_name(text: &str) -> Result<String, String> {
    let valid = (1..=31).contains(&text.len())
        && text.starts_with(|c: char| c.is_ascii_alphabetic())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if valid {
        Ok(text.to_owned())
    } else {
        Err(
            "names are 1-31 characters of letters, digits, '_', '-', '.', starting with a letter"
                .into(),
        )
    }
}

/// Interface names: 1-15 characters of `[A-Za-z0-9_.-]` (printed into rulesets and shell
/// scripts, so nothing else is allowed; the kernel's limit is 15).
fn parse_interface(text: &str) -> Result<String, String> {
    let valid = (1..=15).contains(&text.len())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if valid {
        Ok(text.to_owned())
    } else {
        Err("interface names are 1-15 characters of letters, digits, '_', '-', '.'".into())
    }
}

impl EngineArgs {
    /// The engine configuration these options describe.
    pub fn config(&self) -> Config {
        let mut control_ports = self.control_ports.clone();
        control_ports.sort_unstable();
        control_ports.dedup();
        Config {
            policy: match self.policy {
                PolicyArg::Strict => Policy::Strict,
                PolicyArg::Loose => Policy::Loose,
            },
            control_ports,
            expectation_lifetime: Duration::from_secs(self.timeout),
            max_expectations_per_control: size(self.max_expectations),
            max_expectations_per_client: size(self.max_expectations_per_client),
            max_expectations_total: size(self.max_expectations_total),
            max_flows: size(self.max_flows),
            max_unproven_per_source: size(self.max_unproven_per_source),
            max_unproven_per_prefix: size(self.max_unproven_per_prefix),
            max_buffered_bytes: size(self.max_buffered),
            allow_privileged_ports: self.allow_privileged_ports,
            midstream_pickup: !self.no_pickup,
            verify_checksums: self.verify_checksums,
            nat: Nat {
                mode: if self.nat_map.is_empty() {
                    NatMode::Off
                } else {
                    NatMode::Static(NatMap::new(self.nat_map.iter().copied()))
                },
                ..Nat::default()
            },
            ..Config::default()
        }
    }
}

impl ReplayArgs {
    /// The engine configuration these options describe.
    pub fn config(&self) -> Config {
        self.engine.config()
    }

    /// The output format.
    pub fn format(&self) -> Format {
        match self.format {
            FormatArg::Text => Format::Text,
            FormatArg::Json => Format::Json,
        }
    }
}

impl WatchArgs {
    /// The output format.
    pub fn format(&self) -> Format {
        match self.format {
            FormatArg::Text => Format::Text,
            FormatArg::Json => Format::Json,
        }
    }

    /// When to stop, besides a signal.
    pub fn limits(&self) -> watch::Limits {
        watch::Limits {
            count: self.count,
            duration: self.duration.map(Duration::from_secs),
        }
    }
}

impl RunArgs {
    /// The configuration of each queue's engine: the gateway-wide bounds (flows, total
    /// expectations, buffered bytes) are split evenly between the queues.
    pub fn config(&self) -> Config {
        let mut whole = self.engine.config();
        let queues = self.queues.0.len().max(1);
        whole.nat.mode = match (self.nat, whole.nat.mode) {
            (true, NatMode::Static(map)) => NatMode::Conntrack(map),
            (true, _) => NatMode::Conntrack(NatMap::default()),
            (false, mode) => mode,
        };
        Config {
            unjudged: match self.unjudged {
                VerdictArg::Accept => Unjudged::Accept,
                VerdictArg::Drop => Unjudged::Drop,
            },
            max_flows: whole.max_flows.div_ceil(queues),
            max_expectations_total: (whole.max_expectations_total / queues).max(1),
            max_buffered_bytes: whole.max_buffered_bytes / queues,
            ..whole
        }
    }
}

impl RunArgs {
    /// The daemon's settings these options describe.
    pub fn settings(&self) -> daemon::Settings {
        daemon::Settings {
            engine: self.config(),
            queues: self.queues.0.clone(),
            queue: nfqueue::QueueOptions {
                max_len: self.queue_maxlen,
                copy_range: self.copy_range,
                fail_open: self.fail_open,
                rcvbuf: usize::try_from(self.rcvbuf).unwrap_or(usize::MAX),
            },
            backend: match self.backend {
                BackendArg::Nft => daemon::BackendChoice::Nft {
                    table: self.names.table.clone(),
                    set4: self.names.set4.clone(),
                    set6: self.names.set6.clone(),
                    nat_maps: self.nat || !self.engine.nat_map.is_empty(),
                },
                BackendArg::Ipset => daemon::BackendChoice::Ipset {
                    set4: self.names.ipset4.clone(),
                    set6: self.names.ipset6.clone(),
                },
                BackendArg::None => daemon::BackendChoice::None,
            },
            on_install_error: match self.on_install_error {
                VerdictArg::Accept => Verdict::Accept,
                VerdictArg::Drop => Verdict::Drop,
            },
            cleanup: self.cleanup,
            stats_interval: (self.stats_interval > 0)
                .then(|| Duration::from_secs(self.stats_interval)),
            netlink_timeout: std::time::Duration::from_millis(self.netlink_timeout),
            state: (!self.no_state).then(|| daemon::StateOptions {
                dir: self.state_dir.clone(),
                max_age: Duration::from_secs(self.state_max_age),
            }),
            metrics: self.metrics,
        }
    }

    /// The log format.
    pub fn log_format(&self) -> LogFormat {
        match self.log_format {
            FormatArg::Text => LogFormat::Text,
            FormatArg::Json => LogFormat::Json,
        }
    }
}

impl CheckArgs {
    /// The set-up `run` with these options would need.
    pub fn setup(&self) -> check::Setup {
        let run = &self.run;
        let names = &run.names;
        let queues = &run.queues.0;
        let mut rules_options = Vec::new();
        if queues != &[0] {
            // `rules` takes one range; a list that is not one is refused there, with a reason.
            rules_options.push(format!(
                "--queue {}-{}",
                queues[0],
                queues[queues.len() - 1]
            ));
        }
        let nat = run.nat || !run.engine.nat_map.is_empty();
        let backend = match run.backend {
            BackendArg::Nft => {
                rules_options.extend(changed(&[
                    ("--table", &names.table, "ftpalg"),
                    ("--set4", &names.set4, "expect4"),
                    ("--set6", &names.set6, "expect6"),
                ]));
                check::Backend::Nft {
                    table: names.table.clone(),
                    sets: [names.set4.clone(), names.set6.clone()],
                    maps: nat.then(crate::io::check::default_nat_maps),
                }
            }
            BackendArg::Ipset => {
                rules_options.extend(changed(&[
                    ("--ipset4", &names.ipset4, "ftpalg-expect4"),
                    ("--ipset6", &names.ipset6, "ftpalg-expect6"),
                ]));
                check::Backend::Ipset {
                    sets: [names.ipset4.clone(), names.ipset6.clone()],
                }
            }
            BackendArg::None => check::Backend::None,
        };
        let control_ports = run.config().control_ports;
        if control_ports != [21] {
            rules_options.extend(control_ports.iter().map(|p| format!("--control-port {p}")));
        }
        check::Setup {
            backend,
            queues: queues.clone(),
            control_ports,
            nat,
            conntrack: run.nat,
            max_expectations_total: run.engine.max_expectations_total,
            rules_options: rules_options.join(" "),
        }
    }
}

/// `FLAG VALUE` for each name that is not its default (for the `rules` command line).
fn changed(names: &[(&str, &String, &str)]) -> Vec<String> {
    names
        .iter()
        .filter(|(_, value, default)| value.as_str() != *default)
        .map(|(flag, value, _)| format!("{flag} {value}"))
        .collect()
}

impl RulesArgs {
    /// The ruleset options, or why they cannot be written as one ruleset (the queues are not
    /// one balanced range, or NAT with a backend that cannot hold the DNAT maps).
    pub fn options(&self) -> Result<rules::Options, String> {
        let queues = &self.queues.0;
        let (first, last) = (queues[0], queues[queues.len() - 1]);
        if usize::from(last - first) + 1 != queues.len() {
            return Err(format!(
                "queues {queues:?} are not one contiguous range; a ruleset balances over a range"
            ));
        }
        let mut control_ports = self.control_ports.clone();
        control_ports.sort_unstable();
        control_ports.dedup();
        Ok(rules::Options {
            variant: match self.backend {
                RulesBackendArg::Nft => rules::Variant::Nft,
                RulesBackendArg::Ipset => rules::Variant::Ipset,
                RulesBackendArg::Kernel => rules::Variant::Kernel,
            },
            queue_via: match self.queue_via {
                QueueViaArg::Nft => rules::QueueVia::Nft,
                QueueViaArg::Iptables => rules::QueueVia::Iptables,
            },
            queues: rules::QueueRange { first, last },
            bypass: !self.no_bypass,
            table: self.names.table.clone(),
            set4: self.names.set4.clone(),
            set6: self.names.set6.clone(),
            ipset4: self.names.ipset4.clone(),
            ipset6: self.names.ipset6.clone(),
            control_ports,
            timeout_secs: self.timeout,
            set_size: self.set_size,
            nat: self.outside.as_deref().map(rules::Nat::new),
            ftps: match self.ftps_passive_ports {
                Some((low, high)) => rules::Ftps::new(&self.ftps_servers, low, high)?,
                None => None,
            },
        })
        .and_then(|options| options.check().map(|()| options))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("ftp-alg").chain(args.iter().copied()))
    }

    #[test]
    fn defaults() {
        let Command::Replay(args) = parse(&["replay", "a.pcap"]).unwrap().command else {
            panic!("not replay")
        };
        let config = args.config();
        assert_eq!(config.policy, Policy::Strict);
        assert_eq!(config.control_ports, vec![21]);
        assert_eq!(config.expectation_lifetime, Duration::from_secs(30));
        assert!(config.midstream_pickup);
        assert_eq!(args.format(), Format::Text);
    }

    #[test]
    fn bounds_on_replay_and_split_across_the_queues_on_run() {
        let Command::Replay(args) = parse(&[
            "replay",
            "--max-flows",
            "1000000",
            "--max-unproven-per-source",
            "0",
            "--max-expectations-per-client",
            "8",
            "a.pcap",
        ])
        .unwrap()
        .command
        else {
            panic!("not replay")
        };
        let config = args.config();
        assert_eq!(config.max_flows, 1_000_000);
        assert_eq!(config.max_unproven_per_source, 0);
        assert_eq!(config.max_expectations_per_client, 8);
        assert_eq!(config.max_expectations_total, 49_152);
        let Command::Run(args) = parse(&[
            "run",
            "--queue",
            "0-3",
            "--max-flows",
            "1001",
            "--max-expectations-total",
            "40000",
        ])
        .unwrap()
        .command
        else {
            panic!("not run")
        };
        let config = args.config();
        assert_eq!(
            config.max_flows, 251,
            "1001 flows over 4 queues, rounded up"
        );
        assert_eq!(config.max_expectations_total, 10_000);
        assert_eq!(config.max_buffered_bytes, (32 << 20) / 4);
        let settings = args.settings();
        let state = settings.state.expect("state on by default");
        assert_eq!(state.dir, PathBuf::from("/run/ftp-alg"));
        assert!(parse(&["run", "--no-state"]).is_ok());
        assert!(parse(&["replay", "--max-flows", "0", "a.pcap"]).is_err());
        assert!(parse(&["run", "--state-max-age", "0"]).is_err());
    }

    #[test]
    fn options() {
        let cli = parse(&[
            "replay",
            "--format",
            "json",
            "--policy",
            "loose",
            "--timeout",
            "5",
            "--control-port",
            "2121",
            "--control-port",
            "21",
            "--no-pickup",
            "a.pcap",
            "b.pcapng",
        ])
        .unwrap();
        let Command::Replay(args) = cli.command else {
            panic!("not replay")
        };
        let config = args.config();
        assert_eq!(config.policy, Policy::Loose);
        assert_eq!(config.control_ports, vec![21, 2121]);
        assert_eq!(config.expectation_lifetime, Duration::from_secs(5));
        assert!(!config.midstream_pickup);
        assert_eq!(args.files.len(), 2);
    }

    fn rules_args(args: &[&str]) -> Result<rules::Options, String> {
        let all: Vec<&str> = std::iter::once("rules")
            .chain(args.iter().copied())
            .collect();
        let Command::Rules(rules) = parse(&all).unwrap().command else {
            panic!("not rules")
        };
        rules.options()
    }

    #[test]
    fn run_settings() {
        let Command::Run(args) = parse(&[
            "run",
            "--queue",
            "0-1",
            "--backend",
            "ipset",
            "--ipset4",
            "v4",
            "--timeout",
            "5",
            "--on-install-error",
            "drop",
            "--cleanup",
            "--stats-interval",
            "60",
        ])
        .unwrap()
        .command
        else {
            panic!("not run")
        };
        let settings = args.settings();
        assert_eq!(settings.queues, vec![0, 1]);
        assert_eq!(
            settings.backend,
            daemon::BackendChoice::Ipset {
                set4: "v4".into(),
                set6: "ftpalg-expect6".into()
            }
        );
        assert_eq!(settings.engine.expectation_lifetime, Duration::from_secs(5));
        assert_eq!(settings.on_install_error, Verdict::Drop);
        assert!(settings.cleanup);
        assert_eq!(settings.stats_interval, Some(Duration::from_secs(60)));
        assert_eq!(settings.queue.copy_range, 65535);
        assert!(!settings.queue.fail_open);
        assert_eq!(
            settings.netlink_timeout,
            crate::io::backend::DEFAULT_ANSWER_TIMEOUT
        );
    }

    #[test]
    fn metrics_and_log_format() {
        let Command::Run(args) = parse(&["run"]).unwrap().command else {
            panic!("not run")
        };
        assert_eq!(args.settings().metrics, None, "off by default");
        assert_eq!(args.log_format(), LogFormat::Text);
        let Command::Run(args) =
            parse(&["run", "--metrics", "127.0.0.1:9721", "--log-format", "json"])
                .unwrap()
                .command
        else {
            panic!("not run")
        };
        assert_eq!(
            args.settings().metrics,
            Some("127.0.0.1:9721".parse().unwrap())
        );
        assert_eq!(args.log_format(), LogFormat::Json);
        assert!(parse(&["run", "--metrics", "[::1]:9721"]).is_ok());
        for bad in ["9721", "localhost:9721", "127.0.0.1", "127.0.0.1:99999", ""] {
            let error = parse(&["run", "--metrics", bad]).unwrap_err();
            assert_eq!(error.exit_code(), 2, "{bad}");
        }
        assert!(parse(&["run", "--log-format", "xml"]).is_err());
    }

    #[test]
    fn netlink_timeout_is_in_milliseconds_and_bounded() {
        let Command::Run(args) = parse(&["run", "--netlink-timeout", "40"]).unwrap().command else {
            panic!("not run")
        };
        assert_eq!(
            args.settings().netlink_timeout,
            std::time::Duration::from_millis(40)
        );
        for bad in ["0", "9", "10001", "-1", "1s"] {
            let error = parse(&["run", "--netlink-timeout", bad]).unwrap_err();
            assert_eq!(error.exit_code(), 2, "{bad}");
        }
        assert!(parse(&["run", "--netlink-timeout", "10"]).is_ok());
        assert!(parse(&["run", "--netlink-timeout", "10000"]).is_ok());
    }

    #[test]
    fn watch_options() {
        let Command::Watch(args) = parse(&[
            "watch",
            "--iface",
            "veth0",
            "--format",
            "json",
            "--count",
            "10",
            "--duration",
            "5",
            "--policy",
            "loose",
        ])
        .unwrap()
        .command
        else {
            panic!("not watch")
        };
        assert_eq!(args.iface, "veth0");
        assert_eq!(args.format(), Format::Json);
        assert_eq!(
            args.limits(),
            watch::Limits {
                count: Some(10),
                duration: Some(Duration::from_secs(5))
            }
        );
        assert_eq!(args.engine.config().policy, Policy::Loose);
        for bad in [
            vec!["watch"],
            vec!["watch", "--iface", "a b"],
            vec!["watch", "--iface", "lo", "--count", "0"],
            vec!["watch", "--iface", "lo", "--duration", "0"],
        ] {
            assert_eq!(parse(&bad).unwrap_err().exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn check_takes_run_options_and_names_them_for_rules() {
        let Command::Check(args) = parse(&[
            "check",
            "--queue",
            "2-3",
            "--table",
            "gw",
            "--control-port",
            "2121",
            "--nat",
        ])
        .unwrap()
        .command
        else {
            panic!("not check")
        };
        let setup = args.setup();
        assert_eq!(setup.queues, vec![2, 3]);
        assert_eq!(setup.control_ports, vec![2121]);
        assert!(setup.nat);
        assert_eq!(
            setup.rules_options,
            "--queue 2-3 --table gw --control-port 2121"
        );
        let check::Backend::Nft { table, maps, .. } = setup.backend else {
            panic!("not nft")
        };
        assert_eq!(table, "gw");
        assert!(maps.is_some(), "--nat checks the DNAT maps");
        let Command::Check(args) = parse(&["check", "--nat-map", "192.0.2.2=203.0.113.1"])
            .unwrap()
            .command
        else {
            panic!("not check")
        };
        let setup = args.setup();
        assert!(
            setup.nat && !setup.conntrack,
            "static pairs: NAT form, no conntrack"
        );
        let Command::Check(args) = parse(&["check", "--backend", "ipset"]).unwrap().command else {
            panic!("not check")
        };
        assert_eq!(args.setup().rules_options, "");
    }

    #[test]
    fn queue_lists() {
        assert_eq!(parse_queues("0"), Ok(Queues(vec![0])));
        assert_eq!(parse_queues("3-5"), Ok(Queues(vec![3, 4, 5])));
        assert_eq!(parse_queues("5,1-2,2"), Ok(Queues(vec![1, 2, 5])));
        for bad in ["", "a", "-1", "5-3", "0-64", "1,,2", "65536", "0-65535"] {
            assert!(parse_queues(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rules_options() {
        let options = rules_args(&["--backend", "ipset", "--queue", "2-3", "--no-bypass"]).unwrap();
        assert_eq!(options.variant, rules::Variant::Ipset);
        assert_eq!(options.queues, rules::QueueRange { first: 2, last: 3 });
        assert!(!options.bypass);
        assert_eq!(rules_args(&[]).unwrap(), rules::Options::default());
        assert!(rules_args(&["--queue", "1,3"]).is_err());
    }

    #[test]
    fn rules_nat_needs_the_outside_interface_and_the_nft_backend() {
        let options = rules_args(&["--nat", "--outside", "wan0", "--queue-via", "iptables"]);
        assert_eq!(options.unwrap().nat, Some(rules::Nat::new("wan0")));
        for backend in ["ipset", "kernel"] {
            let error = rules_args(&["--nat", "--outside", "wan", "--backend", backend]);
            assert!(
                error.unwrap_err().contains("--nat needs --backend nft"),
                "{backend}"
            );
        }
        for bad in [
            vec!["rules", "--nat"],
            vec!["rules", "--outside", "wan"],
            vec!["rules", "--nat", "--outside", "a b"],
            vec!["rules", "--nat", "--outside", "wan\";x"],
            vec!["rules", "--nat", "--outside", "sixteen-chars-xx"],
        ] {
            assert_eq!(parse(&bad).unwrap_err().exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn rules_ftps_fallback() {
        let options = rules_args(&[
            "--ftps-server",
            "203.0.113.2",
            "--ftps-server",
            "2001:db8:113::2",
            "--ftps-passive-ports",
            "50000-50100",
        ])
        .unwrap();
        let ftps = options.ftps.expect("the fallback");
        assert!(ftps.flags().ends_with("--ftps-passive-ports 50000-50100"));
        assert!(
            rules_args(&[
                "--ftps-server",
                "192.0.2.1",
                "--ftps-passive-ports",
                "50-60"
            ])
            .is_err()
        );
        for bad in [
            vec!["rules", "--ftps-server", "192.0.2.1"],
            vec!["rules", "--ftps-passive-ports", "50000-50100"],
            vec![
                "rules",
                "--ftps-server",
                "host",
                "--ftps-passive-ports",
                "50000-50100",
            ],
            vec![
                "rules",
                "--ftps-server",
                "192.0.2.1",
                "--ftps-passive-ports",
                "a-b",
            ],
        ] {
            assert_eq!(parse(&bad).unwrap_err().exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn names_are_checked() {
        assert!(parse_name("expect4").is_ok());
        assert!(parse_name("ftpalg-expect4").is_ok());
        for bad in ["", "4x", "a b", "a;rm", "a\"", &"x".repeat(32)] {
            assert!(parse_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_flags_are_usage_errors() {
        for bad in [
            vec!["replay"],
            vec!["replay", "--timeout", "0", "a"],
            vec!["replay", "--timeout", "-3", "a"],
            vec!["replay", "--timeout", "99999999", "a"],
            vec!["replay", "--policy", "lax", "a"],
            vec!["replay", "--control-port", "0", "a"],
            vec!["replay", "--control-port", "70000", "a"],
            vec!["replay", "--format", "xml", "a"],
            vec!["replay", "--max-expectations", "0", "a"],
            vec!["frobnicate"],
            vec!["rules", "--backend", "pf"],
            vec!["run", "--copy-range", "64"],
            vec!["run", "--queue-maxlen", "0"],
            vec!["run", "--backend", "pf"],
            vec!["run", "--set4", "x y"],
            vec!["rules", "--table", "a b"],
            vec!["rules", "--queue", "x"],
        ] {
            let error = parse(&bad).unwrap_err();
            assert_eq!(error.exit_code(), 2, "{bad:?}");
        }
    }
}
