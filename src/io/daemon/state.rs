//! [`StateFile`]: where a stopping daemon leaves each queue's engine, and where the next one
//! picks it up, so that a restart (an upgrade, a reload) loses no session.
//!
//! Owns: the file (`DIR/queue-N.state`, default `DIR` = `/run/ftp-alg`, mode 0600 in a 0700
//! directory), its header, and the decision to use it. Header: magic `FTPALGST`, format
//! version, the boot it was written in (`/proc/sys/kernel/random/boot_id`), when (the
//! monotonic clock, the same for every process of one boot), and a fingerprint of the options
//! that shape the engine's state; then the engine's snapshot (`engine::snapshot`, with its
//! own checksum).
//!
//! Written atomically on a clean stop (a temporary file, synced, then renamed). Read once at
//! start: a file from another boot, older than `--state-max-age`, written with other options,
//! of another format version, truncated or corrupt is reported and ignored, never trusted and
//! never a crash; in every case the file is removed once read, so a stale state is never
//! loaded twice (after a `kill -9` the next start finds none and picks connections up
//! mid-stream).

use std::fmt;
use std::fs;
use std::fs::File;
use std::io;
use std::io::BufReader;
use std::io::BufWriter;
use std::io::Read;
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::path::PathBuf;

use crate::config::Config;
use crate::engine::Engine;
use crate::engine::snapshot::Restored;
use crate::snapshot::SnapshotError;
use crate::snapshot::checksum;
use crate::time::Duration;
use crate::time::Instant;

/// The first bytes of a state file.
const MAGIC: &[u8; 8] = b"FTPALGST";
/// The header format this build writes and reads.
const VERSION: u16 = 1;
/// Where the kernel says which boot this is.
const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";

/// One queue's state file.
#[derive(Debug, Clone)]
pub struct StateFile {
    path: PathBuf,
    max_age: Duration,
    fingerprint: u64,
}

/// What a start found.
#[derive(Debug)]
pub struct Loaded {
    /// The engine, carrying on.
    pub engine: Engine,
    /// What it brought back.
    pub restored: Restored,
    /// How long ago the state was saved.
    pub age: Duration,
}

/// Why a state file was not used.
#[derive(Debug)]
pub enum StateError {
    /// It could not be read.
    Io(io::Error),
    /// It is not a state file of this program.
    NotState,
    /// It has another header format version.
    Version(u16),
    /// It was written before the last reboot.
    OtherBoot,
    /// It is older than the limit.
    TooOld(Duration),
    /// The daemon was started with other options.
    OtherOptions,
    /// Its engine snapshot was refused.
    Snapshot(SnapshotError),
}

impl StateFile {
    /// The state file of queue `queue` in `dir`, usable for `max_age`, for a daemon whose
    /// options are summed up by `options` (see [`options_fingerprint`]).
    pub fn new(dir: &Path, queue: u16, max_age: Duration, options: &str) -> Self {
        Self {
            path: dir.join(format!("queue-{queue}.state")),
            max_age,
            fingerprint: checksum(options.as_bytes()),
        }
    }

