//! `pidfile`: run, stop, check, wait for and list services by their pidfiles.
//!
//! This file holds the entry point and the dispatch only; the command line's definition is in `args.rs`, and each
//! subcommand lives in a module of its own, over the `pidfiles` library.

// The C `main` below replaces Rust's runtime start-up, which would spend a good part of a `pidfile status` run
// finding the main thread's stack (glibc parses /proc/self/maps for it) to report stack overflows nicely.
#![cfg_attr(not(test), no_main)]

mod args;
#[cfg(feature = "cluster")]
mod cluster;
mod common;
mod get;
mod list;
mod path;
mod prometheus;
mod remove;
mod run;
mod signal;
mod state;
mod status;
mod stop;
mod wait;

use std::ffi::{CStr, OsString, c_char, c_int};
use std::os::unix::ffi::OsStringExt;

use clap::{CommandFactory, FromArgMatches};

use crate::args::{Cli, Command};
use crate::common::{Failure, Settings};

/// The program's entry point, called by the C library with the command line.
// The gates of unsafe code in the command are item by item: this C `main`, exported unmangled, and the copy of the
// `argv` the C library hands it; `die_with_supervisor` and `reap_own_children` below; `next_ended_child` in
// run.rs; the signal conversion in stop.rs; the module run/signals.rs (a handler that makes one send(2), and three
// questions to the C library); the module run/descriptors.rs, which marks inherited descriptors, known only by
// number, close-on-exec.
#[cfg(not(test))]
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    // SAFETY: the C runtime calls `main` with `argc` non-negative and `argv` pointing to `argc` pointers to
    // NUL-terminated strings, followed by a null pointer, all valid until the program ends (C11 5.1.2.2.1, which
    // glibc and musl follow).
    let arguments = unsafe { arguments(argc, argv) };
    abort_on_panic();
    let code = run(arguments);
    // Rust's runtime would flush standard output after `main`; without it, this does.
    let _ = std::io::Write::flush(&mut std::io::stdout());
    c_int::from(code)
}

/// The command line at `argv`, copied: what `std::env::args_os` would return, but without relying on the C library
/// to have handed it to the standard library beforehand, which glibc does and musl does not.
///
/// # Safety
///
/// `argv` must point to `argc` pointers, each null or to a NUL-terminated string, as C's `main` receives them. The
/// copy stops at the first null pointer.
#[allow(unsafe_code)]
unsafe fn arguments(argc: c_int, argv: *const *const c_char) -> Vec<OsString> {
    let count = usize::try_from(argc).unwrap_or(0);
    (0..count)
        // SAFETY: `index < argc`, so the pointer is within the array the caller vouches for.
        .map(|index| unsafe { *argv.add(index) })
        .take_while(|argument| !argument.is_null())
        // SAFETY: a non-null pointer of the array points to a NUL-terminated string, by the caller's promise.
        .map(|argument| OsString::from_vec(unsafe { CStr::from_ptr(argument) }.to_bytes().to_vec()))
        .collect()
}

/// Makes a panic on any thread end the process, as one on the main thread already does (without Rust's runtime
/// there is nothing to unwind to). A supervisor whose signal-forwarding thread had died would otherwise live on and
/// drop every signal, leaving `stop` to wait forever; ended, it leaves its command to the usual rules (the pidfile's
/// lock stays with the command that holds it, a cluster child dies with it).
#[cfg(not(test))]
fn abort_on_panic() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        std::process::abort();
    }));
}

/// Parses `arguments` (the program's name first) and runs the subcommand: its exit code, or a usage error's (clap
/// prints it and exits).
fn run(arguments: Vec<OsString>) -> u8 {
    match dispatch(parse_arguments(arguments)) {
        Ok(code) => code,
        Err(failure) => {
            common::warn(&failure.message);
            failure.code
        }
    }
}

/// `Cli::parse_from(arguments)`, less the freeing of clap's description of the command line, which costs a quarter
/// of a `pidfile status` run: the process is about to exit, and the kernel reclaims the memory anyway.
fn parse_arguments(arguments: Vec<OsString>) -> Cli {
    let mut command = Cli::command();
    let matches = command.try_get_matches_from_mut(&arguments).unwrap_or_else(|error| {
        if error.kind() == clap::error::ErrorKind::InvalidUtf8 {
            if let Some(argument) = not_utf8(&arguments) {
                common::warn(&format!("the argument {argument:?} is not valid UTF-8 (see pidfile --help)"));
                std::process::exit(i32::from(common::exit::USAGE));
            }
        }
        usage_error(error)
    });
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| usage_error(error.format(&mut command)));
    std::mem::forget(matches);
    std::mem::forget(command);
    cli
}

