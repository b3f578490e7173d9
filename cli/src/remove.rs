//! `pidfile remove SERVICE`: remove a stale pidfile, never a live one.

use pidfile::Status;

use crate::common::{Failure, Settings, USAGE};

pub fn run(settings: &Settings, service: &str) -> Result<u8, Failure> {
    let path = settings.path(service)?;
    match pidfile::status_with(service, &settings.config) {
        Ok(Status::NotRunning) => {
            settings.say(&format!("no pidfile at {}", path.display()));
            return Ok(0);
        }
        Ok(Status::Running { pid, .. }) => {
            let pid = pid.map_or_else(|| "pid unknown".to_owned(), |pid| format!("pid {pid}"));
            return Err(Failure::new(
                1,
                format!(
                    "{service} is running ({pid}); not removing {}: a second instance could start beside it",
                    path.display()
                ),
            ));
        }
        // Stale, or not holding a pid at all (corrupt): in both cases no live process stands behind it.
        Ok(_) | Err(pidfile::Error::Corrupt { .. }) => {}
        Err(error @ pidfile::Error::InvalidName { .. }) => return Err(Failure::new(USAGE, error.to_string())),
        Err(error) => return Err(error.into()),
    }
    pidfile::remove_pidfile_with(service, &settings.config)?;
    settings.say(&format!("removed {}", path.display()));
    Ok(0)
}
