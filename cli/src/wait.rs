//! `pidfile wait SERVICE [--gone] [--timeout DURATION]`: block until the service runs, or no longer runs.

use std::time::{Duration, Instant};

use pidfiles::Status;

use crate::args::WaitArgs;
use crate::common::{Failure, Settings, exit};

/// How often the pidfile is looked at.
const POLL: Duration = Duration::from_millis(20);

pub fn run(settings: &Settings, args: &WaitArgs) -> Result<u8, Failure> {
    let WaitArgs { ref service, gone, timeout } = *args;
    let service = service.as_str();
    settings.path(service)?;
    let deadline = Instant::now() + timeout;
    loop {
        // Running is what proves it runs; gone is what lets the next start through (no pidfile, or a stale one). A
        // lock that proves nothing, or a pidfile that cannot be read, is neither.
        let status = pidfiles::status_with(service, &settings.config);
        // A pid directory that does not exist will not come to hold the pidfile by waiting: most likely a typo.
        if let Err(error @ pidfiles::Error::NoSuchDirectory { .. }) = status {
            return Err(error.into());
        }
        let reached = if gone {
            matches!(status, Ok(Status::NotRunning | Status::Stale { .. }))
        } else {
            matches!(status, Ok(Status::Running { .. }))
        };
        if reached {
            settings.say(&format!("{service} is {}", if gone { "not running" } else { "running" }));
            return Ok(exit::SUCCESS);
        }
        let now = Instant::now();
        if now >= deadline {
            let wanted = if gone { "stop" } else { "start" };
            return Err(Failure::new(exit::FAILURE, format!("{service} did not {wanted} within {timeout:?}")));
        }
        std::thread::sleep(POLL.min(deadline - now));
    }
}
