//! Pidfiles written by tools that do not lock (the original module, `start-stop-daemon --make-pidfile`): the pid
//! inside counts only while its process lives and started before the file was written, and only from a file owned
//! by us or by root.

mod common;

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::process::Command;
use std::time::Duration;

use pidfiles::{Config, Error, PidFile, Status, pidfile_path_with, status_with};

#[test]
fn live_process_that_started_before_the_file_was_written_is_running() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::new(dir.path(), "old");
    let path = pidfile_path_with("svc", &config).unwrap();
    let service = common::Bystander::start();
    std::thread::sleep(Duration::from_millis(30));
    std::fs::write(&path, format!("{}\n", service.pid())).unwrap();

    assert_eq!(status_with("svc", &config).unwrap(), Status::Running { pid: Some(service.pid()), locked: false });
    match PidFile::acquire(&path) {
        Err(Error::AlreadyRunning { pid, .. }) => assert_eq!(pid, Some(service.pid())),
        other => panic!("expected AlreadyRunning, got {other:?}"),
    }
    assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{}\n", service.pid()), "the file was touched");
}

#[test]
fn pid_reused_by_a_process_started_after_the_file_was_written_is_stale() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::new(dir.path(), "reused");
    let path = pidfile_path_with("svc", &config).unwrap();
    let unrelated = common::Bystander::start();
    std::fs::write(&path, format!("{}\n", unrelated.pid())).unwrap();
    // As if the file had been written an hour ago, by a process long gone whose pid `sleep` now has.
    common::backdate_an_hour(&path);

    assert_eq!(status_with("svc", &config).unwrap(), Status::Stale { pid: Some(unrelated.pid()) });
    let guard = PidFile::acquire(&path).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{}\n", std::process::id()));
    drop(guard);
    assert!(common::process_lives(unrelated.pid()), "the unrelated process must be left alone");
}

#[test]
fn dead_pid_and_our_own_pid_are_stale() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::new(dir.path(), "dead");
    let path = pidfile_path_with("svc", &config).unwrap();
    let gone_pid = common::dead_pid();
    for pid in [gone_pid, std::process::id()] {
        std::fs::write(&path, format!("{pid}\n")).unwrap();
        assert_eq!(status_with("svc", &config).unwrap(), Status::Stale { pid: Some(pid) });
        let guard = PidFile::builder().signal_handlers(false).acquire(&path).unwrap();
        drop(guard);
    }
}

#[test]
fn original_modules_file_format_is_read_and_honoured() {
    // The original module writes `PID\n` without locking, from a process that keeps running.
    let dir = tempfile::tempdir().unwrap();
    let config = Config::new(dir.path(), "python");
    let path = pidfile_path_with("svc", &config).unwrap();
    let script = format!(
        "import os, sys, time\nopen({:?}, 'w').write('%d\\n' % os.getpid())\nsys.stdout.write('ready\\n')\nsys.stdout.flush()\ntime.sleep(30)\n",
        path.to_str().unwrap()
    );
    let mut python = Command::new("python3")
        .args(["-c", &script])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 is needed to write a pidfile as the original module does");
    let mut ready = [0u8; 6];
    python.stdout.take().unwrap().read_exact(&mut ready).unwrap();
    let pid = python.id();
    assert_eq!(pidfiles::get_pid_with("svc", &config).unwrap(), Some(pid));
    assert_eq!(status_with("svc", &config).unwrap(), Status::Running { pid: Some(pid), locked: false });
    assert!(matches!(
        pidfiles::make_pidfile_with("svc", &config),
        Err(Error::AlreadyRunning { pid: Some(found), .. }) if found == pid
    ));
    python.kill().unwrap();
    python.wait().unwrap();
    assert_eq!(status_with("svc", &config).unwrap(), Status::Stale { pid: Some(pid) });
    PidFile::acquire(&path).unwrap().release().unwrap();
}

