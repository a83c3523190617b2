//! Which chains a chain reaches by jumps: the walk both ruleset readers (`check::nft`,
//! `check::iptables`) need to tell an evaluated rule from one in a chain nothing jumps to.

/// True when chain `to` is `from` or reached from it by jumps; `targets(chain)` lists the
/// chains `chain`'s rules jump or go to. Each chain is visited once, so a loop of jumps
/// ends.
pub(super) fn reaches<'a>(from: &str, to: &str, targets: impl Fn(&str) -> Vec<&'a str>) -> bool {
    let mut seen = vec![from.to_owned()];
    let mut next = 0;
    while next < seen.len() {
        if seen[next] == to {
            return true;
        }
        let chain = seen[next].clone();
        next += 1;
        for target in targets(&chain) {
            if !seen.iter().any(|s| s == target) {
                seen.push(target.to_owned());
            }
        }
    }
    false
}
