//! `pidfile status --cluster URL SERVICE` and `pidfile list --cluster URL`: who holds the cluster leases, read
//! linearizably from etcd (with no quorum there is no answer, never a stale one), beside the host-local pidfile.

use std::fmt::Write;

use pidfiles::PidConfig;
use pidfiles_cluster::{Cluster, Holder, Options};
use serde::Serialize;

use super::{failure, pidfile_and_name, this_host};
use crate::args::{ListArgs, StatusArgs};
use crate::common::exit::UNKNOWN;
use crate::common::{Failure, Settings};
use crate::prometheus::escape_label;
use crate::state::State;
use crate::status::Report;

/// A cluster lease's holder, in the shape `--json` prints it.
#[derive(Debug, Serialize)]
struct HolderReport {
    instance: String,
    service: String,
    /// The lock's name, `{instance}-{service}`.
    name: String,
    key: String,
    /// What the holder recorded about itself (null when its record does not parse): its host, the pid of its
    /// supervisor there, the command, and when it started (seconds since the epoch).
    host: Option<String>,
    pid: Option<u32>,
    command: Option<String>,
    started: Option<u64>,
    /// The fencing token: the key's create revision.
    token: u64,
    /// The etcd lease id, in decimal as `PIDFILE_CLUSTER_LEASE` has it: a string, as it may not fit a double.
    lease: String,
    /// Seconds the lease has left by etcd's count, when known.
    ttl_left: Option<f64>,
    /// Whether the holder is on this host.
    here: bool,
}

impl HolderReport {
    fn of(holder: &Holder, instance: &str, service: &str, here: &str) -> HolderReport {
        let info = holder.info.as_ref();
        HolderReport {
            instance: instance.to_owned(),
            service: service.to_owned(),
            name: holder.name.clone(),
            key: holder.key.clone(),
            host: info.map(|info| info.host.clone()),
            pid: info.map(|info| info.pid),
            command: info.map(|info| info.command.clone()),
            started: info.map(|info| info.started),
            token: holder.token,
            lease: holder.lease.to_string(),
            ttl_left: holder.ttl_left.map(|left| left.as_secs_f64()),
            here: info.is_some_and(|info| info.host == here),
        }
    }

    /// `host H (supervisor pid P, token T, lease 8.2s left)`.
    fn describe(&self) -> String {
        let left = self.ttl_left.map_or_else(String::new, |left| format!(", lease {left:.1}s left"));
        match (&self.host, self.pid) {
            (Some(host), Some(pid)) => format!("host {host} (supervisor pid {pid}, token {}{left})", self.token),
            _ => format!("an unknown holder (its record does not parse; token {}{left})", self.token),
        }
    }
}

/// What `status --cluster --json` prints: the cluster's answer and the local pidfile's.
#[derive(Debug, Serialize)]
struct StatusReport {
    service: String,
    instance: String,
    name: String,
    key: String,
    /// Whether some host holds the lease; null when the cluster could not tell.
    held: Option<bool>,
    holder: Option<HolderReport>,
    /// Why the cluster could not tell.
    error: Option<String>,
    /// The host-local pidfile, as `status --json` reports it.
    local: Report,
}

pub fn status(settings: &Settings, cluster: &Cluster, args: &StatusArgs) -> Result<u8, Failure> {
    let (service, instance) = (args.service.as_str(), settings.config.instance_name());
    let (_, name) = pidfile_and_name(settings, service)?;
    let local = Report::of(service, &settings.config)?;
    let answer = cluster.holder(&name, &Options::default());
    let (held, holder, error) = match answer {
        Ok(holder) => {
            let holder = holder.map(|holder| HolderReport::of(&holder, instance, service, &this_host()));
            (Some(holder.is_some()), holder, None)
        }
        Err(error) => (None, None, Some(failure(UNKNOWN, error).message)),
    };
    let code = match held {
        Some(true) => State::Running,
        Some(false) => State::NotRunning,
        None => State::Unknown,
    }
    .lsb_code();
    let key = cluster.key(&name);
    let report = StatusReport {
        service: service.to_owned(),
        instance: instance.to_owned(),
        name,
        key,
        held,
        holder,
        error,
        local,
    };
    if args.json {
        println!("{}", serde_json::to_string(&report).map_err(|error| Failure::new(UNKNOWN, error.to_string()))?);
        return Ok(code);
    }
    match (&report.holder, &report.error) {
        (Some(holder), _) => println!("{service} runs on {}", holder.describe()),
        (None, None) => println!("{service} runs on no host of the cluster"),
        (None, Some(error)) => {
            return Err(Failure::new(UNKNOWN, format!("cannot tell whether {service} runs in the cluster: {error}")));
        }
    }
    println!("on this host: {}", report.local.sentence());
    Ok(code)
}

