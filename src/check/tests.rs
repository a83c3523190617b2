//! The findings on recorded inputs: `samples/` holds `nft -j list ruleset`, `iptables-save`
//! and `ipset list -t` output recorded on Linux 6.18 (nft 1.0.6, iptables 1.8.9, ipset 7.17)
//! after loading each shipped ruleset into an empty namespace; the nft `queue` statement's
//! JSON is written by hand after libnftables-json(5), since this kernel cannot load it.

use super::*;

const ALG_JSON: &str = include_str!("samples/alg.json");
const ALG_IPT: &str = include_str!("samples/alg.iptables");
const ALG_IP6T: &str = include_str!("samples/alg.ip6tables");
const NAT_JSON: &str = include_str!("samples/nat.json");
const NAT_IPT: &str = include_str!("samples/nat.iptables");
const KERNEL_JSON: &str = include_str!("samples/kernel.json");
const IPSET_IPT: &str = include_str!("samples/ipset.iptables");
const IPSET_HEADER: &str = include_str!("samples/ipset4.header");
const IPSET_NO_TIMEOUT: &str = include_str!("samples/ipset-notimeout.header");
const NO_QUEUE_STATEMENT: &str = "Error: No such file or directory; did you mean chain ‘forward’";
const EMPTY_JSON: &str = r#"{"nftables": [{"metainfo": {"version": "1.0.6"}}]}"#;

fn nft_setup() -> Setup {
    Setup {
        backend: Backend::Nft {
            table: "ftpalg".into(),
            sets: ["expect4".into(), "expect6".into()],
            maps: None,
        },
        queues: vec![0],
        control_ports: vec![21],
        nat: false,
        conntrack: false,
        max_expectations_total: 49_152,
        rules_options: String::new(),
    }
}

fn ipset_setup() -> Setup {
    Setup {
        backend: Backend::Ipset {
            sets: ["ftpalg-expect4".into(), "ftpalg-expect6".into()],
        },
        ..nft_setup()
    }
}

fn nat_setup() -> Setup {
    Setup {
        backend: Backend::Nft {
            table: "ftpalg".into(),
            sets: ["expect4".into(), "expect6".into()],
            maps: Some(["dnat4".into(), "dnat6".into()]),
        },
        nat: true,
        conntrack: true,
        ..nft_setup()
    }
}

/// A healthy gateway: the iptables-queue ruleset loaded, no daemon bound yet.
fn good() -> Observations {
    Observations {
        cap_net_admin: Some(true),
        queue_proc: Some(Ok(String::new())),
        queue_module: Some(true),
        queue_owners: Vec::new(),
        queue_statement: Some(Err(NO_QUEUE_STATEMENT.into())),
        element_timeouts: Some(Ok(())),
        nft_ruleset: Some(Ok(ALG_JSON.into())),
        iptables_save: [Some(Ok(ALG_IPT.into())), Some(Ok(ALG_IP6T.into()))],
        set_check: Some(Ok(())),
        ipset_headers: [None, None],
        ctnetlink: None,
        helper_autoassign: None,
    }
}

fn status(report: &Report, topic: &str) -> Status {
    report
        .topic(topic)
        .unwrap_or_else(|| panic!("no finding about {topic}:\n{report}"))
        .status
}

fn text(report: &Report, topic: &str) -> String {
    let finding = report.topic(topic).expect("finding");
    format!("{} {}", finding.text, finding.fix.as_deref().unwrap_or(""))
}

#[test]
fn a_good_gateway_can_work_and_every_line_is_ok() {
    let report = judge(&nft_setup(), &good());
    assert!(report.can_work(), "{report}");
    assert_eq!(report.worst(), Status::Ok, "{report}");
    for topic in [
        "table",
        "sets",
        "admission rule",
        "queue rule",
        "queue bypass",
    ] {
        assert_eq!(status(&report, topic), Status::Ok, "{topic}");
    }
    assert!(text(&report, "nft queue statement").contains("iptables NFQUEUE rules stand in"));
    assert!(report.to_string().ends_with("0 missing, 0 conflict\n"));
}

#[test]
fn no_table_is_missing_with_the_command_that_loads_it() {
    let mut seen = good();
    seen.nft_ruleset = Some(Ok(EMPTY_JSON.into()));
    seen.iptables_save = [Some(Ok(String::new())), Some(Ok(String::new()))];
    seen.set_check = Some(Err("nftables set inet ftpalg expect4 does not exist".into()));
    let report = judge(&nft_setup(), &seen);
    assert!(!report.can_work());
    assert_eq!(status(&report, "table"), Status::Missing);
    assert_eq!(status(&report, "sets"), Status::Missing);
    assert_eq!(status(&report, "queue rule"), Status::Missing);
    let fix = "ftp-alg rules --backend nft --queue-via iptables | sh";
    assert!(text(&report, "table").contains(fix));
    assert!(text(&report, "queue rule").contains(fix));
    assert_eq!(status(&report, "nft queue statement"), Status::Warn);
}

