//! What the command's tests share: a pid directory of their own, a supervised service, and readers of the
//! command's output.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use crate::common::wait_for_value;

/// The command under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_pidfile");

/// A pid directory of its own and an instance name, as every invocation of a test uses them.
pub struct Place {
    pub dir: tempfile::TempDir,
}

impl Place {
    pub fn new() -> Place {
        Place { dir: tempfile::tempdir().unwrap() }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command.env_clear().args(["--dir", self.dir.path().to_str().unwrap(), "--instance", "t"]).args(args);
        command
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    pub fn path(&self, service: &str) -> PathBuf {
        self.dir.path().join(format!("t-{service}.pid"))
    }

    /// Starts `pidfile run SERVICE -- COMMAND...` and waits until its pidfile names the command.
    pub fn start(&self, service: &str, extra: &[&str], command: &[&str]) -> Service {
        let mut args = vec!["run", service];
        args.extend_from_slice(extra);
        args.push("--");
        args.extend_from_slice(command);
        let mut child = self.command(&args).stdout(Stdio::piped()).spawn().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "the command did not start");
        let path = self.path(service);
        let pid = wait_for_value(|| {
            std::fs::read_to_string(&path)
                .ok()?
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|&pid| pid != child.id() || extra.contains(&"--exec"))
        });
        Service { child, stdout, pid }
    }

    /// Starts a service that idles, with `traps` (shell trap lines) run first.
    pub fn start_idle(&self, service: &str, traps: &str) -> Service {
        self.start(service, &[], &strs(&idle(traps)))
    }
}

/// A `pidfile run` process, killed with what it runs when dropped.
pub struct Service {
    pub child: Child,
    stdout: BufReader<std::process::ChildStdout>,
    /// The pid its pidfile names.
    pub pid: u32,
}

impl Service {
    pub fn signal(&self, signal: i32) {
        kill(self.child.id(), signal);
    }

    pub fn line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        line.trim_end().to_owned()
    }

    pub fn wait(&mut self) -> std::process::ExitStatus {
        self.child.wait().unwrap()
    }

    /// Stops it as an operator would, with SIGTERM to the supervisor, and waits for it.
    pub fn stop(mut self) {
        self.signal(15);
        self.wait();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if self.pid != self.child.id() {
            kill(self.pid, 9);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A process the test did not start itself, killed when dropped.
pub struct KillOnDrop(pub u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        kill(self.0, 9);
    }
}

pub fn kill(pid: u32, signal: i32) {
    let pid = rustix::process::Pid::from_raw(pid as i32).unwrap();
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::from_named_raw(signal).unwrap());
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// A shell command that says `ready`, then idles; `traps` are shell trap lines run first.
pub fn idle(traps: &str) -> Vec<String> {
    vec!["sh".into(), "-c".into(), format!("{traps} echo ready; while :; do sleep 0.02; done")]
}

pub fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// Writes a pidfile (or any file) with `content` and `mode`.
pub fn write(path: &Path, content: &str, mode: u32) {
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A directory with a running service, a stale pidfile, a corrupt one, another instance's and unrelated files.
pub fn mixed_directory(place: &Place) -> Service {
    let service = place.start_idle("web", "");
    write(&place.path("old"), "4000000\n", 0o644);
    write(&place.path("bad"), "garbage\n", 0o644);
    write(&place.dir.path().join("other-db.pid"), "4000001\n", 0o644);
    write(&place.dir.path().join("notes.txt"), "not a pidfile\n", 0o644);
    write(&place.dir.path().join("lonely.pid"), "1\n", 0o644);
    service
}

/// The samples of a Prometheus text exposition, by series (`name{labels}`), checking each line's syntax.
pub fn samples(text: &str) -> BTreeMap<String, f64> {
    let mut samples = BTreeMap::new();
    for line in text.lines() {
        if let Some(comment) = line.strip_prefix("# ") {
            let kind = comment.split(' ').next().unwrap();
            assert!(kind == "HELP" || kind == "TYPE", "{line}");
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("not a number in {line:?}"));
        let (name, labels) = series.split_once('{').unwrap();
        assert!(labels.ends_with('}'), "{line}");
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{line}");
        samples.insert(series.to_owned(), value);
    }
    samples
}

/// `pidfile --dir MISSING ARGS...`, where MISSING does not exist: exit 1, and one line naming the directory.
pub fn assert_missing_pid_directory_refused(args: &[&str]) {
    let place = Place::new();
    let missing = place.dir.path().join("missing");
    let output = Command::new(BIN)
        .env_clear()
        .args(["--dir", missing.to_str().unwrap(), "--instance", "t"])
        .args(args)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{args:?}: {}", stderr(&output));
    assert_eq!(stderr(&output), format!("pidfile: pid directory {} does not exist\n", missing.display()), "{args:?}");
}
