//! The Prometheus text exposition format, version 0.0.4: every queue's snapshot as metric
//! families (`# HELP`, `# TYPE`, then one sample per queue, labelled `queue="N"`).
//!
//! Owns: the metric names, their help texts and types, and which counter each comes from.
//! Counters are named `ftpalg_…_total`; a counter the engine grows later and that no entry
//! below names is still exported, as `ftpalg_engine_<field>_total`. Histograms have
//! cumulative `_bucket{le=…}` samples ending with `le="+Inf"`, then `_sum` (seconds) and
//! `_count`. A reason appears once it has been counted (its series then starts at 1).

use std::fmt::Write;

use super::QueueSnapshot;
use super::names::APPLY;
use super::names::ENGINE;
use super::names::FieldMetric;
use super::names::WORKER;
use super::snapshot::BOUNDS_MICROS;
use super::snapshot::HistogramSnapshot;

/// The content type of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The exposition of `snapshots` (one per queue) at monotonic time `now_micros`.
pub(crate) fn render(snapshots: &[QueueSnapshot], now_micros: u64) -> String {
    let mut w = Writer::default();
    w.family(
        "ftpalg_build_info",
        "The running ftp-alg's version.",
        "gauge",
    );
    w.sample(
        "ftpalg_build_info",
        None,
        Some(("version", env!("CARGO_PKG_VERSION"))),
        1,
    );
    w.family(
        "ftpalg_snapshot_age_seconds",
        "How old each queue's figures are (a worker publishes about once a second; a growing age means a stuck worker).",
        "gauge",
    );
    for s in snapshots {
        let age = now_micros.saturating_sub(s.taken_micros);
        w.sample(
            "ftpalg_snapshot_age_seconds",
            Some(s.queue),
            None,
            Seconds(age),
        );
    }
    w.fields(snapshots, WORKER, |s| &s.worker, None);
    w.fields(snapshots, APPLY, |s| &s.apply, None);
    w.fields(snapshots, ENGINE, |s| &s.engine, Some("ftpalg_engine_"));
    gauges(&mut w, snapshots);
    reasons(&mut w, snapshots);
    w.histogram(
        snapshots,
        "ftpalg_backend_latency_seconds",
        "How long the kernel took to acknowledge a set change that installs pinholes (the announcing packet waits for it).",
        |s| &s.backend_latency,
    );
    w.histogram(
        snapshots,
        "ftpalg_verdict_latency_seconds",
        "From a packet's receipt from the queue to its verdict (batched accepts: to the batch verdict).",
        |s| &s.verdict_latency,
    );
    w.out
}

fn gauges(w: &mut Writer, snapshots: &[QueueSnapshot]) {
    w.family(
        "ftpalg_control_connections",
        "Control connections tracked now, by tier (proven FTP, unproven, spent: closed, kept a while).",
        "gauge",
    );
    for s in snapshots {
        for (tier, count) in s.flows {
            w.sample(
                "ftpalg_control_connections",
                Some(s.queue),
                Some(("tier", tier)),
                count,
            );
        }
    }
    w.family(
        "ftpalg_expectations",
        "Expectations live now (pinholes the kernel set holds for this queue).",
        "gauge",
    );
    for s in snapshots {
        w.sample("ftpalg_expectations", Some(s.queue), None, s.expectations);
    }
}

fn reasons(w: &mut Writer, snapshots: &[QueueSnapshot]) {
    w.family(
        "ftpalg_expectations_refused_total",
        "Announcements refused, by reason (bounce, hijack, privileged-port, client-limit, ...).",
        "counter",
    );
    for s in snapshots {
        for (reason, count) in s.refused.sorted() {
            let name = "ftpalg_expectations_refused_total";
            w.sample(name, Some(s.queue), Some(("reason", reason)), count);
        }
    }
    w.family(
        "ftpalg_expectations_revoked_total",
        "Expectations revoked before their lifetime ended, by reason (transfer-done, superseded, control-closed, ...).",
        "counter",
    );
    for s in snapshots {
        for (reason, count) in s.revoked.sorted() {
            let name = "ftpalg_expectations_revoked_total";
            w.sample(name, Some(s.queue), Some(("reason", reason)), count);
        }
    }
}

