//! Writes the project's synthetic sample captures (see `ftp_alg::testkit::samples`) into a
//! folder, `pcaps/` by default: `cargo run --example gen_samples [DIR]`.
//! The `.expected` files beside them are written by hand, not by this program.

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let dir = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from("pcaps"), PathBuf::from);
    std::fs::create_dir_all(&dir)?;
    for sample in ftp_alg::testkit::samples::all() {
        let path = dir.join(sample.file_name());
        std::fs::write(&path, sample.to_bytes())?;
        println!(
            "{}: {} packets, {}",
            path.display(),
            sample.packets.len(),
            sample.about
        );
    }
    Ok(())
}