    /// Where it lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Write `engine` at `now`, atomically. Returns the bytes written.
    pub fn save(&self, engine: &Engine, now: Instant) -> io::Result<u64> {
        if let Some(dir) = self.path.parent() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
        let temporary = self.path.with_extension("state.tmp");
        let file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)?;
        let mut out = BufWriter::new(file);
        self.write_header(&mut out, now)?;
        engine.save(&mut out)?;
        let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.sync_all()?;
        let written = file.metadata()?.len();
        fs::rename(&temporary, &self.path)?;
        Ok(written)
    }

    /// Read the state left for this queue, if any, at `now`, into an engine with `config`.
    /// The file is removed once read, whatever it held.
    pub fn load(&self, config: &Config, now: Instant) -> Result<Option<Loaded>, StateError> {
        let file = match File::open(&self.path) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(StateError::Io(error)),
        };
        let result = self.read(BufReader::new(file), config, now);
        if let Err(error) = fs::remove_file(&self.path) {
            log::warn!("cannot remove {}: {error}", self.path.display());
        }
        result.map(Some)
    }

    fn write_header(&self, out: &mut dyn Write, now: Instant) -> io::Result<()> {
        let boot = boot_id();
        out.write_all(MAGIC)?;
        out.write_all(&VERSION.to_le_bytes())?;
        out.write_all(&[u8::try_from(boot.len()).unwrap_or(0)])?;
        out.write_all(&boot.as_bytes()[..boot.len().min(255)])?;
        out.write_all(&now.as_micros().to_le_bytes())?;
        out.write_all(&self.fingerprint.to_le_bytes())
    }

    fn read(
        &self,
        mut input: impl Read,
        config: &Config,
        now: Instant,
    ) -> Result<Loaded, StateError> {
        let magic: [u8; 8] = read_array(&mut input)?;
        if magic != *MAGIC {
            return Err(StateError::NotState);
        }
        let version = u16::from_le_bytes(read_array(&mut input)?);
        if version != VERSION {
            return Err(StateError::Version(version));
        }
        let [boot_len] = read_array(&mut input)?;
        let mut boot = vec![0; usize::from(boot_len)];
        input.read_exact(&mut boot).map_err(StateError::Io)?;
        if boot != boot_id().as_bytes() {
            return Err(StateError::OtherBoot);
        }
        let saved = Instant::from_micros(u64::from_le_bytes(read_array(&mut input)?));
        if saved > now {
            // The monotonic clock only goes forward within one boot.
            return Err(StateError::OtherBoot);
        }
        let age = now.saturating_since(saved);
        if age > self.max_age {
            return Err(StateError::TooOld(age));
        }
        if u64::from_le_bytes(read_array(&mut input)?) != self.fingerprint {
            return Err(StateError::OtherOptions);
        }
        let (engine, restored) =
            Engine::restore(config.clone(), &mut input, now).map_err(StateError::Snapshot)?;
        Ok(Loaded {
            engine,
            restored,
            age,
        })
    }
}

/// The options a saved state depends on, as one stable line: the queue's engine
/// configuration and where its pinholes go. A state written under other options is not used.
/// (Written out field by field, not with `Debug`, so that an upgrade that only adds unrelated
/// fields keeps its users' sessions.)
pub fn options_fingerprint(config: &Config, backend: &str) -> String {
    let c = config;
    let mut ports = c.control_ports.clone();
    ports.sort_unstable();
    format!(
        "v1 backend={backend} policy={:?} ports={ports:?} lifetime={} per-control={} \
         per-client={} total={} privileged={} pickup={} flows={} unproven-source={} \
         unproven-prefix={} line={} held={}/{} pending={} reply-lines={}",
        c.policy,
        c.expectation_lifetime.as_micros(),
        c.max_expectations_per_control,
        c.max_expectations_per_client,
        c.max_expectations_total,
        c.allow_privileged_ports,
        c.midstream_pickup,
        c.max_flows,
        c.max_unproven_per_source,
        c.max_unproven_per_prefix,
        c.max_line,
        c.session.max_held_lines,
        c.session.max_held_bytes,
        c.session.max_pending,
        c.session.max_reply_lines,
    )
}

fn read_array<const N: usize>(input: &mut impl Read) -> Result<[u8; N], StateError> {
    let mut bytes = [0; N];
    input.read_exact(&mut bytes).map_err(StateError::Io)?;
    Ok(bytes)
}

/// This boot's id, or an empty string where the kernel does not say.
fn boot_id() -> String {
    fs::read_to_string(BOOT_ID)
        .map(|id| id.trim().to_owned())
        .unwrap_or_default()
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(error) if error.kind() == io::ErrorKind::UnexpectedEof => {
                f.write_str("it ends early (truncated)")
            }
            Self::Io(error) => write!(f, "cannot read it: {error}"),
            Self::NotState => f.write_str("it is not an ftp-alg state file"),
            Self::Version(v) => write!(f, "it has header version {v}, this build reads only 1"),
            Self::OtherBoot => f.write_str("it was written before the last reboot"),
            Self::TooOld(age) => write!(f, "it is {age} old (more than --state-max-age)"),
            Self::OtherOptions => {
                f.write_str("the daemon was started with other options than the ones that wrote it")
            }
            Self::Snapshot(error) => write!(f, "its engine snapshot is unusable: {error}"),
        }
    }
}

impl std::error::Error for StateError {}

#[cfg(test)]
mod tests;
