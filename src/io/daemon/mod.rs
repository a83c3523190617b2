//! `ftp-alg run`: the NFQUEUE daemon.
//!
//! Owns: start-up (check the backend's sets, bind every queue, then say `ready`), one worker
//! thread per queue ([`worker`]), signals, and shutdown. The order of work per packet lives
//! in [`worker`]; the queue sits behind the [`source::PacketSource`] trait. A worker that
//! fails, by an error or a panic, stops the whole daemon (`supervise`).
//!
//! Signals: SIGTERM and SIGINT stop the workers cleanly (each unbinds its queue; with
//! `--cleanup` live expectations are removed, otherwise they time out in the kernel). SIGHUP
//! reopens the log file and checks the backend's sets again. SIGUSR1 logs the counters. A
//! clean stop leaves each queue's state for the next start (`state`); without one, a
//! restarted daemon picks running control connections up mid-stream.
//!
//! With `--metrics ADDR:PORT` a thread serves the workers' counters (`io::metrics`); the
//! log's format (`--log-format`) is chosen once for the process (`eventlog`).

pub mod apply;
pub mod eventlog;
#[doc(hidden)]
pub mod fault;
pub mod latency;
pub mod logfile;
pub mod logsink;
pub mod source;
pub mod state;

mod logline;
mod ratelimit;
mod supervise;
mod worker;

#[cfg(test)]
mod exact_tests;
#[cfg(test)]
mod metrics_tests;
#[cfg(test)]
mod tests;

use std::fmt;
use std::io;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread;

use signal_hook::consts::SIGHUP;
use signal_hook::consts::SIGINT;
use signal_hook::consts::SIGTERM;
use signal_hook::consts::SIGUSR1;
use signal_hook::iterator::Signals;

use crate::action::Verdict;
use crate::config::Config;
use crate::config::NatMode;
use crate::engine::Engine;
use crate::flow::Control;
use crate::io::backend::Backend;
use crate::io::backend::BackendError;
use crate::io::backend::DEFAULT_NAT_MAPS;
use crate::io::backend::IpsetBackend;
use crate::io::backend::NftBackend;
use crate::io::backend::NoBackend;
use crate::io::conntrack::Conntrack;
use crate::io::daemon::fault::Fault;
use crate::io::daemon::fault::Faulty;
use crate::io::daemon::logfile::LogFile;
use crate::io::daemon::source::PacketSource;
use crate::io::daemon::state::StateFile;
use crate::io::daemon::worker::Clock;
use crate::io::daemon::worker::Command;
use crate::io::daemon::worker::Translations;
use crate::io::daemon::worker::Worker;
use crate::io::daemon::worker::WorkerSettings;
use crate::io::metrics;
use crate::io::metrics::Board;
use crate::io::metrics::Slot;
use crate::io::nfqueue;
use crate::io::nfqueue::Queue;
use crate::nat::Translation;
use crate::time::Duration;

pub use supervise::WorkerFailure;

/// Where expectations go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendChoice {
    /// nftables sets in table `inet <table>`.
    Nft {
        /// Table name.
        table: String,
        /// IPv4 set.
        set4: String,
        /// IPv6 set.
        set6: String,
        /// Also write NAT map elements (maps `dnat4`/`dnat6` of the same table; `--nat`).
        nat_maps: bool,
    },
    /// ipset sets.
    Ipset {
        /// IPv4 set.
        set4: String,
        /// IPv6 set.
        set6: String,
    },
    /// Nowhere: decide and log only.
    None,
}

/// Everything `ftp-alg run` was told.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The engine's configuration (one engine per queue).
    pub engine: Config,
    /// Queue numbers, one worker each.
    pub queues: Vec<u16>,
    /// Kernel-side queue settings.
    pub queue: nfqueue::QueueOptions,
    /// Where expectations go.
    pub backend: BackendChoice,
    /// The verdict for a packet whose expectation could not be installed.
    pub on_install_error: Verdict,
    /// Remove live expectations at shutdown.
    pub cleanup: bool,
    /// Log the counters this often.
    pub stats_interval: Option<Duration>,
    /// How long the backend waits for the kernel's answers while a packet is held.
    pub netlink_timeout: std::time::Duration,
    /// Where each queue's state is left at a clean stop and picked up at the next start.
    pub state: Option<StateOptions>,
    /// Where the metrics endpoint listens (`--metrics`; off when `None`).
    pub metrics: Option<SocketAddr>,
}

