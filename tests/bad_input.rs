//! Bad input: every kind of broken or hostile thing at a pidfile's path gets its own clear error, and is left
//! exactly as it was.

mod common;

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use pidfiles::{Config, Error, PidFile, Status, get_pid_with, make_pidfile_with, pidfile_path_with, status_with};

fn config_in(dir: &Path) -> Config {
    Config::new(dir, "bad")
}

#[test]
fn corrupt_contents_are_refused_naming_the_file_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(dir.path());
    let path = pidfile_path_with("svc", &config).unwrap();
    let big = vec![b'1'; 1 << 20];
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", b"".to_vec()),
        ("whitespace only", b"  \n\t \n".to_vec()),
        ("letters", b"abc\n".to_vec()),
        ("negative", b"-1\n".to_vec()),
        ("zero", b"0\n".to_vec()),
        ("plus sign", b"+5\n".to_vec()),
        ("20 digits", b"12345678901234567890\n".to_vec()),
        ("above the largest pid", b"4194305\n".to_vec()),
        ("two lines", b"123\n456\n".to_vec()),
        ("NUL bytes", b"12\x0034\n".to_vec()),
        ("1 MiB", big.clone()),
    ];
    for (name, content) in cases {
        std::fs::write(&path, &content).unwrap();
        let error = get_pid_with("svc", &config).unwrap_err();
        let Error::Corrupt { path: reported, content: shown } = &error else {
            panic!("{name}: expected Corrupt, got {error:?}");
        };
        assert_eq!(reported, &path, "{name}");
        assert!(shown.len() <= 35, "{name}: the content shown should be cut short, got {} bytes", shown.len());
        assert!(error.to_string().contains(path.to_str().unwrap()), "{name}: {error}");
        if !content.is_empty() {
            assert!(matches!(status_with("svc", &config), Err(Error::Corrupt { .. })), "{name}");
        } else {
            assert_eq!(status_with("svc", &config).unwrap(), Status::Stale { pid: None }, "{name}");
        }
        assert_eq!(std::fs::read(&path).unwrap(), content, "{name}: the file was changed");
    }
}

#[test]
fn corrupt_unlocked_file_is_stale_and_a_claim_takes_it_over() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(dir.path());
    let path = pidfile_path_with("svc", &config).unwrap();
    for content in [&b""[..], b"garbage that is rather longer than a pid\n", b"-1", b"\0\0\0"] {
        std::fs::write(&path, content).unwrap();
        let guard = PidFile::acquire(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{}\n", std::process::id()));
        drop(guard);
    }
}

#[test]
fn symlink_at_the_path_is_not_followed_and_its_target_is_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(dir.path());
    let path = pidfile_path_with("svc", &config).unwrap();
    let target = dir.path().join("precious");
    std::fs::write(&target, "precious data\n").unwrap();
    std::os::unix::fs::symlink(&target, &path).unwrap();

    let errors = common::errors_of_every_operation("svc", &config);
    common::assert_refused_as(&errors, "a symbolic link");
    for error in errors {
        assert!(error.to_string().contains(path.to_str().unwrap()), "{error}");
    }
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious data\n");
    assert!(std::fs::symlink_metadata(&path).unwrap().file_type().is_symlink());

    // A dangling symlink is not followed to create a file either.
    let dangling = dir.path().join("bad-dangling.pid");
    std::os::unix::fs::symlink(dir.path().join("created-through-link"), &dangling).unwrap();
    assert!(matches!(PidFile::acquire(&dangling), Err(Error::NotAPidFile { .. })));
    assert!(!dir.path().join("created-through-link").exists());
}

#[test]
fn fifo_at_the_path_is_refused_without_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(dir.path());
    let path = pidfile_path_with("svc", &config).unwrap();
    rustix::fs::mkfifoat(rustix::fs::CWD, &path, rustix::fs::Mode::from_raw_mode(0o644)).unwrap();
    common::assert_refused_as(&common::errors_of_every_operation("svc", &config), "a FIFO");
    assert!(std::fs::symlink_metadata(&path).unwrap().file_type().is_fifo());
}

#[test]
fn directory_at_the_path_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(dir.path());
    let path = pidfile_path_with("svc", &config).unwrap();
    std::fs::create_dir(&path).unwrap();
    std::fs::write(path.join("inside"), "x").unwrap();
    common::assert_refused_as(&common::errors_of_every_operation("svc", &config), "a directory");
    assert_eq!(std::fs::read_to_string(path.join("inside")).unwrap(), "x");
}

#[test]
fn hard_linked_file_is_refused_and_both_names_keep_their_content() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(dir.path());
    let path = pidfile_path_with("svc", &config).unwrap();
    let other_name = dir.path().join("other-name");
    std::fs::write(&other_name, "1\n").unwrap();
    std::fs::hard_link(&other_name, &path).unwrap();
    common::assert_refused_as(&common::errors_of_every_operation("svc", &config), "a file with 2 hard links");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "1\n");
    assert_eq!(std::fs::metadata(&other_name).unwrap().nlink(), 2);
}

#[test]
fn missing_pid_dir_is_named_and_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir");
    let config = config_in(&missing);
    for error in common::errors_of_every_operation("svc", &config) {
        assert!(matches!(&error, Error::NoSuchDirectory { dir } if *dir == missing), "{error:?}");
        assert!(error.to_string().contains(missing.to_str().unwrap()), "{error}");
    }
    assert!(!missing.exists());
}

#[test]
fn invalid_names_are_refused_before_anything_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let good = config_in(dir.path());
    for bad in ["", ".", "..", "a/b", "../escape", "nul\0byte"] {
        for error in [
            pidfile_path_with(bad, &good).unwrap_err(),
            make_pidfile_with(bad, &good).unwrap_err(),
            get_pid_with(bad, &good).unwrap_err(),
            status_with(bad, &good).unwrap_err(),
            pidfiles::remove_pidfile_with(bad, &good).unwrap_err(),
        ] {
            assert!(matches!(&error, Error::InvalidName { what: "service", .. }), "{bad:?}: {error:?}");
        }
        let bad_instance = Config::new(dir.path(), bad);
        let error = make_pidfile_with("svc", &bad_instance).unwrap_err();
        assert!(matches!(&error, Error::InvalidName { what: "instance", .. }), "{bad:?}: {error:?}");
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing may be created");
}

#[test]
fn new_pidfile_is_readable_by_all_and_the_mode_can_be_chosen() {
    let dir = tempfile::tempdir().unwrap();
    let default = PidFile::acquire(dir.path().join("default.pid")).unwrap();
    // Read, not set: setting the umask would race with the other tests of this process.
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let umask = status.lines().find_map(|line| line.strip_prefix("Umask:")).unwrap().trim();
    let umask = u32::from_str_radix(umask, 8).unwrap();
    let mode = std::fs::metadata(default.path()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644 & !umask);
    let private = PidFile::builder().mode(0o600).acquire(dir.path().join("private.pid")).unwrap();
    let mode = std::fs::metadata(private.path()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600 & !umask);
}
