//! The command line: clap definitions turned into typed configuration, no logic.
//!
//! Every flag is validated here (ranges, formats); clap exits with status 2 and a clear
//! message on a bad one.

use std::path::PathBuf;

use clap::Args;
use clap::Parser;
use clap::Subcommand;
use clap::ValueEnum;

use crate::config::Config;
use crate::config::Policy;
use crate::io::report::Format;
use crate::time::Duration;

/// ftp-alg: an FTP application-layer gateway for Linux firewalls.
#[derive(Debug, Parser)]
#[command(name = "ftp-alg", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Replay pcap/pcapng captures through the engine and report every expectation and
    /// whether each data connection would have been admitted.
    Replay(ReplayArgs),
}

/// `ftp-alg replay` options.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = FormatArg::Text)]
    pub format: FormatArg,
    /// Address policy: strict refuses PORT/EPRT naming another host than the client and
    /// 227/228 naming another host than the server; loose trusts the announced address.
    #[arg(long, value_enum, default_value_t = PolicyArg::Strict)]
    pub policy: PolicyArg,
    /// Expectation lifetime in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub timeout: u64,
    /// TCP port of FTP control connections (repeat for several).
    #[arg(long = "control-port", value_name = "PORT", default_values_t = [21u16],
          value_parser = clap::value_parser!(u16).range(1..))]
    pub control_ports: Vec<u16>,
    /// Expectations kept per control connection (the oldest is revoked past it).
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub max_expectations: u64,
    /// Allow data ports below 1024.
    #[arg(long)]
    pub allow_privileged_ports: bool,
    /// Do not track control connections whose SYN is not in the capture.
    #[arg(long)]
    pub no_pickup: bool,
    /// Ignore segments with a wrong TCP checksum (off by default: captures taken on a host
    /// with checksum offload carry wrong checksums on outgoing packets).
    #[arg(long)]
    pub verify_checksums: bool,
    /// Capture files (pcap or pcapng).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// `--format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// One readable line per event.
    Text,
    /// JSON Lines.
    Json,
}

/// `--policy` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PolicyArg {
    /// The announced address must be the control peer's.
    Strict,
    /// Trust the announced address.
    Loose,
}

impl ReplayArgs {
    /// The engine configuration these options describe.
    pub fn config(&self) -> Config {
        let mut control_ports = self.control_ports.clone();
        control_ports.dedup();
        Config {
            policy: match self.policy {
                PolicyArg::Strict => Policy::Strict,
                PolicyArg::Loose => Policy::Loose,
            },
            control_ports,
            expectation_lifetime: Duration::from_secs(self.timeout),
            max_expectations_per_control: usize::try_from(self.max_expectations)
                .unwrap_or(usize::MAX),
            allow_privileged_ports: self.allow_privileged_ports,
            midstream_pickup: !self.no_pickup,
            verify_checksums: self.verify_checksums,
            ..Config::default()
        }
    }

    /// The output format.
    pub fn format(&self) -> Format {
        match self.format {
            FormatArg::Text => Format::Text,
            FormatArg::Json => Format::Json,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("ftp-alg").chain(args.iter().copied()))
    }

    #[test]
    fn defaults() {
        let Command::Replay(args) = parse(&["replay", "a.pcap"]).unwrap().command;
        let config = args.config();
        assert_eq!(config.policy, Policy::Strict);
        assert_eq!(config.control_ports, vec![21]);
        assert_eq!(config.expectation_lifetime, Duration::from_secs(30));
        assert!(config.midstream_pickup);
        assert_eq!(args.format(), Format::Text);
    }

    #[test]
    fn options() {
        let cli = parse(&[
            "replay",
            "--format",
            "json",
            "--policy",
            "loose",
            "--timeout",
            "5",
            "--control-port",
            "2121",
            "--control-port",
            "21",
            "--no-pickup",
            "a.pcap",
            "b.pcapng",
        ])
        .unwrap();
        let Command::Replay(args) = cli.command;
        let config = args.config();
        assert_eq!(config.policy, Policy::Loose);
        assert_eq!(config.control_ports, vec![2121, 21]);
        assert_eq!(config.expectation_lifetime, Duration::from_secs(5));
        assert!(!config.midstream_pickup);
        assert_eq!(args.files.len(), 2);
    }

    #[test]
    fn bad_flags_are_usage_errors() {
        for bad in [
            vec!["replay"],
            vec!["replay", "--timeout", "0", "a"],
            vec!["replay", "--timeout", "-3", "a"],
            vec!["replay", "--timeout", "99999999", "a"],
            vec!["replay", "--policy", "lax", "a"],
            vec!["replay", "--control-port", "0", "a"],
            vec!["replay", "--control-port", "70000", "a"],
            vec!["replay", "--format", "xml", "a"],
            vec!["replay", "--max-expectations", "0", "a"],
            vec!["frobnicate"],
        ] {
            let error = parse(&bad).unwrap_err();
            assert_eq!(error.exit_code(), 2, "{bad:?}");
        }
    }
}
