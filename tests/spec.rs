//! Every example of the original module's specification (`pidfile.txt`), in the spec's own default directory,
//! `/var/tmp`, with an instance name unique to each test so that tests can run side by side.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;

use common::{RemoveOnDrop, Running, claimer, unique_name};
use pidfiles::{Config, Error, get_pid_with, pidfile_path_with, remove_pidfile_with};

const SIGINT: i32 = 2;
const SIGKILL: i32 = 9;
const SIGTERM: i32 = 15;

/// One instance of a deployment in `/var/tmp`, as the spec's processes see it.
struct Instance {
    name: String,
    config: Config,
}

impl Instance {
    fn new(label: &str) -> Instance {
        let name = unique_name(label);
        Instance { config: Config::new("/var/tmp", name.as_str()), name }
    }

    fn env(&self) -> [(&str, &str); 1] {
        [("PIDFILE_INSTANCE", self.name.as_str())]
    }

    fn path(&self, service: &str) -> PathBuf {
        pidfile_path_with(service, &self.config).unwrap()
    }

    /// The spec's `start_process`: a child that claims `nuts` and sleeps; returns once its pid is in the file.
    fn start_process(&self) -> Running {
        let mut child = Running::start(claimer(&self.env(), &["make", "nuts", "ready", "sleep", "30"]));
        assert_eq!(child.line(), format!("won {}", child.pid()));
        assert_eq!(child.line(), format!("ready {}", child.pid()));
        let content = std::fs::read_to_string(self.path("nuts")).unwrap();
        assert_eq!(content, format!("{}\n", child.pid()));
        child
    }

    /// The spec's `stop`: signals the child, waits for it, and says whether the pidfile went with it.
    fn stop(&self, child: &mut Running, signal: i32) -> &'static str {
        let status = child.stop(signal);
        assert_eq!(status.signal(), Some(signal), "the child should die of the signal");
        if self.path("nuts").exists() { "Error: pid file was not removed" } else { "Stopped successfully" }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        for service in ["nuts", "beans", "legumes", "pits"] {
            let _ = std::fs::remove_file(self.path(service));
        }
    }
}

#[test]
fn default_path_is_in_var_tmp_named_after_the_configured_instance() {
    let instance = Instance::new("path");
    let output = claimer(&instance.env(), &["path", "nuts"]).output().unwrap();
    assert_eq!(String::from_utf8(output.stdout).unwrap().trim_end(), format!("/var/tmp/{}-nuts.pid", instance.name));
    // Deployments of the original module name their instance with LPCONFIG.
    let output = claimer(&[("LPCONFIG", "lp-staging")], &["path", "nuts"]).output().unwrap();
    assert_eq!(String::from_utf8(output.stdout).unwrap().trim_end(), "/var/tmp/lp-staging-nuts.pid");
}

#[test]
fn own_config_instance_gives_its_own_path() {
    struct MyConfig;
    impl pidfiles::PidConfig for MyConfig {
        fn pid_dir(&self) -> &std::path::Path {
            std::path::Path::new("/var/tmp")
        }
        fn instance_name(&self) -> &str {
            "blah"
        }
    }
    assert_eq!(pidfile_path_with("beans", &MyConfig).unwrap(), PathBuf::from("/var/tmp/blah-beans.pid"));
}

#[test]
fn child_writes_its_pid_and_the_file_is_gone_after_normal_exit() {
    let instance = Instance::new("normal-exit");
    let status = claimer(&instance.env(), &["make", "nuts", "check-content", "nuts"]).status().unwrap();
    assert_eq!(status.code(), Some(1), "the pidfile should hold the child's pid");
    assert!(!instance.path("nuts").exists());
}

#[test]
fn file_is_removed_on_sigint() {
    let instance = Instance::new("sigint");
    let mut child = instance.start_process();
    assert_eq!(instance.stop(&mut child, SIGINT), "Stopped successfully");
}

#[test]
fn file_is_removed_on_sigterm() {
    let instance = Instance::new("sigterm");
    let mut child = instance.start_process();
    assert_eq!(instance.stop(&mut child, SIGTERM), "Stopped successfully");
}

