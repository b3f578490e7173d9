//! Usage errors: one line, `pidfile: ...`, exit 2.

use crate::util::{Place, stderr};

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
}

#[test]
fn a_negative_duration_is_a_bad_duration_not_an_option() {
    let place = Place::new();
    let output = place.run(&["wait", "web", "--timeout", "-1s"]);
    assert!(stderr(&output).contains("invalid duration \"-1s\""), "{}", stderr(&output));
}

#[test]
fn start_points_to_run() {
    let place = Place::new();
    let output = place.run(&["start", "web"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("a service is started with `pidfile run SERVICE -- COMMAND`"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_bad_service_name_is_named_with_what_is_wrong() {
    let place = Place::new();
    let output = place.run(&["get", "a/b"]);
    assert_eq!(stderr(&output), "pidfile: invalid service name \"a/b\": it contains '/'\n");
}

#[test]
fn an_argument_that_is_not_utf8_is_named() {
    use std::os::unix::ffi::OsStrExt;
    let place = Place::new();
    let output = place.command(&["get"]).arg(std::ffi::OsStr::from_bytes(b"caf\xe9")).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(stderr(&output), "pidfile: the argument \"caf\\xE9\" is not valid UTF-8 (see pidfile --help)\n");
}
