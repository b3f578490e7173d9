//! `--format text|json|prometheus`, and its short forms `--json` and `--prometheus`.

use crate::util::{Place, mixed_directory, samples, stderr, stdout, write};

#[test]
fn list_format_json_prints_what_json_prints() {
    let place = Place::new();
    let _service = mixed_directory(&place);
    let short = place.run(&["list", "--json"]);
    let long = place.run(&["list", "--format", "json"]);
    assert_eq!(long.status.code(), Some(0));
    assert_eq!(stdout(&long), stdout(&short));
    assert!(stdout(&long).starts_with("[\n"), "{}", stdout(&long));
}

#[test]
fn list_format_prometheus_prints_what_prometheus_prints() {
    let place = Place::new();
    let _service = mixed_directory(&place);
    let short = place.run(&["list", "--prometheus"]);
    let long = place.run(&["list", "--format", "prometheus"]);
    assert_eq!(long.status.code(), Some(0));
    assert_eq!(stdout(&long), stdout(&short));
    assert!(stdout(&long).contains("# TYPE pidfile_up gauge"), "{}", stdout(&long));
}

#[test]
fn list_format_text_is_the_table() {
    let place = Place::new();
    let _service = mixed_directory(&place);
    let default = place.run(&["list"]);
    let text = place.run(&["list", "--format", "text"]);
    assert_eq!(stdout(&text), stdout(&default));
    assert!(stdout(&text).starts_with("SERVICE "), "{}", stdout(&text));
}

#[test]
fn status_format_json_prints_what_json_prints() {
    let place = Place::new();
    write(&place.path("old"), "4000000\n", 0o644);
    let short = place.run(&["status", "old", "--json"]);
    let long = place.run(&["status", "old", "--format", "json"]);
    assert_eq!((long.status.code(), stdout(&long)), (Some(1), stdout(&short)));
}

#[test]
fn status_format_prometheus_exports_the_one_service_with_the_lsb_code() {
    let place = Place::new();
    let service = place.start_idle("web", "");
    let output = place.run(&["status", "web", "--format", "prometheus"]);
    assert_eq!(output.status.code(), Some(0));
    let samples = samples(&stdout(&output));
    assert_eq!(samples[r#"pidfile_up{instance="t",service="web"}"#], 1.0);
    assert_eq!(samples[r#"pidfile_pid{instance="t",service="web"}"#], f64::from(service.pid));
    assert_eq!(samples.keys().filter(|series| !series.contains("service=\"web\"")).count(), 0);
}

#[test]
fn status_format_text_is_the_sentence() {
    let place = Place::new();
    let output = place.run(&["status", "web", "--format", "text"]);
    assert_eq!((output.status.code(), stdout(&output).as_str()), (Some(3), "web is not running\n"));
}

#[test]
fn a_short_form_beside_a_different_format_is_a_usage_error() {
    let place = Place::new();
    std::fs::write(place.path("web"), "4000000\n").unwrap();
    for (args, message) in [
        (&["status", "web", "--json", "--format", "text"][..], "pidfile: --json contradicts --format text\n"),
        (&["list", "--json", "--format", "prometheus"], "pidfile: --json contradicts --format prometheus\n"),
        (&["list", "--prometheus", "--format", "json"], "pidfile: --prometheus contradicts --format json\n"),
    ] {
        let output = place.run(args);
        assert_eq!((output.status.code(), stderr(&output).as_str(), stdout(&output).as_str()), (Some(2), message, ""));
    }
}

#[test]
fn a_short_form_beside_the_same_format_is_accepted() {
    let place = Place::new();
    std::fs::write(place.path("web"), "4000000\n").unwrap();
    let output = place.run(&["status", "web", "--json", "--format", "json"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let output = place.run(&["list", "--prometheus", "--format", "prometheus"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[test]
fn json_and_prometheus_together_are_a_usage_error() {
    let place = Place::new();
    let output = place.run(&["list", "--json", "--prometheus"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(stderr(&output).lines().count(), 1, "{}", stderr(&output));
}