/// The first argument that is not UTF-8 and is not a path (the value of --dir, --config or --log, which may be any
/// bytes): the one clap could not take, which its message does not name.
fn not_utf8(arguments: &[OsString]) -> Option<&OsString> {
    const PATHS: [&str; 3] = ["--dir", "--config", "--log"];
    let mut previous: Option<&OsString> = None;
    arguments.iter().skip(1).find(|&argument| {
        let after_path = previous.is_some_and(|option| PATHS.iter().any(|path| option == path));
        previous = Some(argument);
        let path_value =
            PATHS.iter().any(|path| argument.as_encoded_bytes().starts_with(format!("{path}=").as_bytes()));
        argument.to_str().is_none() && !after_path && !path_value
    })
}

/// Ends the process on a command line that does not parse: help and version as clap prints them, and any other
/// error as one line, `pidfile: ...`, with exit status 2, as every other error of the command is one line.
fn usage_error(error: clap::Error) -> ! {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        error.exit();
    }
    let unknown = match error.get(ContextKind::InvalidSubcommand) {
        Some(ContextValue::String(name)) => Some(name.as_str()),
        _ => None,
    };
    let message = match unknown {
        Some("start") => {
            "there is no subcommand 'start': a service is started with `pidfile run SERVICE -- COMMAND`".to_owned()
        }
        _ => one_line(&error.render().to_string()),
    };
    common::warn(&format!("{message} (see pidfile --help)"));
    std::process::exit(i32::from(common::exit::USAGE));
}

/// clap's message for a usage error on one line: its first line, without the `error: ` prefix, followed by what
/// completes it (the arguments missing, a tip), and without the usage and "try --help" lines.
fn one_line(rendered: &str) -> String {
    let mut lines = rendered.lines().map(str::trim).filter(|line| !line.is_empty());
    let first = lines.next().unwrap_or("the command line does not parse");
    let mut message = first.strip_prefix("error: ").unwrap_or(first).trim_end_matches(':').to_owned();
    for detail in lines.take_while(|line| !line.starts_with("Usage:") && !line.starts_with("For more information")) {
        message.push_str(if detail.starts_with("tip:") { "; " } else { ": " });
        message.push_str(detail);
    }
    message
}

fn dispatch(cli: Cli) -> Result<u8, Failure> {
    let settings = Settings::resolve(cli.dir, cli.instance, cli.config.as_deref(), cli.verbose)?;
    match cli.cluster.as_deref().filter(|url| !url.is_empty()) {
        Some(url) => {
            #[cfg(feature = "cluster")]
            if let Some(result) = cluster::dispatch(&settings, url, &cli.command) {
                return result;
            }
            #[cfg(not(feature = "cluster"))]
            return Err(Failure::new(
                common::exit::USAGE,
                format!("--cluster {url}: this pidfile was built without clusters"),
            ));
        }
        None => {
            if let Some(option) = cluster_only_option(&cli.command) {
                let needs = if option == "--timeout" { "--notify or --cluster" } else { "--cluster" };
                return Err(Failure::new(common::exit::USAGE, format!("{option} needs {needs} (or PIDFILE_CLUSTER)")));
            }
        }
    }
    match &cli.command {
        Command::Path(args) => path::run(&settings, args),
        Command::Get(args) => get::run(&settings, args),
        Command::Status(args) => status::run(&settings, args),
        Command::Run(args) => run::run(&settings, args),
        Command::Stop(args) => stop::run(&settings, args),
        Command::Wait(args) => wait::run(&settings, args),
        Command::Remove(args) => remove::run(&settings, args),
        Command::List(args) => list::run(&settings, args),
    }
}

/// The first option given that only means something with `--cluster`.
fn cluster_only_option(command: &Command) -> Option<&'static str> {
    match command {
        Command::Run(args) => [
            ("--ttl", args.ttl.is_some()),
            ("--kill-grace", args.kill_grace.is_some()),
            ("--try", args.try_once),
            ("--timeout", args.timeout.is_some() && !args.notify),
        ]
        .into_iter()
        .find_map(|(option, given)| given.then_some(option)),
        Command::Stop(args) if args.revoke => Some("--revoke"),
        _ => None,
    }
}

