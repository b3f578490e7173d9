//! Another user, `nobody`, attacks root's pidfiles: forged locks through read-only descriptors, shared and record
//! locks, planted files, pid directories of their own, reused pids. None of it may pass for proof that a service
//! runs, make a removal delete what it must not, or let a claim take what it must not. These tests act as
//! `nobody` with `setpriv`, so they need root; without it they say so and do nothing.

mod common;
#[path = "common/forger.rs"]
mod forger;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{Bystander, backdate_an_hour, process_lives, runs_as_root};
use forger::{Forger, Lock, NOBODY};
use pidfiles::{Config, Doubt, Error, Holder, PidFile, Status, get_pid_at, remove_at, remove_pidfile_with, status_at};

/// A directory of root's with `mode`, which `nobody` can reach, and the path of the pidfile of the service `web`
/// of the instance `t` in it. `None` without root.
fn root_dir(mode: u32) -> Option<(tempfile::TempDir, PathBuf)> {
    if !runs_as_root("to act as the user nobody") {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(mode)).unwrap();
    let path = dir.path().join("t-web.pid");
    Some((dir, path))
}

fn config(dir: &tempfile::TempDir) -> Config {
    Config::new(dir.path(), "t")
}

/// Writes root's pidfile naming `pid`, readable by everyone, as if it had been written an hour ago.
fn stale_pidfile(path: &Path, pid: u32) {
    std::fs::write(path, format!("{pid}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
    backdate_an_hour(path);
}

fn holder(forger: &Forger) -> Option<Holder> {
    Some(Holder { pid: forger.pid(), uid: Some(NOBODY) })
}

/// Asserts that `result` is `Error::Blocked` by `forger` for `doubt`, and that its message names the user.
fn assert_blocked<T: std::fmt::Debug>(result: Result<T, Error>, forger: &Forger, doubt: Doubt, what: &str) {
    match result {
        Err(error @ Error::Blocked { .. }) => {
            let Error::Blocked { holder: found, doubt: why, .. } = &error else { unreachable!() };
            assert_eq!((*found, *why), (holder(forger), doubt), "{what}: {error}");
            assert!(error.to_string().contains("user 65534"), "{what}: {error}");
        }
        other => panic!("{what}: expected Blocked, got {other:?}"),
    }
}

#[test]
fn forged_exclusive_lock_through_a_read_only_descriptor_is_no_proof_and_blocks_claims_and_removals() {
    let Some((dir, path)) = root_dir(0o755) else { return };
    let bystander = Bystander::start();
    stale_pidfile(&path, bystander.pid());
    assert_eq!(status_at(&path).unwrap(), Status::Stale { pid: Some(bystander.pid()) });

    let mut forger = Forger::start(&path, "r", "", Lock::FlockExclusive);
    assert_eq!(
        status_at(&path).unwrap(),
        Status::Unproven { pid: Some(bystander.pid()), holder: holder(&forger), doubt: Doubt::ReadOnly }
    );
    assert_blocked(PidFile::acquire(&path), &forger, Doubt::ReadOnly, "acquire");
    assert_blocked(remove_pidfile_with("web", &config(&dir)), &forger, Doubt::ReadOnly, "remove_pidfile_with");
    assert_blocked(remove_at(&path), &forger, Doubt::ReadOnly, "remove_at");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        format!("{}\n", bystander.pid()),
        "the pidfile was removed or written"
    );
    assert!(process_lives(bystander.pid()));
    assert!(forger.lives());
}

#[test]
fn shared_lock_of_another_user_is_no_proof_and_blocks_a_claim() {
    let Some((dir, path)) = root_dir(0o755) else { return };
    let bystander = Bystander::start();
    stale_pidfile(&path, bystander.pid());

    let forger = Forger::start(&path, "r", "", Lock::FlockShared);
    assert_eq!(
        status_at(&path).unwrap(),
        Status::Unproven { pid: Some(bystander.pid()), holder: holder(&forger), doubt: Doubt::Shared }
    );
    assert_blocked(PidFile::acquire(&path), &forger, Doubt::Shared, "acquire");
    assert_blocked(remove_pidfile_with("web", &config(&dir)), &forger, Doubt::Shared, "remove_pidfile_with");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{}\n", bystander.pid()));
}

#[test]
fn posix_and_ofd_read_locks_of_another_user_leave_a_stale_pidfile_stale_and_claimable() {
    for lock in [Lock::PosixRead, Lock::OfdRead] {
        let Some((_dir, path)) = root_dir(0o755) else { return };
        let dead = common::dead_pid();
        stale_pidfile(&path, dead);

        let mut forger = Forger::start(&path, "r", "", lock);
        assert_eq!(status_at(&path).unwrap(), Status::Stale { pid: Some(dead) }, "{lock:?}");
        let guard = PidFile::builder()
            .signal_handlers(false)
            .acquire(&path)
            .unwrap_or_else(|error| panic!("{lock:?}: {error}"));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{}\n", std::process::id()), "{lock:?}");
        assert_eq!(
            status_at(&path).unwrap(),
            Status::Running { pid: Some(std::process::id()), locked: true },
            "{lock:?}"
        );
        assert!(forger.lives(), "{lock:?}: the forger lost its lock");
        guard.release().unwrap();
    }
}

/// `nobody` creates `t-web.pid` in the shared directory holding `content`, and locks it exclusively through the
/// writable descriptor it created it with.
fn planted(path: &Path, content: &str) -> Forger {
    Forger::start(path, "w", content, Lock::FlockExclusive)
}

#[test]
fn file_planted_and_locked_by_another_user_naming_pid_1_is_no_proof_and_blocks_a_claim() {
    let Some((_dir, path)) = root_dir(0o1777) else { return };
    let forger = planted(&path, "1\n");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "1\n");

    assert_eq!(
        status_at(&path).unwrap(),
        Status::Unproven { pid: Some(1), holder: holder(&forger), doubt: Doubt::NotNamed }
    );
    assert_blocked(PidFile::acquire(&path), &forger, Doubt::NotNamed, "acquire");
    // As documented, the pid of a file locked in a way that proves nothing is still given.
    assert_eq!(get_pid_at(&path).unwrap(), Some(1));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "1\n");
}

