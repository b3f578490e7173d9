//! The system calls of one claim and release, counted with strace (not timed): the protocol's cost, held down.

mod common;

use std::process::Command;

/// libbsd's pidfile_open + pidfile_write + pidfile_remove make 13; ours must stay at 9 or fewer.
const MOST: usize = 9;

#[test]
fn one_claim_and_release_without_signal_handlers_makes_at_most_nine_system_calls() {
    let dir = tempfile::tempdir().unwrap();
    // A pidfile straight in /var/tmp, as the spec's default directory has them: the way to it is one that only root
    // controls, so the claim's check of it is made once per process, in the first cycle. (A directory of ours made
    // inside a shared one, as a temporary directory is, is walked again at every claim.)
    let pidfile = std::path::PathBuf::from(format!("/var/tmp/{}.pid", common::unique_name("count")));
    let _cleanup = common::RemoveOnDrop(pidfile.clone());
    let path = pidfile.to_str().unwrap();
    let trace = dir.path().join("trace");
    // A first cycle pays the once-per-process costs (the pid, the exit hook); the second is the one counted.
    let status = Command::new("strace")
        .arg("-f")
        .arg("-o")
        .arg(&trace)
        .arg(common::claimer_path())
        .args(["cycle", path, "marker", "begin", "cycle", path, "marker", "end"])
        .status()
        .expect("strace is missing: install the Debian package strace");
    assert!(status.success());
    let trace = std::fs::read_to_string(&trace).unwrap();
    let calls: Vec<&str> = trace
        .lines()
        .skip_while(|line| !line.contains("/pidfile-marker-begin"))
        .skip(1)
        .take_while(|line| !line.contains("/pidfile-marker-end"))
        // Debug builds of std check that a descriptor is still open before closing it; release builds do not.
        .filter(|line| !(cfg!(debug_assertions) && line.contains("F_GETFD")))
        .collect();
    assert!(calls.iter().any(|line| line.contains("flock(")), "the trace does not hold the cycle:\n{trace}");
    assert!(calls.iter().any(|line| line.contains("unlink")), "the trace does not hold the release:\n{trace}");
    assert!(calls.len() <= MOST, "{} system calls, more than {MOST}:\n{}", calls.len(), calls.join("\n"));
}