pub fn list(settings: &Settings, cluster: &Cluster, args: &ListArgs) -> Result<u8, Failure> {
    let instance = (!args.all_instances).then(|| settings.config.instance_name());
    let holders = cluster
        .holders(&Options::default())
        .map_err(|error| Failure::new(1, format!("cannot list the holders under {}: {error}", cluster.prefix())))?;
    let here = this_host();
    let mut reports: Vec<HolderReport> = holders
        .iter()
        .filter_map(|holder| {
            let (instance, service) = split_name(&holder.name, instance)?;
            Some(HolderReport::of(holder, instance, service, &here))
        })
        .collect();
    reports.sort_by(|a, b| a.name.cmp(&b.name));
    let output = if args.json {
        serde_json::to_string_pretty(&reports).map_err(|error| Failure::new(1, error.to_string()))? + "\n"
    } else if args.prometheus {
        exposition(&reports)
    } else {
        table(&reports, args.all_instances)
    };
    print!("{output}");
    Ok(0)
}

/// Splits a lock's name `{instance}-{service}` as `list` splits a pidfile's (see `list::split_name`).
fn split_name<'a>(name: &'a str, instance: Option<&'a str>) -> Option<(&'a str, &'a str)> {
    let (instance, service) = match instance {
        Some(instance) => (instance, name.strip_prefix(instance)?.strip_prefix('-')?),
        None => name.split_once('-')?,
    };
    (!instance.is_empty() && !service.is_empty()).then_some((instance, service))
}

fn table(reports: &[HolderReport], with_instance: bool) -> String {
    let mut out = String::new();
    let instance_column = |instance: &str| if with_instance { format!("{instance:<16} ") } else { String::new() };
    let _ = writeln!(
        out,
        "{}{:<24} {:<20} {:>8} {:>10} LEASE_LEFT",
        instance_column("INSTANCE"),
        "SERVICE",
        "HOST",
        "PID",
        "TOKEN"
    );
    for report in reports {
        let pid = report.pid.map_or_else(|| "-".to_owned(), |pid| pid.to_string());
        let left = report.ttl_left.map_or_else(|| "-".to_owned(), |left| format!("{left:.1}s"));
        let _ = writeln!(
            out,
            "{}{:<24} {:<20} {:>8} {:>10} {left}",
            instance_column(&report.instance),
            report.service,
            report.host.as_deref().unwrap_or("-"),
            pid,
            report.token,
        );
    }
    out
}

