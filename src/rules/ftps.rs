//! The FTPS fallback: rules that admit passive data connections to named FTPS servers' fixed
//! port range, because an encrypted control connection cannot be read (docs/deploy.md#ftps).
//!
//! Owns: [`Ftps`] (the servers and their passive range, checked once) and its rules in nft
//! and iptables form. It is a static, wider opening than a pinhole: any client may open a
//! connection to those ports of those servers, and nothing else; so it is kept to the servers
//! named and to the range they are configured to use (vsftpd `pasv_min_port`/`pasv_max_port`,
//! proftpd `PassivePorts`, pure-ftpd `-p`). Active mode (PORT) cannot be covered this way: a
//! client's port is not fixed.

use std::fmt::Write;
use std::net::IpAddr;

/// FTPS servers and the passive port range they use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ftps {
    servers: Vec<IpAddr>,
    low: u16,
    high: u16,
}

impl Ftps {
    /// The fallback for `servers` (deduplicated, in order) on ports `low..=high`; `None`
    /// without servers, an error for an empty or privileged range.
    pub fn new(servers: &[IpAddr], low: u16, high: u16) -> Result<Option<Self>, String> {
        if servers.is_empty() {
            return Ok(None);
        }
        if low > high || low < 1024 {
            return Err(format!(
                "--ftps-passive-ports {low}-{high}: a range LOW-HIGH of unprivileged ports \
                 (1024-65535), LOW <= HIGH"
            ));
        }
        let mut unique: Vec<IpAddr> = Vec::new();
        for server in servers {
            if !unique.contains(server) {
                unique.push(*server);
            }
        }
        Ok(Some(Self {
            servers: unique,
            low,
            high,
        }))
    }

    /// The flags that print this fallback, for a ruleset's header.
    pub fn flags(&self) -> String {
        let mut flags = String::new();
        for server in &self.servers {
            let _ = write!(flags, " --ftps-server {server}");
        }
        let _ = write!(flags, " --ftps-passive-ports {}-{}", self.low, self.high);
        flags
    }

    /// The rules for an nft filter chain (one per address family with servers), each line
    /// indented by two tabs.
    pub fn nft(&self, out: &mut String) {
        out.push_str(COMMENT_NFT);
        let (low, high) = (self.low, self.high);
        for (family, list) in [("ip", self.v4()), ("ip6", self.v6())] {
            if !list.is_empty() {
                let _ = writeln!(
                    out,
                    "\t\t{family} daddr {{ {} }} tcp dport {low}-{high} ct state new tcp flags & (fin|syn|rst|ack) == syn accept",
                    list.join(", ")
                );
            }
        }
    }

    /// The rules appended to an iptables chain `chain` (a shell script's lines).
    pub fn iptables(&self, out: &mut String, chain: &str) {
        out.push_str(COMMENT_SH);
        let (low, high) = (self.low, self.high);
        for (command, list) in [("iptables", self.v4()), ("ip6tables", self.v6())] {
            for server in list {
                let _ = writeln!(
                    out,
                    "{command} -w -A {chain} -p tcp --syn -m conntrack --ctstate NEW -d {server} --dport {low}:{high} -j ACCEPT"
                );
            }
        }
    }

    fn v4(&self) -> Vec<String> {
        let v4 = self.servers.iter().filter(|s| s.is_ipv4());
        v4.map(ToString::to_string).collect()
    }

    fn v6(&self) -> Vec<String> {
        let v6 = self.servers.iter().filter(|s| s.is_ipv6());
        v6.map(ToString::to_string).collect()
    }
}

const COMMENT_NFT: &str = "\t\t# FTPS fallback (docs/deploy.md#ftps): an encrypted control connection cannot be\n\
     \t\t# read, so passive data connections to these FTPS servers' fixed port range are\n\
     \t\t# accepted from any client (a static opening, kept to the servers named).\n";

const COMMENT_SH: &str = "\n# FTPS fallback (docs/deploy.md#ftps): an encrypted control connection cannot be read,\n\
     # so passive data connections to these FTPS servers' fixed port range are accepted from\n\
     # any client (a static opening, kept to the servers named).\n";

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn rules_per_family() {
        let servers = addrs(&[
            "203.0.113.2",
            "2001:db8:113::2",
            "203.0.113.3",
            "203.0.113.2",
        ]);
        let ftps = Ftps::new(&servers, 50000, 50100).unwrap().unwrap();
        let mut nft = String::new();
        ftps.nft(&mut nft);
        let rules: Vec<&str> = nft.lines().filter(|l| !l.trim().starts_with('#')).collect();
        assert_eq!(
            rules,
            [
                "\t\tip daddr { 203.0.113.2, 203.0.113.3 } tcp dport 50000-50100 ct state new tcp flags & (fin|syn|rst|ack) == syn accept",
                "\t\tip6 daddr { 2001:db8:113::2 } tcp dport 50000-50100 ct state new tcp flags & (fin|syn|rst|ack) == syn accept",
            ]
        );
        let mut sh = String::new();
        ftps.iptables(&mut sh, "FTPALG_FORWARD");
        let rules: Vec<&str> = sh
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        assert_eq!(rules.len(), 3);
        assert_eq!(
            rules[2],
            "ip6tables -w -A FTPALG_FORWARD -p tcp --syn -m conntrack --ctstate NEW -d 2001:db8:113::2 --dport 50000:50100 -j ACCEPT"
        );
        assert_eq!(
            ftps.flags(),
            " --ftps-server 203.0.113.2 --ftps-server 2001:db8:113::2 --ftps-server 203.0.113.3 \
             --ftps-passive-ports 50000-50100"
        );
    }

    #[test]
    fn ranges_are_checked() {
        let one = addrs(&["2001:db8::1"]);
        assert_eq!(Ftps::new(&[], 1, 0), Ok(None));
        assert!(Ftps::new(&one, 50100, 50000).is_err());
        assert!(Ftps::new(&one, 21, 50000).is_err());
        let only_v6 = Ftps::new(&one, 60000, 60000).unwrap().unwrap();
        let mut nft = String::new();
        only_v6.nft(&mut nft);
        assert!(!nft.contains("\tip daddr"), "{nft}");
        assert!(nft.contains("ip6 daddr { 2001:db8::1 } tcp dport 60000-60000"));
    }
}
