//! `pidfile`: run, stop, check, wait for and list services by their pidfiles.
//!
//! This file holds the entry point and the dispatch only; the command line's definition is in `args.rs`, and each
//! subcommand lives in a module of its own, over the `pidfile` library.

// The C `main` below replaces Rust's runtime start-up, which would spend a good part of a `pidfile status` run
// finding the main thread's stack (glibc parses /proc/self/maps for it) to report stack overflows nicely.
#![cfg_attr(not(test), no_main)]
// In test builds the harness's entry point replaces ours, so what only ours reaches looks unused there.
#![cfg_attr(test, allow(dead_code))]

mod args;
mod common;
mod get;
mod list;
mod path;
mod remove;
mod run;
mod status;
mod stop;
mod wait;

use clap::{CommandFactory, FromArgMatches};

use crate::args::{Cli, Command};
use crate::common::{Failure, Settings};

/// The program's entry point, called by the C library. The arguments are read through `std::env`, which glibc
/// initialises before `main` runs.
#[cfg(not(test))]
#[unsafe(no_mangle)]
extern "C" fn main(_argc: std::ffi::c_int, _argv: *const *const std::ffi::c_char) -> std::ffi::c_int {
    let code = match dispatch(parse_arguments()) {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("pidfile: {}", failure.message);
            failure.code
        }
    };
    // Rust's runtime would flush standard output after `main`; without it, this does.
    let _ = std::io::Write::flush(&mut std::io::stdout());
    std::ffi::c_int::from(code)
}

/// `Cli::parse()`, less the freeing of clap's description of the command line, which costs a quarter of a
/// `pidfile status` run: the process is about to exit, and the kernel reclaims the memory anyway.
fn parse_arguments() -> Cli {
    let mut command = Cli::command();
    let matches = command
        .try_get_matches_from_mut(std::env::args_os())
        .unwrap_or_else(|error| error.exit());
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.format(&mut command).exit());
    std::mem::forget(matches);
    std::mem::forget(command);
    cli
}

fn dispatch(cli: Cli) -> Result<u8, Failure> {
    let settings = Settings::resolve(cli.dir, cli.instance, cli.config.as_deref(), cli.verbose)?;
    match cli.command {
        Command::Path { service } => path::run(&settings, &service),
        Command::Get { service } => get::run(&settings, &service),
        Command::Status { service, json } => status::run(&settings, &service, json),
        Command::Run { service, exec, command } => run::run(&settings, &service, exec, &command),
        Command::Stop {
            service,
            signal,
            timeout,
            no_kill,
        } => stop::run(&settings, &service, signal, timeout, no_kill),
        Command::Wait { service, gone, timeout } => wait::run(&settings, &service, gone, timeout),
        Command::Remove { service } => remove::run(&settings, &service),
        Command::List {
            all_instances,
            json,
            prometheus,
        } => list::run(&settings, all_instances, json, prometheus),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