#[test]
fn empty_file_planted_and_locked_by_another_user_blocks_a_claim_and_gives_no_pid() {
    let Some((_dir, path)) = root_dir(0o1777) else { return };
    let forger = planted(&path, "");
    // Held as a service holds it, but in a file of a user who owns neither it by right nor the shared directory.
    let status = status_at(&path).unwrap();
    assert!(
        matches!(status, Status::Unproven { pid: None, holder, doubt: Doubt::ForeignOwner { uid: 65534 } }
            if holder == self::holder(&forger)),
        "{status:?}"
    );
    match PidFile::acquire(&path) {
        Err(Error::Blocked { holder, doubt: Doubt::ForeignOwner { uid: 65534 }, .. })
            if holder == self::holder(&forger) => {}
        other => panic!("expected the claim to be blocked by the squatter, got {other:?}"),
    }
    assert!(matches!(get_pid_at(&path), Err(Error::Corrupt { .. })));
    assert_eq!(std::fs::read(&path).unwrap(), b"");
}

/// A directory owned by `nobody`, inside one of root's.
fn nobody_dir(root: &tempfile::TempDir) -> PathBuf {
    let dir = root.path().join("nobodys");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(&dir, Some(NOBODY), Some(NOBODY)).unwrap();
    dir
}

fn assert_untrusted(result: Result<(), Error>, named: &Path, what: &str) {
    match result {
        Err(error @ Error::UntrustedDirectory { .. }) => {
            let Error::UntrustedDirectory { dir, uid } = &error else { unreachable!() };
            assert_eq!(*uid, NOBODY, "{what}: {error}");
            assert_eq!(dir, named, "{what}: {error}");
            let message = error.to_string();
            assert!(
                message.contains("user 65534") && message.contains(&dir.display().to_string()),
                "{what}: {message}"
            );
        }
        other => panic!("{what}: expected UntrustedDirectory, got {other:?}"),
    }
}

