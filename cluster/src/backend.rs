//! The seam between the lock and the wire: the six etcd calls the lock needs, so that a gRPC client can stand in
//! for the JSON gateway one day, and a fake for etcd in unit tests.

use std::time::Duration;

use crate::Error;

/// One key as etcd stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KeyValue {
    pub key: String,
    pub value: Vec<u8>,
    /// The revision that created the key: the fencing token.
    pub create_revision: u64,
    /// The lease the key is bound to (0: none).
    pub lease: i64,
}

/// What a create-if-absent transaction did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Created {
    /// The key was absent and is now ours, created at this revision.
    Won { create_revision: u64 },
    /// The key exists: this is it.
    Held(KeyValue),
}

/// The etcd calls the lock is made of. Every call either gets an answer from a member with quorum, or fails with
/// [`Error::NoQuorum`] after trying every endpoint.
pub(crate) trait Backend: Send + Sync {
    /// Grants a lease of `ttl` seconds; returns its id and the TTL granted.
    fn grant(&self, ttl: i64) -> Result<(i64, i64), Error>;
    /// Renews the lease once; returns the TTL etcd gives it now (0 or less: the lease is gone). With `everywhere`,
    /// asks every member at once and takes the first answer: for a renewal sent while another waits unanswered,
    /// which may be held by the member it asked.
    fn keepalive(&self, lease: i64, everywhere: bool) -> Result<i64, Error>;
    /// Creates `key` with `value` bound to `lease` if no such key exists.
    fn create_if_absent(&self, key: &str, value: &[u8], lease: i64) -> Result<Created, Error>;
    /// The key `key`, or with `prefix` every key starting with `key`.
    fn range(&self, key: &str, prefix: bool) -> Result<Vec<KeyValue>, Error>;
    /// Revokes the lease, deleting its keys; a lease already gone is no error.
    fn revoke(&self, lease: i64) -> Result<(), Error>;
    /// How long the lease has left (`None`: it is gone).
    fn time_to_live(&self, lease: i64) -> Result<Option<Duration>, Error>;
}
