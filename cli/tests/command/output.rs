//! Output that cannot be written (a full disk, here /dev/full): a failure said on stderr, never a panic or an
//! abort.

use std::fs::File;

use crate::util::{Place, stderr};

fn full() -> File {
    File::options().write(true).open("/dev/full").unwrap()
}

#[test]
fn an_answer_that_cannot_be_written_is_a_failure_said_on_stderr() {
    let place = Place::new();
    for args in [&["path", "web"][..], &["list"], &["list", "--json"], &["status", "web", "--json"]] {
        let output = place.command(args).stdout(full()).output().unwrap();
        let code = if args[0] == "status" { 4 } else { 1 };
        assert_eq!(output.status.code(), Some(code), "{args:?}: {}", stderr(&output));
        assert_eq!(
            stderr(&output),
            "pidfile: cannot write to standard output: No space left on device (os error 28)\n",
            "{args:?}"
        );
    }
}

#[test]
fn an_error_that_cannot_be_written_keeps_its_exit_code() {
    let place = Place::new();
    let missing = place.dir.path().join("missing");
    let output = place.command(&["status", "web"]).arg("--dir").arg(&missing).stderr(full()).output().unwrap();
    let told = place.command(&["status", "web"]).arg("--dir").arg(&missing).output().unwrap();
    assert!(!stderr(&told).is_empty(), "an error, said when stderr can be written");
    assert_eq!(output.status.code(), told.status.code());
}

#[test]
fn verbose_messages_that_cannot_be_written_change_nothing() {
    let place = Place::new();
    let output = place.command(&["--verbose", "stop", "web"]).stderr(full()).output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert!(output.stdout.is_empty());
}
