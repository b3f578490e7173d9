//! Interoperability with the pidfile tools already on every Linux box: BSD pidfile(3) through libbsd, flock(1),
//! procps' pgrep/pkill and dpkg's start-stop-daemon. These run the real programs; `.ci/run` installs their
//! packages (libbsd-dev, util-linux, procps, dpkg) when they are missing, and a test whose peer is missing fails
//! saying which.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};

use common::{Running, claimer};
use pidfiles::{Config, Error, PidFile, Status, get_pid_with, pidfile_path_with, status_with};

fn peer(program: &str, package: &str) -> Command {
    // Debian keeps start-stop-daemon in /usr/sbin, which a user's PATH may lack: look there too.
    let path = std::env::var_os("PATH").unwrap_or_default();
    let sbin = ["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from);
    let found = std::env::split_paths(&path).chain(sbin).map(|dir| dir.join(program)).find(|candidate| {
        std::fs::metadata(candidate).is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
    });
    match found {
        Some(program) => Command::new(program),
        None => panic!(
            "{program} is missing (not on PATH, nor in /usr/sbin or /sbin): install the Debian package {package}"
        ),
    }
}

/// Compiles the libbsd peer (`tests/peers/bsd_pidfile.c`) into `dir`.
fn bsd_peer(dir: &Path) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/bsd_pidfile.c");
    let binary = dir.join("bsd_pidfile");
    let output = peer("cc", "gcc").arg("-O2").arg("-o").arg(&binary).arg(&source).arg("-lbsd").output().unwrap();
    assert!(
        output.status.success(),
        "cannot build the libbsd peer (install libbsd-dev): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    binary
}

/// A peer process kept running until dropped.
struct Peer {
    child: Child,
    lines: BufReader<ChildStdout>,
}

impl Peer {
    fn start(command: &mut Command) -> Peer {
        let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap());
        Peer { child, lines }
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.lines.read_line(&mut line).unwrap();
        line.trim_end().to_owned()
    }

    fn finish(&mut self) -> std::process::ExitStatus {
        drop(self.child.stdin.take());
        self.child.wait().unwrap()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Our service: a claimer holding `path` until its standard input closes.
fn our_service(path: &Path) -> Running {
    let mut service = Running::start(claimer(&[], &["acquire", path.to_str().unwrap(), "wait-stdin"]));
    assert_eq!(service.line(), format!("won {}", service.pid()));
    service
}

#[test]
fn libbsd_pidfile_open_is_refused_while_we_hold_the_pidfile() {
    let dir = tempfile::tempdir().unwrap();
    let bsd = bsd_peer(dir.path());
    let path = dir.path().join("ours.pid");
    let mut service = our_service(&path);
    let output = Command::new(&bsd).arg("try").arg(&path).output().unwrap();
    // libbsd's reader takes only a bare number: our trailing newline (the original module's format) makes it
    // report EINVAL rather than EEXIST when asked for the holder's pid, but it still refuses the claim and names
    // our pid.
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(text(&output), format!("refused EINVAL {}\n", service.pid()));
    // Not asked for the holder's pid, it does not read the file: EEXIST.
    let output = Command::new(&bsd).arg("probe").arg(&path).output().unwrap();
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(text(&output), "refused EEXIST\n");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{}\n", service.pid()), "libbsd touched our file");
    assert!(service.finish().success());
    let output = Command::new(&bsd).arg("try").arg(&path).output().unwrap();
    assert_eq!(text(&output), "claimed\n", "once we are gone, libbsd claims it");
}

#[test]
fn our_claim_is_refused_while_libbsd_holds_the_pidfile_and_we_read_its_pid() {
    let dir = tempfile::tempdir().unwrap();
    let bsd = bsd_peer(dir.path());
    let config = Config::new(dir.path(), "bsd");
    let path = pidfile_path_with("svc", &config).unwrap();
    let mut holder = Peer::start(Command::new(&bsd).arg("hold").arg(&path));
    let pid = holder.child.id();
    assert_eq!(holder.line(), format!("ready {pid}"));
    match PidFile::acquire(&path) {
        Err(Error::AlreadyRunning { pid: found, .. }) => assert_eq!(found, Some(pid)),
        other => panic!("expected AlreadyRunning, got {other:?}"),
    }
    assert_eq!(get_pid_with("svc", &config).unwrap(), Some(pid));
    assert_eq!(status_with("svc", &config).unwrap(), Status::Running { pid: Some(pid), locked: true });
    assert!(holder.finish().success());
    assert_eq!(status_with("svc", &config).unwrap(), Status::NotRunning);
}

#[test]
fn flock_command_and_our_claim_exclude_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flock.pid");
    let mut service = our_service(&path);
    let status = peer("flock", "util-linux").args(["-n"]).arg(&path).arg("true").status().unwrap();
    assert_eq!(status.code(), Some(1), "flock -n should fail while we hold the file");
    assert!(service.finish().success());

    let mut holder = Peer::start(peer("flock", "util-linux").arg(&path).args(["sh", "-c", "echo ready; cat"]));
    assert_eq!(holder.line(), "ready");
    // flock(1) opens the file read-only, as any reader of the file could: its lock keeps our claim out, but
    // proves nothing.
    match PidFile::acquire(&path) {
        Err(Error::Blocked { holder: Some(_), doubt: pidfiles::Doubt::ReadOnly, .. }) => {}
        other => panic!("expected Blocked by a read-only lock, got {other:?}"),
    }
    assert!(holder.finish().success());
    PidFile::acquire(&path).unwrap().release().unwrap();
}

#[test]
fn a_read_only_lock_let_go_within_a_second_delays_our_claim_without_failing_it() {
    // A check that tries the lock for an instant and is descheduled past the claim's 100 ms settle wait looks like
    // this: a read-only descriptor holding the lock a little longer. The claim waits for it, up to its bound.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("glance.pid");
    let mut holder = Peer::start(peer("flock", "util-linux").arg(&path).args(["sh", "-c", "echo ready; sleep 0.4"]));
    assert_eq!(holder.line(), "ready");
    let claimed = PidFile::acquire(&path);
    assert!(holder.finish().success());
    claimed.expect("a read-only lock let go after 0.4 s should delay the claim, not fail it").release().unwrap();
}

#[test]
fn pgrep_finds_our_process_and_pkill_stops_it_through_our_handler() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("procps.pid");
    let mut service = our_service(&path);
    let pid = service.pid().to_string();
    let found = peer("pgrep", "procps").arg("-F").arg(&path).output().unwrap();
    assert_eq!(text(&found).trim(), pid);
    // -L: only if the pidfile is locked, which ours is.
    let found = peer("pgrep", "procps").args(["-L", "-F"]).arg(&path).output().unwrap();
    assert_eq!(text(&found).trim(), pid, "pgrep -L does not see our lock");
    let status = peer("pkill", "procps").arg("-F").arg(&path).status().unwrap();
    assert!(status.success());
    let ended = service.child.wait().unwrap();
    assert_eq!(ended.signal(), Some(15));
    assert!(!path.exists(), "our SIGTERM handler should have removed the pidfile");
}

