//! The nftables objects the backend writes to ([`Target`]: the two sets and the two NAT
//! maps), their names, the shape each must have, and what a refusal naming one of them means
//! ([`Names::refused`], [`Names::judge_shape`]).
//!
//! It owns no socket and sends nothing.

use crate::io::backend::BackendError;
use crate::io::backend::nft::wire::SetShape;
use crate::io::netlink;
use crate::io::netlink::KernelError;
use crate::io::netlink::consts::NFT_SET_MAP;
use crate::io::netlink::consts::NFT_SET_TIMEOUT;

/// One object of the table: an expectation set or a NAT map, for IPv4 or IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Target {
    /// The IPv4 expectation set.
    Set4,
    /// The IPv6 expectation set.
    Set6,
    /// The IPv4 NAT map.
    Map4,
    /// The IPv6 NAT map.
    Map6,
}

/// The table, set and map names (apart from the socket, so both can be borrowed at once).
#[derive(Debug)]
pub(super) struct Names {
    pub(super) table: String,
    pub(super) sets: [String; 2],
    /// `None` until NAT maps are enabled.
    pub(super) maps: Option<[String; 2]>,
}

/// What an object must look like: nft's type ids and lengths, and the type as nft spells it.
struct Want {
    key: (u32, u32),
    data: Option<(u32, u32)>,
    spelled: &'static str,
}

impl Target {
    /// Every target, in the order of [`Target::index`].
    pub(super) const ALL: [Self; 4] = [Self::Set4, Self::Set6, Self::Map4, Self::Map6];

    /// The set (`map == false`) or map for IPv4 (`v6 == false`) or IPv6.
    pub(super) fn of(map: bool, v6: bool) -> Self {
        Self::ALL[usize::from(v6) + 2 * usize::from(map)]
    }

    /// Its place in [`Target::ALL`] (and in a backend's element groups).
    pub(super) fn index(self) -> usize {
        self as usize
    }

    /// True for the NAT maps.
    pub(super) fn is_map(self) -> bool {
        matches!(self, Self::Map4 | Self::Map6)
    }

    fn family(self) -> usize {
        self.index() % 2
    }

    fn want(self) -> &'static Want {
        &WANTS[self.index()]
    }

    fn noun(self) -> &'static str {
        if self.is_map() { "map" } else { "set" }
    }
}

