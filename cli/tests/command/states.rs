//! Every state a pidfile can be in, asked about every way: `status`, `status --json`, `get`, `list`, `list --json`
//! and `list --prometheus` must agree, one scenario per state.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use crate::util::{KillOnDrop, Place, samples, stderr, stdout, write};

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
    let service = place.start_idle("web", "");
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
    let service = place.start_idle("open", "");
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
