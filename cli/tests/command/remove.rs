//! `pidfile remove`: stale and corrupt pidfiles go, a live one never does.

use crate::util::{Place, stderr, write};

#[test]
fn remove_refuses_the_pidfile_of_a_running_service() {
    let place = Place::new();
    let service = place.start_idle("web", "");
    let output = place.run(&["remove", "web"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains(&format!("web is running (pid {})", service.pid)));
    assert!(place.path("web").exists());
}

#[test]
fn remove_takes_a_stale_pidfile() {
    let place = Place::new();
    write(&place.path("stale"), "4000000\n", 0o644);
    assert_eq!(place.run(&["remove", "stale"]).status.code(), Some(0));
    assert!(!place.path("stale").exists());
}

#[test]
fn remove_takes_a_corrupt_pidfile() {
    let place = Place::new();
    write(&place.path("bad"), "junk", 0o644);
    assert_eq!(place.run(&["remove", "bad"]).status.code(), Some(0));
    assert!(!place.path("bad").exists());
}

#[test]
fn remove_of_a_missing_pidfile_succeeds() {
    let place = Place::new();
    assert_eq!(place.run(&["remove", "missing"]).status.code(), Some(0));
}