#[test]
fn pgrep_l_refuses_an_unlocked_pidfile() {
    // The control for the test above: -L tells a locked file from an unlocked one.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("unlocked.pid");
    std::fs::write(&path, format!("{}\n", std::process::id())).unwrap();
    let found = peer("pgrep", "procps").args(["-L", "-F"]).arg(&path).output().unwrap();
    assert!(!found.status.success());
    assert_eq!(text(&found), "");
}

fn start_stop_daemon() -> Command {
    peer("start-stop-daemon", "dpkg")
}

/// The exit code of `start-stop-daemon --status --pidfile PATH`.
fn ssd_status(path: &Path) -> Option<i32> {
    start_stop_daemon().arg("--status").arg("--pidfile").arg(path).status().unwrap().code()
}

#[test]
fn start_stop_daemon_status_and_stop_work_on_our_pidfile() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ssd.pid");
    let mut service = Running::start(claimer(&[], &["acquire", path.to_str().unwrap(), "sleep", "30"]));
    assert_eq!(service.line(), format!("won {}", service.pid()));
    assert_eq!(ssd_status(&path), Some(0), "start-stop-daemon should see our service running");
    // The service is reaped as soon as it ends, as its real parent would: start-stop-daemon counts a zombie as alive.
    let (output, ended) = std::thread::scope(|scope| {
        let reaper = scope.spawn(|| service.child.wait().unwrap());
        let output = start_stop_daemon().args(["--stop", "--retry", "5", "--pidfile"]).arg(&path).output().unwrap();
        (output, reaper.join().unwrap())
    });
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(ended.signal(), Some(15));
    assert!(!path.exists(), "our SIGTERM handler should have removed the pidfile");
    assert_ne!(ssd_status(&path), Some(0));
}

#[test]
fn service_started_by_start_stop_daemon_with_make_pidfile_is_seen_running_and_not_claimed() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::new(dir.path(), "ssd");
    let path = pidfile_path_with("svc", &config).unwrap();
    let status = start_stop_daemon()
        .args(["--start", "--background", "--make-pidfile", "--pidfile"])
        .arg(&path)
        .args(["--exec", "/bin/sleep", "--", "30"])
        .status()
        .unwrap();
    assert!(status.success());
    let pid = common::wait_for_value(|| std::fs::read_to_string(&path).ok()?.trim().parse::<u32>().ok());
    let stop = StopOnDrop(path.clone());
    assert_eq!(status_with("svc", &config).unwrap(), Status::Running { pid: Some(pid), locked: false });
    match PidFile::acquire(&path) {
        Err(Error::AlreadyRunning { pid: found, .. }) => assert_eq!(found, Some(pid)),
        other => panic!("expected AlreadyRunning, got {other:?}"),
    }
    assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{pid}\n"), "its pidfile was touched");
    drop(stop);
    assert_eq!(status_with("svc", &config).unwrap(), Status::Stale { pid: Some(pid) });
    let guard = PidFile::acquire(&path).unwrap();
    assert_eq!(guard.pid(), std::process::id());
}

/// Stops the daemon a test started with start-stop-daemon, however the test ends.
struct StopOnDrop(PathBuf);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let _ = start_stop_daemon().args(["--stop", "--retry", "5", "--pidfile"]).arg(&self.0).output();
    }
}

#[test]
fn pidfile_written_without_a_newline_by_a_bsd_tool_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::new(dir.path(), "bare");
    let path = pidfile_path_with("svc", &config).unwrap();
    let mut file = std::fs::File::create(&path).unwrap();
    write!(file, "4000000").unwrap();
    assert_eq!(get_pid_with("svc", &config).unwrap(), Some(4_000_000));
}
