//! The few facts of an iptables ruleset the checks need, read from `iptables-save` (or
//! `ip6tables-save`) text: per rule its table, chain, `NFQUEUE` target (queues, bypass),
//! TCP port matches, ipset references, `CT --helper`, and jumps; and which chains are
//! reached from the built-in `FORWARD` and `PREROUTING` chains.
//!
//! `iptables-save` and not nft's JSON: iptables-nft's rules appear in `nft -j` as bare `xt`
//! expressions without their options (queue number, bypass, helper name). Untrusted text:
//! lines that do not parse are skipped.

use crate::check::chains;
use crate::check::matches::Matches;

/// One `-A CHAIN ...` rule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rule {
    /// Table (`*filter`, `*raw`, ...).
    pub table: String,
    /// Chain.
    pub chain: String,
    /// `-j NFQUEUE`, `--dport`/`--sport` ranges, `--match-set`, `-j SET --del-set`,
    /// `-j CT --helper`.
    pub matches: Matches,
    /// `-j CHAIN` / `-g CHAIN` to a user chain (or any target name).
    pub target: Option<String>,
    /// The rule as saved, for messages.
    pub text: String,
}

/// Read `iptables-save` output.
pub fn parse(text: &str) -> Vec<Rule> {
    let mut table = String::new();
    let mut rules = Vec::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix('*') {
            table = name.trim().to_owned();
        } else if line.starts_with("-A ") {
            rules.push(rule(&table, line));
        }
    }
    rules
}

/// True when `rule` is evaluated: its chain is `FORWARD` or `PREROUTING`, or reached from one
/// by jumps in the same table. Returns the built-in chain it hangs off.
pub fn hook_of(rules: &[Rule], rule: &Rule) -> Option<&'static str> {
    ["PREROUTING", "FORWARD"]
        .into_iter()
        .find(|base| reaches(rules, &rule.table, base, &rule.chain))
}

fn reaches(rules: &[Rule], table: &str, from: &str, to: &str) -> bool {
    chains::reaches(from, to, |chain| {
        rules
            .iter()
            .filter(|r| r.table == table && r.chain == chain)
            .filter_map(|r| r.target.as_deref())
            .collect()
    })
}

fn rule(table: &str, line: &str) -> Rule {
    let words: Vec<&str> = line.split_whitespace().collect();
    let mut rule = Rule {
        table: table.to_owned(),
        chain: words.get(1).copied().unwrap_or_default().to_owned(),
        text: line.to_owned(),
        ..Rule::default()
    };
    let mut negated = false;
    let mut queue = (0u16, 0u16, false);
    for (i, word) in words.iter().enumerate() {
        let value = words.get(i + 1).copied().unwrap_or_default();
        match *word {
            "!" => {
                negated = true;
                continue;
            }
            "--dport" | "--dports" | "--destination-port" if !negated => {
                rule.matches.dport = port_ranges(value);
            }
            "--sport" | "--sports" | "--source-port" if !negated => {
                rule.matches.sport = port_ranges(value);
            }
            "--match-set" => rule.matches.lookups.push(value.to_owned()),
            "--del-set" => rule.matches.deletes.push(value.to_owned()),
            "--helper" => rule.matches.helper = Some(value.to_owned()),
            "--queue-num" => queue.0 = value.parse().unwrap_or(0),
            "--queue-balance" => {
                if let Some(&(a, b)) = port_ranges(value).as_ref().and_then(|r| r.first()) {
                    queue = (a, b, queue.2);
                }
            }
            "--queue-bypass" => queue.2 = true,
            "-j" | "-g" => rule.target = Some(value.to_owned()),
            _ => {}
        }
        negated = false;
    }
    if rule.target.as_deref() == Some("NFQUEUE") {
        if queue.1 < queue.0 {
            queue.1 = queue.0;
        }
        rule.matches.queue = Some(queue);
    }
    rule
}

/// `21`, `20:21` or `21,2121,3000:3010` as ranges; `None` when a part does not parse.
fn port_ranges(text: &str) -> Option<Vec<(u16, u16)>> {
    text.split(',')
        .map(|part| match part.split_once(':') {
            Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
            None => part.parse().ok().map(|p| (p, p)),
        })
        .collect()
}
