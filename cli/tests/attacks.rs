//! The `pidfile` command, run as a real process, against another user's attacks on root's pidfiles: forged locks,
//! planted files, pid directories of their own, reused pids. It must never report such a service as running,
//! signal anything on such grounds, or claim or remove what it must not. These tests act as `nobody` with
//! `setpriv`, so they need root; without it they say so and do nothing.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[path = "../../tests/common/mod.rs"]
mod common;
#[path = "../../tests/common/forger.rs"]
mod forger;

use common::{Bystander, backdate_an_hour, process_lives, runs_as_root};
use forger::{Forger, Lock, NOBODY};

const BIN: &str = env!("CARGO_BIN_EXE_pidfile");

/// A pid directory of root's that `nobody` can reach, with the instance name `t`.
struct Place {
    dir: tempfile::TempDir,
}

impl Place {
    /// A directory with `mode`; `None` without root.
    fn new(mode: u32) -> Option<Place> {
        if !runs_as_root("to act as the user nobody") {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(mode)).unwrap();
        Some(Place { dir })
    }

    fn run(&self, args: &[&str]) -> Output {
        run_in(self.dir.path(), args)
    }

    fn path(&self, service: &str) -> PathBuf {
        self.dir.path().join(format!("t-{service}.pid"))
    }

    /// A file no command of the tests would create unless it was started.
    fn marker(&self) -> PathBuf {
        self.dir.path().join("started")
    }

    /// `pidfile run SERVICE -- touch MARKER`: a command that leaves a trace if it is started.
    fn run_touch(&self, service: &str) -> Output {
        let marker = self.marker();
        self.run(&["run", service, "--", "touch", marker.to_str().unwrap()])
    }
}

/// Runs the command with `--dir dir --instance t` and `args`, in a clean environment.
fn run_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN).env_clear().args(["--dir", dir.to_str().unwrap(), "--instance", "t"]).args(args).output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// The command's one line of error, after checking that it exited with `code` and printed nothing else.
fn refusal(output: &Output, code: i32, what: &str) -> String {
    let message = String::from_utf8(output.stderr.clone()).unwrap();
    assert_eq!(output.status.code(), Some(code), "{what}: {message}");
    assert!(
        message.starts_with("pidfile: ") && message.lines().count() == 1,
        "{what}: not one line of error: {message:?}"
    );
    assert_eq!(stdout(output), "", "{what}");
    message
}

