//! `pidfile`: run, stop, check, wait for and list services by their pidfiles.
//!
//! This file holds the command line's definition and the dispatch only; each subcommand lives in a module of its
//! own, over the `pidfile` library.

// The C `main` below replaces Rust's runtime start-up, which would spend a good part of a `pidfile status` run
// finding the main thread's stack (glibc parses /proc/self/maps for it) to report stack overflows nicely.
#![cfg_attr(not(test), no_main)]
// In test builds the harness's entry point replaces ours, so what only ours reaches looks unused there.
#![cfg_attr(test, allow(dead_code))]

mod common;
mod get;
mod list;
mod path;
mod remove;
mod run;
mod status;
mod stop;
mod wait;

use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::common::{Failure, Settings, parse_duration, parse_signal};

/// Run, stop, check, wait for and list services by their pidfiles.
///
/// A service's pidfile is {dir}/{instance}-{service}.pid. The directory and instance come from --dir and
/// --instance, else from PIDFILE_DIR and PIDFILE_INSTANCE, else from the TOML file given by --config or
/// PIDFILE_CONFIG, else LPCONFIG for the instance, else /var/tmp and "default".
#[derive(Debug, Parser)]
#[command(name = "pidfile", version, max_term_width = 110)]
struct Cli {
    /// The directory holding the pidfiles.
    #[arg(long, global = true, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// The instance name, the first part of each pidfile's name.
    #[arg(long, global = true, value_name = "NAME")]
    instance: Option<String>,
    /// A TOML configuration file (keys instance_name and pid_dir), instead of PIDFILE_CONFIG's.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Say what was done, also when all went well.
    #[arg(long, short, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the path of SERVICE's pidfile.
    #[command(after_help = "Example:\n  pidfile --instance staging path web    # /var/tmp/staging-web.pid")]
    Path {
        /// The service.
        service: String,
    },
    /// Print the pid in SERVICE's pidfile: exit 0, 1 when there is no pidfile, 4 when it is corrupt or unreadable.
    #[command(after_help = "Example:\n  kill -HUP \"$(pidfile get web)\"")]
    Get {
        /// The service.
        service: String,
    },
    /// Tell whether SERVICE runs, with the LSB init-script codes: 0 running, 1 dead but the pidfile exists
    /// (stale), 3 not running, 4 unknown (corrupt or unreadable pidfile).
    #[command(after_help = "Example:\n  pidfile status web || echo \"web is down\"\n  pidfile status web --json")]
    Status {
        /// The service.
        service: String,
        /// Print one JSON object: service, instance, path, pid, state, locked, since.
        #[arg(long)]
        json: bool,
    },
    /// Run COMMAND as the one instance of SERVICE.
    ///
    /// By default the command stays as a supervisor: it claims the pidfile, starts COMMAND, writes COMMAND's pid,
    /// forwards SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 to it, waits, removes the pidfile and exits
    /// with COMMAND's status (128+N if it died of signal N). COMMAND inherits the pidfile's lock, so no second
    /// instance can start while it lives, even if the supervisor is killed; if a process COMMAND started still holds
    /// the lock when COMMAND exits, the pidfile is left to it (and said so on stderr). With --exec, the pidfile is claimed
    /// for this process, which then becomes COMMAND, keeping the lock: the pidfile's pid is COMMAND's own, and the
    /// file stays (unlocked, so stale) after COMMAND exits.
    #[command(
        after_help = "Examples:\n  pidfile run web -- /usr/bin/web-server --port 8080\n  pidfile run --exec web -- /usr/bin/web-server --port 8080"
    )]
    Run {
        /// The service.
        service: String,
        /// Become COMMAND instead of supervising it.
        #[arg(long)]
        exec: bool,
        /// The command and its arguments.
        #[arg(required = true, last = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
    /// Stop SERVICE: send SIG to the process its pidfile proves live, wait for it to be gone, then SIGKILL it
    /// (unless --no-kill), and remove the pidfile if it is left stale. Exit 0 when stopped or not running, 1 when
    /// it could not be stopped.
    ///
    /// Refuses to signal pid 1 or this command's own pid, and refuses a pidfile that is world-writable or owned
    /// by a user other than us or root, since anyone could have named any process in it.
    #[command(after_help = "Example:\n  pidfile stop web --signal INT --timeout 30s")]
    Stop {
        /// The service.
        service: String,
        /// The signal to send first, by name (TERM, SIGTERM) or number.
        #[arg(long, default_value = "TERM", value_parser = parse_signal, value_name = "SIG")]
        signal: i32,
        /// How long to wait for the process to be gone (500ms, 20s, 2m).
        #[arg(long, default_value = "20s", value_parser = parse_duration, value_name = "DURATION")]
        timeout: Duration,
        /// Do not send SIGKILL when the timeout passes.
        #[arg(long)]
        no_kill: bool,
    },
    /// Wait until SERVICE runs (or, with --gone, until it does not): exit 0 when reached, 1 on timeout.
    #[command(after_help = "Example:\n  /usr/bin/web-server --daemon && pidfile wait web --timeout 10s")]
    Wait {
        /// The service.
        service: String,
        /// Wait until the service does not run.
        #[arg(long)]
        gone: bool,
        /// How long to wait at most (500ms, 20s, 2m).
        #[arg(long, default_value = "20s", value_parser = parse_duration, value_name = "DURATION")]
        timeout: Duration,
    },
    /// Remove SERVICE's pidfile when it is stale; refuse while the service runs.
    #[command(after_help = "Example:\n  pidfile remove web")]
    Remove {
        /// The service.
        service: String,
    },
    /// List the pidfiles of the instance (or of all instances) in the pid directory: service, pid, state, since.
    #[command(
        after_help = "Examples:\n  pidfile list\n  pidfile list --all-instances --json\n  pidfile list --prometheus > /var/lib/node_exporter/textfile/pidfile.prom"
    )]
    List {
        /// List every instance's pidfiles, not only this instance's.
        #[arg(long)]
        all_instances: bool,
        /// Print a JSON array of objects.
        #[arg(long, conflicts_with = "prometheus")]
        json: bool,
        /// Print the Prometheus text exposition format, for node_exporter's textfile collector.
        #[arg(long)]
        prometheus: bool,
    },
}

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
