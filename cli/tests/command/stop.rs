//! `pidfile stop`: the two-stage kill, the signals it takes, and everything it refuses to signal.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use crate::common::{Bystander, process_lives, runs_as_root};
use crate::util::{KillOnDrop, Place, assert_missing_pid_directory_refused, stderr, stdout, write};

#[test]
fn stop_sends_the_signal_and_waits_quietly() {
    let place = Place::new();
    let mut service = place.start_idle("web", "trap 'echo got INT; exit 3' INT;");
    let output = place.run(&["stop", "web", "--signal", "SIGINT"]);
    assert_eq!((output.status.code(), stdout(&output).as_str(), stderr(&output).as_str()), (Some(0), "", ""));
    assert_eq!(service.line(), "got INT");
    assert_eq!(service.wait().code(), Some(3));
    assert!(!place.path("web").exists());
}

#[test]
fn stop_of_a_service_not_running_succeeds_saying_so_when_verbose() {
    let place = Place::new();
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
    let mut service = place.start_idle("web", &format!("trap 'echo got RTMIN+1; exit 3' {number};"));
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
    let mut service = place.start_idle("stubborn", "trap '' TERM;");
    let output = place.run(&["stop", "stubborn", "--timeout", "300ms", "-v"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stderr(&output).contains("sent SIGKILL"), "{}", stderr(&output));
    assert_eq!(service.wait().code(), Some(137));
    assert!(!process_lives(service.pid));
    assert!(!place.path("stubborn").exists());
}

#[test]
fn stop_with_no_kill_gives_up_saying_so() {
    let place = Place::new();
    let service = place.start_idle("stubborn", "trap '' TERM;");
    let output = place.run(&["stop", "stubborn", "--timeout", "200ms", "--no-kill"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("still running") && stderr(&output).contains("--no-kill"), "{}", stderr(&output));
    assert!(process_lives(service.pid));
    assert!(place.path("stubborn").exists());
}

#[test]
fn stop_removes_a_stale_pidfile_signalling_nothing() {
    let place = Place::new();
    write(&place.path("gone"), "4000000\n", 0o644);
    assert_eq!(place.run(&["stop", "gone"]).status.code(), Some(0));
    assert!(!place.path("gone").exists());
}

#[test]
fn stop_refuses_a_world_writable_pidfile_even_when_locked() {
    let place = Place::new();
    let service = place.start_idle("open", "");
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
    let service = place.start_idle("foreign", "");
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
fn stop_in_a_missing_pid_directory_is_an_error() {
    assert_missing_pid_directory_refused(&["stop", "web"]);
}