/// Writes root's pidfile naming `pid`, readable by everyone, as if it had been written an hour ago.
fn stale_pidfile(path: &Path, pid: u32) {
    std::fs::write(path, format!("{pid}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
    backdate_an_hour(path);
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_str(&stdout(output)).unwrap_or_else(|error| panic!("{error}: {}", stdout(output)))
}

/// The value of the metric `name` of `service` in `list --prometheus` output.
fn metric(exposition: &str, name: &str, service: &str) -> Option<String> {
    let prefix = format!("{name}{{instance=\"t\",service=\"{service}\"}} ");
    exposition.lines().find_map(|line| line.strip_prefix(&prefix)).map(str::to_owned)
}

#[test]
fn forged_read_only_lock_is_no_proof_and_stop_signals_nothing() {
    let Some(place) = Place::new(0o755) else { return };
    let path = place.path("web");
    let bystander = Bystander::start();
    stale_pidfile(&path, bystander.pid());
    assert_eq!(place.run(&["status", "web"]).status.code(), Some(1), "not stale to begin with");

    let mut forger = Forger::start(&path, "r", "", Lock::FlockExclusive);
    let message = refusal(&place.run(&["status", "web"]), 4, "status");
    assert!(
        message.contains(&format!("pid {} (user 65534)", forger.pid())) && message.contains("only for reading"),
        "{message}"
    );

    let message = refusal(&place.run(&["stop", "web"]), 1, "stop");
    assert!(message.contains("not signalling"), "{message}");
    assert!(process_lives(bystander.pid()), "stop signalled the pid in the file");
    assert!(forger.lives(), "stop signalled the lock's holder");

    let output = place.run(&["status", "web", "--json"]);
    assert_eq!(output.status.code(), Some(4));
    let report = json(&output);
    assert_eq!(report["state"], "unknown");
    assert!(report["pid"].is_null(), "{report}");
    assert_eq!(report["locked"], false);
    assert_eq!(report["holder"]["uid"], NOBODY);
    assert_eq!(report["holder"]["pid"], forger.pid());

    let output = place.run(&["list", "--prometheus"]);
    assert_eq!(output.status.code(), Some(0));
    let exposition = stdout(&output);
    assert_eq!(metric(&exposition, "pidfile_up", "web").as_deref(), Some("0"), "{exposition}");
    assert_eq!(metric(&exposition, "pidfile_unknown", "web").as_deref(), Some("1"), "{exposition}");
    assert_eq!(metric(&exposition, "pidfile_locked", "web").as_deref(), Some("0"), "{exposition}");

    refusal(&place.run(&["get", "web"]), 4, "get");
    assert!(refusal(&place.run(&["remove", "web"]), 1, "remove").contains("user 65534"));
    assert!(refusal(&place.run_touch("web"), 1, "run").contains("user 65534"));
    assert!(!place.marker().exists(), "run started its command");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        format!("{}\n", bystander.pid()),
        "the pidfile was removed or written"
    );
    assert!(process_lives(bystander.pid()) && forger.lives());
}

#[test]
fn shared_lock_of_another_user_is_no_proof_and_stop_signals_nothing() {
    let Some(place) = Place::new(0o755) else { return };
    let path = place.path("web");
    let bystander = Bystander::start();
    stale_pidfile(&path, bystander.pid());

    let mut forger = Forger::start(&path, "r", "", Lock::FlockShared);
    let message = refusal(&place.run(&["status", "web"]), 4, "status");
    assert!(
        message.contains(&format!("pid {} (user 65534)", forger.pid())) && message.contains("shared lock"),
        "{message}"
    );
    let message = refusal(&place.run(&["stop", "web"]), 1, "stop");
    assert!(message.contains("not signalling"), "{message}");
    assert!(process_lives(bystander.pid()), "stop signalled the pid in the file");
    assert!(forger.lives(), "stop signalled the lock's holder");
    assert!(path.exists());
}

#[test]
fn posix_and_ofd_read_locks_of_another_user_leave_a_stale_pidfile_stale_and_claimable() {
    for lock in [Lock::PosixRead, Lock::OfdRead] {
        let Some(place) = Place::new(0o755) else { return };
        let path = place.path("web");
        stale_pidfile(&path, common::dead_pid());
        let mut forger = Forger::start(&path, "r", "", lock);

        let output = place.run(&["status", "web"]);
        assert_eq!(output.status.code(), Some(1), "{lock:?}: not stale");
        // Claimed for the command, which then reads the pidfile: its own pid, written before it ran.
        let child = Command::new(BIN)
            .env_clear()
            .args(["--dir", place.dir.path().to_str().unwrap(), "--instance", "t"])
            .args(["run", "--exec", "web", "--", "cat", path.to_str().unwrap()])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let output = child.wait_with_output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{lock:?}: the claim failed");
        assert_eq!(stdout(&output), format!("{pid}\n"), "{lock:?}");
        assert!(forger.lives(), "{lock:?}");
    }
}

#[test]
fn file_planted_and_locked_by_another_user_naming_pid_1_is_not_reported_running_nor_signalled() {
    let Some(place) = Place::new(0o1777) else { return };
    let path = place.path("web");
    let mut forger = Forger::start(&path, "w", "1\n", Lock::FlockExclusive);

    let output = place.run(&["status", "web"]);
    let message = refusal(&output, 4, "status");
    assert!(
        message.contains(&format!("pid {} (user 65534)", forger.pid())) && message.contains("names another process"),
        "{message}"
    );
    let report = json(&place.run(&["status", "web", "--json"]));
    assert_eq!((report["state"].as_str(), report["pid"].is_null()), (Some("unknown"), true), "{report}");
    assert_eq!(report["holder"]["uid"], NOBODY);

    let message = refusal(&place.run_touch("web"), 1, "run");
    assert!(message.contains("user 65534") && !message.contains("already running"), "{message}");
    assert!(!place.marker().exists(), "run started its command");
    refusal(&place.run(&["stop", "web"]), 1, "stop");
    // `get` gives no pid that `status` would not stand behind.
    refusal(&place.run(&["get", "web"]), 4, "get");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "1\n");
    assert!(forger.lives());
}

