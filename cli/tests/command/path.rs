//! `pidfile path`.

use crate::util::{Place, stdout};

#[test]
fn path_prints_the_pidfile_path() {
    let place = Place::new();
    let output = place.run(&["path", "web"]);
    assert!(output.status.success());
    assert_eq!(stdout(&output), format!("{}\n", place.path("web").display()));
}