#[test]
fn a_set_the_backend_refuses_is_missing_with_its_reason() {
    let mut seen = good();
    let why =
        "nftables set inet ftpalg expect4 lacks `flags timeout`, so its elements cannot expire";
    seen.set_check = Some(Err(why.into()));
    let report = judge(&nft_setup(), &seen);
    assert!(!report.can_work());
    assert!(text(&report, "sets").contains("lacks `flags timeout`"));
}

#[test]
fn a_missing_queue_rule_is_missing_per_family_and_direction() {
    let mut seen = good();
    seen.iptables_save[1] = Some(Ok(String::new()));
    let report = judge(&nft_setup(), &seen);
    assert_eq!(status(&report, "queue rule"), Status::Missing);
    let text = text(&report, "queue rule");
    assert!(text.contains("tcp dport 21 over IPv6"), "{text}");
    assert!(!text.contains("over IPv4"), "{text}");
}

#[test]
fn a_queue_chain_nothing_jumps_to_is_no_queue_rule() {
    let mut seen = good();
    let unlinked = |t: &str| t.replace("-A FORWARD -j FTPALG_QUEUE\n", "");
    seen.iptables_save = [Some(Ok(unlinked(ALG_IPT))), Some(Ok(unlinked(ALG_IP6T)))];
    let report = judge(&nft_setup(), &seen);
    assert_eq!(status(&report, "queue rule"), Status::Missing);
}

#[test]
fn a_queue_rule_to_another_queue_is_named() {
    let mut setup = nft_setup();
    setup.queues = vec![1];
    let report = judge(&setup, &good());
    assert_eq!(status(&report, "queue rule"), Status::Missing);
    assert!(text(&report, "queue rule").contains("queues to 0-0 instead"));
}

#[test]
fn no_bypass_is_a_warning_not_an_error() {
    let mut seen = good();
    let strip = |t: &str| t.replace(" --queue-bypass", "");
    seen.iptables_save = [Some(Ok(strip(ALG_IPT))), Some(Ok(strip(ALG_IP6T)))];
    let report = judge(&nft_setup(), &seen);
    assert_eq!(status(&report, "queue bypass"), Status::Warn);
    assert!(report.can_work(), "{report}");
}

#[test]
fn the_kernel_helper_on_the_control_port_is_a_conflict() {
    let mut seen = good();
    seen.nft_ruleset = Some(Ok(KERNEL_JSON.into()));
    let report = judge(&nft_setup(), &seen);
    assert_eq!(status(&report, "kernel FTP helper"), Status::Conflict);
    assert!(text(&report, "kernel FTP helper").contains("nft delete rule inet ftpalg_kernel"));
    assert!(!report.can_work());
    // The same helper on another port is not our traffic.
    let mut setup = nft_setup();
    setup.control_ports = vec![2121];
    assert_eq!(
        status(&judge(&setup, &seen), "kernel FTP helper"),
        Status::Ok
    );
}

#[test]
fn iptables_ct_helper_and_automatic_assignment_are_conflicts() {
    let mut seen = good();
    let raw = "*raw\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -p tcp -m tcp --dport 21 -j CT \
               --helper ftp\nCOMMIT\n";
    seen.iptables_save[0] = Some(Ok(format!("{raw}{ALG_IPT}")));
    let report = judge(&nft_setup(), &seen);
    let found = text(&report, "kernel FTP helper");
    assert!(found.contains("iptables -t raw -D PREROUTING"), "{found}");
    let mut seen = good();
    seen.helper_autoassign = Some("1\n".into());
    let report = judge(&nft_setup(), &seen);
    assert_eq!(status(&report, "kernel FTP helper"), Status::Conflict);
    seen.helper_autoassign = Some("0\n".into());
    assert_eq!(
        status(&judge(&nft_setup(), &seen), "kernel FTP helper"),
        Status::Ok
    );
}

#[test]
fn who_holds_the_queue_decides_warn_or_conflict() {
    let mut seen = good();
    seen.queue_proc = Some(Ok(
        "    0  31337     0 2 65531     0     0        0  1\n".into()
    ));
    seen.queue_owners = vec![(31337, Some(("ftp-alg".into(), 4242)))];
    let report = judge(&nft_setup(), &seen);
    assert_eq!(status(&report, "queue 0"), Status::Warn);
    assert!(report.can_work());
    seen.queue_owners = vec![(31337, Some(("suricata".into(), 4242)))];
    let report = judge(&nft_setup(), &seen);
    assert_eq!(status(&report, "queue 0"), Status::Conflict);
    assert!(text(&report, "queue 0").contains("suricata (pid 4242)"));
    seen.queue_owners = vec![(31337, None)];
    assert_eq!(
        status(&judge(&nft_setup(), &seen), "queue 0"),
        Status::Conflict
    );
    let mut setup = nft_setup();
    setup.queues = vec![1];
    assert_eq!(status(&judge(&setup, &seen), "queue 1"), Status::Ok);
}

