//! The workspace's development tasks, run as `cargo run -p xtask -- TASK` (or `cargo xtask TASK`):
//!
//! - `dist [DIR]`: writes the `pidfile` command's man pages (`pidfile.1`, and `pidfile-SUBCOMMAND.1` for each
//!   subcommand) and its completions for bash (`pidfile.bash`), zsh (`_pidfile`) and fish (`pidfile.fish`) into DIR,
//!   `target/dist` by default.
//!
//! They are generated from the command line's definition, which this program compiles from the command's own source
//! (`cli/src/args.rs`), so that the command itself neither carries the generators nor spends time on them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;

// The command line's definition, as the command compiles it (what the command does with the parsed values, such as
// choosing a format, is not used here).
#[allow(dead_code)]
#[path = "../../cli/src/args.rs"]
mod args;

// The value parsers that the definition names; the rest of the module serves the command only.
#[allow(dead_code)]
#[path = "../../cli/src/common.rs"]
mod common;

// The signal type of `stop --signal`.
#[allow(dead_code)]
#[path = "../../cli/src/signal.rs"]
mod signal;

/// The name the command is installed under.
const BIN: &str = "pidfile";

fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let result = match arguments.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["dist"] => dist(&workspace().join("target/dist")),
        ["dist", dir] => dist(Path::new(dir)),
        _ => {
            eprintln!("usage: cargo run -p xtask -- dist [DIR]");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace's root directory.
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

/// The command's version: the workspace's, which the command's package and this one both inherit.
fn command_version() -> Result<String, String> {
    Ok(env!("CARGO_PKG_VERSION").to_owned())
}

/// Writes the man pages and the completions into `dir`, which is made if missing.
fn dist(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|error| format!("{}: {error}", dir.display()))?;
    let written = |error: std::io::Error| format!("writing into {}: {error}", dir.display());
    // Leaked: clap takes a version that lives as long as the program, and this one runs once.
    let version: &'static str = command_version()?.leak();
    let mut command = args::Cli::command().version(version).bin_name(BIN);
    clap_mangen::generate_to(command.clone(), dir).map_err(written)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut command, BIN, dir).map_err(written)?;
    }
    println!(
        "{}: man pages {BIN}.1 and {BIN}-SUBCOMMAND.1; completions {BIN}.bash, _{BIN} (zsh) and {BIN}.fish",
        dir.display()
    );
    Ok(())
}
