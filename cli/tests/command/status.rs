//! `pidfile status`: the LSB codes, the sentence, and `--json` field by field.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use crate::common;
use crate::util::{Place, stderr, stdout, write};

/// `status SERVICE --json`, parsed.
fn json(place: &Place, service: &str) -> (Option<i32>, serde_json::Value) {
    let output = place.run(&["status", service, "--json"]);
    (output.status.code(), serde_json::from_str(&stdout(&output)).unwrap())
}

#[test]
fn status_of_a_service_not_running_exits_3() {
    let place = Place::new();
    assert_eq!(place.run(&["status", "web"]).status.code(), Some(3));
}

#[test]
fn status_of_a_running_service_exits_0_naming_its_pid() {
    let place = Place::new();
    let service = place.start_idle("web", "");
    let output = place.run(&["status", "web"]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(stdout(&output), format!("web is running (pid {}, pidfile locked)\n", service.pid));
}

#[test]
fn status_of_a_stale_pidfile_exits_1() {
    let place = Place::new();
    write(&place.path("stale"), "4000000\n", 0o644);
    assert_eq!(place.run(&["status", "stale"]).status.code(), Some(1));
}

#[test]
fn status_of_a_corrupt_pidfile_exits_4_naming_it() {
    let place = Place::new();
    write(&place.path("bad"), "garbage\n", 0o644);
    let output = place.run(&["status", "bad"]);
    assert_eq!(output.status.code(), Some(4));
    assert!(stderr(&output).starts_with("pidfile: PID file "), "{}", stderr(&output));
}

#[test]
fn status_json_describes_a_running_service_field_by_field() {
    let place = Place::new();
    let service = place.start_idle("web", "");
    let (code, report) = json(&place, "web");
    assert_eq!(code, Some(0));
    assert_eq!(report["service"], "web");
    assert_eq!(report["instance"], "t");
    assert_eq!(report["path"], place.path("web").to_str().unwrap());
    assert_eq!(report["pid"], service.pid);
    assert_eq!(report["state"], "running");
    assert_eq!(report["locked"], true);
    let since = report["since"].as_str().unwrap();
    assert!(since.len() == 20 && since.ends_with('Z') && since.as_bytes()[10] == b'T', "{since}");
}

#[test]
fn status_json_of_a_stopped_service_has_no_pid_nor_time() {
    let place = Place::new();
    place.start_idle("web", "").stop();
    let (code, report) = json(&place, "web");
    assert_eq!(code, Some(3));
    assert_eq!(
        (report["state"].as_str(), report["pid"].is_null(), report["since"].is_null()),
        (Some("not_running"), true, true)
    );
}

#[test]
fn status_json_of_a_stale_pidfile_names_its_pid_unlocked() {
    let place = Place::new();
    write(&place.path("web"), "4000000\n", 0o644);
    let (_, report) = json(&place, "web");
    assert_eq!(
        (report["state"].as_str(), report["pid"].as_u64(), report["locked"].as_bool()),
        (Some("stale"), Some(4_000_000), Some(false))
    );
}

#[test]
fn status_json_of_a_corrupt_pidfile_is_unknown_saying_why() {
    let place = Place::new();
    write(&place.path("web"), "junk\n", 0o644);
    let (code, report) = json(&place, "web");
    assert_eq!(code, Some(4));
    assert_eq!(report["state"], "unknown");
    assert!(report["error"].as_str().unwrap().contains("corrupt"));
}

#[test]
fn status_checks_running_hard_during_starts_leave_every_start_working_with_the_right_pid() {
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
