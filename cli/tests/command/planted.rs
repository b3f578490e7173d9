//! What another user plants in a shared pid directory (a FIFO, a symbolic link) is not followed, signalled or
//! removed, whatever the subcommand.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::common::{Bystander, process_lives, runs_as_root};
use crate::util::{Place, stderr};

#[test]
fn things_planted_by_another_user_are_left_untouched() {
    if !runs_as_root("to act as another user") {
        return;
    }
    let place = Place::new();
    std::fs::set_permissions(place.dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let bystander = Bystander::start();
    let ours = place.dir.path().join("ours");
    std::fs::write(&ours, format!("{}\n", bystander.pid())).unwrap();
    let plant = |script: &str, service: &str| {
        let status = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c", script])
            .arg(place.path(service))
            .arg(&ours)
            .status()
            .unwrap();
        assert!(status.success(), "{script}");
    };
    plant("mkfifo -m 666 \"$0\"", "fifo");
    plant("ln -s \"$1\" \"$0\"", "link");
    for (service, found) in [("fifo", "a FIFO"), ("link", "a symbolic link")] {
        for (args, code) in [
            (&["stop", service][..], 1),
            (&["remove", service], 1),
            (&["get", service], 4),
            (&["status", service], 4),
            (&["run", service, "--", "true"], 1),
        ] {
            let output = place.run(args);
            assert_eq!(output.status.code(), Some(code), "{args:?}: {}", stderr(&output));
            let message = stderr(&output);
            assert!(message.starts_with("pidfile: ") && message.lines().count() == 1, "{args:?}: {message}");
            assert!(
                message.contains(found) || message.contains("belongs to user 65534"),
                "{args:?} does not say what it found: {message}"
            );
        }
        assert!(std::fs::symlink_metadata(place.path(service)).is_ok(), "{service} was removed");
    }
    assert!(process_lives(bystander.pid()), "the process named through the link was signalled");
    assert_eq!(std::fs::read_to_string(&ours).unwrap(), format!("{}\n", bystander.pid()));
}
