//! `pidfile status SERVICE [--json]`: whether a service runs, with the LSB init-script exit codes.

use pidfiles::{Config, PidConfig, Status};

use serde::Serialize;

use crate::args::StatusArgs;
use crate::common::{Failure, Settings, USAGE, locked_by, modified, rfc3339};

/// LSB: program is running.
pub const RUNNING: u8 = 0;
/// LSB: program is dead and the pidfile exists.
pub const STALE: u8 = 1;
/// LSB: program is not running.
pub const NOT_RUNNING: u8 = 3;
/// LSB: program or service status is unknown.
pub const UNKNOWN: u8 = 4;

/// What a pidfile says of its service, in the shape `--json` prints it.
#[derive(Debug, Serialize)]
pub struct Report {
    pub service: String,
    pub instance: String,
    pub path: String,
    pub pid: Option<u32>,
    /// `running`, `stale`, `not_running` or `unknown`.
    pub state: &'static str,
    /// Whether a lock held on the pidfile proves the service runs.
    pub locked: bool,
    /// When the pidfile was last written (RFC 3339, UTC), if there is one.
    pub since: Option<String>,
    /// Seconds since the epoch of the same moment.
    #[serde(skip)]
    pub since_epoch: Option<f64>,
    /// The process found holding a lock that proves nothing (state `unknown`), when one was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder: Option<HolderReport>,
    /// Why the state is unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A process holding a pidfile's lock, in the shape `--json` prints it.
#[derive(Debug, Serialize)]
pub struct HolderReport {
    pub pid: u32,
    pub uid: Option<u32>,
}

impl Report {
    /// Looks at the pidfile of `service` under `config`. A bad name is an error; anything wrong with the file
    /// itself is the state `unknown`.
    pub fn of(service: &str, config: &Config) -> Result<Report, Failure> {
        let path = pidfiles::pidfile_path_with(service, config)?;
        let since = modified(&path);
        let mut report = Report {
            service: service.to_owned(),
            instance: config.instance_name().to_owned(),
            path: path.display().to_string(),
            pid: None,
            state: "not_running",
            locked: false,
            since: since.map(rfc3339),
            since_epoch: since.map(crate::common::epoch_seconds),
            holder: None,
            error: None,
        };
        match pidfiles::status_at(&path) {
            Ok(Status::Running { pid, locked }) => {
                (report.state, report.pid, report.locked) = ("running", pid, locked);
            }
            Ok(Status::Stale { pid }) => (report.state, report.pid) = ("stale", pid),
            // The file's pid is not reported: nothing shows that it runs the service.
            Ok(Status::Unproven { holder, doubt, .. }) => {
                report.state = "unknown";
                report.holder = holder.map(|holder| HolderReport { pid: holder.pid, uid: holder.uid });
                report.error =
                    Some(format!("{} is {}: no proof that {service} runs", path.display(), locked_by(holder, doubt)));
            }
            Ok(Status::NotRunning) => (report.since, report.since_epoch) = (None, None),
            Err(error @ pidfiles::Error::InvalidName { .. }) => return Err(Failure::new(USAGE, error.to_string())),
            Err(error) => (report.state, report.error) = ("unknown", Some(error.to_string())),
        }
        Ok(report)
    }

    /// The LSB exit code of the state.
    pub fn exit_code(&self) -> u8 {
        match self.state {
            "running" => RUNNING,
            "stale" => STALE,
            "not_running" => NOT_RUNNING,
            _ => UNKNOWN,
        }
    }

    /// One line for people.
    pub fn sentence(&self) -> String {
        let pid = self.pid.map_or_else(|| "pid unknown".to_owned(), |pid| format!("pid {pid}"));
        match self.state {
            "running" if self.locked => format!("{} is running ({pid}, pidfile locked)", self.service),
            "running" => {
                format!("{} is running ({pid}, pidfile not locked: written by a tool that does not lock)", self.service)
            }
            "stale" => format!(
                "{} is not running, but its pidfile {} remains ({pid}); `pidfile remove {}` removes it",
                self.service, self.path, self.service
            ),
            "not_running" => format!("{} is not running", self.service),
            _ => format!("{} is in an unknown state: {}", self.service, self.error.as_deref().unwrap_or("?")),
        }
    }
}

pub fn run(settings: &Settings, args: &StatusArgs) -> Result<u8, Failure> {
    let (service, json) = (args.service.as_str(), args.json);
    let report = Report::of(service, &settings.config)?;
    if json {
        println!("{}", serde_json::to_string(&report).map_err(|error| Failure::new(UNKNOWN, error.to_string()))?);
    } else if report.state == "unknown" {
        eprintln!("pidfile: {}", report.error.as_deref().unwrap_or("unknown state"));
    } else {
        println!("{}", report.sentence());
    }
    Ok(report.exit_code())
}
