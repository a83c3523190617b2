//! Findings about the queue rule: does a rule that the kernel evaluates (a base chain on the
//! forward or prerouting hook, or a chain it jumps to) queue TCP to and from every control
//! port, over IPv4 and IPv6, to the daemon's queues; with bypass; and, with NAT, before
//! conntrack for the inside (docs/decisions.md D23); and whether the kernel has the nft
//! `queue` statement or the iptables fallback is needed.

use crate::check::Finding;
use crate::check::Report;
use crate::check::Setup;
use crate::check::Status;
use crate::check::iptables;
use crate::check::matches::Matches;
use crate::check::nft;

/// A queue rule from nft or iptables, reduced to what coverage needs.
#[derive(Debug, Clone)]
pub(super) struct QueueRule {
    /// Covers IPv4, IPv6.
    families: [bool; 2],
    /// Queued before conntrack (prerouting at priority raw or earlier).
    before_conntrack: bool,
    dport: Option<Vec<(u16, u16)>>,
    sport: Option<Vec<(u16, u16)>>,
    queues: (u16, u16),
    bypass: bool,
    /// Where it is, for messages.
    place: String,
}

impl QueueRule {
    /// The queue rule of `matches`, if it queues.
    fn new(
        matches: &Matches,
        families: [bool; 2],
        before_conntrack: bool,
        place: String,
    ) -> Option<Self> {
        let (first, last, bypass) = matches.queue?;
        Some(Self {
            families,
            before_conntrack,
            dport: matches.dport.clone(),
            sport: matches.sport.clone(),
            queues: (first, last),
            bypass,
            place,
        })
    }
}

/// The queue rules of an nft ruleset that some forward or prerouting hook evaluates.
pub(super) fn from_nft(ruleset: &nft::Ruleset) -> Vec<QueueRule> {
    let mut found = Vec::new();
    for rule in &ruleset.rules {
        if rule.matches.queue.is_none() {
            continue;
        }
        let hooks = ruleset.hooks_of(rule);
        let useful = |h: &&(String, i64)| h.0 == "forward" || h.0 == "prerouting";
        let Some((hook, _)) = hooks.iter().find(useful) else {
            continue;
        };
        let families = match rule.family.as_str() {
            "inet" => [true, true],
            "ip" => [true, false],
            "ip6" => [false, true],
            _ => continue,
        };
        let before_conntrack = hooks
            .iter()
            .any(|(h, prio)| h == "prerouting" && *prio < CONNTRACK_PRIORITY);
        let place = format!(
            "nft {} {} chain {} ({hook})",
            rule.family, rule.table, rule.chain
        );
        found.extend(QueueRule::new(
            &rule.matches,
            families,
            before_conntrack,
            place,
        ));
    }
    found
}

/// The `NFQUEUE` rules of `iptables-save` (`v6`: `ip6tables-save`) reached from `FORWARD`
/// or `PREROUTING`.
pub(super) fn from_iptables(rules: &[iptables::Rule], v6: bool) -> Vec<QueueRule> {
    let tool = if v6 { "ip6tables" } else { "iptables" };
    let mut found = Vec::new();
    for rule in rules {
        if rule.matches.queue.is_none() {
            continue;
        }
        let Some(hook) = iptables::hook_of(rules, rule) else {
            continue;
        };
        let before_conntrack = hook == "PREROUTING" && rule.table == "raw";
        let place = format!("{tool} -t {} chain {} ({hook})", rule.table, rule.chain);
        found.extend(QueueRule::new(
            &rule.matches,
            [!v6, v6],
            before_conntrack,
            place,
        ));
    }
    found
}

/// Judge the queue rules found; `iptables_fix` when the fix must queue via iptables.
pub(super) fn judge(
    setup: &Setup,
    rules: &[QueueRule],
    statement: Option<&Result<(), String>>,
    report: &mut Report,
) {
    let iptables_fix = !matches!(statement, Some(Ok(())));
    let ours = |r: &&QueueRule| {
        setup
            .queues
            .iter()
            .any(|q| r.queues.0 <= *q && *q <= r.queues.1)
    };
    let serving: Vec<&QueueRule> = rules.iter().filter(ours).collect();
    let gaps = gaps(setup, &serving);
    let fix = setup.rules_command(iptables_fix);
    if !gaps.is_empty() {
        let mut text = format!(
            "no rule queues {} to the daemon's queue(s) {:?}: those control packets are never \
             read, so their data connections get no pinhole",
            gaps.join(", "),
            setup.queues
        );
        if let Some(other) = rules.iter().find(|r| !ours(r)) {
            let (a, b) = other.queues;
            text.push_str(&format!(" ({} queues to {a}-{b} instead)", other.place));
        }
        report.push(Finding::new(Status::Missing, "queue rule", text).fix(fix.clone()));
    } else {
        let mut places: Vec<&str> = serving.iter().map(|r| r.place.as_str()).collect();
        places.dedup();
        report.push(Finding::new(
            Status::Ok,
            "queue rule",
            format!(
                "tcp port(s) {:?} are queued both ways over IPv4 and IPv6 to queue(s) {:?} by {}",
                setup.control_ports,
                setup.queues,
                places.join("; ")
            ),
        ));
    }
    if let Some(outside) = serving.iter().find(|r| !ours_only(setup, r)) {
        report.push(Finding::new(
            Status::Warn,
            "queue numbers",
            format!(
                "{} balances over queues {}-{}, but the daemon serves {:?}: the other queues' \
                 connections are not read",
                outside.place, outside.queues.0, outside.queues.1, setup.queues
            ),
        ));
    }
    if let Some(probe) = statement {
        report.push(queue_statement(setup, probe, gaps.is_empty()));
    }
    if !serving.is_empty() {
        report.push(bypass(&serving));
    }
    if setup.nat {
        report.push(before_conntrack(&serving, fix));
    }
}

