//! What a pidfile says of its service, as one value: the word `status`, `list` and `--json` print, and the LSB exit
//! code `status` gives it.

use std::fmt;

use pidfiles::Status;
use serde::Serialize;

use crate::common::exit;

/// The state of a service, judged by its pidfile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// A lock proves it runs (its pid may not be written yet), or a tool that does not lock wrote the pid of a
    /// process started before the file.
    Running,
    /// Its pidfile remains, but its process is gone (or the file is empty and unlocked).
    Stale,
    /// There is no pidfile.
    NotRunning,
    /// The pidfile is locked in a way that proves nothing, corrupt, or unreadable.
    Unknown,
}

impl State {
    /// The state a successful look at the pidfile gives; a failed look is [`State::Unknown`].
    pub fn of(status: &Status) -> State {
        match status {
            Status::Running { .. } => State::Running,
            Status::Stale { .. } => State::Stale,
            Status::Unproven { .. } => State::Unknown,
            Status::NotRunning => State::NotRunning,
        }
    }

    /// The LSB init-script exit code of `status`.
    pub fn lsb_code(self) -> u8 {
        match self {
            State::Running => exit::SUCCESS,
            State::Stale => exit::STALE,
            State::NotRunning => exit::NOT_RUNNING,
            State::Unknown => exit::UNKNOWN,
        }
    }

    /// The word for it, as `--json` prints it.
    pub fn name(self) -> &'static str {
        match self {
            State::Running => "running",
            State::Stale => "stale",
            State::NotRunning => "not_running",
            State::Unknown => "unknown",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, so that table columns line up with `{:<12}`.
        formatter.pad(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [State; 4] = [State::Running, State::Stale, State::NotRunning, State::Unknown];

    #[test]
    fn json_names_are_the_words_printed() {
        for state in ALL {
            assert_eq!(serde_json::to_string(&state).unwrap(), format!("\"{state}\""));
        }
        assert_eq!(serde_json::to_string(&State::NotRunning).unwrap(), "\"not_running\"");
    }

    #[test]
    fn lsb_codes_are_those_of_init_scripts() {
        assert_eq!(ALL.map(State::lsb_code), [0, 1, 3, 4]);
    }

    #[test]
    fn display_pads_for_tables() {
        assert_eq!(format!("{:<9}|", State::Stale), "stale    |");
    }
}
