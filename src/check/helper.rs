//! The finding about the kernel's own FTP helper (`nf_conntrack_ftp`) attached to the control
//! connections: by an nft `ct helper set` rule naming a `ct helper` object of type `ftp`, by
//! an iptables `CT --helper ftp` rule, or by automatic assignment
//! (`net.netfilter.nf_conntrack_helper=1`, kernels before 6.0). Each is a conflict: the
//! helper opens its own `related` expectations, which the filter accepts without ftp-alg's
//! checks, and behind NAT rewrites the same lines.

use crate::check::Finding;
use crate::check::Setup;
use crate::check::Status;
use crate::check::iptables;
use crate::check::nft;

/// The helper's finding, from whatever rulesets could be read.
pub(super) fn judge(
    setup: &Setup,
    nft: Option<&nft::Ruleset>,
    ipt: &[Option<Vec<iptables::Rule>>; 2],
    autoassign: Option<&str>,
) -> Finding {
    let mut places = Vec::new();
    if let Some(ruleset) = nft {
        places.extend(nft_places(setup, ruleset));
    }
    for (rules, tool) in ipt.iter().zip(["iptables", "ip6tables"]) {
        if let Some(rules) = rules {
            places.extend(iptables_places(setup, rules, tool));
        }
    }
    if autoassign.map(str::trim) == Some("1") {
        places.push(
            "automatic helper assignment is on (net.netfilter.nf_conntrack_helper=1); turn it \
             off: sysctl -w net.netfilter.nf_conntrack_helper=0"
                .to_owned(),
        );
    }
    if places.is_empty() {
        return Finding::new(
            Status::Ok,
            TOPIC,
            "not attached to the control connections (no `ct helper` rule, no `CT --helper \
             ftp`, no automatic assignment)",
        );
    }
    Finding::new(
        Status::Conflict,
        TOPIC,
        format!(
            "the kernel's nf_conntrack_ftp is attached to the same traffic: it opens its own \
             expectations (related connections pass the filter without ftp-alg's checks) \
             and, with NAT, rewrites the same lines. Found: {}",
            places.join("; ")
        ),
    )
    .fix("remove the helper assignment (the commands above)")
}

/// Evaluated nft rules that set a `ct helper` object of type `ftp` on a control port.
fn nft_places(setup: &Setup, ruleset: &nft::Ruleset) -> Vec<String> {
    let is_ftp = |rule: &nft::Rule, helper: &str| {
        ruleset.helpers.iter().any(|(family, table, name, kind)| {
            *family == rule.family && *table == rule.table && name == helper && kind == "ftp"
        })
    };
    let mut places = Vec::new();
    for rule in &ruleset.rules {
        let Some(helper) = &rule.matches.helper else {
            continue;
        };
        if is_ftp(rule, helper)
            && on_control_port(setup, rule.matches.dport.as_deref())
            && !ruleset.hooks_of(rule).is_empty()
        {
            let (family, table, chain, handle) =
                (&rule.family, &rule.table, &rule.chain, rule.handle);
            places.push(format!(
                "nft rule `ct helper set \"{helper}\"` in {family} {table} chain {chain} (handle \
                 {handle}); remove it: nft delete rule {family} {table} {chain} handle {handle}"
            ));
        }
    }
    places
}

/// Evaluated iptables rules `-j CT --helper ftp...` on a control port.
fn iptables_places(setup: &Setup, rules: &[iptables::Rule], tool: &str) -> Vec<String> {
    let mut places = Vec::new();
    for rule in rules {
        let ftp = rule
            .matches
            .helper
            .as_deref()
            .is_some_and(|h| h.starts_with("ftp"));
        if ftp
            && on_control_port(setup, rule.matches.dport.as_deref())
            && iptables::hook_of(rules, rule).is_some()
        {
            let delete = rule.text.replacen("-A ", "-D ", 1);
            places.push(format!(
                "`{}` in {tool} table {}; remove it: {tool} -t {} {delete}",
                rule.text, rule.table, rule.table
            ));
        }
    }
    places
}

/// True when a rule's destination ports (`None`: any) include a control port.
fn on_control_port(setup: &Setup, dport: Option<&[(u16, u16)]>) -> bool {
    dport.is_none_or(|ranges| {
        setup
            .control_ports
            .iter()
            .any(|p| ranges.iter().any(|(a, b)| a <= p && p <= b))
    })
}

const TOPIC: &str = "kernel FTP helper";
