//! `make man`: the man pages and shell completions from the clap definitions, written to
//! `target/man` and `target/completions` (or the two directories given). An example, not a
//! subcommand, so the generators (`clap_mangen`, `clap_complete`) stay out of the shipped
//! binary (docs/decisions.md D30).

mod man_pages;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1).map(PathBuf::from);
    let man = args.next().unwrap_or_else(|| "target/man".into());
    let completions = args.next().unwrap_or_else(|| "target/completions".into());
    match man_pages::write(&man, &completions) {
        Ok(written) => {
            for path in written {
                println!("{}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("gen_man: {error}");
            ExitCode::FAILURE
        }
    }
}