#[test]
fn second_claim_fails_with_the_spec_message_and_leaves_signal_handlers_alone() {
    let instance = Instance::new("second-claim");
    let mut holder = instance.start_process();
    let lost = format!("lost {}", holder.pid());

    let error = pidfiles::make_pidfile_with("nuts", &instance.config).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("PID file /var/tmp/{}-nuts.pid already exists. Already running?", instance.name)
    );

    // Rivals in processes of their own, so that their dispositions are theirs: one with both signals at their
    // defaults, one ignoring SIGINT as a shell's background job does.
    let rival = claimer(&instance.env(), &["signals", "make", "nuts", "signals"]).output().unwrap();
    assert_eq!(
        String::from_utf8(rival.stdout).unwrap(),
        format!("SIGINT=default SIGTERM=default\n{lost}\nSIGINT=default SIGTERM=default\n")
    );
    let rival = claimer(&instance.env(), &["ignore-sigint", "signals", "make", "nuts", "signals"]).output().unwrap();
    assert_eq!(
        String::from_utf8(rival.stdout).unwrap(),
        format!("SIGINT=ignore SIGTERM=default\n{lost}\nSIGINT=ignore SIGTERM=default\n")
    );

    assert_eq!(instance.stop(&mut holder, SIGTERM), "Stopped successfully");
}

#[test]
fn successful_claim_installs_handlers_but_keeps_an_ignored_sigint_ignored() {
    // The control for the test above: a claim that succeeds does change the dispositions it reports.
    let instance = Instance::new("dispositions");
    let output = claimer(&instance.env(), &["ignore-sigint", "make", "beans", "signals", "exit", "0"]).output();
    let output = output.unwrap();
    let out = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].starts_with("won "), "{out}");
    assert!(lines[1].starts_with("SIGINT=ignore SIGTERM=handler@"), "{out}");
    assert_eq!(output.status.code(), Some(0));
    assert!(!instance.path("beans").exists(), "exit(0) should have removed the pidfile");
}

#[test]
fn file_left_by_sigkill_stays_and_the_next_start_takes_over() {
    let instance = Instance::new("sigkill");
    let mut stale = instance.start_process();
    let error = pidfiles::make_pidfile_with("nuts", &instance.config).unwrap_err();
    assert!(matches!(error, Error::AlreadyRunning { pid: Some(pid), .. } if pid == stale.pid()), "{error}");
    assert_eq!(instance.stop(&mut stale, SIGKILL), "Error: pid file was not removed");

    let mut fresh = instance.start_process();
    assert_ne!(fresh.pid(), stale.pid());
    assert_eq!(get_pid_with("nuts", &instance.config).unwrap(), Some(fresh.pid()));
    assert_eq!(instance.stop(&mut fresh, SIGTERM), "Stopped successfully");
    assert_eq!(get_pid_with("nuts", &instance.config).unwrap(), None);
}

#[test]
fn get_pid_follows_a_child_through_its_life() {
    let instance = Instance::new("get-pid");
    assert_eq!(get_pid_with("nuts", &instance.config).unwrap(), None);
    let mut child = instance.start_process();
    assert_eq!(get_pid_with("nuts", &instance.config).unwrap(), Some(child.pid()));
    assert_eq!(instance.stop(&mut child, SIGINT), "Stopped successfully");
    assert_eq!(get_pid_with("nuts", &instance.config).unwrap(), None);
}

#[test]
fn get_pid_with_own_config_reads_a_pid_written_by_hand() {
    let instance = Instance::new("blah");
    let path = instance.path("beans");
    let _cleanup = RemoveOnDrop(path.clone());
    std::fs::write(&path, "72\n").unwrap();
    assert_eq!(get_pid_with("beans", &instance.config).unwrap(), Some(72));
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn remove_pidfile_removes_our_own_file_and_ignores_a_missing_one() {
    let instance = Instance::new("legumes");
    let output = claimer(
        &instance.env(),
        &[
            "write-own-pid",
            "legumes",
            "exists",
            "legumes",
            "remove",
            "legumes",
            "exists",
            "legumes",
            "remove",
            "legumes",
            "exists",
            "legumes",
        ],
    )
    .output()
    .unwrap();
    assert_eq!(String::from_utf8(output.stdout).unwrap(), "exists\nmissing\nmissing\n");
    assert!(output.status.success());
}

#[test]
fn remove_pidfile_leaves_a_file_holding_another_pid() {
    let instance = Instance::new("legumes-other");
    let path = instance.path("legumes");
    let _cleanup = RemoveOnDrop(path.clone());
    std::fs::write(&path, "4000000\n").unwrap();
    let output = claimer(&instance.env(), &["remove", "legumes", "exists", "legumes"]).output().unwrap();
    assert_eq!(String::from_utf8(output.stdout).unwrap(), "exists\n");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "4000000\n");
}

#[test]
fn remove_pidfile_with_own_config_removes_a_file_holding_another_pid() {
    let instance = Instance::new("pits");
    let path = instance.path("pits");
    std::fs::write(&path, format!("{}\n", std::process::id() + 1)).unwrap();
    remove_pidfile_with("pits", &instance.config).unwrap();
    assert!(!path.exists());
    remove_pidfile_with("pits", &instance.config).unwrap();
}
