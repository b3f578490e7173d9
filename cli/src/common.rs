//! What the subcommands share: the resolved settings, failures with their exit codes, and the parsing of
//! durations and times.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pidfiles::{Config, Error};

/// The exit codes of every subcommand, each named once here (README's table says which subcommand gives which).
pub mod exit {
    /// Done; for `status`, running (LSB 0).
    pub const SUCCESS: u8 = 0;
    /// Refused, failed or timed out, said in one line on stderr; for `get`, no pidfile.
    pub const FAILURE: u8 = 1;
    /// A usage error: a bad service name, duration, signal or option.
    pub const USAGE: u8 = 2;
    /// `status` (LSB 1): the program is dead and its pidfile remains.
    pub const STALE: u8 = 1;
    /// `status` (LSB 3): the program is not running.
    pub const NOT_RUNNING: u8 = 3;
    /// `status` (LSB 4): the state is unknown; for `get`, there is no pid it could stand behind.
    pub const UNKNOWN: u8 = 4;
    /// `run`: COMMAND was found but could not be run (as a shell says it).
    pub const CANNOT_RUN: u8 = 126;
    /// `run`: COMMAND was not found (as a shell says it).
    pub const NOT_FOUND: u8 = 127;
}

/// What went wrong, and the exit code that says so.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn new(code: u8, message: impl Into<String>) -> Failure {
        Failure { code, message: message.into() }
    }
}

impl From<Error> for Failure {
    /// A library error: a usage error for a bad name, a plain failure (1) otherwise.
    fn from(error: Error) -> Failure {
        let code = if matches!(error, Error::InvalidName { .. }) { exit::USAGE } else { exit::FAILURE };
        Failure::new(code, error.to_string())
    }
}

/// The configuration after the global options, and whether to say what was done.
#[derive(Debug)]
pub struct Settings {
    pub config: Config,
    pub verbose: bool,
}

impl Settings {
    /// The library's resolution, with `--config` in place of `PIDFILE_CONFIG`, then `--dir` and `--instance` on top.
    pub fn resolve(
        dir: Option<PathBuf>,
        instance: Option<String>,
        config_file: Option<&Path>,
        verbose: bool,
    ) -> Result<Settings, Failure> {
        let mut config = Config::resolve(config_file)?;
        if let Some(dir) = dir {
            config = config.with_pid_dir(dir);
        }
        if let Some(instance) = instance {
            config = config.with_instance_name(instance);
        }
        Ok(Settings { config, verbose })
    }

    /// The pidfile of `service`; a bad name is a usage error.
    pub fn path(&self, service: &str) -> Result<PathBuf, Failure> {
        Ok(pidfiles::pidfile_path_with(service, &self.config)?)
    }

    /// Prints `message` on standard error when `--verbose` asked for it.
    pub fn say(&self, message: &str) {
        if self.verbose {
            warn(message);
        }
    }
}

/// Writes `text` to standard output. An answer that cannot be written (to a full disk, say) is a failure, said on
/// standard error, where `print!` would panic.
pub fn print(text: &str) -> Result<(), Failure> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|error| Failure::new(exit::FAILURE, format!("cannot write to standard output: {error}")))
}

/// Writes `pidfile: MESSAGE` on standard error. If even that fails, there is no one left to tell, and the exit code
/// still says how it went (where `eprintln!` would panic).
///
/// The line is written whole, in one write(2): standard error is unbuffered, and `writeln!` would write its pieces
/// one by one, between which another process writing to the same file (a log that a command's leftover child
/// still writes to) would slip its own output.
pub fn warn(message: &str) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(format!("pidfile: {message}\n").as_bytes());
}

/// How a pidfile is locked when its lock proves nothing: `locked by pid N (user U) <why>`, for messages that
/// name the path before it.
pub fn locked_by(holder: Option<pidfiles::Holder>, doubt: pidfiles::Doubt) -> String {
    match holder {
        Some(holder) => format!("locked by {holder} {doubt}"),
        None => format!("locked {doubt}"),
    }
}

/// Parses a duration such as `500ms`, `20s`, `2m`, `1h` or `1.5s`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let seconds_per_unit = match unit {
        "ms" => 0.001,
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => {
            return Err(format!("invalid duration {text:?}: use a number with ms, s, m or h, such as 500ms or 20s"));
        }
    };
    let number: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: use a number with ms, s, m or h, such as 500ms or 20s"))?;
    // Capped, so that a deadline computed from it cannot overflow the clock.
    const MAX: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    match Duration::try_from_secs_f64(number * seconds_per_unit) {
        Ok(duration) if duration <= MAX => Ok(duration),
        _ => Err(format!("invalid duration {text:?}: at most 100 years (876000h)")),
    }
}

/// When the file at `path` was last written, if it exists.
pub fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::symlink_metadata(path).and_then(|meta| meta.modified()).ok()
}

/// Formats a time as RFC 3339 in UTC, to the second: `2026-11-24T21:43:52Z`.
pub fn rfc3339(time: SystemTime) -> String {
    let seconds = time.duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs()) as i64;
    let (days, second_of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60
    )
}

/// Seconds since the epoch, for machine-readable output.
pub fn epoch_seconds(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH).map_or(0.0, |since| since.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("20s"), Ok(Duration::from_secs(20)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        for bad in ["", "s", "-1s", "10x", "1..2s", "ms5", "10000000000000000000s", "2562047788015216h", "876001h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn times() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(1_795_556_632)), "2026-11-24T21:43:52Z");
    }
}