#[test]
fn empty_files_planted_and_locked_by_another_user_are_not_exported_as_up() {
    let Some(place) = Place::new(0o1777) else { return };
    let services: Vec<String> = (0..10).map(|n| format!("empty{n}")).collect();
    let _forgers: Vec<Forger> =
        services.iter().map(|service| Forger::start(&place.path(service), "w", "", Lock::FlockExclusive)).collect();

    let output = place.run(&["list", "--prometheus"]);
    assert_eq!(output.status.code(), Some(0));
    let exposition = stdout(&output);
    for service in &services {
        assert_eq!(
            metric(&exposition, "pidfile_up", service).as_deref(),
            Some("0"),
            "{service} is exported as up:\n{exposition}"
        );
    }
}

#[test]
fn file_planted_by_another_user_naming_its_own_locking_process_is_not_reported_running() {
    let Some(place) = Place::new(0o1777) else { return };
    let forger = Forger::start(&place.path("web"), "w", "{pid}\n", Lock::FlockExclusive);
    assert_eq!(std::fs::read_to_string(place.path("web")).unwrap(), format!("{}\n", forger.pid()));

    let output = place.run(&["status", "web"]);
    assert_ne!(
        output.status.code(),
        Some(0),
        "a process of nobody's is reported as root's service: {}",
        stdout(&output)
    );
    let exposition = stdout(&place.run(&["list", "--prometheus"]));
    assert_eq!(metric(&exposition, "pidfile_up", "web").as_deref(), Some("0"), "{exposition}");
}

/// A pid directory owned by `nobody`, inside a directory of root's.
fn nobody_dir(place: &Place) -> PathBuf {
    let dir = place.dir.path().join("nobodys");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(&dir, Some(NOBODY), Some(NOBODY)).unwrap();
    dir
}

#[test]
fn pid_directory_owned_by_another_user_is_refused_by_run_and_remove() {
    let Some(place) = Place::new(0o755) else { return };
    let dir = nobody_dir(&place);
    let marker = place.marker();
    let untrusted = format!("refusing pid directory {}: it belongs to user 65534", dir.display());

    let output = run_in(&dir, &["run", "web", "--", "touch", marker.to_str().unwrap()]);
    assert!(refusal(&output, 1, "run").contains(&untrusted));
    assert!(!marker.exists(), "run started its command");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "something was created");

    let path = dir.join("t-web.pid");
    std::fs::write(&path, format!("{}\n", common::dead_pid())).unwrap();
    assert!(refusal(&run_in(&dir, &["remove", "web"]), 1, "remove").contains(&untrusted));
    assert!(path.exists(), "the pidfile was removed");

    // The same through a symbolic link to it: the directory it leads to is named.
    let link = place.dir.path().join("link");
    std::os::unix::fs::symlink(&dir, &link).unwrap();
    let output = run_in(&link, &["run", "other", "--", "touch", marker.to_str().unwrap()]);
    assert!(refusal(&output, 1, "run through a link").contains(&untrusted));
    assert!(refusal(&run_in(&link, &["remove", "web"]), 1, "remove through a link").contains(&untrusted));
    assert!(!marker.exists(), "run started its command");
    assert!(path.exists(), "the pidfile was removed");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "something was created");
}

#[test]
fn root_directory_writable_by_its_group_without_the_sticky_bit_is_refused_by_run_and_remove() {
    let Some(place) = Place::new(0o755) else { return };
    let dir = place.dir.path().join("group");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o775)).unwrap();
    let marker = place.marker();
    let insecure = format!("refusing pid directory {} (owner: user 0)", dir.display());

    let output = run_in(&dir, &["run", "web", "--", "touch", marker.to_str().unwrap()]);
    assert!(refusal(&output, 1, "run").contains(&insecure));
    assert!(!marker.exists(), "run started its command");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "something was created");

    let path = dir.join("t-web.pid");
    std::fs::write(&path, format!("{}\n", common::dead_pid())).unwrap();
    assert!(refusal(&run_in(&dir, &["remove", "web"]), 1, "remove").contains(&insecure));
    assert!(path.exists(), "the pidfile was removed");
}

