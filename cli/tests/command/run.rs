//! `pidfile run`: the supervisor, `--exec`, and the lock left to what the command started.

use crate::common::{process_lives, wait_for_value};
use crate::util::{KillOnDrop, Place, idle, stderr, stdout, strs};

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
fn run_exits_with_the_commands_exit_code() {
    let place = Place::new();
    assert_eq!(place.run(&["run", "code", "--", "sh", "-c", "exit 5"]).status.code(), Some(5));
}

/// Runs `pidfile` as `command` says, started by a bash that ignores `signals` (`trap '' SIGNALS`), which exec keeps.
fn ignoring(signals: &str, command: &std::process::Command) -> std::process::Output {
    std::process::Command::new("bash")
        .args(["-c", &format!("trap '' {signals}; exec \"$0\" \"$@\"")])
        .arg(command.get_program())
        .args(command.get_args())
        .output()
        .unwrap()
}

#[test]
fn run_exits_with_the_commands_exit_code_when_its_caller_ignored_sigchld() {
    let place = Place::new();
    // bash's `trap '' CHLD` ignores SIGCHLD, which exec keeps: the kernel would reap the command itself.
    let output = ignoring("CHLD", &place.command(&["run", "code", "--", "sh", "-c", "sleep 0.2; exit 5"]));
    assert_eq!(output.status.code(), Some(5), "{}", stderr(&output));
}

#[test]
fn run_leaves_a_command_ignoring_the_signals_its_caller_ignored() {
    let place = Place::new();
    // A script's `cmd &` ignores SIGINT and SIGQUIT (the terminal's Ctrl-C must not end it), nohup SIGHUP; exec
    // keeps them ignored, and the command, run directly, would start ignoring them.
    let output =
        ignoring("INT QUIT HUP", &place.command(&["run", "ign", "--", "sh", "-c", "grep '^SigIgn:' /proc/$$/status"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let mask = stdout(&output).trim().strip_prefix("SigIgn:").map(|mask| u64::from_str_radix(mask.trim(), 16));
    let Some(Ok(mask)) = mask else { panic!("no mask: {}", stdout(&output)) };
    for (number, name) in [(1, "HUP"), (2, "INT"), (3, "QUIT")] {
        assert_ne!(mask & (1 << (number - 1)), 0, "SIG{name} is no longer ignored: {mask:#x}");
    }
}

#[test]
fn run_exits_128_plus_the_signal_that_killed_the_command() {
    let place = Place::new();
    assert_eq!(place.run(&["run", "code", "--", "sh", "-c", "kill -KILL $$"]).status.code(), Some(137));
    assert!(!place.path("code").exists());
}

#[test]
fn run_of_a_missing_program_exits_127_naming_it() {
    let place = Place::new();
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
fn run_refuses_while_running_without_starting_the_command() {
    let place = Place::new();
    let service = place.start_idle("web", "");
    let marker = place.dir.path().join("started");
    let output = place.run(&["run", "web", "--", "touch", marker.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stderr(&output), format!("pidfile: web is already running (pid {}); not starting touch\n", service.pid));
    assert!(!marker.exists());
}

#[test]
fn killing_the_supervisor_leaves_the_command_holding_the_lock() {
    let place = Place::new();
    let mut service = place.start_idle("web", "");
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
    wait_for_value(|| (place.run(&["run", "web", "--", "true"]).status.code() == Some(0)).then_some(()));
}

#[test]
fn run_passes_on_arguments_that_are_not_utf8() {
    use std::os::unix::ffi::OsStrExt;
    let place = Place::new();
    let output =
        place.command(&["run", "bytes", "--", "printf", "%s"]).arg(std::ffi::OsStr::from_bytes(b"caf\xe9")).output();
    let output = output.unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(output.stdout, b"caf\xe9");
}

#[test]
fn a_program_name_with_a_newline_is_named_on_one_line() {
    let place = Place::new();
    let output = place.run(&["run", "code", "--", "/no\nsuch"]);
    assert_eq!(output.status.code(), Some(127));
    assert_eq!(stderr(&output), "pidfile: cannot run /no\\nsuch: No such file or directory (os error 2)\n");
}
