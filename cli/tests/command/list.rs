//! `pidfile list`: the instance's pidfiles (or every instance's) as a table, JSON, or Prometheus samples.

use crate::util::{Place, assert_missing_pid_directory_refused, mixed_directory, samples, stdout};

#[test]
fn list_shows_the_state_of_each_pidfile_of_the_instance() {
    let place = Place::new();
    let service = mixed_directory(&place);
    let output = place.run(&["list"]);
    assert_eq!(output.status.code(), Some(0));
    let lines: Vec<Vec<String>> =
        stdout(&output).lines().map(|line| line.split_whitespace().map(str::to_owned).collect()).collect();
    assert_eq!(lines[0], ["SERVICE", "PID", "STATE", "SINCE"]);
    let rows: Vec<(&str, &str, &str)> =
        lines[1..].iter().map(|row| (row[0].as_str(), row[1].as_str(), row[2].as_str())).collect();
    let pid = service.pid.to_string();
    assert_eq!(rows, [("bad", "-", "unknown"), ("old", "4000000", "stale"), ("web", pid.as_str(), "running")]);
}

#[test]
fn list_all_instances_json_shows_every_instances_pidfiles() {
    let place = Place::new();
    let _service = mixed_directory(&place);
    let output = place.run(&["list", "--all-instances", "--json"]);
    let reports: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    let seen: Vec<(String, String, String)> = reports
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["instance"].as_str().unwrap().into(),
                r["service"].as_str().unwrap().into(),
                r["state"].as_str().unwrap().into(),
            )
        })
        .collect();
    let expected = [("other", "db", "stale"), ("t", "bad", "unknown"), ("t", "old", "stale"), ("t", "web", "running")];
    let expected: Vec<(String, String, String)> =
        expected.iter().map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())).collect();
    assert_eq!(seen, expected);
}

#[test]
fn list_prometheus_output_parses_as_the_text_exposition_format() {
    let place = Place::new();
    let service = mixed_directory(&place);
    let output = place.run(&["list", "--prometheus"]);
    assert_eq!(output.status.code(), Some(0));
    let text = stdout(&output);
    let samples = samples(&text);
    assert_eq!(samples[r#"pidfile_up{instance="t",service="web"}"#], 1.0);
    assert_eq!(samples[r#"pidfile_up{instance="t",service="old"}"#], 0.0);
    assert_eq!(samples[r#"pidfile_up{instance="t",service="bad"}"#], 0.0);
    assert_eq!(samples[r#"pidfile_locked{instance="t",service="web"}"#], 1.0);
    assert_eq!(samples[r#"pidfile_unknown{instance="t",service="web"}"#], 0.0);
    assert_eq!(samples[r#"pidfile_unknown{instance="t",service="old"}"#], 0.0);
    // A corrupt pidfile says nothing of its service.
    assert_eq!(samples[r#"pidfile_unknown{instance="t",service="bad"}"#], 1.0);
    assert_eq!(samples[r#"pidfile_pid{instance="t",service="web"}"#], f64::from(service.pid));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let since = samples[r#"pidfile_start_time_seconds{instance="t",service="web"}"#];
    assert!(since <= now && since > now - 600.0, "{since}");
    assert!(!text.contains("other"), "another instance's pidfile was listed");
}

#[test]
fn list_in_a_missing_pid_directory_is_an_error() {
    assert_missing_pid_directory_refused(&["list"]);
}