/// The Prometheus text exposition format: one series per held lease.
fn exposition(reports: &[HolderReport]) -> String {
    let mut out = String::new();
    let labels = |report: &HolderReport| {
        format!(
            "instance=\"{}\",service=\"{}\",host=\"{}\"",
            escape_label(&report.instance),
            escape_label(&report.service),
            escape_label(report.host.as_deref().unwrap_or(""))
        )
    };
    let _ = writeln!(out, "# HELP pidfile_cluster_held Whether a host holds the service's cluster lease (1).");
    let _ = writeln!(out, "# TYPE pidfile_cluster_held gauge");
    for report in reports {
        let _ = writeln!(out, "pidfile_cluster_held{{{}}} 1", labels(report));
    }
    let _ =
        writeln!(out, "# HELP pidfile_cluster_token The fencing token of the holder of the service's cluster lease.");
    let _ = writeln!(out, "# TYPE pidfile_cluster_token gauge");
    for report in reports {
        let _ = writeln!(out, "pidfile_cluster_token{{{}}} {}", labels(report), report.token);
    }
    let _ =
        writeln!(out, "# HELP pidfile_cluster_lease_seconds_left How long the cluster lease has left by etcd's count.");
    let _ = writeln!(out, "# TYPE pidfile_cluster_lease_seconds_left gauge");
    for report in reports {
        if let Some(left) = report.ttl_left {
            let _ = writeln!(out, "pidfile_cluster_lease_seconds_left{{{}}} {left:.3}", labels(report));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use pidfiles_cluster::HolderInfo;

    use super::*;

    fn holder(name: &str, host: &str) -> Holder {
        let info = HolderInfo { host: host.into(), pid: 42, command: "sleep 60".into(), started: 1_795_556_632 };
        Holder {
            name: name.into(),
            key: format!("/pidfile/{name}"),
            info: Some(info),
            token: 7,
            lease: 99,
            ttl_left: Some(Duration::from_millis(8250)),
        }
    }

    #[test]
    fn lock_names_split_into_instance_and_service() {
        assert_eq!(split_name("prod-web", Some("prod")), Some(("prod", "web")));
        assert_eq!(split_name("prod-web-1", Some("prod")), Some(("prod", "web-1")));
        assert_eq!(split_name("production-web", Some("prod")), None);
        assert_eq!(split_name("prod-", Some("prod")), None);
        assert_eq!(split_name("prod-web", None), Some(("prod", "web")));
        assert_eq!(split_name("lonely", None), None);
    }

    #[test]
    fn holder_is_described_by_host_supervisor_pid_token_and_time_left() {
        let report = HolderReport::of(&holder("prod-web", "h1"), "prod", "web", "h2");
        assert_eq!(report.describe(), "host h1 (supervisor pid 42, token 7, lease 8.2s left)");
        assert!(!report.here);
        assert!(HolderReport::of(&holder("prod-web", "h1"), "prod", "web", "h1").here);
    }

    #[test]
    fn holder_whose_record_does_not_parse_is_still_listed_with_its_token() {
        let mut unknown = holder("prod-web", "h1");
        unknown.info = None;
        let report = HolderReport::of(&unknown, "prod", "web", "h1");
        assert!(report.describe().contains("token 7"), "{}", report.describe());
        assert!(!report.here);
        let text = exposition(&[report]);
        assert!(text.contains("pidfile_cluster_held{instance=\"prod\",service=\"web\",host=\"\"} 1"), "{text}");
    }

    #[test]
    fn exposition_has_one_series_per_holder() {
        let reports = [HolderReport::of(&holder("prod-web", "h\"1"), "prod", "web", "h2")];
        let text = exposition(&reports);
        let labels = "instance=\"prod\",service=\"web\",host=\"h\\\"1\"";
        assert!(text.contains(&format!("pidfile_cluster_held{{{labels}}} 1\n")), "{text}");
        assert!(text.contains(&format!("pidfile_cluster_token{{{labels}}} 7\n")), "{text}");
        assert!(text.contains(&format!("pidfile_cluster_lease_seconds_left{{{labels}}} 8.250\n")), "{text}");
    }

    #[test]
    fn json_names_the_holder_fields() {
        let report = HolderReport::of(&holder("prod-web", "h1"), "prod", "web", "h1");
        let value = serde_json::to_value(&report).unwrap();
        for field in ["instance", "service", "name", "key", "host", "pid", "command", "started", "token", "lease"] {
            assert!(value.get(field).is_some_and(|value| !value.is_null()), "{field}: {value}");
        }
        assert_eq!(value["ttl_left"], 8.25);
        assert_eq!(value["lease"], "99");
        assert_eq!(value["here"], true);
    }
}
