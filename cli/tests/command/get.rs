//! `pidfile get`: the pid, or why there is none to give.

use crate::util::{Place, stderr, stdout, write};

#[test]
fn get_without_a_pidfile_exits_1_printing_nothing() {
    let place = Place::new();
    let output = place.run(&["get", "web"]);
    assert_eq!((output.status.code(), stdout(&output).as_str()), (Some(1), ""));
}

#[test]
fn get_prints_the_pid() {
    let place = Place::new();
    write(&place.path("web"), "72\n", 0o644);
    let output = place.run(&["get", "web"]);
    assert_eq!((output.status.code(), stdout(&output).as_str()), (Some(0), "72\n"));
}

#[test]
fn get_of_a_corrupt_pidfile_exits_4_naming_it() {
    let place = Place::new();
    write(&place.path("web"), "seventy-two\n", 0o644);
    let output = place.run(&["get", "web"]);
    assert_eq!(output.status.code(), Some(4));
    assert!(stderr(&output).starts_with(&format!("pidfile: PID file {} is corrupt", place.path("web").display())));
}