impl Names {
    /// The targets in use: the sets, then the maps if enabled.
    pub(super) fn targets(&self) -> impl Iterator<Item = Target> + '_ {
        Target::ALL
            .into_iter()
            .filter(|t| !t.is_map() || self.maps.is_some())
    }

    /// The object's name in its table; `None` for a map while NAT maps are off.
    pub(super) fn object(&self, target: Target) -> Option<&str> {
        let family = target.family();
        if target.is_map() {
            self.maps.as_ref().map(|maps| maps[family].as_str())
        } else {
            Some(self.sets[family].as_str())
        }
    }

    /// Compare an object's shape with what our elements need.
    pub(super) fn judge_shape(&self, target: Target, shape: SetShape) -> Result<(), BackendError> {
        let want = target.want();
        let map_flag = shape.flags & NFT_SET_MAP != 0;
        let problem = if map_flag != target.is_map() {
            let (is, not) = if map_flag {
                ("map", "set")
            } else {
                ("set", "map")
            };
            Some(format!("is a {is}, not a {not} (want `{}`)", want.spelled))
        } else if shape.flags & NFT_SET_TIMEOUT == 0 {
            Some("lacks `flags timeout`, so its elements cannot expire".to_owned())
        } else if !fits(want.key, shape.key_type, shape.key_len) {
            Some(format!("has the wrong key type (want `{}`)", want.spelled))
        } else if want
            .data
            .is_some_and(|data| !fits(data, shape.data_type, shape.data_len))
        {
            Some(format!("has the wrong data type (want `{}`)", want.spelled))
        } else {
            None
        };
        match problem {
            Some(problem) => Err(BackendError::WrongSet {
                set: self.object_name(target),
                problem,
                fix: self.fix(target),
            }),
            None => Ok(()),
        }
    }

    /// A kernel refusal as a [`BackendError`] naming `target`.
    pub(super) fn refused(
        &self,
        target: Target,
        action: &'static str,
        refusal: KernelError,
    ) -> BackendError {
        let set = self.object_name(target);
        let reason = match refusal.errno {
            libc::ENOENT => {
                let fix = self.fix(target);
                return BackendError::MissingSet { set, fix };
            }
            libc::EPERM => return BackendError::PermissionDenied { set },
            libc::ENFILE => return BackendError::SetFull { set },
            libc::EINVAL => format!(
                "{refusal}; does the {} have `flags timeout` and the {} `{}`?",
                target.noun(),
                if target.is_map() { "type" } else { "key" },
                target.want().spelled
            ),
            // Re-adding (no NLM_F_EXCL) an element with the same key but other data: EEXIST
            // on 6.18 (nft_add_set_elem's element clash), EBUSY on some older kernels.
            libc::EEXIST | libc::EBUSY if target.is_map() => format!(
                "{refusal}: the map already sends that public endpoint to another private one"
            ),
            _ => refusal.to_string(),
        };
        BackendError::Refused {
            set,
            action,
            reason,
        }
    }

    pub(super) fn netlink_error(&self, target: Target, error: netlink::Error) -> BackendError {
        BackendError::netlink(self.object_name(target), error)
    }

    /// E.g. "nftables set inet ftpalg expect4" or "nftables map inet ftpalg dnat4".
    pub(super) fn object_name(&self, target: Target) -> String {
        let name = self.object(target).unwrap_or("(NAT maps not enabled)");
        format!("nftables {} inet {} {name}", target.noun(), self.table)
    }

    pub(super) fn table_name(&self) -> String {
        format!("nftables table inet {}", self.table)
    }

    /// How to create `target` as we need it.
    fn fix(&self, target: Target) -> String {
        if !target.is_map() {
            return RULES_FIX.to_owned();
        }
        let name = self.object(target).unwrap_or_default();
        format!(
            "add it to table inet {}: `map {name} {{ type {}; flags timeout; }}`, with a \
             prerouting nat rule `dnat {} map @{name}` (docs/netlink.md)",
            self.table,
            target.want().spelled,
            MAP_LOOKUPS[target.family()]
        )
    }
}

/// True when a key or data type and length read from the kernel are `want`'s (a missing type
/// is not held against it; a missing length is).
fn fits(want: (u32, u32), kind: Option<u32>, len: Option<u32>) -> bool {
    len == Some(want.1) && kind.is_none_or(|k| k == want.0)
}

/// nft's type ids (nftables `datatype.h`: ipv4_addr 7, ipv6_addr 8, inet_service 13)
/// concatenated as nft does, 6 bits per field, first field highest; and lengths, each field
/// padded to 4 bytes.
const WANTS: [Want; 4] = [
    Want {
        key: ((7 << 12) | (7 << 6) | 13, 12),
        data: None,
        spelled: "ipv4_addr . ipv4_addr . inet_service",
    },
    Want {
        key: ((8 << 12) | (8 << 6) | 13, 36),
        data: None,
        spelled: "ipv6_addr . ipv6_addr . inet_service",
    },
    Want {
        key: ((7 << 12) | (7 << 6) | 13, 12),
        data: Some(((7 << 6) | 13, 8)),
        spelled: "ipv4_addr . ipv4_addr . inet_service : ipv4_addr . inet_service",
    },
    Want {
        key: ((8 << 12) | (8 << 6) | 13, 36),
        data: Some(((8 << 6) | 13, 20)),
        spelled: "ipv6_addr . ipv6_addr . inet_service : ipv6_addr . inet_service",
    },
];

/// How a rule looks a NAT map up, per family.
const MAP_LOOKUPS: [&str; 2] = [
    "ip to ip saddr . ip daddr . tcp dport",
    "ip6 to ip6 saddr . ip6 daddr . tcp dport",
];

const RULES_FIX: &str = "load the ruleset with `ftp-alg rules --backend nft | nft -f -` \
     (on kernels without the nft queue statement: `ftp-alg rules --backend nft --queue-via \
     iptables | sh`)";
