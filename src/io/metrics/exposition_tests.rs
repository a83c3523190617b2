//! The exposition parsed back, line by line: valid names, HELP and TYPE once per family
//! before its samples, histograms cumulative and closed by `+Inf`, every counter equal to the
//! field it comes from.

use std::collections::BTreeMap;

use super::*;
use crate::io::daemon::latency::Latency;
use crate::io::metrics::ReasonCounts;
use crate::io::metrics::names::APPLY;
use crate::io::metrics::names::ENGINE;
use crate::io::metrics::names::WORKER;

/// One parsed sample: name, labels (sorted), value.
pub(crate) type Samples = BTreeMap<(String, Vec<(String, String)>), f64>;

/// Parse an exposition strictly (panics on anything format 0.0.4 does not allow), checking
/// that each family is announced once, before its samples, and its samples are contiguous.
pub(crate) fn parse(text: &str) -> (Samples, BTreeMap<String, String>) {
    let mut samples = Samples::new();
    let mut types = BTreeMap::new();
    let mut helped = std::collections::BTreeSet::new();
    let mut finished = std::collections::BTreeSet::new();
    let mut current = String::new();
    assert!(text.ends_with('\n'), "ends with a newline");
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP name text");
            assert!(valid_name(name), "{line}");
            assert!(!help.is_empty(), "{line}");
            assert!(helped.insert(name.to_owned()), "HELP twice: {line}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(helped.contains(name), "TYPE before HELP: {line}");
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            assert!(types.insert(name.to_owned(), kind.to_owned()).is_none());
            if !current.is_empty() {
                finished.insert(std::mem::take(&mut current));
            }
            current = name.to_owned();
            continue;
        }
        assert!(!line.starts_with('#'), "{line}");
        let (series, value) = line.rsplit_once(' ').expect("name value");
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("value: {line}"));
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (name, labels(rest.strip_suffix('}').expect("}"))),
            None => (series, Vec::new()),
        };
        assert!(valid_name(name), "{line}");
        let family = family_of(name, &types);
        assert_eq!(family, current, "sample outside its family: {line}");
        assert!(!finished.contains(family), "{line}");
        if types[family] == "counter" {
            assert!(name.ends_with("_total"), "counter without _total: {line}");
        }
        let key = (name.to_owned(), labels);
        assert!(samples.insert(key, value).is_none(), "twice: {line}");
    }
    (samples, types)
}

fn family_of<'a>(name: &'a str, types: &BTreeMap<String, String>) -> &'a str {
    if types.contains_key(name) {
        return name;
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if types.get(base).is_some_and(|kind| kind == "histogram") {
                return base;
            }
        }
    }
    panic!("no TYPE for {name}")
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn labels(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for pair in text.split(',') {
        let (key, value) = pair.split_once('=').expect("label=value");
        assert!(valid_name(key) && !key.starts_with("__"), "{pair}");
        let value = value.strip_prefix('"').and_then(|v| v.strip_suffix('"'));
        let value = value.unwrap_or_else(|| panic!("quoted: {pair}"));
        assert!(!value.contains(['"', '\\', '\n']), "{pair}");
        out.push((key.to_owned(), value.to_owned()));
    }
    out.sort();
    out
}

