//! `pidfile status` as a whole process, from spawn to exit, on a running service.
//!
//! ```text
//! cargo bench -p pidfiles-cli --bench command
//! ```

use std::process::{Command, Stdio};

use pidfiles::PidFile;

fn main() {
    divan::main();
}

#[divan::bench(sample_count = 200)]
fn pidfile_status_process(bencher: divan::Bencher) {
    let dir = tempfile::tempdir().expect("a scratch directory");
    let path = dir.path().join("bench-svc.pid");
    let _held = PidFile::builder().signal_handlers(false).acquire(&path).expect("claim");
    let dir = dir.path().to_str().unwrap().to_owned();
    bencher.bench_local(|| {
        let status = Command::new(env!("CARGO_BIN_EXE_pidfile"))
            .args(["--dir", &dir, "--instance", "bench", "status", "svc"])
            .stdout(Stdio::null())
            .status()
            .expect("run pidfile status");
        assert_eq!(status.code(), Some(0));
    });
}
