//! In-process figures: a claim and release, `get_pid` and `status`, on tmpfs (`/dev/shm`) when there is one.
//!
//! ```text
//! cargo bench -p pidfiles --bench pidfile
//! ```
//!
//! For the side-by-side comparison with libbsd, the bare system calls and the other tools, see
//! `cargo bench -p pidfiles-cli --bench compare`.

use std::path::Path;

use pidfiles::{Config, PidFile};

fn main() {
    divan::main();
}

fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() { tempfile::tempdir_in(shm) } else { tempfile::tempdir() }.expect("a scratch directory")
}

#[divan::bench]
fn claim_and_release(bencher: divan::Bencher) {
    // Straight in /dev/shm, as pidfiles are kept: a directory of ours inside a shared one (a temporary directory)
    // would have its way walked again at every claim.
    let base = if Path::new("/dev/shm").is_dir() { "/dev/shm" } else { "/var/tmp" };
    let path = Path::new(base).join(format!("pidfiles-bench-{}.pid", std::process::id()));
    let builder = PidFile::builder().signal_handlers(false);
    bencher.bench_local(|| drop(builder.acquire(&path).expect("claim")));
    let _ = std::fs::remove_file(&path);
}

#[divan::bench]
fn get_pid_of_a_held_pidfile(bencher: divan::Bencher) {
    let dir = scratch();
    let config = Config::new(dir.path(), "bench");
    let path = pidfiles::pidfile_path_with("svc", &config).unwrap();
    let _held = PidFile::builder().signal_handlers(false).acquire(&path).expect("claim");
    bencher.bench_local(|| pidfiles::get_pid_with("svc", &config).expect("get_pid"));
}

#[divan::bench]
fn status_of_a_held_pidfile(bencher: divan::Bencher) {
    let dir = scratch();
    let config = Config::new(dir.path(), "bench");
    let path = pidfiles::pidfile_path_with("svc", &config).unwrap();
    let _held = PidFile::builder().signal_handlers(false).acquire(&path).expect("claim");
    bencher.bench_local(|| pidfiles::status_with("svc", &config).expect("status"));
}

#[divan::bench]
fn status_of_a_missing_pidfile(bencher: divan::Bencher) {
    let dir = scratch();
    let config = Config::new(dir.path(), "bench");
    bencher.bench_local(|| pidfiles::status_with("svc", &config).expect("status"));
}
