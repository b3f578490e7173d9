//! `pidfile list [--all-instances] [--format text|json|prometheus]`: every pidfile of the instance, or of all instances,
//! in the pid directory.

use std::fmt::Write;

use pidfiles::{Config, PidConfig};

use crate::args::{Format, ListArgs};
use crate::common::{self, Failure, Settings, exit};
use crate::prometheus;
use crate::status::Report;

pub fn run(settings: &Settings, args: &ListArgs) -> Result<u8, Failure> {
    let format = args.format().map_err(|message| Failure::new(exit::USAGE, message))?;
    let all_instances = args.all_instances;
    let dir = settings.config.pid_dir();
    let entries = std::fs::read_dir(dir).map_err(|error| match error.kind() {
        std::io::ErrorKind::NotFound => {
            Failure::new(exit::FAILURE, format!("pid directory {} does not exist", dir.display()))
        }
        _ => Failure::new(exit::FAILURE, format!("cannot list {}: {error}", dir.display())),
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
    let output = match format {
        Format::Json => {
            serde_json::to_string_pretty(&reports).map_err(|error| Failure::new(exit::FAILURE, error.to_string()))?
                + "\n"
        }
        Format::Prometheus => prometheus::exposition(&reports),
        Format::Text => table(&reports, all_instances),
    };
    common::print(&output)?;
    Ok(exit::SUCCESS)
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
}
