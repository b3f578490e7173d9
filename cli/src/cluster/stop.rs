//! `pidfile stop --cluster URL SERVICE [--revoke]`: stop the holder of SERVICE's cluster lease. On this host, the
//! local pidfile proves which process that is, and it is stopped as a local `stop` does; its supervisor then
//! revokes the lease. On another host, only `--revoke` acts: it revokes the holder's lease, and that host's
//! supervisor, learning of it at its next renewal, stops its command.

use std::path::Path;
use std::time::{Duration, Instant};

use pidfiles::Status;
use pidfiles_cluster::{Cluster, Options};

use super::{pidfile_and_name, this_host};
use crate::args::StopArgs;
use crate::common::{Failure, Settings};

pub fn run(settings: &Settings, cluster: &Cluster, args: &StopArgs) -> Result<u8, Failure> {
    let service = args.service.as_str();
    let (path, name) = pidfile_and_name(settings, service)?;
    let options = Options::default();
    let cannot =
        |error: pidfiles_cluster::Error| Failure::new(1, format!("cannot stop {service} in the cluster: {error}"));
    let Some(holder) = cluster.holder(&name, &options).map_err(cannot)? else {
        settings.say(&format!("{service} runs on no host of the cluster"));
        return Ok(0);
    };
    let here = this_host();
    match holder.info.as_ref().filter(|info| info.host == here) {
        Some(info) => match proven_command(&path, info.pid) {
            Ok(pid) => {
                settings.say(&format!("{service} holds the cluster lease {name} here (pid {pid}): stopping it"));
                let started = Instant::now();
                let code = crate::stop::run(settings, args)?;
                if !released(cluster, &name, holder.lease, &options, args.timeout.saturating_sub(started.elapsed())) {
                    eprintln!(
                        "pidfile: {service} stopped, but its cluster lease {name} is still held: it expires by itself"
                    );
                }
                return Ok(code);
            }
            Err(why) if !args.revoke => {
                return Err(Failure::new(
                    1,
                    format!(
                        "the cluster lease {name} is held on this host by {holder}, but {why}: not stopping anything (--revoke revokes the lease)"
                    ),
                ));
            }
            Err(_) => {}
        },
        None if !args.revoke => {
            return Err(Failure::new(
                1,
                format!(
                    "{service} runs on {holder}, not on this host: stop it there, or add --revoke to revoke its lease"
                ),
            ));
        }
        None => {}
    }
    match cluster.revoke(&name, &options).map_err(cannot)? {
        Some(revoked) => settings.say(&format!(
            "revoked the cluster lease {name} of {revoked}: its supervisor stops its command at its next renewal"
        )),
        None => settings.say(&format!("the cluster lease {name} was free already")),
    }
    Ok(0)
}

/// The pid of the command that the supervisor `supervisor` runs, when the local pidfile at `path` proves it: the
/// pidfile is locked and names a child of the supervisor. Otherwise why not.
fn proven_command(path: &Path, supervisor: u32) -> Result<u32, String> {
    match pidfiles::status_at(path) {
        Ok(Status::Running { pid: Some(pid), locked: true }) if parent_of(pid) == Some(supervisor) => Ok(pid),
        Ok(Status::Running { pid: Some(pid), locked: true }) => {
            Err(format!("{} names pid {pid}, which pid {supervisor} did not start", path.display()))
        }
        Ok(_) => Err(format!("{} does not prove a running process", path.display())),
        Err(error) => Err(error.to_string()),
    }
}

/// The parent of process `pid`, from /proc.
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid ...`, where comm may hold spaces and parentheses: the fields start after the last `)`.
    let fields = &stat[stat.rfind(')')? + 1..];
    fields.split_whitespace().nth(1)?.parse().ok()
}

/// Waits up to `timeout` for the lease `lease` to be gone from `name`; whether it went.
fn released(cluster: &Cluster, name: &str, lease: i64, options: &Options, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(holder) = cluster.holder(name, options) {
            if holder.is_none_or(|holder| holder.lease != lease) {
                return true;
            }
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        std::thread::sleep(options.poll_every.min(deadline - now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_is_read_from_proc() {
        assert_eq!(
            parent_of(std::process::id()),
            rustix::process::getppid().map(|pid| pid.as_raw_nonzero().get() as u32)
        );
        assert_eq!(parent_of(u32::MAX), None);
    }
}