#[test]
fn pid_directory_owned_by_another_user_is_refused_for_claims_and_removals() {
    let Some((root, _)) = root_dir(0o755) else { return };
    let dir = nobody_dir(&root);
    let config = Config::new(&dir, "t");
    let path = dir.join("t-web.pid");

    assert_untrusted(PidFile::acquire(&path).map(drop), &dir, "acquire");
    assert_untrusted(pidfiles::make_pidfile_with("web", &config), &dir, "make_pidfile_with");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "something was created");

    // A stale file in it is not removed either: its owner could have put anything there.
    std::fs::write(&path, format!("{}\n", common::dead_pid())).unwrap();
    assert_untrusted(remove_pidfile_with("web", &config), &dir, "remove_pidfile_with");
    assert_untrusted(remove_at(&path), &dir, "remove_at");
    assert!(path.exists(), "the pidfile was removed");
}

#[test]
fn symbolic_link_to_a_pid_directory_of_another_user_is_refused() {
    let Some((root, _)) = root_dir(0o755) else { return };
    let target = nobody_dir(&root);
    let link = root.path().join("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let path = link.join("t-web.pid");

    // What is checked, and named, is the directory the link leads to.
    assert_untrusted(PidFile::acquire(&path).map(drop), &target, "acquire");
    assert_untrusted(remove_pidfile_with("web", &Config::new(&link, "t")), &target, "remove_pidfile_with");
    assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0, "something was created");
}

#[test]
fn root_directory_writable_by_its_group_without_the_sticky_bit_is_refused() {
    let Some((root, _)) = root_dir(0o755) else { return };
    let dir = root.path().join("group");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o775)).unwrap();
    let path = dir.join("t-web.pid");

    for (what, result) in [
        ("acquire", PidFile::acquire(&path).map(drop)),
        ("remove_pidfile_with", remove_pidfile_with("web", &Config::new(&dir, "t"))),
    ] {
        match result {
            Err(Error::InsecureDirectory { dir: found, uid: 0 }) => assert_eq!(found, dir, "{what}"),
            other => panic!("{what}: expected InsecureDirectory, got {other:?}"),
        }
    }
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "something was created");
}

#[test]
fn pid_reused_by_an_unrelated_process_is_stale_and_the_process_is_left_alone() {
    let Some((_dir, path)) = root_dir(0o755) else { return };
    let bystander = Bystander::start();
    // Written an hour ago by a process long gone, whose pid the bystander now has.
    stale_pidfile(&path, bystander.pid());
    assert_eq!(status_at(&path).unwrap(), Status::Stale { pid: Some(bystander.pid()) });
    remove_at(&path).unwrap();
    assert!(!path.exists());
    assert!(process_lives(bystander.pid()));
}

#[test]
fn read_only_lock_held_by_the_very_process_the_file_names_is_no_proof() {
    let Some((_dir, path)) = root_dir(0o755) else { return };
    stale_pidfile(&path, common::dead_pid());
    let mut forger = Forger::start(&path, "r", "", Lock::FlockExclusive);
    // Root rewrites its file (the same inode, still locked) to name the forger.
    std::fs::write(&path, format!("{}\n", forger.pid())).unwrap();

    assert_eq!(
        status_at(&path).unwrap(),
        Status::Unproven { pid: Some(forger.pid()), holder: holder(&forger), doubt: Doubt::ReadOnly }
    );
    assert_blocked(PidFile::acquire(&path), &forger, Doubt::ReadOnly, "acquire");
    assert_blocked(remove_at(&path), &forger, Doubt::ReadOnly, "remove_at");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{}\n", forger.pid()));
    assert!(forger.lives());
}

#[test]
fn directory_of_another_user_above_the_pid_directory_is_refused() {
    // A root directory inside one of nobody's: nobody may rename it away, with a locked pidfile in it, and put
    // another in its place.
    let Some((root, _)) = root_dir(0o755) else { return };
    let above = nobody_dir(&root);
    let dir = above.join("run");
    std::fs::create_dir(&dir).unwrap();
    let path = dir.join("t-web.pid");
    assert_untrusted(PidFile::acquire(&path).map(drop), &above, "acquire");
    assert_untrusted(remove_pidfile_with("web", &Config::new(&dir, "t")), &above, "remove_pidfile_with");
    assert!(!path.exists(), "a pidfile was created");
}