/// Makes this process's children its own to reap: SIGCHLD back to its default action. Ignored by whoever started
/// this process (bash's `trap '' CHLD`, a daemon that never waits), which exec keeps, it would have the kernel reap
/// the command as it exits: its status lost, and its pid free for another process to take before the supervisor
/// opens a pidfd on it or signals it. The command then starts with SIGCHLD at its default action too.
#[allow(unsafe_code)]
pub fn reap_own_children() {
    // SAFETY: signal(2) with SIG_DFL installs no handler, so no code runs in a signal context; this process has no
    // handler of its own for SIGCHLD that this would remove.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_DFL) };
}

/// Makes the process `command` spawns get SIGKILL when the thread spawning it ends (PR_SET_PDEATHSIG), even if
/// that is by SIGKILL, so that a command supervised for a cluster lease never outlives its supervisor. The thread
/// must be one that lives as long as the supervision: the main thread.
#[cfg(feature = "cluster")]
#[allow(unsafe_code)]
pub fn die_with_supervisor(command: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    let supervisor = rustix::process::getpid();
    let death = move || -> std::io::Result<()> {
        rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
        // The supervisor may have died between the fork and the prctl: the child then has another parent already,
        // and must not start.
        if rustix::process::getppid() != Some(supervisor) {
            return Err(std::io::Error::from_raw_os_error(rustix::io::Errno::SRCH.raw_os_error()));
        }
        Ok(())
    };
    // SAFETY: the closure runs in the child between fork and exec, where only async-signal-safe calls are allowed:
    // it makes two system calls (prctl, getppid), allocates nothing and takes no lock (the error is a raw errno).
    unsafe { command.pre_exec(death) };
}

#[cfg(test)]
#[allow(unsafe_code)]
mod tests {
    use super::*;

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    /// A C `argv`: the strings' pointers, then a null pointer.
    fn c_argv(strings: &[&CStr]) -> Vec<*const c_char> {
        strings.iter().map(|string| string.as_ptr()).chain([std::ptr::null()]).collect()
    }

    #[test]
    fn arguments_are_copied_from_argv_byte_for_byte() {
        let strings = [c"pidfile", c"status", c"caf\xe9", c""];
        let argv = c_argv(&strings);
        // SAFETY: `argv` holds four pointers to NUL-terminated strings that outlive the call, then a null pointer.
        let arguments = unsafe { arguments(4, argv.as_ptr()) };
        let expected: Vec<OsString> =
            strings.iter().map(|string| OsString::from_vec(string.to_bytes().to_vec())).collect();
        assert_eq!(arguments, expected);
        assert_eq!(arguments[2].as_encoded_bytes(), b"caf\xe9", "not valid UTF-8, and kept so");
    }

    #[test]
    fn arguments_stop_at_argc_and_at_a_null_pointer() {
        let argv = c_argv(&[c"pidfile", c"list"]);
        // SAFETY: the first `argc` entries of `argv` (and the one after them) are valid, as above.
        let (none, first, both, past_the_end) = unsafe {
            (
                arguments(0, argv.as_ptr()),
                arguments(1, argv.as_ptr()),
                arguments(2, argv.as_ptr()),
                arguments(3, argv.as_ptr()),
            )
        };
        assert!(none.is_empty());
        assert_eq!(first, ["pidfile"]);
        assert_eq!(both, ["pidfile", "list"]);
        assert_eq!(past_the_end, both, "the null pointer ends the list");
    }

    #[test]
    fn run_parses_the_arguments_and_runs_the_subcommand() {
        let dir = tempfile::tempdir().unwrap();
        let arguments = |subcommand: &str| -> Vec<OsString> {
            let dir = dir.path().as_os_str().to_owned();
            ["pidfile".into(), "--dir".into(), dir, "--instance".into(), "t".into()]
                .into_iter()
                .chain([subcommand.into(), "web".into()])
                .collect()
        };
        assert_eq!(run(arguments("path")), 0);
        assert_eq!(run(arguments("status")), 3, "no pidfile: not running");
        assert_eq!(run(arguments("get")), 1, "no pidfile");
    }
}