/// The state files' place and shelf life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateOptions {
    /// The directory (`queue-N.state` in it).
    pub dir: std::path::PathBuf,
    /// A file older than this is ignored.
    pub max_age: Duration,
}

/// Why the daemon could not start or had to stop.
#[derive(Debug)]
pub enum DaemonError {
    /// The backend cannot be used (its sets are missing, or netlink failed).
    Backend(BackendError),
    /// A queue could not be bound.
    Bind {
        /// Which queue.
        queue: u16,
        /// Why.
        error: nfqueue::OpenError,
    },
    /// A worker stopped on its own while running: its queue failed, or it panicked.
    Worker {
        /// Which queue.
        queue: u16,
        /// Why.
        error: WorkerFailure,
    },
    /// Signal handlers or threads could not be set up.
    Setup(io::Error),
}

impl fmt::Display for DaemonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Backend(error) => write!(f, "{error}"),
            Self::Bind { error, .. } => write!(f, "{error}"),
            Self::Worker { queue, error } => write!(f, "queue {queue} failed: {error}"),
            Self::Setup(error) => write!(f, "cannot set up the daemon: {error}"),
        }
    }
}

impl std::error::Error for DaemonError {}

impl From<BackendError> for DaemonError {
    fn from(error: BackendError) -> Self {
        Self::Backend(error)
    }
}

/// A running worker as the signal thread sees it.
struct Handle {
    queue: u16,
    commands: mpsc::Sender<Command>,
    wake: UnixStream,
    thread: thread::JoinHandle<Result<(), WorkerFailure>>,
}

impl Handle {
    fn send(&mut self, command: Command) {
        // A worker that has already stopped no longer listens; nothing to do then.
        if self.commands.send(command).is_ok() {
            let _ = self.wake.write_all(&[1]);
        }
    }
}

fn open_backend(
    choice: &BackendChoice,
    timeout: std::time::Duration,
) -> Result<Box<dyn Backend>, BackendError> {
    let mut backend: Box<dyn Backend> = match choice {
        BackendChoice::Nft {
            table,
            set4,
            set6,
            nat_maps,
        } => {
            let backend = NftBackend::new(table, set4, set6).with_answer_timeout(timeout);
            let [map4, map6] = DEFAULT_NAT_MAPS;
            Box::new(if *nat_maps {
                backend.with_nat_maps(map4, map6)
            } else {
                backend
            })
        }
        BackendChoice::Ipset { set4, set6 } => {
            Box::new(IpsetBackend::new(set4, set6).with_answer_timeout(timeout))
        }
        BackendChoice::None => Box::new(NoBackend),
    };
    backend.check()?;
    Ok(backend)
}

/// What one worker is built from: its engine, backend, state file and, with `--nat`, where
/// it learns translations.
pub(crate) type WorkerParts = (
    Engine,
    Box<dyn Backend>,
    Option<StateFile>,
    Option<Box<dyn Translations>>,
);

/// With `--nat`: a conntrack handle for one worker to learn translations through.
fn open_conntrack(settings: &Settings) -> Result<Option<Box<dyn Translations>>, DaemonError> {
    if !matches!(settings.engine.nat.mode, NatMode::Conntrack(_)) {
        return Ok(None);
    }
    let conntrack = Conntrack::open()
        .map_err(|error| {
            DaemonError::Setup(io::Error::other(format!(
                "--nat learns translations from conntrack, which cannot be read: {error}"
            )))
        })?
        .with_answer_timeout(settings.netlink_timeout);
    Ok(Some(Box::new(conntrack)))
}

impl Translations for Conntrack {
    fn translation(&mut self, control: &Control) -> Result<Translation, String> {
        Self::translation(self, control).map_err(|error| error.to_string())
    }
}

