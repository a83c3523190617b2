//! Conformance over the shared public captures (`../shared/pcaps`, when present): for every
//! capture in its `TRUTH.tsv`, replay under `--policy loose` must read the whole file, and
//! admit exactly the data connections the truth says a correct helper admits.
//!
//! Where our expectation count differs from the truth's count of parseable endpoints, the
//! difference is listed below with its reason, and checked exactly.

mod common;

use std::collections::HashMap;

use ftp_alg::config::Config;
use ftp_alg::config::Policy;
use serde_json::Value;

/// Captures where expectations differ from the truth's parseable endpoints: (capture,
/// expectations we make, the refusal reason that accounts for each missing one or "" when
/// none is refused, why).
const DIFFERENCES: &[(&str, u64, &str, &str)] = &[
    (
        "sv_bounce_port-third-party_synthetic.pcap",
        1,
        "privileged-port",
        "the bounce PORT names port 80: refused as privileged even under loose",
    ),
    (
        "sv_eprt-v6-addr_on-v4-control_synthetic.pcap",
        0,
        "family-mismatch",
        "EPRT |2| on an IPv4 control connection: no set can hold a cross-family key",
    ),
    (
        "zeek_nat-server_pasv-public-addr_ctl-only.pcap",
        688,
        "",
        "one 227 (frame 831) follows a segment missing from the capture: after a gap we resume \
         only at a confirmed line boundary, so the line is skipped (tshark parses each segment alone)",
    ),
];

struct Truth {
    parseable: u64,
    matched: u64,
}

fn truth(dir: &std::path::Path) -> HashMap<String, Truth> {
    let text = std::fs::read_to_string(dir.join("TRUTH.tsv")).expect("TRUTH.tsv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split('\t').collect();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h.starts_with(name))
            .unwrap_or_else(|| panic!("no {name}"))
    };
    let (parseable, matched) = (column("parseable"), column("matched_to_data_conn"));
    lines
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            let number = |i: usize| fields[i].parse::<u64>().expect("number");
            (
                fields[0].to_owned(),
                Truth {
                    parseable: number(parseable),
                    matched: number(matched),
                },
            )
        })
        .collect()
}

#[test]
fn shared_captures_admit_what_the_truth_says() {
    let Some(dir) = common::shared_pcaps() else {
        println!(
            "SKIPPED: ../shared/pcaps not present; the conformance test needs the shared captures"
        );
        return;
    };
    let loose = Config {
        policy: Policy::Loose,
        ..Config::default()
    };
    let truths = truth(&dir);
    assert!(
        truths.len() >= 20,
        "TRUTH.tsv lists {} captures",
        truths.len()
    );
    let mut report = Vec::new();
    for (name, truth) in &truths {
        let events = common::replay_json(&[dir.join(name)], &loose);
        let summary = common::summary(&events);
        assert_eq!(
            summary["file_errors"], 0,
            "{name}: the whole file must be read"
        );
        assert_eq!(
            summary["admitted"], truth.matched,
            "{name}: admitted data connections"
        );
        let expectations = summary["expectations"].as_u64().unwrap_or_default();
        match DIFFERENCES.iter().find(|d| d.0 == name) {
            Some(&(_, ours, reason, _)) => {
                assert_eq!(expectations, ours, "{name}: documented expectation count");
                if !reason.is_empty() {
                    let refused = refusals(&events, reason);
                    assert_eq!(
                        expectations + refused,
                        truth.parseable,
                        "{name}: refusals account for the rest"
                    );
                }
            }
            None => assert_eq!(
                expectations, truth.parseable,
                "{name}: one expectation per parseable endpoint"
            ),
        }
        report.push(format!(
            "{name}: admitted {} (truth {}), expectations {expectations}",
            summary["admitted"], truth.matched
        ));
    }
    report.sort();
    println!("{}", report.join("\n"));
}

fn refusals(events: &[Value], reason: &str) -> u64 {
    events
        .iter()
        .filter(|e| e["type"] == "refuse" && e["reason"] == reason)
        .count() as u64
}

#[test]
fn strict_policy_refuses_the_nat_servers_public_address() {
    let Some(dir) = common::shared_pcaps() else {
        println!("SKIPPED: ../shared/pcaps not present");
        return;
    };
    let events = common::replay_json(
        &[dir.join("zeek_nat-server_pasv-public-addr_ctl-only.pcap")],
        &Config::default(),
    );
    let summary = common::summary(&events);
    assert_eq!(summary["expectations"], 0);
    assert_eq!(refusals(&events, "hijack"), 688);
}
