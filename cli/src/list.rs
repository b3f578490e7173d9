//! `pidfile list [--all-instances] [--json | --prometheus]`: every pidfile of the instance, or of all instances,
//! in the pid directory.

use std::fmt::Write;

use pidfiles::{Config, PidConfig};

use crate::args::ListArgs;
use crate::common::{Failure, Settings};
use crate::status::Report;

pub fn run(settings: &Settings, args: &ListArgs) -> Result<u8, Failure> {
    let ListArgs { all_instances, json, prometheus } = *args;
    let dir = settings.config.pid_dir();
    let entries = std::fs::read_dir(dir).map_err(|error| match error.kind() {
        std::io::ErrorKind::NotFound => Failure::new(1, format!("pid directory {} does not exist", dir.display())),
        _ => Failure::new(1, format!("cannot list {}: {error}", dir.display())),
    })?;
    let mut names: Vec<(String, String)> = entries
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter_map(|name| split_name(&name, (!all_instances).then(|| settings.config.instance_name())))
        .collect();
    names.sort();
    let reports: Vec<Report> = names
        .iter()
        .map(|(instance, service)| Report::of(service, &Config::new(dir, instance.as_str())))
        .filter_map(Result::ok)
        .collect();
    let output = if json {
        serde_json::to_string_pretty(&reports).map_err(|error| Failure::new(1, error.to_string()))? + "\n"
    } else if prometheus {
        exposition(&reports)
    } else {
        table(&reports, all_instances)
    };
    print!("{output}");
    Ok(0)
}

/// Splits a file name `{instance}-{service}.pid` into its instance and service. With an instance given, only its
/// files count; without, the instance is taken to end at the first `-` (instance names with a `-` are then
/// ambiguous, and listed under their first part).
fn split_name(name: &str, instance: Option<&str>) -> Option<(String, String)> {
    let stem = name.strip_suffix(".pid")?;
    let (instance, service) = match instance {
        Some(instance) => (instance, stem.strip_prefix(instance)?.strip_prefix('-')?),
        None => stem.split_once('-')?,
    };
    (!instance.is_empty() && !service.is_empty()).then(|| (instance.to_owned(), service.to_owned()))
}

fn table(reports: &[Report], with_instance: bool) -> String {
    let mut out = String::new();
    let instance_column = |instance: &str| {
        if with_instance { format!("{instance:<16} ") } else { String::new() }
    };
    let _ = writeln!(out, "{}{:<24} {:>8} {:<12} SINCE", instance_column("INSTANCE"), "SERVICE", "PID", "STATE");
    for report in reports {
        let pid = report.pid.map_or_else(|| "-".to_owned(), |pid| pid.to_string());
        let _ = writeln!(
            out,
            "{}{:<24} {:>8} {:<12} {}",
            instance_column(&report.instance),
            report.service,
            pid,
            report.state,
            report.since.as_deref().unwrap_or("-")
        );
    }
    out
}

/// The Prometheus text exposition format, as node_exporter's textfile collector reads it.
fn exposition(reports: &[Report]) -> String {
    let mut out = String::new();
    let labels = |report: &Report| {
        format!("instance=\"{}\",service=\"{}\"", escape_label(&report.instance), escape_label(&report.service))
    };
    let _ = writeln!(out, "# HELP pidfile_up Whether the service runs (1) or not (0), by its pidfile.");
    let _ = writeln!(out, "# TYPE pidfile_up gauge");
    for report in reports {
        let _ = writeln!(out, "pidfile_up{{{}}} {}", labels(report), u8::from(report.state == "running"));
    }
    let _ = writeln!(out, "# HELP pidfile_locked Whether a lock held on the pidfile proves the service runs.");
    let _ = writeln!(out, "# TYPE pidfile_locked gauge");
    for report in reports {
        let _ = writeln!(out, "pidfile_locked{{{}}} {}", labels(report), u8::from(report.locked));
    }
    let _ = writeln!(
        out,
        "# HELP pidfile_unknown Whether the service's state is unknown (1): the pidfile is unreadable, corrupt, or locked in a way that proves nothing."
    );
    let _ = writeln!(out, "# TYPE pidfile_unknown gauge");
    for report in reports {
        let _ = writeln!(out, "pidfile_unknown{{{}}} {}", labels(report), u8::from(report.state == "unknown"));
    }
    let _ = writeln!(out, "# HELP pidfile_pid The process id the pidfile names.");
    let _ = writeln!(out, "# TYPE pidfile_pid gauge");
    for report in reports {
        if let Some(pid) = report.pid {
            let _ = writeln!(out, "pidfile_pid{{{}}} {pid}", labels(report));
        }
    }
    let _ = writeln!(
        out,
        "# HELP pidfile_start_time_seconds When the pidfile was last written, in seconds since the epoch."
    );
    let _ = writeln!(out, "# TYPE pidfile_start_time_seconds gauge");
    for report in reports {
        if let Some(since) = report.since_epoch {
            let _ = writeln!(out, "pidfile_start_time_seconds{{{}}} {since:.3}", labels(report));
        }
    }
    out
}

/// Escapes a label value: backslash, double quote and newline.
pub fn escape_label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_split_into_instance_and_service() {
        assert_eq!(split_name("prod-web.pid", Some("prod")), Some(("prod".into(), "web".into())));
        assert_eq!(split_name("prod-web-1.pid", Some("prod")), Some(("prod".into(), "web-1".into())));
        assert_eq!(split_name("production-web.pid", Some("prod")), None);
        assert_eq!(split_name("prod-.pid", Some("prod")), None);
        assert_eq!(split_name("prod-web.txt", Some("prod")), None);
        assert_eq!(split_name("prod-web.pid", None), Some(("prod".into(), "web".into())));
        assert_eq!(split_name("lonely.pid", None), None);
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