/// Run until SIGTERM/SIGINT (`Ok`) or until a worker fails: its queue failed, or it panicked
/// ([`DaemonError::Worker`]; the other workers are stopped first).
pub fn run(settings: &Settings, log_file: Option<&LogFile>) -> Result<(), DaemonError> {
    let mut signals =
        Signals::new([SIGTERM, SIGINT, SIGHUP, SIGUSR1]).map_err(DaemonError::Setup)?;
    let clock = Clock::start();
    // Tests only (`fault`): None unless FTP_ALG_FAULT is set.
    let mut fault = Fault::from_env();
    let mut handles = Vec::new();
    let mut described = String::new();
    let board = start_metrics(settings)?;
    if settings.engine.nat.is_on() && matches!(settings.backend, BackendChoice::Ipset { .. }) {
        return Err(DaemonError::Setup(io::Error::other(
            "--nat and --nat-map need --backend nft (an ipset cannot hold the NAT maps)",
        )));
    }
    for (index, &number) in settings.queues.iter().enumerate() {
        let slot = board.as_ref().and_then(|board| board.slot(index));
        // Each worker has its own netlink sockets; the sets are checked before any packet is
        // taken from the kernel.
        let backend = open_backend(&settings.backend, settings.netlink_timeout)?;
        described = backend.describe();
        let queue = Queue::open(number, &settings.queue).map_err(|error| DaemonError::Bind {
            queue: number,
            error,
        })?;
        // Bound first: a daemon that cannot have the queue must not consume the state file.
        // Packets wait in the kernel's queue while the state loads.
        let state = state_file(settings, number, &backend.describe());
        let engine = start_engine(number, settings, state.as_ref(), clock);
        let translations = open_conntrack(settings)?;
        let handle = match fault.take() {
            Some(fault) => spawn(
                number,
                Faulty::new(queue, fault),
                (engine, backend, state, translations),
                settings,
                (clock, slot),
                &signals,
            ),
            None => spawn(
                number,
                queue,
                (engine, backend, state, translations),
                settings,
                (clock, slot),
                &signals,
            ),
        };
        handles.push(handle?);
    }
    log::info!(
        "ready: queue(s) {:?} bound, backend {}, policy {}, lifetime {}",
        settings.queues,
        described,
        match settings.engine.policy {
            crate::config::Policy::Strict => "strict",
            crate::config::Policy::Loose => "loose",
        },
        settings.engine.expectation_lifetime
    );
    serve(&mut signals, handles, log_file)
}

/// With `--metrics`: the board the workers publish to, served on its own thread.
fn start_metrics(settings: &Settings) -> Result<Option<Arc<Board>>, DaemonError> {
    let Some(addr) = settings.metrics else {
        return Ok(None);
    };
    let board = Arc::new(Board::new(settings.queues.len()));
    let bound = metrics::http::serve(addr, Arc::clone(&board), metrics::http::Limits::default())
        .map_err(|error| {
            DaemonError::Setup(io::Error::other(format!(
                "cannot serve metrics on {addr}: {error}"
            )))
        })?;
    log::info!("metrics: http://{bound}/metrics");
    Ok(Some(board))
}

/// Answer signals until a stop signal, or until a failing worker closes `signals`; then stop
/// every worker and wait for each. The last failure, if any, is the result.
fn serve(
    signals: &mut Signals,
    mut handles: Vec<Handle>,
    log_file: Option<&LogFile>,
) -> Result<(), DaemonError> {
    for signal in signals.forever() {
        match signal {
            SIGHUP => {
                if let Some(file) = log_file {
                    if let Err(error) = file.reopen() {
                        eprintln!("ftp-alg: cannot reopen {}: {error}", file.path().display());
                    }
                }
                log::info!("SIGHUP: log reopened, checking the backend again");
                handles.iter_mut().for_each(|h| h.send(Command::Recheck));
            }
            SIGUSR1 => handles.iter_mut().for_each(|h| h.send(Command::Stats)),
            _ => {
                log::info!("stopping (signal {signal})");
                break;
            }
        }
    }
    // Reached on a stop signal, or when a failing worker closed the signal iterator.
    handles.iter_mut().for_each(|h| h.send(Command::Stop));
    let mut failure = None;
    for handle in handles {
        let error = match handle.thread.join() {
            Ok(Ok(())) => continue,
            Ok(Err(error)) => error,
            // Only a panic outside `supervise::run_worker`'s guard gets here.
            Err(payload) => WorkerFailure::Panicked(supervise::panic_message(payload.as_ref())),
        };
        failure = Some(DaemonError::Worker {
            queue: handle.queue,
            error,
        });
    }
    failure.map_or(Ok(()), Err)
}

