//! `pidfile run --background`: a start that returns once the command is ready, tells the truth about it in its exit
//! status, and keeps nothing of its caller's open.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

// The helpers shared with the library's tests: waiting with a bound, liveness, a hang turned into a failure.
#[path = "../../tests/common/mod.rs"]
mod common;

use common::{eventually, process_lives, within_seconds};

const BIN: &str = env!("CARGO_BIN_EXE_pidfile");

/// A pid directory of its own, and the services started there, stopped when the test ends however it ends.
struct Place {
    dir: tempfile::TempDir,
}

impl Place {
    fn new() -> Place {
        Place { dir: tempfile::tempdir().unwrap() }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .args(["--dir", self.dir.path().to_str().unwrap(), "--instance", "t"])
            .args(args);
        command
    }

    /// Runs `pidfile ARGS...` with its output piped, failing the test if it does not end (with its output at end of
    /// file, which a supervisor that kept the pipe would prevent) within a minute.
    fn run(&self, args: &[&str]) -> Output {
        let child = self.command(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn();
        within_seconds(60, move || child.unwrap().wait_with_output().unwrap())
    }

    /// `pidfile run --background OPTIONS... web -- COMMAND...`; the service is stopped when the place is dropped.
    fn start(&self, options: &[&str], command: &[&str]) -> Output {
        let mut args = vec!["run", "--background"];
        args.extend_from_slice(options);
        args.extend_from_slice(&["web", "--"]);
        args.extend_from_slice(command);
        self.run(&args)
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("t-web.pid")
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The pid `pidfile status` reports for a running service.
    fn running_pid(&self) -> u32 {
        let output = self.run(&["status", "web", "--json"]);
        assert_eq!(output.status.code(), Some(0), "running: {}", stdout(&output));
        let status: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        status["pid"].as_u64().expect("a pid") as u32
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        if self.path().exists() {
            let _ = self.run(&["stop", "web", "--timeout", "5s"]);
        }
    }
}

/// A --ready-after that a command which exits at once never reaches, however loaded the machine: the start returns
/// when it exits.
const UNTIL_IT_EXITS: &[&str] = &["--ready-after", "10m"];

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The fields of /proc/PID/stat after the command's name: state, parent, process group, session...
fn stat(pid: u32) -> Vec<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    stat.rsplit_once(") ").unwrap().1.split(' ').map(str::to_owned).collect()
}

#[test]
fn a_start_whose_output_is_piped_ends_with_the_pipe_at_end_of_file() {
    let place = Place::new();
    // `run` reads both pipes to their end: a supervisor (or command) holding either would make it hang.
    let output = place.start(&["--ready-after", "200ms"], &["sleep", "600"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), "");
    assert_eq!(stderr(&output), "", "quiet unless --verbose");
}

#[test]
fn a_command_alive_past_ready_after_runs_detached_under_its_supervisor() {
    let place = Place::new();
    let output = place.start(&["--ready-after", "200ms"], &["sleep", "600"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let pid = place.running_pid();
    assert_eq!(std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap(), "sleep\n", "the command's pid");
    let supervisor: u32 = stat(pid)[1].parse().unwrap();
    let supervisor_stat = stat(supervisor);
    assert_eq!(supervisor_stat[3], supervisor.to_string(), "the supervisor leads a session of its own");
    assert_eq!(std::fs::read_to_string(format!("/proc/{supervisor}/comm")).unwrap(), "pidfile\n");

    let stopped = place.run(&["stop", "web"]);
    assert_eq!(stopped.status.code(), Some(0), "{}", stderr(&stopped));
    eventually("the supervisor ends", || !process_lives(supervisor));
    assert!(!place.path().exists(), "the supervisor removed the pidfile");
}

#[test]
fn verbose_says_which_pid_runs_the_command() {
    let place = Place::new();
    let output = place.run(&["--verbose", "run", "--background", "--ready-after", "0s", "web", "--", "sleep", "600"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let pid = place.running_pid();
    assert_eq!(stderr(&output), format!("pidfile: web runs sleep as pid {pid}, ready\n"));
}

#[test]
fn a_command_that_exits_at_once_gives_its_status_and_leaves_no_pidfile() {
    let place = Place::new();
    let output = place.start(UNTIL_IT_EXITS, &["sh", "-c", "exit 3"]);
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(stderr(&output), "pidfile: sh exited with status 3 before it was ready\n");
    assert!(!place.path().exists());
}

#[test]
fn a_command_that_exits_with_0_before_it_is_ready_is_a_failed_start() {
    let place = Place::new();
    let output = place.start(UNTIL_IT_EXITS, &["true"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stderr(&output), "pidfile: true exited with status 0 before it was ready\n");
    assert!(!place.path().exists());
}

#[test]
fn a_command_killed_before_it_is_ready_gives_128_plus_the_signal() {
    let place = Place::new();
    let output = place.start(UNTIL_IT_EXITS, &["sh", "-c", "kill -TERM $$"]);
    assert_eq!(output.status.code(), Some(128 + 15), "{}", stderr(&output));
    assert!(!place.path().exists());
}

#[test]
fn a_command_that_cannot_start_gives_127_or_126() {
    let place = Place::new();
    let missing = place.start(&[], &["/nonexistent/command"]);
    assert_eq!(missing.status.code(), Some(127), "{}", stderr(&missing));
    assert!(stderr(&missing).starts_with("pidfile: cannot run /nonexistent/command: "), "{}", stderr(&missing));
    let not_executable = place.start(&[], &[place.dir.path().to_str().unwrap()]);
    assert_eq!(not_executable.status.code(), Some(126), "{}", stderr(&not_executable));
    assert!(!place.path().exists());
}

#[test]
fn a_second_start_gives_1_and_starts_nothing() {
    let place = Place::new();
    let first = place.start(&["--ready-after", "0s"], &["sleep", "600"]);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let pid = place.running_pid();
    let marker = place.file("started");
    let second = place.start(&["--ready-after", "0s"], &["touch", marker.to_str().unwrap()]);
    assert_eq!(second.status.code(), Some(1));
    assert_eq!(stderr(&second), format!("pidfile: web is already running (pid {pid}); not starting touch\n"));
    assert!(!marker.exists(), "the second command never ran");
    assert_eq!(place.running_pid(), pid, "the first runs on");
}

#[test]
fn notify_returns_only_once_the_command_said_ready() {
    let place = Place::new();
    let said = place.file("said-ready");
    // Longer than the default --ready-after, so that a start that stopped waiting at it would be caught.
    let script = format!(
        "import os, socket, time\ntime.sleep(1.5)\nopen({said:?}, 'w').close()\n\
         socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b'STATUS=up\\nREADY=1', os.environ['NOTIFY_SOCKET'])\n\
         time.sleep(600)"
    );
    let output = place.start(&["--notify"], &["python3", "-c", &script]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(said.exists(), "returned before READY=1 was sent");
    place.running_pid();
}

#[test]
fn notify_timeout_stops_the_command_and_fails() {
    let place = Place::new();
    let output = place.start(&["--notify", "--timeout", "500ms"], &["sleep", "600"]);
    assert_eq!(output.status.code(), Some(1));
    // The status the supervisor reaped: SIGTERM ended the command before the start returned.
    assert_eq!(stderr(&output), "pidfile: sleep did not say READY=1 within 500ms: stopped it (status 143)\n");
    assert!(!place.path().exists());
}

#[test]
fn the_log_receives_the_commands_output_and_is_not_world_readable() {
    let place = Place::new();
    let log = place.file("web.log");
    std::fs::write(&log, "before\n").unwrap();
    let appended = place.file("new.log");
    let output = place.start(
        &["--log", appended.to_str().unwrap(), "--ready-after", "0s"],
        &["sh", "-c", "echo out; echo err >&2; exec sleep 600"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    eventually("the command writes its log", || {
        std::fs::read_to_string(&appended).is_ok_and(|text| text.lines().count() == 2)
    });
    assert_eq!(std::fs::read_to_string(&appended).unwrap(), "out\nerr\n");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&appended).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode & !0o640, 0, "created 0640 (less the umask), not {mode:o}");

    let stopped = place.run(&["stop", "web"]);
    assert_eq!(stopped.status.code(), Some(0), "{}", stderr(&stopped));
    let again =
        place.start(&["--log", log.to_str().unwrap(), "--ready-after", "10m"], &["sh", "-c", "echo again; exit 5"]);
    assert_eq!(again.status.code(), Some(5));
    let expected = "before\nagain\npidfile: sh exited with status 5 before it was ready\n";
    assert_eq!(std::fs::read_to_string(&log).unwrap(), expected, "appended to, with why the start failed");
}

#[test]
fn a_command_that_ends_after_it_was_ready_leaves_its_status_in_the_log() {
    let place = Place::new();
    let log = place.file("web.log");
    let gate = place.file("gate");
    // Ready once alive for 10 ms; exits 4 once the test says so.
    let script = format!("echo up; while [ ! -e {} ]; do sleep 0.02; done; exit 4", gate.display());
    let output = place.start(&["--log", log.to_str().unwrap(), "--ready-after", "10ms"], &["sh", "-c", &script]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let pid = place.running_pid();
    std::fs::write(&gate, "").unwrap();
    eventually("the service ends and its supervisor removes the pidfile", || !place.path().exists());
    eventually("the supervisor logs the status", || {
        std::fs::read_to_string(&log).is_ok_and(|text| text.lines().count() == 2)
    });
    let expected = format!("up\npidfile: web: sh (pid {pid}) exited with status 4\n");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), expected);
}

/// A process the command left behind, writing to the log as fast as it can: ended when the test ends, and after
/// 10 s in any case.
struct Chatterbox(std::os::fd::OwnedFd);

impl Chatterbox {
    /// The program: it lets go of every descriptor but its standard streams (the pidfile's lock among them), notes
    /// its pid in the file named by its argument, then writes one line at a time.
    const SCRIPT: &str = "import os, sys, time\n\
        os.closerange(3, 65536)\n\
        open(sys.argv[1] + '.new', 'w').write(str(os.getpid()))\n\
        os.rename(sys.argv[1] + '.new', sys.argv[1])\n\
        end = time.monotonic() + 10\n\
        while time.monotonic() < end: os.write(1, b'0123456789abcdef\\n')\n";

    /// Pins the process whose pid is noted at `noted`, once it is.
    fn pin(noted: &std::path::Path) -> Chatterbox {
        let pid: i32 = common::wait_for_value(|| std::fs::read_to_string(noted).ok()?.parse().ok());
        let pid = rustix::process::Pid::from_raw(pid).unwrap();
        Chatterbox(rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).unwrap())
    }
}

impl Drop for Chatterbox {
    fn drop(&mut self) {
        let _ = rustix::process::pidfd_send_signal(&self.0, rustix::process::Signal::KILL);
    }
}

#[test]
fn the_status_line_is_whole_though_a_process_left_behind_writes_to_the_log_meanwhile() {
    let place = Place::new();
    let log = place.file("web.log");
    let gate = place.file("gate");
    let noted = place.file("chatterbox");
    let script = format!(
        "echo up; python3 -c \"$0\" {noted} & while [ ! -e {gate} ]; do sleep 0.02; done; exit 4",
        noted = noted.display(),
        gate = gate.display()
    );
    let output = place
        .start(&["--log", log.to_str().unwrap(), "--ready-after", "10ms"], &["sh", "-c", &script, Chatterbox::SCRIPT]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let pid = place.running_pid();
    let chatterbox = Chatterbox::pin(&noted);
    std::fs::write(&gate, "").unwrap();
    eventually("the service ends and its supervisor removes the pidfile", || !place.path().exists());
    let status = format!("pidfile: web: sh (pid {pid}) exited with status 4");
    eventually("the supervisor logs the status", || {
        std::fs::read_to_string(&log).is_ok_and(|text| text.contains("exited with status 4"))
    });
    drop(chatterbox);
    let text = std::fs::read_to_string(&log).unwrap();
    let odd: Vec<&str> = text.lines().filter(|&line| !["up", "0123456789abcdef", &status].contains(&line)).collect();
    assert!(odd.is_empty(), "lines mixed up: {odd:?}");
    assert!(text.lines().any(|line| line == status), "no {status:?}");
}

#[test]
fn a_log_that_is_a_symbolic_link_is_refused_and_nothing_starts() {
    let place = Place::new();
    let target = place.file("target");
    std::fs::write(&target, "untouched\n").unwrap();
    let link = place.file("web.log");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let output = place.start(&["--log", link.to_str().unwrap()], &["sh", "-c", "echo written"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        format!("pidfile: cannot open the log {}: it is a symbolic link, which is not followed\n", link.display())
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "untouched\n");
    assert!(!place.path().exists());
}

#[test]
fn readiness_options_need_background() {
    let place = Place::new();
    for args in [
        &["run", "--ready-after", "1s", "web", "--", "true"][..],
        &["run", "--notify", "web", "--", "true"],
        &["run", "--log", "web.log", "web", "--", "true"],
        &["run", "--background", "--timeout", "1s", "web", "--", "true"],
        &["run", "--background", "--notify", "--ready-after", "1s", "web", "--", "true"],
        &["run", "--background", "--exec", "web", "--", "true"],
    ] {
        let output = place.run(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", stderr(&output));
        assert!(!place.path().exists());
    }
}

#[test]
fn a_caller_killed_while_it_waits_leaves_the_service_to_start() {
    let place = Place::new();
    let said = place.file("said-ready");
    let script = format!(
        "import os, socket, time\n\
         while not os.path.exists({go:?}): time.sleep(0.01)\n\
         socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b'READY=1', os.environ['NOTIFY_SOCKET'])\n\
         open({said:?}, 'w').write(os.environ['NOTIFY_SOCKET'])\n\
         time.sleep(600)",
        go = place.file("go"),
    );
    let mut caller = place
        .command(&["run", "--background", "--notify", "web", "--", "python3", "-c", &script])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    // The command's pid, once the supervisor wrote it in place of its own.
    let pid = common::wait_for_value(|| {
        let pid = std::fs::read_to_string(place.path()).ok()?.trim().parse::<u32>().ok()?;
        let command = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        (command == "python3\n").then_some(pid)
    });
    let supervisor: u32 = stat(pid)[1].parse().unwrap();
    caller.kill().unwrap();
    caller.wait().unwrap();
    // Told to say it is ready only now, with no one left to hear the supervisor's report.
    std::fs::write(place.file("go"), "").unwrap();
    eventually("the command says it is ready", || said.exists());
    // The supervisor removes the socket once it has reported (to no one): a SIGPIPE would have ended it before.
    let socket = std::fs::read_to_string(&said).unwrap();
    eventually("the supervisor reports", || !std::path::Path::new(&socket).exists());
    assert!(process_lives(supervisor), "the supervisor outlived its report");
    assert_eq!(place.running_pid(), pid);
}

#[test]
fn a_start_keeps_none_of_the_descriptors_its_caller_inherited() {
    let place = Place::new();
    // The caller gets its output pipe again as descriptor 3, inheritable, as debconf passes its pipe to the
    // maintainer scripts that start services: a supervisor or command keeping it would keep the pipe from its end.
    let mut caller = Command::new("sh");
    caller
        .args(["-c", r#"exec "$@" 3>&1"#, "sh", BIN, "--dir", place.dir.path().to_str().unwrap(), "--instance", "t"])
        .args(["run", "--background", "--ready-after", "0s", "web", "--", "sleep", "600"]);
    let child = caller.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn();
    let output = within_seconds(60, move || child.unwrap().wait_with_output().unwrap());
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let pid = place.running_pid();
    let supervisor: u32 = stat(pid)[1].parse().unwrap();
    // Neither has a pipe of its own: any pipe it holds is the caller's.
    for process in [pid, supervisor] {
        let pipes: Vec<PathBuf> = std::fs::read_dir(format!("/proc/{process}/fd"))
            .unwrap()
            .filter_map(|entry| std::fs::read_link(entry.unwrap().path()).ok())
            .filter(|target| target.to_string_lossy().starts_with("pipe:"))
            .collect();
        assert_eq!(pipes, Vec::<PathBuf>::new(), "pid {process} kept the caller's pipe");
    }
}

#[test]
fn a_log_that_is_a_fifo_no_one_reads_is_refused_at_once() {
    let place = Place::new();
    let fifo = place.file("web.log");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    // `run` fails the test after a minute: opening the FIFO to write would wait for a reader that never comes.
    let output = place.start(&["--log", fifo.to_str().unwrap()], &["sleep", "600"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(
        stderr(&output),
        format!("pidfile: cannot open the log {}: it is a FIFO that no process reads\n", fifo.display())
    );
    assert!(!place.path().exists(), "nothing started");
}

#[test]
fn an_instance_name_that_looks_like_an_option_is_passed_on_as_a_name() {
    let place = Place::new();
    let mut start = Command::new(BIN);
    start.args(["--dir", place.dir.path().to_str().unwrap(), "--instance=-v"]).args([
        "run",
        "--background",
        "--ready-after",
        "0s",
        "web",
        "--",
        "sleep",
        "600",
    ]);
    let output = within_seconds(60, move || start.stdin(Stdio::null()).output().unwrap());
    let claimed = place.file("-v-web.pid").exists();
    let dir = place.dir.path().to_str().unwrap();
    let stopped = Command::new(BIN).args(["--dir", dir, "--instance=-v", "stop", "web"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(claimed, "the supervisor claimed -v-web.pid");
    assert_eq!(stopped.status.code(), Some(0), "{}", stderr(&stopped));
}

#[test]
fn a_log_planted_by_another_user_in_a_directory_anyone_can_write_to_is_refused() {
    if !common::runs_as_root("to plant a log as the user nobody") {
        return;
    }
    let place = Place::new();
    // As /tmp: sticky, and anyone may write to it.
    let shared = place.file("shared");
    std::fs::create_dir(&shared).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let planted = shared.join("web.log");
    std::fs::write(&planted, "nobody's\n").unwrap();
    std::os::unix::fs::chown(&planted, Some(65534), Some(65534)).unwrap();
    let output = place.start(&["--log", planted.to_str().unwrap()], &["sh", "-c", "echo secret; exec sleep 600"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(
        stderr(&output),
        format!(
            "pidfile: cannot open the log {}: it belongs to uid 65534, in a directory anyone can write to\n",
            planted.display()
        )
    );
    assert_eq!(std::fs::read_to_string(&planted).unwrap(), "nobody's\n", "nothing written into it");
    assert!(!place.path().exists(), "nothing started");
}

/// README's init script, with its server replaced by `sleep`, its log and pid directory by the place's, and
/// `pidfile` by the one under test.
fn readme_init_script(place: &Place) -> PathBuf {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let start = readme.find("#!/bin/sh\ncase \"$1\" in\n").expect("README has the init script");
    let script = &readme[start..start + readme[start..].find("```").unwrap()];
    let log = place.file("web.log");
    let script = script
        .replace("/usr/bin/web-server --port 8080", "sleep 600")
        .replace("/var/log/web.log", log.to_str().unwrap())
        .replace("pidfile --instance", &format!("{BIN} --dir {} --instance", place.dir.path().display()));
    let path = place.file("web");
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// Runs the init script with `action`, its output piped: what it wrote, once both pipes ended, within a minute.
fn init(script: &std::path::Path, action: &str) -> Output {
    let child =
        Command::new(script).arg(action).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn();
    within_seconds(60, move || child.unwrap().wait_with_output().unwrap())
}

/// Runs the init script's `stop` when dropped, so that a failed test leaves no server behind.
struct StopsAtTheEnd(PathBuf);

impl Drop for StopsAtTheEnd {
    fn drop(&mut self) {
        init(&self.0, "stop");
    }
}

#[test]
fn the_readme_init_script_starts_restarts_and_stops_the_service_with_its_output_piped() {
    let place = Place::new();
    let script = readme_init_script(&place);
    let _stopped_at_the_end = StopsAtTheEnd(script.clone());
    let pidfile = place.file("prod-web.pid");
    let started = init(&script, "start");
    assert_eq!(started.status.code(), Some(0), "{}", stderr(&started));
    let first = std::fs::read_to_string(&pidfile).unwrap();
    let status = init(&script, "status");
    assert_eq!(status.status.code(), Some(0), "{}", stderr(&status));
    assert_eq!(init(&script, "start").status.code(), Some(1), "already running");
    let restarted = init(&script, "restart");
    assert_eq!(restarted.status.code(), Some(0), "{}", stderr(&restarted));
    assert_ne!(std::fs::read_to_string(&pidfile).unwrap(), first, "a new server");
    let stopped = init(&script, "stop");
    assert_eq!(stopped.status.code(), Some(0), "{}", stderr(&stopped));
    assert_eq!(init(&script, "status").status.code(), Some(3), "not running");
    assert_eq!(init(&script, "reload").status.code(), Some(2), "not an action");
}

#[test]
fn a_log_on_a_full_disk_changes_nothing_of_a_start() {
    let place = Place::new();
    let failed = place.start(&["--log", "/dev/full", "--ready-after", "10m"], &["sh", "-c", "exit 3"]);
    assert_eq!(failed.status.code(), Some(3), "{}", stderr(&failed));
    assert!(!place.path().exists());
    // --verbose: the supervisor says what it does into the log, and fails to.
    let output = place.run(&[
        "--verbose",
        "run",
        "--background",
        "--log",
        "/dev/full",
        "--ready-after",
        "0s",
        "web",
        "--",
        "sleep",
        "600",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let pid = place.running_pid();
    let supervisor: u32 = stat(pid)[1].parse().unwrap();
    assert_eq!(std::fs::read_to_string(format!("/proc/{supervisor}/comm")).unwrap(), "pidfile\n", "supervised");
}

#[test]
fn a_failure_naming_a_program_with_a_newline_comes_back_whole() {
    let place = Place::new();
    let output = place.start(&[], &["/no\nsuch"]);
    assert_eq!(output.status.code(), Some(127));
    assert_eq!(stderr(&output), "pidfile: cannot run /no\\nsuch: No such file or directory (os error 2)\n");
}
