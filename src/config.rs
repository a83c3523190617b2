//! [`Config`]: every tunable of the core as typed, validated values with documented defaults.
//!
//! Owns: the defaults (see `docs/configuration.md` for the reasoning behind each). Shells
//! build a `Config` from their command lines; the core never re-validates it.

use crate::ftp::session;
use crate::stream;
use crate::time::Duration;

/// Whose address an announcement may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    /// PORT/EPRT/LPRT must name the control client, 227/228 the control server (the kernel
    /// helper's default; refusing otherwise stops FTP bounce and PASV hijacking).
    #[default]
    Strict,
    /// Trust the announced address (the kernel helper's `loose=1`).
    Loose,
}

/// What happens to a packet the engine cannot judge (not IP/TCP, a fragment, or a segment it
/// cannot hold). Such a packet never creates an expectation either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unjudged {
    /// Release it (FTP keeps working; a line inside it may be missed).
    #[default]
    Accept,
    /// Drop it (TCP retransmits; the engine gets another chance to read it).
    Drop,
}

/// Idle timeouts of a control connection, by TCP state and by how much it has proven.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// After the client's SYN, until the server's SYN-ACK.
    pub syn_sent: Duration,
    /// Established but not yet shown to be FTP (no greeting and first command yet, or picked
    /// up mid-stream without a complete exchange since).
    pub unproven: Duration,
    /// While established and proven (FTP control connections idle through long transfers).
    pub established: Duration,
    /// A tombstone of a connection that is not FTP.
    pub poisoned: Duration,
    /// After the first FIN.
    pub closing: Duration,
    /// After the second FIN or a RST, to absorb retransmissions.
    pub closed: Duration,
}

/// The core's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address policy for announcements.
    pub policy: Policy,
    /// TCP ports that carry FTP control connections.
    pub control_ports: Vec<u16>,
    /// How long an expectation waits for its data connection.
    pub expectation_lifetime: Duration,
    /// Expectations per control connection; the oldest is revoked past it.
    pub max_expectations_per_control: usize,
    /// Expectations per client address over all its control connections; a new one is
    /// refused past it.
    pub max_expectations_per_client: usize,
    /// Expectations in all (keep it below the kernel set's size); a new one is refused past it.
    pub max_expectations_total: usize,
    /// Allow data ports below 1024.
    pub allow_privileged_ports: bool,
    /// Track connections whose SYN was not seen, resynchronising at a line boundary.
    pub midstream_pickup: bool,
    /// Ignore segments whose TCP checksum is wrong (off for captures with checksum offload).
    pub verify_checksums: bool,
    /// What to do with packets that cannot be judged.
    pub unjudged: Unjudged,
    /// Control connections tracked at once; past it the least recently active closed flow
    /// goes, else unproven, and a proven one only when nothing else is left.
    pub max_flows: usize,
    /// Unproven control connections per source address; past it that source's least recently
    /// active unproven one goes (0: no cap).
    pub max_unproven_per_source: usize,
    /// Unproven control connections per /24 (IPv4) or /64 (IPv6) source prefix; past it a new
    /// one is not tracked (0: no cap).
    pub max_unproven_per_prefix: usize,
    /// Bytes buffered over all connections (reassembly, partial lines, held lines).
    pub max_buffered_bytes: usize,
    /// Longest line kept; a longer line is discarded up to its end.
    pub max_line: usize,
    /// Reassembly bounds per direction.
    pub stream: stream::Limits,
    /// Session bounds.
    pub session: session::Limits,
    /// Idle timeouts.
    pub timeouts: Timeouts,
    /// Address rewriting for translated control connections.
    pub nat: Nat,
}

/// Where a control connection's translation comes from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum NatMode {
    /// No rewriting.
    #[default]
    Off,
    /// The static `--nat-map` pairs.
    Static(crate::nat::NatMap),
    /// The shell learns each connection's translation from conntrack and tells the engine
    /// (`Engine::wants_translation`, `Engine::set_translation`); static pairs, if any, are
    /// used until it does.
    Conntrack(crate::nat::NatMap),
}

/// Address rewriting (`docs/nat.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nat {
    /// Where translations come from.
    pub mode: NatMode,
    /// How long a segment carrying part of an unfinished line may be held back.
    pub hold_time: Duration,
    /// Bytes held back per control connection.
    pub hold_bytes: usize,
    /// Bytes held back over all connections.
    pub hold_bytes_total: usize,
}

impl Default for Nat {
    fn default() -> Self {
        Self {
            mode: NatMode::Off,
            hold_time: Duration::from_secs(2),
            hold_bytes: 16 << 10,
            hold_bytes_total: 4 << 20,
        }
    }
}

impl Nat {
    /// True when announcements may be rewritten.
    pub fn is_on(&self) -> bool {
        self.mode != NatMode::Off
    }

    /// The static pairs.
    pub fn map(&self) -> Option<&crate::nat::NatMap> {
        match &self.mode {
            NatMode::Off => None,
            NatMode::Static(map) | NatMode::Conntrack(map) => Some(map),
        }
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            syn_sent: Duration::from_secs(30),
            unproven: Duration::from_secs(60),
            established: Duration::from_secs(24 * 3600),
            poisoned: Duration::from_secs(300),
            closing: Duration::from_secs(120),
            closed: Duration::from_secs(10),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            policy: Policy::Strict,
            control_ports: vec![21],
            expectation_lifetime: Duration::from_secs(30),
            max_expectations_per_control: 4,
            max_expectations_per_client: 256,
            max_expectations_total: 49_152,
            allow_privileged_ports: false,
            midstream_pickup: true,
            verify_checksums: false,
            unjudged: Unjudged::Accept,
            max_flows: 16_384,
            max_unproven_per_source: 64,
            max_unproven_per_prefix: 0,
            max_buffered_bytes: 32 << 20,
            max_line: 4096,
            stream: stream::Limits::default(),
            session: session::Limits::default(),
            timeouts: Timeouts::default(),
            nat: Nat::default(),
        }
    }
}

impl Config {
    /// The bounds of the expectation table.
    pub fn expectation_limits(&self) -> crate::expect::table::Limits {
        crate::expect::table::Limits {
            per_control: self.max_expectations_per_control,
            per_client: self.max_expectations_per_client,
            total: self.max_expectations_total,
        }
    }

    /// The bounds of the flow table.
    pub fn flow_limits(&self) -> crate::flow::table::Limits {
        crate::flow::table::Limits {
            max_flows: self.max_flows,
            max_unproven_per_source: self.max_unproven_per_source,
            max_unproven_per_prefix: self.max_unproven_per_prefix,
        }
    }

    /// True if `port` carries FTP control connections.
    #[inline]
    pub fn is_control_port(&self, port: u16) -> bool {
        // Asked two or three times per packet: the usual single port is one comparison.
        match self.control_ports.as_slice() {
            [only] => *only == port,
            ports => ports.contains(&port),
        }
    }
}
