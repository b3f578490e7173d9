//! `pidfile path SERVICE`: print the pidfile's path.

use crate::common::{Failure, Settings};

pub fn run(settings: &Settings, service: &str) -> Result<u8, Failure> {
    println!("{}", settings.path(service)?.display());
    Ok(0)
}
