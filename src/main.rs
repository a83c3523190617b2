//! The `ftp-alg` command: parse the command line, set up logging, run the subcommand.
//!
//! Exit status: `replay`: 0 when every capture was read to its end; 2 for bad arguments or a
//! file that could not be read (what was read before the error is still reported). `run`: 0
//! after SIGTERM/SIGINT; 1 when it cannot start (missing sets, queue taken) or a worker fails
//! (its queue failed, or it panicked: the other workers are stopped first); 2 for bad
//! arguments. `rules`: 0, or 2 for bad arguments. `check`: 0 when the set-up can work
//! (warnings allowed), 1 when something it needs is missing or in conflict, 2 for bad
//! arguments.

use std::io::BufWriter;
use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use ftp_alg::check;
use ftp_alg::cli::Cli;
use ftp_alg::cli::Command;
use ftp_alg::io::capture::PcapWriter;
use ftp_alg::io::check as io_check;
use ftp_alg::io::daemon;
use ftp_alg::io::daemon::logfile::LogFile;
use ftp_alg::io::replay;
use ftp_alg::rules;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut logger = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(
        // The daemon's log lines are its record of what it opened; replay reports on stdout.
        if matches!(cli.command, Command::Run(_)) {
            "info"
        } else {
            "error"
        },
    ));
    match cli.command {
        Command::Run(args) => {
            let log_file = match args.log_file.as_deref().map(LogFile::open).transpose() {
                Ok(file) => file,
                Err(error) => {
                    eprintln!("ftp-alg: cannot open the log file: {error}");
                    return ExitCode::from(2);
                }
            };
            if let Some(file) = &log_file {
                logger.target(env_logger::Target::Pipe(Box::new(file.clone())));
            }
            logger.init();
            match daemon::run(&args.settings(), log_file.as_ref()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    log::error!("{error}");
                    if log_file.is_some() {
                        eprintln!("ftp-alg: {error}");
                    }
                    ExitCode::FAILURE
                }
            }
        }
        Command::Check(args) => {
            logger.init();
            let setup = args.setup();
            let timeout = std::time::Duration::from_millis(args.run.netlink_timeout);
            let report = check::judge(&setup, &io_check::observe(&setup, timeout));
            // A closed stdout (`| head`) is not worth a panic; the exit status still says it.
            let _ = write!(std::io::stdout().lock(), "{report}");
            if report.can_work() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
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
            logger.init();
            let out = BufWriter::new(std::io::stdout().lock());
            let mut write = match args.write.as_deref().map(open_capture_out).transpose() {
                Ok(write) => write,
                Err(error) => {
                    eprintln!("ftp-alg: {error}");
                    return ExitCode::from(2);
                }
            };
            let result = replay::run_writing(
                &args.files,
                &args.config(),
                args.format(),
                out,
                write.as_mut(),
            );
            if let Some(Err(error)) = write.map(PcapWriter::finish) {
                eprintln!("ftp-alg: cannot write the capture: {error}");
                return ExitCode::from(2);
            }
            match result {
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

/// The `--write` capture: a new pcap file at `path`.
fn open_capture_out(path: &std::path::Path) -> Result<PcapWriter<Box<dyn Write>>, String> {
    let file = std::fs::File::create(path)
        .map_err(|error| format!("cannot create {}: {error}", path.display()))?;
    let out: Box<dyn Write> = Box::new(BufWriter::new(file));
    PcapWriter::new(out).map_err(|error| format!("cannot write {}: {error}", path.display()))
}
