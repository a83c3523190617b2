//! Small values for unit tests: a passive expectation on the standard lab control connection.

use std::num::NonZeroU16;

use crate::expect::DataKey;
use crate::expect::Expectation;
use crate::flow::Control;
use crate::flow::FlowId;
use crate::ftp::Mode;
use crate::ftp::Trigger;
use crate::ftp::session::AnnouncementId;
use crate::time::Duration;
use crate::time::Instant;

/// A 227 expectation of control connection 198.51.100.2:40000 -> 203.0.113.2:21: the client
/// may connect to 203.0.113.2:`dport`. `dport` must not be 0.
pub fn passive_expectation(
    dport: u16,
    announcement: u64,
    created: Instant,
    lifetime: Duration,
) -> Expectation {
    let control = Control {
        client: std::net::SocketAddr::from(([198, 51, 100, 2], 40000)),
        server: std::net::SocketAddr::from(([203, 0, 113, 2], 21)),
    };
    Expectation {
        nat: None,
        key: DataKey {
            src: control.client.ip(),
            dst: control.server.ip(),
            // NOTE(unwrap): a test fixture; callers pass literal non-zero ports.
            dport: NonZeroU16::new(dport).expect("non-zero port"),
        },
        control,
        trigger: Trigger::Reply227,
        mode: Mode::Passive,
        created,
        lifetime,
        origin: (FlowId(1), AnnouncementId(announcement)),
    }
}
