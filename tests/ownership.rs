//! Files of other users in a shared, sticky directory like the spec's `/var/tmp`. These tests run the claimer as
//! the unprivileged user `nobody` (with `setpriv`), so they need root; without it they say so and do nothing.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::claimer_path;

/// Runs the claimer as `nobody`, with the given steps; returns its output lines.
fn as_nobody(steps: &[&str]) -> Vec<String> {
    let output = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(claimer_path())
        .args(steps)
        .env_clear()
        .output()
        .expect("run setpriv (util-linux)");
    String::from_utf8(output.stdout).unwrap().lines().map(str::to_owned).collect()
}

/// A world-writable directory with the sticky bit, as `/var/tmp` is.
fn sticky_dir() -> Option<tempfile::TempDir> {
    if !common::runs_as_root("to act as another user") {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    Some(dir)
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn stale_file_of_root_that_we_may_not_replace_is_an_error_naming_the_owner() {
    let Some(dir) = sticky_dir() else { return };
    let path = dir.path().join("root-owned.pid");
    let content = format!("{}\n", common::dead_pid());
    std::fs::write(&path, &content).unwrap();
    let lines = as_nobody(&["acquire", arg(&path)]);
    assert_eq!(
        lines,
        [format!("error PID file {} belongs to user 0, not to us, and cannot be replaced", path.display())]
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), content, "root's file was changed");
}

#[test]
fn root_owned_file_naming_a_live_process_is_believed_by_other_users() {
    let Some(dir) = sticky_dir() else { return };
    let path = dir.path().join("root-live.pid");
    std::fs::write(&path, "1\n").unwrap();
    assert_eq!(as_nobody(&["acquire", arg(&path)]), ["lost 1"]);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "1\n");
}

#[test]
fn file_planted_by_another_user_does_not_block_root_forever() {
    let Some(dir) = sticky_dir() else { return };
    let path = dir.path().join("planted.pid");
    // nobody plants a file naming pid 1, which lives, so that a naive reader would think the service runs.
    let status = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c", "echo 1 > \"$0\"; chmod 666 \"$0\""])
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "1\n");
    let planted = std::fs::File::open(&path).unwrap();
    let guard = pidfiles::PidFile::acquire(&path).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{}\n", std::process::id()));
    let mut old = String::new();
    std::io::Read::read_to_string(&mut &planted, &mut old).unwrap();
    assert_eq!(old, "1\n", "the planted file was written into");
    drop(guard);
}

#[test]
fn symlink_planted_by_another_user_is_not_followed() {
    let Some(dir) = sticky_dir() else { return };
    let ours = dir.path().join("ours");
    std::fs::write(&ours, "precious\n").unwrap();
    let path = dir.path().join("link.pid");
    // nobody plants the link in the shared directory.
    let status = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "ln", "-s"])
        .args([&ours, &path])
        .status()
        .unwrap();
    assert!(status.success());
    let error = pidfiles::PidFile::acquire(&path).unwrap_err();
    assert!(matches!(&error, pidfiles::Error::NotAPidFile { found, .. } if found == "a symbolic link"), "{error}");
    assert_eq!(std::fs::read_to_string(&ours).unwrap(), "precious\n");
}

#[test]
fn world_writable_directory_without_the_sticky_bit_is_refused_for_claims() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let path = dir.path().join("open-dir.pid");
    let error = pidfiles::PidFile::acquire(&path).unwrap_err();
    assert!(
        matches!(&error, pidfiles::Error::InsecureDirectory { dir: found, .. } if found == dir.path()),
        "{error:?}"
    );
    assert!(error.to_string().contains("other users may write to it and it lacks the sticky bit"), "{error}");
    assert!(!path.exists(), "nothing may be created there");
    // Reading stays possible, and the same directory with the sticky bit is fine.
    assert_eq!(
        pidfiles::status_with("open", &pidfiles::Config::new(dir.path(), "x")).unwrap(),
        pidfiles::Status::NotRunning
    );
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    pidfiles::PidFile::acquire(&path).unwrap().release().unwrap();
}

/// Runs a shell command as `nobody`, to plant something in the shared directory.
fn plant(script: &str, path: &Path) {
    let status = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c", script])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success(), "planting with {script:?} failed");
}

/// Every operation on a pidfile path where something hostile stands: the errors must name what was found, and the
/// thing must be left as it was, without a hang.
fn every_operation_refuses(dir: &Path, found: &str) {
    let errors = common::errors_of_every_operation("svc", &pidfiles::Config::new(dir, "t"));
    common::assert_refused_as(&errors, found);
}

#[test]
fn fifo_planted_by_another_user_is_refused_without_blocking() {
    let Some(dir) = sticky_dir() else { return };
    let path = dir.path().join("t-svc.pid");
    plant("mkfifo -m 666 \"$0\"", &path);
    every_operation_refuses(dir.path(), "a FIFO");
    assert!(std::os::unix::fs::FileTypeExt::is_fifo(&std::fs::symlink_metadata(&path).unwrap().file_type()));
}

#[test]
fn hard_link_planted_by_another_user_is_refused_and_left_alone() {
    let Some(dir) = sticky_dir() else { return };
    let path = dir.path().join("t-svc.pid");
    plant("echo 1 > \"$0.orig\" && ln \"$0.orig\" \"$0\"", &path);
    every_operation_refuses(dir.path(), "a file with 2 hard links");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "1\n");
}

#[test]
fn file_planted_by_another_user_naming_our_own_pid_or_with_mode_0666_is_replaced_not_believed() {
    let Some(dir) = sticky_dir() else { return };
    let config = pidfiles::Config::new(dir.path(), "t");
    let path = dir.path().join("t-svc.pid");
    for content in [format!("{}", std::process::id()), "1".to_owned()] {
        plant(&format!("echo {content} > \"$0\"; chmod 666 \"$0\""), &path);
        let planted = std::fs::File::open(&path).unwrap();
        assert_eq!(pidfiles::get_pid_with("svc", &config).unwrap(), Some(content.parse().unwrap()));
        // Its word is not taken: not running, whatever it names.
        assert_eq!(
            pidfiles::status_with("svc", &config).unwrap(),
            pidfiles::Status::Stale { pid: Some(content.parse().unwrap()) }
        );
        let guard = pidfiles::PidFile::acquire(&path).unwrap();
        let mut old = String::new();
        std::io::Read::read_to_string(&mut &planted, &mut old).unwrap();
        assert_eq!(old, format!("{content}\n"), "the planted file was written into");
        assert_eq!(std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&path).unwrap()), 0);
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o002, 0, "our file is world-writable");
        guard.release().unwrap();
    }
}
