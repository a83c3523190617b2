//! A writer a test keeps a handle on after giving it away (to a logger, a progress line):
//! what was written, and in how many `write` calls.

use std::io;
use std::io::Write;
use std::sync::Arc;
use std::sync::Mutex;

/// Records every `write` call; clones share the record.
#[derive(Debug, Clone, Default)]
pub struct SharedWriter(Arc<Mutex<Vec<Vec<u8>>>>);

impl SharedWriter {
    /// Each `write` call's bytes, in order.
    pub fn writes(&self) -> Vec<Vec<u8>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Everything written, as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.writes().concat()).into_owned()
    }
}

impl Write for SharedWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(buf.to_vec());
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
