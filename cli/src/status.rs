//! `pidfile status SERVICE [--format text|json|prometheus]`: whether a service runs, with the LSB init-script exit codes.

use pidfiles::{Config, PidConfig, Status};

use serde::Serialize;

use crate::args::{Format, StatusArgs};
use crate::common::{self, Failure, Settings, exit, locked_by, modified, rfc3339};
use crate::state::State;

/// What a pidfile says of its service, in the shape `--json` prints it.
#[derive(Debug, Serialize)]
pub struct Report {
    pub service: String,
    pub instance: String,
    pub path: String,
    pub pid: Option<u32>,
    pub state: State,
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
            state: State::NotRunning,
            locked: false,
            since: since.map(rfc3339),
            since_epoch: since.map(crate::common::epoch_seconds),
            holder: None,
            error: None,
        };
        let status = match pidfiles::status_at(&path) {
            Ok(status) => status,
            Err(error @ pidfiles::Error::InvalidName { .. }) => {
                return Err(Failure::new(exit::USAGE, error.to_string()));
            }
            Err(error) => {
                (report.state, report.error) = (State::Unknown, Some(error.to_string()));
                return Ok(report);
            }
        };
        report.state = State::of(&status);
        match status {
            Status::Running { pid, locked } => (report.pid, report.locked) = (pid, locked),
            Status::Stale { pid } => report.pid = pid,
            // The file's pid is not reported: nothing shows that it runs the service.
            Status::Unproven { holder, doubt, .. } => {
                report.holder = holder.map(|holder| HolderReport { pid: holder.pid, uid: holder.uid });
                report.error =
                    Some(format!("{} is {}: no proof that {service} runs", path.display(), locked_by(holder, doubt)));
            }
            Status::NotRunning => (report.since, report.since_epoch) = (None, None),
        }
        Ok(report)
    }

    /// One line for people.
    pub fn sentence(&self) -> String {
        let pid = self.pid.map_or_else(|| "pid unknown".to_owned(), |pid| format!("pid {pid}"));
        match self.state {
            State::Running if self.locked => format!("{} is running ({pid}, pidfile locked)", self.service),
            State::Running => {
                format!("{} is running ({pid}, pidfile not locked: written by a tool that does not lock)", self.service)
            }
            State::Stale => format!(
                "{} is not running, but its pidfile {} remains ({pid}); `pidfile remove {}` removes it",
                self.service, self.path, self.service
            ),
            State::NotRunning => format!("{} is not running", self.service),
            State::Unknown => {
                format!("{} is in an unknown state: {}", self.service, self.error.as_deref().unwrap_or("?"))
            }
        }
    }
}

pub fn run(settings: &Settings, args: &StatusArgs) -> Result<u8, Failure> {
    let format = args.format().map_err(|message| Failure::new(exit::USAGE, message))?;
    let report = Report::of(&args.service, &settings.config)?;
    let answer = match format {
        Format::Json => {
            serde_json::to_string(&report).map_err(|error| Failure::new(exit::UNKNOWN, error.to_string()))? + "\n"
        }
        Format::Prometheus => crate::prometheus::exposition(std::slice::from_ref(&report)),
        Format::Text if report.state == State::Unknown => {
            common::warn(report.error.as_deref().unwrap_or("unknown state"));
            String::new()
        }
        Format::Text => report.sentence() + "\n",
    };
    // Not 1, which would say the service is dead: the state is unknown to whoever reads the answer.
    common::print(&answer).map_err(|failure| Failure::new(exit::UNKNOWN, failure.message))?;
    Ok(report.state.lsb_code())
}