pub(crate) fn get(samples: &Samples, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut labels: Vec<(String, String)> = labels
        .iter()
        .map(|&(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    labels.sort();
    samples.get(&(name.to_owned(), labels)).copied()
}

/// Queue `queue`'s snapshot with every field distinct (`seed` + its position).
fn snapshot(queue: u16, seed: u64) -> QueueSnapshot {
    let numbered = |names: Vec<&'static str>, base: u64| -> Vec<(&'static str, u64)> {
        names
            .into_iter()
            .enumerate()
            .map(|(i, n)| (n, base + i as u64))
            .collect()
    };
    let worker: Vec<_> = WORKER.iter().map(|m| m.field).collect();
    let apply: Vec<_> = APPLY.iter().map(|m| m.field).collect();
    let mut engine: Vec<_> = crate::stats::Stats::default()
        .fields()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    engine.push("a_counter_added_later");
    let mut refused = ReasonCounts::default();
    for reason in ["hijack", "bounce", "hijack"] {
        refused.add(reason);
    }
    let mut revoked = ReasonCounts::default();
    revoked.add("transfer-done");
    let mut latency = Latency::new();
    for micros in [1, 7, 7, 30, 900, 4_500, 2_000_000] {
        latency.record(micros + seed);
    }
    QueueSnapshot {
        queue,
        taken_micros: 1_000_000,
        worker: numbered(worker, seed),
        apply: numbered(apply, seed + 100),
        engine: numbered(engine, seed + 200),
        flows: [("spent", 1), ("unproven", 2), ("proven", seed)],
        expectations: seed + 3,
        refused,
        revoked,
        backend_latency: HistogramSnapshot::of(&latency),
        verdict_latency: HistogramSnapshot::of(&Latency::new()),
    }
}

#[test]
fn every_line_parses_and_every_counter_equals_its_field() {
    let snapshots = [snapshot(0, 1_000), snapshot(3, 5_000)];
    let text = render(&snapshots, 3_500_000);
    let (samples, types) = parse(&text);
    for s in &snapshots {
        let q = s.queue.to_string();
        let tables = [(WORKER, &s.worker), (APPLY, &s.apply), (ENGINE, &s.engine)];
        for (table, list) in tables {
            for &(field, value) in list.iter() {
                let Some(entry) = table.iter().find(|e| e.field == field) else {
                    assert!(std::ptr::eq(table, ENGINE), "unnamed {field}");
                    let name = format!("ftpalg_engine_{field}_total");
                    assert_eq!(get(&samples, &name, &[("queue", &q)]), Some(value as f64));
                    continue;
                };
                let mut labels = vec![("queue", q.as_str())];
                labels.extend(entry.label);
                assert_eq!(
                    get(&samples, entry.name, &labels),
                    Some(value as f64),
                    "{field} as {}",
                    entry.name
                );
            }
        }
        let r = |reason| {
            get(
                &samples,
                "ftpalg_expectations_refused_total",
                &[("queue", &q), ("reason", reason)],
            )
        };
        assert_eq!(
            (r("hijack"), r("bounce"), r("bogus")),
            (Some(2.0), Some(1.0), None)
        );
        let live = get(&samples, "ftpalg_expectations", &[("queue", &q)]);
        assert_eq!(live, Some((s.expectations) as f64));
        let proven = [("queue", q.as_str()), ("tier", "proven")];
        assert_eq!(
            get(&samples, "ftpalg_control_connections", &proven),
            Some(s.flows[2].1 as f64)
        );
        assert_eq!(
            get(&samples, "ftpalg_snapshot_age_seconds", &[("queue", &q)]),
            Some(2.5)
        );
    }
    assert_eq!(types["ftpalg_backend_latency_seconds"], "histogram");
    assert!(text.contains("ftpalg_build_info{version=\""), "{text}");
}

#[test]
fn histograms_are_cumulative_and_closed_by_inf_sum_and_count() {
    let snapshots = [snapshot(0, 0), snapshot(1, 10)];
    let (samples, _) = parse(&render(&snapshots, 0));
    for (s, seed) in snapshots.iter().zip([0u64, 10]) {
        let q = s.queue.to_string();
        let name = "ftpalg_backend_latency_seconds";
        let bucket = format!("{name}_bucket");
        let mut bounds: Vec<(f64, f64)> = samples
            .iter()
            .filter(|((n, l), _)| n == &bucket && l.contains(&("queue".into(), q.clone())))
            .map(|((_, l), &v)| {
                let le = &l.iter().find(|(k, _)| k == "le").unwrap().1;
                (le.parse::<f64>().unwrap_or(f64::INFINITY), v)
            })
            .collect();
        bounds.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert_eq!(bounds.len(), BOUNDS_MICROS.len() + 1);
        assert!(bounds.windows(2).all(|w| w[0].1 <= w[1].1), "{bounds:?}");
        let inf = bounds.last().unwrap();
        assert!(inf.0.is_infinite());
        let count = get(&samples, &format!("{name}_count"), &[("queue", &q)]).unwrap();
        assert_eq!((inf.1, count), (7.0, 7.0));
        let want_sum = [1, 7, 7, 30, 900, 4_500, 2_000_000].iter().sum::<u64>() + 7 * seed;
        let sum = get(&samples, &format!("{name}_sum"), &[("queue", &q)]).unwrap();
        assert!((sum - want_sum as f64 / 1e6).abs() < 1e-9, "{sum}");
        // Every bucket is the count of samples at or below its bound.
        for &(le, value) in &bounds[..bounds.len() - 1] {
            let micros = (le * 1e6).round() as u64;
            let want = [1, 7, 7, 30, 900, 4_500, 2_000_000]
                .iter()
                .filter(|&&m| m + seed <= micros)
                .count();
            assert_eq!(value, want as f64, "le={le}");
        }
    }
}

#[test]
fn nothing_published_yet_is_still_a_valid_exposition() {
    let (samples, types) = parse(&render(&[], 0));
    assert_eq!(samples.len(), 1, "build info only");
    assert!(types.contains_key("ftpalg_packets_total"));
}

#[test]
fn bounds_and_seconds_are_written_exactly() {
    assert_eq!(le(5), "0.000005");
    assert_eq!(le(250_000), "0.25");
    assert_eq!(le(1_000_000), "1");
    assert_eq!(Seconds(1_234_567).to_string(), "1.234567");
    assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
}