/// Microseconds written as seconds, exactly (`0.000250`).
struct Seconds(u64);

impl std::fmt::Display for Seconds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:06}", self.0 / 1_000_000, self.0 % 1_000_000)
    }
}

/// A bucket bound as a label value: seconds without trailing zeros (`0.00025`, `1`).
fn le(micros: u64) -> String {
    let text = Seconds(micros).to_string();
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[derive(Default)]
struct Writer {
    out: String,
}

impl Writer {
    fn family(&mut self, name: &str, help: &str, kind: &str) {
        // NOTE(unwrap): writing into a String cannot fail (here and below).
        writeln!(self.out, "# HELP {name} {help}").expect("into a String");
        writeln!(self.out, "# TYPE {name} {kind}").expect("into a String");
    }

    /// `name{queue="Q",label="value"} value`. Label values are static names; escaped anyway.
    fn sample(
        &mut self,
        name: &str,
        queue: Option<u16>,
        label: Option<(&str, &str)>,
        value: impl std::fmt::Display,
    ) {
        self.out.push_str(name);
        let mut labels = Vec::new();
        if let Some(queue) = queue {
            labels.push(format!("queue=\"{queue}\""));
        }
        if let Some((key, text)) = label {
            labels.push(format!("{key}=\"{}\"", escape(text)));
        }
        if !labels.is_empty() {
            write!(self.out, "{{{}}}", labels.join(",")).expect("into a String");
        }
        writeln!(self.out, " {value}").expect("into a String");
    }

    /// One family per distinct name of `table`, then the fields no entry names (with
    /// `fallback` as their prefix; `None`: left out).
    fn fields(
        &mut self,
        snapshots: &[QueueSnapshot],
        table: &[FieldMetric],
        list: impl Fn(&QueueSnapshot) -> &Vec<(&'static str, u64)>,
        fallback: Option<&str>,
    ) {
        let mut last = "";
        for entry in table {
            if entry.name != last {
                self.family(entry.name, entry.help, "counter");
                last = entry.name;
            }
            for s in snapshots {
                if let Some(value) = field(list(s), entry.field) {
                    self.sample(entry.name, Some(s.queue), entry.label, value);
                }
            }
        }
        let (Some(prefix), Some(first)) = (fallback, snapshots.first()) else {
            return;
        };
        for &(unnamed, _) in list(first) {
            if table.iter().any(|entry| entry.field == unnamed) {
                continue;
            }
            let name = format!("{prefix}{unnamed}_total");
            self.family(
                &name,
                &format!("The engine's `{unnamed}` counter."),
                "counter",
            );
            for s in snapshots {
                if let Some(value) = field(list(s), unnamed) {
                    self.sample(&name, Some(s.queue), None, value);
                }
            }
        }
    }

    fn histogram(
        &mut self,
        snapshots: &[QueueSnapshot],
        name: &str,
        help: &str,
        of: impl Fn(&QueueSnapshot) -> &HistogramSnapshot,
    ) {
        self.family(name, help, "histogram");
        let bucket = format!("{name}_bucket");
        for s in snapshots {
            let h = of(s);
            for (&bound, &count) in BOUNDS_MICROS.iter().zip(&h.cumulative) {
                self.sample(&bucket, Some(s.queue), Some(("le", &le(bound))), count);
            }
            self.sample(&bucket, Some(s.queue), Some(("le", "+Inf")), h.count);
            let sum = format!("{name}_sum");
            self.sample(&sum, Some(s.queue), None, Seconds(h.sum_micros));
            self.sample(&format!("{name}_count"), Some(s.queue), None, h.count);
        }
    }
}

fn field(list: &[(&'static str, u64)], name: &str) -> Option<u64> {
    list.iter().find(|(n, _)| *n == name).map(|&(_, v)| v)
}

/// A label value with `\`, `"` and newlines escaped (exposition format 0.0.4).
fn escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
#[path = "exposition_tests.rs"]
pub(crate) mod tests;