#[test]
fn stop_never_signals_an_unrelated_process_named_by_an_unlocked_pidfile() {
    let Some(place) = Place::new(0o755) else { return };
    // The pid now belongs to a process started after the file was written: the file is stale, and goes.
    let reused = Bystander::start();
    stale_pidfile(&place.path("reused"), reused.pid());
    let output = place.run(&["stop", "reused"]);
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(process_lives(reused.pid()), "stop signalled a process that reused the pid");
    assert!(!place.path("reused").exists(), "the stale pidfile was left");

    // The process started before the file was written: it may be what a tool that does not lock started, but
    // nothing proves it, so it is not signalled either.
    let unlocked = Bystander::start();
    std::thread::sleep(std::time::Duration::from_millis(30));
    std::fs::write(place.path("unlocked"), format!("{}\n", unlocked.pid())).unwrap();
    let message = refusal(&place.run(&["stop", "unlocked"]), 1, "stop");
    assert!(message.contains("not signalling"), "{message}");
    assert!(process_lives(unlocked.pid()), "stop signalled the pid of an unlocked file");
    assert!(place.path("unlocked").exists());
}

#[test]
fn read_only_lock_held_by_the_very_process_the_file_names_is_no_proof_and_stop_signals_nothing() {
    let Some(place) = Place::new(0o755) else { return };
    let path = place.path("web");
    stale_pidfile(&path, common::dead_pid());
    let mut forger = Forger::start(&path, "r", "", Lock::FlockExclusive);
    // Root rewrites its file (the same inode, still locked) to name the forger.
    std::fs::write(&path, format!("{}\n", forger.pid())).unwrap();

    let message = refusal(&place.run(&["status", "web"]), 4, "status");
    assert!(
        message.contains(&format!("pid {} (user 65534)", forger.pid())) && message.contains("only for reading"),
        "{message}"
    );
    let message = refusal(&place.run(&["stop", "web"]), 1, "stop");
    assert!(message.contains("not signalling"), "{message}");
    assert!(forger.lives(), "stop signalled the forger");
    refusal(&place.run(&["get", "web"]), 4, "get");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{}\n", forger.pid()));
}

#[test]
fn get_does_not_hand_out_the_pid_of_a_stale_file_another_user_planted() {
    let Some(place) = Place::new(0o1777) else { return };
    let path = place.path("web");
    let planted = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c", "echo 1 > \"$0\""])
        .arg(&path)
        .status()
        .unwrap();
    assert!(planted.success());
    let output = place.run(&["get", "web"]);
    assert!(refusal(&output, 4, "get").contains("belongs to user 65534"));
    assert_eq!(stdout(&output), "", "a pid was handed out");

    // Root's own stale file still gives its pid, as the original module's get_pid does.
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, "72\n").unwrap();
    let output = place.run(&["get", "web"]);
    assert_eq!((output.status.code(), stdout(&output).as_str()), (Some(0), "72\n"));
}

#[test]
fn stop_stops_a_service_of_another_user_in_its_own_directory() {
    // nobody's own directory, in one only root may write to, as root makes /run/www for www: its service is
    // proven, stopped by root, and its leftover file is left to its user.
    let Some(place) = Place::new(0o755) else { return };
    let dir = nobody_dir(&place);
    let mut service = Forger::start(&dir.join("t-web.pid"), "w", "{pid}\n", Lock::FlockExclusive);
    let status = run_in(&dir, &["status", "web"]);
    assert_eq!(status.status.code(), Some(0), "{}", String::from_utf8_lossy(&status.stderr));
    let output = run_in(&dir, &["stop", "web", "--timeout", "5s"]);
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(!service.lives(), "the service still runs");
}
