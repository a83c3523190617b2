//! [`Stats`]: plain counters the engine increments and shells print or export.

/// Declares the counters once: the struct, their names, and how two sets add up.
macro_rules! counters {
    ($( $(#[$doc:meta])* $name:ident, )*) => {
        /// Counters of one engine. All start at zero and only grow.
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        pub struct Stats {
            $( $(#[$doc])* pub $name: u64, )*
        }

        impl Stats {
            /// Every counter with its name, in declaration order (for JSON and text output).
            pub fn fields(&self) -> Vec<(&'static str, u64)> {
                vec![$( (stringify!($name), self.$name), )*]
            }

            /// Add another engine's counters to these.
            pub fn absorb(&mut self, other: &Self) {
                $( self.$name += other.$name; )*
            }
        }
    };
}

counters! {
    /// Datagrams handled.
    packets,
    /// TCP segments of control connections.
    control_packets,
    /// Datagrams that are not TCP to or from a control port.
    ignored,
    /// Fragments (their TCP payload cannot be read).
    fragments,
    /// Datagrams whose IP or TCP header is malformed.
    malformed_packets,
    /// Segments with a wrong TCP checksum (when checking is on).
    bad_checksums,
    /// Control segments of no tracked connection (no SYN seen and pickup off, or no payload).
    untracked,
    /// Control connections tracked.
    control_connections,
    /// Of those, picked up mid-stream.
    picked_up,
    /// Connections evicted because the table was full.
    flows_evicted,
    /// Of those, proven FTP sessions (only when nothing else was left).
    flows_evicted_proven,
    /// Unproven connections pushed out by a newer one from the same source (its cap).
    flows_source_capped,
    /// New connections not tracked: their source prefix held its cap of unproven ones.
    flows_prefix_refused,
    /// Connections that proved to be FTP.
    flows_proven,
    /// Connections carried over from a snapshot (a restart that lost nothing).
    flows_restored,
    /// Expectations carried over from a snapshot (adopted from the kernel set).
    expectations_restored,
    /// Connections forgotten after their idle timeout.
    flows_expired,
    /// Segments that carried bytes already seen.
    retransmissions,
    /// Segments held until a hole before them filled.
    out_of_order,
    /// Overlaps whose bytes differed from the first copy.
    conflicts,
    /// Holes declared lost.
    gaps,
    /// Segments that could not be held (bounds).
    unbuffered,
    /// Bytes dropped because the global buffer budget was exceeded.
    shed_bytes,
    /// Unfinished or held lines dropped because the global buffer budget was exceeded.
    shed_lines,
    /// Lines framed.
    lines,
    /// Lines longer than the cap.
    overlong_lines,
    /// Endpoints announced (PORT/EPRT/LPRT/227/228/229 lines, parseable or not).
    announcements,
    /// Expectations installed (refreshes included).
    expectations,
    /// Announcements refused.
    refused,
    /// Expectations revoked.
    revoked,
    /// Expectations forgotten because their lifetime ended (the kernel timed them out).
    expectations_expired,
    /// New expectations refused: the client address held its share.
    refused_client_limit,
    /// New expectations refused: the expectation table was full.
    refused_total_limit,
    /// Expectations the shell could not install (withdrawn, retried on retransmission).
    install_errors,
    /// Failed installs retried when their announcing segment came again.
    install_retries,
    /// Control connections that switched to TLS.
    tls_control,
    /// Control connections found not to be FTP.
    poisoned,
    /// Control connections found to be translated (NAT).
    nat_translated,
    /// Announcements rewritten to name the public address.
    nat_rewrites,
    /// Segments released with a shifted sequence number or an edited line.
    nat_segments_rewritten,
    /// Segments whose ACK or SACK numbers were translated back.
    nat_acks_shifted,
    /// Segments held back because they ended inside an unfinished line.
    nat_held,
    /// Held segments released.
    nat_released,
    /// Segments not held because the hold bounds were reached (their line stays as it is).
    nat_hold_overflow,
    /// Held segments released because their time was up.
    nat_hold_expired,
    /// Announcements refused because part of their line had left unrewritten.
    nat_too_late,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absorb_adds_every_field() {
        let mut a = Stats {
            packets: 1,
            poisoned: 2,
            ..Stats::default()
        };
        let b = Stats {
            packets: 10,
            gaps: 3,
            poisoned: 1,
            ..Stats::default()
        };
        a.absorb(&b);
        assert_eq!(
            a,
            Stats {
                packets: 11,
                gaps: 3,
                poisoned: 3,
                ..Stats::default()
            }
        );
        assert_eq!(a.fields().len(), 46);
        assert_eq!(a.fields()[0], ("packets", 11));
    }
}