#[test]
fn without_cap_net_admin_the_daemon_cannot_run() {
    let mut seen = good();
    seen.cap_net_admin = Some(false);
    let report = judge(&nft_setup(), &seen);
    assert_eq!(status(&report, "privileges"), Status::Missing);
    assert!(!report.can_work());
}

#[test]
fn nfqueue_absent_is_missing_only_without_a_module() {
    let mut seen = good();
    seen.queue_proc = None;
    seen.queue_module = Some(true);
    assert_eq!(status(&judge(&nft_setup(), &seen), "nfqueue"), Status::Warn);
    seen.queue_module = Some(false);
    assert_eq!(
        status(&judge(&nft_setup(), &seen), "nfqueue"),
        Status::Missing
    );
}

#[test]
fn unreadable_rulesets_and_missing_tools_are_warnings_not_panics() {
    let mut seen = good();
    seen.nft_ruleset = Some(Ok("{ not json".into()));
    seen.iptables_save = [
        Some(Err("iptables-save: not found".into())),
        Some(Ok("garbage\n-A\n-A X -j NFQUEUE --queue-num nope\n".into())),
    ];
    let report = judge(&nft_setup(), &seen);
    assert_eq!(status(&report, "nft ruleset"), Status::Warn);
    assert_eq!(status(&report, "iptables-save"), Status::Warn);
    assert_eq!(status(&report, "queue rule"), Status::Missing);
    seen.nft_ruleset = Some(Err("nft: not found".into()));
    assert_eq!(
        status(&judge(&nft_setup(), &seen), "nft ruleset"),
        Status::Warn
    );
}

#[test]
fn nat_needs_a_queue_before_conntrack_and_the_dnat_rules() {
    let mut seen = good();
    seen.nft_ruleset = Some(Ok(NAT_JSON.into()));
    seen.iptables_save = [
        Some(Ok(NAT_IPT.into())),
        Some(Ok(NAT_IPT.replace("iptables", "ip6tables"))),
    ];
    seen.ctnetlink = Some(Ok(()));
    let report = judge(&nat_setup(), &seen);
    assert!(report.can_work(), "{report}");
    assert_eq!(status(&report, "NAT queue placement"), Status::Ok);
    assert_eq!(status(&report, "NAT map rule"), Status::Ok);
    // The plain ruleset with --nat: queued after conntrack, no dnat rules.
    let mut seen = good();
    seen.ctnetlink = Some(Err("permission denied".into()));
    let report = judge(&nat_setup(), &seen);
    assert_eq!(status(&report, "NAT queue placement"), Status::Missing);
    assert_eq!(status(&report, "NAT map rule"), Status::Missing);
    assert_eq!(status(&report, "ctnetlink"), Status::Missing);
}

#[test]
fn ipset_sets_need_timeout_and_enough_room() {
    let mut seen = good();
    seen.iptables_save = [
        Some(Ok(IPSET_IPT.into())),
        Some(Ok(IPSET_IPT.replace("expect4", "expect6"))),
    ];
    seen.ipset_headers = [Some(Ok(IPSET_HEADER.into())), Some(Ok(IPSET_HEADER.into()))];
    seen.queue_statement = None;
    let report = judge(&ipset_setup(), &seen);
    assert!(report.can_work(), "{report}");
    assert_eq!(status(&report, "admission rule"), Status::Ok);
    seen.ipset_headers[1] = Some(Ok(IPSET_NO_TIMEOUT.into()));
    let report = judge(&ipset_setup(), &seen);
    assert_eq!(status(&report, "ipset timeout"), Status::Missing);
    assert_eq!(status(&report, "set size"), Status::Warn);
    assert!(text(&report, "ipset timeout").contains("ipset destroy ftpalg-expect6"));
}

#[test]
fn a_set_smaller_than_the_expectation_bound_is_a_warning() {
    let mut setup = nft_setup();
    setup.max_expectations_total = 100_000;
    let report = judge(&setup, &good());
    assert_eq!(status(&report, "set size"), Status::Warn);
    assert!(report.can_work());
}

