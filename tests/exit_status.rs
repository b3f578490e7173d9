//! What a parent sees of a child that holds a pidfile: death by the signal that stopped it, or its own exit code.

mod common;

use std::os::unix::process::ExitStatusExt;

use common::{Running, claimer};

#[test]
fn child_stopped_by_sigterm_is_seen_killed_by_sigterm_and_its_file_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("PIDFILE_DIR", dir.path().to_str().unwrap()), ("PIDFILE_INSTANCE", "exit")];
    let mut child = Running::start(claimer(&env, &["make", "svc", "ready", "sleep", "30"]));
    assert!(child.line().starts_with("won "));
    assert!(child.line().starts_with("ready "));
    let path = dir.path().join("exit-svc.pid");
    assert!(path.exists());
    let status = child.stop(15);
    assert_eq!(status.signal(), Some(15), "{status:?}");
    assert_eq!(status.code(), None);
    assert!(!status.core_dumped());
    assert!(!path.exists());
}

#[test]
fn child_stopped_by_sigint_is_seen_killed_by_sigint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("int.pid");
    let mut child = Running::start(claimer(&[], &["acquire", path.to_str().unwrap(), "sleep", "30"]));
    assert!(child.line().starts_with("won "));
    let status = child.stop(2);
    assert_eq!(status.signal(), Some(2), "{status:?}");
    assert!(!path.exists());
}

#[test]
fn exit_code_is_kept_and_the_file_removed_by_the_exit_hook() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("PIDFILE_DIR", dir.path().to_str().unwrap()), ("PIDFILE_INSTANCE", "exit")];
    let status = claimer(&env, &["make", "svc", "exit", "7"]).status().unwrap();
    assert_eq!(status.code(), Some(7));
    assert!(!dir.path().join("exit-svc.pid").exists());
    // Returning from main with the claim still held removes it too.
    let status = claimer(&env, &["make", "svc"]).status().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(!dir.path().join("exit-svc.pid").exists());
}

#[test]
fn without_signal_handlers_sigterm_kills_at_once_and_leaves_a_stale_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x-quiet.pid");
    let mut child = Running::start(claimer(&[], &["acquire-quiet", path.to_str().unwrap(), "sleep", "30"]));
    assert!(child.line().starts_with("won "));
    let status = child.stop(15);
    assert_eq!(status.signal(), Some(15));
    assert!(path.exists(), "no handler was asked for, so the file stays");
    let config = pidfiles::Config::new(dir.path(), "x");
    assert_eq!(pidfiles::status_with("quiet", &config).unwrap(), pidfiles::Status::Stale { pid: Some(child.pid()) });
    let guard = pidfiles::PidFile::acquire(&path).unwrap();
    assert_eq!(guard.pid(), std::process::id());
}
