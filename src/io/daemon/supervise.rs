//! What happens when a worker fails: the whole daemon stops, so that the service manager
//! restarts it, rather than running on with one queue unserved.
//!
//! Owns: running a worker thread's body under [`std::panic::catch_unwind`], turning a panic
//! into a [`WorkerFailure`] that carries the panic's message, the log line that names the
//! queue, and closing the signal iterator so that the main thread stops the other workers and
//! `daemon::run` returns [`DaemonError::Worker`](super::DaemonError::Worker) (exit status 1).
//! It does not own what a worker does ([`super::worker`]) nor how the main thread waits and
//! joins (`daemon::run`).
//!
//! A panicked worker gets no clean shutdown: its state may be half changed, so it is dropped
//! as it unwinds (dropping the queue unbinds it). Its pinholes expire on their own timeouts.
//! This needs `panic = "unwind"` (the default); under `panic = "abort"` a panic would still
//! end the process, only without the log line.

use std::any::Any;
use std::fmt;
use std::io;
use std::panic;
use std::panic::AssertUnwindSafe;

use signal_hook::iterator::Handle;

/// Why a worker stopped before it was told to.
#[derive(Debug)]
pub enum WorkerFailure {
    /// The worker panicked (a bug); the panic's message.
    Panicked(String),
    /// Its queue's socket failed.
    Queue(io::Error),
}

/// Run one worker's `body` on its thread. On a failure (an error or a panic) log it, close
/// `stop_all` (the main thread's signal iterator) and return it.
pub(crate) fn run_worker(
    queue: u16,
    stop_all: &Handle,
    body: impl FnOnce() -> io::Result<()>,
) -> Result<(), WorkerFailure> {
    // NOTE: AssertUnwindSafe is sound here because nothing `body` touches is used after a
    // panic: the worker, its engine, backend and queue are all owned by `body` and dropped
    // while unwinding.
    let result = match panic::catch_unwind(AssertUnwindSafe(body)) {
        Ok(result) => result.map_err(WorkerFailure::Queue),
        Err(payload) => {
            let message = panic_message(payload.as_ref());
            log::error!("queue {queue}: worker panicked: {message}");
            Err(WorkerFailure::Panicked(message))
        }
    };
    if result.is_err() {
        stop_all.close();
    }
    result
}

/// The text a panic was raised with (`panic!` gives a `&str` or a `String`).
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

impl fmt::Display for WorkerFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Panicked(message) => write!(f, "worker panicked: {message}"),
            Self::Queue(error) => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for WorkerFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Panicked(_) => None,
            Self::Queue(error) => Some(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use signal_hook::iterator::Signals;

    use super::*;

    #[test]
    fn panic_messages_are_read_from_str_and_string_payloads() {
        let text: Box<dyn Any + Send> = Box::new("static text");
        assert_eq!(panic_message(text.as_ref()), "static text");
        let owned: Box<dyn Any + Send> = Box::new(format!("packet {}", 7));
        assert_eq!(panic_message(owned.as_ref()), "packet 7");
        let other: Box<dyn Any + Send> = Box::new(42u8);
        assert_eq!(panic_message(other.as_ref()), "a panic without a message");
    }

    #[test]
    fn a_panic_becomes_a_failure_and_closes_the_signals() {
        let signals = Signals::new(Vec::<i32>::new()).unwrap();
        let result = run_worker(3, &signals.handle(), || panic!("boom at {}", 3));
        assert!(
            matches!(&result, Err(WorkerFailure::Panicked(m)) if m == "boom at 3"),
            "{result:?}"
        );
        assert_eq!(
            result.unwrap_err().to_string(),
            "worker panicked: boom at 3"
        );
        assert!(signals.is_closed());
    }

    #[test]
    fn a_clean_stop_leaves_the_signals_open() {
        let signals = Signals::new(Vec::<i32>::new()).unwrap();
        assert!(run_worker(3, &signals.handle(), || Ok(())).is_ok());
        assert!(!signals.is_closed());
        let failed = run_worker(3, &signals.handle(), || Err(io::Error::other("gone")));
        assert!(matches!(failed, Err(WorkerFailure::Queue(_))));
        assert!(signals.is_closed());
    }
}
