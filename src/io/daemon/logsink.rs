//! Where the daemon's log lines go, and how many `write`s they cost.
//!
//! Owns: [`Sink`], the `env_logger` pipe target of `run` (stderr, or the `--log-file`), and
//! [`group`]: the lines one thread logs while the returned [`Group`] lives are kept and
//! written by one `write` when it ends. A worker's event lines of one receive round (an
//! install and the removal it replaces, one per announcement) cost one syscall, not one
//! each. At most [`MAX_KEPT`] bytes are kept: a line that would pass that sends the kept
//! lines and itself at once, in order. Lines of other threads, and lines outside a group,
//! are written as they come. Until [`install`] is called (tests, the other subcommands) the
//! sink writes to stderr.

use std::cell::RefCell;
use std::io;
use std::io::Write;
use std::sync::Mutex;
use std::sync::OnceLock;
use std::sync::PoisonError;

/// The most bytes one thread keeps before writing them.
pub const MAX_KEPT: usize = 64 * 1024;

/// Where every line finally goes.
static OUT: OnceLock<Mutex<Box<dyn Write + Send>>> = OnceLock::new();

thread_local! {
    static KEPT: RefCell<Kept> = const { RefCell::new(Kept { active: false, bytes: Vec::new() }) };
}

/// One thread's kept lines.
struct Kept {
    active: bool,
    bytes: Vec<u8>,
}

/// What [`Kept::keep`] did with a line.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    /// Kept for the group's one write.
    Kept,
    /// No group is open: write the line now.
    Direct,
    /// Past the bound: write these now (the kept lines, then the line).
    Spill(Vec<u8>),
}

impl Kept {
    fn keep(&mut self, line: &[u8]) -> Route {
        if !self.active {
            return Route::Direct;
        }
        if self.bytes.len() + line.len() > MAX_KEPT {
            let mut now = std::mem::take(&mut self.bytes);
            now.extend_from_slice(line);
            return Route::Spill(now);
        }
        self.bytes.extend_from_slice(line);
        Route::Kept
    }
}

/// Send every line to `out` from now on (the first call wins), and return the writer to
/// give `env_logger` as its pipe target.
pub fn install(out: Box<dyn Write + Send>) -> Sink {
    let _ = OUT.set(Mutex::new(out));
    Sink
}

/// `env_logger`'s pipe target: keeps a line while its thread has a [`Group`] open, else
/// writes it.
#[derive(Debug, Clone, Copy)]
pub struct Sink;

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Kept lines are borrowed out of the thread-local before writing, so a failing write
        // cannot leave it borrowed.
        match KEPT.with_borrow_mut(|kept| kept.keep(buf)) {
            Route::Kept => {}
            Route::Direct => write_out(buf)?,
            Route::Spill(now) => write_out(&now)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if KEPT.with_borrow(|kept| kept.active) {
            return Ok(());
        }
        match OUT.get() {
            Some(out) => out.lock().unwrap_or_else(PoisonError::into_inner).flush(),
            None => io::stderr().flush(),
        }
    }
}

fn write_out(bytes: &[u8]) -> io::Result<()> {
    match OUT.get() {
        Some(out) => out
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .write_all(bytes),
        None => io::stderr().write_all(bytes),
    }
}

/// Keep this thread's lines until the returned group ends (groups do not nest: an inner one
/// changes nothing, and the outer one writes).
#[must_use = "the lines are written when the group is dropped"]
pub fn group() -> Group {
    let outer = KEPT.with_borrow_mut(|kept| !std::mem::replace(&mut kept.active, true));
    Group { outer }
}

/// An open group of lines (see [`group`]).
#[derive(Debug)]
pub struct Group {
    outer: bool,
}

impl Drop for Group {
    fn drop(&mut self) {
        if !self.outer {
            return;
        }
        let bytes = KEPT.with_borrow_mut(|kept| {
            kept.active = false;
            std::mem::take(&mut kept.bytes)
        });
        if !bytes.is_empty() {
            // A log line that cannot be written has nowhere to be reported.
            let _ = write_out(&bytes);
        }
        // Give the buffer back for the next group.
        KEPT.with_borrow_mut(|kept| {
            if kept.bytes.is_empty() {
                let mut bytes = bytes;
                bytes.clear();
                kept.bytes = bytes;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_keeps_lines_until_it_ends() {
        let mut kept = Kept {
            active: true,
            bytes: Vec::new(),
        };
        assert_eq!(kept.keep(b"one\n"), Route::Kept);
        assert_eq!(kept.keep(b"two\n"), Route::Kept);
        assert_eq!(kept.bytes, b"one\ntwo\n");
    }

    #[test]
    fn without_a_group_a_line_goes_at_once() {
        let mut kept = Kept {
            active: false,
            bytes: Vec::new(),
        };
        assert_eq!(kept.keep(b"one\n"), Route::Direct);
        assert!(kept.bytes.is_empty());
    }

    #[test]
    fn a_line_past_the_bound_goes_with_the_kept_ones_in_order() {
        let mut kept = Kept {
            active: true,
            bytes: Vec::new(),
        };
        let long = vec![b'x'; MAX_KEPT - 2];
        assert_eq!(kept.keep(&long), Route::Kept);
        let Route::Spill(now) = kept.keep(b"abc\n") else {
            panic!("past the bound: written now");
        };
        assert_eq!(now.len(), MAX_KEPT + 2);
        assert!(now.ends_with(b"xxabc\n"));
        assert!(kept.bytes.is_empty());
        assert_eq!(kept.keep(b"next\n"), Route::Kept, "still in the group");
    }

    #[test]
    fn a_group_of_lines_is_one_write() {
        // The one installed sink of the test process.
        let writes = crate::testkit::writer::SharedWriter::default();
        let mut sink = install(Box::new(writes.clone()));
        {
            let _group = group();
            // As env_logger writes a record: the line, then a flush.
            for line in [&b"install a\n"[..], b"remove b\n"] {
                sink.write_all(line).unwrap();
                sink.flush().unwrap();
            }
            assert!(writes.writes().is_empty(), "kept while the group lives");
        }
        sink.write_all(b"alone\n").unwrap();
        assert_eq!(
            writes.writes(),
            [b"install a\nremove b\n".to_vec(), b"alone\n".to_vec()]
        );
    }

    #[test]
    fn groups_do_not_nest() {
        let outer = group();
        {
            let _inner = group();
        }
        assert!(
            KEPT.with_borrow(|kept| kept.active),
            "the inner group ended"
        );
        drop(outer);
        assert!(!KEPT.with_borrow(|kept| kept.active));
    }
}
