//! `pidfile wait`: until the service runs, or is gone, within a timeout.

use crate::util::{Place, assert_missing_pid_directory_refused, stderr};

#[test]
fn wait_times_out_when_the_service_does_not_start() {
    let place = Place::new();
    let output = place.run(&["wait", "web", "--timeout", "200ms"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("did not start"));
}

#[test]
fn wait_gone_succeeds_when_the_service_is_not_running() {
    let place = Place::new();
    assert_eq!(place.run(&["wait", "web", "--gone", "--timeout", "200ms"]).status.code(), Some(0));
}

#[test]
fn wait_returns_when_the_service_starts() {
    let place = Place::new();
    let waiter = place.command(&["wait", "web", "--timeout", "10s"]).spawn().unwrap();
    let _service = place.start_idle("web", "");
    assert_eq!(waiter.wait_with_output().unwrap().status.code(), Some(0));
}

#[test]
fn wait_succeeds_at_once_while_the_service_runs() {
    let place = Place::new();
    let _service = place.start_idle("web", "");
    assert_eq!(place.run(&["wait", "web", "--timeout", "200ms"]).status.code(), Some(0));
}

#[test]
fn wait_gone_times_out_while_the_service_runs() {
    let place = Place::new();
    let _service = place.start_idle("web", "");
    assert_eq!(place.run(&["wait", "web", "--gone", "--timeout", "200ms"]).status.code(), Some(1));
}

#[test]
fn wait_gone_returns_when_the_service_stops() {
    let place = Place::new();
    let service = place.start_idle("web", "");
    let waiter = place.command(&["wait", "web", "--gone", "--timeout", "10s"]).spawn().unwrap();
    service.signal(15);
    assert_eq!(waiter.wait_with_output().unwrap().status.code(), Some(0));
}

#[test]
fn wait_in_a_missing_pid_directory_is_an_error() {
    assert_missing_pid_directory_refused(&["wait", "web", "--timeout", "30s"]);
}

#[test]
fn wait_gone_in_a_missing_pid_directory_is_an_error() {
    assert_missing_pid_directory_refused(&["wait", "web", "--gone"]);
}
