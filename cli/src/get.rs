//! `pidfile get SERVICE`: print the pid; 1 when there is no pidfile, 4 when it is corrupt or unreadable.

use crate::common::{Failure, Settings, USAGE};

/// The exit code for a pidfile that cannot be read or does not hold a pid.
const UNREADABLE: u8 = 4;

pub fn run(settings: &Settings, service: &str) -> Result<u8, Failure> {
    match pidfile::get_pid_with(service, &settings.config) {
        Ok(Some(pid)) => {
            println!("{pid}");
            Ok(0)
        }
        Ok(None) => {
            settings.say(&format!("no pidfile at {}", settings.path(service)?.display()));
            Ok(1)
        }
        Err(error @ pidfile::Error::InvalidName { .. }) => Err(Failure::new(USAGE, error.to_string())),
        Err(error) => Err(Failure::new(UNREADABLE, error.to_string())),
    }
}
