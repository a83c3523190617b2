//! The `ftp-alg` command: parse the command line, set up logging, run the subcommand.
//!
//! Exit status: 0 when every capture was read to its end; 2 for bad arguments or a file
//! that could not be read (what was read before the error is still reported).

use std::io::BufWriter;
use std::process::ExitCode;

use clap::Parser;
use ftp_alg::cli::Cli;
use ftp_alg::cli::Command;
use ftp_alg::io::replay;
use ftp_alg::rules;

fn main() -> ExitCode {
    let cli = Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("error")).init();
    match cli.command {
        Command::Rules(args) => match args.options() {
            Ok(options) => {
                print!("{}", rules::render(&options));
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("ftp-alg: {error}");
                ExitCode::from(2)
            }
        },
        Command::Replay(args) => {
            let out = BufWriter::new(std::io::stdout().lock());
            match replay::run(&args.files, &args.config(), args.format(), out) {
                Ok(summary) if summary.file_errors == 0 => ExitCode::SUCCESS,
                Ok(_) => ExitCode::from(2),
                Err(error) => {
                    eprintln!("ftp-alg: cannot write the report: {error}");
                    ExitCode::from(2)
                }
            }
        }
    }
}