/// Each control port, direction and family no serving rule covers, spelled out.
fn gaps(setup: &Setup, serving: &[&QueueRule]) -> Vec<String> {
    let mut gaps = Vec::new();
    for (family, name) in [(0, "IPv4"), (1, "IPv6")] {
        for &port in &setup.control_ports {
            for to_port in [true, false] {
                let covered = serving
                    .iter()
                    .any(|r| r.families[family] && covers(r, to_port, port));
                if !covered {
                    let way = if to_port { "dport" } else { "sport" };
                    gaps.push(format!("tcp {way} {port} over {name}"));
                }
            }
        }
    }
    gaps
}

fn covers(rule: &QueueRule, to_port: bool, port: u16) -> bool {
    let (this, other) = if to_port {
        (&rule.dport, &rule.sport)
    } else {
        (&rule.sport, &rule.dport)
    };
    match this {
        Some(ranges) => ranges.iter().any(|(a, b)| *a <= port && port <= *b),
        None => other.is_none(),
    }
}

fn ours_only(setup: &Setup, rule: &QueueRule) -> bool {
    (rule.queues.0..=rule.queues.1).all(|q| setup.queues.contains(&q))
}

fn bypass(serving: &[&QueueRule]) -> Finding {
    const TOPIC: &str = "queue bypass";
    match serving.iter().find(|r| !r.bypass) {
        None => Finding::new(
            Status::Ok,
            TOPIC,
            "on: while no daemon is bound, control packets pass unread (logins work, data \
             connections are refused)",
        ),
        Some(rule) => Finding::new(
            Status::Warn,
            TOPIC,
            format!(
                "off in {}: while no daemon is bound the kernel drops control packets, so FTP \
                 stalls until ftp-alg runs (the `rules --no-bypass` choice; sessions resume)",
                rule.place
            ),
        )
        .fix("for pass-through while the daemon is down, reload the ruleset without --no-bypass"),
    }
}

fn before_conntrack(serving: &[&QueueRule], fix: String) -> Finding {
    const TOPIC: &str = "NAT queue placement";
    if serving.iter().any(|r| r.before_conntrack) {
        Finding::new(
            Status::Ok,
            TOPIC,
            "the inside's control packets are queued in prerouting before conntrack",
        )
    } else {
        Finding::new(
            Status::Missing,
            TOPIC,
            "no queue rule runs before conntrack (prerouting, priority raw): a rewrite that \
             lengthens the stream makes conntrack drop the peer's ACKs as invalid (D23)",
        )
        .fix(fix)
    }
}

fn queue_statement(setup: &Setup, probe: &Result<(), String>, covered: bool) -> Finding {
    const TOPIC: &str = "nft queue statement";
    match probe {
        Ok(()) => Finding::new(Status::Ok, TOPIC, "the kernel takes nft `queue` rules"),
        Err(why) if why.contains("No such file or directory") && covered => Finding::new(
            Status::Ok,
            TOPIC,
            "this kernel has none (CONFIG_NFT_QUEUE); iptables NFQUEUE rules stand in",
        ),
        Err(why) if why.contains("No such file or directory") => Finding::new(
            Status::Warn,
            TOPIC,
            "this kernel has no nft `queue` statement (CONFIG_NFT_QUEUE): the queue rule must \
             come from iptables (`--queue-via iptables`)",
        )
        .fix(setup.rules_command(true)),
        Err(why) => Finding::new(Status::Warn, TOPIC, format!("cannot tell: {why}")),
    }
}

/// nf_conntrack's hook priority (`NF_IP_PRI_CONNTRACK`): a queue before it sees packets
/// conntrack has not tracked yet.
const CONNTRACK_PRIORITY: i64 = -200;
