//! Faults at every step: a claimer killed or signalled at each system call of its claim and its release (signals
//! injected by strace at the exact call), repeated signals, children that exit or die, and writes that fail. The
//! next start must always succeed, no check may see a dead claimer as running, and the file must be removed exactly
//! once when it is removed at all.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Output};

use common::claimer_path;
use pidfiles::{Config, PidFile, Status, pidfile_path_with, status_with};

const SIGKILL: i32 = 9;
const SIGTERM: i32 = 15;

/// Runs the claimer under strace, with `inject` (an strace injection such as `flock:signal=KILL`) applied to the
/// system calls on `path` only. Returns the claimer's output and strace's record of the calls on `path`.
fn traced(path: &Path, inject: &str, steps: &[&str]) -> (Output, String) {
    let trace = path.with_extension("trace");
    let output = Command::new("strace")
        .args(["-f", "-o"])
        .arg(&trace)
        .arg("-P")
        .arg(path)
        .arg(format!("--inject={inject}"))
        .arg(claimer_path())
        .args(steps)
        .env_clear()
        .output()
        .expect("strace is missing: install the Debian package strace");
    let trace_text = std::fs::read_to_string(&trace).unwrap_or_default();
    let _ = std::fs::remove_file(&trace);
    (output, trace_text)
}

/// How many times the trace shows the file unlinked successfully.
fn removals(trace: &str) -> usize {
    trace.lines().filter(|line| line.contains("unlinkat(") && line.ends_with("= 0")).count()
}

/// After a claimer died: no check sees it running, and a new claim succeeds and names this process.
fn next_start_succeeds(config: &Config, what: &str) {
    match status_with("svc", config) {
        Ok(Status::Running { pid, locked }) => {
            panic!("{what}: a dead claimer looks alive: pid {pid:?}, locked {locked}")
        }
        // What was there before the claimer died may be garbage: not alive either.
        Ok(_) | Err(pidfiles::Error::Corrupt { .. }) => {}
        Err(error) => panic!("{what}: status failed: {error}"),
    }
    let path = pidfile_path_with("svc", config).unwrap();
    let guard = PidFile::builder().signal_handlers(false).acquire(&path).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{}\n", std::process::id()), "{what}");
    guard.release().unwrap();
}

/// The system calls of a claim and its release on the pidfile, in order, with how to pick each out.
const STEPS: [(&str, &str); 7] = [
    ("flock", "between open and lock"),
    ("fstat", "between lock and the type check"),
    ("newfstatat:when=1", "between the type check and the identity check"),
    ("pwrite64", "at the write"),
    ("newfstatat:when=2", "between the write and the release's identity check"),
    ("unlinkat", "at the release's unlink"),
    ("close", "after the unlink, at the close"),
];

#[test]
fn sigkill_at_every_step_never_leaves_a_file_that_blocks_or_looks_alive() {
    for before in [None, Some("4000000\n"), Some("a long line of garbage, longer than any pid\n")] {
        for (call, when) in STEPS {
            let dir = tempfile::tempdir().unwrap();
            let config = Config::new(dir.path(), "kill");
            let path = pidfile_path_with("svc", &config).unwrap();
            if let Some(content) = before {
                std::fs::write(&path, content).unwrap();
            }
            let what = format!("SIGKILL {when} ({call}, over {before:?})");
            let (output, trace) =
                traced(&path, &format!("{call}:signal=KILL"), &["acquire-quiet", path.to_str().unwrap(), "release"]);
            assert_eq!(output.status.signal(), Some(SIGKILL), "{what}: the claimer was not killed:\n{trace}");
            next_start_succeeds(&config, &what);
        }
    }
}

#[test]
fn sigterm_during_the_claim_kills_before_handlers_exist_and_leaves_nothing_that_blocks() {
    for (call, when) in &STEPS[..4] {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::new(dir.path(), "term-claim");
        let path = pidfile_path_with("svc", &config).unwrap();
        let (output, trace) = traced(&path, &format!("{call}:signal=TERM"), &["acquire", path.to_str().unwrap()]);
        let what = format!("SIGTERM {when}");
        assert_eq!(output.status.signal(), Some(SIGTERM), "{what}:\n{trace}");
        next_start_succeeds(&config, &what);
    }
}

#[test]
fn sigterm_during_the_release_removes_the_file_exactly_once_and_the_process_dies_of_it() {
    for (call, when) in &STEPS[4..] {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::new(dir.path(), "term-release");
        let path = pidfile_path_with("svc", &config).unwrap();
        let (output, trace) =
            traced(&path, &format!("{call}:signal=TERM"), &["acquire", path.to_str().unwrap(), "release", "exit", "7"]);
        let what = format!("SIGTERM {when}");
        assert_eq!(output.status.signal(), Some(SIGTERM), "{what}:\n{trace}");
        assert!(!path.exists(), "{what}: the file was left behind:\n{trace}");
        assert_eq!(removals(&trace), 1, "{what}: not removed exactly once:\n{trace}");
        next_start_succeeds(&config, &what);
    }
}

