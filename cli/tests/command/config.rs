//! The global options and the configuration file: where the pidfiles are, and what a bad file does.

use std::process::Command;

use crate::util::{BIN, Place, stderr, stdout};

/// A configuration file giving the instance at the top and the directory under `[canonical]`.
fn config_file(place: &Place) -> std::path::PathBuf {
    let file = place.dir.path().join("conf.toml");
    std::fs::write(&file, "instance_name = \"filed\"\n[canonical]\npid_dir = \"/srv/pids\"\n").unwrap();
    file
}

#[test]
fn the_config_file_gives_the_directory_and_instance() {
    let place = Place::new();
    let file = config_file(&place);
    let output =
        Command::new(BIN).env_clear().args(["--config", file.to_str().unwrap(), "path", "web"]).output().unwrap();
    assert_eq!(stdout(&output), "/srv/pids/filed-web.pid\n");
}

#[test]
fn global_options_override_the_environment_and_config_file() {
    let place = Place::new();
    let file = config_file(&place);
    let output = Command::new(BIN)
        .env_clear()
        .env("PIDFILE_INSTANCE", "env")
        .args(["--config", file.to_str().unwrap(), "--dir", "/d", "path", "web"])
        .output()
        .unwrap();
    assert_eq!(stdout(&output), "/d/env-web.pid\n");
}

#[test]
fn a_config_file_that_does_not_parse_is_one_line_naming_the_file_and_line() {
    let place = Place::new();
    let broken = place.dir.path().join("broken.toml");
    std::fs::write(&broken, "pid_dir = [\n").unwrap();
    let output =
        Command::new(BIN).env_clear().args(["--config", broken.to_str().unwrap(), "path", "web"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(message.starts_with("pidfile: configuration file ") && message.contains("line 1"), "{message}");
    assert_eq!(message.lines().count(), 1);
}

/// A configuration file with a misspelt key on its third line, and the one line the command must refuse it with.
fn misspelt(place: &Place) -> (std::path::PathBuf, String) {
    let file = place.dir.path().join("conf.toml");
    std::fs::write(&file, "instance_name = \"filed\"\n\npid-dir = \"/srv/pids\"\n").unwrap();
    let expected = format!(
        "pidfile: configuration file {}, line 3: unknown key \"pid-dir\" (known keys: instance_name, pid_dir, canonical)\n",
        file.display()
    );
    (file, expected)
}

#[test]
fn an_unknown_key_in_the_config_option_file_is_an_error_naming_the_file_line_and_key() {
    let place = Place::new();
    let (file, expected) = misspelt(&place);
    let output =
        Command::new(BIN).env_clear().args(["--config", file.to_str().unwrap(), "path", "web"]).output().unwrap();
    assert_eq!((output.status.code(), stderr(&output), stdout(&output)), (Some(1), expected, String::new()));
}

#[test]
fn an_unknown_key_in_the_pidfile_config_file_is_an_error_naming_the_file_line_and_key() {
    let place = Place::new();
    let (file, expected) = misspelt(&place);
    let output = Command::new(BIN).env_clear().env("PIDFILE_CONFIG", &file).args(["path", "web"]).output().unwrap();
    assert_eq!((output.status.code(), stderr(&output), stdout(&output)), (Some(1), expected, String::new()));
}
