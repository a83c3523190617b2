//! Writes seed inputs for the fuzz targets from the project's own captures (`pcaps/`):
//! `cargo run --example fuzz_seeds -- OUT_DIR [CAPTURE...]` writes `OUT_DIR/<target>/<name>`,
//! in the input form each harness reads (`ftp_alg::testkit::fuzz`). `make fuzz-seeds` runs it
//! and merges the seeds into `fuzz/corpus/` with `cargo fuzz cmin`.
//!
//! Per capture: the file's first 4 KiB for `capture` (the whole file when smaller); each
//! datagram for `wire_decode`; each line of each FTP payload for `ftp_parsers`; and the control
//! connection's datagrams, with their time steps, for `engine`'s replay form, under four
//! configurations (no NAT, NAT of the client, of the server, small bounds).

use std::collections::BTreeSet;
use std::io;
use std::path::Path;
use std::path::PathBuf;

use ftp_alg::io::capture::CaptureReader;
use ftp_alg::io::capture::ip_datagram;
use ftp_alg::wire;
use ftp_alg::wire::Datagram;

/// Datagrams per capture in an `engine` seed (the harness reads 256 steps at most).
const ENGINE_PACKETS: usize = 200;

fn main() -> io::Result<()> {
    let mut args = std::env::args_os().skip(1);
    let out = PathBuf::from(args.next().unwrap_or_else(|| "fuzz/seeds".into()));
    let mut captures: Vec<PathBuf> = args.map(PathBuf::from).collect();
    if captures.is_empty() {
        for entry in std::fs::read_dir("pcaps")? {
            let path = entry?.path();
            if path
                .extension()
                .is_some_and(|e| e == "pcap" || e == "pcapng")
            {
                captures.push(path);
            }
        }
        captures.sort();
    }
    for target in ["capture", "wire_decode", "ftp_parsers", "engine"] {
        std::fs::create_dir_all(out.join(target))?;
    }
    for path in &captures {
        seed(path, &out)?;
    }
    Ok(())
}

fn seed(path: &Path, out: &Path) -> io::Result<()> {
    let bytes = std::fs::read(path)?;
    let stem = path
        .file_stem()
        .map_or_else(|| "capture".into(), |s| s.to_string_lossy().into_owned());
    std::fs::write(
        out.join("capture").join(&stem),
        &bytes[..bytes.len().min(4096)],
    )?;
    let mut reader = CaptureReader::open(path).map_err(io::Error::other)?;
    let mut buf = Vec::new();
    let mut lines = BTreeSet::new();
    let mut replay = Vec::new();
    let mut last = None;
    let mut n = 0;
    while let Some(meta) = reader.next_packet(&mut buf).map_err(io::Error::other)? {
        let Ok(datagram) = ip_datagram(meta.link, &buf) else {
            continue;
        };
        let Ok(Datagram::Tcp(segment)) = wire::parse(datagram) else {
            continue;
        };
        if segment.src().port() != 21 && segment.dst().port() != 21 {
            continue;
        }
        let len = u16::try_from(datagram.len()).unwrap_or(u16::MAX);
        let mut wire_seed = len.to_le_bytes().to_vec();
        wire_seed.extend_from_slice(datagram);
        std::fs::write(
            out.join("wire_decode").join(format!("{stem}-{n}")),
            wire_seed,
        )?;
        n += 1;
        for line in segment.payload().split_inclusive(|&b| b == b'\n') {
            lines.insert(line.to_vec());
        }
        if n <= ENGINE_PACKETS {
            let step = last.map_or(0, |t: ftp_alg::time::Instant| {
                (meta.timestamp.saturating_since(t).as_micros() / 1000).min(255) as u8
            });
            last = Some(meta.timestamp);
            replay.push(step);
            replay.extend_from_slice(&len.to_le_bytes());
            replay.extend_from_slice(datagram);
        }
    }
    for (i, line) in lines.iter().enumerate() {
        std::fs::write(out.join("ftp_parsers").join(format!("{stem}-{i}")), line)?;
    }
    for (flags, name) in [
        (0u8, "plain"),
        (1, "nat-client"),
        (2, "nat-server"),
        (8, "small"),
    ] {
        let mut seed = vec![1, flags];
        seed.extend_from_slice(&replay);
        std::fs::write(out.join("engine").join(format!("{stem}-{name}")), seed)?;
    }
    println!(
        "{}: {n} control datagrams, {} lines",
        path.display(),
        lines.len()
    );
    Ok(())
}
