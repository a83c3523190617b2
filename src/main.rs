//! The `ftp-alg` command: parse the command line, set up logging, run the subcommand.
//!
//! Exit status: `replay`: 0 when every capture was read to its end; 2 for bad arguments or a
//! file that could not be read (what was read before the error is still reported). `run`: 0
//! after SIGTERM/SIGINT; 1 when it cannot start (missing sets, queue taken) or a worker fails
//! (its queue failed, or it panicked: the other workers are stopped first); 2 for bad
//! arguments or a configuration file it cannot use. `rules`: 0, or 2 for bad arguments.
//! `watch`: 0 after SIGINT/SIGTERM or a limit; 1 when the interface cannot be opened or read;
//! 2 for bad arguments. `check`: 0 when the set-up can work (warnings allowed), 1 when
//! something it needs is missing or in conflict, 2 for bad arguments or a configuration file
//! it cannot use (it reads `run`'s, as it takes `run`'s options).

use std::io::BufWriter;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use ftp_alg::check;
use ftp_alg::cli::Cli;
use ftp_alg::cli::Command;
use ftp_alg::cli::WatchArgs;
use ftp_alg::io::capture::PcapWriter;
use ftp_alg::io::check as io_check;
use ftp_alg::io::config_file;
use ftp_alg::io::daemon;
use ftp_alg::io::daemon::eventlog;
use ftp_alg::io::daemon::logfile::LogFile;
use ftp_alg::io::daemon::logsink;
use ftp_alg::io::progress::Progress;
use ftp_alg::io::replay;
use ftp_alg::io::watch;
use ftp_alg::io::watch::Frames;
use ftp_alg::io::watch::live::Interface;
use ftp_alg::rules;
use signal_hook::consts::SIGINT;
use signal_hook::consts::SIGTERM;

fn main() -> ExitCode {
    let cli = match config_file::parse::<Cli>(std::env::args_os()) {
        Ok(cli) => cli,
        Err(error) => {
            eprintln!("ftp-alg: {error}");
            return ExitCode::from(2);
        }
    };
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
            let out: Box<dyn Write + Send> = match &log_file {
                Some(file) => Box::new(file.clone()),
                None => Box::new(std::io::stderr()),
            };
            logger.target(env_logger::Target::Pipe(Box::new(logsink::install(out))));
            eventlog::configure(&mut logger, args.log_format(), log_file.is_none());
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
        Command::Watch(args) => {
            logger.init();
            watch(&args)
        }
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
            let total = args
                .files
                .iter()
                .map(|file| std::fs::metadata(file).map_or(0, |m| m.len()))
                .sum();
            let mut progress = Progress::stderr(Some(total));
            let result = replay::run_writing(
                &args.files,
                &args.config(),
                args.format(),
                out,
                write.as_mut(),
                Some(&mut progress),
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

/// `ftp-alg watch`: capture until a signal or a limit; 0, or 1 when the interface cannot be
/// read.
fn watch(args: &WatchArgs) -> ExitCode {
    let mut interface = match Interface::open(&args.iface) {
        Ok(interface) => interface,
        Err(error) => {
            eprintln!("ftp-alg: {error}");
            return ExitCode::FAILURE;
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM] {
        if let Err(error) = signal_hook::flag::register(signal, Arc::clone(&stop)) {
            eprintln!("ftp-alg: cannot handle signals: {error}");
            return ExitCode::FAILURE;
        }
    }
    eprintln!(
        "ftp-alg watch: listening on {} ({}); nothing is installed, events follow",
        args.iface,
        interface.link()
    );
    // stdout is line-buffered: each event is flushed as it is written.
    let out = std::io::stdout().lock();
    let config = args.engine.config();
    match watch::run(
        &mut interface,
        &config,
        args.format(),
        out,
        args.limits(),
        &stop,
    ) {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ftp-alg: watching {}: {error}", args.iface);
            ExitCode::FAILURE
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
