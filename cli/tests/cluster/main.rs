//! Exactly one instance across a cluster: `pidfile run --cluster` contenders, each as if on a host of its own,
//! against three real etcd members that the scenarios kill, restart and cut off, while their children write to a
//! fenced resource whose log an oracle judges. Each scenario prints what it measured (failover times, kill
//! latencies, partition margins) on stderr: `cargo nextest run -E 'binary(cluster)' --no-capture`.
//!
//! They need etcd: the shared cluster `scripts/test` starts (`PIDFILE_TEST_ETCD`) for the scenarios that leave
//! the members alone, and the etcd binary (`PIDFILE_TEST_ETCD_BIN`, or etcd on the PATH) for the clusters of their
//! own that the others start. Without it they skip, unless `PIDFILE_TESTS_REQUIRE_ETCD` is set.

// The library's test helpers: the record of skipped tests.
#[path = "../../../tests/common/mod.rs"]
mod common;
mod harness;

mod chaos;
mod handover;
mod harness_checks;
mod members;
mod partition;
mod quorum;
mod status;
mod stopped;
