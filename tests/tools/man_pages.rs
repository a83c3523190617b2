//! Man pages and shell completions generated from the clap definitions (`ftp_alg::cli::Cli`),
//! shared by the `gen_man` example (`make man`) and `tests/man.rs`.
//!
//! Owns the file names and places: `ftp-alg.1` and one `ftp-alg-<subcommand>.1` per visible
//! subcommand, and the completions `ftp-alg.bash`, `_ftp-alg` (zsh) and `ftp-alg.fish`. Does
//! not install them (`make install` does).

use std::io;
use std::path::Path;
use std::path::PathBuf;

use clap::CommandFactory;
use clap_complete::Shell;
use ftp_alg::cli::Cli;

/// The shells completions are written for.
const SHELLS: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

/// Write every man page into `man_dir` and every completion script into `completions_dir`
/// (both created if missing); the files written.
pub(crate) fn write(man_dir: &Path, completions_dir: &Path) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(man_dir)?;
    std::fs::create_dir_all(completions_dir)?;
    clap_mangen::generate_to(Cli::command(), man_dir)?;
    let mut written = page_names()
        .into_iter()
        .map(|name| man_dir.join(name))
        .collect::<Vec<_>>();
    for shell in SHELLS {
        let mut command = Cli::command();
        written.push(clap_complete::generate_to(
            shell,
            &mut command,
            "ftp-alg",
            completions_dir,
        )?);
    }
    Ok(written)
}

/// The man pages there must be: the command's and each visible subcommand's.
pub(crate) fn page_names() -> Vec<String> {
    let command = Cli::command();
    std::iter::once("ftp-alg.1".to_owned())
        .chain(
            command
                .get_subcommands()
                .filter(|sub| !sub.is_hide_set())
                .map(|sub| format!("ftp-alg-{}.1", sub.get_name())),
        )
        .collect()
}
