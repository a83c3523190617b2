//! The exported names: which counter each metric comes from, its name and its help text.
//!
//! Owns: the tables of the worker's, the applier's and the engine's counters (by the field
//! names their `fields()` give). Names follow the Prometheus conventions: `ftpalg_` prefix,
//! base units, `_total` for counters; fields told apart by a label share one name.

/// A counter read from a named field of one of the snapshot's counter lists.
pub(super) struct FieldMetric {
    pub(super) field: &'static str,
    pub(super) name: &'static str,
    /// An extra label telling apart fields exported under one name.
    pub(super) label: Option<(&'static str, &'static str)>,
    pub(super) help: &'static str,
}

const fn m(field: &'static str, name: &'static str, help: &'static str) -> FieldMetric {
    FieldMetric {
        field,
        name,
        label: None,
        help,
    }
}

const fn ml(
    field: &'static str,
    name: &'static str,
    label: (&'static str, &'static str),
    help: &'static str,
) -> FieldMetric {
    FieldMetric {
        field,
        name,
        label: Some(label),
        help,
    }
}

/// The worker's counters (`Counters::fields`).
pub(super) const WORKER: &[FieldMetric] = &[
    m(
        "packets",
        "ftpalg_packets_total",
        "Packets received from the queue.",
    ),
    ml(
        "accepted",
        "ftpalg_verdicts_total",
        ("verdict", "accept"),
        "Verdicts given, by verdict (a rewritten packet is accepted).",
    ),
    ml(
        "dropped",
        "ftpalg_verdicts_total",
        ("verdict", "drop"),
        "Verdicts given, by verdict (a rewritten packet is accepted).",
    ),
    m(
        "rewritten",
        "ftpalg_packets_rewritten_total",
        "Packets released rewritten (NAT).",
    ),
    m(
        "held",
        "ftpalg_packets_held_total",
        "Packets held back until their line was complete (NAT).",
    ),
    m(
        "truncated",
        "ftpalg_packets_truncated_total",
        "Packets cut short by the copy range, not judged (raise --copy-range).",
    ),
    m(
        "verdict_errors",
        "ftpalg_verdict_errors_total",
        "Verdicts the kernel did not take.",
    ),
    m(
        "batches",
        "ftpalg_verdict_batches_total",
        "Batch verdicts given (each accepting two or more packets).",
    ),
    m(
        "batched",
        "ftpalg_verdicts_batched_total",
        "Packets accepted by batch verdicts.",
    ),
    m(
        "queue_full_drops",
        "ftpalg_queue_full_drops_total",
        "Packets the kernel dropped because the queue was full (--queue-maxlen).",
    ),
    m(
        "socket_full_drops",
        "ftpalg_queue_socket_full_drops_total",
        "Packets the kernel dropped because the socket buffer was full (--rcvbuf).",
    ),
    m(
        "overruns",
        "ftpalg_queue_overruns_total",
        "Times the kernel reported lost queue messages (ENOBUFS).",
    ),
    m(
        "ct_lookups",
        "ftpalg_conntrack_lookups_total",
        "Translations looked up in conntrack (--nat).",
    ),
    m(
        "ct_lookup_errors",
        "ftpalg_conntrack_lookup_errors_total",
        "Conntrack lookups that failed.",
    ),
];

/// What reached the kernel (`ApplyCounters::fields`).
pub(super) const APPLY: &[FieldMetric] = &[
    m(
        "installed",
        "ftpalg_expectations_installed_total",
        "Expectations written to the kernel set and acknowledged.",
    ),
    m(
        "removed",
        "ftpalg_expectations_removed_total",
        "Removals sent to the kernel (some name an element already used or timed out).",
    ),
    ml(
        "install_errors",
        "ftpalg_backend_errors_total",
        ("op", "install"),
        "Set changes the kernel refused or did not answer, by operation.",
    ),
    ml(
        "remove_errors",
        "ftpalg_backend_errors_total",
        ("op", "remove"),
        "Set changes the kernel refused or did not answer, by operation.",
    ),
    m(
        "netlink_timeouts",
        "ftpalg_backend_timeouts_total",
        "Backend calls the kernel did not answer within --netlink-timeout.",
    ),
    m(
        "log_suppressed",
        "ftpalg_log_lines_suppressed_total",
        "Log lines not written because peers caused too many (rate limit).",
    ),
];

