//! What one firewall rule matches and does, as the checks see it: the same record whether the
//! rule was read from `nft -j list ruleset` (`check::nft`) or from `iptables-save`
//! (`check::iptables`), so each judgement (queue rules, admission, the kernel helper) reads
//! one shape.
//!
//! Owns: [`Matches`]. Not where a rule sits (table, chain, hooks): each reader keeps that.

/// A rule's queue target, port matches, set references and helper.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matches {
    /// Its queue target (nft `queue`, iptables `-j NFQUEUE`): (first, last, bypass).
    pub queue: Option<(u16, u16, bool)>,
    /// Port ranges of a TCP destination-port match (`None`: no such match; a negated match
    /// is not one).
    pub dport: Option<Vec<(u16, u16)>>,
    /// The same for the source port.
    pub sport: Option<Vec<(u16, u16)>>,
    /// Sets a match looks up (nft `@name`, iptables `--match-set NAME`).
    pub lookups: Vec<String>,
    /// Sets an element is deleted from (nft `delete @name`, iptables `--del-set NAME`).
    pub deletes: Vec<String>,
    /// The conntrack helper it assigns (nft `ct helper set`, iptables `-j CT --helper`).
    pub helper: Option<String>,
}
