//! The `pidfile` command, run as a real process: every subcommand and exit code.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

// The library's test helpers: bystander processes, liveness, the rule for tests that need root, and the tracker
// of the running service.
#[path = "../../tests/common/mod.rs"]
mod common;

use common::{Bystander, process_lives, runs_as_root};

const BIN: &str = env!("CARGO_BIN_EXE_pidfile");

/// A pid directory of its own and an instance name, as every invocation of a test uses them.
struct Place {
    dir: tempfile::TempDir,
}

impl Place {
    fn new() -> Place {
        Place { dir: tempfile::tempdir().unwrap() }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command.env_clear().args(["--dir", self.dir.path().to_str().unwrap(), "--instance", "t"]).args(args);
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn path(&self, service: &str) -> PathBuf {
        self.dir.path().join(format!("t-{service}.pid"))
    }

    /// Starts `pidfile run SERVICE -- COMMAND...` and waits until its pidfile names the command.
    fn start(&self, service: &str, extra: &[&str], command: &[&str]) -> Service {
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
        let pid = wait_for(|| {
            std::fs::read_to_string(&path)
                .ok()?
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|&pid| pid != child.id() || extra.contains(&"--exec"))
        });
        Service { child, stdout, pid }
    }
}

/// A `pidfile run` process, killed with what it runs when dropped.
struct Service {
    child: Child,
    stdout: BufReader<std::process::ChildStdout>,
    /// The pid its pidfile names.
    pid: u32,
}

impl Service {
    fn signal(&self, signal: i32) {
        kill(self.child.id(), signal);
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        line.trim_end().to_owned()
    }

    fn wait(&mut self) -> std::process::ExitStatus {
        self.child.wait().unwrap()
    }