/// The state file of queue `number`, unless state is off.
fn state_file(settings: &Settings, number: u16, backend: &str) -> Option<StateFile> {
    let options = settings.state.as_ref()?;
    let fingerprint = state::options_fingerprint(&settings.engine, backend);
    Some(StateFile::new(
        &options.dir,
        number,
        options.max_age,
        &fingerprint,
    ))
}

/// Queue `number`'s engine: carried on from its state file when there is a usable one,
/// otherwise new (connections in flight are then picked up mid-stream).
fn start_engine(
    number: u16,
    settings: &Settings,
    state: Option<&StateFile>,
    clock: Clock,
) -> Engine {
    let fresh = || Engine::new(settings.engine.clone());
    let Some(state) = state else {
        return fresh();
    };
    match state.load(&settings.engine, clock.now()) {
        Ok(Some(loaded)) => {
            let restored = loaded.restored;
            log::info!(
                "queue {number}: restored {} connection(s) and {} expectation(s) from {}, \
                 saved {} ago{}",
                restored.flows,
                restored.expectations,
                state.path().display(),
                loaded.age,
                if restored.disowned > 0 {
                    format!(
                        "; {} expectation(s) no longer owned are removed",
                        restored.disowned
                    )
                } else {
                    String::new()
                }
            );
            loaded.engine
        }
        Ok(None) => {
            log::info!(
                "queue {number}: no state in {}; connections in flight are picked up mid-stream",
                state.path().display()
            );
            fresh()
        }
        Err(error) => {
            log::warn!(
                "queue {number}: state file {} ignored: {error}; connections in flight are \
                 picked up mid-stream",
                state.path().display()
            );
            fresh()
        }
    }
}

/// Start the worker for queue `number`, reading from `source`, with its engine, backend and
/// state file.
fn spawn<S: PacketSource + Send + 'static>(
    number: u16,
    mut source: S,
    (engine, backend, state, translations): WorkerParts,
    settings: &Settings,
    (clock, slot): (Clock, Option<Arc<Slot>>),
    signals: &Signals,
) -> Result<Handle, DaemonError> {
    let (commands, receiver) = mpsc::channel();
    let (wake, wake_worker) = UnixStream::pair().map_err(DaemonError::Setup)?;
    let worker_settings = WorkerSettings {
        on_install_error: settings.on_install_error,
        unjudged: match settings.engine.unjudged {
            crate::config::Unjudged::Accept => Verdict::Accept,
            crate::config::Unjudged::Drop => Verdict::Drop,
        },
        cleanup: settings.cleanup,
        stats_interval: settings.stats_interval,
        state,
    };
    let name = format!("queue {number}");
    let stop_all = signals.handle();
    let thread = thread::Builder::new()
        .name(name.clone())
        .spawn(move || {
            supervise::run_worker(number, &stop_all, || {
                let mut worker = Worker::new(name, engine, backend, worker_settings, clock)
                    .observed(number, slot);
                if let Some(translations) = translations {
                    worker = worker.with_translations(translations);
                }
                let result = worker.run(&mut source, &receiver, wake_worker);
                if let Err(error) = &result {
                    log::error!("queue {number}: stopping all workers: {error}");
                    worker.shutdown(&mut source);
                }
                result
            })
        })
        .map_err(DaemonError::Setup)?;
    Ok(Handle {
        queue: number,
        commands,
        wake,
        thread,
    })
}