#[test]
fn file_of_another_user_naming_a_live_pid_is_not_believed_and_is_replaced_not_written_into() {
    if !common::runs_as_root("to give a file to another user") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = Config::new(dir.path(), "planted");
    let path = pidfile_path_with("svc", &config).unwrap();
    std::fs::write(&path, "1\n").unwrap();
    std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
    let planted = File::open(&path).unwrap();

    assert_eq!(status_with("svc", &config).unwrap(), Status::Stale { pid: Some(1) });
    let guard = PidFile::acquire(&path).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().uid(), 0, "the claim should create a file of its own");
    let mut old = String::new();
    (&planted).read_to_string(&mut old).unwrap();
    assert_eq!(old, "1\n", "the planted file was written into");
    drop(guard);
}

#[test]
fn root_owned_file_naming_a_live_pid_is_believed() {
    // pid 1 started at boot, before any file of this test: written by root (or by us), the file says it runs.
    let dir = tempfile::tempdir().unwrap();
    let config = Config::new(dir.path(), "init");
    let path = pidfile_path_with("svc", &config).unwrap();
    std::fs::write(&path, "1\n").unwrap();
    assert_eq!(status_with("svc", &config).unwrap(), Status::Running { pid: Some(1), locked: false });
    assert!(matches!(PidFile::acquire(&path), Err(Error::AlreadyRunning { pid: Some(1), .. })));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "1\n");
}

#[test]
fn a_file_naming_a_kernel_thread_was_written_in_another_pid_namespace_and_is_stale() {
    // A service started second in a container writes 2; on the host, pid 2 is the kernel's kthreadd, alive and
    // started at boot, before the file: yet no kernel thread ever wrote a pidfile, nor is one a service.
    let Some(kernel_thread) = visible_kernel_thread() else {
        eprintln!("skipped: no kernel thread can be seen in this pid namespace's /proc");
        common::note_skip("no kernel thread can be seen in this pid namespace's /proc");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = Config::new(dir.path(), "contained");
    let path = pidfile_path_with("svc", &config).unwrap();
    std::fs::write(&path, format!("{kernel_thread}\n")).unwrap();
    assert_eq!(status_with("svc", &config).unwrap(), Status::Stale { pid: Some(kernel_thread) });
    let guard = PidFile::acquire(&path).expect("a stale file does not keep the service from starting");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{}\n", std::process::id()));
    drop(guard);
}

/// A kernel thread's pid (PF_KTHREAD in the flags of `/proc/PID/stat`), if this pid namespace's `/proc` shows any:
/// the host's does (kthreadd is 2), a container's own does not.
fn visible_kernel_thread() -> Option<u32> {
    const PF_KTHREAD: u64 = 0x0020_0000;
    (2..200).find(|pid| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).ok().is_some_and(|stat| {
            let fields = stat.rsplit_once(") ").map_or("", |(_, fields)| fields);
            fields.split(' ').nth(6).and_then(|flags| flags.parse::<u64>().ok()).is_some_and(|f| f & PF_KTHREAD != 0)
        })
    })
}

#[test]
fn holder_that_has_not_written_its_pid_yet_is_running_with_the_pid_unknown() {
    // A process of ours holds the pidfile's exclusive lock through a descriptor open for writing, and writes nothing:
    // a service between its claim and its write, as far as anyone can tell. Once the short wait for the pid is over,
    // it is running, pid unknown; never stale, never corrupt.
    let dir = tempfile::tempdir().unwrap();
    let config = Config::new(dir.path(), "quiet");
    let path = pidfile_path_with("svc", &config).unwrap();
    let mut holder = std::process::Command::new("python3")
        .args(["-c", "import fcntl, sys\nf = open(sys.argv[1], 'w')\nfcntl.flock(f, fcntl.LOCK_EX)\nprint('ready', flush=True)\nsys.stdin.read()"])
        .arg(&path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 is missing: install the Debian package python3");
    let mut ready = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(holder.stdout.take().unwrap()), &mut ready).unwrap();
    assert_eq!(ready.trim(), "ready");
    assert_eq!(status_with("svc", &config).unwrap(), Status::Running { pid: None, locked: true });
    assert!(matches!(pidfiles::PidFile::acquire(&path), Err(pidfiles::Error::AlreadyRunning { pid: None, .. })));
    let _ = holder.kill();
    let _ = holder.wait();
}
