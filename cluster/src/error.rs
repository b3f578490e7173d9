//! The one error type of the crate; every message is one line naming the value, key or endpoints it is about.

use std::fmt;

use crate::Holder;

/// What went wrong talking to the cluster or holding a lease.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The cluster URL given to [`Cluster::parse`](crate::Cluster::parse) is not `etcd://HOST:PORT[,HOST:PORT...][/PREFIX]`.
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The name cannot be part of a key: it is empty or contains a `/`.
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Someone else holds the lock ([`Lease::try_acquire`](crate::Lease::try_acquire)).
    Held {
        /// The current holder (boxed to keep `Result<_, Error>` small).
        holder: Box<Holder>,
    },
    /// [`Lease::acquire`](crate::Lease::acquire) waited its whole timeout while someone else held the lock.
    Timeout {
        /// The name waited for.
        name: String,
        /// The holder seen last, if one was seen.
        holder: Option<Box<Holder>>,
    },
    /// No etcd member answered with quorum: every endpoint refused, timed out, or had no leader. Nothing is known
    /// about the lock, and no stale answer is given instead.
    NoQuorum {
        /// The endpoints tried.
        endpoints: Vec<String>,
        /// What the last one tried said.
        detail: String,
    },
    /// The key of a lock is bound to no lease, so that it never expires and no revocation removes it: it was
    /// written by hand (`etcdctl put`), not by a holder ([`Cluster::revoke`](crate::Cluster::revoke)).
    Unleased {
        /// The key.
        key: String,
    },
    /// The lease is lost: its deadline passed, or etcd said it is gone.
    Lost {
        /// The key the lease held.
        key: String,
    },
    /// An etcd member answered something this client does not understand or did not expect.
    Protocol {
        /// The endpoint that answered.
        endpoint: String,
        /// What was unexpected.
        detail: String,
    },
    /// A system call failed (the timers behind [`Lease::lost_fd`](crate::Lease::lost_fd)).
    Io(std::io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidUrl { url, reason } => write!(f, "invalid cluster URL {url:?}: {reason}"),
            Error::InvalidName { name, reason } => write!(f, "invalid cluster lock name {name:?}: {reason}"),
            Error::Held { holder } => write!(f, "{} is held by {holder}", holder.key),
            Error::Timeout { name, holder: Some(holder) } => {
                write!(f, "timed out waiting for {name}: still held by {holder}")
            }
            Error::Timeout { name, holder: None } => write!(f, "timed out waiting for {name}"),
            Error::NoQuorum { endpoints, detail } => {
                write!(f, "no etcd member answered with quorum (tried {}): {detail}", endpoints.join(", "))
            }
            Error::Unleased { key } => write!(
                f,
                "{key} is bound to no lease, so it never expires (written by hand?): delete it (etcdctl del {key})"
            ),
            Error::Lost { key } => write!(f, "the lease on {key} is lost"),
            Error::Protocol { endpoint, detail } => write!(f, "unexpected answer from etcd at {endpoint}: {detail}"),
            Error::Io(error) => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(error) => Some(error),
            _ => None,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(error: std::io::Error) -> Error {
        Error::Io(error)
    }
}
