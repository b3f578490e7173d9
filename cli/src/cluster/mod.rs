//! `--cluster URL`: run, status, list, wait and stop across every host sharing an etcd cluster, over the
//! `pidfiles-cluster` library. A service's cluster lock is named after its pidfile's stem, `{instance}-{service}`,
//! so that the host-local view and the cluster's join.
//!
//! The exit codes: those of the local subcommands, and 75 (EX_TEMPFAIL) from `run` when the lease was lost and
//! COMMAND stopped for it, so that a restart policy puts the host back into the contest.

mod descendants;
mod report;
mod stop;
mod supervise;
mod timing;
mod wait;

use std::path::PathBuf;

use pidfiles_cluster::{Cluster, Error, HolderInfo};

use crate::args::Command;
use crate::common::exit::USAGE;
use crate::common::{Failure, Settings};

/// `run`'s exit code when the lease was lost and COMMAND was stopped for it (EX_TEMPFAIL of sysexits.h).
pub const LEASE_LOST: u8 = 75;

/// Runs `command` over the cluster at `url`, or `None` for the subcommands that stay local (path, get, remove).
pub fn dispatch(settings: &Settings, url: &str, command: &Command) -> Option<Result<u8, Failure>> {
    let cluster = || Cluster::parse(url).map_err(|error| failure(USAGE, error));
    let result = match command {
        Command::Run(args) => cluster().and_then(|cluster| supervise::run(settings, &cluster, args)),
        Command::Status(args) => cluster().and_then(|cluster| report::status(settings, &cluster, args)),
        Command::List(args) => cluster().and_then(|cluster| report::list(settings, &cluster, args)),
        Command::Wait(args) => cluster().and_then(|cluster| wait::run(settings, &cluster, args)),
        Command::Stop(args) => cluster().and_then(|cluster| stop::run(settings, &cluster, args)),
        _ => return None,
    };
    Some(result)
}

/// The pidfile of `service` and the name of its cluster lock, the pidfile's stem (`{instance}-{service}`).
fn pidfile_and_name(settings: &Settings, service: &str) -> Result<(PathBuf, String), Failure> {
    let path = settings.path(service)?;
    let name = path.file_stem().and_then(|stem| stem.to_str()).map(str::to_owned);
    let name =
        name.ok_or_else(|| Failure::new(USAGE, format!("{} has no name to lock in the cluster", path.display())))?;
    Ok((path, name))
}

/// A library error as a failure with exit code `code`; a bad URL or lock name is a usage error whatever `code`.
fn failure(code: u8, error: Error) -> Failure {
    let code = if matches!(error, Error::InvalidUrl { .. } | Error::InvalidName { .. }) { USAGE } else { code };
    Failure::new(code, error.to_string())
}

/// This host's name as holders record it, to tell a holder on this host from one elsewhere.
fn this_host() -> String {
    HolderInfo::of_this_process("").host
}
