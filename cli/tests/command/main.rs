//! The `pidfile` command, run as a real process: every subcommand and exit code, one module per subcommand or topic,
//! over the helpers in `util`.

// The library's test helpers: bystander processes, liveness, bounded waits, the rule for tests that need root, and
// the tracker of the running service.
#[path = "../../../tests/common/mod.rs"]
mod common;
mod util;

mod config;
mod formats;
mod get;
mod help;
mod list;
mod output;
mod path;
mod planted;
mod remove;
mod run;
mod states;
mod status;
mod stop;
mod usage;
mod wait;