#[test]
fn a_burst_of_signals_removes_the_file_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("burst.pid");
    let trace = dir.path().join("burst.trace");
    let mut child = Command::new("strace")
        .args(["-f", "-o"])
        .arg(&trace)
        .arg("-P")
        .arg(&path)
        .arg(claimer_path())
        .args(["acquire", path.to_str().unwrap(), "sleep", "30"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut won = String::new();
    std::io::BufRead::read_line(&mut lines, &mut won).unwrap();
    let pid: i32 = won.trim().strip_prefix("won ").unwrap().parse().unwrap();
    let target = rustix::process::Pid::from_raw(pid).unwrap();
    for round in 0..200 {
        let signal = if round % 2 == 0 { rustix::process::Signal::TERM } else { rustix::process::Signal::INT };
        if rustix::process::kill_process(target, signal).is_err() {
            break; // gone already
        }
    }
    let status = child.wait().unwrap();
    assert!(matches!(status.signal(), Some(2 | 15)), "{status:?}");
    let trace = std::fs::read_to_string(&trace).unwrap();
    assert!(!path.exists());
    assert_eq!(removals(&trace), 1, "not removed exactly once:\n{trace}");
}

#[test]
fn children_that_exit_or_die_never_remove_the_parents_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("family.pid");
    // The claimer is still running its steps when each child ends; the file must outlive every one of them.
    let mut holder = common::Running::start(claimer(
        &path,
        &["shell", "exit 0", "shell", "kill -TERM $$", "fork-term", "fork-drop", "ready", "wait-stdin"],
    ));
    let pid = holder.pid();
    assert_eq!(holder.line(), format!("won {pid}"));
    assert_eq!(holder.line(), "shell Ok(ExitStatus(unix_wait_status(0)))");
    assert_eq!(holder.line(), "shell Ok(ExitStatus(unix_wait_status(15)))");
    assert_eq!(holder.line(), "child signal 15");
    assert_eq!(holder.line(), format!("ready {pid}"));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{pid}\n"), "a child removed the parent's file");
    assert!(holder.finish().success());
    assert!(!path.exists());
}

fn claimer(path: &Path, steps: &[&str]) -> Command {
    let mut command = common::claimer(&[], &["acquire", path.to_str().unwrap()]);
    command.args(steps);
    command
}

#[test]
fn write_past_the_file_size_limit_is_a_clear_error_and_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::new(dir.path(), "fsize");
    let path = pidfile_path_with("svc", &config).unwrap();
    for limit in ["0", "2"] {
        let output = common::claimer(&[], &["ignore-sigxfsz", "fsize-limit", limit, "acquire", path.to_str().unwrap()])
            .output()
            .unwrap();
        let out = String::from_utf8(output.stdout).unwrap();
        assert_eq!(output.status.code(), Some(4), "limit {limit}: {out}");
        assert!(
            out.starts_with(&format!("error cannot write the pid to {}: ", path.display())),
            "limit {limit}: {out}"
        );
        assert!(!path.exists(), "limit {limit}: a partial or empty file was left");
        next_start_succeeds(&config, &format!("after the write failed at limit {limit}"));
    }
    // With SIGXFSZ at its default, the kernel kills the writer: what it leaves must not block the next start.
    let output = common::claimer(&[], &["fsize-limit", "0", "acquire", path.to_str().unwrap()]).output().unwrap();
    assert_eq!(output.status.signal(), Some(25), "{output:?}");
    next_start_succeeds(&config, "after SIGXFSZ");
}

#[test]
fn full_file_system_is_a_clear_error_and_leaves_no_file() {
    if !common::runs_as_root("to mount a small tmpfs in a mount namespace of its own") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mount = dir.path().join("full");
    std::fs::create_dir(&mount).unwrap();
    let pidfile = mount.join("x-svc.pid");
    // A private mount namespace: the small tmpfs disappears with the shell.
    let script = format!(
        "mount -t tmpfs -o size=8k tmpfs {mount} && \
         (dd if=/dev/zero of={mount}/fill bs=4096 count=4 2>/dev/null; true) && \
         {claimer} acquire {pidfile}; echo \"left $(ls {mount} | tr '\\n' ' ')\"; \
         rm {mount}/fill && {claimer} acquire {pidfile}",
        mount = mount.display(),
        pidfile = pidfile.display(),
        claimer = claimer_path().display()
    );
    let output = Command::new("unshare").args(["-m", "sh", "-c", &script]).output().expect("unshare (util-linux)");
    let out = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(
        lines[0],
        format!("error cannot write the pid to {}: No space left on device (os error 28)", pidfile.display())
    );
    assert_eq!(lines[1], "left fill ", "the failed claim left a file behind");
    assert!(lines[2].starts_with("won "), "once there is room, the claim succeeds: {out}");
}
