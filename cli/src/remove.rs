//! `pidfile remove SERVICE`: remove a stale pidfile, never a live one.

use crate::args::RemoveArgs;
use crate::common::{Failure, Settings, exit};

pub fn run(settings: &Settings, args: &RemoveArgs) -> Result<u8, Failure> {
    let service = args.service.as_str();
    let path = settings.path(service)?;
    let existed = std::fs::symlink_metadata(&path).is_ok();
    match pidfiles::remove_at(&path) {
        Ok(()) if existed => settings.say(&format!("removed {}", path.display())),
        Ok(()) => settings.say(&format!("no pidfile at {}", path.display())),
        Err(pidfiles::Error::InUse { pid, .. }) => {
            let pid = pid.map_or_else(|| "pid unknown".to_owned(), |pid| format!("pid {pid}"));
            return Err(Failure::new(
                exit::FAILURE,
                format!(
                    "{service} is running ({pid}); not removing {}: a second instance could start beside it",
                    path.display()
                ),
            ));
        }
        Err(error) => return Err(error.into()),
    }
    Ok(exit::SUCCESS)
}