#[test]
fn symbolic_link_of_another_user_on_the_way_is_refused() {
    // nobody's link in a sticky shared directory, pointing at a directory of root's: nobody may point it elsewhere
    // at any time, and the next claim would win beside the first.
    let Some((root, _)) = root_dir(0o1777) else { return };
    let target = root.path().join("roots");
    std::fs::create_dir(&target).unwrap();
    let link = root.path().join("link");
    let made = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "ln", "-s"])
        .arg(&target)
        .arg(&link)
        .status()
        .unwrap();
    assert!(made.success());
    let path = link.join("t-web.pid");
    assert_untrusted(PidFile::acquire(&path).map(drop), &link, "acquire");
    assert_untrusted(remove_pidfile_with("web", &Config::new(&link, "t")), &link, "remove_pidfile_with");
    assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0, "something was created");
}

#[test]
fn service_of_another_user_in_its_own_directory_is_proven_but_not_in_a_shared_one() {
    // nobody's own directory, in a parent only root may write to, as root makes /run/www for www: its files are
    // nobody's to vouch for.
    let Some((root, _)) = root_dir(0o755) else { return };
    let own = nobody_dir(&root);
    let path = own.join("t-web.pid");
    let service = Forger::start(&path, "w", "{pid}\n", Lock::FlockExclusive);
    assert_eq!(status_at(&path).unwrap(), Status::Running { pid: Some(service.pid()), locked: true });

    // The same directory made by nobody in a shared one (as in /var/tmp): anyone could have made it.
    let Some((shared, _)) = root_dir(0o1777) else { return };
    let squat = shared.path().join("web");
    let made = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "mkdir"])
        .arg(&squat)
        .status()
        .unwrap();
    assert!(made.success());
    let path = squat.join("t-web.pid");
    let squatter = Forger::start(&path, "w", "{pid}\n", Lock::FlockExclusive);
    assert_eq!(
        status_at(&path).unwrap(),
        Status::Unproven {
            pid: Some(squatter.pid()),
            holder: holder(&squatter),
            doubt: Doubt::ForeignOwner { uid: NOBODY }
        }
    );
}

#[test]
fn directory_of_ours_in_a_shared_one_is_checked_again_when_another_user_makes_it_anew() {
    // Root or a cleaner deletes our directory in a shared one (as /var/tmp is); nobody makes one of the same name.
    // A process that claimed there before must not take the new one on the old verdict.
    let Some((shared, _)) = root_dir(0o1777) else { return };
    let dir = shared.path().join("app");
    std::fs::create_dir(&dir).unwrap();
    let path = dir.join("t-web.pid");
    PidFile::acquire(&path).unwrap().release().unwrap();
    std::fs::remove_dir(&dir).unwrap();
    let made = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "mkdir"])
        .arg(&dir)
        .status()
        .unwrap();
    assert!(made.success());
    assert_untrusted(PidFile::acquire(&path).map(drop), &dir, "acquire");
    assert!(!path.exists(), "a pidfile was created in nobody's directory");
}

#[test]
fn pid_directory_that_is_not_a_directory_is_refused_before_anything_is_opened() {
    // A file of nobody's where the pid directory should be, in a shared directory: it may become a directory of
    // theirs between a look and an open, so the look refuses it outright.
    let Some((shared, _)) = root_dir(0o1777) else { return };
    let not_a_dir = shared.path().join("app");
    let made = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "touch"])
        .arg(&not_a_dir)
        .status()
        .unwrap();
    assert!(made.success());
    let error = PidFile::acquire(not_a_dir.join("t-web.pid")).map(drop).unwrap_err();
    assert!(error.to_string().contains("Not a directory"), "{error}");
    let error = remove_pidfile_with("web", &Config::new(&not_a_dir, "t")).unwrap_err();
    assert!(error.to_string().contains("Not a directory"), "{error}");
    // A missing one is named as missing.
    let missing = shared.path().join("missing").join("deeper");
    assert!(matches!(
        PidFile::acquire(missing.join("t-web.pid")),
        Err(Error::NoSuchDirectory { dir }) if dir == missing
    ));
}
