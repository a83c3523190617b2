//! Findings about the firewall: the nft table, the sets (the backend's own check, their
//! size, the ipset `timeout` option), the NAT maps' rule, the rule that admits a data
//! connection; and hands the queue rule to `queue_rule` and the kernel's own FTP helper to
//! `helper`.

use crate::check::Backend;
use crate::check::Finding;
use crate::check::Observations;
use crate::check::Report;
use crate::check::Setup;
use crate::check::Status;
use crate::check::helper;
use crate::check::iptables;
use crate::check::nft;
use crate::check::queue_rule;

/// The rulesets as read, each `None` when it could not be.
struct Rulesets {
    nft: Option<nft::Ruleset>,
    ipt: [Option<Vec<iptables::Rule>>; 2],
}

/// Add the firewall's findings to `report`.
pub(super) fn judge(setup: &Setup, seen: &Observations, report: &mut Report) {
    let rulesets = read(seen, report);
    let iptables_fix = !matches!(seen.queue_statement, Some(Ok(())));
    match &setup.backend {
        Backend::Nft { table, sets, maps } => {
            nft_table(setup, rulesets.nft.as_ref(), table, report);
            set_check(setup, seen, iptables_fix, report);
            if let Some(ruleset) = &rulesets.nft {
                nft_sizes(setup, ruleset, table, sets, report);
                nft_admission(ruleset, table, sets, report);
                if let Some(maps) = maps {
                    nft_dnat(ruleset, table, maps, report);
                }
            }
        }
        Backend::Ipset { sets } => {
            set_check(setup, seen, iptables_fix, report);
            ipset_headers(setup, seen, sets, report);
            ipset_admission(&rulesets.ipt, sets, report);
        }
        Backend::None => report.push(Finding::new(
            Status::Warn,
            "sets",
            "--backend none: a dry run, nothing is written to the kernel and no data \
             connection is admitted by ftp-alg",
        )),
    }
    if rulesets.nft.is_none() && rulesets.ipt.iter().all(Option::is_none) {
        let text = "cannot tell: neither nft nor iptables could list the rules (above)";
        report.push(Finding::new(Status::Warn, "queue rule", text));
        report.push(Finding::new(Status::Warn, "kernel FTP helper", text));
        return;
    }
    let mut queue_rules = Vec::new();
    if let Some(ruleset) = &rulesets.nft {
        queue_rules.extend(queue_rule::from_nft(ruleset));
    }
    for (v6, rules) in rulesets.ipt.iter().enumerate() {
        if let Some(rules) = rules {
            queue_rules.extend(queue_rule::from_iptables(rules, v6 == 1));
        }
    }
    queue_rule::judge(setup, &queue_rules, seen.queue_statement.as_ref(), report);
    report.push(helper::judge(
        setup,
        rulesets.nft.as_ref(),
        &rulesets.ipt,
        seen.helper_autoassign.as_deref(),
    ));
}

/// Parse what was listed; a listing that failed is one `warn` each.
fn read(seen: &Observations, report: &mut Report) -> Rulesets {
    let nft = match &seen.nft_ruleset {
        Some(Ok(text)) => match nft::parse(text) {
            Ok(ruleset) => Some(ruleset),
            Err(why) => {
                report.push(Finding::new(Status::Warn, "nft ruleset", why));
                None
            }
        },
        Some(Err(why)) => {
            let text = format!("cannot list it (`nft -j list ruleset`): {why}");
            report.push(Finding::new(Status::Warn, "nft ruleset", text));
            None
        }
        None => None,
    };
    let mut ipt = [None, None];
    for (i, tool) in ["iptables-save", "ip6tables-save"].iter().enumerate() {
        match &seen.iptables_save[i] {
            Some(Ok(text)) => ipt[i] = Some(iptables::parse(text)),
            Some(Err(why)) => report.push(Finding::new(
                Status::Warn,
                tool,
                format!("cannot list the iptables rules: {why}"),
            )),
            None => {}
        }
    }
    Rulesets { nft, ipt }
}

fn nft_table(setup: &Setup, ruleset: Option<&nft::Ruleset>, table: &str, report: &mut Report) {
    let Some(ruleset) = ruleset else { return };
    let finding = if ruleset.has_table("inet", table) {
        Finding::new(Status::Ok, "table", format!("table inet {table} exists"))
    } else {
        Finding::new(
            Status::Missing,
            "table",
            format!("table inet {table} does not exist: no sets, no filter"),
        )
        .fix(setup.rules_command(true))
    };
    report.push(finding);
}

/// The backend's own check, the one `ftp-alg run` makes at start.
fn set_check(setup: &Setup, seen: &Observations, iptables_fix: bool, report: &mut Report) {
    let finding = match &seen.set_check {
        Some(Ok(())) => Finding::new(
            Status::Ok,
            "sets",
            "they exist with the key types and timeout support the daemon needs (the check \
             `ftp-alg run` makes at start)",
        ),
        Some(Err(why)) if why.contains("permission denied") => {
            Finding::new(Status::Missing, "sets", why.clone())
        }
        Some(Err(why)) => Finding::new(Status::Missing, "sets", why.clone())
            .fix(setup.rules_command(iptables_fix)),
        None => Finding::new(Status::Warn, "sets", "not checked"),
    };
    report.push(finding);
}

