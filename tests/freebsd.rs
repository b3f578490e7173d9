//! The five cases of FreeBSD's pidfile(3) test suite: uncontested, self, contested, inherited, relative path.

mod common;

use common::{Running, claimer};
use pidfiles::{Error, PidFile};

#[test]
fn uncontested_claim_writes_our_pid_and_removes_the_file_on_drop() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("uncontested.pid");
    let guard = PidFile::acquire(&path).unwrap();
    assert_eq!(guard.path(), path);
    assert_eq!(guard.pid(), std::process::id());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{}\n", std::process::id()));
    drop(guard);
    assert!(!path.exists());
}

#[test]
fn self_second_claim_in_the_same_process_fails_and_reports_our_pid() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("self.pid");
    let guard = PidFile::builder().signal_handlers(false).acquire(&path).unwrap();
    match PidFile::acquire(&path) {
        Err(Error::AlreadyRunning { pid, path: reported }) => {
            assert_eq!(pid, Some(std::process::id()));
            assert_eq!(reported, path);
        }
        other => panic!("expected AlreadyRunning, got {other:?}"),
    }
    // The failed claim did not disturb the file.
    assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{}\n", std::process::id()));
    guard.release().unwrap();
    assert!(!path.exists());
}

#[test]
fn contested_claim_reports_the_holding_childs_pid() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("contested.pid");
    let mut holder = Running::start(claimer(&[], &["acquire", path.to_str().unwrap(), "wait-stdin"]));
    assert_eq!(holder.line(), format!("won {}", holder.pid()));
    match PidFile::acquire(&path) {
        Err(Error::AlreadyRunning { pid, .. }) => assert_eq!(pid, Some(holder.pid())),
        other => panic!("expected AlreadyRunning, got {other:?}"),
    }
    assert!(holder.finish().success());
    assert!(!path.exists());
    PidFile::acquire(&path).unwrap().release().unwrap();
}

#[test]
fn inherited_lock_blocks_claims_and_a_forked_child_never_removes_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inherited.pid");
    let path_arg = path.to_str().unwrap();
    // The holder forks a child that tries to claim the same file and exits normally (running exit hooks), then a
    // child that drops its copies of the guards and exits, then a child that just keeps the inherited descriptor.
    let mut holder =
        Running::start(claimer(&[], &["acquire", path_arg, "fork-acquire", path_arg, "fork-hold", "wait-stdin"]));
    let holder_pid = holder.pid();
    assert_eq!(holder.line(), format!("won {holder_pid}"));
    assert_eq!(holder.line(), format!("child lost {holder_pid}"));
    let grandchild: i32 = holder.line().strip_prefix("child ").unwrap().parse().unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{holder_pid}\n"), "the child removed the file");

    // Killed outright, the holder leaves its file; the child that inherited the lock keeps it held. The file names
    // the dead holder, so the lock keeps the claim out but proves nothing of that pid; the child is named.
    holder.stop(9);
    match PidFile::acquire(&path) {
        Err(Error::Blocked { holder: Some(found), doubt: pidfiles::Doubt::NotNamed, .. }) => {
            assert_eq!(found.pid as i32, grandchild)
        }
        other => panic!("expected Blocked while the child holds the lock, got {other:?}"),
    }
    assert!(
        matches!(pidfiles::status_at(&path), Ok(pidfiles::Status::Unproven { pid: Some(pid), .. }) if pid == holder_pid),
        "{:?}",
        pidfiles::status_at(&path)
    );
    let grandchild = rustix::process::Pid::from_raw(grandchild).unwrap();
    rustix::process::kill_process(grandchild, rustix::process::Signal::KILL).unwrap();
    common::eventually("the inheriting child is gone", || {
        std::fs::read_to_string(format!("/proc/{}/stat", grandchild.as_raw_pid()))
            .map_or(true, |stat| stat.contains(") Z"))
    });
    // Now the file is stale and the next claim takes it over.
    common::eventually("the stale file is taken over", || PidFile::acquire(&path).map(drop).is_ok());
}

#[test]
fn relative_path_is_kept_relative_to_the_directory_of_the_claim() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let mut command = claimer(
        &[],
        &["acquire", "relative.pid", "cd", elsewhere.path().to_str().unwrap(), "ready", "wait-stdin", "release"],
    );
    command.current_dir(dir.path());
    let mut holder = Running::start(command);
    assert_eq!(holder.line(), format!("won {}", holder.pid()));
    assert_eq!(holder.line(), format!("ready {}", holder.pid()));
    let path = dir.path().join("relative.pid");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{}\n", holder.pid()));
    assert!(holder.finish().success());
    assert!(!path.exists(), "the file was not removed after the change of directory");
    assert!(!elsewhere.path().join("relative.pid").exists());
}

#[test]
fn supervisor_can_write_its_childs_pid_and_readers_believe_it_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = pidfiles::Config::new(dir.path(), "sup");
    let path = pidfiles::pidfile_path_with("svc", &config).unwrap();
    let mut guard = PidFile::builder().signal_handlers(false).acquire(&path).unwrap();
    let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
    guard.write_pid(child.id()).unwrap();
    assert_eq!(guard.pid(), child.id());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{}\n", child.id()));
    let status = pidfiles::status_with("svc", &config).unwrap();
    assert_eq!(status, pidfiles::Status::Running { pid: Some(child.id()), locked: true });
    assert!(matches!(guard.write_pid(0), Err(Error::InvalidName { .. })));
    child.kill().unwrap();
    child.wait().unwrap();
    guard.release().unwrap();
    assert!(!path.exists());
}