/// The engine's counters (`Stats::fields`).
pub(super) const ENGINE: &[FieldMetric] = &[
    m(
        "packets",
        "ftpalg_engine_packets_total",
        "Datagrams the engine handled.",
    ),
    m(
        "control_packets",
        "ftpalg_engine_control_packets_total",
        "TCP segments of control connections.",
    ),
    m(
        "ignored",
        "ftpalg_engine_ignored_packets_total",
        "Datagrams that are not TCP to or from a control port.",
    ),
    m(
        "fragments",
        "ftpalg_engine_fragments_total",
        "IP fragments (their TCP payload cannot be read).",
    ),
    m(
        "malformed_packets",
        "ftpalg_engine_malformed_packets_total",
        "Datagrams whose IP or TCP header is malformed.",
    ),
    m(
        "bad_checksums",
        "ftpalg_engine_bad_checksums_total",
        "Segments with a wrong TCP checksum (--verify-checksums).",
    ),
    m(
        "untracked",
        "ftpalg_engine_untracked_segments_total",
        "Control segments of no tracked connection.",
    ),
    m(
        "control_connections",
        "ftpalg_control_connections_total",
        "Control connections tracked.",
    ),
    m(
        "picked_up",
        "ftpalg_control_connections_picked_up_total",
        "Control connections picked up mid-stream.",
    ),
    m(
        "flows_proven",
        "ftpalg_control_connections_proven_total",
        "Control connections that proved to be FTP.",
    ),
    m(
        "poisoned",
        "ftpalg_control_connections_poisoned_total",
        "Control connections found not to be FTP (slipstreaming, other protocols).",
    ),
    m(
        "tls_control",
        "ftpalg_control_connections_tls_total",
        "Control connections that switched to TLS (no longer read).",
    ),
    m(
        "flows_evicted",
        "ftpalg_control_connections_evicted_total",
        "Control connections evicted because the table was full.",
    ),
    m(
        "flows_evicted_proven",
        "ftpalg_control_connections_evicted_proven_total",
        "Proven FTP sessions evicted (only when nothing else was left).",
    ),
    m(
        "flows_source_capped",
        "ftpalg_control_connections_source_capped_total",
        "Unproven connections pushed out by a newer one from the same source.",
    ),
    m(
        "flows_prefix_refused",
        "ftpalg_control_connections_prefix_refused_total",
        "New connections not tracked: their source prefix held its cap.",
    ),
    m(
        "flows_expired",
        "ftpalg_control_connections_expired_total",
        "Control connections forgotten after their idle timeout.",
    ),
    m(
        "flows_restored",
        "ftpalg_control_connections_restored_total",
        "Control connections carried over from a state file.",
    ),
    m(
        "announcements",
        "ftpalg_announcements_total",
        "Endpoints announced (PORT/EPRT/LPRT/227/228/229 lines).",
    ),
    m(
        "expectations",
        "ftpalg_engine_expectations_total",
        "Expectations the engine asked for (refreshes included).",
    ),
    m(
        "refused",
        "ftpalg_engine_refused_total",
        "Announcements refused (by reason: ftpalg_expectations_refused_total).",
    ),
    m(
        "revoked",
        "ftpalg_engine_revoked_total",
        "Expectations revoked (by reason: ftpalg_expectations_revoked_total).",
    ),
    m(
        "expectations_expired",
        "ftpalg_expectations_expired_total",
        "Expectations whose lifetime ended before their transfer was seen to end (most: unused).",
    ),
    m(
        "expectations_restored",
        "ftpalg_expectations_restored_total",
        "Expectations carried over from a state file.",
    ),
    m(
        "refused_client_limit",
        "ftpalg_engine_refused_client_limit_total",
        "New expectations refused: the client held its share.",
    ),
    m(
        "refused_total_limit",
        "ftpalg_engine_refused_total_limit_total",
        "New expectations refused: the expectation table was full.",
    ),
    m(
        "install_errors",
        "ftpalg_engine_install_errors_total",
        "Expectations the kernel did not take (withdrawn, retried on retransmission).",
    ),
    m(
        "install_retries",
        "ftpalg_engine_install_retries_total",
        "Failed installs retried when their segment came again.",
    ),
    m(
        "retransmissions",
        "ftpalg_engine_retransmissions_total",
        "Segments that carried bytes already seen.",
    ),
    m(
        "out_of_order",
        "ftpalg_engine_out_of_order_total",
        "Segments held until a hole before them filled.",
    ),
    m(
        "conflicts",
        "ftpalg_engine_conflicts_total",
        "Overlaps whose bytes differed from the first copy.",
    ),
    m("gaps", "ftpalg_engine_gaps_total", "Holes declared lost."),
    m(
        "unbuffered",
        "ftpalg_engine_unbuffered_segments_total",
        "Segments that could not be held (bounds).",
    ),
    m(
        "shed_bytes",
        "ftpalg_engine_shed_bytes_total",
        "Bytes dropped because the buffer budget was exceeded.",
    ),
    m(
        "shed_lines",
        "ftpalg_engine_shed_lines_total",
        "Unfinished or held lines dropped because the buffer budget was exceeded.",
    ),
    m("lines", "ftpalg_engine_lines_total", "Lines framed."),
    m(
        "overlong_lines",
        "ftpalg_engine_overlong_lines_total",
        "Lines longer than the cap.",
    ),
    m(
        "nat_translated",
        "ftpalg_nat_translated_connections_total",
        "Control connections found to be translated (NAT).",
    ),
    m(
        "nat_rewrites",
        "ftpalg_nat_rewrites_total",
        "Announcements rewritten to name the public address (NAT).",
    ),
    m(
        "nat_segments_rewritten",
        "ftpalg_nat_segments_rewritten_total",
        "Segments released with a shifted sequence number or an edited line.",
    ),
    m(
        "nat_acks_shifted",
        "ftpalg_nat_acks_shifted_total",
        "Segments whose ACK or SACK numbers were translated back.",
    ),
    m(
        "nat_held",
        "ftpalg_nat_held_total",
        "Segments held back because they ended inside an unfinished line.",
    ),
    m(
        "nat_released",
        "ftpalg_nat_released_total",
        "Held segments released.",
    ),
    m(
        "nat_hold_overflow",
        "ftpalg_nat_hold_overflow_total",
        "Segments not held because the hold bounds were reached.",
    ),
    m(
        "nat_hold_expired",
        "ftpalg_nat_hold_expired_total",
        "Held segments released because their time was up.",
    ),
    m(
        "nat_too_late",
        "ftpalg_nat_too_late_total",
        "Announcements refused because part of their line had left unrewritten.",
    ),
];
