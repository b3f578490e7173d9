//! `pidfile path SERVICE`: print the pidfile's path.

use crate::args::PathArgs;
use crate::common::{self, Failure, Settings, exit};

pub fn run(settings: &Settings, args: &PathArgs) -> Result<u8, Failure> {
    let service = args.service.as_str();
    common::print(&format!("{}\n", settings.path(service)?.display()))?;
    Ok(exit::SUCCESS)
}