#[test]
fn an_admission_rule_that_does_not_delete_is_a_warning() {
    let mut seen = good();
    let json: serde_json::Value = serde_json::from_str(ALG_JSON).unwrap();
    let mut text = json.to_string();
    text = text.replace(r#""op":"delete""#, r#""op":"update""#);
    seen.nft_ruleset = Some(Ok(text));
    let report = judge(&nft_setup(), &seen);
    assert_eq!(status(&report, "admission rule"), Status::Warn);
}

#[test]
fn native_nft_queue_statements_are_read() {
    let json = r#"{"nftables": [
      {"table": {"family": "inet", "name": "ftpalg"}},
      {"chain": {"family": "inet", "table": "ftpalg", "name": "ftp_queue", "type": "filter",
                 "hook": "forward", "prio": 0, "policy": "accept"}},
      {"rule": {"family": "inet", "table": "ftpalg", "chain": "ftp_queue", "expr": [
        {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}},
                   "right": {"set": [21, 2121]}}},
        {"queue": {"num": {"range": [0, 3]}, "flags": ["bypass", "fanout"]}}]}},
      {"rule": {"family": "inet", "table": "ftpalg", "chain": "ftp_queue", "expr": [
        {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "sport"}},
                   "right": {"range": [20, 21]}}},
        {"queue": {"num": 0, "flags": "bypass"}}]}}]}"#;
    let ruleset = nft::parse(json).unwrap();
    assert_eq!(ruleset.rules[0].matches.queue, Some((0, 3, true)));
    assert_eq!(
        ruleset.rules[0].matches.dport,
        Some(vec![(21, 21), (2121, 2121)])
    );
    assert_eq!(ruleset.rules[1].matches.queue, Some((0, 0, true)));
    let mut seen = good();
    seen.nft_ruleset = Some(Ok(json.into()));
    seen.iptables_save = [Some(Ok(String::new())), Some(Ok(String::new()))];
    seen.queue_statement = Some(Ok(()));
    let mut setup = nft_setup();
    setup.queues = vec![0, 1, 2, 3];
    let report = judge(&setup, &seen);
    assert_eq!(status(&report, "queue rule"), Status::Ok, "{report}");
    assert_eq!(status(&report, "nft queue statement"), Status::Ok);
    // Port 2121 is queued only towards the server: its replies are not.
    setup.control_ports = vec![21, 2121];
    let report = judge(&setup, &seen);
    assert!(text(&report, "queue rule").contains("tcp sport 2121 over IPv4"));
    assert!(text(&report, "queue rule").contains("ftp-alg rules --backend nft | nft -f -"));
}

#[test]
fn the_iptables_reader_keeps_queues_ports_and_sets() {
    let rules = iptables::parse(IPSET_IPT);
    let queue: Vec<_> = rules.iter().filter_map(|r| r.matches.queue).collect();
    assert_eq!(queue, vec![(0, 0, true), (0, 0, true)]);
    let balanced = iptables::parse(
        "*filter\n-A FORWARD -p tcp -m multiport --dports 21,2100:2122 -j NFQUEUE \
         --queue-balance 2:5\n",
    );
    assert_eq!(balanced[0].matches.queue, Some((2, 5, false)));
    assert_eq!(
        balanced[0].matches.dport,
        Some(vec![(21, 21), (2100, 2122)])
    );
    let negated = iptables::parse("*filter\n-A FORWARD -p tcp ! --dport 21 -j NFQUEUE\n");
    assert_eq!(negated[0].matches.dport, None);
}

#[test]
fn the_rules_command_carries_the_options() {
    let mut setup = nft_setup();
    setup.rules_options = "--queue 0-3 --table gw".into();
    assert_eq!(
        setup.rules_command(true),
        "ftp-alg rules --backend nft --queue-via iptables --queue 0-3 --table gw | sh"
    );
    assert_eq!(
        setup.rules_command(false),
        "ftp-alg rules --backend nft --queue 0-3 --table gw | nft -f -"
    );
    assert_eq!(
        ipset_setup().rules_command(false),
        "ftp-alg rules --backend ipset | sh"
    );
    setup.nat = true;
    assert!(setup.rules_command(true).contains("--nat --outside IFACE"));
}

#[test]
fn nothing_listable_says_cannot_tell_rather_than_missing() {
    let mut seen = good();
    seen.nft_ruleset = Some(Err("nft: Operation not permitted".into()));
    seen.iptables_save = [
        Some(Err("Permission denied".into())),
        Some(Err("Permission denied".into())),
    ];
    let report = judge(&nft_setup(), &seen);
    assert_eq!(status(&report, "queue rule"), Status::Warn);
    assert_eq!(status(&report, "kernel FTP helper"), Status::Warn);
}

#[test]
fn static_nat_pairs_need_the_nat_form_but_not_conntrack() {
    let mut setup = nat_setup();
    setup.conntrack = false;
    let report = judge(&setup, &good());
    assert!(report.topic("ctnetlink").is_none(), "{report}");
    assert_eq!(status(&report, "NAT queue placement"), Status::Missing);
}
