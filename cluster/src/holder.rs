//! Who holds a lock: what the holder wrote about itself, and what etcd knows (token, lease).

use std::fmt;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

/// What a holder records about itself in the key's value, as JSON. Informational: nothing trusts it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct HolderInfo {
    /// The holder's host name (its `uname` node name).
    pub host: String,
    /// The holder's process id on that host.
    pub pid: u32,
    /// The command it runs.
    pub command: String,
    /// When it took the lock (or rather, made this record just before), in seconds since the Unix epoch.
    pub started: u64,
}

impl HolderInfo {
    /// A record of this process running `command`, started now.
    pub fn of_this_process(command: &str) -> HolderInfo {
        let host = rustix::system::uname().nodename().to_string_lossy().into_owned();
        let started = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |since| since.as_secs());
        HolderInfo { host, pid: std::process::id(), command: command.to_owned(), started }
    }
}

/// The current holder of a lock, as etcd knows it.
#[derive(Clone, Debug)]
pub struct Holder {
    /// The lock's name (the key without the cluster's prefix).
    pub name: String,
    /// The key in etcd.
    pub key: String,
    /// What the holder wrote about itself; `None` if the value is not such a record.
    pub info: Option<HolderInfo>,
    /// The fencing token: the key's create revision, strictly increasing across holders.
    pub token: u64,
    /// The etcd lease the key is bound to.
    pub lease: i64,
    /// How long the lease has left by etcd's count, when it was asked (`None` when not asked or not known).
    pub ttl_left: Option<Duration>,
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.info {
            Some(info) => write!(f, "host {} pid {} (token {})", info.host, info.pid, self.token),
            None => write!(f, "an unknown holder (token {}, lease {:x})", self.token, self.lease),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holder_is_shown_by_host_pid_and_token() {
        let info = HolderInfo { host: "h1".into(), pid: 42, command: "sleep".into(), started: 0 };
        let holder = Holder {
            name: "a-b".into(),
            key: "/pidfile/a-b".into(),
            info: Some(info),
            token: 7,
            lease: 1,
            ttl_left: None,
        };
        assert_eq!(holder.to_string(), "host h1 pid 42 (token 7)");
    }

    #[test]
    fn this_process_is_recorded_with_its_pid() {
        let info = HolderInfo::of_this_process("x");
        assert_eq!(info.pid, std::process::id());
        assert!(!info.host.is_empty());
    }
}