fn nft_sizes(
    setup: &Setup,
    ruleset: &nft::Ruleset,
    table: &str,
    sets: &[String; 2],
    report: &mut Report,
) {
    for name in sets {
        let Some(size) = ruleset.set(table, name).and_then(|s| s.size) else {
            continue;
        };
        if size < setup.max_expectations_total {
            report.push(small_set(setup, &format!("set {name}"), size));
        }
    }
}

fn small_set(setup: &Setup, what: &str, size: u64) -> Finding {
    Finding::new(
        Status::Warn,
        "set size",
        format!(
            "{what} holds {size} elements, fewer than --max-expectations-total {}: when it is \
             full the kernel refuses installs for everyone",
            setup.max_expectations_total
        ),
    )
    .fix(format!(
        "lower --max-expectations-total below {size}, or reload the ruleset with a larger \
         `ftp-alg rules --set-size`"
    ))
}

fn nft_admission(ruleset: &nft::Ruleset, table: &str, sets: &[String; 2], report: &mut Report) {
    let in_table = |r: &&nft::Rule| r.family == "inet" && r.table == table;
    let live = |r: &&nft::Rule| !ruleset.hooks_of(r).is_empty();
    for name in sets {
        let lookups: Vec<&nft::Rule> = ruleset
            .rules
            .iter()
            .filter(in_table)
            .filter(live)
            .filter(|r| r.matches.lookups.contains(name))
            .collect();
        // One-shot: the rule that looks the element up deletes it.
        report.push(admission(
            &format!("@{name}"),
            !lookups.is_empty(),
            lookups.iter().any(|r| r.matches.deletes.contains(name)),
        ));
    }
}

fn ipset_admission(
    ipt: &[Option<Vec<iptables::Rule>>; 2],
    sets: &[String; 2],
    report: &mut Report,
) {
    for (rules, name) in ipt.iter().zip(sets) {
        let Some(rules) = rules else { continue };
        let live = |r: &&iptables::Rule| iptables::hook_of(rules, r).is_some();
        let matched = rules
            .iter()
            .filter(live)
            .any(|r| r.matches.lookups.contains(name));
        // `-j SET --del-set` may be a rule of its own.
        let deleted = rules
            .iter()
            .filter(live)
            .any(|r| r.matches.deletes.contains(name));
        report.push(admission(name, matched, deleted));
    }
}

fn admission(set: &str, matched: bool, deleted: bool) -> Finding {
    const TOPIC: &str = "admission rule";
    match (matched, deleted) {
        (true, true) => Finding::new(
            Status::Ok,
            TOPIC,
            format!("a rule admits a SYN matching {set} and deletes the element (one use)"),
        ),
        (true, false) => Finding::new(
            Status::Warn,
            TOPIC,
            format!(
                "a rule admits SYNs matching {set} but does not delete the element: a pinhole \
                 admits any number of connections until it expires"
            ),
        ),
        _ => Finding::new(
            Status::Missing,
            TOPIC,
            format!("no rule the kernel evaluates looks up {set}: pinholes would admit nothing"),
        )
        .fix("load the ruleset `ftp-alg rules` prints (its forward chain has the rule)"),
    }
}

fn nft_dnat(ruleset: &nft::Ruleset, table: &str, maps: &[String; 2], report: &mut Report) {
    for map in maps {
        let used = ruleset.rules.iter().any(|r| {
            r.family == "inet"
                && r.table == table
                && r.dnat_maps.contains(map)
                && !ruleset.hooks_of(r).is_empty()
        });
        report.push(if used {
            Finding::new(
                Status::Ok,
                "NAT map rule",
                format!("a dnat rule reads @{map}"),
            )
        } else {
            Finding::new(
                Status::Missing,
                "NAT map rule",
                format!(
                    "no dnat rule reads @{map}: a rewritten announcement's data connection \
                     would not reach the private host"
                ),
            )
            .fix("load the NAT form: `ftp-alg rules --nat --outside IFACE ...`")
        });
    }
}

fn ipset_headers(setup: &Setup, seen: &Observations, sets: &[String; 2], report: &mut Report) {
    for (header, name) in seen.ipset_headers.iter().zip(sets) {
        let Some(Ok(header)) = header else { continue };
        let line = header
            .lines()
            .find_map(|l| l.strip_prefix("Header:"))
            .unwrap_or("");
        let words: Vec<&str> = line.split_whitespace().collect();
        let value = |key: &str| {
            let at = words.iter().position(|w| *w == key)?;
            words.get(at + 1)?.parse::<u64>().ok()
        };
        if value("timeout").is_none() {
            report.push(
                Finding::new(
                    Status::Missing,
                    "ipset timeout",
                    format!(
                        "ipset {name} was created without `timeout`: its elements cannot expire"
                    ),
                )
                .fix(format!(
                    "ipset destroy {name}; then {}",
                    setup.rules_command(true)
                )),
            );
        }
        if let Some(size) = value("maxelem").filter(|s| *s < setup.max_expectations_total) {
            report.push(small_set(setup, &format!("ipset {name}"), size));
        }
    }
}
