//! `ftp-alg check`: what a gateway's kernel and firewall offer, judged against the set-up
//! the daemon's options describe, in plain words.
//!
//! Owns the meaning of every finding: given a [`Setup`] (what `ftp-alg run` would be started
//! with) and [`Observations`] (what the shell read from the kernel: `/proc` files, probe
//! results, the text of `nft -j list ruleset` and `iptables-save`, the backends' own set
//! checks), [`judge`] returns a [`Report`], one [`Finding`] per check, each `ok`, `warn`,
//! `missing` or `conflict` with what to do. Pure: it reads no file and runs no command, so
//! every finding is unit-tested on recorded inputs (`samples/`). The shell that gathers the
//! observations is `io::check`.
//!
//! Submodules: [`nft`] reads nft's JSON into the few facts the checks need, [`iptables`]
//! does the same for `iptables-save`, `kernel` judges the kernel's facilities and the
//! queue's owner, `firewall` the table, sets and admission rules, `queue_rule` the
//! rule that queues control packets, `helper` the kernel's own FTP helper.

mod chains;
mod firewall;
mod helper;
pub mod iptables;
mod kernel;
pub mod matches;
pub mod nft;
mod queue_rule;

use std::fmt;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Works as the set-up needs.
    Ok,
    /// Works, but something deserves a look (said how).
    Warn,
    /// Something the set-up needs is absent: it cannot work.
    Missing,
    /// Something present works against the set-up: it cannot work as meant.
    Conflict,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// How the check came out.
    pub status: Status,
    /// What was checked, a few words ("nfqueue", "queue rule", ...).
    pub topic: String,
    /// What was found, in plain words.
    pub text: String,
    /// What to do, usually the exact command; `None` when nothing is to be done.
    pub fix: Option<String>,
}

/// Every finding, in the order checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// The findings.
    pub findings: Vec<Finding>,
}

/// Where the daemon would write its expectations (`run --backend`, with its names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// nftables: table `inet table`, sets (IPv4, IPv6), and with NAT the maps.
    Nft {
        /// The table (family inet).
        table: String,
        /// The IPv4 and IPv6 expectation sets.
        sets: [String; 2],
        /// The IPv4 and IPv6 DNAT maps, when NAT rewriting is on.
        maps: Option<[String; 2]>,
    },
    /// ipset: two `hash:ip,port,ip` sets.
    Ipset {
        /// The IPv4 and IPv6 sets.
        sets: [String; 2],
    },
    /// A dry run: nothing is written to the kernel.
    None,
}

/// The set-up `ftp-alg run` would be started with, as far as the checks care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setup {
    /// Where expectations go.
    pub backend: Backend,
    /// The queues the daemon would bind.
    pub queues: Vec<u16>,
    /// The FTP control ports.
    pub control_ports: Vec<u16>,
    /// NAT rewriting is on (`--nat`, or `--nat-map` pairs): the NAT form of the ruleset is
    /// needed (a queue before conntrack, the DNAT maps).
    pub nat: bool,
    /// `--nat`: translations are learned from conntrack, so ctnetlink must answer.
    pub conntrack: bool,
    /// `--max-expectations-total`: the sets must hold at least this many.
    pub max_expectations_total: u64,
    /// The `ftp-alg rules` options that print the matching ruleset for this set-up (names,
    /// queues, ports), without `--backend` and `--queue-via`.
    pub rules_options: String,
}