    /// Stops it as an operator would, with SIGTERM to the supervisor, and waits for it.
    fn stop(mut self) {
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

fn kill(pid: u32, signal: i32) {
    let pid = rustix::process::Pid::from_raw(pid as i32).unwrap();
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::from_named_raw(signal).unwrap());
}

fn wait_for<T>(mut probe: impl FnMut() -> Option<T>) -> T {
    for _ in 0..500 {
        if let Some(value) = probe() {
            return value;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("timed out");
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// A shell command that says `ready`, then idles; `traps` are shell trap lines run first.
fn idle(traps: &str) -> Vec<String> {
    vec!["sh".into(), "-c".into(), format!("{traps} echo ready; while :; do sleep 0.02; done")]
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

fn write(path: &Path, content: &str, mode: u32) {
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn path_prints_the_pidfile_path() {
    let place = Place::new();
    let output = place.run(&["path", "web"]);
    assert!(output.status.success());
    assert_eq!(stdout(&output), format!("{}\n", place.path("web").display()));
}

#[test]
fn global_options_override_the_environment_and_config_file() {
    let place = Place::new();
    let file = place.dir.path().join("conf.toml");
    std::fs::write(&file, "instance_name = \"filed\"\n[canonical]\npid_dir = \"/srv/pids\"\n").unwrap();
    let output =
        Command::new(BIN).env_clear().args(["--config", file.to_str().unwrap(), "path", "web"]).output().unwrap();
    assert_eq!(stdout(&output), "/srv/pids/filed-web.pid\n");
    let output = Command::new(BIN)
        .env_clear()
        .env("PIDFILE_INSTANCE", "env")
        .args(["--config", file.to_str().unwrap(), "--dir", "/d", "path", "web"])
        .output()
        .unwrap();
    assert_eq!(stdout(&output), "/d/env-web.pid\n");
    let broken = place.dir.path().join("broken.toml");
    std::fs::write(&broken, "pid_dir = [\n").unwrap();
    let output =
        Command::new(BIN).env_clear().args(["--config", broken.to_str().unwrap(), "path", "web"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(message.starts_with("pidfile: configuration file ") && message.contains("line 1"), "{message}");
    assert_eq!(message.lines().count(), 1);
}

#[test]
fn an_unknown_key_in_the_config_file_is_an_error_naming_the_file_line_and_key() {
    let place = Place::new();
    let file = place.dir.path().join("conf.toml");
    std::fs::write(&file, "instance_name = \"filed\"\n\npid-dir = \"/srv/pids\"\n").unwrap();
    let expected = format!(
        "pidfile: configuration file {}, line 3: unknown key \"pid-dir\" (known keys: instance_name, pid_dir, canonical)\n",
        file.display()
    );
    let by_option =
        Command::new(BIN).env_clear().args(["--config", file.to_str().unwrap(), "path", "web"]).output().unwrap();
    let by_environment =
        Command::new(BIN).env_clear().env("PIDFILE_CONFIG", &file).args(["path", "web"]).output().unwrap();
    for output in [by_option, by_environment] {
        assert_eq!(
            (output.status.code(), stderr(&output), stdout(&output)),
            (Some(1), expected.clone(), String::new())
        );
    }
}

#[test]
fn get_prints_the_pid_or_exits_1_without_a_pidfile_and_4_when_corrupt() {
    let place = Place::new();
    let output = place.run(&["get", "web"]);
    assert_eq!((output.status.code(), stdout(&output).as_str()), (Some(1), ""));
    write(&place.path("web"), "72\n", 0o644);
    let output = place.run(&["get", "web"]);
    assert_eq!((output.status.code(), stdout(&output).as_str()), (Some(0), "72\n"));
    write(&place.path("web"), "seventy-two\n", 0o644);
    let output = place.run(&["get", "web"]);
    assert_eq!(output.status.code(), Some(4));
    assert!(stderr(&output).starts_with(&format!("pidfile: PID file {} is corrupt", place.path("web").display())));
}

#[test]
fn status_uses_the_lsb_codes() {
    let place = Place::new();
    assert_eq!(place.run(&["status", "web"]).status.code(), Some(3));
    let service = place.start("web", &[], &strs(&idle("")));
    let output = place.run(&["status", "web"]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(stdout(&output), format!("web is running (pid {}, pidfile locked)\n", service.pid));
    drop(service);
    write(&place.path("stale"), "4000000\n", 0o644);
    assert_eq!(place.run(&["status", "stale"]).status.code(), Some(1));
    write(&place.path("bad"), "garbage\n", 0o644);
    let output = place.run(&["status", "bad"]);
    assert_eq!(output.status.code(), Some(4));
    assert!(stderr(&output).starts_with("pidfile: PID file "), "{}", stderr(&output));
}

#[test]
fn status_json_describes_the_service_field_by_field() {
    let place = Place::new();
    let service = place.start("web", &[], &strs(&idle("")));
    let output = place.run(&["status", "web", "--json"]);
    assert_eq!(output.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(report["service"], "web");
    assert_eq!(report["instance"], "t");
    assert_eq!(report["path"], place.path("web").to_str().unwrap());
    assert_eq!(report["pid"], service.pid);
    assert_eq!(report["state"], "running");
    assert_eq!(report["locked"], true);
    let since = report["since"].as_str().unwrap();
    assert!(since.len() == 20 && since.ends_with('Z') && since.as_bytes()[10] == b'T', "{since}");
    service.stop();

    let output = place.run(&["status", "web", "--json"]);
    assert_eq!(output.status.code(), Some(3));
    let report: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(
        (report["state"].as_str(), report["pid"].is_null(), report["since"].is_null()),
        (Some("not_running"), true, true)
    );

    write(&place.path("web"), "4000000\n", 0o644);
    let report: serde_json::Value = serde_json::from_str(&stdout(&place.run(&["status", "web", "--json"]))).unwrap();
    assert_eq!(
        (report["state"].as_str(), report["pid"].as_u64(), report["locked"].as_bool()),
        (Some("stale"), Some(4_000_000), Some(false))
    );

    write(&place.path("web"), "junk\n", 0o644);
    let output = place.run(&["status", "web", "--json"]);
    assert_eq!(output.status.code(), Some(4));
    let report: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(report["state"], "unknown");
    assert!(report["error"].as_str().unwrap().contains("corrupt"));
}

#[test]
fn run_forwards_each_signal_and_exits_with_the_commands_status() {
    let place = Place::new();
    for (number, name) in [(2, "INT"), (15, "TERM"), (1, "HUP"), (3, "QUIT"), (10, "USR1"), (12, "USR2")] {
        let traps = format!("trap 'echo got {name}; exit {number}' {name};");
        let mut service = place.start("fwd", &[], &strs(&idle(&traps)));
        service.signal(number);
        assert_eq!(service.line(), format!("got {name}"));
        assert_eq!(service.wait().code(), Some(number), "{name}");
        assert!(!place.path("fwd").exists(), "{name}: the pidfile was left behind");
    }
}

#[test]
fn run_returns_the_exit_code_or_128_plus_the_signal() {
    let place = Place::new();
    assert_eq!(place.run(&["run", "code", "--", "sh", "-c", "exit 5"]).status.code(), Some(5));
    assert_eq!(place.run(&["run", "code", "--", "sh", "-c", "kill -KILL $$"]).status.code(), Some(137));
    assert!(!place.path("code").exists());
    let output = place.run(&["run", "code", "--", "/nonexistent/program"]);
    assert_eq!(output.status.code(), Some(127));
    assert!(stderr(&output).starts_with("pidfile: cannot run /nonexistent/program"));
    assert!(!place.path("code").exists());
}

#[test]
fn run_exec_gives_the_pidfile_the_commands_own_pid() {
    let place = Place::new();
    let script = "echo ready; echo $$; while :; do sleep 0.02; done";
    let mut service = place.start("ex", &["--exec"], &["sh", "-c", script]);
    let own_pid: u32 = service.line().parse().unwrap();
    assert_eq!(own_pid, service.child.id());
    assert_eq!(service.pid, own_pid);
    // The command holds the lock: a second start is refused.
    let output = place.run(&["run", "ex", "--", "true"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains(&format!("pid {own_pid}")));
    assert_eq!(place.run(&["status", "ex"]).status.code(), Some(0));
}

#[test]
fn run_refuses_while_running_and_does_not_start_the_command() {
    let place = Place::new();
    let service = place.start("web", &[], &strs(&idle("")));
    let marker = place.dir.path().join("started");
    let output = place.run(&["run", "web", "--", "touch", marker.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stderr(&output), format!("pidfile: web is already running (pid {}); not starting touch\n", service.pid));
    assert!(!marker.exists());
}

#[test]
fn killing_the_supervisor_leaves_the_command_holding_the_lock() {
    let place = Place::new();
    let mut service = place.start("web", &[], &strs(&idle("")));
    service.signal(9);
    service.wait();
    assert!(process_lives(service.pid));
    let output = place.run(&["run", "web", "--", "true"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains(&format!("pid {}", service.pid)), "{}", stderr(&output));
    // stop finds the orphaned command through the pidfile and stops it.
    assert_eq!(place.run(&["stop", "web"]).status.code(), Some(0));
    assert!(!process_lives(service.pid));
    assert!(!place.path("web").exists());
}

#[test]
fn stop_sends_the_signal_waits_and_is_quiet_unless_verbose() {
    let place = Place::new();
    let mut service = place.start("web", &[], &strs(&idle("trap 'echo got INT; exit 3' INT;")));
    let output = place.run(&["stop", "web", "--signal", "SIGINT"]);
    assert_eq!((output.status.code(), stdout(&output).as_str(), stderr(&output).as_str()), (Some(0), "", ""));
    assert_eq!(service.line(), "got INT");
    assert_eq!(service.wait().code(), Some(3));
    assert!(!place.path("web").exists());
    let output = place.run(&["stop", "web", "-v"]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(stderr(&output), "pidfile: web is not running\n");
}

#[test]
fn stop_sends_a_real_time_signal_counted_from_the_start_of_the_range() {
    let place = Place::new();
    // The number as the shell, over the same C library, counts it.
    let number = Command::new("bash").args(["-c", "kill -l RTMIN+1"]).output().unwrap();
    let number = stdout(&number).trim().to_owned();
    assert!(number.parse::<u32>().is_ok(), "bash cannot count RTMIN+1: {number:?}");
    let mut service = place.start("web", &[], &strs(&idle(&format!("trap 'echo got RTMIN+1; exit 3' {number};"))));
    let output = place.run(&["stop", "web", "--signal", "sigrtmin+1", "-v"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stderr(&output).contains("sent SIGRTMIN+1 to web"), "{}", stderr(&output));
    assert_eq!(service.line(), "got RTMIN+1");
    assert_eq!(service.wait().code(), Some(3));
}

#[test]
fn stop_refuses_a_signal_the_c_library_keeps_for_itself() {
    let place = Place::new();
    let output = place.run(&["stop", "web", "--signal", "32"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).starts_with("pidfile: invalid value '32' for '--signal <SIG>': invalid signal \"32\""),
        "{}",
        stderr(&output)
    );
}

#[test]
fn stop_kills_a_command_that_ignores_sigterm_after_the_timeout() {
    let place = Place::new();
    let mut service = place.start("stubborn", &[], &strs(&idle("trap '' TERM;")));
    let output = place.run(&["stop", "stubborn", "--timeout", "300ms", "-v"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stderr(&output).contains("sent SIGKILL"), "{}", stderr(&output));
    assert_eq!(service.wait().code(), Some(137));
    assert!(!process_lives(service.pid));
    assert!(!place.path("stubborn").exists());
}

#[test]
fn stop_with_no_kill_gives_up_and_says_so() {
    let place = Place::new();
    let service = place.start("stubborn", &[], &strs(&idle("trap '' TERM;")));
    let output = place.run(&["stop", "stubborn", "--timeout", "200ms", "--no-kill"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("still running") && stderr(&output).contains("--no-kill"), "{}", stderr(&output));
    assert!(process_lives(service.pid));
    assert!(place.path("stubborn").exists());
}

#[test]
fn stop_removes_a_stale_pidfile_and_signals_nothing() {
    let place = Place::new();
    write(&place.path("gone"), "4000000\n", 0o644);
    assert_eq!(place.run(&["stop", "gone"]).status.code(), Some(0));
    assert!(!place.path("gone").exists());
}

#[test]
fn stop_refuses_a_world_writable_pidfile_even_when_locked() {
    let place = Place::new();
    let service = place.start("open", &[], &strs(&idle("")));
    // Anyone may open such a file for writing, so its lock proves nothing.
    std::fs::set_permissions(place.path("open"), std::fs::Permissions::from_mode(0o666)).unwrap();
    let output = place.run(&["stop", "open"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("may be written by every user"), "{}", stderr(&output));
    assert!(process_lives(service.pid));
    service.stop();
}

#[test]
fn stop_refuses_a_locked_pidfile_of_another_user() {
    if !runs_as_root("to give a pidfile to another user") {
        return;
    }
    let place = Place::new();
    let service = place.start("foreign", &[], &strs(&idle("")));
    std::os::unix::fs::chown(place.path("foreign"), Some(65534), Some(65534)).unwrap();
    let output = place.run(&["stop", "foreign"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("belongs to user 65534"), "{}", stderr(&output));
    assert!(process_lives(service.pid));
    service.stop();
}

#[test]
fn stop_refuses_an_unlocked_pidfile_naming_a_live_process() {
    let place = Place::new();
    let bystander = Bystander::start();
    // Written after the process started (later than the clock tick of its start time, and the coarse clock of file
    // times), as a tool that does not lock writes it: running, but not proven.
    std::thread::sleep(Duration::from_millis(30));
    write(&place.path("plain"), &format!("{}\n", bystander.pid()), 0o644);
    let output = place.run(&["stop", "plain"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("not signalling it"), "{}", stderr(&output));
    assert!(process_lives(bystander.pid()));
}

#[test]
fn stop_refuses_to_signal_pid_1() {
    let place = Place::new();
    write(&place.path("init"), "1\n", 0o644);
    let output = place.run(&["stop", "init"]);
    assert_eq!(output.status.code(), Some(1));
    // An unlocked file proves nothing, so nothing is signalled, whatever pid it names.
    assert!(
        stderr(&output).contains("nothing proves that pid 1 is init") && stderr(&output).contains("not signalling"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn wait_reaches_running_and_gone_or_times_out() {
    let place = Place::new();
    let output = place.run(&["wait", "web", "--timeout", "200ms"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("did not start"));
    assert_eq!(place.run(&["wait", "web", "--gone", "--timeout", "200ms"]).status.code(), Some(0));

    let waiter = place.command(&["wait", "web", "--timeout", "10s"]).spawn().unwrap();
    let service = place.start("web", &[], &strs(&idle("")));
    assert_eq!(waiter.wait_with_output().unwrap().status.code(), Some(0));
    assert_eq!(place.run(&["wait", "web", "--timeout", "200ms"]).status.code(), Some(0));
    assert_eq!(place.run(&["wait", "web", "--gone", "--timeout", "200ms"]).status.code(), Some(1));
    let waiter = place.command(&["wait", "web", "--gone", "--timeout", "10s"]).spawn().unwrap();
    service.signal(15);
    assert_eq!(waiter.wait_with_output().unwrap().status.code(), Some(0));
}

#[test]
fn remove_takes_stale_and_corrupt_pidfiles_but_never_a_live_one() {
    let place = Place::new();
    let service = place.start("web", &[], &strs(&idle("")));
    let output = place.run(&["remove", "web"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains(&format!("web is running (pid {})", service.pid)));
    assert!(place.path("web").exists());
    drop(service);

    write(&place.path("stale"), "4000000\n", 0o644);
    assert_eq!(place.run(&["remove", "stale"]).status.code(), Some(0));
    assert!(!place.path("stale").exists());
    write(&place.path("bad"), "junk", 0o644);
    assert_eq!(place.run(&["remove", "bad"]).status.code(), Some(0));
    assert!(!place.path("bad").exists());
    assert_eq!(place.run(&["remove", "missing"]).status.code(), Some(0));
}

/// A directory with a running service, a stale pidfile, a corrupt one, another instance's and unrelated files.
fn mixed_directory(place: &Place) -> Service {
    let service = place.start("web", &[], &strs(&idle("")));
    write(&place.path("old"), "4000000\n", 0o644);
    write(&place.path("bad"), "garbage\n", 0o644);
    write(&place.dir.path().join("other-db.pid"), "4000001\n", 0o644);
    write(&place.dir.path().join("notes.txt"), "not a pidfile\n", 0o644);
    write(&place.dir.path().join("lonely.pid"), "1\n", 0o644);
    service
}

#[test]
fn list_shows_running_stale_and_corrupt_pidfiles_of_the_instance() {
    let place = Place::new();
    let service = mixed_directory(&place);
    let output = place.run(&["list"]);
    assert_eq!(output.status.code(), Some(0));
    let lines: Vec<Vec<String>> =
        stdout(&output).lines().map(|line| line.split_whitespace().map(str::to_owned).collect()).collect();
    assert_eq!(lines[0], ["SERVICE", "PID", "STATE", "SINCE"]);
    let rows: Vec<(&str, &str, &str)> =
        lines[1..].iter().map(|row| (row[0].as_str(), row[1].as_str(), row[2].as_str())).collect();
    let pid = service.pid.to_string();
    assert_eq!(rows, [("bad", "-", "unknown"), ("old", "4000000", "stale"), ("web", pid.as_str(), "running")]);

    let output = place.run(&["list", "--all-instances", "--json"]);
    let reports: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    let seen: Vec<(String, String, String)> = reports
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["instance"].as_str().unwrap().into(),
                r["service"].as_str().unwrap().into(),
                r["state"].as_str().unwrap().into(),
            )
        })
        .collect();
    let expected = [("other", "db", "stale"), ("t", "bad", "unknown"), ("t", "old", "stale"), ("t", "web", "running")];
    let expected: Vec<(String, String, String)> =
        expected.iter().map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())).collect();
    assert_eq!(seen, expected);
}

/// The samples of a Prometheus text exposition, by series (`name{labels}`), checking each line's syntax.
fn samples(text: &str) -> std::collections::BTreeMap<String, f64> {
    let mut samples = std::collections::BTreeMap::new();
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

#[test]
fn list_prometheus_output_parses_as_the_text_exposition_format() {
    let place = Place::new();
    let service = mixed_directory(&place);
    let output = place.run(&["list", "--prometheus"]);
    assert_eq!(output.status.code(), Some(0));
    let text = stdout(&output);
    let samples = samples(&text);
    assert_eq!(samples[r#"pidfile_up{instance="t",service="web"}"#], 1.0);
    assert_eq!(samples[r#"pidfile_up{instance="t",service="old"}"#], 0.0);
    assert_eq!(samples[r#"pidfile_up{instance="t",service="bad"}"#], 0.0);
    assert_eq!(samples[r#"pidfile_locked{instance="t",service="web"}"#], 1.0);
    assert_eq!(samples[r#"pidfile_unknown{instance="t",service="web"}"#], 0.0);
    assert_eq!(samples[r#"pidfile_unknown{instance="t",service="old"}"#], 0.0);
    // A corrupt pidfile says nothing of its service.
    assert_eq!(samples[r#"pidfile_unknown{instance="t",service="bad"}"#], 1.0);
    assert_eq!(samples[r#"pidfile_pid{instance="t",service="web"}"#], f64::from(service.pid));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let since = samples[r#"pidfile_start_time_seconds{instance="t",service="web"}"#];
    assert!(since <= now && since > now - 600.0, "{since}");
    assert!(!text.contains("other"), "another instance's pidfile was listed");
}

#[test]
fn usage_errors_exit_2_with_one_line() {
    let place = Place::new();
    for args in [
        &["get", "a/b"][..],
        &["status", ".."],
        &["stop", "web", "--timeout", "soon"],
        &["stop", "web", "--signal", "NOPE"],
        &["wait", "web", "--timeout", "-1s"],
        &["run", "web"],
        &["frobnicate"],
    ] {
        let output = place.run(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", stderr(&output));
        let message = stderr(&output);
        assert!(
            message.starts_with("pidfile: ") && message.ends_with('\n') && message.lines().count() == 1,
            "{args:?}: not one line: {message}"
        );
    }
    // A negative duration is a bad duration, not an option; `start` points to `run`.
    let output = place.run(&["wait", "web", "--timeout", "-1s"]);
    assert!(stderr(&output).contains("invalid duration \"-1s\""), "{}", stderr(&output));
    let output = place.run(&["start", "web"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("a service is started with `pidfile run SERVICE -- COMMAND`"),
        "{}",
        stderr(&output)
    );
    let output = place.run(&["get", "a/b"]);
    assert_eq!(stderr(&output), "pidfile: invalid service name \"a/b\": it contains '/'\n");
}

#[test]
fn every_subcommand_has_help_with_an_example() {
    let place = Place::new();
    for subcommand in ["path", "get", "status", "run", "stop", "wait", "remove", "list"] {
        let output = place.run(&[subcommand, "--help"]);
        assert!(output.status.success(), "{subcommand}");
        assert!(stdout(&output).contains("Example"), "{subcommand} --help has no example");
    }
}

#[test]
fn status_commands_running_hard_during_starts_never_make_a_start_fail_nor_report_a_wrong_pid() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    let place = Arc::new(Place::new());
    let stop = Arc::new(AtomicBool::new(false));
    // The supervisor of the service now running.
    let current = Arc::new(common::CurrentService::default());
    // Checks whose answer could be judged (the service did not change while they looked).
    let conclusive = Arc::new(AtomicUsize::new(0));
    let checker = {
        let (place, stop, current) = (Arc::clone(&place), Arc::clone(&stop), Arc::clone(&current));
        let conclusive = Arc::clone(&conclusive);
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let before = current.read();
                let output = place.run(&["status", "busy", "--json"]);
                let report: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
                let Some(pid) = report["pid"].as_u64().filter(|_| report["state"] == "running") else {
                    continue;
                };
                // Right answers: the supervisor (before it writes its command's pid) or its command.
                let supervisor = before.pid();
                let parent = parent_of(pid as u32);
                // Cannot tell when the service changed while we looked, when a start had begun before the test
                // could note its supervisor, or when the command is gone.
                let changed = current.read() != before;
                if changed || supervisor == 0 || (pid as u32 != supervisor && parent.is_none()) {
                    continue;
                }
                assert!(
                    pid as u32 == supervisor || parent == Some(supervisor),
                    "status saw pid {pid} (parent {parent:?}) while supervisor {supervisor} ran"
                );
                conclusive.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    // At least 25 starts, and on until enough checks could be judged, however busy the machine.
    let mut start = 0;
    while start < 25 || conclusive.load(Ordering::SeqCst) < 20 {
        assert!(
            start < 2000,
            "the checks could not be judged ({} in {start} starts)",
            conclusive.load(Ordering::SeqCst)
        );
        let mut child = place
            .command(&["run", "busy", "--", "sh", "-c", "echo ready; cat >/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        current.set(child.id());
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert_eq!(line, "ready\n", "start {start} failed while checks ran");
        drop(child.stdin.take());
        assert!(child.wait().unwrap().success(), "start {start}");
        current.set(0);
        start += 1;
    }
    stop.store(true, Ordering::SeqCst);
    checker.join().unwrap();
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn things_planted_by_another_user_are_neither_followed_nor_signalled_nor_removed() {
    if !runs_as_root("to act as another user") {
        return;
    }
    let place = Place::new();
    std::fs::set_permissions(place.dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let bystander = Bystander::start();
    let ours = place.dir.path().join("ours");
    std::fs::write(&ours, format!("{}\n", bystander.pid())).unwrap();
    let plant = |script: &str, service: &str| {
        let status = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c", script])
            .arg(place.path(service))
            .arg(&ours)
            .status()
            .unwrap();
        assert!(status.success(), "{script}");
    };
    plant("mkfifo -m 666 \"$0\"", "fifo");
    plant("ln -s \"$1\" \"$0\"", "link");
    for (service, found) in [("fifo", "a FIFO"), ("link", "a symbolic link")] {
        for (args, code) in [
            (&["stop", service][..], 1),
            (&["remove", service], 1),
            (&["get", service], 4),
            (&["status", service], 4),
            (&["run", service, "--", "true"], 1),
        ] {
            let output = place.run(args);
            assert_eq!(output.status.code(), Some(code), "{args:?}: {}", stderr(&output));
            let message = stderr(&output);
            assert!(message.starts_with("pidfile: ") && message.lines().count() == 1, "{args:?}: {message}");
            assert!(
                message.contains(found) || message.contains("belongs to user 65534"),
                "{args:?} does not say what it found: {message}"
            );
        }
        assert!(std::fs::symlink_metadata(place.path(service)).is_ok(), "{service} was removed");
    }
    assert!(process_lives(bystander.pid()), "the process named through the link was signalled");
    assert_eq!(std::fs::read_to_string(&ours).unwrap(), format!("{}\n", bystander.pid()));
}

/// A process the test did not start itself, killed when dropped.
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        kill(self.0, 9);
    }
}

#[test]
fn run_leaves_the_pidfile_to_a_process_its_command_left_holding_the_lock() {
    let place = Place::new();
    // The command starts a worker that keeps the lock it inherited, and exits at once.
    let output = place.run(&["run", "web", "--", "sh", "-c", "sleep 600 </dev/null >/dev/null 2>&1 & echo $!"]);
    let worker: u32 = stdout(&output).trim().parse().unwrap();
    let _worker = KillOnDrop(worker);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(&format!("pid {worker} (user "))
            && stderr(&output).contains("which it started, still holds the lock"),
        "{}",
        stderr(&output)
    );
    assert!(place.path("web").exists(), "the pidfile was removed from under the worker");

    // The worker keeps the claim: no second instance, and the worker is named, not signalled.
    let second = place.run(&["run", "web", "--", "true"]);
    assert_eq!(second.status.code(), Some(1), "{}", stderr(&second));
    let status = place.run(&["status", "web"]);
    assert_eq!(status.status.code(), Some(4));
    assert!(stderr(&status).contains(&format!("locked by pid {worker}")), "{}", stderr(&status));
    assert_eq!(place.run(&["stop", "web"]).status.code(), Some(1));
    assert!(process_lives(worker));
}

#[test]
fn stop_fails_when_the_stopped_command_leaves_the_lock_to_another_process() {
    let place = Place::new();
    // The command's worker survives it, with the lock; stopping the command is not stopping the service.
    let mut service = place.start(
        "web",
        &[],
        &["sh", "-c", "sleep 600 </dev/null >/dev/null 2>&1 & echo ready; echo $!; exec sleep 600"],
    );
    let worker: u32 = service.line().parse().unwrap_or_else(|_| panic!("no worker pid"));
    let _worker = KillOnDrop(worker);
    let output = place.run(&["stop", "web", "--timeout", "5s"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).contains(&format!("is still locked by pid {worker}")), "{}", stderr(&output));
    assert!(process_lives(worker));
    assert!(place.path("web").exists());
    service.wait();
}

#[test]
fn run_leaves_the_pidfile_to_processes_that_keep_changing_pid() {
    let place = Place::new();
    // A process that forks and exits, again and again, for two seconds: the lock passes from pid to pid, and no
    // look at the processes of one moment would find it for sure.
    let hop = "import os, sys, time\n\
               if os.fork() == 0:\n\
               \x20   os.closerange(0, 3)\n\
               \x20   end = time.time() + 2\n\
               \x20   while time.time() < end:\n\
               \x20       if os.fork():\n\
               \x20           os._exit(0)\n\
               \x20       time.sleep(0.001)\n\
               \x20   os._exit(0)\n";
    let output = place.run(&["run", "web", "--", "python3", "-c", hop]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stderr(&output).contains("still holds the lock"), "{}", stderr(&output));
    assert!(place.path("web").exists(), "the pidfile was removed from under the hopping process");
    let second = place.run(&["run", "web", "--", "true"]);
    assert_eq!(second.status.code(), Some(1), "a second instance started: {}", stderr(&second));
    // Once the hopping ends, the file is stale and the next start takes it over.
    wait_for(|| (place.run(&["run", "web", "--", "true"]).status.code() == Some(0)).then_some(()));
}

#[test]
fn a_missing_pid_directory_is_an_error_for_stop_wait_and_list() {
    let place = Place::new();
    let missing = place.dir.path().join("missing");
    for args in [&["stop", "web"][..], &["wait", "web", "--timeout", "30s"], &["wait", "web", "--gone"], &["list"]] {
        let output = Command::new(BIN)
            .env_clear()
            .args(["--dir", missing.to_str().unwrap(), "--instance", "t"])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{args:?}: {}", stderr(&output));
        assert_eq!(
            stderr(&output),
            format!("pidfile: pid directory {} does not exist\n", missing.display()),
            "{args:?}"
        );
    }
}

/// What every way of asking must say of one pidfile.
struct Expected {
    /// The state's word, as `status --json` and `list` print it.
    state: &'static str,
    /// The pid reported, if any.
    pid: Option<u32>,
    /// Whether a lock proves the service runs.
    locked: bool,
    /// `status`'s exit code (LSB).
    status: i32,
    /// `get`'s exit code; with 0 it prints `pid`.
    get: i32,
}

/// Asks `status`, `status --json`, `get`, `list`, `list --json` and `list --prometheus` about `service`, and checks
/// that they all give `expected`.
fn assert_consistent(place: &Place, service: &str, expected: Expected) {
    let Expected { state, pid, locked, status, get } = expected;
    let output = place.run(&["status", service]);
    assert_eq!(output.status.code(), Some(status), "status: {}", stderr(&output));
    if state == "unknown" {
        assert!(stdout(&output).is_empty() && stderr(&output).starts_with("pidfile: "), "{}", stderr(&output));
    } else {
        assert!(stdout(&output).starts_with(&format!("{service} is ")), "{}", stdout(&output));
    }

    let output = place.run(&["status", service, "--json"]);
    assert_eq!(output.status.code(), Some(status), "status --json");
    let report: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(report["state"], state, "status --json");
    assert_eq!(report["pid"].as_u64(), pid.map(u64::from), "status --json");
    assert_eq!(report["locked"], locked, "status --json");

    let output = place.run(&["get", service]);
    assert_eq!(output.status.code(), Some(get), "get: {}", stderr(&output));
    let printed = if get == 0 { pid.map(|pid| format!("{pid}\n")) } else { None };
    assert_eq!(stdout(&output), printed.unwrap_or_default(), "get");
    if get == 4 {
        assert!(stderr(&output).starts_with("pidfile: ") && stderr(&output).lines().count() == 1, "get");
    }

    let output = place.run(&["list"]);
    assert_eq!(output.status.code(), Some(0), "list");
    let table = stdout(&output);
    let row: Vec<&str> = table
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .find(|row| row[0] == service)
        .unwrap_or_else(|| panic!("list does not show {service}: {table}"));
    let shown_pid = pid.map_or_else(|| "-".to_owned(), |pid| pid.to_string());
    assert_eq!((row[1], row[2]), (shown_pid.as_str(), state), "list");

    let output = place.run(&["list", "--json"]);
    let reports: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    let listed = reports.as_array().unwrap().iter().find(|entry| entry["service"] == service).unwrap().clone();
    assert_eq!(listed, report, "list --json and status --json differ");

    let output = place.run(&["list", "--prometheus"]);
    let samples = samples(&stdout(&output));
    let series = |name: &str| samples.get(&format!("{name}{{instance=\"t\",service=\"{service}\"}}")).copied();
    assert_eq!(series("pidfile_up"), Some(f64::from(u8::from(state == "running"))), "pidfile_up");
    assert_eq!(series("pidfile_locked"), Some(f64::from(u8::from(locked))), "pidfile_locked");
    assert_eq!(series("pidfile_unknown"), Some(f64::from(u8::from(state == "unknown"))), "pidfile_unknown");
    assert_eq!(series("pidfile_pid"), pid.map(f64::from), "pidfile_pid");
}

#[test]
fn every_view_agrees_on_a_running_service() {
    let place = Place::new();
    let service = place.start("web", &[], &strs(&idle("")));
    let pid = Some(service.pid);
    assert_consistent(&place, "web", Expected { state: "running", pid, locked: true, status: 0, get: 0 });
}

#[test]
fn every_view_agrees_on_a_service_locked_without_a_pid_yet() {
    let place = Place::new();
    // Holds the exclusive lock through a descriptor open for writing, and writes nothing, as a service between its
    // claim and its write.
    let mut holder = Command::new("python3")
        .args(["-c", "import fcntl, sys\nf = open(sys.argv[1], 'w')\nfcntl.flock(f, fcntl.LOCK_EX)\nprint('ready', flush=True)\nsys.stdin.read()"])
        .arg(place.path("web"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 is missing: install the Debian package python3");
    let _holder = KillOnDrop(holder.id());
    let mut ready = String::new();
    BufReader::new(holder.stdout.take().unwrap()).read_line(&mut ready).unwrap();
    assert_eq!(ready.trim(), "ready");
    assert_consistent(&place, "web", Expected { state: "running", pid: None, locked: true, status: 0, get: 4 });
    drop(holder.stdin.take());
    holder.wait().unwrap();
}

#[test]
fn every_view_agrees_on_a_stale_pidfile() {
    let place = Place::new();
    write(&place.path("old"), "4000000\n", 0o644);
    let pid = Some(4_000_000);
    assert_consistent(&place, "old", Expected { state: "stale", pid, locked: false, status: 1, get: 0 });
}

#[test]
fn every_view_agrees_on_an_empty_stale_pidfile() {
    let place = Place::new();
    write(&place.path("empty"), "", 0o644);
    assert_consistent(&place, "empty", Expected { state: "stale", pid: None, locked: false, status: 1, get: 4 });
}

#[test]
fn every_view_agrees_on_a_service_not_running() {
    let place = Place::new();
    // `list` shows only existing pidfiles: another service's keeps the directory listable, and "web" absent.
    for args in [&["status", "web"][..], &["status", "web", "--json"]] {
        assert_eq!(place.run(args).status.code(), Some(3), "{args:?}");
    }
    let report: serde_json::Value = serde_json::from_str(&stdout(&place.run(&["status", "web", "--json"]))).unwrap();
    assert_eq!((report["state"].as_str(), report["pid"].is_null()), (Some("not_running"), true));
    let output = place.run(&["get", "web"]);
    assert_eq!((output.status.code(), stdout(&output).as_str()), (Some(1), ""));
    let output = place.run(&["list", "--json"]);
    assert_eq!(stdout(&output), "[]\n");
    let output = place.run(&["list", "--prometheus"]);
    assert!(!stdout(&output).contains("service=\"web\""), "{}", stdout(&output));
}

#[test]
fn every_view_agrees_on_a_lock_that_proves_nothing() {
    let place = Place::new();
    let service = place.start("open", &[], &strs(&idle("")));
    // Anyone may open such a file for writing, so its lock proves nothing.
    std::fs::set_permissions(place.path("open"), std::fs::Permissions::from_mode(0o666)).unwrap();
    assert_consistent(&place, "open", Expected { state: "unknown", pid: None, locked: false, status: 4, get: 4 });
    service.stop();
}

#[test]
fn every_view_agrees_on_a_corrupt_pidfile() {
    let place = Place::new();
    write(&place.path("bad"), "garbage\n", 0o644);
    assert_consistent(&place, "bad", Expected { state: "unknown", pid: None, locked: false, status: 4, get: 4 });
}

#[test]
fn every_view_agrees_on_a_pidfile_that_cannot_be_read() {
    let place = Place::new();
    std::fs::create_dir(place.path("dir")).unwrap();
    assert_consistent(&place, "dir", Expected { state: "unknown", pid: None, locked: false, status: 4, get: 4 });
}

#[test]
fn list_format_json_prints_what_json_prints() {
    let place = Place::new();
    let _service = mixed_directory(&place);
    let short = place.run(&["list", "--json"]);
    let long = place.run(&["list", "--format", "json"]);
    assert_eq!(long.status.code(), Some(0));
    assert_eq!(stdout(&long), stdout(&short));
    assert!(stdout(&long).starts_with("[\n"), "{}", stdout(&long));
}

#[test]
fn list_format_prometheus_prints_what_prometheus_prints() {
    let place = Place::new();
    let _service = mixed_directory(&place);
    let short = place.run(&["list", "--prometheus"]);
    let long = place.run(&["list", "--format", "prometheus"]);
    assert_eq!(long.status.code(), Some(0));
    assert_eq!(stdout(&long), stdout(&short));
    assert!(stdout(&long).contains("# TYPE pidfile_up gauge"), "{}", stdout(&long));
}

#[test]
fn list_format_text_is_the_table() {
    let place = Place::new();
    let _service = mixed_directory(&place);
    let default = place.run(&["list"]);
    let text = place.run(&["list", "--format", "text"]);
    assert_eq!(stdout(&text), stdout(&default));
    assert!(stdout(&text).starts_with("SERVICE "), "{}", stdout(&text));
}

#[test]
fn status_format_json_prints_what_json_prints() {
    let place = Place::new();
    write(&place.path("old"), "4000000\n", 0o644);
    let short = place.run(&["status", "old", "--json"]);
    let long = place.run(&["status", "old", "--format", "json"]);
    assert_eq!((long.status.code(), stdout(&long)), (Some(1), stdout(&short)));
}

#[test]
fn status_format_prometheus_exports_the_one_service_with_the_lsb_code() {
    let place = Place::new();
    let service = place.start("web", &[], &strs(&idle("")));
    let output = place.run(&["status", "web", "--format", "prometheus"]);
    assert_eq!(output.status.code(), Some(0));
    let samples = samples(&stdout(&output));
    assert_eq!(samples[r#"pidfile_up{instance="t",service="web"}"#], 1.0);
    assert_eq!(samples[r#"pidfile_pid{instance="t",service="web"}"#], f64::from(service.pid));
    assert_eq!(samples.keys().filter(|series| !series.contains("service=\"web\"")).count(), 0);
}

#[test]
fn status_format_text_is_the_sentence() {
    let place = Place::new();
    let output = place.run(&["status", "web", "--format", "text"]);
    assert_eq!((output.status.code(), stdout(&output).as_str()), (Some(3), "web is not running\n"));
}

#[test]
fn a_short_form_beside_a_different_format_is_a_usage_error() {
    let place = Place::new();
    std::fs::write(place.path("web"), "4000000\n").unwrap();
    for (args, message) in [
        (&["status", "web", "--json", "--format", "text"][..], "pidfile: --json contradicts --format text\n"),
        (&["list", "--json", "--format", "prometheus"], "pidfile: --json contradicts --format prometheus\n"),
        (&["list", "--prometheus", "--format", "json"], "pidfile: --prometheus contradicts --format json\n"),
    ] {
        let output = place.run(args);
        assert_eq!((output.status.code(), stderr(&output).as_str(), stdout(&output).as_str()), (Some(2), message, ""));
    }
}

#[test]
fn a_short_form_beside_the_same_format_is_accepted() {
    let place = Place::new();
    std::fs::write(place.path("web"), "4000000\n").unwrap();
    let output = place.run(&["status", "web", "--json", "--format", "json"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let output = place.run(&["list", "--prometheus", "--format", "prometheus"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[test]
fn json_and_prometheus_together_are_a_usage_error() {
    let place = Place::new();
    let output = place.run(&["list", "--json", "--prometheus"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(stderr(&output).lines().count(), 1, "{}", stderr(&output));
}

#[test]
fn list_help_writes_the_prometheus_file_whole_with_mv() {
    let place = Place::new();
    let help = stdout(&place.run(&["list", "--help"]));
    assert!(help.contains("pidfile.prom.tmp &&") && help.contains("mv "), "{help}");
}
