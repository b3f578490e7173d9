//! `pidfile wait SERVICE [--gone] [--timeout DURATION]`: block until the service runs, or no longer runs.

use std::time::{Duration, Instant};

use pidfile::Status;

use crate::common::{Failure, Settings};

/// How often the pidfile is looked at.
const POLL: Duration = Duration::from_millis(20);

pub fn run(settings: &Settings, service: &str, gone: bool, timeout: Duration) -> Result<u8, Failure> {
    settings.path(service)?;
    let deadline = Instant::now() + timeout;
    loop {
        // A pidfile that cannot be read does not show a running service.
        let running = matches!(
            pidfile::status_with(service, &settings.config),
            Ok(Status::Running { .. })
        );
        if running != gone {
            settings.say(&format!(
                "{service} is {}",
                if running { "running" } else { "not running" }
            ));
            return Ok(0);
        }
        let now = Instant::now();
        if now >= deadline {
            let wanted = if gone { "stop" } else { "start" };
            return Err(Failure::new(
                1,
                format!("{service} did not {wanted} within {timeout:?}"),
            ));
        }
        std::thread::sleep(POLL.min(deadline - now));
    }
}
