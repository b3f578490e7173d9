//! A service that claims its pidfile and runs until it is stopped.
//!
//! ```text
//! cargo run --example service -- nuts
//! ```
//!
//! The pidfile is `{pid_dir}/{instance}-nuts.pid` under the process-wide configuration (`PIDFILE_DIR`,
//! `PIDFILE_INSTANCE`, `PIDFILE_CONFIG`; `/var/tmp` and `default` otherwise). Ctrl-C or SIGTERM stops the service
//! and removes the file; a second copy started meanwhile reports the first one's pid and exits with status 1.

use std::process::ExitCode;

fn main() -> ExitCode {
    let service = std::env::args().nth(1).unwrap_or_else(|| "nuts".to_owned());
    if let Err(error) = pidfiles::make_pidfile(&service) {
        eprintln!("service: {error}");
        return ExitCode::FAILURE;
    }
    match pidfiles::pidfile_path(&service) {
        Ok(path) => println!("{service} runs as pid {}, pidfile {}", std::process::id(), path.display()),
        Err(error) => eprintln!("service: {error}"),
    }
    println!("stop it with Ctrl-C or `kill {}`", std::process::id());
    loop {
        std::thread::park();
    }
}
