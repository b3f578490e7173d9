//! `pidfile wait --cluster URL SERVICE [--gone]`: block until some host holds SERVICE's cluster lease, or none does.

use std::time::{Duration, Instant};

use pidfiles_cluster::{Cluster, Options};

use super::pidfile_and_name;
use crate::args::WaitArgs;
use crate::common::{Failure, Settings};

/// The shortest time one etcd member is given to answer, near the end of the wait.
const MIN_REQUEST_TIMEOUT: Duration = Duration::from_millis(100);

pub fn run(settings: &Settings, cluster: &Cluster, args: &WaitArgs) -> Result<u8, Failure> {
    let WaitArgs { ref service, gone, timeout, .. } = *args;
    let (_, name) = pidfile_and_name(settings, service)?;
    let mut options = Options::default();
    let deadline = Instant::now() + timeout;
    let members = u32::try_from(cluster.endpoints().len()).unwrap_or(u32::MAX).max(1);
    loop {
        // A look that tries every member in turn must not overrun the timeout by more than a little.
        let left = deadline.saturating_duration_since(Instant::now());
        options.request_timeout = Options::default().request_timeout.min(left / members).max(MIN_REQUEST_TIMEOUT);
        // No quorum is neither held nor free: it is waited out, and named if the wait ends on it.
        let (reached, last) = match cluster.holder(&name, &options) {
            Ok(Some(holder)) => (!gone, format!("its lease {name} is held by {holder}")),
            Ok(None) => (gone, format!("its lease {name} is free")),
            Err(error) => (false, error.to_string()),
        };
        if reached {
            settings.say(&format!("{service} {}", if gone { "runs on no host" } else { "runs" }));
            return Ok(0);
        }
        let now = Instant::now();
        if now >= deadline {
            let wanted = if gone { "stop" } else { "start" };
            return Err(Failure::new(
                1,
                format!("{service} did not {wanted} in the cluster within {timeout:?}: {last}"),
            ));
        }
        std::thread::sleep(options.poll_every.min(deadline - now));
    }
}
