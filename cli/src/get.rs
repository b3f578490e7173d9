//! `pidfile get SERVICE`: print the pid; 1 when there is no pidfile, 4 when there is no pid to stand behind (the
//! state is unknown, the file is empty, the service has not written its pid yet, or a stale file was written by
//! someone whose word does not count).

use std::path::Path;

use crate::args::GetArgs;
use crate::common::{self, Failure, Settings, exit};
use crate::state::State;
use crate::status::Report;

pub fn run(settings: &Settings, args: &GetArgs) -> Result<u8, Failure> {
    // The same judgement as `status`, so that a script never gets a pid that `status` would not stand behind.
    let path = settings.path(&args.service)?;
    let report = Report::of(&args.service, &settings.config)?;
    let no_pid = |why: String| Err(Failure::new(exit::UNKNOWN, format!("{} {why}", report.path)));
    match (report.state, report.pid) {
        (State::Running, Some(pid)) => {
            common::print(&format!("{pid}\n"))?;
            Ok(exit::SUCCESS)
        }
        // A stale file's pid is only what it says; it says it in the name of its owner, whose word must count.
        (State::Stale, Some(pid)) => match untrusted_writer(&path) {
            None => {
                common::print(&format!("{pid}\n"))?;
                Ok(exit::SUCCESS)
            }
            Some(why) => no_pid(format!("{why}: its pid ({pid}) is not to be trusted")),
        },
        (State::NotRunning, _) => {
            settings.say(&format!("no pidfile at {}", report.path));
            Ok(exit::FAILURE)
        }
        (State::Running, None) => no_pid("is locked by its service but holds no pid yet".to_owned()),
        (State::Stale, None) => no_pid("is empty: it holds no pid".to_owned()),
        (State::Unknown, _) => {
            Err(Failure::new(exit::UNKNOWN, report.error.unwrap_or_else(|| format!("{} is unknown", report.path))))
        }
    }
}

/// Why anyone but root and us may have written the file at `path`, if they may have.
fn untrusted_writer(path: &Path) -> Option<String> {
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
