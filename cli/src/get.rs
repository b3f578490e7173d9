//! `pidfile get SERVICE`: print the pid; 1 when there is no pidfile, 4 when it is corrupt, unreadable, or locked in
//! a way that proves nothing of the pid it names.

use pidfiles::Status;

use crate::args::GetArgs;
use crate::common::{Failure, Settings, USAGE, locked_by};

/// The exit code for a pidfile that cannot be read, does not hold a pid, or whose pid is not to be trusted.
const UNREADABLE: u8 = 4;

pub fn run(settings: &Settings, args: &GetArgs) -> Result<u8, Failure> {
    let service = args.service.as_str();
    let path = settings.path(service)?;
    // The same judgement as `status`, so that a script never gets a pid that `status` would not stand behind.
    match pidfiles::status_at(&path) {
        Ok(Status::Running { pid: Some(pid), .. }) => {
            println!("{pid}");
            Ok(0)
        }
        // A stale file's pid is only what it says; it says it in the name of its owner, whose word must count.
        Ok(Status::Stale { pid: Some(pid) }) => match untrusted_writer(&path) {
            None => {
                println!("{pid}");
                Ok(0)
            }
            Some(why) => {
                Err(Failure::new(UNREADABLE, format!("{} {why}: its pid ({pid}) is not to be trusted", path.display())))
            }
        },
        Ok(Status::NotRunning) => {
            settings.say(&format!("no pidfile at {}", path.display()));
            Ok(1)
        }
        Ok(Status::Running { pid: None, .. }) => {
            Err(Failure::new(UNREADABLE, format!("{} is locked by its service but holds no pid yet", path.display())))
        }
        Ok(Status::Stale { pid: None }) => {
            Err(Failure::new(UNREADABLE, format!("{} is empty: it holds no pid", path.display())))
        }
        Ok(Status::Unproven { holder, doubt, .. }) => Err(Failure::new(
            UNREADABLE,
            format!("{} is {}: its pid is not to be trusted", path.display(), locked_by(holder, doubt)),
        )),
        Err(error @ pidfiles::Error::InvalidName { .. }) => Err(Failure::new(USAGE, error.to_string())),
        Err(error) => Err(Failure::new(UNREADABLE, error.to_string())),
    }
}

/// Why anyone but root and us may have written the file at `path`, if they may have.
fn untrusted_writer(path: &std::path::Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(path).ok()?;
    let me = rustix::process::geteuid().as_raw();
    if meta.mode() & 0o002 != 0 {
        Some("may be written by every user".to_owned())
    } else if meta.uid() != 0 && meta.uid() != me {
        Some(format!("belongs to user {}, not to root or to us", meta.uid()))
    } else {
        None
    }
}