/// What the shell read from the kernel. Each `Err` says why it could not be read (a missing
/// tool, no permission): that is itself reported, never a failure of the check.
#[derive(Debug, Clone, Default)]
pub struct Observations {
    /// Whether CAP_NET_ADMIN is in the effective set (`/proc/self/status` `CapEff`).
    pub cap_net_admin: Option<bool>,
    /// `/proc/net/netfilter/nfnetlink_queue`: `None` when the file does not exist.
    pub queue_proc: Option<Result<String, String>>,
    /// Whether a `nfnetlink_queue` module file exists for the running kernel (`None`: cannot
    /// tell, e.g. built in or /lib/modules unreadable).
    pub queue_module: Option<bool>,
    /// Netlink port ids bound to a queue, and the process holding each (name, pid), if found.
    pub queue_owners: Vec<(u32, Option<(String, u32)>)>,
    /// `nft --check` of a throwaway chain with a `queue` statement: `Ok` when the kernel
    /// takes it; `Err` carries nft's message.
    pub queue_statement: Option<Result<(), String>>,
    /// `nft --check` of a throwaway set with `flags timeout` and our key type.
    pub element_timeouts: Option<Result<(), String>>,
    /// `nft -j list ruleset`.
    pub nft_ruleset: Option<Result<String, String>>,
    /// `iptables-save` and `ip6tables-save`.
    pub iptables_save: [Option<Result<String, String>>; 2],
    /// The backend's own check of its sets (what `run` checks at start), if it has sets.
    pub set_check: Option<Result<(), String>>,
    /// `ipset list -t NAME` for the IPv4 and IPv6 sets (ipset backend).
    pub ipset_headers: [Option<Result<String, String>>; 2],
    /// A ctnetlink lookup (with NAT): `Ok` when conntrack answered.
    pub ctnetlink: Option<Result<(), String>>,
    /// `/proc/sys/net/netfilter/nf_conntrack_helper`, when the kernel has it (before 6.0).
    pub helper_autoassign: Option<String>,
}

/// Judge the observations against the set-up.
pub fn judge(setup: &Setup, seen: &Observations) -> Report {
    let mut report = Report::default();
    kernel::judge(setup, seen, &mut report);
    firewall::judge(setup, seen, &mut report);
    report
}

impl Status {
    /// The word printed at the start of the line.
    pub fn label(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Warn => "warn",
            Self::Missing => "missing",
            Self::Conflict => "conflict",
        }
    }
}

impl Finding {
    /// A finding without a fix.
    pub fn new(status: Status, topic: &str, text: impl Into<String>) -> Self {
        Self {
            status,
            topic: topic.to_owned(),
            text: text.into(),
            fix: None,
        }
    }

    /// The same finding with what to do.
    pub fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }
}

impl Report {
    /// Add a finding.
    pub fn push(&mut self, finding: Finding) {
        self.findings.push(finding);
    }

    /// True when nothing is missing or in conflict: the set-up can work (warnings allowed).
    pub fn can_work(&self) -> bool {
        self.findings.iter().all(|f| f.status <= Status::Warn)
    }

    /// The first finding about `topic`.
    pub fn topic(&self, topic: &str) -> Option<&Finding> {
        self.findings.iter().find(|f| f.topic == topic)
    }

    /// The worst status over all findings (`Ok` for none).
    pub fn worst(&self) -> Status {
        self.findings
            .iter()
            .map(|f| f.status)
            .max()
            .unwrap_or(Status::Ok)
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<8} {}: {}",
            self.status.label(),
            self.topic,
            self.text
        )?;
        if let Some(fix) = &self.fix {
            write!(f, "\n         fix: {fix}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for finding in &self.findings {
            writeln!(f, "{finding}")?;
        }
        let count = |s: Status| self.findings.iter().filter(|f| f.status == s).count();
        let verdict = if self.can_work() {
            "the set-up can work"
        } else {
            "the set-up cannot work as configured"
        };
        writeln!(
            f,
            "{verdict}: {} ok, {} warn, {} missing, {} conflict",
            count(Status::Ok),
            count(Status::Warn),
            count(Status::Missing),
            count(Status::Conflict)
        )
    }
}

impl Setup {
    /// The command that prints and loads the ruleset for this set-up; `iptables_queue` when
    /// the queue rule must come from iptables (no nft `queue` statement).
    pub fn rules_command(&self, iptables_queue: bool) -> String {
        let backend = match self.backend {
            Backend::Ipset { .. } => "--backend ipset",
            _ if iptables_queue => "--backend nft --queue-via iptables",
            _ => "--backend nft",
        };
        let nat = if self.nat {
            " --nat --outside IFACE"
        } else {
            ""
        };
        let load = if iptables_queue || matches!(self.backend, Backend::Ipset { .. }) {
            "sh"
        } else {
            "nft -f -"
        };
        let mut options = String::new();
        if !self.rules_options.is_empty() {
            options = format!(" {}", self.rules_options);
        }
        format!("ftp-alg rules {backend}{options}{nat} | {load}")
    }
}

#[cfg(test)]
mod tests;
